//! Path elements: how one step into an object is named in field sets.
//!
//! A step is a struct or map field (`f:name`), a list item picked by the
//! values of its key fields (`k:{"name":"web"}`), a set item picked by its
//! own value (`v:"a"`), or a list position (`i:0`, only read, never written
//! by us). The serialized forms are the keys of `managedFields[].fieldsV1`;
//! the display forms (`.spec`, `[name="web"]`, `[="a"]`, `[0]`) are what
//! conflict messages show.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Value};

/// One step of a field path.
#[derive(Clone, Debug)]
pub enum PathElement {
    /// A field of a struct or a key of a map.
    Field(String),
    /// An item of a list of type `map`, by its key fields, sorted by name.
    Key(Vec<(String, Value)>),
    /// An item of a list of type `set`, by its value.
    Value(Value),
    /// An item of a list by position.
    Index(usize),
}

/// A path from the root of an object.
pub type Path = Vec<PathElement>;

impl PathElement {
    /// A field step.
    pub fn field(name: &str) -> PathElement {
        PathElement::Field(name.to_string())
    }

    fn rank(&self) -> u8 {
        match self {
            PathElement::Field(_) => 0,
            PathElement::Key(_) => 1,
            PathElement::Value(_) => 2,
            PathElement::Index(_) => 3,
        }
    }

