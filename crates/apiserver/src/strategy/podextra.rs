//! The pod-level parts of upstream's `ValidatePodSpec`: scheduling
//! (affinity, tolerations, topology spread), DNS and security fields.

use std::collections::HashSet;

use serde_json::Value;

use super::container::{resource_list, validate_resources};
use super::meta::validate_label_selector;
use super::names::*;
use super::podspec::local_descending_path;
use super::util::*;
use crate::error::FieldError;

/// Everything pod-level besides containers and volumes.
pub fn validate_pod_extras(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(sc) = get(spec, "securityContext") {
        let p = child(path, "securityContext");
        validate_ids(sc, &p, errs);
        for (i, g) in arr(sc, "supplementalGroups").iter().enumerate() {
            let g = g.as_i64().unwrap_or(0);
            if !(0..=i64::from(i32::MAX)).contains(&g) {
                errs.push(FieldError::invalid(
                    index(&child(&p, "supplementalGroups"), i),
                    g,
                    inclusive_range_error(0, i64::from(i32::MAX)),
                ));
            }
        }
        if let Some(pol) = opt_s(sc, "fsGroupChangePolicy") {
            errs.extend(one_of(
                &child(&p, "fsGroupChangePolicy"),
                pol,
                &["OnRootMismatch", "Always"],
                true,
            ));
        }
        let mut seen = HashSet::new();
        for (i, sy) in arr(sc, "sysctls").iter().enumerate() {
            let sp = index(&child(&p, "sysctls"), i);
            let name = s(sy, "name");
            if name.is_empty() {
                errs.push(FieldError::required(child(&sp, "name"), ""));
            } else if !seen.insert(name) {
                errs.push(FieldError::duplicate(child(&sp, "name"), name));
            }
        }
        validate_profiles(sc, &p, errs);
    }
    if let Some(a) = get(spec, "affinity") {
        validate_affinity(a, &child(path, "affinity"), errs);
    }
    validate_dns_config(spec, path, errs);
    for (i, g) in arr(spec, "readinessGates").iter().enumerate() {
        let ct = s(g, "conditionType");
        errs.extend(invalid_each(
            &child(&index(&child(path, "readinessGates"), i), "conditionType"),
            ct,
            is_qualified_name(ct),
        ));
    }
    validate_topology_spread(
        arr(spec, "topologySpreadConstraints"),
        &child(path, "topologySpreadConstraints"),
        errs,
    );
    validate_tolerations(arr(spec, "tolerations"), &child(path, "tolerations"), errs);
    for (i, h) in arr(spec, "hostAliases").iter().enumerate() {
        let hp = index(&child(path, "hostAliases"), i);
        let ip = s(h, "ip");
        errs.extend(invalid_each(&child(&hp, "ip"), ip, is_valid_ip(ip)));
        for (j, name) in strs(h, "hostnames").iter().enumerate() {
            errs.extend(invalid_each(
                &index(&child(&hp, "hostnames"), j),
                name,
                is_dns1123_subdomain(name),
            ));
        }
    }
    if let Some(os) = get(spec, "os") {
        errs.extend(one_of(
            &child(&child(path, "os"), "name"),
            s(os, "name"),
            &["linux", "windows"],
            true,
        ));
    }
    let mut gates = HashSet::new();
    for (i, g) in arr(spec, "schedulingGates").iter().enumerate() {
        let gp = child(&index(&child(path, "schedulingGates"), i), "name");
        let name = s(g, "name");
        errs.extend(invalid_each(&gp, name, is_qualified_name(name)));
        if !gates.insert(name) {
            errs.push(FieldError::duplicate(gp, name));
        }
    }
    resource_list(spec.get("overhead"), &child(path, "overhead"), false, errs);
    if let Some(r) = get(spec, "resources") {
        validate_resources(r, &child(path, "resources"), errs);
    }
    let mut claims = HashSet::new();
    for (i, c) in arr(spec, "resourceClaims").iter().enumerate() {
        let cp = child(&index(&child(path, "resourceClaims"), i), "name");
        let name = s(c, "name");
        errs.extend(invalid_each(&cp, name, is_dns1123_label(name)));
        if !claims.insert(name) {
            errs.push(FieldError::duplicate(cp, name));
        }
    }
}

