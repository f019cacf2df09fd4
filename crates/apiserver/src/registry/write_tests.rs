//! Tests of the write paths: comparisons without copies, and writers
//! queued on one key.

use super::*;
use crate::registry::meta::{spec_part, without_volatile};

fn path(plural: &str, ns: Option<&str>, name: Option<&str>) -> ResourcePath {
    ResourcePath {
        info: crate::resources::lookup("", "v1", plural).unwrap(),
        namespace: ns.map(str::to_string),
        name: name.map(str::to_string),
        subresource: None,
    }
}

/// A registry on a fresh SQLite store, with its temporary directory.
async fn registry() -> (tempfile::TempDir, Arc<dyn store::Store>, Arc<Registry>) {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn store::Store> = Arc::new(
        store::SqliteStore::open(dir.path().join("db"), Default::default())
            .await
            .unwrap(),
    );
    let cache = crate::cache::WatchCache::start(store.clone())
        .await
        .unwrap();
    let services = crate::alloc::ServiceAllocator::new(store.clone(), "10.43.0.0/16").unwrap();
    let reg = Arc::new(Registry::new(store.clone(), cache, services));
    (dir, store, reg)
}

/// Namespace `d`.
async fn namespace_d(reg: &Registry) {
    reg.create(
        &path("namespaces", None, None),
        json!({"metadata": {"name": "d"}}),
        &WriteOptions::default(),
    )
    .await
    .unwrap();
}

/// Namespace `d` and in it ConfigMap `c` with `data`; returns the created map.
async fn configmap_c(reg: &Registry, data: Value) -> Value {
    let opts = WriteOptions::default();
    namespace_d(reg).await;
    reg.create(
        &path("configmaps", Some("d"), None),
        json!({"metadata": {"name": "c"}, "data": data}),
        &opts,
    )
    .await
    .unwrap()
    .object
    .into_value()
}

