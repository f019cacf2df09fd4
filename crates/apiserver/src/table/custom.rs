//! Tables of custom resources: NAME, then the version's
//! `additionalPrinterColumns` (or upstream's default, one AGE column), with
//! cells computed like upstream's CRD table convertor: a `string` column
//! prints whatever the path finds (objects and lists as JSON), other types
//! keep the value only when it has that type, and `date` shows the age.

use serde_json::{json, Value};

use super::format::{parse_time, Clock};
use super::{CREATION_DESCRIPTION, NAME_DESCRIPTION};
use crate::crd::definition::VersionDef;
use crate::crd::validate::go_float;

/// The column definitions of a version (`None`: the CRD just went away).
pub fn columns(v: Option<&VersionDef>) -> Vec<Value> {
    let mut out = vec![json!({
        "name": "Name", "type": "string", "format": "name",
        "description": NAME_DESCRIPTION, "priority": 0,
    })];
    match v.filter(|v| !v.columns.is_empty()) {
        Some(v) => {
            for c in &v.columns {
                let description = if c.description.is_empty() {
                    format!(
                        "Custom resource definition column (in JSONPath format): {}",
                        c.json_path
                    )
                } else {
                    c.description.clone()
                };
                out.push(json!({
                    "name": c.name, "type": c.ty, "format": c.format,
                    "description": description, "priority": c.priority,
                }));
            }
        }
        None => out.push(json!({
            "name": "Age", "type": "date", "format": "",
            "description": CREATION_DESCRIPTION, "priority": 0,
        })),
    }
    out
}

/// Go's `fmt.Fprint` of a decoded JSON scalar, or compact JSON for objects
/// and lists, as kubectl's JSONPath printer writes them.
fn print_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => n.as_f64().map(go_float).unwrap_or_else(|| n.to_string()),
        },
        Value::Null => "<nil>".to_string(),
        other => other.to_string(),
    }
}

/// A typed cell: the value when it has the column's type, else null.
fn typed_cell(ty: &str, v: &Value, clock: &Clock) -> Value {
    match (ty, v) {
        (_, Value::Null) => Value::Null,
        ("integer", Value::Number(n)) => match n.as_i64() {
            Some(i) => json!(i),
            None => n
                .as_f64()
                .map(|f| json!(f.trunc() as i64))
                .unwrap_or(Value::Null),
        },
        ("number", Value::Number(n)) => n.as_f64().map(|f| json!(f)).unwrap_or(Value::Null),
        ("boolean", Value::Bool(b)) => json!(b),
        ("date", Value::String(_)) => match parse_time(Some(v)) {
            Some(t) => json!(clock.since(Some(t))),
            None => json!("<invalid>"),
        },
        _ => Value::Null,
    }
}

/// The cells of one object.
pub fn cells(v: Option<&VersionDef>, item: &Value, clock: &Clock) -> Vec<Value> {
    let mut out = vec![json!(item
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or(""))];
    match v.filter(|v| !v.columns.is_empty()) {
        Some(v) => {
            for c in &v.columns {
                let found = c.path.as_ref().and_then(|p| p.find(item).first().copied());
                out.push(match found {
                    None => Value::Null,
                    Some(value) if c.ty == "string" => json!(print_value(value)),
                    Some(value) => typed_cell(&c.ty, value, clock),
                });
            }
        }
        None => out.push(json!(clock.age(item))),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{ago, now};
    use super::*;
    use crate::crd::definition::CrdDef;

    fn version() -> VersionDef {
        let crd = json!({
            "metadata": {"name": "crontabs.stable.example.com"},
            "spec": {"group": "stable.example.com", "scope": "Namespaced",
                "names": {"plural": "crontabs", "kind": "CronTab"},
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "additionalPrinterColumns": [
                        {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
                        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"},
                        {"name": "Ratio", "type": "number", "jsonPath": ".spec.ratio", "priority": 1},
                        {"name": "Ready", "type": "boolean", "jsonPath": ".status.ready"},
                        {"name": "Started", "type": "date", "jsonPath": ".status.started", "description": "When"},
                        {"name": "Raw", "type": "string", "jsonPath": ".spec.raw"},
                        {"name": "Cond", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"}
                    ]}]}
        });
        CrdDef::parse(&crd).version("v1").unwrap().as_ref().clone()
    }

    #[test]
    fn printer_columns() {
        let v = version();
        let cols = columns(Some(&v));
        let names: Vec<&str> = cols.iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert_eq!(
            names,
            vec!["Name", "Spec", "Replicas", "Ratio", "Ready", "Started", "Raw", "Cond"]
        );
        assert_eq!(cols[0]["format"], "name");
        assert_eq!(cols[3]["priority"], 1);
        assert_eq!(cols[5]["description"], "When");
        assert_eq!(
            cols[1]["description"],
            "Custom resource definition column (in JSONPath format): .spec.cronSpec"
        );
        let item = json!({
            "metadata": {"name": "a"},
            "spec": {"cronSpec": "* * * * */5", "replicas": 2.0, "ratio": 3, "raw": {"k": [1, 2]}},
            "status": {"ready": "yes", "started": ago(120), "conditions": [{"type": "Ready", "status": "True"}]}
        });
        let clock = Clock::new(now());
        assert_eq!(
            cells(Some(&v), &item, &clock),
            vec![
                json!("a"),
                json!("* * * * */5"),
                json!(2),
                json!(3.0),
                Value::Null,
                json!("2m"),
                json!("{\"k\":[1,2]}"),
                json!("True")
            ]
        );
        let bare = json!({"metadata": {"name": "b"}});
        let c = cells(Some(&v), &bare, &clock);
        assert_eq!(c.len(), 8);
        assert!(c[1..].iter().all(Value::is_null));
    }

    #[test]
    fn default_age_column() {
        let cols = columns(None);
        assert_eq!(cols[1]["name"], "Age");
        assert_eq!(cols[1]["type"], "date");
        let item = json!({"metadata": {"name": "x", "creationTimestamp": ago(30)}});
        assert_eq!(
            cells(None, &item, &Clock::new(now())),
            vec![json!("x"), json!("30s")]
        );
    }

    #[test]
    fn go_printing_of_scalars() {
        assert_eq!(print_value(&json!(3)), "3");
        assert_eq!(print_value(&json!(1.5)), "1.5");
        assert_eq!(print_value(&json!(true)), "true");
        assert_eq!(print_value(&json!([1, "a"])), "[1,\"a\"]");
    }
}
