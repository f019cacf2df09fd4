//! `wharf proxy`: the service proxy alone (kube-proxy's flags), and the
//! settings `wharf server` shares with it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use proxy::rules::{Cidr, NodePortAddresses};

/// Flags both `wharf proxy` and `wharf server` take.
#[derive(Args, Debug, Clone)]
pub struct ProxyFlags {
    /// The nftables table (`ip <name>`) the proxy owns; it touches no other.
    #[arg(
        long = "proxy-table-name",
        env = "WHARF_PROXY_TABLE_NAME",
        default_value = "wharf-proxy"
    )]
    pub table: String,
    /// Where NodePorts are served: `primary` (the node's own addresses, as
    /// kube-proxy's nftables mode by default) or comma-separated CIDRs of
    /// local addresses (`0.0.0.0/0`: every local address but 127.0.0.0/8).
    #[arg(
        long = "nodeport-addresses",
        env = "WHARF_NODEPORT_ADDRESSES",
        value_delimiter = ','
    )]
    pub nodeport_addresses: Vec<String>,
    /// Minimum time between two applies of the ruleset, in milliseconds.
    #[arg(
        long = "proxy-min-sync-period-ms",
        env = "WHARF_PROXY_MIN_SYNC_PERIOD_MS",
        default_value_t = 100
    )]
    pub min_sync_period_ms: u64,
}

#[derive(Args, Debug)]
pub struct ProxyArgs {
    /// Kubeconfig with the credentials to use.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The API server URL (default: the kubeconfig's); kube-proxy's `--master`.
    #[arg(long, alias = "server")]
    pub master: Option<String>,
    /// This node's name (defaults to the host name).
    #[arg(
        long = "hostname-override",
        alias = "node-name",
        env = "WHARF_NODE_NAME"
    )]
    pub hostname_override: Option<String>,
    /// The pod network: traffic to a ClusterIP from outside it is masqueraded.
    #[arg(long, env = "WHARF_CLUSTER_CIDR")]
    pub cluster_cidr: Option<String>,
    /// Delete the proxy's table and exit (kube-proxy's `--cleanup`).
    #[arg(long)]
    pub cleanup: bool,
    #[command(flatten)]
    pub flags: ProxyFlags,
}

/// An nft table name: nft's identifier syntax, so it needs no quoting.
fn check_table(name: &str) -> anyhow::Result<()> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && name.len() <= 64;
    if !ok {
        bail!("--proxy-table-name {name:?}: use letters, digits, '-' and '_', starting with a letter (at most 64)");
    }
    Ok(())
}

impl ProxyFlags {
    /// The proxy's configuration for node `node_name`.
    pub fn config(
        &self,
        node_name: String,
        cluster_cidr: Option<&str>,
    ) -> anyhow::Result<proxy::Config> {
        check_table(&self.table)?;
        let nodeport_addresses = match self.nodeport_addresses.as_slice() {
            [] => NodePortAddresses::Primary,
            [p] if p == "primary" => NodePortAddresses::Primary,
            list => NodePortAddresses::Cidrs(
                list.iter()
                    .map(|c| c.parse::<Cidr>().map_err(anyhow::Error::msg))
                    .collect::<anyhow::Result<_>>()
                    .context("--nodeport-addresses")?,
            ),
        };
        let cluster_cidr = match cluster_cidr.map(str::trim).filter(|c| !c.is_empty()) {
            // Dual-stack lists: the IPv4 prefix is the one the proxy serves.
            Some(list) => list
                .split(',')
                .find_map(|c| c.parse::<Cidr>().ok())
                .map(Some)
                .with_context(|| format!("--cluster-cidr {list:?} has no IPv4 prefix"))?,
            None => None,
        };
        let mut cfg = proxy::Config::new(node_name);
        cfg.table = self.table.clone();
        cfg.cluster_cidr = cluster_cidr;
        cfg.nodeport_addresses = nodeport_addresses;
        cfg.min_sync_period = Duration::from_millis(self.min_sync_period_ms);
        Ok(cfg)
    }
}

/// Start the proxy with the real nftables (libnftables, or the `nft`
/// binary where the library is missing).
pub fn start(client: kube::Client, cfg: proxy::Config) -> proxy::Proxy {
    tracing::info!(table = %cfg.table, node = %cfg.node_name, cluster_cidr = ?cfg.cluster_cidr, "starting the service proxy");
    proxy::Proxy::start(
        client,
        cfg,
        proxy::nft::host(),
        Arc::new(proxy::conntrack::ConntrackCommand::default()),
    )
}

pub async fn run(args: ProxyArgs) -> anyhow::Result<()> {
    if args.cleanup {
        check_table(&args.flags.table)?;
        proxy::nft::delete_table(&*proxy::nft::host(), &args.flags.table)
            .context("deleting the proxy's table")?;
        println!("wharf proxy: table ip {} deleted", args.flags.table);
        return Ok(());
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let Some(kubeconfig) = args.kubeconfig.as_deref() else {
        bail!("--kubeconfig (or KUBECONFIG) is required");
    };
    let node = super::kubelet::node_name(args.hostname_override.as_deref());
    let cfg = args.flags.config(node, args.cluster_cidr.as_deref())?;
    let client = super::client_from(kubeconfig, args.master.as_deref(), "kube-proxy").await?;
    let p = start(client, cfg);
    super::say!("wharf proxy: running (table ip {})", args.flags.table);
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    p.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(table: &str, np: &[&str]) -> ProxyFlags {
        ProxyFlags {
            table: table.into(),
            nodeport_addresses: np.iter().map(|s| s.to_string()).collect(),
            min_sync_period_ms: 100,
        }
    }

    #[test]
    fn flags_become_the_proxy_config() {
        let c = flags("wharf-e2e-1", &[])
            .config("n1".into(), Some("10.42.0.0/16,fd00::/56"))
            .unwrap();
        assert_eq!(c.table, "wharf-e2e-1");
        assert_eq!(c.cluster_cidr, Some("10.42.0.0/16".parse().unwrap()));
        assert_eq!(c.nodeport_addresses, NodePortAddresses::Primary);
        let c = flags("t", &["192.168.0.0/16"])
            .config("n1".into(), None)
            .unwrap();
        assert_eq!(
            c.nodeport_addresses,
            NodePortAddresses::Cidrs(vec!["192.168.0.0/16".parse().unwrap()])
        );
        assert!(flags("bad name", &[]).config("n1".into(), None).is_err());
        assert!(flags("t;flush ruleset", &[])
            .config("n1".into(), None)
            .is_err());
        assert!(flags("t", &["nope"]).config("n1".into(), None).is_err());
        assert!(flags("t", &[])
            .config("n1".into(), Some("fd00::/56"))
            .is_err());
    }
}
