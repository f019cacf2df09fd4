//! `wharf bench …`: the benchmark suites. Each prints a table; none is a test.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    suite: Suite,
}

#[derive(Subcommand, Debug)]
enum Suite {
    /// The embedded store against a local single-member etcd, on one workload.
    Store(StoreArgs),
    /// The API server over HTTPS: pod creates, GETs, LISTs, watch delivery, memory.
    Apiserver(ApiArgs),
    /// The API server's PATCH throughput over HTTPS: strategic merge and server-side apply on Deployments.
    Patch(PatchArgs),
    /// Scheduler throughput: pending pods bound per second on hollow nodes (500 and 5,000 by default).
    Scheduler(SchedulerArgs),
    /// A Deployment of 3,000 replicas on hollow nodes, from its create until all are available.
    Deployment(DeploymentArgs),
    /// The control plane's CPU while idle, with 1,000 pods running on hollow nodes.
    Idle(IdleArgs),
    /// Pod startup latency and throughput on one real node (a `wharf kubelet` with containerd), and the kubelet's RSS.
    Kubelet(KubeletArgs),
    /// Pod-to-pod TCP throughput across two hosts (network namespaces) over VXLAN, as a ratio of host to host; and request latency through a ClusterIP, as a ratio of pod-IP latency.
    Network(NetworkArgs),
    /// Service proxy rule sync: 1,000 Services x 10 endpoints into a fresh nftables table, then one endpoint change.
    Proxy(ProxyArgs),
    /// Cluster DNS: UDP queries per second for a zone of 1,000 Services.
    Dns(DnsArgs),
}

#[derive(Args, Debug)]
struct DnsArgs {
    /// Seconds the clients query.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Exit non-zero if a goal is missed.
    #[arg(long)]
    check_goals: bool,
}

#[derive(Args, Debug)]
struct ProxyArgs {
    /// Rounds, each in a fresh network namespace (medians are reported).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Exit non-zero if a goal is missed.
    #[arg(long)]
    check_goals: bool,
}

#[derive(Args, Debug)]
struct NetworkArgs {
    /// Seconds each transfer runs.
    #[arg(long, default_value_t = 4)]
    seconds: u64,
    /// Rounds of (host to host, pod to pod) per backend; the ratio is the median of the rounds'.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Requests to each target (pod IP, ClusterIP) in the latency phase, per kind (new connection, kept-open).
    #[arg(long, default_value_t = 3000)]
    requests: usize,
    /// Throughput with host A's side on CPU 0 and host B's on CPU 1 (RPS on each host's underlay, pinned threads), as on two machines.
    #[arg(long)]
    split_cpus: bool,
    /// Only the throughput phase.
    #[arg(long, conflicts_with = "latency_only")]
    throughput_only: bool,
    /// Only the latency phase.
    #[arg(long)]
    latency_only: bool,
    /// Exit non-zero if the ratio is below the goal.
    #[arg(long)]
    check_goals: bool,
}

#[derive(Args, Debug)]
struct KubeletArgs {
    /// Pods created at once (at most 110, one node).
    #[arg(long)]
    pods: Option<usize>,
    /// Pods left running when the kubelet's RSS is read.
    #[arg(long)]
    rss_pods: Option<usize>,
    /// Then create and delete this many pods and count what they leave
    /// behind (veths, IPs, mounts, directories, cgroups): the leak check.
    #[arg(long, default_value_t = 0)]
    cycles: usize,
    /// Then create this many pods at --paced-rate per second (0: skip).
    #[arg(long, default_value_t = 100)]
    paced_pods: usize,
    /// Creates per second of the paced phase.
    #[arg(long, default_value_t = 4.0)]
    paced_rate: f64,
    /// The kubelet's `--default-runtime` (`runc`, or `crun` when found):
    /// the OCI runtime the pods run with.
    #[arg(long)]
    runtime: Option<String>,
    /// Seconds the pods may take to be Running.
    #[arg(long)]
    timeout_secs: Option<u64>,
    /// Keep the server's and kubelet's logs (their path is printed).
    #[arg(long)]
    keep: bool,
    /// Where the data directory goes (default: the system temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Exit non-zero if a goal is missed.
    #[arg(long)]
    check_goals: bool,
}

