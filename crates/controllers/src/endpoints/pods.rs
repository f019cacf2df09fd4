//! What the two controllers ask of pods and services: which pods a service
//! selects, whether a pod belongs in its endpoints, which of its addresses
//! to use, and whether a pod change can change any endpoints at all.

use std::collections::BTreeMap;
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::jiff::Timestamp;

/// `spec.clusterIP` of a headless service.
pub const CLUSTER_IP_NONE: &str = "None";

/// The selector of a service that gets endpoints from the controllers, or
/// `None` when users manage its endpoints. An empty selector counts as none:
/// upstream tests for a nil map, and an empty one never reaches its
/// controllers as non-nil (protobuf carries no empty maps).
pub fn selector(svc: &Service) -> Option<&BTreeMap<String, String>> {
    svc.spec
        .as_ref()
        .and_then(|s| s.selector.as_ref())
        .filter(|s| !s.is_empty())
}

/// Whether the controllers leave this service alone: ExternalName services
/// get no endpoints, and selectorless ones get what users write.
pub fn unmanaged(svc: &Service) -> bool {
    let external = svc.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("ExternalName");
    external || selector(svc).is_none()
}

/// Whether every pair of `selector` is among `labels`.
pub fn selects(
    selector: &BTreeMap<String, String>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Whether the service has a cluster IP (upstream's `IsServiceIPSet`); the
/// others are headless.
pub fn has_cluster_ip(svc: &Service) -> bool {
    let ip = svc
        .spec
        .as_ref()
        .and_then(|s| s.cluster_ip.as_deref())
        .unwrap_or("");
    !ip.is_empty() && ip != CLUSTER_IP_NONE
}

/// `spec.clusterIP` is literally `None` (headless by request).
pub fn cluster_ip_none(svc: &Service) -> bool {
    svc.spec.as_ref().and_then(|s| s.cluster_ip.as_deref()) == Some(CLUSTER_IP_NONE)
}

/// `spec.publishNotReadyAddresses`.
pub fn publish_not_ready(svc: &Service) -> bool {
    svc.spec
        .as_ref()
        .and_then(|s| s.publish_not_ready_addresses)
        .unwrap_or(false)
}

fn ready_condition(pod: &Pod) -> Option<&k8s_openapi::api::core::v1::PodCondition> {
    pod.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == "Ready")
}

/// The pod's Ready condition is True.
pub fn is_ready(pod: &Pod) -> bool {
    ready_condition(pod).is_some_and(|c| c.status == "True")
}

/// When the pod's readiness last changed: the time of the change that moves
/// its endpoint (upstream's pod trigger time).
pub fn ready_transition(pod: &Pod) -> Option<Timestamp> {
    ready_condition(pod)?
        .last_transition_time
        .as_ref()
        .map(|t| t.0)
}

/// Succeeded or Failed: its containers are gone for good.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded") | Some("Failed")
    )
}

/// Being deleted (`metadata.deletionTimestamp` set).
pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// The pod's IPs, `status.podIPs` first, else `status.podIP`.
pub fn pod_ips(pod: &Pod) -> Vec<&str> {
    let Some(st) = pod.status.as_ref() else {
        return Vec::new();
    };
    let ips: Vec<&str> = st
        .pod_ips
        .iter()
        .flatten()
        .map(|p| p.ip.as_str())
        .filter(|ip| !ip.is_empty())
        .collect();
    if !ips.is_empty() {
        return ips;
    }
    st.pod_ip
        .as_deref()
        .filter(|ip| !ip.is_empty())
        .into_iter()
        .collect()
}

/// Whether the pod has a place in a service's endpoints at all: it has an
/// address, has not finished, and is not being deleted unless
/// `include_terminating`.
pub fn belongs_in_endpoints(pod: &Pod, include_terminating: bool) -> bool {
    !is_terminal(pod) && !pod_ips(pod).is_empty() && (include_terminating || !is_terminating(pod))
}

