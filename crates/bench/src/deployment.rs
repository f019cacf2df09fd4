//! The Deployment benchmark: the full `wharf server` (API server, scheduler,
//! controller manager) as a child process, hollow nodes that take pods to
//! Running and Ready as another, and one Deployment of 3,000 replicas timed
//! from its create until it reports every replica available.
//!
//! [`rollout`] is shared with the idle benchmark ([`crate::idle`]), which
//! rolls out 1,000 replicas the same way before measuring.
//!
//! The caller provides the tokio runtime; it should be multi-threaded.

#[path = "deployment_report.rs"]
mod report;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, ensure, Context, Result};
use http::StatusCode;
use kube::Client;
use serde::Deserialize;
use serde_json::json;

use crate::apiserver::{call, call_ok, create_namespace, excerpt, get, post, with_server_flags};
use crate::cluster::{wait_nodes_ready, warnings, Cpu, Hollow, HollowSpec, Meter};
use crate::podwatch::PodWatch;

pub(crate) use report::setup;
pub use report::DeploymentReport;

/// Namespace of the Deployment.
pub const DEPLOY_NAMESPACE: &str = "wharf-bench-deploy";
/// Name of the Deployment.
pub const DEPLOY_NAME: &str = "bench-web";
/// CPU of each hollow node (the hollow default).
pub const NODE_CPU: u32 = 4;
/// Memory of each hollow node in GiB (the hollow default).
pub const NODE_MEMORY_GIB: u32 = 16;
/// Pod slots of each hollow node: the kubelet's default of 110, which binds
/// first (a pod requests 25m and 64Mi, so 160 would fit by CPU).
pub const NODE_MAX_PODS: u32 = 110;

/// The workload of [`run_deployment_bench`].
#[derive(Clone, Debug)]
pub struct DeploymentBenchConfig {
    /// Replicas of the Deployment.
    pub replicas: usize,
    /// Hollow nodes.
    pub nodes: usize,
    /// How long the rollout may take.
    pub timeout: Duration,
    /// Directory for the server's temporary data directory; the system
    /// temporary directory if `None`.
    pub work_dir: Option<PathBuf>,
}

impl Default for DeploymentBenchConfig {
    fn default() -> Self {
        DeploymentBenchConfig {
            replicas: 3_000,
            nodes: 100,
            timeout: Duration::from_secs(600),
            work_dir: None,
        }
    }
}

/// Checks shared with the idle benchmark.
pub(crate) fn validate_fit(replicas: usize, nodes: usize) -> Result<()> {
    ensure!(replicas > 0, "replicas must be positive");
    ensure!(replicas <= 100_000, "replicas must be at most 100,000");
    ensure!(nodes > 0, "nodes must be positive");
    ensure!(nodes <= 20_000, "nodes must be at most 20,000");
    let slots = nodes * NODE_MAX_PODS as usize;
    ensure!(
        replicas <= slots,
        "{replicas} replicas do not fit on {nodes} nodes of {NODE_MAX_PODS} pods ({slots} slots): \
         give at least {} nodes",
        replicas.div_ceil(NODE_MAX_PODS as usize)
    );
    Ok(())
}

impl DeploymentBenchConfig {
    fn validate(&self) -> Result<()> {
        validate_fit(self.replicas, self.nodes)
    }
}

/// The hollow nodes of the Deployment and idle benchmarks: they run pods.
pub(crate) fn hollow_spec(nodes: usize) -> HollowSpec {
    HollowSpec {
        nodes,
        cpu: NODE_CPU,
        memory_gib: NODE_MEMORY_GIB,
        max_pods: NODE_MAX_PODS,
        run_pods: true,
        concurrency: 32,
    }
}

/// Start a fresh `wharf_exe server` (everything but the agent) and hollow
/// nodes, roll out the Deployment, and stop both by PID.
pub async fn run_deployment_bench(
    cfg: &DeploymentBenchConfig,
    wharf_exe: &Path,
) -> Result<DeploymentReport> {
    cfg.validate()?;
    with_server_flags(
        wharf_exe,
        cfg.work_dir.as_deref(),
        "wharf-deploybench-",
        &[],
        async |client, server| {
            let mut hollow = Hollow::start(wharf_exe, server, &hollow_spec(cfg.nodes))?;
            let r = async {
                let ready = wait_nodes_ready(client, &mut hollow, cfg.nodes).await?;
                eprintln!(
                    "[bench] deployment: {} nodes Ready after {:.1} s",
                    cfg.nodes,
                    ready.as_secs_f64()
                );
                let (r, _watch) = rollout(
                    client,
                    server,
                    &mut hollow,
                    cfg.replicas,
                    cfg.timeout,
                    "deployment",
                )
                .await?;
                Ok::<_, anyhow::Error>(r)
            }
            .await;
            hollow.stop();
            Ok(DeploymentReport {
                config: cfg.clone(),
                rollout: r?,
            })
        },
    )
    .await
}

