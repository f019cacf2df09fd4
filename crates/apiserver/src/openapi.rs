//! OpenAPI v3 discovery: the index and one document per group-version.
//!
//! For now each document lists every path with its operations, the
//! `x-kubernetes-group-version-kind` extension and the query parameters, which
//! is what kubectl reads to learn that the server validates fields itself
//! (`fieldValidation`). Full schemas for `kubectl explain` and client-side
//! apply come with the OpenAPI issue.

use serde_json::{json, Map, Value};

use crate::resources::{self, ResourceInfo};

fn gv_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn hash(v: &Value) -> String {
    // FNV-1a over the document: stable across restarts, changes with content.
    let bytes = serde_json::to_vec(v).unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

fn param(name: &str, desc: &str) -> Value {
    json!({ "name": name, "in": "query", "description": desc, "schema": { "type": "string", "uniqueItems": true } })
}

fn write_params() -> Vec<Value> {
    vec![
        param("dryRun", "When present, indicates that modifications should not be persisted."),
        param("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes."),
        param("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn (default), Strict."),
    ]
}

fn op(info: &ResourceInfo, action: &str, params: Vec<Value>) -> Value {
    json!({
        "description": format!("{action} {}", info.kind),
        "operationId": format!("{action}{}", info.kind),
        "parameters": params,
        "responses": { "200": { "description": "OK" } },
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": { "group": info.group, "version": info.version, "kind": info.kind },
    })
}

/// The document for one group-version, if served.
pub fn group_version(group: &str, version: &str) -> Option<Value> {
    let mut paths = Map::new();
    let mut any = false;
    for info in resources::RESOURCES
        .iter()
        .filter(|r| r.group == group && r.version == version)
    {
        any = true;
        let base = format!("/{}/", gv_path(group, version));
        let (collection, item) = if info.namespaced {
            (
                format!("{base}namespaces/{{namespace}}/{}", info.plural),
                format!("{base}namespaces/{{namespace}}/{}/{{name}}", info.plural),
            )
        } else {
            (
                format!("{base}{}", info.plural),
                format!("{base}{}/{{name}}", info.plural),
            )
        };
        let mut coll = Map::new();
        if info.verbs.contains(&"list") {
            coll.insert("get".into(), op(info, "list", vec![]));
        }
        if info.verbs.contains(&"create") {
            coll.insert("post".into(), op(info, "post", write_params()));
        }
        if info.verbs.contains(&"deletecollection") {
            coll.insert("delete".into(), op(info, "deletecollection", vec![]));
        }
        paths.insert(collection, Value::Object(coll));
        let mut one = Map::new();
        if info.verbs.contains(&"get") {
            one.insert("get".into(), op(info, "get", vec![]));
            one.insert("put".into(), op(info, "put", write_params()));
            one.insert("patch".into(), op(info, "patch", write_params()));
            one.insert("delete".into(), op(info, "delete", vec![]));
        }
        if !one.is_empty() {
            paths.insert(item, Value::Object(one));
        }
    }
    any.then(|| {
        json!({
            "openapi": "3.0.0",
            "info": { "title": "Kubernetes", "version": "v1.37.0" },
            "paths": paths,
            "components": { "schemas": {} },
        })
    })
}

/// `/openapi/v3`: every group-version document with a content hash.
pub fn index() -> Value {
    let mut paths = Map::new();
    for (group, versions) in resources::groups() {
        for v in versions {
            if let Some(doc) = group_version(group, v) {
                let p = gv_path(group, v);
                paths.insert(
                    p.clone(),
                    json!({ "serverRelativeURL": format!("/openapi/v3/{p}?hash={}", hash(&doc)) }),
                );
            }
        }
    }
    json!({ "paths": paths })
}

/// Route `/openapi/{rest}` (rest without the leading `openapi/`).
pub fn serve(rest: &str) -> Option<Value> {
    let rest = rest.trim_end_matches('/');
    if rest == "v3" {
        return Some(index());
    }
    let gv = rest.strip_prefix("v3/")?;
    let parts: Vec<&str> = gv.split('/').collect();
    match parts.as_slice() {
        ["api", v] => group_version("", v),
        ["apis", g, v] => group_version(g, v),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patch_operations_carry_gvk_and_field_validation() {
        let doc = serve("v3/apis/apps/v1").unwrap();
        let p = &doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"]["patch"];
        assert_eq!(p["x-kubernetes-group-version-kind"]["kind"], "Deployment");
        assert!(p["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "fieldValidation"));
        let idx = index();
        assert!(idx["paths"]["api/v1"]["serverRelativeURL"]
            .as_str()
            .unwrap()
            .starts_with("/openapi/v3/api/v1?hash="));
        assert!(serve("v3/apis/nope/v1").is_none());
    }
}
