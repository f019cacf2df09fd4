//! The phases of the API server benchmark, in order: idle memory, pod creates,
//! GETs, LISTs, then watch delivery.
//!
//! Every request goes through one `kube::Client` (HTTP/1.1 over TLS; its pool
//! opens a connection per request in flight, so `clients` tasks keep `clients`
//! requests in flight). Bodies are sent as prepared JSON and responses are
//! timed until their last byte, not parsed, so the client's own work stays
//! small; what is checked (status, names, counts) is checked outside the timed
//! span where it costs anything.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use bytes::Bytes;
use http::StatusCode;
use http_body_util::BodyExt;
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, HTTPGetAction, Pod, PodSpec, Probe, ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::Client;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Deserialize;
use tokio::sync::{mpsc, Barrier, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use super::report::{ApiReport, PhaseCpu, WatchResults};
use super::{
    client_connections, ApiBenchConfig, CpuMeter, Server, IDLE_SETTLE, LIST_RUNS, POD_NAMESPACE,
    WATCH_NAMESPACE, WATCH_NAMESPACE_H1,
};
use crate::h2::H2Conn;
use crate::stats::{median, percentile, rate};
use crate::tasks::{join_all, AbortOnDrop};

/// Name prefix of the config maps whose delivery is timed.
const EVENT_PREFIX: &str = "ev-";
/// Name prefix of the markers written until every watcher is live.
const READY_PREFIX: &str = "ready-";
/// The marker written after the last timed event.
const END_NAME: &str = "end";
/// How long the watchers may take to start, and to drain after the last write.
const WATCH_TIMEOUT: Duration = Duration::from_secs(60);
/// Watches being opened at once (TLS handshakes in flight).
const OPENING: usize = 64;
/// Bytes of the `data.payload` value of every watched config map.
const WATCH_PAYLOAD: usize = 256;

pub(crate) async fn run(
    client: &Client,
    cfg: &ApiBenchConfig,
    server: &mut Server,
) -> Result<ApiReport> {
    let name = "[bench] apiserver";
    let meter = server.cpu_meter();
    tokio::time::sleep(IDLE_SETTLE).await;
    let (rss_idle_kib, _) = server.memory_kib()?;
    eprintln!(
        "{name}: idle RSS {:.1} MiB ({} s after /readyz)",
        mib(rss_idle_kib),
        IDLE_SETTLE.as_secs()
    );

    create_namespace(client, POD_NAMESPACE).await?;

    eprintln!(
        "{name}: creates: {} pods from {} tasks ...",
        cfg.pods, cfg.clients
    );
    let c = creates(client, cfg, meter).await?;
    let connections_after_creates = client_connections(server.port());
    let (rss_loaded_kib, _) = server.memory_kib()?;
    let creates_per_sec = rate(cfg.pods, c.took);
    eprintln!(
        "{name}:   {creates_per_sec:.0} creates/s ({:.2} s), p50 {:.3} / p99 {:.3} ms; {} bytes of JSON per pod; \
         RSS {:.1} MiB; {} client connections",
        c.took.as_secs_f64(),
        ms(c.p50),
        ms(c.p99),
        c.pod_bytes,
        mib(rss_loaded_kib),
        fmt_opt(connections_after_creates)
    );

    eprintln!(
        "{name}: GETs: {} of random pods from {} tasks ...",
        cfg.gets, cfg.clients
    );
    let g = gets(client, cfg, meter).await?;
    let gets_per_sec = rate(cfg.gets, g.took);
    eprintln!(
        "{name}:   {gets_per_sec:.0} GETs/s ({:.2} s), p50 {:.3} / p99 {:.3} ms",
        g.took.as_secs_f64(),
        ms(g.p50),
        ms(g.p99)
    );

    eprintln!("{name}: LIST: all {} pods, {LIST_RUNS} times ...", cfg.pods);
    let (list_runs, list_bytes, cpu_list) = lists(client, cfg, meter).await?;
    let list_median = median(&list_runs).expect("at least one LIST");
    eprintln!(
        "{name}:   median {:.1} ms ({}), {:.1} MiB per response",
        ms(list_median),
        list_runs
            .iter()
            .map(|d| format!("{:.1}", ms(*d)))
            .collect::<Vec<_>>()
            .join(", "),
        list_bytes as f64 / (1024.0 * 1024.0)
    );

    let h2 = server.h2_connector()?;
    let mut conns = Vec::with_capacity(cfg.clients);
    for _ in 0..cfg.clients {
        conns.push(h2.connect().await.context("opening an HTTP/2 connection")?);
    }
    let _drivers = AbortOnDrop(conns.iter().map(|c| c.driver.abort_handle()).collect());
    let h2_phase = WatchPhase {
        transport: Transport::Http2(Arc::new(conns)),
        namespace: WATCH_NAMESPACE,
    };
    let h1_phase = WatchPhase {
        transport: Transport::Http1(client.clone()),
        namespace: WATCH_NAMESPACE_H1,
    };
    let mut results = Vec::new();
    for phase in [&h2_phase, &h1_phase] {
        eprintln!(
            "{name}: watch over {}: {} watchers on {}'s config maps, {} creates one every {} ms ...",
            phase.transport.describe(),
            cfg.watchers,
            phase.namespace,
            cfg.watch_events,
            cfg.watch_pace.as_millis()
        );
        let (watch, connections, cpu) =
            watch_latency(client, cfg, phase, server.port(), meter).await?;
        eprintln!(
            "{name}:   p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms over {} deliveries ({} before the ack); \
             from the ack p50 {:.3} / p99 {:.3} ms; writes p50 {:.3} / p99 {:.3} ms over {:.2} s; \
             {} client connections; {}",
            ms(watch.p50),
            ms(watch.p99),
            ms(watch.max),
            watch.samples,
            watch.clamped,
            ms(watch.ack_p50),
            ms(watch.ack_p99),
            ms(watch.write_p50),
            ms(watch.write_p99),
            watch.write_span.as_secs_f64(),
            fmt_opt(connections),
            cpu.describe()
        );
        results.push((watch, connections, cpu));
    }
    drop(h2_phase);
    let (watch_h1, connections_with_watchers_h1, cpu_watch_h1) = results.pop().expect("two phases");
    let (watch, connections_with_watchers, cpu_watch) = results.pop().expect("two phases");
    let (rss_end_kib, hwm_end_kib) = server.memory_kib()?;

    Ok(ApiReport {
        config: cfg.clone(),
        pod_bytes: c.pod_bytes,
        watch_object_bytes: configmap_json(&format!("{EVENT_PREFIX}0")).len(),
        creates_per_sec,
        create_p50: c.p50,
        create_p99: c.p99,
        gets_per_sec,
        get_p50: g.p50,
        get_p99: g.p99,
        list_median,
        list_runs,
        list_bytes,
        watch,
        watch_h1,
        rss_idle_kib,
        rss_loaded_kib,
        rss_end_kib,
        hwm_end_kib,
        connections_after_creates,
        connections_with_watchers,
        connections_with_watchers_h1,
        cpu_creates: c.cpu,
        cpu_gets: g.cpu,
        cpu_list,
        cpu_watch,
        cpu_watch_h1,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn fmt_opt(n: Option<usize>) -> String {
    n.map_or_else(|| "?".into(), |n| n.to_string())
}

// ---------------------------------------------------------------------------
// Requests

pub(crate) fn get(uri: &str) -> http::Request<Vec<u8>> {
    http::Request::get(uri)
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .expect("a valid GET")
}

pub(crate) fn post(uri: &str, body: Vec<u8>) -> http::Request<Vec<u8>> {
    http::Request::post(uri)
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .expect("a valid POST")
}

/// Send `req` and read the whole response body.
pub(crate) async fn call(
    client: &Client,
    req: http::Request<Vec<u8>>,
) -> Result<(StatusCode, Bytes)> {
    let res = client.send(req.map(kube::client::Body::from)).await?;
    let status = res.status();
    let body = res.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

/// Send `req`; any status but 2xx is an error naming `what`.
pub(crate) async fn call_ok(
    client: &Client,
    req: http::Request<Vec<u8>>,
    what: &str,
) -> Result<Bytes> {
    let (status, body) = call(client, req).await.with_context(|| what.to_string())?;
    ensure!(
        status.is_success(),
        "{what}: HTTP {status}: {}",
        excerpt(&body)
    );
    Ok(body)
}

pub(crate) fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(400)]).into_owned()
}

pub(crate) async fn create_namespace(client: &Client, ns: &str) -> Result<()> {
    let body = serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": ns},
    }))?;
    let (status, resp) = call(client, post("/api/v1/namespaces", body))
        .await
        .with_context(|| format!("creating namespace {ns}"))?;
    ensure!(
        status.is_success() || status == StatusCode::CONFLICT,
        "creating namespace {ns}: HTTP {status}: {}",
        excerpt(&resp)
    );
    Ok(())
}

