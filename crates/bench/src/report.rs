//! The results of a store benchmark and the table they print as.

use std::fmt;
use std::time::Duration;

use crate::{StoreBenchConfig, RANGE_RUNS, READERS, WATCH_PACE};

/// Goal: the embedded store sustains at least this many writes per second with
/// [`StoreBenchConfig::writers`] concurrent writers.
pub const GOAL_CONCURRENT_WRITES_PER_SEC: f64 = 20_000.0;
/// Goal: no single write waits longer than this while history is compacted.
pub const GOAL_COMPACTION_STALL: Duration = Duration::from_millis(50);
/// Goal: the embedded store's p99 watch latency is at most this.
pub const GOAL_WATCH_P99: Duration = Duration::from_millis(5);

/// What one backend measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BackendResults {
    /// Creates per second from a single task, one at a time.
    pub serial_writes_per_sec: f64,
    /// Creates per second with [`StoreBenchConfig::writers`] concurrent tasks.
    pub concurrent_writes_per_sec: f64,
    /// Point `get`s per second with [`READERS`] concurrent tasks.
    pub reads_per_sec: f64,
    /// Median time of a full prefix range over [`StoreBenchConfig::range_keys`] keys.
    pub range_median: Duration,
    /// Median watch latency, put issued to event delivered (commit included).
    pub watch_p50: Duration,
    /// 99th-percentile watch latency, put issued to event delivered.
    pub watch_p99: Duration,
    /// Median watch latency, put acknowledged to event delivered, clamped at 0.
    pub watch_ack_p50: Duration,
    /// 99th-percentile watch latency from the acknowledgement, clamped at 0.
    pub watch_ack_p99: Duration,
    /// Number of (watcher, event) deliveries measured.
    pub watch_samples: usize,
    /// Deliveries that arrived before the writer saw its acknowledgement,
    /// counted as 0 latency.
    pub watch_clamped: usize,
    /// The longest single write while history was being compacted.
    pub compaction_max_write: Duration,
    /// The longest single write in the same loop before compaction started.
    pub baseline_max_write: Duration,
    /// Revisions of history the compaction removed or scanned.
    pub compacted_revisions: i64,
}

/// The embedded store against etcd on the same workload.
#[derive(Clone, Debug)]
pub struct StoreReport {
    /// The workload that was run.
    pub config: StoreBenchConfig,
    /// The embedded SQLite store.
    pub embedded: BackendResults,
    /// A local single-member etcd.
    pub etcd: BackendResults,
}

/// Which direction is better for a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
}

/// An extra goal on one row, for the embedded value.
#[derive(Clone, Copy, Debug)]
enum Goal {
    AtLeast(f64),
    AtMost(f64),
}

struct Row {
    label: String,
    embedded: f64,
    etcd: f64,
    better: Better,
    /// Decimal places to print the values with.
    decimals: usize,
    unit: &'static str,
    goal: Option<Goal>,
    /// Whether the embedded store must beat etcd here: true for the rows the
    /// store issue names; the supplementary compaction row has only its goal.
    must_lead: bool,
}

impl Row {
    /// Greater than 1 means the embedded store did better.
    fn ratio(&self) -> Option<f64> {
        let (num, den) = match self.better {
            Better::Higher => (self.embedded, self.etcd),
            Better::Lower => (self.etcd, self.embedded),
        };
        if den > 0.0 {
            Some(num / den)
        } else if num > 0.0 {
            Some(f64::INFINITY)
        } else {
            None
        }
    }

    fn ahead(&self) -> bool {
        match self.better {
            Better::Higher => self.embedded > self.etcd,
            Better::Lower => self.embedded < self.etcd,
        }
    }

