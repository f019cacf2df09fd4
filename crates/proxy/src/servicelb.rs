//! ServiceLB, after k3s's: every LoadBalancer Service (without a
//! `loadBalancerClass`) gets `status.loadBalancer.ingress` = the nodes'
//! addresses with `ipMode: VIP`, and each node's proxy serves those
//! addresses like external IPs. k3s runs a svclb pod per node and lists the
//! nodes running one; wharf's proxy runs on every node, so every node
//! address is listed. A level-triggered loop: any Service or Node change
//! re-checks every LoadBalancer Service and writes only differences.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{LoadBalancerIngress, Node, Service};
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use tokio::sync::Notify;

/// The ingress list a LoadBalancer Service should have, or None if
/// ServiceLB does not own it (another type, or another class).
pub fn desired_ingress(svc: &Service, node_ips: &[Ipv4Addr]) -> Option<Vec<LoadBalancerIngress>> {
    let spec = svc.spec.as_ref()?;
    if spec.type_.as_deref() != Some("LoadBalancer") || spec.load_balancer_class.is_some() {
        return None;
    }
    let mut ips = node_ips.to_vec();
    ips.sort();
    ips.dedup();
    Some(
        ips.into_iter()
            .map(|ip| LoadBalancerIngress {
                ip: Some(ip.to_string()),
                ip_mode: Some("VIP".into()),
                ..LoadBalancerIngress::default()
            })
            .collect(),
    )
}

/// The InternalIP of each node (its ExternalIP if it has no InternalIP).
pub fn node_addresses(nodes: &[Arc<Node>]) -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    for n in nodes {
        let addrs = n
            .status
            .as_ref()
            .and_then(|s| s.addresses.clone())
            .unwrap_or_default();
        let pick = |t: &str| {
            addrs
                .iter()
                .filter(|a| a.type_ == t)
                .find_map(|a| a.address.parse::<Ipv4Addr>().ok())
        };
        out.extend(pick("InternalIP").or_else(|| pick("ExternalIP")));
    }
    out
}

/// Run until the future is dropped.
pub async fn run(client: Client) {
    let notify = Arc::new(Notify::new());
    let (services, w) = reflector::store::<Service>();
    let svc_watch = watch(Api::<Service>::all(client.clone()), w, notify.clone());
    let (nodes, w) = reflector::store::<Node>();
    let node_watch = watch(Api::<Node>::all(client.clone()), w, notify.clone());
    let work = reconcile_loop(client, services, nodes, notify);
    tokio::join!(svc_watch, node_watch, work);
}

async fn watch<K>(api: Api<K>, writer: reflector::store::Writer<K>, notify: Arc<Notify>)
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer);
    let mut stream = std::pin::pin!(stream);
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(_) => notify.notify_one(),
            Err(e) => tracing::warn!(error = %e, "servicelb watch failed; retrying"),
        }
    }
}

async fn reconcile_loop(
    client: Client,
    services: Store<Service>,
    nodes: Store<Node>,
    notify: Arc<Notify>,
) {
    let _ = services.wait_until_ready().await;
    let _ = nodes.wait_until_ready().await;
    loop {
        let ips = node_addresses(&nodes.state());
        let mut failed = false;
        for svc in services.state() {
            let Some(want) = desired_ingress(&svc, &ips) else {
                continue;
            };
            let have = svc
                .status
                .as_ref()
                .and_then(|s| s.load_balancer.as_ref())
                .and_then(|l| l.ingress.clone())
                .unwrap_or_default();
            if have == want {
                continue;
            }
            let ns = svc.metadata.namespace.as_deref().unwrap_or("default");
            let name = svc.metadata.name.as_deref().unwrap_or("");
            let api: Api<Service> = Api::namespaced(client.clone(), ns);
            let patch = serde_json::json!({ "status": { "loadBalancer": { "ingress": want } } });
            match api
                .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    tracing::info!(service = %format!("{ns}/{name}"), ingress = ?ips, "servicelb: load balancer addresses set")
                }
                Err(e) => {
                    tracing::warn!(service = %format!("{ns}/{name}"), error = %e, "servicelb: status update failed");
                    failed = true;
                }
            }
        }
        if failed {
            tokio::time::sleep(Duration::from_secs(1)).await;
            continue;
        }
        notify.notified().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(spec: serde_json::Value) -> Service {
        serde_json::from_value(
            json!({ "metadata": { "name": "s", "namespace": "ns" }, "spec": spec }),
        )
        .unwrap()
    }

    #[test]
    fn load_balancer_services_get_node_addresses_as_vip_ingress() {
        let ips = [
            Ipv4Addr::new(192, 168, 1, 11),
            Ipv4Addr::new(192, 168, 1, 10),
        ];
        let want = desired_ingress(&svc(json!({ "type": "LoadBalancer" })), &ips).unwrap();
        assert_eq!(
            serde_json::to_value(&want).unwrap(),
            json!([{ "ip": "192.168.1.10", "ipMode": "VIP" }, { "ip": "192.168.1.11", "ipMode": "VIP" }])
        );
        assert!(desired_ingress(&svc(json!({ "type": "NodePort" })), &ips).is_none());
        assert!(desired_ingress(
            &svc(json!({ "type": "LoadBalancer", "loadBalancerClass": "example.com/lb" })),
            &ips
        )
        .is_none());
    }

    #[test]
    fn node_addresses_prefer_internal_ips() {
        let node = |addrs: serde_json::Value| {
            Arc::new(
                serde_json::from_value::<Node>(
                    json!({ "metadata": { "name": "n" }, "status": { "addresses": addrs } }),
                )
                .unwrap(),
            )
        };
        let nodes = vec![
            node(
                json!([{ "type": "ExternalIP", "address": "203.0.113.1" }, { "type": "InternalIP", "address": "10.0.0.1" }]),
            ),
            node(json!([{ "type": "ExternalIP", "address": "203.0.113.2" }])),
            node(json!([{ "type": "Hostname", "address": "n3" }])),
        ];
        assert_eq!(
            node_addresses(&nodes),
            [Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(203, 0, 113, 2)]
        );
    }
}
