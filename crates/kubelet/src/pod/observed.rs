//! What the runtime shows of a pod, in the form the sync logic reads:
//! its sandboxes and container instances, grouped by pod UID from the CRI
//! labels.

use std::collections::HashMap;

use crate::cri::{api, labels};

/// One sandbox of a pod.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Sandbox {
    /// CRI ID.
    pub id: String,
    /// Attempt (metadata), rising with every new sandbox for the pod.
    pub attempt: u32,
    /// SANDBOX_READY.
    pub ready: bool,
    /// Creation time, ns.
    pub created_at: i64,
    /// Its IP, if it has a network of its own.
    pub ip: Option<String>,
}

/// The state of a container instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// Created, not started.
    Created,
    /// Running.
    Running,
    /// Exited.
    Exited,
    /// The runtime does not know.
    Unknown,
}

impl State {
    /// From the CRI enum value.
    pub fn from_cri(v: i32) -> State {
        match api::ContainerState::try_from(v) {
            Ok(api::ContainerState::ContainerCreated) => State::Created,
            Ok(api::ContainerState::ContainerRunning) => State::Running,
            Ok(api::ContainerState::ContainerExited) => State::Exited,
            _ => State::Unknown,
        }
    }
}

/// One instance of a container.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    /// CRI ID.
    pub id: String,
    /// The sandbox it runs in.
    pub sandbox_id: String,
    /// The container's name in the pod spec.
    pub name: String,
    /// `io.kubernetes.container.restartCount` of this instance.
    pub restart_count: i32,
    /// State.
    pub state: State,
    /// Times in ns (0 when not yet).
    pub created_at: i64,
    /// Start time, ns.
    pub started_at: i64,
    /// Finish time, ns.
    pub finished_at: i64,
    /// Exit code (when exited).
    pub exit_code: i32,
    /// The runtime's reason (e.g. `OOMKilled`).
    pub reason: String,
    /// The runtime's message.
    pub message: String,
    /// The image as the runtime names it.
    pub image: String,
    /// The image's ID or digest reference.
    pub image_ref: String,
}

/// Everything the runtime has of one pod.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PodRuntime {
    /// Its sandboxes, newest first.
    pub sandboxes: Vec<Sandbox>,
    /// Its container instances, of every sandbox, newest first.
    pub containers: Vec<Instance>,
}

impl PodRuntime {
    /// The newest sandbox.
    pub fn current_sandbox(&self) -> Option<&Sandbox> {
        self.sandboxes.first()
    }

    /// The instances of container `name`, newest first (highest restart
    /// count, then latest created).
    pub fn instances(&self, name: &str) -> Vec<&Instance> {
        self.containers.iter().filter(|c| c.name == name).collect()
    }

    fn sort(&mut self) {
        self.sandboxes
            .sort_by_key(|s| std::cmp::Reverse((s.attempt, s.created_at)));
        self.containers
            .sort_by_key(|c| std::cmp::Reverse((c.restart_count, c.created_at)));
    }
}

/// Group sandboxes and container statuses by pod UID. `sandbox_ips` gives
/// each sandbox's IP (from PodSandboxStatus).
pub fn group(
    sandboxes: &[api::PodSandbox],
    sandbox_ips: &HashMap<String, Option<String>>,
    containers: &[(api::Container, Option<api::ContainerStatus>)],
) -> HashMap<String, PodRuntime> {
    let mut by_uid: HashMap<String, PodRuntime> = HashMap::new();
    let mut sandbox_uid: HashMap<&str, &str> = HashMap::new();
    for s in sandboxes {
        if !s.labels.contains_key(labels::MANAGED_BY) {
            continue;
        }
        let Some(uid) = s.labels.get(labels::POD_UID) else {
            continue;
        };
        sandbox_uid.insert(&s.id, uid);
        by_uid
            .entry(uid.clone())
            .or_default()
            .sandboxes
            .push(Sandbox {
                id: s.id.clone(),
                attempt: s.metadata.as_ref().map(|m| m.attempt).unwrap_or(0),
                ready: s.state == api::PodSandboxState::SandboxReady as i32,
                created_at: s.created_at,
                ip: sandbox_ips.get(&s.id).cloned().flatten(),
            });
    }
    for (c, st) in containers {
        let Some(uid) = sandbox_uid.get(c.pod_sandbox_id.as_str()) else {
            continue;
        };
        let name = c
            .labels
            .get(labels::CONTAINER_NAME)
            .cloned()
            .unwrap_or_default();
        let restart_count = c
            .annotations
            .get(labels::RESTART_COUNT)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let st = st.clone().unwrap_or_default();
        let image = st
            .image
            .as_ref()
            .map(|i| i.image.clone())
            .filter(|i| !i.is_empty())
            .or_else(|| c.image.as_ref().map(|i| i.image.clone()))
            .unwrap_or_default();
        by_uid
            .entry(uid.to_string())
            .or_default()
            .containers
            .push(Instance {
                id: c.id.clone(),
                sandbox_id: c.pod_sandbox_id.clone(),
                name,
                restart_count,
                state: State::from_cri(c.state),
                created_at: c.created_at,
                started_at: st.started_at,
                finished_at: st.finished_at,
                exit_code: st.exit_code,
                reason: st.reason,
                message: st.message,
                image,
                image_ref: if st.image_ref.is_empty() {
                    c.image_ref.clone()
                } else {
                    st.image_ref
                },
            });
    }
    for rt in by_uid.values_mut() {
        rt.sort();
    }
    by_uid
}
