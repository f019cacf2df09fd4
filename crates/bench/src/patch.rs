//! The patch benchmark: `wharf server` started as a child process (as for
//! [`crate::apiserver`]) and sent concurrent PATCHes of Deployments over HTTPS
//! on loopback by the `kube` client.
//!
//! [`run_patch_bench`] runs four phases, each with its own freshly created
//! Deployments: strategic-merge patches from every client to one Deployment,
//! server-side applies (one field manager per client, `force=true`) to one
//! Deployment, then both again with one Deployment per client. Every response
//! must be 200 and hold the change it made; failures are counted, not fatal,
//! and after each phase the objects are read back and checked for lost
//! updates. The returned [`PatchReport`] prints as a table against the goals.
//! Progress goes to stderr.
//!
//! The caller provides the tokio runtime; it should be multi-threaded.

#[path = "patch_bodies.rs"]
mod bodies;
#[path = "patch_inproc.rs"]
mod inproc;
#[path = "patch_report.rs"]
mod report;
#[path = "patch_workload.rs"]
mod workload;

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::apiserver::with_server;

pub use inproc::{run_in_process, InProcessPhase, InProcessReport};
pub use report::{PatchReport, PhaseResults, GOAL_PATCHES_PER_SEC, GOAL_PATCH_P99};

/// Namespace of the patched Deployments.
pub const PATCH_NAMESPACE: &str = "wharf-bench-patch";
/// Untimed patches each client sends before a phase's clock starts, so that
/// its connection is open and the server has seen the object.
pub const WARMUP_PER_CLIENT: usize = 5;

/// The workload of [`run_patch_bench`].
#[derive(Clone, Debug)]
pub struct PatchBenchConfig {
    /// Timed PATCH requests per phase, all clients together.
    pub requests: usize,
    /// Concurrent client tasks; each has one request in flight at a time.
    pub clients: usize,
    /// Directory for the server's temporary data directory; the system
    /// temporary directory if `None`.
    pub work_dir: Option<PathBuf>,
}

impl Default for PatchBenchConfig {
    /// Four phases of 20,000 patches: about 40 s at the goal's rate.
    fn default() -> Self {
        PatchBenchConfig {
            requests: 20_000,
            clients: 32,
            work_dir: None,
        }
    }
}

impl PatchBenchConfig {
    fn validate(&self) -> Result<()> {
        anyhow::ensure!(self.requests > 0, "requests must be positive");
        anyhow::ensure!(self.clients > 0, "clients must be positive");
        // Per-client Deployment names are numbered with two digits.
        anyhow::ensure!(self.clients <= 100, "clients must be at most 100");
        Ok(())
    }

    /// Client tasks a phase runs: never more than there are requests.
    pub fn tasks(&self) -> usize {
        self.clients.min(self.requests)
    }
}

/// How a phase changes its Deployments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/strategic-merge-patch+json`, one field manager for all.
    Strategic,
    /// `application/apply-patch+yaml` with `force=true`, a field manager per client.
    Apply,
}

/// Which Deployments a phase's clients patch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// All clients patch the same Deployment.
    Shared,
    /// Each client patches its own Deployment.
    PerClient,
}

impl fmt::Display for PatchKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PatchKind::Strategic => "SMP",
            PatchKind::Apply => "SSA",
        })
    }
}

/// A duration in milliseconds, for the printed figures.
fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Start `wharf_exe server` on a fresh data directory and a free loopback port,
/// run the four patch phases against it over HTTPS, and stop it (by PID).
/// Fails if the setup fails (creating the namespace or a Deployment, a
/// warm-up patch) or an object cannot be read back; failed timed patches are
/// counted in the report instead.
pub async fn run_patch_bench(cfg: &PatchBenchConfig, wharf_exe: &Path) -> Result<PatchReport> {
    cfg.validate()?;
    with_server(
        wharf_exe,
        cfg.work_dir.as_deref(),
        "wharf-patchbench-",
        async |client, server| workload::run(client, cfg, server).await,
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation() {
        assert!(PatchBenchConfig::default().validate().is_ok());
        for (cfg, what) in [
            (
                PatchBenchConfig {
                    requests: 0,
                    ..PatchBenchConfig::default()
                },
                "requests",
            ),
            (
                PatchBenchConfig {
                    clients: 0,
                    ..PatchBenchConfig::default()
                },
                "clients",
            ),
            (
                PatchBenchConfig {
                    clients: 101,
                    ..PatchBenchConfig::default()
                },
                "clients",
            ),
        ] {
            assert!(cfg.validate().unwrap_err().to_string().contains(what));
        }
        let small = PatchBenchConfig {
            requests: 10,
            ..PatchBenchConfig::default()
        };
        assert_eq!(small.tasks(), 10);
        assert_eq!(PatchBenchConfig::default().tasks(), 32);
    }
}
