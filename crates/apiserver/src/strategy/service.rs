//! Services. ClusterIP and NodePort allocation
//! belong to the caller; this keeps what was allocated across updates
//! (upstream's `patchAllocatedValues`), keeps `clusterIP` and `clusterIPs` in
//! step, and drops what a type change makes meaningless.

use std::collections::HashSet;

use k8s_openapi::api::core::v1::Service;
use serde_json::{json, Value};

use super::container::port_num_or_name;
use super::meta::validate_labels;
use super::names::*;
use super::podspec::PROTOCOLS;
use super::util::*;
use super::{unknown, Decoded, Strategy};
use crate::error::FieldError;

/// The NodePort range of a default kube-apiserver.
pub const NODE_PORT_RANGE: (i64, i64) = (30000, 32767);

fn ty(spec: &Value) -> &str {
    match s(spec, "type") {
        "" => "ClusterIP",
        t => t,
    }
}

fn needs_cluster_ip(spec: &Value) -> bool {
    ty(spec) != "ExternalName"
}

fn needs_node_port(spec: &Value) -> bool {
    matches!(ty(spec), "NodePort" | "LoadBalancer")
}

fn needs_hc_node_port(spec: &Value) -> bool {
    ty(spec) == "LoadBalancer" && s(spec, "externalTrafficPolicy") == "Local"
}

fn externally_accessible(spec: &Value) -> bool {
    matches!(ty(spec), "NodePort" | "LoadBalancer")
        || ty(spec) == "ClusterIP" && non_empty(spec, "externalIPs")
}

fn is_headless(spec: &Value) -> bool {
    s(spec, "clusterIP") == "None" || strs(spec, "clusterIPs") == ["None"]
}

fn spec_of(v: &Value) -> &Value {
    v.get("spec").unwrap_or(&Value::Null)
}

/// Upstream's `patchAllocatedValues`: a client resubmitting what it created
/// (without the allocated clusterIP or nodePorts) must not lose them.
fn patch_allocated_values(new: &mut Value, old: &Value) {
    let os = spec_of(old).clone();
    let Some(ns) = obj_mut(new, "spec") else {
        return;
    };
    if needs_cluster_ip(&os) && needs_cluster_ip(ns) {
        if s(ns, "clusterIP").is_empty() && !s(&os, "clusterIP").is_empty() {
            ns["clusterIP"] = os["clusterIP"].clone();
        }
        if !non_empty(ns, "clusterIPs") && non_empty(&os, "clusterIPs") {
            ns["clusterIPs"] = os["clusterIPs"].clone();
        }
    }
    if needs_node_port(&os) && needs_node_port(ns) {
        let ports = |v: &Value| {
            arr(v, "ports")
                .iter()
                .filter_map(|p| int(p, "nodePort"))
                .filter(|n| *n != 0)
                .collect::<HashSet<_>>()
        };
        let used: HashSet<i64> = ports(&os).intersection(&ports(ns)).copied().collect();
        let by_name: Vec<(String, i64)> = arr(&os, "ports")
            .iter()
            .map(|p| (s(p, "name").to_string(), int(p, "nodePort").unwrap_or(0)))
            .collect();
        each_mut(ns, "ports", |p| {
            if int(p, "nodePort").unwrap_or(0) == 0 {
                if let Some((_, n)) = by_name.iter().find(|(name, _)| name == s(p, "name")) {
                    if *n != 0 && !used.contains(n) {
                        put(p, "nodePort", json!(n));
                    }
                }
            }
        });
    }
    if needs_hc_node_port(&os)
        && needs_hc_node_port(ns)
        && int(ns, "healthCheckNodePort").unwrap_or(0) == 0
    {
        keep_from_old(ns, &os, "healthCheckNodePort");
    }
}

