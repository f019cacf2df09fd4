//! Strategic merge patch, as upstream applies it on the server
//! (`StrategicMergeMapPatch`).
//!
//! A patch is a partial object merged into the live one like a JSON merge
//! patch (maps merge recursively, `null` deletes a key, scalars replace),
//! except where the schema or directives say otherwise:
//!
//! - lists whose field has `x-kubernetes-patch-strategy: merge` are merged
//!   by the field's merge key, or as sets of scalars ([`lists`]);
//! - fields with the `replace` strategy are replaced as a whole;
//! - `$patch: replace|delete` on a map replaces or clears it; on a list item
//!   it deletes that item or replaces the list;
//! - `$retainKeys: [...]` drops the map's keys not listed;
//! - `$deleteFromPrimitiveList/<f>: [...]` removes scalars from list `f`;
//! - `$setElementOrder/<f>: [...]` gives the order of merged list `f`
//!   ([`order`]).
//!
//! Keys are processed in sorted order (upstream's map order is random; the
//! result is the same for every patch kubectl produces).

mod directives;
mod lists;
mod order;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use self::directives::{
    bad_arg_type, discard_nulls, has_directive, is_delete_item, map_directive, no_merge_key,
    parallel_list_field, remove_directives, retain_keys, DELETE_FROM_PRIMITIVE_LIST, MAP_TYPE,
    PATCH, SET_ELEMENT_ORDER, SLICE_TYPE,
};
use self::order::Identity;
use super::gofmt::{self, GoKind};
use super::meta::Schema;
use super::PatchError;

/// Apply `patch` to `original`, both objects of the type `schema` describes.
pub fn apply(
    original: Map<String, Value>,
    patch: Map<String, Value>,
    schema: Schema<'_>,
) -> Result<Map<String, Value>, PatchError> {
    merge_map(original, patch, schema)
}

/// Merge a patch map into a live map.
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    schema: Schema<'_>,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(PATCH).cloned() {
        return map_directive(&directive, patch);
    }
    retain_keys(&mut original, &mut patch)?;
    set_element_order(&mut original, &mut patch, schema)?;
    for (key, value) in patch {
        merge_key_value(&mut original, key, value, schema)?;
    }
    Ok(original)
}

/// Put a patch value in place as it is (nothing to merge it with).
fn put(original: &mut Map<String, Value>, key: String, mut value: Value) {
    discard_nulls(&mut value);
    match remove_directives(value) {
        Some(v) => {
            original.insert(key, v);
        }
        None => {
            original.remove(&key);
        }
    }
}

/// Merge one key of a patch map.
fn merge_key_value(
    original: &mut Map<String, Value>,
    key: String,
    value: Value,
    schema: Schema<'_>,
) -> Result<(), PatchError> {
    let (key, delete_list) = if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
        (parallel_list_field(&key, DELETE_FROM_PRIMITIVE_LIST)?, true)
    } else {
        (key, false)
    };
    if value.is_null() {
        original.remove(&key);
        return Ok(());
    }
    let Some(live) = original.get_mut(&key) else {
        // A deletion list for a list that is not there has nothing to do.
        if !delete_list {
            put(original, key, value);
        }
        return Ok(());
    };
    if GoKind::of(live) != GoKind::of(&value) {
        if !delete_list {
            put(original, key, value);
        }
        return Ok(());
    }
    match (live.take(), value) {
        (Value::Object(l), Value::Object(p)) => {
            let (sub, meta) = schema.field(&key)?;
            *live = Value::Object(if meta.strategy == "replace" {
                p
            } else {
                merge_map(l, p, sub)?
            });
        }
        (Value::Array(l), Value::Array(p)) => {
            let (sub, meta) = schema.list_field(&key)?;
            let how = lists::How {
                strategy: meta.strategy,
                merge_key: meta.merge_key,
                delete_list,
            };
            *live = Value::Array(lists::merge_field(l, p, sub, how, None)?);
        }
        (_, scalar) => *live = scalar,
    }
    Ok(())
}

