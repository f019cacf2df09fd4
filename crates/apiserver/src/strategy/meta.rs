//! Upstream's `ValidateObjectMeta` and `ValidateObjectMetaUpdate`, plus the
//! label, annotation and label-selector rules the kinds share.

use std::collections::BTreeSet;

use serde_json::Value;

use super::names::*;
use super::util::*;
use super::{name_rule, NameRule};
use crate::error::FieldError;
use crate::resources::ResourceInfo;

/// Upstream's `TotalAnnotationSizeLimitB`.
pub const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;

/// Finalizer names that need no domain prefix.
const STANDARD_FINALIZERS: &[&str] = &["kubernetes", "orphan", "foregroundDeletion"];

/// The messages for a name under `rule`; `prefix` for a generateName.
pub fn name_errors(rule: NameRule, name: &str, prefix: bool) -> Vec<String> {
    match rule {
        NameRule::Dns1123Subdomain => name_is_dns_subdomain(name, prefix),
        NameRule::Dns1123Label => name_is_dns_label(name, prefix),
        NameRule::PathSegment => path_segment_name(name, prefix),
    }
}

/// Upstream's `ValidateLabels`: qualified keys, valid values; errors name the
/// whole map (`metadata.labels`) as upstream does.
pub fn validate_labels(labels: Option<&Value>, path: &str) -> Vec<FieldError> {
    validate_labels_since(labels, None, path)
}

/// The entries of a stored object's map, to tell which entries of the new
/// map are kept as they were: on an update, such an entry was checked when
/// the stored object was written, and the checks of an entry depend on
/// nothing else, so they give the same result again.
///
/// Both maps iterate in key order, so the new map's entries are matched in
/// one pass over the old one. Only an equal key with an equal value counts
/// as kept, so were the order ever different, entries would just be checked
/// again.
struct Kept<'a>(Option<std::iter::Peekable<serde_json::map::Iter<'a>>>);

impl<'a> Kept<'a> {
    fn of(old: Option<&'a Value>) -> Self {
        Kept(old.and_then(Value::as_object).map(|m| m.iter().peekable()))
    }

    /// Whether `k: v` is in the old map; `k` must come after the keys asked before.
    fn has(&mut self, k: &str, v: &Value) -> bool {
        let Some(old) = self.0.as_mut() else {
            return false;
        };
        while let Some((ok, ov)) = old.peek() {
            match ok.as_str().cmp(k) {
                std::cmp::Ordering::Less => {
                    old.next();
                }
                std::cmp::Ordering::Equal => return *ov == v,
                std::cmp::Ordering::Greater => return false,
            }
        }
        false
    }
}

/// [`validate_labels`] of an update: entries kept from the stored object's
/// `old` labels are not checked again.
fn validate_labels_since(
    labels: Option<&Value>,
    old: Option<&Value>,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(m) = labels.and_then(Value::as_object) else {
        return errs;
    };
    let mut old = Kept::of(old);
    for (k, v) in m {
        if old.has(k, v) {
            continue;
        }
        errs.extend(invalid_each(path, k, is_qualified_name(k)));
        if let Some(v) = v.as_str() {
            errs.extend(invalid_each(path, v, is_valid_label_value(v)));
        }
    }
    errs
}

/// Upstream's `ValidateAnnotations`: case-insensitive qualified keys and at
/// most 256 KiB of keys plus values.
pub fn validate_annotations(annotations: Option<&Value>, path: &str) -> Vec<FieldError> {
    validate_annotations_since(annotations, None, path)
}

/// [`validate_annotations`] of an update: the keys of entries kept from the
/// stored object's `old` annotations are not checked again; the size counts
/// every entry.
fn validate_annotations_since(
    annotations: Option<&Value>,
    old: Option<&Value>,
    path: &str,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let Some(m) = annotations.and_then(Value::as_object) else {
        return errs;
    };
    let mut old = Kept::of(old);
    let mut size = 0;
    for (k, v) in m {
        size += k.len() + v.as_str().map(str::len).unwrap_or(0);
        if old.has(k, v) {
            continue;
        }
        // Lowercased as upstream does (`strings.ToLower`), copied only if
        // that changes anything.
        let lower = if k.is_ascii() && !k.bytes().any(|b| b.is_ascii_uppercase()) {
            std::borrow::Cow::Borrowed(k.as_str())
        } else {
            std::borrow::Cow::Owned(k.to_lowercase())
        };
        errs.extend(invalid_each(path, k, is_qualified_name(&lower)));
    }
    if size > ANNOTATIONS_MAX_BYTES {
        errs.push(FieldError::too_long(path, ANNOTATIONS_MAX_BYTES));
    }
    errs
}