/// Upstream's `NormalizeClusterIPs`.
fn normalize_cluster_ips(new: &mut Value, old: Option<&Value>) {
    let os = old.map(spec_of).cloned();
    let Some(ns) = obj_mut(new, "spec") else {
        return;
    };
    let ip = s(ns, "clusterIP").to_string();
    match os {
        None => {
            if !ip.is_empty() && !non_empty(ns, "clusterIPs") {
                ns["clusterIPs"] = json!([ip]);
            }
        }
        Some(os) => {
            let oip = s(&os, "clusterIP");
            if non_empty(&os, "clusterIPs") && !non_empty(ns, "clusterIPs") && oip == ip {
                ns["clusterIPs"] = os["clusterIPs"].clone();
            }
            if oip != ip {
                let same_ips = same(ns.get("clusterIPs"), os.get("clusterIPs"));
                if !oip.is_empty() && ip.is_empty() && same_ips {
                    ns.as_object_mut().map(|m| m.remove("clusterIPs"));
                }
                if !ip.is_empty() && same_ips {
                    ns["clusterIPs"] = json!([ip]);
                }
            }
        }
    }
}

/// Upstream's `dropTypeDependentFields`: wipe what a new type no longer
/// uses, when the user did not change it.
fn drop_type_dependent_fields(new: &mut Value, old: &Value) {
    let os = spec_of(old).clone();
    let Some(ns) = obj_mut(new, "spec") else {
        return;
    };
    let remove = |ns: &mut Value, k: &str| {
        ns.as_object_mut().map(|m| m.remove(k));
    };
    if needs_cluster_ip(&os) && !needs_cluster_ip(ns) {
        if same(ns.get("clusterIP"), os.get("clusterIP"))
            && same(ns.get("clusterIPs"), os.get("clusterIPs"))
        {
            remove(ns, "clusterIP");
            remove(ns, "clusterIPs");
        }
        for k in ["ipFamilies", "ipFamilyPolicy"] {
            if same(ns.get(k), os.get(k)) {
                remove(ns, k);
            }
        }
    }
    let node_ports = |v: &Value| {
        arr(v, "ports")
            .iter()
            .map(|p| int(p, "nodePort").unwrap_or(0))
            .collect::<Vec<_>>()
    };
    if needs_node_port(&os) && !needs_node_port(ns) && node_ports(ns) == node_ports(&os) {
        each_mut(ns, "ports", |p| {
            p.as_object_mut().map(|m| m.remove("nodePort"));
        });
    }
    if needs_hc_node_port(&os)
        && !needs_hc_node_port(ns)
        && same(ns.get("healthCheckNodePort"), os.get("healthCheckNodePort"))
    {
        remove(ns, "healthCheckNodePort");
    }
    if ty(ns) != "LoadBalancer" {
        for k in ["allocateLoadBalancerNodePorts", "loadBalancerClass"] {
            if same(ns.get(k), os.get(k)) {
                remove(ns, k);
            }
        }
    }
    if !externally_accessible(ns)
        && same(
            ns.get("externalTrafficPolicy"),
            os.get("externalTrafficPolicy"),
        )
    {
        remove(ns, "externalTrafficPolicy");
    }
    if ty(ns) != "LoadBalancer" {
        if let Some(st) = obj_mut(new, "status") {
            st["loadBalancer"] = json!({});
        }
    }
}