/// The Deployment: `replicas` pods of a web server and a log shipper
/// (25m CPU and 64Mi requested in all), rolling update.
pub(crate) fn deployment_json(replicas: usize) -> Vec<u8> {
    let labels =
        json!({ "app.kubernetes.io/name": DEPLOY_NAME, "app.kubernetes.io/component": "frontend" });
    let env = |n: &str, v: &str| json!({ "name": n, "value": v });
    let body = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": DEPLOY_NAME, "namespace": DEPLOY_NAMESPACE, "labels": labels },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": labels },
            "strategy": { "type": "RollingUpdate", "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": "25%" } },
            "template": {
                "metadata": {
                    "labels": labels,
                    "annotations": { "prometheus.io/scrape": "true", "prometheus.io/port": "9090" },
                },
                "spec": {
                    "terminationGracePeriodSeconds": 30,
                    "containers": [
                        {
                            "name": "web",
                            "image": "registry.example.com/bench/web:1.27.3",
                            "args": ["--listen=:8080", "--metrics-listen=:9090"],
                            "env": [env("LOG_LEVEL", "info"), env("CACHE_TTL_SECONDS", "300"), env("TZ", "UTC")],
                            "ports": [
                                { "name": "http", "containerPort": 8080, "protocol": "TCP" },
                                { "name": "metrics", "containerPort": 9090, "protocol": "TCP" },
                            ],
                            "resources": {
                                "requests": { "cpu": "20m", "memory": "48Mi" },
                                "limits": { "cpu": "500m", "memory": "256Mi" },
                            },
                            "readinessProbe": { "httpGet": { "path": "/healthz", "port": "http" }, "periodSeconds": 10 },
                        },
                        {
                            "name": "log-shipper",
                            "image": "registry.example.com/bench/log-shipper:2.4.0",
                            "env": [env("SHIP_TO", "logs.wharf-bench.svc.cluster.local:24224")],
                            "resources": {
                                "requests": { "cpu": "5m", "memory": "16Mi" },
                                "limits": { "cpu": "100m", "memory": "64Mi" },
                            },
                        },
                    ],
                },
            },
        },
    });
    serde_json::to_vec(&body).expect("a Deployment serializes")
}

