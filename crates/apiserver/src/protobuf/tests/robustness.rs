//! Errors, proto2 corner cases, and hostile input: truncation at every
//! length, random bytes, bit flips, deep nesting.

use k8s_pb::api::{apps::v1 as apps, core::v1 as core};
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use prost::Message;
use serde_json::json;

use super::super::decode::{decode_into, MAX_DEPTH};
use super::super::schema::{msg, opt, Msg};
use super::super::ProtoError;
use super::workloads::rich_pod;
use super::*;

/// An envelope around raw bytes we make by hand.
fn wrap(api_version: &str, kind: &str, raw: Vec<u8>) -> Vec<u8> {
    let unknown = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s(api_version),
            kind: s(kind),
        }),
        raw: Some(raw),
        ..Default::default()
    };
    let mut body = b"k8s\x00".to_vec();
    body.extend(unknown.encode_to_vec());
    body
}

/// A length-delimited field, encoded by hand.
fn len_field(tag: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_key(tag, prost::encoding::WireType::LengthDelimited, &mut out);
    prost::encoding::encode_varint(payload.len() as u64, &mut out);
    out.extend_from_slice(payload);
    out
}

fn varint_field(tag: u32, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    prost::encoding::encode_key(tag, prost::encoding::WireType::Varint, &mut out);
    prost::encoding::encode_varint(v, &mut out);
    out
}

#[test]
fn unknown_fields_are_errors_with_their_place() {
    let spec = apps::DeploymentSpec {
        replicas: Some(1),
        ..Default::default()
    };
    let mut spec_bytes = spec.encode_to_vec();
    spec_bytes.extend(varint_field(99, 1));
    let err = decode(&wrap("apps/v1", "Deployment", len_field(2, &spec_bytes))).unwrap_err();
    assert_eq!(
        err,
        ProtoError::UnknownField {
            message: "apps/v1.DeploymentSpec".into(),
            tag: 99,
            path: "spec".into()
        }
    );
    assert_eq!(err.http_status(), 415);
    assert!(
        err.to_string()
            .contains("field 99 of apps/v1.DeploymentSpec (at spec)"),
        "{err}"
    );

    // Deep inside a pod template.
    let mut container = core::Container {
        name: s("c"),
        ..Default::default()
    }
    .encode_to_vec();
    container.extend(len_field(500, b"x"));
    let pod_spec = [
        len_field(2, &core::Container::default().encode_to_vec()),
        len_field(2, &container),
    ]
    .concat();
    let template = len_field(2, &pod_spec);
    let raw = len_field(2, &len_field(3, &template));
    let err = decode(&wrap("apps/v1", "Deployment", raw)).unwrap_err();
    assert_eq!(
        err,
        ProtoError::UnknownField {
            message: "core/v1.Container".into(),
            tag: 500,
            path: "spec.template.spec.containers[1]".into()
        }
    );

    // At the top, and in a map entry.
    let err = decode(&wrap("v1", "ConfigMap", varint_field(77, 0))).unwrap_err();
    assert_eq!(
        err,
        ProtoError::UnknownField {
            message: "core/v1.ConfigMap".into(),
            tag: 77,
            path: String::new()
        }
    );
    let entry = [len_field(1, b"k"), len_field(2, b"v"), varint_field(3, 1)].concat();
    let err = decode(&wrap("v1", "ConfigMap", len_field(2, &entry))).unwrap_err();
    assert!(
        matches!(err, ProtoError::UnknownField { tag: 3, ref path, .. } if path == "data"),
        "{err:?}"
    );
}

#[test]
fn unsupported_kinds_and_envelopes() {
    let err = decode(&wrap("v1", "Node", vec![])).unwrap_err();
    assert_eq!(
        err,
        ProtoError::UnsupportedKind {
            api_version: "v1".into(),
            kind: "Node".into()
        }
    );
    assert_eq!(err.http_status(), 415);
    assert!(decode(&wrap("apps/v2", "Deployment", vec![])).is_err());

    let err = decode(b"{\"kind\":\"Pod\"}").unwrap_err();
    assert!(matches!(err, ProtoError::Malformed(_)));
    assert_eq!(err.http_status(), 400);

    let gz = Unknown {
        type_meta: Some(TypeMeta {
            api_version: s("v1"),
            kind: s("ConfigMap"),
        }),
        raw: Some(vec![]),
        content_encoding: s("gzip"),
        content_type: s(""),
    };
    let body = [b"k8s\x00".to_vec(), gz.encode_to_vec()].concat();
    assert!(matches!(
        decode(&body),
        Err(ProtoError::UnsupportedEncoding(_))
    ));
    let json_inside = Unknown {
        content_encoding: None,
        content_type: s("application/json"),
        ..gz
    };
    let body = [b"k8s\x00".to_vec(), json_inside.encode_to_vec()].concat();
    assert!(matches!(
        decode(&body),
        Err(ProtoError::UnsupportedEncoding(_))
    ));

    // An empty object is fine: only apiVersion and kind.
    assert_eq!(
        decode(&wrap("v1", "Namespace", vec![])).unwrap(),
        json!({ "apiVersion": "v1", "kind": "Namespace" })
    );
}