/// The object a writer leaves is used only while the store still holds
/// its revision: a write from elsewhere in between is not lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_left_object_is_used_only_at_its_revision() {
    let (_dir, store, reg) = registry().await;
    let created = configmap_c(&reg, json!({"a": "1"})).await;
    let key = "/registry/core/configmaps/d/c";
    let patch = |reg: Arc<Registry>, k: &'static str| async move {
        reg.patch(
            &path("configmaps", Some("d"), Some("c")),
            PatchType::Merge,
            json!({"data": {k: "x"}}).to_string().as_bytes(),
            &WriteOptions::default(),
        )
        .await
        .unwrap()
        .object
        .into_value()
    };
    // Left at the stored revision: the next writer starts from it.
    let rev = store.mod_revision(key.as_bytes()).await.unwrap().unwrap();
    let mut marked = created.clone();
    marked["data"]["left"] = json!("yes");
    let mut turn = reg.key_locks.lock(key).await;
    *turn = Some(keylock::LastWrite {
        chain: None,
        ticket: keylock::TicketSlot::Known(Some(store::Ticket {
            revision: rev,
            epoch: 0,
        })),
        object: Arc::new(marked),
        managed_fields: None,
        managed: None,
        durable: None,
    });
    // The patch queues on the key, then gets the turn.
    let waiting = tokio::spawn(patch(reg.clone(), "b"));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    drop(turn);
    let out = waiting.await.unwrap();
    assert_eq!(out["data"], json!({"a": "1", "b": "x", "left": "yes"}));
    // Another server writes in between: the left object is stale.
    let rev = store.mod_revision(key.as_bytes()).await.unwrap().unwrap();
    let mut stale = out.clone();
    stale["data"]["stale"] = json!("yes");
    let mut turn = reg.key_locks.lock(key).await;
    *turn = Some(keylock::LastWrite {
        chain: None,
        ticket: keylock::TicketSlot::Known(Some(store::Ticket {
            revision: rev,
            epoch: 0,
        })),
        object: Arc::new(stale),
        managed_fields: None,
        managed: None,
        durable: None,
    });
    let (kv, _) = store.get(key.as_bytes()).await.unwrap();
    let mut elsewhere: Value = serde_json::from_slice(&kv.unwrap().value).unwrap();
    elsewhere["data"]["other"] = json!("server");
    store
        .update(
            key.as_bytes(),
            rev,
            Bytes::from(elsewhere.to_string()),
            None,
        )
        .await
        .unwrap();
    let waiting = tokio::spawn(patch(reg.clone(), "c"));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    drop(turn);
    let out = waiting.await.unwrap();
    assert_eq!(
        out["data"],
        json!({"a": "1", "b": "x", "c": "x", "left": "yes", "other": "server"})
    );

    // A writer hands its object over before the store applied it: the
    // next one computes on it and chains on the ticket when it comes; the
    // object's resourceVersion is the ticket's.
    let rev = store.mod_revision(key.as_bytes()).await.unwrap().unwrap();
    let mut pending = out.clone();
    metadata_mut(&mut pending).remove("resourceVersion");
    pending["data"]["pending"] = json!("yes");
    let (ttx, trx) = tokio::sync::oneshot::channel();
    let mut turn = reg.key_locks.lock(key).await;
    *turn = Some(keylock::LastWrite {
        chain: None,
        ticket: keylock::TicketSlot::Pending(trx),
        object: Arc::new(pending),
        managed_fields: None,
        managed: None,
        durable: None,
    });
    let waiting = tokio::spawn(patch(reg.clone(), "d"));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    drop(turn);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!waiting.is_finished(), "the write waits for the ticket");
    ttx.send(Some(store::Ticket {
        revision: rev,
        epoch: 0,
    }))
    .unwrap();
    let out = waiting.await.unwrap();
    assert_eq!(out["data"]["pending"], "yes");
    assert_eq!(out["data"]["d"], "x");
    let (kv, _) = store.get(key.as_bytes()).await.unwrap();
    let kv = kv.unwrap();
    assert_eq!(kv.mod_revision, rev + 1);
    assert_eq!(
        out["metadata"]["resourceVersion"],
        json!((rev + 1).to_string())
    );

    // The handed-over write was not applied (its ticket is `None`): its
    // object is dropped and the patch starts again from a read.
    let mut lost = out.clone();
    lost["data"]["lost"] = json!("yes");
    let (ttx, trx) = tokio::sync::oneshot::channel();
    let mut turn = reg.key_locks.lock(key).await;
    *turn = Some(keylock::LastWrite {
        chain: None,
        ticket: keylock::TicketSlot::Pending(trx),
        object: Arc::new(lost),
        managed_fields: None,
        managed: None,
        durable: None,
    });
    let waiting = tokio::spawn(patch(reg.clone(), "e"));
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    drop(turn);
    ttx.send(None).unwrap();
    let out = waiting.await.unwrap();
    assert_eq!(out["data"]["e"], "x");
    assert!(out["data"].get("lost").is_none(), "{}", out["data"]);

    // Handed over with its id in the store: the next write names it and
    // does not wait for the ticket (it never comes here).
    let named_put = |value: &Value| store::WriteOp::Put {
        key: key.as_bytes().to_vec(),
        value: Bytes::from(value.to_string()),
        ttl: None,
    };
    // A followed write of the stored object with `data.named` set to
    // `mark`, sent to the store; returns it and the object as written.
    let named_write = |mark: &'static str| {
        let store = store.clone();
        async move {
            let (kv, _) = store.get(key.as_bytes()).await.unwrap();
            let kv = kv.unwrap();
            let mut named: Value = serde_json::from_slice(&kv.value).unwrap();
            named["data"]["named"] = json!(mark);
            let w = store
                .write_pipelined(
                    store::Precondition::ModRevision(kv.mod_revision),
                    named_put(&named),
                    true,
                )
                .await
                .unwrap();
            (w, named)
        }
    };
    // Leave `object` as the named write `w` to a patch queued behind, which
    // gets its turn; the ticket never comes.
    let hand_over = |id: store::WriteId, object: Value, k: &'static str| {
        let reg = reg.clone();
        async move {
            let (never, trx) = tokio::sync::oneshot::channel::<Option<store::Ticket>>();
            let mut turn = reg.key_locks.lock(key).await;
            *turn = Some(keylock::LastWrite {
                chain: Some(keylock::Chained {
                    id,
                    line: keylock::Line::default(),
                }),
                ticket: keylock::TicketSlot::Pending(trx),
                object: Arc::new(object),
                managed_fields: None,
                managed: None,
                durable: None,
            });
            let waiting = tokio::spawn(patch(reg.clone(), k));
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            drop(turn);
            let out = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
                .await
                .expect("a named write is not waited for")
                .unwrap();
            drop(never);
            out
        }
    };
    let (w, mut named) = named_write("yes").await;
    let id = w.id().expect("the embedded store names followed writes");
    named["data"]["handed"] = json!("yes");
    let out = hand_over(id, named, "f").await;
    assert!(matches!(
        w.outcome().await.unwrap(),
        store::WriteOutcome::Committed { .. }
    ));
    assert_eq!(
        (&out["data"]["f"], &out["data"]["handed"]),
        (&json!("x"), &json!("yes"))
    );

    // A write from elsewhere after the named one: the chain breaks and the
    // patch starts again from a read.
    let (w, mut named) = named_write("again").await;
    let id = w.id().unwrap();
    let rev = match w.outcome().await.unwrap() {
        store::WriteOutcome::Committed { revision, .. } => revision,
        other => panic!("{other:?}"),
    };
    let mut elsewhere = named.clone();
    elsewhere["data"]["other"] = json!("again");
    store
        .update(
            key.as_bytes(),
            rev,
            Bytes::from(elsewhere.to_string()),
            None,
        )
        .await
        .unwrap();
    named["data"]["stale"] = json!("handed");
    let out = hand_over(id, named, "g").await;
    assert_eq!(
        (&out["data"]["g"], &out["data"]["other"]),
        (&json!("x"), &json!("again"))
    );
    assert!(out["data"].get("stale").is_none(), "{}", out["data"]);
}

