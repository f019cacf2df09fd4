//! Helpers over wire JSON shared by the strategies.
//!
//! Objects arrive as `serde_json::Value` straight from the request, so every
//! read here tolerates missing fields and wrong types: a wrong type is reported
//! once by the typed decode (see [`super::unknown`]) and otherwise reads as
//! absent, so one bad field never turns into a cascade of confusing errors.

use serde_json::{Map, Value};

use crate::error::{FieldError, FieldErrorType};

/// Upstream's `FieldImmutableErrorMsg`.
pub const IMMUTABLE: &str = "field is immutable";
/// Upstream's `IsNegativeErrorMsg`.
pub const NEGATIVE: &str = "must be greater than or equal to 0";

/// `parent.name`, or `name` at the top.
pub fn child(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        // Validation builds a path for every field it visits: joined by
        // hand, which is several times cheaper than `format!`.
        join(&[parent, ".", name])
    }
}

fn join(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    for p in parts {
        s.push_str(p);
    }
    s
}

/// `parent[i]`.
pub fn index(parent: &str, i: usize) -> String {
    let mut buf = [0u8; 20];
    join(&[parent, "[", decimal(i, &mut buf), "]"])
}

/// `i` in decimal, written into `buf`.
fn decimal(mut i: usize, buf: &mut [u8; 20]) -> &str {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (i % 10) as u8;
        i /= 10;
        if i == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[at..]).expect("ASCII digits")
}

/// `parent[key]`, upstream's `Path.Key`.
pub fn key(parent: &str, k: &str) -> String {
    join(&[parent, "[", k, "]"])
}

/// A field that is present and not null.
pub fn get<'a>(v: &'a Value, k: &str) -> Option<&'a Value> {
    v.get(k).filter(|x| !x.is_null())
}

/// A string field, or "" when absent or not a string (Go's zero value).
pub fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// A string field that is present.
pub fn opt_s<'a>(v: &'a Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(Value::as_str)
}

/// An array field, or an empty slice.
pub fn arr<'a>(v: &'a Value, k: &str) -> &'a [Value] {
    v.get(k)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// An integer field.
pub fn int(v: &Value, k: &str) -> Option<i64> {
    v.get(k).and_then(Value::as_i64)
}

/// A boolean field.
pub fn flag(v: &Value, k: &str) -> Option<bool> {
    v.get(k).and_then(Value::as_bool)
}

/// The strings of an array field, skipping anything else.
pub fn strs<'a>(v: &'a Value, k: &str) -> Vec<&'a str> {
    arr(v, k).iter().filter_map(Value::as_str).collect()
}

/// The string entries of a map field, sorted by key (serde_json maps are ordered).
pub fn string_map<'a>(v: &'a Value, k: &str) -> Vec<(&'a str, &'a str)> {
    v.get(k)
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a map or array field has entries.
pub fn non_empty(v: &Value, k: &str) -> bool {
    match v.get(k) {
        Some(Value::Object(m)) => !m.is_empty(),
        Some(Value::Array(a)) => !a.is_empty(),
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Null) | None => false,
        Some(_) => true,
    }
}

/// The object at `k` under `v`, created when missing or null; `None` when `v`
/// is not an object or `k` holds something else (left for validation).
pub fn obj_mut<'a>(v: &'a mut Value, k: &str) -> Option<&'a mut Value> {
    let m = v.as_object_mut()?;
    let slot = m.entry(k.to_string()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.is_object().then_some(slot)
}

/// The existing value at a path of keys.
pub fn at_mut<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut Value> {
    let mut cur = v;
    for k in path {
        cur = cur.get_mut(*k).filter(|x| !x.is_null())?;
    }
    Some(cur)
}

/// Set `k` to `val` when it is missing or null (defaulting never overwrites).
pub fn set_default(v: &mut Value, k: &str, val: Value) {
    if let Some(m) = v.as_object_mut() {
        let slot = m.entry(k.to_string()).or_insert(Value::Null);
        if slot.is_null() {
            *slot = val;
        }
    }
}

/// Set `k` to `val` when it is missing, null or "".
pub fn set_default_str(v: &mut Value, k: &str, val: &str) {
    if let Some(m) = v.as_object_mut() {
        let slot = m.entry(k.to_string()).or_insert(Value::Null);
        if slot.is_null() || slot.as_str() == Some("") {
            *slot = Value::String(val.to_string());
        }
    }
}

/// Set `k` on `v` if `v` is an object (input may hold anything where an
/// object belongs; defaulting must never panic on it).
pub fn put(v: &mut Value, k: &str, val: Value) {
    if let Some(m) = v.as_object_mut() {
        m.insert(k.to_string(), val);
    }
}

/// Run `f` on each element of the array at `k`.
pub fn each_mut(v: &mut Value, k: &str, mut f: impl FnMut(&mut Value)) {
    if let Some(a) = v.get_mut(k).and_then(Value::as_array_mut) {
        a.iter_mut().for_each(&mut f);
    }
}

