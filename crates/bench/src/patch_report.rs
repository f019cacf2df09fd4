//! The results of the patch benchmark and the table they print as.

use std::fmt;
use std::time::Duration;

use super::{ms, PatchBenchConfig, PatchKind, Target, PATCH_NAMESPACE, WARMUP_PER_CLIENT};
use crate::apiserver::{all_met, goal_table, Goal, PhaseCpu, Row};
use crate::report::fmt_num;

/// Goal: patches per second on one Deployment, from
/// [`PatchBenchConfig::clients`] concurrent clients, for either patch type.
pub const GOAL_PATCHES_PER_SEC: f64 = 2_000.0;
/// Goal: 99th-percentile latency of one patch on one Deployment.
pub const GOAL_PATCH_P99: Duration = Duration::from_millis(20);

/// What one phase measured.
#[derive(Clone, Debug)]
pub struct PhaseResults {
    /// The patch type.
    pub kind: PatchKind,
    /// Whether the clients shared one Deployment.
    pub target: Target,
    /// Concurrent client tasks.
    pub clients: usize,
    /// Deployments patched.
    pub objects: usize,
    /// Timed patches sent.
    pub requests: usize,
    /// Timed patches that answered 200 with their change in the object.
    pub ok: usize,
    /// Timed patches that failed: a transport error, another status, or a
    /// 200 without the change.
    pub failed: usize,
    /// Untimed warm-up patches sent before the clock started.
    pub warmups: usize,
    /// Warm-up patches that failed, as `failed` counts them.
    pub warmup_failed: usize,
    /// Failures (warm-up included) by class, e.g. `HTTP 409 Conflict`, most
    /// frequent first.
    pub failures: Vec<(String, usize)>,
    /// The first few failures in full, warm-up included.
    pub errors: Vec<String>,
    /// What the objects read back after the phase got wrong (lost updates,
    /// missing field managers, torn shared fields).
    pub mismatches: Vec<String>,
    /// Successful patches per second, all clients together.
    pub per_sec: f64,
    /// Median latency of a successful patch.
    pub p50: Duration,
    /// 99th-percentile latency of a successful patch.
    pub p99: Duration,
    /// The slowest successful patch.
    pub max: Duration,
    /// From the release of the clients until the last one finished.
    pub took: Duration,
    /// CPU during the timed part.
    pub cpu: PhaseCpu,
    /// Mean size of a patch body.
    pub patch_bytes: usize,
    /// Size of the largest Deployment's JSON as read back after the phase.
    pub object_bytes: usize,
    /// Entries in the (first) Deployment's managedFields after the phase.
    pub managed_fields: Option<usize>,
}

