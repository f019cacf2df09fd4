//! One suite, run against every backend with identical expectations.
//!
//! A backend's test file provides `async fn fresh(opts: StoreOptions) -> Fixture`
//! returning an empty store, and expands [`crate::conformance_tests!`] with it.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use crate::{Store, StoreOptions};

/// An empty store plus whatever keeps it alive (a temp dir, an etcd process).
pub struct Fixture {
    /// The store under test.
    pub store: Arc<dyn Store>,
    /// Dropped after the test.
    pub guard: Box<dyn Any + Send>,
}

/// Something that makes fresh, empty stores.
pub trait Fresh: Fn(StoreOptions) -> Self::Fut {
    /// The future it returns.
    type Fut: Future<Output = Fixture>;
}

impl<F, Fut> Fresh for F
where
    F: Fn(StoreOptions) -> Fut,
    Fut: Future<Output = Fixture>,
{
    type Fut = Fut;
}

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;

use crate::{
    Error, Event, EventKind, KeyRange, KeyValue, Precondition, RangeRequest, WatchRequest,
    WatchResponse, WatchStream, WriteId, WriteOp, WriteOutcome, MAX_VALUE_BYTES,
};

/// Expand one `#[tokio::test]` per conformance case, each calling `$fresh`.
#[macro_export]
macro_rules! conformance_tests {
    ($fresh:path) => {
        $crate::conformance_tests!(@cases $fresh;
            revisions_and_preconditions,
            revisions_are_dense_under_concurrency,
            cas_race,
            pipelined_chain,
            chained_by_id,
            paging_at_fixed_revision,
            watch_order_and_resume,
            watch_prefix_filter,
            slow_watcher_does_not_block_writers,
            compaction,
            ttl_expiry,
            progress_notify,
            value_limits
        );
    };
    (@cases $fresh:path; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                $crate::conformance::$case(&$fresh).await;
            }
        )*
    };
}

fn opts() -> StoreOptions {
    StoreOptions {
        compaction_interval: None,
        progress_interval: Duration::from_millis(200),
    }
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

async fn must(
    store: &dyn Store,
    cond: Precondition,
    op: WriteOp,
) -> (i64, KeyValue, Option<KeyValue>) {
    match store.write(cond, op.clone()).await.expect("write") {
        WriteOutcome::Committed { revision, kv, prev } => (revision, kv, prev),
        other => panic!("{op:?} under {cond:?} should commit, got {other:?}"),
    }
}

async fn put(store: &dyn Store, key: &str, value: &str) -> i64 {
    let op = WriteOp::Put {
        key: key.into(),
        value: b(value),
        ttl: None,
    };
    must(store, Precondition::None, op).await.0
}

/// Collect events until `n` have arrived, failing after `within`.
async fn take_events(w: &mut WatchStream, n: usize, within: Duration) -> Vec<Event> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    while out.len() < n {
        match tokio::time::timeout_at(deadline, w.next()).await {
            Ok(Some(Ok(WatchResponse::Events(evs)))) => out.extend(evs),
            Ok(Some(Ok(WatchResponse::Progress { .. }))) => {}
            Ok(Some(Err(e))) => panic!("watch failed after {} events: {e}", out.len()),
            Ok(None) => panic!("watch ended after {} of {n} events", out.len()),
            Err(_) => panic!("timed out with {} of {n} events", out.len()),
        }
    }
    out
}

/// Assert no event arrives within `quiet`.
async fn expect_no_events(w: &mut WatchStream, quiet: Duration) {
    let deadline = tokio::time::Instant::now() + quiet;
    loop {
        match tokio::time::timeout_at(deadline, w.next()).await {
            Err(_) => return,
            Ok(Some(Ok(WatchResponse::Progress { .. }))) => continue,
            Ok(other) => panic!("expected no events, got {other:?}"),
        }
    }
}

