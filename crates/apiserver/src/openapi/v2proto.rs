//! The Swagger 2.0 document in protobuf (gnostic's `openapi.v2.Document`),
//! which is the only form client-go's `OpenAPISchema()` asks for and
//! decodes (`application/com.github.proto-openapi.spec.v2@v1.0+protobuf`);
//! kubectl uses it for `explain --output=plaintext-openapiv2`.
//!
//! Field numbers are those of gnostic's `OpenAPIv2.proto`. Values gnostic
//! keeps as `Any` (extensions, defaults, enums, examples) carry their YAML
//! text in `Any.yaml`; JSON is valid YAML, so the JSON text is written.

use serde_json::{Map, Value};

/// A protobuf message being written.
#[derive(Default)]
struct Msg(Vec<u8>);

impl Msg {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn key(&mut self, field: u32, wire: u8) {
        self.varint(((field as u64) << 3) | wire as u64);
    }

    fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.0.extend_from_slice(b);
    }

    fn string(&mut self, field: u32, s: &str) {
        if !s.is_empty() {
            self.bytes(field, s.as_bytes());
        }
    }

    fn bool(&mut self, field: u32, b: bool) {
        if b {
            self.key(field, 0);
            self.varint(1);
        }
    }

    fn int64(&mut self, field: u32, v: i64) {
        if v != 0 {
            self.key(field, 0);
            self.varint(v as u64);
        }
    }

    fn double(&mut self, field: u32, v: f64) {
        if v != 0.0 {
            self.key(field, 1);
            self.0.extend_from_slice(&v.to_le_bytes());
        }
    }

    /// A nested message, written even when empty (presence matters for
    /// oneofs and sub-messages).
    fn message(&mut self, field: u32, f: impl FnOnce(&mut Msg)) {
        let mut m = Msg::default();
        f(&mut m);
        self.bytes(field, &m.0);
    }

    fn str_field(&mut self, field: u32, v: Option<&Value>) {
        if let Some(s) = v.and_then(Value::as_str) {
            self.string(field, s);
        }
    }

    fn strings(&mut self, field: u32, v: Option<&Value>) {
        for s in v.and_then(Value::as_array).into_iter().flatten() {
            if let Some(s) = s.as_str() {
                self.bytes(field, s.as_bytes());
            }
        }
    }

    /// gnostic `Any` with its YAML text.
    fn any(&mut self, field: u32, v: &Value) {
        let text = serde_json::to_string(v).unwrap_or_default();
        self.message(field, |a| a.string(2, &text));
    }

    /// `repeated NamedAny vendor_extension`: every `x-` key of `m`.
    fn extensions(&mut self, field: u32, m: &Map<String, Value>) {
        for (k, v) in m.iter().filter(|(k, _)| k.starts_with("x-")) {
            self.message(field, |n| {
                n.string(1, k);
                n.any(2, v);
            });
        }
    }
}

fn schema(m: &mut Msg, s: &Value) {
    let Some(o) = s.as_object() else { return };
    m.str_field(1, o.get("$ref"));
    m.str_field(2, o.get("format"));
    m.str_field(3, o.get("title"));
    m.str_field(4, o.get("description"));
    if let Some(d) = o.get("default") {
        m.any(5, d);
    }
    let num = |k: &str| o.get(k).and_then(Value::as_f64);
    let int = |k: &str| o.get(k).and_then(Value::as_i64);
    let flag = |k: &str| o.get(k).and_then(Value::as_bool).unwrap_or(false);
    if let Some(v) = num("multipleOf") {
        m.double(6, v);
    }
    if let Some(v) = num("maximum") {
        m.double(7, v);
    }
    m.bool(8, flag("exclusiveMaximum"));
    if let Some(v) = num("minimum") {
        m.double(9, v);
    }
    m.bool(10, flag("exclusiveMinimum"));
    for (field, key) in [
        (11, "maxLength"),
        (12, "minLength"),
        (14, "maxItems"),
        (15, "minItems"),
        (17, "maxProperties"),
        (18, "minProperties"),
    ] {
        if let Some(v) = int(key) {
            m.int64(field, v);
        }
    }
    m.str_field(13, o.get("pattern"));
    m.bool(16, flag("uniqueItems"));
    m.strings(19, o.get("required"));
    for e in o
        .get("enum")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.any(20, e);
    }
    match o.get("additionalProperties") {
        Some(Value::Bool(b)) => m.message(21, |a| {
            // A oneof member is present even when false.
            a.key(2, 0);
            a.varint(*b as u64);
        }),
        Some(v @ Value::Object(_)) => m.message(21, |a| a.message(1, |x| schema(x, v))),
        _ => {}
    }
    match o.get("type") {
        Some(Value::String(t)) => m.message(22, |ti| ti.string(1, t)),
        Some(v @ Value::Array(_)) => m.message(22, |ti| ti.strings(1, Some(v))),
        _ => {}
    }
    match o.get("items") {
        Some(Value::Array(items)) => m.message(23, |it| {
            for i in items {
                it.message(1, |x| schema(x, i));
            }
        }),
        Some(v @ Value::Object(_)) => m.message(23, |it| it.message(1, |x| schema(x, v))),
        _ => {}
    }
    for a in o
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(24, |x| schema(x, a));
    }
    if let Some(props) = o.get("properties").and_then(Value::as_object) {
        m.message(25, |p| named_schemas(p, props));
    }
    m.bool(27, flag("readOnly"));
    if let Some(e) = o.get("example") {
        m.any(30, e);
    }
    m.extensions(31, o);
}

