//! What a service's EndpointSlices should hold: one endpoint per pod with
//! an address of the slice's family, grouped by the pod's resolved ports,
//! and the metadata every slice of the service carries.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, ObjectReference, Pod, Service};
use k8s_openapi::api::discovery::v1::{
    Endpoint, EndpointConditions, EndpointHints, EndpointPort, EndpointSlice, ForNode, ForZone,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::ObjectMeta;

use super::pods::{self, Family};
use super::ports::{self, PortKey};
use super::{HEADLESS_LABEL, SERVICE_NAME_LABEL, SLICE_CONTROLLER, SLICE_MANAGED_BY, ZONE_LABEL};

/// Most endpoints in one slice (the controller's default).
pub const MAX_PER_SLICE: usize = 100;

/// An endpoint's identity across syncs: its addresses, hostname and target.
/// Endpoints with the same identity are updated in place.
pub type EndpointKey = (Vec<String>, String, String, String);

/// The identity of `ep`.
pub fn endpoint_key(ep: &Endpoint) -> EndpointKey {
    let mut addrs = ep.addresses.clone();
    addrs.sort();
    let target = ep.target_ref.as_ref();
    (
        addrs,
        ep.hostname.clone().unwrap_or_default(),
        target.and_then(|t| t.namespace.clone()).unwrap_or_default(),
        target.and_then(|t| t.name.clone()).unwrap_or_default(),
    )
}

/// Whether two endpoints of the same identity also agree on everything
/// else the controller sets (target resourceVersions aside).
pub fn same_beyond_key(a: &Endpoint, b: &Endpoint) -> bool {
    let target = |e: &Endpoint| {
        e.target_ref.as_ref().map(|t| ObjectReference {
            resource_version: None,
            ..t.clone()
        })
    };
    let cond = |e: &Endpoint| {
        let c = e.conditions.clone().unwrap_or_default();
        (c.ready, c.serving, c.terminating)
    };
    a.node_name == b.node_name
        && a.zone == b.zone
        && a.hints == b.hints
        && cond(a) == cond(b)
        && target(a) == target(b)
}

/// The hints `svc.spec.trafficDistribution` asks for (upstream's
/// trafficdist): the endpoint's zone for `PreferSameZone` (and the older
/// `PreferClose`); its node, and its zone, for `PreferSameNode`; none
/// otherwise.
fn hints(svc: &Service, node: Option<&str>, zone: Option<&str>) -> Option<EndpointHints> {
    let td = svc.spec.as_ref()?.traffic_distribution.as_deref()?;
    let for_zones = || {
        zone.map(|z| {
            vec![ForZone {
                name: z.to_string(),
            }]
        })
    };
    let h = match td {
        "PreferClose" | "PreferSameZone" => EndpointHints {
            for_zones: for_zones(),
            ..EndpointHints::default()
        },
        "PreferSameNode" => EndpointHints {
            for_nodes: node.map(|n| {
                vec![ForNode {
                    name: n.to_string(),
                }]
            }),
            for_zones: for_zones(),
        },
        _ => return None,
    };
    (h.for_nodes.is_some() || h.for_zones.is_some()).then_some(h)
}

/// The endpoints wanted for one port list.
#[derive(Debug, Default)]
pub struct Group {
    /// The ports every slice of the group lists.
    pub ports: Vec<EndpointPort>,
    /// The endpoints, by identity.
    pub endpoints: BTreeMap<EndpointKey, Endpoint>,
}

/// The endpoint of `pod` in `svc`'s slices of `family`.
pub fn endpoint(pod: &Pod, node: Option<&Node>, svc: &Service, family: Family) -> Endpoint {
    let serving = pods::is_ready(pod);
    let terminating = pods::is_terminating(pod);
    // Never ready while terminating, unless unready pods are published.
    let ready = pods::publish_not_ready(svc) || (serving && !terminating);
    let zone = node
        .and_then(|n| n.metadata.labels.as_ref())
        .and_then(|l| l.get(ZONE_LABEL))
        .filter(|z| !z.is_empty())
        .cloned();
    let node_name = pod
        .spec
        .as_ref()
        .and_then(|s| s.node_name.clone())
        .filter(|n| !n.is_empty());
    Endpoint {
        addresses: pods::addresses_of(pod, family),
        hints: hints(svc, node_name.as_deref(), zone.as_deref()),
        conditions: Some(EndpointConditions {
            ready: Some(ready),
            serving: Some(serving),
            terminating: Some(terminating),
        }),
        hostname: pods::hostname_for(pod, svc),
        node_name,
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..ObjectReference::default()
        }),
        zone,
        ..Endpoint::default()
    }
}