/// The pod names itself into the service's DNS: its hostname is set and its
/// subdomain is the service (in the same namespace).
pub fn hostname_for(pod: &Pod, svc: &Service) -> Option<String> {
    let spec = pod.spec.as_ref()?;
    let host = spec.hostname.as_deref().filter(|h| !h.is_empty())?;
    let same_ns = pod.metadata.namespace == svc.metadata.namespace;
    (same_ns && spec.subdomain.as_deref() == svc.metadata.name.as_deref()).then(|| host.to_string())
}

/// An IP family, as `spec.ipFamilies` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The EndpointSlice `addressType` of this family.
    pub fn address_type(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv6() {
            Family::V6
        } else {
            Family::V4
        }
    }
}

fn parse_family(f: &str) -> Option<Family> {
    match f {
        "IPv4" => Some(Family::V4),
        "IPv6" => Some(Family::V6),
        _ => None,
    }
}

fn ip_family(ip: &str) -> Option<Family> {
    ip.parse::<IpAddr>().ok().map(|a| Family::of(&a))
}

/// The families a service's endpoints come in: `spec.ipFamilies`; without
/// them (an older server), the cluster IP's, or both for headless services.
pub fn service_families(svc: &Service) -> Vec<Family> {
    let spec = svc.spec.as_ref();
    let mut fams: Vec<Family> = spec
        .and_then(|s| s.ip_families.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|f| parse_family(f))
        .collect();
    fams.dedup();
    if !fams.is_empty() {
        return fams;
    }
    if has_cluster_ip(svc) {
        let ip = spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or("");
        return vec![ip_family(ip).unwrap_or(Family::V4)];
    }
    vec![Family::V4, Family::V6]
}

/// The one address an Endpoints object lists for `pod`: of the service's
/// first family (for a headless service without families, the pod's own).
pub fn endpoints_ip(svc: &Service, pod: &Pod) -> Option<String> {
    let spec = svc.spec.as_ref();
    let first = spec
        .and_then(|s| s.ip_families.as_ref())
        .and_then(|f| f.first())
        .and_then(|f| parse_family(f));
    let ips = pod_ips(pod);
    let family = first.unwrap_or_else(|| {
        let from = if has_cluster_ip(svc) {
            spec.and_then(|s| s.cluster_ip.as_deref()).unwrap_or("")
        } else {
            ips.first().copied().unwrap_or("")
        };
        ip_family(from).unwrap_or(Family::V4)
    });
    addresses_of(pod, family).into_iter().next()
}

/// The pod's addresses of `family`, written canonically.
pub fn addresses_of(pod: &Pod, family: Family) -> Vec<String> {
    pod_ips(pod)
        .into_iter()
        .filter_map(|ip| ip.parse::<IpAddr>().ok())
        .filter(|ip| Family::of(ip) == family)
        .map(|ip| ip.to_string())
        .collect()
}

