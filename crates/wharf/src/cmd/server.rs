//! `wharf server`: flags named as k3s names them, each also read from `WHARF_<FLAG>`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use store::{EtcdStore, SqliteStore, Store, StoreOptions};

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// Directory for the database, certificates and kubeconfig.
    #[arg(long, env = "WHARF_DATA_DIR", default_value = "/var/lib/wharf")]
    pub data_dir: PathBuf,
    /// HTTPS port of the API server.
    #[arg(long, env = "WHARF_HTTPS_LISTEN_PORT", default_value_t = 6443)]
    pub https_listen_port: u16,
    /// Address the API server binds.
    #[arg(long, env = "WHARF_BIND_ADDRESS", default_value = "0.0.0.0")]
    pub bind_address: String,
    /// Name of this node (defaults to the host name).
    #[arg(long, env = "WHARF_NODE_NAME")]
    pub node_name: Option<String>,
    /// Pod network range.
    #[arg(long, env = "WHARF_CLUSTER_CIDR", default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// Service virtual IP range.
    #[arg(long, env = "WHARF_SERVICE_CIDR", default_value = "10.43.0.0/16")]
    pub service_cidr: String,
    /// Cluster DNS service address.
    #[arg(long, env = "WHARF_CLUSTER_DNS", default_value = "10.43.0.10")]
    pub cluster_dns: String,
    /// The cluster domain.
    #[arg(long, env = "WHARF_CLUSTER_DOMAIN", default_value = "cluster.local")]
    pub cluster_domain: String,
    /// Do not run the cluster DNS in this process (k3s's `--disable=coredns`).
    #[arg(long, env = "WHARF_DISABLE_DNS")]
    pub disable_dns: bool,
    /// Where the cluster DNS listens (UDP and TCP; port 0: any free port).
    /// Default: the advertise address, port 53. The `kube-dns` Service
    /// forwards to it.
    #[arg(long, env = "WHARF_DNS_LISTEN", hide = true)]
    pub dns_listen: Option<std::net::SocketAddr>,
    /// External datastore, e.g. `etcd://h1:2379,h2:2379,h3:2379`. Default: embedded SQLite.
    #[arg(long, env = "WHARF_DATASTORE_ENDPOINT")]
    pub datastore_endpoint: Option<String>,
    /// The join token's secret: a bootstrap token `<id>.<secret>`, a whole
    /// join token, or any passphrase (hashed into one). Default: a random
    /// one, kept in `<data-dir>/server/token` across restarts.
    #[arg(long, env = "WHARF_TOKEN")]
    pub token: Option<String>,
    /// Run only the control plane, no kubelet, proxy or DNS on this host.
    #[arg(long, env = "WHARF_DISABLE_AGENT")]
    pub disable_agent: bool,
    /// Do not run the service proxy in this process (k3s's `--disable-kube-proxy`).
    #[arg(long, env = "WHARF_DISABLE_KUBE_PROXY")]
    pub disable_kube_proxy: bool,
    /// Do not run ServiceLB (k3s's `--disable=servicelb`).
    #[arg(long, env = "WHARF_DISABLE_SERVICELB")]
    pub disable_servicelb: bool,
    /// The service proxy's flags (see `wharf proxy`).
    #[command(flatten)]
    pub proxy: super::proxy::ProxyFlags,
    /// The pod network's flags (`--flannel-backend`, `--flannel-iface`).
    #[command(flatten)]
    pub network: super::network::NetworkFlags,
    /// A CRI socket for the kubelet instead of wharf's own containerd.
    #[arg(long, env = "WHARF_CONTAINER_RUNTIME_ENDPOINT")]
    pub container_runtime_endpoint: Option<String>,
    /// Registry mirrors and credentials for wharf's containerd, in k3s's
    /// `registries.yaml` format (k3s's `--private-registry`).
    #[arg(
        long,
        env = "WHARF_PRIVATE_REGISTRY",
        default_value = "/etc/wharf/registries.yaml"
    )]
    pub private_registry: PathBuf,
    /// The OCI runtime of pods that name no RuntimeClass (k3s's
    /// `--default-runtime`): `runc`, or `crun` when its binary is found.
    #[arg(long, env = "WHARF_DEFAULT_RUNTIME")]
    pub default_runtime: Option<String>,
    #[command(flatten)]
    pub image_gc: super::kubelet::ImageGcArgs,
    #[command(flatten)]
    pub eviction: super::kubelet::EvictionArgs,
    /// The kubelet API's HTTPS port (0: any free port).
    #[arg(long, env = "WHARF_KUBELET_PORT", default_value_t = 10250)]
    pub kubelet_port: u16,
    /// Do not run the scheduler in this process (k3s's `--disable-scheduler`).
    #[arg(long, env = "WHARF_DISABLE_SCHEDULER")]
    pub disable_scheduler: bool,
    /// Do not run the controller manager in this process (k3s's
    /// `--disable-controller-manager`).
    #[arg(long, env = "WHARF_DISABLE_CONTROLLER_MANAGER")]
    pub disable_controller_manager: bool,
    /// Where to write the admin kubeconfig.
    #[arg(long, env = "WHARF_WRITE_KUBECONFIG")]
    pub write_kubeconfig: Option<PathBuf>,
    /// File mode of the kubeconfig, e.g. 644.
    #[arg(long, env = "WHARF_WRITE_KUBECONFIG_MODE")]
    pub write_kubeconfig_mode: Option<String>,
    /// Address other nodes and the `kubernetes` service use to reach this server
    /// (default: the host's first address).
    #[arg(long, env = "WHARF_ADVERTISE_ADDRESS")]
    pub advertise_address: Option<std::net::IpAddr>,
    /// Extra names or addresses for the serving certificate.
    #[arg(long = "tls-san", env = "WHARF_TLS_SAN", value_delimiter = ',')]
    pub tls_san: Vec<String>,
    /// History older than this many seconds is compacted.
    #[arg(long, env = "WHARF_COMPACTION_INTERVAL_SECONDS", default_value_t = 300)]
    pub compaction_interval_seconds: u64,
    /// Events are deleted this many seconds after their last write
    /// (kube-apiserver's `--event-ttl`, 1h).
    #[arg(long, env = "WHARF_EVENT_TTL_SECONDS", default_value_t = 3600)]
    pub event_ttl_seconds: u64,
    /// The controller manager's flags (see `wharf controller-manager`).
    #[command(flatten)]
    pub controllers: super::controller_manager::ControllerFlags,
}