/// Only what the checks need of an object.
#[derive(Clone, Debug, Deserialize)]
struct Slim {
    metadata: SlimMeta,
}

#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SlimMeta {
    #[serde(default)]
    resource_version: String,
    #[serde(rename = "continue", default)]
    continue_: Option<String>,
}

/// Only what the checks need of a list.
#[derive(Debug, Deserialize)]
struct SlimList {
    #[serde(default)]
    metadata: SlimMeta,
    items: Vec<serde::de::IgnoredAny>,
}

/// Run `per_task` for each of `tasks` tasks, released together; returns their
/// outputs, the time from the release until the last one finished, and the
/// CPU spent meanwhile.
pub(crate) async fn timed_tasks<T, F, Fut>(
    tasks: usize,
    meter: CpuMeter,
    mut per_task: F,
) -> Result<(Vec<T>, Duration, PhaseCpu)>
where
    T: Send + 'static,
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T>> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(tasks + 1));
    let mut handles = Vec::with_capacity(tasks);
    for t in 0..tasks {
        let work = per_task(t);
        let barrier = barrier.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            work.await
        }));
    }
    let before = meter.sample();
    barrier.wait().await;
    let start = Instant::now();
    let out = join_all(handles).await?;
    let took = start.elapsed();
    let cpu = before.until(&meter.sample());
    Ok((out, took, cpu))
}