/// Revisions rise by one per committed write; failed preconditions change nothing
/// and report the current value; create/mod revisions and versions follow etcd.
pub async fn revisions_and_preconditions(fresh: &impl Fresh) {
    let fx = fresh(opts()).await;
    let s = fx.store.as_ref();
    let r0 = s.current_revision().await.unwrap();

    let (r1, kv, prev) = must(
        s,
        Precondition::Absent,
        WriteOp::Put {
            key: b"/a".to_vec(),
            value: b("1"),
            ttl: None,
        },
    )
    .await;
    assert_eq!(r1, r0 + 1);
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (r1, r1, 1)
    );
    assert_eq!(prev, None);

    // create-if-absent on an existing key fails and reports it
    match s.create(b"/a", b("x"), None).await.unwrap() {
        WriteOutcome::Failed { current: Some(cur) } => {
            assert_eq!(cur.value, b("1"));
            assert_eq!(cur.mod_revision, r1);
        }
        other => panic!("expected conflict, got {other:?}"),
    }
    // a stale update fails and reports the current value
    match s.update(b"/a", r1 - 1, b("x"), None).await.unwrap() {
        WriteOutcome::Failed { current: Some(cur) } => assert_eq!(cur.mod_revision, r1),
        other => panic!("expected conflict, got {other:?}"),
    }
    assert_eq!(
        s.current_revision().await.unwrap(),
        r1,
        "failed writes must not bump the revision"
    );

    let (r2, kv, prev) = must(
        s,
        Precondition::ModRevision(r1),
        WriteOp::Put {
            key: b"/a".to_vec(),
            value: b("2"),
            ttl: None,
        },
    )
    .await;
    assert_eq!(r2, r1 + 1);
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (r1, r2, 2)
    );
    assert_eq!(prev.unwrap().value, b("1"));

    let (got, rev) = s.get(b"/a").await.unwrap();
    assert_eq!(rev, r2);
    let got = got.unwrap();
    assert_eq!(
        (
            got.value.clone(),
            got.create_revision,
            got.mod_revision,
            got.version
        ),
        (b("2"), r1, r2, 2)
    );

    // delete with a stale revision fails; with the right one succeeds
    assert!(matches!(
        s.delete(b"/a", r1).await.unwrap(),
        WriteOutcome::Failed { current: Some(_) }
    ));
    let (r3, kv, prev) = must(
        s,
        Precondition::ModRevision(r2),
        WriteOp::Delete {
            key: b"/a".to_vec(),
        },
    )
    .await;
    assert_eq!(r3, r2 + 1);
    assert_eq!((kv.mod_revision, kv.version), (r3, 0));
    assert_eq!(prev.unwrap().value, b("2"));
    assert_eq!(s.get(b"/a").await.unwrap().0, None);

    // deleting a missing key is a failure that writes nothing
    assert_eq!(
        s.delete(b"/a", r3).await.unwrap(),
        WriteOutcome::Failed { current: None }
    );
    let op = WriteOp::Delete {
        key: b"/a".to_vec(),
    };
    assert_eq!(
        s.write(Precondition::None, op).await.unwrap(),
        WriteOutcome::Failed { current: None }
    );
    assert_eq!(s.current_revision().await.unwrap(), r3);

    // re-creation starts a new generation
    let (r4, kv, _) = must(
        s,
        Precondition::Absent,
        WriteOp::Put {
            key: b"/a".to_vec(),
            value: b("3"),
            ttl: None,
        },
    )
    .await;
    assert_eq!((r4, kv.create_revision, kv.version), (r3 + 1, r4, 1));

    // unconditional put, and an empty key is refused
    let r5 = put(s, "/b", "x").await;
    assert_eq!(r5, r4 + 1);
    let bad = s
        .write(
            Precondition::None,
            WriteOp::Put {
                key: vec![],
                value: b("x"),
                ttl: None,
            },
        )
        .await;
    assert!(matches!(bad, Err(Error::InvalidRequest(_))), "{bad:?}");
    assert_eq!(s.count(KeyRange::prefix("/")).await.unwrap(), 2);
}