/// Where the cluster state lives.
#[derive(Debug, PartialEq, Eq)]
pub enum Datastore {
    /// Embedded SQLite file.
    Sqlite(PathBuf),
    /// etcd cluster client URLs.
    Etcd(Vec<String>),
}

/// Parse `--datastore-endpoint`: `etcd://h1:2379,h2:2379` or `http(s)://…` lists
/// mean etcd; `sqlite://PATH` an explicit database file; nothing, the default file.
pub fn parse_datastore(
    endpoint: Option<&str>,
    data_dir: &std::path::Path,
) -> anyhow::Result<Datastore> {
    let Some(ep) = endpoint.map(str::trim).filter(|e| !e.is_empty()) else {
        return Ok(Datastore::Sqlite(data_dir.join("db").join("state.db")));
    };
    if let Some(path) = ep.strip_prefix("sqlite://") {
        return Ok(Datastore::Sqlite(PathBuf::from(path)));
    }
    let mut urls = Vec::new();
    for part in ep.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let url = if let Some(rest) = part.strip_prefix("etcd://") {
            format!("http://{rest}")
        } else if part.starts_with("http://") || part.starts_with("https://") {
            part.to_string()
        } else if part.contains("://") {
            bail!("unsupported --datastore-endpoint {ep:?}: use etcd://host:port[,host:port…] or sqlite://PATH");
        } else {
            format!("http://{part}")
        };
        urls.push(url);
    }
    if urls.is_empty() {
        bail!("--datastore-endpoint {ep:?} names no etcd member");
    }
    Ok(Datastore::Etcd(urls))
}

