//! What a hollow kubelet reports for a pod: the status a real kubelet would
//! post once the pod's containers run, computed from the pod alone. Pure
//! functions, so the simulation is unit-tested without a server.

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{json, Value};

/// Annotation: `"false"` keeps the pod running but not ready.
pub const READY_ANNOTATION: &str = "hollow.wharf.dev/ready";
/// Annotation: the exit code every container ends with, instead of running.
pub const EXIT_CODE_ANNOTATION: &str = "hollow.wharf.dev/exit-code";

/// How the simulated containers behave.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Containers run; ready unless `ready` is false.
    Run { ready: bool },
    /// Containers exit with this code.
    Exit(i32),
}

/// The behaviour a pod asks for through its annotations, or failure for the
/// share of pods that `fail_percent` picks (by a hash of the UID, so a pod
/// keeps its fate across restarts of the hollow nodes).
pub fn behaviour(pod: &Pod, fail_percent: u8) -> Behaviour {
    let ann = pod.metadata.annotations.as_ref();
    let get = |k: &str| ann.and_then(|a| a.get(k)).map(String::as_str);
    if let Some(code) = get(EXIT_CODE_ANNOTATION).and_then(|c| c.trim().parse().ok()) {
        return Behaviour::Exit(code);
    }
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    if fail_percent > 0 && (fnv(uid.as_bytes()) % 100) < u64::from(fail_percent) {
        return Behaviour::Exit(1);
    }
    Behaviour::Run {
        ready: get(READY_ANNOTATION) != Some("false"),
    }
}

