//! The results of the scheduler benchmark and the table they print as.

use std::fmt;
use std::time::{Duration, Instant};

use super::{
    SchedulerBenchConfig, NODE_CPU, NODE_MAX_PODS, NODE_MEMORY_GIB, PODS_PER_NODE, POD_NAMESPACE,
};
use crate::apiserver::{all_met, goal_table, p50_p99, Goal, Row};
use crate::cluster::Cpu;
use crate::report::fmt_num;
use crate::stats::rate;

/// Goal: pods bound per second on 500 nodes.
pub const GOAL_PODS_PER_SEC_500: f64 = 1_000.0;
/// Goal: pods bound per second on 5,000 nodes.
pub const GOAL_PODS_PER_SEC_5000: f64 = 400.0;

/// The goal for a node count: only 500 and 5,000 nodes have one.
pub fn goal_for(nodes: usize) -> Option<f64> {
    match nodes {
        500 => Some(GOAL_PODS_PER_SEC_500),
        5_000 => Some(GOAL_PODS_PER_SEC_5000),
        _ => None,
    }
}

/// Below this many pods left unbound when the last create was acknowledged,
/// the rate "once all pods exist" is not worth reporting: the scheduler kept
/// up with the creates.
const MIN_BACKLOG: usize = 100;

/// What one node count measured.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeRun {
    /// Hollow nodes, all Ready before the first create.
    pub nodes: usize,
    /// Pods created and bound.
    pub pods: usize,
    /// From the clients' release (first create) until the watch saw the last
    /// pod bound.
    pub span: Duration,
    /// From the clients' release until the last create was acknowledged.
    pub create_span: Duration,
    /// Pods seen bound by the time the last create was acknowledged.
    pub bound_when_created: usize,
    /// From the last create's acknowledgement until the last pod was seen bound.
    pub tail: Duration,
    /// Median time from a pod's create acknowledgement to the watch seeing it
    /// bound (0 when the binding was seen before the acknowledgement).
    pub latency_p50: Duration,
    /// 99th percentile of the same.
    pub latency_p99: Duration,
    /// CPU over the span.
    pub cpu: Cpu,
    /// How long the nodes took to register and become Ready.
    pub nodes_ready_after: Duration,
    /// Failed bindings in the server's log by the end of the span (the
    /// scheduler logs them at debug level only: `WHARF_LOG=info,scheduler=debug`).
    pub failed_bindings: usize,
}

