//! Behaviour specific to the etcd backend: how etcd's errors, leases and watch
//! quirks map onto the store contract. The shared contract itself is covered by
//! `etcd_conformance.rs`.

use std::time::Duration;

use bytes::Bytes;
use store::{
    Error, EtcdStore, EventKind, KeyRange, Precondition, RangeRequest, Store, StoreOptions,
    WatchRequest, WatchResponse, WatchStream, WriteOp, WriteOutcome, MAX_VALUE_BYTES,
};
use test_support::etcd::EtcdCluster;

fn opts() -> StoreOptions {
    StoreOptions {
        compaction_interval: None,
        progress_interval: Duration::from_millis(200),
    }
}

async fn start(opts: StoreOptions) -> (EtcdCluster, EtcdStore) {
    let cluster = tokio::task::spawn_blocking(|| EtcdCluster::start(1))
        .await
        .expect("join")
        .expect("start etcd");
    let store = EtcdStore::connect(&cluster.endpoints(), opts)
        .await
        .expect("connect");
    (cluster, store)
}

async fn next(w: &mut WatchStream) -> store::Result<WatchResponse> {
    tokio::time::timeout(Duration::from_secs(10), w.next())
        .await
        .expect("watch item within 10s")
        .expect("watch stream ended")
}

fn put(key: &str, value: &str) -> WriteOp {
    WriteOp::Put {
        key: key.into(),
        value: Bytes::from(value.to_owned()),
        ttl: None,
    }
}

