//! `wharf agent`: a worker node. It joins with a token (CA pinned by the
//! token's hash, then a `system:node:<name>` client certificate through a
//! CertificateSigningRequest), runs the kubelet and the service proxy with
//! that identity, and renews the certificate before it expires.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use apiserver::bootstrap_token::JoinToken;
use clap::Args;

use super::join;

#[derive(Args, Debug)]
pub struct AgentArgs {
    /// The server to join, e.g. https://10.0.0.1:6443.
    #[arg(long, env = "WHARF_URL")]
    pub server: String,
    /// The join token (`<data-dir>/server/token` on the server).
    #[arg(long, env = "WHARF_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Directory for the node's credentials, containerd's state, the CNI
    /// config and pod logs (under `agent/`).
    #[arg(long, env = "WHARF_DATA_DIR", default_value = "/var/lib/wharf")]
    pub data_dir: PathBuf,
    /// Name of this node (defaults to the host name).
    #[arg(long, env = "WHARF_NODE_NAME")]
    pub node_name: Option<String>,
    /// The kubelet's flags (see `wharf kubelet`).
    #[command(flatten)]
    pub node: super::kubelet::NodeFlags,
    /// Do not run the service proxy (k3s's `--disable-kube-proxy`).
    #[arg(long, env = "WHARF_DISABLE_KUBE_PROXY")]
    pub disable_kube_proxy: bool,
    /// Do not run a cluster DNS server on this node. With one (the
    /// default), it answers on the node's IP, port 53, and pods of this
    /// node reach it through the `kube-dns` Service (`PreferSameNode`).
    #[arg(long, env = "WHARF_DISABLE_DNS")]
    pub disable_dns: bool,
    /// The cluster's pod network range (the server's `--cluster-cidr`), for
    /// the masquerading decisions of the proxy and the pod network.
    #[arg(long, env = "WHARF_CLUSTER_CIDR", default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    /// The pod network's flags (`--flannel-backend`, `--flannel-iface`).
    #[command(flatten)]
    pub network: super::network::NetworkFlags,
    /// The service proxy's flags (see `wharf proxy`).
    #[command(flatten)]
    pub proxy: super::proxy::ProxyFlags,
    /// How long to keep trying to reach the server at start.
    #[arg(long, default_value = "2m", value_parser = super::controller_manager::parse_duration, hide = true)]
    pub server_wait: Duration,
    /// How long to wait for the node's certificate to be approved and issued.
    #[arg(long, default_value = "5m", value_parser = super::controller_manager::parse_duration, hide = true)]
    pub csr_timeout: Duration,
}

/// Where the node's own kubeconfig lives.
fn kubelet_kubeconfig(data_dir: &Path) -> PathBuf {
    data_dir.join("agent").join("kubelet.kubeconfig")
}

/// Gets (or reuses) the node's identity and writes its kubeconfig.
async fn join(
    args: &AgentArgs,
    token: &JoinToken,
    node: &str,
) -> anyhow::Result<(PathBuf, String)> {
    let ca_pem = join::fetch_ca(&args.server, token, args.server_wait).await?;
    let path = kubelet_kubeconfig(&args.data_dir);
    if let Some(info) = join::reusable_identity(&path, node, &ca_pem) {
        tracing::info!(path = %path.display(), serial = info.serial, "reusing the node's credentials");
        return Ok((path, ca_pem));
    }
    let client = join::bootstrap_client(&args.server, &ca_pem, token).await?;
    let (cert, key) = join::request_node_cert(client, node, args.csr_timeout).await?;
    apiserver::pki::write_kubeconfig(&path, &args.server, &ca_pem, &cert, &key, 0o600)
        .with_context(|| format!("writing {}", path.display()))?;
    tracing::info!(path = %path.display(), "joined; node credentials written");
    Ok((path, ca_pem))
}

/// When to renew a certificate valid from `not_before` to `not_after`:
/// at a random point between 70 % and 90 % of its life (client-go's
/// certificate manager's jitter).
pub fn renewal_time(not_before: SystemTime, not_after: SystemTime, jitter: f64) -> SystemTime {
    let life = not_after.duration_since(not_before).unwrap_or_default();
    not_before + life.mul_f64(0.7 + 0.2 * jitter.clamp(0.0, 1.0))
}

