//! Watch: from the cache's event window when it reaches back far enough,
//! otherwise from the store (which answers 410 once history is compacted).

use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use std::pin::Pin;
use tokio::sync::{broadcast, mpsc};

use super::list::{check_fields, list_prefix, matches};
use super::{parse_rv, store_error, ListOptions, Registry};
use crate::cache::{make_entry, Entry, EventType, Update};
use crate::error::{ApiError, ApiResult};
use crate::route::ResourcePath;

/// What a watch sends.
#[derive(Debug)]
pub enum WatchItem {
    /// A change to an object.
    Event(EventType, Arc<Entry>),
    /// Progress: every change up to this revision was sent.
    Bookmark(i64),
    /// The synthetic initial events of `sendInitialEvents` are over.
    InitialEventsEnd(i64),
    /// The watch failed (e.g. 410); last item.
    Error(ApiError),
}

/// A client more than this many events behind, whose next event is older than
/// [`STALL_GRACE`], is stalled: its watch is closed and it resumes from the
/// last resourceVersion it saw. Nothing is buffered per client (the pending
/// events are the shared broadcast ring's), so a stalled client pins no
/// memory and never blocks writers or other watchers.
const CLIENT_BACKLOG: usize = 128;
const STALL_GRACE: Duration = Duration::from_millis(250);
/// Bookmarks go out at most this often.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);
/// Buffer between the store-backed follower task and the client.
const STORE_BUFFER: usize = 128;

/// The items of one watch. Ends when the timeout passes or the client falls
/// too far behind; the client dropping it ends the watch.
pub type WatchStream = Pin<Box<dyn Stream<Item = WatchItem> + Send + Sync>>;

struct Filter {
    prefix: String,
    opts: ListOptions,
    info: &'static crate::resources::ResourceInfo,
}

impl Filter {
    fn wants(&self, e: &Entry) -> bool {
        e.key.starts_with(&self.prefix) && matches(e, &self.opts)
    }

    /// Upstream's selector semantics on change: leaving the selection is a
    /// DELETED, entering it an ADDED.
    fn translate(
        &self,
        kind: EventType,
        entry: &Arc<Entry>,
        prev: Option<&Arc<Entry>>,
    ) -> Option<(EventType, Arc<Entry>)> {
        if !entry.key.starts_with(&self.prefix) {
            return None;
        }
        let now = matches(entry, &self.opts);
        let before = prev.is_some_and(|p| matches(p, &self.opts));
        let entry = &crate::convert::entry_for(self.info, entry.clone());
        match kind {
            EventType::Added if now => Some((EventType::Added, entry.clone())),
            EventType::Modified if now && before => Some((EventType::Modified, entry.clone())),
            EventType::Modified if now => Some((EventType::Added, entry.clone())),
            EventType::Modified if before => Some((EventType::Deleted, entry.clone())),
            EventType::Deleted if now || before => Some((EventType::Deleted, entry.clone())),
            _ => None,
        }
    }
}

