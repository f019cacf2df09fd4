//! CustomResourceDefinitions (`apiextensions.k8s.io/v1`): what makes a CRD's
//! resources servable, and the machinery behind serving them.
//!
//! The watch cache tells this module about every CRD it sees ([`observe`]),
//! in store order, so the set of served custom resources always matches the
//! CRDs the cache holds, and an object of a custom resource is never
//! decoded before its CRD. From the CRDs this module keeps a parsed
//! definition per CRD (schemas, subresources, printer columns) and publishes
//! the servable resources to [`crate::resources`]' dynamic overlay: a
//! resource is routable once its names are accepted, and listed by discovery
//! once the CRD is `Established`, as upstream's handler and discovery
//! controller decide.
//!
//! - [`definition`]: the CRD object itself: defaults, and parsing into a
//!   [`CrdDef`]; [`crd_validation`]: its validation.
//! - [`schema`], [`structural`] (with `openapi_rules`): a version's OpenAPI
//!   v3 schema and the rules it must follow.
//! - [`validate`], [`formats`], [`prune`], [`default`]: what the schema does
//!   to custom resources (upstream's order: prune, drop non-nullable nulls,
//!   default, then validate).
//! - [`jsonpath`]: paths of printer columns and selectable fields.
//! - [`controller`]: the in-process controllers that accept names, establish,
//!   and empty a deleted CRD's resources before it goes away.
//! - [`scale`]: the `scale` subresource of custom resources.

pub mod controller;
pub mod crd_validation;
pub mod default;
pub mod definition;
pub mod formats;
pub mod jsonpath;
mod openapi_rules;
pub mod prune;
pub mod published;
pub mod scale;
pub mod schema;
pub mod structural;
pub mod validate;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock};

use bytes::Bytes;
use serde_json::Value;

use crate::cache::Entry;
use crate::error::{ApiError, ApiResult};
use crate::registry::PatchType;
use crate::resources::{self, DynamicResource, ResourceInfo};

pub use definition::{CrdDef, VersionDef};

/// Where CRDs are stored.
pub const CRD_PREFIX: &str = "/registry/apiextensions.k8s.io/customresourcedefinitions/";
/// The finalizer that empties a deleted CRD's resources first.
pub const CLEANUP_FINALIZER: &str = "customresourcecleanup.apiextensions.k8s.io";

#[derive(Default)]
struct State {
    /// Parsed definitions by CRD name (`<plural>.<group>`).
    by_name: BTreeMap<String, Arc<CrdDef>>,
}

fn state() -> &'static RwLock<State> {
    static STATE: OnceLock<RwLock<State>> = OnceLock::new();
    STATE.get_or_init(Default::default)
}

fn changed() -> &'static tokio::sync::Notify {
    static CHANGED: OnceLock<tokio::sync::Notify> = OnceLock::new();
    CHANGED.get_or_init(tokio::sync::Notify::new)
}

/// Wait until a CRD changes (for the controllers).
pub async fn wait_for_change() {
    changed().notified().await
}

/// The cache saw a write (`Some(value)`) or a delete (`None`) of `key`; a no-op
/// unless `key` is a CRD's.
pub fn observe(key: &str, value: Option<&[u8]>) {
    let Some(name) = key.strip_prefix(CRD_PREFIX) else {
        return;
    };
    {
        let mut st = state().write().expect("crd state lock");
        match value.and_then(|v| serde_json::from_slice::<Value>(v).ok()) {
            Some(obj) => {
                st.by_name
                    .insert(name.to_string(), Arc::new(CrdDef::parse(&obj)));
            }
            None => {
                st.by_name.remove(name);
            }
        }
        publish(&st);
    }
    published::sync();
    changed().notify_one();
}

