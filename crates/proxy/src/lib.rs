//! The service proxy: Services and EndpointSlices to one nftables table.
//!
//! - `rules.rs`: the desired ruleset, a pure function of the API objects;
//! - `nft.rs`: the OS boundary (libnftables or `nft -f -`, one transaction
//!   per apply);
//! - `conntrack.rs`: stale UDP conntrack entries after an apply (the
//!   `conntrack` tool), as kube-proxy clears them;
//! - this file: the sync loop over kube-rs reflectors;
//! - `servicelb.rs`: k3s's ServiceLB, load-balancer addresses from node IPs.

pub mod conntrack;
pub mod nft;
pub mod rules;
pub mod script;
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

use conntrack::Conntrack;
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
    pub fn start(
        client: Client,
        cfg: Config,
        nft: Arc<dyn Nft>,
        conntrack: Arc<dyn Conntrack>,
    ) -> Proxy {
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
        tasks.push(tokio::spawn(sync_loop(stores, cfg, nft, conntrack, notify)));
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

#[derive(Clone)]
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

async fn sync_loop(
    stores: Stores,
    cfg: Config,
    nft: Arc<dyn Nft>,
    conntrack: Arc<dyn Conntrack>,
    notify: Arc<Notify>,
) {
    // Rules from partial lists would reject services whose endpoints were
    // not listed yet: wait for every first list.
    let _ = stores.services.wait_until_ready().await;
    let _ = stores.slices.wait_until_ready().await;
    let _ = stores.nodes.wait_until_ready().await;
    let mut applied: Option<Ruleset> = None;
    let mut last_full = Instant::now();
    loop {
        let started = Instant::now();
        let resync = last_full.elapsed() >= cfg.sync_period;
        // Computing and applying take tens of milliseconds at a thousand
        // services: off the async workers.
        let job = {
            let (stores, cfg, nft, ct, prev) = (
                stores.clone(),
                cfg.clone(),
                nft.clone(),
                conntrack.clone(),
                applied.take(),
            );
            move || sync_once(&stores, &cfg, &*nft, &*ct, prev, resync)
        };
        let (now, ok) = tokio::task::spawn_blocking(job)
            .await
            .unwrap_or((None, false));
        applied = now;
        let retry = !ok;
        if ok && resync {
            last_full = Instant::now();
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

/// One sync: compute, and apply what differs from `applied` (everything
/// on `resync`). Returns what the table now holds (None: unknown, so the
/// next sync rebuilds it) and whether the apply succeeded.
fn sync_once(
    stores: &Stores,
    cfg: &Config,
    nft: &dyn Nft,
    conntrack: &dyn Conntrack,
    applied: Option<Ruleset>,
    resync: bool,
) -> (Option<Ruleset>, bool) {
    let started = Instant::now();
    let desired = stores.compute(cfg);
    let compute_time = started.elapsed();
    if !resync && applied.as_ref() == Some(&desired) {
        return (applied, true);
    }
    // The first apply rebuilds the table; a resync refills it whole
    // (repairing outside changes, keeping affinity entries); any other
    // change touches only what differs.
    let (script, mode) = match &applied {
        Some(prev) if !resync => (desired.diff(prev), "diff"),
        Some(prev) => (desired.render(Some(prev)), "refill"),
        None => (desired.render(None), "create"),
    };
    let started = Instant::now();
    match nft.apply(&script) {
        Ok(()) => {
            tracing::info!(
                table = %cfg.table,
                rules = desired.size(),
                chains = desired.chains.len(),
                compute_ms = compute_time.as_secs_f64() * 1e3,
                apply_ms = started.elapsed().as_secs_f64() * 1e3,
                mode,
                "proxy rules applied"
            );
            // Only now do the new rules NAT a new flow: clear the entries
            // that would keep old flows on the old (or no) translation. A
            // first apply knows no previous state: every UDP destination
            // with endpoints is cleared once.
            let before = applied.map(|a| a.udp).unwrap_or_default();
            for f in conntrack::stale(&before, &desired.udp) {
                if let Err(e) = conntrack.flush(&f) {
                    tracing::warn!(error = %e, flush = ?f, "clearing stale UDP conntrack entries failed");
                }
            }
            (Some(desired), true)
        }
        Err(e) => {
            tracing::error!(table = %cfg.table, error = %e, "applying the proxy rules failed; rebuilding the table next");
            (None, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::runtime::watcher::Event;

    fn obj<K: serde::de::DeserializeOwned>(v: serde_json::Value) -> K {
        serde_json::from_value(v).unwrap()
    }

    /// The loop over hand-fed stores and the recording fake: it waits for
    /// the first lists, creates the table once, then sends diffs; after a
    /// failed apply it rebuilds the table.
    #[tokio::test]
    async fn sync_loop_creates_then_diffs_and_rebuilds_after_a_failure() {
        let (services, mut sw) = reflector::store::<Service>();
        let (slices, mut lw) = reflector::store::<EndpointSlice>();
        let (nodes, mut nw) = reflector::store::<Node>();
        let rec = Arc::new(nft::Recorder::default());
        let notify = Arc::new(Notify::new());
        let mut cfg = Config::new("n1");
        cfg.table = "t".into();
        cfg.min_sync_period = Duration::from_millis(5);
        let task = tokio::spawn(sync_loop(
            Stores {
                services,
                slices,
                nodes,
            },
            cfg,
            rec.clone(),
            Arc::new(conntrack::Recorder::default()),
            notify.clone(),
        ));
        let svc: Service = obj(
            serde_json::json!({ "metadata": { "name": "web", "namespace": "ns" },
            "spec": { "clusterIP": "10.43.0.10", "ports": [{ "port": 80 }] } }),
        );
        let slice = |ip: &str| -> EndpointSlice {
            obj(
                serde_json::json!({ "metadata": { "name": "web-1", "namespace": "ns",
                "labels": { "kubernetes.io/service-name": "web" } },
                "addressType": "IPv4", "ports": [{ "port": 8080 }],
                "endpoints": [{ "addresses": [ip], "conditions": { "ready": true } }] }),
            )
        };
        let scripts = |n: usize| {
            let rec = rec.clone();
            async move {
                for _ in 0..200 {
                    let s = rec.scripts.lock().unwrap().clone();
                    if s.len() >= n {
                        return s;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                panic!("fewer than {n} applies: {:?}", rec.scripts.lock().unwrap());
            }
        };
        // Nothing before every first list is complete.
        sw.apply_watcher_event(&Event::Init);
        sw.apply_watcher_event(&Event::InitApply(svc));
        sw.apply_watcher_event(&Event::InitDone);
        lw.apply_watcher_event(&Event::Init);
        lw.apply_watcher_event(&Event::InitApply(slice("10.42.0.5")));
        lw.apply_watcher_event(&Event::InitDone);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(rec.scripts.lock().unwrap().is_empty());
        nw.apply_watcher_event(&Event::Init);
        nw.apply_watcher_event(&Event::InitDone);
        let s = scripts(1).await;
        assert!(s[0].starts_with("add table ip t\ndelete table ip t\n"));
        assert!(s[0].contains("{ 0 : 10.42.0.5 . 8080 }"));

        lw.apply_watcher_event(&Event::Apply(slice("10.42.0.6")));
        notify.notify_one();
        let s = scripts(2).await;
        // Only the endpoint map's element and the hairpin pair change.
        assert_eq!(
            s[1],
            "delete element ip t eps-ns/web/tcp/80 { 0 }\n\
             add element ip t eps-ns/web/tcp/80 { 0 : 10.42.0.6 . 8080 }\n\
             delete element ip t hairpin { 10.42.0.5 . 10.42.0.5 }\n\
             add element ip t hairpin { 10.42.0.6 . 10.42.0.6 }\n"
        );
        // A wake-up without a change applies nothing.
        notify.notify_one();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(rec.scripts.lock().unwrap().len(), 2);

        *rec.fail.lock().unwrap() = Some("boom".into());
        lw.apply_watcher_event(&Event::Apply(slice("10.42.0.7")));
        notify.notify_one();
        tokio::time::sleep(Duration::from_millis(50)).await;
        *rec.fail.lock().unwrap() = None;
        // Retried within a second, as a rebuild.
        let s = scripts(3).await;
        assert!(s[2].contains("delete table ip t"), "{}", s[2]);
        assert!(s[2].contains("{ 0 : 10.42.0.7 . 8080 }"));
        task.abort();
    }

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
