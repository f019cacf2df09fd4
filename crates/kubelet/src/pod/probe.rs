//! Container probes (liveness, readiness, startup) with upstream's timing
//! fields: `initialDelaySeconds`, `periodSeconds`, `timeoutSeconds`,
//! `successThreshold`, `failureThreshold`. Handlers: `exec` (CRI ExecSync),
//! `tcpSocket`, `httpGet` and `grpc` (`grpc_health`), from the node to
//! the pod's IP. One task per
//! probe of a running container instance; results land in a shared map the
//! status reads. A failed liveness or startup probe stops the container,
//! and the restart policy takes it from there, as upstream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Container, HTTPGetAction, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::cri::Runtime;

/// What the probes say of one container instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeState {
    /// Readiness (true without a readiness probe).
    pub ready: bool,
    /// Startup done (true without a startup probe).
    pub started: bool,
}

impl ProbeState {
    /// Before any result (upstream's prober manager): not ready with a
    /// readiness probe, not started with a startup probe.
    pub fn before_results(c: &Container) -> Self {
        ProbeState {
            ready: c.readiness_probe.is_none(),
            started: c.startup_probe.is_none(),
        }
    }
}

/// Records a Warning event (reason, message) about the probed container.
pub type Report = Arc<dyn Fn(&'static str, String) + Send + Sync>;

/// A running container instance to probe.
pub struct Target {
    /// CRI ID.
    pub id: String,
    /// The pod's IP (the host's for hostNetwork pods).
    pub pod_ip: String,
    /// Its spec.
    pub container: Container,
    /// The grace period to stop it with.
    pub grace: i64,
    /// Where `Unhealthy` events go.
    pub report: Report,
}

/// The probe tasks of every running container, by container ID.
#[derive(Default)]
pub struct Prober {
    states: Mutex<HashMap<String, Arc<Mutex<ProbeState>>>>,
    tasks: Mutex<HashMap<String, crate::AbortOnDrop>>,
}

/// One probe's outcome.
fn outcome_after(p: &Probe, ok: bool, successes: &mut i32, failures: &mut i32) -> Option<bool> {
    if ok {
        *failures = 0;
        *successes += 1;
        (*successes >= p.success_threshold.unwrap_or(1).max(1)).then_some(true)
    } else {
        *successes = 0;
        *failures += 1;
        (*failures >= p.failure_threshold.unwrap_or(3).max(1)).then_some(false)
    }
}

/// Go's text for a failed dial (`dial tcp HOST:PORT: connect: connection
/// refused`), as upstream's probes report it.
fn dial_error(host: &str, port: u16, e: Option<&std::io::Error>) -> String {
    let addr = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    match e {
        None => format!("dial tcp {addr}: i/o timeout"),
        Some(e) => {
            // strerror's text without Rust's " (os error N)", lower-case as Go's.
            let text = e.to_string();
            let text = text.split(" (os error").next().unwrap_or(&text).to_string();
            let mut text = text.chars();
            let text = match text.next() {
                Some(first) => first.to_lowercase().chain(text).collect(),
                None => String::new(),
            };
            format!("dial tcp {addr}: connect: {text}")
        }
    }
}

/// Run one probe once: `Err(output)` when it failed, with upstream's
/// output for the `Unhealthy` event (`HTTP probe failed with statuscode:
/// 404`, `dial tcp 10.42.0.5:8080: connect: connection refused`, an exec
/// probe's output, ...).
pub async fn run_once(
    runtime: &dyn Runtime,
    id: &str,
    pod_ip: &str,
    p: &Probe,
    c: &Container,
) -> Result<(), String> {
    let timeout = Duration::from_secs(p.timeout_seconds.unwrap_or(1).max(1) as u64);
    if let Some(e) = &p.exec {
        let cmd = e.command.clone().unwrap_or_default();
        return match tokio::time::timeout(
            timeout + Duration::from_secs(1),
            runtime.exec_sync(id, cmd.clone(), timeout.as_secs() as i64),
        )
        .await
        {
            Ok(Ok(r)) if r.exit_code == 0 => Ok(()),
            Ok(Ok(r)) => {
                let mut out = r.stdout;
                out.extend_from_slice(&r.stderr);
                Err(String::from_utf8_lossy(&out).into_owned())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("command {:?} timed out", cmd.join(" "))),
        };
    }
    if let Some(t) = &p.tcp_socket {
        let host = t.host.clone().unwrap_or_else(|| pod_ip.to_string());
        let port = resolve_port(&t.port, c)?;
        return match tokio::time::timeout(
            timeout,
            tokio::net::TcpStream::connect((host.as_str(), port)),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(dial_error(&host, port, Some(&e))),
            Err(_) => Err(dial_error(&host, port, None)),
        };
    }
    if let Some(h) = &p.http_get {
        return match http_get(h, pod_ip, c, timeout, "probe").await? {
            code if (200..400).contains(&code) => Ok(()),
            code => Err(format!("HTTP probe failed with statuscode: {code}")),
        };
    }
    if let Some(g) = &p.grpc {
        let port = u16::try_from(g.port).map_err(|_| format!("invalid port number: {}", g.port))?;
        let service = g.service.clone().unwrap_or_default();
        return super::grpc_health::check(pod_ip, port, &service, timeout)
            .await
            .inspect_err(|e| {
                tracing::debug!(container = %c.name, error = %e, "gRPC probe failed");
            });
    }
    // A probe without a handler the API accepts: never a success.
    Err("missing probe handler".into())
}

/// A port of `c` by number or by name.
fn resolve_port(port: &IntOrString, c: &Container) -> Result<u16, String> {
    match port {
        IntOrString::Int(n) => u16::try_from(*n).map_err(|_| format!("invalid port number: {n}")),
        IntOrString::String(name) => c
            .ports
            .iter()
            .flatten()
            .find(|cp| cp.name.as_deref() == Some(name))
            .and_then(|cp| u16::try_from(cp.container_port).ok())
            .ok_or_else(|| format!("couldn't find port: {name:?} in {}", c.name)),
    }
}

/// An HTTP GET of `h` (a probe's or a lifecycle hook's) from the node:
/// the response's status code, or Go's client error text
/// (`Get "URL": dial tcp ...`). `agent` is upstream's User-Agent fragment
/// (`kube-probe/1.37`, `kube-lifecycle/1.37`).
pub async fn http_get(
    h: &HTTPGetAction,
    pod_ip: &str,
    c: &Container,
    timeout: Duration,
    agent: &str,
) -> Result<u16, String> {
    let host = h.host.clone().unwrap_or_else(|| pod_ip.to_string());
    let port = resolve_port(&h.port, c)?;
    let path = h.path.clone().unwrap_or_else(|| "/".into());
    let scheme = h.scheme.as_deref().unwrap_or("HTTP").to_lowercase();
    let url = if host.contains(':') {
        format!("{scheme}://[{host}]:{port}{path}")
    } else {
        format!("{scheme}://{host}:{port}{path}")
    };
    let get = async {
        let mut s = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|e| format!("Get {url:?}: {}", dial_error(&host, port, Some(&e))))?;
        let mut req = format!(
            "GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: kube-{agent}/1.37\r\n"
        );
        for hd in h.http_headers.iter().flatten() {
            req.push_str(&format!("{}: {}\r\n", hd.name, hd.value));
        }
        req.push_str("\r\n");
        let mut head = vec![0u8; 64];
        let n = async {
            s.write_all(req.as_bytes()).await?;
            s.read(&mut head).await
        }
        .await
        .map_err(|e| format!("Get {url:?}: {e}"))?;
        Ok::<_, String>(String::from_utf8_lossy(&head[..n]).to_string())
    };
    let head = tokio::time::timeout(timeout, get).await.map_err(|_| {
        format!("Get {url:?}: context deadline exceeded (Client.Timeout exceeded while awaiting headers)")
    })??;
    match head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse::<u16>().ok())
    {
        Some(code) => Ok(code),
        None => Err(format!("Get {url:?}: malformed HTTP response {head:?}")),
    }
}