/// Concurrent writers get distinct revisions with no gaps.
pub async fn revisions_are_dense_under_concurrency(fresh: &impl Fresh) {
    let fx = fresh(opts()).await;
    let r0 = fx.store.current_revision().await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..16 {
        let s = fx.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut revs = Vec::new();
            for i in 0..25 {
                let k = format!("/dense/{t}/{i}");
                revs.push(
                    s.create(k.as_bytes(), b("v"), None)
                        .await
                        .unwrap()
                        .revision()
                        .unwrap(),
                );
            }
            revs
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort();
    let expected: Vec<i64> = (r0 + 1..=r0 + 400).collect();
    assert_eq!(all, expected);
    assert_eq!(fx.store.current_revision().await.unwrap(), r0 + 400);
}

/// Read-modify-CAS loops from many tasks lose no increment.
pub async fn cas_race(fresh: &impl Fresh) {
    let fx = fresh(opts()).await;
    fx.store.create(b"/counter", b("0"), None).await.unwrap();
    let r0 = fx.store.current_revision().await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let s = fx.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for _ in 0..20 {
                loop {
                    let (kv, _) = s.get(b"/counter").await.unwrap();
                    let kv = kv.unwrap();
                    let n: u64 = std::str::from_utf8(&kv.value).unwrap().parse().unwrap();
                    match s
                        .update(b"/counter", kv.mod_revision, b(&(n + 1).to_string()), None)
                        .await
                        .unwrap()
                    {
                        WriteOutcome::Committed { .. } => break,
                        WriteOutcome::Failed { current } => {
                            assert!(current.unwrap().mod_revision > kv.mod_revision);
                            conflicts += 1;
                        }
                    }
                }
            }
            conflicts
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (kv, rev) = fx.store.get(b"/counter").await.unwrap();
    let kv = kv.unwrap();
    assert_eq!(kv.value, b("320"));
    assert_eq!(kv.version, 321);
    assert_eq!(rev, r0 + 320);
}

/// A chain of pipelined writes: each is submitted on the previous one's
/// ticket before that one is durable, all commit in order, each outcome
/// matches its ticket, and stale or failed tickets are refused.
pub async fn pipelined_chain(fresh: &impl Fresh) {
    let fx = fresh(opts()).await;
    let s = &fx.store;
    let put = |v: &str| WriteOp::Put {
        key: b"/chain".to_vec(),
        value: b(v),
        ttl: None,
    };
    let r0 = match s.create(b"/chain", b("0"), None).await.unwrap() {
        WriteOutcome::Committed { revision, .. } => revision,
        other => panic!("create: {other:?}"),
    };
    let mut cond = Precondition::ModRevision(r0);
    let mut first = None;
    let mut pending = Vec::new();
    for i in 1..=20 {
        let mut w = s
            .write_pipelined(cond, put(&i.to_string()), i < 20)
            .await
            .unwrap();
        let t = w.applied().await.expect("the precondition holds");
        assert_eq!(t.revision, r0 + i, "tickets are the next revisions");
        first.get_or_insert(t);
        cond = Precondition::Ticket(t);
        pending.push((t, w));
    }
    for (t, w) in pending {
        match w.outcome().await.unwrap() {
            WriteOutcome::Committed { revision, .. } => assert_eq!(revision, t.revision),
            other => panic!("{t:?}: {other:?}"),
        }
    }
    let (kv, _) = s.get(b"/chain").await.unwrap();
    let kv = kv.unwrap();
    assert_eq!((kv.value, kv.version), (b("20"), 21));
    // A ticket of an older version no longer holds.
    let mut w = s
        .write_pipelined(Precondition::Ticket(first.unwrap()), put("stale"), false)
        .await
        .unwrap();
    assert_eq!(w.applied().await, None);
    assert!(matches!(
        w.outcome().await.unwrap(),
        WriteOutcome::Failed { .. }
    ));
    // Nor does a plain revision that is not the key's.
    let mut w = s
        .write_pipelined(Precondition::ModRevision(r0), put("stale"), false)
        .await
        .unwrap();
    assert_eq!(w.applied().await, None);
    assert!(matches!(
        w.outcome().await.unwrap(),
        WriteOutcome::Failed { .. }
    ));
    let (kv, _) = s.get(b"/chain").await.unwrap();
    assert_eq!(kv.unwrap().value, b("20"));
}

/// Writes chained by the id of the write before them, without waiting for
/// its ticket: all commit in order; a name used twice, a write of the key
/// in between, or a write that failed breaks the chain. A backend without
/// ids refuses the precondition.
pub async fn chained_by_id(fresh: &impl Fresh) {
    let fx = fresh(opts()).await;
    let s = &fx.store;
    let put = |v: &str| WriteOp::Put {
        key: b"/named".to_vec(),
        value: b(v),
        ttl: None,
    };
    let r0 = match s.create(b"/named", b("0"), None).await.unwrap() {
        WriteOutcome::Committed { revision, .. } => revision,
        other => panic!("create: {other:?}"),
    };
    let first = s
        .write_pipelined(Precondition::ModRevision(r0), put("1"), true)
        .await
        .unwrap();
    let Some(mut id) = first.id() else {
        let r = s
            .write_pipelined(Precondition::After(WriteId(1)), put("x"), false)
            .await;
        let refused = match r {
            Err(_) => true,
            Ok(w) => matches!(w.outcome().await, Err(_) | Ok(WriteOutcome::Failed { .. })),
        };
        assert!(refused, "a backend without ids refuses After");
        return;
    };
    let mut pending = vec![first];
    for i in 2..=20 {
        let w = s
            .write_pipelined(Precondition::After(id), put(&i.to_string()), true)
            .await
            .unwrap();
        id = w.id().expect("a followed write has an id");
        pending.push(w);
    }
    let mut last = r0;
    for w in pending {
        match w.outcome().await.unwrap() {
            WriteOutcome::Committed { revision, .. } => {
                assert_eq!(revision, last + 1, "in order, one revision each");
                last = revision;
            }
            other => panic!("{other:?}"),
        }
    }
    let (kv, _) = s.get(b"/named").await.unwrap();
    assert_eq!(kv.unwrap().value, b("20"));
    // The last write's name holds once.
    let once = s
        .write_pipelined(Precondition::After(id), put("21"), true)
        .await
        .unwrap();
    let again = s
        .write_pipelined(Precondition::After(id), put("again"), false)
        .await
        .unwrap();
    assert!(matches!(
        once.outcome().await.unwrap(),
        WriteOutcome::Committed { .. }
    ));
    assert!(matches!(
        again.outcome().await.unwrap(),
        WriteOutcome::Failed { .. }
    ));
    // A write of the key in between breaks the chain.
    let before = s
        .write_pipelined(Precondition::None, put("22"), true)
        .await
        .unwrap();
    let id = before.id().unwrap();
    let between = s.write(Precondition::None, put("between")).await.unwrap();
    assert!(matches!(between, WriteOutcome::Committed { .. }));
    let after = s
        .write_pipelined(Precondition::After(id), put("late"), false)
        .await
        .unwrap();
    assert!(matches!(
        after.outcome().await.unwrap(),
        WriteOutcome::Failed { .. }
    ));
    // A write that failed cannot be chained on.
    let failed = s
        .write_pipelined(Precondition::ModRevision(r0), put("stale"), true)
        .await
        .unwrap();
    let id = failed.id().unwrap();
    let after = s
        .write_pipelined(Precondition::After(id), put("on a failure"), false)
        .await
        .unwrap();
    assert!(matches!(
        failed.outcome().await.unwrap(),
        WriteOutcome::Failed { .. }
    ));
    assert!(matches!(
        after.outcome().await.unwrap(),
        WriteOutcome::Failed { .. }
    ));
    let (kv, _) = s.get(b"/named").await.unwrap();
    assert_eq!(kv.unwrap().value, b("between"));
}

/// Pages read at one revision add up to exactly the snapshot at that revision,
/// while writers keep changing the range.
pub async fn paging_at_fixed_revision(fresh: &impl Fresh) {
    let fx = fresh(opts()).await;
    let s = fx.store.clone();
    let mut expected = BTreeMap::new();
    for i in 0..250 {
        let k = format!("/p/{i:04}");
        s.create(k.as_bytes(), b(&format!("v{i}")), None)
            .await
            .unwrap();
        expected.insert(k.into_bytes(), b(&format!("v{i}")));
    }
    put(s.as_ref(), "/q/outside", "x").await;
    let at = s.current_revision().await.unwrap();

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let churn = {
        let s = s.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let k = format!("/p/{:04}", i % 300);
                put(s.as_ref(), &k, "changed").await;
                if i % 7 == 0 {
                    let (kv, _) = s
                        .get(format!("/p/{:04}", (i * 3) % 250).as_bytes())
                        .await
                        .unwrap();
                    if let Some(kv) = kv {
                        s.delete(&kv.key, kv.mod_revision).await.unwrap();
                    }
                }
                i += 1;
            }
            i
        })
    };

    let mut got = BTreeMap::new();
    let mut req = RangeRequest::prefix("/p/").limit(40).at_revision(at);
    let mut pages = 0;
    loop {
        let resp = s.range(req.clone()).await.unwrap();
        assert_eq!(resp.revision, at);
        assert!(resp.count >= resp.kvs.len() as i64);
        pages += 1;
        for kv in &resp.kvs {
            assert!(kv.mod_revision <= at);
            got.insert(kv.key.clone(), kv.value.clone());
        }
        if !resp.more {
            break;
        }
        let last = resp.kvs.last().unwrap().key.clone();
        req = RangeRequest::prefix("/p/")
            .limit(40)
            .at_revision(at)
            .after(&last);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let churned = churn.await.unwrap();
    assert!(churned > 0, "writers must have run during paging");
    assert_eq!(pages, 7, "250 keys in pages of 40");
    assert_eq!(
        got, expected,
        "pages at a fixed revision must equal the snapshot"
    );

    // count at the old revision is still 250; the latest read sees the churn
    let resp = s
        .range(RangeRequest::prefix("/p/").limit(1).at_revision(at))
        .await
        .unwrap();
    assert_eq!(resp.count, 250);
    assert!(resp.more);
    let latest = s.range(RangeRequest::prefix("/p/")).await.unwrap();
    assert!(latest.revision > at);
    assert!(latest.kvs.iter().any(|kv| kv.value == b("changed")));
    assert_eq!(latest.count, latest.kvs.len() as i64);
    assert!(!latest.more);

    let future = s
        .range(RangeRequest::prefix("/p/").at_revision(latest.revision + 1000))
        .await;
    assert!(
        matches!(future, Err(Error::FutureRevision { .. })),
        "{future:?}"
    );
}

