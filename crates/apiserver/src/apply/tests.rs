//! Table-driven tests of apply and managed fields over small schemas built
//! here (as a custom resource brings them) and the built-in Pod schema.

use serde_json::{json, Map, Value};

use super::managed::{
    track_update, track_update_known, Entry, Managed, Operation, Writer, MAX_UPDATE_MANAGERS,
};
use super::operation::{apply, apply_known, check_config, Prepared};
use super::typed::{validate, Scope};
use crate::schema::SchemaNode;

/// A custom-resource-like schema with one field of each kind.
pub(super) fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object", "properties": {
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
                "managedFields": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
            }},
            "spec": {"type": "object", "properties": {
                "replicas": {"type": "integer"},
                "mode": {"type": "string"},
                "args": {"type": "array", "items": {"type": "string"}},
                "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                "items": {
                    "type": "array",
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["name"],
                    "items": {"type": "object", "properties": {
                        "name": {"type": "string"},
                        "value": {"type": "string"},
                        "port": {"type": "integer"}
                    }}
                },
                "selector": {"type": "object", "x-kubernetes-map-type": "atomic", "additionalProperties": {"type": "string"}},
                "config": {"type": "object", "additionalProperties": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
            }},
            "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}
        }
    })
}

pub(super) struct Fixture {
    defs: Map<String, Value>,
    root: Value,
}

impl Fixture {
    pub(super) fn new() -> Fixture {
        Fixture {
            defs: Map::new(),
            root: schema(),
        }
    }

    pub(super) fn node(&self) -> Option<SchemaNode<'_>> {
        Some(SchemaNode::new(&self.defs, &self.root))
    }
}

pub(super) fn writer(manager: &str) -> Writer<'_> {
    Writer {
        manager,
        api_version: "example.com/v1",
        subresource: "",
        scope: Scope {
            skip_status: true,
            skip_spec: false,
        },
        now: "2030-01-01T00:00:00Z".into(),
    }
}

fn obj(spec: Value) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "namespace": "default"}, "spec": spec})
}

/// The fields of `manager`'s entry, as `FieldsV1`.
pub(super) fn fields_of(o: &Value, manager: &str) -> Option<Value> {
    Managed::decode(o)
        .unwrap()
        .entries
        .into_iter()
        .find(|e| e.id.manager == manager)
        .map(|e| e.set().to_fields_v1())
}

fn managers(o: &Value) -> Vec<(String, Operation)> {
    let mut m: Vec<_> = Managed::decode(o)
        .unwrap()
        .entries
        .into_iter()
        .map(|e| (e.id.manager, e.id.operation))
        .collect();
    m.sort();
    m
}

#[test]
fn apply_creates_and_owns_what_it_sets() {
    let f = Fixture::new();
    let cfg = obj(
        json!({"replicas": 2, "tags": ["a"], "items": [{"name": "x", "value": "1"}], "config": {"k": "v"}, "selector": {"app": "w"}}),
    );
    let out = apply(f.node(), None, &cfg, &writer("ctl"), false).unwrap();
    assert_eq!(out["spec"], cfg["spec"]);
    assert_eq!(
        fields_of(&out, "ctl").unwrap(),
        json!({"f:spec": {
            "f:replicas": {},
            "f:tags": {"v:\"a\"": {}},
            "f:items": {"k:{\"name\":\"x\"}": {".": {}, "f:name": {}, "f:value": {}}},
            "f:config": {"f:k": {}},
            "f:selector": {}
        }})
    );
    let entry = &out["metadata"]["managedFields"][0];
    assert_eq!(entry["operation"], "Apply");
    assert_eq!(entry["apiVersion"], "example.com/v1");
    assert_eq!(entry["fieldsType"], "FieldsV1");
    assert_eq!(entry["time"], "2030-01-01T00:00:00Z");
    assert!(entry.get("subresource").is_none());
}

