//! Ingresses, IngressClasses and NetworkPolicies (networking.k8s.io/v1).

use k8s_openapi::api::networking::v1::{Ingress, IngressClass, NetworkPolicy};
use serde_json::{json, Value};

use super::meta::validate_label_selector;
use super::names::*;
use super::podspec::PROTOCOLS;
use super::util::*;
use super::{unknown, Decoded, Strategy};
use crate::error::FieldError;

fn validate_host(host: &str, path: &str, errs: &mut Vec<FieldError>) {
    if parse_ip(host).is_some() {
        errs.push(FieldError::invalid(
            path,
            host,
            "must be a DNS name, not an IP address",
        ));
    }
    if host.contains('*') {
        errs.extend(invalid_each(
            path,
            host,
            is_wildcard_dns1123_subdomain(host),
        ));
    } else {
        errs.extend(invalid_each(path, host, is_dns1123_subdomain(host)));
    }
}

fn validate_backend(b: &Value, path: &str, errs: &mut Vec<FieldError>) {
    match (get(b, "resource"), get(b, "service")) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            path,
            "",
            "cannot set both resource and service backends",
        )),
        (Some(r), None) => {
            let rp = child(path, "resource");
            for k in ["kind", "name"] {
                if s(r, k).is_empty() {
                    errs.push(FieldError::required(child(&rp, k), ""));
                }
            }
        }
        (None, Some(svc)) => {
            let name = s(svc, "name");
            if name.is_empty() {
                errs.push(FieldError::required(child(path, "service.name"), ""));
            } else {
                errs.extend(invalid_each(
                    &child(path, "service.name"),
                    name,
                    name_is_dns1035_label(name, false),
                ));
            }
            let port = svc.get("port").unwrap_or(&Value::Null);
            let (pname, num) = (s(port, "name"), int(port, "number").unwrap_or(0));
            match (pname.is_empty(), num == 0) {
                (false, false) => errs.push(FieldError::invalid(
                    path,
                    "",
                    "cannot set both port name & port number",
                )),
                (false, true) => errs.extend(invalid_each(
                    &child(path, "service.port.name"),
                    pname,
                    is_valid_port_name(pname),
                )),
                (true, false) => errs.extend(
                    is_valid_port_num(num)
                        .into_iter()
                        .map(|m| FieldError::invalid(child(path, "service.port.number"), num, m)),
                ),
                (true, true) => errs.push(FieldError::required(
                    path,
                    "port name or number is required",
                )),
            }
        }
        (None, None) => errs.push(FieldError::invalid(
            path,
            "",
            "resource or service backend is required",
        )),
    }
}

fn validate_path(p: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let v = s(p, "path");
    match opt_s(p, "pathType") {
        None => {
            errs.push(FieldError::required(
                child(path, "pathType"),
                "pathType must be specified",
            ));
            return;
        }
        Some("Exact" | "Prefix") => {
            if !v.starts_with('/') {
                errs.push(FieldError::invalid(
                    child(path, "path"),
                    v,
                    "must be an absolute path",
                ));
            }
            for bad in ["//", "/./", "/../", "%2f", "%2F"] {
                if v.contains(bad) {
                    errs.push(FieldError::invalid(
                        child(path, "path"),
                        v,
                        format!("must not contain '{bad}'"),
                    ));
                }
            }
            for bad in ["/..", "/."] {
                if v.ends_with(bad) {
                    errs.push(FieldError::invalid(
                        child(path, "path"),
                        v,
                        format!("cannot end with '{bad}'"),
                    ));
                }
            }
        }
        Some("ImplementationSpecific") => {
            if !v.is_empty() && !v.starts_with('/') {
                errs.push(FieldError::invalid(
                    child(path, "path"),
                    v,
                    "must be an absolute path",
                ));
            }
        }
        Some(other) => errs.push(FieldError::not_supported(
            child(path, "pathType"),
            other,
            &["Exact", "ImplementationSpecific", "Prefix"],
        )),
    }
    validate_backend(
        p.get("backend").unwrap_or(&Value::Null),
        &child(path, "backend"),
        errs,
    );
}

/// Ingresses.
pub struct IngressStrategy;