/// Copy `old[k]` into `new` (or drop it from `new` when `old` lacks it).
pub fn keep_from_old(new: &mut Value, old: &Value, k: &str) {
    let Some(m) = new.as_object_mut() else { return };
    match old.get(k) {
        Some(v) => {
            m.insert(k.to_string(), v.clone());
        }
        None => {
            m.remove(k);
        }
    }
}

/// Copy everything outside `metadata` and `status` from `old`: what a status
/// update may not touch (upstream status strategies reset the spec).
pub fn keep_all_but_status(new: &mut Value, old: &Value) {
    let keys: Vec<String> = new
        .as_object()
        .map(|m| {
            m.keys()
                .chain(old.as_object().map(|o| o.keys()).into_iter().flatten())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    for k in keys {
        if !matches!(k.as_str(), "metadata" | "status" | "apiVersion" | "kind") {
            keep_from_old(new, old, &k);
        }
    }
}

/// A value with nulls, empty arrays and empty objects removed, for comparing
/// objects the way upstream's semantic equality sees decoded Go structs.
/// (The definition [`same`] follows without building it.)
#[cfg(test)]
pub fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), normalize(v)))
                .filter(|(_, v)| !is_empty(v))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalize).collect()),
        other => other.clone(),
    }
}

#[cfg(test)]
fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.is_empty(),
        _ => false,
    }
}

/// Whether `normalize(v)` is empty: null, an empty array, or an object
/// of such values only.
fn normalizes_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(m) => m.values().all(normalizes_empty),
        _ => false,
    }
}

/// `normalize(a) == normalize(b)`, without building either: a member
/// that normalizes empty counts as absent, array items are compared in
/// place.
fn normal_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            x.iter().all(|(k, v)| match y.get(k) {
                Some(w) => {
                    let (ev, ew) = (normalizes_empty(v), normalizes_empty(w));
                    if ev || ew {
                        ev == ew
                    } else {
                        normal_eq(v, w)
                    }
                }
                None => normalizes_empty(v),
            }) && y
                .iter()
                .all(|(k, w)| x.contains_key(k) || normalizes_empty(w))
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(v, w)| normal_eq(v, w))
        }
        _ => a == b,
    }
}

/// Semantic equality of two optional values: equal once nulls, empty
/// arrays and empty objects are removed, as upstream compares decoded Go
/// structs. Nothing is copied (it runs on every update, on whole specs).
pub fn same(a: Option<&Value>, b: Option<&Value>) -> bool {
    match (
        a.filter(|v| !normalizes_empty(v)),
        b.filter(|v| !normalizes_empty(v)),
    ) {
        (None, None) => true,
        (Some(a), Some(b)) => normal_eq(a, b),
        _ => false,
    }
}

/// `field is immutable` when `new[k]` differs from `old[k]`.
pub fn immutable(new: &Value, old: &Value, k: &str, field: &str) -> Vec<FieldError> {
    if same(new.get(k), old.get(k)) {
        Vec::new()
    } else {
        vec![FieldError::invalid(
            field,
            new.get(k).cloned().unwrap_or(Value::Null),
            IMMUTABLE,
        )]
    }
}

/// Upstream's `ValidateNonnegativeField` on an optional integer.
pub fn nonnegative(v: &Value, k: &str, field: &str) -> Vec<FieldError> {
    match int(v, k) {
        Some(n) if n < 0 => vec![FieldError::invalid(field, n, NEGATIVE)],
        _ => Vec::new(),
    }
}

/// `field.NotFound`.
pub fn not_found(field: impl Into<String>, value: impl Into<Value>) -> FieldError {
    FieldError {
        field: field.into(),
        kind: FieldErrorType::NotFound,
        value: Some(value.into()),
        detail: String::new(),
    }
}

/// `field.TooMany`.
pub fn too_many(field: impl Into<String>, actual: usize, max: usize) -> FieldError {
    FieldError {
        field: field.into(),
        kind: FieldErrorType::TooMany,
        value: Some(Value::from(actual)),
        detail: format!("must have at most {max} items"),
    }
}

/// `field.TooLong` with upstream's wording for a string field.
pub fn too_long_chars(field: impl Into<String>, max: usize) -> FieldError {
    FieldError {
        field: field.into(),
        kind: FieldErrorType::TooLong,
        value: None,
        detail: format!("may not be more than {max} bytes"),
    }
}

/// Turn validator messages into `Invalid` errors at `field`.
pub fn invalid_each(field: &str, value: &str, msgs: Vec<String>) -> Vec<FieldError> {
    msgs.into_iter()
        .map(|m| FieldError::invalid(field, value, m))
        .collect()
}

