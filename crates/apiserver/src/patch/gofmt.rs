//! Values as upstream's error messages print them.
//!
//! Upstream's patch code works on decoded Go values (`map[string]interface{}`,
//! `[]interface{}`, `int64`, `float64`, ...) and formats them with `%v` in
//! its errors, e.g. `map: map[image:nginx] does not contain declared merge
//! key: name`. Clients show these messages verbatim, so we print JSON values
//! the same way.

use serde_json::Value;

/// The Go type a decoded JSON value has upstream. Integers that fit in an
/// `int64` decode as `int64`, other numbers as `float64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoKind {
    Nil,
    Bool,
    Int,
    Float,
    String,
    Slice,
    Map,
}

impl GoKind {
    pub fn of(v: &Value) -> GoKind {
        match v {
            Value::Null => GoKind::Nil,
            Value::Bool(_) => GoKind::Bool,
            Value::Number(n) if n.as_i64().is_some() => GoKind::Int,
            Value::Number(_) => GoKind::Float,
            Value::String(_) => GoKind::String,
            Value::Array(_) => GoKind::Slice,
            Value::Object(_) => GoKind::Map,
        }
    }

    /// `reflect.TypeOf(v).String()`.
    pub fn type_name(self) -> &'static str {
        match self {
            GoKind::Nil => "<nil>",
            GoKind::Bool => "bool",
            GoKind::Int => "int64",
            GoKind::Float => "float64",
            GoKind::String => "string",
            GoKind::Slice => "[]interface {}",
            GoKind::Map => "map[string]interface {}",
        }
    }
}

/// `fmt.Sprintf("%v", v)`: maps print as `map[k:v ...]` with sorted keys,
/// lists as `[a b]`, strings bare, null as `<nil>`.
pub fn v(value: &Value) -> String {
    let mut out = String::new();
    write_v(&mut out, value);
    out
}

fn write_v(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match n.as_i64() {
            Some(i) => out.push_str(&i.to_string()),
            None => out.push_str(&float_v(n.as_f64().unwrap_or(0.0))),
        },
        Value::String(s) => out.push_str(s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_v(out, item);
            }
            out.push(']');
        }
        // serde_json's map is ordered by key, as Go prints maps.
        Value::Object(m) => {
            out.push_str("map[");
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_v(out, item);
            }
            out.push(']');
        }
    }
}

/// `fmt.Sprintf("%s", v)` of an `interface{}`: strings bare, other scalars
/// as Go's `%!s(type=value)`.
pub fn s(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Array(_) | Value::Object(_) => v(value),
        Value::Null => "%!s(<nil>)".to_string(),
        other => format!("%!s({}={})", GoKind::of(other).type_name(), v(other)),
    }
}

/// A float as `%v` prints it: `%g` with the shortest precision, which
/// switches to exponent form for exponents below -4 or of 6 and more
/// (`1e+06`).
fn float_v(f: f64) -> String {
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.to_string();
    }
    if !f.is_finite() {
        return if f.is_nan() {
            "NaN".to_string()
        } else if f > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        };
    }
    // Rust's `{:e}` gives the shortest round-tripping digits, e.g. `1.5e3`.
    let e = format!("{f:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", exp.abs())
    } else {
        format!("{f}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_print_as_go_does() {
        assert_eq!(
            v(&json!({"image": "nginx", "env": [{"a": 1}], "x": null})),
            "map[env:[map[a:1]] image:nginx x:<nil>]"
        );
        assert_eq!(v(&json!([1, "a", true])), "[1 a true]");
        assert_eq!(v(&json!(1.5)), "1.5");
        assert_eq!(v(&json!(1e21)), "1e+21");
        assert_eq!(v(&json!(1234567.5)), "1.2345675e+06");
        assert_eq!(v(&json!(123456.5)), "123456.5");
        assert_eq!(v(&json!(0.00001)), "1e-05");
        assert_eq!(s(&json!("foo")), "foo");
        assert_eq!(s(&json!(1)), "%!s(int64=1)");
        assert_eq!(s(&json!(null)), "%!s(<nil>)");
        assert_eq!(GoKind::of(&json!(1.0)).type_name(), "float64");
        assert_eq!(GoKind::of(&json!(-3)).type_name(), "int64");
    }
}