    /// `(met, text)` for the "goal met?" column.
    fn verdict(&self) -> (bool, String) {
        let mut parts = Vec::new();
        let mut met = true;
        if self.ahead() {
            parts.push("ahead".to_string());
        } else if self.must_lead {
            met = false;
            parts.push("NOT ahead".to_string());
        } else {
            parts.push("behind".to_string());
        }
        match self.goal {
            None => {}
            Some(Goal::AtLeast(min)) => {
                let v = self.embedded;
                if v >= min {
                    parts.push(format!(">= {}", fmt_num(min, self.decimals)));
                } else {
                    met = false;
                    parts.push(format!(
                        "below {} by {:.0}%",
                        fmt_num(min, self.decimals),
                        (min - v) / min * 100.0
                    ));
                }
            }
            Some(Goal::AtMost(max)) => {
                let v = self.embedded;
                if v <= max {
                    parts.push(format!("<= {}{}", fmt_num(max, self.decimals), self.unit));
                } else {
                    met = false;
                    parts.push(format!(
                        "above {}{} by {:.0}%",
                        fmt_num(max, self.decimals),
                        self.unit,
                        (v - max) / max * 100.0
                    ));
                }
            }
        }
        let head = if met { "yes" } else { "NO" };
        (met, format!("{head} ({})", parts.join(", ")))
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl StoreReport {
    fn rows(&self) -> Vec<Row> {
        let c = &self.config;
        let (e, d) = (&self.embedded, &self.etcd);
        vec![
            Row {
                label: "serial writes/s (1 writer)".into(),
                embedded: e.serial_writes_per_sec,
                etcd: d.serial_writes_per_sec,
                better: Better::Higher,
                decimals: 0,
                unit: "",
                goal: None,
                must_lead: true,
            },
            Row {
                label: format!("writes/s ({} concurrent writers)", c.writers),
                embedded: e.concurrent_writes_per_sec,
                etcd: d.concurrent_writes_per_sec,
                better: Better::Higher,
                decimals: 0,
                unit: "",
                goal: Some(Goal::AtLeast(GOAL_CONCURRENT_WRITES_PER_SEC)),
                must_lead: true,
            },
            Row {
                label: format!("point reads/s ({READERS} concurrent readers)"),
                embedded: e.reads_per_sec,
                etcd: d.reads_per_sec,
                better: Better::Higher,
                decimals: 0,
                unit: "",
                goal: None,
                must_lead: true,
            },
            Row {
                label: format!(
                    "range of {} keys (ms, median of {RANGE_RUNS})",
                    c.range_keys
                ),
                embedded: ms(e.range_median),
                etcd: ms(d.range_median),
                better: Better::Lower,
                decimals: 2,
                unit: " ms",
                goal: None,
                must_lead: true,
            },
            Row {
                label: format!("watch latency p50 (ms, {} watchers)*", c.watchers),
                embedded: ms(e.watch_p50),
                etcd: ms(d.watch_p50),
                better: Better::Lower,
                decimals: 3,
                unit: " ms",
                goal: None,
                must_lead: true,
            },
            Row {
                label: format!("watch latency p99 (ms, {} watchers)*", c.watchers),
                embedded: ms(e.watch_p99),
                etcd: ms(d.watch_p99),
                better: Better::Lower,
                decimals: 3,
                unit: " ms",
                goal: Some(Goal::AtMost(ms(GOAL_WATCH_P99))),
                must_lead: true,
            },
            Row {
                label: format!(
                    "longest write while compacting {}k revisions (ms)",
                    e.compacted_revisions / 1000
                ),
                embedded: ms(e.compaction_max_write),
                etcd: ms(d.compaction_max_write),
                better: Better::Lower,
                decimals: 2,
                unit: " ms",
                goal: Some(Goal::AtMost(ms(GOAL_COMPACTION_STALL))),
                must_lead: false,
            },
        ]
    }

    /// Whether every goal was met.
    pub fn all_goals_met(&self) -> bool {
        self.rows().iter().all(|r| r.verdict().0)
    }
}

impl fmt::Display for StoreReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = self.rows();
        let mut cells = Vec::with_capacity(rows.len());
        let mut met = 0;
        for r in &rows {
            let (ok, verdict) = r.verdict();
            met += usize::from(ok);
            let ratio = match r.ratio() {
                Some(x) if x.is_infinite() => "inf".to_string(),
                Some(x) => format!("{x:.2}x"),
                None => "n/a".to_string(),
            };
            cells.push(vec![
                r.label.clone(),
                fmt_num(r.embedded, r.decimals),
                fmt_num(r.etcd, r.decimals),
                ratio,
                verdict,
            ]);
        }
        let header = ["metric", "embedded (sqlite)", "etcd", "ratio", "goal met?"];
        let align = [
            Align::Left,
            Align::Right,
            Align::Right,
            Align::Right,
            Align::Left,
        ];
        f.write_str(&render_table(&header, &align, &cells))?;

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
            "Workload (same for both, run one after the other): {} serial creates, {} creates from {} writers, \
             {} gets of random existing keys, a {}-key prefix range, {} watchers x {} puts; values of {} bytes.",
            c.serial_writes, c.concurrent_writes, c.writers, c.reads, c.range_keys, c.watchers, c.watch_events,
            c.value_bytes
        )?;
        writeln!(
            f,
            "embedded: SQLite file (WAL, synchronous=FULL) in a temporary directory; etcd: one local member, \
             data directory on the same filesystem, reached over loopback gRPC."
        )?;
        writeln!(f, "ratio: embedded/etcd for rates, etcd/embedded for times; > 1 means the embedded store is better.")?;
        writeln!(
            f,
            "* watch latency: from the moment the writer issued the put to the moment each watcher's task received \
             the event, one put every {} ms, over every (watcher, event) pair. This includes the commit, as etcd's \
             own `benchmark watch-latency` does, so it is an upper bound on commit-to-delivery. The lower bound, \
             from the put's acknowledgement (0 when the event beat the ack): p50 {:.3} / p99 {:.3} ms embedded, \
             p50 {:.3} / p99 {:.3} ms etcd; events that beat the ack: {} of {} ({:.1}%) embedded, {} of {} ({:.1}%) etcd.",
            WATCH_PACE.as_millis(),
            ms(self.embedded.watch_ack_p50),
            ms(self.embedded.watch_ack_p99),
            ms(self.etcd.watch_ack_p50),
            ms(self.etcd.watch_ack_p99),
            self.embedded.watch_clamped,
            self.embedded.watch_samples,
            pct(self.embedded.watch_clamped, self.embedded.watch_samples),
            self.etcd.watch_clamped,
            self.etcd.watch_samples,
            pct(self.etcd.watch_clamped, self.etcd.watch_samples),
        )?;
        writeln!(
            f,
            "compaction: one writer keeps putting while {} revisions of history are compacted (until {} s after \
             compact() returned); the longest put in the same loop just before: {:.2} ms embedded, {:.2} ms etcd.",
            self.embedded.compacted_revisions,
            crate::COMPACTION_TAIL.as_secs(),
            ms(self.embedded.baseline_max_write),
            ms(self.etcd.baseline_max_write),
        )?;
        writeln!(
            f,
            "goals: embedded ahead of etcd on every row but the compaction one; embedded >= {} writes/s with {} writers; embedded watch \
             p99 <= {} ms; no write waits over {} ms on compaction. Rows meeting their goals: {met} of {}.",
            fmt_num(GOAL_CONCURRENT_WRITES_PER_SEC, 0),
            c.writers,
            GOAL_WATCH_P99.as_millis(),
            GOAL_COMPACTION_STALL.as_millis(),
            rows.len()
        )
    }
}