impl Strategy for IngressStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<Ingress>(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        put(obj, "status", json!({ "loadBalancer": {} }));
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_from_old(new, old, "status");
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        keep_all_but_status(new, old);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let rules = arr(spec, "rules");
        if rules.is_empty() && get(spec, "defaultBackend").is_none() {
            errs.push(FieldError::invalid(
                "spec",
                spec.get("rules").cloned().unwrap_or(Value::Null),
                "either `defaultBackend` or `rules` must be specified",
            ));
        }
        if let Some(b) = get(spec, "defaultBackend") {
            validate_backend(b, "spec.defaultBackend", &mut errs);
        }
        for (i, r) in rules.iter().enumerate() {
            let rp = index("spec.rules", i);
            let host = s(r, "host");
            if !host.is_empty() {
                validate_host(host, &child(&rp, "host"), &mut errs);
            }
            if let Some(http) = get(r, "http") {
                let paths = arr(http, "paths");
                if paths.is_empty() {
                    errs.push(FieldError::required(child(&rp, "http.paths"), ""));
                }
                for (j, p) in paths.iter().enumerate() {
                    validate_path(p, &index(&child(&rp, "http.paths"), j), &mut errs);
                }
            }
        }
        for (i, t) in arr(spec, "tls").iter().enumerate() {
            let tp = index("spec.tls", i);
            for (j, h) in strs(t, "hosts").iter().enumerate() {
                validate_host(h, &index(&child(&tp, "hosts"), j), &mut errs);
            }
            let secret = s(t, "secretName");
            if !secret.is_empty() {
                errs.extend(invalid_each(
                    &child(&tp, "secretName"),
                    secret,
                    name_is_dns_subdomain(secret, false),
                ));
            }
        }
        if let Some(c) = opt_s(spec, "ingressClassName") {
            errs.extend(invalid_each(
                "spec.ingressClassName",
                c,
                name_is_dns_subdomain(c, false),
            ));
        }
        errs
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let ingress = new
            .pointer("/status/loadBalancer/ingress")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        for (i, ing) in ingress.iter().enumerate() {
            let p = index("status.loadBalancer.ingress", i);
            let ip = s(ing, "ip");
            if !ip.is_empty() {
                errs.extend(invalid_each(&child(&p, "ip"), ip, is_valid_ip(ip)));
            }
            let host = s(ing, "hostname");
            if !host.is_empty() {
                errs.extend(invalid_each(
                    &child(&p, "hostname"),
                    host,
                    is_dns1123_subdomain(host),
                ));
            }
        }
        errs
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// IngressClasses.
pub struct IngressClassStrategy;

impl Strategy for IngressClassStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<IngressClass>(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let c = s(spec, "controller");
        if c.len() > 250 {
            errs.push(too_long_chars("spec.controller", 250));
        }
        match c.split_once('/') {
            _ if c.is_empty() => errs.push(FieldError::required("spec.controller", "")),
            Some((host, path)) if !host.is_empty() && !path.is_empty() => {
                errs.extend(invalid_each(
                    "spec.controller",
                    host,
                    is_dns1123_subdomain(host),
                ));
                let ok = path
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/-._~%!$&'()*+,;=:".contains(&b));
                if !ok {
                    errs.push(FieldError::invalid(
                        "spec.controller",
                        path,
                        regex_error(
                            "must be a valid path",
                            "^[A-Za-z0-9/\\-._~%!$&'()*+,;=:]+$",
                            &[],
                        ),
                    ));
                }
            }
            _ => errs.push(FieldError::invalid(
                "spec.controller",
                c,
                "must be a domain-prefixed path (such as \"acme.io/foo\")",
            )),
        }
        if let Some(p) = get(spec, "parameters") {
            for k in ["kind", "name"] {
                if s(p, k).is_empty() {
                    errs.push(FieldError::required(child("spec.parameters", k), ""));
                }
            }
            if let Some(scope) = opt_s(p, "scope") {
                errs.extend(one_of(
                    "spec.parameters.scope",
                    scope,
                    &["Cluster", "Namespace"],
                    true,
                ));
                if scope == "Namespace" && s(p, "namespace").is_empty() {
                    errs.push(FieldError::required(
                        "spec.parameters.namespace",
                        "`parameters.scope` is set to 'Namespace'",
                    ));
                }
            }
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        let (ns, os) = (
            new.get("spec").unwrap_or(&Value::Null),
            old.get("spec").unwrap_or(&Value::Null),
        );
        errs.extend(immutable(ns, os, "controller", "spec.controller"));
        errs
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// NetworkPolicies.
pub struct NetworkPolicyStrategy;

fn validate_port(p: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(proto) = opt_s(p, "protocol") {
        if !PROTOCOLS.contains(&proto) {
            errs.push(FieldError::not_supported(
                child(path, "protocol"),
                proto,
                &["TCP", "UDP", "SCTP"],
            ));
        }
    }
    let end = int(p, "endPort");
    match get(p, "port") {
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(0);
            errs.extend(
                is_valid_port_num(n)
                    .into_iter()
                    .map(|m| FieldError::invalid(child(path, "port"), n, m)),
            );
            if let Some(e) = end {
                if e < n {
                    errs.push(FieldError::invalid(
                        child(path, "endPort"),
                        n,
                        "must be greater than or equal to `port`",
                    ));
                }
                errs.extend(
                    is_valid_port_num(e)
                        .into_iter()
                        .map(|m| FieldError::invalid(child(path, "endPort"), e, m)),
                );
            }
        }
        Some(Value::String(name)) => {
            if let Some(e) = end {
                errs.push(FieldError::invalid(
                    child(path, "endPort"),
                    e,
                    "may not be specified when `port` is non-numeric",
                ));
            }
            errs.extend(invalid_each(
                &child(path, "port"),
                name,
                is_valid_port_name(name),
            ));
        }
        _ => {
            if let Some(e) = end {
                errs.push(FieldError::invalid(
                    child(path, "endPort"),
                    e,
                    "may not be specified when `port` is not specified",
                ));
            }
        }
    }
}

fn validate_peer(peer: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let mut n = 0;
    for k in ["podSelector", "namespaceSelector"] {
        if let Some(sel) = get(peer, k) {
            n += 1;
            errs.extend(validate_label_selector(sel, &child(path, k)));
        }
    }
    if let Some(b) = get(peer, "ipBlock") {
        n += 1;
        let bp = child(path, "ipBlock");
        let cidr = s(b, "cidr");
        if cidr.is_empty() {
            errs.push(FieldError::required(child(&bp, "cidr"), ""));
        } else {
            errs.extend(invalid_each(&child(&bp, "cidr"), cidr, is_valid_cidr(cidr)));
            if let Some((net, bits)) = parse_cidr(cidr) {
                for (i, ex) in strs(b, "except").iter().enumerate() {
                    let ep = index(&child(&bp, "except"), i);
                    let msgs = is_valid_cidr(ex);
                    if !msgs.is_empty() {
                        errs.extend(invalid_each(&ep, ex, msgs));
                        continue;
                    }
                    let (eip, ebits) = parse_cidr(ex).unwrap_or((net, 0));
                    if !contains(net, bits, eip) || bits >= ebits {
                        errs.push(FieldError::invalid(
                            &ep,
                            *ex,
                            "must be a strict subset of `cidr`",
                        ));
                    }
                }
            }
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a peer"));
    } else if n > 1 && get(peer, "ipBlock").is_some() {
        errs.push(FieldError::forbidden(
            path,
            "may not specify both ipBlock and another peer",
        ));
    }
}

fn contains(net: std::net::IpAddr, bits: u8, ip: std::net::IpAddr) -> bool {
    let (a, b, width) = match (net, ip) {
        (std::net::IpAddr::V4(a), std::net::IpAddr::V4(b)) => {
            (u128::from(u32::from(a)), u128::from(u32::from(b)), 32)
        }
        (std::net::IpAddr::V6(a), std::net::IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    let shift = width - u32::from(bits);
    shift >= 128 || a >> shift == b >> shift
}

impl Strategy for NetworkPolicyStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<NetworkPolicy>(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj_mut(obj, "spec") else {
            return;
        };
        for k in ["ingress", "egress"] {
            each_mut(spec, k, |rule| {
                each_mut(rule, "ports", |p| set_default(p, "protocol", json!("TCP")))
            });
        }
        if !non_empty(spec, "policyTypes") {
            let types = if non_empty(spec, "egress") {
                json!(["Ingress", "Egress"])
            } else {
                json!(["Ingress"])
            };
            spec["policyTypes"] = types;
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        errs.extend(validate_label_selector(
            spec.get("podSelector").unwrap_or(&Value::Null),
            "spec.podSelector",
        ));
        for (dir, peers) in [("ingress", "from"), ("egress", "to")] {
            for (i, rule) in arr(spec, dir).iter().enumerate() {
                let rp = index(&child("spec", dir), i);
                for (j, p) in arr(rule, "ports").iter().enumerate() {
                    validate_port(p, &index(&child(&rp, "ports"), j), &mut errs);
                }
                for (j, peer) in arr(rule, peers).iter().enumerate() {
                    validate_peer(peer, &index(&child(&rp, peers), j), &mut errs);
                }
            }
        }
        let types = strs(spec, "policyTypes");
        if types.len() > 2 {
            errs.push(FieldError::invalid(
                "spec.policyTypes",
                spec["policyTypes"].clone(),
                "may not specify more than two policyTypes",
            ));
        } else {
            for (i, t) in types.iter().enumerate() {
                if !["Ingress", "Egress"].contains(t) {
                    errs.push(FieldError::not_supported(
                        index("spec.policyTypes", i),
                        *t,
                        &["Ingress", "Egress"],
                    ));
                }
            }
        }
        errs
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldErrorType;

    use crate::strategy::error_fields as fields;

    #[test]
    fn ingresses() {
        let ing = json!({ "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": { "name": "i", "namespace": "d" },
            "spec": { "rules": [{ "host": "web.example.com", "http": { "paths": [
                { "path": "/", "pathType": "Prefix", "backend": { "service": { "name": "web", "port": { "number": 80 } } } },
                { "path": "api", "pathType": "Exact", "backend": { "service": { "name": "api", "port": { "name": "http", "number": 80 } } } },
                { "path": "/x", "backend": {} }
            ] } }, { "host": "10.0.0.1" }] } });
        assert_eq!(
            fields(IngressStrategy.validate(&ing)),
            vec![
                (
                    "spec.rules[0].http.paths[1].path".into(),
                    FieldErrorType::Invalid
                ),
                (
                    "spec.rules[0].http.paths[1].backend".into(),
                    FieldErrorType::Invalid
                ),
                (
                    "spec.rules[0].http.paths[2].pathType".into(),
                    FieldErrorType::Required
                ),
                ("spec.rules[1].host".into(), FieldErrorType::Invalid),
            ]
        );
        let empty = json!({ "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": { "name": "i" }, "spec": {} });
        assert_eq!(
            fields(IngressStrategy.validate(&empty)),
            vec![("spec".into(), FieldErrorType::Invalid)]
        );
    }

    #[test]
    fn ingress_classes() {
        let ic = json!({ "apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": { "name": "nginx" },
            "spec": { "controller": "k8s.io/ingress-nginx" } });
        assert!(IngressClassStrategy.validate(&ic).is_empty());
        let mut bad = ic.clone();
        bad["spec"]["controller"] = json!("nginx");
        assert_eq!(
            fields(IngressClassStrategy.validate_update(&bad, &ic)),
            vec![
                ("spec.controller".into(), FieldErrorType::Invalid),
                ("spec.controller".into(), FieldErrorType::Invalid)
            ]
        );
    }

    #[test]
    fn network_policies() {
        let mut np = json!({ "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": { "name": "n", "namespace": "d" },
            "spec": { "podSelector": {}, "ingress": [{ "ports": [{ "port": 80 }], "from": [{ "ipBlock": { "cidr": "10.0.0.0/8", "except": ["10.1.0.0/16", "11.0.0.0/16"] } }, {}] }],
                      "egress": [{ "to": [{ "namespaceSelector": {} }] }] } });
        NetworkPolicyStrategy.default(&mut np);
        assert_eq!(np["spec"]["policyTypes"], json!(["Ingress", "Egress"]));
        assert_eq!(np["spec"]["ingress"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(
            fields(NetworkPolicyStrategy.validate(&np)),
            vec![
                (
                    "spec.ingress[0].from[0].ipBlock.except[1]".into(),
                    FieldErrorType::Invalid
                ),
                ("spec.ingress[0].from[1]".into(), FieldErrorType::Required),
            ]
        );
    }
}
