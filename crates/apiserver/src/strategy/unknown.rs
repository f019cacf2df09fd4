//! Typed decoding of wire JSON through the k8s-openapi structs, to find the
//! fields a kind's schema does not know (for `fieldValidation=Strict|Warn`)
//! and values of the wrong type.
//!
//! Rather than serializing back and diffing, a path-tracking deserializer
//! walks the input: k8s-openapi's generated code hands every unknown key to
//! `deserialize_ignored_any`, which records the key's path. This is exact for
//! maps versus structs, needs no knowledge of defaults or empty values, and
//! keeps going after an unknown field. Like Go's decoder, `null` reads as the
//! zero value instead of failing.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Value};

use crate::error::{FieldError, FieldErrorType};

/// What decoding an object found.
#[derive(Debug, Default)]
pub struct Decoded {
    /// Paths of unknown fields, e.g. `spec.containers[0].imagePullPolcy`.
    pub unknown: Vec<String>,
    /// The first value of the wrong type, if any.
    pub error: Option<FieldError>,
}

/// Decode `obj` as `T`, recording unknown fields and the first type error.
pub fn decode<T: DeserializeOwned>(obj: &Value) -> Decoded {
    let sink = RefCell::new(Vec::new());
    let res = T::deserialize(Walker {
        value: obj,
        path: At::Root,
        sink: &sink,
    });
    let error = res.err().map(|e| {
        let path = e.path.unwrap_or_default();
        let value = lookup(obj, &path).cloned().unwrap_or(Value::Null);
        FieldError {
            field: path,
            kind: FieldErrorType::TypeInvalid,
            value: Some(value),
            detail: e.msg,
        }
    });
    Decoded {
        unknown: sink.into_inner(),
        error,
    }
}

/// The value at a dotted path with `[i]` indexes, as the walker writes them.
fn lookup<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    if path.is_empty() {
        return Some(cur);
    }
    for part in path.split('.') {
        let (name, rest) = part
            .split_once('[')
            .map(|(n, r)| (n, Some(r)))
            .unwrap_or((part, None));
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        if let Some(rest) = rest {
            for idx in rest.split('[') {
                cur = cur.get(idx.trim_end_matches(']').parse::<usize>().ok()?)?;
            }
        }
    }
    Some(cur)
}

#[derive(Debug)]
struct DeError {
    path: Option<String>,
    msg: String,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            path: None,
            msg: msg.to_string(),
        }
    }
}

/// Where the walker is: a chain of steps on the stack, written out as
/// `spec.containers[0].image` only for an unknown field or an error (every
/// value is visited, so building each path eagerly was most of the cost).
#[derive(Clone, Copy)]
enum At<'a> {
    Root,
    Field(&'a At<'a>, &'a str),
    Index(&'a At<'a>, usize),
}

impl At<'_> {
    fn render(&self) -> String {
        let mut s = String::new();
        self.write(&mut s);
        s
    }

    fn write(&self, s: &mut String) {
        match self {
            At::Root => {}
            At::Field(parent, k) => {
                parent.write(s);
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            At::Index(parent, i) => {
                parent.write(s);
                s.push('[');
                s.push_str(&i.to_string());
                s.push(']');
            }
        }
    }
}

fn at(path: At<'_>) -> impl FnOnce(DeError) -> DeError + '_ {
    move |mut e| {
        if e.path.is_none() {
            e.path = Some(path.render());
        }
        e
    }
}

struct Walker<'de, 'a, 's> {
    value: &'de Value,
    path: At<'a>,
    sink: &'s RefCell<Vec<String>>,
}

static EMPTY_MAP: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl<'de: 'a, 'a, 's> Walker<'de, 'a, 's> {
    fn visit_map<V: Visitor<'de>>(
        &self,
        m: &'de Map<String, Value>,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_map(MapWalker {
            iter: m.iter(),
            next: None,
            path: &self.path,
            sink: self.sink,
        })
    }

    fn visit_seq<V: Visitor<'de>>(&self, a: &'de [Value], visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_seq(SeqWalker {
            iter: a.iter().enumerate(),
            path: &self.path,
            sink: self.sink,
        })
    }
}

