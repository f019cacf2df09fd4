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
    let Some(map) = obj.as_object() else {
        return Ok(Slotted {
            bytes: Bytes::from(serde_json::to_vec(obj)?),
            slot: None,
            comma: false,
        });
    };
    let mut buf = Vec::with_capacity(4096);
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
            ("metadata", Value::Object(m)) if !m.contains_key("resourceVersion") => {
                // A map always encodes as `{` + members + `}`.
                slot = Some(buf.len() + 1);
                comma = !m.is_empty();
                serde_json::to_writer(&mut buf, v)?;
            }
            _ => serde_json::to_writer(&mut buf, v)?,
        }
    }
    buf.push(b'}');
    Ok(Slotted {
        bytes: Bytes::from(buf),
        slot,
        comma,
    })
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
    fn keys_needing_escapes_round_trip() {
        let obj = json!({"metadata": {"name": "a", "annotations": {"q\"uote": "v\n"}}, "a\\b": 1});
        let st = slotted(&obj).unwrap().stamp(1);
        let mut want = obj.clone();
        want["metadata"]["resourceVersion"] = json!("1");
        assert_eq!(parsed(&st), want);
    }
}