#[test]
fn wrong_wire_types_and_bad_values_are_malformed() {
    // metadata.name as a varint.
    let raw = len_field(1, &varint_field(1, 5));
    let err = decode(&wrap("v1", "ConfigMap", raw)).unwrap_err();
    assert!(
        matches!(&err, ProtoError::Malformed(m) if m.contains("ObjectMeta") && m.contains("at metadata")),
        "{err}"
    );
    // IntOrString of type 2.
    let ios = [varint_field(1, 2), varint_field(2, 3)].concat();
    let raw = len_field(2, &len_field(1, &ios));
    assert!(matches!(
        decode(&wrap("policy/v1", "PodDisruptionBudget", raw)),
        Err(ProtoError::Malformed(_))
    ));
    // A creation time past the year 9999.
    let raw = len_field(1, &len_field(8, &varint_field(1, 300_000_000_000)));
    assert!(matches!(
        decode(&wrap("v1", "ConfigMap", raw)),
        Err(ProtoError::Malformed(_))
    ));
    // managedFields whose fieldsV1 is not JSON.
    let entry = [
        len_field(1, b"kubectl"),
        len_field(7, &len_field(1, b"{not json")),
    ]
    .concat();
    let raw = len_field(1, &len_field(17, &entry));
    assert!(matches!(
        decode(&wrap("v1", "ConfigMap", raw)),
        Err(ProtoError::Malformed(_))
    ));
}