#[test]
fn reapply_removes_what_is_no_longer_applied() {
    let f = Fixture::new();
    let first = obj(
        json!({"replicas": 2, "mode": "fast", "tags": ["a", "b"], "items": [{"name": "x", "value": "1"}, {"name": "y"}], "config": {"k": "v", "j": "w"}}),
    );
    let live = apply(f.node(), None, &first, &writer("ctl"), false).unwrap();
    let second =
        obj(json!({"replicas": 2, "tags": ["a"], "items": [{"name": "x"}], "config": {"k": "v"}}));
    let out = apply(f.node(), Some(&live), &second, &writer("ctl"), false).unwrap();
    assert_eq!(
        out["spec"],
        json!({"replicas": 2, "tags": ["a"], "items": [{"name": "x"}], "config": {"k": "v"}})
    );
    // Stopping to apply everything under a map removes the map.
    let third = obj(json!({"replicas": 2}));
    let out = apply(f.node(), Some(&out), &third, &writer("ctl"), false).unwrap();
    assert_eq!(out["spec"], json!({"replicas": 2}));
}

#[test]
fn fields_another_manager_owns_stay() {
    let f = Fixture::new();
    let a = obj(json!({"config": {"k": "v"}, "items": [{"name": "x", "value": "1"}]}));
    let live = apply(f.node(), None, &a, &writer("a"), false).unwrap();
    // b applies the same values: shared ownership, no conflict.
    let live = apply(f.node(), Some(&live), &a, &writer("b"), false).unwrap();
    assert_eq!(
        managers(&live),
        [
            ("a".into(), Operation::Apply),
            ("b".into(), Operation::Apply)
        ]
    );
    // a stops: b still holds them.
    let nothing =
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
    let out = apply(f.node(), Some(&live), &nothing, &writer("a"), false).unwrap();
    assert_eq!(out["spec"], a["spec"]);
    assert_eq!(managers(&out), [("b".into(), Operation::Apply)]);
}

#[test]
fn updaters_keep_fields_an_applier_drops() {
    let f = Fixture::new();
    let live = apply(
        f.node(),
        None,
        &obj(json!({"mode": "fast", "replicas": 1})),
        &writer("a"),
        false,
    )
    .unwrap();
    // Another client changes the mode with an ordinary update.
    let mut new = live.clone();
    new["spec"]["mode"] = json!("slow");
    track_update(f.node(), Some(&live), &mut new, &writer("editor"));
    assert_eq!(
        fields_of(&new, "editor").unwrap(),
        json!({"f:spec": {"f:mode": {}}})
    );
    assert_eq!(
        fields_of(&new, "a").unwrap(),
        json!({"f:spec": {"f:replicas": {}}})
    );
    // a no longer owns the mode, so dropping it from a's config keeps it.
    let out = apply(
        f.node(),
        Some(&new),
        &obj(json!({"replicas": 1})),
        &writer("a"),
        false,
    )
    .unwrap();
    assert_eq!(out["spec"]["mode"], "slow");
    // And applying another value conflicts with the editor.
    let e = apply(
        f.node(),
        Some(&new),
        &obj(json!({"replicas": 1, "mode": "fast"})),
        &writer("a"),
        false,
    )
    .unwrap_err();
    assert_eq!(e.code, 409);
    assert_eq!(
        e.message,
        "Apply failed with 1 conflict: conflict with \"editor\" using example.com/v1: .spec.mode"
    );
}

