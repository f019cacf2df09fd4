//! `wharf controller-manager`: the controller manager alone, as a client of
//! an API server. Its tuning flags (named as kube-controller-manager's) are
//! shared with `wharf server`, which runs the same controllers.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

/// kube-controller-manager's flags that wharf honours.
#[derive(Args, Debug, Clone)]
pub struct ControllerFlags {
    /// How often node health is checked (a Go duration: 5s, 500ms, 1m).
    #[arg(long, env = "WHARF_NODE_MONITOR_PERIOD", default_value = "5s", value_parser = parse_duration)]
    pub node_monitor_period: Duration,
    /// A node whose kubelet posts nothing for this long is marked Unknown.
    #[arg(long, env = "WHARF_NODE_MONITOR_GRACE_PERIOD", default_value = "50s", value_parser = parse_duration)]
    pub node_monitor_grace_period: Duration,
    /// The same for a node that never posted a Ready condition.
    #[arg(long, env = "WHARF_NODE_STARTUP_GRACE_PERIOD", default_value = "1m", value_parser = parse_duration)]
    pub node_startup_grace_period: Duration,
    /// Nodes per second that get a NoExecute taint, per healthy zone.
    #[arg(long, env = "WHARF_NODE_EVICTION_RATE", default_value_t = 0.1)]
    pub node_eviction_rate: f64,
    /// The same in a partially disrupted large zone.
    #[arg(
        long,
        env = "WHARF_SECONDARY_NODE_EVICTION_RATE",
        default_value_t = 0.01
    )]
    pub secondary_node_eviction_rate: f64,
    /// Zones with more nodes than this are large.
    #[arg(long, env = "WHARF_LARGE_CLUSTER_SIZE_THRESHOLD", default_value_t = 50)]
    pub large_cluster_size_threshold: usize,
    /// Share of not-Ready nodes from which a zone is partially disrupted.
    #[arg(long, env = "WHARF_UNHEALTHY_ZONE_THRESHOLD", default_value_t = 0.55)]
    pub unhealthy_zone_threshold: f64,
    /// Give each node a podCIDR from the cluster CIDR.
    #[arg(long, env = "WHARF_ALLOCATE_NODE_CIDRS", default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    pub allocate_node_cidrs: bool,
    /// Prefix length of each node's podCIDR.
    #[arg(long, env = "WHARF_NODE_CIDR_MASK_SIZE", default_value_t = 24)]
    pub node_cidr_mask_size: u8,
    /// Terminated pods kept before the oldest are deleted (0: no limit).
    #[arg(
        long,
        env = "WHARF_TERMINATED_POD_GC_THRESHOLD",
        default_value_t = 12500
    )]
    pub terminated_pod_gc_threshold: usize,
    /// How often the pod garbage collector runs (wharf's; upstream fixes 20s).
    #[arg(long, env = "WHARF_POD_GC_PERIOD", default_value = "20s", value_parser = parse_duration)]
    pub pod_gc_period: Duration,
    /// How long a pod's node must be missing before the pod is deleted
    /// (wharf's; upstream fixes 40s).
    #[arg(long, env = "WHARF_POD_GC_QUARANTINE", default_value = "40s", value_parser = parse_duration)]
    pub pod_gc_quarantine: Duration,
    /// The CA certificate (PEM) that signs approved client certificate
    /// requests (`wharf server`: its own CA).
    #[arg(
        long,
        env = "WHARF_CLUSTER_SIGNING_CERT_FILE",
        requires = "cluster_signing_key_file"
    )]
    pub cluster_signing_cert_file: Option<PathBuf>,
    /// The key of `--cluster-signing-cert-file` (PEM).
    #[arg(
        long,
        env = "WHARF_CLUSTER_SIGNING_KEY_FILE",
        requires = "cluster_signing_cert_file"
    )]
    pub cluster_signing_key_file: Option<PathBuf>,
    /// The longest validity of a signed certificate (a request may ask for less).
    #[arg(long, env = "WHARF_CLUSTER_SIGNING_DURATION", default_value = "8760h", value_parser = parse_duration)]
    pub cluster_signing_duration: Duration,
}

impl ControllerFlags {
    /// The controllers' configuration, with the pod network `cluster_cidr`.
    pub fn config(&self, cluster_cidr: &str) -> controllers::Config {
        controllers::Config {
            node_monitor_period: self.node_monitor_period,
            node_monitor_grace_period: self.node_monitor_grace_period,
            node_startup_grace_period: self.node_startup_grace_period,
            node_eviction_rate: self.node_eviction_rate,
            secondary_node_eviction_rate: self.secondary_node_eviction_rate,
            large_cluster_size_threshold: self.large_cluster_size_threshold,
            unhealthy_zone_threshold: self.unhealthy_zone_threshold,
            allocate_node_cidrs: self.allocate_node_cidrs,
            cluster_cidr: cluster_cidr.to_string(),
            node_cidr_mask_size: self.node_cidr_mask_size,
            terminated_pod_gc_threshold: self.terminated_pod_gc_threshold,
            pod_gc_period: self.pod_gc_period,
            pod_gc_quarantine: self.pod_gc_quarantine,
            root_ca_pem: None,
            signer: None,
        }
    }

