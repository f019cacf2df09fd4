//! `wharf scheduler`: the scheduler alone, as a client of an API server,
//! by default only while it holds the `kube-system/kube-scheduler` Lease
//! (upstream's `--leader-elect`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

#[derive(Args, Debug)]
pub struct SchedulerArgs {
    /// Kubeconfig with the credentials to use.
    #[arg(long, env = "KUBECONFIG")]
    pub kubeconfig: PathBuf,
    /// The API server URL (default: the kubeconfig's).
    #[arg(long)]
    pub server: Option<String>,
    /// Schedule the pods whose `spec.schedulerName` is this.
    #[arg(long, default_value = "default-scheduler")]
    pub scheduler_name: String,
    /// Schedule only while holding the leader Lease, so that several
    /// schedulers never both bind (`--leader-elect=false` to turn off).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub leader_elect: bool,
    /// How long a leader Lease lasts without renewal.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,
    /// How long the leader keeps scheduling without a successful renewal.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,
    /// How often to try to acquire or renew the Lease.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,
    /// The Lease's namespace.
    #[arg(long, default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,
    /// The Lease's name.
    #[arg(long, default_value = "kube-scheduler")]
    pub leader_elect_resource_name: String,
}

/// A Go-style duration: `15s`, `500ms`, `1m`, `1h`, or `1m30s`.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let mut total = Duration::ZERO;
    let mut rest = s.trim();
    if rest.is_empty() {
        return Err("empty duration".into());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("missing unit in duration {s:?}"))?;
        let (num, tail) = rest.split_at(digits);
        let n: f64 = num.parse().map_err(|_| format!("invalid duration {s:?}"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let secs = match unit {
            "ms" => n / 1000.0,
            "s" => n,
            "m" => n * 60.0,
            "h" => n * 3600.0,
            _ => return Err(format!("unknown unit {unit:?} in duration {s:?}")),
        };
        total += Duration::from_secs_f64(secs);
        rest = next;
    }
    Ok(total)
}

pub async fn run(args: SchedulerArgs) -> anyhow::Result<()> {
    let client =
        super::client_from(&args.kubeconfig, args.server.as_deref(), "kube-scheduler").await?;
    let cfg = scheduler::Config {
        name: args.scheduler_name,
        ..scheduler::Config::default()
    };
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let stop = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    if !args.leader_elect {
        tokio::select! {
            _ = scheduler::run(client, cfg) => {}
            _ = stop => {}
        }
        return Ok(());
    }
    let election = scheduler::leader::Config {
        namespace: args.leader_elect_resource_namespace,
        name: args.leader_elect_resource_name,
        identity: scheduler::leader::default_identity(),
        lease_duration: args.leader_elect_lease_duration,
        renew_deadline: args.leader_elect_renew_deadline,
        retry_period: args.leader_elect_retry_period,
    };
    anyhow::ensure!(
        election.lease_duration > election.renew_deadline
            && election.renew_deadline > election.retry_period,
        "leader election needs lease duration > renew deadline > retry period"
    );
    tracing::info!(identity = %election.identity, "campaigning for the scheduler lease");
    let work_client = client.clone();
    scheduler::leader::run_elected(
        client,
        election,
        move || scheduler::run(work_client.clone(), cfg.clone()),
        stop,
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("15s"), Ok(Duration::from_secs(15)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("3d").is_err());
    }
}
