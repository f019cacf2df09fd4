//! Losing the etcd leader under write load loses no acknowledged write, the
//! cluster keeps accepting writes, and a watch rides through the failover.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use store::{
    EtcdStore, Precondition, RangeRequest, Store, StoreOptions, WatchRequest, WatchResponse,
    WriteOp, WriteOutcome,
};
use test_support::etcd::EtcdCluster;

const WRITERS: usize = 8;

/// An acknowledged write: key, value, revision, and when it was acknowledged.
struct Ack {
    key: String,
    value: String,
    revision: i64,
    at: Instant,
}

/// The index of the current leader, asked of every member in turn.
async fn leader_index(cluster: &EtcdCluster) -> Option<usize> {
    let mut ids = Vec::new();
    let mut leader = None;
    for ep in cluster.endpoints() {
        let mut c = etcd_client::Client::connect([ep], None).await.ok()?;
        let status = c.status().await.ok()?;
        ids.push(status.header()?.member_id());
        leader = Some(status.leader());
    }
    ids.iter().position(|id| Some(*id) == leader)
}

async fn writer(store: Arc<EtcdStore>, id: usize, stop: Arc<AtomicBool>) -> (Vec<Ack>, usize) {
    let (mut acks, mut errors) = (Vec::new(), 0);
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        let key = format!("/fo/{id}/{n:05}");
        let value = format!("w{id}-{n}");
        n += 1;
        let op = WriteOp::Put {
            key: key.clone().into_bytes(),
            value: Bytes::from(value.clone()),
            ttl: None,
        };
        match tokio::time::timeout(
            Duration::from_secs(15),
            store.write(Precondition::Absent, op),
        )
        .await
        {
            Ok(Ok(WriteOutcome::Committed { revision, kv, .. })) => {
                assert_eq!(kv.mod_revision, revision);
                acks.push(Ack {
                    key,
                    value,
                    revision,
                    at: Instant::now(),
                });
            }
            // Every key is written once, so a failed create means the store
            // retried a write that had in fact reached etcd and committed.
            Ok(Ok(WriteOutcome::Failed { current })) => {
                panic!("fresh key {key} exists: {current:?}")
            }
            Ok(Err(_)) | Err(_) => {
                errors += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
    (acks, errors)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_loss_keeps_every_acknowledged_write() {
    tokio::time::timeout(Duration::from_secs(60), run())
        .await
        .expect("failover test took over 60 s");
}

async fn run() {
    let mut cluster = tokio::task::spawn_blocking(|| EtcdCluster::start(3))
        .await
        .expect("join")
        .expect("start a 3-member etcd cluster");
    let opts = StoreOptions {
        compaction_interval: None,
        progress_interval: Duration::from_millis(200),
    };
    let store = Arc::new(
        EtcdStore::connect(&cluster.endpoints(), opts)
            .await
            .expect("connect"),
    );
    let start = store.current_revision().await.unwrap() + 1;
    let mut watch = store
        .watch(WatchRequest::prefix("/fo/", start))
        .await
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|id| tokio::spawn(writer(store.clone(), id, stop.clone())))
        .collect();

    tokio::time::sleep(Duration::from_secs(2)).await;
    let victim = leader_index(&cluster).await.unwrap_or(0);
    cluster.kill(victim);
    let killed_at = Instant::now();
    eprintln!(
        "killed member {} (leader: {})",
        cluster.name(victim),
        victim
    );
    // Proposals in flight on the followers when the leader died may only be
    // failed by etcd's request timeout (5 s + 2 election timeouts), so writing
    // goes on long enough after that to show the cluster took writes again.
    tokio::time::sleep(Duration::from_secs(8)).await;
    stop.store(true, Ordering::SeqCst);

    let mut acks = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (a, e) = t.await.expect("writer panicked");
        acks.extend(a);
        errors += e;
    }
    let before = acks.iter().filter(|a| a.at < killed_at).count();
    let after = acks.len() - before;
    eprintln!("acknowledged {before} writes before the kill, {after} after; {errors} errors");
    assert!(before >= 50, "only {before} writes before the kill");
    assert!(
        after >= 50,
        "only {after} writes acknowledged after the kill"
    );

    // Every acknowledged write is there, unchanged, at its revision.
    let listing = store
        .range(RangeRequest::prefix("/fo/"))
        .await
        .expect("list after failover");
    let stored: BTreeMap<String, _> = listing
        .kvs
        .into_iter()
        .map(|kv| (kv.key_str(), kv))
        .collect();
    let mut revisions: Vec<i64> = Vec::with_capacity(acks.len());
    for a in &acks {
        let kv = stored
            .get(&a.key)
            .unwrap_or_else(|| panic!("acknowledged {} is missing", a.key));
        assert_eq!(kv.value, Bytes::from(a.value.clone()), "{}", a.key);
        assert_eq!(kv.mod_revision, a.revision, "{}", a.key);
        revisions.push(a.revision);
    }
    revisions.sort_unstable();
    revisions.dedup();
    assert_eq!(
        revisions.len(),
        acks.len(),
        "two acknowledged writes share a revision"
    );

    // The watch survived the failover: every acknowledged revision exactly
    // once, in order.
    let last = *revisions.last().unwrap();
    let mut seen = Vec::new();
    while seen.last().is_none_or(|r| *r < last) {
        let item = tokio::time::timeout(Duration::from_secs(15), watch.next())
            .await
            .expect("watch stalled after failover")
            .expect("watch ended")
            .expect("watch failed");
        if let WatchResponse::Events(evs) = item {
            seen.extend(evs.iter().map(|e| e.kv.mod_revision));
        }
    }
    assert!(
        seen.windows(2).all(|w| w[0] < w[1]),
        "watch revisions not strictly increasing"
    );
    let seen: std::collections::BTreeSet<i64> = seen.into_iter().collect();
    let missing: Vec<_> = revisions.iter().filter(|r| !seen.contains(r)).collect();
    assert!(
        missing.is_empty(),
        "watch missed acknowledged revisions {missing:?}"
    );
}
