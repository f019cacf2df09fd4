//! The downward API: pod fields (`fieldRef`) and container resources
//! (`resourceFieldRef`) as strings, shared by environment variables and
//! downwardAPI volume files, in upstream's formats: labels and annotations
//! as `key="value"` lines sorted by key (Go's `%q` quoting, no trailing
//! newline), resources divided by the divisor and rounded up.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, DownwardAPIVolumeFile, Pod};
use scheduler::quantity;

use super::atomic::{File, Payload};

/// What the pod itself does not say: node facts and runtime addresses.
#[derive(Clone, Debug, Default)]
pub struct NodeFacts {
    /// `spec.nodeName` (the kubelet's node).
    pub node_name: String,
    /// `status.hostIP`.
    pub host_ip: String,
    /// `status.podIP` (empty until the sandbox has one).
    pub pod_ip: String,
    /// Allocatable CPU in millicores: a missing cpu limit reads as this.
    pub cpu_milli: i64,
    /// Allocatable memory in bytes: a missing memory limit reads as this.
    pub memory: i64,
    /// Allocatable ephemeral storage in bytes.
    pub ephemeral_storage: i64,
}

/// Go's `strconv.Quote` for the characters label and annotation values
/// hold (upstream's `%q`).
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Upstream's `fieldpath.FormatMap`: `k="v"` lines sorted by key.
pub fn format_map(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The value of `fieldPath` for `pod`; `None` for an unsupported path.
pub fn field_value(pod: &Pod, facts: &NodeFacts, path: &str) -> Option<String> {
    let m = &pod.metadata;
    let empty = BTreeMap::new();
    let labels = m.labels.as_ref().unwrap_or(&empty);
    let annotations = m.annotations.as_ref().unwrap_or(&empty);
    let status = pod.status.as_ref();
    let pod_ips = || {
        let from_status: Vec<String> = status
            .and_then(|s| s.pod_ips.as_ref())
            .into_iter()
            .flatten()
            .map(|i| i.ip.clone())
            .collect();
        if !facts.pod_ip.is_empty() && !from_status.contains(&facts.pod_ip) {
            vec![facts.pod_ip.clone()]
        } else {
            from_status
        }
    };
    Some(match path {
        "metadata.name" => m.name.clone().unwrap_or_default(),
        "metadata.namespace" => m.namespace.clone().unwrap_or_default(),
        "metadata.uid" => m.uid.clone().unwrap_or_default(),
        "metadata.labels" => format_map(labels),
        "metadata.annotations" => format_map(annotations),
        "spec.nodeName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| facts.node_name.clone()),
        "spec.serviceAccountName" => pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" => facts.host_ip.clone(),
        "status.hostIPs" => facts.host_ip.clone(),
        "status.podIP" => pod_ips().into_iter().next().unwrap_or_default(),
        "status.podIPs" => pod_ips().join(","),
        p => {
            let (map, rest) = if let Some(r) = p.strip_prefix("metadata.labels['") {
                (labels, r)
            } else if let Some(r) = p.strip_prefix("metadata.annotations['") {
                (annotations, r)
            } else {
                return None;
            };
            let key = rest.strip_suffix("']")?;
            map.get(key).cloned().unwrap_or_default()
        }
    })
}

fn ceil_div(a: i128, b: i128) -> i128 {
    if b <= 0 {
        return a;
    }
    (a + b - 1).div_euclid(b)
}

/// The value of `resource` (`limits.cpu`, `requests.memory`, …) of
/// container `c` over `divisor` (default 1), rounded up as upstream; a
/// missing limit is the node's allocatable.
pub fn resource_value(
    c: &Container,
    resource: &str,
    divisor: Option<&str>,
    facts: &NodeFacts,
) -> Result<String, String> {
    let r = c.resources.as_ref();
    let (which, name) = resource
        .split_once('.')
        .ok_or_else(|| format!("unsupported container resource : {resource}"))?;
    let map = match which {
        "limits" => r.and_then(|r| r.limits.as_ref()),
        "requests" => r.and_then(|r| r.requests.as_ref()),
        _ => return Err(format!("unsupported container resource : {resource}")),
    };
    let q = map.and_then(|m| m.get(name)).map(|q| q.0.clone());
    let div = divisor.filter(|d| !d.is_empty() && *d != "0");
    match name {
        "cpu" => {
            let milli = match (q, which) {
                (Some(q), _) => quantity::cpu_milli(&q),
                (None, "limits") => facts.cpu_milli,
                (None, _) => 0,
            };
            let d = div.map(quantity::cpu_milli).unwrap_or(1000).max(1);
            Ok(ceil_div(milli as i128, d as i128).to_string())
        }
        "memory" | "ephemeral-storage" => {
            let alloc = if name == "memory" {
                facts.memory
            } else {
                facts.ephemeral_storage
            };
            let v = match (q, which) {
                (Some(q), _) => quantity::units(&q),
                (None, "limits") => alloc,
                (None, _) => 0,
            };
            let d = div.map(quantity::units).unwrap_or(1).max(1);
            Ok(ceil_div(v as i128, d as i128).to_string())
        }
        n if n.starts_with("hugepages-") => {
            let v = q.map(|q| quantity::units(&q)).unwrap_or(0);
            let d = div.map(quantity::units).unwrap_or(1).max(1);
            Ok(ceil_div(v as i128, d as i128).to_string())
        }
        _ => Err(format!("unsupported container resource : {resource}")),
    }
}

/// The files of a downwardAPI volume (or projection) from its `items`.
pub fn payload(
    pod: &Pod,
    items: &[DownwardAPIVolumeFile],
    default_mode: i32,
    facts: &NodeFacts,
) -> Result<Payload, String> {
    let mut out = Payload::new();
    for it in items {
        let value = if let Some(f) = &it.field_ref {
            field_value(pod, facts, &f.field_path)
                .ok_or_else(|| format!("unsupported fieldPath: {}", f.field_path))?
        } else if let Some(r) = &it.resource_field_ref {
            let name = r.container_name.as_deref().unwrap_or_default();
            let spec = pod.spec.as_ref();
            let c = spec
                .into_iter()
                .flat_map(|s| {
                    s.containers
                        .iter()
                        .chain(s.init_containers.iter().flatten())
                })
                .find(|c| c.name == name)
                .ok_or_else(|| format!("container {name} not found"))?;
            resource_value(
                c,
                &r.resource,
                r.divisor.as_ref().map(|d| d.0.as_str()),
                facts,
            )?
        } else {
            continue;
        };
        out.insert(
            it.path.clone(),
            File {
                data: value.into_bytes(),
                mode: it.mode.unwrap_or(default_mode) as u32,
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod() -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1",
                "labels": {"b": "2", "a": "x\"y"}, "annotations": {"note": "line1\nline2"}},
            "spec": {"nodeName": "n1", "serviceAccountName": "sa", "containers": [{"name": "c",
                "resources": {"limits": {"cpu": "1250m", "memory": "64Mi"}, "requests": {"cpu": "250m"}}}]},
            "status": {"podIPs": [{"ip": "10.0.0.5"}, {"ip": "fd00::5"}]}
        }))
        .unwrap()
    }

    fn facts() -> NodeFacts {
        NodeFacts {
            host_ip: "192.168.1.2".into(),
            cpu_milli: 4000,
            memory: 8 << 30,
            ..Default::default()
        }
    }

    #[test]
    fn labels_and_annotations_format() {
        let p = pod();
        assert_eq!(
            field_value(&p, &facts(), "metadata.labels").unwrap(),
            "a=\"x\\\"y\"\nb=\"2\""
        );
        assert_eq!(
            field_value(&p, &facts(), "metadata.annotations").unwrap(),
            "note=\"line1\\nline2\""
        );
        assert_eq!(
            field_value(&p, &facts(), "metadata.labels['b']").unwrap(),
            "2"
        );
        assert_eq!(
            field_value(&p, &facts(), "metadata.labels['zz']").unwrap(),
            ""
        );
        assert_eq!(
            field_value(&p, &facts(), "status.podIPs").unwrap(),
            "10.0.0.5,fd00::5"
        );
        assert_eq!(
            field_value(&p, &facts(), "status.podIP").unwrap(),
            "10.0.0.5"
        );
        assert_eq!(field_value(&p, &facts(), "spec.nodeName").unwrap(), "n1");
        assert_eq!(
            field_value(&p, &facts(), "spec.serviceAccountName").unwrap(),
            "sa"
        );
        assert_eq!(
            field_value(&p, &facts(), "status.hostIPs").unwrap(),
            "192.168.1.2"
        );
        assert!(field_value(&p, &facts(), "spec.bogus").is_none());
        assert_eq!(format_map(&BTreeMap::new()), "");
    }

    #[test]
    fn resource_rounding_is_ceil() {
        let p = pod();
        let c = &p.spec.as_ref().unwrap().containers[0];
        let f = facts();
        let v = |r: &str, d: Option<&str>| resource_value(c, r, d, &f).unwrap();
        assert_eq!(v("limits.cpu", None), "2", "1250m over 1 rounds up");
        assert_eq!(v("limits.cpu", Some("1m")), "1250");
        assert_eq!(v("limits.cpu", Some("100m")), "13");
        assert_eq!(v("requests.cpu", None), "1");
        assert_eq!(v("limits.memory", None), "67108864");
        assert_eq!(v("limits.memory", Some("1Mi")), "64");
        assert_eq!(
            v("limits.memory", Some("1G")),
            "1",
            "64Mi over 1G rounds up"
        );
        assert_eq!(v("requests.memory", None), "0");
        assert_eq!(v("limits.ephemeral-storage", None), "0");
        let none = Container::default();
        assert_eq!(
            resource_value(&none, "limits.cpu", None, &f).unwrap(),
            "4",
            "node allocatable"
        );
        assert_eq!(
            resource_value(&none, "limits.memory", Some("1Gi"), &f).unwrap(),
            "8"
        );
        assert!(resource_value(c, "limits.gpu", None, &f).is_err());
    }

    #[test]
    fn volume_files() {
        let p = pod();
        let items: Vec<DownwardAPIVolumeFile> = serde_json::from_value(json!([
            {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
            {"path": "cpu", "resourceFieldRef": {"containerName": "c", "resource": "limits.cpu", "divisor": "1m"}, "mode": 256}
        ]))
        .unwrap();
        let out = payload(&p, &items, 0o644, &facts()).unwrap();
        assert_eq!(out["labels"].mode, 0o644);
        assert_eq!(out["cpu"].data, b"1250");
        assert_eq!(out["cpu"].mode, 0o400);
    }
}
