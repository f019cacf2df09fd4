//! Tests of the decoder against an independent encoder: objects are built as
//! `k8s-pb` structs (prost code generated from upstream's `.proto` files),
//! encoded with prost, wrapped in the envelope, decoded, and compared with the
//! JSON upstream would use. Each result is also read back through the
//! `k8s-openapi` type of its kind and written out again, which must give the
//! same JSON: a misspelt field name would be lost on the way, a wrongly typed
//! value would fail to parse.

mod access;
mod core;
mod robustness;
mod tables;
mod workloads;

use std::collections::BTreeMap;

use k8s_pb::apimachinery::pkg::apis::meta::v1 as pbmeta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;
use serde::{de::DeserializeOwned, Serialize};
use serde_json::Value;

use super::decode;

/// The whole request body for `obj`: magic, then a `runtime.Unknown` made by
/// prost too, so that the envelope is not checked against itself.
fn envelope(api_version: &str, kind: &str, obj: &impl Message) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s(api_version),
            kind: s(kind),
        }),
        raw: Some(obj.encode_to_vec()),
        content_encoding: s(""),
        content_type: s(""),
    };
    let mut body = b"k8s\x00".to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

/// Decode `obj` sent as (apiVersion, kind), which must succeed.
fn decoded(api_version: &str, kind: &str, obj: &impl Message) -> Value {
    match decode(&envelope(api_version, kind, obj)) {
        Ok(v) => v,
        Err(e) => panic!("decoding {kind}: {e}"),
    }
}

/// Assert that `got` is `want`, and that the `k8s-openapi` type `T` reads
/// it and writes back every field of it unchanged (it may add the fields it
/// always writes, such as an empty `metadata`, and leaves out nulls).
fn check<T: DeserializeOwned + Serialize>(got: &Value, want: Value) {
    assert_eq!(got, &want, "\n got: {got:#}\nwant: {want:#}");
    let typed: T = serde_json::from_value(got.clone()).expect("k8s-openapi reads the decoded JSON");
    let again = serde_json::to_value(typed).expect("k8s-openapi writes it back");
    assert_within(&without_nulls(got), &again, "");
}

/// Every field of `part` is in `whole`, with the same value.
fn assert_within(part: &Value, whole: &Value, path: &str) {
    match (part, whole) {
        (Value::Object(p), Value::Object(w)) => {
            for (k, v) in p {
                let Some(wv) = w.get(k) else {
                    panic!("k8s-openapi lost {path}.{k}")
                };
                assert_within(v, wv, &format!("{path}.{k}"));
            }
        }
        (Value::Array(p), Value::Array(w)) if p.len() == w.len() => {
            for (i, (pv, wv)) in p.iter().zip(w).enumerate() {
                assert_within(pv, wv, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(part, whole, "k8s-openapi changed {path}"),
    }
}

fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        v => v.clone(),
    }
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

fn string_map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Object metadata as Go writes it: every value field present, zero or
/// not, and the zero creation time as an empty message.
fn go_meta(name: &str, namespace: &str) -> pbmeta::ObjectMeta {
    pbmeta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(namespace),
        self_link: s(""),
        uid: s(""),
        resource_version: s(""),
        generation: Some(0),
        creation_timestamp: Some(pbmeta::Time::default()),
        ..Default::default()
    }
}

fn labelled(name: &str, namespace: &str, labels: &[(&str, &str)]) -> pbmeta::ObjectMeta {
    pbmeta::ObjectMeta {
        labels: string_map(labels),
        ..go_meta(name, namespace)
    }
}

fn time(seconds: i64) -> pbmeta::Time {
    pbmeta::Time {
        seconds: Some(seconds),
        nanos: Some(0),
    }
}