/// What `svc`'s slices of `family` should hold for `pods` (those its
/// selector matches), grouped by port list; terminating pods are included.
/// `node` looks nodes up by name. The second value names pods left out
/// because their node is unknown (the sync is retried for them).
pub fn desired(
    svc: &Service,
    pods: &[Arc<Pod>],
    family: Family,
    node: impl Fn(&str) -> Option<Arc<Node>>,
) -> (BTreeMap<PortKey, Group>, Vec<String>) {
    let mut groups: BTreeMap<PortKey, Group> = BTreeMap::new();
    let mut skipped = Vec::new();
    let headless_portless = ports::has_no_ports(svc) && pods::cluster_ip_none(svc);
    for pod in pods {
        if !pods::belongs_in_endpoints(pod, true) {
            continue;
        }
        let ports = if headless_portless {
            Vec::new()
        } else {
            ports::slice_ports(svc, pod)
        };
        let node_name = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_deref())
            .unwrap_or("");
        let found = node(node_name);
        if found.is_none() && !pods::publish_not_ready(svc) {
            // Published anyway if the user asked for unready pods too.
            skipped.push(pod.metadata.name.clone().unwrap_or_default());
            continue;
        }
        let ep = endpoint(pod, found.as_deref(), svc, family);
        if ep.addresses.is_empty() {
            continue;
        }
        let key = ports::port_key(&ports);
        let group = groups.entry(key).or_insert_with(|| Group {
            ports,
            endpoints: BTreeMap::new(),
        });
        group.endpoints.insert(endpoint_key(&ep), ep);
    }
    (groups, skipped)
}

