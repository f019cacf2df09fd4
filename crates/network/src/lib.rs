//! The pod network across nodes (flannel's role): every other node's
//! podCIDR routed to it over VXLAN or host-gw, kept in sync from the Node
//! objects, and masquerading for traffic leaving the cluster CIDR.
//!
//! - `plan.rs`: the desired routes, neighbours and FDB entries (pure);
//! - `diff.rs`: the changes from what the kernel has (pure);
//! - `kernel.rs`: the OS boundary (iproute2) behind the `Kernel` trait;
//! - `masq.rs`: the nftables table, applied through `proxy::nft`;
//! - `lab.rs`, `bench.rs`: two hosts in network namespaces, for the kernel
//!   test and `wharf bench network`;
//! - this file: the loop over a Node reflector, and the VTEP annotations.

pub mod bench;
pub mod bench_latency;
pub mod diff;
pub mod kernel;
pub mod lab;
pub mod masq;
pub mod plan;

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use proxy::nft::Nft;
use tokio::sync::Notify;

use kernel::{IpRoute, Kernel, Op, VxlanSpec};
use plan::{Backend, Cidr, Local, Mac};

/// flannel's VXLAN defaults (so a wharf node and its peers agree).
pub const VNI: u32 = 1;
pub const VXLAN_PORT: u16 = 8472;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Kernel(#[from] kernel::Error),
    #[error(transparent)]
    Nft(#[from] proxy::nft::Error),
    #[error("{0}")]
    Config(String),
    #[error("publishing the node's network annotations: {0}")]
    Api(#[from] kube::Error),
}

/// The network's settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub node_name: String,
    /// The node's IP: the tunnel's local address, unless `iface` is given.
    pub node_ip: Ipv4Addr,
    pub backend: Backend,
    /// The interface tunnels (or host-gw routes) use (k3s's
    /// `--flannel-iface`); default: the one holding `node_ip`.
    pub iface: Option<String>,
    pub cluster_cidr: Cidr,
    /// The VXLAN device.
    pub device: String,
    /// The nft table (`ip <table>`) with the masquerade rules.
    pub table: String,
    /// A full resync at least this often, repairing outside changes.
    pub resync: Duration,
}

/// 8 hex digits of a hash of the data directory: like the CNI bridge's
/// name, so two wharf nodes on one host never share a device or table.
fn data_dir_tag(data_dir: &Path) -> String {
    let canon = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let d = ring::digest::digest(&ring::digest::SHA256, canon.as_os_str().as_encoded_bytes());
    let h = d.as_ref();
    format!("{:02x}{:02x}{:02x}{:02x}", h[0], h[1], h[2], h[3])
}

impl Config {
    /// The settings of a node whose data directory is `data_dir`: the
    /// device is `wv` + the tag (the bridge is `wh` + the same tag), the
    /// table `wharf-net-` + the tag.
    pub fn new(
        node_name: impl Into<String>,
        node_ip: Ipv4Addr,
        backend: Backend,
        cluster_cidr: Cidr,
        data_dir: &Path,
    ) -> Config {
        let tag = data_dir_tag(data_dir);
        Config {
            node_name: node_name.into(),
            node_ip,
            backend,
            iface: None,
            cluster_cidr,
            device: format!("wv{tag}"),
            table: format!("wharf-net-{tag}"),
            resync: Duration::from_secs(60),
        }
    }
}

/// The interface tunnels use, with the address they start from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Underlay {
    pub name: String,
    pub ip: Ipv4Addr,
    pub mtu: u32,
    /// Its IPv4 subnets (host-gw next hops must be on one).
    pub subnets: Vec<Cidr>,
}

/// Find the underlay: `iface` and its first IPv4 address, or the
/// interface holding the node IP.
pub fn underlay(kernel: &dyn Kernel, cfg: &Config) -> Result<Underlay, Error> {
    match &cfg.iface {
        Some(name) => {
            let l = kernel
                .link(name)?
                .ok_or_else(|| Error::Config(format!("interface {name:?} does not exist")))?;
            let ip =
                l.addrs.first().map(|a| a.addr).ok_or_else(|| {
                    Error::Config(format!("interface {name:?} has no IPv4 address"))
                })?;
            Ok(Underlay {
                subnets: subnets(&l),
                name: l.name,
                ip,
                mtu: l.mtu,
            })
        }
        None => {
            let l = kernel.link_with_address(cfg.node_ip)?.ok_or_else(|| {
                Error::Config(format!(
                    "no interface holds the node IP {}; name one with --flannel-iface",
                    cfg.node_ip
                ))
            })?;
            Ok(Underlay {
                subnets: subnets(&l),
                name: l.name,
                ip: cfg.node_ip,
                mtu: l.mtu,
            })
        }
    }
}

fn subnets(l: &kernel::Link) -> Vec<Cidr> {
    l.addrs.iter().map(|a| a.normalized()).collect()
}