/// Sorted latencies' p50 and p99.
pub(crate) fn p50_p99(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort_unstable();
    (
        percentile(&samples, 50.0).unwrap_or_default(),
        percentile(&samples, 99.0).unwrap_or_default(),
    )
}

// ---------------------------------------------------------------------------
// Pods

fn pods_path() -> String {
    format!("/api/v1/namespaces/{POD_NAMESPACE}/pods")
}

pub(crate) fn pod_name(i: usize) -> String {
    format!("bench-web-{i:05}")
}

fn env(name: &str, value: impl Into<String>) -> EnvVar {
    EnvVar {
        name: name.into(),
        value: Some(value.into()),
        ..EnvVar::default()
    }
}

fn port(name: &str, port: i32) -> ContainerPort {
    ContainerPort {
        name: Some(name.into()),
        container_port: port,
        protocol: Some("TCP".into()),
        ..ContainerPort::default()
    }
}

fn resources(cpu_req: &str, mem_req: &str, cpu_lim: &str, mem_lim: &str) -> ResourceRequirements {
    let q = |cpu: &str, mem: &str| {
        [
            ("cpu".to_string(), Quantity(cpu.into())),
            ("memory".to_string(), Quantity(mem.into())),
        ]
        .into_iter()
        .collect()
    };
    ResourceRequirements {
        requests: Some(q(cpu_req, mem_req)),
        limits: Some(q(cpu_lim, mem_lim)),
        ..ResourceRequirements::default()
    }
}

