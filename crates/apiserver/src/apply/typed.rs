//! Objects read through their schema: which parts are tracked field by field
//! and which as a whole, how list items are named, the set of fields an
//! object sets, the difference between two objects, and the checks an apply
//! configuration must pass.
//!
//! The rules are structured-merge-diff's, over a [`Schema`] (the OpenAPI
//! JSON, or the tree compiled from it):
//! - an object is granular (each field on its own) unless its schema says
//!   `x-kubernetes-map-type: atomic`;
//! - a list is atomic unless `x-kubernetes-list-type` is `set` (items by
//!   value) or `map` (items by `x-kubernetes-list-map-keys`);
//! - where there is no schema (free-form objects, preserved unknown fields,
//!   `{}` schemas), maps are granular and lists atomic, as upstream's
//!   "deduced" type.

use serde_json::{Map, Value};

use std::sync::Arc;

use super::compiled::Schema;
use super::path::{compare_values, Path, PathElement};
use super::set::Set;

/// The schema at some point; `None` is "deduced from the value".
pub type Ty<S> = Option<S>;

/// How a value is tracked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Scalars, null, atomic maps and lists: one field.
    Leaf,
    /// A struct or a granular map: each field on its own.
    Fields,
    /// A list of type `map`: items by these key fields.
    Keyed(Arc<[String]>),
    /// A list of type `set`: items by their value.
    Set,
}

/// Which parts of an object no manager owns: the identity and bookkeeping
/// fields upstream strips, and the half of the object the other endpoint
/// (main resource or `status`) writes.
#[derive(Clone, Copy, Debug, Default)]
pub struct Scope {
    /// Leave `.status` out (writes to the main resource of a kind with a
    /// status subresource).
    pub skip_status: bool,
    /// Leave `.spec` out (writes to `status`).
    pub skip_spec: bool,
}

/// Fields of `metadata` that no manager ever owns.
const STRIPPED_META: &[&str] = &[
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "managedFields",
    "resourceVersion",
];

impl Scope {
    /// Whether the field `key` under `path` is left out of tracking.
    pub fn skips(&self, path: &[PathElement], key: &str) -> bool {
        match path {
            [] => {
                key == "apiVersion"
                    || key == "kind"
                    || (self.skip_status && key == "status")
                    || (self.skip_spec && key == "spec")
            }
            [PathElement::Field(m)] if m == "metadata" => STRIPPED_META.contains(&key),
            _ => false,
        }
    }

    /// Drop what tracking leaves out but a walk records anyway: the
    /// `metadata` field itself (upstream strips it, keeping its children).
    pub fn finish(&self, set: &mut Set) {
        set.remove_member(&PathElement::field("metadata"));
    }
}

/// How `v` is tracked where the schema is `ty`.
pub fn shape<S: Schema>(ty: Ty<S>, v: &Value) -> Shape {
    match (v, ty) {
        (Value::Object(_), None) => Shape::Fields,
        (Value::Object(_), Some(n)) => n.shape_of(false),
        (Value::Array(_), Some(n)) => n.shape_of(true),
        _ => Shape::Leaf,
    }
}

/// The schema of field `key` of an object.
pub fn field_ty<S: Schema>(ty: Ty<S>, key: &str) -> Ty<S> {
    ty?.field(key)
}

/// Whether `key` is a declared field of a struct (not a map key or an
/// unknown field): declared fields are not owned by the mere presence of
/// their children.
pub fn is_named<S: Schema>(ty: Ty<S>, key: &str) -> bool {
    ty.is_some_and(|n| n.is_named(key))
}

/// The schema of a list's items.
pub fn item_ty<S: Schema>(ty: Ty<S>) -> Ty<S> {
    ty.and_then(|n| n.items())
}

/// The default of a list-map key field, used when an item omits it.
fn key_default<S: Schema>(item: Ty<S>, key: &str) -> Option<Value> {
    item?.key_default(key)
}

