//! Per-container checks shared by pods and templates: resource names and
//! quantities (requests within limits), probes and lifecycle handlers.

use serde_json::Value;

use super::names::*;
use super::quantity::{self, Quantity};
use super::util::*;
use crate::error::FieldError;

fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

/// Upstream's `IsExtendedResourceName`, e.g. `nvidia.com/gpu`.
pub fn is_extended(name: &str) -> bool {
    !is_native(name)
        && !name.starts_with("requests.")
        && is_qualified_name(&format!("requests.{name}")).is_empty()
}

fn is_hugepages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

const STANDARD_RESOURCES: &[&str] = &[
    "cpu",
    "memory",
    "ephemeral-storage",
    "requests.cpu",
    "requests.memory",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "storage",
    "requests.storage",
    "services.nodeports",
    "services.loadbalancers",
];

/// Upstream's `validateResourceName`.
pub fn validate_resource_name(name: &str, path: &str) -> Vec<FieldError> {
    let errs = invalid_each(path, name, is_qualified_name(name));
    if !errs.is_empty() {
        return errs;
    }
    if !name.contains('/')
        && !STANDARD_RESOURCES.contains(&name)
        && !is_hugepages(name)
        && !name.starts_with("requests.hugepages-")
    {
        return vec![FieldError::invalid(
            path,
            name,
            "must be a standard resource type or fully qualified",
        )];
    }
    Vec::new()
}

