//! The apply's shortcuts against the walks they stand for, over many
//! generated live objects and apply configurations of the test schema (every
//! kind of field, nulls, empty containers, duplicate list items, items
//! without keys): [`merge`] (a copy with the configuration laid over it)
//! against [`merge_rebuilt`], and [`compare_guided`] of a merge, with and
//! without a prune, against [`compare`]; and [`compare`]'s own shortcuts
//! (maps walked side by side, keyed lists paired by position) against its
//! walk of the same lists in another order, and against itself both ways.

use serde_json::{json, Map, Value};

use super::merge::{merge, merge_rebuilt, prune};
use super::set::Set;
use super::tests::Fixture;
use super::typed::{compare, compare_guided, field_set, Guide, Scope};

/// A small deterministic generator (xorshift), so that a failure repeats.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, in_four: u64) -> bool {
        self.below(4) < in_four
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len() as u64) as usize]
    }

    /// Mostly a string from a small pool; sometimes null, a number or `{}`.
    fn scalar(&mut self) -> Value {
        match self.below(10) {
            0 => Value::Null,
            1 => json!(self.below(3)),
            2 => json!({}),
            _ => json!(self.pick(&["a", "b", "c"])),
        }
    }

    fn string_map(&mut self) -> Value {
        let mut m = Map::new();
        for _ in 0..self.below(4) {
            let k = self.pick(&["x", "y", "z"]);
            let v = if self.below(8) == 0 {
                Value::Null
            } else {
                json!(self.pick(&["1", "2"]))
            };
            m.insert(k.into(), v);
        }
        Value::Object(m)
    }

    fn string_list(&mut self) -> Value {
        (0..self.below(4))
            .map(|_| json!(self.pick(&["a", "b", "c"])))
            .collect()
    }

    fn items(&mut self) -> Value {
        let mut out = Vec::new();
        for _ in 0..self.below(4) {
            let mut m = Map::new();
            // Now and then an item without its key: the list is then one field.
            if self.below(12) != 0 {
                m.insert("name".into(), json!(self.pick(&["n1", "n2", "n3"])));
            }
            if self.chance(2) {
                m.insert("value".into(), self.scalar());
            }
            if self.chance(1) {
                m.insert("port".into(), json!(self.below(3)));
            }
            out.push(Value::Object(m));
        }
        Value::Array(out)
    }

    fn spec(&mut self) -> Value {
        let mut m = Map::new();
        type Make = fn(&mut Gen) -> Value;
        let fields: [(&str, Make); 8] = [
            ("replicas", |g| json!(g.below(3))),
            ("mode", Gen::scalar),
            ("args", Gen::string_list),
            ("tags", Gen::string_list),
            ("items", Gen::items),
            ("selector", Gen::string_map),
            ("config", Gen::string_map),
            (
                "free",
                |g| json!({"deep": {"k": g.scalar()}, "n": g.below(2)}),
            ),
        ];
        for (k, make) in fields {
            if self.chance(2) {
                let v = if self.below(10) == 0 {
                    Value::Null
                } else {
                    make(self)
                };
                m.insert(k.into(), v);
            }
        }
        Value::Object(m)
    }

    fn object(&mut self) -> Value {
        let mut meta = json!({"name": "w", "namespace": "default"});
        if self.chance(2) {
            meta["labels"] = self.string_map();
        }
        if self.chance(2) {
            meta["annotations"] = self.string_map();
        }
        if self.chance(1) {
            meta["managedFields"] = json!([{"manager": "m", "operation": "Update"}]);
        }
        let mut o = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": meta});
        if self.below(8) != 0 {
            o["spec"] = self.spec();
        }
        if self.chance(1) {
            o["status"] = json!({"ready": self.chance(2)});
        }
        o
    }
}

fn assert_same(what: &str, a: &Set, b: &Set, ctx: &str) {
    assert_eq!(
        a.to_fields_v1(),
        b.to_fields_v1(),
        "{what} differs for {ctx}"
    );
}

#[test]
fn merges_and_their_comparisons_agree_with_the_full_walks() {
    let f = Fixture::new();
    let ty = f.node();
    let scope = Scope {
        skip_status: true,
        skip_spec: false,
    };
    let mut g = Gen(0x9e37_79b9_7f4a_7c15);
    let mut pruned_cases = 0;
    for case in 0..4000 {
        let live = g.object();
        let config = g.object();
        let mut merged = merge(ty, &live, &config);
        assert_eq!(
            merged,
            merge_rebuilt(ty, &live, &config),
            "merge of case {case}: live {live}, config {config}"
        );
        let set = field_set(ty, &config, &scope);
        let mut guides = vec![Guide::Config(&config)];
        // Half the cases prune what an earlier configuration set, with some
        // of it still owned by another manager.
        let earlier;
        if g.chance(2) {
            earlier = field_set(ty, &g.object(), &scope);
            let other = field_set(ty, &g.object(), &scope);
            prune(ty, &mut merged, &earlier, &set.union(&other));
            guides.push(Guide::Paths(&earlier));
            pruned_cases += 1;
        }
        let full = compare(ty, &live, &merged, &scope);
        let guided = compare_guided(ty, &live, &merged, &guides, &scope);
        let ctx = format!("case {case}: live {live}, config {config}, merged {merged}");
        assert_same("added", &full.added, &guided.added, &ctx);
        assert_same("modified", &full.modified, &guided.modified, &ctx);
        assert_same("removed", &full.removed, &guided.removed, &ctx);
    }
    assert!(pruned_cases > 1000, "the prune is exercised");
}

