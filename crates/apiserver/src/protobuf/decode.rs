//! The table-driven decoder: protobuf bytes plus a [`Msg`] table in, the
//! JSON the same object would have had as JSON out.
//!
//! Proto2 merge rules apply: a singular scalar seen twice keeps the last
//! value, repeated fields append, map entries overwrite by key, and a
//! singular message seen twice is merged: all its occurrences are decoded as
//! one, which protobuf defines to be the same thing.
//!
//! Memory: nothing is allocated from a declared length; every string, byte
//! string and JSON node is made from bytes actually present (base64 and the
//! JSON keys are the largest blow-up, a small constant factor), and merged
//! occurrences are read in place, never concatenated.

use base64::Engine as _;
use serde_json::{Map, Value};

use super::schema::{Card, Field, Msg, Ty};
use super::wire::{Reader, WireType};
use super::ProtoError;

/// The deepest nesting of messages accepted, counting map entries and the
/// well-known wrapper messages. Real objects stay far below it; it only stops
/// hostile input from recursing without bound.
pub(crate) const MAX_DEPTH: usize = 64;

/// One step of the path to where an error happened.
enum Seg {
    Field(&'static str),
    Index(usize),
}

/// An error on its way up, collecting the path as it unwinds.
pub(crate) struct DecodeError {
    kind: ErrorKind,
    /// Innermost step first.
    path: Vec<Seg>,
}

enum ErrorKind {
    Malformed(String),
    UnknownField { message: String, tag: u32 },
}

type Result<T> = std::result::Result<T, DecodeError>;

fn malformed(reason: impl Into<String>) -> DecodeError {
    DecodeError {
        kind: ErrorKind::Malformed(reason.into()),
        path: Vec::new(),
    }
}

fn unknown(message: impl Into<String>, tag: u32) -> DecodeError {
    DecodeError {
        kind: ErrorKind::UnknownField {
            message: message.into(),
            tag,
        },
        path: Vec::new(),
    }
}

impl DecodeError {
    fn at(mut self, seg: Seg) -> Self {
        self.path.push(seg);
        self
    }

    /// The JSON path, e.g. `spec.template.spec.containers[0]`, empty at the top.
    fn path_string(&self) -> String {
        let mut s = String::new();
        for seg in self.path.iter().rev() {
            match seg {
                Seg::Field(name) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(name);
                }
                Seg::Index(i) => s.push_str(&format!("[{i}]")),
            }
        }
        s
    }

    pub(crate) fn into_proto(self) -> ProtoError {
        let path = self.path_string();
        match self.kind {
            ErrorKind::Malformed(reason) if path.is_empty() => ProtoError::Malformed(reason),
            ErrorKind::Malformed(reason) => ProtoError::Malformed(format!("{reason} (at {path})")),
            ErrorKind::UnknownField { message, tag } => {
                ProtoError::UnknownField { message, tag, path }
            }
        }
    }
}

/// Decode `buf` as a `msg` into `out`.
pub(crate) fn decode_into(
    msg: &'static Msg,
    buf: &[u8],
    out: &mut Map<String, Value>,
    depth: usize,
) -> Result<()> {
    decode_parts(msg, &[buf], out, depth)
}