#[test]
fn conflicts_by_list_and_map_type() {
    struct Case {
        name: &'static str,
        first: Value,
        second: Value,
        conflicts: &'static [&'static str],
        merged: Value,
    }
    let cases = [
        Case {
            name: "scalar",
            first: json!({"replicas": 1}),
            second: json!({"replicas": 2}),
            conflicts: &[".spec.replicas"],
            merged: json!({"replicas": 2}),
        },
        Case {
            name: "atomic list is one field",
            first: json!({"args": ["a", "b"]}),
            second: json!({"args": ["a", "c"]}),
            conflicts: &[".spec.args"],
            merged: json!({"args": ["a", "c"]}),
        },
        Case {
            name: "atomic map is one field",
            first: json!({"selector": {"app": "a"}}),
            second: json!({"selector": {"tier": "b"}}),
            conflicts: &[".spec.selector"],
            merged: json!({"selector": {"tier": "b"}}),
        },
        Case {
            name: "set items are separate",
            first: json!({"tags": ["a"]}),
            second: json!({"tags": ["b"]}),
            conflicts: &[],
            merged: json!({"tags": ["a", "b"]}),
        },
        Case {
            name: "map items by key",
            first: json!({"items": [{"name": "x", "value": "1"}]}),
            second: json!({"items": [{"name": "y", "value": "2"}, {"name": "x", "value": "3"}]}),
            conflicts: &[".spec.items[name=\"x\"].value"],
            merged: json!({"items": [{"name": "y", "value": "2"}, {"name": "x", "value": "3"}]}),
        },
        Case {
            name: "granular map keys are separate",
            first: json!({"config": {"a": "1"}}),
            second: json!({"config": {"b": "2", "a": "1"}}),
            conflicts: &[],
            merged: json!({"config": {"a": "1", "b": "2"}}),
        },
        Case {
            name: "free-form objects are granular",
            first: json!({"free": {"x": {"y": 1}}}),
            second: json!({"free": {"x": {"y": 2, "z": [1]}}}),
            conflicts: &[".spec.free.x.y"],
            merged: json!({"free": {"x": {"y": 2, "z": [1]}}}),
        },
    ];
    let f = Fixture::new();
    for c in cases {
        let live = apply(f.node(), None, &obj(c.first.clone()), &writer("one"), false).unwrap();
        let res = apply(
            f.node(),
            Some(&live),
            &obj(c.second.clone()),
            &writer("two"),
            false,
        );
        if c.conflicts.is_empty() {
            let out = res.unwrap_or_else(|e| panic!("{}: {}", c.name, e.message));
            assert_eq!(out["spec"], c.merged, "{}", c.name);
            continue;
        }
        let e = res.expect_err(c.name);
        assert_eq!(e.code, 409, "{}", c.name);
        let fields: Vec<&str> = e.details.as_ref().unwrap()["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, c.conflicts, "{}", c.name);
        // Forced, the second applier wins and the first loses the fields.
        let out = apply(
            f.node(),
            Some(&live),
            &obj(c.second.clone()),
            &writer("two"),
            true,
        )
        .unwrap();
        assert_eq!(out["spec"], c.merged, "{} (forced)", c.name);
        let one = fields_of(&out, "one").unwrap_or(json!({}));
        for path in c.conflicts {
            assert!(
                !one.to_string().contains(path.rsplit('.').next().unwrap()),
                "{}: one still owns {path}: {one}",
                c.name
            );
        }
    }
}

