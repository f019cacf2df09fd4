//! The Swagger 2.0 document (`/openapi/v2`): every group-version's paths in
//! one document, and the same definitions as the v3 documents converted to
//! Swagger's schema dialect.

use std::collections::BTreeMap;

use serde::{Serialize, Serializer};
use serde_json::{json, Map, Value};

use super::ops::{self, Body, In, Op, Param, PathItem, Served};
use super::v3::{closure, Defs};
use crate::schema::REF_PREFIX;

const V2_REF_PREFIX: &str = "#/definitions/";

/// One group-version's resources and where their definitions live.
pub struct GroupVersion<'a> {
    pub group: &'a str,
    pub version: &'a str,
    pub served: Vec<Served<'a>>,
    pub defs: Defs<'a>,
}

/// A schema in Swagger 2.0 form. Differences from OpenAPI v3 handled here:
/// references point into `#/definitions/`; a reference with siblings is a
/// `$ref` next to them, not an `allOf`; `nullable`, `oneOf`, `anyOf` and
/// `not` do not exist; an int-or-string has to state a type.
pub fn schema(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            // `allOf: [{$ref}]` is how v3 puts a description on a reference.
            if let Some(Value::Array(all)) = m.get("allOf") {
                if let [only] = all.as_slice() {
                    if let Some(r) = only.get("$ref") {
                        out.insert("$ref".into(), schema_ref(r));
                    }
                }
            }
            for (k, x) in m {
                match k.as_str() {
                    "$ref" => {
                        out.insert(k.clone(), schema_ref(x));
                    }
                    "allOf" if out.contains_key("$ref") => {}
                    "nullable" | "oneOf" | "anyOf" | "not" => {}
                    // Maps of schemas: names are not schemas.
                    "properties" | "definitions" => {
                        let props = x
                            .as_object()
                            .map(|p| p.iter().map(|(n, s)| (n.clone(), schema(s))).collect())
                            .unwrap_or_default();
                        out.insert(k.clone(), Value::Object(props));
                    }
                    "items" | "additionalProperties" | "allOf" => {
                        out.insert(k.clone(), schema(x));
                    }
                    // Extensions, defaults, enums and examples are data.
                    _ => {
                        out.insert(k.clone(), x.clone());
                    }
                }
            }
            let int_or_string = m
                .get("x-kubernetes-int-or-string")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            if int_or_string && !out.contains_key("type") && !out.contains_key("$ref") {
                out.insert("type".into(), json!("string"));
                out.insert("format".into(), json!("int-or-string"));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(schema).collect()),
        other => other.clone(),
    }
}

fn schema_ref(r: &Value) -> Value {
    match r.as_str().and_then(|s| s.strip_prefix(REF_PREFIX)) {
        Some(name) => json!(format!("{V2_REF_PREFIX}{name}")),
        None => r.clone(),
    }
}

fn reference(def: &str) -> Value {
    json!({ "$ref": format!("{V2_REF_PREFIX}{def}") })
}

fn param(p: &Param) -> Value {
    let mut v = json!({
        "name": p.name,
        "in": if p.location == In::Path { "path" } else { "query" },
        "description": p.description,
        "type": p.ty,
        "uniqueItems": true,
    });
    if p.required {
        v["required"] = json!(true);
    }
    v
}

fn operation(op: &Op, tag: &str) -> Value {
    let mut o = Map::new();
    o.insert("tags".into(), json!([tag]));
    o.insert("description".into(), json!(op.description));
    o.insert("operationId".into(), json!(op.operation_id));
    o.insert("schemes".into(), json!(["https"]));
    let consumes: Vec<&str> = match op.body {
        Some(Body::Patch { strategic }) => ops::patch_types(strategic).to_vec(),
        _ => vec!["*/*"],
    };
    o.insert("consumes".into(), json!(consumes));
    let produces: &[&str] = if op.watchable {
        &["application/json", "application/json;stream=watch"]
    } else {
        &["application/json"]
    };
    o.insert("produces".into(), json!(produces));
    let mut params: Vec<Value> = Vec::new();
    if let Some(body) = &op.body {
        let (def, required) = match body {
            Body::Object(d) => (d.as_str(), true),
            Body::Patch { .. } => (ops::PATCH, true),
            Body::Delete => (ops::DELETE_OPTIONS, false),
        };
        let mut b = json!({ "name": "body", "in": "body", "schema": reference(def) });
        if required {
            b["required"] = json!(true);
        }
        params.push(b);
    }
    params.extend(op.params.iter().map(param));
    if !params.is_empty() {
        o.insert("parameters".into(), params.into());
    }
    let mut responses = Map::new();
    for code in op.codes {
        responses.insert(
            code.to_string(),
            json!({ "description": super::code_description(*code), "schema": reference(&op.response) }),
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

fn paths(items: &[PathItem], tag: &str, out: &mut Map<String, Value>) {
    for p in items {
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
        out.insert(p.path.clone(), Value::Object(item));
    }
}

/// The Swagger 2.0 document, with its definitions still in v3 form: each is
/// converted when written, one at a time, so the whole converted document
/// never exists in memory.
pub struct Document<'a> {
    /// Everything but the definitions: `swagger`, `info`, `paths`, security.
    pub head: Map<String, Value>,
    pub definitions: BTreeMap<&'a str, &'a Value>,
}

/// Serializes a v3 schema as its v2 form.
struct Converted<'a>(&'a Value);

impl Serialize for Converted<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        schema(self.0).serialize(s)
    }
}

impl Document<'_> {
    /// The JSON form.
    pub fn to_json(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Out<'a> {
            #[serde(flatten)]
            head: &'a Map<String, Value>,
            definitions: BTreeMap<&'a str, Converted<'a>>,
        }
        let out = Out {
            head: &self.head,
            definitions: self
                .definitions
                .iter()
                .map(|(k, v)| (*k, Converted(v)))
                .collect(),
        };
        serde_json::to_vec(&out).expect("a document of JSON values serializes")
    }
}

/// The whole Swagger 2.0 document.
pub fn document<'a>(gvs: &[GroupVersion<'a>]) -> Document<'a> {
    let mut all_paths = Map::new();
    let mut definitions = BTreeMap::new();
    for gv in gvs {
        let items = ops::group_version(gv.group, gv.version, &gv.served);
        paths(&items, &ops::tag(gv.group, gv.version), &mut all_paths);
        let mut roots = ops::referenced(&items);
        roots.push(ops::WATCH_EVENT);
        // Keys borrowed from the definitions' owner, not from `items`.
        for name in closure(roots, gv.defs).into_keys() {
            if let Some((key, def)) = gv.defs.get_key_value(name) {
                definitions.entry(key).or_insert(def);
            }
        }
    }
    let head = json!({
        "swagger": "2.0",
        "info": super::info(),
        "paths": all_paths,
        "securityDefinitions": { "BearerToken": super::bearer_token() },
        "security": [{ "BearerToken": [] }],
    });
    let Value::Object(head) = head else {
        unreachable!("an object literal")
    };
    Document { head, definitions }
}