/// The path element naming one item of a set or list-map.
pub fn item_element<S: Schema>(
    shape: &Shape,
    item_ty: Ty<S>,
    item: &Value,
) -> Result<PathElement, String> {
    match shape {
        Shape::Keyed(keys) => {
            let obj = match item {
                Value::Object(m) => m,
                Value::Null => {
                    return Err("associative list with keys may not have a null element".into())
                }
                _ => return Err("associative list with keys may not have non-map elements".into()),
            };
            let mut fields: Vec<(String, Value)> = keys
                .iter()
                .filter_map(|k| match obj.get(k) {
                    Some(v) => Some((k.clone(), v.clone())),
                    None => key_default(item_ty, k).map(|d| (k.clone(), d)),
                })
                .collect();
            if fields.is_empty() {
                return Err(format!(
                    "associative list with keys has an element that omits all key fields {} (and doesn't have default values for any key fields)",
                    quoted_list(keys)
                ));
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
        _ => match item {
            Value::Object(_) => {
                Err("associative list without keys has an element that's a map type".into())
            }
            Value::Array(_) => Err("not supported: associative list with lists as elements".into()),
            Value::Null => {
                Err("associative list without keys has an element that's an explicit null".into())
            }
            v => Ok(PathElement::Value(v.clone())),
        },
    }
}

fn quoted_list(keys: &[String]) -> String {
    let q: Vec<String> = keys.iter().map(|k| format!("{k:?}")).collect();
    format!("[{}]", q.join(" "))
}

/// Items of a list grouped by path element, as [`index_items`] gives them.
pub type Indexed<'v> = Vec<(PathElement, Vec<&'v Value>)>;

/// The items of an associative list grouped by path element, in order of
/// first appearance; `None` if an item cannot be named (the list is then
/// handled as a whole).
pub fn index_items<'v, S: Schema>(
    shape: &Shape,
    item_ty: Ty<S>,
    items: &'v [Value],
) -> Option<Vec<(PathElement, Vec<&'v Value>)>> {
    let mut out: Vec<(PathElement, Vec<&'v Value>)> = Vec::with_capacity(items.len());
    // Most lists are short (containers, ports, env): a scan of what is
    // indexed so far beats a map; long lists get one.
    const SCAN: usize = 16;
    let mut seen: std::collections::BTreeMap<PathElement, usize> =
        std::collections::BTreeMap::new();
    for item in items {
        let pe = item_element(shape, item_ty, item).ok()?;
        if items.len() <= SCAN {
            match out.iter_mut().find(|(p, _)| *p == pe) {
                Some((_, vs)) => vs.push(item),
                None => out.push((pe, vec![item])),
            }
            continue;
        }
        match seen.get(&pe) {
            Some(&i) => out[i].1.push(item),
            None => {
                seen.insert(pe.clone(), out.len());
                out.push((pe, vec![item]));
            }
        }
    }
    Some(out)
}

fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Object(m)) => m.is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(_) => false,
    }
}

/// The shape two versions of one field are compared or merged with: both
/// empty is one field (so `{}` and `null` stay distinct), and a null side
/// takes the other side's shape.
pub fn pair_shape<S: Schema>(ty: Ty<S>, a: Option<&Value>, b: Option<&Value>) -> Shape {
    if is_empty(a) && is_empty(b) {
        return Shape::Leaf;
    }
    match (a, b) {
        (Some(x), Some(y)) => {
            let (sx, sy) = (shape(ty, x), shape(ty, y));
            if sx == sy {
                sx
            } else if x.is_null() {
                sy
            } else if y.is_null() {
                sx
            } else {
                Shape::Leaf
            }
        }
        (Some(x), None) => shape(ty, x),
        (None, Some(y)) => shape(ty, y),
        (None, None) => Shape::Leaf,
    }
}

/// Fields present in only one object, or in both with different values.
#[derive(Debug, Default)]
pub struct Comparison {
    /// Only in the new object.
    pub added: Set,
    /// In both, with different values.
    pub modified: Set,
    /// Only in the old object.
    pub removed: Set,
}

impl Comparison {
    /// Added or modified: what a writer takes over from others.
    pub fn changed(&self) -> Set {
        self.added.union(&self.modified)
    }
}