/// `NotSupported` unless `value` is one of `allowed`; `Required` when empty
/// and `required` is set.
pub fn one_of(field: &str, value: &str, allowed: &[&str], required: bool) -> Vec<FieldError> {
    if value.is_empty() {
        if required {
            vec![FieldError::required(field, "")]
        } else {
            Vec::new()
        }
    } else if !allowed.contains(&value) {
        vec![FieldError::not_supported(field, value, allowed)]
    } else {
        Vec::new()
    }
}

/// Now as metav1.Time (`YYYY-MM-DDTHH:MM:SSZ`).
pub fn now_rfc3339() -> String {
    rfc3339(time::OffsetDateTime::now_utc())
}

/// `t` as metav1.Time (`YYYY-MM-DDTHH:MM:SSZ`).
pub fn rfc3339(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// Drop the errors whose field already has one, keeping the first: the typed
/// decode and a kind's own checks may both see the same bad value.
pub fn dedup_fields(errs: &mut Vec<FieldError>, extra: Vec<FieldError>) {
    // Map keys appear as `[key]` in kind checks and `.key` in decode paths.
    let norm = |f: &str| f.replace('[', ".").replace(']', "");
    for e in extra {
        let ef = norm(&e.field);
        if !errs.iter().any(|x| {
            let xf = norm(&x.field);
            xf == ef || ef.starts_with(&format!("{xf}."))
        }) {
            errs.push(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths() {
        assert_eq!(child("", "spec"), "spec");
        assert_eq!(index(&child("spec", "containers"), 0), "spec.containers[0]");
        assert_eq!(index("a", 1207), "a[1207]");
        assert_eq!(index("a", usize::MAX), format!("a[{}]", usize::MAX));
        assert_eq!(
            key("spec.resources.limits", "cpu"),
            "spec.resources.limits[cpu]"
        );
    }

    /// `same` is the comparison of normalized values, without building them.
    #[test]
    fn same_is_equality_after_normalizing() {
        let values = [
            json!(null),
            json!({}),
            json!([]),
            json!(0),
            json!(""),
            json!([null]),
            json!([{}]),
            json!([{"a": null}]),
            json!({"a": null}),
            json!({"a": {}}),
            json!({"a": {"b": []}}),
            json!({"a": 1}),
            json!({"a": 1, "b": null}),
            json!({"a": 1, "b": {"c": []}}),
            json!({"a": 2}),
            json!({"a": {"b": 1}}),
            json!({"a": {"b": 1, "c": {}}}),
            json!({"a": [1, {"b": null}]}),
            json!({"a": [1, {}]}),
            json!({"a": [1]}),
            json!({"b": 1}),
        ];
        let reference = |a: Option<&Value>, b: Option<&Value>| {
            let n = |x: Option<&Value>| x.map(normalize).filter(|v| !is_empty(v));
            n(a) == n(b)
        };
        let options: Vec<Option<&Value>> = std::iter::once(None)
            .chain(values.iter().map(Some))
            .collect();
        for a in &options {
            for b in &options {
                assert_eq!(same(*a, *b), reference(*a, *b), "{a:?} vs {b:?}");
            }
        }
        assert!(same(
            Some(&json!({"a": 1, "b": {}})),
            Some(&json!({"a": 1}))
        ));
        assert!(!same(Some(&json!([{}])), Some(&json!([null]))));
    }

    #[test]
    fn defaults_never_overwrite() {
        let mut v = json!({ "a": 1, "b": null, "c": "" });
        set_default(&mut v, "a", json!(2));
        set_default(&mut v, "b", json!(3));
        set_default_str(&mut v, "c", "x");
        set_default(&mut v, "d", json!(4));
        assert_eq!(v, json!({ "a": 1, "b": 3, "c": "x", "d": 4 }));
    }

    #[test]
    fn semantic_equality_ignores_empties() {
        assert!(same(Some(&json!({ "a": [], "b": null, "c": {} })), None));
        assert!(same(
            Some(&json!({ "x": 1, "y": {} })),
            Some(&json!({ "x": 1 }))
        ));
        assert!(!same(Some(&json!({ "x": 1 })), Some(&json!({ "x": 2 }))));
    }

    #[test]
    fn status_update_keeps_spec() {
        let old = json!({ "spec": { "a": 1 }, "status": { "p": 1 }, "metadata": { "name": "x" } });
        let mut new = json!({ "spec": { "a": 2 }, "status": { "p": 2 }, "extra": 1, "metadata": { "name": "x" } });
        keep_all_but_status(&mut new, &old);
        assert_eq!(
            new,
            json!({ "spec": { "a": 1 }, "status": { "p": 2 }, "metadata": { "name": "x" } })
        );
    }

    #[test]
    fn immutable_reports_new_value() {
        let e = immutable(&json!({ "t": "b" }), &json!({ "t": "a" }), "t", "type");
        assert_eq!(
            e[0].message(),
            "type: Invalid value: \"b\": field is immutable"
        );
        assert!(obj_mut(&mut json!({ "x": 1 }), "x").is_none());
    }
}
