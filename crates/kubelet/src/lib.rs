//! The kubelet: makes its node's pods real through containerd (CRI v1) and
//! reports their truth back to the API server, as a kube-rs client like
//! any other (it never touches the store).
//!
//! - [`cri`]: the CRI calls the kubelet makes, a trait with the gRPC client.
//! - [`containerd`]: wharf's own supervised containerd.
//! - [`images`]: the locally built sandbox image and archive import.
//! - [`cni`]: the pod network's bridge configuration from `podCIDR`.
//! - [`masq`]: the pods' masquerade nft table, when no pod network has one.
//! - [`node`]: Node registration, Lease, status.
//! - [`pod`]: the pod sync loop.
//! - [`volume`]: configMap, secret, downwardAPI and projected volumes; subPath.
//! - [`server`]: the kubelet API (logs, exec, attach, port-forward); [`logs`]: CRI log files.

pub mod cni;
pub mod containerd;
pub mod cri;
pub mod gc;
pub mod images;
pub mod keyring;
pub mod logs;
pub mod masq;
pub mod node;
pub mod pod;
pub mod registries;
pub mod server;
pub mod volume;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::Client;

/// Errors of the kubelet.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request to the API server failed.
    #[error("{what}: {source}")]
    Api {
        /// What was being done.
        what: String,
        /// The client's error.
        #[source]
        source: kube::Error,
    },
    /// A CRI call failed.
    #[error(transparent)]
    Cri(#[from] cri::CriError),
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The runtime misbehaved.
    #[error("{0}")]
    Runtime(String),
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn api_err(what: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let what = what.into();
    move |source| Error::Api { what, source }
}

pub(crate) struct AbortOnDrop(pub Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for t in &self.0 {
            t.abort();
        }
    }
}

/// The kubelet's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// The Node's name.
    pub node_name: String,
    /// wharf's data directory; the kubelet's files go under `agent/`.
    pub data_dir: PathBuf,
    /// A CRI endpoint to use instead of starting containerd
    /// (`unix:///run/containerd/containerd.sock`).
    pub runtime_endpoint: Option<String>,
    /// The node's InternalIP.
    pub node_ip: String,
    /// The registries file (k3s's `registries.yaml` format) for wharf's own
    /// containerd; a missing file configures nothing.
    pub private_registry: Option<PathBuf>,
    /// The OCI runtimes of wharf's own containerd and its default
    /// (`--default-runtime`); [`containerd::Runtimes::detect`] finds them.
    pub runtimes: containerd::Runtimes,
    /// Image garbage collection (of wharf's own containerd).
    pub image_gc: gc::Policy,
    /// The cluster DNS servers for pods (`--cluster-dns`); empty: none.
    pub cluster_dns: Vec<String>,
    /// The cluster domain (`--cluster-domain`).
    pub cluster_domain: String,
    /// The kubelet API's port (`--kubelet-port`; 0 picks a free one). The
    /// Node's `daemonEndpoints.kubeletEndpoint.Port` reports the bound one.
    pub kubelet_port: u16,
    /// The kubelet API's TLS; without it the API is not served.
    pub serving_tls: Option<server::ServingTls>,
    /// The CNI bridge's MTU, and whether the kubelet masquerades (no pod
    /// network does), from the pod network.
    pub cni: cni::Options,
    /// The hard eviction thresholds (`--eviction-hard`) that set the node's
    /// pressure conditions.
    pub eviction_hard: node::Thresholds,
}

/// A running kubelet. [`Kubelet::stop`] stops it and its containerd; the
/// pods' containers keep running (they are adopted at the next start).
pub struct Kubelet {
    containerd: Option<containerd::Containerd>,
    tasks: AbortOnDrop,
    endpoint: String,
    api_addr: Option<std::net::SocketAddr>,
}

