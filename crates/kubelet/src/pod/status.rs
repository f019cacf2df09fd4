//! The status the kubelet posts for a pod, computed from its spec and what
//! the runtime shows, in upstream's field formats: phase, conditions,
//! container statuses (`containerd://<id>`), IPs, QoS class, start time.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::{json, Value};

use super::observed::{Instance, PodRuntime, State};
use super::plan::{in_backoff, restart_policy, should_restart};

/// A failure the kubelet met while starting a container (image pull,
/// create, start), shown as the container's waiting reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Waiting {
    /// Upstream's reason, e.g. `ErrImagePull`.
    pub reason: String,
    /// The message.
    pub message: String,
}

/// `status.reason` of a pod past its `activeDeadlineSeconds`.
pub const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";

/// Inputs besides the pod and the runtime's view.
pub struct Inputs<'a> {
    /// The node's address.
    pub host_ip: &'a str,
    /// The runtime's name, the scheme of container IDs (`containerd`).
    pub runtime_name: &'a str,
    /// Now, ns since the epoch.
    pub now_ns: i64,
    /// Failures per container name.
    pub waiting: &'a HashMap<String, Waiting>,
    /// Probe results by container ID (absent: no result yet).
    pub probes: &'a HashMap<String, super::probe::ProbeState>,
}

/// A time in ns as a `metav1.Time` (seconds, UTC).
pub fn time(ns: i64) -> Value {
    if ns <= 0 {
        return Value::Null;
    }
    k8s_openapi::jiff::Timestamp::from_nanosecond(ns as i128)
        .map(|t| json!(t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()))
        .unwrap_or(Value::Null)
}

fn terminated(i: &Instance, runtime: &str) -> Value {
    let reason = if !i.reason.is_empty() && i.reason != "Completed" && i.reason != "Error" {
        i.reason.clone()
    } else if i.exit_code == 0 {
        "Completed".into()
    } else {
        "Error".into()
    };
    let mut t = json!({
        "exitCode": i.exit_code,
        "reason": reason,
        "startedAt": time(i.started_at),
        "finishedAt": time(i.finished_at),
        "containerID": format!("{runtime}://{}", i.id),
    });
    if !i.message.is_empty() {
        t["message"] = json!(i.message);
    }
    json!({ "terminated": t })
}

