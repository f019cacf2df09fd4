//! The subsets of an Endpoints object, computed from the service and its
//! pods: each (pod, resolved port) pair lands in a subset, ready or not, and
//! the subsets are then regrouped so that pods offering the same ports share
//! one (upstream's `RepackSubsets`). Past 1000 addresses the object is
//! truncated, ready addresses first.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{
    EndpointAddress, EndpointPort, EndpointSubset, ObjectReference, Pod, Service,
};

use super::{pods, ports};

/// Most addresses one Endpoints object holds.
pub const MAX_ADDRESSES: usize = 1000;

/// A port as a sortable key: name, port, protocol, appProtocol.
type PortId = (String, i32, String, String);

fn port_id(p: &EndpointPort) -> PortId {
    (
        p.name.clone().unwrap_or_default(),
        p.port,
        p.protocol.clone().unwrap_or_default(),
        p.app_protocol.clone().unwrap_or_default(),
    )
}

/// An address's identity: IP, then target UID (upstream's sort order).
type AddrId = (String, String);

fn addr_id(a: &EndpointAddress) -> AddrId {
    let uid = a.target_ref.as_ref().and_then(|r| r.uid.clone());
    (a.ip.clone(), uid.unwrap_or_default())
}

/// Addresses by identity, with whether each is ready.
type AddrSet = BTreeMap<AddrId, (EndpointAddress, bool)>;

/// One pod's address behind one port (`None`: a headless service without
/// ports, whose addresses need no port).
struct Member {
    port: Option<EndpointPort>,
    address: EndpointAddress,
    ready: bool,
}

fn address_of(svc: &Service, pod: &Pod) -> Option<EndpointAddress> {
    let ip = pods::endpoints_ip(svc, pod)?;
    let node = pod.spec.as_ref().and_then(|s| s.node_name.clone());
    Some(EndpointAddress {
        ip,
        hostname: pods::hostname_for(pod, svc),
        node_name: node.filter(|n| !n.is_empty()),
        target_ref: Some(ObjectReference {
            kind: Some("Pod".into()),
            namespace: pod.metadata.namespace.clone(),
            name: pod.metadata.name.clone(),
            uid: pod.metadata.uid.clone(),
            ..ObjectReference::default()
        }),
    })
}

/// The subsets `svc`'s Endpoints should have for `pods` (already the pods
/// its selector matches), untruncated.
pub fn desired(svc: &Service, pods: &[Arc<Pod>]) -> Vec<EndpointSubset> {
    let tolerate_unready = pods::publish_not_ready(svc);
    let mut members = Vec::new();
    for pod in pods {
        // Terminating pods stay only where unready ones are published too.
        if !pods::belongs_in_endpoints(pod, tolerate_unready) {
            continue;
        }
        let Some(address) = address_of(svc, pod) else {
            continue;
        };
        let ready = tolerate_unready || pods::is_ready(pod);
        if ports::has_no_ports(svc) {
            if pods::cluster_ip_none(svc) {
                members.push(Member {
                    port: None,
                    address,
                    ready,
                });
            }
            continue;
        }
        for port in ports::endpoints_ports(svc, pod) {
            members.push(Member {
                port: Some(port),
                address: address.clone(),
                ready,
            });
        }
    }
    repack(members)
}

/// Group addresses by the set of ports they offer: one subset per distinct
/// (ready addresses, not-ready addresses) set, with all its ports. Subsets,
/// addresses and ports come out sorted, so equal inputs give equal output.
fn repack(members: Vec<Member>) -> Vec<EndpointSubset> {
    // Per port: its addresses, ready winning if a pod is listed both ways.
    let mut by_port: BTreeMap<Option<PortId>, (Option<EndpointPort>, AddrSet)> = BTreeMap::new();
    for m in members {
        let id = m.port.as_ref().map(port_id);
        let entry = by_port
            .entry(id)
            .or_insert_with(|| (m.port.clone(), BTreeMap::new()));
        let slot = entry
            .1
            .entry(addr_id(&m.address))
            .or_insert((m.address, m.ready));
        slot.1 |= m.ready;
    }
    // Per distinct address set: the ports offering exactly it.
    // Keyed by the set's signature: each address with its readiness.
    type Signature = Vec<(AddrId, bool)>;
    let mut by_set: BTreeMap<Signature, (Vec<EndpointPort>, AddrSet)> = BTreeMap::new();
    for (_, (port, addrs)) in by_port {
        let sig = addrs.iter().map(|(k, (_, r))| (k.clone(), *r)).collect();
        let entry = by_set.entry(sig).or_insert_with(|| (Vec::new(), addrs));
        entry.0.extend(port);
    }
    let mut subsets: Vec<(Vec<PortId>, EndpointSubset)> = by_set
        .into_values()
        .map(|(ports, addrs)| {
            let (ready, unready): (Vec<_>, Vec<_>) = addrs.into_values().partition(|(_, r)| *r);
            let strip = |v: Vec<(EndpointAddress, bool)>| {
                let v: Vec<EndpointAddress> = v.into_iter().map(|(a, _)| a).collect();
                (!v.is_empty()).then_some(v)
            };
            let key: Vec<PortId> = ports.iter().map(port_id).collect();
            let subset = EndpointSubset {
                addresses: strip(ready),
                not_ready_addresses: strip(unready),
                ports: (!ports.is_empty()).then_some(ports),
            };
            (key, subset)
        })
        .collect();
    subsets.sort_by(|a, b| a.0.cmp(&b.0));
    subsets.into_iter().map(|(_, s)| s).collect()
}

