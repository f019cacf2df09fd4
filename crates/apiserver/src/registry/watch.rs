//! Watch: from the cache's event window when it reaches back far enough,
//! otherwise from the store (which answers 410 once history is compacted).

use std::sync::Arc;
use std::time::Duration;

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

/// Events buffered for a slow client. When they are all unsent, the client
/// gets a short grace period, then its watch is closed; it resumes from the
/// last resourceVersion it saw. This bounds the memory a stalled client pins.
const CLIENT_BUFFER: usize = 128;
const FULL_BUFFER_GRACE: Duration = Duration::from_millis(250);
/// Bookmarks go out at most this often.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

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
        let entry = &crate::crd::entry_at_version(self.info, entry.clone());
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
    /// Start a watch; items arrive on the returned channel until the client
    /// goes away, the timeout passes, or the client falls too far behind.
    pub async fn watch(
        &self,
        rp: &ResourcePath,
        opts: ListOptions,
    ) -> ApiResult<mpsc::Receiver<WatchItem>> {
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
        let (tx, rx) = mpsc::channel(CLIENT_BUFFER);

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
                .map(|e| crate::crd::entry_at_version(rp.info, e))
                .collect();
            tokio::spawn(async move {
                for e in initial_items {
                    if tx
                        .send(WatchItem::Event(EventType::Added, e))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                if initial && tx.send(WatchItem::InitialEventsEnd(rev)).await.is_err() {
                    return;
                }
                follow_cache(tx, filter, past, sub, rev, timeout).await;
            });
            return Ok(rx);
        }
        let from = from.expect("set when not synthetic");
        let cache_rev = self.cache.revision();
        if from > cache_rev && !self.cache.wait_for(from, Duration::from_secs(3)).await {
            return Err(super::too_large_rv(from, self.cache.revision()));
        }
        match self.cache.subscribe_from(from) {
            Some((past, sub, _)) => {
                tokio::spawn(follow_cache(tx, filter, past, sub, from, timeout));
            }
            None => {
                let store = self.store.clone();
                tokio::spawn(follow_store(store, tx, filter, from, timeout));
            }
        }
        Ok(rx)
    }
}

fn rand_secs(max: u64) -> u64 {
    let b = uuid::Uuid::new_v4().as_u128();
    (b % max as u128) as u64
}

async fn follow_cache(
    tx: mpsc::Sender<WatchItem>,
    filter: Filter,
    past: Vec<Arc<crate::cache::Event>>,
    mut sub: broadcast::Receiver<Update>,
    mut sent_rev: i64,
    timeout: Duration,
) {
    let deadline = tokio::time::Instant::now() + timeout;
    for e in past {
        if e.rev <= sent_rev {
            continue;
        }
        if let Some((k, entry)) = filter.translate(e.kind, &e.entry, e.prev.as_ref()) {
            if tx.send(WatchItem::Event(k, entry)).await.is_err() {
                return;
            }
        }
        sent_rev = e.rev;
    }
    let mut last_bookmark = tokio::time::Instant::now();
    loop {
        let update = tokio::select! {
            u = sub.recv() => u,
            _ = tokio::time::sleep_until(deadline) => return,
            _ = tx.closed() => return,
        };
        match update {
            Ok(Update::Event(e)) => {
                if e.rev <= sent_rev {
                    continue;
                }
                sent_rev = e.rev;
                if let Some((k, entry)) = filter.translate(e.kind, &e.entry, e.prev.as_ref()) {
                    if !send_or_give_up(&tx, WatchItem::Event(k, entry)).await {
                        return;
                    }
                }
            }
            Ok(Update::Progress(rev)) => {
                sent_rev = sent_rev.max(rev);
                if filter.opts.allow_bookmarks && last_bookmark.elapsed() >= BOOKMARK_EVERY {
                    last_bookmark = tokio::time::Instant::now();
                    if !send_or_give_up(&tx, WatchItem::Bookmark(sent_rev)).await {
                        return;
                    }
                }
            }
            Err(broadcast::error::RecvError::Lagged(_))
            | Err(broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Send without waiting if there is room; otherwise wait a short grace period.
/// False means the client is gone or stalled and the watch should end.
async fn send_or_give_up(tx: &mpsc::Sender<WatchItem>, item: WatchItem) -> bool {
    match tx.try_send(item) {
        Ok(()) => true,
        Err(mpsc::error::TrySendError::Closed(_)) => false,
        Err(mpsc::error::TrySendError::Full(item)) => {
            matches!(
                tokio::time::timeout(FULL_BUFFER_GRACE, tx.send(item)).await,
                Ok(Ok(()))
            )
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