/// A watch delivers every change once, in order, with the previous value; a
/// watch started from a past revision replays exactly from there.
pub async fn watch_order_and_resume(fresh: &impl Fresh) {
    let fx = fresh(opts()).await;
    let s = fx.store.clone();
    let start = s.current_revision().await.unwrap() + 1;
    let mut w = s.watch(WatchRequest::prefix("/w/", 0)).await.unwrap();

    let mut writes = Vec::new(); // (revision, key, kind)
    for i in 0..60 {
        let k = format!("/w/{}", i % 10);
        let (kv, _) = s.get(k.as_bytes()).await.unwrap();
        match kv {
            Some(kv) if i % 4 == 0 => {
                let r = s
                    .delete(k.as_bytes(), kv.mod_revision)
                    .await
                    .unwrap()
                    .revision()
                    .unwrap();
                writes.push((r, k, EventKind::Delete));
            }
            _ => {
                let r = put(s.as_ref(), &k, &format!("v{i}")).await;
                writes.push((r, k, EventKind::Put));
            }
        }
    }
    let events = take_events(&mut w, writes.len(), Duration::from_secs(20)).await;
    let seen: Vec<(i64, String, EventKind)> = events
        .iter()
        .map(|e| (e.kv.mod_revision, e.kv.key_str(), e.kind))
        .collect();
    assert_eq!(seen, writes);
    for e in &events {
        match e.kind {
            EventKind::Delete => {
                assert!(e.prev_kv.is_some(), "a delete carries the deleted value");
                assert!(e.kv.value.is_empty());
            }
            EventKind::Put if e.kv.version > 1 => {
                let prev = e
                    .prev_kv
                    .as_ref()
                    .expect("an update carries the previous value");
                assert!(prev.mod_revision < e.kv.mod_revision);
                assert_eq!(prev.version + 1, e.kv.version);
            }
            EventKind::Put => assert!(e.prev_kv.is_none(), "a create has no previous value"),
        }
    }
    expect_no_events(&mut w, Duration::from_millis(300)).await;

    // resume from the middle: exactly the suffix, once
    let mid = writes[25].0;
    let mut w2 = s.watch(WatchRequest::prefix("/w/", mid)).await.unwrap();
    let replay = take_events(&mut w2, writes.len() - 25, Duration::from_secs(20)).await;
    let replay: Vec<(i64, String, EventKind)> = replay
        .iter()
        .map(|e| (e.kv.mod_revision, e.kv.key_str(), e.kind))
        .collect();
    assert_eq!(replay, writes[25..].to_vec());
    // and it keeps following live changes after the replay
    let r = put(s.as_ref(), "/w/live", "x").await;
    let live = take_events(&mut w2, 1, Duration::from_secs(10)).await;
    assert_eq!(live[0].kv.mod_revision, r);
    expect_no_events(&mut w2, Duration::from_millis(300)).await;

    // a watch from the very first revision replays everything
    let mut w3 = s.watch(WatchRequest::prefix("/w/", start)).await.unwrap();
    let all = take_events(&mut w3, writes.len() + 1, Duration::from_secs(20)).await;
    assert_eq!(all.last().unwrap().kv.mod_revision, r);
}