/// Alignment of a table column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Align {
    Left,
    Right,
}

/// A plain-text table: header, a rule, then the rows, columns separated by
/// ` | ` and padded to the widest cell. Rows shorter than the header are padded
/// with empty cells. Widths count characters, not bytes.
pub(crate) fn render_table(header: &[&str], align: &[Align], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().take(cols).enumerate() {
            width[i] = width[i].max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| -> String {
        let mut out = String::new();
        for (i, w) in width.iter().enumerate() {
            let cell = cells.next().unwrap_or("");
            let pad = w - cell.chars().count();
            if i > 0 {
                out.push_str(" | ");
            }
            match align.get(i).copied().unwrap_or(Align::Left) {
                Align::Left => {
                    out.push_str(cell);
                    out.extend(std::iter::repeat_n(' ', pad));
                }
                Align::Right => {
                    out.extend(std::iter::repeat_n(' ', pad));
                    out.push_str(cell);
                }
            }
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut out = line(&mut header.iter().copied());
    let rule: Vec<String> = width.iter().map(|w| "-".repeat(*w)).collect();
    out.push_str(&rule.join("-|-"));
    out.push('\n');
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// A number with `decimals` places and thousands separators: `23,456.7`.
pub(crate) fn fmt_num(x: f64, decimals: usize) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    let s = format!("{:.*}", decimals, x.abs());
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s.as_str(), None),
    };
    let mut grouped = String::new();
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(ch);
    }
    let mut out = String::new();
    if x < 0.0 && s.chars().any(|c| c.is_ascii_digit() && c != '0') {
        out.push('-');
    }
    out.push_str(&grouped);
    if let Some(frac) = frac {
        out.push('.');
        out.push_str(frac);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped() {
        assert_eq!(fmt_num(0.0, 0), "0");
        assert_eq!(fmt_num(999.4, 0), "999");
        assert_eq!(fmt_num(1000.0, 0), "1,000");
        assert_eq!(fmt_num(1234567.891, 2), "1,234,567.89");
        assert_eq!(fmt_num(-20000.0, 0), "-20,000");
        assert_eq!(fmt_num(-0.0001, 2), "0.00");
        assert_eq!(fmt_num(0.4567, 3), "0.457");
    }

    #[test]
    fn table_pads_and_aligns() {
        let rows = vec![
            vec!["a".to_string(), "1".to_string(), "yes".to_string()],
            vec!["longer label".to_string(), "12,345".to_string()],
        ];
        let t = render_table(
            &["metric", "value", "ok?"],
            &[Align::Left, Align::Right, Align::Left],
            &rows,
        );
        let expected = "\
metric       |  value | ok?
-------------|--------|----
a            |      1 | yes
longer label | 12,345 |
";
        assert_eq!(t, expected);
    }

    fn report(embedded: BackendResults, etcd: BackendResults) -> StoreReport {
        StoreReport {
            config: StoreBenchConfig::default(),
            embedded,
            etcd,
        }
    }

    fn results(writes: f64, p99_ms: u64) -> BackendResults {
        BackendResults {
            serial_writes_per_sec: writes / 10.0,
            concurrent_writes_per_sec: writes,
            reads_per_sec: writes * 2.0,
            range_median: Duration::from_millis(p99_ms * 4),
            watch_p50: Duration::from_millis(p99_ms / 2),
            watch_p99: Duration::from_millis(p99_ms),
            watch_samples: 1000,
            watch_clamped: 10,
            watch_ack_p50: Duration::from_millis(p99_ms / 4),
            watch_ack_p99: Duration::from_millis(p99_ms / 2),
            compaction_max_write: Duration::from_millis(p99_ms * 2),
            baseline_max_write: Duration::from_millis(p99_ms),
            compacted_revisions: 30_000,
        }
    }

    #[test]
    fn report_ratios_and_goals() {
        let r = report(results(25_000.0, 4), results(5_000.0, 20));
        let text = r.to_string();
        assert!(r.all_goals_met(), "{text}");
        let writes = text
            .lines()
            .find(|l| l.starts_with("writes/s (64 concurrent"))
            .unwrap();
        assert!(writes.contains("25,000"), "{writes}");
        assert!(writes.contains("5.00x"), "{writes}");
        assert!(writes.contains("yes (ahead, >= 20,000)"), "{writes}");
        let p99 = text
            .lines()
            .find(|l| l.starts_with("watch latency p99"))
            .unwrap();
        // Latencies: etcd/embedded, so 20 ms against 4 ms is 5x in the embedded store's favour.
        assert!(p99.contains("5.00x"), "{p99}");
        assert!(p99.contains("yes (ahead, <= 5.000 ms)"), "{p99}");
        assert!(text.contains("10 of 1000 (1.0%) embedded"), "{text}");
    }

    #[test]
    fn report_flags_missed_goals() {
        let r = report(results(15_000.0, 10), results(30_000.0, 8));
        let text = r.to_string();
        assert!(!r.all_goals_met());
        let writes = text
            .lines()
            .find(|l| l.starts_with("writes/s (64 concurrent"))
            .unwrap();
        assert!(writes.contains("0.50x"), "{writes}");
        assert!(
            writes.contains("NO (NOT ahead, below 20,000 by 25%)"),
            "{writes}"
        );
        let p99 = text
            .lines()
            .find(|l| l.starts_with("watch latency p99"))
            .unwrap();
        assert!(p99.contains("0.80x"), "{p99}");
        assert!(
            p99.contains("NO (NOT ahead, above 5.000 ms by 100%)"),
            "{p99}"
        );
        // The compaction row needs only its goal, not the lead.
        let compaction = text
            .lines()
            .find(|l| l.starts_with("longest write while compacting"))
            .unwrap();
        assert!(
            compaction.contains("yes (behind, <= 50.00 ms)"),
            "{compaction}"
        );
        assert!(text.contains("Rows meeting their goals: 1 of 7."), "{text}");
    }

    #[test]
    fn zero_latency_ratio() {
        let mut e = results(25_000.0, 4);
        e.watch_p50 = Duration::ZERO;
        let mut d = results(5_000.0, 20);
        let text = report(e.clone(), d.clone()).to_string();
        let p50 = text
            .lines()
            .find(|l| l.starts_with("watch latency p50"))
            .unwrap();
        assert!(p50.contains("inf"), "{p50}");
        d.watch_p50 = Duration::ZERO;
        let text = report(e, d).to_string();
        let p50 = text
            .lines()
            .find(|l| l.starts_with("watch latency p50"))
            .unwrap();
        assert!(p50.contains("n/a"), "{p50}");
        assert!(p50.contains("NOT ahead"), "{p50}");
    }
}