impl Kubelet {
    /// Start containerd (unless an endpoint is given), the sandbox image,
    /// the node and the pod sync. Returns once the runtime answers; the
    /// node registers in the background (the API server may still start).
    pub async fn start(client: Client, cfg: Config) -> Result<Kubelet> {
        let layout = containerd::Layout::new(&cfg.data_dir);
        let registries = match &cfg.private_registry {
            Some(p) => registries::Registries::load(p).map_err(Error::Runtime)?,
            None => registries::Registries::default(),
        };
        let (own, endpoint, sandbox_image) = match &cfg.runtime_endpoint {
            Some(e) => {
                if registries != registries::Registries::default() {
                    tracing::warn!(endpoint = %e, "the registries file only configures wharf's own containerd; ignored");
                }
                if cfg.runtimes.default != containerd::RUNC {
                    tracing::warn!(endpoint = %e, default_runtime = %cfg.runtimes.default, "--default-runtime only configures wharf's own containerd; ignored");
                }
                (None, e.clone(), String::new())
            }
            None => {
                let pause = images::pause_archive(std::path::Path::new(images::BUSYBOX))?;
                let sandbox_image = images::pause_image_name(&pause);
                let c = containerd::Containerd::start_with(
                    layout.clone(),
                    &sandbox_image,
                    &registries,
                    &cfg.runtimes,
                )
                .await?;
                let e = c.endpoint();
                (Some(c), e, sandbox_image)
            }
        };
        let runtime: Arc<dyn cri::Runtime> = Arc::new(cri::grpc::GrpcRuntime::connect(&endpoint)?);
        let version = wait_for_runtime(runtime.as_ref()).await?;
        if own.is_some() {
            images::ensure_pause(
                runtime.as_ref(),
                &layout.socket(),
                &layout.dir.join("images"),
            )
            .await?;
        }
        let socket = endpoint.strip_prefix("unix://").unwrap_or(&endpoint);
        images::import_dir(
            std::path::Path::new(socket),
            &images::auto_import_dir(&cfg.data_dir),
        )
        .await;
        let runtime_name = version.runtime_name.clone();
        let runtime_version = format!("{}://{}", version.runtime_name, version.runtime_version);
        tracing::info!(%endpoint, runtime = %runtime_version, node = %cfg.node_name, "kubelet runtime ready");
        let host = node::host(&cfg.data_dir, cfg.node_ip.clone());
        let ctx = pod::spec::Context {
            node_name: cfg.node_name.clone(),
            host_ip: cfg.node_ip.clone(),
            pod_ip: String::new(),
            memory_capacity: host.memory as i64,
            cpu_milli: host.cpus as i64 * 1000,
            ephemeral_storage: host.ephemeral_storage as i64,
            volumes: Default::default(),
        };
        let log_root = cfg.data_dir.join("agent").join("pod-logs");
        let pods_root = cfg.data_dir.join("agent").join("pods");
        let dns = pod::dns::NodeDns {
            cluster_dns: cfg.cluster_dns.clone(),
            domain: cfg.cluster_domain.clone(),
            host: pod::dns::Resolv::parse(
                &std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
            ),
        };
        let worker = pod::PodWorker::new(
            client.clone(),
            runtime.clone(),
            runtime_name,
            log_root,
            pods_root,
            ctx,
            dns,
        );
        let (api_addr, api_task) = match &cfg.serving_tls {
            Some(tls) => {
                let ctx = Arc::new(server::Ctx {
                    client: client.clone(),
                    runtime: runtime.clone(),
                });
                // A port in use leaves the node without logs, exec and
                // port-forward, but running its pods: loud, not fatal.
                match server::start(cfg.kubelet_port, tls, ctx).await {
                    Ok((addr, task)) => (Some(addr), task),
                    Err(e) => {
                        tracing::error!(error = %e, "the kubelet API is not served");
                        (None, tokio::spawn(async {}))
                    }
                }
            }
            None => (None, tokio::spawn(async {})),
        };
        let mut node_cfg = cfg.clone();
        node_cfg.kubelet_port = api_addr.map(|a| a.port()).unwrap_or(cfg.kubelet_port);
        let node_task = tokio::spawn(node_loop(
            client,
            node_cfg,
            host,
            runtime.clone(),
            runtime_version,
            worker.clone(),
            own.is_some().then_some(layout),
        ));
        let pods = tokio::spawn(worker.run());
        let mut tasks = vec![api_task, node_task, pods];
        if let Some(c) = &own {
            let gc = gc::ImageGc::new(
                cfg.image_gc.clone(),
                c.layout().dir.join("root"),
                sandbox_image,
            );
            tasks.push(tokio::spawn(image_gc_loop(gc, runtime.clone())));
        } else {
            tracing::info!("image garbage collection is left to the runtime given by endpoint");
        }
        Ok(Kubelet {
            containerd: own,
            tasks: AbortOnDrop(tasks),
            endpoint,
            api_addr,
        })
    }

