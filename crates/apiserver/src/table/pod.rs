//! Pods: the most involved printer, because STATUS is not a field but a
//! summary upstream derives from the phase, init containers, container
//! states and deletion, and RESTARTS carries the time of the last restart.

use serde_json::{json, Value};
use time::OffsetDateTime;

use super::format::{arr, boolean, int, obj, parse_time, s, Clock};
use super::{Column, AGE, NAME};

/// Upstream's pod columns.
pub(super) const COLUMNS: &[Column] = &[
    NAME,
    Column::new("Ready", "string", "The aggregate readiness state of this pod for accepting traffic."),
    Column::new("Status", "string", "The aggregate status of the containers in this pod."),
    Column::new(
        "Restarts",
        "string",
        "The number of times the containers in this pod have been restarted and when the last container in this pod has restarted.",
    ),
    AGE,
    Column::wide(
        "IP",
        "string",
        "podIP address allocated to the pod. Routable at least within the cluster. Empty if not yet allocated.",
    ),
    Column::wide("Node", "string", "NodeName indicates in which node this pod is scheduled."),
    Column::wide(
        "Nominated Node",
        "string",
        "nominatedNodeName is set only when this pod preempts other pods on the node, but it cannot be scheduled right away as preemption victims receive their graceful termination periods.",
    ),
    Column::wide(
        "Readiness Gates",
        "string",
        "If specified, all readiness gates will be evaluated for pod readiness.",
    ),
];

/// The pod phase upstream treats as finished (`IsPodPhaseTerminal`).
fn is_terminal(phase: &str) -> bool {
    phase == "Succeeded" || phase == "Failed"
}

/// The reason the node lifecycle controller sets on pods of an unreachable node.
const NODE_LOST: &str = "NodeLost";

/// A row condition marking finished pods, which upstream attaches so that
/// clients can tell completed rows apart.
pub(super) fn conditions(pod: &Value) -> Option<Value> {
    let (reason, message) = match s(pod, "/status/phase") {
        "Succeeded" => ("Succeeded", "The pod has completed successfully."),
        "Failed" => ("Failed", "The pod failed."),
        _ => return None,
    };
    Some(json!([{"type": "Completed", "status": "True", "reason": reason, "message": message}]))
}

/// `finishedAt` of a container's last termination, if any.
fn last_termination(status: &Value) -> Option<OffsetDateTime> {
    obj(status, "/lastState/terminated")?;
    parse_time(status.pointer("/lastState/terminated/finishedAt"))
}

/// Whether the named init container is a sidecar (`restartPolicy: Always`).
fn is_restartable_init(pod: &Value, name: &str) -> bool {
    arr(pod, "/spec/initContainers")
        .iter()
        .find(|c| s(c, "/name") == name)
        .is_some_and(|c| s(c, "/restartPolicy") == "Always")
}

/// Whether any Ready condition has status True (`hasPodReadyCondition`).
fn ready_condition(pod: &Value) -> bool {
    arr(pod, "/status/conditions")
        .iter()
        .any(|c| s(c, "/type") == "Ready" && s(c, "/status") == "True")
}

/// Whether the first Initialized condition has status True
/// (`isPodInitializedConditionTrue`).
fn initialized_condition(pod: &Value) -> bool {
    arr(pod, "/status/conditions")
        .iter()
        .find(|c| s(c, "/type") == "Initialized")
        .is_some_and(|c| s(c, "/status") == "True")
}

/// The later of two optional instants (upstream's "Before" on zero times).
fn later(a: Option<OffsetDateTime>, b: Option<OffsetDateTime>) -> Option<OffsetDateTime> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Upstream's reason for a terminated container without one: the signal if
/// it was killed by one, else the exit code.
fn terminated_without_reason(state: &Value, prefix: &str) -> String {
    let signal = int(state, "/signal");
    if signal != 0 {
        format!("{prefix}Signal:{signal}")
    } else {
        format!("{prefix}ExitCode:{}", int(state, "/exitCode"))
    }
}

/// The READY, STATUS and RESTARTS summary of a pod, following upstream's
/// `printPod` step by step.
struct Summary {
    ready: usize,
    total: usize,
    reason: String,
    restarts: i64,
    last_restart: Option<OffsetDateTime>,
}

