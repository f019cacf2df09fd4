//! What to do next for one pod, from its spec and what the runtime shows:
//! pure decisions (sandbox, init containers in order, app containers,
//! restarts with back-off, the end of a finished pod), unit-tested without
//! a runtime.

use k8s_openapi::api::core::v1::Pod;

use super::observed::{Instance, PodRuntime, State};

/// The first restart is immediate; then 10 s doubling to 5 min, as upstream.
const BACKOFF_START_SECS: i64 = 10;
const BACKOFF_MAX_SECS: i64 = 300;
/// A container that ran this long before exiting restarts without delay.
const BACKOFF_RESET_SECS: i64 = 600;

/// `spec.restartPolicy` (defaults to Always).
pub fn restart_policy(pod: &Pod) -> &str {
    pod.spec
        .as_ref()
        .and_then(|s| s.restart_policy.as_deref())
        .unwrap_or("Always")
}

/// Whether an exited container with `exit_code` is restarted under `policy`.
pub fn should_restart(policy: &str, exit_code: i32) -> bool {
    match policy {
        "Never" => false,
        "OnFailure" => exit_code != 0,
        _ => true,
    }
}

/// How long after its exit `inst` may be restarted, in seconds.
pub fn restart_delay(inst: &Instance) -> i64 {
    // A container that never started (StartError) ran for no time: its
    // back-off is never reset by the time since the epoch.
    let ran = if inst.started_at > 0 {
        (inst.finished_at - inst.started_at) / 1_000_000_000
    } else {
        0
    };
    if inst.restart_count == 0 || ran >= BACKOFF_RESET_SECS {
        return 0;
    }
    let shift = (inst.restart_count - 1).min(16) as u32;
    (BACKOFF_START_SECS << shift).min(BACKOFF_MAX_SECS)
}

/// The back-off still to wait before restarting `inst` (exited), if any:
/// `(remaining seconds, the whole delay)`.
pub fn in_backoff(inst: &Instance, now_ns: i64) -> Option<(i64, i64)> {
    let delay = restart_delay(inst);
    let since = (now_ns - inst.finished_at) / 1_000_000_000;
    (since < delay).then_some((delay - since, delay))
}

/// One container to start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Start {
    /// Its name in the spec.
    pub name: String,
    /// An init container.
    pub init: bool,
    /// The restart count of the new instance.
    pub restart_count: i32,
}

/// The next steps for a pod.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Make a new sandbox with this attempt number, after stopping and
    /// removing `stale_sandboxes`.
    pub new_sandbox: Option<u32>,
    /// Sandboxes to stop and remove.
    pub stale_sandboxes: Vec<String>,
    /// Containers to start, in order, in the current (or new) sandbox.
    pub start: Vec<Start>,
    /// The pod is finished: stop these sandboxes (containers stay, for status).
    pub stop_sandboxes: Vec<String>,
    /// Dead instances no status needs any more.
    pub remove_containers: Vec<String>,
}

/// The restart count for a new instance of `name`: one above any earlier one.
fn next_count(rt: &PodRuntime, name: &str) -> i32 {
    rt.instances(name)
        .first()
        .map(|i| i.restart_count + 1)
        .unwrap_or(0)
}