/// Pod `i` of the benchmark: a web server and a log shipper, with labels,
/// annotations, env, resources, ports and probes, as a Deployment would stamp
/// out; no `nodeName`. About 2 KB of JSON.
pub(crate) fn make_pod(i: usize) -> Pod {
    let name = pod_name(i);
    let labels = [
        ("app.kubernetes.io/name", "bench-web".to_string()),
        ("app.kubernetes.io/instance", "bench-web-prod".to_string()),
        ("app.kubernetes.io/version", "1.27.3".to_string()),
        ("app.kubernetes.io/component", "frontend".to_string()),
        ("pod-template-hash", "7c9d8f6b5d".to_string()),
        ("bench.wharf.dev/shard", format!("shard-{}", i % 16)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let annotations = [
        ("prometheus.io/scrape", "true".to_string()),
        ("prometheus.io/port", "9090".to_string()),
        ("kubectl.kubernetes.io/default-container", "web".to_string()),
        (
            "bench.wharf.dev/owner",
            "team-frontend@example.com".to_string(),
        ),
        (
            "bench.wharf.dev/config-checksum",
            format!(
                "sha256:{:064x}",
                (i as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15)
            ),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let web = Container {
        name: "web".into(),
        image: Some("registry.example.com/bench/web:1.27.3".into()),
        image_pull_policy: Some("IfNotPresent".into()),
        args: Some(vec![
            "--listen=:8080".into(),
            "--metrics-listen=:9090".into(),
            "--log-format=json".into(),
        ]),
        env: Some(vec![
            env("POD_INDEX", i.to_string()),
            env("LOG_LEVEL", "info"),
            env(
                "UPSTREAM_URL",
                "http://bench-api.wharf-bench.svc.cluster.local:8080",
            ),
            env("CACHE_TTL_SECONDS", "300"),
            env("FEATURE_FLAGS", "compression,http2,keepalive"),
            env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "http://otel-collector.observability.svc.cluster.local:4317",
            ),
            env("GOMAXPROCS", "1"),
            env("TZ", "UTC"),
        ]),
        ports: Some(vec![port("http", 8080), port("metrics", 9090)]),
        resources: Some(resources("250m", "256Mi", "1", "512Mi")),
        readiness_probe: Some(Probe {
            http_get: Some(HTTPGetAction {
                path: Some("/healthz".into()),
                port: IntOrString::String("http".into()),
                ..HTTPGetAction::default()
            }),
            period_seconds: Some(10),
            ..Probe::default()
        }),
        ..Container::default()
    };
    let shipper = Container {
        name: "log-shipper".into(),
        image: Some("registry.example.com/bench/log-shipper:2.4.0".into()),
        image_pull_policy: Some("IfNotPresent".into()),
        env: Some(vec![
            env("SHIP_TO", "logs.wharf-bench.svc.cluster.local:24224"),
            env("BUFFER_SIZE", "8MiB"),
            env("FLUSH_INTERVAL", "5s"),
        ]),
        ports: Some(vec![port("admin", 2020)]),
        resources: Some(resources("50m", "64Mi", "200m", "128Mi")),
        ..Container::default()
    };
    Pod {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(POD_NAMESPACE.into()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec {
            containers: vec![web, shipper],
            restart_policy: Some("Always".into()),
            termination_grace_period_seconds: Some(30),
            ..PodSpec::default()
        }),
        status: None,
    }
}

pub(crate) fn pod_json(i: usize) -> Vec<u8> {
    let mut v = serde_json::to_value(make_pod(i)).expect("a pod serializes");
    let obj = v.as_object_mut().expect("a pod is an object");
    obj.insert("apiVersion".into(), "v1".into());
    obj.insert("kind".into(), "Pod".into());
    serde_json::to_vec(&v).expect("a pod serializes")
}

struct Creates {
    took: Duration,
    cpu: PhaseCpu,
    p50: Duration,
    p99: Duration,
    pod_bytes: usize,
}

/// `cfg.pods` creates from `cfg.clients` tasks, task `t` taking every
/// `clients`-th pod from `t`; bodies are serialized before the clock starts.
async fn creates(client: &Client, cfg: &ApiBenchConfig, meter: CpuMeter) -> Result<Creates> {
    let tasks = cfg.clients.min(cfg.pods);
    let path = Arc::new(pods_path());
    let mut total_bytes = 0;
    let (lats, took, cpu) = timed_tasks(tasks, meter, |t| {
        let bodies: Vec<(usize, Vec<u8>)> = (t..cfg.pods)
            .step_by(tasks)
            .map(|i| (i, pod_json(i)))
            .collect();
        total_bytes += bodies.iter().map(|(_, b)| b.len()).sum::<usize>();
        let (client, path) = (client.clone(), path.clone());
        async move {
            let mut lat = Vec::with_capacity(bodies.len());
            for (i, body) in bodies {
                let start = Instant::now();
                let (status, resp) = call(&client, post(&path, body))
                    .await
                    .with_context(|| format!("creating pod {}", pod_name(i)))?;
                lat.push(start.elapsed());
                ensure!(
                    status.is_success(),
                    "creating pod {}: HTTP {status}: {}",
                    pod_name(i),
                    excerpt(&resp)
                );
            }
            Ok(lat)
        }
    })
    .await?;
    let (p50, p99) = p50_p99(lats.into_iter().flatten().collect());
    Ok(Creates {
        took,
        cpu,
        p50,
        p99,
        pod_bytes: total_bytes / cfg.pods,
    })
}

struct Gets {
    took: Duration,
    cpu: PhaseCpu,
    p50: Duration,
    p99: Duration,
}

/// `cfg.gets` GETs of pods chosen at random, from `cfg.clients` tasks. Every
/// one must answer 200 with the pod asked for.
async fn gets(client: &Client, cfg: &ApiBenchConfig, meter: CpuMeter) -> Result<Gets> {
    let tasks = cfg.clients.min(cfg.gets);
    let base = pods_path();
    let (lats, took, cpu) = timed_tasks(tasks, meter, |t| {
        let n = cfg.gets / tasks + usize::from(t < cfg.gets % tasks);
        let mut rng = StdRng::seed_from_u64(t as u64);
        let targets: Vec<(String, String)> = (0..n)
            .map(|_| {
                let name = pod_name(rng.random_range(0..cfg.pods));
                (format!("{base}/{name}"), format!("\"name\":\"{name}\""))
            })
            .collect();
        let client = client.clone();
        async move {
            let mut lat = Vec::with_capacity(targets.len());
            for (uri, needle) in targets {
                let start = Instant::now();
                let (status, body) = call(&client, get(&uri))
                    .await
                    .with_context(|| format!("GET {uri}"))?;
                lat.push(start.elapsed());
                ensure!(
                    status == StatusCode::OK,
                    "GET {uri}: HTTP {status}: {}",
                    excerpt(&body)
                );
                ensure!(
                    contains(&body, needle.as_bytes()),
                    "GET {uri} returned another object: {}",
                    excerpt(&body)
                );
            }
            Ok(lat)
        }
    })
    .await?;
    let (p50, p99) = p50_p99(lats.into_iter().flatten().collect());
    Ok(Gets {
        took,
        cpu,
        p50,
        p99,
    })
}

/// Whether `needle` occurs in `haystack`. A substring search (not a
/// comparison at every offset): the client shares the server's CPUs, so
/// checking a response must cost little next to serving it.
pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// [`LIST_RUNS`] full LISTs of the pods (no limit), each timed to its last
/// byte and then checked to hold every pod in one page. Returns the times,
/// the size of the last response, and the CPU spent in the timed spans.
async fn lists(
    client: &Client,
    cfg: &ApiBenchConfig,
    meter: CpuMeter,
) -> Result<(Vec<Duration>, usize, PhaseCpu)> {
    let path = pods_path();
    let mut runs = Vec::with_capacity(LIST_RUNS);
    let mut bytes = 0;
    let mut cpu: Option<PhaseCpu> = None;
    for _ in 0..LIST_RUNS {
        let before = meter.sample();
        let start = Instant::now();
        let body = call_ok(client, get(&path), "LIST of the pods").await?;
        runs.push(start.elapsed());
        let run = before.until(&meter.sample());
        cpu = Some(cpu.map_or(run, |c| c.add(&run)));
        let list: SlimList = serde_json::from_slice(&body).context("parsing the pod list")?;
        ensure!(
            list.items.len() == cfg.pods,
            "the LIST returned {} pods, expected {}",
            list.items.len(),
            cfg.pods
        );
        ensure!(
            list.metadata.continue_.as_deref().unwrap_or("").is_empty(),
            "the LIST without a limit returned a continue token"
        );
        bytes = body.len();
    }
    Ok((runs, bytes, cpu.unwrap_or_default()))
}

// ---------------------------------------------------------------------------
// Watch

fn configmaps_path(namespace: &str) -> String {
    format!("/api/v1/namespaces/{namespace}/configmaps")
}

fn configmap_json(name: &str) -> Vec<u8> {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let payload: String = (0..WATCH_PAYLOAD)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "labels": {"app.kubernetes.io/name": "wharf-bench", "bench.wharf.dev/phase": "watch"},
        },
        "data": {"payload": payload},
    }))
    .expect("a config map serializes")
}

