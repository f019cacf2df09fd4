//! Pod sync: one watch of the pods bound to this node, a relist of the
//! runtime every second and at once after a container exits (containerd's
//! task events, see [`exits`]: containerd 1.6 has no CRI container events), and
//! per pod a task that carries out the next steps; statuses are posted
//! through `pods/status` when they change, in the background (a round
//! never waits for the API), one post per pod at a time. A pod being deleted is stopped
//! with its grace period, its sandbox removed, and its API delete finished
//! (grace 0, UID precondition), as upstream's status manager does.
//! Sandboxes found at start are adopted by their `io.kubernetes.pod.uid`
//! label; those of pods that no longer exist are removed.

pub mod dns;
pub mod env;
pub mod exits;
pub mod grpc_health;
pub mod observed;
pub mod plan;
pub mod probe;
pub mod pull;
pub mod runtimeclass;
pub mod spec;
pub mod status;
pub mod sync;
pub mod volumes;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client, ResourceExt};
use serde_json::{json, Value};

use crate::cri::{api, CriResult, Runtime};
use observed::PodRuntime;

/// The grace period for containers whose pod object is gone (force-deleted):
/// upstream's minimum of 2 s.
pub const ORPHAN_GRACE_SECS: i64 = 2;

/// Status posts in flight at most.
const POSTS_IN_FLIGHT: usize = 16;

/// How often the runtime is listed when nothing wakes the loop earlier.
pub const RELIST_EVERY: Duration = Duration::from_secs(1);

/// The pod side of the kubelet.
pub struct PodWorker {
    client: Client,
    exec: sync::Executor,
    runtime_name: String,
    /// Pods with a task in flight.
    busy: Mutex<HashSet<String>>,
    /// The last status posted per pod UID.
    posted: Mutex<HashMap<String, Value>>,
    /// Pods with a status post in flight.
    posting: Mutex<InFlight>,
    /// Bounds the status posts in flight (a burst of new pods is not
    /// posted one round trip at a time, nor all at once).
    post_slots: Arc<tokio::sync::Semaphore>,
    /// Container statuses by ID, with the CRI state they were read in.
    container_cache: Mutex<HashMap<String, (i32, api::ContainerStatus)>>,
    /// Sandbox IPs by ID, with the state they were read in.
    sandbox_cache: Mutex<HashMap<String, (i32, Option<String>)>>,
    wake: Arc<tokio::sync::Notify>,
    prober: probe::Prober,
    /// Whether pods with their own network may start (the CNI config exists).
    network_ready: std::sync::atomic::AtomicBool,
}

impl PodWorker {
    /// A worker for the node in `ctx`.
    pub fn new(
        client: Client,
        runtime: Arc<dyn Runtime>,
        runtime_name: String,
        log_root: PathBuf,
        pods_root: PathBuf,
        ctx: spec::Context,
        dns: dns::NodeDns,
    ) -> Arc<Self> {
        let events = controllers::events::Recorder::start(client.clone(), "kubelet").0;
        Arc::new(PodWorker {
            client: client.clone(),
            exec: sync::Executor::new(runtime, log_root, pods_root, ctx)
                .with_events(events)
                .with_client(client.clone())
                .with_dns(dns),
            runtime_name,
            busy: Mutex::default(),
            posted: Mutex::default(),
            posting: Mutex::default(),
            post_slots: Arc::new(tokio::sync::Semaphore::new(POSTS_IN_FLIGHT)),
            container_cache: Mutex::default(),
            sandbox_cache: Mutex::default(),
            wake: Arc::new(tokio::sync::Notify::new()),
            prober: probe::Prober::default(),
            network_ready: false.into(),
        })
    }

