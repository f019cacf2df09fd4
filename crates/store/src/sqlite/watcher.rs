//! A watch is a stream the consumer drives: replay from the log, then follow
//! committed batches.
//!
//! It subscribes to the broadcast of committed batches *before* reading the
//! current revision, so every batch past that revision reaches it. Batches below
//! the next revision to deliver are skipped; history below it is read from the
//! log. A consumer that stops polling just falls behind the broadcast ring; on its
//! next poll it reads the gap from the log. So a slow consumer costs itself
//! latency, never costs writers, and there is no task or buffer per watch.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rusqlite::params;
use tokio::sync::broadcast;

use super::writer::Batch;
use super::{codec, ReaderSource, Shared};
use crate::{
    Error, Event, EventKind, KeyRange, KeyValue, Result, WatchRequest, WatchResponse, WatchStream,
};

/// Log rows read per catch-up query.
const REPLAY_CHUNK: i64 = 2048;

pub(super) fn start(
    shared: &Arc<Shared>,
    reader: ReaderSource,
    req: WatchRequest,
    progress: Duration,
) -> WatchStream {
    let sub = shared.events.subscribe();
    let (cur, compacted) = {
        let st = shared.state.read().expect("state lock");
        (st.rev, st.compact_rev)
    };
    let start = if req.start_revision <= 0 {
        cur + 1
    } else {
        req.start_revision
    };
    if start <= compacted {
        let err = Error::Compacted {
            requested: start,
            compacted,
        };
        return WatchStream::from_stream(Box::pin(futures::stream::iter([Err(err)])));
    }
    let tick = req.progress_notify.then(|| {
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + progress, progress);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        t
    });
    let w = Watch {
        shared: Arc::downgrade(shared),
        reader,
        range: req.range,
        next: start,
        catch_up_to: cur,
        sub,
        tick,
        sent_since_tick: false,
        done: false,
    };
    WatchStream::from_stream(Box::pin(futures::stream::unfold(w, |mut w| async move {
        let item = w.step().await?;
        Some((item, w))
    })))
}

struct Watch {
    shared: std::sync::Weak<Shared>,
    reader: ReaderSource,
    range: KeyRange,
    /// The next revision this watch has not yet delivered.
    next: i64,
    /// Revisions up to here must be read from the log.
    catch_up_to: i64,
    sub: broadcast::Receiver<Arc<Batch>>,
    tick: Option<tokio::time::Interval>,
    sent_since_tick: bool,
    done: bool,
}

impl Watch {
    async fn step(&mut self) -> Option<Result<WatchResponse>> {
        if self.done {
            return None;
        }
        loop {
            if self.next <= self.catch_up_to {
                match self.read_chunk().await {
                    Ok(events) if events.is_empty() => continue,
                    Ok(events) => {
                        self.sent_since_tick = true;
                        return Some(Ok(WatchResponse::Events(events)));
                    }
                    Err(e) => {
                        self.done = true;
                        return Some(Err(e));
                    }
                }
            }
            let tick = async {
                match self.tick.as_mut() {
                    Some(t) => {
                        t.tick().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                biased;
                r = self.sub.recv() => match r {
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
                            self.sent_since_tick = true;
                            return Some(Ok(WatchResponse::Events(events)));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        let shared = self.shared.upgrade()?;
                        self.catch_up_to = shared.state.read().expect("state lock").rev;
                        tracing::debug!(missed, next = self.next, upto = self.catch_up_to, "watch lagged; reading the log");
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                _ = tick => {
                    let idle = !self.sent_since_tick;
                    self.sent_since_tick = false;
                    if idle {
                        return Some(Ok(WatchResponse::Progress { revision: self.next - 1 }));
                    }
                }
            }
        }
    }

    /// Read the next chunk of `[next, catch_up_to]` from the log.
    async fn read_chunk(&mut self) -> Result<Vec<Event>> {
        let lo = self.next;
        let hi = (lo + REPLAY_CHUNK - 1).min(self.catch_up_to);
        let reader = self.reader.clone();
        let range = self.range.clone();
        let shared = self.shared.clone();
        let events =
            tokio::task::spawn_blocking(move || read_log(&reader, &shared, &range, lo, hi))
                .await
                .map_err(|e| Error::Closed(e.to_string()))??;
        self.next = hi + 1;
        Ok(events)
    }
}

fn read_log(
    reader: &ReaderSource,
    shared: &std::sync::Weak<Shared>,
    range: &KeyRange,
    lo: i64,
    hi: i64,
) -> Result<Vec<Event>> {
    let events = reader.with_reader(|conn| {
        let tx = conn.unchecked_transaction()?;
        let mut rows = tx.prepare_cached(
            "SELECT rev, key, create_rev, version, value, codec FROM kv WHERE rev >= ?1 AND rev <= ?2 ORDER BY rev",
        )?;
        let mut prev_q = tx.prepare_cached(
            "SELECT rev, create_rev, version, value, codec FROM kv WHERE key = ?1 AND rev < ?2 ORDER BY rev DESC LIMIT 1",
        )?;
        let mut out = Vec::new();
        let mut it = rows.query(params![lo, hi])?;
        while let Some(r) = it.next()? {
            let key: Vec<u8> = r.get(1)?;
            if !range.contains(&key) {
                continue;
            }
            let rev: i64 = r.get(0)?;
            let value = codec::value(r, 4)?;
            let prev_kv = prev_q
                .query_row(params![key, rev], |p| {
                    let (mod_revision, create_revision, version) = (p.get(0)?, p.get(1)?, p.get(2)?);
                    Ok(codec::value(p, 3)?.map(|value| KeyValue {
                        key: key.clone(),
                        value,
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
                Some(v) => (EventKind::Put, v),
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
    let compacted = shared
        .upgrade()
        .map_or(0, |s| s.state.read().expect("state lock").compact_rev);
    if lo <= compacted {
        return Err(Error::Compacted {
            requested: lo,
            compacted,
        });
    }
    Ok(events)
}