#[test]
fn list_order_follows_the_configuration_for_shared_items() {
    let f = Fixture::new();
    let live = apply(
        f.node(),
        None,
        &obj(json!({"items": [{"name": "a"}, {"name": "b"}, {"name": "c"}]})),
        &writer("one"),
        false,
    )
    .unwrap();
    let out = apply(
        f.node(),
        Some(&live),
        &obj(json!({"items": [{"name": "c"}, {"name": "d"}, {"name": "a"}]})),
        &writer("two"),
        false,
    )
    .unwrap();
    let names: Vec<&str> = out["spec"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b", "c", "d", "a"]);
}

/// A chain of updates that hands each one's decoded managers to the next
/// records exactly what decoding them again would.
#[test]
fn kept_managers_give_the_same_bookkeeping_as_decoded_ones() {
    let f = Fixture::new();
    let mut live = obj(json!({"replicas": 1, "config": {"a": "1"}}));
    let mut known = track_update_known(f.node(), None, &mut live, &writer("creator"), None, false);
    for (i, who) in ["a", "b", "a", "creator", "c"].iter().enumerate() {
        let mut next = live.clone();
        next["spec"]["replicas"] = json!(i + 2);
        next["spec"]["config"][*who] = json!(i.to_string());
        if i == 3 {
            next["spec"]["config"].as_object_mut().unwrap().remove("a");
        }
        let mut decoded = next.clone();
        track_update(f.node(), Some(&live), &mut decoded, &writer(who));
        // Told that `next` carries the live managers (it is a copy of the
        // live object with its spec changed), or left to compare them.
        let mut compared = next.clone();
        let compared_known = track_update_known(
            f.node(),
            Some(&live),
            &mut compared,
            &writer(who),
            known.clone(),
            false,
        );
        known = track_update_known(f.node(), Some(&live), &mut next, &writer(who), known, true);
        assert_eq!(next, decoded, "step {i}");
        assert_eq!(compared, decoded, "step {i}");
        assert_eq!(compared_known, known, "step {i}");
        let mut a = known.clone().unwrap().entries;
        let mut b = Managed::decode(&next).unwrap().entries;
        a.sort_by_key(|e| e.id.identifier());
        b.sort_by_key(|e| e.id.identifier());
        assert_eq!(a, b, "step {i}: the kept managers are the written ones");
        live = next;
    }
}

#[test]
fn applies_with_kept_managers_give_what_decoding_gives() {
    let f = Fixture::new();
    let mut live = obj(json!({"replicas": 1, "config": {"a": "1"}}));
    let mut known = track_update_known(f.node(), None, &mut live, &writer("creator"), None, false);
    // Appliers take shared fields from each other (force), set their own,
    // drop fields they applied before, and an updater writes in between.
    let steps: Vec<(&str, Value)> = vec![
        (
            "a",
            json!({"replicas": 2, "config": {"a": "2"}, "tags": ["x"]}),
        ),
        ("b", json!({"replicas": 3, "config": {"b": "1"}})),
        ("a", json!({"replicas": 4, "config": {"a": "3"}})),
        ("b", json!({"config": {"b": "1"}})),
        (
            "c",
            json!({"replicas": 5, "items": [{"name": "x", "value": "1"}]}),
        ),
        (
            "c",
            json!({"replicas": 5, "items": [{"name": "x", "value": "1"}]}),
        ),
    ];
    for (i, (who, spec)) in steps.into_iter().enumerate() {
        if i == 3 {
            let mut next = live.clone();
            next["spec"]["mode"] = json!("slow");
            known = track_update_known(
                f.node(),
                Some(&live),
                &mut next,
                &writer("upd"),
                known,
                true,
            );
            live = next;
        }
        let config = obj(spec);
        let w = writer(who);
        let decoded = apply(f.node(), Some(&live), &config, &w, true).unwrap();
        let prepared = Prepared::new(f.node(), &config, &w);
        let (detached, mut kept) =
            apply_known(f.node(), Some(&live), &prepared, &w, true, known.take()).unwrap();
        assert_eq!(
            detached["metadata"].get("managedFields"),
            None,
            "step {i}: the managers come apart"
        );
        // Their encoding spliced into the object's is the object's encoding.
        let bytes = kept.encode_bytes().expect("managers");
        let mut next = detached.clone();
        kept.write_to(&mut next);
        let spliced = crate::stamp::slotted_with(&detached, Some(&bytes))
            .unwrap()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&spliced.bytes),
            serde_json::to_string(&next).unwrap(),
            "step {i}"
        );
        assert_eq!(next, decoded, "step {i}");
        assert!(
            next["metadata"]["managedFields"]
                .as_array()
                .is_some_and(|m| !m.is_empty()),
            "step {i}: {next}"
        );
        let mut a = kept.entries.clone();
        let mut b = Managed::decode(&next).unwrap().entries;
        a.sort_by_key(|e| e.id.identifier());
        b.sort_by_key(|e| e.id.identifier());
        assert_eq!(a, b, "step {i}: the kept managers are the written ones");
        // Their encoded sets are what a fresh encoding gives.
        let mut fresh = Managed {
            entries: a
                .iter()
                .map(|e| {
                    Entry::new(
                        e.id.clone(),
                        &e.api_version,
                        e.time.clone(),
                        e.set().clone(),
                    )
                })
                .collect(),
        };
        let mut again = kept.clone();
        assert_eq!(again.encode(), fresh.encode(), "step {i}");
        known = Some(kept);
        live = next;
    }
    assert_eq!(live["spec"]["mode"], json!("slow"));
    assert_eq!(
        live["spec"].get("tags"),
        None,
        "a's dropped tags are pruned"
    );
}