/// Process every `$setElementOrder/<field>` of a patch map: merge the
/// field's patch list (if any) into the live list, then order the result
/// by the directive, keeping server-only items near their live neighbours.
/// The field's patch list is consumed here.
fn set_element_order(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    schema: Schema<'_>,
) -> Result<(), PatchError> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for key in keys {
        let order = match patch.remove(&key) {
            Some(Value::Array(order)) => order,
            other => return Err(bad_arg_type(SLICE_TYPE, other.as_ref())),
        };
        let field = parallel_list_field(&key, SET_ELEMENT_ORDER)?;
        let live = list_at(original, &field)?;
        let sent = list_at(patch, &field)?;
        let (sub, meta) = schema.list_field(&field)?;
        check_order(sent.as_deref().unwrap_or_default(), &order, meta.merge_key)?;
        // The live list as the ordering sees it (see `lists::merge_field`).
        let mut live_view = live.clone().unwrap_or_default();
        let merged = match (&live, &sent) {
            (Some(l), None) => l.clone(),
            (None, Some(p)) => match remove_directives(Value::Array(p.clone())) {
                Some(Value::Array(items)) => items,
                _ => Vec::new(),
            },
            (Some(l), Some(p)) => {
                let how = lists::How {
                    strategy: meta.strategy,
                    merge_key: meta.merge_key,
                    delete_list: false,
                };
                lists::merge_field(l.clone(), p.clone(), sub, how, Some(&mut live_view))?
            }
            (None, None) => continue,
        };
        let live = live.unwrap_or_default();
        let sent = sent.unwrap_or_default();
        let by_key = Identity {
            merge_key: meta.merge_key,
            maps: !meta.merge_key.is_empty(),
        };
        let (named, others) = order::partition(merged, &order, by_key)?;
        let kind = lists::element_kind(&[&live, &sent])?;
        let ident = Identity {
            merge_key: meta.merge_key,
            maps: kind == GoKind::Map,
        };
        let ordered = order::normalize(named, others, &order, &live_view, ident)?;
        original.insert(field.clone(), Value::Array(ordered));
        patch.remove(&field);
    }
    Ok(())
}

/// The list at `key`, if there is one; another value there is an error.
fn list_at(m: &Map<String, Value>, key: &str) -> Result<Option<Vec<Value>>, PatchError> {
    match m.get(key) {
        None => Ok(None),
        Some(Value::Array(items)) => Ok(Some(items.clone())),
        Some(other) => Err(bad_arg_type(SLICE_TYPE, Some(other))),
    }
}

/// The patch list's items (other than deletions and directives) must appear
/// in the `$setElementOrder/` list, in the same relative order.
fn check_order(sent: &[Value], order: &[Value], merge_key: &str) -> Result<(), PatchError> {
    if sent.is_empty() || order.is_empty() {
        return Ok(());
    }
    let mut items: Vec<&Value> = Vec::with_capacity(sent.len());
    for item in sent {
        if !merge_key.is_empty() {
            if !item.is_object() {
                return Err(bad_arg_type(MAP_TYPE, Some(item)));
            }
            if is_delete_item(item) {
                continue;
            }
        }
        items.push(item);
    }
    let (mut pi, mut oi) = (0, 0);
    while pi < items.len() && oi < order.len() {
        if has_directive(items[pi]) {
            pi += 1;
            continue;
        }
        if same_key(items[pi], &order[oi], merge_key)? {
            pi += 1;
        }
        oi += 1;
    }
    if pi < items.len() && oi >= order.len() {
        return Err(PatchError::Internal(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ELEMENT_ORDER} list:\n{}\n",
            gofmt::v(&Value::Array(sent.to_vec())),
            gofmt::v(&Value::Array(order.to_vec()))
        )));
    }
    Ok(())
}

/// Whether two items have the same merge-key value (or are equal scalars).
fn same_key(left: &Value, right: &Value, merge_key: &str) -> Result<bool, PatchError> {
    if merge_key.is_empty() {
        return Ok(left == right);
    }
    let (Value::Object(l), Value::Object(r)) = (left, right) else {
        let bad = if left.is_object() { right } else { left };
        return Err(bad_arg_type(MAP_TYPE, Some(bad)));
    };
    let l = l.get(merge_key).ok_or_else(|| no_merge_key(l, merge_key))?;
    let r = r.get(merge_key).ok_or_else(|| no_merge_key(r, merge_key))?;
    Ok(l == r)
}