/// Only keys in the watched range are delivered; a single-key watch sees only it.
pub async fn watch_prefix_filter(fresh: &impl Fresh) {
    let fx = fresh(opts()).await;
    let s = fx.store.as_ref();
    let mut wp = s.watch(WatchRequest::prefix("/f/a/", 0)).await.unwrap();
    let mut wk = s
        .watch(WatchRequest {
            range: KeyRange::single("/f/a/1"),
            start_revision: 0,
            progress_notify: false,
        })
        .await
        .unwrap();
    put(s, "/f/b/1", "x").await;
    put(s, "/f/a/2", "x").await;
    put(s, "/f/a", "x").await;
    let r = put(s, "/f/a/1", "x").await;
    put(s, "/f/a/1/child", "x").await;
    let evs = take_events(&mut wp, 3, Duration::from_secs(10)).await;
    let keys: Vec<String> = evs.iter().map(|e| e.kv.key_str()).collect();
    assert_eq!(keys, ["/f/a/2", "/f/a/1", "/f/a/1/child"]);
    let evs = take_events(&mut wk, 1, Duration::from_secs(10)).await;
    assert_eq!(evs[0].kv.mod_revision, r);
    expect_no_events(&mut wk, Duration::from_millis(300)).await;
}

/// A watch whose consumer reads nothing does not slow writers, and later
/// receives every change in order.
pub async fn slow_watcher_does_not_block_writers(fresh: &impl Fresh) {
    let fx = fresh(opts()).await;
    let s = fx.store.clone();
    let mut w = s.watch(WatchRequest::prefix("/slow/", 0)).await.unwrap();
    let n_tasks = 16;
    let per_task = 200;
    let mut tasks = Vec::new();
    for t in 0..n_tasks {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                put(s.as_ref(), &format!("/slow/{t}/{i}"), &"x".repeat(512)).await;
            }
        }));
    }
    let all_written = async {
        for t in tasks {
            t.await.unwrap();
        }
    };
    tokio::time::timeout(Duration::from_secs(60), all_written)
        .await
        .expect("writers finished while a watcher was not reading");
    let events = take_events(&mut w, n_tasks * per_task, Duration::from_secs(60)).await;
    assert_eq!(events.len(), n_tasks * per_task);
    for pair in events.windows(2) {
        assert_eq!(
            pair[1].kv.mod_revision,
            pair[0].kv.mod_revision + 1,
            "in order, none missing, none twice"
        );
    }
}