/// Decode the concatenation of `parts` as one `msg` into `out`, without
/// copying: a field never straddles two parts, since each is a whole encoded
/// message (all occurrences of one singular message field, which protobuf
/// merges exactly as if they had been sent as one).
fn decode_parts(
    msg: &'static Msg,
    parts: &[&[u8]],
    out: &mut Map<String, Value>,
    depth: usize,
) -> Result<()> {
    if depth > MAX_DEPTH {
        return Err(malformed(format!(
            "messages nested deeper than {MAX_DEPTH}"
        )));
    }
    let in_msg = |e: String| malformed(format!("in {}: {e}", msg.name));
    // Singular message-typed fields, gathered over every occurrence and
    // decoded once at the end.
    let mut pending: Vec<(&'static Field, Vec<&[u8]>)> = Vec::new();
    for part in parts {
        let mut r = Reader::new(part);
        while !r.is_empty() {
            let (tag, wire) = r.key().map_err(in_msg)?;
            let Some(f) = msg.field(tag) else {
                return Err(unknown(msg.name, tag));
            };
            match f.card {
                Card::Inline | Card::Opt | Card::Omit if f.ty.is_message() => {
                    let payload = len_payload(msg, f, wire, &mut r)?;
                    match pending.iter_mut().find(|(p, _)| p.tag == tag) {
                        Some((_, slices)) => slices.push(payload),
                        None => pending.push((f, vec![payload])),
                    }
                }
                Card::Inline => {
                    return Err(malformed(format!(
                        "in {}: inline field {tag} is not a message",
                        msg.name
                    )));
                }
                Card::Opt | Card::Omit => {
                    let v = scalar(f.ty, wire, &mut r).map_err(|e| field_error(msg, f, e))?;
                    if f.card == Card::Omit && is_zero(&v) {
                        out.remove(f.json);
                    } else {
                        out.insert(f.json.to_string(), v);
                    }
                }
                Card::Rep => {
                    if f.ty.is_message() {
                        let payload = len_payload(msg, f, wire, &mut r)?;
                        let index = array_len(out, f.json);
                        let v = value(f.ty, &[payload], depth + 1)
                            .map_err(|e| e.at(Seg::Index(index)).at(Seg::Field(f.json)))?;
                        push(out, f.json, v);
                    } else if wire == WireType::Len
                        && matches!(f.ty, Ty::Bool | Ty::Int32 | Ty::Int64)
                    {
                        // Packed: one length-delimited run of varints.
                        let payload = r.bytes().map_err(in_msg)?;
                        let mut packed = Reader::new(payload);
                        while !packed.is_empty() {
                            let n = packed.varint().map_err(|e| field_error(msg, f, e))?;
                            push(out, f.json, from_varint(f.ty, n));
                        }
                    } else {
                        let v = scalar(f.ty, wire, &mut r).map_err(|e| field_error(msg, f, e))?;
                        push(out, f.json, v);
                    }
                }
                Card::Map => {
                    let payload = len_payload(msg, f, wire, &mut r)?;
                    let (k, v) = map_entry(msg, f, payload, depth + 1)
                        .map_err(|e| e.at(Seg::Field(f.json)))?;
                    let slot = out
                        .entry(f.json)
                        .or_insert_with(|| Value::Object(Map::new()));
                    if !slot.is_object() {
                        *slot = Value::Object(Map::new());
                    }
                    if let Value::Object(obj) = slot {
                        obj.insert(k, v);
                    }
                }
            }
        }
    }
    for (f, slices) in pending {
        if f.card == Card::Inline {
            if let Ty::Message(inner) = f.ty {
                decode_parts(inner, &slices, out, depth + 1)?;
            }
        } else {
            let v = value(f.ty, &slices, depth + 1).map_err(|e| e.at(Seg::Field(f.json)))?;
            out.insert(f.json.to_string(), v);
        }
    }
    Ok(())
}

/// The payload of a field that must be length-delimited.
fn len_payload<'a>(msg: &Msg, f: &Field, wire: WireType, r: &mut Reader<'a>) -> Result<&'a [u8]> {
    if wire != WireType::Len {
        return Err(field_error(msg, f, wrong_wire(wire, WireType::Len)));
    }
    r.bytes().map_err(|e| field_error(msg, f, e))
}

fn field_error(msg: &Msg, f: &Field, e: String) -> DecodeError {
    malformed(format!("field {} ({}) of {}: {e}", f.tag, f.json, msg.name))
}

fn wrong_wire(got: WireType, want: WireType) -> String {
    format!(
        "wire type {} where {} was expected",
        got.name(),
        want.name()
    )
}

fn array_len(out: &Map<String, Value>, key: &str) -> usize {
    out.get(key).and_then(Value::as_array).map_or(0, Vec::len)
}

