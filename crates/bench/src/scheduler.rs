//! The scheduler benchmark: `wharf server` (API server and scheduler, no
//! controller manager) as a child process, hollow nodes as another, and
//! 10,000 pending pods created over HTTPS by many clients.
//!
//! For each node count, [`run_scheduler_bench`] starts a fresh server and
//! hollow process, waits until every node is Ready, opens a watch on the
//! pods' namespace, then releases the clients, whose pod bodies are
//! serialized beforehand, and waits until the watch has seen every pod bound
//! (`spec.nodeName` set). By default the hollow nodes keep their Nodes and
//! Leases fresh but do not start pods, as upstream's scheduler_perf has no
//! kubelets: taking 10,000 pods to Running would cost this machine's cores
//! during the span and measure the kubelets' status writes as well.
//! The returned [`SchedulerReport`] prints as a table against the goals.
//!
//! The caller provides the tokio runtime; it should be multi-threaded.

#[path = "scheduler_report.rs"]
mod report;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use http::StatusCode;

use crate::apiserver::{call, create_namespace, excerpt, pod_json, post, with_server_flags};
use crate::cluster::{wait_nodes_ready, Hollow, HollowSpec, Meter};
use crate::podwatch::PodWatch;
use crate::tasks::join_all;

pub use report::{
    goal_for, NodeRun, SchedulerReport, GOAL_PODS_PER_SEC_500, GOAL_PODS_PER_SEC_5000,
};

/// Namespace of the pods (the API benchmark's pods, so the same bodies).
pub const POD_NAMESPACE: &str = crate::apiserver::POD_NAMESPACE;
/// CPU cores of each hollow node: a pod requests 300m, so 26 fit.
pub const NODE_CPU: u32 = 8;
/// Memory of each hollow node, in GiB: a pod requests 320Mi.
pub const NODE_MEMORY_GIB: u32 = 32;
/// Pod slots of each hollow node (the kubelet's default).
pub const NODE_MAX_PODS: u32 = 110;
/// Pods that fit on one node: the least of the CPU, memory and slot limits.
pub const PODS_PER_NODE: usize = 26;

/// The workload of [`run_scheduler_bench`].
#[derive(Clone, Debug)]
pub struct SchedulerBenchConfig {
    /// Node counts, one run each with a fresh server.
    pub nodes: Vec<usize>,
    /// Pods created per run.
    pub pods: usize,
    /// Concurrent creating clients, one request in flight each.
    pub clients: usize,
    /// Whether the hollow nodes take the bound pods to Running during the span.
    pub run_pods: bool,
    /// How long a run may take from the first create until every pod is bound.
    pub timeout: Duration,
    /// Directory for the server's temporary data directory; the system
    /// temporary directory if `None`.
    pub work_dir: Option<PathBuf>,
}

impl Default for SchedulerBenchConfig {
    fn default() -> Self {
        SchedulerBenchConfig {
            nodes: vec![500, 5_000],
            pods: 10_000,
            clients: 32,
            run_pods: false,
            timeout: Duration::from_secs(600),
            work_dir: None,
        }
    }
}

impl SchedulerBenchConfig {
    fn validate(&self) -> Result<()> {
        ensure!(!self.nodes.is_empty(), "nodes must name at least one count");
        ensure!(self.pods > 0, "pods must be positive");
        ensure!(self.pods < 100_000, "pods must be below 100,000");
        ensure!(self.clients > 0, "clients must be positive");
        for &n in &self.nodes {
            ensure!(n > 0, "nodes must be positive");
            ensure!(n <= 20_000, "nodes must be at most 20,000");
            ensure!(
                self.pods <= n * PODS_PER_NODE,
                "{} pods do not fit on {n} nodes ({PODS_PER_NODE} per node: {NODE_CPU} CPUs, \
                 {NODE_MEMORY_GIB} GiB, a pod requests 300m and 320Mi)",
                self.pods
            );
        }
        Ok(())
    }

    fn hollow(&self, nodes: usize) -> HollowSpec {
        HollowSpec {
            nodes,
            cpu: NODE_CPU,
            memory_gib: NODE_MEMORY_GIB,
            max_pods: NODE_MAX_PODS,
            run_pods: self.run_pods,
            concurrency: 32,
        }
    }
}

