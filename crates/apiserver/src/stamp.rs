//! One serialization of an object, shared by the store, the watch cache and
//! the response to the write.
//!
//! Objects are stored without `metadata.resourceVersion`: it is the store's
//! revision, known only once the write commits. Rather than encode the object
//! again for every revision it is served at, it is encoded once with a slot
//! at the start of `metadata`, and the revision is spliced into the slot. A
//! served copy remembers where its revision is, so a DELETED event (which
//! carries the last state at the delete's revision) is a splice too.

use std::ops::Range;

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;

/// An object's JSON without `metadata.resourceVersion`, and where it goes.
#[derive(Clone, Debug)]
pub struct Slotted {
    /// The JSON as stored.
    pub bytes: Bytes,
    /// Offset just after the `{` that opens `metadata`; `None` without metadata.
    slot: Option<usize>,
    /// Whether `metadata` has other members, so the inserted one needs a comma.
    comma: bool,
}

/// A served copy: the JSON with `metadata.resourceVersion`, and the byte range
/// of the revision's digits inside it.
#[derive(Clone, Debug)]
pub struct Stamped {
    /// The JSON as served.
    pub raw: Bytes,
    /// Where the revision's digits are in `raw`.
    pub rv: Option<Range<usize>>,
}

/// Encode `obj`, which must not carry `metadata.resourceVersion`, keeping the
/// offset where it goes. Keys come out in the same order as `to_vec` would.
pub fn slotted(obj: &Value) -> serde_json::Result<Slotted> {
    slotted_with(obj, None).map(|s| s.expect("nothing to splice"))
}

/// [`slotted`] of `obj` with `metadata.managedFields` kept out of it:
/// `managed_fields` is their JSON, written where encoding them as part of
/// `obj` would have put them. `None` if there is something to splice but
/// `obj` has no `metadata` map to put it in, or already has the field.
pub fn slotted_with(
    obj: &Value,
    managed_fields: Option<&[u8]>,
) -> serde_json::Result<Option<Slotted>> {
    let spliced = |m: &serde_json::Map<String, Value>| {
        managed_fields.is_none() || !m.contains_key("managedFields")
    };
    let Some(map) = obj.as_object() else {
        if managed_fields.is_some() {
            return Ok(None);
        }
        return Ok(Some(Slotted {
            bytes: Bytes::from(serde_json::to_vec(obj)?),
            slot: None,
            comma: false,
        }));
    };
    match map.get("metadata") {
        Some(Value::Object(m)) if spliced(m) => {}
        _ if managed_fields.is_none() => {}
        _ => return Ok(None),
    }
    let mut buf = Vec::with_capacity(4096 + managed_fields.map_or(0, <[u8]>::len));
    let mut slot = None;
    let mut comma = false;
    buf.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            buf.push(b',');
        }
        serde_json::to_writer(&mut buf, k)?;
        buf.push(b':');
        match (k.as_str(), v) {
            ("metadata", Value::Object(m)) => {
                // A map always encodes as `{` + members + `}`.
                if !m.contains_key("resourceVersion") {
                    slot = Some(buf.len() + 1);
                    comma = !m.is_empty() || managed_fields.is_some();
                }
                match managed_fields {
                    None => serde_json::to_writer(&mut buf, v)?,
                    Some(mf) => write_metadata_with(&mut buf, m, mf)?,
                }
            }
            _ => serde_json::to_writer(&mut buf, v)?,
        }
    }
    buf.push(b'}');
    Ok(Some(Slotted {
        bytes: Bytes::from(buf),
        slot,
        comma,
    }))
}

/// `metadata` (without `managedFields`) with `"managedFields":` and `mf`
/// among its members, in key order.
fn write_metadata_with(
    buf: &mut Vec<u8>,
    m: &serde_json::Map<String, Value>,
    mf: &[u8],
) -> serde_json::Result<()> {
    const KEY: &str = "managedFields";
    let mut pending = true;
    buf.push(b'{');
    let mut first = true;
    let mut member = |buf: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            buf.push(b',');
        }
    };
    for (k, v) in m {
        if pending && k.as_str() > KEY {
            member(buf);
            buf.extend_from_slice(b"\"managedFields\":");
            buf.extend_from_slice(mf);
            pending = false;
        }
        member(buf);
        serde_json::to_writer(&mut *buf, k)?;
        buf.push(b':');
        serde_json::to_writer(&mut *buf, v)?;
    }
    if pending {
        member(buf);
        buf.extend_from_slice(b"\"managedFields\":");
        buf.extend_from_slice(mf);
    }
    buf.push(b'}');
    Ok(())
}