    /// Let pods with their own network start.
    pub fn set_network_ready(&self) {
        self.network_ready
            .store(true, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_one();
    }

    /// Watch the node's pods and keep them in sync until dropped.
    pub async fn run(self: Arc<Self>) {
        let node = self.exec.ctx.node_name.clone();
        let pods: Api<Pod> = Api::all(self.client.clone());
        let (store, writer) = reflector::store();
        let cfg = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
        let me = self.clone();
        let watch = tokio::spawn(async move {
            // The kubelet never reads managedFields: drop them before the
            // store keeps the pods, as upstream's informers' transform
            // functions do (a JSON tree per field manager, per pod).
            let stream = watcher(pods, cfg)
                .default_backoff()
                .modify(|pod| pod.managed_fields_mut().clear())
                .reflect(writer)
                .applied_objects();
            let mut stream = std::pin::pin!(stream);
            while let Some(ev) = stream.next().await {
                match &ev {
                    Err(e) => tracing::warn!(error = %e, "pod watch failed; retrying"),
                    Ok(p) => {
                        tracing::debug!(pod = ?p.metadata.name, rv = ?p.metadata.resource_version, "pod event")
                    }
                }
                me.wake.notify_one();
            }
        });
        let exits = tokio::spawn(exits::follow(self.exec.runtime.clone(), self.wake.clone()));
        let _guard = crate::AbortOnDrop(vec![watch, exits]);
        if store.wait_until_ready().await.is_err() {
            return;
        }
        loop {
            if let Err(e) = self.clone().tick(&store).await {
                tracing::warn!(error = %e, "runtime relist failed");
            }
            let _ = tokio::time::timeout(RELIST_EVERY, self.wake.notified()).await;
        }
    }

    /// Everything the runtime has, by pod UID.
    pub async fn relist(&self) -> CriResult<HashMap<String, PodRuntime>> {
        let r = &self.exec.runtime;
        let sandboxes = r.list_pod_sandbox().await?;
        let containers = r.list_containers().await?;
        let mut ips = HashMap::new();
        {
            let mut stale: HashSet<String> = self
                .sandbox_cache
                .lock()
                .expect("cache")
                .keys()
                .cloned()
                .collect();
            for s in sandboxes
                .iter()
                .filter(|s| s.labels.contains_key(crate::cri::labels::MANAGED_BY))
            {
                stale.remove(&s.id);
                let cached = self
                    .sandbox_cache
                    .lock()
                    .expect("cache")
                    .get(&s.id)
                    .cloned();
                let ip = match cached {
                    Some((state, ip)) if state == s.state => ip,
                    _ => {
                        let ip = match r.pod_sandbox_status(&s.id).await {
                            Ok(st) => st.network.map(|n| n.ip).filter(|ip| !ip.is_empty()),
                            Err(_) => continue,
                        };
                        self.sandbox_cache
                            .lock()
                            .expect("cache")
                            .insert(s.id.clone(), (s.state, ip.clone()));
                        ip
                    }
                };
                ips.insert(s.id.clone(), ip);
            }
            let mut cache = self.sandbox_cache.lock().expect("cache");
            for id in stale {
                cache.remove(&id);
            }
        }
        let mut with_status = Vec::with_capacity(containers.len());
        let mut seen = HashSet::new();
        for c in containers {
            seen.insert(c.id.clone());
            let cached = self
                .container_cache
                .lock()
                .expect("cache")
                .get(&c.id)
                .cloned();
            let st = match cached {
                Some((state, st)) if state == c.state => Some(st),
                _ => match r.container_status(&c.id).await {
                    Ok(st) => {
                        self.container_cache
                            .lock()
                            .expect("cache")
                            .insert(c.id.clone(), (c.state, st.clone()));
                        Some(st)
                    }
                    Err(_) => None,
                },
            };
            with_status.push((c, st));
        }
        self.container_cache
            .lock()
            .expect("cache")
            .retain(|id, _| seen.contains(id));
        Ok(observed::group(&sandboxes, &ips, &with_status))
    }

    /// One round: relist, start the work each pod needs, and post the
    /// statuses that changed (in the background).
    async fn tick(self: Arc<Self>, store: &Store<Pod>) -> CriResult<()> {
        let t0 = std::time::Instant::now();
        let mut runtime = self.relist().await?;
        tracing::debug!(micros = t0.elapsed().as_micros() as u64, "relisted");
        let now_ns = now_ns();
        let mut running = Vec::new();
        let mut known = HashSet::new();
        let (mut posts, mut work) = (Vec::new(), Vec::new());
        for pod in store.state() {
            let uid = pod.metadata.uid.clone().unwrap_or_default();
            known.insert(uid.clone());
            let rt = runtime.remove(&uid).unwrap_or_default();
            let probes = self.probes_of(&pod, &rt, &mut running);
            if self.busy.lock().expect("busy").contains(&uid) {
                continue;
            }
            let waiting = self.exec.waiting(&uid);
            let inputs = status::Inputs {
                probes: &probes,
                host_ip: &self.exec.ctx.host_ip,
                runtime_name: &self.runtime_name,
                now_ns,
                waiting: &waiting,
            };
            let want = status::pod_status(&pod, &rt, &inputs);
            let phase = want["phase"].as_str().unwrap_or("Pending").to_string();
            let deleting = pod.metadata.deletion_timestamp.is_some();
            let plan = plan::decide(&pod, &rt, &phase, now_ns);
            let own_network = !pod
                .spec
                .as_ref()
                .and_then(|s| s.host_network)
                .unwrap_or(false);
            let idle = plan == plan::Plan::default()
                || (plan.new_sandbox.is_some()
                    && own_network
                    && !self.network_ready.load(std::sync::atomic::Ordering::SeqCst));
            // Running pods get their API-data volumes rewritten now and then.
            let refresh = !deleting
                && rt.current_sandbox().is_some_and(|s| s.ready)
                && self.exec.volumes.resync_due(&pod);
            posts.push((pod.clone(), want));
            if deleting || !idle || refresh {
                work.push(Work {
                    pod,
                    rt,
                    plan,
                    deleting,
                    idle,
                });
            }
        }
        // Nothing in a round waits for the API: the pods' work starts at
        // once and their statuses are posted in the background, at most
        // one post per pod at a time (so a pod's statuses land in the
        // order they were computed); a pod whose post is in flight is
        // posted again by the round after it lands. A delete posts the
        // final status itself, so it waits for the pod's post in flight.
        let (early, late) = split_work(work);
        for w in early {
            self.clone().spawn_work(w);
        }
        for (pod, want) in posts {
            self.clone().spawn_post(pod, want);
        }
        for w in late {
            let uid = w.pod.metadata.uid.clone().unwrap_or_default();
            if !self.posting.lock().expect("posting").defer(&uid) {
                self.clone().spawn_work(w);
            }
        }
        self.prober
            .sync(&self.exec.runtime, &running, self.wake.clone());
        // Memory of pods gone from both the API and the runtime.
        known.extend(runtime.keys().cloned());
        self.posted
            .lock()
            .expect("posted")
            .retain(|uid, _| known.contains(uid));
        self.exec.retain(&known);
        // What is left belongs to pods that are gone (deleted while the
        // kubelet was down, or force-deleted): remove it.
        for (uid, rt) in runtime {
            if self.busy.lock().expect("busy").contains(&uid) {
                continue;
            }
            self.busy.lock().expect("busy").insert(uid.clone());
            let me = self.clone();
            tokio::spawn(async move {
                tracing::info!(pod_uid = %uid, "removing the containers of a pod that no longer exists");
                me.exec.stop_containers(None, &rt, ORPHAN_GRACE_SECS).await;
                me.exec.remove_sandboxes(&uid, &rt, None).await;
                me.posted.lock().expect("posted").remove(&uid);
                me.busy.lock().expect("busy").remove(&uid);
            });
        }
        Ok(())
    }

    /// Post `want` for `pod` in the background unless it is what was
    /// posted last, or a post of the pod is in flight (the loop is woken
    /// when that one lands, and posts the pod's newest status then).
    fn spawn_post(self: Arc<Self>, pod: Arc<Pod>, want: Value) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if self.posted.lock().expect("posted").get(&uid) == Some(&want) {
            return;
        }
        if !self.posting.lock().expect("posting").begin(&uid) {
            return;
        }
        tokio::spawn(async move {
            if let Ok(_slot) = self.post_slots.clone().acquire_owned().await {
                self.post_status(&pod, want).await;
            }
            if self.posting.lock().expect("posting").end(&uid) {
                self.wake.notify_one();
            }
        });
    }