/// The fields of two maps side by side, in key order: each key with its
/// value in `a` and in `b`. One pass over both, since the maps are sorted.
pub(crate) fn side_by_side<'m>(
    a: &'m Map<String, Value>,
    b: &'m Map<String, Value>,
) -> impl Iterator<Item = (&'m String, Option<&'m Value>, Option<&'m Value>)> {
    let (mut a, mut b) = (a.iter().peekable(), b.iter().peekable());
    std::iter::from_fn(move || {
        use std::cmp::Ordering;
        let order = match (a.peek(), b.peek()) {
            (None, None) => return None,
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (Some((ka, _)), Some((kb, _))) => ka.cmp(kb),
        };
        Some(match order {
            Ordering::Less => {
                let (k, v) = a.next()?;
                (k, Some(v), None)
            }
            Ordering::Greater => {
                let (k, v) = b.next()?;
                (k, None, Some(v))
            }
            Ordering::Equal => {
                let (k, va) = a.next()?;
                let (_, vb) = b.next()?;
                (k, Some(va), Some(vb))
            }
        })
    })
}

/// Whether two versions of a list of type `map` pair up by position as
/// they would by name: as long as each other (and short), every item an
/// object with each key field, the item at each place named as the one at
/// that place in the other version, and no name twice. Most updates leave a
/// list so (containers, env, ports), and its items are then compared pair
/// by pair without naming every one of them first.
fn paired_by_position(keys: &[String], old: &[Value], new: &[Value]) -> bool {
    const MOST: usize = 16;
    if old.len() != new.len() || old.is_empty() || old.len() > MOST || keys.is_empty() {
        return false;
    }
    let with_keys = |v: &Value| {
        v.as_object()
            .is_some_and(|m| keys.iter().all(|k| m.contains_key(k)))
    };
    if !old.iter().chain(new).all(with_keys) {
        return false;
    }
    // Key fields compare as in a path element (1 and 1.0 name one item).
    let same = |a: &Value, b: &Value| compare_values(a, b) == std::cmp::Ordering::Equal;
    if let [key] = keys {
        // One key field (most lists): each item's looked up once.
        let names: Vec<&Value> = old.iter().map(|v| &v[key.as_str()]).collect();
        return new
            .iter()
            .zip(&names)
            .all(|(n, o)| same(&n[key.as_str()], o))
            && names
                .iter()
                .enumerate()
                .all(|(i, a)| names[i + 1..].iter().all(|b| !same(a, b)));
    }
    let same_name =
        |a: &Value, b: &Value| keys.iter().all(|k| same(&a[k.as_str()], &b[k.as_str()]));
    old.iter().zip(new).all(|(o, n)| same_name(o, n))
        && old
            .iter()
            .enumerate()
            .all(|(i, a)| old[i + 1..].iter().all(|b| !same_name(a, b)))
}

/// Compare two objects of the schema `ty`.
pub fn compare<S: Schema>(ty: Ty<S>, old: &Value, new: &Value, scope: &Scope) -> Comparison {
    let mut c = Comparison::default();
    compare_node(
        ty,
        Some(old),
        Some(new),
        false,
        &mut Vec::new(),
        scope,
        &mut c,
    );
    scope.finish(&mut c.added);
    scope.finish(&mut c.modified);
    scope.finish(&mut c.removed);
    c
}

