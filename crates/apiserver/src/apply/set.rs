//! Sets of field paths, and their `FieldsV1` encoding.
//!
//! A set is a tree: `members` are the steps that are themselves in the set;
//! `children` are the steps under which deeper paths are in the set. A step
//! can be both (a list item owned as a whole and some of its fields). The
//! tree never holds an empty child, so emptiness is cheap to test.
//!
//! `FieldsV1` is the same tree as JSON: each step is a key (see
//! [`PathElement::serialize`]), a member without children is `{}`, and a
//! member with children carries `".": {}` next to them.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::path::{Path, PathElement};

/// A set of paths.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Set {
    members: BTreeSet<PathElement>,
    children: BTreeMap<PathElement, Set>,
}

impl Set {
    /// The empty set.
    pub fn new() -> Set {
        Set::default()
    }

    /// A set of these paths.
    pub fn from_paths<'a>(paths: impl IntoIterator<Item = &'a [PathElement]>) -> Set {
        let mut s = Set::new();
        for p in paths {
            s.insert(p);
        }
        s
    }

    /// Whether the set has no path.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty() && self.children.is_empty()
    }

    /// Add a path. The empty path (the whole object) is never tracked.
    pub fn insert(&mut self, path: &[PathElement]) {
        let Some((last, parents)) = path.split_last() else {
            return;
        };
        // Steps are cloned only when new: most inserts share their parents.
        let mut cur = self;
        for pe in parents {
            if !cur.children.contains_key(pe) {
                cur.children.insert(pe.clone(), Set::new());
            }
            cur = cur.children.get_mut(pe).expect("present");
        }
        if !cur.members.contains(last) {
            cur.members.insert(last.clone());
        }
    }

    /// Whether the path itself is in the set.
    pub fn has(&self, path: &[PathElement]) -> bool {
        let Some((last, parents)) = path.split_last() else {
            return false;
        };
        let mut cur = self;
        for pe in parents {
            match cur.children.get(pe) {
                Some(c) => cur = c,
                None => return false,
            }
        }
        cur.members.contains(last)
    }

    /// Whether `pe` (one step from here) is a member.
    pub fn has_member(&self, pe: &PathElement) -> bool {
        self.members.contains(pe)
    }

    /// The steps from here that are members or have paths under them.
    pub fn steps(&self) -> impl Iterator<Item = &PathElement> {
        self.members.iter().chain(
            self.children
                .keys()
                .filter(|pe| !self.members.contains(*pe)),
        )
    }

    /// The paths under `pe`, relative to it.
    pub fn child(&self, pe: &PathElement) -> Option<&Set> {
        self.children.get(pe)
    }

    /// Remove one step from the members (not its children).
    pub fn remove_member(&mut self, pe: &PathElement) {
        self.members.remove(pe);
    }

    /// Paths in either set.
    pub fn union(&self, other: &Set) -> Set {
        let mut out = self.clone();
        out.union_with(other);
        out
    }

    /// Add every path of `other`. Returns whether anything was added.
    pub fn union_with(&mut self, other: &Set) -> bool {
        let mut added = false;
        for m in &other.members {
            if !self.members.contains(m) {
                self.members.insert(m.clone());
                added = true;
            }
        }
        for (pe, c) in &other.children {
            match self.children.get_mut(pe) {
                Some(mine) => added |= mine.union_with(c),
                None => {
                    self.children.insert(pe.clone(), c.clone());
                    added = true;
                }
            }
        }
        added
    }

    /// Paths in both sets.
    pub fn intersection(&self, other: &Set) -> Set {
        Set {
            members: self.members.intersection(&other.members).cloned().collect(),
            children: self
                .children
                .iter()
                .filter_map(|(pe, c)| {
                    let both = c.intersection(other.children.get(pe)?);
                    (!both.is_empty()).then(|| (pe.clone(), both))
                })
                .collect(),
        }
    }

    /// Paths of `self` that are not in `other`. A path is removed only by
    /// the same path: removing a parent leaves its children.
    pub fn difference(&self, other: &Set) -> Set {
        Set {
            members: self.members.difference(&other.members).cloned().collect(),
            children: self
                .children
                .iter()
                .filter_map(|(pe, c)| match other.children.get(pe) {
                    None => Some((pe.clone(), c.clone())),
                    Some(o) => {
                        let d = c.difference(o);
                        (!d.is_empty()).then(|| (pe.clone(), d))
                    }
                })
                .collect(),
        }
    }

    /// Remove the paths of `other` in place: `difference` without copying
    /// what stays (most of a manager's set when another writer changed a few
    /// fields). Returns whether anything was removed.
    pub fn subtract(&mut self, other: &Set) -> bool {
        if self.is_empty() || other.is_empty() {
            return false;
        }
        let before = self.members.len();
        if other.members.len() < self.members.len() {
            for m in &other.members {
                self.members.remove(m);
            }
        } else {
            self.members.retain(|m| !other.members.contains(m));
        }
        let mut removed = self.members.len() != before;
        for (pe, o) in &other.children {
            if let Some(c) = self.children.get_mut(pe) {
                removed |= c.subtract(o);
                if c.is_empty() {
                    self.children.remove(pe);
                }
            }
        }
        removed
    }

    /// Paths of `self` that are neither in `other` nor under a path of
    /// `other`: removing a parent removes its children too.
    pub fn recursive_difference(&self, other: &Set) -> Set {
        Set {
            members: self.members.difference(&other.members).cloned().collect(),
            children: self
                .children
                .iter()
                .filter(|(pe, _)| !other.members.contains(pe))
                .filter_map(|(pe, c)| match other.children.get(pe) {
                    None => Some((pe.clone(), c.clone())),
                    Some(o) => {
                        let d = c.recursive_difference(o);
                        (!d.is_empty()).then(|| (pe.clone(), d))
                    }
                })
                .collect(),
        }
    }

    /// Every path of the set: members first, then the subtrees, each in order.
    pub fn paths(&self) -> Vec<Path> {
        let mut out = Vec::new();
        self.collect(&mut Vec::new(), &mut out);
        out
    }

    fn collect(&self, prefix: &mut Path, out: &mut Vec<Path>) {
        for m in &self.members {
            let mut p = prefix.clone();
            p.push(m.clone());
            out.push(p);
        }
        for (pe, c) in &self.children {
            prefix.push(pe.clone());
            c.collect(prefix, out);
            prefix.pop();
        }
    }

    /// The set as `FieldsV1` JSON.
    pub fn to_fields_v1(&self) -> Value {
        Value::Object(self.write(false))
    }

    fn write(&self, include_self: bool) -> Map<String, Value> {
        let mut out = Map::new();
        if include_self && !self.is_empty() {
            out.insert(".".into(), Value::Object(Map::new()));
        }
        // Members and children in one ordered pass, as upstream writes them.
        let mut members = self.members.iter().peekable();
        let mut children = self.children.iter().peekable();
        loop {
            let next_member = members.peek().copied();
            let next_child = children.peek().map(|(pe, _)| *pe);
            match (next_member, next_child) {
                (None, None) => break,
                (Some(m), c) if c.is_none_or(|c| m < c) => {
                    out.insert(m.serialize(), Value::Object(Map::new()));
                    members.next();
                }
                (m, Some(c)) if m.is_none_or(|m| c < m) => {
                    let (_, set) = children.next().expect("peeked");
                    out.insert(c.serialize(), Value::Object(set.write(false)));
                }
                _ => {
                    let (pe, set) = children.next().expect("peeked");
                    members.next();
                    out.insert(pe.serialize(), Value::Object(set.write(true)));
                }
            }
        }
        out
    }

    /// Read `FieldsV1` JSON.
    pub fn from_fields_v1(v: &Value) -> Result<Set, String> {
        let (children, _) = read(v)?;
        Ok(children.unwrap_or_default())
    }
}