fn committed(o: &WriteOutcome) -> i64 {
    o.revision()
        .unwrap_or_else(|| panic!("expected a commit, got {o:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_map_preconditions_and_report_state() {
    let (_c, s) = start(opts()).await;
    let r0 = s.current_revision().await.unwrap();

    let created = s.write(Precondition::Absent, put("/a", "1")).await.unwrap();
    let WriteOutcome::Committed { revision, kv, prev } = &created else {
        panic!("{created:?}")
    };
    assert_eq!(*revision, r0 + 1);
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (r0 + 1, r0 + 1, 1)
    );
    assert_eq!(kv.value, Bytes::from("1"));
    assert!(prev.is_none());

    // A second create fails and reports what is there.
    let again = s.write(Precondition::Absent, put("/a", "2")).await.unwrap();
    assert_eq!(
        again,
        WriteOutcome::Failed {
            current: Some(kv.clone())
        }
    );

    let updated = s
        .write(Precondition::ModRevision(r0 + 1), put("/a", "3"))
        .await
        .unwrap();
    let WriteOutcome::Committed { kv: kv2, prev, .. } = &updated else {
        panic!("{updated:?}")
    };
    assert_eq!(
        (kv2.create_revision, kv2.mod_revision, kv2.version),
        (r0 + 1, r0 + 2, 2)
    );
    assert_eq!(prev.as_ref(), Some(kv));

    let stale = s
        .write(Precondition::ModRevision(r0 + 1), put("/a", "4"))
        .await
        .unwrap();
    assert_eq!(
        stale,
        WriteOutcome::Failed {
            current: Some(kv2.clone())
        }
    );

    // Neither an update nor a delete of a missing key takes a revision.
    let ghost = s
        .write(Precondition::ModRevision(0), put("/nope", "x"))
        .await
        .unwrap();
    assert_eq!(ghost, WriteOutcome::Failed { current: None });
    for cond in [
        Precondition::None,
        Precondition::Absent,
        Precondition::ModRevision(0),
    ] {
        let del = s
            .write(
                cond,
                WriteOp::Delete {
                    key: "/nope".into(),
                },
            )
            .await
            .unwrap();
        assert_eq!(del, WriteOutcome::Failed { current: None }, "{cond:?}");
    }
    assert_eq!(s.current_revision().await.unwrap(), r0 + 2);

    let deleted = s.write(
        Precondition::ModRevision(r0 + 2),
        WriteOp::Delete { key: "/a".into() },
    );
    let deleted = deleted.await.unwrap();
    let WriteOutcome::Committed { revision, kv, prev } = &deleted else {
        panic!("{deleted:?}")
    };
    assert_eq!(*revision, r0 + 3);
    assert_eq!(
        (kv.create_revision, kv.mod_revision, kv.version),
        (0, r0 + 3, 0)
    );
    assert!(kv.value.is_empty());
    assert_eq!(prev.as_ref(), Some(kv2));

    // Unconditional writes.
    committed(&s.write(Precondition::None, put("/b", "1")).await.unwrap());
    committed(&s.write(Precondition::None, put("/b", "2")).await.unwrap());
    let (b, rev) = s.get(b"/b").await.unwrap();
    assert_eq!(rev, r0 + 5);
    assert_eq!(b.unwrap().version, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_values_are_rejected_and_the_limit_fits() {
    let (_c, s) = start(opts()).await;
    let big = Bytes::from(vec![b'x'; MAX_VALUE_BYTES + 1]);
    let op = WriteOp::Put {
        key: "/big".into(),
        value: big,
        ttl: None,
    };
    let err = s.write(Precondition::None, op).await.unwrap_err();
    assert!(matches!(err, Error::ValueTooLarge { .. }), "{err:?}");

    // Exactly the limit fits through etcd, both ways and through a watch.
    let mut w = s.watch(WatchRequest::prefix("/big", 0)).await.unwrap();
    let max = Bytes::from(vec![b'y'; MAX_VALUE_BYTES]);
    let op = WriteOp::Put {
        key: "/big".into(),
        value: max.clone(),
        ttl: None,
    };
    committed(&s.write(Precondition::None, op).await.unwrap());
    let op = WriteOp::Put {
        key: "/big".into(),
        value: max.clone(),
        ttl: None,
    };
    committed(&s.write(Precondition::None, op).await.unwrap());
    assert_eq!(s.get(b"/big").await.unwrap().0.unwrap().value, max);
    for _ in 0..2 {
        let WatchResponse::Events(evs) = next(&mut w).await.unwrap() else {
            panic!()
        };
        assert_eq!(evs[0].kv.value.len(), MAX_VALUE_BYTES);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ranges_page_and_read_the_past() {
    let (_c, s) = start(opts()).await;
    for i in 0..5 {
        committed(
            &s.write(Precondition::Absent, put(&format!("/p/{i}"), "v"))
                .await
                .unwrap(),
        );
    }
    committed(
        &s.write(Precondition::Absent, put("/q", "outside"))
            .await
            .unwrap(),
    );
    let page = s.range(RangeRequest::prefix("/p/").limit(2)).await.unwrap();
    assert_eq!(page.count, 5);
    assert!(page.more);
    let keys: Vec<_> = page.kvs.iter().map(|kv| kv.key_str()).collect();
    assert_eq!(keys, ["/p/0", "/p/1"]);
    let rest = s
        .range(
            RangeRequest::prefix("/p/")
                .after(b"/p/1")
                .at_revision(page.revision),
        )
        .await
        .unwrap();
    assert_eq!(rest.kvs.len(), 3);
    assert!(!rest.more);

    // No upper bound, and an empty start.
    let all = RangeRequest {
        range: KeyRange {
            key: vec![],
            range_end: Some(vec![]),
        },
        revision: 0,
        limit: 0,
    };
    assert_eq!(s.range(all).await.unwrap().count, 6);

    let first = page.kvs[0].mod_revision;
    let old = s
        .range(RangeRequest::prefix("/p/").at_revision(first))
        .await
        .unwrap();
    assert_eq!(old.count, 1);
    assert_eq!(
        old.revision, first,
        "a past read is served at the revision asked for"
    );

    let err = s
        .range(RangeRequest::prefix("/p/").at_revision(page.revision + 10))
        .await;
    match err {
        Err(Error::FutureRevision { requested, current }) => {
            assert_eq!((requested, current), (page.revision + 10, page.revision));
        }
        other => panic!("{other:?}"),
    }

    let empty = KeyRange {
        key: vec![],
        range_end: None,
    };
    let err = s
        .range(RangeRequest {
            range: empty,
            revision: 0,
            limit: 0,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidRequest(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn compaction_maps_to_compacted_even_when_done_elsewhere() {
    let (c, s) = start(opts()).await;
    let mut revs = Vec::new();
    for i in 0..10 {
        revs.push(committed(
            &s.write(Precondition::None, put("/k", &i.to_string()))
                .await
                .unwrap(),
        ));
    }
    assert_eq!(s.compacted_revision().await.unwrap(), 0);
    s.compact(revs[3]).await.unwrap();
    assert_eq!(s.compacted_revision().await.unwrap(), revs[3]);
    // Compacting again at or below the point is refused.
    for r in [revs[2], revs[3]] {
        match s.compact(r).await {
            Err(Error::Compacted {
                requested,
                compacted,
            }) => assert_eq!((requested, compacted), (r, revs[3])),
            other => panic!("{other:?}"),
        }
    }
    let err = s.compact(revs[9] + 100).await.unwrap_err();
    assert!(matches!(err, Error::FutureRevision { .. }), "{err:?}");

    // The compaction revision itself stays readable; below it is gone.
    assert_eq!(
        s.range(RangeRequest::prefix("/k").at_revision(revs[3]))
            .await
            .unwrap()
            .kvs
            .len(),
        1
    );
    match s
        .range(RangeRequest::prefix("/k").at_revision(revs[2]))
        .await
    {
        Err(Error::Compacted {
            requested,
            compacted,
        }) => assert_eq!((requested, compacted), (revs[2], revs[3])),
        other => panic!("{other:?}"),
    }

    // A watch at the compaction revision is gone too (etcd would allow it).
    let mut w = s.watch(WatchRequest::prefix("/k", revs[3])).await.unwrap();
    match next(&mut w).await {
        Err(Error::Compacted {
            requested,
            compacted,
        }) => assert_eq!((requested, compacted), (revs[3], revs[3])),
        other => panic!("{other:?}"),
    }
    let mut w = s.watch(WatchRequest::prefix("/k", revs[4])).await.unwrap();
    let WatchResponse::Events(evs) = next(&mut w).await.unwrap() else {
        panic!()
    };
    assert_eq!(evs[0].kv.mod_revision, revs[4]);

    // Another client compacts further: ranges and watches still say Compacted,
    // with etcd's real compaction point.
    let mut raw = etcd_client::Client::connect(c.endpoints(), None)
        .await
        .unwrap();
    raw.compact(revs[7], None).await.unwrap();
    match s
        .range(RangeRequest::prefix("/k").at_revision(revs[5]))
        .await
    {
        Err(Error::Compacted {
            requested,
            compacted,
        }) => assert_eq!((requested, compacted), (revs[5], revs[7])),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.compacted_revision().await.unwrap(), revs[7]);
    // Between what this client knows and etcd's point, etcd's cancellation says so.
    raw.compact(revs[9], None).await.unwrap();
    let mut w = s.watch(WatchRequest::prefix("/k", revs[8])).await.unwrap();
    match next(&mut w).await {
        Err(Error::Compacted {
            requested,
            compacted,
        }) => assert_eq!((requested, compacted), (revs[8], revs[9])),
        other => panic!("{other:?}"),
    }
    assert!(
        w.next().await.is_none(),
        "a Compacted error ends the stream"
    );
    assert_eq!(s.compacted_revision().await.unwrap(), revs[9]);

    // A new client learns the compaction point at connect.
    let s2 = EtcdStore::connect(&c.endpoints(), opts()).await.unwrap();
    assert_eq!(s2.compacted_revision().await.unwrap(), revs[9]);
}

#[tokio::test(flavor = "multi_thread")]
async fn periodic_compaction_trails_by_one_interval() {
    let o = StoreOptions {
        compaction_interval: Some(Duration::from_millis(300)),
        ..opts()
    };
    let (_c, s) = start(o).await;
    let first = committed(&s.write(Precondition::None, put("/k", "1")).await.unwrap());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let compacted = s.compacted_revision().await.unwrap();
    assert!(
        compacted >= first,
        "compacted {compacted}, first write {first}"
    );
    // History written within the last interval is still there.
    let last = committed(&s.write(Precondition::None, put("/k", "2")).await.unwrap());
    s.range(RangeRequest::prefix("/k").at_revision(last))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn ttl_expiry_is_an_ordinary_delete() {
    let (_c, s) = start(opts()).await;
    let mut w = s.watch(WatchRequest::prefix("/lease/", 0)).await.unwrap();
    let op = WriteOp::Put {
        key: "/lease/a".into(),
        value: Bytes::from("v"),
        ttl: Some(Duration::from_millis(300)),
    };
    let created = committed(&s.write(Precondition::Absent, op).await.unwrap());
    let WatchResponse::Events(evs) = next(&mut w).await.unwrap() else {
        panic!()
    };
    assert_eq!(evs[0].kind, EventKind::Put);
    // Rounded up to one second; etcd checks expiry every 500 ms.
    let t = std::time::Instant::now();
    let WatchResponse::Events(evs) = next(&mut w).await.unwrap() else {
        panic!()
    };
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "expired after {:?}",
        t.elapsed()
    );
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].kind, EventKind::Delete);
    assert_eq!(evs[0].kv.key_str(), "/lease/a");
    assert!(evs[0].kv.mod_revision > created);
    assert_eq!(
        evs[0].prev_kv.as_ref().map(|p| p.mod_revision),
        Some(created)
    );
    assert!(s.get(b"/lease/a").await.unwrap().0.is_none());

    // A failed TTL create leaves the existing key alone (its lease is revoked, not attached).
    committed(
        &s.write(Precondition::Absent, put("/lease/b", "keep"))
            .await
            .unwrap(),
    );
    let op = WriteOp::Put {
        key: "/lease/b".into(),
        value: Bytes::from("x"),
        ttl: Some(Duration::from_secs(1)),
    };
    assert!(matches!(
        s.write(Precondition::Absent, op).await.unwrap(),
        WriteOutcome::Failed { .. }
    ));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        s.get(b"/lease/b").await.unwrap().0.unwrap().value,
        Bytes::from("keep")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_delivers_in_order_with_prev_kv_from_a_past_revision() {
    let (_c, s) = start(opts()).await;
    let r1 = committed(&s.write(Precondition::None, put("/w/a", "1")).await.unwrap());
    committed(&s.write(Precondition::None, put("/w/a", "2")).await.unwrap());
    committed(
        &s.write(Precondition::None, put("/x", "other"))
            .await
            .unwrap(),
    );
    let d = s
        .write(Precondition::None, WriteOp::Delete { key: "/w/a".into() })
        .await
        .unwrap();
    let rd = committed(&d);

    let mut w = s.watch(WatchRequest::prefix("/w/", r1)).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let WatchResponse::Events(evs) = next(&mut w).await.unwrap() else {
            continue;
        };
        assert_eq!(
            evs.len(),
            1,
            "one write per revision, one revision per item"
        );
        seen.extend(evs);
    }
    assert_eq!(
        seen.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [EventKind::Put, EventKind::Put, EventKind::Delete]
    );
    assert_eq!(seen[0].kv.mod_revision, r1);
    assert!(seen[0].prev_kv.is_none());
    assert_eq!(seen[1].prev_kv.as_ref().unwrap().value, Bytes::from("1"));
    assert_eq!(seen[2].kv.mod_revision, rd);
    assert_eq!(seen[2].prev_kv.as_ref().unwrap().value, Bytes::from("2"));

    // Start 0 means "after now": only later writes arrive.
    let mut now = s.watch(WatchRequest::prefix("/w/", 0)).await.unwrap();
    let r = committed(&s.write(Precondition::None, put("/w/b", "1")).await.unwrap());
    let WatchResponse::Events(evs) = next(&mut now).await.unwrap() else {
        panic!()
    };
    assert_eq!(evs[0].kv.mod_revision, r);

    // A single-key watch.
    let single = WatchRequest {
        range: KeyRange::single("/w/b"),
        start_revision: r,
        progress_notify: false,
    };
    let mut one = s.watch(single).await.unwrap();
    let WatchResponse::Events(evs) = next(&mut one).await.unwrap() else {
        panic!()
    };
    assert_eq!(evs[0].kv.key_str(), "/w/b");
}

#[tokio::test(flavor = "multi_thread")]
async fn progress_notify_reports_a_safe_revision_while_idle() {
    let (_c, s) = start(opts()).await;
    let mut req = WatchRequest::prefix("/pn/", 0);
    req.progress_notify = true;
    let mut w = s.watch(req).await.unwrap();
    let before = committed(
        &s.write(Precondition::None, put("/other", "1"))
            .await
            .unwrap(),
    );
    // Idle on the watched prefix: progress must arrive and cover the unrelated write.
    let t = std::time::Instant::now();
    loop {
        match next(&mut w).await.unwrap() {
            WatchResponse::Progress { revision } if revision >= before => break,
            WatchResponse::Progress { .. } => {}
            other => panic!("{other:?}"),
        }
        assert!(t.elapsed() < Duration::from_secs(5));
    }

    // Under a stream of writes, a progress revision never runs ahead of an event
    // still to come, and revisions never go backwards.
    let writer = {
        let store = EtcdStore::connect(&_c.endpoints(), opts()).await.unwrap();
        tokio::spawn(async move {
            let mut last = 0;
            // Watched writes a few progress intervals apart, so progress is
            // requested while unrelated writes move the revision on.
            for i in 0..210 {
                let key = if i % 70 == 0 {
                    "/pn/k".to_string()
                } else {
                    format!("/other/{i}")
                };
                last = committed(
                    &store
                        .write(Precondition::None, put(&key, "v"))
                        .await
                        .unwrap(),
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            last
        })
    };
    let mut high = 0;
    let mut progress_seen = 0;
    let mut events_seen = 0;
    while events_seen < 3 {
        match next(&mut w).await.unwrap() {
            WatchResponse::Progress { revision } => {
                assert!(revision >= high, "progress {revision} after {high}");
                high = revision;
                progress_seen += 1;
            }
            WatchResponse::Events(evs) => {
                for e in evs {
                    assert!(
                        e.kv.mod_revision > high,
                        "event {} after progress/event {high}",
                        e.kv.mod_revision
                    );
                    high = e.kv.mod_revision;
                    events_seen += 1;
                }
            }
        }
    }
    let last = writer.await.unwrap();
    assert!(high <= last);
    assert!(progress_seen > 0, "progress was reported between events");
    // Progress resumes once idle again.
    loop {
        if let WatchResponse::Progress { revision } = next(&mut w).await.unwrap() {
            if revision >= last {
                break;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_compactor_stops_with_the_store() {
    let (c, s) = start(StoreOptions {
        compaction_interval: Some(Duration::from_millis(100)),
        ..opts()
    })
    .await;
    committed(
        &s.write(Precondition::None, put("/d/before", "1"))
            .await
            .unwrap(),
    );
    let t = std::time::Instant::now();
    while s.compacted_revision().await.unwrap() == 0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the compactor never ran"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _w = s.watch(WatchRequest::prefix("/d/", 0)).await.unwrap();
    drop(s);
    let mut raw = etcd_client::Client::connect(c.endpoints(), None)
        .await
        .unwrap();
    let after = raw
        .put("/d/after", "1", None)
        .await
        .unwrap()
        .header()
        .unwrap()
        .revision();
    for i in 0..5 {
        raw.put(format!("/d/more{i}"), "1", None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A live compactor would have compacted past `after` by now.
    let opts = etcd_client::GetOptions::new().with_revision(after);
    raw.get("/d/after", Some(opts))
        .await
        .expect("history after the drop is intact");
}

#[tokio::test(flavor = "multi_thread")]
async fn connect_fails_fast_without_a_cluster() {
    let port = test_support::free_port();
    let t = std::time::Instant::now();
    let res = EtcdStore::connect(&[format!("http://127.0.0.1:{port}")], opts()).await;
    assert!(res.is_err());
    assert!(t.elapsed() < Duration::from_secs(15), "{:?}", t.elapsed());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watch_resumes_across_a_member_restart() {
    let (c, s) = start(opts()).await;
    let first = committed(&s.write(Precondition::None, put("/r/a", "0")).await.unwrap());
    let mut w = s.watch(WatchRequest::prefix("/r/", first)).await.unwrap();
    let WatchResponse::Events(evs) = next(&mut w).await.unwrap() else {
        panic!()
    };
    assert_eq!(evs[0].kv.mod_revision, first);

    // The watch's connection dies with the only member; once it is back the
    // watch carries on from the first revision it had not delivered.
    let mut c = c;
    let c = tokio::task::spawn_blocking(move || c.restart(0).map(|()| c))
        .await
        .unwrap()
        .expect("restart etcd");
    let mut revs = Vec::new();
    for i in 1..=3 {
        revs.push(committed(
            &s.write(Precondition::None, put("/r/a", &i.to_string()))
                .await
                .unwrap(),
        ));
    }
    let mut seen = Vec::new();
    while seen.len() < revs.len() {
        match next(&mut w).await.unwrap() {
            WatchResponse::Events(evs) => seen.extend(evs.iter().map(|e| e.kv.mod_revision)),
            WatchResponse::Progress { .. } => {}
        }
    }
    assert_eq!(seen, revs);
    drop(c);
}