impl Prober {
    /// The probe state of container instance `id` of `c` (before its
    /// probes ran: [`ProbeState::before_results`]).
    pub fn state(&self, id: &str, c: &Container) -> ProbeState {
        self.states
            .lock()
            .expect("probe states")
            .get(id)
            .map(|s| *s.lock().expect("probe state"))
            .unwrap_or_else(|| ProbeState::before_results(c))
    }

    /// Make sure the probes of running container `id` (of `c`) run, and
    /// stop those of containers no longer in `running`.
    pub fn sync(
        &self,
        runtime: &Arc<dyn Runtime>,
        running: &[Target],
        wake: Arc<tokio::sync::Notify>,
    ) {
        let mut tasks = self.tasks.lock().expect("probe tasks");
        let mut states = self.states.lock().expect("probe states");
        let live: std::collections::HashSet<&str> = running.iter().map(|r| r.id.as_str()).collect();
        tasks.retain(|id, _| live.contains(id.as_str()));
        states.retain(|id, _| live.contains(id.as_str()));
        for Target {
            id,
            pod_ip,
            container: c,
            grace,
            report,
        } in running
        {
            if tasks.contains_key(id) {
                continue;
            }
            let state = Arc::new(Mutex::new(ProbeState::before_results(c)));
            states.insert(id.clone(), state.clone());
            let mut handles = Vec::new();
            for kind in [Kind::Startup, Kind::Readiness, Kind::Liveness] {
                let Some(p) = kind.probe(c).cloned() else {
                    continue;
                };
                let (runtime, id, ip, c, state, wake, report) = (
                    runtime.clone(),
                    id.clone(),
                    pod_ip.clone(),
                    c.clone(),
                    state.clone(),
                    wake.clone(),
                    report.clone(),
                );
                let grace = p.termination_grace_period_seconds.unwrap_or(*grace);
                handles.push(tokio::spawn(async move {
                    probe_loop(kind, p, runtime, id, ip, c, state, wake, grace, report).await
                }));
            }
            tasks.insert(id.clone(), crate::AbortOnDrop(handles));
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Startup,
    Readiness,
    Liveness,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Startup => "Startup",
            Kind::Readiness => "Readiness",
            Kind::Liveness => "Liveness",
        }
    }

