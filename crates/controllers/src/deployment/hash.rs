//! The `pod-template-hash`: the label that tells apart the ReplicaSets (and
//! pods) of a Deployment's templates, and the suffix of the ReplicaSet names.
//!
//! Upstream hashes the template with FNV-32a over Go's `spew` printing of the
//! struct, then the collision count, and encodes the decimal sum with
//! `rand.SafeEncodeString`. The `spew` text cannot be reproduced outside Go,
//! so the bytes hashed here are the template's canonical JSON (keys sorted,
//! no whitespace) instead; the rest is the same (FNV-32a, the collision
//! count as 8 little-endian bytes, the same alphabet). Our hashes therefore
//! differ from upstream's for the same template, which matters to nobody:
//! the controller finds a Deployment's current ReplicaSet by comparing
//! templates, never by recomputing a hash.

use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::Value;

/// The label (and selector key) carrying the hash.
pub const HASH_LABEL: &str = "pod-template-hash";

/// The characters upstream's `rand.SafeEncodeString` maps to (no vowels,
/// no 0, 1 or 3, so no words).
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

const FNV32_OFFSET: u32 = 0x811c_9dc5;
const FNV32_PRIME: u32 = 0x0100_0193;

fn fnv32a(mut h: u32, bytes: &[u8]) -> u32 {
    for &b in bytes {
        h ^= u32::from(b);
        h = h.wrapping_mul(FNV32_PRIME);
    }
    h
}

/// `rand.SafeEncodeString`: each character mapped into [`ALPHANUMS`].
pub fn safe_encode(s: &str) -> String {
    s.chars()
        .map(|c| ALPHANUMS[(c as usize) % ALPHANUMS.len()] as char)
        .collect()
}

/// Write `v` as JSON with object keys sorted and no whitespace, so equal
/// values always give equal bytes whatever order their keys came in.
pub fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(x, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The hash of `template` with the Deployment's `status.collisionCount`.
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let v = serde_json::to_value(template).unwrap_or(Value::Null);
    let mut text = String::new();
    canonical_json(&v, &mut text);
    let mut h = fnv32a(FNV32_OFFSET, text.as_bytes());
    if let Some(c) = collision_count {
        // Upstream writes the count into an 8-byte buffer, little endian.
        let mut buf = [0u8; 8];
        buf[..4].copy_from_slice(&(c as u32).to_le_bytes());
        h = fnv32a(h, &buf);
    }
    safe_encode(&h.to_string())
}

/// Drop nulls, empty lists and empty objects, as upstream's semantic
/// equality sees a decoded Go struct (nil and empty are alike).
fn normalize(v: &Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Object(m) => {
            let m: serde_json::Map<String, Value> = m
                .iter()
                .filter_map(|(k, v)| normalize(v).map(|v| (k.clone(), v)))
                .collect();
            (!m.is_empty()).then_some(Value::Object(m))
        }
        Value::Array(a) => {
            let a: Vec<Value> = a
                .iter()
                .map(|x| normalize(x).unwrap_or(Value::Null))
                .collect();
            (!a.is_empty()).then_some(Value::Array(a))
        }
        other => Some(other.clone()),
    }
}

fn without_hash(t: &PodTemplateSpec) -> Option<Value> {
    let mut v = serde_json::to_value(t).ok()?;
    if let Some(labels) = v
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    normalize(&v)
}

/// Upstream's `EqualIgnoreHash`: the two templates are the same but for
/// the `pod-template-hash` label (a Deployment's template has none, its
/// ReplicaSets' do).
pub fn equal_ignore_hash(a: &PodTemplateSpec, b: &PodTemplateSpec) -> bool {
    without_hash(a) == without_hash(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(v: Value) -> PodTemplateSpec {
        serde_json::from_value(v).unwrap()
    }

    fn web(image: &str) -> PodTemplateSpec {
        template(json!({
            "metadata": {"labels": {"app": "web", "tier": "fe"}},
            "spec": {"containers": [{"name": "c", "image": image}]}
        }))
    }

    #[test]
    fn fnv32a_matches_the_reference_vectors() {
        assert_eq!(fnv32a(FNV32_OFFSET, b""), 0x811c_9dc5);
        assert_eq!(fnv32a(FNV32_OFFSET, b"a"), 0xe40c_292c);
        assert_eq!(fnv32a(FNV32_OFFSET, b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn safe_encoding_uses_upstreams_alphabet() {
        // '0' is 48: 48 % 27 = 21 -> '4'; '9' is 57: 57 % 27 = 3 -> 'f'.
        assert_eq!(safe_encode("0"), "4");
        assert_eq!(safe_encode("9"), "f");
        assert_eq!(safe_encode("1234567890"), "56789bcdf4");
    }

    #[test]
    fn the_hash_is_stable_and_depends_only_on_content() {
        let h = template_hash(&web("nginx:1.27"), None);
        // Pinned: a change here renames every ReplicaSet after an upgrade.
        assert_eq!(h, template_hash(&web("nginx:1.27"), None));
        assert_eq!(h, "6965bf964c");
        assert!(h.len() <= 10 && h.bytes().all(|b| ALPHANUMS.contains(&b)));
        // Key order in the source does not matter.
        let reordered = template(json!({
            "spec": {"containers": [{"image": "nginx:1.27", "name": "c"}]},
            "metadata": {"labels": {"tier": "fe", "app": "web"}}
        }));
        assert_eq!(template_hash(&reordered, None), h);
        // Content does.
        assert_ne!(template_hash(&web("nginx:1.28"), None), h);
        // So does the collision count, and 0 differs from none.
        let c0 = template_hash(&web("nginx:1.27"), Some(0));
        let c1 = template_hash(&web("nginx:1.27"), Some(1));
        assert!(c0 != h && c1 != h && c0 != c1);
    }

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let mut s = String::new();
        canonical_json(&json!({"b": [{"z": 1, "a": "x\"y"}], "a": null}), &mut s);
        assert_eq!(s, r#"{"a":null,"b":[{"a":"x\"y","z":1}]}"#);
    }

    #[test]
    fn templates_compare_ignoring_the_hash_label_and_empty_values() {
        let d = web("nginx:1.27");
        let mut rs = d.clone();
        rs.metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert(HASH_LABEL.into(), "abc".into());
        assert!(equal_ignore_hash(&d, &rs));
        assert!(equal_ignore_hash(&rs, &d));
        assert!(!equal_ignore_hash(&d, &web("nginx:1.28")));
        // An empty annotation map is no annotation map.
        let mut empty = d.clone();
        empty.metadata.as_mut().unwrap().annotations = Some(Default::default());
        assert!(equal_ignore_hash(&d, &empty));
        // A different label is a different template.
        let mut other = d.clone();
        other
            .metadata
            .as_mut()
            .unwrap()
            .labels
            .as_mut()
            .unwrap()
            .insert("x".into(), "y".into());
        assert!(!equal_ignore_hash(&d, &other));
    }
}
