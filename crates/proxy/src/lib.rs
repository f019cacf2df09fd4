//! The service proxy: Services and EndpointSlices to one nftables table.
//!
//! - `rules.rs`: the desired ruleset, a pure function of the API objects;
//! - `nft.rs`: the OS boundary (`nft -f -`, one transaction per apply);
//! - this file: the sync loop over kube-rs reflectors;
//! - `servicelb.rs`: k3s's ServiceLB, load-balancer addresses from node IPs.

pub mod nft;
pub mod rules;
pub mod servicelb;

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use k8s_openapi::api::core::v1::{Node, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, Resource};
use tokio::sync::Notify;

use nft::Nft;
use rules::{Cidr, Input, NodePortAddresses, Ruleset};

/// The proxy's settings (kube-proxy's flags).
#[derive(Clone, Debug)]
pub struct Config {
    /// This node's name: endpoints on it are "local".
    pub node_name: String,
    /// The nft table (`ip <table>`); nothing else is ever touched.
    pub table: String,
    /// The pod network (kube-proxy's `--cluster-cidr`).
    pub cluster_cidr: Option<Cidr>,
    pub nodeport_addresses: NodePortAddresses,
    /// At most one apply per this period (kube-proxy's `--iptables-min-sync-period`).
    pub min_sync_period: Duration,
    /// A full refill at least this often, repairing outside changes.
    pub sync_period: Duration,
}

impl Config {
    pub fn new(node_name: impl Into<String>) -> Config {
        Config {
            node_name: node_name.into(),
            table: "wharf-proxy".into(),
            cluster_cidr: None,
            nodeport_addresses: NodePortAddresses::Primary,
            min_sync_period: Duration::from_millis(100),
            sync_period: Duration::from_secs(300),
        }
    }
}

/// A running proxy; dropping it or `stop` ends the loop and leaves the
/// rules in place (as kube-proxy does: a restart must not cut traffic).
pub struct Proxy {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    pub fn start(client: Client, cfg: Config, nft: Arc<dyn Nft>) -> Proxy {
        let notify = Arc::new(Notify::new());
        let (services, w) = reflector::store::<Service>();
        let mut tasks = vec![tokio::spawn(reflect(
            Api::all(client.clone()),
            w,
            notify.clone(),
        ))];
        let (slices, w) = reflector::store::<EndpointSlice>();
        tasks.push(tokio::spawn(reflect(
            Api::all(client.clone()),
            w,
            notify.clone(),
        )));
        let (nodes, w) = reflector::store::<Node>();
        tasks.push(tokio::spawn(reflect(Api::all(client), w, notify.clone())));
        let stores = Stores {
            services,
            slices,
            nodes,
        };
        tasks.push(tokio::spawn(sync_loop(stores, cfg, nft, notify)));
        Proxy { tasks }
    }