/// Upstream's `ValidateLabelSelector` (metav1.LabelSelector).
pub fn validate_label_selector(sel: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = validate_labels(sel.get("matchLabels"), &child(path, "matchLabels"));
    for (i, r) in arr(sel, "matchExpressions").iter().enumerate() {
        let rp = index(&child(path, "matchExpressions"), i);
        let values = arr(r, "values");
        match s(r, "operator") {
            "In" | "NotIn" => {
                if values.is_empty() {
                    errs.push(FieldError::required(
                        child(&rp, "values"),
                        "must be specified when `operator` is 'In' or 'NotIn'",
                    ));
                }
            }
            "Exists" | "DoesNotExist" => {
                if !values.is_empty() {
                    errs.push(FieldError::forbidden(
                        child(&rp, "values"),
                        "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                    ));
                }
            }
            op => errs.push(FieldError::invalid(
                child(&rp, "operator"),
                op,
                "not a valid selector operator",
            )),
        }
        let k = s(r, "key");
        errs.extend(invalid_each(&child(&rp, "key"), k, is_qualified_name(k)));
        for (j, v) in values.iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            errs.extend(invalid_each(
                &index(&child(&rp, "values"), j),
                v,
                is_valid_label_value(v),
            ));
        }
    }
    errs
}

/// Whether a metav1.LabelSelector matches a label map. Like upstream's
/// `LabelSelectorAsSelector`, a missing selector matches nothing and an
/// empty one matches everything.
pub fn selector_matches(sel: Option<&Value>, labels: Option<&Value>) -> bool {
    let Some(sel) = sel.filter(|s| !s.is_null()) else {
        return false;
    };
    let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
    let all_labels = string_map(sel, "matchLabels")
        .into_iter()
        .all(|(k, v)| label(k) == Some(v));
    all_labels
        && arr(sel, "matchExpressions").iter().all(|r| {
            let k = s(r, "key");
            let values = strs(r, "values");
            match s(r, "operator") {
                "In" => label(k).is_some_and(|v| values.contains(&v)),
                "NotIn" => label(k).is_none_or(|v| !values.contains(&v)),
                "Exists" => label(k).is_some(),
                "DoesNotExist" => label(k).is_none(),
                _ => false,
            }
        })
}

/// Whether a plain map selector (Services, ReplicationControllers) matches.
pub fn map_selector_matches(sel: Option<&Value>, labels: Option<&Value>) -> bool {
    let Some(m) = sel.and_then(Value::as_object) else {
        return false;
    };
    m.iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
}

/// Upstream core's `validateKubeFinalizerName`: an unqualified finalizer must
/// be one of the standard ones.
pub fn validate_kube_finalizer(name: &str, path: &str) -> Vec<FieldError> {
    if !name.contains('/') && !STANDARD_FINALIZERS.contains(&name) {
        vec![FieldError::invalid(
            path,
            name,
            "name is neither a standard finalizer name nor is it fully qualified",
        )]
    } else {
        Vec::new()
    }
}

/// `kube_rule`: the core API's rule that finalizer names be standard or
/// fully qualified; the apiextensions server (CRDs and custom resources)
/// only requires qualified names.
fn validate_finalizers(meta: &Value, kube_rule: bool, errs: &mut Vec<FieldError>) {
    let finalizers = strs(meta, "finalizers");
    for f in &finalizers {
        errs.extend(invalid_each("metadata.finalizers", f, is_qualified_name(f)));
    }
    if finalizers.contains(&"orphan") && finalizers.contains(&"foregroundDeletion") {
        errs.push(FieldError::invalid(
            "metadata.finalizers",
            meta["finalizers"].clone(),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    if !kube_rule {
        return;
    }
    for (i, f) in finalizers.iter().enumerate() {
        errs.extend(validate_kube_finalizer(f, &index("metadata.finalizers", i)));
    }
}

fn validate_owner_references(meta: &Value, errs: &mut Vec<FieldError>) {
    let path = "metadata.ownerReferences";
    let mut first_controller: Option<String> = None;
    for r in arr(meta, "ownerReferences") {
        let api_version = s(r, "apiVersion");
        let version = match api_version.split('/').collect::<Vec<_>>().as_slice() {
            [v] => *v,
            [_, v] => *v,
            _ => "",
        };
        if version.is_empty() {
            errs.push(FieldError::invalid(
                child(path, "apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        for (k, msg) in [
            ("kind", "must not be empty"),
            ("name", "must not be empty"),
            ("uid", "must not be empty"),
        ] {
            if s(r, k).is_empty() {
                errs.push(FieldError::invalid(child(path, k), s(r, k), msg));
            }
        }
        if api_version == "v1" && s(r, "kind") == "Event" {
            errs.push(FieldError::invalid(
                path,
                r.clone(),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if flag(r, "controller") == Some(true) {
            let cur = format!("{}/{}", s(r, "kind"), s(r, "name"));
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    meta["ownerReferences"].clone(),
                    format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {cur}"),
                )),
                None => first_controller = Some(cur),
            }
        }
    }
}

/// Whether the core API's finalizer name rule applies to a kind.
fn core_finalizer_rule(info: &ResourceInfo) -> bool {
    crate::resources::is_builtin(info) && info.group != "apiextensions.k8s.io"
}

/// Upstream's `ValidateObjectMeta` for `info`'s kind (name rule and scope).
pub fn validate_object_meta(obj: &Value, info: &ResourceInfo) -> Vec<FieldError> {
    validate_object_meta_since(obj, None, info)
}

/// [`validate_object_meta`]; on an update, `old` is the stored object's
/// metadata, whose label and annotation entries the new metadata keeps need
/// no second check.
fn validate_object_meta_since(
    obj: &Value,
    old: Option<&Value>,
    info: &ResourceInfo,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if info.kind == "SelfSubjectReview" {
        // A review is never stored; upstream does not look at its metadata.
        return errs;
    }
    let meta = obj.get("metadata").unwrap_or(&Value::Null);
    let rule = name_rule(info);
    let generate = s(meta, "generateName");
    if !generate.is_empty() {
        errs.extend(invalid_each(
            "metadata.generateName",
            generate,
            name_errors(rule, generate, true),
        ));
    }
    let name = s(meta, "name");
    if name.is_empty() {
        errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        ));
    } else {
        errs.extend(invalid_each(
            "metadata.name",
            name,
            name_errors(rule, name, false),
        ));
    }
    let ns = s(meta, "namespace");
    if info.namespaced {
        if ns.is_empty() {
            errs.push(FieldError::required("metadata.namespace", ""));
        } else {
            errs.extend(invalid_each(
                "metadata.namespace",
                ns,
                name_is_dns_label(ns, false),
            ));
        }
    } else if !ns.is_empty() {
        errs.push(FieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    errs.extend(nonnegative(meta, "generation", "metadata.generation"));
    let old_of = |f: &str| old.and_then(|o| o.get(f));
    errs.extend(validate_labels_since(
        meta.get("labels"),
        old_of("labels"),
        "metadata.labels",
    ));
    errs.extend(validate_annotations_since(
        meta.get("annotations"),
        old_of("annotations"),
        "metadata.annotations",
    ));
    validate_owner_references(meta, &mut errs);
    validate_finalizers(meta, core_finalizer_rule(info), &mut errs);
    errs
}

/// Upstream's `ValidateObjectMetaUpdate`: identity and deletion fields are
/// immutable, generation may not go back, a deleting object gains no
/// finalizers; then the create rules on the new metadata.
pub fn validate_object_meta_update(
    new: &Value,
    old: &Value,
    info: &ResourceInfo,
) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if info.kind == "SelfSubjectReview" {
        return errs;
    }
    let nm = new.get("metadata").unwrap_or(&Value::Null);
    let om = old.get("metadata").unwrap_or(&Value::Null);
    if get(om, "deletionTimestamp").is_some() {
        let old_f: BTreeSet<&str> = strs(om, "finalizers").into_iter().collect();
        let extra: BTreeSet<&str> = strs(nm, "finalizers")
            .into_iter()
            .filter(|f| !old_f.contains(f))
            .collect();
        if !extra.is_empty() {
            let list = extra
                .iter()
                .map(|f| format!("{f:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            errs.push(FieldError::forbidden(
                "metadata.finalizers",
                format!("no new finalizers can be added if the object is being deleted, found new finalizers []string{{{list}}}"),
            ));
        }
    }
    if let (Some(n), Some(o)) = (int(nm, "generation"), int(om, "generation")) {
        if n < o {
            errs.push(FieldError::invalid(
                "metadata.generation",
                n,
                "must not be decremented",
            ));
        }
    }
    for k in [
        "name",
        "namespace",
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ] {
        errs.extend(immutable(nm, om, k, &child("metadata", k)));
    }
    errs.extend(validate_object_meta_since(new, Some(om), info));
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldErrorType;
    use crate::resources::lookup;
    use serde_json::json;

    fn kinds(errs: Vec<FieldError>) -> Vec<(String, FieldErrorType)> {
        errs.into_iter().map(|e| (e.field, e.kind)).collect()
    }

    /// Keys are checked lowercased, as upstream's `strings.ToLower` does,
    /// which maps some non-ASCII letters (the Kelvin sign) to ASCII ones.
    #[test]
    fn annotation_keys_are_checked_lowercased() {
        let ok = json!({"Example.COM/Key": "", "\u{212A}ey": "", "plain": ""});
        assert!(validate_annotations(Some(&ok), "metadata.annotations").is_empty());
        let bad = json!({"Example.COM/-key": "", "\u{e9}t\u{e9}": ""});
        let errs = validate_annotations(Some(&bad), "metadata.annotations");
        assert_eq!(
            kinds(errs),
            vec![
                ("metadata.annotations".to_string(), FieldErrorType::Invalid),
                ("metadata.annotations".to_string(), FieldErrorType::Invalid),
            ]
        );
    }

    /// An update checks again only the label and annotation entries it adds
    /// or changes: against a valid stored object (the only kind the store
    /// holds) it reports exactly what checking the whole metadata does, for
    /// added, changed, kept and removed entries, valid or not, and counts
    /// kept annotations in the size limit.
    #[test]
    fn updates_check_what_they_change_with_the_full_checks_result() {
        let cm = lookup("", "v1", "configmaps").unwrap();
        let keys = [
            "app",
            "example.com/tier",
            "Bad Key",
            "-x",
            "a/b/c",
            "UPPER",
            "x.io/ok",
        ];
        let values = ["web", "", "not valid!", "v1.2", "-bad-", "ok_1"];
        let valid = |k: &str, v: &str| {
            is_qualified_name(k).is_empty()
                && is_qualified_name(&k.to_lowercase()).is_empty()
                && is_valid_label_value(v).is_empty()
        };
        // A small xorshift: every run checks the same 3,000 cases.
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let map = |only_valid: bool, next: &mut dyn FnMut(usize) -> usize| {
            let mut m = serde_json::Map::new();
            for _ in 0..next(5) {
                let (k, v) = (keys[next(keys.len())], values[next(values.len())]);
                if !only_valid || valid(k, v) {
                    m.insert(k.into(), json!(v));
                }
            }
            Value::Object(m)
        };
        let mut seen_errors = 0;
        for case in 0..3000 {
            let big = "x".repeat(if case % 10 == 0 { 130 * 1024 } else { 1 });
            let mut old_ann = map(true, &mut next);
            old_ann["example.com/big"] = json!(big);
            let old = json!({"metadata": {"name": "c", "namespace": "d",
                "labels": map(true, &mut next), "annotations": old_ann}});
            let mut new = old.clone();
            for f in ["labels", "annotations"] {
                let m = new["metadata"][f].as_object_mut().unwrap();
                for _ in 0..next(3) {
                    let k = keys[next(keys.len())];
                    match next(3) {
                        0 => {
                            m.remove(k);
                        }
                        _ => {
                            m.insert(k.into(), json!(values[next(values.len())]));
                        }
                    }
                }
            }
            if case % 7 == 0 {
                new["metadata"]["annotations"]["example.com/big2"] = json!(big);
            }
            let full = validate_object_meta(&new, cm);
            seen_errors += usize::from(!full.is_empty());
            let update = validate_object_meta_update(&new, &old, cm);
            let msgs = |e: &[FieldError]| e.iter().map(FieldError::message).collect::<Vec<_>>();
            assert_eq!(msgs(&update), msgs(&full), "case {case}: {new} after {old}");
        }
        assert!(seen_errors > 300, "too few invalid cases: {seen_errors}");
    }

    #[test]
    fn names_follow_the_kind_rule() {
        let cm = lookup("", "v1", "configmaps").unwrap();
        let ok = json!({ "metadata": { "name": "app.config", "namespace": "default" } });
        assert!(validate_object_meta(&ok, cm).is_empty());
        let bad = json!({ "metadata": { "name": "App", "namespace": "default" } });
        let e = validate_object_meta(&bad, cm);
        assert_eq!(e.len(), 1);
        assert!(
            e[0].message().starts_with(
                "metadata.name: Invalid value: \"App\": a lowercase RFC 1123 subdomain"
            ),
            "{}",
            e[0].message()
        );
        let ns = lookup("", "v1", "namespaces").unwrap();
        assert_eq!(
            kinds(validate_object_meta(
                &json!({ "metadata": { "name": "a.b" } }),
                ns
            )),
            vec![("metadata.name".into(), FieldErrorType::Invalid)]
        );
        let role = lookup("rbac.authorization.k8s.io", "v1", "clusterroles").unwrap();
        assert!(validate_object_meta(
            &json!({ "metadata": { "name": "system:controller:x" } }),
            role
        )
        .is_empty());
        assert_eq!(
            kinds(validate_object_meta(&json!({ "metadata": {} }), cm)),
            vec![
                ("metadata.name".into(), FieldErrorType::Required),
                ("metadata.namespace".into(), FieldErrorType::Required)
            ]
        );
        assert_eq!(
            kinds(validate_object_meta(
                &json!({ "metadata": { "name": "x", "namespace": "default" } }),
                role
            )),
            vec![("metadata.namespace".into(), FieldErrorType::Forbidden)]
        );
    }

    #[test]
    fn labels_annotations_finalizers_owners() {
        let cm = lookup("", "v1", "configmaps").unwrap();
        let obj = json!({ "metadata": {
            "name": "x", "namespace": "default",
            "labels": { "app": "web", "bad key": "v", "k": "-bad-" },
            "annotations": { "Example.com/Key": "ok", "big": "x".repeat(ANNOTATIONS_MAX_BYTES) },
            "finalizers": ["example.com/f", "foo", "kubernetes"],
            "ownerReferences": [
                { "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": true },
                { "apiVersion": "", "kind": "ReplicaSet", "name": "b", "uid": "2", "controller": true }
            ]
        }});
        assert_eq!(
            kinds(validate_object_meta(&obj, cm)),
            vec![
                ("metadata.labels".into(), FieldErrorType::Invalid),
                ("metadata.labels".into(), FieldErrorType::Invalid),
                ("metadata.annotations".into(), FieldErrorType::TooLong),
                (
                    "metadata.ownerReferences.apiVersion".into(),
                    FieldErrorType::Invalid
                ),
                ("metadata.ownerReferences".into(), FieldErrorType::Invalid),
                ("metadata.finalizers[1]".into(), FieldErrorType::Invalid),
            ]
        );
    }

    #[test]
    fn update_keeps_identity() {
        let cm = lookup("", "v1", "configmaps").unwrap();
        let old = json!({ "metadata": { "name": "x", "namespace": "default", "uid": "1", "generation": 2, "deletionTimestamp": "2024-01-01T00:00:00Z" } });
        let new = json!({ "metadata": { "name": "x", "namespace": "default", "uid": "2", "generation": 1, "finalizers": ["example.com/a"] } });
        assert_eq!(
            kinds(validate_object_meta_update(&new, &old, cm)),
            vec![
                ("metadata.finalizers".into(), FieldErrorType::Forbidden),
                ("metadata.generation".into(), FieldErrorType::Invalid),
                ("metadata.uid".into(), FieldErrorType::Invalid),
                ("metadata.deletionTimestamp".into(), FieldErrorType::Invalid),
            ]
        );
    }

    #[test]
    fn selectors() {
        let sel = json!({ "matchLabels": { "app": "web" }, "matchExpressions": [
            { "key": "tier", "operator": "In", "values": ["a", "b"] },
            { "key": "old", "operator": "DoesNotExist" }
        ]});
        assert!(selector_matches(
            Some(&sel),
            Some(&json!({ "app": "web", "tier": "a" }))
        ));
        assert!(!selector_matches(
            Some(&sel),
            Some(&json!({ "app": "web", "tier": "c" }))
        ));
        assert!(!selector_matches(None, Some(&json!({ "app": "web" }))));
        assert!(selector_matches(Some(&json!({})), None));
        assert!(map_selector_matches(
            Some(&json!({ "a": "b" })),
            Some(&json!({ "a": "b", "c": "d" }))
        ));
        let bad = json!({ "matchExpressions": [{ "key": "k", "operator": "In" }, { "key": "k", "operator": "Is", "values": ["x"] }] });
        assert_eq!(
            kinds(validate_label_selector(&bad, "spec.selector")),
            vec![
                (
                    "spec.selector.matchExpressions[0].values".into(),
                    FieldErrorType::Required
                ),
                (
                    "spec.selector.matchExpressions[1].operator".into(),
                    FieldErrorType::Invalid
                ),
            ]
        );
    }
}
