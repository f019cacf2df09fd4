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

use k8s_openapi::api::core::v1::{Container, Probe};
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

/// Run one probe once: whether it succeeded.
pub async fn run_once(
    runtime: &dyn Runtime,
    id: &str,
    pod_ip: &str,
    p: &Probe,
    c: &Container,
) -> bool {
    let timeout = Duration::from_secs(p.timeout_seconds.unwrap_or(1).max(1) as u64);
    let port = |port: &IntOrString| -> Option<u16> {
        match port {
            IntOrString::Int(n) => u16::try_from(*n).ok(),
            IntOrString::String(name) => c
                .ports
                .iter()
                .flatten()
                .find(|cp| cp.name.as_deref() == Some(name))
                .and_then(|cp| u16::try_from(cp.container_port).ok()),
        }
    };
    if let Some(e) = &p.exec {
        let cmd = e.command.clone().unwrap_or_default();
        return match tokio::time::timeout(
            timeout + Duration::from_secs(1),
            runtime.exec_sync(id, cmd, timeout.as_secs() as i64),
        )
        .await
        {
            Ok(Ok(r)) => r.exit_code == 0,
            _ => false,
        };
    }
    if let Some(t) = &p.tcp_socket {
        let host = t.host.clone().unwrap_or_else(|| pod_ip.to_string());
        let Some(port) = port(&t.port) else {
            return false;
        };
        return matches!(
            tokio::time::timeout(
                timeout,
                tokio::net::TcpStream::connect((host.as_str(), port))
            )
            .await,
            Ok(Ok(_))
        );
    }
    if let Some(h) = &p.http_get {
        let host = h.host.clone().unwrap_or_else(|| pod_ip.to_string());
        let Some(port) = port(&h.port) else {
            return false;
        };
        let path = h.path.clone().unwrap_or_else(|| "/".into());
        let get = async {
            let mut s = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
            let mut req = format!(
                "GET {path} HTTP/1.0\r\nHost: {host}:{port}\r\nUser-Agent: kube-probe/1.37\r\n"
            );
            for hd in h.http_headers.iter().flatten() {
                req.push_str(&format!("{}: {}\r\n", hd.name, hd.value));
            }
            req.push_str("\r\n");
            s.write_all(req.as_bytes()).await?;
            let mut head = vec![0u8; 64];
            let n = s.read(&mut head).await?;
            Ok::<_, std::io::Error>(String::from_utf8_lossy(&head[..n]).to_string())
        };
        return match tokio::time::timeout(timeout, get).await {
            Ok(Ok(head)) => head
                .split_whitespace()
                .nth(1)
                .and_then(|code| code.parse::<u16>().ok())
                .is_some_and(|code| (200..400).contains(&code)),
            _ => false,
        };
    }
    if let Some(g) = &p.grpc {
        let Ok(port) = u16::try_from(g.port) else {
            return false;
        };
        let service = g.service.clone().unwrap_or_default();
        return match super::grpc_health::check(pod_ip, port, &service, timeout).await {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(container = %c.name, error = %e, "gRPC probe failed");
                false
            }
        };
    }
    // A probe without a handler the API accepts: never a success.
    false
}

impl Prober {
    /// The probe state of container instance `id` of `c`; before its
    /// probes ran: not ready with a readiness probe, not started with a
    /// startup probe.
    pub fn state(&self, id: &str, c: &Container) -> ProbeState {
        self.states
            .lock()
            .expect("probe states")
            .get(id)
            .map(|s| *s.lock().expect("probe state"))
            .unwrap_or(ProbeState {
                ready: c.readiness_probe.is_none(),
                started: c.startup_probe.is_none(),
            })
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
            let state = Arc::new(Mutex::new(ProbeState {
                ready: c.readiness_probe.is_none(),
                started: c.startup_probe.is_none(),
            }));
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
            let ok = run_once(runtime.as_ref(), &id, &pod_ip, &p, &c).await;
            if !ok {
                report("Unhealthy", format!("{} probe failed", kind.name()));
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