    /// Start one pod's work (see [`Work`]) in its own task; the pod is
    /// busy until it ends, then the loop is woken.
    fn spawn_work(self: Arc<Self>, w: Work) {
        let Work {
            pod,
            rt,
            plan,
            deleting,
            idle,
        } = w;
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        self.busy.lock().expect("busy").insert(uid.clone());
        tokio::spawn(async move {
            if deleting {
                self.finish_delete(&pod, &rt).await;
            } else {
                let mut src = env::ApiSource::new(
                    &self.client,
                    pod.metadata.namespace.as_deref().unwrap_or_default(),
                );
                if idle {
                    self.exec.refresh_volumes(&pod, &mut src).await;
                } else {
                    tracing::debug!(pod = ?pod.metadata.name, "executing");
                    self.exec.execute(&pod, &rt, plan, &mut src).await;
                    tracing::debug!(pod = ?pod.metadata.name, "executed");
                }
            }
            self.busy.lock().expect("busy").remove(&uid);
            self.wake.notify_one();
        });
    }

    /// The probe results of the pod's running containers; adds them to
    /// `running` for the prober.
    fn probes_of(
        self: &Arc<Self>,
        pod: &Pod,
        rt: &PodRuntime,
        running: &mut Vec<probe::Target>,
    ) -> HashMap<String, probe::ProbeState> {
        let mut out = HashMap::new();
        let Some(sandbox) = rt.current_sandbox().filter(|s| s.ready) else {
            return out;
        };
        let spec = pod.spec.clone().unwrap_or_default();
        let ip = if spec.host_network.unwrap_or(false) {
            self.exec.ctx.host_ip.clone()
        } else {
            sandbox.ip.clone().unwrap_or_default()
        };
        let grace = spec::grace_period(pod);
        for c in &spec.containers {
            let probed = c.liveness_probe.is_some()
                || c.readiness_probe.is_some()
                || c.startup_probe.is_some();
            let Some(i) = rt.instances(&c.name).into_iter().next() else {
                continue;
            };
            if !probed || i.state != observed::State::Running || i.sandbox_id != sandbox.id {
                continue;
            }
            let me = self.clone();
            let (p, name) = (pod.clone(), c.name.clone());
            running.push(probe::Target {
                id: i.id.clone(),
                pod_ip: ip.clone(),
                container: c.clone(),
                grace,
                report: Arc::new(move |reason, message| {
                    let warning = reason == "Unhealthy";
                    me.exec.event(&p, Some(&name), warning, reason, message)
                }),
            });
            out.insert(i.id.clone(), self.prober.state(&i.id, c));
        }
        out
    }