/// After compaction: reads and watches below the point fail with `Compacted`,
/// the state at the point is intact, and later history still replays.
pub async fn compaction(fresh: &impl Fresh) {
    let fx = fresh(opts()).await;
    let s = fx.store.as_ref();
    put(s, "/c/keep", "old").await;
    let gone_rev = put(s, "/c/gone", "x").await;
    s.delete(b"/c/gone", gone_rev).await.unwrap();
    for i in 0..50 {
        put(s, "/c/hot", &format!("v{i}")).await;
    }
    let c = put(s, "/c/keep", "at-c").await;
    let after = put(s, "/c/hot", "after").await;
    let before_c = c - 3;

    s.compact(c).await.unwrap();
    assert_eq!(s.compacted_revision().await.unwrap(), c);

    let r = s
        .range(RangeRequest::prefix("/c/").at_revision(before_c))
        .await;
    assert!(matches!(r, Err(Error::Compacted { .. })), "{r:?}");
    let at_c = s
        .range(RangeRequest::prefix("/c/").at_revision(c))
        .await
        .unwrap();
    let state: Vec<(String, Bytes)> = at_c
        .kvs
        .iter()
        .map(|kv| (kv.key_str(), kv.value.clone()))
        .collect();
    assert_eq!(
        state,
        vec![
            ("/c/hot".to_string(), b("v49")),
            ("/c/keep".to_string(), b("at-c"))
        ]
    );

    let mut w = s
        .watch(WatchRequest::prefix("/c/", before_c))
        .await
        .unwrap();
    match tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("answer")
    {
        Some(Err(Error::Compacted { .. })) => {}
        other => panic!("expected Compacted, got {other:?}"),
    }
    let mut w = s.watch(WatchRequest::prefix("/c/", c)).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("answer")
    {
        Some(Err(Error::Compacted { .. })) => {}
        other => panic!("a watch from the compaction revision itself must fail, got {other:?}"),
    }
    let mut w = s.watch(WatchRequest::prefix("/c/", c + 1)).await.unwrap();
    let evs = take_events(&mut w, 1, Duration::from_secs(10)).await;
    assert_eq!(evs[0].kv.mod_revision, after);
    assert_eq!(
        evs[0].prev_kv.as_ref().map(|p| p.value.clone()),
        Some(b("v49"))
    );

    // compacting again at or below the point is refused
    assert!(matches!(s.compact(c).await, Err(Error::Compacted { .. })));
    let latest = s.range(RangeRequest::prefix("/c/")).await.unwrap();
    assert_eq!(latest.count, 2);
    // writes go on as before
    assert_eq!(put(s, "/c/new", "x").await, after + 1);
}