#[test]
fn merge_leaves_the_live_managed_fields_out() {
    let f = Fixture::new();
    let live = apply(
        f.node(),
        None,
        &obj(json!({"replicas": 1})),
        &writer("a"),
        false,
    )
    .unwrap();
    assert!(live["metadata"]["managedFields"].is_array());
    let merged = super::merge::merge(f.node(), &live, &obj(json!({"replicas": 2})));
    assert_eq!(merged["spec"]["replicas"], json!(2));
    assert_eq!(merged["metadata"].get("managedFields"), None);
    assert_eq!(merged["metadata"]["name"], live["metadata"]["name"]);
}

#[test]
fn update_bookkeeping() {
    let f = Fixture::new();
    let mut created = obj(json!({"replicas": 1, "config": {"a": "1"}}));
    track_update(f.node(), None, &mut created, &writer("creator"));
    assert_eq!(
        fields_of(&created, "creator").unwrap(),
        json!({"f:spec": {".": {}, "f:replicas": {}, "f:config": {".": {}, "f:a": {}}}})
    );
    assert_eq!(
        created["metadata"]["managedFields"][0]["operation"],
        "Update"
    );

    // An update that changes nothing records nothing new.
    let mut same = created.clone();
    track_update(f.node(), Some(&created), &mut same, &writer("other"));
    assert_eq!(managers(&same), [("creator".into(), Operation::Update)]);

    // Removing a field takes it from its owner; the remover owns nothing.
    let mut removed = created.clone();
    removed["spec"]["config"].as_object_mut().unwrap().clear();
    track_update(f.node(), Some(&created), &mut removed, &writer("other"));
    assert_eq!(
        fields_of(&removed, "creator").unwrap(),
        json!({"f:spec": {".": {}, "f:replicas": {}, "f:config": {}}})
    );
    assert_eq!(fields_of(&removed, "other"), None);
    // Changing a value moves it to the writer.
    let mut changed = created.clone();
    changed["spec"]["replicas"] = json!(2);
    track_update(f.node(), Some(&created), &mut changed, &writer("other"));
    assert_eq!(
        fields_of(&changed, "other"),
        Some(json!({"f:spec": {"f:replicas": {}}}))
    );
    assert_eq!(
        fields_of(&changed, "creator").unwrap(),
        json!({"f:spec": {".": {}, "f:config": {".": {}, "f:a": {}}}})
    );

    // Status is another endpoint's: not tracked on the main resource.
    let mut status = created.clone();
    status["status"] = json!({"ready": true});
    track_update(f.node(), Some(&created), &mut status, &writer("other"));
    assert_eq!(managers(&status), [("creator".into(), Operation::Update)]);
}

#[test]
fn clients_may_reset_or_hand_over_managed_fields() {
    let f = Fixture::new();
    let mut live = obj(json!({"replicas": 1}));
    track_update(f.node(), None, &mut live, &writer("creator"));

    // `managedFields: []` clears them, and the object stays untracked.
    let mut reset = live.clone();
    reset["metadata"]["managedFields"] = json!([]);
    track_update(f.node(), Some(&live), &mut reset, &writer("x"));
    assert!(reset["metadata"].get("managedFields").is_none());
    let mut later = reset.clone();
    later["spec"]["replicas"] = json!(5);
    track_update(f.node(), Some(&reset), &mut later, &writer("y"));
    assert!(later["metadata"].get("managedFields").is_none());

    // Valid entries sent by the client replace the stored ones.
    let mut handed = live.clone();
    handed["metadata"]["managedFields"][0]["manager"] = json!("new-owner");
    track_update(f.node(), Some(&live), &mut handed, &writer("x"));
    assert_eq!(managers(&handed), [("new-owner".into(), Operation::Update)]);

    // Invalid ones are ignored: the stored ones stay.
    let mut bad = live.clone();
    bad["metadata"]["managedFields"] =
        json!([{"manager": "m", "operation": "Nope", "apiVersion": "v1"}]);
    track_update(f.node(), Some(&live), &mut bad, &writer("x"));
    assert_eq!(managers(&bad), [("creator".into(), Operation::Update)]);
}