/// Waits until the node's certificate is due, then replaces it with one
/// requested with the current certificate (or, if that expired, with the
/// bootstrap token). Returns once the new kubeconfig is written.
async fn rotate(
    args: &AgentArgs,
    token: &JoinToken,
    node: &str,
    path: &Path,
    ca_pem: &str,
) -> anyhow::Result<()> {
    let (cert, _, _) = join::read_identity(path)?;
    let info = join::cert_info(&cert)?;
    let at = renewal_time(info.not_before, info.not_after, rand::random::<f64>());
    let wait = at
        .duration_since(SystemTime::now())
        .unwrap_or_default()
        .max(Duration::from_secs(5));
    tracing::info!(
        serial = info.serial,
        in_seconds = wait.as_secs(),
        "next certificate renewal"
    );
    tokio::time::sleep(wait).await;
    let mut backoff = Duration::from_secs(2);
    loop {
        let expired = SystemTime::now() >= info.not_after;
        let client = if expired {
            join::bootstrap_client(&args.server, ca_pem, token).await?
        } else {
            super::client_from(path, None, "kubelet").await?
        };
        match join::request_node_cert(client, node, args.csr_timeout).await {
            Ok((cert, key)) => {
                apiserver::pki::write_kubeconfig(path, &args.server, ca_pem, &cert, &key, 0o600)?;
                let new = join::cert_info(&cert)?;
                tracing::info!(
                    old = info.serial,
                    new = new.serial,
                    "node certificate renewed"
                );
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(error = %e, "certificate renewal failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}

/// The node's components, started with its current credentials: the
/// kubelet, the proxy, and the pod network across nodes (the `network`
/// crate, flannel's role).
struct Components {
    kubelet: kubelet::Kubelet,
    proxy: Option<proxy::Proxy>,
    network: Option<tokio::task::JoinHandle<()>>,
    dns: Option<dns::Dns>,
}

async fn start_components(
    args: &AgentArgs,
    kubeconfig: &Path,
    ca_pem: &str,
    node: &str,
    node_ip: &str,
) -> anyhow::Result<Components> {
    // The kubelet API serves a self-signed certificate (as upstream's
    // kubelet without a serving CSR) and admits clients of the cluster CA.
    let tls = kubelet::server::ServingTls::self_signed(
        &[node_ip.to_string(), node.to_string()],
        kubelet::server::ServingTls::pem_to_der(ca_pem)?,
    )?;
    let ip = node_ip
        .parse()
        .with_context(|| format!("the node IP {node_ip:?}"))?;
    let net = args
        .network
        .config(node, ip, &args.cluster_cidr, &args.data_dir)?;
    let mut cfg = args
        .node
        .config(node.to_string(), args.data_dir.clone(), tls)?;
    // The bridge takes the overlay's MTU and leaves masquerading to it.
    cfg.cni = super::network::cni_options(net.as_ref())?;
    let kubelet = super::kubelet::start(kubeconfig, None, cfg).await?;
    let proxy = if args.disable_kube_proxy {
        None
    } else {
        let cfg = args
            .proxy
            .config(node.to_string(), Some(&args.cluster_cidr))?;
        let client = super::client_from(kubeconfig, None, "kube-proxy").await?;
        Some(super::proxy::start(client, cfg))
    };
    let network = match net {
        Some(cfg) => Some(super::network::start(kubeconfig, None, cfg).await?),
        None => None,
    };
    let dns = if args.disable_dns {
        None
    } else {
        let cfg = dns::Config {
            listen: std::net::SocketAddr::new(ip, 53),
            zone: args.node.cluster_domain.clone(),
            upstreams: None,
            service_ip: args.node.cluster_dns.first().cloned(),
            advertise_ip: node_ip.to_string(),
            node_name: node.to_string(),
        };
        let client = super::client_from(kubeconfig, None, "cluster-dns").await?;
        // As on the server: a taken port 53 leaves the node working, and
        // its pods use the other nodes' DNS servers.
        match dns::Dns::start(client, cfg).await {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::error!(error = %e, "this node's cluster DNS is not running; free the port or pass --disable-dns");
                None
            }
        }
    };
    Ok(Components {
        kubelet,
        proxy,
        network,
        dns,
    })
}

impl Components {
    async fn stop(self) {
        // The network's device and routes stay (pod traffic goes on while
        // the components restart); only its task stops.
        if let Some(n) = self.network {
            n.abort();
        }
        drop(self.dns);
        if let Some(p) = self.proxy {
            p.stop().await;
        }
        self.kubelet.stop().await;
    }
}

pub async fn run(args: AgentArgs) -> anyhow::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let token =
        JoinToken::parse(&args.token).context("--token (the server's <data-dir>/server/token)")?;
    let node = super::kubelet::node_name(args.node_name.as_deref());
    let node_ip = args.node.node_ip();
    let (kubeconfig, ca_pem) = join(&args, &token, &node).await?;
    super::say!(
        "wharf agent: node {node} joined {}; kubeconfig: {}",
        args.server,
        kubeconfig.display()
    );
    loop {
        let components = start_components(&args, &kubeconfig, &ca_pem, &node, &node_ip).await?;
        let rotated = tokio::select! {
            _ = tokio::signal::ctrl_c() => None,
            _ = term.recv() => None,
            r = rotate(&args, &token, &node, &kubeconfig, &ca_pem) => Some(r),
        };
        // The API clients hold the old certificate: the components start
        // again with the new one (the pods keep running meanwhile).
        components.stop().await;
        match rotated {
            None => return Ok(()),
            Some(r) => r.context("renewing the node certificate")?,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_between_70_and_90_percent() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let t1 = t0 + Duration::from_secs(100);
        assert_eq!(renewal_time(t0, t1, 0.0), t0 + Duration::from_secs(70));
        assert_eq!(renewal_time(t0, t1, 1.0), t0 + Duration::from_secs(90));
        assert_eq!(renewal_time(t0, t1, 0.5), t0 + Duration::from_secs(80));
        assert_eq!(renewal_time(t0, t1, 7.0), t0 + Duration::from_secs(90));
        assert_eq!(renewal_time(t1, t0, 0.5), t1);
    }
}