#[derive(Args, Debug)]
struct StoreArgs {
    /// Creates by one writer, one at a time.
    #[arg(long)]
    serial_writes: Option<usize>,
    /// Creates spread over the concurrent writers.
    #[arg(long)]
    concurrent_writes: Option<usize>,
    /// Concurrent writers.
    #[arg(long)]
    writers: Option<usize>,
    /// Point reads.
    #[arg(long)]
    reads: Option<usize>,
    /// Keys in the timed range.
    #[arg(long)]
    range_keys: Option<usize>,
    /// Watchers in the latency phase.
    #[arg(long)]
    watchers: Option<usize>,
    /// Writes in the latency phase.
    #[arg(long)]
    watch_events: Option<usize>,
    /// Size of each value in bytes.
    #[arg(long)]
    value_bytes: Option<usize>,
    /// Where the databases go (default: the system temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Exit non-zero if a goal is missed.
    #[arg(long)]
    check_goals: bool,
}

#[derive(Args, Debug)]
struct ApiArgs {
    /// Pods created (about 2 KB of JSON each), then read by the GETs and LISTs.
    #[arg(long)]
    pods: Option<usize>,
    /// Concurrent clients for the creates and GETs.
    #[arg(long)]
    clients: Option<usize>,
    /// GETs of single pods.
    #[arg(long)]
    gets: Option<usize>,
    /// Watches open in the watch phase.
    #[arg(long)]
    watchers: Option<usize>,
    /// Writes in the watch phase.
    #[arg(long)]
    watch_events: Option<usize>,
    /// Milliseconds between two writes of the watch phase.
    #[arg(long)]
    watch_pace_ms: Option<u64>,
    /// Where the server's data directory goes (default: the system temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Exit non-zero if a goal is missed.
    #[arg(long)]
    check_goals: bool,
}

#[derive(Args, Debug)]
struct PatchArgs {
    /// Timed patches per phase, all clients together.
    #[arg(long)]
    requests: Option<usize>,
    /// Concurrent clients (at most 100).
    #[arg(long)]
    clients: Option<usize>,
    /// Where the server's data directory goes (default: the system temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Exit non-zero if a goal is missed.
    #[arg(long)]
    check_goals: bool,
    /// Patch a registry in this process instead (no HTTP, no TLS, no
    /// server process): the cost of the write path alone, per patch.
    #[arg(long, conflicts_with = "check_goals")]
    in_process: bool,
}

#[derive(Args, Debug)]
struct SchedulerArgs {
    /// Node counts, one run each with a fresh server (default: 500 and 5000).
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<usize>,
    /// Pods created per run.
    #[arg(long)]
    pods: Option<usize>,
    /// Concurrent creating clients.
    #[arg(long)]
    clients: Option<usize>,
    /// Let the hollow nodes take bound pods to Running during the measured span.
    #[arg(long)]
    run_pods: bool,
    /// Seconds a run may take from the first create until all pods are bound.
    #[arg(long)]
    timeout_secs: Option<u64>,
    /// Where the server's data directory goes (default: the system temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Exit non-zero if a goal is missed.
    #[arg(long)]
    check_goals: bool,
}

#[derive(Args, Debug)]
struct DeploymentArgs {
    /// Replicas of the Deployment.
    #[arg(long)]
    replicas: Option<usize>,
    /// Hollow nodes (110 pods each).
    #[arg(long)]
    nodes: Option<usize>,
    /// Seconds the rollout may take.
    #[arg(long)]
    timeout_secs: Option<u64>,
    /// Where the server's data directory goes (default: the system temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Exit non-zero if a goal is missed.
    #[arg(long)]
    check_goals: bool,
}