impl<'de: 'a, 'a> de::Deserializer<'de> for Walker<'de, 'a, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or_default())
                }
            }
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(a) => self.visit_seq(a, visitor),
            Value::Object(m) => self.visit_map(m, visitor),
        };
        r.map_err(at(self.path))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.value.is_null() {
            visitor.visit_none()
        } else {
            let path = self.path;
            visitor.visit_some(self).map_err(at(path))
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if !self.value.is_null() {
            self.sink.borrow_mut().push(self.path.render());
        }
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let path = self.path;
        visitor.visit_newtype_struct(self).map_err(at(path))
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_borrowed_str("").map_err(at(self.path)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_bool(false).map_err(at(self.path)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => self.visit_map(&EMPTY_MAP, visitor).map_err(at(self.path)),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(visitor)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => self.visit_seq(&[], visitor).map_err(at(self.path)),
            _ => self.deserialize_any(visitor),
        }
    }

    forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char bytes byte_buf
        unit unit_struct tuple tuple_struct enum identifier
    }
}

struct MapWalker<'de, 'p, 's> {
    iter: serde_json::map::Iter<'de>,
    next: Option<(&'de String, &'de Value)>,
    path: &'p At<'p>,
    sink: &'s RefCell<Vec<String>>,
}

impl<'de: 'p, 'p> MapAccess<'de> for MapWalker<'de, 'p, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        match self.iter.next() {
            Some((k, v)) => {
                self.next = Some((k, v));
                seed.deserialize(de::value::BorrowedStrDeserializer::new(k))
                    .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (k, v) = self
            .next
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("value without a key"))?;
        seed.deserialize(Walker {
            value: v,
            path: At::Field(self.path, k),
            sink: self.sink,
        })
    }
}

struct SeqWalker<'de, 'p, 's> {
    iter: std::iter::Enumerate<std::slice::Iter<'de, Value>>,
    path: &'p At<'p>,
    sink: &'s RefCell<Vec<String>>,
}

impl<'de: 'p, 'p> SeqAccess<'de> for SeqWalker<'de, 'p, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.iter.next() {
            Some((i, v)) => seed
                .deserialize(Walker {
                    value: v,
                    path: At::Index(self.path, i),
                    sink: self.sink,
                })
                .map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
    use serde_json::json;

    #[test]
    fn finds_unknown_fields_at_any_depth() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": { "name": "p", "labels": { "any.key/x": "y" }, "bogus": 1 },
            "spec": {
                "containers": [
                    { "name": "a", "image": "nginx" },
                    { "name": "b", "image": "nginx", "imagePullPolcy": "Always", "resources": { "limits": { "cpu": 1 } } }
                ],
                "nodeSelector": { "whatever": "x" },
                "extra": { "deep": true },
                "ignoredNull": null
            },
            "top": 1
        });
        let d = decode::<Pod>(&pod);
        assert_eq!(
            d.unknown,
            vec![
                "metadata.bogus",
                "spec.containers[1].imagePullPolcy",
                "spec.extra",
                "top"
            ]
        );
        assert!(d.error.is_none(), "{:?}", d.error);
    }

    #[test]
    fn maps_and_raw_values_are_not_unknown() {
        let cm = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": "c", "annotations": {} }, "data": { "k": "v" } });
        assert!(decode::<ConfigMap>(&cm).unknown.is_empty());
        let d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "d" },
            "spec": { "selector": { "matchLabels": { "a": "b" } }, "template": { "metadata": {}, "spec": { "containers": [] } },
                      "strategy": { "rollingUpdate": { "maxSurge": "25%", "maxUnavailable": 1 } } },
            "status": {}
        });
        let got = decode::<Deployment>(&d);
        assert!(got.unknown.is_empty() && got.error.is_none(), "{got:?}");
    }

    #[test]
    fn reports_type_errors_with_their_path() {
        let d = json!({ "apiVersion": "apps/v1", "kind": "Deployment", "metadata": { "name": "d" }, "spec": { "replicas": "3" } });
        let e = decode::<Deployment>(&d).error.unwrap();
        assert_eq!(e.field, "spec.replicas");
        assert_eq!(e.kind, FieldErrorType::TypeInvalid);
        let s = json!({ "apiVersion": "v1", "kind": "Secret", "metadata": { "name": "s" }, "data": { "k": "!!" } });
        assert_eq!(decode::<Secret>(&s).error.unwrap().field, "data.k");
        let n = json!({ "apiVersion": "v1", "kind": "ConfigMap", "metadata": { "name": null, "creationTimestamp": null } });
        assert!(decode::<ConfigMap>(&n).error.is_none());
    }
}
