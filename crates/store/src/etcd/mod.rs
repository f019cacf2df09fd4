//! [`Store`] over a real etcd cluster, for deployments that need HA.
//!
//! The interface was modelled on etcd v3, so most calls are one etcd request.
//! What needs care is where etcd and the contract differ:
//! - etcd lets a watch start *at* the compaction revision; the contract says a
//!   start at or below it is gone, so the compaction point this client knows is
//!   checked before asking etcd.
//! - etcd's "compacted" error does not say where history now starts; that point
//!   is found by bisecting cheap count-only reads.
//! - Progress requested by the client may overtake queued events in etcd before
//!   3.4.24 / 3.5.8 (etcd issue 15220), so such a revision is passed on only after
//!   a grace period in which no event arrived.
//! - Reads are retried on transport errors. Writes are retried only when the
//!   request provably never reached etcd: a compare-and-swap that failed in
//!   flight may have committed, and only the caller can decide what to do.
//! - tonic's balanced channel keeps offering a dead member's endpoint (a failed
//!   reconnect reports "ready" and fails the next call), so while a member is
//!   down a good share of requests fail with a connect error. Those requests
//!   were never sent, which is what makes retrying them safe, writes included.

use std::future::Future;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use etcd_client as ec;
use etcd_client::{
    Client, CompactionOptions, Compare, CompareOp, ConnectOptions, DeleteOptions, EventType,
    GetOptions, KvClient, LeaseClient, PutOptions, Txn, TxnOp, TxnOpResponse, WatchClient,
    WatchOptions, WatchRequestSender, WatchResponseStream,
};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;
use tokio::time::{sleep, Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

mod watch;

use crate::{
    Error, Event, EventKind, KeyRange, KeyValue, Precondition, RangeRequest, RangeResponse, Result,
    Store, StoreOptions, Ticket, WatchRequest, WatchResponse, WatchStream, WriteOp, WriteOutcome,
    MAX_VALUE_BYTES,
};
use watch::Watch;

/// tonic refuses responses over 4 MiB by default, which a page of large objects
/// or a catch-up watch batch with `prev_kv` easily exceeds; etcd itself has no
/// response limit, so neither should the client.
const MAX_RESPONSE_BYTES: usize = 1 << 30;
/// Watch events buffered for a slow consumer before etcd's stream is paused.
const WATCH_BUFFER: usize = 1024;
/// Tries for a read that fails with a transport error (a member died, a leader
/// election is under way).
const READ_ATTEMPTS: u32 = 5;
/// Tries for a request that failed before it was sent. The balancer picks a dead
/// member's endpoint for up to two requests in three, so this must be generous;
/// each failed try costs a refused connection and a few milliseconds.
const UNSENT_ATTEMPTS: u32 = 30;
/// Consecutive failures to re-establish a broken watch before giving up; with
/// the capped backoff this rides out a leader election or a member restart.
const WATCH_RESUME_ATTEMPTS: u32 = 10;
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// gRPC status codes, as numbers so tonic need not be a direct dependency.
const GRPC_UNKNOWN: i32 = 2;
const GRPC_UNAVAILABLE: i32 = 14;
type GetResult = Result<ec::GetResponse, ec::Error>;

/// A key that is never written; reading it is the cheapest way to learn the
/// store revision or whether a revision is still readable.
const PROBE_KEY: &[u8] = b"\0";

/// A [`Store`] backed by an etcd v3 cluster (etcd 3.4 or later).
pub struct EtcdStore {
    inner: Arc<Inner>,
    compactor: Option<AbortHandle>,
}

/// What watch producers and the compactor share with the store.
struct Inner {
    // Holds the balanced channel's endpoint list open; the per-service clients
    // below are clones with raised message limits.
    _client: Client,
    kv: KvClient,
    watch: WatchClient,
    lease: LeaseClient,
    /// The highest compaction revision this client knows of.
    compacted: AtomicI64,
    opts: StoreOptions,
}

impl EtcdStore {
    /// Connect to the cluster at `endpoints` (`http://host:port`) and check that
    /// it answers, so a bad address fails at startup rather than on first use.
    pub async fn connect(endpoints: &[String], opts: StoreOptions) -> Result<EtcdStore> {
        if endpoints.is_empty() {
            return Err(Error::InvalidRequest("no etcd endpoints given".into()));
        }
        let options = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(3))
            // etcd answers pings more often than every 5 s, or pings without an
            // open stream, with GOAWAY "too many pings".
            .with_keep_alive(Duration::from_secs(10), Duration::from_secs(5))
            .with_keep_alive_while_idle(false)
            // A member cut off from the leader fails requests (and closes watches)
            // instead of serving stale data, so they move to a healthy member.
            .with_require_leader(true);
        let client = Client::connect(endpoints, Some(options)).await?;
        let inner = Arc::new(Inner {
            kv: client
                .kv_client()
                .max_decoding_message_size(MAX_RESPONSE_BYTES),
            watch: client
                .watch_client()
                .max_decoding_message_size(MAX_RESPONSE_BYTES),
            lease: client.lease_client(),
            _client: client,
            compacted: AtomicI64::new(0),
            opts,
        });
        let revision = inner.current_revision().await?;
        // Another process (or an earlier run) may have compacted already.
        match inner.find_compacted(0).await {
            Ok(c) => inner.note_compacted(c),
            Err(e) => warn!(error = %e, "could not determine etcd's compaction revision"),
        }
        let compactor = inner
            .opts
            .compaction_interval
            .map(|every| spawn_compactor(Arc::downgrade(&inner), every));
        info!(
            ?endpoints,
            revision,
            compacted = inner.compacted.load(Ordering::SeqCst),
            "connected to etcd"
        );
        Ok(EtcdStore { inner, compactor })
    }
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        if let Some(h) = self.compactor.take() {
            h.abort();
        }
    }
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("compacted", &self.inner.compacted.load(Ordering::SeqCst))
            .finish_non_exhaustive()
    }
}