impl Registry {
    /// Start a watch. Events from the cache are read straight from its
    /// broadcast by the client's own connection task: one wake-up per event
    /// per client, with no copy and no task in between.
    pub async fn watch(&self, rp: &ResourcePath, opts: ListOptions) -> ApiResult<WatchStream> {
        check_fields(rp.info, &opts)?;
        let mut opts = opts;
        if let Some(name) = &rp.name {
            // A watch on a single object is a field selector on its name.
            opts.fields
                .terms
                .push(("metadata.name".into(), name.clone(), true));
        }
        let rv = opts.resource_version.clone().filter(|s| !s.is_empty());
        let initial = opts.send_initial_events.unwrap_or(false);
        if initial && opts.resource_version_match.as_deref() != Some("NotOlderThan") {
            return Err(ApiError::invalid(
                "meta.k8s.io",
                "ListOptions",
                "",
                &[crate::error::FieldError::forbidden(
                    "resourceVersionMatch",
                    "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
                )],
            ));
        }
        let filter = Filter {
            prefix: list_prefix(rp),
            opts: opts.clone(),
            info: rp.info,
        };
        let timeout = Duration::from_secs(opts.timeout_seconds.unwrap_or(1800 + rand_secs(1800)));

        // Without a revision (or with 0), or when asked, begin with the current
        // state as synthetic ADDED events.
        let synthetic = rv.is_none() || rv.as_deref() == Some("0") || initial;
        let from = match rv.as_deref() {
            Some("0") | None => {
                if rv.is_none() && !self.cache.sync().await {
                    return Err(ApiError::timeout(
                        "the watch cache could not catch up with the store",
                    ));
                }
                None
            }
            Some(r) => Some(parse_rv(r)?),
        };
        if synthetic {
            let (items, rev) = self.cache.list(&filter.prefix);
            let Some((past, sub, _)) = self.cache.subscribe_from(rev) else {
                return Err(ApiError::timeout("the watch cache moved on; retry"));
            };
            let initial_items: Vec<Arc<Entry>> = items
                .into_iter()
                .filter(|e| filter.wants(e))
                .map(|e| crate::convert::entry_for(rp.info, e))
                .collect();
            let live = Live::new(filter, past, sub, rev, timeout)
                .with_initial(initial_items, initial.then_some(rev));
            return Ok(live.into_stream());
        }
        let from = from.expect("set when not synthetic");
        let cache_rev = self.cache.revision();
        if from > cache_rev && !self.cache.wait_for(from, Duration::from_secs(3)).await {
            return Err(super::too_large_rv(from, self.cache.revision()));
        }
        match self.cache.subscribe_from(from) {
            Some((past, sub, _)) => Ok(Live::new(filter, past, sub, from, timeout).into_stream()),
            None => {
                let (tx, mut rx) = mpsc::channel(STORE_BUFFER);
                let store = self.store.clone();
                tokio::spawn(follow_store(store, tx, filter, from, timeout));
                Ok(Box::pin(futures::stream::poll_fn(move |cx| {
                    rx.poll_recv(cx)
                })))
            }
        }
    }
}

fn rand_secs(max: u64) -> u64 {
    let b = uuid::Uuid::new_v4().as_u128();
    (b % max as u128) as u64
}

/// A watch served from the cache: the initial state (if asked), the events
/// already in the window, then live events from the broadcast.
struct Live {
    filter: Filter,
    initial: std::vec::IntoIter<Arc<Entry>>,
    initial_end: Option<i64>,
    past: std::vec::IntoIter<Arc<crate::cache::Event>>,
    sub: broadcast::Receiver<Update>,
    sent_rev: i64,
    deadline: Pin<Box<tokio::time::Sleep>>,
    last_bookmark: tokio::time::Instant,
}

impl Live {
    fn new(
        filter: Filter,
        past: Vec<Arc<crate::cache::Event>>,
        sub: broadcast::Receiver<Update>,
        sent_rev: i64,
        timeout: Duration,
    ) -> Live {
        Live {
            filter,
            initial: Vec::new().into_iter(),
            initial_end: None,
            past: past.into_iter(),
            sub,
            sent_rev,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            last_bookmark: tokio::time::Instant::now(),
        }
    }

    fn with_initial(mut self, items: Vec<Arc<Entry>>, end: Option<i64>) -> Live {
        self.initial = items.into_iter();
        self.initial_end = end;
        self
    }

    fn into_stream(self) -> WatchStream {
        Box::pin(futures::stream::unfold(self, |mut live| async move {
            let item = live.next().await?;
            Some((item, live))
        }))
    }