fn len(v: &Option<Vec<EndpointAddress>>) -> usize {
    v.as_ref().map_or(0, Vec::len)
}

/// Addresses (ready and not) in `subsets`.
pub fn count(subsets: &[EndpointSubset]) -> usize {
    subsets
        .iter()
        .map(|s| len(&s.addresses) + len(&s.not_ready_addresses))
        .sum()
}

/// Cut `subsets` to [`MAX_ADDRESSES`], as upstream does: if the ready
/// addresses alone exceed it, keep only ready ones, spread over the subsets
/// in proportion to their size; else keep every ready address and fill the
/// rest with not-ready ones the same way. Returns whether anything was cut.
pub fn truncate(subsets: &mut [EndpointSubset]) -> bool {
    let ready: usize = subsets.iter().map(|s| len(&s.addresses)).sum();
    let unready: usize = subsets.iter().map(|s| len(&s.not_ready_addresses)).sum();
    if ready + unready <= MAX_ADDRESSES {
        return false;
    }
    let cut_ready = ready > MAX_ADDRESSES;
    let (budget, total) = if cut_ready {
        (MAX_ADDRESSES, ready)
    } else {
        (MAX_ADDRESSES - ready, unready)
    };
    let mut left = budget;
    for s in subsets.iter_mut() {
        let list = if cut_ready {
            s.not_ready_addresses = None;
            &mut s.addresses
        } else {
            &mut s.not_ready_addresses
        };
        let n = len(list);
        // This subset's share, rounded up; the last ones get what is left.
        let share = (n * budget).div_ceil(total).min(left);
        if let Some(v) = list.as_mut() {
            v.truncate(share);
        }
        if list.as_ref().is_some_and(Vec::is_empty) {
            *list = None;
        }
        left -= len(list);
    }
    true
}

