//! The results of the API server benchmark and the table they print as.

use std::fmt;
use std::time::Duration;

use super::{
    ApiBenchConfig, IDLE_SETTLE, LIST_RUNS, POD_NAMESPACE, WATCH_NAMESPACE, WATCH_NAMESPACE_H1,
};
use crate::report::{fmt_num, render_table, Align};

/// Goal: pod creates per second with [`ApiBenchConfig::clients`] concurrent clients.
pub const GOAL_CREATES_PER_SEC: f64 = 5_000.0;
/// Goal: 99th-percentile latency of a single-pod GET.
pub const GOAL_GET_P99: Duration = Duration::from_millis(5);
/// Goal: a full LIST of [`ApiBenchConfig::pods`] pods (the median run).
pub const GOAL_LIST: Duration = Duration::from_millis(150);
/// Goal: 99th-percentile watch delivery latency, from the write's issue.
pub const GOAL_WATCH_P99: Duration = Duration::from_millis(10);
/// Goal: resident memory of the idle server, in MiB.
pub const GOAL_IDLE_RSS_MIB: f64 = 64.0;

/// Watch delivery over every (watcher, event) pair.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WatchResults {
    /// Median latency from the write being issued (its commit included).
    pub p50: Duration,
    /// 99th-percentile latency from the write being issued.
    pub p99: Duration,
    /// The longest delivery from the write being issued.
    pub max: Duration,
    /// Median latency from the write's acknowledgement, clamped at 0.
    pub ack_p50: Duration,
    /// 99th-percentile latency from the acknowledgement, clamped at 0.
    pub ack_p99: Duration,
    /// (watcher, event) deliveries measured.
    pub samples: usize,
    /// Deliveries that arrived before the writer had the acknowledgement.
    pub clamped: usize,
    /// Median time of one of the writer's creates, issue to acknowledgement.
    pub write_p50: Duration,
    /// 99th-percentile time of one of the writer's creates.
    pub write_p99: Duration,
    /// From the first write's issue to the last write's acknowledgement.
    pub write_span: Duration,
}

/// CPU spent during one phase, by the server and by the benchmark process
/// (the client), from `/proc/<pid>/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PhaseCpu {
    /// Wall time the samples span.
    pub wall: Duration,
    /// CPU time of the server process, all threads; `None` if unreadable.
    pub server: Option<Duration>,
    /// CPU time of the benchmark process, all threads; `None` if unreadable.
    pub client: Option<Duration>,
    /// Busy time of the whole machine, all CPUs (`/proc/stat`); `None` if
    /// unreadable.
    pub machine: Option<Duration>,
}

impl PhaseCpu {
    /// The sum of two spans.
    pub fn add(&self, other: &PhaseCpu) -> PhaseCpu {
        let sum = |a: Option<Duration>, b: Option<Duration>| Some(a? + b?);
        PhaseCpu {
            wall: self.wall + other.wall,
            server: sum(self.server, other.server),
            client: sum(self.client, other.client),
            machine: sum(self.machine, other.machine),
        }
    }

    /// Average cores busy: CPU time over wall time.
    fn cores(&self, cpu: Option<Duration>) -> String {
        match cpu {
            Some(c) if !self.wall.is_zero() => {
                format!("{:.2}", c.as_secs_f64() / self.wall.as_secs_f64())
            }
            _ => "?".into(),
        }
    }

    /// Busy time of the machine outside the server and the client.
    fn rest(&self) -> Option<Duration> {
        Some(
            self.machine?
                .saturating_sub(self.server?)
                .saturating_sub(self.client?),
        )
    }

    pub(crate) fn describe(&self) -> String {
        format!(
            "server {} + client {} + rest of the machine {} cores over {:.2} s",
            self.cores(self.server),
            self.cores(self.client),
            self.cores(self.rest()),
            self.wall.as_secs_f64()
        )
    }
}