#[derive(Args, Debug)]
struct IdleArgs {
    /// Pods running (replicas of one Deployment) while idle.
    #[arg(long)]
    pods: Option<usize>,
    /// Hollow nodes (110 pods each).
    #[arg(long)]
    nodes: Option<usize>,
    /// Seconds to wait after the rollout before measuring.
    #[arg(long)]
    settle_secs: Option<u64>,
    /// Seconds of idle measured.
    #[arg(long)]
    idle_secs: Option<u64>,
    /// Seconds the rollout may take.
    #[arg(long)]
    timeout_secs: Option<u64>,
    /// Where the server's data directory goes (default: the system temp dir).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Exit non-zero if a goal is missed.
    #[arg(long)]
    check_goals: bool,
}

fn secs(field: &mut std::time::Duration, v: Option<u64>) {
    if let Some(v) = v {
        *field = std::time::Duration::from_secs(v);
    }
}

fn finish(report: impl std::fmt::Display, met: bool, check_goals: bool) -> anyhow::Result<()> {
    println!("{report}");
    if check_goals && !met {
        anyhow::bail!("some goals were missed");
    }
    Ok(())
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.suite {
        Suite::Store(a) => {
            let mut cfg = bench::StoreBenchConfig::default();
            let set = |field: &mut usize, v: Option<usize>| {
                if let Some(v) = v {
                    *field = v;
                }
            };
            set(&mut cfg.serial_writes, a.serial_writes);
            set(&mut cfg.concurrent_writes, a.concurrent_writes);
            set(&mut cfg.writers, a.writers);
            set(&mut cfg.reads, a.reads);
            set(&mut cfg.range_keys, a.range_keys);
            set(&mut cfg.watchers, a.watchers);
            set(&mut cfg.watch_events, a.watch_events);
            set(&mut cfg.value_bytes, a.value_bytes);
            cfg.work_dir = a.work_dir;
            let report = bench::run_store_bench(&cfg).await?;
            println!("{report}");
            if a.check_goals && !report.all_goals_met() {
                anyhow::bail!("some goals were missed");
            }
            Ok(())
        }
        Suite::Apiserver(a) => {
            let mut cfg = bench::ApiBenchConfig::default();
            let set = |field: &mut usize, v: Option<usize>| {
                if let Some(v) = v {
                    *field = v;
                }
            };
            set(&mut cfg.pods, a.pods);
            set(&mut cfg.clients, a.clients);
            set(&mut cfg.gets, a.gets);
            set(&mut cfg.watchers, a.watchers);
            set(&mut cfg.watch_events, a.watch_events);
            if let Some(ms) = a.watch_pace_ms {
                cfg.watch_pace = std::time::Duration::from_millis(ms);
            }
            cfg.work_dir = a.work_dir;
            let exe = std::env::current_exe().context("locating the wharf executable")?;
            let report = bench::run_apiserver_bench(&cfg, &exe).await?;
            println!("{report}");
            if a.check_goals && !report.all_goals_met() {
                anyhow::bail!("some goals were missed");
            }
            Ok(())
        }
        Suite::Patch(a) => {
            let mut cfg = bench::PatchBenchConfig::default();
            if let Some(n) = a.requests {
                cfg.requests = n;
            }
            if let Some(n) = a.clients {
                cfg.clients = n;
            }
            cfg.work_dir = a.work_dir;
            if a.in_process {
                println!("{}", bench::patch::run_in_process(&cfg).await?);
                return Ok(());
            }
            let exe = std::env::current_exe().context("locating the wharf executable")?;
            let report = bench::run_patch_bench(&cfg, &exe).await?;
            println!("{report}");
            if a.check_goals && !report.all_goals_met() {
                anyhow::bail!("some goals were missed");
            }
            Ok(())
        }
        Suite::Scheduler(a) => {
            let mut cfg = bench::SchedulerBenchConfig::default();
            if !a.nodes.is_empty() {
                cfg.nodes = a.nodes;
            }
            cfg.pods = a.pods.unwrap_or(cfg.pods);
            cfg.clients = a.clients.unwrap_or(cfg.clients);
            cfg.run_pods = a.run_pods;
            secs(&mut cfg.timeout, a.timeout_secs);
            cfg.work_dir = a.work_dir;
            let exe = std::env::current_exe().context("locating the wharf executable")?;
            let report = bench::run_scheduler_bench(&cfg, &exe).await?;
            let met = report.all_goals_met();
            finish(report, met, a.check_goals)
        }
        Suite::Deployment(a) => {
            let mut cfg = bench::DeploymentBenchConfig::default();
            cfg.replicas = a.replicas.unwrap_or(cfg.replicas);
            cfg.nodes = a.nodes.unwrap_or(cfg.nodes);
            secs(&mut cfg.timeout, a.timeout_secs);
            cfg.work_dir = a.work_dir;
            let exe = std::env::current_exe().context("locating the wharf executable")?;
            let report = bench::run_deployment_bench(&cfg, &exe).await?;
            let met = report.all_goals_met();
            finish(report, met, a.check_goals)
        }
        Suite::Idle(a) => {
            let mut cfg = bench::IdleBenchConfig::default();
            cfg.pods = a.pods.unwrap_or(cfg.pods);
            cfg.nodes = a.nodes.unwrap_or(cfg.nodes);
            secs(&mut cfg.settle, a.settle_secs);
            secs(&mut cfg.window, a.idle_secs);
            secs(&mut cfg.timeout, a.timeout_secs);
            cfg.work_dir = a.work_dir;
            let exe = std::env::current_exe().context("locating the wharf executable")?;
            let report = bench::run_idle_bench(&cfg, &exe).await?;
            let met = report.all_goals_met();
            finish(report, met, a.check_goals)
        }
        Suite::Kubelet(a) => {
            let mut cfg = bench::KubeletBenchConfig::default();
            cfg.pods = a.pods.unwrap_or(cfg.pods);
            cfg.rss_pods = a.rss_pods.unwrap_or(cfg.rss_pods);
            cfg.cycles = a.cycles;
            cfg.paced_pods = a.paced_pods;
            cfg.paced_rate = a.paced_rate;
            cfg.runtime = a.runtime;
            secs(&mut cfg.timeout, a.timeout_secs);
            cfg.keep = a.keep;
            cfg.work_dir = a.work_dir;
            let exe = std::env::current_exe().context("locating the wharf executable")?;
            let report = bench::run_kubelet_bench(&cfg, &exe).await?;
            let met = report.all_goals_met();
            finish(report, met, a.check_goals)
        }
        Suite::Dns(a) => {
            let run_for = std::time::Duration::from_secs(a.seconds.max(1));
            let report = tokio::task::spawn_blocking(move || bench::dns::run(run_for))
                .await
                .context("the DNS benchmark panicked")??;
            let met = report.all_goals_met();
            finish(report, met, a.check_goals)
        }
        Suite::Proxy(a) => {
            let rounds = a.rounds;
            let report = tokio::task::spawn_blocking(move || bench::proxy::run(rounds))
                .await
                .context("the proxy benchmark panicked")??;
            let met = report.all_goals_met();
            finish(report, met, a.check_goals)
        }
        Suite::Network(a) => {
            let run_for = std::time::Duration::from_secs(a.seconds.max(1));
            let mut text = Vec::new();
            // The latency phase has no goal of its own: only the ratio is asked for.
            let mut met = true;
            if !a.latency_only {
                let (rounds, split) = (a.rounds, a.split_cpus);
                let report = tokio::task::spawn_blocking(move || {
                    network::bench::run(run_for, rounds, split)
                })
                .await
                .context("the network benchmark panicked")?
                .map_err(|e| anyhow::anyhow!(e))?;
                met = report.goal_met();
                text.push(report.to_string());
            }
            if !a.throughput_only {
                let requests = a.requests;
                let report =
                    tokio::task::spawn_blocking(move || network::bench_latency::run(requests))
                        .await
                        .context("the network latency benchmark panicked")?
                        .map_err(|e| anyhow::anyhow!(e))?;
                text.push(report.to_string());
            }
            finish(text.join("\n\n"), met, a.check_goals)
        }
    }
}
