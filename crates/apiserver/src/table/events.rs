//! Events, in both the core `v1` and the `events.k8s.io/v1` shape.
//!
//! Upstream serves both groups from one storage whose printer reads the
//! internal core type, so both print the same columns; the
//! `events.k8s.io` fields are mapped back to their core names first
//! (`regarding` is `involvedObject`, `note` is `message`, and the
//! `deprecated*` fields are the old timestamps, count and source).

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::format::{int, obj, parse_time, s, Clock};
use super::{Column, NAME};

/// Upstream's event columns: LAST SEEN first, NAME last and wide.
pub(super) const COLUMNS: &[Column] = &[
    Column::new("Last Seen", "string", "The time at which the most recent occurrence of this event was recorded."),
    Column::new("Type", "string", "Type of this event (Normal, Warning), new types could be added in the future"),
    Column::new("Reason", "string", "This should be a short, machine understandable string that gives the reason for the transition into the object's current status."),
    Column::new("Object", "string", "The object that this event is about."),
    Column::wide("Subobject", "string", "If referring to a piece of an object instead of an entire object, this string should contain a valid JSON/Go field access statement, such as desiredState.manifest.containers[2]."),
    Column::wide("Source", "string", "The component reporting this event. Should be a short machine understandable string."),
    Column::new("Message", "string", "A human-readable description of the status of this operation."),
    Column::wide("First Seen", "string", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)"),
    Column::wide("Count", "string", "The number of times this event has occurred."),
    Column { priority: 1, ..NAME },
];

/// The fields the printer reads, named as in the core type.
struct Event<'a> {
    name: &'a str,
    kind: &'a str,
    object_name: &'a str,
    field_path: &'a str,
    event_type: &'a str,
    reason: &'a str,
    message: &'a str,
    source_component: &'a str,
    source_host: &'a str,
    reporting_controller: &'a str,
    reporting_instance: &'a str,
    first: Option<OffsetDateTime>,
    last: Option<OffsetDateTime>,
    event_time: Option<OffsetDateTime>,
    count: i64,
    /// `(count, lastObservedTime)` of an event series.
    series: Option<(i64, Option<OffsetDateTime>)>,
}

fn series(ev: &Value) -> Option<(i64, Option<OffsetDateTime>)> {
    obj(ev, "/series")?;
    Some((
        int(ev, "/series/count"),
        parse_time(ev.pointer("/series/lastObservedTime")),
    ))
}

/// One core `v1` Event row.
pub(super) fn core_event(ev: &Value, clock: &Clock) -> Vec<Value> {
    let e = Event {
        name: s(ev, "/metadata/name"),
        kind: s(ev, "/involvedObject/kind"),
        object_name: s(ev, "/involvedObject/name"),
        field_path: s(ev, "/involvedObject/fieldPath"),
        event_type: s(ev, "/type"),
        reason: s(ev, "/reason"),
        message: s(ev, "/message"),
        source_component: s(ev, "/source/component"),
        source_host: s(ev, "/source/host"),
        reporting_controller: s(ev, "/reportingComponent"),
        reporting_instance: s(ev, "/reportingInstance"),
        first: parse_time(ev.get("firstTimestamp")),
        last: parse_time(ev.get("lastTimestamp")),
        event_time: parse_time(ev.get("eventTime")),
        count: int(ev, "/count"),
        series: series(ev),
    };
    cells(&e, clock)
}

/// One `events.k8s.io/v1` Event row.
pub(super) fn events_event(ev: &Value, clock: &Clock) -> Vec<Value> {
    let e = Event {
        name: s(ev, "/metadata/name"),
        kind: s(ev, "/regarding/kind"),
        object_name: s(ev, "/regarding/name"),
        field_path: s(ev, "/regarding/fieldPath"),
        event_type: s(ev, "/type"),
        reason: s(ev, "/reason"),
        message: s(ev, "/note"),
        source_component: s(ev, "/deprecatedSource/component"),
        source_host: s(ev, "/deprecatedSource/host"),
        reporting_controller: s(ev, "/reportingController"),
        reporting_instance: s(ev, "/reportingInstance"),
        first: parse_time(ev.get("deprecatedFirstTimestamp")),
        last: parse_time(ev.get("deprecatedLastTimestamp")),
        event_time: parse_time(ev.get("eventTime")),
        count: int(ev, "/deprecatedCount"),
        series: series(ev),
    };
    cells(&e, clock)
}

/// Upstream's `formatEventSource`: component (else the reporting
/// controller), then `, host` (else the reporting instance) when there is one.
fn source(e: &Event) -> String {
    let component = if e.source_component.is_empty() {
        e.reporting_controller
    } else {
        e.source_component
    };
    let host = if e.source_host.is_empty() {
        e.reporting_instance
    } else {
        e.source_host
    };
    if host.is_empty() {
        component.to_string()
    } else {
        format!("{component}, {host}")
    }
}