#[test]
fn first_apply_to_an_untracked_object_conflicts_with_its_fields() {
    let f = Fixture::new();
    let live = obj(json!({"replicas": 1, "mode": "fast"}));
    let e = apply(
        f.node(),
        Some(&live),
        &obj(json!({"replicas": 3})),
        &writer("a"),
        false,
    )
    .unwrap_err();
    assert_eq!(
        e.message,
        "Apply failed with 1 conflict: conflict with \"before-first-apply\" using example.com/v1: .spec.replicas"
    );
    let out = apply(
        f.node(),
        Some(&live),
        &obj(json!({"replicas": 1})),
        &writer("a"),
        false,
    )
    .unwrap();
    assert_eq!(
        managers(&out),
        [
            ("a".into(), Operation::Apply),
            ("before-first-apply".into(), Operation::Update)
        ]
    );
}

#[test]
fn old_updaters_are_bucketed() {
    let f = Fixture::new();
    let mut live = obj(json!({}));
    track_update(f.node(), None, &mut live, &writer("m00"));
    for i in 0..13 {
        let mut next = live.clone();
        next["spec"]["config"][format!("k{i}")] = json!("v");
        let mut w = writer("");
        let name = format!("m{i:02}");
        w.manager = &name;
        w.now = format!("2030-01-01T00:00:{i:02}Z");
        track_update(f.node(), Some(&live), &mut next, &w);
        live = next;
    }
    // The bucket counts as one of the ten: m00..m03 are merged into it.
    let m = managers(&live);
    assert_eq!(m.len(), MAX_UPDATE_MANAGERS, "{m:?}");
    assert!(m.contains(&("ancient-changes".into(), Operation::Update)));
    assert!(m.contains(&("m04".into(), Operation::Update)));
    assert!(m.contains(&("m12".into(), Operation::Update)));
    assert!(!m.contains(&("m03".into(), Operation::Update)));
    // Nothing owned is lost in the bucket.
    let all = Managed::decode(&live).unwrap().owned();
    for i in 0..13 {
        assert!(all.has(&[
            super::path::PathElement::field("spec"),
            super::path::PathElement::field("config"),
            super::path::PathElement::field(&format!("k{i}")),
        ]));
    }
}

#[test]
fn kubectl_takes_over_what_client_side_apply_set() {
    let f = Fixture::new();
    let last = obj(json!({"replicas": 1}));
    let mut live = last.clone();
    live["metadata"]["annotations"] =
        json!({super::operation::LAST_APPLIED: serde_json::to_string(&last).unwrap()});
    track_update(
        f.node(),
        None,
        &mut live,
        &writer("kubectl-client-side-apply"),
    );
    // kubectl changes the value it applied client-side: no conflict.
    let out = apply(
        f.node(),
        Some(&live),
        &obj(json!({"replicas": 2})),
        &writer("kubectl"),
        false,
    )
    .unwrap();
    assert_eq!(out["spec"]["replicas"], 2);
    let annotation = out["metadata"]["annotations"][super::operation::LAST_APPLIED]
        .as_str()
        .unwrap();
    let recorded: Value = serde_json::from_str(annotation).unwrap();
    assert_eq!(recorded["spec"]["replicas"], 2);
    assert!(annotation.ends_with('\n'));
    // Another manager gets the conflict.
    assert!(apply(
        f.node(),
        Some(&live),
        &obj(json!({"replicas": 2})),
        &writer("other"),
        false
    )
    .is_err());
}