    /// The `fieldsV1` key of this step.
    ///
    /// Every write re-encodes its object's managed fields, so the keys are
    /// written straight into one buffer (JSON as `Value`'s `Display` writes
    /// it) rather than through `format!`.
    pub fn serialize(&self) -> String {
        match self {
            PathElement::Field(name) => {
                let mut s = String::with_capacity(name.len() + 2);
                s.push_str("f:");
                s.push_str(name);
                s
            }
            PathElement::Key(fields) => {
                let mut b = Vec::with_capacity(32);
                b.extend_from_slice(b"k:{");
                for (i, (name, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        b.push(b',');
                    }
                    json_into(&mut b, name);
                    b.push(b':');
                    json_into(&mut b, v);
                }
                b.push(b'}');
                String::from_utf8(b).expect("JSON is UTF-8")
            }
            PathElement::Value(v) => {
                let mut b = Vec::with_capacity(16);
                b.extend_from_slice(b"v:");
                json_into(&mut b, v);
                String::from_utf8(b).expect("JSON is UTF-8")
            }
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parse a `fieldsV1` key. `Ok(None)` is a step of a kind this server
    /// does not know; upstream drops those rather than fail.
    pub fn deserialize(s: &str) -> Result<Option<PathElement>, String> {
        let bytes = s.as_bytes();
        if bytes.len() < 2 {
            return Err(format!("key must be 2 characters long: {s:?}"));
        }
        if bytes[1] != b':' {
            return Err(format!("missing colon: {s}"));
        }
        let rest = &s[2..];
        Ok(Some(match bytes[0] {
            b'f' => PathElement::Field(rest.to_string()),
            b'v' => PathElement::Value(
                serde_json::from_str(rest).map_err(|e| format!("parsing {s:?}: {e}"))?,
            ),
            b'k' => {
                let m: Map<String, Value> =
                    serde_json::from_str(rest).map_err(|e| format!("parsing {s:?}: {e}"))?;
                let mut fields: Vec<(String, Value)> = m.into_iter().collect();
                fields.sort_by(|a, b| a.0.cmp(&b.0));
                PathElement::Key(fields)
            }
            b'i' => PathElement::Index(rest.parse().map_err(|e| format!("parsing {s:?}: {e}"))?),
            _ => return Ok(None),
        }))
    }
}

/// Append `v` as compact JSON.
fn json_into<T: serde::Serialize + ?Sized>(b: &mut Vec<u8>, v: &T) {
    serde_json::to_writer(b, v).expect("strings and JSON values always serialize");
}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(fields) => {
                f.write_str("[")?;
                for (i, (name, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{name}={}", display_value(v))?;
                }
                f.write_str("]")
            }
            PathElement::Value(v) => write!(f, "[={}]", display_value(v)),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path as conflict messages print it, e.g. `.spec.containers[name="a"].image`.
pub fn display(path: &[PathElement]) -> String {
    path.iter().map(ToString::to_string).collect()
}

/// A value inside a path: strings quoted, everything else plain.
fn display_value(v: &Value) -> String {
    match v {
        Value::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(display_value)
                .collect::<Vec<_>>()
                .join(",")
        ),
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| format!("{k}={}", display_value(v)))
            .collect(),
        other => other.to_string(),
    }
}

/// A total order over values, as structured-merge-diff defines it: numbers
/// (ints and floats compared numerically) before strings, booleans, lists,
/// maps and null.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Number(_) => 0,
            Value::String(_) => 1,
            Value::Bool(_) => 2,
            Value::Array(_) => 3,
            Value::Object(_) => 4,
            Value::Null => 5,
        }
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i.cmp(&j),
            _ => {
                let (fx, fy) = (x.as_f64().unwrap_or(0.0), y.as_f64().unwrap_or(0.0));
                fx.partial_cmp(&fy).unwrap_or(Ordering::Equal)
            }
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (i, j) in x.iter().zip(y) {
                let c = compare_values(i, j);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|p, q| p.0.cmp(q.0));
            ys.sort_by(|p, q| p.0.cmp(q.0));
            for ((kx, vx), (ky, vy)) in xs.iter().zip(&ys) {
                let c = kx.cmp(ky).then_with(|| compare_values(vx, vy));
                if c != Ordering::Equal {
                    return c;
                }
            }
            xs.len().cmp(&ys.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (PathElement::Field(a), PathElement::Field(b)) => a.cmp(b),
            (PathElement::Key(a), PathElement::Key(b)) => {
                for ((na, va), (nb, vb)) in a.iter().zip(b) {
                    let c = na.cmp(nb).then_with(|| compare_values(va, vb));
                    if c != Ordering::Equal {
                        return c;
                    }
                }
                a.len().cmp(&b.len())
            }
            (PathElement::Value(a), PathElement::Value(b)) => compare_values(a, b),
            (PathElement::Index(a), PathElement::Index(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for PathElement {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for PathElement {}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn serialized_forms_round_trip() {
        let cases = [
            (PathElement::field("spec"), "f:spec", ".spec"),
            (
                PathElement::Key(vec![("name".into(), json!("web"))]),
                r#"k:{"name":"web"}"#,
                r#"[name="web"]"#,
            ),
            (
                PathElement::Key(vec![
                    ("containerPort".into(), json!(80)),
                    ("protocol".into(), json!("TCP")),
                ]),
                r#"k:{"containerPort":80,"protocol":"TCP"}"#,
                r#"[containerPort=80,protocol="TCP"]"#,
            ),
            (PathElement::Value(json!("a")), r#"v:"a""#, r#"[="a"]"#),
            (PathElement::Value(json!(3)), "v:3", "[=3]"),
            (PathElement::Index(2), "i:2", "[2]"),
        ];
        for (pe, ser, shown) in cases {
            assert_eq!(pe.serialize(), ser);
            assert_eq!(pe.to_string(), shown);
            assert_eq!(PathElement::deserialize(ser).unwrap(), Some(pe));
        }
    }

    #[test]
    fn serialized_json_is_escaped_as_values_print_it() {
        let odd = "a\"b\\c\n\u{1}é";
        let pe = PathElement::Key(vec![
            (odd.into(), json!(odd)),
            ("z".into(), json!({"x": [1.5, null, true]})),
        ]);
        let want = format!(
            "k:{{{}:{},\"z\":{}}}",
            Value::String(odd.into()),
            json!(odd),
            json!({"x": [1.5, null, true]})
        );
        assert_eq!(pe.serialize(), want);
        assert_eq!(PathElement::deserialize(&want).unwrap(), Some(pe));
        let pe = PathElement::Value(json!(odd));
        assert_eq!(pe.serialize(), format!("v:{}", json!(odd)));
        assert_eq!(PathElement::field(odd).serialize(), format!("f:{odd}"));
    }

    #[test]
    fn keys_are_sorted_when_read() {
        let pe = PathElement::deserialize(r#"k:{"protocol":"TCP","containerPort":80}"#)
            .unwrap()
            .unwrap();
        assert_eq!(pe.serialize(), r#"k:{"containerPort":80,"protocol":"TCP"}"#);
    }

    #[test]
    fn bad_keys() {
        assert!(PathElement::deserialize("f").is_err());
        assert!(PathElement::deserialize("fx").is_err());
        assert!(PathElement::deserialize("k:[1]").is_err());
        assert!(PathElement::deserialize("v:{").is_err());
        assert!(PathElement::deserialize("i:x").is_err());
        assert_eq!(PathElement::deserialize("z:whatever").unwrap(), None);
    }

    #[test]
    fn order_follows_upstream() {
        let mut v = [
            PathElement::Index(0),
            PathElement::Value(json!("x")),
            PathElement::Key(vec![("name".into(), json!("a"))]),
            PathElement::field("b"),
            PathElement::field("a"),
            PathElement::Value(json!(1)),
        ];
        v.sort();
        let shown: Vec<String> = v.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [".a", ".b", r#"[name="a"]"#, "[=1]", r#"[="x"]"#, "[0]"]
        );
        assert_eq!(
            PathElement::Value(json!(1)),
            PathElement::Value(json!(1.0)),
            "ints and floats compare numerically"
        );
        assert_eq!(
            display(&[PathElement::field("spec"), PathElement::field("replicas")]),
            ".spec.replicas"
        );
    }
}