impl NodeRun {
    /// Compute a run's figures from the times the benchmark recorded.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn measure(
        nodes: usize,
        pods: usize,
        start: Instant,
        created: Instant,
        all_bound: Instant,
        bound_times: &[Instant],
        latencies: Vec<Duration>,
        cpu: Cpu,
        nodes_ready_after: Duration,
    ) -> NodeRun {
        let (latency_p50, latency_p99) = p50_p99(latencies);
        NodeRun {
            nodes,
            pods,
            span: all_bound.saturating_duration_since(start),
            create_span: created.saturating_duration_since(start),
            bound_when_created: bound_times.iter().filter(|&&t| t <= created).count(),
            tail: all_bound.saturating_duration_since(created),
            latency_p50,
            latency_p99,
            cpu,
            nodes_ready_after,
            failed_bindings: 0,
        }
    }

    /// Pods bound per second over the whole span.
    pub fn pods_per_sec(&self) -> f64 {
        rate(self.pods, self.span)
    }

    /// Pods bound per second once every pod existed; `None` when fewer than
    /// [`MIN_BACKLOG`] were left then.
    pub fn backlog_per_sec(&self) -> Option<f64> {
        let left = self.pods.saturating_sub(self.bound_when_created);
        (left >= MIN_BACKLOG && !self.tail.is_zero()).then(|| rate(left, self.tail))
    }

    /// Server CPU per bound pod, in milliseconds.
    pub fn server_ms_per_pod(&self) -> Option<f64> {
        Some(self.cpu.server?.as_secs_f64() * 1000.0 / self.pods.max(1) as f64)
    }

    fn rows(&self) -> Vec<Row> {
        let n = fmt_num(self.nodes as f64, 0);
        let mut rows = vec![Row {
            label: format!("pods/s, first create to all bound ({n} nodes)"),
            value: self.pods_per_sec(),
            decimals: 0,
            unit: "",
            goal: goal_for(self.nodes).map(Goal::AtLeast),
        }];
        if let Some(r) = self.backlog_per_sec() {
            rows.push(Row {
                label: format!("pods/s once all pods existed ({n} nodes)"),
                value: r,
                decimals: 0,
                unit: "",
                goal: None,
            });
        }
        rows.push(Row {
            label: format!("creates/s ({n} nodes)"),
            value: rate(self.pods, self.create_span),
            decimals: 0,
            unit: "",
            goal: None,
        });
        for (what, d) in [("p50", self.latency_p50), ("p99", self.latency_p99)] {
            rows.push(Row {
                label: format!("create ack to bound {what} (ms, {n} nodes)"),
                value: d.as_secs_f64() * 1000.0,
                decimals: 1,
                unit: " ms",
                goal: None,
            });
        }
        if let Some(c) = self.cpu.cores(self.cpu.server) {
            rows.push(Row {
                label: format!("server CPU over the span (cores, {n} nodes)"),
                value: c,
                decimals: 2,
                unit: "",
                goal: None,
            });
        }
        if let Some(ms) = self.server_ms_per_pod() {
            rows.push(Row {
                label: format!("server CPU per pod (ms, {n} nodes)"),
                value: ms,
                decimals: 3,
                unit: " ms",
                goal: None,
            });
        }
        rows
    }

    fn describe(&self) -> String {
        let backlog = match self.backlog_per_sec() {
            Some(r) => format!(
                "{} pods were still unbound then and were bound in {:.2} s ({} pods/s)",
                fmt_num((self.pods - self.bound_when_created) as f64, 0),
                self.tail.as_secs_f64(),
                fmt_num(r, 0)
            ),
            None => format!(
                "the scheduler had kept up ({} bound; the last bound {:.2} s later)",
                fmt_num(self.bound_when_created as f64, 0),
                self.tail.as_secs_f64()
            ),
        };
        let failed = if self.failed_bindings > 0 {
            format!(
                " The server logged {} failed bindings (a 409 means the pod was bound already: the \
                 scheduler placed it twice).",
                fmt_num(self.failed_bindings as f64, 0)
            )
        } else {
            String::new()
        };
        format!(
            "{} nodes (Ready {:.1} s after the hollow process started): {} pods bound {:.2} s after the first \
             create; the creates took {:.2} s, and {backlog}. CPU over the span: {}.{failed}",
            fmt_num(self.nodes as f64, 0),
            self.nodes_ready_after.as_secs_f64(),
            fmt_num(self.pods as f64, 0),
            self.span.as_secs_f64(),
            self.create_span.as_secs_f64(),
            self.cpu.describe()
        )
    }
}

/// What the scheduler benchmark measured, one run per node count.
#[derive(Clone, Debug)]
pub struct SchedulerReport {
    /// The workload that was run.
    pub config: SchedulerBenchConfig,
    /// Size of a pod's JSON as sent.
    pub pod_bytes: usize,
    /// The runs, in the order of `config.nodes`.
    pub runs: Vec<NodeRun>,
}

impl SchedulerReport {
    fn rows(&self) -> Vec<Row> {
        self.runs.iter().flat_map(NodeRun::rows).collect()
    }

    /// Whether every goal was met.
    pub fn all_goals_met(&self) -> bool {
        all_met(&self.rows())
    }
}