/// One timed write of the watch phase.
#[derive(Clone, Debug)]
struct Written {
    resource_version: String,
    issued: Instant,
    acked: Instant,
}

/// One timed event as a watcher received it.
#[derive(Clone, Debug)]
struct Delivery {
    /// `i` of the config map `ev-<i>`.
    index: usize,
    resource_version: String,
    at: Instant,
}

/// How the watchers of one watch phase reach the server.
enum Transport {
    /// HTTP/2 as client-go and kubectl speak it: a few connections (one per
    /// client), each carrying many watches as streams; watcher `w` uses
    /// connection `w % n`.
    Http2(Arc<Vec<H2Conn>>),
    /// HTTP/1.1 through kube's client: a connection per watch.
    Http1(Client),
}

impl Transport {
    fn describe(&self) -> String {
        match self {
            Transport::Http2(c) => format!("HTTP/2 ({} connections)", c.len()),
            Transport::Http1(_) => "HTTP/1.1 (a connection per watch)".into(),
        }
    }
}

/// One watch phase: its transport, and the namespace whose config maps it
/// writes and watches (each phase has its own, so the names do not clash).
struct WatchPhase {
    transport: Transport,
    namespace: &'static str,
}

/// Open `cfg.watchers` watches (`?watch=1&resourceVersion=<rv>`) on the
/// phase's namespace's config maps, each drained by its own task; wait until
/// all are live; then create `cfg.watch_events` config maps at a steady pace
/// from one task (through kube's client) and time, for every (watcher, event)
/// pair, the delivery. Also returns the client's connection count while the
/// watches were open, and the CPU spent from the first timed write until
/// every watcher saw the end.
async fn watch_latency(
    client: &Client,
    cfg: &ApiBenchConfig,
    phase: &WatchPhase,
    port: u16,
    meter: CpuMeter,
) -> Result<(WatchResults, Option<usize>, PhaseCpu)> {
    create_namespace(client, phase.namespace).await?;
    let path = configmaps_path(phase.namespace);
    let body = call_ok(client, get(&path), "LIST of the watched config maps").await?;
    let list: SlimList = serde_json::from_slice(&body).context("parsing the config map list")?;
    let rv = list.metadata.resource_version;
    ensure!(!rv.is_empty(), "the config map list has no resourceVersion");
    let uri = format!("{path}?watch=1&resourceVersion={rv}");

    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<usize>();
    let opening = Arc::new(Semaphore::new(OPENING));
    let mut handles = Vec::with_capacity(cfg.watchers);
    for w in 0..cfg.watchers {
        handles.push(tokio::spawn(drain_watch(
            w,
            open_watch(&phase.transport, w, uri.clone()),
            opening.clone(),
            ready_tx.clone(),
            cfg.watch_events,
        )));
    }
    let _guard = AbortOnDrop(handles.iter().map(JoinHandle::abort_handle).collect());
    drop(ready_tx);

    // A watch may be registered a little after its response headers arrive, so
    // keep writing markers until every watcher has seen one.
    let deadline = tokio::time::Instant::now() + WATCH_TIMEOUT;
    let mut ready = HashSet::with_capacity(cfg.watchers);
    let mut round = 0;
    while ready.len() < cfg.watchers {
        if let Some(w) = handles.iter().position(|h| h.is_finished()) {
            let err = match (&mut handles[w]).await {
                Ok(Ok(_)) => anyhow!("watcher {w} stopped before the run started"),
                Ok(Err(e)) => e.context(format!("watcher {w}")),
                Err(e) => anyhow!("watcher {w} failed: {e}"),
            };
            return Err(err);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "only {} of {} watchers saw a marker within {WATCH_TIMEOUT:?}",
            ready.len(),
            cfg.watchers
        );
        let marker = format!("{READY_PREFIX}{round}");
        round += 1;
        call_ok(
            client,
            post(&path, configmap_json(&marker)),
            "creating a marker",
        )
        .await?;
        let until = tokio::time::Instant::now() + Duration::from_millis(500);
        while ready.len() < cfg.watchers {
            match tokio::time::timeout_at(until, ready_rx.recv()).await {
                Ok(Some(w)) => {
                    ready.insert(w);
                }
                Ok(None) | Err(_) => break,
            }
        }
    }
    let connections = client_connections(port);

    let bodies: Vec<Vec<u8>> = (0..cfg.watch_events)
        .map(|i| configmap_json(&format!("{EVENT_PREFIX}{i}")))
        .collect();
    let mut writes = Vec::with_capacity(cfg.watch_events);
    let mut tick = tokio::time::interval(cfg.watch_pace);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let before = meter.sample();
    for (i, body) in bodies.into_iter().enumerate() {
        tick.tick().await;
        let issued = Instant::now();
        let resp = call_ok(client, post(&path, body), "creating a watched config map").await?;
        let acked = Instant::now();
        let obj: Slim = serde_json::from_slice(&resp)
            .with_context(|| format!("parsing the created config map {EVENT_PREFIX}{i}"))?;
        writes.push(Written {
            resource_version: obj.metadata.resource_version,
            issued,
            acked,
        });
    }
    call_ok(
        client,
        post(&path, configmap_json(END_NAME)),
        "creating the end marker",
    )
    .await?;

    let deadline = tokio::time::Instant::now() + WATCH_TIMEOUT;
    let mut deliveries = Vec::with_capacity(cfg.watchers);
    for (w, h) in handles.into_iter().enumerate() {
        match tokio::time::timeout_at(deadline, h).await {
            Err(_) => bail!(
                "watcher {w} had not seen the end marker {WATCH_TIMEOUT:?} after the last write"
            ),
            Ok(Err(e)) => bail!("watcher {w} failed: {e}"),
            Ok(Ok(r)) => deliveries.push(r.with_context(|| format!("watcher {w}"))?),
        }
    }
    let cpu = before.until(&meter.sample());
    Ok((measure(&writes, &deliveries)?, connections, cpu))
}

