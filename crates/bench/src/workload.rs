//! The workload itself, the same for every backend.
//!
//! Every phase writes under its own prefix of a fresh store, so the phases do
//! not see each other's keys except where meant to (the reads read the keys the
//! write phases created).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context, Result};
use bytes::Bytes;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use store::{
    EventKind, Precondition, RangeRequest, Store, WatchRequest, WatchResponse, WatchStream,
    WriteOp, WriteOutcome,
};
use tokio::sync::{mpsc, Barrier};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::report::BackendResults;
use crate::stats::{median, percentile, rate};
use crate::tasks::{join_all, AbortOnDrop};
use crate::{StoreBenchConfig, CHURN_REVISIONS, COMPACTION_TAIL, RANGE_RUNS, READERS, WATCH_PACE};

const SERIAL: &str = "/bench/serial/";
const CONCURRENT: &str = "/bench/concurrent/";
const RANGE: &str = "/bench/range/";
const WATCH: &str = "/bench/watch/";
const WATCH_EVENT: &str = "/bench/watch/ev/";
const CHURN: &str = "/bench/churn/";
const COMPACTING: &str = "/bench/compacting/";
const WATCH_READY: &[u8] = b"/bench/watch/ready";
const WATCH_END: &[u8] = b"/bench/watch/end";
/// How long the watchers may take to start, and to drain after the last put.
const WATCH_TIMEOUT: Duration = Duration::from_secs(30);

fn key(prefix: &str, i: usize) -> Vec<u8> {
    format!("{prefix}{i:08}").into_bytes()
}

/// A value of `len` printable bytes that do not repeat in any short pattern,
/// standing in for a serialized object.
fn make_value(len: usize) -> Bytes {
    const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = StdRng::seed_from_u64(0x5eed);
    (0..len)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())])
        .collect::<Vec<u8>>()
        .into()
}

/// Run every phase against `store` and collect the measurements. `name` labels
/// the progress lines.
pub(crate) async fn run<S: Store>(
    store: Arc<S>,
    cfg: &StoreBenchConfig,
    name: &str,
) -> Result<BackendResults> {
    let value = make_value(cfg.value_bytes);
    let mut r = BackendResults::default();

    eprintln!(
        "[bench] {name}: serial writes: {} creates from one task ...",
        cfg.serial_writes
    );
    let start = Instant::now();
    for i in 0..cfg.serial_writes {
        create(&*store, key(SERIAL, i), value.clone()).await?;
    }
    let took = start.elapsed();
    r.serial_writes_per_sec = rate(cfg.serial_writes, took);
    eprintln!(
        "[bench] {name}:   {:.0} writes/s ({:.2} s)",
        r.serial_writes_per_sec,
        took.as_secs_f64()
    );

    eprintln!(
        "[bench] {name}: concurrent writes: {} creates from {} tasks ...",
        cfg.concurrent_writes, cfg.writers
    );
    let took = parallel_creates(
        &store,
        CONCURRENT,
        cfg.concurrent_writes,
        cfg.writers,
        &value,
    )
    .await?;
    r.concurrent_writes_per_sec = rate(cfg.concurrent_writes, took);
    eprintln!(
        "[bench] {name}:   {:.0} writes/s ({:.2} s)",
        r.concurrent_writes_per_sec,
        took.as_secs_f64()
    );

    eprintln!(
        "[bench] {name}: point reads: {} gets of random existing keys from {READERS} tasks ...",
        cfg.reads
    );
    let took = point_reads(&store, cfg).await?;
    r.reads_per_sec = rate(cfg.reads, took);
    eprintln!(
        "[bench] {name}:   {:.0} reads/s ({:.2} s)",
        r.reads_per_sec,
        took.as_secs_f64()
    );

    eprintln!(
        "[bench] {name}: range: creating {} keys under {RANGE} (not timed) ...",
        cfg.range_keys
    );
    parallel_creates(&store, RANGE, cfg.range_keys, cfg.writers, &value).await?;
    let mut runs = Vec::with_capacity(RANGE_RUNS);
    for _ in 0..RANGE_RUNS {
        let start = Instant::now();
        let resp = store
            .range(RangeRequest::prefix(RANGE))
            .await
            .context("range")?;
        runs.push(start.elapsed());
        ensure!(
            resp.kvs.len() == cfg.range_keys && resp.count == cfg.range_keys as i64 && !resp.more,
            "range of {RANGE} returned {} keys (count {}, more {}), expected {}",
            resp.kvs.len(),
            resp.count,
            resp.more,
            cfg.range_keys
        );
    }
    r.range_median = median(&runs).expect("at least one range run");
    eprintln!(
        "[bench] {name}:   median {:.2} ms over {RANGE_RUNS} runs ({})",
        r.range_median.as_secs_f64() * 1000.0,
        runs.iter()
            .map(|d| format!("{:.2}", d.as_secs_f64() * 1000.0))
            .collect::<Vec<_>>()
            .join(", ")
    );

    eprintln!(
        "[bench] {name}: watch: {} watchers on {WATCH}, {} puts one every {} ms ...",
        cfg.watchers,
        cfg.watch_events,
        WATCH_PACE.as_millis()
    );
    let w = watch_latency(&store, cfg, &value).await?;
    r.watch_p50 = w.p50;
    r.watch_p99 = w.p99;
    r.watch_samples = w.samples;
    r.watch_clamped = w.clamped;
    r.watch_ack_p50 = w.ack_p50;
    r.watch_ack_p99 = w.ack_p99;
    eprintln!(
        "[bench] {name}:   p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms over {} deliveries ({} before the ack)",
        ms(w.p50),
        ms(w.p99),
        ms(w.max),
        w.samples,
        w.clamped
    );

    eprintln!(
        "[bench] {name}: compaction: {CHURN_REVISIONS} revisions of churn, then compact while one task writes ..."
    );
    let c = compaction_stall(&store, &value).await?;
    r.compaction_max_write = c.during;
    r.baseline_max_write = c.before;
    r.compacted_revisions = c.revisions;
    eprintln!(
        "[bench] {name}:   longest put {:.2} ms during compaction of {} revisions ({:.2} ms just before)",
        ms(c.during),
        c.revisions,
        ms(c.before)
    );
    Ok(r)
}