impl fmt::Display for SchedulerReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (table, goals, met) = goal_table(&self.rows());
        f.write_str(&table)?;
        writeln!(f)?;
        let c = &self.config;
        writeln!(
            f,
            "Setup: for each node count, a fresh `wharf server` (embedded SQLite, --disable-agent \
             --disable-controller-manager: API server and scheduler) started by the benchmark as a child \
             process on a fresh data directory, listening on 127.0.0.1 only, and a `wharf hollow-nodes` child \
             process with that many nodes ({NODE_CPU} CPUs, {NODE_MEMORY_GIB} GiB, {NODE_MAX_PODS} pods each; \
             Leases renewed every 10 s). Every node is Ready before the clock starts. {} The benchmark process \
             creates {} pods in namespace {POD_NAMESPACE} ({} bytes of JSON each: two containers requesting \
             300m CPU and 320Mi in all, so {PODS_PER_NODE} fit a node; no nodeName) from {} clients, one request \
             in flight each, bodies serialized before the clock starts, over HTTPS with the admin certificate. \
             A watch on the namespace, opened before the first create, records when each pod is first seen \
             with spec.nodeName set. pods/s is the pods over the span from the first create to the last \
             pod seen bound. Server, hollow nodes and benchmark share this machine's {} CPUs.",
            if c.run_pods {
                "The hollow nodes take bound pods to Running during the span (--run-pods), so their status \
                 writes load the server too."
            } else {
                "The hollow nodes do not start pods (as upstream's scheduler_perf, which runs no kubelets), \
                 so the span measures scheduling and binding, not pod start-up; --run-pods includes it."
            },
            fmt_num(c.pods as f64, 0),
            self.pod_bytes,
            c.clients,
            std::thread::available_parallelism().map_or(0, |n| n.get())
        )?;
        for r in &self.runs {
            writeln!(f, "{}", r.describe())?;
        }
        writeln!(
            f,
            "goals: >= {} pods/s on 500 nodes, >= {} pods/s on 5,000 nodes (other node counts have none). \
             Goals met: {met} of {goals}.",
            fmt_num(GOAL_PODS_PER_SEC_500, 0),
            fmt_num(GOAL_PODS_PER_SEC_5000, 0),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(nodes: usize, span_ms: u64, bound_when_created: usize) -> NodeRun {
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let created = at(4_000);
        let bound: Vec<Instant> = (0..10_000)
            .map(|i| {
                if i < bound_when_created {
                    at(1)
                } else {
                    at(span_ms)
                }
            })
            .collect();
        let s = Duration::from_secs;
        NodeRun::measure(
            nodes,
            10_000,
            t0,
            created,
            at(span_ms),
            &bound,
            (1..=100).map(Duration::from_millis).collect(),
            Cpu {
                wall: Duration::from_millis(span_ms),
                server: Some(s(8)),
                hollow: Some(s(1)),
                bench: Some(s(2)),
                machine: Some(s(12)),
            },
            s(3),
        )
    }

    fn report(runs: Vec<NodeRun>) -> SchedulerReport {
        SchedulerReport {
            config: SchedulerBenchConfig::default(),
            pod_bytes: 2_050,
            runs,
        }
    }

    fn line<'a>(text: &'a str, start: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{text}"))
    }

    #[test]
    fn measures_span_backlog_and_latency() {
        let r = run(500, 8_000, 6_000);
        assert_eq!(r.span, Duration::from_secs(8));
        assert_eq!(r.create_span, Duration::from_secs(4));
        assert_eq!(r.tail, Duration::from_secs(4));
        assert_eq!(r.pods_per_sec(), 1_250.0);
        // 4,000 pods left when the creates were done, bound in 4 s.
        assert_eq!(r.backlog_per_sec(), Some(1_000.0));
        assert_eq!(r.latency_p50, Duration::from_millis(50));
        assert_eq!(r.latency_p99, Duration::from_millis(99));
        assert_eq!(r.server_ms_per_pod(), Some(0.8));
        // Kept up: no rate once all pods existed.
        let kept_up = run(500, 4_100, 9_950);
        assert_eq!(kept_up.backlog_per_sec(), None);
    }

    #[test]
    fn goals_per_node_count() {
        assert_eq!(goal_for(500), Some(1_000.0));
        assert_eq!(goal_for(5_000), Some(400.0));
        assert_eq!(goal_for(100), None);
        let r = report(vec![run(500, 8_000, 6_000), run(5_000, 20_000, 2_000)]);
        let text = r.to_string();
        assert!(r.all_goals_met(), "{text}");
        let l = line(&text, "pods/s, first create to all bound (500 nodes)");
        assert!(
            l.contains("1,250") && l.contains(">= 1,000") && l.ends_with("yes"),
            "{l}"
        );
        let l = line(&text, "pods/s, first create to all bound (5,000 nodes)");
        assert!(l.contains("500") && l.contains(">= 400"), "{l}");
        let l = line(&text, "pods/s once all pods existed (5,000 nodes)");
        // 8,000 left after 4 s of creates, bound over the next 16 s.
        assert!(l.contains(" 500 ") && l.trim_end().ends_with('-'), "{l}");
        assert!(text.contains("Goals met: 2 of 2."), "{text}");
        assert!(text.contains("do not start pods"), "{text}");
        assert!(
            text.contains("server 1.00 + hollow nodes 0.12 + benchmark 0.25"),
            "{text}"
        );
    }

    #[test]
    fn missed_goal_and_no_goal() {
        let r = report(vec![run(500, 20_000, 2_000), run(50, 8_000, 9_990)]);
        let text = r.to_string();
        assert!(!r.all_goals_met());
        let l = line(&text, "pods/s, first create to all bound (500 nodes)");
        assert!(l.contains("NO (below by 500, 50%)"), "{l}");
        let l = line(&text, "pods/s, first create to all bound (50 nodes)");
        assert!(l.trim_end().ends_with('-'), "{l}");
        assert!(!text.contains("pods/s once all pods existed (50 nodes)"));
        assert!(
            text.contains("the scheduler had kept up (9,990 bound"),
            "{text}"
        );
        assert!(text.contains("Goals met: 0 of 1."), "{text}");
    }
}