/// What the API server benchmark measured.
#[derive(Clone, Debug)]
pub struct ApiReport {
    /// The workload that was run.
    pub config: ApiBenchConfig,
    /// Mean size of a pod's JSON as sent.
    pub pod_bytes: usize,
    /// Size of a watched config map's JSON as sent.
    pub watch_object_bytes: usize,
    /// Pod creates per second, all clients together.
    pub creates_per_sec: f64,
    /// Median latency of one create.
    pub create_p50: Duration,
    /// 99th-percentile latency of one create.
    pub create_p99: Duration,
    /// Single-pod GETs per second, all clients together.
    pub gets_per_sec: f64,
    /// Median GET latency.
    pub get_p50: Duration,
    /// 99th-percentile GET latency.
    pub get_p99: Duration,
    /// Median time of a full LIST of the pods, to its last byte.
    pub list_median: Duration,
    /// Every timed LIST, in order.
    pub list_runs: Vec<Duration>,
    /// Bytes in one LIST response.
    pub list_bytes: usize,
    /// Watch delivery over HTTP/2, the watches spread over
    /// [`ApiBenchConfig::clients`] connections.
    pub watch: WatchResults,
    /// Watch delivery over HTTP/1.1, a connection per watch.
    pub watch_h1: WatchResults,
    /// Server VmRSS [`IDLE_SETTLE`] after `/readyz`, in KiB.
    pub rss_idle_kib: u64,
    /// Server VmRSS right after the create phase, in KiB.
    pub rss_loaded_kib: u64,
    /// Server VmRSS after the watch phase, in KiB.
    pub rss_end_kib: u64,
    /// Server VmHWM (peak RSS) after the watch phase, in KiB.
    pub hwm_end_kib: u64,
    /// The client's TCP connections to the server after the create phase.
    pub connections_after_creates: Option<usize>,
    /// The client's TCP connections to the server with every HTTP/2 watch open.
    pub connections_with_watchers: Option<usize>,
    /// The client's TCP connections to the server with every HTTP/1.1 watch open.
    pub connections_with_watchers_h1: Option<usize>,
    /// CPU during the timed creates.
    pub cpu_creates: PhaseCpu,
    /// CPU during the timed GETs.
    pub cpu_gets: PhaseCpu,
    /// CPU during the timed LISTs, all runs together.
    pub cpu_list: PhaseCpu,
    /// CPU from the first timed watch write until every watcher saw the end,
    /// over HTTP/2.
    pub cpu_watch: PhaseCpu,
    /// The same over HTTP/1.1.
    pub cpu_watch_h1: PhaseCpu,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

/// One row of a results table: a value and, maybe, its goal.
pub(crate) struct Row {
    pub(crate) label: String,
    pub(crate) value: f64,
    pub(crate) decimals: usize,
    pub(crate) unit: &'static str,
    pub(crate) goal: Option<Goal>,
}

impl Row {
    fn goal_text(&self) -> String {
        match self.goal {
            None => "-".into(),
            Some(Goal::AtLeast(min)) => format!(">= {}{}", fmt_num(min, 0), self.unit),
            Some(Goal::AtMost(max)) => format!("<= {}{}", fmt_num(max, 0), self.unit),
        }
    }

    /// `None` without a goal; else whether it was met and the verdict text.
    fn verdict(&self) -> Option<(bool, String)> {
        let v = self.value;
        Some(match self.goal? {
            Goal::AtLeast(min) if v >= min => (true, "yes".into()),
            Goal::AtLeast(min) => (
                false,
                format!(
                    "NO (below by {}, {:.0}%)",
                    fmt_num(min - v, self.decimals),
                    (min - v) / min * 100.0
                ),
            ),
            Goal::AtMost(max) if v <= max => (true, "yes".into()),
            // A goal of zero (no errors) has no percentage to be above by.
            Goal::AtMost(max) if max <= 0.0 => (
                false,
                format!(
                    "NO (above by {}{})",
                    fmt_num(v - max, self.decimals),
                    self.unit
                ),
            ),
            Goal::AtMost(max) => (
                false,
                format!(
                    "NO (above by {}{}, {:.0}%)",
                    fmt_num(v - max, self.decimals),
                    self.unit,
                    (v - max) / max * 100.0
                ),
            ),
        })
    }
}

/// Whether every row with a goal met it.
pub(crate) fn all_met(rows: &[Row]) -> bool {
    rows.iter().filter_map(Row::verdict).all(|(met, _)| met)
}

/// `rows` as a table (metric, value, goal, met?), with how many rows have a
/// goal and how many of those met it.
pub(crate) fn goal_table(rows: &[Row]) -> (String, usize, usize) {
    let (mut goals, mut met) = (0, 0);
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let verdict = match r.verdict() {
                Some((ok, text)) => {
                    goals += 1;
                    met += usize::from(ok);
                    text
                }
                None => "-".into(),
            };
            vec![
                r.label.clone(),
                fmt_num(r.value, r.decimals),
                r.goal_text(),
                verdict,
            ]
        })
        .collect();
    let table = render_table(
        &["metric", "value", "goal", "met?"],
        &[Align::Left, Align::Right, Align::Right, Align::Left],
        &cells,
    );
    (table, goals, met)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn count(n: Option<usize>) -> String {
    n.map_or_else(|| "an unknown number of".into(), |n| n.to_string())
}

