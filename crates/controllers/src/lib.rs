//! The controller manager: each controller is a level-triggered reconcile
//! function driven by kube-rs's runtime, talking to the API server over HTTPS
//! like any other client. It never touches the store.

pub mod cache;
pub mod csr;
pub mod deployment;
pub mod endpoints;
pub mod events;
pub mod gc;
pub mod namespace;
pub mod nodeipam;
pub mod nodelifecycle;
pub mod podgc;
pub mod replicaset;
pub mod rootca;
pub mod serviceaccount;
pub mod tainteviction;

use std::time::Duration;

/// The controller manager's settings, named after kube-controller-manager's
/// flags; `Default` holds upstream's defaults.
#[derive(Clone, Debug)]
pub struct Config {
    /// `--node-monitor-period`: how often node health is checked.
    pub node_monitor_period: Duration,
    /// `--node-monitor-grace-period`: a node whose Lease and status were not
    /// renewed for this long is marked Unknown.
    pub node_monitor_grace_period: Duration,
    /// `--node-startup-grace-period`: the same for a node that never posted
    /// a Ready condition.
    pub node_startup_grace_period: Duration,
    /// `--node-eviction-rate`: NoExecute taints added per second (per zone)
    /// in a healthy zone.
    pub node_eviction_rate: f64,
    /// `--secondary-node-eviction-rate`: the same in a partially disrupted
    /// zone larger than `large_cluster_size_threshold`.
    pub secondary_node_eviction_rate: f64,
    /// `--large-cluster-size-threshold`.
    pub large_cluster_size_threshold: usize,
    /// `--unhealthy-zone-threshold`: share of not-Ready nodes from which a
    /// zone is partially disrupted.
    pub unhealthy_zone_threshold: f64,
    /// `--allocate-node-cidrs`: run the node IPAM controller.
    pub allocate_node_cidrs: bool,
    /// `--cluster-cidr`: the pod network the node CIDRs are cut from.
    pub cluster_cidr: String,
    /// `--node-cidr-mask-size`: prefix length of each node's CIDR.
    pub node_cidr_mask_size: u8,
    /// `--terminated-pod-gc-threshold`: terminated pods kept before the
    /// oldest are deleted (0 turns that off).
    pub terminated_pod_gc_threshold: usize,
    /// How often the pod GC runs (upstream's fixed 20 s).
    pub pod_gc_period: Duration,
    /// How long a pod's node must stay absent before the pod GC deletes the
    /// pod (upstream's fixed 40 s quarantine).
    pub pod_gc_quarantine: Duration,
    /// The cluster CA bundle (PEM) the root CA publisher puts in every
    /// namespace's `kube-root-ca.crt`; `None` runs no publisher.
    pub root_ca_pem: Option<String>,
    /// The CA that signs approved client certificate requests
    /// (`--cluster-signing-cert-file`/`--cluster-signing-key-file`); `None`
    /// approves but signs nothing.
    pub signer: Option<csr::Signer>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_monitor_period: Duration::from_secs(5),
            node_monitor_grace_period: Duration::from_secs(50),
            node_startup_grace_period: Duration::from_secs(60),
            node_eviction_rate: 0.1,
            secondary_node_eviction_rate: 0.01,
            large_cluster_size_threshold: 50,
            unhealthy_zone_threshold: 0.55,
            allocate_node_cidrs: true,
            cluster_cidr: "10.42.0.0/16".into(),
            node_cidr_mask_size: 24,
            terminated_pod_gc_threshold: 12500,
            pod_gc_period: Duration::from_secs(20),
            pod_gc_quarantine: Duration::from_secs(40),
            root_ca_pem: None,
            signer: None,
        }
    }
}

impl Config {
    /// Fail on settings that cannot work (an unparsable `--cluster-cidr`),
    /// so that a command can refuse them before it starts anything.
    pub fn check(&self) -> anyhow::Result<()> {
        self.ipam().map(|_| ())
    }

    fn ipam(&self) -> anyhow::Result<Option<nodeipam::CidrSet>> {
        if !self.allocate_node_cidrs {
            return Ok(None);
        }
        Ok(Some(nodeipam::CidrSet::parse(
            &self.cluster_cidr,
            self.node_cidr_mask_size,
        )?))
    }
}

async fn rootca_task(client: kube::Client, ca: Option<String>) {
    match ca {
        Some(ca) => rootca::run(client, ca).await,
        None => std::future::pending().await,
    }
}

/// Start every controller on `client`; runs until the returned task is
/// aborted, which stops the controllers with it. Fails at once on settings
/// that cannot work (see [`Config::check`]).
pub fn start(client: kube::Client, cfg: Config) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let ipam = cfg.ipam()?;
    Ok(tokio::spawn(async move {
        // Aborting this task drops the tasks' guard, which aborts them too.
        let mut tasks = AbortOnDrop(vec![
            tokio::spawn(nodelifecycle::run(client.clone(), cfg.clone())),
            tokio::spawn(tainteviction::run(client.clone())),
            tokio::spawn(podgc::run(client.clone(), cfg.clone())),
            tokio::spawn(namespace::run(client.clone())),
            tokio::spawn(serviceaccount::run(client.clone())),
            tokio::spawn(rootca_task(client.clone(), cfg.root_ca_pem.clone())),
            tokio::spawn(replicaset::run(client.clone())),
            tokio::spawn(deployment::run(client.clone())),
            tokio::spawn(endpoints::run(client.clone())),
            tokio::spawn(gc::run(client.clone())),
            tokio::spawn(csr::run(client.clone(), cfg.signer.clone())),
            tokio::spawn(csr::cleaner::run(client.clone())),
        ]);
        if let Some(set) = ipam {
            tasks
                .0
                .push(tokio::spawn(nodeipam::run(client.clone(), set)));
        }
        let _ = futures::future::join_all(tasks.0.iter_mut()).await;
        tracing::warn!("controller manager stopped");
    }))
}

/// Tasks aborted when this is dropped: a controller's helper tasks end with it.
pub(crate) struct AbortOnDrop(pub(crate) Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

/// How long a controller waits before retrying an object whose reconcile failed.
pub const ERROR_REQUEUE: Duration = Duration::from_secs(5);