    pub async fn stop(mut self) {
        for t in std::mem::take(&mut self.tasks) {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Keep `writer` filled from a watch of `api`; every change marks the
/// ruleset dirty.
async fn reflect<K>(api: Api<K>, writer: reflector::store::Writer<K>, notify: Arc<Notify>)
where
    K: Resource<DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        // Never read; dropping them halves what the stores hold.
        .modify(|o| o.meta_mut().managed_fields = None)
        .reflect(writer);
    let mut stream = std::pin::pin!(stream);
    while let Some(ev) = stream.next().await {
        match ev {
            // Only a finished (re)list or a single change is a new state.
            Ok(watcher::Event::Init) | Ok(watcher::Event::InitApply(_)) => {}
            Ok(_) => notify.notify_one(),
            Err(e) => tracing::warn!(error = %e, "proxy watch failed; retrying"),
        }
    }
}

struct Stores {
    services: Store<Service>,
    slices: Store<EndpointSlice>,
    nodes: Store<Node>,
}

/// The node's IPv4 InternalIP and ExternalIP addresses.
pub fn node_ips(node: &Node) -> Vec<Ipv4Addr> {
    node.status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .into_iter()
        .flatten()
        .filter(|a| a.type_ == "InternalIP" || a.type_ == "ExternalIP")
        .filter_map(|a| a.address.parse().ok())
        .collect()
}

impl Stores {
    fn compute(&self, cfg: &Config) -> Ruleset {
        let services = self.services.state();
        let slices = self.slices.state();
        let node_ips = self
            .nodes
            .state()
            .iter()
            .find(|n| n.metadata.name.as_deref() == Some(cfg.node_name.as_str()))
            .map(|n| node_ips(n))
            .unwrap_or_default();
        rules::compute(&Input {
            table: &cfg.table,
            services: services.iter().map(|s| &**s).collect(),
            slices: slices.iter().map(|s| &**s).collect(),
            node_name: &cfg.node_name,
            node_ips,
            nodeport_addresses: cfg.nodeport_addresses.clone(),
            cluster_cidr: cfg.cluster_cidr,
        })
    }
}

async fn sync_loop(stores: Stores, cfg: Config, nft: Arc<dyn Nft>, notify: Arc<Notify>) {
    // Rules from partial lists would reject services whose endpoints were
    // not listed yet: wait for every first list.
    let _ = stores.services.wait_until_ready().await;
    let _ = stores.slices.wait_until_ready().await;
    let _ = stores.nodes.wait_until_ready().await;
    let mut applied: Option<Ruleset> = None;
    let mut last_full = Instant::now();
    loop {
        let started = Instant::now();
        let desired = stores.compute(&cfg);
        let compute_time = started.elapsed();
        let resync = last_full.elapsed() >= cfg.sync_period;
        let mut retry = false;
        if resync || applied.as_ref() != Some(&desired) {
            // The first apply rebuilds the table; a resync refills it whole
            // (repairing outside changes, keeping affinity entries); any
            // other change touches only what differs.
            let script = match &applied {
                Some(prev) if !resync => desired.diff(prev),
                prev => desired.render(prev.as_ref()),
            };
            let started = Instant::now();
            let nft2 = nft.clone();
            let result = tokio::task::spawn_blocking(move || nft2.apply(&script))
                .await
                .unwrap_or_else(|e| Err(nft::Error::Rejected(format!("apply task: {e}"))));
            match result {
                Ok(()) => {
                    tracing::info!(
                        table = %cfg.table,
                        rules = desired.size(),
                        chains = desired.chains.len(),
                        compute_ms = compute_time.as_secs_f64() * 1e3,
                        apply_ms = started.elapsed().as_secs_f64() * 1e3,
                        mode = if applied.is_none() { "create" } else if resync { "refill" } else { "diff" },
                        "proxy rules applied"
                    );
                    applied = Some(desired);
                    if resync {
                        last_full = Instant::now();
                    }
                }
                Err(e) => {
                    tracing::error!(table = %cfg.table, error = %e, "applying the proxy rules failed; rebuilding the table next");
                    // The table's state is unknown: rebuild it whole.
                    applied = None;
                    retry = true;
                }
            }
        }
        let wait = if retry {
            Duration::from_secs(1)
        } else {
            cfg.sync_period.saturating_sub(last_full.elapsed())
        };
        tokio::select! {
            _ = notify.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        // Debounce: changes arriving together make one apply.
        tokio::time::sleep(cfg.min_sync_period.saturating_sub(started.elapsed())).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ips_are_the_ipv4_internal_and_external_addresses() {
        let n: Node = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "n1" },
            "status": { "addresses": [
                { "type": "Hostname", "address": "n1" },
                { "type": "InternalIP", "address": "192.168.1.10" },
                { "type": "InternalIP", "address": "fd00::1" },
                { "type": "ExternalIP", "address": "203.0.113.9" }] }
        }))
        .unwrap();
        assert_eq!(
            node_ips(&n),
            [
                Ipv4Addr::new(192, 168, 1, 10),
                Ipv4Addr::new(203, 0, 113, 9)
            ]
        );
    }
}
