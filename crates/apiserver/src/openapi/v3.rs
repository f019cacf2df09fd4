//! OpenAPI v3 group-version documents: the paths of [`ops`] with request and
//! response bodies referring to `components.schemas`, which holds every
//! definition those reach (and nothing else), so each document is
//! self-contained as kubectl and the client generators expect.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::ops::{self, Body, In, Op, Param, PathItem, Served};
use crate::schema::REF_PREFIX;

/// Where definitions are looked up: the built-in ones, and optionally more
/// (a custom resource's), which take precedence.
#[derive(Clone, Copy)]
pub struct Defs<'a> {
    pub builtin: &'a Map<String, Value>,
    pub extra: Option<&'a Map<String, Value>>,
}

impl<'a> Defs<'a> {
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.get_key_value(name).map(|(_, v)| v)
    }

    /// The definition and its name as the owning map holds it.
    pub fn get_key_value(&self, name: &str) -> Option<(&'a str, &'a Value)> {
        self.extra
            .and_then(|e| e.get_key_value(name))
            .or_else(|| self.builtin.get_key_value(name))
            .map(|(k, v)| (k.as_str(), v))
    }
}

/// Every `$ref` target (definition name) inside `v`.
fn refs<'v>(v: &'v Value, out: &mut Vec<&'v str>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    if let Some(name) = x.as_str().and_then(|r| r.strip_prefix(REF_PREFIX)) {
                        out.push(name);
                    }
                } else {
                    refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

/// The definitions reachable from `roots`, by name. Unknown names are
/// skipped (a test checks none are).
pub fn closure<'a>(
    roots: impl IntoIterator<Item = &'a str>,
    defs: Defs<'a>,
) -> BTreeMap<&'a str, &'a Value> {
    let mut out = BTreeMap::new();
    let mut todo: Vec<&'a str> = roots.into_iter().collect();
    while let Some(name) = todo.pop() {
        if out.contains_key(name) {
            continue;
        }
        let Some(def) = defs.get(name) else { continue };
        out.insert(name, def);
        refs(def, &mut todo);
    }
    out
}

fn reference(def: &str) -> Value {
    json!({ "$ref": format!("{REF_PREFIX}{def}") })
}

fn param(p: &Param) -> Value {
    let mut v = json!({
        "name": p.name,
        "in": if p.location == In::Path { "path" } else { "query" },
        "description": p.description,
        "schema": { "type": p.ty, "uniqueItems": true },
    });
    if p.required {
        v["required"] = json!(true);
    }
    v
}

fn content(types: &[&str], schema: &Value) -> Value {
    Value::Object(
        types
            .iter()
            .map(|t| (t.to_string(), json!({ "schema": schema })))
            .collect(),
    )
}

fn operation(op: &Op, tag: &str) -> Value {
    let mut o = Map::new();
    o.insert("tags".into(), json!([tag]));
    o.insert("description".into(), json!(op.description));
    o.insert("operationId".into(), json!(op.operation_id));
    if !op.params.is_empty() {
        o.insert(
            "parameters".into(),
            op.params.iter().map(param).collect::<Vec<_>>().into(),
        );
    }
    if let Some(body) = &op.body {
        let (types, def, required): (&[&str], &str, bool) = match body {
            Body::Object(d) => (
                &[
                    "application/json",
                    "application/yaml",
                    "application/vnd.kubernetes.protobuf",
                ],
                d,
                true,
            ),
            Body::Patch { strategic } => (ops::patch_types(*strategic), ops::PATCH, true),
            Body::Delete => (&["application/json"], ops::DELETE_OPTIONS, false),
        };
        let mut rb = json!({ "content": content(types, &reference(def)) });
        if required {
            rb["required"] = json!(true);
        }
        o.insert("requestBody".into(), rb);
    }
    let response_types: &[&str] = if op.watchable {
        &["application/json", "application/json;stream=watch"]
    } else {
        &["application/json"]
    };
    let mut responses = Map::new();
    for code in op.codes {
        responses.insert(
            code.to_string(),
            json!({
                "description": super::code_description(*code),
                "content": content(response_types, &reference(&op.response)),
            }),
        );
    }
    responses.insert("401".into(), json!({ "description": "Unauthorized" }));
    o.insert("responses".into(), responses.into());
    if !op.action.is_empty() {
        o.insert("x-kubernetes-action".into(), json!(op.action));
        let (g, v, k) = &op.gvk;
        o.insert(
            "x-kubernetes-group-version-kind".into(),
            json!({ "group": g, "version": v, "kind": k }),
        );
    }
    o.into()
}

/// The `paths` object of a document.
pub fn paths(items: &[PathItem], tag: &str) -> Map<String, Value> {
    items
        .iter()
        .map(|p| {
            let mut item = Map::new();
            for op in &p.ops {
                item.insert(op.method.into(), operation(op, tag));
            }
            if !p.params.is_empty() {
                item.insert(
                    "parameters".into(),
                    p.params.iter().map(param).collect::<Vec<_>>().into(),
                );
            }
            (p.path.clone(), Value::Object(item))
        })
        .collect()
}

#[derive(Serialize)]
struct Document<'a> {
    openapi: &'static str,
    info: Value,
    paths: Map<String, Value>,
    components: Components<'a>,
}

#[derive(Serialize)]
struct Components<'a> {
    /// Borrowed from the generated definitions: serialized in place, never copied.
    schemas: BTreeMap<&'a str, &'a Value>,
    #[serde(rename = "securitySchemes")]
    security_schemes: Value,
}

/// The serialized document of one group-version.
pub fn document(group: &str, version: &str, served: &[Served], defs: Defs) -> Vec<u8> {
    let items = ops::group_version(group, version, served);
    let mut roots = ops::referenced(&items);
    // Upstream's documents carry the watch event of the group-version too.
    roots.push(ops::WATCH_EVENT);
    let doc = Document {
        openapi: "3.0.0",
        info: super::info(),
        paths: paths(&items, &ops::tag(group, version)),
        components: Components {
            schemas: closure(roots, defs),
            security_schemes: json!({ "BearerToken": super::bearer_token() }),
        },
    };
    serde_json::to_vec(&doc).expect("a document of JSON values serializes")
}