struct Stall {
    before: Duration,
    during: Duration,
    revisions: i64,
}

/// Build history by updating a small set of keys over and over, then compact it
/// all while one task keeps writing, and report that task's longest write.
async fn compaction_stall<S: Store>(store: &Arc<S>, value: &Bytes) -> Result<Stall> {
    const KEYS: usize = 500;
    const TASKS: usize = 16;
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let store = store.clone();
        let value = value.clone();
        handles.push(tokio::spawn(async move {
            for i in (t..CHURN_REVISIONS).step_by(TASKS) {
                put(&*store, &key(CHURN, i % KEYS), value.clone()).await?;
            }
            Ok(())
        }));
    }
    join_all(handles).await?;
    let first = store.compacted_revision().await?;
    let target = store.current_revision().await?;

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let longest_put = |stop: Arc<std::sync::atomic::AtomicBool>| {
        let store = store.clone();
        let value = value.clone();
        async move {
            let mut longest = Duration::ZERO;
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let start = Instant::now();
                put(&*store, &key(COMPACTING, i % KEYS), value.clone()).await?;
                longest = longest.max(start.elapsed());
                i += 1;
            }
            Ok::<_, anyhow::Error>(longest)
        }
    };
    let stop_before = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn(longest_put(stop_before.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_before.store(true, std::sync::atomic::Ordering::Relaxed);
    let before = writer.await.map_err(|e| anyhow!("writer: {e}"))??;

    let writer = tokio::spawn(longest_put(stop.clone()));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let compacted = store.compact(target).await.context("compact");
    tokio::time::sleep(COMPACTION_TAIL).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let during = writer.await.map_err(|e| anyhow!("writer: {e}"))??;
    compacted?;
    Ok(Stall {
        before,
        during,
        revisions: target - first,
    })
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Create `key`, which must not exist yet.
async fn create<S: Store + ?Sized>(store: &S, key: Vec<u8>, value: Bytes) -> Result<()> {
    match store.create(&key, value, None).await {
        Ok(WriteOutcome::Committed { .. }) => Ok(()),
        Ok(WriteOutcome::Failed { .. }) => {
            bail!(
                "create of {} failed: the key already exists",
                String::from_utf8_lossy(&key)
            )
        }
        Err(e) => Err(e).with_context(|| format!("create of {}", String::from_utf8_lossy(&key))),
    }
}

/// Unconditionally set `key`; returns the revision and when the call returned.
async fn put<S: Store + ?Sized>(store: &S, key: &[u8], value: Bytes) -> Result<(i64, Instant)> {
    let out = store
        .write(
            Precondition::None,
            WriteOp::Put {
                key: key.to_vec(),
                value,
                ttl: None,
            },
        )
        .await
        .with_context(|| format!("put of {}", String::from_utf8_lossy(key)))?;
    let acked = Instant::now();
    let rev = out.revision().ok_or_else(|| {
        anyhow!(
            "unconditional put of {} did not commit",
            String::from_utf8_lossy(key)
        )
    })?;
    Ok((rev, acked))
}

/// Create keys `prefix00000000 ..` up to `total` from `tasks` concurrent tasks,
/// task `t` taking every `tasks`-th key from `t`. Returns the time from the
/// moment all tasks are released until the last one finishes.
async fn parallel_creates<S: Store>(
    store: &Arc<S>,
    prefix: &'static str,
    total: usize,
    tasks: usize,
    value: &Bytes,
) -> Result<Duration> {
    let tasks = tasks.clamp(1, total.max(1));
    let barrier = Arc::new(Barrier::new(tasks + 1));
    let mut handles = Vec::with_capacity(tasks);
    for t in 0..tasks {
        let (store, barrier, value) = (store.clone(), barrier.clone(), value.clone());
        let keys: Vec<Vec<u8>> = (t..total).step_by(tasks).map(|i| key(prefix, i)).collect();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            for k in keys {
                create(&*store, k, value.clone()).await?;
            }
            Ok(())
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    join_all(handles).await?;
    Ok(start.elapsed())
}

/// `cfg.reads` gets of keys chosen at random among those the write phases
/// created, from [`READERS`] tasks. Every get must find its key.
async fn point_reads<S: Store>(store: &Arc<S>, cfg: &StoreBenchConfig) -> Result<Duration> {
    let serial = cfg.serial_writes;
    let existing = cfg.serial_writes + cfg.concurrent_writes;
    let value_len = cfg.value_bytes;
    let barrier = Arc::new(Barrier::new(READERS + 1));
    let mut handles = Vec::with_capacity(READERS);
    for t in 0..READERS {
        let n = cfg.reads / READERS + usize::from(t < cfg.reads % READERS);
        let mut rng = StdRng::seed_from_u64(t as u64);
        let keys: Vec<Vec<u8>> = (0..n)
            .map(|_| {
                let i = rng.random_range(0..existing);
                if i < serial {
                    key(SERIAL, i)
                } else {
                    key(CONCURRENT, i - serial)
                }
            })
            .collect();
        let (store, barrier) = (store.clone(), barrier.clone());
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            for k in keys {
                let (kv, _) = store
                    .get(&k)
                    .await
                    .with_context(|| format!("get of {}", String::from_utf8_lossy(&k)))?;
                let kv = kv.ok_or_else(|| {
                    anyhow!(
                        "get of existing key {} found nothing",
                        String::from_utf8_lossy(&k)
                    )
                })?;
                ensure!(
                    kv.value.len() == value_len,
                    "get of {} returned {} bytes, expected {value_len}",
                    kv.key_str(),
                    kv.value.len()
                );
            }
            Ok(())
        }));
    }
    barrier.wait().await;
    let start = Instant::now();
    join_all(handles).await?;
    Ok(start.elapsed())
}