/// Every `every`, compact to the revision that was current at the previous tick,
/// so history always covers at least one interval (kube-apiserver does the same).
/// Holds only a `Weak`, and is aborted when the store is dropped.
fn spawn_compactor(inner: Weak<Inner>, every: Duration) -> AbortHandle {
    let task = tokio::spawn(async move {
        let mut ticker = tokio::time::interval_at(Instant::now() + every, every);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let mut previous = 0;
        loop {
            ticker.tick().await;
            let Some(inner) = inner.upgrade() else { return };
            if previous > inner.compacted.load(Ordering::SeqCst) {
                match inner.compact(previous).await {
                    Ok(()) => info!(revision = previous, "compacted etcd history"),
                    // Another client compacted further; fine.
                    Err(Error::Compacted { .. }) => {}
                    Err(e) => warn!(revision = previous, error = %e, "periodic compaction failed"),
                }
            }
            match inner.current_revision().await {
                Ok(r) => previous = r,
                Err(e) => warn!(error = %e, "periodic compaction could not read the revision"),
            }
        }
    });
    task.abort_handle()
}

impl Inner {
    /// Run a request, retrying it when that is known to be harmless: always if
    /// it never reached etcd, and on any transport failure if it is a read.
    async fn retry<T, F, Fut>(&self, op: &'static str, read: bool, mut f: F) -> Result<T, ec::Error>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, ec::Error>>,
    {
        let (mut failures, mut unsent) = (0, 0);
        loop {
            match f().await {
                Ok(v) => return Ok(v),
                Err(e) if unsent + 1 < UNSENT_ATTEMPTS && is_unsent(&e) => {
                    unsent += 1;
                    debug!(op, unsent, error = %e, "etcd request not sent; retrying");
                    sleep(Duration::from_millis(2 * u64::from(unsent))).await;
                }
                Err(e) if read && failures + 1 < READ_ATTEMPTS && is_transient(&e) => {
                    failures += 1;
                    debug!(op, failures, error = %e, "etcd read failed; retrying");
                    sleep(backoff(failures)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn get(&self, op: &'static str, key: &[u8], opts: GetOptions) -> GetResult {
        self.retry(op, true, || {
            let (mut kv, key, opts) = (self.kv.clone(), key.to_vec(), opts.clone());
            async move { kv.get(key, Some(opts)).await }
        })
        .await
    }

    async fn current_revision(&self) -> Result<i64> {
        let opts = GetOptions::new().with_count_only();
        let resp = self.get("current_revision", PROBE_KEY, opts).await?;
        Ok(header_revision(resp.header()))
    }

    /// Whether history at `revision` can still be read.
    async fn readable(&self, revision: i64) -> Result<bool> {
        let opts = GetOptions::new().with_count_only().with_revision(revision);
        match self.get("readable", PROBE_KEY, opts).await {
            Ok(_) => Ok(true),
            Err(e) if is_compacted(&e) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// etcd's compaction revision, given that reading at `unreadable` failed
    /// (0: unknown). etcd keeps the compaction revision itself readable, so it
    /// is the lowest readable revision; bisecting costs a few dozen tiny reads
    /// and only happens at startup or when someone else compacted.
    async fn find_compacted(&self, unreadable: i64) -> Result<i64> {
        let (mut lo, mut hi) = (unreadable.max(0), self.current_revision().await?.max(1));
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if self.readable(mid).await? {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        // Revision 1 is readable in a never-compacted store.
        Ok(if hi <= 1 { 0 } else { hi })
    }

    fn note_compacted(&self, revision: i64) {
        self.compacted.fetch_max(revision, Ordering::SeqCst);
    }

    /// The error for a read at `requested` that etcd refused as compacted.
    async fn compacted_error(&self, requested: i64) -> Error {
        if self.compacted.load(Ordering::SeqCst) <= requested {
            // Someone else compacted further than this client knows.
            match self.find_compacted(requested).await {
                Ok(c) => self.note_compacted(c),
                Err(e) => warn!(requested, error = %e, "could not locate compaction revision"),
            }
        }
        let compacted = self.compacted.load(Ordering::SeqCst).max(requested + 1);
        Error::Compacted {
            requested,
            compacted,
        }
    }

    async fn future_error(&self, requested: i64) -> Error {
        let current = self.current_revision().await.unwrap_or(requested - 1);
        Error::FutureRevision { requested, current }
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        let opts = CompactionOptions::new().with_physical();
        let res = self
            .retry("compact", true, || {
                let mut kv = self.kv.clone();
                let opts = opts.clone();
                async move { kv.compact(revision, Some(opts)).await }
            })
            .await;
        match res {
            Ok(_) => {
                self.note_compacted(revision);
                Ok(())
            }
            // etcd refuses to compact at or below its compaction point.
            Err(e) if is_compacted(&e) => {
                self.note_compacted(revision);
                let compacted = self.compacted.load(Ordering::SeqCst);
                Err(Error::Compacted {
                    requested: revision,
                    compacted,
                })
            }
            Err(e) if is_future(&e) => Err(self.future_error(revision).await),
            Err(e) => Err(e.into()),
        }
    }
}

#[async_trait]
impl Store for EtcdStore {
    async fn range(&self, req: RangeRequest) -> Result<RangeResponse> {
        let (key, end) = etcd_range(&req.range)?;
        // No sort option: etcd returns keys in ascending order already, and
        // asking for a sort makes etcd read the whole range before applying the limit.
        let mut opts = GetOptions::new()
            .with_revision(req.revision)
            .with_limit(req.limit.max(0));
        if !end.is_empty() {
            opts = opts.with_range(end);
        }
        let mut resp = match self.inner.get("range", &key, opts).await {
            Ok(r) => r,
            Err(e) if is_compacted(&e) => {
                return Err(self.inner.compacted_error(req.revision).await)
            }
            Err(e) if is_future(&e) => return Err(self.inner.future_error(req.revision).await),
            Err(e) => return Err(e.into()),
        };
        Ok(RangeResponse {
            // etcd's header has the current revision even for a past read.
            revision: match req.revision {
                r if r > 0 => r,
                _ => header_revision(resp.header()),
            },
            more: resp.more(),
            count: resp.count(),
            kvs: resp.take_kvs().into_iter().map(kv_owned).collect(),
        })
    }

    async fn write(&self, cond: Precondition, op: WriteOp) -> Result<WriteOutcome> {
        op.validate()?;
        let key = op.key().to_vec();
        let mut compares = Vec::new();
        match cond {
            Precondition::None => {}
            Precondition::Absent => {
                compares.push(Compare::create_revision(key.clone(), CompareOp::Equal, 0))
            }
            // Tickets are handed out only once a write is durable here (the
            // default `write_pipelined`), so one is a plain revision.
            Precondition::ModRevision(r) | Precondition::Ticket(Ticket { revision: r, .. }) => {
                compares.push(Compare::mod_revision(key.clone(), CompareOp::Equal, r))
            }
            // This backend gives no write ids, so none can be named.
            Precondition::After(id) => {
                return Err(Error::InvalidRequest(format!(
                    "no pipelined write {} to chain on",
                    id.0
                )))
            }
        }
        // Deleting nothing, or updating a key that is gone, must fail without
        // taking a revision (etcd would happily commit an empty delete).
        if matches!(op, WriteOp::Delete { .. })
            || matches!(cond, Precondition::ModRevision(_) | Precondition::Ticket(_))
        {
            compares.push(Compare::version(key.clone(), CompareOp::Greater, 0));
        }
        let mut lease = 0;
        let (then, new_value) = match op {
            WriteOp::Put { value, ttl, .. } => {
                let mut po = PutOptions::new().with_prev_key();
                if let Some(ttl) = ttl {
                    lease = self.grant(ttl).await?;
                    po = po.with_lease(lease);
                }
                (
                    TxnOp::put(key.clone(), value.to_vec(), Some(po)),
                    Some(value),
                )
            }
            WriteOp::Delete { .. } => (
                TxnOp::delete(key.clone(), Some(DeleteOptions::new().with_prev_key())),
                None,
            ),
        };
        let txn = Txn::new()
            .when(compares)
            .and_then(vec![then])
            .or_else(vec![TxnOp::get(key.clone(), None)]);
        let res = self
            .inner
            .retry("write", false, || {
                let mut kv = self.inner.kv.clone();
                let txn = txn.clone();
                async move { kv.txn(txn).await }
            })
            .await;
        let resp = match res {
            Ok(r) => r,
            Err(e) if etcd_says(&e, "request is too large") => {
                return Err(Error::ValueTooLarge {
                    key: String::from_utf8_lossy(&key).into_owned(),
                    size: new_value.map_or(0, |v| v.len()),
                    limit: MAX_VALUE_BYTES,
                });
            }
            // Not retried, and the lease is kept: the write may have committed.
            Err(e) => return Err(e.into()),
        };
        let revision = header_revision(resp.header());
        let mut results = resp.op_responses().into_iter();
        if !resp.succeeded() {
            if lease != 0 {
                self.revoke(lease).await;
            }
            let current = match results.next() {
                Some(TxnOpResponse::Get(mut g)) => g.take_kvs().into_iter().next().map(kv_owned),
                _ => None,
            };
            return Ok(WriteOutcome::Failed { current });
        }
        let (kv, prev) = match (results.next(), new_value) {
            (Some(TxnOpResponse::Put(mut p)), Some(value)) => {
                let prev = p.take_prev_key().map(kv_owned);
                let kv = KeyValue {
                    key,
                    value,
                    create_revision: prev.as_ref().map_or(revision, |p| p.create_revision),
                    mod_revision: revision,
                    version: prev.as_ref().map_or(1, |p| p.version + 1),
                };
                (kv, prev)
            }
            (Some(TxnOpResponse::Delete(mut d)), None) => {
                let prev = d.take_prev_kvs().into_iter().next().map(kv_owned);
                let (value, create_revision, version) = (Bytes::new(), 0, 0);
                let kv = KeyValue {
                    key,
                    value,
                    create_revision,
                    mod_revision: revision,
                    version,
                };
                (kv, prev)
            }
            _ => {
                return Err(ec::Error::Internal("txn response lacks the op's result".into()).into())
            }
        };
        Ok(WriteOutcome::Committed { revision, kv, prev })
    }

    async fn watch(&self, req: WatchRequest) -> Result<WatchStream> {
        let (key, end) = etcd_range(&req.range)?;
        let start = if req.start_revision > 0 {
            req.start_revision
        } else {
            self.inner.current_revision().await? + 1
        };
        let (tx, rx) = mpsc::channel(WATCH_BUFFER);
        let compacted = self.inner.compacted.load(Ordering::SeqCst);
        if start <= compacted {
            // A fresh channel has room for one item.
            let _ = tx.try_send(Err(Error::Compacted {
                requested: start,
                compacted,
            }));
            return Ok(WatchStream::new(rx, None));
        }
        let watch = Watch {
            inner: self.inner.clone(),
            key,
            end,
            progress_notify: req.progress_notify,
            next: start,
            tx,
        };
        // Opening here, not in the task, reports an unreachable cluster to the caller.
        let conn = self.inner.retry("watch", true, || watch.open()).await?;
        let task = tokio::spawn(async move { watch.run(conn).await });
        Ok(WatchStream::new(rx, Some(task.abort_handle())))
    }

    async fn compact(&self, revision: i64) -> Result<()> {
        self.inner.compact(revision).await
    }

    async fn current_revision(&self) -> Result<i64> {
        self.inner.current_revision().await
    }

    async fn compacted_revision(&self) -> Result<i64> {
        Ok(self.inner.compacted.load(Ordering::SeqCst))
    }
}

impl EtcdStore {
    /// A lease for a TTL write. etcd counts whole seconds, so the TTL is rounded
    /// up: a key may outlive its TTL by under a second, but never expire early.
    async fn grant(&self, ttl: Duration) -> Result<i64> {
        let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
        let secs = i64::try_from(secs.max(1))
            .map_err(|_| Error::InvalidRequest(format!("ttl {ttl:?} is too long")))?;
        let lease = self
            .inner
            .retry("grant", false, || {
                let mut lease = self.inner.lease.clone();
                async move { lease.grant(secs, None).await }
            })
            .await?;
        Ok(lease.id())
    }

    /// Drop the unused lease of a write whose precondition failed; if this fails
    /// the lease simply expires with nothing attached.
    async fn revoke(&self, lease: i64) {
        let res = self
            .inner
            .retry("revoke", true, || {
                let mut client = self.inner.lease.clone();
                async move { client.revoke(lease).await }
            })
            .await;
        if let Err(e) = res {
            debug!(lease, error = %e, "could not revoke unused lease");
        }
    }
}

/// etcd's `(key, range_end)` for a range. etcd has no empty key, so an empty
/// start means the same as `"\0"`; an empty end ("no upper bound") is `"\0"` too.
fn etcd_range(range: &KeyRange) -> Result<(Vec<u8>, Vec<u8>)> {
    let key = match (&range.range_end, range.key.is_empty()) {
        (None, true) => return Err(Error::InvalidRequest("key must not be empty".into())),
        (Some(_), true) => vec![0],
        (_, false) => range.key.clone(),
    };
    let end = match &range.range_end {
        None => Vec::new(),
        Some(end) if end.is_empty() => vec![0],
        Some(end) => end.clone(),
    };
    Ok((key, end))
}

fn header_revision(header: Option<&ec::ResponseHeader>) -> i64 {
    header.map_or(0, |h| h.revision())
}

fn kv_owned(kv: ec::KeyValue) -> KeyValue {
    let (create_revision, mod_revision, version) =
        (kv.create_revision(), kv.mod_revision(), kv.version());
    let (key, value) = kv.into_key_value();
    KeyValue {
        key,
        value: Bytes::from(value),
        create_revision,
        mod_revision,
        version,
    }
}

fn kv_ref(kv: &ec::KeyValue) -> KeyValue {
    KeyValue {
        key: kv.key().to_vec(),
        value: Bytes::copy_from_slice(kv.value()),
        create_revision: kv.create_revision(),
        mod_revision: kv.mod_revision(),
        version: kv.version(),
    }
}

fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF
        .saturating_mul(1 << attempt.saturating_sub(1).min(10))
        .min(MAX_BACKOFF)
}

/// Whether etcd answered with an error saying `what`. etcd's error codes are
/// coarse (compacted and future revisions are both OutOfRange), and its own Go
/// client tells its errors apart by message too.
fn etcd_says(e: &ec::Error, what: &str) -> bool {
    matches!(e, ec::Error::GRpcStatus(s) if s.message().contains(what))
}

fn is_compacted(e: &ec::Error) -> bool {
    etcd_says(e, "required revision has been compacted")
}

fn is_future(e: &ec::Error) -> bool {
    etcd_says(e, "required revision is a future revision")
}

/// Failures that prove the request never reached an etcd member that could act
/// on it: the connection could not be made, or (with `require_leader`) the
/// member refused it up front for want of a leader.
fn is_unsent(e: &ec::Error) -> bool {
    let ec::Error::GRpcStatus(s) = e else {
        return false;
    };
    if s.message().contains("etcdserver: no leader") {
        return true;
    }
    let mut source = std::error::Error::source(s);
    while let Some(err) = source {
        if err.to_string().contains("tcp connect error")
            || err
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        source = err.source();
    }
    false
}

/// Failures that say nothing about the request itself: the connection broke or
/// the member cannot serve right now (no leader, leader changed, timeout).
/// tonic reports a connection that died mid-request as `Unknown` with the
/// transport error as its source; statuses sent by etcd have no source.
fn is_transient(e: &ec::Error) -> bool {
    match e {
        ec::Error::TransportError(_) | ec::Error::IoError(_) => true,
        ec::Error::GRpcStatus(s) => {
            let code = i32::from(s.code());
            code == GRPC_UNAVAILABLE
                || (code == GRPC_UNKNOWN && std::error::Error::source(s).is_some())
        }
        _ => false,
    }
}
