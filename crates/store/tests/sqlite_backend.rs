//! Behaviour specific to the embedded backend: restarts, damaged files, lagging
//! watchers, periodic compaction and the file size under churn.

use std::time::Duration;

use bytes::Bytes;
use store::{
    Error, KeyRange, RangeRequest, SqliteStore, Store, StoreOptions, WatchRequest, WatchResponse,
};

fn opts() -> StoreOptions {
    StoreOptions {
        compaction_interval: None,
        ..StoreOptions::default()
    }
}

async fn put(s: &SqliteStore, key: &str, value: &[u8]) -> i64 {
    let (cur, _) = s.get(key.as_bytes()).await.unwrap();
    let out = match cur {
        Some(kv) => {
            s.update(
                key.as_bytes(),
                kv.mod_revision,
                Bytes::copy_from_slice(value),
                None,
            )
            .await
        }
        None => {
            s.create(key.as_bytes(), Bytes::copy_from_slice(value), None)
                .await
        }
    };
    out.unwrap().revision().expect("committed")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mod_revision_answers_from_the_index_as_get_does() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path().join("m.db"), opts())
        .await
        .unwrap();
    assert_eq!(s.mod_revision(b"/m/a").await.unwrap(), None);
    let r1 = put(&s, "/m/a", b"1").await;
    put(&s, "/m/b", b"1").await;
    assert_eq!(s.mod_revision(b"/m/a").await.unwrap(), Some(r1));
    let r2 = put(&s, "/m/a", b"2").await;
    assert_eq!(s.mod_revision(b"/m/a").await.unwrap(), Some(r2));
    assert_eq!(
        s.mod_revision(b"/m/a").await.unwrap(),
        s.get(b"/m/a").await.unwrap().0.map(|kv| kv.mod_revision)
    );
    s.delete(b"/m/a", r2).await.unwrap();
    assert_eq!(s.mod_revision(b"/m/a").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopen_keeps_state_revision_and_compaction_point() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db").join("state.db");
    let s = SqliteStore::open(&path, opts()).await.unwrap();
    for i in 0..20 {
        put(&s, &format!("/r/{i}"), b"v1").await;
    }
    put(&s, "/r/3", b"v2").await;
    let c = s.current_revision().await.unwrap();
    // The newest revision is a delete that compaction removes from the log:
    // the revision must still not go back after a restart.
    let del_rev = s
        .delete(
            b"/r/0",
            s.get(b"/r/0").await.unwrap().0.unwrap().mod_revision,
        )
        .await
        .unwrap();
    let last = del_rev.revision().unwrap();
    s.compact(last).await.unwrap();
    let before = s.range(RangeRequest::prefix("/r/")).await.unwrap();
    s.close().await;
    assert!(matches!(
        s.create(b"/r/x", Bytes::new(), None).await,
        Err(Error::Closed(_))
    ));

    let s = SqliteStore::open(&path, opts()).await.unwrap();
    assert_eq!(s.current_revision().await.unwrap(), last);
    assert_eq!(s.compacted_revision().await.unwrap(), last);
    let after = s.range(RangeRequest::prefix("/r/")).await.unwrap();
    assert_eq!(after.kvs, before.kvs);
    assert_eq!(after.count, 19);
    let r = s.range(RangeRequest::prefix("/r/").at_revision(c)).await;
    assert!(matches!(r, Err(Error::Compacted { .. })), "{r:?}");
    assert_eq!(put(&s, "/r/new", b"x").await, last + 1);
}