/// `differ`: the caller found `old` and `new` unequal already.
fn compare_node<S: Schema>(
    ty: Ty<S>,
    old: Option<&Value>,
    new: Option<&Value>,
    differ: bool,
    path: &mut Path,
    scope: &Scope,
    c: &mut Comparison,
) {
    match (old, new) {
        (None, None) => return,
        // Nothing changed below: cheaper than the walk with its paths.
        (Some(o), Some(n)) if !differ && o == n => return,
        _ => {}
    }
    match pair_shape(ty, old, new) {
        Shape::Leaf => {
            match (old, new) {
                (None, _) => c.added.insert(path),
                (_, None) => c.removed.insert(path),
                (Some(o), Some(n)) if o != n => c.modified.insert(path),
                _ => {}
            }
            return;
        }
        Shape::Fields => {
            let empty = Map::new();
            let om = old.and_then(Value::as_object).unwrap_or(&empty);
            let nm = new.and_then(Value::as_object).unwrap_or(&empty);
            for (k, ov, nv) in side_by_side(om, nm) {
                if scope.skips(path, k) {
                    continue;
                }
                match (ov, nv) {
                    // Objects on both sides are walked, not compared first:
                    // an object that differs would otherwise be compared up
                    // to its difference once per level above it.
                    (Some(Value::Object(_)), Some(Value::Object(_))) => {}
                    // Equal fields are passed over before their path is built.
                    (Some(o), Some(n)) if o == n => continue,
                    _ => {}
                }
                path.push(PathElement::Field(k.clone()));
                compare_node(field_ty(ty, k), ov, nv, true, path, scope, c);
                path.pop();
            }
        }
        sh @ (Shape::Keyed(_) | Shape::Set) => {
            let it = item_ty(ty);
            let empty = Vec::new();
            let ol = old.and_then(Value::as_array).unwrap_or(&empty);
            let nl = new.and_then(Value::as_array).unwrap_or(&empty);
            if let Shape::Keyed(keys) = &sh {
                if old.is_some() && new.is_some() && paired_by_position(keys, ol, nl) {
                    // As the items would pair by name: the pairs that differ
                    // are walked, and only they are named. (An item that
                    // could not be named leaves it to the walk by names.)
                    let mut named = true;
                    for (o, n) in ol.iter().zip(nl) {
                        if o == n {
                            continue;
                        }
                        let Ok(pe) = item_element(&sh, it, n) else {
                            named = false;
                            break;
                        };
                        path.push(pe);
                        compare_node(it, Some(o), Some(n), true, path, scope, c);
                        path.pop();
                    }
                    if named {
                        return;
                    }
                }
            }
            let (Some(oi), Some(ni)) = (index_items(&sh, it, ol), index_items(&sh, it, nl)) else {
                // Items that cannot be named: the list is one field.
                match (old, new) {
                    (None, _) => c.added.insert(path),
                    (_, None) => c.removed.insert(path),
                    (Some(o), Some(n)) if o != n => c.modified.insert(path),
                    _ => {}
                }
                return;
            };
            let om: std::collections::BTreeMap<&PathElement, &Vec<&Value>> =
                oi.iter().map(|(pe, v)| (pe, v)).collect();
            let nm: std::collections::BTreeMap<&PathElement, &Vec<&Value>> =
                ni.iter().map(|(pe, v)| (pe, v)).collect();
            let none: Vec<&Value> = Vec::new();
            let mut all: Vec<&PathElement> = oi.iter().map(|(pe, _)| pe).collect();
            all.extend(
                ni.iter()
                    .map(|(pe, _)| pe)
                    .filter(|pe| !om.contains_key(pe)),
            );
            for pe in all {
                let os = om.get(pe).copied().unwrap_or(&none);
                let ns = nm.get(pe).copied().unwrap_or(&none);
                path.push(pe.clone());
                match (os.len(), ns.len()) {
                    (0..=1, 0..=1) => compare_node(
                        it,
                        os.first().copied(),
                        ns.first().copied(),
                        false,
                        path,
                        scope,
                        c,
                    ),
                    // Duplicates on both sides: compared as a whole.
                    (2.., 2..) => {
                        if os != ns {
                            c.modified.insert(path);
                        }
                    }
                    (2.., n) => {
                        if n == 1 {
                            compare_node(it, None, ns.first().copied(), false, path, scope, c);
                        }
                        c.removed.insert(path);
                    }
                    (o, _) => {
                        if o == 1 {
                            compare_node(it, os.first().copied(), None, false, path, scope, c);
                        }
                        c.added.insert(path);
                    }
                }
                path.pop();
            }
        }
    }
    if old.is_none() {
        c.added.insert(path);
    } else if new.is_none() {
        c.removed.insert(path);
    }
}