    /// The next item, or `None` when the watch is over.
    async fn next(&mut self) -> Option<WatchItem> {
        if let Some(e) = self.initial.next() {
            return Some(WatchItem::Event(EventType::Added, e));
        }
        if let Some(rev) = self.initial_end.take() {
            return Some(WatchItem::InitialEventsEnd(rev));
        }
        for e in self.past.by_ref() {
            if e.rev <= self.sent_rev {
                continue;
            }
            self.sent_rev = e.rev;
            if let Some((k, entry)) = self.filter.translate(e.kind, &e.entry, e.prev.as_ref()) {
                return Some(WatchItem::Event(k, entry));
            }
        }
        loop {
            let update = tokio::select! {
                biased;
                u = self.sub.recv() => u,
                _ = &mut self.deadline => return None,
            };
            match update {
                Ok(Update::Event(e)) => {
                    if e.rev <= self.sent_rev {
                        continue;
                    }
                    if self.sub.len() > CLIENT_BACKLOG && e.at.elapsed() > STALL_GRACE {
                        tracing::debug!(
                            rev = e.rev,
                            backlog = self.sub.len(),
                            "closing a stalled watch"
                        );
                        return None;
                    }
                    self.sent_rev = e.rev;
                    if let Some((k, entry)) =
                        self.filter.translate(e.kind, &e.entry, e.prev.as_ref())
                    {
                        return Some(WatchItem::Event(k, entry));
                    }
                }
                Ok(Update::Progress(rev)) => {
                    self.sent_rev = self.sent_rev.max(rev);
                    if self.filter.opts.allow_bookmarks
                        && self.last_bookmark.elapsed() >= BOOKMARK_EVERY
                    {
                        self.last_bookmark = tokio::time::Instant::now();
                        return Some(WatchItem::Bookmark(self.sent_rev));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_))
                | Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

async fn follow_store(
    store: Arc<dyn store::Store>,
    tx: mpsc::Sender<WatchItem>,
    filter: Filter,
    from: i64,
    timeout: Duration,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    let req = store::WatchRequest {
        range: store::KeyRange::prefix(filter.prefix.clone()),
        start_revision: from + 1,
        progress_notify: filter.opts.allow_bookmarks,
    };
    let mut stream = match store.watch(req).await {
        Ok(s) => s,
        Err(e) => {
            let _ = tx.send(WatchItem::Error(store_error(e))).await;
            return;
        }
    };
    loop {
        let item = tokio::select! {
            i = stream.next() => i,
            _ = tokio::time::sleep_until(deadline) => return,
            _ = tx.closed() => return,
        };
        match item {
            Some(Ok(store::WatchResponse::Events(evs))) => {
                for ev in evs {
                    let key = String::from_utf8_lossy(&ev.kv.key).into_owned();
                    let rev = ev.kv.mod_revision;
                    let prev = ev
                        .prev_kv
                        .as_ref()
                        .and_then(|p| make_entry(&key, &p.value, p.mod_revision))
                        .map(Arc::new);
                    let (kind, entry) = match ev.kind {
                        store::EventKind::Put => {
                            let kind = if prev.is_some() {
                                EventType::Modified
                            } else {
                                EventType::Added
                            };
                            (kind, make_entry(&key, &ev.kv.value, rev).map(Arc::new))
                        }
                        store::EventKind::Delete => (
                            EventType::Deleted,
                            prev.as_ref()
                                .and_then(|p| make_entry(&key, &p.raw, rev))
                                .map(Arc::new),
                        ),
                    };
                    let Some(entry) = entry else { continue };
                    if let Some((k, e)) = filter.translate(kind, &entry, prev.as_ref()) {
                        if tx.send(WatchItem::Event(k, e)).await.is_err() {
                            return;
                        }
                    }
                }
            }
            Some(Ok(store::WatchResponse::Progress { revision })) => {
                if tx.send(WatchItem::Bookmark(revision)).await.is_err() {
                    return;
                }
            }
            Some(Err(e)) => {
                let _ = tx.send(WatchItem::Error(store_error(e))).await;
                return;
            }
            None => return,
        }
    }
}