    /// The certificate signer from `cert`/`key` (the flags, else the given
    /// defaults); `None` when neither is set.
    pub fn signer(
        &self,
        default: Option<(PathBuf, PathBuf)>,
    ) -> anyhow::Result<Option<controllers::csr::Signer>> {
        let files = match (
            &self.cluster_signing_cert_file,
            &self.cluster_signing_key_file,
        ) {
            (Some(c), Some(k)) => Some((c.clone(), k.clone())),
            _ => default,
        };
        let Some((cert, key)) = files else {
            return Ok(None);
        };
        let read = |p: &PathBuf| {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
        };
        let signer = controllers::csr::Signer::new(
            &read(&cert)?,
            &read(&key)?,
            self.cluster_signing_duration,
        )
        .with_context(|| format!("the signing CA {}", cert.display()))?;
        Ok(Some(signer))
    }
}

/// A Go duration (`300ms`, `5s`, `1m30s`, `1h`); a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if let Ok(secs) = s.parse::<f64>() {
        return (secs >= 0.0 && secs.is_finite())
            .then(|| Duration::from_secs_f64(secs))
            .ok_or_else(|| format!("invalid duration {s:?}"));
    }
    let bad = || format!("invalid duration {s:?} (e.g. 500ms, 5s, 1m30s)");
    let mut total = 0f64;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    Ok(Duration::from_secs_f64(total))
}

#[derive(Args, Debug)]
pub struct ControllerManagerArgs {
    /// Kubeconfig with the credentials to use.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// The API server URL (default: the kubeconfig's).
    #[arg(long)]
    pub server: Option<String>,
    /// Pod network range the node CIDRs are cut from.
    #[arg(long, env = "WHARF_CLUSTER_CIDR", default_value = "10.42.0.0/16")]
    pub cluster_cidr: String,
    #[command(flatten)]
    pub controllers: ControllerFlags,
    #[command(flatten)]
    pub leader: super::elect::LeaderFlags,
}

pub async fn run(args: ControllerManagerArgs) -> anyhow::Result<()> {
    let client = super::client_from(
        &args.kubeconfig,
        args.server.as_deref(),
        "kube-controller-manager",
    )
    .await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let mut cfg = args.controllers.config(&args.cluster_cidr);
    cfg.root_ca_pem = super::root_ca_pem(&args.kubeconfig);
    cfg.signer = args.controllers.signer(None)?;
    cfg.check().context("the controller manager's settings")?;
    let election = args
        .leader
        .config("kube-controller-manager", election::default_identity())?;
    let stop = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    let work_client = client.clone();
    super::elect::run(
        client,
        election,
        move || run_controllers(work_client.clone(), cfg.clone()),
        stop,
    )
    .await;
    Ok(())
}

/// The controllers until they stop (they do not, unless they fail to start);
/// dropping the future stops them.
pub async fn run_controllers(client: kube::Client, cfg: controllers::Config) {
    match controllers::start(client, cfg) {
        Ok(task) => {
            let mut task = super::elect::AbortOnDrop(task);
            let _ = (&mut task.0).await;
            tracing::error!("the controllers stopped");
        }
        Err(e) => tracing::error!(error = %e, "starting the controllers"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        f: ControllerFlags,
    }

    #[test]
    fn signing_ca_from_flags_or_default() {
        use clap::Parser;
        let dir = tempfile::tempdir().unwrap();
        apiserver::pki::ensure(dir.path(), &[]).unwrap();
        let tls = dir.path().join("tls");
        let (crt, key) = (tls.join("ca.crt"), tls.join("ca.key"));
        let none = Flags::parse_from(["x"]).f;
        assert!(none.signer(None).unwrap().is_none());
        let s = none
            .signer(Some((crt.clone(), key.clone())))
            .unwrap()
            .unwrap();
        assert_eq!(s.max_duration, Duration::from_secs(8760 * 3600));
        let flags = Flags::parse_from([
            "x",
            "--cluster-signing-cert-file",
            crt.to_str().unwrap(),
            "--cluster-signing-key-file",
            tls.join("admin.key").to_str().unwrap(),
            "--cluster-signing-duration",
            "90s",
        ])
        .f;
        // The flags win over the default; a key of another certificate is refused.
        let err = flags.signer(Some((crt, key))).unwrap_err();
        assert!(format!("{err:#}").contains("does not belong"), "{err:#}");
        assert!(Flags::try_parse_from(["x", "--cluster-signing-cert-file", "a"]).is_err());
    }

    #[test]
    fn durations_parse_like_go() {
        assert_eq!(parse_duration("50s"), Ok(Duration::from_secs(50)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("s").is_err());
    }
}