/// Where [`compare_guided`] looks: the fields of an apply configuration
/// (the value itself, whose empty lists and maps change an object too), or
/// a set of paths relative to the object.
#[derive(Clone, Copy, Debug)]
pub enum Guide<'g> {
    Config(&'g Value),
    Paths(&'g Set),
}

/// [`compare`] of an object with what it became where only the fields under
/// `guides` can differ: a merged apply configuration leaves every other
/// field as it was, so only the configuration's fields, and those a prune
/// may remove, are walked. Where a guide names a step as a whole (a member
/// of a set, a value of the configuration that is not an object or a list),
/// or one side lacks the step, the walk below is [`compare`]'s own. Only
/// the guides' fields and items are looked at, so the result is
/// [`compare`]'s whenever `new` differs from `old` (in value, or by a field
/// or item present on one side only) at or under the guides alone, as the
/// merge of a configuration and the prune of a set of paths leave it.
pub fn compare_guided<S: Schema>(
    ty: Ty<S>,
    old: &Value,
    new: &Value,
    guides: &[Guide<'_>],
    scope: &Scope,
) -> Comparison {
    let mut c = Comparison::default();
    guided_node(ty, old, new, guides, &mut Vec::new(), scope, &mut c);
    scope.finish(&mut c.added);
    scope.finish(&mut c.modified);
    scope.finish(&mut c.removed);
    c
}

/// The guides one step down, at field `key` of an object: `None` when the
/// walk below is [`compare`]'s own, an empty list when nothing there can
/// have changed.
fn guides_at_field<'g>(guides: &[Guide<'g>], key: &str) -> Option<Vec<Guide<'g>>> {
    let mut below = Vec::new();
    for g in guides {
        match g {
            Guide::Config(v) => match v.get(key) {
                None => {}
                Some(c @ (Value::Object(_) | Value::Array(_))) => below.push(Guide::Config(c)),
                Some(_) => return None,
            },
            Guide::Paths(set) => {
                let pe = PathElement::Field(key.to_owned());
                if set.has_member(&pe) {
                    return None;
                }
                below.extend(set.child(&pe).map(Guide::Paths));
            }
        }
    }
    Some(below)
}

/// The guides at item `pe` of a list, whose configuration items are
/// `config_items` (per guide, indexed; `None` where a guide's list could
/// not be indexed).
fn guides_at_item<'g>(
    guides: &[Guide<'g>],
    config_items: &[Option<Indexed<'g>>],
    pe: &PathElement,
) -> Option<Vec<Guide<'g>>> {
    let mut below = Vec::new();
    for (g, items) in guides.iter().zip(config_items) {
        match g {
            Guide::Config(_) => {
                let items = items.as_ref()?;
                if let Some((_, vs)) = items.iter().find(|(p, _)| p == pe) {
                    match vs.as_slice() {
                        [one] if one.is_object() => below.push(Guide::Config(one)),
                        _ => return None,
                    }
                }
            }
            Guide::Paths(set) => {
                if set.has_member(pe) {
                    return None;
                }
                below.extend(set.child(pe).map(Guide::Paths));
            }
        }
    }
    Some(below)
}

