//! What the cluster benchmarks (scheduler, deployment, idle) share: hollow
//! nodes as a `wharf hollow-nodes` child process, waiting for their Nodes to
//! be Ready, and CPU readings of the processes involved.
//!
//! The hollow nodes run in their own process, not inside the benchmark, so
//! their CPU is read apart from the benchmark's (its creates and watch) and
//! from the server's.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use kube::Client;
use serde::Deserialize;
use test_support::ChildGuard;

use crate::apiserver::{call_ok, get, process_cpu, Server};

/// Name prefix (and `hollow.wharf.dev/prefix` label) of the benchmark's nodes.
pub const NODE_PREFIX: &str = "bench";
/// The label the hollow nodes carry with their prefix (`hollow::node::
/// PREFIX_LABEL`; the bench talks to the hollow process only through the API).
const PREFIX_LABEL: &str = "hollow.wharf.dev/prefix";

/// What each hollow node reports and how the hollow process behaves.
#[derive(Clone, Debug, PartialEq)]
pub struct HollowSpec {
    /// Nodes to simulate.
    pub nodes: usize,
    /// CPU capacity of each node, in cores.
    pub cpu: u32,
    /// Memory capacity of each node, in GiB.
    pub memory_gib: u32,
    /// Pod slots of each node.
    pub max_pods: u32,
    /// Whether the nodes take their pods to Running (else they keep only their
    /// Nodes and Leases fresh).
    pub run_pods: bool,
    /// Requests the hollow process has in flight at most.
    pub concurrency: usize,
}

/// The `wharf hollow-nodes` child process.
pub(crate) struct Hollow {
    guard: ChildGuard,
    pid: u32,
    log: PathBuf,
}

impl Hollow {
    /// Start `wharf_exe hollow-nodes` against `server` with the admin
    /// kubeconfig, logging next to the server's log.
    pub(crate) fn start(wharf_exe: &Path, server: &Server, spec: &HollowSpec) -> Result<Hollow> {
        let log = server
            .log_path()
            .parent()
            .ok_or_else(|| anyhow!("the server log has no directory"))?
            .join("hollow.log");
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone().context("duplicating the log file handle")?;
        let mut cmd = Command::new(wharf_exe);
        cmd.arg("hollow-nodes")
            .arg("--count")
            .arg(spec.nodes.to_string())
            .args(["--prefix", NODE_PREFIX])
            .arg("--kubeconfig")
            .arg(server.kubeconfig())
            .arg("--cpu")
            .arg(spec.cpu.to_string())
            .arg("--memory")
            .arg(format!("{}Gi", spec.memory_gib))
            .arg("--max-pods")
            .arg(spec.max_pods.to_string())
            .arg("--concurrency")
            .arg(spec.concurrency.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        if !spec.run_pods {
            cmd.arg("--ignore-pods");
        }
        crate::apiserver::scrub_env(&mut cmd, true);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} hollow-nodes", wharf_exe.display()))?;
        let pid = child.id();
        eprintln!(
            "[bench] started {} hollow nodes (pid {pid}), log {}",
            spec.nodes,
            log.display()
        );
        Ok(Hollow {
            guard: ChildGuard::new("wharf hollow-nodes", child),
            pid,
            log,
        })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    pub(crate) fn ensure_running(&mut self) -> Result<()> {
        if self.guard.is_running() {
            Ok(())
        } else {
            Err(anyhow!(
                "the hollow nodes (pid {}) exited; log:\n{}",
                self.pid,
                tail(&self.log, 20)
            ))
        }
    }

    /// Lines of the hollow process's log with a WARN or ERROR, and the last
    /// few of them.
    pub(crate) fn warnings(&self) -> (usize, Vec<String>) {
        warnings(&self.log)
    }

    /// SIGKILL the process by its PID and reap it.
    pub(crate) fn stop(&mut self) {
        self.guard.kill();
    }
}

/// The last `n` lines of a file.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return String::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// How many lines of a log are warnings or errors, and the last three.
pub(crate) fn warnings(path: &Path) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    count_warnings(&text)
}

fn count_warnings(text: &str) -> (usize, Vec<String>) {
    let hits: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    let last = hits[hits.len().saturating_sub(3)..]
        .iter()
        .map(|l| l.chars().take(300).collect())
        .collect();
    (hits.len(), last)
}

#[derive(Deserialize)]
struct NodeList {
    items: Vec<SlimNode>,
}

#[derive(Deserialize)]
struct SlimNode {
    #[serde(default)]
    status: SlimNodeStatus,
}

#[derive(Default, Deserialize)]
struct SlimNodeStatus {
    #[serde(default)]
    conditions: Vec<SlimCondition>,
}

#[derive(Clone, Debug, Deserialize)]
pub(crate) struct SlimCondition {
    #[serde(rename = "type")]
    pub(crate) type_: String,
    pub(crate) status: String,
    #[serde(default)]
    pub(crate) message: Option<String>,
}