pub async fn run(args: ServerArgs) -> anyhow::Result<()> {
    // Take SIGTERM from the start: a stop during startup is a clean stop too.
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    // An unknown --default-runtime stops the server before anything starts.
    let runtimes = if args.disable_agent {
        None
    } else {
        Some(super::kubelet::runtimes(
            args.container_runtime_endpoint.as_deref(),
            args.default_runtime.as_deref(),
        )?)
    };
    let opts = StoreOptions {
        compaction_interval: Some(Duration::from_secs(args.compaction_interval_seconds.max(1))),
        ..StoreOptions::default()
    };
    let ds = parse_datastore(args.datastore_endpoint.as_deref(), &args.data_dir)?;
    let store: Arc<dyn Store> = match &ds {
        Datastore::Sqlite(path) => Arc::new(
            SqliteStore::open(path, opts)
                .await
                .with_context(|| format!("opening the embedded store at {}", path.display()))?,
        ),
        Datastore::Etcd(urls) => Arc::new(
            EtcdStore::connect(urls, opts)
                .await
                .with_context(|| format!("connecting to etcd at {urls:?}"))?,
        ),
    };
    let rev = store.current_revision().await?;
    tracing::info!(datastore = ?ds, revision = rev, "store ready");
    let bind: std::net::IpAddr = args
        .bind_address
        .parse()
        .with_context(|| format!("--bind-address {:?}", args.bind_address))?;
    let advertise = match args.advertise_address {
        Some(a) => a,
        None if !bind.is_unspecified() => bind,
        None => super::host_address(),
    };
    let mode = match args.write_kubeconfig_mode.as_deref() {
        Some(m) => u32::from_str_radix(m, 8)
            .with_context(|| format!("--write-kubeconfig-mode {m:?} is not an octal mode"))?,
        None => 0o600,
    };
    let config = apiserver::server::Config {
        data_dir: args.data_dir.clone(),
        bind_address: bind,
        port: args.https_listen_port,
        advertise_address: advertise,
        service_cidr: args.service_cidr.clone(),
        extra_sans: args.tls_san.clone(),
        kubeconfig_path: args.write_kubeconfig.clone(),
        kubeconfig_mode: mode,
        event_ttl: Duration::from_secs(args.event_ttl_seconds.max(1)),
    };
    let api = apiserver::server::ApiServer::start(config, store)
        .await
        .context("starting the API server")?;
    super::say!(
        "wharf server: API server at https://{advertise}:{} (store {ds:?}); admin kubeconfig: {}",
        api.local_addr.port(),
        api.kubeconfig.display()
    );
    // Agents join with this token (its CA hash pins the cluster CA).
    let admin = super::client_from(&api.kubeconfig, None, "wharf-server").await?;
    let token_path =
        super::token::ensure(&args.data_dir, args.token.as_deref(), &api.ca_pem, admin)
            .await
            .context("the join token")?;
    super::say!("wharf server: join token: {}", token_path.display());
    // The scheduler and the controller manager each run only while holding
    // their Lease (upstream's defaults), so several servers on one etcd never
    // both schedule or both act. The identity is kept in the data directory:
    // a restarted server renews its own Lease at once.
    let identity = election::stable_identity(&args.data_dir.join("leader-identity"))
        .context("the leader election identity")?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = move || {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut components = Vec::new();
    if !args.disable_scheduler {
        let client = super::client_from(&api.kubeconfig, None, "kube-scheduler").await?;
        let election = election::Config::upstream_defaults("kube-scheduler", identity.clone());
        let work = client.clone();
        components.push(tokio::spawn(super::elect::run(
            client,
            Some(election),
            move || scheduler::run(work.clone(), scheduler::Config::default()),
            stopped(),
        )));
    }
    if !args.disable_controller_manager {
        let client = super::client_from(&api.kubeconfig, None, "kube-controller-manager").await?;
        let mut cfg = args.controllers.config(&args.cluster_cidr);
        cfg.root_ca_pem = super::root_ca_pem(&api.kubeconfig);
        // The in-process controller manager signs with the server's own CA.
        let tls = args.data_dir.join("tls");
        cfg.signer = args
            .controllers
            .signer(Some((tls.join("ca.crt"), tls.join("ca.key"))))?;
        cfg.check().context("the controller manager's settings")?;
        let election =
            election::Config::upstream_defaults("kube-controller-manager", identity.clone());
        let work = client.clone();
        components.push(tokio::spawn(super::elect::run(
            client,
            Some(election),
            move || super::controller_manager::run_controllers(work.clone(), cfg.clone()),
            stopped(),
        )));
    }
    if !args.disable_servicelb {
        let client = super::client_from(&api.kubeconfig, None, "servicelb").await?;
        let stop = stopped();
        components.push(tokio::spawn(async move {
            tokio::select! {
                _ = proxy::servicelb::run(client) => {}
                _ = stop => {}
            }
        }));
    }
    // The pod network across nodes; the kubelet's CNI bridge takes its MTU.
    let network = if args.disable_agent {
        None
    } else {
        args.network.config(
            &super::kubelet::node_name(args.node_name.as_deref()),
            advertise,
            &args.cluster_cidr,
            &args.data_dir,
        )?
    };
    // The kubelet is an HTTPS client of this API server like any other.
    let kubelet = if args.disable_agent {
        None
    } else {
        let node_name = super::kubelet::node_name(args.node_name.as_deref());
        // The in-process kubelet serves with a certificate from the cluster CA.
        let (cert_pem, key_pem) =
            api.kubelet_serving_cert(&[advertise.to_string(), node_name.clone()])?;
        let serving_tls = kubelet::server::ServingTls {
            cert_pem,
            key_pem,
            client_ca_der: kubelet::server::ServingTls::pem_to_der(&api.ca_pem)?,
        };
        let cfg = kubelet::Config {
            node_name,
            data_dir: args.data_dir.clone(),
            runtime_endpoint: args.container_runtime_endpoint.clone(),
            private_registry: Some(args.private_registry.clone()),
            runtimes: runtimes.clone().unwrap_or_default(),
            image_gc: args.image_gc.policy()?,
            cluster_dns: vec![args.cluster_dns.clone()],
            cluster_domain: args.cluster_domain.clone(),
            node_ip: advertise.to_string(),
            kubelet_port: args.kubelet_port,
            serving_tls: Some(serving_tls),
            cni: super::network::cni_options(network.as_ref())?,
            eviction_hard: args.eviction.eviction_hard.clone(),
        };
        Some(super::kubelet::start(&api.kubeconfig, None, cfg).await?)
    };
    // It publishes its VTEP on the Node the kubelet registers.
    let network = match network {
        Some(cfg) => Some(super::network::start(&api.kubeconfig, None, cfg).await?),
        None => None,
    };
    // So is the DNS server.
    let dns = if args.disable_agent || args.disable_dns {
        None
    } else {
        let cfg = dns::Config {
            listen: args
                .dns_listen
                .unwrap_or_else(|| std::net::SocketAddr::new(advertise, 53)),
            zone: args.cluster_domain.clone(),
            upstreams: None,
            service_ip: Some(args.cluster_dns.clone()),
            advertise_ip: advertise.to_string(),
            node_name: super::kubelet::node_name(args.node_name.as_deref()),
        };
        let client = super::client_from(&api.kubeconfig, None, "cluster-dns").await?;
        // A taken port 53 should not take the cluster down with it: the
        // rest works, and the log says what to change.
        match dns::Dns::start(client, cfg).await {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::error!(error = %e, "the cluster DNS is not running; free the port or set --dns-listen");
                None
            }
        }
    };
    // So is the proxy.
    let proxy = if args.disable_agent || args.disable_kube_proxy {
        None
    } else {
        let node = super::kubelet::node_name(args.node_name.as_deref());
        let cfg = args.proxy.config(node, Some(&args.cluster_cidr))?;
        let client = super::client_from(&api.kubeconfig, None, "kube-proxy").await?;
        Some(super::proxy::start(client, cfg))
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    // Its routes and device stay: pods keep talking across nodes.
    if let Some(n) = network {
        n.abort();
    }
    drop(dns);
    if let Some(p) = proxy {
        p.stop().await;
    }
    if let Some(k) = kubelet {
        k.stop().await;
    }
    // Give the components a moment to release their Leases.
    let _ = stop_tx.send(true);
    for c in components {
        let abort = c.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), c)
            .await
            .is_err()
        {
            abort.abort();
        }
    }
    api.shutdown().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn datastore_endpoints() {
        let d = Path::new("/var/lib/wharf");
        assert_eq!(
            parse_datastore(None, d).unwrap(),
            Datastore::Sqlite(d.join("db/state.db"))
        );
        assert_eq!(
            parse_datastore(Some("etcd://a:2379,b:2379"), d).unwrap(),
            Datastore::Etcd(vec!["http://a:2379".into(), "http://b:2379".into()])
        );
        assert_eq!(
            parse_datastore(Some("https://a:2379"), d).unwrap(),
            Datastore::Etcd(vec!["https://a:2379".into()])
        );
        assert_eq!(
            parse_datastore(Some("sqlite:///tmp/x.db"), d).unwrap(),
            Datastore::Sqlite("/tmp/x.db".into())
        );
        assert!(parse_datastore(Some("mysql://x"), d).is_err());
    }
}