/// Append to the array at `key`, creating it on first use so that a field
/// with no elements stays absent, as Go's nil slice would.
fn push(out: &mut Map<String, Value>, key: &'static str, v: Value) {
    match out.get_mut(key) {
        Some(Value::Array(a)) => a.push(v),
        _ => {
            out.insert(key.to_string(), Value::Array(vec![v]));
        }
    }
}

/// Go's zero value for a scalar, which an `omitempty` value field drops.
fn is_zero(v: &Value) -> bool {
    match v {
        Value::String(s) => s.is_empty(),
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
        _ => false,
    }
}

/// A scalar field's value.
fn scalar(ty: Ty, wire: WireType, r: &mut Reader<'_>) -> std::result::Result<Value, String> {
    match ty {
        Ty::String | Ty::Bytes => {
            if wire != WireType::Len {
                return Err(wrong_wire(wire, WireType::Len));
            }
            let b = r.bytes()?;
            Ok(if matches!(ty, Ty::String) {
                Value::String(String::from_utf8_lossy(b).into_owned())
            } else {
                Value::String(base64::engine::general_purpose::STANDARD.encode(b))
            })
        }
        _ => {
            if wire != WireType::Varint {
                return Err(wrong_wire(wire, WireType::Varint));
            }
            Ok(from_varint(ty, r.varint()?))
        }
    }
}

/// A varint as the scalar type says. `int32` keeps the low 32 bits, as
/// protobuf defines (negative values are sent sign-extended to 64 bits).
fn from_varint(ty: Ty, n: u64) -> Value {
    match ty {
        Ty::Bool => Value::Bool(n != 0),
        Ty::Int32 => Value::from(n as i32),
        _ => Value::from(n as i64),
    }
}

/// The JSON zero of a scalar, for a map entry sent without its value.
fn zero(ty: Ty) -> Value {
    match ty {
        Ty::Bool => Value::Bool(false),
        Ty::Int32 | Ty::Int64 => Value::from(0),
        _ => Value::String(String::new()),
    }
}

/// One entry of a `map<string, ty>` field: `{1: key, 2: value}`.
fn map_entry(msg: &Msg, f: &Field, buf: &[u8], depth: usize) -> Result<(String, Value)> {
    if depth > MAX_DEPTH {
        return Err(malformed(format!(
            "messages nested deeper than {MAX_DEPTH}"
        )));
    }
    let entry = || format!("{}.{} map entry", msg.name, f.json);
    let bad = |e: String| malformed(format!("in {}: {e}", entry()));
    let mut r = Reader::new(buf);
    let mut key = String::new();
    let mut scalar_value = None;
    let mut parts: Vec<&[u8]> = Vec::new();
    while !r.is_empty() {
        let (tag, wire) = r.key().map_err(bad)?;
        match tag {
            1 => {
                if wire != WireType::Len {
                    return Err(bad(wrong_wire(wire, WireType::Len)));
                }
                key = String::from_utf8_lossy(r.bytes().map_err(bad)?).into_owned();
            }
            2 if f.ty.is_message() => {
                if wire != WireType::Len {
                    return Err(bad(wrong_wire(wire, WireType::Len)));
                }
                parts.push(r.bytes().map_err(bad)?);
            }
            2 => scalar_value = Some(scalar(f.ty, wire, &mut r).map_err(bad)?),
            _ => return Err(unknown(entry(), tag)),
        }
    }
    let v = if f.ty.is_message() {
        value(f.ty, &parts, depth + 1)?
    } else {
        scalar_value.unwrap_or_else(|| zero(f.ty))
    };
    Ok((key, v))
}