/// The cache (re)listed the store: these are all the CRDs there are.
pub fn observe_all<'a>(crds: impl Iterator<Item = (&'a str, &'a [u8])>) {
    {
        let mut st = state().write().expect("crd state lock");
        st.by_name.clear();
        for (key, value) in crds {
            let Some(name) = key.strip_prefix(CRD_PREFIX) else {
                continue;
            };
            if let Ok(obj) = serde_json::from_slice::<Value>(value) {
                st.by_name
                    .insert(name.to_string(), Arc::new(CrdDef::parse(&obj)));
            }
        }
        publish(&st);
    }
    published::sync();
    changed().notify_one();
}

/// Compare Kubernetes version names the way upstream sorts them: GA before
/// beta before alpha (higher numbers first), then other names alphabetically.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    fn parse(v: &str) -> Option<(u64, u8, u64)> {
        let rest = v.strip_prefix('v')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let major: u64 = rest[..digits].parse().ok()?;
        if major == 0 {
            return None;
        }
        let tail = &rest[digits..];
        if tail.is_empty() {
            return Some((major, 2, 0));
        }
        for (word, rank) in [("beta", 1u8), ("alpha", 0u8)] {
            if let Some(n) = tail.strip_prefix(word) {
                if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0') {
                    return Some((major, rank, n.parse().ok()?));
                }
            }
        }
        None
    }
    use std::cmp::Ordering;
    match (parse(a), parse(b)) {
        (Some((ma, ra, na)), Some((mb, rb, nb))) => rb.cmp(&ra).then(mb.cmp(&ma)).then(nb.cmp(&na)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// Push the servable resources of every CRD to the resources overlay.
fn publish(st: &State) {
    let mut served = Vec::new();
    let mut discoverable = Vec::new();
    let mut groups: BTreeMap<&'static str, Vec<&'static str>> = BTreeMap::new();
    for def in st.by_name.values() {
        if !(def.names_accepted || def.established) {
            continue;
        }
        // The storage version first: it is the one objects are decoded as.
        let mut versions: Vec<&Arc<VersionDef>> =
            def.versions.iter().filter(|v| v.served).collect();
        versions.sort_by_key(|v| !v.storage);
        for v in versions {
            let info = resources::intern(&DynamicResource {
                group: def.group.clone(),
                version: v.name.clone(),
                kind: def.names.kind.clone(),
                plural: def.names.plural.clone(),
                singular: def.names.singular.clone(),
                namespaced: def.namespaced,
                short_names: def.names.short_names.clone(),
                categories: def.names.categories.clone(),
                terminating: def.terminating,
                status: v.status,
                scale: v.scale.is_some(),
            });
            served.push(info);
            if def.established {
                discoverable.push(info);
                let vs = groups.entry(info.group).or_default();
                if !vs.contains(&info.version) {
                    vs.push(info.version);
                }
            }
        }
    }
    discoverable.sort_by(|a, b| a.plural.cmp(b.plural));
    let groups = groups
        .into_iter()
        .map(|(g, mut vs)| {
            vs.sort_by(|a, b| compare_versions(a, b));
            (g, vs)
        })
        .collect();
    resources::set_dynamic(served, discoverable, groups);
}

/// Every CRD's definition, by name.
pub fn definitions() -> Vec<Arc<CrdDef>> {
    state()
        .read()
        .expect("crd state lock")
        .by_name
        .values()
        .cloned()
        .collect()
}

/// The definition behind a custom resource, if it is one.
pub fn definition_of(info: &ResourceInfo) -> Option<Arc<CrdDef>> {
    if resources::is_builtin(info) {
        return None;
    }
    let name = format!("{}.{}", info.plural, info.group);
    state()
        .read()
        .expect("crd state lock")
        .by_name
        .get(&name)
        .cloned()
}

/// The definition and the version a custom resource is served at.
pub fn version_of(info: &ResourceInfo) -> Option<(Arc<CrdDef>, Arc<VersionDef>)> {
    let def = definition_of(info)?;
    let v = def.version(info.version)?;
    Some((def, v))
}

/// Whether `info` is a custom resource.
pub fn is_custom(info: &ResourceInfo) -> bool {
    !resources::is_builtin(info)
}

/// Convert a custom resource to `version` of its definition. With conversion
/// `None` (what is supported) only `apiVersion` changes; then, as upstream's
/// schema-coercing converter does, fields the target version's schema does
/// not declare are pruned.
fn convert(def: &CrdDef, mut obj: Value, version: &str) -> Value {
    let want = format!("{}/{version}", def.group);
    if obj.get("apiVersion").and_then(Value::as_str) == Some(want.as_str()) {
        return obj;
    }
    if let Some(m) = obj.as_object_mut() {
        m.insert("apiVersion".into(), Value::String(want));
    }
    if let Some(s) = def.version(version).and_then(|v| v.schema.clone()) {
        prune::prune(&mut obj, &s);
        prune::prune_nulls(&mut obj, Some(&s));
    }
    obj
}

/// A custom resource's object as served at `info`'s version.
pub fn to_version(info: &ResourceInfo, obj: Value) -> Value {
    match definition_of(info) {
        Some(def) => convert(&def, obj, info.version),
        None => obj,
    }
}

/// What upstream's storage decoder does to a custom resource read from the
/// store: prune, drop non-nullable nulls and default with the schema of the
/// version it was stored at, so defaults added to a CRD later show on
/// objects written before (until they are written again, defaults are not
/// stored).
pub fn decode_stored(info: &ResourceInfo, obj: &mut Value) {
    if resources::is_builtin(info) {
        return;
    }
    let Some(def) = definition_of(info) else {
        return;
    };
    let version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|av| av.rsplit_once('/'))
        .map(|(_, v)| v.to_string())
        .unwrap_or_else(|| def.storage_version.clone());
    if let Some(v) = def.version(&version) {
        if let Some(s) = &v.schema {
            prune::prune(obj, s);
            prune::prune_nulls(obj, Some(s));
            default::apply(obj, s);
        }
    }
}

/// A cache entry as served at `info`'s version: the same entry when it
/// already is (the common case: one version, or the storage version).
pub fn entry_at_version(info: &ResourceInfo, e: Arc<Entry>) -> Arc<Entry> {
    if !is_custom(info) {
        return e;
    }
    // Stored objects start with their apiVersion (keys are sorted, or kept
    // in the order clients send them); check before parsing.
    let prefix = format!("{{\"apiVersion\":\"{}\"", info.api_version());
    if e.raw.starts_with(prefix.as_bytes()) {
        return e;
    }
    let value = e.value();
    if value.get("apiVersion").and_then(Value::as_str) == Some(info.api_version().as_str()) {
        return e;
    }
    let v = to_version(info, value);
    match serde_json::to_vec(&v) {
        Ok(raw) => Arc::new(Entry {
            key: e.key.clone(),
            info: e.info,
            rev: e.rev,
            raw: Bytes::from(raw),
            rv_span: None,
            namespace: e.namespace.clone(),
            name: e.name.clone(),
            labels: e.labels.clone(),
            fields: e.fields.clone(),
            deleting: e.deleting,
        }),
        Err(_) => e,
    }
}

/// The form of a custom resource written to the store: its storage version
/// (`None`: `obj` already is).
pub fn for_storage(info: &ResourceInfo, obj: &Value) -> Option<Value> {
    let def = definition_of(info)?;
    let want = format!("{}/{}", def.group, def.storage_version);
    if obj.get("apiVersion").and_then(Value::as_str) == Some(want.as_str()) {
        return None;
    }
    Some(convert(&def, obj.clone(), &def.storage_version))
}

/// The warning every request to a deprecated version gets: the version's own
/// `deprecationWarning`, or upstream's default naming the newest served
/// version that is not deprecated.
pub fn deprecation_warning(info: &ResourceInfo) -> Option<String> {
    let (def, v) = version_of(info)?;
    if !v.deprecated {
        return None;
    }
    if let Some(w) = &v.deprecation_warning {
        return Some(w.clone());
    }
    let mut msg = format!("{}/{} {} is deprecated", def.group, v.name, def.names.kind);
    let mut newer: Vec<&str> = def
        .versions
        .iter()
        .filter(|o| {
            o.served
                && !o.deprecated
                && compare_versions(&o.name, &v.name) == std::cmp::Ordering::Less
        })
        .map(|o| o.name.as_str())
        .collect();
    newer.sort_by(|a, b| compare_versions(a, b));
    if let Some(best) = newer.first() {
        msg.push_str(&format!("; use {}/{best} {}", def.group, def.names.kind));
    }
    Some(msg)
}

/// Upstream refuses creates while a CRD is being deleted (405), though reads,
/// updates and deletes still work.
pub fn refuse_create_while_terminating(info: &ResourceInfo) -> ApiResult<()> {
    if is_custom(info) && !info.verbs.contains(&"create") {
        let mut e = ApiError::method_not_allowed(
            "create not allowed while custom resource definition is terminating",
        );
        e.details = Some(serde_json::json!({ "group": info.group, "kind": info.plural }));
        return Err(e);
    }
    Ok(())
}

/// Custom resources have no strategic merge patch (no patch strategies in
/// their schemas): upstream answers 415.
pub fn check_patch_type(info: &ResourceInfo, pt: PatchType) -> ApiResult<()> {
    if is_custom(info) && pt == PatchType::Strategic {
        let mut e = ApiError::unsupported_media_type("application/strategic-merge-patch+json");
        e.message = "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into();
        return Err(e);
    }
    Ok(())
}

/// One served custom resource version, for OpenAPI documents.
#[derive(Clone, Debug)]
pub struct OpenApiResource {
    /// The resource as served.
    pub info: &'static ResourceInfo,
    /// The version's `openAPIV3Schema`, as written in the CRD.
    pub schema: Option<Value>,
}

/// The group-versions of established CRDs, each with its resources and
/// their schemas, for the OpenAPI documents (`/openapi/v3`).
pub fn openapi_group_versions() -> Vec<((String, String), Vec<OpenApiResource>)> {
    let mut out: BTreeMap<(String, String), Vec<OpenApiResource>> = BTreeMap::new();
    for def in definitions() {
        if !def.established {
            continue;
        }
        for v in def.versions.iter().filter(|v| v.served) {
            let Some(info) = resources::lookup(&def.group, &v.name, &def.names.plural) else {
                continue;
            };
            out.entry((def.group.clone(), v.name.clone()))
                .or_default()
                .push(OpenApiResource {
                    info,
                    schema: v.raw_schema.clone(),
                });
        }
    }
    out.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversion_sets_api_version_and_prunes_for_the_target() {
        let mut crd = super::definition::tests::prepared(super::definition::tests::crontab());
        crd["status"]["conditions"] =
            serde_json::json!([{"type": "Established", "status": "True"}]);
        let def = CrdDef::parse(&crd);
        // v1beta1 preserves anything; v1 declares spec.replicas and spec.cronSpec.
        let obj = serde_json::json!({"apiVersion": "stable.example.com/v1beta1", "kind": "CronTab",
            "metadata": {"name": "a"}, "spec": {"replicas": 1, "extra": true}});
        let v1 = convert(&def, obj.clone(), "v1");
        assert_eq!(v1["apiVersion"], "stable.example.com/v1");
        assert_eq!(v1["spec"], serde_json::json!({"replicas": 1}));
        let back = convert(&def, v1.clone(), "v1beta1");
        assert_eq!(back["apiVersion"], "stable.example.com/v1beta1");
        assert_eq!(convert(&def, obj.clone(), "v1beta1"), obj);
    }

    #[test]
    fn kube_aware_version_order() {
        let mut vs = vec![
            "v1alpha1",
            "foo",
            "v2",
            "v1beta1",
            "v1",
            "v10",
            "v11alpha2",
            "v1beta2",
            "bar",
        ];
        vs.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(
            vs,
            vec![
                "v10",
                "v2",
                "v1",
                "v1beta2",
                "v1beta1",
                "v11alpha2",
                "v1alpha1",
                "bar",
                "foo"
            ]
        );
    }
}