#[test]
fn a_change_outside_the_guides_is_not_seen() {
    // What the guides are for: fields off their paths are passed over (the
    // caller's promise is that nothing changed there).
    let f = Fixture::new();
    let scope = Scope::default();
    let old = json!({"spec": {"mode": "a", "replicas": 1}});
    let new = json!({"spec": {"mode": "b", "replicas": 2}});
    let config = json!({"spec": {"mode": "b"}});
    let guided = compare_guided(f.node(), &old, &new, &[Guide::Config(&config)], &scope);
    assert_eq!(
        guided.modified.to_fields_v1(),
        json!({"f:spec": {"f:mode": {}}})
    );
    let full = compare(f.node(), &old, &new, &scope);
    assert_eq!(
        full.modified.to_fields_v1(),
        json!({"f:spec": {"f:mode": {}, "f:replicas": {}}})
    );
}

#[test]
fn the_full_walk_is_symmetric_and_sees_no_change_in_equal_objects() {
    // `compare` walks objects side by side in key order; whatever it walks
    // past or twice shows here: what one way adds the other removes, a
    // modification is one both ways, and an object equals itself.
    let f = Fixture::new();
    let ty = f.node();
    let scope = Scope::default();
    let mut g = Gen(0x2545_f491_4f6c_dd1d);
    let mut changed = 0;
    for case in 0..4000 {
        let a = g.object();
        let b = if g.chance(1) { a.clone() } else { g.object() };
        let there = compare(ty, &a, &b, &scope);
        let back = compare(ty, &b, &a, &scope);
        let ctx = format!("case {case}: a {a}, b {b}");
        assert_same("added and removed", &there.added, &back.removed, &ctx);
        assert_same("removed and added", &there.removed, &back.added, &ctx);
        assert_same("modified", &there.modified, &back.modified, &ctx);
        let same = compare(ty, &a, &a.clone(), &scope);
        assert!(
            same.added.is_empty() && same.modified.is_empty() && same.removed.is_empty(),
            "{ctx}"
        );
        if a != b && !there.changed().is_empty() {
            changed += 1;
        }
    }
    assert!(changed > 2000, "most pairs differ: {changed}");
}

#[test]
fn maps_are_walked_side_by_side_in_key_order() {
    // The walk relies on `serde_json` maps iterating in key order (its
    // `preserve_order` feature, if some dependency turned it on, would
    // break that).
    let a: Map<String, Value> = serde_json::from_str(r#"{"b": 1, "a": 2, "d": 3}"#).unwrap();
    let b: Map<String, Value> = serde_json::from_str(r#"{"c": 4, "b": 5, "e": 6}"#).unwrap();
    let walked: Vec<(String, Option<i64>, Option<i64>)> = super::typed::side_by_side(&a, &b)
        .map(|(k, x, y)| {
            (
                k.clone(),
                x.and_then(Value::as_i64),
                y.and_then(Value::as_i64),
            )
        })
        .collect();
    assert_eq!(
        walked,
        vec![
            ("a".to_string(), Some(2), None),
            ("b".to_string(), Some(1), Some(5)),
            ("c".to_string(), None, Some(4)),
            ("d".to_string(), Some(3), None),
            ("e".to_string(), None, Some(6)),
        ]
    );
}

#[test]
fn keyed_lists_compare_alike_whether_their_items_pair_by_position_or_not() {
    // Lists of type `map` whose items line up by position are compared pair
    // by pair; in another order, the items are paired by name. Both must
    // find the same changes, since the order of such a list is no field.
    let f = Fixture::new();
    let ty = f.node();
    let scope = Scope::default();
    let mut g = Gen(0x61c8_8646_80b5_83eb);
    let mut reordered = 0;
    for case in 0..4000 {
        let old = g.object();
        let mut new = old.clone();
        // Changes to some items, by name, in place.
        if let Some(items) = new.pointer_mut("/spec/items").and_then(Value::as_array_mut) {
            for item in items.iter_mut() {
                if !g.chance(2) {
                    continue;
                }
                if let Some(m) = item.as_object_mut() {
                    m.insert("value".into(), g.scalar());
                    if g.chance(1) {
                        m.remove("port");
                    }
                }
            }
        }
        if g.chance(1) {
            new["metadata"]["labels"] = g.string_map();
        }
        let in_place = compare(ty, &old, &new, &scope);
        let mut turned = old.clone();
        // Items named twice are compared in their order, as a whole: only
        // lists without them are turned around.
        if let Some(items) = turned
            .pointer_mut("/spec/items")
            .and_then(Value::as_array_mut)
        {
            let names: Vec<&Value> = items.iter().map(|i| &i["name"]).collect();
            let unique = names
                .iter()
                .enumerate()
                .all(|(i, n)| !n.is_null() && !names[i + 1..].contains(n));
            if unique && items.len() > 1 {
                items.reverse();
                reordered += 1;
            }
        }
        let by_name = compare(ty, &turned, &new, &scope);
        let ctx = format!("case {case}: old {old}, new {new}");
        assert_same("added", &in_place.added, &by_name.added, &ctx);
        assert_same("modified", &in_place.modified, &by_name.modified, &ctx);
        assert_same("removed", &in_place.removed, &by_name.removed, &ctx);
    }
    assert!(reordered > 200, "lists in another order: {reordered}");
}