fn validate_cluster_ips(spec: &Value, errs: &mut Vec<FieldError>) {
    if ty(spec) == "ExternalName" {
        return;
    }
    let ip = s(spec, "clusterIP");
    let ips = strs(spec, "clusterIPs");
    let all = spec.get("clusterIPs").cloned().unwrap_or(Value::Null);
    if !ip.is_empty() {
        match ips.first() {
            None => errs.push(FieldError::required("spec.clusterIPs", "")),
            Some(first) if *first != ip => errs.push(FieldError::invalid(
                "spec.clusterIPs",
                all.clone(),
                "first value must match `clusterIP`",
            )),
            _ => {}
        }
    } else if !ips.is_empty() {
        errs.push(FieldError::invalid(
            "spec.clusterIPs",
            all.clone(),
            "must be empty when `clusterIP` is not specified",
        ));
    }
    let mut seen = HashSet::new();
    for (i, f) in strs(spec, "ipFamilies").iter().enumerate() {
        if !["IPv4", "IPv6"].contains(f) {
            errs.push(FieldError::not_supported(
                index("spec.ipFamilies", i),
                *f,
                &["IPv4", "IPv6"],
            ));
        }
        if !seen.insert(*f) {
            errs.push(FieldError::duplicate(index("spec.ipFamilies", i), *f));
        }
    }
    if let Some(p) = opt_s(spec, "ipFamilyPolicy") {
        errs.extend(one_of(
            "spec.ipFamilyPolicy",
            p,
            &["PreferDualStack", "RequireDualStack", "SingleStack"],
            true,
        ));
    }
    let mut bad = false;
    for (i, v) in ips.iter().enumerate() {
        if i == 0 && *v == "None" {
            if ips.len() > 1 {
                bad = true;
                errs.push(FieldError::invalid(
                    "spec.clusterIPs",
                    all.clone(),
                    "'None' must be the first and only value",
                ));
            }
            continue;
        }
        let msgs = is_valid_ip(v);
        bad |= !msgs.is_empty();
        errs.extend(invalid_each(&index("spec.clusterIPs", i), v, msgs));
    }
    if ips.len() > 2 {
        errs.push(FieldError::invalid(
            "spec.clusterIPs",
            all.clone(),
            "may only hold up to 2 values",
        ));
    }
    if bad {
        return;
    }
    if ips.len() == 2
        && parse_ip(ips[0]).map(|a| a.is_ipv4()) == parse_ip(ips[1]).map(|a| a.is_ipv4())
    {
        errs.push(FieldError::invalid(
            "spec.clusterIPs",
            all,
            "may specify no more than one IP for each IP family",
        ));
    }
    if !is_headless(spec) {
        for (i, (v, fam)) in ips.iter().zip(strs(spec, "ipFamilies")).enumerate() {
            let v6 = parse_ip(v).is_some_and(|a| a.is_ipv6());
            if fam == "IPv4" && v6 || fam == "IPv6" && !v6 {
                let want = if fam == "IPv4" { "IPv4" } else { "IPv6" };
                errs.push(FieldError::invalid(
                    index("spec.clusterIPs", i),
                    *v,
                    format!("expected an {want} value as indicated by `ipFamilies[{i}]`"),
                ));
            }
        }
    }
}