/// Send the watch request of watcher `w` over `transport`; the response body
/// once the server answered 200.
fn open_watch(
    transport: &Transport,
    w: usize,
    uri: String,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<WatchBody>> + Send>> {
    match transport {
        Transport::Http1(client) => {
            let client = client.clone();
            Box::pin(async move {
                let res = client.send(get(&uri).map(kube::client::Body::from)).await?;
                ok_body(res).await.map(WatchBody::Http1)
            })
        }
        Transport::Http2(conns) => {
            let conns = conns.clone();
            Box::pin(async move {
                let res = conns[w % conns.len()].get(&uri).await?;
                ok_body(res).await.map(WatchBody::Http2)
            })
        }
    }
}

/// The body of a 2xx response; any other status is an error with the body's
/// start.
async fn ok_body<B>(res: http::Response<B>) -> Result<B>
where
    B: hyper::body::Body<Data = Bytes>,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let status = res.status();
    if status.is_success() {
        return Ok(res.into_body());
    }
    let body = res.into_body().collect().await?.to_bytes();
    bail!("HTTP {status}: {}", excerpt(&body))
}

/// A watch response body from either transport.
enum WatchBody {
    Http1(kube::client::Body),
    Http2(hyper::body::Incoming),
}

impl hyper::body::Body for WatchBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        match self.get_mut() {
            WatchBody::Http1(b) => std::pin::Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(Into::into))),
            WatchBody::Http2(b) => std::pin::Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(Into::into))),
        }
    }
}