/// What a rollout measured, from the Deployment's create.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Rollout {
    /// Replicas asked for.
    pub replicas: usize,
    /// Until the watch had seen `replicas` pods.
    pub all_created: Duration,
    /// Until the watch had seen `replicas` pods bound.
    pub all_bound: Duration,
    /// Until the watch had seen `replicas` pods Running and Ready.
    pub all_ready: Duration,
    /// Until the Deployment's status said every replica was available.
    pub available: Duration,
    /// Pods the watch saw (more than `replicas` if some were replaced).
    pub pods_seen: usize,
    /// Pods deleted during the rollout.
    pub pods_deleted: usize,
    /// CPU from the create until available.
    pub cpu: Cpu,
    /// Warnings and errors the server and the hollow nodes logged.
    pub server_warnings: usize,
    /// Warnings and errors of the hollow process.
    pub hollow_warnings: usize,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WorkloadStatus {
    #[serde(default)]
    observed_generation: i64,
    #[serde(default)]
    replicas: i64,
    #[serde(default)]
    updated_replicas: i64,
    #[serde(default)]
    ready_replicas: i64,
    #[serde(default)]
    available_replicas: i64,
    #[serde(default)]
    fully_labeled_replicas: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct Workload {
    metadata: WorkloadMeta,
    #[serde(default)]
    spec: WorkloadSpec,
    #[serde(default)]
    status: WorkloadStatus,
}

#[derive(Debug, Deserialize)]
struct WorkloadMeta {
    name: String,
}

#[derive(Debug, Default, Deserialize)]
struct WorkloadSpec {
    #[serde(default)]
    replicas: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct WorkloadList {
    items: Vec<Workload>,
}

impl Workload {
    fn describe(&self) -> String {
        let s = &self.status;
        format!(
            "{}: spec {} / status replicas {}, updated {}, ready {}, available {}{}, observedGeneration {}",
            self.metadata.name,
            self.spec.replicas.map_or_else(|| "?".into(), |r| r.to_string()),
            s.replicas,
            s.updated_replicas,
            s.ready_replicas,
            s.available_replicas,
            s.fully_labeled_replicas
                .map_or_else(String::new, |f| format!(", fullyLabeled {f}")),
            s.observed_generation
        )
    }
}

fn deployment_path() -> String {
    format!("/apis/apps/v1/namespaces/{DEPLOY_NAMESPACE}/deployments")
}

async fn deployment(client: &Client) -> Result<Workload> {
    let body = call_ok(
        client,
        get(&format!("{}/{DEPLOY_NAME}", deployment_path())),
        "reading the Deployment",
    )
    .await?;
    serde_json::from_slice(&body).context("parsing the Deployment")
}

/// What the cluster looks like, for a rollout that did not finish.
async fn diagnose(
    client: &Client,
    watch: &PodWatch,
    server: &crate::apiserver::Server,
    hollow: &Hollow,
) -> String {
    let mut out = Vec::new();
    {
        let t = watch.lock();
        out.push(format!(
            "pods seen {}, bound {}, Running and Ready {}, deleted {}; watch reopened {} times, relisted {}",
            t.created(),
            t.bound,
            t.ready,
            t.deleted,
            t.reopened,
            t.relisted
        ));
        out.push(format!("pods by state: {}", t.census()));
        for l in t.laggards(5) {
            out.push(format!("  not Ready: {l}"));
        }
    }
    match crate::podwatch::spread(client, DEPLOY_NAMESPACE).await {
        Ok((spread, message)) => {
            out.push(format!("from a LIST: {spread}"));
            if let Some(m) = message {
                out.push(format!("a PodScheduled=False message: {m}"));
            }
        }
        Err(e) => out.push(format!("pods: {e:#}")),
    }
    match deployment(client).await {
        Ok(d) => out.push(format!("Deployment {}", d.describe())),
        Err(e) => out.push(format!("Deployment: {e:#}")),
    }
    let rs_path = format!("/apis/apps/v1/namespaces/{DEPLOY_NAMESPACE}/replicasets");
    match call_ok(client, get(&rs_path), "listing the ReplicaSets").await {
        Ok(body) => match serde_json::from_slice::<WorkloadList>(&body) {
            Ok(l) => out.extend(
                l.items
                    .iter()
                    .map(|r| format!("ReplicaSet {}", r.describe())),
            ),
            Err(e) => out.push(format!("ReplicaSets: {e}")),
        },
        Err(e) => out.push(format!("ReplicaSets: {e:#}")),
    }
    // With WHARF_LOG=info,scheduler=debug the server logs every failed
    // binding; count them.
    let log = std::fs::read_to_string(server.log_path()).unwrap_or_default();
    let failed: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("binding failed"))
        .collect();
    if !failed.is_empty() {
        out.push(format!(
            "server: {} failed bindings logged; first: {}",
            failed.len(),
            failed[0]
        ));
    }
    for (who, (n, last)) in [
        ("server", warnings(server.log_path())),
        ("hollow nodes", hollow.warnings()),
    ] {
        out.push(format!("{who}: {n} WARN/ERROR log lines"));
        out.extend(last.into_iter().map(|l| format!("  {l}")));
    }
    out.join("\n")
}

/// Create the Deployment of `replicas` in [`DEPLOY_NAMESPACE`] and wait until
/// every pod is Running and Ready and the Deployment reports them all
/// available. Returns the figures and the pod watch, still open.
pub(crate) async fn rollout(
    client: &Client,
    server: &mut crate::apiserver::Server,
    hollow: &mut Hollow,
    replicas: usize,
    timeout: Duration,
    name: &str,
) -> Result<(Rollout, PodWatch)> {
    create_namespace(client, DEPLOY_NAMESPACE).await?;
    let mut watch = PodWatch::start(client, DEPLOY_NAMESPACE, replicas).await?;
    let meter = Meter::new(server, hollow);
    let body = deployment_json(replicas);
    eprintln!("[bench] {name}: creating a Deployment of {replicas} replicas ...");
    let before = meter.sample();
    let start = Instant::now();
    let (status, resp) = call(client, post(&deployment_path(), body))
        .await
        .context("creating the Deployment")?;
    ensure!(
        status == StatusCode::CREATED,
        "creating the Deployment: HTTP {status}: {}",
        excerpt(&resp)
    );
    let mut last_report = Instant::now();
    let mut last_poll: Option<Instant> = None;
    let available = loop {
        let checks = watch
            .check()
            .and_then(|()| server.ensure_running())
            .and_then(|()| hollow.ensure_running());
        if let Err(e) = checks {
            return Err(e.context(diagnose(client, &watch, server, hollow).await));
        }
        let ready = watch.lock().all_ready.is_some();
        // Poll the Deployment often once every pod is Ready, else now and then.
        let every = if ready {
            Duration::from_millis(50)
        } else {
            Duration::from_secs(1)
        };
        if last_poll.is_none_or(|t| t.elapsed() >= every) {
            last_poll = Some(Instant::now());
            let d = deployment(client).await?;
            if ready && d.status.available_replicas >= replicas as i64 {
                break Instant::now();
            }
        }
        if start.elapsed() > timeout {
            let why = diagnose(client, &watch, server, hollow).await;
            return Err(anyhow!(
                "the Deployment was not available {timeout:?} after its create:\n{why}"
            ));
        }
        if last_report.elapsed() > Duration::from_secs(5) {
            let t = watch.lock();
            eprintln!(
                "[bench] {name}:   {:.0} s: {} pods seen, {} bound, {} Running and Ready",
                start.elapsed().as_secs_f64(),
                t.created(),
                t.bound,
                t.ready
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let cpu = before.until(&meter.sample());
    let since =
        |t: Option<Instant>| t.map_or(Duration::ZERO, |t| t.saturating_duration_since(start));
    let t = watch.lock();
    let r = Rollout {
        replicas,
        all_created: since(t.all_created),
        all_bound: since(t.all_bound),
        all_ready: since(t.all_ready),
        available: available.saturating_duration_since(start),
        pods_seen: t.created(),
        pods_deleted: t.deleted,
        cpu,
        server_warnings: warnings(server.log_path()).0,
        hollow_warnings: hollow.warnings().0,
    };
    drop(t);
    eprintln!(
        "[bench] {name}:   all created {:.2} s, bound {:.2} s, Running and Ready {:.2} s, available {:.2} s",
        r.all_created.as_secs_f64(),
        r.all_bound.as_secs_f64(),
        r.all_ready.as_secs_f64(),
        r.available.as_secs_f64()
    );
    Ok((r, watch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fit_is_checked() {
        assert!(validate_fit(3_000, 100).is_ok());
        assert!(validate_fit(3_000, 28).is_ok());
        let e = validate_fit(3_000, 27).unwrap_err().to_string();
        assert!(e.contains("give at least 28 nodes"), "{e}");
        assert!(validate_fit(0, 10).is_err());
        assert!(validate_fit(10, 0).is_err());
    }

    #[test]
    fn deployment_object() {
        let v: serde_json::Value = serde_json::from_slice(&deployment_json(3_000)).unwrap();
        assert_eq!(v["spec"]["replicas"], 3_000);
        assert_eq!(v["metadata"]["namespace"], DEPLOY_NAMESPACE);
        assert_eq!(
            v["spec"]["selector"]["matchLabels"],
            v["spec"]["template"]["metadata"]["labels"]
        );
        let d: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(v).unwrap();
        assert_eq!(d.spec.template.spec.unwrap().containers.len(), 2);
    }

    #[test]
    fn workload_status() {
        let w: Workload = serde_json::from_str(
            r#"{"metadata":{"name":"rs-1"},"spec":{"replicas":3000},
            "status":{"replicas":3000,"readyReplicas":2494,"availableReplicas":2494,"fullyLabeledReplicas":3000,"observedGeneration":1}}"#,
        )
        .unwrap();
        assert_eq!(
            w.describe(),
            "rs-1: spec 3000 / status replicas 3000, updated 0, ready 2494, available 2494, fullyLabeled 3000, observedGeneration 1"
        );
    }
}
