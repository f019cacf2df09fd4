//! `wharf hollow-nodes`: simulated nodes for tests and benchmarks.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

#[derive(Args, Debug)]
pub struct HollowArgs {
    /// Number of nodes to simulate.
    #[arg(long, default_value_t = 1)]
    pub count: usize,
    /// The API server URL (default: the kubeconfig's).
    #[arg(long)]
    pub server: Option<String>,
    /// Kubeconfig with the credentials to use.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// Node names are `<prefix>-<i>`.
    #[arg(long, default_value = "hollow")]
    pub prefix: String,
    /// CPU capacity of each node.
    #[arg(long, default_value = "4")]
    pub cpu: String,
    /// Memory capacity of each node.
    #[arg(long, default_value = "16Gi")]
    pub memory: String,
    /// Pod capacity of each node.
    #[arg(long, default_value_t = 110)]
    pub max_pods: u32,
    /// Share of pods (0-100) whose containers fail with exit code 1.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    pub fail_percent: u8,
    /// The first this-many nodes register, then never renew their Lease or
    /// handle a pod.
    #[arg(long, default_value_t = 0)]
    pub unresponsive: usize,
    /// `leaseDurationSeconds` of the node Leases.
    #[arg(long, default_value_t = 40)]
    pub lease_duration_seconds: u64,
    /// Seconds between two renewals of a node's Lease.
    #[arg(long, default_value_t = 10)]
    pub renew_interval_seconds: u64,
    /// Seconds between two posts of an unchanged node status.
    #[arg(long, default_value_t = 300)]
    pub status_interval_seconds: u64,
    /// Requests in flight at most.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Leave pods alone (no status, no finished deletions): only Nodes and
    /// Leases, as for a scheduler benchmark.
    #[arg(long)]
    pub ignore_pods: bool,
}

pub async fn run(args: HollowArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.count > 0, "--count must be positive");
    let client = super::client_from(&args.kubeconfig, args.server.as_deref(), "kubelet").await?;
    let cfg = hollow::Config {
        count: args.count,
        prefix: args.prefix,
        capacity: hollow::node::Capacity {
            cpu: args.cpu,
            memory: args.memory,
            pods: args.max_pods,
        },
        fail_percent: args.fail_percent,
        unresponsive: args.unresponsive,
        lease_duration: Duration::from_secs(args.lease_duration_seconds.max(1)),
        renew_every: Duration::from_secs(args.renew_interval_seconds.max(1)),
        status_every: Duration::from_secs(args.status_interval_seconds.max(1)),
        concurrency: args.concurrency.max(1),
        run_pods: !args.ignore_pods,
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        r = hollow::run(client, cfg) => r.context("hollow nodes")?,
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    Ok(())
}
