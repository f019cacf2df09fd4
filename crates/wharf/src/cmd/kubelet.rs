//! `wharf kubelet`: the kubelet alone, as a client of an API server; and
//! the settings `wharf server` shares with it.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;

#[derive(Args, Debug)]
pub struct KubeletArgs {
    /// Kubeconfig with the credentials to use.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// The API server URL (default: the kubeconfig's).
    #[arg(long)]
    pub server: Option<String>,
    /// Name of this node (defaults to the host name).
    #[arg(long, env = "WHARF_NODE_NAME")]
    pub node_name: Option<String>,
    /// Directory for containerd's state, the CNI config and pod logs (under `agent/`).
    #[arg(long, env = "WHARF_DATA_DIR", default_value = "/var/lib/wharf")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub node: NodeFlags,
    /// The kubelet API's serving certificate (PEM); without it the kubelet
    /// signs its own, as upstream's does.
    #[arg(long, requires = "tls_private_key_file")]
    pub tls_cert_file: Option<PathBuf>,
    /// The key of `--tls-cert-file` (PEM).
    #[arg(long, requires = "tls_cert_file")]
    pub tls_private_key_file: Option<PathBuf>,
    /// CA bundle (PEM) that clients of the kubelet API must be signed by
    /// (default: the kubeconfig's certificate authority).
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
}

/// The kubelet flags `wharf kubelet` and `wharf agent` share.
#[derive(Args, Debug, Clone)]
pub struct NodeFlags {
    /// A CRI socket to use instead of starting wharf's own containerd.
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
    /// The node's InternalIP (default: the host's first address).
    #[arg(long, env = "WHARF_NODE_IP")]
    pub node_ip: Option<String>,
    #[command(flatten)]
    pub image_gc: ImageGcArgs,
    #[command(flatten)]
    pub eviction: EvictionArgs,
    /// The cluster DNS server for pods (comma-separated).
    #[arg(
        long,
        env = "WHARF_CLUSTER_DNS",
        default_value = "10.43.0.10",
        value_delimiter = ','
    )]
    pub cluster_dns: Vec<String>,
    /// The cluster domain.
    #[arg(long, env = "WHARF_CLUSTER_DOMAIN", default_value = "cluster.local")]
    pub cluster_domain: String,
    /// The kubelet API's HTTPS port (0: any free port).
    #[arg(long, env = "WHARF_KUBELET_PORT", default_value_t = 10250)]
    pub kubelet_port: u16,
}

impl NodeFlags {
    /// The node's InternalIP: the flag, else the host's first address.
    pub fn node_ip(&self) -> String {
        self.node_ip
            .clone()
            .unwrap_or_else(|| super::host_address().to_string())
    }

    /// The kubelet's configuration for `node_name` with these flags.
    pub fn config(
        &self,
        node_name: String,
        data_dir: PathBuf,
        serving_tls: kubelet::server::ServingTls,
    ) -> anyhow::Result<kubelet::Config> {
        Ok(kubelet::Config {
            node_name,
            data_dir,
            runtime_endpoint: self.container_runtime_endpoint.clone(),
            node_ip: self.node_ip(),
            private_registry: Some(self.private_registry.clone()),
            runtimes: runtimes(
                self.container_runtime_endpoint.as_deref(),
                self.default_runtime.as_deref(),
            )?,
            image_gc: self.image_gc.policy()?,
            cluster_dns: self.cluster_dns.clone(),
            cluster_domain: self.cluster_domain.clone(),
            kubelet_port: self.kubelet_port,
            serving_tls: Some(serving_tls),
            // A kubelet alone masquerades in its own nft table: no wharf
            // pod network runs beside it. `wharf server` and `wharf agent`
            // run the network and override this.
            cni: kubelet::cni::Options::default(),
            eviction_hard: self.eviction.eviction_hard.clone(),
        })
    }
}

/// The runtimes of wharf's own containerd with `--default-runtime` as the
/// default: an unknown or unusable name is a startup error. With a CRI
/// endpoint of its own, the flag configures nothing (the kubelet warns).
pub fn runtimes(
    endpoint: Option<&str>,
    default_runtime: Option<&str>,
) -> anyhow::Result<kubelet::containerd::Runtimes> {
    if endpoint.is_some() {
        return Ok(kubelet::containerd::Runtimes {
            default: default_runtime
                .unwrap_or(kubelet::containerd::RUNC)
                .to_string(),
            crun: None,
        });
    }
    Ok(kubelet::containerd::Runtimes::detect(default_runtime)?)
}