/// The MTU pods must use (the CNI bridge's `mtu`).
pub fn pod_mtu(cfg: &Config) -> Result<u32, Error> {
    let u = underlay(&IpRoute::default(), cfg)?;
    Ok(plan::pod_mtu(cfg.backend, u.mtu))
}

/// Run the network of `cfg.node_name` until the task is dropped, with the
/// host's kernel. The state is left in place on exit (a restart must not
/// cut pod traffic); [`cleanup`] removes it.
pub async fn run(client: Client, cfg: Config) -> Result<(), Error> {
    run_with(
        client,
        cfg,
        Arc::new(IpRoute::default()),
        proxy::nft::host(),
    )
    .await
}

/// [`run`] with another kernel and nft (a network namespace in tests).
pub async fn run_with(
    client: Client,
    cfg: Config,
    kernel: Arc<dyn Kernel>,
    nft: Arc<dyn Nft>,
) -> Result<(), Error> {
    let u = {
        let (k, c) = (kernel.clone(), cfg.clone());
        tokio::task::spawn_blocking(move || underlay(&*k, &c))
            .await
            .expect("underlay lookup panicked")?
    };
    tracing::info!(backend = cfg.backend.as_str(), underlay = %u.name, ip = %u.ip, mtu = u.mtu, device = %cfg.device, "pod network starting");
    let notify = Arc::new(Notify::new());
    let (nodes, writer) = reflector::store::<Node>();
    let api: Api<Node> = Api::all(client);
    let watch = tokio::spawn(reflect(api.clone(), writer, notify.clone()));
    let _stop_watch = AbortOnDrop(watch);
    let _ = nodes.wait_until_ready().await;
    // The script last applied and when: re-applied when it changes, and
    // once per resync period in case someone removed or changed the table.
    let mut applied_table: Option<(String, std::time::Instant)> = None;
    loop {
        let ok = match sync(&cfg, &u, &nodes, &kernel, &nft, &mut applied_table).await {
            // The Node may have been recreated without our annotations:
            // compared with the cached Node every time, patched when they differ.
            Ok(Some(mac)) => {
                match publish(&api, &cfg.node_name, &nodes, &annotations(&cfg, &u, mac)).await {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::warn!(error = %e, "publishing the VTEP failed; retrying");
                        false
                    }
                }
            }
            // Our Node or its podCIDR is not there yet.
            Ok(None) => true,
            Err(e) => {
                tracing::warn!(error = %e, "pod network sync failed; retrying");
                applied_table = None;
                false
            }
        };
        let wait = if ok {
            cfg.resync
        } else {
            Duration::from_secs(2)
        };
        let _ = tokio::time::timeout(wait, notify.notified()).await;
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn reflect(api: Api<Node>, writer: reflector::store::Writer<Node>, notify: Arc<Notify>) {
    let stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .modify(|n| n.managed_fields_mut().clear())
        .reflect(writer);
    let mut stream = std::pin::pin!(stream);
    while let Some(ev) = stream.next().await {
        match ev {
            Ok(watcher::Event::Init) | Ok(watcher::Event::InitApply(_)) => {}
            Ok(_) => notify.notify_one(),
            Err(e) => tracing::warn!(error = %e, "node watch failed; retrying"),
        }
    }
}

/// One sync: the nft table, the device, then the peers. Returns
/// `Some(vtep MAC)` (no MAC in host-gw mode) once done, and `None` while
/// our Node has no podCIDR yet.
async fn sync(
    cfg: &Config,
    u: &Underlay,
    nodes: &Store<Node>,
    kernel: &Arc<dyn Kernel>,
    nft: &Arc<dyn Nft>,
    applied_table: &mut Option<(String, std::time::Instant)>,
) -> Result<Option<Option<Mac>>, Error> {
    let all = nodes.state();
    let own = all.iter().find(|n| n.name_any() == cfg.node_name);
    let Some(own_cidr) = own
        .and_then(|n| n.spec.as_ref()?.pod_cidr.as_deref()?.parse::<Cidr>().ok())
        .map(Cidr::normalized)
    else {
        return Ok(None);
    };
    let peers: Vec<plan::Peer> = all.iter().filter_map(|n| plan::peer(n)).collect();
    let script = masq::render(&cfg.table, cfg.cluster_cidr, Some(own_cidr));
    let (cfg, u, kernel, nft) = (cfg.clone(), u.clone(), kernel.clone(), nft.clone());
    let table_done = applied_table
        .as_ref()
        .is_some_and(|(s, at)| *s == script && at.elapsed() < cfg.resync);
    let rendered = script.clone();
    let job = move || -> Result<Option<Mac>, Error> {
        if !table_done {
            nft.apply(&script)?;
        }
        apply(&cfg, &u, own_cidr, &peers, &*kernel)
    };
    let mac = tokio::task::spawn_blocking(job)
        .await
        .expect("network sync panicked")?;
    if !table_done {
        *applied_table = Some((rendered, std::time::Instant::now()));
    }
    Ok(Some(mac))
}

/// One pass over the kernel, without the API: the VXLAN device (or its
/// removal in host-gw mode), then the routes, neighbours and FDB entries
/// for `peers`. Returns the VTEP MAC to publish (None in host-gw mode).
/// Blocking (it runs iproute2).
pub fn apply(
    cfg: &Config,
    u: &Underlay,
    own_cidr: Cidr,
    peers: &[plan::Peer],
    kernel: &dyn Kernel,
) -> Result<Option<Mac>, Error> {
    let spec = (cfg.backend == Backend::Vxlan).then(|| VxlanSpec {
        name: cfg.device.clone(),
        vni: VNI,
        port: VXLAN_PORT,
        local: u.ip,
        underlay: u.name.clone(),
        mtu: plan::pod_mtu(cfg.backend, u.mtu),
        address: own_cidr.network(),
    });
    let existing = kernel.link(&cfg.device)?;
    let ops = diff::device_ops(&cfg.device, existing.as_ref(), spec.as_ref());
    if !ops.is_empty() {
        tracing::info!(device = %cfg.device, ?ops, "configuring the VXLAN device");
        kernel.apply(&ops)?;
    }
    let mac = match &spec {
        Some(_) => kernel
            .link(&cfg.device)?
            .and_then(|l| l.mac)
            .ok_or_else(|| Error::Config(format!("device {} has no MAC", cfg.device)))?
            .into(),
        None => None,
    };
    let local = Local {
        node_name: cfg.node_name.clone(),
        backend: cfg.backend,
        device: cfg.device.clone(),
        underlay: u.name.clone(),
        underlay_subnets: u.subnets.clone(),
        ip: u.ip,
        pod_cidr: Some(own_cidr),
    };
    let desired = plan::plan(&local, peers);
    let mut observed = kernel.observe(&cfg.device)?;
    // Routes of ours elsewhere (another wharf node's device on this host)
    // are not this node's to judge.
    observed
        .routes
        .retain(|r| r.dev == cfg.device || r.dev == u.name);
    let ops = diff::peer_ops(&observed, &desired);
    if !ops.is_empty() {
        let removals = ops
            .iter()
            .filter(|o| matches!(o, Op::DelRoute(_) | Op::DelNeigh(_) | Op::DelFdb(_)))
            .count();
        tracing::info!(
            changes = ops.len(),
            removals,
            routes = desired.routes.len(),
            "pod network routes updated"
        );
        kernel.apply(&ops)?;
    }
    Ok(mac)
}

/// The annotations this node publishes for its peers.
fn annotations(cfg: &Config, u: &Underlay, mac: Option<Mac>) -> serde_json::Value {
    serde_json::json!({
        plan::ANNOTATION_BACKEND: cfg.backend.as_str(),
        plan::ANNOTATION_PUBLIC_IP: u.ip.to_string(),
        // null removes a MAC left from an earlier VXLAN run.
        plan::ANNOTATION_VTEP_MAC: mac.map(|m| m.to_string()),
    })
}

/// Merge-patch our annotations onto our Node, unless it already has them.
async fn publish(
    api: &Api<Node>,
    name: &str,
    nodes: &Store<Node>,
    want: &serde_json::Value,
) -> Result<(), Error> {
    let current = nodes
        .state()
        .into_iter()
        .find(|n| n.name_any() == name)
        .map(|n| n.annotations().clone())
        .unwrap_or_default();
    let same = want.as_object().expect("an object").iter().all(|(k, v)| {
        current
            .get(k)
            .map(|s| serde_json::Value::String(s.clone()))
            .unwrap_or(serde_json::Value::Null)
            == *v
    });
    if same {
        return Ok(());
    }
    let patch = serde_json::json!({"metadata": {"annotations": want}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    tracing::info!(node = name, annotations = %want, "published the node's pod network endpoint");
    Ok(())
}

/// Remove everything the network made: our routes, the VXLAN device and
/// the nft table (for `--cleanup` and tests).
pub fn cleanup(cfg: &Config, kernel: &dyn Kernel, nft: &dyn Nft) -> Result<(), Error> {
    let underlay = underlay(kernel, cfg).ok().map(|u| u.name);
    let observed = kernel.observe(&cfg.device)?;
    let mut ops: Vec<Op> = observed
        .routes
        .into_iter()
        .filter(|r| r.dev == cfg.device || Some(&r.dev) == underlay.as_ref())
        .map(Op::DelRoute)
        .collect();
    if kernel.link(&cfg.device)?.is_some_and(|l| l.vxlan.is_some()) {
        ops.push(Op::DeleteLink(cfg.device.clone()));
    }
    kernel.apply(&ops)?;
    nft.apply(&masq::delete(&cfg.table))?;
    Ok(())
}