fn cells(e: &Event, clock: &Clock) -> Vec<Value> {
    // Events of the new API have only eventTime; old ones only the timestamps.
    let first = if e.first.is_some() {
        clock.since(e.first)
    } else {
        clock.since(e.event_time)
    };
    let mut last = if e.last.is_some() {
        clock.since(e.last)
    } else {
        first.clone()
    };
    let mut count = e.count;
    if let Some((series_count, observed)) = e.series {
        last = clock.since(observed);
        count = series_count;
    } else if count == 0 {
        // A singleton event of the new API carries no count.
        count = 1;
    }
    let object = if e.object_name.is_empty() {
        e.kind.to_lowercase()
    } else {
        format!("{}/{}", e.kind.to_lowercase(), e.object_name)
    };
    vec![
        json!(last),
        json!(e.event_type),
        json!(e.reason),
        json!(object),
        json!(e.field_path),
        json!(source(e)),
        json!(e.message.trim()),
        json!(first),
        json!(count),
        json!(e.name),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{ago, cells, headers};
    use serde_json::json;

    #[test]
    fn columns_are_upstreams() {
        let want = vec![
            ("Last Seen", "string", "", 0),
            ("Type", "string", "", 0),
            ("Reason", "string", "", 0),
            ("Object", "string", "", 0),
            ("Subobject", "string", "", 1),
            ("Source", "string", "", 1),
            ("Message", "string", "", 0),
            ("First Seen", "string", "", 1),
            ("Count", "string", "", 1),
            ("Name", "string", "name", 1),
        ];
        assert_eq!(headers("", "Event"), want);
        assert_eq!(headers("events.k8s.io", "Event"), want);
    }

    #[test]
    fn core_event_with_count() {
        let ev = json!({
            "metadata": {"name": "web-0.17a2b3c4d5e6f7a8", "namespace": "default", "creationTimestamp": ago(900)},
            "involvedObject": {"kind": "Pod", "name": "web-0", "namespace": "default", "fieldPath": "spec.containers{app}"},
            "reason": "BackOff", "message": "Back-off restarting failed container app in pod web-0_default(uid)\n",
            "source": {"component": "kubelet", "host": "node-1"},
            "firstTimestamp": ago(900), "lastTimestamp": ago(42), "count": 7, "type": "Warning"
        });
        assert_eq!(
            cells("", "Event", ev),
            vec![
                json!("42s"),
                json!("Warning"),
                json!("BackOff"),
                json!("pod/web-0"),
                json!("spec.containers{app}"),
                json!("kubelet, node-1"),
                json!("Back-off restarting failed container app in pod web-0_default(uid)"),
                json!("15m"),
                json!(7),
                json!("web-0.17a2b3c4d5e6f7a8"),
            ]
        );
    }

    #[test]
    fn new_style_events() {
        // Written through events.k8s.io: eventTime only, reporting controller, no count.
        let ev = json!({
            "metadata": {"name": "web.1", "namespace": "default"},
            "eventTime": "2024-01-02T03:03:05.123456Z",
            "regarding": {"kind": "Deployment", "name": "web"},
            "reason": "ScalingReplicaSet", "note": "Scaled up replica set web-5d4 to 3", "type": "Normal",
            "reportingController": "deployment-controller", "reportingInstance": "", "action": "Scale"
        });
        assert_eq!(
            cells("events.k8s.io", "Event", ev.clone()),
            vec![
                json!("59s"),
                json!("Normal"),
                json!("ScalingReplicaSet"),
                json!("deployment/web"),
                json!(""),
                json!("deployment-controller"),
                json!("Scaled up replica set web-5d4 to 3"),
                json!("59s"),
                json!(1),
                json!("web.1"),
            ]
        );
        // The same event read through the core API.
        let core = json!({
            "metadata": {"name": "web.1"}, "eventTime": "2024-01-02T03:03:05.123456Z",
            "involvedObject": {"kind": "Deployment", "name": "web"}, "reason": "ScalingReplicaSet",
            "message": "Scaled up replica set web-5d4 to 3", "type": "Normal",
            "reportingComponent": "deployment-controller", "series": {"count": 4, "lastObservedTime": ago(3)}
        });
        let c = cells("", "Event", core);
        assert_eq!(
            (c[0].clone(), c[7].clone(), c[8].clone()),
            (json!("3s"), json!("59s"), json!(4))
        );

        let bare = json!({"metadata": {"name": "x"}, "involvedObject": {"kind": "Node"}});
        assert_eq!(
            cells("", "Event", bare)[..4],
            [json!("<unknown>"), json!(""), json!(""), json!("node")]
        );
    }
}