#[derive(Debug)]
struct WatchLatency {
    /// From the put being issued (commit included), as etcd's own
    /// `benchmark watch-latency` measures.
    p50: Duration,
    p99: Duration,
    max: Duration,
    /// From the put's acknowledgement, clamped at 0.
    ack_p50: Duration,
    ack_p99: Duration,
    samples: usize,
    clamped: usize,
}

/// One timed put of the watch phase.
#[derive(Clone, Copy, Debug)]
struct Timed {
    revision: i64,
    issued: Instant,
    acked: Instant,
}

/// Open `cfg.watchers` watches on one prefix, each drained by its own task; wait
/// until all of them are live; then put `cfg.watch_events` distinct keys at a
/// steady pace from one task, and measure for every (watcher, event) pair the
/// time from the put's acknowledgement to the watcher receiving it.
async fn watch_latency<S: Store>(
    store: &Arc<S>,
    cfg: &StoreBenchConfig,
    value: &Bytes,
) -> Result<WatchLatency> {
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<usize>();
    let mut handles = Vec::with_capacity(cfg.watchers);
    for w in 0..cfg.watchers {
        let stream = store
            .watch(WatchRequest::prefix(WATCH, 0))
            .await
            .with_context(|| format!("opening watch {w}"))?;
        handles.push(tokio::spawn(drain_watch(
            w,
            stream,
            ready_tx.clone(),
            cfg.watch_events,
        )));
    }
    let _guard = AbortOnDrop(handles.iter().map(JoinHandle::abort_handle).collect());
    drop(ready_tx);

    // A watch may be registered with the server a little after `watch` returns,
    // so keep writing a marker key until every watcher has seen one.
    let deadline = tokio::time::Instant::now() + WATCH_TIMEOUT;
    let mut ready = HashSet::with_capacity(cfg.watchers);
    while ready.len() < cfg.watchers {
        if let Some(w) = handles.iter().position(|h| h.is_finished()) {
            let h = handles.swap_remove(w);
            let err = match h.await {
                Ok(Ok(_)) => anyhow!("watcher {w} stopped before the run started"),
                Ok(Err(e)) => e.context(format!("watcher {w}")),
                Err(e) => anyhow!("watcher {w} failed: {e}"),
            };
            return Err(err);
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "only {} of {} watchers saw the marker key within {WATCH_TIMEOUT:?}",
            ready.len(),
            cfg.watchers
        );
        put(&**store, WATCH_READY, Bytes::from_static(b"ready")).await?;
        let round = tokio::time::Instant::now() + Duration::from_millis(100);
        while ready.len() < cfg.watchers {
            match tokio::time::timeout_at(round, ready_rx.recv()).await {
                Ok(Some(w)) => {
                    ready.insert(w);
                }
                Ok(None) | Err(_) => break,
            }
        }
    }

    let mut acks: Vec<Timed> = Vec::with_capacity(cfg.watch_events);
    let mut tick = tokio::time::interval(WATCH_PACE);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for i in 0..cfg.watch_events {
        tick.tick().await;
        let issued = Instant::now();
        let (revision, acked) = put(&**store, &key(WATCH_EVENT, i), value.clone()).await?;
        acks.push(Timed {
            revision,
            issued,
            acked,
        });
    }
    put(&**store, WATCH_END, Bytes::from_static(b"end")).await?;

    let deadline = tokio::time::Instant::now() + WATCH_TIMEOUT;
    let mut deliveries = Vec::with_capacity(cfg.watchers);
    for (w, h) in handles.into_iter().enumerate() {
        match tokio::time::timeout_at(deadline, h).await {
            Err(_) => bail!(
                "watcher {w} had not seen the end marker {WATCH_TIMEOUT:?} after the last put"
            ),
            Ok(Err(e)) => bail!("watcher {w} failed: {e}"),
            Ok(Ok(r)) => deliveries.push(r.with_context(|| format!("watcher {w}"))?),
        }
    }
    measure(&acks, &deliveries)
}