/// `repeated NamedSchema additional_properties = 1` (Properties, Definitions).
fn named_schemas(m: &mut Msg, map: &Map<String, Value>) {
    for (name, s) in map {
        m.message(1, |n| {
            n.string(1, name);
            n.message(2, |x| schema(x, s));
        });
    }
}

fn parameter(m: &mut Msg, p: &Value) {
    let get = |k: &str| p.get(k);
    let required = get("required").and_then(Value::as_bool).unwrap_or(false);
    // ParametersItem.parameter(1) -> Parameter
    m.message(1, |param| match get("in").and_then(Value::as_str) {
        Some("body") => param.message(1, |b| {
            b.str_field(1, get("description"));
            b.str_field(2, get("name"));
            b.str_field(3, get("in"));
            b.bool(4, required);
            if let Some(s) = get("schema") {
                b.message(5, |x| schema(x, s));
            }
        }),
        location => param.message(2, |nb| {
            // NonBodyParameter: query(3) or path(4) sub-schema.
            let (which, type_field, unique_field) = if location == Some("path") {
                (4, 5, 19)
            } else {
                (3, 6, 20)
            };
            nb.message(which, |q| {
                q.bool(1, required);
                q.str_field(2, get("in"));
                q.str_field(3, get("description"));
                q.str_field(4, get("name"));
                q.str_field(type_field, get("type"));
                q.bool(
                    unique_field,
                    get("uniqueItems").and_then(Value::as_bool).unwrap_or(false),
                );
            });
        }),
    });
}

fn operation(m: &mut Msg, op: &Map<String, Value>) {
    m.strings(1, op.get("tags"));
    m.str_field(3, op.get("description"));
    m.str_field(5, op.get("operationId"));
    m.strings(6, op.get("produces"));
    m.strings(7, op.get("consumes"));
    for p in op
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(8, |pi| parameter(pi, p));
    }
    if let Some(responses) = op.get("responses").and_then(Value::as_object) {
        m.message(9, |rs| {
            for (code, r) in responses {
                rs.message(1, |named| {
                    named.string(1, code);
                    // ResponseValue.response(1) -> Response
                    named.message(2, |rv| {
                        rv.message(1, |resp| {
                            resp.str_field(1, r.get("description"));
                            if let Some(s) = r.get("schema") {
                                // SchemaItem.schema(1)
                                resp.message(2, |si| si.message(1, |x| schema(x, s)));
                            }
                        })
                    });
                });
            }
        });
    }
    m.strings(10, op.get("schemes"));
    m.extensions(13, op);
}

fn path_item(m: &mut Msg, item: &Map<String, Value>) {
    for (field, method) in [
        (2, "get"),
        (3, "put"),
        (4, "post"),
        (5, "delete"),
        (8, "patch"),
    ] {
        if let Some(op) = item.get(method).and_then(Value::as_object) {
            m.message(field, |o| operation(o, op));
        }
    }
    for p in item
        .get("parameters")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        m.message(9, |pi| parameter(pi, p));
    }
    m.extensions(10, item);
}

/// Encode a Swagger 2.0 document, converting each definition as it is
/// written.
pub fn encode(document: &super::v2::Document) -> Vec<u8> {
    let doc = &document.head;
    let mut m = Msg::default();
    m.str_field(1, doc.get("swagger"));
    if let Some(info) = doc.get("info") {
        m.message(2, |i| {
            i.str_field(1, info.get("title"));
            i.str_field(2, info.get("version"));
        });
    }
    if let Some(paths) = doc.get("paths").and_then(Value::as_object) {
        m.message(8, |ps| {
            for (path, item) in paths {
                let Some(item) = item.as_object() else {
                    continue;
                };
                ps.message(2, |named| {
                    named.string(1, path);
                    named.message(2, |pi| path_item(pi, item));
                });
            }
        });
    }
    m.message(9, |d| {
        for (name, def) in &document.definitions {
            let converted = super::v2::schema(def);
            d.message(1, |n| {
                n.string(1, name);
                n.message(2, |x| schema(x, &converted));
            });
        }
    });
    for req in doc
        .get("security")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let Some(req) = req.as_object() else { continue };
        m.message(12, |sr| {
            for (name, scopes) in req {
                sr.message(1, |n| {
                    n.string(1, name);
                    n.message(2, |a| a.strings(1, Some(scopes)));
                });
            }
        });
    }
    if let Some(sd) = doc.get("securityDefinitions").and_then(Value::as_object) {
        m.message(13, |s| {
            for (name, def) in sd {
                s.message(1, |n| {
                    n.string(1, name);
                    // SecurityDefinitionsItem.api_key_security(2)
                    n.message(2, |item| {
                        item.message(2, |k| {
                            k.str_field(1, def.get("type"));
                            k.str_field(2, def.get("name"));
                            k.str_field(3, def.get("in"));
                            k.str_field(4, def.get("description"));
                        })
                    });
                });
            }
        });
    }
    m.0
}