impl ApiReport {
    fn rows(&self) -> Vec<Row> {
        let c = &self.config;
        vec![
            Row {
                label: format!("pod creates/s ({} concurrent clients)", c.clients),
                value: self.creates_per_sec,
                decimals: 0,
                unit: "",
                goal: Some(Goal::AtLeast(GOAL_CREATES_PER_SEC)),
            },
            Row {
                label: format!("pod GET p50 (ms, {} concurrent clients)", c.clients),
                value: ms(self.get_p50),
                decimals: 3,
                unit: " ms",
                goal: None,
            },
            Row {
                label: format!("pod GET p99 (ms, {} concurrent clients)", c.clients),
                value: ms(self.get_p99),
                decimals: 3,
                unit: " ms",
                goal: Some(Goal::AtMost(ms(GOAL_GET_P99))),
            },
            Row {
                label: format!(
                    "LIST of {} pods (ms, median of {LIST_RUNS})",
                    fmt_num(c.pods as f64, 0)
                ),
                value: ms(self.list_median),
                decimals: 1,
                unit: " ms",
                goal: Some(Goal::AtMost(ms(GOAL_LIST))),
            },
            Row {
                label: format!(
                    "watch delivery p50 (ms, {} watchers, HTTP/2)*",
                    fmt_num(c.watchers as f64, 0)
                ),
                value: ms(self.watch.p50),
                decimals: 3,
                unit: " ms",
                goal: None,
            },
            Row {
                label: format!(
                    "watch delivery p99 (ms, {} watchers, HTTP/2)*",
                    fmt_num(c.watchers as f64, 0)
                ),
                value: ms(self.watch.p99),
                decimals: 3,
                unit: " ms",
                goal: Some(Goal::AtMost(ms(GOAL_WATCH_P99))),
            },
            Row {
                label: format!(
                    "watch delivery p50 (ms, {} watchers, HTTP/1.1)*",
                    fmt_num(c.watchers as f64, 0)
                ),
                value: ms(self.watch_h1.p50),
                decimals: 3,
                unit: " ms",
                goal: None,
            },
            Row {
                label: format!(
                    "watch delivery p99 (ms, {} watchers, HTTP/1.1)*",
                    fmt_num(c.watchers as f64, 0)
                ),
                value: ms(self.watch_h1.p99),
                decimals: 3,
                unit: " ms",
                goal: None,
            },
            Row {
                label: "server RSS idle (MiB)".into(),
                value: mib(self.rss_idle_kib),
                decimals: 1,
                unit: " MiB",
                goal: Some(Goal::AtMost(GOAL_IDLE_RSS_MIB)),
            },
            Row {
                label: format!("server RSS with {} pods (MiB)", fmt_num(c.pods as f64, 0)),
                value: mib(self.rss_loaded_kib),
                decimals: 1,
                unit: " MiB",
                goal: None,
            },
        ]
    }

    /// Whether every goal was met.
    pub fn all_goals_met(&self) -> bool {
        all_met(&self.rows())
    }
}