    /// A `BackOff` event for each container that newly shows
    /// CrashLoopBackOff (once per restart, not once per relist).
    fn backoff_events(&self, pod: &Pod, before: Option<&Value>, now: &Value) {
        let looping = |st: Option<&Value>| -> HashSet<(String, i64)> {
            st.and_then(|s| s["containerStatuses"].as_array())
                .into_iter()
                .flatten()
                .chain(
                    st.and_then(|s| s["initContainerStatuses"].as_array())
                        .into_iter()
                        .flatten(),
                )
                .filter(|c| c["state"]["waiting"]["reason"] == "CrashLoopBackOff")
                .map(|c| {
                    let name = c["name"].as_str().unwrap_or_default().to_string();
                    (name, c["restartCount"].as_i64().unwrap_or(0))
                })
                .collect()
        };
        let old = looping(before);
        for (name, restarts) in looping(Some(now)) {
            if old.contains(&(name.clone(), restarts)) {
                continue;
            }
            let m = &pod.metadata;
            let msg = format!(
                "Back-off restarting failed container {name} in pod {}_{}({})",
                m.name.as_deref().unwrap_or_default(),
                m.namespace.as_deref().unwrap_or_default(),
                m.uid.as_deref().unwrap_or_default()
            );
            self.exec.event(pod, Some(&name), true, "BackOff", msg);
        }
    }

