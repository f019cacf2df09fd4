//! The small formatting helpers upstream's printers share: ages, label maps,
//! label selectors, container lists, and JSON accessors that read a field the
//! way Go reads a zero-valued struct field (missing means empty or zero).
//!
//! Printers work on the stored JSON rather than typed structs so that a field
//! the typed model does not know (or a partly-written object) can never make a
//! `kubectl get` fail; upstream likewise never fails a row for a missing field.

use serde_json::{Map, Value};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

/// Upstream's `duration.HumanDuration`: a succinct age with two or three
/// significant figures, used by every AGE column, LAST SEEN, a job's
/// DURATION and the "(5m ago)" of a pod's RESTARTS.
///
/// Up to one second in the future still prints `0s` (clock skew between
/// machines); anything further in the future is `<invalid>`.
pub fn human_duration(d: Duration) -> String {
    let seconds = d.whole_seconds();
    if seconds < -1 {
        return "<invalid>".to_string();
    } else if seconds < 0 {
        return "0s".to_string();
    } else if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = d.whole_minutes();
    if minutes < 10 {
        let s = seconds % 60;
        if s == 0 {
            return format!("{minutes}m");
        }
        return format!("{minutes}m{s}s");
    } else if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = d.whole_hours();
    if hours < 8 {
        let m = minutes % 60;
        if m == 0 {
            return format!("{hours}h");
        }
        format!("{hours}h{m}m")
    } else if hours < 48 {
        format!("{hours}h")
    } else if hours < 24 * 8 {
        let h = hours % 24;
        if h == 0 {
            return format!("{}d", hours / 24);
        }
        format!("{}d{h}h", hours / 24)
    } else if hours < 24 * 365 * 2 {
        format!("{}d", hours / 24)
    } else if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        if dy == 0 {
            return format!("{}y", hours / 24 / 365);
        }
        format!("{}y{dy}d", hours / 24 / 365)
    } else {
        format!("{}y", hours / 24 / 365)
    }
}

/// Parse a `metav1.Time` or `metav1.MicroTime` (RFC 3339, optionally with a
/// fraction). Anything else, including `null`, is treated as the zero time,
/// which is what upstream's decoder would have left in the field.
pub fn parse_time(v: Option<&Value>) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(v?.as_str()?, &Rfc3339).ok()
}

/// `metav1.Time` rendered as `time.RFC3339` in UTC, whole seconds, as the
/// default table's "Created At" cell; the zero time prints as Go prints it.
pub fn rfc3339(t: Option<OffsetDateTime>) -> String {
    match t {
        Some(t) => {
            let t = t.to_offset(UtcOffset::UTC);
            format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            )
        }
        None => "0001-01-01T00:00:00Z".to_string(),
    }
}

/// The instant a table is rendered for; every age in one table is measured
/// from the same instant, as upstream's rows are all built in one pass.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    now: OffsetDateTime,
}

impl Clock {
    /// A clock frozen at `now`.
    pub fn new(now: std::time::SystemTime) -> Self {
        Clock {
            now: OffsetDateTime::from(now),
        }
    }

    /// Upstream's `translateTimestampSince`: `<unknown>` for the zero time,
    /// else the human duration since `t`.
    pub fn since(&self, t: Option<OffsetDateTime>) -> String {
        match t {
            Some(t) => human_duration(self.now - t),
            None => "<unknown>".to_string(),
        }
    }

    /// [`Clock::since`] of a JSON timestamp field.
    pub fn since_value(&self, v: Option<&Value>) -> String {
        self.since(parse_time(v))
    }

    /// The time elapsed from `t` until now (negative if `t` is in the future).
    pub fn elapsed(&self, t: OffsetDateTime) -> Duration {
        self.now - t
    }

    /// The object's AGE cell.
    pub fn age(&self, item: &Value) -> String {
        self.since_value(item.pointer("/metadata/creationTimestamp"))
    }
}

/// A string field, or `""` when missing or not a string (Go's zero value).
pub fn s<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// A string field that is present (Go's non-nil `*string`).
pub fn opt_s<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// An integer field, or 0.
pub fn int(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

/// A boolean field, or false.
pub fn boolean(v: &Value, pointer: &str) -> bool {
    v.pointer(pointer).and_then(Value::as_bool).unwrap_or(false)
}

/// An array field, or the empty slice.
pub fn arr<'a>(v: &'a Value, pointer: &str) -> &'a [Value] {
    v.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// An object field, if present and an object (Go's non-nil pointer to struct).