#[test]
fn managed_fields_carry_their_json() {
    let cm = core::ConfigMap {
        metadata: Some(meta::ObjectMeta {
            managed_fields: vec![meta::ManagedFieldsEntry {
                manager: s("kubectl"),
                operation: s("Update"),
                api_version: s("v1"),
                time: Some(time(0)),
                fields_type: s("FieldsV1"),
                fields_v1: Some(meta::FieldsV1 {
                    raw: Some(br#"{"f:data":{"f:a":{}}}"#.to_vec()),
                }),
                subresource: s(""),
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    let got = decoded("v1", "ConfigMap", &cm);
    assert_eq!(
        got["metadata"]["managedFields"],
        json!([{
            "manager": "kubectl",
            "operation": "Update",
            "apiVersion": "v1",
            "time": "1970-01-01T00:00:00Z",
            "fieldsType": "FieldsV1",
            "fieldsV1": { "f:data": { "f:a": {} } }
        }])
    );
}

#[test]
fn proto2_merging_packing_and_strings() {
    // metadata twice: merged; name last wins; labels and finalizers accumulate.
    let first = meta::ObjectMeta {
        name: s("a"),
        finalizers: strings(&["x"]),
        ..Default::default()
    };
    let second = meta::ObjectMeta {
        name: s("b"),
        labels: string_map(&[("k", "v")]),
        finalizers: strings(&["y"]),
        creation_timestamp: Some(meta::Time {
            seconds: Some(60),
            nanos: None,
        }),
        ..Default::default()
    };
    let third = meta::ObjectMeta {
        creation_timestamp: Some(meta::Time {
            seconds: None,
            nanos: Some(5),
        }),
        ..Default::default()
    };
    let raw = [first, second, third]
        .iter()
        .flat_map(|m| len_field(1, &m.encode_to_vec()))
        .collect();
    let got = decode(&wrap("v1", "ConfigMap", raw)).unwrap();
    assert_eq!(
        got["metadata"],
        json!({
            "name": "b",
            "labels": { "k": "v" },
            "finalizers": ["x", "y"],
            // {seconds: 60} merged with {nanos: 5}: still second 60.
            "creationTimestamp": "1970-01-01T00:01:00Z"
        })
    );
    // A value field set, then sent again as zero: unset.
    let raw = [
        len_field(1, &len_field(1, b"a")),
        len_field(1, &len_field(1, b"")),
    ]
    .concat();
    assert_eq!(
        decode(&wrap("v1", "ConfigMap", raw)).unwrap()["metadata"],
        json!({})
    );

    // supplementalGroups (repeated int64, field 4 of PodSecurityContext), packed and not.
    let mut packed_payload = Vec::new();
    for v in [1u64, 300, (-2i64) as u64] {
        prost::encoding::encode_varint(v, &mut packed_payload);
    }
    let psc = [len_field(4, &packed_payload), varint_field(4, 7)].concat();
    let raw = len_field(2, &len_field(14, &psc));
    let got = decode(&wrap("v1", "Pod", raw)).unwrap();
    assert_eq!(
        got["spec"]["securityContext"]["supplementalGroups"],
        json!([1, 300, -2, 7])
    );

    // Invalid UTF-8 is replaced, as Go's JSON encoder does.
    let raw = len_field(1, &len_field(1, b"a\xffb"));
    assert_eq!(
        decode(&wrap("v1", "ConfigMap", raw)).unwrap()["metadata"]["name"],
        "a\u{fffd}b"
    );
}

static NODE: Msg = Msg {
    name: "test.Node",
    fields: &[opt(1, "child", msg(&NODE))],
};

#[test]
fn nesting_is_bounded() {
    let mut bytes = Vec::new();
    for _ in 0..(MAX_DEPTH + 10) {
        bytes = len_field(1, &bytes);
    }
    let mut out = serde_json::Map::new();
    let err = decode_into(&NODE, &bytes, &mut out, 1)
        .map_err(|e| e.into_proto())
        .unwrap_err();
    assert!(
        matches!(&err, ProtoError::Malformed(m) if m.contains("deeper than 64")),
        "{err}"
    );
    let mut shallow = Vec::new();
    for _ in 0..(MAX_DEPTH - 1) {
        shallow = len_field(1, &shallow);
    }
    assert!(decode_into(&NODE, &shallow, &mut serde_json::Map::new(), 1).is_ok());
}

/// Offsets where a top-level field of `buf` ends, found with prost's own
/// primitives.
fn field_ends(buf: &[u8]) -> Vec<usize> {
    let mut ends = vec![0];
    let mut rest = buf;
    while !rest.is_empty() {
        let (_, wire) = prost::encoding::decode_key(&mut rest).unwrap();
        match wire {
            prost::encoding::WireType::Varint => {
                prost::encoding::decode_varint(&mut rest).unwrap();
            }
            prost::encoding::WireType::LengthDelimited => {
                let n = prost::encoding::decode_varint(&mut rest).unwrap() as usize;
                rest = &rest[n..];
            }
            w => panic!("unexpected wire type {w:?}"),
        }
        ends.push(buf.len() - rest.len());
    }
    ends
}

#[test]
fn every_truncation_is_an_error_or_a_shorter_valid_object() {
    let raw = rich_pod().encode_to_vec();
    let ends = field_ends(&raw);
    for n in 0..raw.len() {
        let result = decode(&wrap("v1", "Pod", raw[..n].to_vec()));
        assert_eq!(
            result.is_ok(),
            ends.contains(&n),
            "raw cut at {n} of {}: {result:?}",
            raw.len()
        );
    }
    // The whole body cut anywhere: never a panic, and an error unless the cut
    // falls between envelope fields.
    let body = envelope("v1", "Pod", &rich_pod());
    let envelope_ends = field_ends(&body[4..]);
    for n in 0..body.len() {
        let result = decode(&body[..n]);
        let boundary = n >= 4 && envelope_ends.contains(&(n - 4));
        assert!(result.is_err() || boundary, "body cut at {n}: {result:?}");
    }
}

/// xorshift64*: deterministic pseudo-random bytes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Output stays within a constant factor of the input.
fn assert_bounded(input: &[u8], result: &Result<serde_json::Value, ProtoError>) {
    if let Ok(v) = result {
        let out = serde_json::to_string(v).unwrap().len();
        assert!(
            out <= 64 * input.len() + 256,
            "{} bytes of JSON from {} bytes",
            out,
            input.len()
        );
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let kinds = [
        ("v1", "Pod"),
        ("apps/v1", "Deployment"),
        ("v1", "Secret"),
        ("batch/v1", "CronJob"),
        ("v1", "Service"),
    ];
    for i in 0..20_000 {
        let len = (rng.next() % 96) as usize;
        let raw = rng.bytes(len);
        let (v, k) = kinds[i % kinds.len()];
        let body = wrap(v, k, raw);
        let result = decode(&body);
        assert_bounded(&body, &result);
        let bare = rng.bytes(len);
        let _ = decode(&bare);
        let _ = decode(&[b"k8s\x00".as_slice(), &bare].concat());
    }
}

#[test]
fn bit_flips_of_a_valid_object_never_panic() {
    let mut rng = Rng(42);
    let body = envelope("v1", "Pod", &rich_pod());
    for _ in 0..20_000 {
        let mut b = body.clone();
        for _ in 0..=(rng.next() % 4) {
            let at = (rng.next() as usize) % b.len();
            b[at] ^= 1 << (rng.next() % 8);
        }
        let result = decode(&b);
        assert_bounded(&b, &result);
    }
}
