//! One task per watch: replay from the log, then follow committed batches.
//!
//! The task subscribes to the broadcast of committed batches *before* reading
//! the current revision, so every batch past that revision reaches it. Batches at
//! or below the next revision to deliver are skipped; history below it is read
//! from the log. When the task lags behind the broadcast it reads the gap from
//! the log, so a slow consumer costs itself latency and never costs writers.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rusqlite::params;
use tokio::sync::{broadcast, mpsc};

use super::writer::Batch;
use super::{ReaderSource, Shared};
use crate::{Error, Event, EventKind, KeyRange, KeyValue, Result, WatchRequest, WatchResponse, WatchStream};

/// Responses buffered for the consumer before the task waits.
const CONSUMER_BUFFER: usize = 256;
/// Log rows read per catch-up query.
const REPLAY_CHUNK: i64 = 2048;

pub(super) fn start(shared: &Arc<Shared>, reader: ReaderSource, req: WatchRequest, progress: Duration) -> WatchStream {
    let (tx, rx) = mpsc::channel(CONSUMER_BUFFER);
    let sub = shared.events.subscribe();
    let (cur, compacted) = {
        let st = shared.state.read().expect("state lock");
        (st.rev, st.compact_rev)
    };
    let start = if req.start_revision <= 0 { cur + 1 } else { req.start_revision };
    if start <= compacted {
        let _ = tx.try_send(Err(Error::Compacted { requested: start, compacted }));
        return WatchStream::new(rx, None);
    }
    let w = Watch { shared: Arc::downgrade(shared), reader, range: req.range, next: start, tx };
    let handle = tokio::spawn(w.run(sub, cur, req.progress_notify.then_some(progress)));
    WatchStream::new(rx, Some(handle.abort_handle()))
}

struct Watch {
    shared: std::sync::Weak<Shared>,
    reader: ReaderSource,
    range: KeyRange,
    /// The next revision this watch has not yet delivered.
    next: i64,
    tx: mpsc::Sender<Result<WatchResponse>>,
}

impl Watch {
    async fn run(mut self, mut sub: broadcast::Receiver<Arc<Batch>>, cur: i64, progress: Option<Duration>) {
        if let Err(e) = self.catch_up(cur).await {
            let _ = self.tx.send(Err(e)).await;
            return;
        }
        let period = progress.unwrap_or(Duration::from_secs(3600));
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        let mut sent_since_tick = false;
        loop {
            tokio::select! {
                biased;
                r = sub.recv() => match r {
                    Ok(batch) => {
                        if batch.last_rev < self.next {
                            continue;
                        }
                        let events: Vec<Event> = batch
                            .events
                            .iter()
                            .filter(|e| e.kv.mod_revision >= self.next && self.range.contains(&e.kv.key))
                            .cloned()
                            .collect();
                        self.next = batch.last_rev + 1;
                        if !events.is_empty() {
                            sent_since_tick = true;
                            if self.tx.send(Ok(WatchResponse::Events(events))).await.is_err() {
                                return;
                            }
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, next = self.next, "watch lagged; reading the log");
                        let Some(shared) = self.shared.upgrade() else { return };
                        let cur = shared.state.read().expect("state lock").rev;
                        drop(shared);
                        sent_since_tick = true;
                        if let Err(e) = self.catch_up(cur).await {
                            let _ = self.tx.send(Err(e)).await;
                            return;
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick(), if progress.is_some() => {
                    if !sent_since_tick {
                        let p = WatchResponse::Progress { revision: self.next - 1 };
                        if self.tx.send(Ok(p)).await.is_err() {
                            return;
                        }
                    }
                    sent_since_tick = false;
                }
                _ = self.tx.closed() => return,
            }
        }
    }

    /// Deliver every change in `[next, upto]` from the log.
    async fn catch_up(&mut self, upto: i64) -> Result<()> {
        while self.next <= upto {
            let lo = self.next;
            let hi = (lo + REPLAY_CHUNK - 1).min(upto);
            let reader = self.reader.clone();
            let range = self.range.clone();
            let shared = self.shared.clone();
            let events = tokio::task::spawn_blocking(move || read_log(&reader, &shared, &range, lo, hi))
                .await
                .map_err(|e| Error::Closed(e.to_string()))??;
            self.next = hi + 1;
            if !events.is_empty() && self.tx.send(Ok(WatchResponse::Events(events))).await.is_err() {
                return Err(Error::Closed("watch consumer gone".into()));
            }
        }
        Ok(())
    }
}

fn read_log(reader: &ReaderSource, shared: &std::sync::Weak<Shared>, range: &KeyRange, lo: i64, hi: i64) -> Result<Vec<Event>> {
    let events = reader.with_reader(|conn| {
        let tx = conn.unchecked_transaction()?;
        let mut rows = tx.prepare_cached(
            "SELECT rev, key, create_rev, version, value FROM kv WHERE rev >= ?1 AND rev <= ?2 ORDER BY rev",
        )?;
        let mut prev_q = tx.prepare_cached(
            "SELECT rev, create_rev, version, value FROM kv WHERE key = ?1 AND rev < ?2 ORDER BY rev DESC LIMIT 1",
        )?;
        let mut out = Vec::new();
        let mut it = rows.query(params![lo, hi])?;
        while let Some(r) = it.next()? {
            let key: Vec<u8> = r.get(1)?;
            if !range.contains(&key) {
                continue;
            }
            let rev: i64 = r.get(0)?;
            let value: Option<Vec<u8>> = r.get(4)?;
            let prev_kv = prev_q
                .query_row(params![key, rev], |p| {
                    let v: Option<Vec<u8>> = p.get(3)?;
                    let (mod_revision, create_revision, version) = (p.get(0)?, p.get(1)?, p.get(2)?);
                    Ok(v.map(|v| KeyValue {
                        key: key.clone(),
                        value: Bytes::from(v),
                        create_revision,
                        mod_revision,
                        version,
                    }))
                })
                .or_else(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => Ok(None),
                    e => Err(e),
                })?;
            let (kind, value) = match value {
                Some(v) => (EventKind::Put, Bytes::from(v)),
                None => (EventKind::Delete, Bytes::new()),
            };
            out.push(Event {
                kind,
                kv: KeyValue { key, value, create_revision: r.get(2)?, mod_revision: rev, version: r.get(3)? },
                prev_kv,
            });
        }
        Ok(out)
    })?;
    // Compaction publishes its revision before it deletes rows: if it passed `lo`
    // while we read, rows may be missing, and the watch must not pretend otherwise.
    let compacted = shared.upgrade().map_or(0, |s| s.state.read().expect("state lock").compact_rev);
    if lo <= compacted {
        return Err(Error::Compacted { requested: lo, compacted });
    }
    Ok(events)
}