    fn probe(self, c: &Container) -> Option<&Probe> {
        match self {
            Kind::Startup => c.startup_probe.as_ref(),
            Kind::Readiness => c.readiness_probe.as_ref(),
            Kind::Liveness => c.liveness_probe.as_ref(),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn probe_loop(
    kind: Kind,
    p: Probe,
    runtime: Arc<dyn Runtime>,
    id: String,
    pod_ip: String,
    c: Container,
    state: Arc<Mutex<ProbeState>>,
    wake: Arc<tokio::sync::Notify>,
    grace: i64,
    report: Report,
) {
    tokio::time::sleep(Duration::from_secs(
        p.initial_delay_seconds.unwrap_or(0).max(0) as u64,
    ))
    .await;
    let period = Duration::from_secs(p.period_seconds.unwrap_or(10).max(1) as u64);
    let (mut successes, mut failures) = (0, 0);
    loop {
        // Liveness and readiness wait for the startup probe to succeed.
        let started = state.lock().expect("probe state").started;
        if kind == Kind::Startup && started {
            return;
        }
        if kind == Kind::Startup || started {
            let result = run_once(runtime.as_ref(), &id, &pod_ip, &p, &c).await;
            let ok = result.is_ok();
            if let Err(output) = result {
                // Upstream's event: "Liveness probe failed: <output>".
                report(
                    "Unhealthy",
                    format!("{} probe failed: {output}", kind.name()),
                );
            }
            if let Some(result) = outcome_after(&p, ok, &mut successes, &mut failures) {
                let changed = {
                    let mut s = state.lock().expect("probe state");
                    let before = *s;
                    match kind {
                        Kind::Readiness => s.ready = result,
                        Kind::Startup if result => s.started = true,
                        _ => {}
                    }
                    *s != before
                };
                if changed {
                    wake.notify_one();
                }
                if !result && kind != Kind::Readiness {
                    let why = format!(
                        "Container {} failed {} probe, will be restarted",
                        c.name,
                        kind.name().to_lowercase()
                    );
                    report("Killing", why);
                    tracing::info!(container = %c.name, id = %id, ?kind, "probe failed; stopping the container");
                    let _ = runtime.stop_container(&id, grace).await;
                    wake.notify_one();
                    return;
                }
            }
        }
        tokio::time::sleep(period).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dial_errors_read_as_go_s() {
        let refused = std::io::Error::from_raw_os_error(111);
        assert_eq!(
            dial_error("10.42.0.5", 8081, Some(&refused)),
            "dial tcp 10.42.0.5:8081: connect: connection refused"
        );
        assert_eq!(
            dial_error("fd00::5", 80, None),
            "dial tcp [fd00::5]:80: i/o timeout"
        );
    }

    #[tokio::test]
    async fn failures_carry_upstream_s_output() {
        let rt = crate::cri::fake::Fake::default();
        let c = Container::default();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = l.local_addr().unwrap().port();
        drop(l);
        let tcp = Probe {
            tcp_socket: Some(k8s_openapi::api::core::v1::TCPSocketAction {
                port: IntOrString::Int(closed.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            run_once(&rt, "id", "127.0.0.1", &tcp, &c).await,
            Err(format!(
                "dial tcp 127.0.0.1:{closed}: connect: connection refused"
            ))
        );
        let http = Probe {
            http_get: Some(k8s_openapi::api::core::v1::HTTPGetAction {
                port: IntOrString::Int(closed.into()),
                path: Some("/healthz".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            run_once(&rt, "id", "127.0.0.1", &http, &c).await,
            Err(format!(
                "Get \"http://127.0.0.1:{closed}/healthz\": dial tcp 127.0.0.1:{closed}: connect: connection refused"
            ))
        );
        // A server answering 404.
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
            let _ = s.write_all(b"HTTP/1.0 404 Not Found\r\n\r\n").await;
        });
        let http = Probe {
            http_get: Some(k8s_openapi::api::core::v1::HTTPGetAction {
                port: IntOrString::Int(port.into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            run_once(&rt, "id", "127.0.0.1", &http, &c).await,
            Err("HTTP probe failed with statuscode: 404".to_string())
        );
    }

    #[test]
    fn thresholds() {
        let p = Probe {
            success_threshold: Some(2),
            failure_threshold: Some(2),
            ..Default::default()
        };
        let (mut s, mut f) = (0, 0);
        assert_eq!(outcome_after(&p, true, &mut s, &mut f), None);
        assert_eq!(outcome_after(&p, true, &mut s, &mut f), Some(true));
        assert_eq!(outcome_after(&p, false, &mut s, &mut f), None);
        assert_eq!(
            outcome_after(&p, true, &mut s, &mut f),
            None,
            "a success resets the failures"
        );
        assert_eq!(outcome_after(&p, false, &mut s, &mut f), None);
        assert_eq!(outcome_after(&p, false, &mut s, &mut f), Some(false));
        let d = Probe::default();
        let (mut s, mut f) = (0, 0);
        assert_eq!(outcome_after(&d, true, &mut s, &mut f), Some(true));
        assert_eq!(outcome_after(&d, false, &mut s, &mut f), None);
        assert_eq!(outcome_after(&d, false, &mut s, &mut f), None);
        assert_eq!(outcome_after(&d, false, &mut s, &mut f), Some(false));
    }
}
