//! The results of the Deployment benchmark and the table they print as.

use std::fmt;

use super::{
    DeploymentBenchConfig, Rollout, DEPLOY_NAMESPACE, NODE_CPU, NODE_MAX_PODS, NODE_MEMORY_GIB,
};
use crate::apiserver::{all_met, goal_table, Goal, Row};
use crate::report::fmt_num;

impl Rollout {
    /// The milestones as table rows; none has a time goal (the issue sets
    /// none), but every replica must be seen created, bound and Ready.
    pub(crate) fn rows(&self) -> Vec<Row> {
        let n = fmt_num(self.replicas as f64, 0);
        let secs = |label: String, d: std::time::Duration| Row {
            label,
            value: d.as_secs_f64(),
            decimals: 2,
            unit: " s",
            goal: None,
        };
        vec![
            secs(format!("create to {n} pods created (s)"), self.all_created),
            secs(format!("create to {n} pods bound (s)"), self.all_bound),
            secs(
                format!("create to {n} pods Running and Ready (s)"),
                self.all_ready,
            ),
            secs(
                format!("create to Deployment {n}/{n} available (s)"),
                self.available,
            ),
            Row {
                label: "pods Running and Ready per second (over the whole rollout)".into(),
                value: crate::stats::rate(self.replicas, self.available),
                decimals: 0,
                unit: "",
                goal: None,
            },
            Row {
                label: "pods replaced (seen beyond the replicas, or deleted)".into(),
                value: (self.pods_seen.saturating_sub(self.replicas)).max(self.pods_deleted) as f64,
                decimals: 0,
                unit: "",
                goal: Some(Goal::AtMost(0.0)),
            },
        ]
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "Rollout: the watch saw {} pods ({} deleted); the server logged {} WARN/ERROR lines and the hollow \
             nodes {}. CPU from the create until available: {}.",
            fmt_num(self.pods_seen as f64, 0),
            self.pods_deleted,
            self.server_warnings,
            self.hollow_warnings,
            self.cpu.describe()
        )
    }
}

/// What the Deployment benchmark measured.
#[derive(Clone, Debug)]
pub struct DeploymentReport {
    /// The workload that was run.
    pub config: DeploymentBenchConfig,
    /// The rollout's milestones.
    pub rollout: Rollout,
}

impl DeploymentReport {
    /// Whether every goal was met (only the correctness row has one).
    pub fn all_goals_met(&self) -> bool {
        all_met(&self.rollout.rows())
    }
}

/// The setup text shared with the idle benchmark.
pub(crate) fn setup(replicas: usize, nodes: usize) -> String {
    format!(
        "Setup: a fresh `wharf server` (embedded SQLite, --disable-agent; API server, scheduler and controller \
         manager) started by the benchmark as a child process on a fresh data directory, listening on 127.0.0.1 \
         only, and a `wharf hollow-nodes` child process with {} nodes ({NODE_CPU} CPUs, {NODE_MEMORY_GIB} GiB, \
         {NODE_MAX_PODS} pods each; they take bound pods to Running and Ready at once, and renew Leases every \
         10 s), all Ready before the clock starts. The benchmark creates one Deployment of {} replicas in \
         namespace {DEPLOY_NAMESPACE} (two containers, 25m CPU and 64Mi requested, rolling update 25%/25%) and \
         watches its pods from before the create: created = the watch has seen that many pods, bound = with \
         spec.nodeName, Running and Ready = phase Running and condition Ready=True; available = the \
         Deployment's status.availableReplicas, read every 50 ms once every pod is Ready. Server, hollow nodes \
         and benchmark share this machine's {} CPUs.",
        fmt_num(nodes as f64, 0),
        fmt_num(replicas as f64, 0),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    )
}

impl fmt::Display for DeploymentReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (table, goals, met) = goal_table(&self.rollout.rows());
        f.write_str(&table)?;
        writeln!(f)?;
        writeln!(f, "{}", setup(self.config.replicas, self.config.nodes))?;
        writeln!(f, "{}", self.rollout.describe())?;
        writeln!(
            f,
            "goals: the issue sets no time for this rollout; the run fails if the Deployment is not available \
             within {} s, and no pod may be replaced. Goals met: {met} of {goals}.",
            self.config.timeout.as_secs()
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::cluster::Cpu;

    fn rollout() -> Rollout {
        let s = Duration::from_secs;
        Rollout {
            replicas: 3_000,
            all_created: s(10),
            all_bound: s(11),
            all_ready: s(14),
            available: s(15),
            pods_seen: 3_000,
            pods_deleted: 0,
            cpu: Cpu {
                wall: s(15),
                server: Some(s(15)),
                hollow: Some(s(3)),
                bench: Some(s(1)),
                machine: Some(s(20)),
            },
            server_warnings: 0,
            hollow_warnings: 2,
        }
    }

    fn line<'a>(text: &'a str, start: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{text}"))
    }

    #[test]
    fn milestones_and_goal() {
        let r = DeploymentReport {
            config: DeploymentBenchConfig::default(),
            rollout: rollout(),
        };
        let text = r.to_string();
        assert!(r.all_goals_met(), "{text}");
        let l = line(&text, "create to 3,000 pods Running and Ready (s)");
        assert!(l.contains("| 14.00 |"), "{l}");
        let l = line(&text, "create to Deployment 3,000/3,000 available (s)");
        assert!(
            l.contains("| 15.00 |") && l.trim_end().ends_with('-'),
            "{l}"
        );
        let l = line(&text, "pods Running and Ready per second");
        assert!(l.contains(" 200 "), "{l}");
        assert!(text.contains("with 100 nodes"), "{text}");
        assert!(text.contains("Goals met: 1 of 1."), "{text}");
        assert!(text.contains("server 1.00 + hollow nodes 0.20"), "{text}");
    }

    #[test]
    fn replaced_pods_miss_the_goal() {
        let mut ro = rollout();
        ro.pods_seen = 3_004;
        ro.pods_deleted = 4;
        let r = DeploymentReport {
            config: DeploymentBenchConfig::default(),
            rollout: ro,
        };
        let text = r.to_string();
        assert!(!r.all_goals_met());
        let l = line(&text, "pods replaced");
        assert!(l.contains("NO (above by 4)"), "{l}");
    }
}