fn summarize(pod: &Value) -> Summary {
    let init_specs = arr(pod, "/spec/initContainers");
    let phase = s(pod, "/status/phase");
    let mut reason = match s(pod, "/status/reason") {
        "" => phase.to_string(),
        r => r.to_string(),
    };
    for c in arr(pod, "/status/conditions") {
        if s(c, "/type") == "PodScheduled" && s(c, "/reason") == "SchedulingGated" {
            reason = "SchedulingGated".to_string();
        }
    }

    // Sidecars count towards READY's total like ordinary containers.
    let mut total = arr(pod, "/spec/containers").len();
    total += init_specs
        .iter()
        .filter(|c| s(c, "/restartPolicy") == "Always")
        .count();
    let mut ready = 0;
    let mut restarts = 0;
    let mut sidecar_restarts = 0;
    let mut last_restart = None;
    let mut last_sidecar_restart = None;

    let mut initializing = false;
    for (i, c) in arr(pod, "/status/initContainerStatuses").iter().enumerate() {
        let count = int(c, "/restartCount");
        restarts += count;
        last_restart = later(last_restart, last_termination(c));
        let sidecar = is_restartable_init(pod, s(c, "/name"));
        if sidecar {
            sidecar_restarts += count;
            last_sidecar_restart = later(last_sidecar_restart, last_termination(c));
        }
        let terminated = obj(c, "/state/terminated").is_some();
        let waiting_reason = obj(c, "/state/waiting").map(|_| s(c, "/state/waiting/reason"));
        if terminated && int(c, "/state/terminated/exitCode") == 0 {
            continue;
        }
        if sidecar && boolean(c, "/started") {
            if boolean(c, "/ready") {
                ready += 1;
            }
            continue;
        }
        if terminated {
            reason = match s(c, "/state/terminated/reason") {
                "" => terminated_without_reason(&c["state"]["terminated"], "Init:"),
                r => format!("Init:{r}"),
            };
        } else if let Some(w) = waiting_reason.filter(|w| !w.is_empty() && *w != "PodInitializing")
        {
            reason = format!("Init:{w}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || initialized_condition(pod) {
        restarts = sidecar_restarts;
        last_restart = last_sidecar_restart;
        let mut has_running = false;
        for c in arr(pod, "/status/containerStatuses").iter().rev() {
            restarts += int(c, "/restartCount");
            last_restart = later(last_restart, last_termination(c));
            let waiting = obj(c, "/state/waiting").is_some();
            let terminated = obj(c, "/state/terminated").is_some();
            if waiting && !s(c, "/state/waiting/reason").is_empty() {
                reason = s(c, "/state/waiting/reason").to_string();
            } else if terminated && !s(c, "/state/terminated/reason").is_empty() {
                reason = s(c, "/state/terminated/reason").to_string();
            } else if terminated {
                reason = terminated_without_reason(&c["state"]["terminated"], "");
            } else if boolean(c, "/ready") && obj(c, "/state/running").is_some() {
                has_running = true;
                ready += 1;
            }
        }
        // A pod whose last container completed but another still runs is
        // reported by readiness, not as Completed.
        if reason == "Completed" && has_running {
            reason = if ready_condition(pod) {
                "Running"
            } else {
                "NotReady"
            }
            .to_string();
        }
    }

    if pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        if s(pod, "/status/reason") == NODE_LOST {
            reason = "Unknown".to_string();
        } else if !is_terminal(phase) {
            reason = "Terminating".to_string();
        }
    }
    Summary {
        ready,
        total,
        reason,
        restarts,
        last_restart,
    }
}

/// The IP column: `status.podIP` wins over `status.podIPs[0]`, as in
/// upstream's conversion to its internal type, which the printer reads.
fn pod_ip(pod: &Value) -> &str {
    match s(pod, "/status/podIP") {
        "" => s(pod, "/status/podIPs/0/ip"),
        ip => ip,
    }
}

/// READINESS GATES: `true/total` of the gates' conditions, `<none>` without gates.
fn readiness_gates(pod: &Value) -> String {
    let gates = arr(pod, "/spec/readinessGates");
    if gates.is_empty() {
        return "<none>".to_string();
    }
    let conditions = arr(pod, "/status/conditions");
    let passed = gates
        .iter()
        .filter(|g| {
            conditions
                .iter()
                .find(|c| s(c, "/type") == s(g, "/conditionType"))
                .is_some_and(|c| s(c, "/status") == "True")
        })
        .count();
    format!("{passed}/{}", gates.len())
}

fn or_none(v: &str) -> &str {
    if v.is_empty() {
        "<none>"
    } else {
        v
    }
}

/// One pod row.
pub(super) fn cells(pod: &Value, clock: &Clock) -> Vec<Value> {
    let sum = summarize(pod);
    let restarts = match sum.last_restart {
        Some(t) if sum.restarts != 0 => format!("{} ({} ago)", sum.restarts, clock.since(Some(t))),
        _ => sum.restarts.to_string(),
    };
    vec![
        json!(s(pod, "/metadata/name")),
        json!(format!("{}/{}", sum.ready, sum.total)),
        json!(sum.reason),
        json!(restarts),
        json!(clock.age(pod)),
        json!(or_none(pod_ip(pod))),
        json!(or_none(s(pod, "/spec/nodeName"))),
        json!(or_none(s(pod, "/status/nominatedNodeName"))),
        json!(readiness_gates(pod)),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{ago, cells as row, headers};
    use serde_json::{json, Value};

    fn pod(spec: Value, status: Value) -> Value {
        json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web-0", "namespace": "default", "creationTimestamp": ago(3 * 86400 + 4 * 3600)},
            "spec": spec,
            "status": status,
        })
    }

    fn two_containers() -> Value {
        json!({"nodeName": "node-1", "containers": [{"name": "app", "image": "nginx"}, {"name": "sidecar", "image": "envoy"}]})
    }

    fn running(name: &str, ready: bool, restarts: i64) -> Value {
        json!({"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {"startedAt": ago(600)}}})
    }

    #[test]
    fn columns_are_upstreams() {
        assert_eq!(
            headers("", "Pod"),
            vec![
                ("Name", "string", "name", 0),
                ("Ready", "string", "", 0),
                ("Status", "string", "", 0),
                ("Restarts", "string", "", 0),
                ("Age", "string", "", 0),
                ("IP", "string", "", 1),
                ("Node", "string", "", 1),
                ("Nominated Node", "string", "", 1),
                ("Readiness Gates", "string", "", 1),
            ]
        );
    }

    #[test]
    fn running_two_of_two_with_one_restart() {
        let mut app = running("app", true, 1);
        app["lastState"] =
            json!({"terminated": {"exitCode": 137, "reason": "OOMKilled", "finishedAt": ago(300)}});
        let p = pod(
            two_containers(),
            json!({
                "phase": "Running", "podIP": "10.42.0.7", "podIPs": [{"ip": "10.42.0.7"}],
                "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [app, running("sidecar", true, 0)]
            }),
        );
        assert_eq!(
            row("", "Pod", p),
            vec![
                json!("web-0"),
                json!("2/2"),
                json!("Running"),
                json!("1 (5m ago)"),
                json!("3d4h"),
                json!("10.42.0.7"),
                json!("node-1"),
                json!("<none>"),
                json!("<none>"),
            ]
        );
    }

    #[test]
    fn crash_loop_back_off() {
        let crashing = json!({
            "name": "app", "ready": false, "restartCount": 12,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(95)}}
        });
        let p = pod(
            two_containers(),
            json!({"phase": "Running", "containerStatuses": [crashing, running("sidecar", true, 0)]}),
        );
        let c = row("", "Pod", p);
        assert_eq!(c[1], "1/2");
        assert_eq!(c[2], "CrashLoopBackOff");
        assert_eq!(c[3], "12 (95s ago)");
        assert_eq!(c[5], "<none>");
    }

    #[test]
    fn terminating_pod() {
        let mut p = pod(
            two_containers(),
            json!({"phase": "Running", "containerStatuses": [running("app", true, 0), running("sidecar", true, 0)]}),
        );
        p["metadata"]["deletionTimestamp"] = json!(ago(5));
        let c = row("", "Pod", p.clone());
        assert_eq!(
            (c[1].clone(), c[2].clone(), c[3].clone()),
            (json!("2/2"), json!("Terminating"), json!("0"))
        );
        // A finished pod keeps its phase; a pod of a lost node is Unknown.
        p["status"]["phase"] = json!("Succeeded");
        assert_eq!(row("", "Pod", p.clone())[2], "Succeeded");
        p["status"]["reason"] = json!("NodeLost");
        assert_eq!(row("", "Pod", p)[2], "Unknown");
    }

    #[test]
    fn pending_pods() {
        let creating = json!({"name": "app", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}});
        let p = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Pending", "containerStatuses": [creating]}),
        );
        assert_eq!(
            row("", "Pod", p)[1..3],
            [json!("0/1"), json!("ContainerCreating")]
        );

        // Not yet scheduled: no statuses at all.
        let p = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Pending"}),
        );
        let c = row("", "Pod", p);
        assert_eq!(c[1..4], [json!("0/1"), json!("Pending"), json!("0")]);
        assert_eq!(c[6], "<none>");

        let gated = json!({"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]});
        assert_eq!(
            row(
                "",
                "Pod",
                pod(json!({"containers": [{"name": "app"}]}), gated)
            )[2],
            "SchedulingGated"
        );
    }

    #[test]
    fn init_containers() {
        let spec = json!({"initContainers": [{"name": "a"}, {"name": "b"}], "containers": [{"name": "app"}]});
        let done = json!({"name": "a", "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
        let run = json!({"name": "b", "restartCount": 0, "state": {"running": {}}});
        let waiting = json!({"name": "app", "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}});
        let status = json!({"phase": "Pending", "initContainerStatuses": [done.clone(), run], "containerStatuses": [waiting.clone()]});
        assert_eq!(
            row("", "Pod", pod(spec.clone(), status))[1..3],
            [json!("0/1"), json!("Init:1/2")]
        );

        let failed = json!({"name": "b", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(40)}}});
        let status = json!({"phase": "Pending", "initContainerStatuses": [done.clone(), failed], "containerStatuses": [waiting]});
        let c = row("", "Pod", pod(spec.clone(), status));
        assert_eq!(
            c[2..4],
            [json!("Init:CrashLoopBackOff"), json!("3 (40s ago)")]
        );

        let killed =
            json!({"name": "b", "restartCount": 0, "state": {"terminated": {"exitCode": 2}}});
        let status = json!({"phase": "Failed", "initContainerStatuses": [done.clone(), killed]});
        assert_eq!(
            row("", "Pod", pod(spec.clone(), status))[2],
            "Init:ExitCode:2"
        );
        let signalled = json!({"name": "b", "restartCount": 0, "state": {"terminated": {"exitCode": 137, "signal": 9}}});
        let status = json!({"phase": "Failed", "initContainerStatuses": [done, signalled]});
        assert_eq!(row("", "Pod", pod(spec, status))[2], "Init:Signal:9");
    }

    #[test]
    fn sidecars_count_as_containers() {
        let spec = json!({"initContainers": [{"name": "proxy", "restartPolicy": "Always"}], "containers": [{"name": "app"}]});
        let proxy = json!({"name": "proxy", "ready": true, "started": true, "restartCount": 2,
            "state": {"running": {}}, "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(4000)}}});
        let status = json!({
            "phase": "Running",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
            "initContainerStatuses": [proxy], "containerStatuses": [running("app", true, 1)]
        });
        let c = row("", "Pod", pod(spec, status));
        assert_eq!(
            c[1..4],
            [json!("2/2"), json!("Running"), json!("3 (66m ago)")]
        );
    }

    #[test]
    fn completed_and_failed_containers() {
        let done = json!({"name": "app", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}});
        let p = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Succeeded", "containerStatuses": [done.clone()]}),
        );
        assert_eq!(
            row("", "Pod", p.clone())[1..3],
            [json!("0/1"), json!("Completed")]
        );
        let table = super::super::render(
            crate::resources::by_kind("", "Pod").unwrap(),
            &[p],
            super::super::IncludeObject::None,
            json!({}),
            super::super::testutil::now(),
        );
        assert_eq!(table["rows"][0]["conditions"][0]["reason"], "Succeeded");

        // One container completed while another still runs: readiness decides.
        let p = pod(
            two_containers(),
            json!({"phase": "Running", "containerStatuses": [running("app", true, 0), done.clone()]}),
        );
        assert_eq!(row("", "Pod", p)[2], "NotReady");
        let p = pod(
            two_containers(),
            json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                   "containerStatuses": [running("app", true, 0), done]}),
        );
        assert_eq!(row("", "Pod", p)[2], "Running");

        let oom = json!({"name": "app", "restartCount": 0, "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}});
        let p = pod(
            json!({"containers": [{"name": "app"}]}),
            json!({"phase": "Failed", "containerStatuses": [oom]}),
        );
        assert_eq!(row("", "Pod", p)[2], "OOMKilled");
        let p = pod(
            json!({}),
            json!({"phase": "Failed", "reason": "Evicted", "message": "low on memory"}),
        );
        assert_eq!(row("", "Pod", p)[1..3], [json!("0/0"), json!("Evicted")]);
    }

    #[test]
    fn wide_columns() {
        let spec = json!({
            "nodeName": "node-2", "containers": [{"name": "app"}],
            "readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]
        });
        let status = json!({
            "phase": "Running", "podIPs": [{"ip": "fd00::5"}, {"ip": "10.0.0.5"}], "nominatedNodeName": "node-3",
            "conditions": [{"type": "example.com/lb", "status": "True"}, {"type": "example.com/dns", "status": "False"}],
            "containerStatuses": [running("app", true, 0)]
        });
        let c = row("", "Pod", pod(spec, status));
        assert_eq!(
            c[5..],
            [
                json!("fd00::5"),
                json!("node-2"),
                json!("node-3"),
                json!("1/2")
            ]
        );
    }
}