/// The kubelet's node-pressure flags (upstream's names).
#[derive(Args, Debug, Clone)]
pub struct EvictionArgs {
    /// Hard eviction thresholds, `signal<quantity` or `signal<percent%`
    /// pairs (memory.available, nodefs.available, nodefs.inodesFree,
    /// imagefs.available, imagefs.inodesFree, pid.available): while a
    /// signal is below its threshold the node reports MemoryPressure,
    /// DiskPressure or PIDPressure. Given thresholds replace the defaults.
    #[arg(long, env = "WHARF_EVICTION_HARD", default_value = kubelet::node::DEFAULT_EVICTION_HARD)]
    pub eviction_hard: kubelet::node::Thresholds,
}

/// The kubelet's image garbage collection flags (upstream's names).
#[derive(Args, Debug, Clone)]
pub struct ImageGcArgs {
    /// Disk usage (percent) at which unused images are removed.
    #[arg(long, default_value_t = 85, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub image_gc_high_threshold: u8,
    /// Disk usage (percent) image garbage collection frees down to.
    #[arg(long, default_value_t = 80, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub image_gc_low_threshold: u8,
    /// How long an image must be unused before it may be removed.
    #[arg(long, default_value = "2m", value_parser = super::controller_manager::parse_duration)]
    pub image_minimum_gc_age: std::time::Duration,
    /// How often image disk usage is checked (upstream: 5 m, fixed).
    #[arg(long, default_value = "5m", value_parser = super::controller_manager::parse_duration, hide = true)]
    pub image_gc_period: std::time::Duration,
}

impl ImageGcArgs {
    /// The policy, checked as upstream checks it.
    pub fn policy(&self) -> anyhow::Result<kubelet::gc::Policy> {
        let p = kubelet::gc::Policy {
            high_percent: self.image_gc_high_threshold,
            low_percent: self.image_gc_low_threshold,
            min_age: self.image_minimum_gc_age,
            period: self.image_gc_period,
        };
        p.check().map_err(anyhow::Error::msg)?;
        Ok(p)
    }
}

/// The node name: the flag, else the host name in lower case (as upstream).
pub fn node_name(flag: Option<&str>) -> String {
    flag.map(str::to_string).unwrap_or_else(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_lowercase())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into())
    })
}

/// Start a kubelet with an API client from `kubeconfig`.
pub async fn start(
    kubeconfig: &Path,
    server: Option<&str>,
    cfg: kubelet::Config,
) -> anyhow::Result<kubelet::Kubelet> {
    let client = super::client_from(kubeconfig, server, "kubelet").await?;
    kubelet::Kubelet::start(client, cfg)
        .await
        .context("starting the kubelet")
}

/// The kubelet API's TLS for `wharf kubelet`: the given certificate or a
/// self-signed one; clients verified against `--client-ca-file` or the
/// kubeconfig's CA.
async fn serving_tls(
    args: &KubeletArgs,
    names: &[String],
) -> anyhow::Result<kubelet::server::ServingTls> {
    let client_ca_der = match &args.client_ca_file {
        Some(p) => kubelet::server::ServingTls::pem_to_der(
            &std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        )?,
        None => {
            let kc = kube::config::Kubeconfig::read_from(&args.kubeconfig)
                .with_context(|| format!("reading {}", args.kubeconfig.display()))?;
            let cfg = kube::Config::from_custom_kubeconfig(
                kc,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .context("loading the kubeconfig")?;
            cfg.root_cert.unwrap_or_default()
        }
    };
    match (&args.tls_cert_file, &args.tls_private_key_file) {
        (Some(c), Some(k)) => Ok(kubelet::server::ServingTls {
            cert_pem: std::fs::read_to_string(c)
                .with_context(|| format!("reading {}", c.display()))?,
            key_pem: std::fs::read_to_string(k)
                .with_context(|| format!("reading {}", k.display()))?,
            client_ca_der,
        }),
        _ => Ok(kubelet::server::ServingTls::self_signed(
            names,
            client_ca_der,
        )?),
    }
}

pub async fn run(args: KubeletArgs) -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let node_name = node_name(args.node_name.as_deref());
    let node_ip = args.node.node_ip();
    let tls = serving_tls(&args, &[node_ip, node_name.clone()]).await?;
    let cfg = args.node.config(node_name, args.data_dir.clone(), tls)?;
    let k = start(&args.kubeconfig, args.server.as_deref(), cfg).await?;
    super::say!("wharf kubelet: running (CRI {})", k.endpoint());
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    k.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        kubelet: KubeletArgs,
    }

    #[test]
    fn the_kubelet_port_defaults_to_upstreams_10250() {
        // The tests give every kubelet a free port; this pins the default
        // the kubelet API serves on without one (upstream's :10250).
        let cli = Cli::try_parse_from(["wharf", "--kubeconfig", "/k"]).unwrap();
        assert_eq!(cli.kubelet.node.kubelet_port, 10250);
        let cli =
            Cli::try_parse_from(["wharf", "--kubeconfig", "/k", "--kubelet-port", "1"]).unwrap();
        assert_eq!(cli.kubelet.node.kubelet_port, 1);
    }
}