fn assert_corrupt(err: Error, path: &std::path::Path) {
    match &err {
        Error::Corrupt { path: p, .. } => assert_eq!(p, path),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "the error names the file: {err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_files_are_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.db");
    let s = SqliteStore::open(&good, opts()).await.unwrap();
    // Values LZ4 cannot shrink, so the file keeps their full size.
    for i in 0..400 {
        let value = test_support::incompressible(900, 0x2545_f491_4f6c_dd1d + i);
        put(&s, &format!("/d/{i:04}"), &value).await;
    }
    s.close().await;
    let bytes = std::fs::read(&good).unwrap();
    assert!(
        bytes.len() > 200_000,
        "the sample database should span many pages"
    );

    // Not a database at all.
    let garbage = dir.path().join("garbage.db");
    std::fs::write(&garbage, vec![0x5a; 64 * 1024]).unwrap();
    assert_corrupt(
        SqliteStore::open(&garbage, opts()).await.err().unwrap(),
        &garbage,
    );
    assert_eq!(
        std::fs::read(&garbage).unwrap(),
        vec![0x5a; 64 * 1024],
        "never emptied or rewritten"
    );

    // Truncated to half.
    let truncated = dir.path().join("truncated.db");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    assert_corrupt(
        SqliteStore::open(&truncated, opts()).await.err().unwrap(),
        &truncated,
    );
    assert_eq!(
        std::fs::metadata(&truncated).unwrap().len() as usize,
        bytes.len() / 2
    );

    // Pages in the middle overwritten.
    let smashed = dir.path().join("smashed.db");
    let mut damaged = bytes.clone();
    let mid = bytes.len() / 2;
    damaged[mid..mid + 16384].fill(0xff);
    std::fs::write(&smashed, &damaged).unwrap();
    assert_corrupt(
        SqliteStore::open(&smashed, opts()).await.err().unwrap(),
        &smashed,
    );

    // The intact file still opens with everything in it.
    let s = SqliteStore::open(&good, opts()).await.unwrap();
    assert_eq!(s.count(KeyRange::prefix("/d/")).await.unwrap(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_watcher_catches_up_from_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(dir.path().join("s.db"), opts())
        .await
        .unwrap();
    let mut w = s.watch(WatchRequest::prefix("/lag/", 0)).await.unwrap();
    let first = s.current_revision().await.unwrap() + 1;
    // More committed batches than the broadcast keeps, while the consumer sleeps.
    let n = 6000;
    for i in 0..n {
        s.create(
            format!("/lag/{i}").as_bytes(),
            Bytes::from_static(b"x"),
            None,
        )
        .await
        .unwrap();
    }
    let mut next = first;
    while next < first + n {
        match tokio::time::timeout(Duration::from_secs(30), w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchResponse::Events(evs) => {
                for e in evs {
                    assert_eq!(e.kv.mod_revision, next);
                    next += 1;
                }
            }
            WatchResponse::Progress { .. } => {}
        }
    }
    // Still live afterwards.
    let r = put(&s, "/lag/live", b"y").await;
    match tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap()
    {
        WatchResponse::Events(evs) => assert_eq!(evs[0].kv.mod_revision, r),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_compaction_trails_by_one_interval() {
    let dir = tempfile::tempdir().unwrap();
    let o = StoreOptions {
        compaction_interval: Some(Duration::from_millis(300)),
        ..StoreOptions::default()
    };
    let s = SqliteStore::open(dir.path().join("s.db"), o).await.unwrap();
    let first = put(&s, "/pc/a", b"1").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while s.compacted_revision().await.unwrap() < first {
        put(&s, "/pc/a", b"more").await;
        assert!(
            tokio::time::Instant::now() < deadline,
            "periodic compaction never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let c = s.compacted_revision().await.unwrap();
    assert!(
        c < s.current_revision().await.unwrap(),
        "compaction keeps the most recent interval"
    );
}

fn sizes_of(path: &std::path::Path) -> (u64, u64) {
    let wal = path.with_extension("db-wal");
    let len = |p: &std::path::Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    (len(path), len(&wal))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_size_is_bounded_under_churn_with_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let s = SqliteStore::open(&path, opts()).await.unwrap();
    let value = vec![b'v'; 2048];
    let mut sizes = Vec::new();
    for _round in 0..8 {
        let mut tasks = Vec::new();
        for t in 0..8 {
            let s = s.clone();
            let value = value.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..500 {
                    put(&s, &format!("/churn/{t}/{}", i % 25), &value).await;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        s.compact(s.current_revision().await.unwrap())
            .await
            .unwrap();
        // Let the stepwise physical compaction finish.
        tokio::time::sleep(Duration::from_millis(300)).await;
        sizes.push(sizes_of(&path));
    }
    // Each round writes ~8 MB; the live data is ~400 KB.
    let written_per_round = 8 * 500 * 2048u64;
    eprintln!("(database, WAL) sizes after each round: {sizes:?}");
    let settled = sizes[2].0;
    let last = sizes.last().unwrap().0;
    assert!(
        last <= settled + written_per_round / 2,
        "the database file keeps growing under churn: {sizes:?}"
    );
    assert!(
        sizes.iter().all(|(_, wal)| *wal <= 6 * written_per_round),
        "the WAL keeps growing: {sizes:?}"
    );
}

/// Writes to one key, each chained on the previous one's ticket: when each
/// is marked as followed, the writer keeps the transaction open for the next
/// one, so the chain shares syncs (watchers see fewer, larger batches);
/// unmarked, each write is its own transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_chain_shares_transactions() {
    use store::{Precondition, WriteOp, WriteOutcome};
    for followed in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(dir.path().join("s.db"), opts())
            .await
            .unwrap();
        let r0 = put(&s, "/chain", b"0").await;
        let mut w = s
            .watch(WatchRequest::prefix("/chain", r0 + 1))
            .await
            .unwrap();
        let n = 20;
        let mut cond = Precondition::ModRevision(r0);
        let mut pending = Vec::new();
        for i in 1..=n {
            let op = WriteOp::Put {
                key: b"/chain".to_vec(),
                value: Bytes::from(i.to_string()),
                ttl: None,
            };
            let mut pw = s
                .write_pipelined(cond, op, followed && i < n)
                .await
                .unwrap();
            cond = Precondition::Ticket(pw.applied().await.expect("the chain holds"));
            pending.push(pw);
        }
        for pw in pending {
            assert!(matches!(
                pw.outcome().await.unwrap(),
                WriteOutcome::Committed { .. }
            ));
        }
        let (mut seen, mut batches) = (0, 0);
        while seen < n {
            match tokio::time::timeout(Duration::from_secs(10), w.next())
                .await
                .unwrap()
                .unwrap()
                .unwrap()
            {
                WatchResponse::Events(evs) => {
                    seen += evs.len();
                    batches += 1;
                }
                WatchResponse::Progress { .. } => {}
            }
        }
        assert_eq!(seen, n);
        if followed {
            assert!(
                batches <= n / 2,
                "{batches} transactions for {n} followed writes"
            );
        } else {
            assert_eq!(batches, n, "unfollowed writes commit one by one");
        }
        let (kv, _) = s.get(b"/chain").await.unwrap();
        assert_eq!(kv.unwrap().value, Bytes::from(n.to_string()));
    }
}

/// A JSON-like value LZ4 shrinks, as stored objects are.
fn object(i: usize) -> Vec<u8> {
    let fields: String = (0..60)
        .map(|f| {
            format!("{{\"manager\":\"m{f}\",\"fieldsV1\":{{\"f:spec\":{{\"f:replicas\":{{}}}}}}}},")
        })
        .collect();
    format!("{{\"generation\":{i},\"managedFields\":[{fields}]}}").into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_from_before_compression_open_and_every_read_decodes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    // The schema and a row as a store made before the codec column wrote them.
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE kv (rev INTEGER PRIMARY KEY, key BLOB NOT NULL, create_rev INTEGER NOT NULL,
                 version INTEGER NOT NULL, value BLOB, expires_ms INTEGER);
             CREATE INDEX kv_key_rev ON kv(key, rev);
             CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
             INSERT INTO meta(name, value) VALUES ('rev', 1), ('compact_rev', 0);",
        )
        .unwrap();
        c.execute(
            "INSERT INTO kv VALUES (1, ?1, 1, 1, ?2, NULL)",
            rusqlite::params![b"/o/a".as_slice(), object(0)],
        )
        .unwrap();
    }
    let s = SqliteStore::open(&path, opts()).await.unwrap();
    let (old, _) = s.get(b"/o/a").await.unwrap();
    assert_eq!(old.unwrap().value, object(0));

    // New writes are stored compressed, and read back whole at the latest
    // revision, at a past revision and from the log (watch catch-up, prev_kv).
    let r2 = put(&s, "/o/a", &object(1)).await;
    let r3 = put(&s, "/o/a", &object(2)).await;
    s.close().await;
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        let (codec, len): (i64, i64) = c
            .query_row(
                "SELECT codec, length(value) FROM kv WHERE rev = ?1",
                [r3],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(codec, 1);
        assert!(
            len as usize * 3 < object(2).len(),
            "{len} of {}",
            object(2).len()
        );
    }
    let s = SqliteStore::open(&path, opts()).await.unwrap();
    assert_eq!(s.get(b"/o/a").await.unwrap().0.unwrap().value, object(2));
    let past = s
        .range(RangeRequest::prefix("/o/").at_revision(r2))
        .await
        .unwrap();
    assert_eq!(past.kvs[0].value, object(1));
    let mut w = s.watch(WatchRequest::prefix("/o/", r2)).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match tokio::time::timeout(Duration::from_secs(10), w.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchResponse::Events(evs) => seen.extend(evs),
            WatchResponse::Progress { .. } => {}
        }
    }
    assert_eq!(seen[0].kv.value, object(1));
    assert_eq!(seen[0].prev_kv.as_ref().unwrap().value, object(0));
    assert_eq!(seen[1].kv.value, object(2));
    assert_eq!(seen[1].prev_kv.as_ref().unwrap().value, object(1));
}