#[test]
fn configurations_are_checked_against_the_schema() {
    let f = Fixture::new();
    let cases: &[(Value, &str)] = &[
        (json!({"spec": {"nope": 1}}), ".spec.nope: field not declared in schema"),
        (json!({"spec": {"replicas": "x"}}), ".spec.replicas: expected numeric (int or float), got string"),
        (json!({"spec": {"mode": 1}}), ".spec.mode: expected string, got 1"),
        (json!({"spec": {"config": []}}), ".spec.config: expected map, got []"),
        (json!({"spec": {"items": [{"value": "1"}]}}), ".spec.items: element 0: associative list with keys has an element that omits all key fields [\"name\"] (and doesn't have default values for any key fields)"),
        (json!({"spec": {"items": [{"name": "a"}, {"name": "a"}]}}), ".spec.items: duplicate entries for key [name=\"a\"]"),
        (json!({"spec": {"tags": ["a", "a"]}}), ".spec.tags: duplicate entries for key [=\"a\"]"),
        (json!({"spec": {"tags": [{}]}}), ".spec.tags: element 0: associative list without keys has an element that's a map type"),
    ];
    for (spec, want) in cases {
        assert_eq!(validate(f.node(), spec).unwrap_err(), *want, "{spec}");
    }
    assert!(validate(
        f.node(),
        &json!({"spec": {"free": {"any": {"thing": [1]}}, "replicas": null}})
    )
    .is_ok());
    let two = validate(f.node(), &json!({"spec": {"replicas": "x", "mode": 1}})).unwrap_err();
    assert!(two.starts_with("errors:\n  "), "{two}");

    let ok = obj(json!({"replicas": 1}));
    assert!(check_config(f.node(), "example.com/v1", "Widget", &ok).is_ok());
    let e = check_config(f.node(), "example.com/v1", "Gadget", &ok).unwrap_err();
    assert_eq!(
        (e.code, e.message.as_str()),
        (400, "invalid object type: example.com/v1, Kind=Widget")
    );
    let mut mf = ok.clone();
    mf["metadata"]["managedFields"] = json!([]);
    let e = check_config(f.node(), "example.com/v1", "Widget", &mf).unwrap_err();
    assert_eq!(e.message, "metadata.managedFields must be nil");
    let e = check_config(f.node(), "example.com/v1", "Widget", &obj(json!({"x": 1}))).unwrap_err();
    assert_eq!(
        e.message,
        "failed to create typed patch object (default/w; example.com/v1, Kind=Widget): .spec.x: field not declared in schema"
    );
}

#[test]
fn open_metadata_of_a_custom_resource_is_object_meta() {
    // As a CRD's schema has it: `metadata` is just an object.
    let root = json!({"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    }});
    let defs = Map::new();
    let ty = Some(SchemaNode::new(&defs, &root));
    let cfg = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "labels": {"a": "b"}}, "spec": {"x": [1]}});
    let out = apply(ty, None, &cfg, &writer("m"), false).unwrap();
    assert_eq!(
        fields_of(&out, "m").unwrap(),
        json!({"f:metadata": {"f:labels": {"f:a": {}}}, "f:spec": {"f:x": {}}})
    );
    let bad = json!({"metadata": {"lables": {}}});
    assert_eq!(
        validate(ty, &bad).unwrap_err(),
        ".metadata.lables: field not declared in schema"
    );
}