fn guided_node<S: Schema>(
    ty: Ty<S>,
    old: &Value,
    new: &Value,
    guides: &[Guide<'_>],
    path: &mut Path,
    scope: &Scope,
    c: &mut Comparison,
) {
    let unguided = |path: &mut Path, c: &mut Comparison| {
        compare_node(ty, Some(old), Some(new), false, path, scope, c)
    };
    match pair_shape(ty, Some(old), Some(new)) {
        Shape::Leaf => unguided(path, c),
        Shape::Fields => {
            let (Some(om), Some(nm)) = (old.as_object(), new.as_object()) else {
                return unguided(path, c);
            };
            // Only the guides' fields can differ (the merge adds, changes or
            // removes only configured fields, the prune only last ones), so
            // they alone are looked up, not every field of the object.
            let mut keys: Vec<&str> = Vec::new();
            for g in guides {
                match g {
                    Guide::Config(v) => keys.extend(
                        v.as_object()
                            .into_iter()
                            .flat_map(|m| m.keys().map(String::as_str)),
                    ),
                    Guide::Paths(set) => keys.extend(set.steps().filter_map(|pe| match pe {
                        PathElement::Field(k) => Some(k.as_str()),
                        _ => None,
                    })),
                }
            }
            if guides.len() > 1 {
                keys.sort_unstable();
                keys.dedup();
            }
            for k in keys {
                if scope.skips(path, k) {
                    continue;
                }
                let (ov, nv) = (om.get(k), nm.get(k));
                if ov.is_none() && nv.is_none() {
                    continue;
                }
                let below = match (ov, nv) {
                    (Some(_), Some(_)) => guides_at_field(guides, k),
                    // On one side only: added or removed as a whole.
                    _ => None,
                };
                // No equality test before a guided descent: the walk is as
                // small as the configuration, the test as big as the field.
                if below.is_none() && ov == nv {
                    continue;
                }
                path.push(PathElement::Field(k.to_owned()));
                match (below, ov, nv) {
                    (Some(b), Some(ov), Some(nv)) => {
                        guided_node(field_ty(ty, k), ov, nv, &b, path, scope, c)
                    }
                    _ => compare_node(field_ty(ty, k), ov, nv, true, path, scope, c),
                }
                path.pop();
            }
        }
        sh @ (Shape::Keyed(_) | Shape::Set) => {
            let it = item_ty(ty);
            let (Some(ol), Some(nl)) = (old.as_array(), new.as_array()) else {
                return unguided(path, c);
            };
            let (Some(oi), Some(ni)) = (index_items(&sh, it, ol), index_items(&sh, it, nl)) else {
                return unguided(path, c);
            };
            // Duplicates are compared as [`compare`] does, which this walk
            // does not repeat.
            if oi.iter().chain(&ni).any(|(_, vs)| vs.len() > 1) {
                return unguided(path, c);
            }
            let config_items: Vec<_> = guides
                .iter()
                .map(|g| match g {
                    Guide::Config(v) => v.as_array().and_then(|items| index_items(&sh, it, items)),
                    Guide::Paths(_) => None,
                })
                .collect();
            // The guides' items, as the guides' fields above.
            let mut pes: Vec<&PathElement> = Vec::new();
            for (g, items) in guides.iter().zip(&config_items) {
                match (g, items) {
                    (Guide::Config(_), Some(items)) => pes.extend(items.iter().map(|(pe, _)| pe)),
                    (Guide::Config(_), None) => return unguided(path, c),
                    (Guide::Paths(set), _) => pes.extend(set.steps()),
                }
            }
            if guides.len() > 1 {
                pes.sort_unstable();
                pes.dedup();
            }
            fn find<'v>(
                idx: &[(PathElement, Vec<&'v Value>)],
                pe: &PathElement,
            ) -> Option<&'v Value> {
                idx.iter().find(|(p, _)| p == pe).map(|(_, vs)| vs[0])
            }
            for pe in pes {
                let (ov, nv) = (find(&oi, pe), find(&ni, pe));
                if ov.is_none() && nv.is_none() {
                    continue;
                }
                let below = match (ov, nv) {
                    (Some(_), Some(_)) => guides_at_item(guides, &config_items, pe),
                    _ => None,
                };
                path.push(pe.clone());
                match (below, ov, nv) {
                    (Some(b), Some(ov), Some(nv)) => guided_node(it, ov, nv, &b, path, scope, c),
                    _ => compare_node(it, ov, nv, false, path, scope, c),
                }
                path.pop();
            }
        }
    }
}

/// What [`compare`] reports as added for a new object (every field, and
/// every map, list and item as a whole), written straight as `FieldsV1`:
/// the create path, with no set built in between.
pub fn added_fields_v1<S: Schema>(ty: Ty<S>, new: &Value, scope: &Scope) -> Map<String, Value> {
    let mut out = Map::new();
    let mut path = Vec::new();
    if let Some(m) = new.as_object() {
        for (k, c) in m {
            if scope.skips(&path, k) {
                continue;
            }
            path.push(PathElement::Field(k.clone()));
            if k == "metadata" {
                // The metadata field itself is never owned; its fields are.
                let mut inner = Map::new();
                if let Some(cm) = c.as_object() {
                    for (mk, mv) in cm {
                        if scope.skips(&path, mk) {
                            continue;
                        }
                        let mt = field_ty(field_ty(ty, k), mk);
                        inner.insert(field_key(mk), added_node(mt, mv));
                    }
                }
                if !inner.is_empty() {
                    out.insert("f:metadata".into(), Value::Object(inner));
                }
            } else {
                out.insert(field_key(k), added_node(field_ty(ty, k), c));
            }
            path.pop();
        }
    }
    out
}

/// The `FieldsV1` key of field `k`.
fn field_key(k: &str) -> String {
    let mut s = String::with_capacity(k.len() + 2);
    s.push_str("f:");
    s.push_str(k);
    s
}

/// One added field: `{}` for a leaf, its children (and `"."`) otherwise.
fn added_node<S: Schema>(ty: Ty<S>, v: &Value) -> Value {
    let mut out = Map::new();
    match pair_shape(ty, None, Some(v)) {
        Shape::Leaf => {}
        Shape::Fields => {
            for (k, c) in v.as_object().into_iter().flatten() {
                out.insert(field_key(k), added_node(field_ty(ty, k), c));
            }
        }
        sh @ (Shape::Keyed(_) | Shape::Set) => {
            let it = item_ty(ty);
            let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
            match index_items(&sh, it, items) {
                None => return Value::Object(out),
                Some(idx) => {
                    for (pe, vs) in idx {
                        let item = if vs.len() > 1 {
                            Value::Object(Map::new())
                        } else {
                            added_node(it, vs[0])
                        };
                        out.insert(pe.serialize(), item);
                    }
                }
            }
        }
    }
    if !out.is_empty() {
        out.insert(".".into(), Value::Object(Map::new()));
    }
    Value::Object(out)
}

/// The fields an object (an apply configuration) sets.
pub fn field_set<S: Schema>(ty: Ty<S>, v: &Value, scope: &Scope) -> Set {
    let mut out = Set::new();
    field_set_node(ty, v, &mut Vec::new(), scope, &mut out);
    scope.finish(&mut out);
    out
}

fn field_set_node<S: Schema>(ty: Ty<S>, v: &Value, path: &mut Path, scope: &Scope, out: &mut Set) {
    match shape(ty, v) {
        Shape::Leaf => out.insert(path),
        Shape::Fields => {
            for (k, c) in v.as_object().into_iter().flatten() {
                if scope.skips(path, k) {
                    continue;
                }
                path.push(PathElement::Field(k.clone()));
                field_set_node(field_ty(ty, k), c, path, scope, out);
                let empty_map = c.as_object().is_some_and(Map::is_empty);
                if c.is_null() || empty_map || !is_named(ty, k) {
                    out.insert(path);
                }
                path.pop();
            }
        }
        sh @ (Shape::Keyed(_) | Shape::Set) => {
            let it = item_ty(ty);
            let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
            let Some(idx) = index_items(&sh, it, items) else {
                out.insert(path);
                return;
            };
            for (pe, vs) in idx {
                path.push(pe);
                if vs.len() > 1 {
                    out.insert(path);
                } else {
                    field_set_node(it, vs[0], path, scope, out);
                    out.insert(path);
                }
                path.pop();
            }
        }
    }
}

/// Check an apply configuration against the schema, as upstream's typed
/// conversion does: unknown fields, values of the wrong type, list items
/// without keys or with duplicate keys. The message lists every problem,
/// each prefixed with its path.
pub fn validate<S: Schema>(ty: Ty<S>, v: &Value) -> Result<(), String> {
    let mut errs = Vec::new();
    validate_node(ty, v, &mut Vec::new(), false, &mut errs);
    match errs.len() {
        0 => Ok(()),
        1 => Err(errs.remove(0)),
        _ => Err(format!("errors:\n  {}", errs.join("\n  "))),
    }
}

fn at(path: &[PathElement], msg: impl std::fmt::Display) -> String {
    if path.is_empty() {
        msg.to_string()
    } else {
        format!("{}: {msg}", super::path::display(path))
    }
}

fn go_type(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "string",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
        Value::Null => "<nil>",
    }
}