/// The subtree of one `FieldsV1` object: its children, and whether the node
/// itself is a member (it is when it says `"."` or has nothing under it).
fn read(v: &Value) -> Result<(Option<Set>, bool), String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("expected an object in fieldsV1, got {v}"))?;
    let mut children: Option<Set> = None;
    let mut is_member = false;
    for (k, sub) in obj {
        if k == "." {
            is_member = true;
            continue;
        }
        let Some(pe) = PathElement::deserialize(k)? else {
            continue;
        };
        let (grand, child_member) = read(sub)?;
        let c = children.get_or_insert_with(Set::new);
        if child_member {
            c.members.insert(pe.clone());
        }
        if let Some(g) = grand {
            match c.children.get_mut(&pe) {
                Some(existing) => {
                    existing.union_with(&g);
                }
                None => {
                    c.children.insert(pe, g);
                }
            }
        }
    }
    if children.is_none() {
        is_member = true;
    }
    Ok((children, is_member))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Path {
        s.split('.')
            .filter(|x| !x.is_empty())
            .map(|x| {
                if let Some(k) = x.strip_prefix("k=") {
                    PathElement::Key(vec![("name".into(), json!(k))])
                } else if let Some(v) = x.strip_prefix("v=") {
                    PathElement::Value(json!(v))
                } else {
                    PathElement::field(x)
                }
            })
            .collect()
    }

    fn set(paths: &[&str]) -> Set {
        let ps: Vec<Path> = paths.iter().map(|s| p(s)).collect();
        Set::from_paths(ps.iter().map(Vec::as_slice))
    }

    #[test]
    fn subtract_is_difference_in_place() {
        let sets = [
            set(&[]),
            set(&[
                "spec.replicas",
                "spec.template.spec.k=web.image",
                "metadata.labels.app",
            ]),
            set(&["spec.replicas", "spec.template"]),
            set(&[
                "spec.template.spec.k=web.image",
                "spec.template.spec.k=web",
                "metadata.labels",
            ]),
            set(&[
                "metadata.labels.app",
                "metadata.labels.tier",
                "spec.template.spec.v=x",
            ]),
        ];
        for a in &sets {
            for b in &sets {
                let mut c = a.clone();
                c.subtract(b);
                assert_eq!(c, a.difference(b), "{a:?} - {b:?}");
            }
        }
    }

    #[test]
    fn fields_v1_round_trips() {
        let cases = [
            json!({}),
            json!({"f:spec": {"f:replicas": {}}}),
            json!({"f:metadata": {"f:labels": {".": {}, "f:app": {}}}}),
            json!({"f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {".": {}, "f:image": {}, "f:name": {},
                    "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}}
            }}}),
            json!({"f:metadata": {"f:finalizers": {".": {}, "v:\"a\"": {}, "v:\"b\"": {}}}}),
        ];
        for c in cases {
            let s = Set::from_fields_v1(&c).unwrap();
            assert_eq!(s.to_fields_v1(), c, "round trip of {c}");
        }
    }

    #[test]
    fn fields_v1_reading() {
        let s = Set::from_fields_v1(&json!({"f:a": {".": {}, "f:b": {}}, "f:c": {}})).unwrap();
        assert_eq!(s, set(&["a", "a.b", "c"]));
        // Unknown step kinds are dropped, malformed ones refused.
        let s = Set::from_fields_v1(&json!({"f:a": {}, "z:x": {}})).unwrap();
        assert_eq!(s, set(&["a"]));
        assert!(Set::from_fields_v1(&json!({"k:notjson": {}})).is_err());
        assert!(Set::from_fields_v1(&json!({"f:a": 1})).is_err());
        assert!(Set::from_fields_v1(&json!([])).is_err());
    }

    #[test]
    fn operations() {
        struct Case {
            a: &'static [&'static str],
            b: &'static [&'static str],
            union: &'static [&'static str],
            inter: &'static [&'static str],
            diff: &'static [&'static str],
            rdiff: &'static [&'static str],
        }
        let cases = [
            Case {
                a: &["a", "b.c"],
                b: &["b.c", "d"],
                union: &["a", "b.c", "d"],
                inter: &["b.c"],
                diff: &["a"],
                rdiff: &["a"],
            },
            // A parent in `b` removes its children only recursively.
            Case {
                a: &["x.y", "x.z", "w"],
                b: &["x"],
                union: &["x", "x.y", "x.z", "w"],
                inter: &[],
                diff: &["x.y", "x.z", "w"],
                rdiff: &["w"],
            },
            // A member that also has children.
            Case {
                a: &["l.k=a", "l.k=a.image"],
                b: &["l.k=a.image"],
                union: &["l.k=a", "l.k=a.image"],
                inter: &["l.k=a.image"],
                diff: &["l.k=a"],
                rdiff: &["l.k=a"],
            },
            Case {
                a: &[],
                b: &["a"],
                union: &["a"],
                inter: &[],
                diff: &[],
                rdiff: &[],
            },
        ];
        for c in cases {
            let (a, b) = (set(c.a), set(c.b));
            assert_eq!(a.union(&b), set(c.union), "{:?} ∪ {:?}", c.a, c.b);
            assert_eq!(a.intersection(&b), set(c.inter), "{:?} ∩ {:?}", c.a, c.b);
            assert_eq!(a.difference(&b), set(c.diff), "{:?} - {:?}", c.a, c.b);
            assert_eq!(
                a.recursive_difference(&b),
                set(c.rdiff),
                "{:?} -- {:?}",
                c.a,
                c.b
            );
        }
    }

    #[test]
    fn membership_and_listing() {
        let s = set(&["spec.replicas", "spec", "metadata.labels.app"]);
        assert!(s.has(&p("spec")));
        assert!(s.has(&p("spec.replicas")));
        assert!(!s.has(&p("metadata.labels")));
        assert!(!s.has(&[]));
        let shown: Vec<String> = s
            .paths()
            .iter()
            .map(|p| super::super::path::display(p))
            .collect();
        assert_eq!(shown, [".spec", ".metadata.labels.app", ".spec.replicas"]);
        assert!(Set::new().is_empty());
        assert!(!s.is_empty());
    }
}
