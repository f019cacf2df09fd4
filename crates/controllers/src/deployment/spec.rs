//! What the controller reads from a Deployment's spec, with upstream's
//! defaults and its rounding of `maxSurge` (up) and `maxUnavailable`
//! (down). Pure functions.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// `spec.replicas` (the API server defaults it to 1).
pub fn replicas(d: &Deployment) -> i32 {
    d.spec.replicas.unwrap_or(1)
}

/// `spec.minReadySeconds`.
pub fn min_ready_seconds(d: &Deployment) -> i32 {
    d.spec.min_ready_seconds.unwrap_or(0)
}

/// `spec.paused`.
pub fn paused(d: &Deployment) -> bool {
    d.spec.paused.unwrap_or(false)
}

/// `spec.strategy.type` (defaulted to `RollingUpdate`).
pub fn strategy_type(d: &Deployment) -> &str {
    d.spec
        .strategy
        .as_ref()
        .and_then(|s| s.type_.as_deref())
        .unwrap_or("RollingUpdate")
}

/// Whether the strategy is a rolling update.
pub fn is_rolling(d: &Deployment) -> bool {
    strategy_type(d) == "RollingUpdate"
}

/// `spec.progressDeadlineSeconds`, unless unset or "never" (MaxInt32), as
/// upstream's `HasProgressDeadline`.
pub fn progress_deadline(d: &Deployment) -> Option<i32> {
    d.spec.progress_deadline_seconds.filter(|&s| s != i32::MAX)
}

/// `spec.revisionHistoryLimit`, unless unset or "keep all" (MaxInt32).
pub fn revision_history_limit(d: &Deployment) -> Option<i32> {
    d.spec.revision_history_limit.filter(|&s| s != i32::MAX)
}

/// upstream's `GetScaledValueFromIntOrPercent`: an int as is, `"N%"` of
/// `total`, rounded up or down.
pub fn scaled_value(v: &IntOrString, total: i32, round_up: bool) -> Result<i32, String> {
    match v {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: invalid value {s:?}"))?;
            let num = pct * i64::from(total);
            let v = if round_up {
                num.div_euclid(100) + i64::from(num.rem_euclid(100) != 0)
            } else {
                num.div_euclid(100)
            };
            i32::try_from(v).map_err(|_| format!("invalid value for IntOrString: {s:?}"))
        }
    }
}

/// upstream's `ResolveFenceposts`: (maxSurge, maxUnavailable) for
/// `desired` replicas. Surge rounds up and unavailability down; if both
/// come to zero, one pod may be unavailable (surge might be blocked by
/// quota, so progress must come from scaling down).
pub fn resolve_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    desired: i32,
) -> Result<(i32, i32), String> {
    let zero = IntOrString::Int(0);
    let surge = scaled_value(max_surge.unwrap_or(&zero), desired, true)?;
    let mut unavailable = scaled_value(max_unavailable.unwrap_or(&zero), desired, false)?;
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }
    Ok((surge, unavailable))
}

fn fenceposts(d: &Deployment) -> (i32, i32) {
    let ru = d
        .spec
        .strategy
        .as_ref()
        .and_then(|s| s.rolling_update.as_ref());
    // Validation rejects values that do not resolve.
    resolve_fenceposts(
        ru.and_then(|r| r.max_surge.as_ref()),
        ru.and_then(|r| r.max_unavailable.as_ref()),
        replicas(d),
    )
    .unwrap_or((0, 1))
}

/// The pods a rolling update may run above `spec.replicas`.
pub fn max_surge(d: &Deployment) -> i32 {
    if !is_rolling(d) {
        return 0;
    }
    fenceposts(d).0
}

/// The pods a rolling update may have unavailable, at most all of them.
pub fn max_unavailable(d: &Deployment) -> i32 {
    if !is_rolling(d) || replicas(d) == 0 {
        return 0;
    }
    fenceposts(d).1.min(replicas(d))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn is(v: serde_json::Value) -> IntOrString {
        serde_json::from_value(v).unwrap()
    }

    fn deployment(replicas: i32, strategy: serde_json::Value) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "d"},
            "spec": {"replicas": replicas, "strategy": strategy,
                "selector": {"matchLabels": {"a": "b"}}, "template": {}}
        }))
        .unwrap()
    }

    #[test]
    fn surge_rounds_up_and_unavailable_rounds_down() {
        assert_eq!(scaled_value(&is(json!("25%")), 10, true), Ok(3));
        assert_eq!(scaled_value(&is(json!("25%")), 10, false), Ok(2));
        assert_eq!(scaled_value(&is(json!("25%")), 4, true), Ok(1));
        assert_eq!(scaled_value(&is(json!("25%")), 4, false), Ok(1));
        assert_eq!(scaled_value(&is(json!("1%")), 3000, true), Ok(30));
        assert_eq!(scaled_value(&is(json!("100%")), 7, false), Ok(7));
        assert_eq!(scaled_value(&is(json!(4)), 10, false), Ok(4));
        assert!(scaled_value(&is(json!("25")), 10, true).is_err());
        assert!(scaled_value(&is(json!("x%")), 10, true).is_err());
    }

    #[test]
    fn fenceposts_as_upstream_documents_them() {
        let r = |s: serde_json::Value, u: serde_json::Value, n| {
            resolve_fenceposts(Some(&is(s)), Some(&is(u)), n).unwrap()
        };
        // 2 desired, max unavailable 1%, surge 0%: unavailable rounds to 0, so 1.
        assert_eq!(r(json!("0%"), json!("1%"), 2), (0, 1));
        // 2 desired, max unavailable 25%, surge 1%: surge rounds up to 1.
        assert_eq!(r(json!("1%"), json!("25%"), 2), (1, 0));
        assert_eq!(r(json!("25%"), json!("25%"), 10), (3, 2));
        assert_eq!(r(json!(0), json!(0), 0), (0, 1));
        assert_eq!(resolve_fenceposts(None, None, 5).unwrap(), (0, 1));
    }

    #[test]
    fn strategy_defaults_and_limits() {
        let d = deployment(
            10,
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}),
        );
        assert_eq!((max_surge(&d), max_unavailable(&d)), (3, 2));
        // maxUnavailable never exceeds the replicas.
        let d = deployment(
            2,
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 5}}),
        );
        assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 2));
        let d = deployment(
            0,
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 1}}),
        );
        assert_eq!((max_surge(&d), max_unavailable(&d)), (1, 0));
        let d = deployment(10, json!({"type": "Recreate"}));
        assert_eq!((max_surge(&d), max_unavailable(&d)), (0, 0));
        assert!(!is_rolling(&d));
        assert_eq!(progress_deadline(&d), None);
        let mut d = deployment(1, json!({}));
        d.spec.progress_deadline_seconds = Some(i32::MAX);
        d.spec.revision_history_limit = Some(2);
        assert_eq!(progress_deadline(&d), None);
        assert_eq!(revision_history_limit(&d), Some(2));
        assert!(is_rolling(&d));
    }
}