impl Slotted {
    /// The JSON as served at revision `rev`.
    pub fn stamp(&self, rev: i64) -> Stamped {
        let Some(slot) = self.slot else {
            return Stamped {
                raw: self.bytes.clone(),
                rv: None,
            };
        };
        let digits = rev.to_string();
        let mut out = BytesMut::with_capacity(self.bytes.len() + digits.len() + 24);
        out.put_slice(&self.bytes[..slot]);
        out.put_slice(b"\"resourceVersion\":\"");
        let start = out.len();
        out.put_slice(digits.as_bytes());
        let end = out.len();
        out.put_slice(b"\"");
        if self.comma {
            out.put_u8(b',');
        }
        out.put_slice(&self.bytes[slot..]);
        Stamped {
            raw: out.freeze(),
            rv: Some(start..end),
        }
    }
}

impl Stamped {
    /// The same object as served at another revision; `None` if the position
    /// of the revision is not known.
    pub fn restamp(&self, rev: i64) -> Option<Stamped> {
        let span = self.rv.clone()?;
        let digits = rev.to_string();
        let mut out = BytesMut::with_capacity(self.raw.len() + digits.len());
        out.put_slice(&self.raw[..span.start]);
        out.put_slice(digits.as_bytes());
        let end = out.len();
        out.put_slice(&self.raw[span.end..]);
        Some(Stamped {
            raw: out.freeze(),
            rv: Some(span.start..end),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(s: &Stamped) -> Value {
        serde_json::from_slice(&s.raw).unwrap()
    }

    #[test]
    fn stamping_equals_setting_the_field() {
        let obj = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "labels": {"x": "y"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]},
        });
        let s = slotted(&obj).unwrap();
        assert_eq!(s.bytes, serde_json::to_vec(&obj).unwrap());
        let st = s.stamp(12345);
        let mut want = obj.clone();
        want["metadata"]["resourceVersion"] = json!("12345");
        assert_eq!(parsed(&st), want);
        assert_eq!(&st.raw[st.rv.clone().unwrap()], b"12345");
        let again = st.restamp(7).unwrap();
        want["metadata"]["resourceVersion"] = json!("7");
        assert_eq!(parsed(&again), want);
        assert_eq!(&again.raw[again.rv.clone().unwrap()], b"7");
    }

    #[test]
    fn empty_metadata_gets_no_comma_and_nested_metadata_is_left_alone() {
        let obj = json!({"metadata": {}, "spec": {"template": {"metadata": {"name": "t"}}}});
        let st = slotted(&obj).unwrap().stamp(3);
        assert_eq!(
            parsed(&st),
            json!({"metadata": {"resourceVersion": "3"}, "spec": {"template": {"metadata": {"name": "t"}}}})
        );
    }

    #[test]
    fn objects_without_metadata_are_served_as_they_are() {
        for obj in [json!({"kind": "X"}), json!({"metadata": "odd"}), json!([1])] {
            let st = slotted(&obj).unwrap().stamp(9);
            assert_eq!(parsed(&st), obj);
            assert!(st.rv.is_none() && st.restamp(10).is_none());
        }
    }

    #[test]
    fn managed_fields_spliced_where_encoding_them_puts_them() {
        let mf = json!([{"apiVersion": "v1", "fieldsType": "FieldsV1", "fieldsV1": {"f:a": {}}, "manager": "m\"q", "operation": "Apply"}]);
        let mf_bytes = serde_json::to_vec(&mf).unwrap();
        for meta in [
            json!({}),
            json!({"name": "a"}),
            json!({"labels": {"x": "y"}}),
            json!({"annotations": {"z": "1"}, "labels": {"x": "y"}, "name": "a", "uid": "u"}),
            json!({"managedFieldz": 1, "managedField": 2}),
            json!({"resourceVersion": "4", "name": "a"}),
        ] {
            let detached =
                json!({"apiVersion": "v1", "metadata": meta, "spec": {"metadata": {"x": 1}}});
            let mut whole = detached.clone();
            whole["metadata"]["managedFields"] = mf.clone();
            let s = slotted_with(&detached, Some(&mf_bytes)).unwrap().unwrap();
            assert_eq!(
                String::from_utf8_lossy(&s.bytes),
                serde_json::to_string(&whole).unwrap()
            );
            let st = s.stamp(8);
            let mut want = whole.clone();
            if want["metadata"].get("resourceVersion").is_none() {
                want["metadata"]["resourceVersion"] = json!("8");
            }
            assert_eq!(parsed(&st), want);
        }
        // Nowhere to put them, or there already: nothing.
        for obj in [
            json!({"kind": "X"}),
            json!({"metadata": "odd"}),
            json!({"metadata": {"managedFields": []}}),
            json!([1]),
        ] {
            assert!(
                slotted_with(&obj, Some(&mf_bytes)).unwrap().is_none(),
                "{obj}"
            );
        }
    }

    #[test]
    fn keys_needing_escapes_round_trip() {
        let obj = json!({"metadata": {"name": "a", "annotations": {"q\"uote": "v\n"}}, "a\\b": 1});
        let st = slotted(&obj).unwrap().stamp(1);
        let mut want = obj.clone();
        want["metadata"]["resourceVersion"] = json!("1");
        assert_eq!(parsed(&st), want);
    }
}