/// One container's status, and whether it counts as restarting (exited,
/// to be started again) for the phase.
fn container_status(
    pod: &Pod,
    c: &Container,
    rt: &PodRuntime,
    inp: &Inputs,
    default_waiting: &str,
    restartable: bool,
) -> (Value, Kind) {
    let instances = rt.instances(&c.name);
    let latest = instances.first().copied();
    let previous = instances.get(1).copied();
    let spec_image = c.image.clone().unwrap_or_default();
    let last_state = |i: Option<&Instance>| match i {
        Some(i) if i.state == State::Exited => terminated(i, inp.runtime_name),
        _ => json!({}),
    };
    let waiting = |reason: &str, message: Option<String>| {
        let mut w = json!({ "reason": reason });
        if let Some(m) = message {
            w["message"] = json!(m);
        }
        json!({ "waiting": w })
    };
    let failure = inp.waiting.get(&c.name);
    let (state, last, kind) = match latest {
        None => {
            let st = match failure {
                Some(f) => waiting(&f.reason, Some(f.message.clone())),
                None => waiting(default_waiting, None),
            };
            (st, json!({}), Kind::Waiting)
        }
        Some(i) => match i.state {
            State::Running => (
                json!({ "running": { "startedAt": time(i.started_at) } }),
                last_state(previous),
                Kind::Running,
            ),
            State::Exited if restartable && should_restart(restart_policy(pod), i.exit_code) => {
                let st = match (failure, in_backoff(i, inp.now_ns)) {
                    (Some(f), _) => waiting(&f.reason, Some(f.message.clone())),
                    (None, Some((_, delay))) => waiting(
                        "CrashLoopBackOff",
                        Some(format!(
                            "back-off {delay}s restarting failed container={} pod={}_{}({})",
                            c.name,
                            pod.metadata.name.as_deref().unwrap_or_default(),
                            pod.metadata.namespace.as_deref().unwrap_or_default(),
                            pod.metadata.uid.as_deref().unwrap_or_default(),
                        )),
                    ),
                    (None, None) => terminated(i, inp.runtime_name),
                };
                let kind = if st.get("waiting").is_some() {
                    Kind::Restarting
                } else {
                    Kind::Exited(i.exit_code)
                };
                let last = if kind == Kind::Restarting {
                    terminated(i, inp.runtime_name)
                } else {
                    last_state(previous)
                };
                (st, last, kind)
            }
            State::Exited => (
                terminated(i, inp.runtime_name),
                last_state(previous),
                Kind::Exited(i.exit_code),
            ),
            State::Created | State::Unknown => (
                waiting("ContainerCreating", None),
                last_state(previous),
                Kind::Waiting,
            ),
        },
    };
    let running = kind == Kind::Running;
    let probed = latest
        .and_then(|i| inp.probes.get(&i.id))
        .copied()
        // No result yet: its probes have not run, or the prober does not
        // follow this instance.
        .unwrap_or_else(|| super::probe::ProbeState::before_results(c));
    let mut v = json!({
        "name": c.name,
        "state": state,
        "lastState": last,
        "ready": running && probed.started && probed.ready,
        "restartCount": latest.map(|i| i.restart_count).unwrap_or(0),
        "image": latest.map(|i| i.image.clone()).filter(|i| !i.is_empty()).unwrap_or(spec_image),
        "imageID": latest.map(|i| i.image_ref.clone()).unwrap_or_default(),
        "started": running && probed.started,
    });
    if let Some(i) = latest {
        v["containerID"] = json!(format!("{}://{}", inp.runtime_name, i.id));
    }
    (v, kind)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Waiting,
    Running,
    Restarting,
    Exited(i32),
}

/// Upstream's phase from the app containers (after the init containers).
fn phase(policy: &str, init_failed: bool, init_done: bool, kinds: &[Kind]) -> &'static str {
    if init_failed {
        return "Failed";
    }
    if !init_done {
        return "Pending";
    }
    let waiting = kinds.iter().filter(|k| **k == Kind::Waiting).count();
    let running = kinds.iter().filter(|k| **k == Kind::Running).count();
    let stopped = kinds
        .iter()
        .filter(|k| matches!(k, Kind::Restarting | Kind::Exited(_)))
        .count();
    let succeeded = kinds.iter().filter(|k| **k == Kind::Exited(0)).count();
    let restarting = kinds.contains(&Kind::Restarting);
    if waiting > 0 {
        "Pending"
    } else if running > 0 {
        "Running"
    } else if stopped > 0 {
        if policy == "Always" || restarting {
            "Running"
        } else if stopped == succeeded {
            "Succeeded"
        } else if policy == "OnFailure" {
            "Running"
        } else {
            "Failed"
        }
    } else {
        "Pending"
    }
}

