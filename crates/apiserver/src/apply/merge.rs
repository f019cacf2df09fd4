//! The apply merge: a configuration laid over the live object, and the
//! removal of what an applier set before and no longer sets.

use serde_json::{Map, Value};

use super::compiled::Schema;
use super::path::PathElement;
use super::set::Set;
use super::typed::{field_ty, index_items, is_named, item_ty, pair_shape, Shape, Ty};

/// `config` merged into `live`: granular maps and associative lists are
/// merged item by item, everything else is taken from the configuration.
/// A `null` in the configuration unsets the field, as decoding it into the
/// typed object upstream does.
///
/// The live `metadata.managedFields` are left out (a configuration may not
/// carry any): the caller writes the new ones.
///
/// The live object is copied (without its managed fields) and the
/// configuration laid over the copy, which walks only the configuration's fields: the same result as
/// building the merge field by field over both, for much less work when the
/// configuration is small beside the object.
pub fn merge<S: Schema>(ty: Ty<S>, live: &Value, config: &Value) -> Value {
    let (Some(lm), Some(_)) = (live.as_object(), config.as_object()) else {
        return merge_rebuilt(ty, live, config);
    };
    let mut out = Map::new();
    for (k, v) in lm {
        let v = match (k.as_str(), v) {
            ("metadata", Value::Object(meta)) => Value::Object(
                meta.iter()
                    .filter(|(k, _)| *k != MANAGED_FIELDS[1])
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ),
            _ => v.clone(),
        };
        out.insert(k.clone(), v);
    }
    let mut out = Value::Object(out);
    overlay(ty, &mut out, config);
    out
}

/// [`merge`] built field by field from both sides: what [`overlay`] falls
/// back to where a copy cannot simply be changed in place.
pub(super) fn merge_rebuilt<S: Schema>(ty: Ty<S>, live: &Value, config: &Value) -> Value {
    merge_node(ty, Some(live), Some(config), MANAGED_FIELDS).unwrap_or(Value::Null)
}

/// Lay `rhs` over `target` (a copy of the live field) in place, with the
/// result [`merge_node`] gives for the two.
fn overlay<S: Schema>(ty: Ty<S>, target: &mut Value, rhs: &Value) {
    let sh = pair_shape(ty, Some(target), Some(rhs));
    if let (Shape::Keyed(_) | Shape::Set, Value::Array(tl), Value::Array(rl)) =
        (&sh, &mut *target, rhs)
    {
        if overlay_items(&sh, item_ty(ty), tl, rl) {
            return;
        }
    }
    match (&sh, &mut *target, rhs) {
        (Shape::Leaf, target, rhs) => *target = rhs.clone(),
        (Shape::Fields, Value::Object(tm), Value::Object(rm)) => {
            for (k, rv) in rm {
                if rv.is_null() {
                    tm.remove(k);
                    continue;
                }
                match tm.get_mut(k) {
                    Some(t) => overlay(field_ty(ty, k), t, rv),
                    None => {
                        if let Some(v) = merge_node(field_ty(ty, k), None, Some(rv), &[]) {
                            tm.insert(k.clone(), v);
                        }
                    }
                }
            }
        }
        (_, target, rhs) => {
            let live = std::mem::take(target);
            *target = merge_node(ty, Some(&live), Some(rhs), &[]).unwrap_or(Value::Null);
        }
    }
}

/// Merge the configuration's items into the live list in place when that
/// gives [`merge_list`]'s result without moving anything: every item of
/// the configuration is in the live list, once, and in the configuration's
/// order (so [`merge_list`] keeps the live order). Returns false, having
/// changed nothing, otherwise.
fn overlay_items<S: Schema>(sh: &Shape, it: Ty<S>, live: &mut [Value], rhs: &[Value]) -> bool {
    let (Some(li), Some(ri)) = (index_items(sh, it, live), index_items(sh, it, rhs)) else {
        return false;
    };
    if li.iter().chain(&ri).any(|(_, vs)| vs.len() > 1) {
        return false;
    }
    let mut at = Vec::with_capacity(ri.len());
    for (pe, _) in &ri {
        match li.iter().position(|(p, _)| p == pe) {
            Some(i) if at.last().is_none_or(|&prev| prev < i) => at.push(i),
            _ => return false,
        }
    }
    // Without duplicates, the index order is the list's.
    drop(li);
    for (i, r) in at.into_iter().zip(rhs) {
        overlay(it, &mut live[i], r);
    }
    true
}