/// A write nobody waited for keeps its object for the next writer of the
/// key, which starts from it only while the store still holds that write:
/// a write from elsewhere is never lost, and nothing is answered from a
/// stale kept object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_object_is_used_only_while_the_key_is_unchanged() {
    let (_dir, store, reg) = registry().await;
    let opts = WriteOptions::default();
    configmap_c(&reg, json!({"a": "1"})).await;
    let key = "/registry/core/configmaps/d/c";
    let cm = || path("configmaps", Some("d"), Some("c"));
    let patch = |body: Value, opts: WriteOptions| {
        let reg = reg.clone();
        async move {
            reg.patch(&cm(), PatchType::Merge, body.to_string().as_bytes(), &opts)
                .await
                .map(|w| w.object.into_value())
        }
    };
    // Mark the kept object, so that an answer shows whether it was used.
    let mark = |k: &'static str| {
        let mut last = reg
            .key_locks
            .take_kept(key)
            .expect("the last write is kept");
        Arc::make_mut(&mut last.object)["data"][k] = json!("kept");
        reg.key_locks.keep(key, last, 100);
    };
    // A write from elsewhere (another server), straight to the store.
    let elsewhere = |k: &'static str| {
        let store = store.clone();
        async move {
            let (kv, _) = store.get(key.as_bytes()).await.unwrap();
            let kv = kv.unwrap();
            let mut obj: Value = serde_json::from_slice(&kv.value).unwrap();
            obj["data"][k] = json!("elsewhere");
            match store
                .update(
                    key.as_bytes(),
                    kv.mod_revision,
                    Bytes::from(obj.to_string()),
                    None,
                )
                .await
                .unwrap()
            {
                store::WriteOutcome::Committed { revision, .. } => revision,
                other => panic!("{other:?}"),
            }
        }
    };

    patch(json!({"data": {"b": "x"}}), WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(reg.key_locks.kept_count().0, 1);
    // Unchanged since: the next patch starts from the kept object.
    mark("used");
    let out = patch(json!({"data": {"c": "x"}}), WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(
        out["data"],
        json!({"a": "1", "b": "x", "c": "x", "used": "kept"})
    );

    // Changed elsewhere: the patch is applied to the stored object.
    mark("stale");
    elsewhere("other").await;
    let out = patch(json!({"data": {"d": "x"}}), WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(out["data"]["other"], "elsewhere");
    assert_eq!(out["data"]["d"], "x");
    assert!(out["data"].get("stale").is_none(), "{}", out["data"]);

    // A patch that changes nothing answers with the stored object, not
    // with a kept one that went stale.
    mark("stale");
    let rev = elsewhere("other2").await;
    let out = patch(json!({"data": {"d": "x"}}), WriteOptions::default())
        .await
        .unwrap();
    assert_eq!(out["data"]["other2"], "elsewhere");
    assert!(out["data"].get("stale").is_none(), "{}", out["data"]);
    assert_eq!(out["metadata"]["resourceVersion"], json!(rev.to_string()));

    // So does a dry run.
    let (kv, _) = store.get(key.as_bytes()).await.unwrap();
    let stored: Value = serde_json::from_slice(&kv.unwrap().value).unwrap();
    let mut last = keylock::LastWrite {
        ticket: keylock::TicketSlot::Known(Some(store::Ticket {
            revision: rev,
            epoch: 0,
        })),
        chain: None,
        object: Arc::new(stored),
        managed_fields: None,
        managed: None,
        durable: None,
    };
    Arc::make_mut(&mut last.object)["data"]["stale"] = json!("kept");
    reg.key_locks.keep(key, last, 100);
    let rev = elsewhere("other3").await;
    let dry = WriteOptions {
        dry_run: true,
        ..WriteOptions::default()
    };
    let out = patch(json!({"data": {"e": "x"}}), dry).await.unwrap();
    assert_eq!(out["data"]["other3"], "elsewhere");
    assert_eq!(out["metadata"]["resourceVersion"], json!(rev.to_string()));
    assert!(out["data"].get("stale").is_none(), "{}", out["data"]);

    // A patch pinned to the stored version is not refused because a kept
    // object is older.
    patch(json!({"data": {"f": "x"}}), WriteOptions::default())
        .await
        .unwrap();
    mark("stale");
    let rev = elsewhere("other4").await;
    let out = patch(
        json!({"metadata": {"resourceVersion": rev.to_string()}, "data": {"g": "x"}}),
        WriteOptions::default(),
    )
    .await
    .unwrap();
    assert_eq!(
        (&out["data"]["g"], &out["data"]["other4"]),
        (&json!("x"), &json!("elsewhere"))
    );
    assert!(out["data"].get("stale").is_none(), "{}", out["data"]);
    // A stale pin is still a conflict.
    let err = patch(
        json!({"metadata": {"resourceVersion": rev.to_string()}, "data": {"h": "x"}}),
        WriteOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code, 409);

    // An error computed on a stale kept object is not answered: a JSON
    // patch testing a value set elsewhere succeeds.
    patch(json!({"data": {"h": "x"}}), WriteOptions::default())
        .await
        .unwrap();
    mark("stale");
    elsewhere("other5").await;
    let ops = json!([
        {"op": "test", "path": "/data/other5", "value": "elsewhere"},
        {"op": "add", "path": "/data/i", "value": "x"},
    ]);
    let out = reg
        .patch(&cm(), PatchType::Json, ops.to_string().as_bytes(), &opts)
        .await
        .unwrap()
        .object
        .into_value();
    assert_eq!(out["data"]["i"], "x");
    assert!(out["data"].get("stale").is_none(), "{}", out["data"]);

    // Deleting the object drops what was kept of it.
    assert_eq!(reg.key_locks.kept_count().0, 1);
    reg.delete(&cm(), &Default::default()).await.unwrap();
    assert_eq!(reg.key_locks.kept_count().0, 0);
}

/// Patches queued on one key start from the object the previous one
/// committed (not decoded again): none may be lost, each response holds
/// its own change, and the last response is what the store holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queued_patches_of_one_object_lose_nothing() {
    let (_dir, store, reg) = registry().await;
    configmap_c(&reg, json!({"seed": "x"})).await;
    let (clients, each) = (12, 15);
    let mut tasks = Vec::new();
    for t in 0..clients {
        let reg = reg.clone();
        tasks.push(tokio::spawn(async move {
            let mut last = Vec::new();
            for i in 0..each {
                let body = json!({"data": {format!("k{t}"): i.to_string()}});
                let opts = WriteOptions {
                    field_manager: Some(format!("m{t}")),
                    ..WriteOptions::default()
                };
                let r = reg
                    .patch(
                        &path("configmaps", Some("d"), Some("c")),
                        PatchType::Merge,
                        body.to_string().as_bytes(),
                        &opts,
                    )
                    .await
                    .unwrap();
                // The answer's bytes and object agree, also where the
                // object was shared with the next writer.
                if let Some(raw) = &r.raw {
                    let sent: Value = serde_json::from_slice(raw).unwrap();
                    assert_eq!(sent, *r.object.value());
                }
                let object = r.object.into_value();
                assert_eq!(object["data"][format!("k{t}")], json!(i.to_string()));
                last.push(object);
            }
            last
        }));
    }
    let mut newest: Option<Value> = None;
    for t in tasks {
        for o in t.await.unwrap() {
            let rv = |v: &Value| {
                v["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .parse::<i64>()
                    .unwrap()
            };
            if newest.as_ref().is_none_or(|n| rv(&o) > rv(n)) {
                newest = Some(o);
            }
        }
    }
    let (kv, _) = store.get(b"/registry/core/configmaps/d/c").await.unwrap();
    let kv = kv.unwrap();
    let mut stored: Value = serde_json::from_slice(&kv.value).unwrap();
    metadata_mut(&mut stored).insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
    assert_eq!(Some(stored.clone()), newest);
    for t in 0..clients {
        assert_eq!(
            stored["data"][format!("k{t}")],
            json!((each - 1).to_string())
        );
    }
    // The updaters are recorded (at most ten kept, as upstream).
    let managers = stored["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .len();
    assert!(managers >= 10, "{managers} managers");
    assert_eq!(kv.version, 1 + (clients * each) as i64);
}

#[test]
fn comparisons_without_copies_match_the_copying_ones() {
    let base = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "a", "resourceVersion": "5", "managedFields": [{"manager": "m"}], "labels": {"x": "y"}},
        "spec": {"a": 1}, "status": {"b": 2},
    });
    let variants: Vec<Value> = vec![
        base.clone(),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "labels": {"x": "y"}}, "spec": {"a": 1}, "status": {"b": 2}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "labels": {"x": "z"}}, "spec": {"a": 1}, "status": {"b": 2}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "resourceVersion": "6", "labels": {"x": "y"}}, "spec": {"a": 2}, "status": {"b": 2}}),
        json!({"apiVersion": "v2", "kind": "Pod", "metadata": {"name": "a"}, "spec": {"a": 1}, "status": {"b": 3}}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": null, "spec": {"a": 1}}),
        json!({"apiVersion": "v1", "kind": "Pod", "spec": {"a": 1}, "extra": true}),
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": "odd", "spec": {"a": 1}}),
        json!([1, 2]),
        json!(null),
    ];
    for a in &variants {
        for b in &variants {
            assert_eq!(spec_changed(a, b), spec_part(a) != spec_part(b), "{a} {b}");
            assert_eq!(
                same_but_volatile(a, b),
                without_volatile(a) == without_volatile(b),
                "{a} {b}"
            );
        }
    }
}