fn validate_service(obj: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let spec = spec_of(obj);
    let name = obj
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    // Upstream holds Service names to DNS-1035 (a letter first); the shared
    // name rule already reported anything that is not even a DNS-1123 label.
    if !name.is_empty() && is_dns1123_label(name).is_empty() {
        errs.extend(invalid_each("metadata.name", name, is_dns1035_label(name)));
    }
    let t = s(spec, "type");
    let headless = is_headless(spec);
    if arr(spec, "ports").is_empty() && !headless && t != "ExternalName" {
        errs.push(FieldError::required("spec.ports", ""));
    }
    match t {
        "LoadBalancer" | "NodePort" if headless => errs.push(FieldError::invalid(
            "spec.clusterIPs[0]",
            "None",
            format!("may not be set to 'None' for {t} services"),
        )),
        "ExternalName" => {
            if non_empty(spec, "clusterIPs") {
                errs.push(FieldError::forbidden(
                    "spec.clusterIPs",
                    "may not be set for ExternalName services",
                ));
            }
            for k in ["ipFamilies", "ipFamilyPolicy"] {
                if non_empty(spec, k) {
                    errs.push(FieldError::forbidden(
                        child("spec", k),
                        "may not be set for ExternalName services",
                    ));
                }
            }
            let cname = s(spec, "externalName").trim_end_matches('.');
            if cname.is_empty() {
                errs.push(FieldError::required("spec.externalName", ""));
            } else {
                errs.extend(invalid_each(
                    "spec.externalName",
                    cname,
                    is_dns1123_subdomain(cname),
                ));
            }
        }
        _ => {}
    }
    let ports = arr(spec, "ports");
    let mut names = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = index("spec.ports", i);
        let pname = s(p, "name");
        if ports.len() > 1 && pname.is_empty() {
            errs.push(FieldError::required(child(&pp, "name"), ""));
        } else if !pname.is_empty() {
            errs.extend(invalid_each(
                &child(&pp, "name"),
                pname,
                is_dns1123_label(pname),
            ));
            if !names.insert(pname) {
                errs.push(FieldError::duplicate(child(&pp, "name"), pname));
            }
        }
        let port = int(p, "port").unwrap_or(0);
        errs.extend(
            is_valid_port_num(port)
                .into_iter()
                .map(|m| FieldError::invalid(child(&pp, "port"), port, m)),
        );
        errs.extend(one_of(
            &child(&pp, "protocol"),
            s(p, "protocol"),
            PROTOCOLS,
            true,
        ));
        port_num_or_name(p.get("targetPort"), &child(&pp, "targetPort"), &mut errs);
        if let Some(ap) = opt_s(p, "appProtocol") {
            errs.extend(invalid_each(
                &child(&pp, "appProtocol"),
                ap,
                is_qualified_name(ap),
            ));
        }
    }
    if let Some(sel) = get(spec, "selector") {
        errs.extend(validate_labels(Some(sel), "spec.selector"));
    }
    let aff = s(spec, "sessionAffinity");
    errs.extend(one_of(
        "spec.sessionAffinity",
        aff,
        &["ClientIP", "None"],
        true,
    ));
    if aff == "ClientIP" {
        let t = spec
            .pointer("/sessionAffinityConfig/clientIP/timeoutSeconds")
            .and_then(Value::as_i64);
        match t {
            None => errs.push(FieldError::required(
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                "",
            )),
            Some(t) if !(1..=86400).contains(&t) => errs.push(FieldError::invalid(
                "spec.sessionAffinityConfig.clientIP.timeoutSeconds",
                t,
                "must be greater than 0 and less than 86400",
            )),
            _ => {}
        }
    } else if aff == "None" && get(spec, "sessionAffinityConfig").is_some() {
        errs.push(FieldError::forbidden(
            "spec.sessionAffinityConfig",
            "must not be set when session affinity is None",
        ));
    }
    validate_cluster_ips(spec, &mut errs);
    for (i, ip) in strs(spec, "externalIPs").iter().enumerate() {
        let msgs = is_valid_ip(ip);
        if msgs.is_empty() {
            errs.extend(non_special_ip(ip, &index("spec.externalIPs", i)));
        }
        errs.extend(invalid_each(&index("spec.externalIPs", i), ip, msgs));
    }
    errs.extend(one_of(
        "spec.type",
        t,
        &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        true,
    ));
    let mut node_ports = HashSet::new();
    let mut port_keys = HashSet::new();
    for (i, p) in ports.iter().enumerate() {
        let pp = index("spec.ports", i);
        let np = int(p, "nodePort").unwrap_or(0);
        if np != 0 {
            if t == "ClusterIP" {
                errs.push(FieldError::forbidden(
                    child(&pp, "nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            } else if needs_node_port(spec)
                && !(NODE_PORT_RANGE.0..=NODE_PORT_RANGE.1).contains(&np)
            {
                errs.push(FieldError::invalid(child(&pp, "nodePort"), np, "provided port is not in the valid range. The range of valid ports is 30000-32767"));
            }
            if !node_ports.insert((s(p, "protocol"), np)) {
                errs.push(FieldError::duplicate(child(&pp, "nodePort"), np));
            }
        }
        let key = (s(p, "protocol"), int(p, "port").unwrap_or(0));
        if !port_keys.insert(key) {
            errs.push(FieldError::duplicate(
                &pp,
                json!({ "port": key.1, "protocol": key.0 }),
            ));
        }
    }
    if non_empty(spec, "loadBalancerSourceRanges") {
        if t != "LoadBalancer" {
            errs.push(FieldError::forbidden(
                "spec.LoadBalancerSourceRanges",
                "may only be used when `type` is 'LoadBalancer'",
            ));
        }
        for (i, r) in strs(spec, "loadBalancerSourceRanges").iter().enumerate() {
            errs.extend(invalid_each(
                &index("spec.LoadBalancerSourceRanges", i),
                r,
                is_valid_cidr(r.trim()),
            ));
        }
    }
    if get(spec, "allocateLoadBalancerNodePorts").is_some() && t != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            "spec.allocateLoadBalancerNodePorts",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    if t == "LoadBalancer" && get(spec, "allocateLoadBalancerNodePorts").is_none() {
        errs.push(FieldError::required("allocateLoadBalancerNodePorts", ""));
    }
    if get(spec, "loadBalancerClass").is_some() && t != "LoadBalancer" {
        errs.push(FieldError::forbidden(
            "spec.loadBalancerClass",
            "may only be used when `type` is 'LoadBalancer'",
        ));
    }
    let etp = s(spec, "externalTrafficPolicy");
    if !externally_accessible(spec) {
        if !etp.is_empty() {
            errs.push(FieldError::invalid(
                "spec.externalTrafficPolicy",
                etp,
                "may only be set for externally-accessible services",
            ));
        }
    } else {
        errs.extend(one_of(
            "spec.externalTrafficPolicy",
            etp,
            &["Cluster", "Local"],
            true,
        ));
    }
    if !needs_hc_node_port(spec) {
        if let Some(hc) = int(spec, "healthCheckNodePort").filter(|h| *h != 0) {
            errs.push(FieldError::invalid("spec.healthCheckNodePort", hc, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"));
        }
    }
    match opt_s(spec, "internalTrafficPolicy") {
        None if matches!(t, "ClusterIP" | "NodePort" | "LoadBalancer") => {
            errs.push(FieldError::required("spec.internalTrafficPolicy", ""))
        }
        Some(p) => errs.extend(one_of(
            "spec.internalTrafficPolicy",
            p,
            &["Cluster", "Local"],
            true,
        )),
        None => {}
    }
    if let Some(td) = opt_s(spec, "trafficDistribution") {
        errs.extend(one_of(
            "spec.trafficDistribution",
            td,
            &["PreferClose", "PreferSameZone", "PreferSameNode"],
            true,
        ));
    }
    errs
}

/// Upstream's `ValidateNonSpecialIP`, less the loopback rule: wharf's own
/// `kubernetes` endpoints point at 127.0.0.1 when it listens there.
pub(super) fn non_special_ip(ip: &str, path: &str) -> Vec<FieldError> {
    let Some(a) = parse_ip(ip) else {
        return vec![FieldError::invalid(path, ip, "must be a valid IP address")];
    };
    let mut errs = Vec::new();
    if a.is_unspecified() {
        errs.push(FieldError::invalid(
            path,
            ip,
            format!("may not be unspecified ({ip})"),
        ));
    }
    let link_local = match a {
        std::net::IpAddr::V4(v) => v.is_link_local(),
        std::net::IpAddr::V6(v) => v.segments()[0] & 0xffc0 == 0xfe80,
    };
    if link_local {
        errs.push(FieldError::invalid(
            path,
            ip,
            "may not be in the link-local range (169.254.0.0/16, fe80::/10)",
        ));
    }
    errs
}

/// Services.
pub struct ServiceStrategy;

impl Strategy for ServiceStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<Service>(obj)
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        put(obj, "status", json!({ "loadBalancer": {} }));
        normalize_cluster_ips(obj, None);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_from_old(new, old, "status");
        patch_allocated_values(new, old);
        normalize_cluster_ips(new, Some(old));
        drop_type_dependent_fields(new, old);
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        keep_all_but_status(new, old);
    }

    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj_mut(obj, "spec") else {
            return;
        };
        set_default_str(spec, "sessionAffinity", "None");
        match s(spec, "sessionAffinity") {
            "None" => {
                spec.as_object_mut()
                    .map(|m| m.remove("sessionAffinityConfig"));
            }
            "ClientIP"
                if spec
                    .pointer("/sessionAffinityConfig/clientIP/timeoutSeconds")
                    .is_none_or(Value::is_null) =>
            {
                spec["sessionAffinityConfig"] = json!({ "clientIP": { "timeoutSeconds": 10800 } });
            }
            _ => {}
        }
        set_default_str(spec, "type", "ClusterIP");
        each_mut(spec, "ports", |p| {
            set_default_str(p, "protocol", "TCP");
            let unset = match p.get("targetPort") {
                None | Some(Value::Null) => true,
                Some(Value::Number(n)) => n.as_i64() == Some(0),
                Some(Value::String(s)) => s.is_empty(),
                _ => false,
            };
            if unset {
                let port = p.get("port").cloned().unwrap_or(json!(0));
                put(p, "targetPort", port);
            }
        });
        if externally_accessible(spec) {
            set_default_str(spec, "externalTrafficPolicy", "Cluster");
        }
        if matches!(ty(spec), "ClusterIP" | "NodePort" | "LoadBalancer") {
            set_default(spec, "internalTrafficPolicy", json!("Cluster"));
        }
        if ty(spec) == "LoadBalancer" {
            set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
        }
        if needs_cluster_ip(spec) {
            // What the allocator of a single-stack IPv4 cluster records.
            let headless_without_selector = is_headless(spec) && !non_empty(spec, "selector");
            let policy = if headless_without_selector {
                "PreferDualStack"
            } else {
                "SingleStack"
            };
            set_default(spec, "ipFamilyPolicy", json!(policy));
            let v6 = parse_ip(s(spec, "clusterIP")).is_some_and(|a| a.is_ipv6());
            if !non_empty(spec, "ipFamilies") {
                spec["ipFamilies"] = json!([if v6 { "IPv6" } else { "IPv4" }]);
            }
        }
        let lb = ty(spec) == "LoadBalancer";
        if lb {
            if let Some(ing) = at_mut(obj, &["status", "loadBalancer"]) {
                each_mut(ing, "ingress", |i| {
                    if !s(i, "ip").is_empty() {
                        set_default(i, "ipMode", json!("VIP"));
                    }
                });
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        validate_service(obj)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let (ns, os) = (spec_of(new), spec_of(old));
        let external = ty(ns) == "ExternalName" || ty(os) == "ExternalName";
        let both_headless = is_headless(ns) && is_headless(os);
        if !(external || both_headless) {
            let (n, o) = (strs(ns, "clusterIPs"), strs(os, "clusterIPs"));
            let all = ns.get("clusterIPs").cloned().unwrap_or(Value::Null);
            if n.len() == o.len() {
                for i in 0..o.len() {
                    if o[i] != n[i] {
                        errs.push(FieldError::invalid(
                            index("spec.clusterIPs", i),
                            all.clone(),
                            "may not change once set",
                        ));
                    }
                }
            } else if o.len() > n.len() {
                if n.is_empty() {
                    errs.push(FieldError::invalid(
                        "spec.clusterIPs[0]",
                        all.clone(),
                        "primary clusterIP can not be unset",
                    ));
                } else if n[0] != o[0] {
                    errs.push(FieldError::invalid(
                        "spec.clusterIPs[0]",
                        all.clone(),
                        "may not change once set",
                    ));
                }
                if n.len() == 1 && s(ns, "ipFamilyPolicy") != "SingleStack" {
                    errs.push(FieldError::invalid("spec.clusterIPs[0]", all, "`ipFamilyPolicy` must be set to 'SingleStack' when releasing the secondary clusterIP"));
                }
            } else if !o.is_empty() && n[0] != o[0] {
                errs.push(FieldError::invalid(
                    "spec.clusterIPs[0]",
                    all,
                    "may not change once set",
                ));
            }
            let (nf, of) = (strs(ns, "ipFamilies"), strs(os, "ipFamilies"));
            let changed = if nf.len() == of.len() {
                nf != of
            } else {
                !nf.is_empty() && !of.is_empty() && nf[0] != of[0]
            };
            if changed {
                errs.push(FieldError::invalid(
                    "spec.ipFamilies[0]",
                    ns.get("ipFamilies").cloned().unwrap_or(Value::Null),
                    "may not change once set",
                ));
            }
        }
        if ty(ns) == "LoadBalancer"
            && ty(os) == "LoadBalancer"
            && !same(ns.get("loadBalancerClass"), os.get("loadBalancerClass"))
        {
            errs.push(FieldError::invalid(
                "spec.loadBalancerClass",
                ns.get("loadBalancerClass").cloned().unwrap_or(Value::Null),
                "may not change once set",
            ));
        }
        errs.extend(validate_service(new));
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
                if parse_ip(host).is_some() {
                    errs.push(FieldError::invalid(
                        child(&p, "hostname"),
                        host,
                        "must be a DNS name, not an IP address",
                    ));
                }
            }
            if let Some(mode) = opt_s(ing, "ipMode") {
                if ip.is_empty() {
                    errs.push(FieldError::forbidden(
                        child(&p, "ipMode"),
                        "may not be specified when `ip` is not set",
                    ));
                }
                errs.extend(one_of(&child(&p, "ipMode"), mode, &["Proxy", "VIP"], true));
            }
        }
        errs
    }

    fn selectable_fields(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let spec = spec_of(obj);
        vec![
            ("spec.clusterIP", s(spec, "clusterIP").to_string()),
            ("spec.type", s(spec, "type").to_string()),
        ]
    }
}

#[cfg(test)]
#[path = "service_tests.rs"]
mod tests;