/// Decide the next steps. `phase` is the phase the pod's status shows (or
/// will show): a Succeeded or Failed pod never runs anything again.
pub fn decide(pod: &Pod, rt: &PodRuntime, phase: &str, now_ns: i64) -> Plan {
    let mut plan = Plan::default();
    let spec = pod.spec.clone().unwrap_or_default();
    if phase == "Succeeded" || phase == "Failed" {
        plan.stop_sandboxes = rt
            .sandboxes
            .iter()
            .filter(|s| s.ready)
            .map(|s| s.id.clone())
            .collect();
        return plan;
    }
    let policy = restart_policy(pod);
    let current = rt.current_sandbox().filter(|s| s.ready);
    let Some(sandbox) = current else {
        // A pod whose sandbox died is started over in a new one, unless it
        // must never restart and something already ran.
        if policy == "Never" && !rt.containers.is_empty() {
            return plan;
        }
        plan.new_sandbox = Some(rt.current_sandbox().map(|s| s.attempt + 1).unwrap_or(0));
        plan.stale_sandboxes = rt.sandboxes.iter().map(|s| s.id.clone()).collect();
        // Init containers first, so only the first one is planned.
        match spec.init_containers.iter().flatten().next() {
            Some(c) => plan.start.push(Start {
                name: c.name.clone(),
                init: true,
                restart_count: next_count(rt, &c.name),
            }),
            None => plan.start.extend(spec.containers.iter().map(|c| Start {
                name: c.name.clone(),
                init: false,
                restart_count: next_count(rt, &c.name),
            })),
        }
        return plan;
    };
    let in_sandbox = |name: &str| -> Option<&Instance> {
        rt.containers
            .iter()
            .find(|c| c.name == name && c.sandbox_id == sandbox.id)
    };
    // Dead instances beyond one per container, as upstream's container GC
    // (MaxPerPodContainer=1): the newest instance gives `state` and the
    // newest dead one `lastState`. The one exception keeps a second dead
    // instance: a newest one that exited for good shows as `terminated`
    // with the one before as `lastState`.
    let is_init = |name: &str| {
        spec.init_containers
            .iter()
            .flatten()
            .any(|c| c.name == name)
    };
    let mut seen: std::collections::HashMap<&str, (usize, usize)> = Default::default();
    for c in &rt.containers {
        let newest = rt.containers.iter().find(|n| n.name == c.name);
        let keep_dead = match newest {
            Some(n) if n.state == State::Exited => {
                let restarted = if is_init(&n.name) {
                    policy != "Never" && n.exit_code != 0
                } else {
                    should_restart(policy, n.exit_code)
                };
                if restarted {
                    1
                } else {
                    2
                }
            }
            _ => 1,
        };
        let (all, dead) = seen.entry(c.name.as_str()).or_default();
        *all += 1;
        if c.state == State::Exited {
            *dead += 1;
            if *all > 1 && *dead > keep_dead {
                plan.remove_containers.push(c.id.clone());
            }
        }
    }
    for c in spec.init_containers.iter().flatten() {
        match in_sandbox(&c.name) {
            None => {
                plan.start.push(Start {
                    name: c.name.clone(),
                    init: true,
                    restart_count: next_count(rt, &c.name),
                });
                return plan;
            }
            Some(i) if i.state == State::Exited && i.exit_code == 0 => continue,
            Some(i) if i.state == State::Exited => {
                if policy != "Never" && in_backoff(i, now_ns).is_none() {
                    plan.start.push(Start {
                        name: c.name.clone(),
                        init: true,
                        restart_count: i.restart_count + 1,
                    });
                }
                return plan;
            }
            Some(_) => return plan,
        }
    }
    for c in &spec.containers {
        match in_sandbox(&c.name) {
            None => plan.start.push(Start {
                name: c.name.clone(),
                init: false,
                restart_count: next_count(rt, &c.name),
            }),
            Some(i)
                if i.state == State::Exited
                    && should_restart(policy, i.exit_code)
                    && in_backoff(i, now_ns).is_none() =>
            {
                plan.start.push(Start {
                    name: c.name.clone(),
                    init: false,
                    restart_count: i.restart_count + 1,
                })
            }
            Some(_) => {}
        }
    }
    plan
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::observed::Sandbox;
    use super::*;
    use serde_json::json;

    pub(crate) fn pod(policy: &str, init: &[&str], app: &[&str]) -> Pod {
        let cs = |names: &[&str]| -> Vec<serde_json::Value> {
            names
                .iter()
                .map(|n| json!({"name": n, "image": "img"}))
                .collect()
        };
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"restartPolicy": policy, "initContainers": cs(init), "containers": cs(app)}
        }))
        .unwrap()
    }

    const S: i64 = 1_000_000_000;

    pub(crate) fn inst(name: &str, rc: i32, state: State, code: i32, finished_s: i64) -> Instance {
        Instance {
            id: format!("{name}-{rc}"),
            sandbox_id: "sb".into(),
            name: name.into(),
            restart_count: rc,
            state,
            created_at: rc as i64,
            started_at: (finished_s - 1).max(0) * S,
            finished_at: finished_s * S,
            exit_code: code,
            reason: String::new(),
            message: String::new(),
            image: "img".into(),
            image_ref: "sha256:abc".into(),
        }
    }

    pub(crate) fn sandbox(ready: bool) -> Sandbox {
        Sandbox {
            id: "sb".into(),
            attempt: 0,
            ready,
            created_at: 1,
            ip: Some("10.0.0.2".into()),
        }
    }

    #[test]
    fn new_pod_gets_a_sandbox_and_its_first_init_container() {
        let p = pod("Always", &["i1", "i2"], &["a"]);
        let plan = decide(&p, &PodRuntime::default(), "Pending", 0);
        assert_eq!(plan.new_sandbox, Some(0));
        assert_eq!(
            plan.start,
            vec![Start {
                name: "i1".into(),
                init: true,
                restart_count: 0
            }]
        );
        let plan = decide(
            &pod("Always", &[], &["a", "b"]),
            &PodRuntime::default(),
            "Pending",
            0,
        );
        assert_eq!(plan.start.len(), 2);
    }

    #[test]
    fn init_containers_run_in_order_then_apps() {
        let p = pod("Always", &["i1", "i2"], &["a"]);
        let mut rt = PodRuntime {
            sandboxes: vec![sandbox(true)],
            containers: vec![],
        };
        rt.containers.push(inst("i1", 0, State::Running, 0, 0));
        assert_eq!(decide(&p, &rt, "Pending", 5 * S).start, vec![]);
        rt.containers[0] = inst("i1", 0, State::Exited, 0, 3);
        assert_eq!(decide(&p, &rt, "Pending", 5 * S).start[0].name, "i2");
        rt.containers.push(inst("i2", 0, State::Exited, 0, 4));
        let plan = decide(&p, &rt, "Pending", 5 * S);
        assert_eq!(
            plan.start,
            vec![Start {
                name: "a".into(),
                init: false,
                restart_count: 0
            }]
        );
    }

    #[test]
    fn failed_init_container_under_never_stops_the_pod() {
        let p = pod("Never", &["i1"], &["a"]);
        let rt = PodRuntime {
            sandboxes: vec![sandbox(true)],
            containers: vec![inst("i1", 0, State::Exited, 1, 3)],
        };
        assert!(decide(&p, &rt, "Pending", 100 * S).start.is_empty());
        let p = pod("OnFailure", &["i1"], &["a"]);
        assert_eq!(
            decide(&p, &rt, "Pending", 100 * S).start[0].restart_count,
            1
        );
    }

    #[test]
    fn restart_policies() {
        let rt = |code| PodRuntime {
            sandboxes: vec![sandbox(true)],
            containers: vec![inst("a", 0, State::Exited, code, 3)],
        };
        let now = 100 * S;
        assert_eq!(
            decide(&pod("Always", &[], &["a"]), &rt(0), "Running", now)
                .start
                .len(),
            1
        );
        assert_eq!(
            decide(&pod("OnFailure", &[], &["a"]), &rt(0), "Running", now)
                .start
                .len(),
            0
        );
        assert_eq!(
            decide(&pod("OnFailure", &[], &["a"]), &rt(2), "Running", now)
                .start
                .len(),
            1
        );
        assert_eq!(
            decide(&pod("Never", &[], &["a"]), &rt(2), "Running", now)
                .start
                .len(),
            0
        );
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let i = |rc| inst("a", rc, State::Exited, 1, 100);
        assert_eq!(restart_delay(&i(0)), 0);
        assert_eq!(restart_delay(&i(1)), 10);
        assert_eq!(restart_delay(&i(2)), 20);
        assert_eq!(restart_delay(&i(6)), 300);
        assert_eq!(restart_delay(&i(40)), 300);
        assert_eq!(in_backoff(&i(2), 105 * S), Some((15, 20)));
        assert_eq!(in_backoff(&i(2), 121 * S), None);
        let mut long = i(3);
        long.started_at = S;
        assert_eq!(restart_delay(&long), 40, "ran 99 s: not reset yet");
        long.finished_at = 700 * S;
        assert_eq!(restart_delay(&long), 0);
        // Never started (StartError): backs off like any crash.
        long.started_at = 0;
        assert_eq!(restart_delay(&long), 40);
        let rt = PodRuntime {
            sandboxes: vec![sandbox(true)],
            containers: vec![i(2)],
        };
        assert!(decide(&pod("Always", &[], &["a"]), &rt, "Running", 105 * S)
            .start
            .is_empty());
        assert_eq!(
            decide(&pod("Always", &[], &["a"]), &rt, "Running", 125 * S).start[0].restart_count,
            3
        );
    }

    #[test]
    fn dead_sandbox_is_replaced_and_finished_pods_stop() {
        let p = pod("Always", &[], &["a"]);
        let rt = PodRuntime {
            sandboxes: vec![sandbox(false)],
            containers: vec![inst("a", 4, State::Exited, 137, 3)],
        };
        let plan = decide(&p, &rt, "Running", 100 * S);
        assert_eq!(plan.new_sandbox, Some(1));
        assert_eq!(plan.stale_sandboxes, vec!["sb".to_string()]);
        assert_eq!(plan.start[0].restart_count, 5);
        assert_eq!(
            decide(&pod("Never", &[], &["a"]), &rt, "Running", 0),
            Plan::default()
        );
        let rt = PodRuntime {
            sandboxes: vec![sandbox(true)],
            containers: vec![],
        };
        assert_eq!(
            decide(&p, &rt, "Succeeded", 0).stop_sandboxes,
            vec!["sb".to_string()]
        );
    }

    #[test]
    fn old_instances_are_removed() {
        let rt = PodRuntime {
            sandboxes: vec![sandbox(true)],
            containers: vec![
                inst("a", 3, State::Running, 0, 0),
                inst("a", 2, State::Exited, 1, 9),
                inst("a", 1, State::Exited, 1, 5),
                inst("a", 0, State::Exited, 1, 2),
            ],
        };
        let plan = decide(&pod("Always", &[], &["a"]), &rt, "Running", 100 * S);
        assert_eq!(
            plan.remove_containers,
            vec!["a-1".to_string(), "a-0".to_string()]
        );
        assert!(plan.start.is_empty());
    }

    #[test]
    fn one_dead_instance_is_kept_per_container() {
        let dead = |rc, code, t| inst("a", rc, State::Exited, code, t);
        let rt = |cs: Vec<Instance>| PodRuntime {
            sandboxes: vec![sandbox(true)],
            containers: cs,
        };
        // Backing off after a crash: the newest dead instance is `state`
        // and `lastState` both, the older ones go.
        let crashing = rt(vec![dead(2, 1, 99), dead(1, 1, 80), dead(0, 1, 70)]);
        let plan = decide(&pod("Always", &[], &["a"]), &crashing, "Running", 100 * S);
        assert_eq!(
            plan.remove_containers,
            vec!["a-1".to_string(), "a-0".to_string()]
        );
        // Exited for good (OnFailure, exit 0): the one before stays for lastState.
        let done = rt(vec![dead(2, 0, 99), dead(1, 1, 80), dead(0, 1, 70)]);
        let plan = decide(&pod("OnFailure", &[], &["a"]), &done, "Running", 100 * S);
        assert_eq!(plan.remove_containers, vec!["a-0".to_string()]);
    }
}