/// One run per node count, each on a fresh `wharf_exe server` (scheduler on,
/// controller manager off) and a fresh `wharf_exe hollow-nodes`, both stopped
/// by PID afterwards.
pub async fn run_scheduler_bench(
    cfg: &SchedulerBenchConfig,
    wharf_exe: &Path,
) -> Result<SchedulerReport> {
    cfg.validate()?;
    let mut runs = Vec::with_capacity(cfg.nodes.len());
    for &nodes in &cfg.nodes {
        eprintln!(
            "[bench] scheduler: {nodes} nodes, {} pods from {} clients ...",
            cfg.pods, cfg.clients
        );
        let run = with_server_flags(
            wharf_exe,
            cfg.work_dir.as_deref(),
            "wharf-schedbench-",
            &["--disable-controller-manager"],
            async |client, server| {
                let mut hollow = Hollow::start(wharf_exe, server, &cfg.hollow(nodes))?;
                let r = one_run(client, cfg, nodes, server, &mut hollow).await;
                hollow.stop();
                r
            },
        )
        .await
        .with_context(|| format!("the run on {nodes} nodes"))?;
        eprintln!(
            "[bench] scheduler:   {:.0} pods/s over {:.2} s on {nodes} nodes; ack to bound p50 {:.1} / p99 {:.1} ms",
            run.pods_per_sec(),
            run.span.as_secs_f64(),
            run.latency_p50.as_secs_f64() * 1000.0,
            run.latency_p99.as_secs_f64() * 1000.0,
        );
        runs.push(run);
    }
    Ok(SchedulerReport {
        config: cfg.clone(),
        pod_bytes: pod_json(0).len(),
        runs,
    })
}

async fn one_run(
    client: &kube::Client,
    cfg: &SchedulerBenchConfig,
    nodes: usize,
    server: &mut crate::apiserver::Server,
    hollow: &mut Hollow,
) -> Result<NodeRun> {
    let ready_after = wait_nodes_ready(client, hollow, nodes).await?;
    eprintln!(
        "[bench] scheduler:   {nodes} nodes Ready after {:.1} s",
        ready_after.as_secs_f64()
    );
    create_namespace(client, POD_NAMESPACE).await?;
    // Let the registration's writes and the scheduler's node cache settle.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut watch = PodWatch::start(client, POD_NAMESPACE, cfg.pods).await?;
    let meter = Meter::new(server, hollow);

    let tasks = cfg.clients.min(cfg.pods);
    let path = Arc::new(format!("/api/v1/namespaces/{POD_NAMESPACE}/pods"));
    let barrier = Arc::new(tokio::sync::Barrier::new(tasks + 1));
    let mut handles = Vec::with_capacity(tasks);
    for t in 0..tasks {
        let bodies: Vec<(usize, Vec<u8>)> = (t..cfg.pods)
            .step_by(tasks)
            .map(|i| (i, pod_json(i)))
            .collect();
        let (client, path, barrier) = (client.clone(), path.clone(), barrier.clone());
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut acks = Vec::with_capacity(bodies.len());
            for (i, body) in bodies {
                let (status, resp) = call(&client, post(&path, body))
                    .await
                    .with_context(|| format!("creating pod {i}"))?;
                let at = Instant::now();
                ensure!(
                    status == StatusCode::CREATED,
                    "creating pod {i}: HTTP {status}: {}",
                    excerpt(&resp)
                );
                acks.push((i, at));
            }
            Ok(acks)
        }));
    }
    let before = meter.sample();
    barrier.wait().await;
    let start = Instant::now();
    let acks: Vec<(usize, Instant)> = join_all(handles).await?.into_iter().flatten().collect();
    let created = Instant::now();
    let mut last_report = Instant::now();
    let all_bound = loop {
        watch.check()?;
        server.ensure_running()?;
        hollow.ensure_running()?;
        {
            let t = watch.lock();
            if let Some(at) = t.all_bound {
                break at;
            }
            if start.elapsed() > cfg.timeout {
                bail!(
                    "only {} of {} pods were bound {:?} after the first create; pods: {}",
                    t.bound,
                    cfg.pods,
                    cfg.timeout,
                    t.census()
                );
            }
            if last_report.elapsed() > Duration::from_secs(5) {
                eprintln!(
                    "[bench] scheduler:   {:.0} s: {} seen, {} bound",
                    start.elapsed().as_secs_f64(),
                    t.created(),
                    t.bound
                );
                last_report = Instant::now();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let cpu = before.until(&meter.sample());
    let t = watch.lock();
    let mut latencies = Vec::with_capacity(acks.len());
    for &(i, acked) in &acks {
        let name = crate::apiserver::pod_name(i);
        let bound = t
            .pods
            .get(&name)
            .and_then(|s| s.bound)
            .with_context(|| format!("pod {name} was created but not seen bound"))?;
        latencies.push(bound.saturating_duration_since(acked));
    }
    let bound_times: Vec<Instant> = t.pods.values().filter_map(|s| s.bound).collect();
    let mut run = NodeRun::measure(
        nodes,
        cfg.pods,
        start,
        created,
        all_bound,
        &bound_times,
        latencies,
        cpu,
        ready_after,
    );
    run.failed_bindings = std::fs::read_to_string(server.log_path())
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains("binding failed"))
        .count();
    Ok(run)
}