fn validate_node<S: Schema>(
    ty: Ty<S>,
    v: &Value,
    path: &mut Path,
    preserve: bool,
    errs: &mut Vec<String>,
) {
    let Some(n) = ty else { return };
    if v.is_null() {
        return;
    }
    let facts = n.facts();
    let preserve = preserve || facts.preserves_unknown;
    if facts.untyped_scalar {
        if v.is_object() || v.is_array() {
            errs.push(at(path, format!("expected any scalar, got {v}")));
        }
        return;
    }
    if facts.object {
        let Some(m) = v.as_object() else {
            errs.push(at(path, format!("expected map, got {v}")));
            return;
        };
        let has_properties = facts.has_properties;
        for (k, c) in m {
            let child = field_ty(ty, k);
            path.push(PathElement::Field(k.clone()));
            match child {
                Some(c_ty) => validate_node(Some(c_ty), c, path, preserve, errs),
                // Free-form objects and preserved fields take anything.
                None if preserve || !has_properties => {}
                None => {
                    errs.push(at(path, "field not declared in schema"));
                    path.pop();
                    return;
                }
            }
            path.pop();
        }
        return;
    }
    if facts.list {
        let Some(items) = v.as_array() else {
            errs.push(at(path, format!("expected list, got {v}")));
            return;
        };
        let it = n.items();
        let sh = shape(ty, v);
        let mut seen = std::collections::BTreeSet::new();
        for (i, item) in items.iter().enumerate() {
            let pe = match &sh {
                Shape::Keyed(_) | Shape::Set => match item_element(&sh, it, item) {
                    Ok(pe) => pe,
                    Err(e) => {
                        errs.push(at(path, format!("element {i}: {e}")));
                        return;
                    }
                },
                _ => PathElement::Index(i),
            };
            if matches!(pe, PathElement::Key(_) | PathElement::Value(_)) && !seen.insert(pe.clone())
            {
                errs.push(at(path, format!("duplicate entries for key {pe}")));
            }
            path.push(pe);
            validate_node(it, item, path, preserve, errs);
            path.pop();
        }
        return;
    }
    let ok = match facts.type_name {
        Some("integer" | "number") => v.is_number(),
        Some("string") => v.is_string(),
        Some("boolean") => v.is_boolean(),
        _ => true,
    };
    if !ok {
        let msg = match facts.type_name {
            Some("integer" | "number") => {
                format!("expected numeric (int or float), got {}", go_type(v))
            }
            Some("string") => format!("expected string, got {v}"),
            _ => format!("expected boolean, got {v}"),
        };
        errs.push(at(path, msg));
    }
}