/// A key written with a TTL disappears after it, with an ordinary delete event.
pub async fn ttl_expiry(fresh: &impl Fresh) {
    let fx = fresh(opts()).await;
    let s = fx.store.as_ref();
    let mut w = s.watch(WatchRequest::prefix("/ttl/", 0)).await.unwrap();
    let op = WriteOp::Put {
        key: b"/ttl/event".to_vec(),
        value: b("e"),
        ttl: Some(Duration::from_secs(2)),
    };
    let (created, _, _) = must(s, Precondition::Absent, op).await;
    put(s, "/ttl/forever", "f").await;
    assert!(s.get(b"/ttl/event").await.unwrap().0.is_some());
    let evs = take_events(&mut w, 3, Duration::from_secs(15)).await;
    let del = &evs[2];
    assert_eq!(del.kind, EventKind::Delete);
    assert_eq!(del.kv.key_str(), "/ttl/event");
    assert_eq!(del.prev_kv.as_ref().unwrap().mod_revision, created);
    assert!(s.get(b"/ttl/event").await.unwrap().0.is_none());
    assert!(s.get(b"/ttl/forever").await.unwrap().0.is_some());
}

/// An idle watch with progress notification reports how far it has caught up.
pub async fn progress_notify(fresh: &impl Fresh) {
    let fx = fresh(opts()).await;
    let s = fx.store.as_ref();
    put(s, "/other/x", "x").await;
    let cur = s.current_revision().await.unwrap();
    let req = WatchRequest {
        range: KeyRange::prefix("/idle/"),
        start_revision: 0,
        progress_notify: true,
    };
    let mut w = s.watch(req).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(20), w.next())
        .await
        .expect("a progress notification")
    {
        Some(Ok(WatchResponse::Progress { revision })) => {
            assert!(
                revision >= cur,
                "progress {revision} must not be behind {cur}"
            );
        }
        other => panic!("expected progress, got {other:?}"),
    }
    // progress after writes elsewhere moves forward
    let r = put(s, "/other/y", "y").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, w.next())
            .await
            .expect("a progress notification")
        {
            Some(Ok(WatchResponse::Progress { revision })) if revision >= r => break,
            Some(Ok(WatchResponse::Progress { .. })) => continue,
            other => panic!("expected progress, got {other:?}"),
        }
    }
}

/// Values over 1.5 MiB are refused with a clear error; large ones under it work.
pub async fn value_limits(fresh: &impl Fresh) {
    let fx = fresh(opts()).await;
    let s = fx.store.as_ref();
    let big = Bytes::from(vec![b'x'; 1024 * 1024]);
    let (r, kv, _) = must(
        s,
        Precondition::Absent,
        WriteOp::Put {
            key: b"/big/ok".to_vec(),
            value: big.clone(),
            ttl: None,
        },
    )
    .await;
    assert_eq!(kv.mod_revision, r);
    assert_eq!(s.get(b"/big/ok").await.unwrap().0.unwrap().value, big);
    let too_big = Bytes::from(vec![b'x'; MAX_VALUE_BYTES + 1]);
    let err = s.create(b"/big/no", too_big, None).await.unwrap_err();
    assert!(matches!(err, Error::ValueTooLarge { .. }), "{err:?}");
    assert!(
        err.to_string().contains("/big/no"),
        "the error names the key: {err}"
    );
    assert_eq!(s.current_revision().await.unwrap(), r);
    assert!(s.get(b"/big/no").await.unwrap().0.is_none());
}
