//! The pod network's flags (k3s's names), shared by `wharf server` and
//! `wharf agent`, and what they mean for the kubelet's CNI bridge.

use std::net::IpAddr;
use std::path::Path;

use anyhow::{bail, Context};
use clap::Args;

#[derive(Args, Debug, Clone)]
pub struct NetworkFlags {
    /// The pod network between nodes: `vxlan`, `host-gw` (nodes on one L2
    /// segment) or `none` (no routes between nodes; the kubelet masquerades
    /// traffic leaving its podCIDR in its own nft table). k3s's
    /// `--flannel-backend`.
    #[arg(long, env = "WHARF_FLANNEL_BACKEND", default_value = "vxlan")]
    pub flannel_backend: String,
    /// The interface the pod network uses between nodes (default: the one
    /// holding the node IP). k3s's `--flannel-iface`.
    #[arg(long, env = "WHARF_FLANNEL_IFACE")]
    pub flannel_iface: Option<String>,
}

impl NetworkFlags {
    /// The network's settings, or None for `--flannel-backend=none`.
    pub fn config(
        &self,
        node_name: &str,
        node_ip: IpAddr,
        cluster_cidr: &str,
        data_dir: &Path,
    ) -> anyhow::Result<Option<network::Config>> {
        if self.flannel_backend == "none" {
            return Ok(None);
        }
        let backend: network::plan::Backend = self
            .flannel_backend
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--flannel-backend: {e} or none"))?;
        let IpAddr::V4(ip) = node_ip else {
            bail!("the pod network is IPv4 only: node IP {node_ip}; use --flannel-backend=none");
        };
        let cidr = cluster_cidr
            .parse()
            .map_err(|e: String| anyhow::anyhow!("--cluster-cidr: {e}"))?;
        let mut cfg = network::Config::new(node_name, ip, backend, cidr, data_dir);
        cfg.iface = self.flannel_iface.clone();
        Ok(Some(cfg))
    }
}

/// The CNI bridge's settings beside the network `cfg` (None: no network,
/// and the kubelet masquerades in its own table).
pub fn cni_options(cfg: Option<&network::Config>) -> anyhow::Result<kubelet::cni::Options> {
    let Some(cfg) = cfg else {
        return Ok(kubelet::cni::Options::default());
    };
    Ok(kubelet::cni::Options {
        mtu: Some(network::pod_mtu(cfg).context("the pod network's interface")?),
        // The network's own nft table masquerades for the cluster CIDR.
        masquerade: false,
    })
}

/// Run the network in the background (the agent calls this too); the
/// handle aborts it. Errors are logged: the rest of the node keeps going.
pub async fn start(
    kubeconfig: &Path,
    server: Option<&str>,
    cfg: network::Config,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let client = super::client_from(kubeconfig, server, "wharf-network").await?;
    Ok(tokio::spawn(async move {
        if let Err(e) = network::run(client, cfg).await {
            tracing::error!(error = %e, "the pod network stopped");
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(backend: &str) -> NetworkFlags {
        NetworkFlags {
            flannel_backend: backend.into(),
            // The loopback interface exists everywhere (for the MTU).
            flannel_iface: Some("lo".into()),
        }
    }

    fn options(backend: &str) -> kubelet::cni::Options {
        let cfg = flags(backend)
            .config(
                "n1",
                "127.0.0.1".parse().unwrap(),
                "10.42.0.0/16",
                Path::new("/nonexistent/wharf"),
            )
            .unwrap();
        cni_options(cfg.as_ref()).unwrap()
    }

    #[test]
    fn the_kubelet_masquerades_exactly_when_no_pod_network_runs() {
        let none = options("none");
        assert!(none.masquerade);
        assert_eq!(none.mtu, None);
        for backend in ["vxlan", "host-gw"] {
            let net = options(backend);
            assert!(!net.masquerade, "{backend}");
            assert!(net.mtu.is_some(), "{backend}");
        }
        // `wharf kubelet` alone has no network either.
        assert!(kubelet::cni::Options::default().masquerade);
    }
}