impl fmt::Display for ApiReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (table, goals, met) = goal_table(&self.rows());
        f.write_str(&table)?;

        let c = &self.config;
        let pct = |n: usize, of: usize| {
            if of == 0 {
                0.0
            } else {
                n as f64 * 100.0 / of as f64
            }
        };
        writeln!(f)?;
        writeln!(
            f,
            "Setup: `wharf server` (embedded SQLite, --disable-agent --disable-scheduler --disable-controller-manager) started by the benchmark as a child process on a \
             fresh data directory, listening on 127.0.0.1 only; the client is the `kube` crate in the benchmark process, \
             HTTPS with the admin client certificate from the kubeconfig the server wrote, JSON, HTTP/1.1 (kube's TLS \
             connector offers no HTTP/2, so every request in flight has its own connection). Client and server share \
             this machine's {} CPUs (the HTTP/2 watch phase has its own connections; see below). Request bodies are serialized before the clock starts; responses are timed to \
             their last byte and not deserialized inside the timed span.",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        )?;
        writeln!(
            f,
            "creates: {} pods of {} bytes of JSON each (6 labels, 5 annotations, 2 containers with env, resources, \
             ports and a probe; no nodeName) in namespace {POD_NAMESPACE}, from {} tasks with one request in flight \
             each, over {} connections; per create p50 {:.3} / p99 {:.3} ms.",
            fmt_num(c.pods as f64, 0),
            self.pod_bytes,
            c.clients,
            count(self.connections_after_creates),
            ms(self.create_p50),
            ms(self.create_p99),
        )?;
        writeln!(
            f,
            "GET: {} GETs of single pods chosen at random among those created, from {} tasks: {} GETs/s.",
            fmt_num(c.gets as f64, 0),
            c.clients,
            fmt_num(self.gets_per_sec, 0),
        )?;
        writeln!(
            f,
            "LIST: GET of every pod in the namespace, no limit, one page of {:.1} MiB, timed to the last byte; \
             runs: {} ms.",
            self.list_bytes as f64 / (1024.0 * 1024.0),
            self.list_runs
                .iter()
                .map(|d| format!("{:.1}", ms(*d)))
                .collect::<Vec<_>>()
                .join(", "),
        )?;
        writeln!(
            f,
            "* watch: {} watches `?watch=1&resourceVersion=<rv>` on a namespace's config maps, in two phases: \
             over HTTP/2 on namespace {WATCH_NAMESPACE}, the watches spread over {} connections (one per client, \
             as {} client-go or kubectl processes would multiplex theirs; the goal row), then over HTTP/1.1 on \
             namespace {WATCH_NAMESPACE_H1}, a connection per watch through kube's client (no goal: on this \
             machine each delivery is then a TLS record and a loopback TCP send of its own on the server, and a \
             receive on the client, and both share the 2 CPUs). In each phase one writer creates a config map \
             ({} bytes of JSON) every {} ms, {} in all. Latency is measured for every (watcher, event) pair from \
             the moment the writer issued the create to the moment the watcher's task had the event (the watcher \
             splits the chunked body into lines itself and decodes only the type, name and resourceVersion). It \
             includes the write's own commit (request, validation, store commit, response), so it is an upper \
             bound on commit-to-delivery. Every watcher got every event exactly once, at the resourceVersion the \
             create returned.",
            fmt_num(c.watchers as f64, 0),
            count(self.connections_with_watchers),
            c.clients,
            self.watch_object_bytes,
            c.watch_pace.as_millis(),
            c.watch_events,
        )?;
        for (name, w, conns) in [
            ("HTTP/2", &self.watch, self.connections_with_watchers),
            (
                "HTTP/1.1",
                &self.watch_h1,
                self.connections_with_watchers_h1,
            ),
        ] {
            writeln!(
                f,
                "  {name} ({} connections): from the create's acknowledgement instead (0 when the event beat \
                 the ack): p50 {:.3} / p99 {:.3} ms; events that beat the ack: {} of {} ({:.1}%); longest \
                 delivery from the issue {:.3} ms. The writer's creates took p50 {:.3} / p99 {:.3} ms each, so \
                 the {} writes spanned {:.2} s (one every {:.2} ms on average).",
                count(conns),
                ms(w.ack_p50),
                ms(w.ack_p99),
                fmt_num(w.clamped as f64, 0),
                fmt_num(w.samples as f64, 0),
                pct(w.clamped, w.samples),
                ms(w.max),
                ms(w.write_p50),
                ms(w.write_p99),
                c.watch_events,
                w.write_span.as_secs_f64(),
                ms(w.write_span) / c.watch_events.max(1) as f64,
            )?;
        }
        writeln!(
            f,
            "RSS: VmRSS of the server process from /proc/<pid>/status: idle = {} s after /readyz, before the \
             benchmark's first request; with pods = right after the create phase; after the watch phase {:.1} MiB, \
             peak (VmHWM) {:.1} MiB.",
            IDLE_SETTLE.as_secs(),
            mib(self.rss_end_kib),
            mib(self.hwm_end_kib),
        )?;
        writeln!(
            f,
            "CPU (cores busy = CPU time / wall time, from /proc/<pid>/stat and /proc/stat; the rest includes \
             softirq time for loopback traffic and any other process): creates {}; GETs {}; LISTs {}; watch \
             over HTTP/2 {}; watch over HTTP/1.1 {}.",
            self.cpu_creates.describe(),
            self.cpu_gets.describe(),
            self.cpu_list.describe(),
            self.cpu_watch.describe(),
            self.cpu_watch_h1.describe(),
        )?;
        writeln!(
            f,
            "goals: >= {} creates/s; GET p99 <= {} ms; LIST of {} pods <= {} ms; watch p99 (HTTP/2) <= {} ms; idle RSS <= {} \
             MiB. Goals met: {met} of {goals}.",
            fmt_num(GOAL_CREATES_PER_SEC, 0),
            GOAL_GET_P99.as_millis(),
            fmt_num(c.pods as f64, 0),
            GOAL_LIST.as_millis(),
            GOAL_WATCH_P99.as_millis(),
            GOAL_IDLE_RSS_MIB,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> ApiReport {
        let ms = Duration::from_millis;
        ApiReport {
            config: ApiBenchConfig::default(),
            pod_bytes: 2_050,
            watch_object_bytes: 420,
            creates_per_sec: 6_000.0,
            create_p50: ms(4),
            create_p99: ms(12),
            gets_per_sec: 20_000.0,
            get_p50: ms(1),
            get_p99: ms(4),
            list_median: ms(120),
            list_runs: vec![ms(130), ms(120), ms(110), ms(125), ms(118)],
            list_bytes: 30 * 1024 * 1024,
            watch: WatchResults {
                p50: ms(3),
                p99: ms(9),
                max: ms(20),
                ack_p50: ms(1),
                ack_p99: ms(5),
                samples: 500_000,
                clamped: 5_000,
                write_p50: ms(2),
                write_p99: ms(4),
                write_span: Duration::from_millis(2_600),
            },
            watch_h1: WatchResults {
                p50: ms(8),
                p99: ms(17),
                samples: 500_000,
                ..WatchResults::default()
            },
            rss_idle_kib: 40 * 1024,
            rss_loaded_kib: 120 * 1024,
            rss_end_kib: 150 * 1024,
            hwm_end_kib: 160 * 1024,
            connections_after_creates: Some(32),
            connections_with_watchers: Some(64),
            connections_with_watchers_h1: Some(1_032),
            cpu_creates: PhaseCpu {
                wall: Duration::from_secs(2),
                server: Some(Duration::from_millis(2_500)),
                client: Some(Duration::from_millis(1_000)),
                machine: Some(Duration::from_millis(3_800)),
            },
            cpu_gets: PhaseCpu::default(),
            cpu_list: PhaseCpu::default(),
            cpu_watch: PhaseCpu {
                wall: Duration::from_secs(3),
                server: None,
                client: Some(Duration::from_secs(3)),
                machine: Some(Duration::from_secs(6)),
            },
            cpu_watch_h1: PhaseCpu::default(),
        }
    }

    fn line<'a>(text: &'a str, start: &str) -> &'a str {
        text.lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line starting {start:?} in\n{text}"))
    }

    #[test]
    fn all_goals_met() {
        let r = report();
        let text = r.to_string();
        assert!(r.all_goals_met(), "{text}");
        assert!(text.starts_with("metric "), "{text}");
        let creates = line(&text, "pod creates/s (32 concurrent clients)");
        assert!(creates.contains("6,000"), "{creates}");
        assert!(creates.contains(">= 5,000"), "{creates}");
        assert!(creates.trim_end().ends_with("| yes"), "{creates}");
        let p50 = line(&text, "pod GET p50");
        assert!(p50.trim_end().ends_with("| -"), "{p50}");
        let list = line(&text, "LIST of 10,000 pods (ms, median of 5)");
        assert!(list.contains("120.0"), "{list}");
        assert!(list.contains("<= 150 ms"), "{list}");
        let rss = line(&text, "server RSS idle (MiB)");
        assert!(rss.contains("40.0"), "{rss}");
        assert!(rss.contains("<= 64 MiB"), "{rss}");
        assert!(text.contains("Goals met: 5 of 5."), "{text}");
        assert!(
            text.contains("events that beat the ack: 5,000 of 500,000 (1.0%)"),
            "{text}"
        );
        assert!(text.contains("HTTP/2 (64 connections): from"), "{text}");
        assert!(text.contains("HTTP/1.1 (1032 connections): from"), "{text}");
        let h1 = line(&text, "watch delivery p99 (ms, 1,000 watchers, HTTP/1.1)");
        assert!(h1.contains("17.000"), "{h1}");
        assert!(h1.trim_end().ends_with("| -"), "{h1}");
        assert!(
            text.contains("creates: 10,000 pods of 2050 bytes"),
            "{text}"
        );
        assert!(
            text.contains("p50 2.000 / p99 4.000 ms each, so the 500 writes spanned 2.60 s (one every 5.20 ms"),
            "{text}"
        );
        assert!(
            text.contains(
                "creates server 1.25 + client 0.50 + rest of the machine 0.15 cores over 2.00 s; \
                 GETs server ? + client ? + rest of the machine ? cores"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "watch over HTTP/2 server ? + client 1.00 + rest of the machine ? cores over 3.00 s; watch over \
                 HTTP/1.1 server ? + client ? + rest"
            ),
            "{text}"
        );
    }

    #[test]
    fn phase_cpu_adds() {
        let a = PhaseCpu {
            wall: Duration::from_millis(100),
            server: Some(Duration::from_millis(150)),
            client: Some(Duration::from_millis(50)),
            machine: Some(Duration::from_millis(250)),
        };
        let b = PhaseCpu {
            wall: Duration::from_millis(300),
            server: Some(Duration::from_millis(250)),
            client: None,
            machine: Some(Duration::from_millis(350)),
        };
        let s = a.add(&b);
        assert_eq!(s.wall, Duration::from_millis(400));
        assert_eq!(s.server, Some(Duration::from_millis(400)));
        assert_eq!(s.client, None);
        assert_eq!(s.machine, Some(Duration::from_millis(600)));
        assert_eq!(
            s.describe(),
            "server 1.00 + client ? + rest of the machine ? cores over 0.40 s"
        );
    }

    #[test]
    fn missed_goals_say_by_how_much() {
        let mut r = report();
        r.creates_per_sec = 3_750.0;
        r.watch.p99 = Duration::from_millis(15);
        r.rss_idle_kib = 80 * 1024;
        r.connections_with_watchers = None;
        let text = r.to_string();
        assert!(!r.all_goals_met());
        let creates = line(&text, "pod creates/s");
        assert!(creates.contains("NO (below by 1,250, 25%)"), "{creates}");
        let watch = line(&text, "watch delivery p99 (ms, 1,000 watchers, HTTP/2)");
        assert!(watch.contains("NO (above by 5.000 ms, 50%)"), "{watch}");
        let rss = line(&text, "server RSS idle");
        assert!(rss.contains("NO (above by 16.0 MiB, 25%)"), "{rss}");
        assert!(text.contains("Goals met: 2 of 5."), "{text}");
        assert!(
            text.contains("HTTP/2 (an unknown number of connections)"),
            "{text}"
        );
    }
}