#[test]
fn a_shared_object_gets_its_revision_when_read() {
    let object = Arc::new(json!({"kind": "ConfigMap", "metadata": {"name": "c"}}));
    let next_writers = Arc::clone(&object);
    let w = Written::Shared {
        object,
        revision: 42,
        managed_fields: None,
    };
    assert_eq!(w.kind(), Some("ConfigMap"));
    assert_eq!(w.value()["metadata"]["resourceVersion"], json!("42"));
    assert_eq!(w.into_value()["metadata"]["resourceVersion"], json!("42"));
    // The next writer's object is not changed.
    assert_eq!(
        *next_writers,
        json!({"kind": "ConfigMap", "metadata": {"name": "c"}})
    );
    // Managers kept apart are put back in the answer.
    let mf = json!([{"apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {}}, "manager": "m", "operation": "Apply"}]);
    let w = Written::Shared {
        object: Arc::clone(&next_writers),
        revision: 43,
        managed_fields: Some(bytes::Bytes::from(mf.to_string())),
    };
    let want = json!({"kind": "ConfigMap", "metadata": {"name": "c", "resourceVersion": "43", "managedFields": mf}});
    assert_eq!(*w.value(), want);
    assert_eq!(w.into_value(), want);
}

/// An error is answered from the object it was computed on only once that
/// object is known to have committed: a handed-over write that was not
/// applied leaves the next writer nothing to refuse, and it reads again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_on_a_handed_over_object_that_did_not_commit_is_not_answered() {
    let (_dir, _store, reg) = registry().await;
    let stored = configmap_c(&reg, json!({"a": "1"})).await;
    let key = "/registry/core/configmaps/d/c";
    // A write handed over before the store applied it, which the store
    // then does not apply (a write from elsewhere got in first), and on
    // which the next patch is refused: here it holds a key a ConfigMap may
    // not have.
    let mut never_written = stored.clone();
    never_written["data"]["not a key"] = json!("2");
    let (not_applied, trx) = tokio::sync::oneshot::channel::<Option<store::Ticket>>();
    let mut turn = reg.key_locks.lock(key).await;
    *turn = Some(keylock::LastWrite {
        chain: None,
        ticket: keylock::TicketSlot::Pending(trx),
        object: Arc::new(never_written),
        managed_fields: None,
        managed: None,
        durable: None,
    });
    // A valid patch, which is invalid only on that object.
    let body = json!({"data": {"b": "x"}});
    let waiting = {
        let reg = reg.clone();
        tokio::spawn(async move {
            reg.patch(
                &path("configmaps", Some("d"), Some("c")),
                PatchType::Merge,
                body.to_string().as_bytes(),
                &WriteOptions::default(),
            )
            .await
            .map(|w| w.object.into_value())
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    drop(turn);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    not_applied.send(None).unwrap();
    let out = tokio::time::timeout(std::time::Duration::from_secs(10), waiting)
        .await
        .unwrap()
        .unwrap()
        .expect("the patch applies to the stored object");
    assert_eq!(out["data"], json!({"a": "1", "b": "x"}));
}

/// An update that changes a Service's NodePort gives the old port back once
/// it has committed (the replaced object is gone by then): another Service
/// can take it, and the new port stays taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_node_port_is_released_after_the_update() {
    let (_dir, _store, reg) = registry().await;
    let opts = WriteOptions::default();
    namespace_d(&reg).await;
    let svc = |name: &str, port: u16| {
        json!({"metadata": {"name": name}, "spec": {"type": "NodePort",
            "ports": [{"port": 80, "protocol": "TCP", "nodePort": port}]}})
    };
    let services = path("services", Some("d"), None);
    reg.create(&services, svc("a", 30080), &opts).await.unwrap();
    let taken = reg.create(&services, svc("b", 30080), &opts).await;
    assert!(taken.is_err(), "30080 is a's");
    reg.patch(
        &path("services", Some("d"), Some("a")),
        PatchType::Strategic,
        br#"{"spec":{"ports":[{"port":80,"nodePort":30081}]}}"#,
        &opts,
    )
    .await
    .unwrap();
    reg.create(&services, svc("b", 30080), &opts)
        .await
        .expect("30080 was released");
    let taken = reg.create(&services, svc("c", 30081), &opts).await;
    assert!(taken.is_err(), "30081 is a's now");
}

/// A registry holding configmap `d/c` with `{"a": "1"}`, its path, and
/// options that write as the field manager `tester`.
async fn configmap_c_for_tester() -> (tempfile::TempDir, Arc<Registry>, ResourcePath, WriteOptions)
{
    let (dir, _store, reg) = registry().await;
    configmap_c(&reg, json!({"a": "1"})).await;
    let at = path("configmaps", Some("d"), Some("c"));
    let opts = WriteOptions {
        field_manager: Some("tester".into()),
        ..Default::default()
    };
    (dir, reg, at, opts)
}

/// A committed patch of a built-in kind answers with the object's encoding
/// only (its tree freed before the write was durable), and that encoding
/// decodes to the object as stored and served, managedFields included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patch_answers_with_the_encoding_of_the_stored_object() {
    let (_dir, reg, at, opts) = configmap_c_for_tester().await;
    let w = reg
        .patch(&at, PatchType::Merge, br#"{"data":{"b":"2"}}"#, &opts)
        .await
        .unwrap();
    let Written::Encoded { raw, kind } = &w.object else {
        panic!("not answered by its encoding: {:?}", w.object);
    };
    assert_eq!(kind.as_deref(), Some("ConfigMap"));
    assert_eq!(w.object.kind(), Some("ConfigMap"));
    assert_eq!(Some(raw), w.raw.as_ref());
    let stored = reg.get(&at, None).await.unwrap();
    assert_eq!(stored["data"], json!({"a": "1", "b": "2"}));
    assert!(stored["metadata"]["managedFields"]
        .as_array()
        .is_some_and(|m| m.iter().any(|e| e["manager"] == "tester")));
    assert_eq!(*w.object.value(), stored);
    assert_eq!(w.object.into_value(), stored);
}

/// A strategic merge patch that does not name managedFields leaves them to
/// the bookkeeping of the update (they are not compared, being known to be
/// the stored ones); one that sends them empty resets them, as upstream.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strategic_patches_keep_or_reset_managed_fields_as_they_name_them() {
    let (_dir, reg, at, opts) = configmap_c_for_tester().await;
    let managers = |v: &Value| -> Vec<String> {
        v["metadata"]["managedFields"]
            .as_array()
            .map(|m| {
                m.iter()
                    .map(|e| e["manager"].as_str().unwrap_or("").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    for (i, value) in ["2", "3"].iter().enumerate() {
        let body = format!(r#"{{"data":{{"b":"{value}"}}}}"#);
        reg.patch(&at, PatchType::Strategic, body.as_bytes(), &opts)
            .await
            .unwrap();
        let stored = reg.get(&at, None).await.unwrap();
        assert_eq!(stored["data"]["b"], json!(value), "patch {i}");
        let m = managers(&stored);
        assert_eq!(m.len(), 2, "patch {i}: {m:?}");
        assert!(m.contains(&"tester".to_string()), "patch {i}: {m:?}");
        let tester = stored["metadata"]["managedFields"]
            .as_array()
            .and_then(|m| m.iter().find(|e| e["manager"] == "tester"))
            .cloned()
            .unwrap();
        assert_eq!(
            tester["fieldsV1"],
            json!({"f:data": {"f:b": {}}}),
            "patch {i}"
        );
    }
    // Managers sent without their fields (so that the patch has no
    // free-form value) are invalid, and the stored ones stay.
    reg.patch(
        &at,
        PatchType::Strategic,
        br#"{"data":{"b":"4"},"metadata":{"managedFields":[{"manager":"other","operation":"Update","apiVersion":"v1"}]}}"#,
        &opts,
    )
    .await
    .unwrap();
    let stored = reg.get(&at, None).await.unwrap();
    assert_eq!(stored["data"]["b"], json!("4"));
    let mut m = managers(&stored);
    m.sort();
    assert_eq!(m, ["kube-apiserver", "tester"]);
    reg.patch(
        &at,
        PatchType::Strategic,
        br#"{"metadata":{"managedFields":[{}]}}"#,
        &opts,
    )
    .await
    .unwrap();
    let stored = reg.get(&at, None).await.unwrap();
    assert!(managers(&stored).is_empty(), "{:?}", managers(&stored));
}
