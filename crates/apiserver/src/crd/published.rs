//! Publishing established CRDs in the OpenAPI documents (`/openapi/v3` and
//! `/openapi/v2`), kept in step with every CRD change, so `kubectl explain`
//! and client generators see custom resources as upstream publishes them.

use std::collections::BTreeSet;
use std::sync::Mutex;

use serde_json::{json, Map, Value};

use crate::openapi::{ExtraGroupVersion, Registry};
use crate::schema::{self, REF_PREFIX};

/// Group-versions this module has published, to withdraw those that go away.
static PUBLISHED: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());

/// Upstream's definition name of a custom kind: the group reversed, then the
/// version and kind, e.g. `com.example.stable.v1.CronTab`.
pub fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let rev: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", rev.join("."))
}

/// The published schema of one version: the CRD's schema with the standard
/// `apiVersion`, `kind` and `metadata` properties and the GVK extension.
fn kind_definition(group: &str, version: &str, kind: &str, schema: Option<&Value>) -> Value {
    let mut def = schema.cloned().unwrap_or_else(
        || json!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true }),
    );
    let Some(obj) = def.as_object_mut() else {
        return def;
    };
    let props = obj
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(p) = props.as_object_mut() {
        p.insert("apiVersion".into(), json!({
            "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources",
            "type": "string",
        }));
        p.insert("kind".into(), json!({
            "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            "type": "string",
        }));
        p.insert("metadata".into(), json!({
            "allOf": [{ "$ref": format!("{REF_PREFIX}io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta") }],
            "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
        }));
    }
    obj.insert(
        "x-kubernetes-group-version-kind".into(),
        json!([{ "group": group, "version": version, "kind": kind }]),
    );
    def
}

/// Bring the OpenAPI documents in line with the established CRDs.
pub fn sync() {
    let registry = Registry::global();
    let mut published = PUBLISHED.lock().unwrap_or_else(|e| e.into_inner());
    let mut now = BTreeSet::new();
    for ((group, version), resources) in super::openapi_group_versions() {
        let mut defs = Map::new();
        let mut served = Vec::new();
        for r in resources {
            let kind = r.info.kind;
            let name = definition_name(&group, &version, kind);
            defs.insert(
                name.clone(),
                kind_definition(&group, &version, kind, r.schema.as_ref()),
            );
            let mut list = schema::list_definition(&name, kind, r.info.plural, &defs);
            if let Some(l) = list.as_object_mut() {
                l.insert(
                    "x-kubernetes-group-version-kind".into(),
                    json!([{ "group": group, "version": version, "kind": format!("{kind}List") }]),
                );
            }
            defs.insert(format!("{name}List"), list);
            served.push((*r.info, name));
        }
        let gv = ExtraGroupVersion {
            group: group.clone(),
            version: version.clone(),
            resources: served,
            defs,
        };
        match registry.set_group_version(gv) {
            Ok(()) => {
                now.insert((group, version));
            }
            Err(e) => tracing::warn!(error = %e, "not publishing a CRD group-version"),
        }
    }
    for (group, version) in published.difference(&now) {
        registry.remove_group_version(group, version);
    }
    *published = now;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_definitions_look_like_upstreams() {
        assert_eq!(
            definition_name("stable.example.com", "v1", "CronTab"),
            "com.example.stable.v1.CronTab"
        );
        let d = kind_definition(
            "stable.example.com",
            "v1",
            "CronTab",
            Some(&json!({"type": "object", "properties": {"spec": {"type": "object"}}})),
        );
        assert_eq!(d["properties"]["spec"]["type"], "object");
        assert_eq!(d["properties"]["kind"]["type"], "string");
        assert_eq!(d["x-kubernetes-group-version-kind"][0]["kind"], "CronTab");
    }
}