/// Whether a strategic merge patch only sets declared fields to values of
/// their declared plain JSON type (or null), without directives. Merged
/// into an object that decodes cleanly, such a patch gives an object that
/// decodes cleanly too: no unknown field and no value of the wrong type, so
/// the merged object need not be decoded again. `false` wherever this is
/// not certain (formats other than the integer and number ones, quantities,
/// int-or-string, free-form or preserved fields, null list items, integers
/// out of an `int32`'s range): the caller then decodes the merged object.
pub fn plain_patch<S: Schema>(ty: Ty<S>, v: &Value) -> bool {
    let Some(n) = ty else { return false };
    if v.is_null() {
        return true;
    }
    let facts = n.facts();
    if facts.preserves_unknown || facts.untyped_scalar {
        return false;
    }
    if facts.object {
        let Some(m) = v.as_object() else { return false };
        // Directives are left to the decode: merged where the object has
        // no such field, a map patch is taken whole, directives included.
        return m
            .iter()
            .all(|(k, c)| !k.starts_with('$') && plain_patch(field_ty(ty, k), c));
    }
    if facts.list {
        let Some(items) = v.as_array() else {
            return false;
        };
        let it = n.items();
        return items.iter().all(|i| !i.is_null() && plain_patch(it, i));
    }
    match (facts.type_name, facts.format) {
        (Some("string"), None) => v.is_string(),
        (Some("boolean"), None) => v.is_boolean(),
        (Some("integer"), Some("int32")) => v.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
        (Some("integer"), None | Some("int64")) => v.is_i64(),
        (Some("number"), None | Some("double")) => v.is_number(),
        _ => false,
    }
}