/// The value of a message-typed field from the payloads of all its
/// occurrences (one for a repeated field's element).
fn value(ty: Ty, parts: &[&[u8]], depth: usize) -> Result<Value> {
    if depth > MAX_DEPTH {
        return Err(malformed(format!(
            "messages nested deeper than {MAX_DEPTH}"
        )));
    }
    match ty {
        Ty::Message(m) => {
            let mut obj = Map::new();
            decode_parts(m, parts, &mut obj, depth)?;
            Ok(Value::Object(obj))
        }
        Ty::Quantity => {
            let w = wrapper(&QUANTITY, parts, depth)?;
            // An empty Quantity is Go's zero quantity, which prints as "0".
            Ok(w.get("string")
                .cloned()
                .unwrap_or_else(|| Value::String("0".into())))
        }
        Ty::IntOrString => {
            let w = wrapper(&INT_OR_STRING, parts, depth)?;
            match w.get("type").and_then(Value::as_i64).unwrap_or(0) {
                0 => Ok(w.get("intVal").cloned().unwrap_or_else(|| Value::from(0))),
                1 => Ok(w
                    .get("strVal")
                    .cloned()
                    .unwrap_or_else(|| Value::String(String::new()))),
                t => Err(malformed(format!(
                    "IntOrString has type {t}; only 0 (int) and 1 (string) exist"
                ))),
            }
        }
        Ty::Time | Ty::MicroTime => {
            // Go writes its zero time as an empty message; its JSON is null.
            if parts.iter().all(|p| p.is_empty()) {
                return Ok(Value::Null);
            }
            let w = wrapper(&TIMESTAMP, parts, depth)?;
            let seconds = w.get("seconds").and_then(Value::as_i64).unwrap_or(0);
            let nanos = w.get("nanos").and_then(Value::as_i64).unwrap_or(0);
            super::time::format(seconds, nanos, matches!(ty, Ty::MicroTime)).map_err(malformed)
        }
        Ty::RawJson => raw_json(parts),
        Ty::StringList => {
            let w = wrapper(&STRING_LIST, parts, depth)?;
            Ok(w.get("items")
                .cloned()
                .unwrap_or_else(|| Value::Array(Vec::new())))
        }
        Ty::String | Ty::Bytes | Ty::Bool | Ty::Int32 | Ty::Int64 => {
            Err(malformed("internal error: scalar decoded as a message"))
        }
    }
}

/// A well-known wrapper message decoded with its own small table.
fn wrapper(m: &'static Msg, parts: &[&[u8]], depth: usize) -> Result<Map<String, Value>> {
    let mut obj = Map::new();
    decode_parts(m, parts, &mut obj, depth)?;
    Ok(obj)
}

/// `runtime.RawExtension` / `metav1.FieldsV1`: `{1: bytes}` holding JSON
/// (the last occurrence wins, as for any bytes field).
fn raw_json(parts: &[&[u8]]) -> Result<Value> {
    let bad = |e: String| malformed(format!("in RawExtension: {e}"));
    let mut raw: &[u8] = &[];
    for part in parts {
        let mut r = Reader::new(part);
        while !r.is_empty() {
            let (tag, wire) = r.key().map_err(bad)?;
            if tag != 1 {
                return Err(unknown("runtime.RawExtension", tag));
            }
            if wire != WireType::Len {
                return Err(bad(wrong_wire(wire, WireType::Len)));
            }
            raw = r.bytes().map_err(bad)?;
        }
    }
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(raw)
        .map_err(|e| malformed(format!("embedded raw object is not JSON: {e}")))
}

use super::schema::{opt, rep, I32, I64, STR};

/// `resource.Quantity`: the canonical string.
static QUANTITY: Msg = Msg {
    name: "resource.Quantity",
    fields: &[opt(1, "string", STR)],
};

/// `intstr.IntOrString`.
static INT_OR_STRING: Msg = Msg {
    name: "intstr.IntOrString",
    fields: &[
        opt(1, "type", I64),
        opt(2, "intVal", I32),
        opt(3, "strVal", STR),
    ],
};

/// `metav1.Timestamp`, the wire form of `Time` and `MicroTime`.
static TIMESTAMP: Msg = Msg {
    name: "meta/v1.Timestamp",
    fields: &[opt(1, "seconds", I64), opt(2, "nanos", I32)],
};

/// `ExtraValue` and its kin: a `[]string` wrapped in a message.
static STRING_LIST: Msg = Msg {
    name: "ExtraValue",
    fields: &[rep(1, "items", STR)],
};