/// Whether a pod update can change endpoints or which services select the
/// pod: labels, hostname or subdomain, deletion, readiness, addresses,
/// node, or reaching a terminal phase. Status heartbeats and the like do not.
pub fn endpoint_relevant_change(old: &Pod, new: &Pod) -> bool {
    let spec_of = |p: &Pod| {
        p.spec
            .as_ref()
            .map(|s| (s.hostname.clone(), s.subdomain.clone(), s.node_name.clone()))
    };
    old.metadata.labels != new.metadata.labels
        || spec_of(old) != spec_of(new)
        || is_terminating(old) != is_terminating(new)
        || is_ready(old) != is_ready(new)
        || is_terminal(old) != is_terminal(new)
        || pod_ips(old) != pod_ips(new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    pub(crate) fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn selectors_match_label_subsets_and_empty_means_unmanaged() {
        let s =
            svc(json!({ "metadata": { "name": "s" }, "spec": { "selector": { "app": "web" } } }));
        let sel = selector(&s).unwrap();
        let labels: BTreeMap<String, String> = [
            ("app".to_string(), "web".to_string()),
            ("x".into(), "y".into()),
        ]
        .into();
        assert!(selects(sel, Some(&labels)));
        assert!(!selects(sel, None));
        assert!(!unmanaged(&s));
        let empty = svc(json!({ "metadata": { "name": "s" }, "spec": { "selector": {} } }));
        assert!(unmanaged(&empty));
        let ext = svc(
            json!({ "metadata": { "name": "s" }, "spec": { "type": "ExternalName", "selector": { "a": "b" } } }),
        );
        assert!(unmanaged(&ext));
    }

    #[test]
    fn pods_without_address_finished_or_terminating_are_left_out() {
        let base = json!({
            "metadata": { "name": "p", "namespace": "n" },
            "status": { "phase": "Running", "podIP": "10.0.0.1",
                        "conditions": [{ "type": "Ready", "status": "True" }] },
        });
        assert!(belongs_in_endpoints(&pod(base.clone()), false));
        let mut no_ip = base.clone();
        no_ip["status"]["podIP"] = json!(null);
        assert!(!belongs_in_endpoints(&pod(no_ip), true));
        let mut done = base.clone();
        done["status"]["phase"] = json!("Succeeded");
        assert!(!belongs_in_endpoints(&pod(done), true));
        let mut deleting = base;
        deleting["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        let deleting = pod(deleting);
        assert!(!belongs_in_endpoints(&deleting, false));
        assert!(belongs_in_endpoints(&deleting, true));
    }

    #[test]
    fn hostname_needs_the_subdomain_of_the_service() {
        let s = svc(json!({ "metadata": { "name": "db", "namespace": "n" }, "spec": {} }));
        let p = |sub: &str, ns: &str| {
            pod(json!({ "metadata": { "name": "p", "namespace": ns },
                        "spec": { "containers": [], "hostname": "h0", "subdomain": sub } }))
        };
        assert_eq!(hostname_for(&p("db", "n"), &s).as_deref(), Some("h0"));
        assert_eq!(hostname_for(&p("other", "n"), &s), None);
        assert_eq!(hostname_for(&p("db", "m"), &s), None);
    }

    #[test]
    fn addresses_follow_the_service_family() {
        let p = pod(json!({ "metadata": { "name": "p" },
            "status": { "podIP": "10.0.0.1", "podIPs": [{ "ip": "10.0.0.1" }, { "ip": "fd00::0001" }] } }));
        let v6 = svc(json!({ "spec": { "ipFamilies": ["IPv6"], "clusterIP": "fd00::10" } }));
        assert_eq!(endpoints_ip(&v6, &p).as_deref(), Some("fd00::1"));
        let v4 = svc(json!({ "spec": { "clusterIP": "10.96.0.5" } }));
        assert_eq!(endpoints_ip(&v4, &p).as_deref(), Some("10.0.0.1"));
        assert_eq!(service_families(&v4), vec![Family::V4]);
        let headless = svc(json!({ "spec": { "clusterIP": "None" } }));
        assert_eq!(service_families(&headless), vec![Family::V4, Family::V6]);
        assert_eq!(addresses_of(&p, Family::V6), vec!["fd00::1".to_string()]);
    }

    #[test]
    fn only_endpoint_relevant_pod_changes_count() {
        let base = json!({
            "metadata": { "name": "p", "labels": { "app": "a" } },
            "status": { "phase": "Running", "podIP": "10.0.0.1",
                        "conditions": [{ "type": "Ready", "status": "True" }] },
        });
        let mut heartbeat = base.clone();
        heartbeat["metadata"]["resourceVersion"] = json!("9");
        heartbeat["status"]["startTime"] = json!("2024-01-01T00:00:00Z");
        assert!(!endpoint_relevant_change(
            &pod(base.clone()),
            &pod(heartbeat)
        ));
        let mut unready = base.clone();
        unready["status"]["conditions"][0]["status"] = json!("False");
        assert!(endpoint_relevant_change(&pod(base.clone()), &pod(unready)));
        let mut relabelled = base.clone();
        relabelled["metadata"]["labels"]["app"] = json!("b");
        assert!(endpoint_relevant_change(&pod(base), &pod(relabelled)));
    }
}