/// Record when each event under [`WATCH_EVENT`] arrives, until the end marker.
/// Reports `w` on `ready` at the first marker.
async fn drain_watch(
    w: usize,
    mut stream: WatchStream,
    ready: mpsc::UnboundedSender<usize>,
    expected: usize,
) -> Result<Vec<(i64, Instant)>> {
    let mut got = Vec::with_capacity(expected);
    let mut ready = Some(ready);
    loop {
        let resp = stream
            .next()
            .await
            .ok_or_else(|| anyhow!("the watch ended before the end marker"))?;
        let now = Instant::now();
        let WatchResponse::Events(events) = resp.context("watch failed")? else {
            continue;
        };
        for e in events {
            let k = e.kv.key.as_slice();
            if k.starts_with(WATCH_EVENT.as_bytes()) {
                ensure!(ready.is_none(), "saw {} before any marker", e.kv.key_str());
                ensure!(
                    e.kind == EventKind::Put,
                    "delete event for {}",
                    e.kv.key_str()
                );
                got.push((e.kv.mod_revision, now));
            } else if k == WATCH_READY {
                if let Some(tx) = ready.take() {
                    let _ = tx.send(w);
                }
            } else if k == WATCH_END {
                return Ok(got);
            } else {
                bail!("unexpected key {} in the watch", e.kv.key_str());
            }
        }
    }
}