/// User and group ids must fit an int32 and not be negative.
pub fn validate_ids(sc: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for k in ["runAsUser", "runAsGroup", "fsGroup"] {
        if let Some(id) = int(sc, k) {
            if !(0..=i64::from(i32::MAX)).contains(&id) {
                errs.push(FieldError::invalid(
                    child(path, k),
                    id,
                    inclusive_range_error(0, i64::from(i32::MAX)),
                ));
            }
        }
    }
}

/// Upstream's seccomp and AppArmor profile checks.
pub fn validate_profiles(sc: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for k in ["seccompProfile", "appArmorProfile"] {
        let Some(prof) = get(sc, k) else { continue };
        let p = child(path, k);
        let what = if k == "seccompProfile" {
            "seccomp"
        } else {
            "apparmor"
        };
        match s(prof, "type") {
            "Localhost" => match opt_s(prof, "localhostProfile") {
                None => errs.push(FieldError::required(
                    child(&p, "localhostProfile"),
                    format!("must be set when {what} type is Localhost"),
                )),
                Some(lp) if k == "seccompProfile" => {
                    local_descending_path(lp, &child(&p, "localhostProfile"), errs)
                }
                Some(_) => {}
            },
            "RuntimeDefault" | "Unconfined" => {
                if get(prof, "localhostProfile").is_some() {
                    errs.push(FieldError::invalid(
                        child(&p, "localhostProfile"),
                        prof.clone(),
                        format!("can only be set when {what} type is Localhost"),
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                child(&p, "type"),
                other,
                &["Localhost", "RuntimeDefault", "Unconfined"],
            )),
        }
    }
}

fn validate_node_selector_term(term: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for (i, r) in arr(term, "matchExpressions").iter().enumerate() {
        let rp = index(&child(path, "matchExpressions"), i);
        let values = arr(r, "values");
        match s(r, "operator") {
            "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
                child(&rp, "values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            )),
            "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
                child(&rp, "values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            )),
            "Gt" | "Lt" => {
                if values.len() != 1 {
                    errs.push(FieldError::required(
                        child(&rp, "values"),
                        "must be specified single value when `operator` is 'Lt' or 'Gt'",
                    ));
                } else if values[0]
                    .as_str()
                    .and_then(|v| v.parse::<i64>().ok())
                    .is_none()
                {
                    errs.push(FieldError::invalid(
                        child(&rp, "values"),
                        values[0].clone(),
                        "must be an integer",
                    ));
                }
            }
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            op => errs.push(FieldError::invalid(
                child(&rp, "operator"),
                op,
                "not a valid selector operator",
            )),
        }
        let k = s(r, "key");
        errs.extend(invalid_each(&child(&rp, "key"), k, is_qualified_name(k)));
    }
    for (i, f) in arr(term, "matchFields").iter().enumerate() {
        let fp = index(&child(path, "matchFields"), i);
        if s(f, "key") != "metadata.name" {
            errs.push(FieldError::invalid(
                child(&fp, "key"),
                s(f, "key"),
                "not a valid field selector key",
            ));
        }
    }
}

fn validate_weight(w: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let weight = int(w, "weight").unwrap_or(0);
    if !(1..=100).contains(&weight) {
        errs.push(FieldError::invalid(
            child(path, "weight"),
            weight,
            "must be in the range 1-100",
        ));
    }
}

fn validate_pod_affinity_term(t: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(sel) = get(t, "labelSelector") {
        errs.extend(validate_label_selector(sel, &child(path, "labelSelector")));
    }
    if let Some(sel) = get(t, "namespaceSelector") {
        errs.extend(validate_label_selector(
            sel,
            &child(path, "namespaceSelector"),
        ));
    }
    for (i, ns) in strs(t, "namespaces").iter().enumerate() {
        errs.extend(invalid_each(
            &index(&child(path, "namespaces"), i),
            ns,
            is_dns1123_label(ns),
        ));
    }
    let tk = s(t, "topologyKey");
    if tk.is_empty() {
        errs.push(FieldError::required(
            child(path, "topologyKey"),
            "can not be empty",
        ));
    } else {
        errs.extend(invalid_each(
            &child(path, "topologyKey"),
            tk,
            is_qualified_name(tk),
        ));
    }
}

fn validate_affinity(a: &Value, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(na) = get(a, "nodeAffinity") {
        let np = child(path, "nodeAffinity");
        if let Some(req) = get(na, "requiredDuringSchedulingIgnoredDuringExecution") {
            let rp = child(&np, "requiredDuringSchedulingIgnoredDuringExecution");
            let terms = arr(req, "nodeSelectorTerms");
            if terms.is_empty() {
                errs.push(FieldError::required(
                    child(&rp, "nodeSelectorTerms"),
                    "must have at least one node selector term",
                ));
            }
            for (i, t) in terms.iter().enumerate() {
                validate_node_selector_term(t, &index(&child(&rp, "nodeSelectorTerms"), i), errs);
            }
        }
        for (i, w) in arr(na, "preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            let wp = index(
                &child(&np, "preferredDuringSchedulingIgnoredDuringExecution"),
                i,
            );
            validate_weight(w, &wp, errs);
            validate_node_selector_term(
                w.get("preference").unwrap_or(&Value::Null),
                &child(&wp, "preference"),
                errs,
            );
        }
    }
    for k in ["podAffinity", "podAntiAffinity"] {
        let Some(pa) = get(a, k) else { continue };
        let pp = child(path, k);
        for (i, t) in arr(pa, "requiredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            validate_pod_affinity_term(
                t,
                &index(
                    &child(&pp, "requiredDuringSchedulingIgnoredDuringExecution"),
                    i,
                ),
                errs,
            );
        }
        for (i, w) in arr(pa, "preferredDuringSchedulingIgnoredDuringExecution")
            .iter()
            .enumerate()
        {
            let wp = index(
                &child(&pp, "preferredDuringSchedulingIgnoredDuringExecution"),
                i,
            );
            validate_weight(w, &wp, errs);
            validate_pod_affinity_term(
                w.get("podAffinityTerm").unwrap_or(&Value::Null),
                &child(&wp, "podAffinityTerm"),
                errs,
            );
        }
    }
}

fn validate_dns_config(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let p = child(path, "dnsConfig");
    let cfg = spec.get("dnsConfig").unwrap_or(&Value::Null);
    let servers = strs(cfg, "nameservers");
    if s(spec, "dnsPolicy") == "None" && servers.is_empty() {
        errs.push(FieldError::required(
            child(&p, "nameservers"),
            "must provide at least one DNS nameserver when DNSPolicy is None",
        ));
    }
    if cfg.is_null() {
        return;
    }
    if servers.len() > 3 {
        errs.push(FieldError::invalid(
            child(&p, "nameservers"),
            cfg["nameservers"].clone(),
            "must not have more than 3 nameservers",
        ));
    }
    for (i, ns) in servers.iter().enumerate() {
        errs.extend(invalid_each(
            &index(&child(&p, "nameservers"), i),
            ns,
            is_valid_ip(ns),
        ));
    }
    let searches = strs(cfg, "searches");
    if searches.len() > 32 {
        errs.push(FieldError::invalid(
            child(&p, "searches"),
            cfg["searches"].clone(),
            "must not have more than 32 search paths",
        ));
    }
    for (i, sd) in searches.iter().enumerate() {
        let trimmed = sd.strip_suffix('.').unwrap_or(sd);
        if !trimmed.is_empty() {
            errs.extend(invalid_each(
                &index(&child(&p, "searches"), i),
                sd,
                is_dns1123_subdomain(trimmed),
            ));
        }
    }
    for (i, o) in arr(cfg, "options").iter().enumerate() {
        if s(o, "name").is_empty() {
            errs.push(FieldError::required(
                child(&index(&child(&p, "options"), i), "name"),
                "Option.Name must not be empty",
            ));
        }
    }
}

fn validate_topology_spread(constraints: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    let mut seen = HashSet::new();
    for (i, c) in constraints.iter().enumerate() {
        let p = index(path, i);
        let skew = int(c, "maxSkew").unwrap_or(0);
        if skew <= 0 {
            errs.push(FieldError::invalid(
                child(&p, "maxSkew"),
                skew,
                "must be greater than zero",
            ));
        }
        let tk = s(c, "topologyKey");
        if tk.is_empty() {
            errs.push(FieldError::required(
                child(&p, "topologyKey"),
                "can not be empty",
            ));
        } else {
            errs.extend(invalid_each(
                &child(&p, "topologyKey"),
                tk,
                is_qualified_name(tk),
            ));
        }
        let wu = s(c, "whenUnsatisfiable");
        errs.extend(one_of(
            &child(&p, "whenUnsatisfiable"),
            wu,
            &["DoNotSchedule", "ScheduleAnyway"],
            true,
        ));
        if !seen.insert((tk, wu)) {
            errs.push(FieldError::duplicate(&p, format!("{{{tk}, {wu}}}")));
        }
        if let Some(md) = int(c, "minDomains") {
            if md <= 0 {
                errs.push(FieldError::invalid(
                    child(&p, "minDomains"),
                    md,
                    "must be greater than 0",
                ));
            } else if wu != "DoNotSchedule" {
                errs.push(FieldError::invalid(
                    child(&p, "minDomains"),
                    md,
                    format!("can only use minDomains if whenUnsatisfiable=DoNotSchedule, not {wu}"),
                ));
            }
        }
        for k in ["nodeAffinityPolicy", "nodeTaintsPolicy"] {
            if let Some(v) = opt_s(c, k) {
                errs.extend(one_of(&child(&p, k), v, &["Honor", "Ignore"], false));
            }
        }
        if let Some(sel) = get(c, "labelSelector") {
            errs.extend(validate_label_selector(sel, &child(&p, "labelSelector")));
        }
    }
}

/// Upstream's `ValidateTolerations`.
pub fn validate_tolerations(tolerations: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    for (i, t) in tolerations.iter().enumerate() {
        let p = index(path, i);
        let key = s(t, "key");
        let op = s(t, "operator");
        if !key.is_empty() {
            errs.extend(invalid_each(&child(&p, "key"), key, is_qualified_name(key)));
        }
        if key.is_empty() && op != "Exists" {
            errs.push(FieldError::invalid(child(&p, "operator"), op, "operator must be Exists when `key` is empty, which means \"match all values and all keys\""));
        }
        let effect = s(t, "effect");
        if get(t, "tolerationSeconds").is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                child(&p, "effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        match op {
            "Equal" | "" => {
                let v = s(t, "value");
                errs.extend(invalid_each(
                    &child(&p, "operator"),
                    v,
                    is_valid_label_value(v),
                ));
            }
            "Exists" => {
                if !s(t, "value").is_empty() {
                    errs.push(FieldError::invalid(
                        child(&p, "operator"),
                        t.clone(),
                        "value must be empty when `operator` is 'Exists'",
                    ));
                }
            }
            other => errs.push(FieldError::not_supported(
                child(&p, "operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() {
            errs.extend(one_of(
                &child(&p, "effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
                false,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldErrorType;
    use serde_json::json;

    fn kinds(errs: Vec<FieldError>) -> Vec<(String, FieldErrorType)> {
        errs.into_iter().map(|e| (e.field, e.kind)).collect()
    }

    #[test]
    fn tolerations_and_affinity() {
        let spec = json!({
            "tolerations": [
                { "operator": "Equal", "value": "x" },
                { "key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 5 },
                { "key": "k", "operator": "Sometimes" }
            ],
            "affinity": { "nodeAffinity": { "requiredDuringSchedulingIgnoredDuringExecution": { "nodeSelectorTerms": [] } } },
            "topologySpreadConstraints": [{ "maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule" }]
        });
        let mut errs = Vec::new();
        validate_pod_extras(&spec, "spec", &mut errs);
        assert_eq!(
            kinds(errs),
            vec![
                ("spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms".into(), FieldErrorType::Required),
                ("spec.topologySpreadConstraints[0].maxSkew".into(), FieldErrorType::Invalid),
                ("spec.tolerations[0].operator".into(), FieldErrorType::Invalid),
                ("spec.tolerations[1].effect".into(), FieldErrorType::Invalid),
                ("spec.tolerations[2].operator".into(), FieldErrorType::NotSupported),
            ]
        );
    }

    #[test]
    fn dns_none_needs_nameservers() {
        let mut errs = Vec::new();
        validate_pod_extras(&json!({ "dnsPolicy": "None" }), "spec", &mut errs);
        assert_eq!(errs[0].field, "spec.dnsConfig.nameservers");
    }
}
