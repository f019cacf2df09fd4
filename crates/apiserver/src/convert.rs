//! Objects served in one form and stored in another.
//!
//! - Custom resources are stored at their storage version and served at any
//!   version of their definition ([`crate::crd`]).
//! - events.k8s.io/v1 Events and core/v1 Events are one resource, as
//!   upstream stores them: both live under `/registry/core/events/` in the
//!   core shape, and events.k8s.io reads and writes are converted with
//!   upstream's field mapping (`regarding` ↔ `involvedObject`, `note` ↔
//!   `message`, `reportingController` ↔ `reportingComponent`,
//!   `deprecated*` ↔ `source`, `firstTimestamp`, `lastTimestamp`, `count`).
//!   So an event written through either API is read through both.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::cache::Entry;
use crate::resources::ResourceInfo;

/// Fields renamed between events.k8s.io/v1 (first) and core/v1 (second);
/// the others keep their names.
const EVENT_RENAMES: &[(&str, &str)] = &[
    ("regarding", "involvedObject"),
    ("note", "message"),
    ("reportingController", "reportingComponent"),
    ("deprecatedSource", "source"),
    ("deprecatedFirstTimestamp", "firstTimestamp"),
    ("deprecatedLastTimestamp", "lastTimestamp"),
    ("deprecatedCount", "count"),
];
const EVENT_SHARED: &[&str] = &[
    "metadata",
    "related",
    "reason",
    "type",
    "eventTime",
    "series",
    "action",
    "reportingInstance",
];

/// Whether `info` is events.k8s.io's Event, stored as core Events.
pub fn is_events_v1(info: &ResourceInfo) -> bool {
    info.group == "events.k8s.io" && info.plural == "events"
}

fn rename(obj: &Value, api_version: &str, from_events: bool) -> Value {
    let src = obj.as_object().cloned().unwrap_or_default();
    let mut out = Map::new();
    out.insert("apiVersion".into(), api_version.into());
    out.insert("kind".into(), "Event".into());
    for k in EVENT_SHARED {
        if let Some(v) = src.get(*k) {
            out.insert((*k).into(), v.clone());
        }
    }
    for (events, core) in EVENT_RENAMES {
        let (from, to) = if from_events {
            (events, core)
        } else {
            (core, events)
        };
        if let Some(v) = src.get(*from) {
            out.insert((*to).into(), v.clone());
        }
    }
    if !from_events && !out.contains_key("eventTime") {
        // A required field of events.k8s.io/v1; core events often lack it,
        // and upstream then serves it as null.
        out.insert("eventTime".into(), Value::Null);
    }
    Value::Object(out)
}

/// An events.k8s.io/v1 Event as the core Event it is stored as.
pub fn event_to_core(obj: &Value) -> Value {
    rename(obj, "v1", true)
}

/// A stored core Event as events.k8s.io/v1 serves it.
pub fn core_to_event(obj: &Value) -> Value {
    rename(obj, "events.k8s.io/v1", false)
}

/// A stored object as `info` serves it.
pub fn to_served(info: &ResourceInfo, obj: Value) -> Value {
    if is_events_v1(info) {
        return core_to_event(&obj);
    }
    crate::crd::to_version(info, obj)
}

/// The form of `obj` written to the store, if it differs.
pub fn for_storage(info: &ResourceInfo, obj: &Value) -> Option<Value> {
    if is_events_v1(info) {
        return Some(event_to_core(obj));
    }
    crate::crd::for_storage(info, obj)
}

/// A cache entry as `info` serves it (the same entry when nothing changes).
pub fn entry_for(info: &ResourceInfo, e: Arc<Entry>) -> Arc<Entry> {
    if !is_events_v1(info) {
        return crate::crd::entry_at_version(info, e);
    }
    match serde_json::to_vec(&core_to_event(&e.value())) {
        Ok(raw) => Arc::new(Entry {
            raw: Bytes::from(raw),
            rv_span: None,
            ..(*e).clone()
        }),
        Err(_) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_round_trip_between_the_two_apis() {
        let v1 = json!({
            "apiVersion": "events.k8s.io/v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"},
            "eventTime": "2026-11-28T00:00:00.000000Z",
            "reportingController": "wharf.dev/test", "reportingInstance": "i-1",
            "action": "Testing", "reason": "Tested", "type": "Normal",
            "regarding": {"kind": "Pod", "name": "p", "namespace": "default"},
            "note": "hello",
            "series": {"count": 2, "lastObservedTime": "2026-11-28T00:00:01.000000Z"},
        });
        let core = event_to_core(&v1);
        assert_eq!(core["apiVersion"], "v1");
        assert_eq!(core["involvedObject"]["name"], "p");
        assert_eq!(core["message"], "hello");
        assert_eq!(core["reportingComponent"], "wharf.dev/test");
        assert!(core.get("note").is_none());
        let _: k8s_openapi::api::core::v1::Event = serde_json::from_value(core.clone()).unwrap();
        assert_eq!(core_to_event(&core), v1);
    }

    #[test]
    fn core_events_are_served_by_events_v1() {
        let core = json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": "e", "namespace": "default"},
            "involvedObject": {"kind": "Pod", "name": "p"},
            "reason": "Started", "message": "started", "type": "Normal",
            "source": {"component": "kubelet", "host": "n1"},
            "firstTimestamp": "2026-11-28T00:00:00Z", "lastTimestamp": "2026-11-28T00:00:05Z",
            "count": 3,
        });
        let v1 = core_to_event(&core);
        assert_eq!(v1["apiVersion"], "events.k8s.io/v1");
        assert_eq!(v1["regarding"]["name"], "p");
        assert_eq!(v1["note"], "started");
        assert_eq!(v1["deprecatedSource"]["host"], "n1");
        assert_eq!(v1["deprecatedCount"], 3);
        assert_eq!(v1["deprecatedLastTimestamp"], "2026-11-28T00:00:05Z");
        assert!(v1["eventTime"].is_null());
        assert_eq!(event_to_core(&v1)["count"], 3);
    }
}