/// The path [`merge`] leaves out of the live object.
const MANAGED_FIELDS: &[&str] = &["metadata", "managedFields"];

/// Merge `rhs` into `lhs`, leaving out the live field at `skip` (relative
/// to here; empty for none).
fn merge_node<S: Schema>(
    ty: Ty<S>,
    lhs: Option<&Value>,
    rhs: Option<&Value>,
    skip: &[&str],
) -> Option<Value> {
    match pair_shape(ty, lhs, rhs) {
        Shape::Leaf => rhs.or(lhs).cloned(),
        Shape::Fields => {
            let empty = Map::new();
            let lm = lhs.and_then(Value::as_object).unwrap_or(&empty);
            let rm = rhs.and_then(Value::as_object).unwrap_or(&empty);
            let mut out = Map::new();
            for (k, lv) in lm {
                let below: &[&str] = match skip.split_first() {
                    Some((first, rest)) if first == k => {
                        if rest.is_empty() && !rm.contains_key(k) {
                            continue;
                        }
                        rest
                    }
                    _ => &[],
                };
                match rm.get(k) {
                    Some(Value::Null) => {}
                    rv => {
                        if let Some(v) = merge_node(field_ty(ty, k), Some(lv), rv, below) {
                            out.insert(k.clone(), v);
                        }
                    }
                }
            }
            for (k, rv) in rm {
                if lm.contains_key(k) || rv.is_null() {
                    continue;
                }
                if let Some(v) = merge_node(field_ty(ty, k), None, Some(rv), &[]) {
                    out.insert(k.clone(), v);
                }
            }
            Some(Value::Object(out))
        }
        sh @ (Shape::Keyed(_) | Shape::Set) => {
            let empty = Vec::new();
            let ll = lhs.and_then(Value::as_array).unwrap_or(&empty);
            let rl = rhs.and_then(Value::as_array).unwrap_or(&empty);
            match merge_list(&sh, item_ty(ty), ll, rl) {
                Some(items) => Some(Value::Array(items)),
                // Items that cannot be named: the list is one field.
                None => rhs.or(lhs).cloned(),
            }
        }
    }
}