/// `subsets` with empty lists written as absent, as the server returns them.
pub fn normalized(subsets: Option<&Vec<EndpointSubset>>) -> Vec<EndpointSubset> {
    let none_if_empty = |v: &Option<Vec<EndpointAddress>>| v.clone().filter(|v| !v.is_empty());
    subsets
        .into_iter()
        .flatten()
        .map(|s| EndpointSubset {
            addresses: none_if_empty(&s.addresses),
            not_ready_addresses: none_if_empty(&s.not_ready_addresses),
            ports: s.ports.clone().filter(|p| !p.is_empty()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(spec: serde_json::Value) -> Service {
        serde_json::from_value(
            json!({ "metadata": { "name": "web", "namespace": "n" }, "spec": spec }),
        )
        .unwrap()
    }

    fn pod(name: &str, ip: &str, ready: bool, ports: serde_json::Value) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": { "name": name, "namespace": "n", "uid": format!("uid-{name}") },
                "spec": { "nodeName": "node-1", "containers": [{ "name": "c", "ports": ports }] },
                "status": { "phase": "Running", "podIP": ip,
                            "conditions": [{ "type": "Ready", "status": if ready { "True" } else { "False" } }] },
            }))
            .unwrap(),
        )
    }

    fn ips(v: &Option<Vec<EndpointAddress>>) -> Vec<&str> {
        v.iter().flatten().map(|a| a.ip.as_str()).collect()
    }

    fn named_ports() -> serde_json::Value {
        json!({ "clusterIP": "10.96.0.9", "selector": { "app": "web" }, "ports": [
            { "name": "http", "port": 80, "protocol": "TCP", "targetPort": "http" },
            { "name": "admin", "port": 81, "protocol": "TCP", "targetPort": 9000 },
        ] })
    }

    #[test]
    fn pods_with_the_same_ports_share_a_subset() {
        let s = svc(named_ports());
        let with_http = json!([{ "name": "http", "containerPort": 8080 }]);
        let pods = vec![
            pod("b", "10.0.0.2", true, with_http.clone()),
            pod("a", "10.0.0.1", false, with_http),
            pod("c", "10.0.0.3", true, json!([])),
        ];
        let subsets = desired(&s, &pods);
        // The numeric port reaches all three pods, the named one only the
        // two that name it: two address sets, so two subsets.
        assert_eq!(subsets.len(), 2);
        let admin = &subsets[0];
        assert_eq!(ips(&admin.addresses), vec!["10.0.0.2", "10.0.0.3"]);
        assert_eq!(ips(&admin.not_ready_addresses), vec!["10.0.0.1"]);
        let ports: Vec<(Option<&str>, i32)> = admin
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.as_deref(), p.port))
            .collect();
        assert_eq!(ports, vec![(Some("admin"), 9000)]);
        let http = &subsets[1];
        assert_eq!(ips(&http.addresses), vec!["10.0.0.2"]);
        assert_eq!(ips(&http.not_ready_addresses), vec!["10.0.0.1"]);
        let ports: Vec<(Option<&str>, i32)> = http
            .ports
            .iter()
            .flatten()
            .map(|p| (p.name.as_deref(), p.port))
            .collect();
        assert_eq!(ports, vec![(Some("http"), 8080)]);
        // Pods offering the same ports share one subset with all of them.
        let both = desired(&s, &pods[..2]);
        assert_eq!(both.len(), 1);
        assert_eq!(both[0].ports.as_ref().unwrap().len(), 2);
        let a = &both[0].not_ready_addresses.as_ref().unwrap()[0];
        assert_eq!(a.node_name.as_deref(), Some("node-1"));
        let r = a.target_ref.as_ref().unwrap();
        assert_eq!(
            (
                r.kind.as_deref(),
                r.namespace.as_deref(),
                r.name.as_deref(),
                r.uid.as_deref()
            ),
            (Some("Pod"), Some("n"), Some("a"), Some("uid-a"))
        );
    }

    #[test]
    fn publish_not_ready_lists_every_pod_as_ready() {
        let mut spec = named_ports();
        spec["publishNotReadyAddresses"] = json!(true);
        let pods = vec![pod(
            "a",
            "10.0.0.1",
            false,
            json!([{ "name": "http", "containerPort": 8080 }]),
        )];
        let subsets = desired(&svc(spec), &pods);
        assert_eq!(ips(&subsets[0].addresses), vec!["10.0.0.1"]);
        assert!(subsets[0].not_ready_addresses.is_none());
    }

    #[test]
    fn headless_without_ports_lists_addresses_with_hostnames() {
        let s = svc(json!({ "clusterIP": "None", "selector": { "app": "db" } }));
        let mut p: Pod = (*pod("db-0", "10.0.0.7", true, json!([]))).clone();
        let spec = p.spec.as_mut().unwrap();
        spec.hostname = Some("db-0".into());
        spec.subdomain = Some("web".into());
        let subsets = desired(&s, &[Arc::new(p)]);
        assert_eq!(subsets.len(), 1);
        assert!(subsets[0].ports.is_none());
        let a = &subsets[0].addresses.as_ref().unwrap()[0];
        assert_eq!(a.hostname.as_deref(), Some("db-0"));
        // A service with a cluster IP and no ports lists nobody.
        let s = svc(json!({ "clusterIP": "10.96.0.3", "selector": { "app": "db" } }));
        assert!(desired(&s, &[pod("x", "10.0.0.8", true, json!([]))]).is_empty());
    }

    #[test]
    fn terminating_pods_are_left_out_unless_unready_ones_are_published() {
        let mut p: Pod = (*pod(
            "a",
            "10.0.0.1",
            true,
            json!([{ "name": "http", "containerPort": 1 }]),
        ))
        .clone();
        p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2024-01-01T00:00:00Z".parse().unwrap(),
        ));
        let p = Arc::new(p);
        assert!(desired(&svc(named_ports()), std::slice::from_ref(&p)).is_empty());
        let mut spec = named_ports();
        spec["publishNotReadyAddresses"] = json!(true);
        assert_eq!(count(&desired(&svc(spec), &[p])), 1);
    }

    fn addrs(prefix: &str, n: usize) -> Option<Vec<EndpointAddress>> {
        Some(
            (0..n)
                .map(|i| EndpointAddress {
                    ip: format!("{prefix}.{i}"),
                    ..EndpointAddress::default()
                })
                .collect(),
        )
    }

    #[test]
    fn truncation_keeps_ready_first_in_proportion() {
        // 600 + 300 ready, 400 not ready: all ready stay, 100 not ready fit.
        let mut s = vec![
            EndpointSubset {
                addresses: addrs("a", 600),
                not_ready_addresses: addrs("b", 300),
                ports: None,
            },
            EndpointSubset {
                addresses: addrs("c", 300),
                not_ready_addresses: addrs("d", 100),
                ports: None,
            },
        ];
        assert!(truncate(&mut s));
        assert_eq!(count(&s), MAX_ADDRESSES);
        assert_eq!(
            (len(&s[0].addresses), len(&s[0].not_ready_addresses)),
            (600, 75)
        );
        assert_eq!(
            (len(&s[1].addresses), len(&s[1].not_ready_addresses)),
            (300, 25)
        );
        // 1500 ready: not-ready ones all go, ready ones by share.
        let mut s = vec![
            EndpointSubset {
                addresses: addrs("a", 1000),
                not_ready_addresses: addrs("b", 5),
                ports: None,
            },
            EndpointSubset {
                addresses: addrs("c", 500),
                not_ready_addresses: None,
                ports: None,
            },
        ];
        assert!(truncate(&mut s));
        assert_eq!(len(&s[0].addresses), 667);
        assert_eq!(len(&s[1].addresses), 333);
        assert!(s[0].not_ready_addresses.is_none());
        let mut small = vec![EndpointSubset {
            addresses: addrs("a", 10),
            ..EndpointSubset::default()
        }];
        assert!(!truncate(&mut small));
    }
}