fn validate_container_resource_name(name: &str, path: &str) -> Vec<FieldError> {
    let mut errs = validate_resource_name(name, path);
    if !name.contains('/') {
        if !matches!(name, "cpu" | "memory" | "ephemeral-storage") && !is_hugepages(name) {
            errs.push(FieldError::invalid(
                path,
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native(name) && !is_extended(name) {
        errs.push(FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
    errs
}

/// Parse each quantity of a resource list, reporting bad names and values.
pub fn resource_list<'a>(
    list: Option<&'a Value>,
    path: &str,
    container: bool,
    errs: &mut Vec<FieldError>,
) -> Vec<(&'a str, Quantity)> {
    let mut out = Vec::new();
    let Some(m) = list.and_then(Value::as_object) else {
        return out;
    };
    for (name, v) in m {
        let p = key(path, name);
        errs.extend(if container {
            validate_container_resource_name(name, &p)
        } else {
            validate_resource_name(name, &p)
        });
        match quantity::parse_value(v) {
            Some(Ok(q)) => {
                if q.nanos < 0 {
                    errs.push(FieldError::invalid(&p, q.canonical(), NEGATIVE));
                }
                if is_extended(name) && !q.is_integer() {
                    errs.push(FieldError::invalid(&p, q.canonical(), "must be an integer"));
                }
                out.push((name.as_str(), q));
            }
            Some(Err(e)) => errs.push(FieldError::invalid(&p, v.clone(), e)),
            None => {}
        }
    }
    out
}

/// Upstream's `ValidateContainerResources` (also used for pod-level resources).
pub fn validate_resources(r: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let lim_path = child(path, "limits");
    let req_path = child(path, "requests");
    let limits = resource_list(r.get("limits"), &lim_path, true, errs);
    let requests = resource_list(r.get("requests"), &req_path, true, errs);
    for (name, q) in &requests {
        let overcommit = !is_extended(name) && !is_hugepages(name);
        match limits.iter().find(|(n, _)| n == name) {
            Some((_, l)) if !overcommit && q.nanos != l.nanos => errs.push(FieldError::invalid(
                &req_path,
                q.canonical(),
                format!("must be equal to {name} limit of {}", l.canonical()),
            )),
            Some((_, l)) if q.nanos > l.nanos => errs.push(FieldError::invalid(
                &req_path,
                q.canonical(),
                format!(
                    "must be less than or equal to {name} limit of {}",
                    l.canonical()
                ),
            )),
            Some(_) => {}
            None if !overcommit => errs.push(FieldError::required(
                &lim_path,
                "Limit must be set for non overcommitable resources",
            )),
            None => {}
        }
    }
    for (i, c) in arr(r, "claims").iter().enumerate() {
        if s(c, "name").is_empty() {
            errs.push(FieldError::required(
                child(&index(&child(path, "claims"), i), "name"),
                "",
            ));
        }
    }
}

pub(super) fn validate_probes(c: &Value, p: &str, errs: &mut Vec<FieldError>) {
    for k in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(probe) = get(c, k) else { continue };
        let pp = child(p, k);
        validate_handler(probe, &pp, true, errs);
        for f in [
            "initialDelaySeconds",
            "timeoutSeconds",
            "periodSeconds",
            "successThreshold",
            "failureThreshold",
        ] {
            errs.extend(nonnegative(probe, f, &child(&pp, f)));
        }
        if let Some(t) = int(probe, "terminationGracePeriodSeconds") {
            if k == "readinessProbe" {
                errs.push(FieldError::invalid(
                    child(&pp, "terminationGracePeriodSeconds"),
                    t,
                    "must not be set for readinessProbes",
                ));
            } else if t <= 0 {
                errs.push(FieldError::invalid(
                    child(&pp, "terminationGracePeriodSeconds"),
                    t,
                    "must be greater than 0",
                ));
            }
        }
        if k != "readinessProbe" {
            if let Some(st) = int(probe, "successThreshold") {
                if st != 1 {
                    errs.push(FieldError::invalid(
                        child(&pp, "successThreshold"),
                        st,
                        "must be 1",
                    ));
                }
            }
        }
    }
}

pub(super) fn validate_lifecycle(l: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    let Some(l) = l.filter(|v| !v.is_null()) else {
        return;
    };
    for k in ["postStart", "preStop"] {
        if let Some(h) = get(l, k) {
            validate_handler(h, &child(path, k), false, errs);
        }
    }
}

/// Upstream's `validateHandler`: exactly one of exec, httpGet, tcpSocket,
/// grpc (probes only) or sleep (lifecycle hooks only).
fn validate_handler(h: &Value, path: &str, probe: bool, errs: &mut Vec<FieldError>) {
    let kinds: &[&str] = if probe {
        &["exec", "httpGet", "tcpSocket", "grpc"]
    } else {
        &["exec", "httpGet", "tcpSocket", "sleep"]
    };
    let mut n = 0;
    for k in kinds {
        let Some(a) = get(h, k) else { continue };
        let p = child(path, k);
        if n > 0 {
            errs.push(FieldError::forbidden(
                &p,
                "may not specify more than 1 handler type",
            ));
            continue;
        }
        n += 1;
        match *k {
            "exec" if arr(a, "command").is_empty() => {
                errs.push(FieldError::required(child(&p, "command"), ""))
            }
            "httpGet" => {
                if s(a, "path").is_empty() {
                    errs.push(FieldError::required(child(&p, "path"), ""));
                }
                port_num_or_name(a.get("port"), &child(&p, "port"), errs);
                errs.extend(one_of(
                    &child(&p, "scheme"),
                    s(a, "scheme"),
                    &["HTTP", "HTTPS"],
                    false,
                ));
                for (i, hd) in arr(a, "httpHeaders").iter().enumerate() {
                    let n = s(hd, "name");
                    errs.extend(invalid_each(
                        &child(&index(&child(&p, "httpHeaders"), i), "name"),
                        n,
                        is_http_header_name(n),
                    ));
                }
            }
            "tcpSocket" => port_num_or_name(a.get("port"), &child(&p, "port"), errs),
            "grpc" => {
                let port = int(a, "port").unwrap_or(0);
                errs.extend(
                    is_valid_port_num(port)
                        .into_iter()
                        .map(|m| FieldError::invalid(child(&p, "port"), port, m)),
                );
            }
            "sleep" => {
                if let Some(sec) = int(a, "seconds") {
                    if sec < 0 {
                        errs.push(FieldError::invalid(
                            child(&p, "seconds"),
                            sec,
                            "must be non-negative",
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
}

/// Upstream's `ValidatePortNumOrName`.
pub fn port_num_or_name(port: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    match port {
        Some(Value::String(name)) => {
            errs.extend(invalid_each(path, name, is_valid_port_name(name)))
        }
        Some(Value::Number(n)) => {
            let n = n.as_i64().unwrap_or(0);
            errs.extend(
                is_valid_port_num(n)
                    .into_iter()
                    .map(|m| FieldError::invalid(path, n, m)),
            );
        }
        _ => errs.extend(
            is_valid_port_num(0)
                .into_iter()
                .map(|m| FieldError::invalid(path, 0, m)),
        ),
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
    fn resource_names_and_values() {
        let mut errs = Vec::new();
        let r = json!({
            "limits": { "cpu": "1", "widgets": "1", "example.com/gpu": "1", "memory": "bogus" },
            "requests": { "cpu": "-1", "example.com/gpu": "500m" }
        });
        validate_resources(&r, "c.resources", &mut errs);
        assert_eq!(
            kinds(errs),
            vec![
                ("c.resources.limits[memory]".into(), FieldErrorType::Invalid),
                (
                    "c.resources.limits[widgets]".into(),
                    FieldErrorType::Invalid
                ),
                (
                    "c.resources.limits[widgets]".into(),
                    FieldErrorType::Invalid
                ),
                ("c.resources.requests[cpu]".into(), FieldErrorType::Invalid),
                (
                    "c.resources.requests[example.com/gpu]".into(),
                    FieldErrorType::Invalid
                ),
                ("c.resources.requests".into(), FieldErrorType::Invalid),
            ]
        );
        assert!(is_extended("example.com/gpu"));
        assert!(!is_extended("kubernetes.io/foo"));
        assert!(!is_extended("cpu"));
    }

    #[test]
    fn probes_and_handlers() {
        let c = json!({
            "livenessProbe": { "exec": { "command": ["true"] }, "httpGet": { "path": "/", "port": 80 }, "successThreshold": 1 },
            "readinessProbe": { "tcpSocket": { "port": "http" }, "terminationGracePeriodSeconds": 5 },
            "startupProbe": { "httpGet": { "path": "", "port": 0, "scheme": "FTP" }, "periodSeconds": -1 },
            "lifecycle": { "preStop": { "sleep": { "seconds": 5 } }, "postStart": {} }
        });
        let mut errs = Vec::new();
        validate_probes(&c, "c", &mut errs);
        validate_lifecycle(c.get("lifecycle"), "c.lifecycle", &mut errs);
        assert_eq!(
            kinds(errs),
            vec![
                ("c.livenessProbe.httpGet".into(), FieldErrorType::Forbidden),
                (
                    "c.readinessProbe.terminationGracePeriodSeconds".into(),
                    FieldErrorType::Invalid
                ),
                (
                    "c.startupProbe.httpGet.path".into(),
                    FieldErrorType::Required
                ),
                (
                    "c.startupProbe.httpGet.port".into(),
                    FieldErrorType::Invalid
                ),
                (
                    "c.startupProbe.httpGet.scheme".into(),
                    FieldErrorType::NotSupported
                ),
                (
                    "c.startupProbe.periodSeconds".into(),
                    FieldErrorType::Invalid
                ),
                ("c.lifecycle.postStart".into(), FieldErrorType::Required),
            ]
        );
    }
}