/// Open one watch and record when each `ev-<i>` config map arrives, until the
/// end marker. Reports `w` on `ready` at the first marker.
///
/// The watcher reads the chunked body frame by frame and splits it into lines
/// itself, timing each event when the frame that completes it arrives; it
/// decodes only the event type and the object's name and resourceVersion
/// (borrowed from the frame, no copy). kube's `request_events` would copy each
/// line twice and decode whole objects: on a shared 2-core machine that client
/// work is CPU taken from the server whose delivery is being timed, as the
/// GET phase avoids by timing bodies unparsed.
async fn drain_watch(
    w: usize,
    open: std::pin::Pin<Box<dyn std::future::Future<Output = Result<WatchBody>> + Send>>,
    opening: Arc<Semaphore>,
    ready: mpsc::UnboundedSender<usize>,
    expected: usize,
) -> Result<Vec<Delivery>> {
    let mut body = {
        let _permit = opening.acquire().await?;
        open.await.with_context(|| format!("opening watch {w}"))?
    };
    let mut got = Vec::with_capacity(expected);
    let mut ready = Some(ready);
    let mut partial = bytes::BytesMut::new();
    loop {
        let frame = body
            .frame()
            .await
            .ok_or_else(|| anyhow!("the watch ended before the end marker"))?
            .map_err(|e| anyhow!(e).context("reading the watch"))?;
        let at = Instant::now();
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        while !data.is_empty() {
            let Some(nl) = data.iter().position(|b| *b == b'\n') else {
                partial.extend_from_slice(&data);
                break;
            };
            let line = data.split_to(nl + 1);
            let line: Bytes = if partial.is_empty() {
                line
            } else {
                partial.extend_from_slice(&line);
                partial.split().freeze()
            };
            let event: EventLine<'_> =
                serde_json::from_slice(&line).context("decoding a watch event")?;
            let name = event.object.metadata.name;
            let added = match event.kind {
                "ADDED" => true,
                "MODIFIED" | "DELETED" => false,
                "BOOKMARK" => continue,
                other => bail!("watch event {other}: {}", excerpt(&line)),
            };
            if let Some(i) = name.strip_prefix(EVENT_PREFIX) {
                ensure!(added, "a change other than ADDED for {name}");
                ensure!(ready.is_none(), "saw {name} before any marker");
                got.push(Delivery {
                    index: i.parse().with_context(|| format!("event name {name}"))?,
                    resource_version: event.object.metadata.resource_version.to_owned(),
                    at,
                });
            } else if name.starts_with(READY_PREFIX) {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(w);
                }
            } else if name == END_NAME {
                return Ok(got);
            }
            // Anything else in the namespace (a controller's object) is not ours.
        }
    }
}

/// A watch event line, decoded only as far as the checks need.
#[derive(Deserialize)]
struct EventLine<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(borrow)]
    object: EventObject<'a>,
}

#[derive(Deserialize)]
struct EventObject<'a> {
    #[serde(borrow)]
    metadata: EventMeta<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventMeta<'a> {
    #[serde(default, borrow)]
    name: &'a str,
    #[serde(default, borrow)]
    resource_version: &'a str,
}

