//! `wharf scheduler`: the scheduler alone, as a client of an API server,
//! by default only while it holds the `kube-system/kube-scheduler` Lease
//! (upstream's `--leader-elect`).

use std::path::PathBuf;

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
    #[command(flatten)]
    pub leader: super::elect::LeaderFlags,
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
    let election = args
        .leader
        .config("kube-scheduler", election::default_identity())?;
    let work_client = client.clone();
    super::elect::run(
        client,
        election,
        move || scheduler::run(work_client.clone(), cfg.clone()),
        stop,
    )
    .await;
    Ok(())
}