    /// Post `want` unless it is what was posted last.
    async fn post_status(&self, pod: &Pod, want: Value) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if self.posted.lock().expect("posted").get(&uid) == Some(&want) {
            return;
        }
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or_default(),
        );
        let name = pod.metadata.name.clone().unwrap_or_default();
        tracing::debug!(pod = %name, phase = ?want["phase"], "posting status");
        match api
            .patch_status(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({ "status": want })),
            )
            .await
        {
            Ok(_) => {
                tracing::debug!(pod = %name, phase = ?want["phase"], "posted status");
                let before = self
                    .posted
                    .lock()
                    .expect("posted")
                    .insert(uid.clone(), want.clone());
                self.backoff_events(pod, before.as_ref(), &want);
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => tracing::warn!(pod = %name, error = %e, "posting the pod status failed"),
        }
    }

    /// Stop a deleted pod with its grace period, remove its sandbox, post
    /// the final status and finish the API delete.
    async fn finish_delete(&self, pod: &Pod, rt: &PodRuntime) {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let grace = spec::grace_period(pod);
        let log_dir = spec::log_dir(&self.exec.log_root, pod);
        tracing::info!(pod = ?pod.metadata.name, grace, "stopping a deleted pod");
        self.exec.stop_containers(Some(pod), rt, grace).await;
        let name = pod.metadata.name.clone().unwrap_or_default();
        let api: Api<Pod> = Api::namespaced(
            self.client.clone(),
            pod.metadata.namespace.as_deref().unwrap_or_default(),
        );
        // The containers' final state, as upstream posts it before the
        // delete. Under restartPolicy Never the status shows them
        // terminated and the phase terminal (Succeeded when all exited 0),
        // which is what a deleted pod ends with whatever its policy.
        if let Ok(after) = self.relist().await {
            let rt = after.get(&uid).cloned().unwrap_or_default();
            let mut last = pod.clone();
            if let Some(s) = last.spec.as_mut() {
                s.restart_policy = Some("Never".into());
            }
            let waiting = HashMap::new();
            let inputs = status::Inputs {
                probes: &HashMap::new(),
                host_ip: &self.exec.ctx.host_ip,
                runtime_name: &self.runtime_name,
                now_ns: now_ns(),
                waiting: &waiting,
            };
            self.post_status(pod, status::pod_status(&last, &rt, &inputs))
                .await;
        }
        if !self.exec.remove_sandboxes(&uid, rt, Some(log_dir)).await {
            return;
        }
        let dp = DeleteParams {
            grace_period_seconds: Some(0),
            preconditions: Some(Preconditions {
                uid: Some(uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::default()
        };
        match api.delete(&name, &dp).await {
            Ok(_) => tracing::info!(pod = %name, "pod deleted"),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => tracing::warn!(pod = %name, error = %e, "finishing the delete failed"),
        }
        self.posted.lock().expect("posted").remove(&uid);
    }
}

/// The pods with a status post in flight, and whether a round wanted to
/// post (or delete) one of them meanwhile and so must run again.
#[derive(Debug, Default)]
struct InFlight(HashMap<String, bool>);

impl InFlight {
    /// Start a post for `uid`: false (and the pod marked as wanted again)
    /// when one is in flight already.
    fn begin(&mut self, uid: &str) -> bool {
        if self.defer(uid) {
            return false;
        }
        self.0.insert(uid.to_string(), false);
        true
    }

    /// Whether a post for `uid` is in flight; if so, it is marked as
    /// wanted again.
    fn defer(&mut self, uid: &str) -> bool {
        match self.0.get_mut(uid) {
            Some(again) => {
                *again = true;
                true
            }
            None => false,
        }
    }

    /// The post for `uid` landed: whether a round wanted the pod meanwhile.
    fn end(&mut self, uid: &str) -> bool {
        self.0.remove(uid).unwrap_or(false)
    }
}

/// One pod's work of a round.
struct Work {
    pod: Arc<Pod>,
    rt: PodRuntime,
    plan: plan::Plan,
    /// Stop it and finish its delete.
    deleting: bool,
    /// Nothing to start: only its API-data volumes are rewritten.
    idle: bool,
}

/// The work that may start whatever the pod's status posts, and the
/// deletes, which post a status of their own and so must not overlap one.
fn split_work(work: Vec<Work>) -> (Vec<Work>, Vec<Work>) {
    work.into_iter().partition(|w| !w.deleting)
}

/// Now in ns since the epoch.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn work(name: &str, deleting: bool, idle: bool) -> Work {
        let pod: Pod = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        Work {
            pod: Arc::new(pod),
            rt: PodRuntime::default(),
            plan: plan::Plan::default(),
            deleting,
            idle,
        }
    }

    fn names(w: &[Work]) -> Vec<&str> {
        w.iter()
            .map(|w| w.pod.metadata.name.as_deref().unwrap())
            .collect()
    }

    #[test]
    fn one_post_per_pod_in_flight_and_a_round_that_met_one_runs_again() {
        let mut f = InFlight::default();
        assert!(f.begin("a"));
        assert!(f.begin("b"));
        // A post of `a` lands with nobody having wanted it meanwhile.
        assert!(!f.end("a"));
        // A second post of `b` waits for the first, and its landing says
        // a round must run again to post `b`'s newest status.
        assert!(!f.begin("b"));
        assert!(f.end("b"));
        // Now `b` can be posted again.
        assert!(f.begin("b"));
        // A delete of `b` is deferred too while its post is in flight.
        assert!(f.defer("b"));
        assert!(f.end("b"));
        assert!(!f.defer("b"));
        // Ending what is not in flight wants nothing.
        assert!(!f.end("c"));
    }

    #[test]
    fn starts_wait_for_no_post_but_deletes_do() {
        let (early, late) = split_work(vec![
            work("start", false, false),
            work("gone", true, false),
            work("refresh", false, true),
            work("gone-idle", true, true),
        ]);
        // Starting containers and rewriting volumes post no status: they
        // need not wait for the round's posts.
        assert_eq!(names(&early), ["start", "refresh"]);
        // A delete posts the final status: it must land after the round's.
        assert_eq!(names(&late), ["gone", "gone-idle"]);
    }
}