pub fn obj<'a>(v: &'a Value, pointer: &str) -> Option<&'a Map<String, Value>> {
    v.pointer(pointer).and_then(Value::as_object)
}

/// Number of keys of a map field (Go's `len(map)`), 0 when missing.
pub fn map_len(v: &Value, pointer: &str) -> usize {
    obj(v, pointer).map_or(0, Map::len)
}

/// Upstream's `labels.FormatLabels`: `k=v` pairs sorted by key, joined by
/// commas, or `<none>` for an empty map.
pub fn format_labels(map: Option<&Map<String, Value>>) -> String {
    let mut pairs: Vec<(&str, &str)> = map
        .into_iter()
        .flatten()
        .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
        .collect();
    pairs.sort();
    if pairs.is_empty() {
        return "<none>".to_string();
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// Upstream's `metav1.LabelSelectorAsSelector(sel).String()`: requirements
/// sorted by key, `matchLabels` as `k=v`, expressions as `k in (a,b)`,
/// `k notin (a)`, `k` and `!k`, values sorted. A nil or empty selector is
/// the empty string; an unknown operator is an error.
pub fn selector_string(sel: Option<&Value>) -> Result<String, ()> {
    let Some(sel) = sel.filter(|v| v.is_object()) else {
        return Ok(String::new());
    };
    let mut reqs: Vec<(String, String)> = Vec::new();
    if let Some(labels) = obj(sel, "/matchLabels") {
        for (k, v) in labels {
            reqs.push((k.clone(), format!("{k}={}", v.as_str().unwrap_or(""))));
        }
    }
    for expr in arr(sel, "/matchExpressions") {
        let key = s(expr, "/key");
        let mut values: Vec<&str> = arr(expr, "/values")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        values.sort_unstable();
        let text = match s(expr, "/operator") {
            "In" if !values.is_empty() => format!("{key} in ({})", values.join(",")),
            "NotIn" if !values.is_empty() => format!("{key} notin ({})", values.join(",")),
            "Exists" if values.is_empty() => key.to_string(),
            "DoesNotExist" if values.is_empty() => format!("!{key}"),
            _ => return Err(()),
        };
        reqs.push((key.to_string(), text));
    }
    // Upstream sorts requirements by key only; a stable sort keeps
    // `matchLabels` ahead of expressions on the same key, as Go's does in practice.
    reqs.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(reqs
        .into_iter()
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join(","))
}

/// Upstream's `metav1.FormatLabelSelector`: like [`selector_string`] but
/// `<none>` when empty and `<error>` when invalid.
pub fn format_label_selector(sel: Option<&Value>) -> String {
    match selector_string(sel) {
        Ok(s) if s.is_empty() => "<none>".to_string(),
        Ok(s) => s,
        Err(()) => "<error>".to_string(),
    }
}

/// Upstream's `layoutContainerCells`: container names and images, each list
/// joined by commas, for the wide CONTAINERS and IMAGES columns.
pub fn containers_and_images(containers: &[Value]) -> (String, String) {
    let names: Vec<&str> = containers.iter().map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| s(c, "/image")).collect();
    (names.join(","), images.join(","))
}

/// An `IntOrString` as upstream's `String()` prints it.
pub fn int_or_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// A `resource.Quantity` cell in upstream's canonical form; a missing
/// quantity is the zero quantity, `0`.
pub fn quantity(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => super::quantity::canonical(s),
        Some(Value::Number(n)) => super::quantity::canonical(&n.to_string()),
        _ => "0".to_string(),
    }
}

/// Go's `net.JoinHostPort`: IPv6 hosts are bracketed.
pub fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// Upstream's `listWithMoreString`: the first `max` entries, then
/// `+ N more...`; `<unset>` for an empty list.
pub fn list_with_more(list: &[String], more: bool, count: usize, max: usize) -> String {
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", count - max);
    }
    if ret.is_empty() {
        return "<unset>".to_string();
    }
    ret
}

/// Upstream's `GetAccessModesAsString`: RWO, ROX, RWX, RWOP in that order,
/// each at most once.
pub fn access_modes(modes: &[Value]) -> String {
    let has = |m: &str| modes.iter().any(|v| v.as_str() == Some(m));
    [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ]
    .iter()
    .filter(|(mode, _)| has(mode))
    .map(|(_, short)| *short)
    .collect::<Vec<_>>()
    .join(",")
}

