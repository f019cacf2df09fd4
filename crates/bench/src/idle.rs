//! The idle benchmark: the control plane's CPU while nothing changes, with
//! 1,000 pods Running on hollow nodes.
//!
//! [`run_idle_bench`] starts the full `wharf server` and hollow nodes as for
//! the Deployment benchmark, rolls out a Deployment of `pods` replicas (see
//! [`crate::deployment`]), lets things settle, then reads the CPU time of the
//! server and of the hollow process from `/proc/<pid>/stat` over the idle
//! window. The hollow nodes keep renewing their Leases meanwhile, as kubelets
//! do, so that load is part of the server's figure.
//!
//! The caller provides the tokio runtime; it should be multi-threaded.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{ensure, Result};

use crate::apiserver::{all_met, goal_table, with_server_flags, Goal, Row};
use crate::cluster::{wait_nodes_ready, Cpu, Hollow, Meter};
use crate::deployment::{hollow_spec, rollout, setup, validate_fit, Rollout};
use crate::report::fmt_num;

/// Goal: the idle server's CPU, in milliseconds of CPU per second of wall
/// time (20 ms/s = 0.02 cores = 2% of one core). The issue asks for
/// "near-zero"; this is the line drawn for it.
pub const GOAL_IDLE_SERVER_MS_PER_SEC: f64 = 20.0;

/// The workload of [`run_idle_bench`].
#[derive(Clone, Debug)]
pub struct IdleBenchConfig {
    /// Replicas of the Deployment that is running while idle.
    pub pods: usize,
    /// Hollow nodes.
    pub nodes: usize,
    /// Wait after the Deployment is available before measuring.
    pub settle: Duration,
    /// The idle window measured.
    pub window: Duration,
    /// How long the rollout may take.
    pub timeout: Duration,
    /// Directory for the server's temporary data directory; the system
    /// temporary directory if `None`.
    pub work_dir: Option<PathBuf>,
}

impl Default for IdleBenchConfig {
    fn default() -> Self {
        IdleBenchConfig {
            pods: 1_000,
            nodes: 100,
            settle: Duration::from_secs(10),
            window: Duration::from_secs(30),
            timeout: Duration::from_secs(600),
            work_dir: None,
        }
    }
}

impl IdleBenchConfig {
    fn validate(&self) -> Result<()> {
        validate_fit(self.pods, self.nodes)?;
        ensure!(
            self.window >= Duration::from_secs(1),
            "the idle window must be at least 1 s"
        );
        Ok(())
    }
}

/// What the idle benchmark measured.
#[derive(Clone, Debug)]
pub struct IdleReport {
    /// The workload that was run.
    pub config: IdleBenchConfig,
    /// The rollout that came before.
    pub rollout: Rollout,
    /// CPU over the idle window.
    pub cpu: Cpu,
    /// Pod events the benchmark's watch read during the window.
    pub pod_events: usize,
    /// Server VmRSS at the end of the window, in KiB.
    pub rss_kib: u64,
}

fn ms_per_sec(cpu: &Cpu, d: Option<Duration>) -> Option<f64> {
    cpu.cores(d).map(|c| c * 1000.0)
}

/// `server 18.0 + hollow nodes 5.0 + benchmark 0.0 + rest of the machine
/// 1,980.0 ms/s`.
fn per_sec(cpu: &Cpu) -> String {
    let f = |d| ms_per_sec(cpu, d).map_or_else(|| "?".into(), |v| fmt_num(v, 1));
    format!(
        "server {} + hollow nodes {} + benchmark {} + rest of the machine {} ms/s",
        f(cpu.server),
        f(cpu.hollow),
        f(cpu.bench),
        f(cpu.rest())
    )
}

impl IdleReport {
    fn rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        if let Some(v) = ms_per_sec(&self.cpu, self.cpu.server) {
            rows.push(Row {
                label: "server CPU while idle (ms per second)".into(),
                value: v,
                decimals: 1,
                unit: " ms/s",
                goal: Some(Goal::AtMost(GOAL_IDLE_SERVER_MS_PER_SEC)),
            });
            rows.push(Row {
                label: "server CPU while idle (cores)".into(),
                value: v / 1000.0,
                decimals: 4,
                unit: "",
                goal: None,
            });
        }
        if let Some(v) = ms_per_sec(&self.cpu, self.cpu.hollow) {
            rows.push(Row {
                label: format!(
                    "hollow nodes' CPU while idle (ms per second, {} nodes)",
                    fmt_num(self.config.nodes as f64, 0)
                ),
                value: v,
                decimals: 1,
                unit: " ms/s",
                goal: None,
            });
        }
        if let Some(v) = ms_per_sec(&self.cpu, self.cpu.bench) {
            rows.push(Row {
                label: "benchmark process CPU while idle (ms per second)".into(),
                value: v,
                decimals: 1,
                unit: " ms/s",
                goal: None,
            });
        }
        rows.push(Row {
            label: "pod events while idle".into(),
            value: self.pod_events as f64,
            decimals: 0,
            unit: "",
            goal: None,
        });
        rows.push(Row {
            label: "server RSS at the end (MiB)".into(),
            value: self.rss_kib as f64 / 1024.0,
            decimals: 1,
            unit: " MiB",
            goal: None,
        });
        rows
    }

    /// Whether every goal was met.
    pub fn all_goals_met(&self) -> bool {
        all_met(&self.rows())
    }
}