    /// Where the kubelet API listens, if it is served.
    pub fn api_addr(&self) -> Option<std::net::SocketAddr> {
        self.api_addr
    }

    /// The CRI endpoint in use.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Stop the loops, then containerd (by PID).
    pub async fn stop(self) {
        drop(self.tasks);
        if let Some(c) = self.containerd {
            c.stop().await;
        }
    }
}

async fn image_gc_loop(mut gc: gc::ImageGc, runtime: Arc<dyn cri::Runtime>) {
    loop {
        tokio::time::sleep(gc.period()).await;
        match gc.run_once(runtime.as_ref()).await {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(count = removed.len(), "unused images removed")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "image garbage collection failed"),
        }
    }
}

async fn wait_for_runtime(r: &dyn cri::Runtime) -> Result<cri::api::VersionResponse> {
    let mut last = None;
    for _ in 0..100 {
        match r.version().await {
            Ok(v) => return Ok(v),
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last
        .map(Error::Cri)
        .unwrap_or_else(|| Error::Runtime("runtime did not answer".into())))
}

/// Whether the runtime reports RuntimeReady and NetworkReady; the message
/// for `Ready=False` otherwise.
async fn runtime_ready(r: &dyn cri::Runtime) -> Result<(), String> {
    let conds = r
        .status()
        .await
        .map_err(|e| format!("container runtime status check failed: {e}"))?;
    let bad: Vec<String> = conds
        .iter()
        .filter(|c| !c.status)
        .map(|c| {
            format!(
                "{}=false reason:{} message:{}",
                c.r#type, c.reason, c.message
            )
        })
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("container runtime not ready: {}", bad.join(", ")))
    }
}

/// How often the pods' masquerade table is written again, repairing
/// outside changes (as upstream's kubelet re-ensured its iptables rules).
const MASQ_RESYNC: Duration = Duration::from_secs(60);

/// Bring the pods' masquerade table to `pod_cidr` (None: remove it), off
/// the runtime's thread (it runs nft).
async fn sync_masq(table: &str, pod_cidr: Option<&str>) -> Result<()> {
    let (table, pod_cidr) = (table.to_string(), pod_cidr.map(str::to_string));
    tokio::task::spawn_blocking(move || {
        masq::sync(&*proxy::nft::host(), &table, pod_cidr.as_deref())
    })
    .await
    .map_err(|e| Error::Runtime(format!("the masquerade table's task: {e}")))?
}

/// The node's pod network on the host, once it has a podCIDR: masquerading
/// first (the kubelet's table, or none when the pod network has its own),
/// so no pod starts without it, then the CNI configuration.
async fn configure_network(cfg: &Config, layout: &containerd::Layout, cidr: &str) -> Result<()> {
    let table = masq::table_name(&cfg.data_dir);
    let own_table = cfg.cni.masquerade.then_some(cidr);
    sync_masq(&table, own_table).await?;
    if own_table.is_some() {
        tracing::info!(table = %table, pod_cidr = cidr, "pods' masquerade table written");
    }
    cni::write(
        &layout.cni_conf_dir,
        &cni::bridge_name(&cfg.data_dir),
        cidr,
        &layout.cni_ipam_dir,
        cfg.cni,
    )
}