/// The status to post. Conditions keep the transition times of the pod's
/// current status when their value did not change.
pub fn pod_status(pod: &Pod, rt: &PodRuntime, inp: &Inputs) -> Value {
    let spec = pod.spec.clone().unwrap_or_default();
    let policy = restart_policy(pod);
    let old = pod.status.clone().unwrap_or_default();
    // A finished pod stays finished, whatever the runtime shows now.
    let old_phase = old.phase.clone().unwrap_or_default();
    // Containers of a finished pod are not restarted: they show terminated.
    let restartable = old_phase != "Succeeded" && old_phase != "Failed";
    let mut init_statuses = Vec::new();
    let mut init_done = true;
    let mut init_failed = false;
    let mut incomplete = Vec::new();
    for c in spec.init_containers.iter().flatten() {
        let (mut v, kind) = container_status(pod, c, rt, inp, "PodInitializing", restartable);
        if c.restart_policy.as_deref() != Some("Always") {
            // As upstream's prober manager: an init container (not a
            // sidecar) is ready once it exited 0, not while it runs.
            v["ready"] = json!(kind == Kind::Exited(0));
        }
        match kind {
            Kind::Exited(0) => {}
            Kind::Exited(_) => {
                init_done = false;
                init_failed = policy == "Never";
                incomplete.push(c.name.clone());
            }
            _ => {
                init_done = false;
                incomplete.push(c.name.clone());
            }
        }
        init_statuses.push(v);
        if !matches!(kind, Kind::Exited(0)) {
            // Later init containers have not run; they wait.
            init_done = false;
        }
    }
    let app_default = if init_done {
        "ContainerCreating"
    } else {
        "PodInitializing"
    };
    let mut statuses = Vec::new();
    let mut kinds = Vec::new();
    let mut unready = Vec::new();
    for c in &spec.containers {
        let (v, kind) = container_status(pod, c, rt, inp, app_default, restartable);
        if v["ready"] != json!(true) {
            unready.push(c.name.clone());
        }
        statuses.push(v);
        kinds.push(kind);
    }
    let mut phase = phase(policy, init_failed, init_done, &kinds);
    if old_phase == "Succeeded" || old_phase == "Failed" {
        phase = if old_phase == "Succeeded" {
            "Succeeded"
        } else {
            "Failed"
        };
    }
    let start_time = old
        .start_time
        .as_ref()
        .map(|t| t.0.as_nanosecond() as i64)
        .unwrap_or(inp.now_ns);
    let deadline_exceeded = phase != "Succeeded"
        && (old.reason.as_deref() == Some(DEADLINE_EXCEEDED)
            || spec.active_deadline_seconds.is_some_and(|d| {
                inp.now_ns.saturating_sub(start_time) >= d.saturating_mul(1_000_000_000)
            }));
    if deadline_exceeded {
        phase = "Failed";
    }
    let terminal = phase == "Succeeded" || phase == "Failed";
    let sandbox = rt.current_sandbox();
    let host_network = spec.host_network.unwrap_or(false);
    let pod_ip = if host_network {
        Some(inp.host_ip.to_string())
    } else {
        sandbox.filter(|s| s.ready).and_then(|s| s.ip.clone())
    }
    .or_else(|| old.pod_ip.clone().filter(|_| terminal));
    let now = time(inp.now_ns);
    let old_conds: HashMap<String, (String, Value)> = old
        .conditions
        .iter()
        .flatten()
        .map(|c| {
            (
                c.type_.clone(),
                (
                    c.status.clone(),
                    serde_json::to_value(&c.last_transition_time).unwrap_or(Value::Null),
                ),
            )
        })
        .collect();
    let cond = |t: &str, ok: bool, reason: Option<&str>, message: Option<String>| {
        let status = if ok { "True" } else { "False" };
        let since = match old_conds.get(t) {
            Some((s, at)) if s == status && !at.is_null() => at.clone(),
            _ => now.clone(),
        };
        let mut c = json!({ "type": t, "status": status, "lastProbeTime": null, "lastTransitionTime": since });
        if let Some(r) = reason {
            c["reason"] = json!(r);
        }
        if let Some(m) = message {
            c["message"] = json!(m);
        }
        c
    };
    let list = |names: &[String]| format!("[{}]", names.join(" "));
    let ready = unready.is_empty() && init_done && !terminal;
    let (ready_reason, ready_msg) = if ready {
        (None, None)
    } else if phase == "Failed" {
        (Some("PodFailed"), None)
    } else if terminal {
        (Some("PodCompleted"), None)
    } else {
        (
            Some("ContainersNotReady"),
            Some(format!(
                "containers with unready status: {}",
                list(&unready)
            )),
        )
    };
    // Readiness gates: conditions others set, which Ready waits for too.
    let gates_unmet = spec.readiness_gates.iter().flatten().find_map(|g| {
        let t = &g.condition_type;
        match old.conditions.iter().flatten().find(|c| &c.type_ == t) {
            None => Some(format!(
                "corresponding condition of pod readiness gate \"{t}\" does not exist."
            )),
            Some(c) if c.status != "True" => Some(format!(
                "the status of pod readiness gate \"{t}\" is not \"True\", but {}",
                c.status
            )),
            Some(_) => None,
        }
    });
    // As upstream: a succeeded pod is initialized (PodCompleted); else
    // once every init container completed or an app container started.
    let app_started = statuses.iter().any(|s| {
        s["state"].get("running").is_some()
            || s["state"].get("terminated").is_some()
            || s["restartCount"].as_i64().unwrap_or(0) > 0
    });
    let init_cond = if phase == "Succeeded" {
        cond("Initialized", true, Some("PodCompleted"), None)
    } else if init_done || app_started {
        cond("Initialized", true, None, None)
    } else {
        cond(
            "Initialized",
            false,
            Some("ContainersNotInitialized"),
            Some(format!(
                "containers with incomplete status: {}",
                list(&incomplete)
            )),
        )
    };
    let mut status = json!({
        "phase": phase,
        "conditions": [
            cond("PodReadyToStartContainers", sandbox.is_some_and(|s| s.ready), None, None),
            init_cond,
            match (ready, &gates_unmet) {
                (true, Some(msg)) => cond("Ready", false, Some("ReadinessGatesNotReady"), Some(msg.clone())),
                _ => cond("Ready", ready, ready_reason, ready_msg.clone()),
            },
            cond("ContainersReady", ready, ready_reason, ready_msg),
            cond("PodScheduled", true, None, None),
        ],
        "hostIP": inp.host_ip,
        "hostIPs": [{ "ip": inp.host_ip }],
        "startTime": old.start_time.as_ref().map(|t| json!(t.0.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())).unwrap_or(now.clone()),
        "containerStatuses": statuses,
        "qosClass": hollow::pod::qos_class(pod),
    });
    // Conditions other components own (DisruptionTarget, readiness gates)
    // stay: a merge patch replaces the whole list.
    let ours = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ];
    if let Some(list) = status["conditions"].as_array_mut() {
        for c in old
            .conditions
            .iter()
            .flatten()
            .filter(|c| !ours.contains(&c.type_.as_str()))
        {
            list.push(serde_json::to_value(c).unwrap_or(Value::Null));
        }
    }
    if deadline_exceeded {
        status["reason"] = json!(DEADLINE_EXCEEDED);
        status["message"] = json!("Pod was active on the node longer than the specified deadline");
    }
    if let Some(ip) = pod_ip {
        status["podIP"] = json!(ip);
        status["podIPs"] = json!([{ "ip": ip }]);
    }
    if !init_statuses.is_empty() {
        status["initContainerStatuses"] = Value::Array(init_statuses);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::super::plan::tests::{inst, pod, sandbox};
    use super::*;

    const S: i64 = 1_000_000_000;

    fn inputs(waiting: &HashMap<String, Waiting>) -> Inputs<'_> {
        static NO_PROBES: std::sync::LazyLock<HashMap<String, super::super::probe::ProbeState>> =
            std::sync::LazyLock::new(HashMap::new);
        Inputs {
            probes: &NO_PROBES,
            host_ip: "192.168.1.5",
            runtime_name: "containerd",
            now_ns: 100 * S,
            waiting,
        }
    }

    fn cond<'a>(st: &'a Value, t: &str) -> &'a Value {
        st["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == t)
            .unwrap()
    }

    #[test]
    fn running_pod() {
        let w = HashMap::new();
        let rt = PodRuntime {
            sandboxes: vec![sandbox(true)],
            containers: vec![inst("a", 0, State::Running, 0, 50)],
        };
        let st = pod_status(&pod("Always", &[], &["a"]), &rt, &inputs(&w));
        assert_eq!(st["phase"], "Running");
        assert_eq!(st["podIP"], "10.0.0.2");
        assert_eq!(st["podIPs"], json!([{"ip": "10.0.0.2"}]));
        assert_eq!(st["hostIP"], "192.168.1.5");
        assert_eq!(st["qosClass"], "BestEffort");
        let cs = &st["containerStatuses"][0];
        assert_eq!(cs["containerID"], "containerd://a-0");
        assert_eq!(cs["imageID"], "sha256:abc");
        assert_eq!(cs["ready"], true);
        assert_eq!(cs["started"], true);
        assert_eq!(cs["state"]["running"]["startedAt"], "1970-01-01T00:00:49Z");
        assert_eq!(cond(&st, "Ready")["status"], "True");
        assert_eq!(cond(&st, "Initialized")["status"], "True");
        let _: k8s_openapi::api::core::v1::PodStatus = serde_json::from_value(st).unwrap();
    }

    #[test]
    fn a_probed_container_without_a_result_is_neither_ready_nor_started() {
        let w = HashMap::new();
        let rt = PodRuntime {
            sandboxes: vec![sandbox(true)],
            containers: vec![inst("a", 0, State::Running, 0, 50)],
        };
        let mut p = pod("Always", &[], &["a"]);
        let c = &mut p.spec.as_mut().unwrap().containers[0];
        c.readiness_probe = Some(Default::default());
        let st = pod_status(&p, &rt, &inputs(&w));
        assert_eq!(st["containerStatuses"][0]["ready"], false);
        assert_eq!(st["containerStatuses"][0]["started"], true);
        assert_eq!(cond(&st, "ContainersReady")["status"], "False");
        let c = &mut p.spec.as_mut().unwrap().containers[0];
        c.readiness_probe = None;
        c.startup_probe = Some(Default::default());
        let st = pod_status(&p, &rt, &inputs(&w));
        assert_eq!(st["containerStatuses"][0]["ready"], false);
        assert_eq!(st["containerStatuses"][0]["started"], false);
        // With results, they count.
        let probes = HashMap::from([(
            "a-0".to_string(),
            super::super::probe::ProbeState {
                ready: true,
                started: true,
            },
        )]);
        let st = pod_status(
            &p,
            &rt,
            &Inputs {
                probes: &probes,
                ..inputs(&w)
            },
        );
        assert_eq!(st["containerStatuses"][0]["ready"], true);
        assert_eq!(cond(&st, "ContainersReady")["status"], "True");
    }

    #[test]
    fn crash_loop_shows_waiting_with_last_state() {
        let w = HashMap::new();
        let rt = PodRuntime {
            sandboxes: vec![sandbox(true)],
            containers: vec![
                inst("a", 2, State::Exited, 3, 95),
                inst("a", 1, State::Exited, 3, 80),
            ],
        };
        let st = pod_status(&pod("Always", &[], &["a"]), &rt, &inputs(&w));
        assert_eq!(st["phase"], "Running");
        let cs = &st["containerStatuses"][0];
        assert_eq!(cs["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert!(cs["state"]["waiting"]["message"]
            .as_str()
            .unwrap()
            .starts_with("back-off 20s restarting failed container=a pod=p_ns(u)"));
        assert_eq!(cs["lastState"]["terminated"]["exitCode"], 3);
        assert_eq!(cs["lastState"]["terminated"]["reason"], "Error");
        assert_eq!(cs["restartCount"], 2);
        assert_eq!(cond(&st, "Ready")["reason"], "ContainersNotReady");
        assert_eq!(
            cond(&st, "Ready")["message"],
            "containers with unready status: [a]"
        );
    }

    #[test]
    fn phases_by_restart_policy() {
        let w = HashMap::new();
        let rt = |code| PodRuntime {
            sandboxes: vec![sandbox(true)],
            containers: vec![inst("a", 0, State::Exited, code, 90)],
        };
        let ph = |policy, code| {
            pod_status(&pod(policy, &[], &["a"]), &rt(code), &inputs(&w))["phase"].clone()
        };
        assert_eq!(ph("Never", 0), "Succeeded");
        assert_eq!(ph("Never", 1), "Failed");
        assert_eq!(ph("OnFailure", 0), "Succeeded");
        assert_eq!(ph("OnFailure", 1), "Running");
        assert_eq!(ph("Always", 0), "Running");
        let st = pod_status(&pod("Never", &[], &["a"]), &rt(0), &inputs(&w));
        assert_eq!(
            st["containerStatuses"][0]["state"]["terminated"]["reason"],
            "Completed"
        );
        assert_eq!(cond(&st, "Ready")["reason"], "PodCompleted");
        assert_eq!(cond(&st, "Initialized")["reason"], "PodCompleted");
        let st = pod_status(&pod("Never", &[], &["a"]), &rt(1), &inputs(&w));
        assert_eq!(cond(&st, "Ready")["reason"], "PodFailed");
        assert_eq!(cond(&st, "ContainersReady")["reason"], "PodFailed");
        assert_eq!(cond(&st, "Initialized")["status"], "True");
        assert!(cond(&st, "Initialized").get("reason").is_none());
    }

    #[test]
    fn a_failed_init_container_leaves_the_failed_pod_uninitialized() {
        let w = HashMap::new();
        let rt = PodRuntime {
            sandboxes: vec![sandbox(true)],
            containers: vec![inst("i", 0, State::Exited, 4, 90)],
        };
        let st = pod_status(&pod("Never", &["i"], &["a"]), &rt, &inputs(&w));
        assert_eq!(st["phase"], "Failed");
        let init = cond(&st, "Initialized");
        assert_eq!(init["status"], "False");
        assert_eq!(init["reason"], "ContainersNotInitialized");
        assert_eq!(init["message"], "containers with incomplete status: [i]");
        assert_eq!(cond(&st, "Ready")["reason"], "PodFailed");
        assert_eq!(
            st["containerStatuses"][0]["state"]["waiting"]["reason"],
            "PodInitializing"
        );
    }

    #[test]
    fn init_containers_and_waiting_reasons() {
        let mut w = HashMap::new();
        w.insert(
            "a".to_string(),
            Waiting {
                reason: "ErrImagePull".into(),
                message: "not found".into(),
            },
        );
        let p = pod("Always", &["i"], &["a"]);
        let rt = PodRuntime {
            sandboxes: vec![sandbox(true)],
            containers: vec![inst("i", 0, State::Running, 0, 90)],
        };
        let st = pod_status(&p, &rt, &inputs(&w));
        assert_eq!(st["phase"], "Pending");
        assert_eq!(
            cond(&st, "Initialized")["message"],
            "containers with incomplete status: [i]"
        );
        assert_eq!(
            st["initContainerStatuses"][0]["state"]["running"]["startedAt"],
            "1970-01-01T00:01:29Z"
        );
        // Running, not ready (upstream's prober manager), but started.
        assert_eq!(st["initContainerStatuses"][0]["ready"], false);
        assert_eq!(st["initContainerStatuses"][0]["started"], true);
        assert_eq!(
            st["containerStatuses"][0]["state"]["waiting"]["reason"],
            "ErrImagePull"
        );
        let w2 = HashMap::new();
        let st = pod_status(&p, &rt, &inputs(&w2));
        assert_eq!(
            st["containerStatuses"][0]["state"]["waiting"]["reason"],
            "PodInitializing"
        );
        let rt = PodRuntime {
            sandboxes: vec![sandbox(true)],
            containers: vec![inst("i", 0, State::Exited, 1, 90)],
        };
        assert_eq!(
            pod_status(&pod("Never", &["i"], &["a"]), &rt, &inputs(&w2))["phase"],
            "Failed"
        );
        assert_eq!(pod_status(&p, &rt, &inputs(&w2))["phase"], "Pending");
        assert_eq!(
            pod_status(&p, &rt, &inputs(&w2))["initContainerStatuses"][0]["ready"],
            false
        );
        // Completed: ready, no longer started.
        let rt = PodRuntime {
            sandboxes: vec![sandbox(true)],
            containers: vec![inst("i", 0, State::Exited, 0, 90)],
        };
        let st = pod_status(&p, &rt, &inputs(&w2));
        assert_eq!(st["initContainerStatuses"][0]["ready"], true);
        assert_eq!(st["initContainerStatuses"][0]["started"], false);
    }

    #[test]
    fn active_deadline_fails_the_pod() {
        let w = HashMap::new();
        let rt = PodRuntime {
            sandboxes: vec![sandbox(true)],
            containers: vec![inst("a", 0, State::Running, 0, 50)],
        };
        let mut p = pod("Always", &[], &["a"]);
        p.status =
            Some(serde_json::from_value(json!({"startTime": "1970-01-01T00:01:00Z"})).unwrap());
        // Started at 60 s; now is 100 s.
        p.spec.as_mut().unwrap().active_deadline_seconds = Some(41);
        assert_eq!(pod_status(&p, &rt, &inputs(&w))["phase"], "Running");
        p.spec.as_mut().unwrap().active_deadline_seconds = Some(40);
        let st = pod_status(&p, &rt, &inputs(&w));
        assert_eq!(st["phase"], "Failed");
        assert_eq!(st["reason"], "DeadlineExceeded");
        // Once failed, the containers show terminated and nothing restarts.
        p.status = Some(serde_json::from_value(st).unwrap());
        let rt = PodRuntime {
            sandboxes: vec![sandbox(false)],
            containers: vec![inst("a", 0, State::Exited, 137, 99)],
        };
        let st = pod_status(&p, &rt, &inputs(&w));
        assert_eq!(st["phase"], "Failed");
        assert_eq!(
            st["containerStatuses"][0]["state"]["terminated"]["exitCode"],
            137
        );
        assert!(super::super::plan::decide(&p, &rt, "Failed", 100 * S)
            .start
            .is_empty());
    }

    #[test]
    fn conditions_of_other_components_are_kept() {
        let w = HashMap::new();
        let mut p = pod("Always", &[], &["a"]);
        p.status = Some(
            serde_json::from_value(json!({"conditions": [
                {"type": "DisruptionTarget", "status": "True", "reason": "DeletionByTaintManager"},
                {"type": "Ready", "status": "False"},
            ]}))
            .unwrap(),
        );
        let st = pod_status(&p, &PodRuntime::default(), &inputs(&w));
        assert_eq!(
            cond(&st, "DisruptionTarget")["reason"],
            "DeletionByTaintManager"
        );
        let types: Vec<_> = st["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].clone())
            .collect();
        assert_eq!(types.iter().filter(|t| **t == "Ready").count(), 1);
    }

    #[test]
    fn readiness_gates_hold_ready_back() {
        let w = HashMap::new();
        let rt = PodRuntime {
            sandboxes: vec![sandbox(true)],
            containers: vec![inst("a", 0, State::Running, 0, 50)],
        };
        let mut p = pod("Always", &[], &["a"]);
        p.spec.as_mut().unwrap().readiness_gates = Some(vec![serde_json::from_value(
            json!({"conditionType": "example.com/lb"}),
        )
        .unwrap()]);
        let st = pod_status(&p, &rt, &inputs(&w));
        assert_eq!(cond(&st, "ContainersReady")["status"], "True");
        assert_eq!(cond(&st, "Ready")["status"], "False");
        assert_eq!(cond(&st, "Ready")["reason"], "ReadinessGatesNotReady");
        p.status = Some(
            serde_json::from_value(
                json!({"conditions": [{"type": "example.com/lb", "status": "True"}]}),
            )
            .unwrap(),
        );
        let st = pod_status(&p, &rt, &inputs(&w));
        assert_eq!(cond(&st, "Ready")["status"], "True");
        assert_eq!(cond(&st, "example.com/lb")["status"], "True");
    }

    #[test]
    fn new_pod_is_pending_and_creating() {
        let w = HashMap::new();
        let st = pod_status(
            &pod("Always", &[], &["a"]),
            &PodRuntime::default(),
            &inputs(&w),
        );
        assert_eq!(st["phase"], "Pending");
        assert_eq!(
            st["containerStatuses"][0]["state"]["waiting"]["reason"],
            "ContainerCreating"
        );
        assert!(st.get("podIP").is_none());
        assert_eq!(cond(&st, "PodReadyToStartContainers")["status"], "False");
    }
}