/// The sorted, de-duplicated IPs (or hostnames where there is no IP) of a
/// load balancer status, joined by commas. The API server always prints
/// "wide", so upstream's 16-character clipping never applies here.
pub fn load_balancer_ingress(ingress: &[Value]) -> String {
    let mut out: Vec<&str> = ingress
        .iter()
        .filter_map(|i| {
            let ip = s(i, "/ip");
            let host = s(i, "/hostname");
            if !ip.is_empty() {
                Some(ip)
            } else if !host.is_empty() {
                Some(host)
            } else {
                None
            }
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn human_duration_matches_upstream() {
        let cases: &[(i64, &str)] = &[
            (-3, "<invalid>"),
            (-2, "<invalid>"),
            (-1, "0s"),
            (0, "0s"),
            (1, "1s"),
            (59, "59s"),
            (60, "60s"),
            (119, "119s"),
            (120, "2m"),
            (121, "2m1s"),
            (5 * 60 + 30, "5m30s"),
            (9 * 60 + 59, "9m59s"),
            (10 * 60, "10m"),
            (10 * 60 + 59, "10m"),
            (179 * 60 + 59, "179m"),
            (3 * 3600, "3h"),
            (3 * 3600 + 60, "3h1m"),
            (7 * 3600 + 59 * 60, "7h59m"),
            (8 * 3600, "8h"),
            (8 * 3600 + 59 * 60, "8h"),
            (47 * 3600, "47h"),
            (48 * 3600, "2d"),
            (48 * 3600 + 3600, "2d1h"),
            (7 * 86400 + 23 * 3600, "7d23h"),
            (8 * 86400, "8d"),
            (729 * 86400, "729d"),
            (730 * 86400, "2y"),
            (731 * 86400, "2y1d"),
            (8 * 365 * 86400 - 86400, "7y364d"),
            (8 * 365 * 86400, "8y"),
            (20 * 365 * 86400, "20y"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::seconds(*secs)), *want, "{secs}s");
        }
        // Fractions truncate toward zero, as Go's int(d.Seconds()) does.
        assert_eq!(human_duration(Duration::milliseconds(-1500)), "0s");
        assert_eq!(human_duration(Duration::milliseconds(1999)), "1s");
    }

    #[test]
    fn timestamps() {
        let t = parse_time(Some(&json!("2024-01-02T03:04:05Z"))).unwrap();
        assert_eq!(rfc3339(Some(t)), "2024-01-02T03:04:05Z");
        let micro = parse_time(Some(&json!("2024-01-02T05:04:05.123456+02:00"))).unwrap();
        assert_eq!(rfc3339(Some(micro)), "2024-01-02T03:04:05Z");
        assert_eq!(rfc3339(None), "0001-01-01T00:00:00Z");
        assert!(parse_time(Some(&json!(null))).is_none());
        let clock = Clock::new(std::time::SystemTime::from(t + Duration::seconds(300)));
        assert_eq!(clock.since(Some(t)), "5m");
        assert_eq!(clock.since(None), "<unknown>");
    }

    #[test]
    fn labels_and_selectors() {
        assert_eq!(format_labels(None), "<none>");
        assert_eq!(
            format_labels(json!({"b": "2", "a": "1"}).as_object()),
            "a=1,b=2"
        );
        let sel = json!({
            "matchLabels": {"tier": "web", "app": "x"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["prod", "dev"]},
                {"key": "zone", "operator": "DoesNotExist"},
                {"key": "canary", "operator": "Exists"},
                {"key": "os", "operator": "NotIn", "values": ["windows"]}
            ]
        });
        assert_eq!(
            format_label_selector(Some(&sel)),
            "app=x,canary,env in (dev,prod),os notin (windows),tier=web,!zone"
        );
        assert_eq!(format_label_selector(Some(&json!({}))), "<none>");
        assert_eq!(format_label_selector(None), "<none>");
        let bad = json!({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]});
        assert_eq!(format_label_selector(Some(&bad)), "<error>");
        assert_eq!(selector_string(Some(&json!({}))), Ok(String::new()));
    }

    #[test]
    fn small_helpers() {
        assert_eq!(join_host_port("fd00::1", 80), "[fd00::1]:80");
        assert_eq!(
            access_modes(&[json!("ReadWriteMany"), json!("ReadWriteOnce")]),
            "RWO,RWX"
        );
        assert_eq!(list_with_more(&[], false, 0, 3), "<unset>");
        assert_eq!(int_or_string(&json!("50%")), "50%");
        assert_eq!(int_or_string(&json!(2)), "2");
        let lb = [
            json!({"ip": "10.0.0.2"}),
            json!({"hostname": "a.example"}),
            json!({"ip": "10.0.0.2"}),
        ];
        assert_eq!(load_balancer_ingress(&lb), "10.0.0.2,a.example");
    }
}