fn fnv(b: &[u8]) -> u64 {
    b.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &x| {
        (h ^ x as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Upstream's QoS class: Guaranteed when every container's requests equal
/// its limits for cpu and memory, BestEffort when nothing is set, else
/// Burstable.
pub fn qos_class(pod: &Pod) -> &'static str {
    let Some(spec) = pod.spec.as_ref() else {
        return "BestEffort";
    };
    let all: Vec<&Container> = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &all {
        let r = c.resources.as_ref();
        let req = r.and_then(|r| r.requests.as_ref());
        let lim = r.and_then(|r| r.limits.as_ref());
        for res in ["cpu", "memory"] {
            let q = req.and_then(|m| m.get(res));
            let l = lim.and_then(|m| m.get(res));
            if q.is_some() || l.is_some() {
                any = true;
            }
            // A missing request defaults to the limit.
            match (q, l) {
                (_, None) => guaranteed = false,
                (Some(q), Some(l)) if q != l => guaranteed = false,
                _ => {}
            }
        }
    }
    if !any {
        "BestEffort"
    } else if guaranteed {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// The phase for containers that exited with `code`, per restart policy;
/// `None` while the kubelet would keep restarting them.
fn exited_phase(restart_policy: &str, code: i32) -> Option<&'static str> {
    match (restart_policy, code) {
        ("Never", 0) | ("OnFailure", 0) => Some("Succeeded"),
        ("Never", _) => Some("Failed"),
        _ => None,
    }
}

fn condition(kind: &str, ok: bool, now: &str) -> Value {
    json!({
        "type": kind,
        "status": if ok { "True" } else { "False" },
        "lastProbeTime": null,
        "lastTransitionTime": now,
    })
}

/// Where a pod runs: its node's address and its own.
#[derive(Clone, Debug)]
pub struct Placement {
    /// The node's InternalIP.
    pub host_ip: String,
    /// The pod's IP (the node's for hostNetwork pods).
    pub pod_ip: String,
}

/// The `status` a kubelet would post for `pod` now that it is placed.
/// `started` is the start time to report (kept from an earlier post).
pub fn status(pod: &Pod, how: Behaviour, at: &Placement, started: &str, now: &str) -> Value {
    let spec = pod.spec.clone().unwrap_or_default();
    let restart = spec.restart_policy.as_deref().unwrap_or("Always");
    let (phase, ready, states): (&str, bool, Vec<Value>) = match how {
        Behaviour::Run { ready } => {
            let states = spec
                .containers
                .iter()
                .map(|c| {
                    container_status(
                        pod,
                        c,
                        ready,
                        json!({ "running": { "startedAt": started } }),
                        0,
                    )
                })
                .collect();
            ("Running", ready, states)
        }
        Behaviour::Exit(code) => {
            let terminated = json!({ "terminated": {
                "exitCode": code,
                "reason": if code == 0 { "Completed" } else { "Error" },
                "startedAt": started,
                "finishedAt": now,
                "containerID": null,
            }});
            match exited_phase(restart, code) {
                Some(phase) => {
                    let states = spec
                        .containers
                        .iter()
                        .map(|c| container_status(pod, c, false, terminated.clone(), 0))
                        .collect();
                    (phase, false, states)
                }
                None => {
                    // Restarted and failing again: what `kubectl get` shows as
                    // CrashLoopBackOff.
                    let waiting = json!({ "waiting": {
                        "reason": "CrashLoopBackOff",
                        "message": "back-off 10s restarting failed container",
                    }});
                    let states = spec
                        .containers
                        .iter()
                        .map(|c| {
                            let mut s = container_status(pod, c, false, waiting.clone(), 1);
                            s["lastState"] = terminated.clone();
                            s
                        })
                        .collect();
                    ("Running", false, states)
                }
            }
        }
    };
    let init_states: Vec<Value> = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| {
            let done = json!({ "terminated": {
                "exitCode": 0, "reason": "Completed", "startedAt": started, "finishedAt": started,
            }});
            container_status(pod, c, false, done, 0)
        })
        .collect();
    let mut st = json!({
        "phase": phase,
        "conditions": [
            condition("PodReadyToStartContainers", true, started),
            condition("Initialized", true, started),
            condition("Ready", ready, now),
            condition("ContainersReady", ready, now),
            condition("PodScheduled", true, started),
        ],
        "hostIP": at.host_ip,
        "hostIPs": [{ "ip": at.host_ip }],
        "podIP": at.pod_ip,
        "podIPs": [{ "ip": at.pod_ip }],
        "startTime": started,
        "containerStatuses": states,
        "qosClass": qos_class(pod),
    });
    if !init_states.is_empty() {
        st["initContainerStatuses"] = Value::Array(init_states);
    }
    st
}

fn container_status(pod: &Pod, c: &Container, ready: bool, state: Value, restarts: i32) -> Value {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let image = c.image.clone().unwrap_or_default();
    let running = state.get("running").is_some();
    json!({
        "name": c.name,
        "state": state,
        "lastState": {},
        "ready": ready && running,
        "started": running,
        "restartCount": restarts,
        "image": image,
        "imageID": format!("hollow://{image}"),
        "containerID": format!("hollow://{uid}/{}", c.name),
    })
}

/// Whether the pod's posted status already says what `want` says, in the
/// fields the hollow kubelet owns (so an unchanged pod is not patched again).
pub fn up_to_date(pod: &Pod, want: &Value) -> bool {
    let Some(cur) = pod.status.as_ref() else {
        return false;
    };
    let cur = serde_json::to_value(cur).unwrap_or(Value::Null);
    let cond = |v: &Value, t: &str| {
        v["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == t))
            .map(|c| c["status"].clone())
    };
    let states = |v: &Value| {
        v["containerStatuses"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| {
                        (
                            c["name"].clone(),
                            c["ready"].clone(),
                            c["restartCount"].clone(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    cur["phase"] == want["phase"]
        && cur["podIP"] == want["podIP"]
        && cond(&cur, "Ready") == cond(want, "Ready")
        && states(&cur) == states(want)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(v: Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    fn web() -> Value {
        json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u-1"},
            "spec": {"nodeName": "hollow-0", "containers": [
                {"name": "a", "image": "nginx:1.27"},
                {"name": "b", "image": "busybox"}
            ]}
        })
    }

    fn at() -> Placement {
        Placement {
            host_ip: "172.16.0.1".into(),
            pod_ip: "10.42.0.2".into(),
        }
    }

    #[test]
    fn a_plain_pod_runs_and_is_ready() {
        let p = pod(web());
        let how = behaviour(&p, 0);
        assert_eq!(how, Behaviour::Run { ready: true });
        let s = status(&p, how, &at(), "T0", "T1");
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["podIP"], "10.42.0.2");
        assert_eq!(s["qosClass"], "BestEffort");
        assert_eq!(s["containerStatuses"][1]["name"], "b");
        assert_eq!(s["containerStatuses"][1]["ready"], true);
        assert!(s["containerStatuses"][0]["state"]["running"].is_object());
        let ready = s["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert_eq!(ready["status"], "True");
    }

    #[test]
    fn annotations_choose_readiness_and_exit_codes() {
        let mut v = web();
        v["metadata"]["annotations"] = json!({ READY_ANNOTATION: "false" });
        let p = pod(v.clone());
        assert_eq!(behaviour(&p, 0), Behaviour::Run { ready: false });
        let s = status(&p, behaviour(&p, 0), &at(), "T0", "T1");
        assert_eq!(s["phase"], "Running");
        assert_eq!(s["containerStatuses"][0]["ready"], false);

        v["metadata"]["annotations"] = json!({ EXIT_CODE_ANNOTATION: "3" });
        v["spec"]["restartPolicy"] = json!("Never");
        let p = pod(v.clone());
        let s = status(&p, behaviour(&p, 0), &at(), "T0", "T1");
        assert_eq!(s["phase"], "Failed");
        assert_eq!(
            s["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            3
        );
        assert_eq!(
            s["containerStatuses"][0]["state"]["terminated"]["reason"],
            "Error"
        );

        v["metadata"]["annotations"] = json!({ EXIT_CODE_ANNOTATION: "0" });
        v["spec"]["restartPolicy"] = json!("OnFailure");
        let p = pod(v.clone());
        assert_eq!(
            status(&p, behaviour(&p, 0), &at(), "T0", "T1")["phase"],
            "Succeeded"
        );

        // Always with a failing container: crash looping, still Running.
        v["metadata"]["annotations"] = json!({ EXIT_CODE_ANNOTATION: "1" });
        v["spec"]["restartPolicy"] = json!("Always");
        let p = pod(v);
        let s = status(&p, behaviour(&p, 0), &at(), "T0", "T1");
        assert_eq!(s["phase"], "Running");
        assert_eq!(
            s["containerStatuses"][0]["state"]["waiting"]["reason"],
            "CrashLoopBackOff"
        );
        assert_eq!(s["containerStatuses"][0]["restartCount"], 1);
    }

    #[test]
    fn failure_percent_picks_a_stable_share() {
        let failing = (0..1000)
            .filter(|i| {
                let mut v = web();
                v["metadata"]["uid"] = json!(format!("uid-{i}"));
                behaviour(&pod(v), 20) == Behaviour::Exit(1)
            })
            .count();
        assert!(
            (150..250).contains(&failing),
            "{failing} of 1000 failed at 20%"
        );
        let p = pod(web());
        assert_eq!(behaviour(&p, 0), behaviour(&p, 0));
        assert_eq!(behaviour(&p, 100), Behaviour::Exit(1));
    }

    #[test]
    fn qos_classes() {
        let with = |res: Value| {
            let mut v = web();
            v["spec"]["containers"] = json!([{"name": "a", "image": "x", "resources": res}]);
            qos_class(&pod(v))
        };
        assert_eq!(with(json!({})), "BestEffort");
        assert_eq!(with(json!({"requests": {"cpu": "100m"}})), "Burstable");
        assert_eq!(
            with(json!({"limits": {"cpu": "1", "memory": "1Gi"}})),
            "Guaranteed"
        );
        assert_eq!(
            with(
                json!({"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}})
            ),
            "Burstable"
        );
    }

    #[test]
    fn init_containers_are_reported_completed() {
        let mut v = web();
        v["spec"]["initContainers"] = json!([{"name": "init", "image": "busybox"}]);
        let s = status(&pod(v), Behaviour::Run { ready: true }, &at(), "T0", "T1");
        assert_eq!(
            s["initContainerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
    }

    const T0: &str = "2026-11-28T00:00:00Z";
    const T1: &str = "2026-11-28T00:00:01Z";
    const T2: &str = "2026-11-28T00:00:02Z";

    #[test]
    fn up_to_date_compares_the_owned_fields() {
        let mut v = web();
        let p = pod(v.clone());
        let want = status(&p, behaviour(&p, 0), &at(), T0, T1);
        assert!(!up_to_date(&p, &want));
        v["status"] = want.clone();
        let posted = pod(v.clone());
        assert!(up_to_date(&posted, &want));
        // Readiness flips: out of date.
        v["metadata"]["annotations"] = json!({ READY_ANNOTATION: "false" });
        let p = pod(v);
        let want = status(&p, behaviour(&p, 0), &at(), T0, T2);
        assert!(!up_to_date(&p, &want));
    }
}
