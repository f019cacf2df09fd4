//! The patch directives that are not list merging proper: `$patch` on a
//! map, `$retainKeys`, the parallel-list key prefixes, and the clean-up of
//! values taken from a patch as they are.

use serde_json::{Map, Value};

use crate::patch::gofmt;
use crate::patch::PatchError;

/// `$patch`: `replace`, `delete` or `merge`.
pub const PATCH: &str = "$patch";
/// `$retainKeys`: the keys of a map to keep.
pub const RETAIN_KEYS: &str = "$retainKeys";
/// `$deleteFromPrimitiveList/<field>`: scalars to remove from a list.
pub const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
/// `$setElementOrder/<field>`: the order of a merged list.
pub const SET_ELEMENT_ORDER: &str = "$setElementOrder";

/// `invalid patch format of retainKeys`
pub fn bad_retain_keys() -> PatchError {
    PatchError::BadRequest("invalid patch format of retainKeys".into())
}

/// `invalid patch format of setElementOrder list`
pub fn bad_set_element_order() -> PatchError {
    PatchError::BadRequest("invalid patch format of setElementOrder list".into())
}

/// The field a parallel-list key names: `$setElementOrder/containers` is
/// `containers`. A key that only starts like the prefix is malformed.
pub fn parallel_list_field(key: &str, prefix: &str) -> Result<String, PatchError> {
    match key.split_once('/') {
        Some((p, field)) if p == prefix => Ok(field.to_string()),
        _ if prefix == DELETE_FROM_PRIMITIVE_LIST => Err(PatchError::BadRequest(
            "invalid patch format of primitive list".into(),
        )),
        _ => Err(bad_set_element_order()),
    }
}

/// `unknown patch type: <t> in map: <m>`
pub fn unknown_patch_type(t: &Value, m: &Map<String, Value>) -> PatchError {
    PatchError::Internal(format!(
        "unknown patch type: {} in map: {}",
        gofmt::s(t),
        gofmt::v(&Value::Object(m.clone()))
    ))
}

/// `map: <m> does not contain declared merge key: <key>`
pub fn no_merge_key(m: &Map<String, Value>, key: &str) -> PatchError {
    PatchError::Internal(format!(
        "map: {} does not contain declared merge key: {key}",
        gofmt::v(&Value::Object(m.clone()))
    ))
}

/// `expected a <expected>, but received a <actual type>`
pub fn bad_arg_type(expected: &str, actual: Option<&Value>) -> PatchError {
    let actual = actual.map_or("<nil>", |a| gofmt::GoKind::of(a).type_name());
    PatchError::Internal(format!("expected a {expected}, but received a {actual}"))
}

/// The Go type names [`bad_arg_type`] expects.
pub const MAP_TYPE: &str = "map[string]interface {}";
pub const SLICE_TYPE: &str = "[]interface {}";

/// A map-level `$patch`: `replace` takes the patch (without the directive)
/// as the new value, `delete` empties the map; anything else is an error.
pub fn map_directive(
    directive: &Value,
    mut patch: Map<String, Value>,
) -> Result<Map<String, Value>, PatchError> {
    match directive.as_str() {
        Some("replace") => {
            patch.remove(PATCH);
            Ok(patch)
        }
        Some("delete") => Ok(Map::new()),
        _ => Err(unknown_patch_type(directive, &patch)),
    }
}

/// Apply `$retainKeys`: every key the patch sets must be listed, and keys of
/// `original` not listed are dropped before the merge.
pub fn retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(list) = patch.remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(list) = list else {
        return Err(bad_retain_keys());
    };
    // Only string entries can name keys; others are kept in the list but
    // never match, as upstream compares them with the keys as values.
    let listed = |k: &str| list.iter().any(|v| v.as_str() == Some(k));
    for (k, v) in patch.iter() {
        if v.is_null()
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        if !listed(k) {
            return Err(bad_retain_keys());
        }
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// A value taken from the patch as it is: elements and maps that carry a
/// `$patch` directive are dropped (they have nothing to act on). `None`
/// means the value itself is dropped.
pub fn remove_directives(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) => {
            if m.contains_key(PATCH) {
                return None;
            }
            Some(Value::Object(
                m.into_iter()
                    .filter_map(|(k, v)| remove_directives(v).map(|v| (k, v)))
                    .collect(),
            ))
        }
        Value::Array(items) => Some(Value::Array(
            items.into_iter().filter_map(remove_directives).collect(),
        )),
        other => Some(other),
    }
}

/// Drop `null` members of every map in `v`: in a value added as a whole they
/// have nothing to delete.
pub fn discard_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(discard_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(discard_nulls),
        _ => {}
    }
}

/// Whether `v` is a map with a `$patch` key.
pub fn has_directive(v: &Value) -> bool {
    v.as_object().is_some_and(|m| m.contains_key(PATCH))
}

/// Whether `v` is a list item marked `$patch: delete`.
pub fn is_delete_item(v: &Value) -> bool {
    v.get(PATCH).and_then(Value::as_str) == Some("delete")
}