/// The labels of `svc`'s slices: the service's own (minus the reserved
/// ones), the service name, the manager, and the headless label.
pub fn labels(svc: &Service) -> BTreeMap<String, String> {
    let mut l: BTreeMap<String, String> = svc
        .metadata
        .labels
        .iter()
        .flatten()
        .filter(|(k, _)| {
            ![SERVICE_NAME_LABEL, SLICE_MANAGED_BY, HEADLESS_LABEL].contains(&k.as_str())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !pods::has_cluster_ip(svc) {
        l.insert(HEADLESS_LABEL.into(), String::new());
    }
    l.insert(
        SERVICE_NAME_LABEL.into(),
        svc.metadata.name.clone().unwrap_or_default(),
    );
    l.insert(SLICE_MANAGED_BY.into(), SLICE_CONTROLLER.into());
    l
}

/// Whether `slice` belongs to this very service (not an earlier one of the
/// same name).
pub fn owned_by(slice: &EndpointSlice, svc: &Service) -> bool {
    let uid = svc.metadata.uid.as_deref().unwrap_or("");
    slice
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.uid == uid && o.kind == "Service" && o.api_version == "v1")
}

/// A new, unnamed slice of `svc` with `ports` and no endpoints yet.
pub fn new_slice(svc: &Service, ports: Vec<EndpointPort>, address_type: &str) -> EndpointSlice {
    let name = svc.metadata.name.clone().unwrap_or_default();
    // `<service>-` unless that is too long a prefix for a name.
    let prefix = if name.len() < 253 {
        format!("{name}-")
    } else {
        name.clone()
    };
    EndpointSlice {
        metadata: ObjectMeta {
            generate_name: Some(prefix),
            namespace: svc.metadata.namespace.clone(),
            labels: Some(labels(svc)),
            owner_references: Some(vec![OwnerReference {
                api_version: "v1".into(),
                kind: "Service".into(),
                name,
                uid: svc.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]),
            ..ObjectMeta::default()
        },
        address_type: address_type.into(),
        endpoints: Some(Vec::new()),
        ports: Some(ports),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    pub(crate) fn svc(spec: serde_json::Value) -> Service {
        serde_json::from_value(json!({
            "metadata": { "name": "web", "namespace": "n", "uid": "svc-uid",
                          "labels": { "app": "web", "kubernetes.io/service-name": "spoof" } },
            "spec": spec,
        }))
        .unwrap()
    }

    pub(crate) fn pod(name: &str, ip: &str, ready: bool) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": { "name": name, "namespace": "n", "uid": format!("uid-{name}") },
                "spec": { "nodeName": "node-1", "containers": [{ "name": "c", "ports": [{ "name": "http", "containerPort": 8080 }] }] },
                "status": { "phase": "Running", "podIP": ip, "podIPs": [{ "ip": ip }],
                            "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }] },
            }))
            .unwrap(),
        )
    }

    fn node(zone: Option<&str>) -> Arc<Node> {
        let labels = zone.map(|z| json!({ ZONE_LABEL: z })).unwrap_or(json!({}));
        Arc::new(
            serde_json::from_value(json!({ "metadata": { "name": "node-1", "labels": labels } }))
                .unwrap(),
        )
    }

    fn spec() -> serde_json::Value {
        json!({ "clusterIP": "10.96.0.1", "selector": { "app": "web" }, "ports": [
            { "name": "http", "port": 80, "protocol": "TCP", "targetPort": "http" }] })
    }

    #[test]
    fn traffic_distribution_sets_node_and_zone_hints() {
        let hints_for = |td: Option<&str>, zone: Option<&str>| {
            let mut sp = spec();
            if let Some(td) = td {
                sp["trafficDistribution"] = json!(td);
            }
            let (groups, _) = desired(&svc(sp), &[pod("a", "10.0.0.1", true)], Family::V4, |_| {
                Some(node(zone))
            });
            let e = groups
                .values()
                .next()
                .unwrap()
                .endpoints
                .values()
                .next()
                .unwrap();
            serde_json::to_value(&e.hints).unwrap()
        };
        assert_eq!(hints_for(None, Some("z1")), json!(null));
        assert_eq!(
            hints_for(Some("PreferSameNode"), Some("z1")),
            json!({"forNodes": [{"name": "node-1"}], "forZones": [{"name": "z1"}]})
        );
        assert_eq!(
            hints_for(Some("PreferSameNode"), None),
            json!({"forNodes": [{"name": "node-1"}]})
        );
        for td in ["PreferClose", "PreferSameZone"] {
            assert_eq!(
                hints_for(Some(td), Some("z1")),
                json!({"forZones": [{"name": "z1"}]})
            );
            // Without a zone there is nothing to hint.
            assert_eq!(hints_for(Some(td), None), json!(null));
        }
        // A change of hints alone is a change of the slice.
        let a = endpoint(
            &pod("a", "10.0.0.1", true),
            Some(&node(Some("z1"))),
            &svc(spec()),
            Family::V4,
        );
        let mut sp = spec();
        sp["trafficDistribution"] = json!("PreferSameNode");
        let b = endpoint(
            &pod("a", "10.0.0.1", true),
            Some(&node(Some("z1"))),
            &svc(sp),
            Family::V4,
        );
        assert!(!same_beyond_key(&a, &b));
    }

    #[test]
    fn endpoints_carry_conditions_node_zone_and_target() {
        let s = svc(spec());
        let mut terminating: Pod = (*pod("t", "10.0.0.3", true)).clone();
        terminating.metadata.deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                "2024-01-01T00:00:00Z".parse().unwrap(),
            ));
        let pods = vec![
            pod("a", "10.0.0.1", true),
            pod("b", "10.0.0.2", false),
            Arc::new(terminating),
        ];
        let (groups, skipped) = desired(&s, &pods, Family::V4, |_| Some(node(Some("z1"))));
        assert!(skipped.is_empty());
        assert_eq!(groups.len(), 1);
        let g = groups.values().next().unwrap();
        assert_eq!(g.ports[0].port, Some(8080));
        assert_eq!(g.ports[0].name.as_deref(), Some("http"));
        type Row = (Vec<String>, Option<bool>, Option<bool>, Option<bool>);
        let conds: Vec<Row> = g
            .endpoints
            .values()
            .map(|e| {
                let c = e.conditions.clone().unwrap();
                (e.addresses.clone(), c.ready, c.serving, c.terminating)
            })
            .collect();
        assert_eq!(
            conds,
            vec![
                (vec!["10.0.0.1".into()], Some(true), Some(true), Some(false)),
                (
                    vec!["10.0.0.2".into()],
                    Some(false),
                    Some(false),
                    Some(false)
                ),
                (vec!["10.0.0.3".into()], Some(false), Some(true), Some(true)),
            ]
        );
        let e = g.endpoints.values().next().unwrap();
        assert_eq!(e.zone.as_deref(), Some("z1"));
        assert_eq!(e.node_name.as_deref(), Some("node-1"));
        assert_eq!(e.target_ref.as_ref().unwrap().uid.as_deref(), Some("uid-a"));
    }

    #[test]
    fn pods_on_unknown_nodes_are_skipped_unless_unready_ones_are_published() {
        let pods = vec![pod("a", "10.0.0.1", true)];
        let (groups, skipped) = desired(&svc(spec()), &pods, Family::V4, |_| None);
        assert!(groups.is_empty());
        assert_eq!(skipped, vec!["a".to_string()]);
        let mut sp = spec();
        sp["publishNotReadyAddresses"] = json!(true);
        let (groups, skipped) = desired(&svc(sp), &pods, Family::V4, |_| None);
        assert_eq!(groups.values().next().unwrap().endpoints.len(), 1);
        assert!(skipped.is_empty());
        // No IPv6 address: no IPv6 endpoint.
        let (groups, _) = desired(&svc(spec()), &pods, Family::V6, |_| Some(node(None)));
        assert!(groups.is_empty());
    }

    #[test]
    fn new_slices_name_labels_and_owner() {
        let s = svc(json!({ "clusterIP": "None", "selector": { "app": "web" } }));
        let sl = new_slice(&s, Vec::new(), "IPv4");
        assert_eq!(sl.metadata.generate_name.as_deref(), Some("web-"));
        let l = sl.metadata.labels.as_ref().unwrap();
        assert_eq!(l.get(SERVICE_NAME_LABEL).map(String::as_str), Some("web"));
        assert_eq!(
            l.get(SLICE_MANAGED_BY).map(String::as_str),
            Some(SLICE_CONTROLLER)
        );
        assert_eq!(l.get(HEADLESS_LABEL).map(String::as_str), Some(""));
        assert_eq!(l.get("app").map(String::as_str), Some("web"));
        let o = &sl.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (
                o.kind.as_str(),
                o.uid.as_str(),
                o.controller,
                o.block_owner_deletion
            ),
            ("Service", "svc-uid", Some(true), Some(true))
        );
        assert!(owned_by(&sl, &s));
    }
}
