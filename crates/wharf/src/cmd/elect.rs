//! Leader election for the components that must run once per cluster (the
//! scheduler and the controller manager): upstream's `--leader-elect` flags,
//! and the runner that keeps a component working only while it holds its
//! Lease.

use std::future::Future;
use std::time::Duration;

use clap::Args;

use super::controller_manager::parse_duration;

/// Upstream's leader election flags. The Lease is `kube-system/<component>`
/// unless `--leader-elect-resource-name` says otherwise.
#[derive(Args, Debug, Clone)]
pub struct LeaderFlags {
    /// Work only while holding the leader Lease, so that several instances
    /// never both act (`--leader-elect=false` to turn off).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,
    /// How long a leader Lease lasts without renewal.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader keeps working without a successful renewal.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,
    /// How often to try to acquire or renew the Lease.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,
    /// The Lease's namespace.
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,
    /// The Lease's name (default: the component's, as upstream).
    #[arg(long)]
    pub leader_elect_resource_name: Option<String>,
}

impl LeaderFlags {
    /// The election for `component` as `identity`; `None` when turned off.
    pub fn config(
        &self,
        component: &str,
        identity: String,
    ) -> anyhow::Result<Option<election::Config>> {
        if !self.leader_elect {
            return Ok(None);
        }
        let cfg = election::Config {
            namespace: self.leader_elect_resource_namespace.clone(),
            name: self
                .leader_elect_resource_name
                .clone()
                .unwrap_or_else(|| component.to_string()),
            identity,
            lease_duration: self.leader_elect_lease_duration,
            renew_deadline: self.leader_elect_renew_deadline,
            retry_period: self.leader_elect_retry_period,
        };
        anyhow::ensure!(
            cfg.lease_duration > cfg.renew_deadline && cfg.renew_deadline > cfg.retry_period,
            "leader election needs lease duration > renew deadline > retry period"
        );
        Ok(Some(cfg))
    }
}

/// Run `work` until `stop`: directly without an election, else only while
/// holding the Lease (started again each time it is won back), releasing it
/// at the end.
pub async fn run<W, Fut>(
    client: kube::Client,
    election: Option<election::Config>,
    work: W,
    stop: impl Future<Output = ()>,
) where
    W: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    match election {
        None => {
            tokio::select! {
                _ = work() => {}
                _ = stop => {}
            }
        }
        Some(cfg) => {
            tracing::info!(identity = %cfg.identity, lease = %cfg.name, "campaigning for the leader lease");
            election::run_elected(client, cfg, work, stop).await;
        }
    }
}

/// A task aborted when this is dropped: a component started as a task stops
/// with the future that awaits it (when its Lease is lost).
pub struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