/// Check that every watcher got every acknowledged revision exactly once, and
/// compute the latency percentiles: from each put's issue, and from its
/// acknowledgement (clamped at 0 when the event beat the ack).
fn measure(acks: &[Timed], deliveries: &[Vec<(i64, Instant)>]) -> Result<WatchLatency> {
    let acked: HashMap<i64, Timed> = acks.iter().map(|t| (t.revision, *t)).collect();
    ensure!(
        acked.len() == acks.len(),
        "the store acknowledged two puts at the same revision"
    );
    let mut from_issue = Vec::with_capacity(acks.len() * deliveries.len());
    let mut from_ack = Vec::with_capacity(acks.len() * deliveries.len());
    let mut clamped = 0;
    let mut problems = Vec::new();
    for (w, got) in deliveries.iter().enumerate() {
        let mut seen = HashSet::with_capacity(got.len());
        let (mut duplicated, mut unexpected) = (0usize, 0usize);
        for &(rev, at) in got {
            let Some(t) = acked.get(&rev) else {
                unexpected += 1;
                continue;
            };
            if !seen.insert(rev) {
                duplicated += 1;
                continue;
            }
            if at < t.acked {
                clamped += 1;
            }
            from_issue.push(at.saturating_duration_since(t.issued));
            from_ack.push(at.saturating_duration_since(t.acked));
        }
        let missing = acks.len() - seen.len();
        if missing + duplicated + unexpected > 0 {
            problems.push(format!(
                "watcher {w}: {missing} missing, {duplicated} duplicated, {unexpected} at unexpected revisions"
            ));
        }
    }
    if !problems.is_empty() {
        bail!(
            "{} of {} watchers did not get each of the {} events exactly once: {}{}",
            problems.len(),
            deliveries.len(),
            acks.len(),
            problems
                .iter()
                .take(5)
                .cloned()
                .collect::<Vec<_>>()
                .join("; "),
            if problems.len() > 5 { "; ..." } else { "" }
        );
    }
    from_issue.sort_unstable();
    from_ack.sort_unstable();
    let pick = |v: &[Duration], p| percentile(v, p).unwrap_or_default();
    Ok(WatchLatency {
        p50: pick(&from_issue, 50.0),
        p99: pick(&from_issue, 99.0),
        max: pick(&from_issue, 100.0),
        ack_p50: pick(&from_ack, 50.0),
        ack_p99: pick(&from_ack, 99.0),
        samples: from_issue.len(),
        clamped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measure_clamps_and_checks_exactly_once() {
        let t0 = Instant::now();
        let at = |us| t0 + Duration::from_micros(us);
        let acks = vec![
            Timed {
                revision: 10,
                issued: at(600),
                acked: at(1000),
            },
            Timed {
                revision: 11,
                issued: at(2800),
                acked: at(3000),
            },
        ];
        // Watcher 0 got revision 10 before the writer saw the ack.
        let ok = vec![
            vec![(10, at(900)), (11, at(3500))],
            vec![(10, at(1200)), (11, at(4000))],
        ];
        let m = measure(&acks, &ok).unwrap();
        assert_eq!(m.samples, 4);
        assert_eq!(m.clamped, 1);
        // From the ack, sorted: 0, 200, 500, 1000 µs.
        assert_eq!(m.ack_p50, Duration::from_micros(200));
        assert_eq!(m.ack_p99, Duration::from_micros(1000));
        // From the issue: 300, 600, 700, 1200 µs.
        assert_eq!(m.p50, Duration::from_micros(600));
        assert_eq!(m.p99, Duration::from_micros(1200));

        let dup = vec![vec![(10, at(1100)), (10, at(1100)), (11, at(3100))]];
        let err = measure(&acks, &dup).unwrap_err().to_string();
        assert!(err.contains("watcher 0: 0 missing, 1 duplicated"), "{err}");
        let missing = vec![
            vec![(10, at(1100))],
            vec![(10, at(1100)), (11, at(3100)), (12, at(3200))],
        ];
        let err = measure(&acks, &missing).unwrap_err().to_string();
        assert!(err.contains("watcher 0: 1 missing"), "{err}");
        assert!(
            err.contains("watcher 1: 0 missing, 0 duplicated, 1 at unexpected revisions"),
            "{err}"
        );
    }
}