impl fmt::Display for IdleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (table, goals, met) = goal_table(&self.rows());
        f.write_str(&table)?;
        writeln!(f)?;
        let c = &self.config;
        writeln!(f, "{}", setup(c.pods, c.nodes))?;
        writeln!(
            f,
            "The Deployment was available {:.2} s after its create; {} s later the idle window began. Idle: \
             {:.1} s with nothing created, changed or deleted by the benchmark; CPU is user + system time of \
             all threads from /proc/<pid>/stat at both ends, in 10 ms ticks (so the resolution is {:.1} ms/s): \
             {}. The hollow nodes renew {} Leases every 10 s meanwhile, as kubelets do (the server's figure \
             includes serving them); the benchmark's pod watch stays open and counts the pod events it reads.",
            self.rollout.available.as_secs_f64(),
            c.settle.as_secs(),
            self.cpu.wall.as_secs_f64(),
            10.0 / self.cpu.wall.as_secs_f64().max(1.0),
            per_sec(&self.cpu),
            fmt_num(c.nodes as f64, 0)
        )?;
        writeln!(
            f,
            "goals: \"near-zero\" idle CPU for the control plane, taken as <= {} ms of CPU per second (0.02 \
             cores, 2% of one core) for the `wharf server` process. Goals met: {met} of {goals}.",
            GOAL_IDLE_SERVER_MS_PER_SEC
        )
    }
}

/// Start a fresh `wharf_exe server` and hollow nodes, roll out `pods`
/// replicas, wait `settle`, measure the idle window, stop both by PID.
pub async fn run_idle_bench(cfg: &IdleBenchConfig, wharf_exe: &Path) -> Result<IdleReport> {
    cfg.validate()?;
    with_server_flags(
        wharf_exe,
        cfg.work_dir.as_deref(),
        "wharf-idlebench-",
        &[],
        async |client, server| {
            let mut hollow = Hollow::start(wharf_exe, server, &hollow_spec(cfg.nodes))?;
            let r = async {
                wait_nodes_ready(client, &mut hollow, cfg.nodes).await?;
                let (rollout, watch) =
                    rollout(client, server, &mut hollow, cfg.pods, cfg.timeout, "idle").await?;
                eprintln!(
                    "[bench] idle: settling {} s, then measuring {} s ...",
                    cfg.settle.as_secs(),
                    cfg.window.as_secs()
                );
                tokio::time::sleep(cfg.settle).await;
                let meter = Meter::new(server, &hollow);
                let events_before = watch.lock().events;
                let before = meter.sample();
                tokio::time::sleep(cfg.window).await;
                let cpu = before.until(&meter.sample());
                let pod_events = watch.lock().events - events_before;
                server.ensure_running()?;
                hollow.ensure_running()?;
                let (rss_kib, _) = server.memory_kib()?;
                eprintln!("[bench] idle:   {}", per_sec(&cpu));
                Ok::<_, anyhow::Error>(IdleReport {
                    config: cfg.clone(),
                    rollout,
                    cpu,
                    pod_events,
                    rss_kib,
                })
            }
            .await;
            hollow.stop();
            r
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(server_ms: u64) -> IdleReport {
        let s = Duration::from_secs;
        IdleReport {
            config: IdleBenchConfig::default(),
            rollout: Rollout {
                replicas: 1_000,
                available: Duration::from_millis(7_500),
                ..Rollout::default()
            },
            cpu: Cpu {
                wall: s(30),
                server: Some(Duration::from_millis(server_ms)),
                hollow: Some(Duration::from_millis(150)),
                bench: Some(Duration::from_millis(3)),
                machine: Some(s(3)),
            },
            pod_events: 0,
            rss_kib: 80 * 1024,
        }
    }

    fn line<'a>(text: &'a str, start: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{text}"))
    }

    #[test]
    fn idle_goal_in_ms_per_second() {
        // 300 ms over 30 s: 10 ms/s, 0.01 cores.
        let r = report(300);
        let text = r.to_string();
        assert!(r.all_goals_met(), "{text}");
        let l = line(&text, "server CPU while idle (ms per second)");
        assert!(l.contains("|   10.0 |") && l.contains("<= 20 ms/s"), "{l}");
        let l = line(&text, "server CPU while idle (cores)");
        assert!(l.contains("0.0100"), "{l}");
        let l = line(
            &text,
            "hollow nodes' CPU while idle (ms per second, 100 nodes)",
        );
        assert!(l.contains("|    5.0 |"), "{l}");
        assert!(text.contains("available 7.50 s after its create"), "{text}");
        assert!(
            text.contains("(so the resolution is 0.3 ms/s): server 10.0 + hollow nodes 5.0 + benchmark 0.1 + rest of the machine 84.9 ms/s"),
            "{text}"
        );
        assert!(text.contains("Goals met: 1 of 1."), "{text}");

        let r = report(900);
        let text = r.to_string();
        assert!(!r.all_goals_met());
        let l = line(&text, "server CPU while idle (ms per second)");
        assert!(l.contains("NO (above by 10.0 ms/s, 50%)"), "{l}");
    }

    #[test]
    fn config_validation() {
        assert!(IdleBenchConfig::default().validate().is_ok());
        let short = IdleBenchConfig {
            window: Duration::from_millis(500),
            ..IdleBenchConfig::default()
        };
        assert!(short.validate().is_err());
        let crowded = IdleBenchConfig {
            nodes: 5,
            ..IdleBenchConfig::default()
        };
        assert!(crowded.validate().is_err());
    }
}