impl PhaseResults {
    /// The phase in a few words, e.g. `SSA, 32 managers on 1 Deployment`.
    fn what(&self) -> String {
        let who = match self.kind {
            PatchKind::Strategic => "clients",
            PatchKind::Apply => "managers",
        };
        match self.target {
            Target::Shared => format!("{} {who} on 1 Deployment", self.clients),
            Target::PerClient => format!("{} {who}, a Deployment each", self.clients),
        }
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "{} ({}): {} timed patches after {} untimed ones per client ({} of which failed), {} succeeded and \
             {} failed ({:.2}%), in {:.2} s; slowest {:.3} ms; {} bytes per patch; afterwards the Deployment was {} bytes of JSON \
             with {} managedFields entries; CPU: {}.",
            self.kind,
            self.what(),
            fmt_num(self.requests as f64, 0),
            WARMUP_PER_CLIENT,
            self.warmup_failed,
            fmt_num(self.ok as f64, 0),
            fmt_num(self.failed as f64, 0),
            self.failed as f64 * 100.0 / self.requests.max(1) as f64,
            self.took.as_secs_f64(),
            ms(self.max),
            self.patch_bytes,
            self.object_bytes,
            self.managed_fields
                .map_or_else(|| "?".into(), |n| n.to_string()),
            self.cpu.describe(),
        );
        if !self.failures.is_empty() {
            s.push_str(&format!(
                " Failures: {}; first: {}.",
                self.failures
                    .iter()
                    .map(|(class, n)| format!("{n} x {class}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                self.errors.join("; ")
            ));
        }
        if !self.mismatches.is_empty() {
            s.push_str(&format!(
                " Read back: {}.",
                self.mismatches
                    .iter()
                    .take(5)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        s
    }
}

/// What the patch benchmark measured.
#[derive(Clone, Debug)]
pub struct PatchReport {
    /// The workload that was run.
    pub config: PatchBenchConfig,
    /// Size of a Deployment's JSON as created.
    pub deployment_bytes: usize,
    /// Strategic-merge patches, every client on one Deployment.
    pub smp: PhaseResults,
    /// Server-side applies, every client (its own manager) on one Deployment.
    pub ssa: PhaseResults,
    /// Strategic-merge patches, a Deployment per client.
    pub smp_spread: PhaseResults,
    /// Server-side applies, a Deployment per client.
    pub ssa_spread: PhaseResults,
    /// Server VmRSS right after `/readyz`, in KiB.
    pub rss_start_kib: u64,
    /// Server VmRSS after the last phase, in KiB.
    pub rss_end_kib: u64,
    /// Server VmHWM (peak RSS) after the last phase, in KiB.
    pub hwm_end_kib: u64,
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl PatchReport {
    fn phases(&self) -> [&PhaseResults; 4] {
        [&self.smp, &self.ssa, &self.smp_spread, &self.ssa_spread]
    }

    fn rows(&self) -> Vec<Row> {
        let mut rows = Vec::new();
        for p in self.phases() {
            // The goals are for one contended Deployment; the spread
            // phases are there to compare against.
            let goals = p.target == Target::Shared;
            let what = p.what();
            rows.push(Row {
                label: format!("{} patches/s ({what})", p.kind),
                value: p.per_sec,
                decimals: 0,
                unit: "",
                goal: goals.then_some(Goal::AtLeast(GOAL_PATCHES_PER_SEC)),
            });
            rows.push(Row {
                label: format!("{} p50 (ms, {what})", p.kind),
                value: ms(p.p50),
                decimals: 3,
                unit: " ms",
                goal: None,
            });
            rows.push(Row {
                label: format!("{} p99 (ms, {what})", p.kind),
                value: ms(p.p99),
                decimals: 3,
                unit: " ms",
                goal: goals.then_some(Goal::AtMost(ms(GOAL_PATCH_P99))),
            });
        }
        let requests: usize = self.phases().iter().map(|p| p.requests).sum();
        let warmups: usize = self.phases().iter().map(|p| p.warmups).sum();
        rows.push(Row {
            label: format!(
                "failed patches (all phases, of {} timed + {warmups} warm-up)",
                fmt_num(requests as f64, 0)
            ),
            value: self
                .phases()
                .iter()
                .map(|p| p.failed + p.warmup_failed)
                .sum::<usize>() as f64,
            decimals: 0,
            unit: "",
            goal: Some(Goal::AtMost(0.0)),
        });
        rows.push(Row {
            label: "lost updates and other read-back problems".into(),
            value: self
                .phases()
                .iter()
                .map(|p| p.mismatches.len())
                .sum::<usize>() as f64,
            decimals: 0,
            unit: "",
            goal: Some(Goal::AtMost(0.0)),
        });
        rows.push(Row {
            label: "server RSS after the run (MiB)".into(),
            value: mib(self.rss_end_kib),
            decimals: 1,
            unit: " MiB",
            goal: None,
        });
        rows
    }

    /// Whether every goal was met (the error rows included).
    pub fn all_goals_met(&self) -> bool {
        all_met(&self.rows())
    }
}

impl fmt::Display for PatchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (table, goals, met) = goal_table(&self.rows());
        f.write_str(&table)?;
        writeln!(f)?;
        writeln!(
            f,
            "Setup: `wharf server` (embedded SQLite, --disable-agent --disable-scheduler --disable-controller-manager) started by the benchmark as a \
             child process on a fresh data directory, listening on 127.0.0.1 only; the client is the `kube` crate in \
             the benchmark process, HTTPS with the admin client certificate, HTTP/1.1, one connection per request in \
             flight. Client and server share this machine's {} CPUs. Each client task has one PATCH in flight at a \
             time; bodies are serialized before the clock starts and every response (the patched object) is timed to \
             its last byte, then checked to be a 200 holding the patch's change. Rates count successful patches only; \
             latencies are of successful patches.",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        )?;
        writeln!(
            f,
            "Objects: every phase creates its own Deployments in namespace {PATCH_NAMESPACE}, {} bytes of JSON each \
             (3 replicas, rolling update, 2 containers with env, ports, resources and a probe). Every patch sets the \
             shared bench.wharf.dev/revision annotation, the client's own bench.wharf.dev/client-NN annotation, and the \
             `web` container's image tag and BENCH_REVISION env var (containers and env are keyed lists, merged by \
             name). SMP: Content-Type application/strategic-merge-patch+json, fieldManager bench-smp, no \
             resourceVersion: a conflict is the server's to retry (upstream's store retries the read-modify-write \
             until it commits, so such a patch never gets a 409). SSA: Content-Type application/apply-patch+yaml (a JSON body), \
             fieldManager bench-NN per client, force=true (the shared fields change owner on every apply), each \
             client also owning its own label.",
            self.deployment_bytes,
        )?;
        for p in self.phases() {
            writeln!(f, "{}", p.describe())?;
        }
        writeln!(
            f,
            "Read back after each phase: the generation must be 1 + the successful patches (each changed the \
             annotations and the template), every client's own annotation must hold its last patch, the shared \
             annotation, env var and image must come from one patch, and every field manager must be in \
             managedFields (counts that a failed patch makes uncertain are skipped)."
        )?;
        writeln!(
            f,
            "RSS: VmRSS of the server from /proc/<pid>/status: {:.1} MiB after /readyz, {:.1} MiB after the last \
             phase, peak (VmHWM) {:.1} MiB.",
            mib(self.rss_start_kib),
            mib(self.rss_end_kib),
            mib(self.hwm_end_kib),
        )?;
        writeln!(
            f,
            "goals (one Deployment, {} clients): >= {} patches/s and p99 <= {} ms for SMP and for SSA; no failed \
             patch and no lost update. Goals met: {met} of {goals}.",
            self.config.clients,
            fmt_num(GOAL_PATCHES_PER_SEC, 0),
            GOAL_PATCH_P99.as_millis(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase(kind: PatchKind, target: Target, per_sec: f64, p99_ms: u64) -> PhaseResults {
        PhaseResults {
            kind,
            target,
            clients: 32,
            objects: if target == Target::Shared { 1 } else { 32 },
            requests: 20_000,
            ok: 20_000,
            failed: 0,
            warmups: 160,
            warmup_failed: 0,
            failures: Vec::new(),
            errors: Vec::new(),
            mismatches: Vec::new(),
            per_sec,
            p50: Duration::from_millis(5),
            p99: Duration::from_millis(p99_ms),
            max: Duration::from_millis(40),
            took: Duration::from_secs(8),
            cpu: PhaseCpu::default(),
            patch_bytes: 330,
            object_bytes: 9_000,
            managed_fields: Some(33),
        }
    }

    fn report() -> PatchReport {
        PatchReport {
            config: PatchBenchConfig::default(),
            deployment_bytes: 2_500,
            smp: phase(PatchKind::Strategic, Target::Shared, 2_500.0, 15),
            ssa: phase(PatchKind::Apply, Target::Shared, 2_100.0, 19),
            // No goals on the spread phases: these do not count.
            smp_spread: phase(PatchKind::Strategic, Target::PerClient, 100.0, 90),
            ssa_spread: phase(PatchKind::Apply, Target::PerClient, 100.0, 90),
            rss_start_kib: 30 * 1024,
            rss_end_kib: 80 * 1024,
            hwm_end_kib: 90 * 1024,
        }
    }

    fn line<'a>(text: &'a str, start: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{text}"))
    }

    #[test]
    fn goals_met() {
        let r = report();
        let text = r.to_string();
        assert!(r.all_goals_met(), "{text}");
        let smp = line(&text, "SMP patches/s (32 clients on 1 Deployment)");
        assert!(smp.contains("2,500"), "{smp}");
        assert!(smp.contains(">= 2,000"), "{smp}");
        assert!(smp.trim_end().ends_with("| yes"), "{smp}");
        let p99 = line(&text, "SSA p99 (ms, 32 managers on 1 Deployment)");
        assert!(p99.contains("<= 20 ms"), "{p99}");
        let spread = line(&text, "SMP patches/s (32 clients, a Deployment each)");
        assert!(spread.trim_end().ends_with("| -"), "{spread}");
        let failed = line(
            &text,
            "failed patches (all phases, of 80,000 timed + 640 warm-up)",
        );
        assert!(failed.trim_end().ends_with("| yes"), "{failed}");
        assert!(text.contains("Goals met: 6 of 6."), "{text}");
        assert!(
            text.contains("20,000 timed patches after 5 untimed ones per client (0 of which failed), 20,000 succeeded and 0 failed (0.00%)"),
            "{text}"
        );
    }

    #[test]
    fn errors_and_misses_are_shown() {
        let mut r = report();
        r.ssa.per_sec = 1_500.0;
        r.smp.p99 = Duration::from_millis(30);
        r.smp.failed = 17;
        r.smp.warmup_failed = 3;
        r.smp.ok = 19_983;
        r.smp.failures = vec![
            ("HTTP 409 Conflict".into(), 19),
            ("HTTP 500 Internal Server Error".into(), 1),
        ];
        r.smp.errors = vec!["client 3, patch 9: HTTP 500 Internal Server Error: boom".into()];
        r.ssa_spread.mismatches = vec![
            "patch-ssa-04: generation Some(7), expected 8 (1 + 7 patches): an update was lost"
                .into(),
        ];
        let text = r.to_string();
        assert!(!r.all_goals_met());
        let ssa = line(&text, "SSA patches/s (32 managers on 1 Deployment)");
        assert!(ssa.contains("NO (below by 500, 25%)"), "{ssa}");
        let smp = line(&text, "SMP p99 (ms, 32 clients on 1 Deployment)");
        assert!(smp.contains("NO (above by 10.000 ms, 50%)"), "{smp}");
        let failed = line(
            &text,
            "failed patches (all phases, of 80,000 timed + 640 warm-up)",
        );
        assert!(failed.contains("NO (above by 20)"), "{failed}");
        let lost = line(&text, "lost updates and other read-back problems");
        assert!(lost.contains("NO (above by 1)"), "{lost}");
        assert!(text.contains("Goals met: 2 of 6."), "{text}");
        assert!(
            text.contains("per client (3 of which failed), 19,983 succeeded and 17 failed (0.09%)"),
            "{text}"
        );
        assert!(
            text.contains(
                "Failures: 19 x HTTP 409 Conflict, 1 x HTTP 500 Internal Server Error; \
                 first: client 3, patch 9: HTTP 500"
            ),
            "{text}"
        );
        assert!(
            text.contains("Read back: patch-ssa-04: generation"),
            "{text}"
        );
    }
}
