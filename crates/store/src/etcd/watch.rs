//! The producer task behind an etcd watch: it follows etcd's stream, groups
//! events by revision, and re-opens the stream from the first undelivered
//! revision when it breaks.

use super::*;

/// One `WatchRequest`'s producer: an etcd watch stream, re-created from the
/// first undelivered revision when it breaks.
pub(super) struct Watch {
    pub(super) inner: Arc<Inner>,
    pub(super) key: Vec<u8>,
    pub(super) end: Vec<u8>,
    pub(super) progress_notify: bool,
    /// The first revision not yet delivered (every event below it has been).
    pub(super) next: i64,
    pub(super) tx: mpsc::Sender<Result<WatchResponse>>,
}

type Conn = (WatchRequestSender, WatchResponseStream);

/// Why [`Watch::pump`] stopped.
enum Stop {
    /// The consumer dropped the stream.
    Gone,
    /// The watch is over; the error is its last item.
    Fatal(Error),
    /// The etcd stream broke; resume from `next`.
    Broken(ec::Error),
}

impl Watch {
    pub(super) fn open(&self) -> impl Future<Output = Result<Conn, ec::Error>> + Send + 'static {
        let mut opts = WatchOptions::new()
            .with_start_revision(self.next)
            .with_prev_key();
        if !self.end.is_empty() {
            opts = opts.with_range(self.end.clone());
        }
        if self.progress_notify {
            opts = opts.with_progress_notify();
        }
        let mut client = self.inner.watch.clone();
        let key = self.key.clone();
        async move { Ok(client.watch(key, Some(opts)).await?.split()) }
    }

    pub(super) async fn run(mut self, first: Conn) {
        let mut conn = Some(first);
        let (mut failures, mut unsent) = (0, 0);
        loop {
            let err = match conn.take() {
                Some((sender, responses)) => {
                    match self.pump(sender, responses, &mut failures).await {
                        Stop::Gone => return,
                        Stop::Fatal(e) => {
                            let _ = self.tx.send(Err(e)).await;
                            return;
                        }
                        Stop::Broken(e) => e,
                    }
                }
                None => match self.open().await {
                    Ok(c) => {
                        conn = Some(c);
                        unsent = 0;
                        continue;
                    }
                    Err(e) if unsent + 1 < UNSENT_ATTEMPTS && is_unsent(&e) => {
                        unsent += 1;
                        sleep(Duration::from_millis(2 * u64::from(unsent))).await;
                        continue;
                    }
                    Err(e) => e,
                },
            };
            unsent = 0;
            failures += 1;
            if failures > WATCH_RESUME_ATTEMPTS {
                warn!(next = self.next, error = %err, "giving up on etcd watch");
                let _ = self.tx.send(Err(err.into())).await;
                return;
            }
            debug!(next = self.next, failures, error = %err, "etcd watch broke; resuming");
            sleep(backoff(failures)).await;
        }
    }

    async fn send(&self, item: WatchResponse) -> Result<(), Stop> {
        self.tx.send(Ok(item)).await.map_err(|_| Stop::Gone)
    }

    /// Forward one etcd stream until it ends. While idle with `progress_notify`,
    /// ask etcd for progress every `progress_interval`.
    async fn pump(
        &mut self,
        mut sender: WatchRequestSender,
        mut responses: WatchResponseStream,
        failures: &mut u32,
    ) -> Stop {
        let period = self
            .inner
            .opts
            .progress_interval
            .max(Duration::from_millis(10));
        let mut ticker = tokio::time::interval_at(Instant::now() + period, period);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // See the module docs: a requested-progress revision is held back until
        // it is `grace` old with no event seen since; an event would reveal it
        // overtook queued events (or make it moot).
        let grace = period / 2;
        let mut candidate: Option<(i64, Instant)> = None;
        let mut active = false;
        loop {
            tokio::select! {
                msg = responses.message() => {
                    let resp = match msg {
                        Ok(Some(r)) => r,
                        Ok(None) => {
                            let closed = "etcd closed the watch stream".to_string();
                            return Stop::Broken(ec::Error::WatchError(closed));
                        }
                        Err(e) => return Stop::Broken(e),
                    };
                    if resp.compact_revision() > 0 {
                        let compacted = resp.compact_revision();
                        self.inner.note_compacted(compacted);
                        return Stop::Fatal(Error::Compacted { requested: self.next, compacted });
                    }
                    if resp.canceled() {
                        let reason = resp.cancel_reason();
                        let reason = if reason.is_empty() { "cancelled by etcd" } else { reason };
                        return Stop::Fatal(Error::WatchCancelled(reason.to_string()));
                    }
                    if resp.created() {
                        *failures = 0;
                        continue;
                    }
                    if resp.events().is_empty() {
                        let revision = header_revision(resp.header());
                        if revision < self.next - 1 {
                            continue;
                        }
                        if resp.watch_id() == -1 {
                            // Answer to request_progress: possibly ahead of queued events.
                            candidate.get_or_insert((revision, Instant::now()));
                        } else if self.progress_notify {
                            // Server-side notification: sent in order with the events.
                            if let Err(stop) = self.progress(revision).await {
                                return stop;
                            }
                        }
                        continue;
                    }
                    candidate = None;
                    active = true;
                    for (revision, events) in group_by_revision(resp.events()) {
                        if let Err(stop) = self.send(WatchResponse::Events(events)).await {
                            return stop;
                        }
                        self.next = revision + 1;
                    }
                }
                _ = ticker.tick(), if self.progress_notify => {
                    if let Some((revision, at)) = candidate {
                        if at.elapsed() >= grace {
                            candidate = None;
                            if revision >= self.next - 1 {
                                if let Err(stop) = self.progress(revision).await {
                                    return stop;
                                }
                            }
                        }
                    }
                    if !active {
                        if let Err(e) = sender.request_progress().await {
                            return Stop::Broken(e);
                        }
                    }
                    active = false;
                }
            }
        }
    }

    async fn progress(&mut self, revision: i64) -> Result<(), Stop> {
        self.send(WatchResponse::Progress { revision }).await?;
        self.next = revision + 1;
        Ok(())
    }
}

/// Split one etcd response into one item per revision, so a consumer never sees
/// half of a transaction and every item has a single resume point.
fn group_by_revision(events: &[ec::Event]) -> Vec<(i64, Vec<Event>)> {
    let mut groups: Vec<(i64, Vec<Event>)> = Vec::new();
    for ev in events {
        let Some(kv) = ev.kv() else { continue };
        let event = Event {
            kind: match ev.event_type() {
                EventType::Put => EventKind::Put,
                EventType::Delete => EventKind::Delete,
            },
            kv: kv_ref(kv),
            prev_kv: ev.prev_kv().map(kv_ref),
        };
        let revision = kv.mod_revision();
        match groups.last_mut() {
            Some((r, evs)) if *r == revision => evs.push(event),
            _ => groups.push((revision, vec![event])),
        }
    }
    groups
}