#[test]
fn managed_fields_entries_round_trip() {
    let entries = json!([
        {"manager": "a", "operation": "Apply", "apiVersion": "v1", "time": "2030-01-01T00:00:00Z",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:data": {"f:x": {}}}},
        {"manager": "b", "operation": "Update", "apiVersion": "v1", "time": "2030-01-01T00:00:01Z",
         "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:y": {}}}, "subresource": "status"}
    ]);
    let o = json!({"metadata": {"managedFields": entries}});
    let mut m = Managed::decode(&o).unwrap();
    assert_eq!(m.encode().unwrap(), entries);
    // Encoded as bytes: what encoding the entries' value gives, with keys
    // and strings needing escapes, no time, and sets encoded afresh.
    let bytes = |m: &mut Managed| String::from_utf8(m.encode_bytes().unwrap().to_vec()).unwrap();
    assert_eq!(bytes(&mut m), entries.to_string());
    let mut fresh = m.clone();
    fresh.entries[0].id.manager = "q\"uote\u{1}é".into();
    fresh.entries[0].time = None;
    let _ = fresh.entries[1]
        .set_mut()
        .union_with(&m.entries[0].set().clone());
    let want = fresh.clone().encode().unwrap().to_string();
    assert_eq!(bytes(&mut fresh), want);
    assert_eq!(Managed::default().encode_bytes(), None);
    // Written into an object, the entries are what they own, whatever the
    // object held before: its fieldsV1 values are reused only where equal.
    let reversed = json!([entries[1], entries[0]]);
    let mut stale = entries.clone();
    stale[0]["fieldsV1"] = json!({"f:data": {"f:z": {}}});
    stale[1]["fieldsV1"] = json!({"f:data": {"f:x": {}}});
    for held in [Some(entries.clone()), Some(reversed), Some(stale), None] {
        let mut target = json!({"metadata": {"name": "o"}});
        if let Some(h) = held {
            target["metadata"]["managedFields"] = h;
        }
        m.write_to(&mut target);
        assert_eq!(
            target,
            json!({"metadata": {"name": "o", "managedFields": entries}})
        );
    }
    for (bad, why) in [
        (
            json!([{"manager": "a", "operation": "Get", "apiVersion": "v1", "fieldsType": "FieldsV1"}]),
            "operation must be `Apply` or `Update`",
        ),
        (
            json!([{"manager": "a", "operation": "Apply", "fieldsType": "FieldsV1"}]),
            "apiVersion must not be empty",
        ),
        (
            json!([{"manager": "a", "operation": "Apply", "apiVersion": "v1"}]),
            "missing fieldsType in managed fields entry 0",
        ),
        (
            json!([{"manager": "a", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV2"}]),
            "invalid fieldsType \"FieldsV2\" in managed fields entry 0",
        ),
    ] {
        assert_eq!(
            Managed::decode(&json!({"metadata": {"managedFields": bad}})).unwrap_err(),
            why
        );
    }
}

#[test]
fn the_create_shortcut_records_what_the_comparison_does() {
    let f = Fixture::new();
    let custom = [
        obj(
            json!({"replicas": 1, "tags": ["a", "b"], "items": [{"name": "x", "value": "1"}, {"name": "y"}],
                   "config": {}, "selector": {"a": "b"}, "free": {"x": {"y": [1]}, "z": null}, "args": []}),
        ),
        obj(json!({"items": [{"name": "d"}, {"name": "d"}], "tags": [{"bad": 1}], "mode": null})),
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w", "labels": {}, "annotations": {"a": "b"}}, "status": {"ready": true}}),
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": null}),
    ];
    let scope = writer("x").scope;
    for o in &custom {
        let generic = super::typed::compare(f.node(), &json!({}), o, &scope)
            .added
            .to_fields_v1();
        let fast = Value::Object(super::typed::added_fields_v1(f.node(), o, &scope));
        assert_eq!(fast, generic, "{o}");
    }
    let builtin: &[(&str, &str, &str, Value)] = &[
        (
            "",
            "v1",
            "pods",
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "d", "labels": {"a": "b"}, "uid": "u", "generation": 1}, "spec": {
            "containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 80}, {"containerPort": 80, "protocol": "UDP"}], "resources": {}, "env": [{"name": "E", "value": "v"}]}],
            "tolerations": [{"key": "k", "operator": "Exists"}], "securityContext": {}, "nodeSelector": {"x": "y"}},
            "status": {"phase": "Pending"}}),
        ),
        (
            "apps",
            "v1",
            "deployments",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {
            "selector": {"matchLabels": {"a": "b"}}, "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%"}},
            "template": {"metadata": {"labels": {"a": "b"}, "creationTimestamp": null}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}),
        ),
    ];
    for (g, v, plural, o) in builtin {
        let info = crate::resources::lookup(g, v, plural).unwrap();
        let schema = super::schema_for(info);
        let generic = super::typed::compare(schema.node(), &json!({}), o, &scope)
            .added
            .to_fields_v1();
        let fast = Value::Object(super::typed::added_fields_v1(schema.node(), o, &scope));
        assert_eq!(fast, generic, "{plural}");
    }
}

#[test]
fn union_tells_whether_it_added() {
    let fields = |v: Value| super::set::Set::from_fields_v1(&v).unwrap();
    let mut owned =
        fields(json!({"f:data": {"f:a": {}, "f:b": {}}, "f:metadata": {"f:labels": {".": {}}}}));
    let before = owned.clone();
    assert!(!owned.union_with(&fields(json!({"f:data": {"f:a": {}}}))));
    assert!(!owned.union_with(&super::set::Set::new()));
    assert_eq!(owned, before);
    assert!(owned.union_with(&fields(json!({"f:data": {"f:c": {}}}))));
    assert!(owned.union_with(&fields(json!({"f:spec": {"f:x": {}}}))));
    assert!(owned.has(&[
        super::path::PathElement::Field("spec".into()),
        super::path::PathElement::Field("x".into())
    ]));
}