/// How many of the nodes in a NodeList's JSON have `Ready=True`, and how many
/// there are.
fn ready_nodes(list: &[u8]) -> Result<(usize, usize)> {
    let list: NodeList = serde_json::from_slice(list).context("parsing the node list")?;
    let ready = list
        .items
        .iter()
        .filter(|n| {
            n.status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
        .count();
    Ok((ready, list.items.len()))
}

/// Wait until `want` of the benchmark's nodes are Ready; returns how long it
/// took. The hollow process must stay up meanwhile.
pub(crate) async fn wait_nodes_ready(
    client: &Client,
    hollow: &mut Hollow,
    want: usize,
) -> Result<Duration> {
    let start = Instant::now();
    // Registration is three requests per node, 32 in flight.
    let timeout = Duration::from_secs(60) + Duration::from_millis(20) * want as u32;
    let uri = format!("/api/v1/nodes?labelSelector={PREFIX_LABEL}%3D{NODE_PREFIX}");
    loop {
        hollow.ensure_running()?;
        let body = call_ok(client, get(&uri), "listing the nodes").await?;
        let last = ready_nodes(&body)?;
        if last.0 >= want {
            return Ok(start.elapsed());
        }
        if start.elapsed() > timeout {
            bail!(
                "only {} of {want} nodes were Ready ({} registered) after {timeout:?}",
                last.0,
                last.1
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// CPU time of the server, the hollow nodes, this process and the whole
/// machine at one instant.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    at: Instant,
    server: Option<Duration>,
    hollow: Option<Duration>,
    bench: Option<Duration>,
    machine: Option<Duration>,
}

/// Reads [`Sample`]s.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Meter {
    server: u32,
    hollow: u32,
}

impl Meter {
    pub(crate) fn new(server: &Server, hollow: &Hollow) -> Meter {
        Meter {
            server: server.pid(),
            hollow: hollow.pid(),
        }
    }

    pub(crate) fn sample(&self) -> Sample {
        Sample {
            at: Instant::now(),
            server: process_cpu(&self.server.to_string()),
            hollow: process_cpu(&self.hollow.to_string()),
            bench: process_cpu("self"),
            machine: crate::apiserver::machine_cpu(),
        }
    }
}

impl Sample {
    /// What was spent from `self` to `later`.
    pub(crate) fn until(&self, later: &Sample) -> Cpu {
        let diff = |a: Option<Duration>, b: Option<Duration>| Some(b?.saturating_sub(a?));
        Cpu {
            wall: later.at.saturating_duration_since(self.at),
            server: diff(self.server, later.server),
            hollow: diff(self.hollow, later.hollow),
            bench: diff(self.bench, later.bench),
            machine: diff(self.machine, later.machine),
        }
    }
}

/// CPU spent over a span by each process, from `/proc/<pid>/stat` (user +
/// system, all threads) and `/proc/stat` for the machine.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Cpu {
    /// Wall time of the span.
    pub wall: Duration,
    /// `wharf server` (API server, scheduler, controllers).
    pub server: Option<Duration>,
    /// The hollow nodes' process.
    pub hollow: Option<Duration>,
    /// The benchmark process (creates, watches).
    pub bench: Option<Duration>,
    /// The whole machine, all CPUs, busy time.
    pub machine: Option<Duration>,
}

impl Cpu {
    /// Average cores busy over the span: CPU time over wall time.
    pub fn cores(&self, cpu: Option<Duration>) -> Option<f64> {
        let c = cpu?;
        (!self.wall.is_zero()).then(|| c.as_secs_f64() / self.wall.as_secs_f64())
    }

    /// The machine's busy time outside the three processes.
    pub fn rest(&self) -> Option<Duration> {
        Some(
            self.machine?
                .saturating_sub(self.server?)
                .saturating_sub(self.hollow?)
                .saturating_sub(self.bench?),
        )
    }

    /// `server 1.23 + hollow 0.10 + bench 0.40 + rest 0.05 cores over 9.87 s`.
    pub fn describe(&self) -> String {
        let c = |d| {
            self.cores(d)
                .map_or_else(|| "?".into(), |x| format!("{x:.2}"))
        };
        format!(
            "server {} + hollow nodes {} + benchmark {} + rest of the machine {} cores over {:.2} s",
            c(self.server),
            c(self.hollow),
            c(self.bench),
            c(self.rest()),
            self.wall.as_secs_f64()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_ready_nodes() {
        let list = br#"{"kind":"NodeList","items":[
            {"metadata":{"name":"a"},"status":{"conditions":[{"type":"MemoryPressure","status":"False"},{"type":"Ready","status":"True"}]}},
            {"metadata":{"name":"b"},"status":{"conditions":[{"type":"Ready","status":"False"}]}},
            {"metadata":{"name":"c"}},
            {"metadata":{"name":"d"},"status":{"conditions":[{"type":"Ready","status":"True"}]}}
        ]}"#;
        assert_eq!(ready_nodes(list).unwrap(), (2, 4));
        assert!(ready_nodes(b"{}").is_err());
    }

    #[test]
    fn cpu_cores_and_rest() {
        let s = Duration::from_secs;
        let cpu = Cpu {
            wall: s(10),
            server: Some(s(5)),
            hollow: Some(s(2)),
            bench: Some(s(3)),
            machine: Some(s(11)),
        };
        assert_eq!(cpu.cores(cpu.server), Some(0.5));
        assert_eq!(cpu.rest(), Some(s(1)));
        assert_eq!(
            cpu.describe(),
            "server 0.50 + hollow nodes 0.20 + benchmark 0.30 + rest of the machine 0.10 cores over 10.00 s"
        );
        let unknown = Cpu {
            hollow: None,
            ..cpu
        };
        assert_eq!(unknown.rest(), None);
        assert!(unknown.describe().contains("hollow nodes ?"));
        assert_eq!(Cpu::default().cores(Some(s(1))), None);
    }

    #[test]
    fn warning_lines() {
        let log = "2026-01-01T00:00:00Z  INFO hollow: registered\n\
                   2026-01-01T00:00:01Z  WARN hollow: posting pod status failed\n\
                   2026-01-01T00:00:02Z ERROR hollow: boom\n";
        let (n, last) = count_warnings(log);
        assert_eq!(n, 2);
        assert!(last[1].contains("boom"));
        assert_eq!(count_warnings("").0, 0);
    }
}