/// Register the node, write the CNI config (and masquerade table) once it
/// has a `podCIDR`, then renew the Lease every 10 s and post the status
/// when it changes.
async fn node_loop(
    client: Client,
    cfg: Config,
    host: node::Host,
    runtime: Arc<dyn cri::Runtime>,
    runtime_version: String,
    worker: Arc<pod::PodWorker>,
    own: Option<containerd::Layout>,
) {
    // The images' filesystem, where the kubelet runs its own containerd.
    let image_dir = own.as_ref().map(|l| l.dir.clone());
    let mut pressure = node::PressureWatch::default();
    let mut facts = |ready| {
        let p = pressure.measure(&cfg.eviction_hard, &cfg.data_dir, image_dir.as_deref());
        node::facts(&cfg.node_name, &host, &runtime_version, ready, p)
    };
    let port = cfg.kubelet_port;
    let with_port = move |mut status: serde_json::Value| {
        status["daemonEndpoints"]["kubeletEndpoint"]["Port"] = port.into();
        status
    };
    let node = loop {
        let ready = runtime_ready(runtime.as_ref()).await;
        let status = with_port(hollow::node::status_from_facts(
            &facts(ready),
            &hollow::now(),
        ));
        match node::register(&client, &cfg.node_name, status).await {
            Ok(n) => break n,
            Err(e) => {
                tracing::warn!(error = %e, "node registration failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    };
    tracing::info!(node = %cfg.node_name, "node registered");
    let uid = node.metadata.uid.clone().unwrap_or_default();
    let mut cidr = node.spec.as_ref().and_then(|s| s.pod_cidr.clone());
    let mut configured = false;
    // When the kubelet's masquerade table was last written.
    let mut masq_synced: Option<tokio::time::Instant> = None;
    let mut reporter = node::StatusReporter::default();
    let mut next_renew = tokio::time::Instant::now();
    loop {
        if !configured {
            match (&own, &cidr) {
                (Some(layout), Some(c)) => {
                    match configure_network(&cfg, layout, c).await {
                        Ok(()) => {
                            configured = true;
                            masq_synced = Some(tokio::time::Instant::now());
                            // containerd picks the file up within a moment.
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            worker.set_network_ready();
                            // Report NetworkReady (so Ready) now, not at the next renewal.
                            next_renew = tokio::time::Instant::now();
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "configuring the pod network failed")
                        }
                    }
                }
                (None, _) => {
                    // An external runtime brings its own network setup.
                    configured = true;
                    worker.set_network_ready();
                }
                (Some(_), None) => {}
            }
        }
        // Set once the network is configured with wharf's own containerd.
        if let (Some(at), Some(c)) = (masq_synced, &cidr) {
            if cfg.cni.masquerade && at.elapsed() >= MASQ_RESYNC {
                let table = masq::table_name(&cfg.data_dir);
                match sync_masq(&table, Some(c)).await {
                    Ok(()) => masq_synced = Some(tokio::time::Instant::now()),
                    Err(e) => {
                        tracing::warn!(error = %e, "rewriting the pods' masquerade table failed; retrying")
                    }
                }
            }
        }
        if tokio::time::Instant::now() >= next_renew {
            next_renew = tokio::time::Instant::now() + node::RENEW_EVERY;
            // Each heartbeat request is bounded (as upstream's heartbeat
            // client has a timeout): one sent into a connection that died
            // while the node was cut off would otherwise wait for TCP's
            // retransmissions and keep the node NotReady long after it is back.
            let limit = node::RENEW_EVERY;
            match tokio::time::timeout(limit, node::renew_lease(&client, &cfg.node_name, &uid))
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "lease renewal failed"),
                Err(_) => tracing::warn!(?limit, "lease renewal timed out"),
            }
            let ready = runtime_ready(runtime.as_ref()).await;
            let status = with_port(hollow::node::status_from_facts(
                &facts(ready),
                &hollow::now(),
            ));
            match tokio::time::timeout(limit, reporter.report(&client, &cfg.node_name, status))
                .await
            {
                Ok(Ok(Some(n))) => {
                    cidr = n.spec.and_then(|s| s.pod_cidr).or(cidr);
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "node status update failed"),
                Err(_) => tracing::warn!(?limit, "node status update timed out"),
            }
        }
        // Until the node has a podCIDR, look for it every second.
        let wait = if configured {
            node::RENEW_EVERY
        } else {
            Duration::from_secs(1)
        };
        tokio::time::sleep_until((tokio::time::Instant::now() + wait).min(next_renew)).await;
        if cidr.is_none() {
            let nodes: kube::Api<k8s_openapi::api::core::v1::Node> = kube::Api::all(client.clone());
            if let Ok(n) = nodes.get(&cfg.node_name).await {
                cidr = n.spec.and_then(|s| s.pod_cidr);
            }
        }
    }
}