/// Check that every watcher got every write exactly once, at the
/// resourceVersion the write returned, and compute the latency percentiles:
/// from each write's issue, and from its acknowledgement (clamped at 0 when
/// the event beat the ack).
fn measure(writes: &[Written], deliveries: &[Vec<Delivery>]) -> Result<WatchResults> {
    let mut from_issue = Vec::with_capacity(writes.len() * deliveries.len());
    let mut from_ack = Vec::with_capacity(writes.len() * deliveries.len());
    let mut clamped = 0;
    let mut problems = Vec::new();
    for (w, got) in deliveries.iter().enumerate() {
        let mut seen = vec![false; writes.len()];
        let (mut duplicated, mut unexpected, mut wrong_rv) = (0usize, 0usize, 0usize);
        for d in got {
            let Some(t) = writes.get(d.index) else {
                unexpected += 1;
                continue;
            };
            if std::mem::replace(&mut seen[d.index], true) {
                duplicated += 1;
                continue;
            }
            if d.resource_version != t.resource_version {
                wrong_rv += 1;
            }
            if d.at < t.acked {
                clamped += 1;
            }
            from_issue.push(d.at.saturating_duration_since(t.issued));
            from_ack.push(d.at.saturating_duration_since(t.acked));
        }
        let missing = seen.iter().filter(|s| !**s).count();
        if missing + duplicated + unexpected + wrong_rv > 0 {
            problems.push(format!(
                "watcher {w}: {missing} missing, {duplicated} duplicated, {unexpected} unexpected, \
                 {wrong_rv} at another resourceVersion"
            ));
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} of {} watchers did not get each of the {} events exactly once: {}{}",
            problems.len(),
            deliveries.len(),
            writes.len(),
            problems
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
            if problems.len() > 5 { "; ..." } else { "" }
        );
    }
    from_issue.sort_unstable();
    from_ack.sort_unstable();
    let (write_p50, write_p99) = p50_p99(
        writes
            .iter()
            .map(|t| t.acked.saturating_duration_since(t.issued))
            .collect(),
    );
    let write_span = match (writes.first(), writes.last()) {
        (Some(a), Some(b)) => b.acked.saturating_duration_since(a.issued),
        _ => Duration::ZERO,
    };
    let pick = |v: &[Duration], p| percentile(v, p).unwrap_or_default();
    Ok(WatchResults {
        p50: pick(&from_issue, 50.0),
        p99: pick(&from_issue, 99.0),
        max: pick(&from_issue, 100.0),
        ack_p50: pick(&from_ack, 50.0),
        ack_p99: pick(&from_ack, 99.0),
        samples: from_issue.len(),
        clamped,
        write_p50,
        write_p99,
        write_span,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pods_are_about_two_kilobytes() {
        for i in [0, 7, 9_999, 99_999] {
            let body = pod_json(i);
            assert!(
                (1_950..=2_150).contains(&body.len()),
                "pod {i} is {} bytes",
                body.len()
            );
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(v["kind"], "Pod");
            assert_eq!(v["metadata"]["name"], pod_name(i));
            assert_eq!(v["spec"]["containers"].as_array().unwrap().len(), 2);
            assert!(v["spec"].get("nodeName").is_none());
            assert!(v.get("status").is_none());
        }
        assert_ne!(pod_json(1), pod_json(2));
    }

    #[test]
    fn configmaps_are_small_and_named() {
        let body = configmap_json("ev-12");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["metadata"]["name"], "ev-12");
        assert_eq!(v["data"]["payload"].as_str().unwrap().len(), WATCH_PAYLOAD);
        assert!(body.len() < 600, "{} bytes", body.len());
    }

    #[test]
    fn slim_parsing() {
        let list: SlimList = serde_json::from_str(
            r#"{"kind":"PodList","metadata":{"resourceVersion":"42"},"items":[{"a":1},{"b":[2]}]}"#,
        )
        .unwrap();
        assert_eq!(list.items.len(), 2);
        assert_eq!(list.metadata.resource_version, "42");
        assert_eq!(list.metadata.continue_, None);
        let ev: EventLine<'_> = serde_json::from_str(
            r#"{"type":"ADDED","object":{"kind":"ConfigMap","metadata":{"name":"ev-3","resourceVersion":"77"},"data":{}}}"#,
        )
        .unwrap();
        assert_eq!(ev.kind, "ADDED");
        assert_eq!(ev.object.metadata.name, "ev-3");
        assert_eq!(ev.object.metadata.resource_version, "77");
    }

    #[test]
    fn byte_search() {
        assert!(contains(b"{\"name\":\"a\"}", b"\"name\":\"a\""));
        assert!(!contains(b"{\"name\":\"ab\"}", b"\"name\":\"a\""));
        assert!(contains(b"x", b""));
    }

    #[test]
    fn measure_clamps_and_checks_exactly_once() {
        let t0 = Instant::now();
        let at = |us| t0 + Duration::from_micros(us);
        let writes = vec![
            Written {
                resource_version: "10".into(),
                issued: at(600),
                acked: at(1000),
            },
            Written {
                resource_version: "11".into(),
                issued: at(2800),
                acked: at(3000),
            },
        ];
        let d = |index, rv: &str, us| Delivery {
            index,
            resource_version: rv.into(),
            at: at(us),
        };
        // Watcher 0 got event 0 before the writer saw the ack.
        let ok = vec![
            vec![d(0, "10", 900), d(1, "11", 3500)],
            vec![d(0, "10", 1200), d(1, "11", 4000)],
        ];
        let m = measure(&writes, &ok).unwrap();
        assert_eq!(m.samples, 4);
        assert_eq!(m.clamped, 1);
        // From the ack, sorted: 0, 200, 500, 1000 µs.
        assert_eq!(m.ack_p50, Duration::from_micros(200));
        assert_eq!(m.ack_p99, Duration::from_micros(1000));
        // From the issue: 300, 600, 700, 1200 µs.
        assert_eq!(m.p50, Duration::from_micros(600));
        assert_eq!(m.p99, Duration::from_micros(1200));
        assert_eq!(m.max, Duration::from_micros(1200));
        // Writes took 400 and 200 µs; the first issue to the last ack is 2400 µs.
        assert_eq!(m.write_p50, Duration::from_micros(200));
        assert_eq!(m.write_p99, Duration::from_micros(400));
        assert_eq!(m.write_span, Duration::from_micros(2400));

        let dup = vec![vec![d(0, "10", 1100), d(0, "10", 1100), d(1, "11", 3100)]];
        let err = measure(&writes, &dup).unwrap_err().to_string();
        assert!(err.contains("watcher 0: 0 missing, 1 duplicated"), "{err}");
        let bad = vec![
            vec![d(0, "10", 1100)],
            vec![d(0, "10", 1100), d(1, "12", 3100), d(2, "13", 3200)],
        ];
        let err = measure(&writes, &bad).unwrap_err().to_string();
        assert!(err.contains("watcher 0: 1 missing"), "{err}");
        assert!(
            err.contains(
                "watcher 1: 0 missing, 0 duplicated, 1 unexpected, 1 at another resourceVersion"
            ),
            "{err}"
        );
    }

    #[test]
    fn latency_percentiles() {
        let v: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        assert_eq!(
            p50_p99(v),
            (Duration::from_millis(50), Duration::from_millis(99))
        );
        assert_eq!(p50_p99(Vec::new()), (Duration::ZERO, Duration::ZERO));
    }
}
