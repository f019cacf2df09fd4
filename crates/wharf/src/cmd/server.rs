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
    /// External datastore, e.g. `etcd://h1:2379,h2:2379,h3:2379`. Default: embedded SQLite.
    #[arg(long, env = "WHARF_DATASTORE_ENDPOINT")]
    pub datastore_endpoint: Option<String>,
    /// Shared secret for joining agents and servers.
    #[arg(long, env = "WHARF_TOKEN")]
    pub token: Option<String>,
    /// Run only the control plane, no kubelet, proxy or DNS on this host.
    #[arg(long, env = "WHARF_DISABLE_AGENT")]
    pub disable_agent: bool,
    /// Where to write the admin kubeconfig.
    #[arg(long, env = "WHARF_WRITE_KUBECONFIG")]
    pub write_kubeconfig: Option<PathBuf>,
    /// File mode of the kubeconfig, e.g. 644.
    #[arg(long, env = "WHARF_WRITE_KUBECONFIG_MODE")]
    pub write_kubeconfig_mode: Option<String>,
    /// History older than this many seconds is compacted.
    #[arg(long, env = "WHARF_COMPACTION_INTERVAL_SECONDS", default_value_t = 300)]
    pub compaction_interval_seconds: u64,
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
    println!("wharf server: store ready ({ds:?}, revision {rev}); the API server arrives with issue #3. Ctrl-C stops.");
    wait_for_shutdown().await;
    tracing::info!("shutting down");
    Ok(())
}

async fn wait_for_shutdown() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
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