/// Merge two associative lists. Items only in the live list keep their
/// place; items of the configuration come in its order, and an item in
/// both is emitted where the configuration's order reaches it.
fn merge_list<S: Schema>(
    sh: &Shape,
    it: Ty<S>,
    lhs: &[Value],
    rhs: &[Value],
) -> Option<Vec<Value>> {
    let li = index_items(sh, it, lhs)?;
    let ri = index_items(sh, it, rhs)?;
    // Path element of every live item, in order (duplicates repeat).
    let lpes: Vec<PathElement> = lhs
        .iter()
        .map(|v| super::typed::item_element(sh, it, v).expect("indexed above"))
        .collect();
    let rpes: Vec<&PathElement> = ri.iter().map(|(pe, _)| pe).collect();
    let find = |idx: &[(PathElement, Vec<&Value>)], pe: &PathElement| {
        idx.iter()
            .position(|(p, _)| p == pe)
            .map(|i| idx[i].1[0].clone())
    };
    let lget = |pe: &PathElement| find(&li, pe);
    let rget = |pe: &PathElement| find(&ri, pe);
    let in_rhs = |pe: &PathElement| ri.iter().any(|(p, _)| p == pe);

    // Items present on both sides, in the configuration's order.
    let mut shared = rpes
        .iter()
        .filter(|pe| li.iter().any(|(p, _)| p == **pe))
        .copied();
    let mut next_shared = shared.next();
    let mut merged: Vec<&PathElement> = Vec::new();
    let mut out = Vec::with_capacity(lhs.len().max(rhs.len()));
    let (mut l, mut r) = (0, 0);
    let item = |l: Option<Value>, r: Option<Value>| merge_node(it, l.as_ref(), r.as_ref(), &[]);
    while l < lpes.len() || r < rpes.len() {
        if l < lpes.len() && r < rpes.len() {
            let pe = &lpes[l];
            if pe == rpes[r] {
                merged.push(rpes[r]);
                out.extend(item(lget(pe), rget(pe)));
                l += 1;
                r += 1;
                next_shared = shared.next();
                continue;
            }
            if in_rhs(pe) && next_shared.is_some_and(|s| s != pe) {
                // A shared item the configuration places later.
                l += 1;
                continue;
            }
        }
        if l < lpes.len() {
            let pe = &lpes[l];
            if !in_rhs(pe) {
                out.extend(item(Some(lhs[l].clone()), None));
                l += 1;
                continue;
            } else if merged.contains(&pe) {
                l += 1;
            }
        }
        if r < rpes.len() {
            let pe = rpes[r];
            merged.push(pe);
            out.extend(item(lget(pe), rget(pe)));
            r += 1;
            if next_shared == Some(pe) {
                next_shared = shared.next();
            }
        }
    }
    Some(out)
}

/// Remove from `merged` what the applier owned before (`last`) and no
/// manager owns now (`owned`, which includes the applier's new set).
///
/// A step is in `last` (or `owned`) when it is a member, or when it is a
/// declared struct field with members under it: owning a field of a struct
/// means owning that the struct is there. Map keys and list items count only
/// as members.
pub fn prune<S: Schema>(ty: Ty<S>, merged: &mut Value, last: &Set, owned: &Set) {
    prune_node(ty, merged, last, Some(owned));
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn holds(set: Option<&Set>, pe: &PathElement, named: bool) -> bool {
    set.is_some_and(|s| s.has_member(pe) || (named && s.child(pe).is_some()))
}

fn prune_node<S: Schema>(ty: Ty<S>, v: &mut Value, last: &Set, owned: Option<&Set>) {
    match super::typed::shape(ty, v) {
        Shape::Leaf => {}
        Shape::Fields => {
            let Some(m) = v.as_object_mut() else { return };
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let pe = PathElement::Field(k.clone());
                let named = is_named(ty, &k);
                if holds(Some(last), &pe, named) && !holds(owned, &pe, named) {
                    m.remove(&k);
                } else if let Some(sub) = last.child(&pe) {
                    let child_owned = owned.and_then(|o| o.child(&pe));
                    if let Some(c) = m.get_mut(&k) {
                        let was_empty = is_empty_container(c);
                        prune_node(field_ty(ty, &k), c, sub, child_owned);
                        // A map or list emptied by pruning is gone, as
                        // upstream's removal leaves it null.
                        if !was_empty && is_empty_container(c) {
                            m.remove(&k);
                        }
                    }
                }
            }
        }
        sh @ (Shape::Keyed(_) | Shape::Set) => {
            let it = item_ty(ty);
            let Some(items) = v.as_array_mut() else {
                return;
            };
            let mut kept = Vec::with_capacity(items.len());
            for mut item in items.drain(..) {
                let Ok(pe) = super::typed::item_element(&sh, it, &item) else {
                    kept.push(item);
                    continue;
                };
                if holds(Some(last), &pe, false) && !holds(owned, &pe, false) {
                    continue;
                }
                if let Some(sub) = last.child(&pe) {
                    prune_node(it, &mut item, sub, owned.and_then(|o| o.child(&pe)));
                }
                kept.push(item);
            }
            *items = kept;
        }
    }
}
