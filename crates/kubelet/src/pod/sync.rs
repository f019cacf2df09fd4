//! Carrying out a pod's [`Plan`]: sandboxes, image pulls per
//! `imagePullPolicy`, container creation and start, and the graceful
//! termination of a deleted pod (stop signal, SIGKILL after the grace
//! period through CRI StopContainer's timeout, then the sandbox and its
//! network).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{Container, Pod};

use super::observed::{PodRuntime, State};
use super::plan::{Plan, Start};
use super::spec;
use super::status::Waiting;
use crate::cri::{api, Runtime};

/// A container's last failure to start, and when to try again.
#[derive(Clone, Debug)]
struct Failure {
    waiting: Waiting,
    /// When it failed.
    at: Instant,
    retry_at: Instant,
    attempts: u32,
}

/// What the executor shares between pods.
pub struct Executor {
    /// The runtime.
    pub runtime: Arc<dyn Runtime>,
    /// Where pod log directories go.
    pub log_root: PathBuf,
    /// Where pod directories (volumes) go.
    pub pods_root: PathBuf,
    /// Node facts for the container configs.
    pub ctx: spec::Context,
    /// The pods' volumes.
    pub volumes: crate::volume::Manager,
    failures: Mutex<HashMap<String, HashMap<String, Failure>>>,
    events: Option<controllers::events::Recorder>,
    /// Reads image pull secrets.
    client: Option<kube::Client>,
    /// The node's DNS settings for pods' resolv.conf.
    dns: super::dns::NodeDns,
}

/// The default `imagePullPolicy`: Always for `:latest` or untagged images,
/// IfNotPresent otherwise (the API server defaults it; this is for pods
/// that arrive without).
pub fn pull_policy(c: &Container) -> String {
    if let Some(p) = &c.image_pull_policy {
        return p.clone();
    }
    let image = c.image.as_deref().unwrap_or_default();
    let name = image.rsplit('/').next().unwrap_or(image);
    if image.contains('@') {
        "IfNotPresent".into()
    } else if !name.contains(':') || name.ends_with(":latest") {
        "Always".into()
    } else {
        "IfNotPresent".into()
    }
}

/// The image of the pod's container (or init container) `name`.
/// A CRI error as Go's gRPC status prints it (`err.Error()` upstream).
fn rpc_error(e: &crate::cri::CriError) -> String {
    // Go's names of the codes; tonic's differ for these two.
    let code = match e.code {
        tonic::Code::Ok => "OK".to_string(),
        tonic::Code::Cancelled => "Canceled".to_string(),
        c => format!("{c:?}"),
    };
    format!("rpc error: code = {code} desc = {}", e.message)
}

/// Reasons of the image manager, which upstream's container start also
/// records as a `Failed` event `Error: <reason>`.
fn image_failure(reason: &str) -> bool {
    matches!(
        reason,
        "ErrImagePull" | "ErrImageNeverPull" | "ImageInspectError"
    )
}

fn image_of(pod: &Pod, name: &str) -> String {
    let spec = pod.spec.as_ref();
    spec.into_iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .find(|c| c.name == name)
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

impl Executor {
    /// An executor over `runtime`.
    pub fn new(
        runtime: Arc<dyn Runtime>,
        log_root: PathBuf,
        pods_root: PathBuf,
        ctx: spec::Context,
    ) -> Self {
        Executor {
            runtime,
            log_root,
            volumes: crate::volume::Manager::new(pods_root.clone()),
            pods_root,
            ctx,
            failures: Mutex::new(HashMap::new()),
            events: None,
            client: None,
            dns: super::dns::NodeDns::default(),
        }
    }

    /// Give pods the node's DNS settings.
    pub fn with_dns(mut self, dns: super::dns::NodeDns) -> Self {
        self.dns = dns;
        self
    }

    /// The sandbox config of `pod`, with its resolver configuration.
    fn sandbox_config(&self, pod: &Pod, attempt: u32) -> api::PodSandboxConfig {
        let mut c = spec::sandbox_config(pod, attempt, &self.log_root);
        c.dns_config = Some(super::dns::dns_config(pod, &self.dns));
        c
    }

    /// Read pods' image pull secrets through `client`.
    pub fn with_client(mut self, client: kube::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Record core/v1 Events about pods through `recorder`.
    pub fn with_events(mut self, recorder: controllers::events::Recorder) -> Self {
        self.events = Some(recorder);
        self
    }

    /// An Event about `pod`, or about one of its containers (upstream's
    /// `fieldPath` `spec.containers{name}` / `spec.initContainers{name}`).
    pub fn event(
        &self,
        pod: &Pod,
        container: Option<&str>,
        warning: bool,
        reason: &'static str,
        message: String,
    ) {
        let Some(rec) = &self.events else { return };
        let field_path = container.filter(|c| !c.is_empty()).map(|name| {
            let init = pod
                .spec
                .as_ref()
                .and_then(|s| s.init_containers.as_ref())
                .is_some_and(|cs| cs.iter().any(|c| c.name == name));
            format!(
                "spec.{}{{{name}}}",
                if init { "initContainers" } else { "containers" }
            )
        });
        rec.record(controllers::events::Record {
            object: k8s_openapi::api::core::v1::ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("Pod".into()),
                namespace: pod.metadata.namespace.clone(),
                name: pod.metadata.name.clone(),
                uid: pod.metadata.uid.clone(),
                field_path,
                ..Default::default()
            },
            type_: if warning { "Warning" } else { "Normal" },
            reason,
            message,
        });
    }

    /// The waiting reasons of a pod's containers that failed to start.
    pub fn waiting(&self, pod_uid: &str) -> HashMap<String, Waiting> {
        self.failures
            .lock()
            .expect("failures lock")
            .get(pod_uid)
            .map(|m| {
                m.iter()
                    .map(|(k, f)| (k.clone(), f.waiting.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Forget a pod (deleted).
    pub fn forget(&self, pod_uid: &str) {
        self.failures.lock().expect("failures lock").remove(pod_uid);
    }

    /// Forget every pod but those in `uids`.
    pub fn retain(&self, uids: &std::collections::HashSet<String>) {
        self.failures
            .lock()
            .expect("failures lock")
            .retain(|uid, _| uids.contains(uid));
    }

    fn fail(&self, pod: &Pod, name: &str, reason: &str, message: String) {
        let mut all = self.failures.lock().expect("failures lock");
        let m = all.entry(uid(pod)).or_default();
        let attempts = m.get(name).map(|f| f.attempts + 1).unwrap_or(1);
        // Image pulls back off as upstream's: 10 s doubling to 5 min.
        let base = if reason == "ErrImagePull" { 10 } else { 5 };
        let delay = Duration::from_secs((base << (attempts - 1).min(6)).min(300));
        tracing::warn!(pod = ?pod.metadata.name, container = name, reason, %message, "container start failed");
        let (ev_reason, ev_message) = match reason {
            "FailedCreatePodSandBox" => (
                "FailedCreatePodSandBox",
                format!("Failed to create pod sandbox: {message}"),
            ),
            // The image manager's own event, then (below) the container's.
            "ErrImageNeverPull" => ("ErrImageNeverPull", message.clone()),
            "ErrImagePull" => (
                "Failed",
                format!(
                    "Failed to pull image \"{}\": {message}",
                    image_of(pod, name)
                ),
            ),
            "ImageInspectError" => ("InspectFailed", message.clone()),
            // The message names the volume already (upstream's wording).
            "FailedMount" => ("FailedMount", message.clone()),
            _ => ("Failed", format!("Error: {message}")),
        };
        self.event(pod, Some(name), true, ev_reason, ev_message);
        if image_failure(reason) {
            // Upstream's startContainer records the image manager's error
            // (a bare reason) as the container's failure too.
            self.event(pod, Some(name), true, "Failed", format!("Error: {reason}"));
        }
        m.insert(
            name.to_string(),
            Failure {
                waiting: Waiting {
                    reason: reason.into(),
                    message,
                },
                at: Instant::now(),
                retry_at: Instant::now() + delay,
                attempts,
            },
        );
    }

    fn clear(&self, pod: &Pod, name: &str) {
        if let Some(m) = self
            .failures
            .lock()
            .expect("failures lock")
            .get_mut(&uid(pod))
        {
            m.remove(name);
        }
    }

    /// Whether the container's last failure is still backing off. A pull
    /// failure reads ErrImagePull for the first half of its back-off, then
    /// ImagePullBackOff with upstream's message that wraps the pull's error,
    /// and a BackOff event says so once. (Upstream shows ErrImagePull until
    /// its pod worker's next sync, then ImagePullBackOff.)
    fn too_early(&self, pod: &Pod, name: &str) -> bool {
        let backing_off = {
            let mut all = self.failures.lock().expect("failures lock");
            let Some(f) = all.get_mut(&uid(pod)).and_then(|m| m.get_mut(name)) else {
                return false;
            };
            let now = Instant::now();
            if now >= f.retry_at {
                return false;
            }
            if f.waiting.reason != "ErrImagePull" || now < f.at + (f.retry_at - f.at) / 2 {
                return true;
            }
            let image = image_of(pod, name);
            f.waiting.reason = "ImagePullBackOff".into();
            f.waiting.message = format!(
                "Back-off pulling image \"{image}\": ErrImagePull: {}",
                f.waiting.message
            );
            image
        };
        let msg = format!("Back-off pulling image \"{backing_off}\"");
        self.event(pod, Some(name), false, "BackOff", msg);
        let msg = "Error: ImagePullBackOff".to_string();
        self.event(pod, Some(name), true, "Failed", msg);
        true
    }

    /// Carry out `plan` for `pod`.
    pub async fn execute(
        &self,
        pod: &Pod,
        rt: &PodRuntime,
        plan: Plan,
        env: &mut (impl super::env::Source + crate::volume::Objects),
    ) {
        let r = &self.runtime;
        for id in &plan.remove_containers {
            if let Err(e) = r.remove_container(id).await {
                tracing::debug!(error = %e, "removing an old container");
            }
        }
        for id in &plan.stop_sandboxes {
            if let Err(e) = r.stop_pod_sandbox(id).await {
                tracing::warn!(error = %e, "stopping the sandbox of a finished pod");
            }
        }
        let volumes = if plan.start.is_empty() {
            HashMap::new()
        } else if self.too_early(pod, "") {
            // A failed mount (or sandbox) is retried with the back-off.
            return;
        } else {
            match self.volumes.setup(pod, env, &self.ctx.facts()).await {
                Ok(v) => {
                    self.clear(pod, "");
                    v
                }
                Err(msg) => {
                    self.fail(pod, "", "FailedMount", msg);
                    return;
                }
            }
        };
        let mut sandbox = rt
            .current_sandbox()
            .filter(|s| s.ready)
            .map(|s| (s.id.clone(), s.attempt, s.ip.clone()));
        if let Some(attempt) = plan.new_sandbox {
            for id in &plan.stale_sandboxes {
                let _ = r.stop_pod_sandbox(id).await;
                let _ = r.remove_pod_sandbox(id).await;
            }
            if self.too_early(pod, "") {
                return;
            }
            let handler = match super::runtimeclass::handler(self.client.as_ref(), pod).await {
                Ok(h) => h,
                Err(msg) => {
                    self.fail(pod, "", "FailedCreatePodSandBox", msg);
                    return;
                }
            };
            let config = self.sandbox_config(pod, attempt);
            let _ = std::fs::create_dir_all(&config.log_directory);
            tracing::debug!(pod = ?pod.metadata.name, runtime_handler = %handler, "running sandbox");
            match r.run_pod_sandbox(config, &handler).await {
                Ok(id) => {
                    tracing::debug!(pod = ?pod.metadata.name, "sandbox ran");
                    self.clear(pod, "");
                    let ip = r
                        .pod_sandbox_status(&id)
                        .await
                        .ok()
                        .and_then(|s| s.network)
                        .map(|n| n.ip)
                        .filter(|ip| !ip.is_empty());
                    tracing::info!(pod = ?pod.metadata.name, sandbox = %id, ?ip, "sandbox started");
                    sandbox = Some((id, attempt, ip));
                }
                Err(e) => {
                    self.fail(pod, "", "FailedCreatePodSandBox", e.to_string());
                    return;
                }
            }
        }
        let Some((sandbox_id, attempt, ip)) = sandbox else {
            return;
        };
        let sandbox_config = self.sandbox_config(pod, attempt);
        let mut ctx = self.ctx.clone();
        ctx.volumes = volumes;
        ctx.pod_ip = if pod
            .spec
            .as_ref()
            .and_then(|s| s.host_network)
            .unwrap_or(false)
        {
            ctx.host_ip.clone()
        } else {
            ip.unwrap_or_default()
        };
        for s in plan.start {
            self.start(pod, &sandbox_id, &sandbox_config, &ctx, &s, env)
                .await;
        }
    }

    async fn start(
        &self,
        pod: &Pod,
        sandbox_id: &str,
        sandbox_config: &api::PodSandboxConfig,
        ctx: &spec::Context,
        s: &Start,
        env: &mut impl super::env::Source,
    ) {
        let spec = pod.spec.clone().unwrap_or_default();
        let list = if s.init {
            spec.init_containers.unwrap_or_default()
        } else {
            spec.containers
        };
        let Some(c) = list.into_iter().find(|c| c.name == s.name) else {
            return;
        };
        if self.too_early(pod, &c.name) {
            return;
        }
        let image = c.image.clone().unwrap_or_default();
        let r = &self.runtime;
        let cname = Some(c.name.as_str());
        let present = match pull_policy(&c).as_str() {
            "Always" => false,
            _ => match r.image_status(&image).await {
                Ok(i) => i.is_some(),
                Err(e) => {
                    let msg = format!("Failed to inspect image \"{image}\": {}", rpc_error(&e));
                    self.fail(pod, &c.name, "ImageInspectError", msg);
                    return;
                }
            },
        };
        if !present {
            if pull_policy(&c) == "Never" {
                let msg =
                    format!("Container image \"{image}\" is not present with pull policy of Never");
                self.fail(pod, &c.name, "ErrImageNeverPull", msg);
                return;
            }
            self.event(
                pod,
                cname,
                false,
                "Pulling",
                format!("Pulling image \"{image}\""),
            );
            let secrets = super::pull::secrets(self.client.as_ref(), pod).await;
            if !secrets.missing.is_empty() {
                let msg = format!("Unable to retrieve some image pull secrets ({}); attempting to pull the image may not succeed.", secrets.missing.join(", "));
                self.event(pod, None, true, "FailedToRetrieveImagePullSecret", msg);
            }
            let creds = secrets.keyring.lookup(&image);
            let t = Instant::now();
            if let Err(e) =
                super::pull::pull(r.as_ref(), &image, &creds, sandbox_config.clone()).await
            {
                // Upstream's waiting message is the CRI error as gRPC prints it.
                self.fail(pod, &c.name, "ErrImagePull", rpc_error(&e));
                return;
            }
            let took = t.elapsed().as_secs_f64();
            self.event(
                pod,
                cname,
                false,
                "Pulled",
                format!("Successfully pulled image \"{image}\" in {took:.3}s"),
            );
        } else {
            let msg = format!("Container image \"{image}\" already present on machine");
            self.event(pod, cname, false, "Pulled", msg);
        }
        let resolved = match super::env::resolve(env, pod, &c).await {
            Ok(r) => r,
            Err(msg) => {
                self.fail(pod, &c.name, "CreateContainerConfigError", msg);
                return;
            }
        };
        let env_map: HashMap<String, String> =
            spec::envs(pod, &c, ctx, &resolved).into_iter().collect();
        let mounts =
            match crate::volume::container_mounts(&self.pods_root, pod, &c, &ctx.volumes, &env_map)
            {
                Ok(m) => m,
                Err(msg) => {
                    self.fail(pod, &c.name, "CreateContainerConfigError", msg);
                    return;
                }
            };
        let config = spec::container_config(pod, &c, s.restart_count, ctx, &resolved, mounts);
        tracing::debug!(pod = ?pod.metadata.name, "creating container");
        let id = match r
            .create_container(sandbox_id, config, sandbox_config.clone())
            .await
        {
            Ok(id) => id,
            Err(e) => {
                self.fail(pod, &c.name, "CreateContainerError", e.message);
                return;
            }
        };
        self.event(
            pod,
            cname,
            false,
            "Created",
            format!("Created container: {}", c.name),
        );
        tracing::debug!(pod = ?pod.metadata.name, "starting container");
        if let Err(e) = r.start_container(&id).await {
            self.event(pod, cname, true, "Failed", format!("Error: {}", e.message));
            // The runtime keeps the container as exited (StartError); the
            // restart policy and back-off decide what happens next.
            tracing::warn!(pod = ?pod.metadata.name, container = %c.name, error = %e, "start failed");
            return;
        }
        self.clear(pod, &c.name);
        self.event(
            pod,
            cname,
            false,
            "Started",
            format!("Started container {}", c.name),
        );
        if let Some(h) = c.lifecycle.as_ref().and_then(|l| l.post_start.as_ref()) {
            let grace = spec::grace_period(pod);
            if let Err(msg) = run_hook(r.as_ref(), &id, &ctx.pod_ip, pod, &c, h, grace).await {
                // As upstream: the event leaves the hook's message out (it
                // may hold secrets; the log has it), and the container is
                // killed; the restart policy decides what comes next.
                tracing::warn!(pod = ?pod.metadata.name, container = %c.name, error = %msg, "postStart hook failed");
                self.event(
                    pod,
                    cname,
                    true,
                    "FailedPostStartHook",
                    "PostStartHook failed".into(),
                );
                self.event(pod, cname, false, "Killing", "FailedPostStartHook".into());
                // Upstream's killContainer: the preStop hook first.
                let grace = self.pre_stop(pod, &c, &id, &ctx.pod_ip, grace).await;
                let _ = r.stop_container(&id, grace).await;
                return;
            }
        }
        tracing::info!(pod = ?pod.metadata.name, container = %c.name, id = %id, restart_count = s.restart_count, "container started");
    }

    /// Rewrite a running pod's API-data volumes from the objects (the
    /// periodic resync that carries ConfigMap, Secret, label and
    /// annotation changes into running containers).
    pub async fn refresh_volumes(&self, pod: &Pod, objs: &mut impl crate::volume::Objects) {
        if let Err(msg) = self.volumes.setup(pod, objs, &self.ctx.facts()).await {
            self.event(pod, None, true, "FailedMount", msg);
        }
    }

    /// Stop every container of the pod: its stop signal, then SIGKILL
    /// after `grace` seconds (CRI StopContainer's timeout), all at once.
    pub async fn stop_containers(&self, pod: Option<&Pod>, rt: &PodRuntime, grace: i64) {
        let r = &self.runtime;
        if let Some(pod) = pod {
            for c in rt.containers.iter().filter(|c| c.state == State::Running) {
                let msg = format!("Stopping container {}", c.name);
                self.event(pod, Some(&c.name), false, "Killing", msg);
            }
        }
        let ip = rt
            .current_sandbox()
            .and_then(|s| s.ip.clone())
            .unwrap_or_default();
        let ip = &ip;
        let stops = rt
            .containers
            .iter()
            .filter(|c| matches!(c.state, State::Running | State::Created | State::Unknown))
            .map(|c| async move {
                let spec = pod.and_then(|p| p.spec.as_ref()).and_then(|s| {
                    s.containers
                        .iter()
                        .chain(s.init_containers.iter().flatten())
                        .find(|x| x.name == c.name)
                });
                let grace = match (pod, spec, c.state) {
                    (Some(pod), Some(spec), State::Running) => {
                        self.pre_stop(pod, spec, &c.id, ip, grace).await
                    }
                    _ => grace,
                };
                if let Err(e) = r.stop_container(&c.id, grace).await {
                    if !e.is_not_found() {
                        tracing::warn!(container = %c.id, error = %e, "stopping a container");
                    }
                }
            });
        futures::future::join_all(stops).await;
    }

    /// Run container `c`'s preStop hook, if it has one, within the grace
    /// period (`grace` seconds), as upstream's killContainer does before
    /// the stop signal; a failure is a `FailedPreStopHook` event. Returns
    /// the grace left for the stop signal (at least upstream's 2 s).
    async fn pre_stop(&self, pod: &Pod, c: &Container, id: &str, ip: &str, grace: i64) -> i64 {
        let Some(h) = c.lifecycle.as_ref().and_then(|l| l.pre_stop.as_ref()) else {
            return grace;
        };
        let t = Instant::now();
        if let Err(msg) = run_hook(self.runtime.as_ref(), id, ip, pod, c, h, grace).await {
            self.event(pod, Some(&c.name), true, "FailedPreStopHook", msg);
        }
        (grace - t.elapsed().as_secs() as i64).max(2)
    }

    /// Stop and remove the pod's sandboxes (with their containers and
    /// network), then its log directory. Returns whether all are gone.
    pub async fn remove_sandboxes(
        &self,
        pod_uid: &str,
        rt: &PodRuntime,
        log_dir: Option<PathBuf>,
    ) -> bool {
        let r = &self.runtime;
        let mut clean = true;
        for s in &rt.sandboxes {
            let stopped = r.stop_pod_sandbox(&s.id).await;
            let removed = r.remove_pod_sandbox(&s.id).await;
            for e in [stopped.err(), removed.err()].into_iter().flatten() {
                if !e.is_not_found() {
                    tracing::warn!(sandbox = %s.id, error = %e, "removing a sandbox");
                    clean = false;
                }
            }
        }
        if clean {
            // Without the pod (it is gone from the API), its log directory
            // is found by the UID that ends its name.
            let log_dir = log_dir.or_else(|| {
                std::fs::read_dir(&self.log_root)
                    .ok()?
                    .flatten()
                    .map(|e| e.path())
                    .find(|p| {
                        p.file_name()
                            .is_some_and(|n| n.to_string_lossy().ends_with(&format!("_{pod_uid}")))
                    })
            });
            if let Some(d) = log_dir {
                let _ = std::fs::remove_dir_all(d);
            }
            self.volumes.teardown(pod_uid);
            self.forget(pod_uid);
        }
        clean
    }
}

/// Run a lifecycle hook (exec, httpGet, sleep; tcpSocket is a no-op, as
/// upstream) within `timeout` seconds; the error is upstream's message
/// (lifecycle/handlers.go): `Exec lifecycle hook ([CMD]) for Container "c"
/// in Pod "name_ns(uid)" failed - error: ..., message: "OUTPUT"`, or
/// `HTTP lifecycle hook (PATH) ... failed - error: Get "URL": ...`. An
/// httpGet hook fails only when no answer comes, whatever its status code.
async fn run_hook(
    runtime: &dyn Runtime,
    id: &str,
    pod_ip: &str,
    pod: &Pod,
    c: &Container,
    h: &k8s_openapi::api::core::v1::LifecycleHandler,
    timeout: i64,
) -> Result<(), String> {
    let who = || {
        format!(
            "{}_{}({})",
            pod.metadata.name.as_deref().unwrap_or_default(),
            pod.metadata.namespace.as_deref().unwrap_or_default(),
            pod.metadata.uid.as_deref().unwrap_or_default()
        )
    };
    if let Some(s) = &h.sleep {
        tokio::time::sleep(Duration::from_secs(
            s.seconds.clamp(0, timeout.max(0)) as u64
        ))
        .await;
        return Ok(());
    }
    let timeout = timeout.max(1);
    if let Some(e) = &h.exec {
        let cmd = e.command.clone().unwrap_or_default();
        let (err, output) = match tokio::time::timeout(
            Duration::from_secs(timeout as u64 + 1),
            runtime.exec_sync(id, cmd.clone(), timeout),
        )
        .await
        {
            Ok(Ok(r)) if r.exit_code == 0 => return Ok(()),
            Ok(Ok(r)) => {
                // The CRI client's error (cri-client's ExecSync) and the
                // combined output, as upstream's RunInContainer.
                let err = format!(
                    "command '{}' exited with {}: {}",
                    cmd.join(" "),
                    r.exit_code,
                    String::from_utf8_lossy(&r.stderr)
                );
                let mut out = r.stdout;
                out.extend_from_slice(&r.stderr);
                (err, String::from_utf8_lossy(&out).into_owned())
            }
            Ok(Err(e)) => (rpc_error(&e), String::new()),
            Err(_) => ("context deadline exceeded".to_string(), String::new()),
        };
        return Err(format!(
            "Exec lifecycle hook ([{}]) for Container {:?} in Pod {:?} failed - error: {err}, message: {output:?}",
            cmd.join(" "),
            c.name,
            who()
        ));
    }
    if let Some(get) = &h.http_get {
        let timeout = Duration::from_secs(timeout as u64);
        return match super::probe::http_get(get, pod_ip, c, timeout, "lifecycle").await {
            Ok(_) => Ok(()),
            Err(err) => Err(format!(
                "HTTP lifecycle hook ({}) for Container {:?} in Pod {:?} failed - error: {err}",
                get.path.as_deref().unwrap_or_default(),
                c.name,
                who()
            )),
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{observed, plan};
    use super::*;
    use crate::cri::fake::Fake;
    use serde_json::json;

    fn pod(containers: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u1"},
            "spec": {"terminationGracePeriodSeconds": 7, "containers": containers}
        }))
        .unwrap()
    }

    async fn observe(fake: &Fake) -> PodRuntime {
        let sbs = fake.list_pod_sandbox().await.unwrap();
        let mut ips = HashMap::new();
        for s in &sbs {
            ips.insert(s.id.clone(), Some("10.9.0.2".to_string()));
        }
        let mut cs = Vec::new();
        for c in fake.list_containers().await.unwrap() {
            let st = fake.container_status(&c.id).await.ok();
            cs.push((c, st));
        }
        observed::group(&sbs, &ips, &cs)
            .remove("u1")
            .unwrap_or_default()
    }

    struct NoObjects;

    impl super::super::env::Source for NoObjects {
        async fn config_map(
            &mut self,
            _: &str,
        ) -> Result<Option<std::collections::BTreeMap<String, String>>, String> {
            Ok(None)
        }
        async fn secret(
            &mut self,
            _: &str,
        ) -> Result<Option<std::collections::BTreeMap<String, String>>, String> {
            Ok(None)
        }
    }

    impl crate::volume::Objects for NoObjects {
        async fn config_map(
            &mut self,
            _: &str,
        ) -> Result<Option<k8s_openapi::api::core::v1::ConfigMap>, String> {
            Ok(None)
        }
        async fn secret(
            &mut self,
            _: &str,
        ) -> Result<Option<k8s_openapi::api::core::v1::Secret>, String> {
            Ok(None)
        }
        async fn token(&mut self, _: &Pod, _: &str, _: i64) -> Result<String, String> {
            Err("no tokens in tests".into())
        }
    }

    /// An executor writing under a temporary directory (kept alive by the
    /// returned guard).
    fn executor(fake: Arc<Fake>) -> (Executor, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let ex = Executor::new(
            fake,
            root.join("logs"),
            root.join("pods"),
            spec::Context::default(),
        );
        (ex, dir)
    }

    #[tokio::test]
    async fn runs_a_pod_pulling_per_policy_then_stops_it_with_its_grace() {
        let fake = Arc::new(Fake::default());
        fake.registry.lock().unwrap().push("reg/a:1".into());
        fake.images.lock().unwrap().push("local/b:1".into());
        let p = pod(json!([
            {"name": "a", "image": "reg/a:1", "imagePullPolicy": "IfNotPresent"},
            {"name": "b", "image": "local/b:1", "imagePullPolicy": "Never"},
        ]));
        let (ex, _dir) = executor(fake.clone());
        let rt = observe(&fake).await;
        ex.execute(&p, &rt, plan::decide(&p, &rt, "Pending", 0), &mut NoObjects)
            .await;
        let calls = fake.calls();
        assert!(
            calls.contains(&"PullImage reg/a:1".to_string()),
            "{calls:?}"
        );
        assert!(
            !calls.iter().any(|c| c == "PullImage local/b:1"),
            "{calls:?}"
        );
        let rt = observe(&fake).await;
        assert_eq!(rt.sandboxes.len(), 1);
        assert_eq!(
            rt.containers
                .iter()
                .filter(|c| c.state == State::Running)
                .count(),
            2
        );
        // Nothing more to do for a running pod.
        assert_eq!(plan::decide(&p, &rt, "Running", 0), plan::Plan::default());
        fake.calls.lock().unwrap().clear();
        ex.stop_containers(Some(&p), &rt, spec::grace_period(&p))
            .await;
        assert!(ex.remove_sandboxes("u1", &rt, None).await);
        let calls = fake.calls();
        assert_eq!(
            calls
                .iter()
                .filter(|c| c.starts_with("StopContainer") && c.ends_with(" 7"))
                .count(),
            2,
            "{calls:?}"
        );
        assert!(
            calls.iter().position(|c| c.starts_with("StopContainer"))
                < calls.iter().position(|c| c.starts_with("StopPodSandbox"))
        );
        assert!(fake.list_pod_sandbox().await.unwrap().is_empty());
        assert!(fake.list_containers().await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn lifecycle_hooks_run_after_start_and_before_stop() {
        let fake = Arc::new(Fake::default());
        fake.images.lock().unwrap().push("img:1".into());
        let p = pod(json!([{"name": "a", "image": "img:1", "lifecycle": {
            "postStart": {"exec": {"command": ["post"]}},
            "preStop": {"exec": {"command": ["pre"]}}}}]));
        let (ex, _dir) = executor(fake.clone());
        let rt = observe(&fake).await;
        ex.execute(&p, &rt, plan::decide(&p, &rt, "Pending", 0), &mut NoObjects)
            .await;
        let rt = observe(&fake).await;
        ex.stop_containers(Some(&p), &rt, 7).await;
        let calls: Vec<String> = fake
            .calls()
            .into_iter()
            .filter(|c| !c.starts_with("ImageStatus"))
            .map(|c| {
                c.split(' ').next().unwrap().to_string()
                    + c.rsplit(' ')
                        .next()
                        .map(|l| format!(" {l}"))
                        .unwrap_or_default()
                        .as_str()
            })
            .collect();
        let order: Vec<&str> = calls.iter().map(|c| c.as_str()).collect();
        let pos = |x: &str| {
            order
                .iter()
                .position(|c| *c == x)
                .unwrap_or_else(|| panic!("{x} not in {order:?}"))
        };
        assert!(pos("StartContainer c2") < pos("ExecSync post"));
        assert!(pos("ExecSync post") < pos("ExecSync pre"));
        assert!(pos("ExecSync pre") < pos("StopContainer 7"));
    }

    #[tokio::test]
    async fn hooks_fail_with_upstreams_messages() {
        use k8s_openapi::api::core::v1::LifecycleHandler;
        let fake = Fake::default();
        fake.exec_results.lock().unwrap().insert(
            "sh -c echo out; echo err >&2; exit 3".into(),
            api::ExecSyncResponse {
                stdout: b"out\n".to_vec(),
                stderr: b"err\n".to_vec(),
                exit_code: 3,
            },
        );
        let p = pod(json!([{"name": "a", "image": "img:1"}]));
        let c = &p.spec.as_ref().unwrap().containers[0];
        let hook = |h: serde_json::Value| serde_json::from_value::<LifecycleHandler>(h).unwrap();
        let run = |h: LifecycleHandler| {
            let (fake, p, c) = (&fake, &p, c);
            async move { run_hook(fake, "c1", "127.0.0.1", p, c, &h, 5).await }
        };
        let failing =
            hook(json!({"exec": {"command": ["sh", "-c", "echo out; echo err >&2; exit 3"]}}));
        assert_eq!(
            run(failing).await.unwrap_err(),
            "Exec lifecycle hook ([sh -c echo out; echo err >&2; exit 3]) for Container \"a\" in Pod \"p_ns(u1)\" \
             failed - error: command 'sh -c echo out; echo err >&2; exit 3' exited with 3: err\n, message: \"out\\nerr\\n\""
        );
        assert_eq!(
            run(hook(json!({"exec": {"command": ["true"]}}))).await,
            Ok(())
        );
        assert_eq!(run(hook(json!({"sleep": {"seconds": 0}}))).await, Ok(()));
        // An httpGet hook that gets an answer succeeded, whatever its code.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            let n = tokio::io::AsyncReadExt::read(&mut s, &mut buf)
                .await
                .unwrap();
            tokio::io::AsyncWriteExt::write_all(
                &mut s,
                b"HTTP/1.0 500 Internal Server Error\r\n\r\n",
            )
            .await
            .unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        let get = |port: u16| hook(json!({"httpGet": {"path": "/hook", "port": port}}));
        assert_eq!(run(get(port)).await, Ok(()));
        let req = server.await.unwrap();
        assert!(req.starts_with("GET /hook HTTP/1.0\r\n"), "{req}");
        assert!(req.contains("User-Agent: kube-lifecycle/1.37\r\n"), "{req}");
        // Nobody listens there now.
        assert_eq!(
            run(get(port)).await.unwrap_err(),
            format!(
                "HTTP lifecycle hook (/hook) for Container \"a\" in Pod \"p_ns(u1)\" failed - error: \
                 Get \"http://127.0.0.1:{port}/hook\": dial tcp 127.0.0.1:{port}: connect: connection refused"
            )
        );
    }

    #[tokio::test]
    async fn a_failed_post_start_hook_kills_the_container() {
        let fake = Arc::new(Fake::default());
        fake.images.lock().unwrap().push("img:1".into());
        fake.exec_results.lock().unwrap().insert(
            "post".into(),
            api::ExecSyncResponse {
                stdout: b"a secret\n".to_vec(),
                exit_code: 1,
                ..Default::default()
            },
        );
        let p = pod(json!([{"name": "a", "image": "img:1", "lifecycle": {
            "postStart": {"exec": {"command": ["post"]}},
            "preStop": {"exec": {"command": ["pre"]}}}}]));
        let (ex, _dir) = executor(fake.clone());
        let rt = observe(&fake).await;
        ex.execute(&p, &rt, plan::decide(&p, &rt, "Pending", 0), &mut NoObjects)
            .await;
        // As upstream's killContainer: preStop, then the stop with the grace.
        let calls = fake.calls();
        let at = |x: &str| {
            calls
                .iter()
                .position(|c| c.starts_with(x))
                .unwrap_or_else(|| panic!("{x}: {calls:?}"))
        };
        assert!(at("ExecSync c2 post") < at("ExecSync c2 pre"), "{calls:?}");
        assert!(
            at("ExecSync c2 pre") < at("StopContainer c2 7"),
            "{calls:?}"
        );
    }

    /// Skip the back-off of container `pull` and sync again.
    async fn retry_now(ex: &Executor, p: &Pod, rt: &PodRuntime) {
        if let Some(f) = ex
            .failures
            .lock()
            .unwrap()
            .get_mut("u1")
            .and_then(|m| m.get_mut("pull"))
        {
            f.retry_at = Instant::now();
        }
        ex.execute(p, rt, plan::decide(p, rt, "Pending", 0), &mut NoObjects)
            .await;
    }

    #[test]
    fn cri_errors_read_as_go_grpc_prints_them() {
        let e = |code| crate::cri::CriError::new("PullImage", code, "x: not found");
        assert_eq!(
            rpc_error(&e(tonic::Code::NotFound)),
            "rpc error: code = NotFound desc = x: not found"
        );
        assert_eq!(
            rpc_error(&e(tonic::Code::DeadlineExceeded)),
            "rpc error: code = DeadlineExceeded desc = x: not found"
        );
        assert!(rpc_error(&e(tonic::Code::Cancelled)).starts_with("rpc error: code = Canceled "));
        assert!(image_failure("ErrImagePull") && !image_failure("CreateContainerConfigError"));
    }

    #[tokio::test]
    async fn image_failures_become_waiting_reasons() {
        let fake = Arc::new(Fake::default());
        let p = pod(json!([
            {"name": "never", "image": "absent:1", "imagePullPolicy": "Never"},
            {"name": "pull", "image": "nowhere:1", "imagePullPolicy": "Always"},
        ]));
        let (ex, _dir) = executor(fake.clone());
        let rt = observe(&fake).await;
        ex.execute(&p, &rt, plan::decide(&p, &rt, "Pending", 0), &mut NoObjects)
            .await;
        let w = ex.waiting("u1");
        assert_eq!(w["never"].reason, "ErrImageNeverPull");
        assert_eq!(
            w["never"].message,
            "Container image \"absent:1\" is not present with pull policy of Never"
        );
        assert_eq!(w["pull"].reason, "ErrImagePull");
        // The CRI error as upstream's gRPC client prints it.
        assert_eq!(
            w["pull"].message,
            "rpc error: code = NotFound desc = nowhere:1: not found"
        );
        // The retry waits for its back-off, and meanwhile reads
        // ImagePullBackOff with the pull's error wrapped, as upstream.
        let rt = observe(&fake).await;
        fake.calls.lock().unwrap().clear();
        ex.execute(&p, &rt, plan::decide(&p, &rt, "Pending", 0), &mut NoObjects)
            .await;
        assert!(
            !fake.calls().iter().any(|c| c.starts_with("PullImage")),
            "retried at once"
        );
        assert_eq!(ex.waiting("u1")["pull"].reason, "ErrImagePull");
        // Past half the back-off it reads ImagePullBackOff.
        if let Some(f) = ex
            .failures
            .lock()
            .unwrap()
            .get_mut("u1")
            .and_then(|m| m.get_mut("pull"))
        {
            f.at -= Duration::from_secs(10);
        }
        ex.execute(&p, &rt, plan::decide(&p, &rt, "Pending", 0), &mut NoObjects)
            .await;
        let w = &ex.waiting("u1")["pull"];
        assert_eq!(w.reason, "ImagePullBackOff");
        assert_eq!(
            w.message,
            "Back-off pulling image \"nowhere:1\": ErrImagePull: rpc error: code = NotFound desc = nowhere:1: not found"
        );
        // The next attempt fails again: ErrImagePull until the next back-off.
        retry_now(&ex, &p, &rt).await;
        assert_eq!(ex.waiting("u1")["pull"].reason, "ErrImagePull");
        // Once the image is there, the container starts and the reason goes.
        fake.registry.lock().unwrap().push("nowhere:1".into());
        retry_now(&ex, &p, &rt).await;
        assert!(!ex.waiting("u1").contains_key("pull"));
        assert_eq!(
            observe(&fake).await.instances("pull")[0].state,
            State::Running
        );
    }

    #[test]
    fn default_pull_policies() {
        let c = |image: &str| Container {
            name: "c".into(),
            image: Some(image.into()),
            ..Default::default()
        };
        assert_eq!(pull_policy(&c("busybox")), "Always");
        assert_eq!(pull_policy(&c("busybox:latest")), "Always");
        assert_eq!(pull_policy(&c("localhost:5000/busybox")), "Always");
        assert_eq!(
            pull_policy(&c("localhost:5000/busybox:1.36")),
            "IfNotPresent"
        );
        assert_eq!(pull_policy(&c("busybox@sha256:abcd")), "IfNotPresent");
        let mut n = c("busybox");
        n.image_pull_policy = Some("Never".into());
        assert_eq!(pull_policy(&n), "Never");
    }

    /// An API client that serves RuntimeClasses `(name, handler)` and a
    /// 404 Status for any other name, as the API server does.
    fn classes_api(classes: &'static [(&'static str, &'static str)]) -> kube::Client {
        let svc = tower::service_fn(move |req: http::Request<kube::client::Body>| async move {
            let path = req.uri().path().to_string();
            let name = path
                .strip_prefix("/apis/node.k8s.io/v1/runtimeclasses/")
                .unwrap_or_else(|| panic!("unexpected request {path}"))
                .to_string();
            let (code, body) = match classes.iter().find(|(n, _)| *n == name) {
                Some((n, h)) => (
                    200,
                    json!({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                        "metadata": {"name": n}, "handler": h}),
                ),
                None => (
                    404,
                    json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                        "message": format!("runtimeclasses.node.k8s.io \"{name}\" not found"),
                        "reason": "NotFound", "code": 404}),
                ),
            };
            let resp = http::Response::builder()
                .status(code)
                .header("content-type", "application/json")
                .body(http_body_util::Full::new(bytes::Bytes::from(
                    body.to_string(),
                )))
                .unwrap();
            Ok::<_, std::convert::Infallible>(resp)
        });
        kube::Client::new(svc, "default")
    }

    fn with_class(class: &str) -> Pod {
        let mut p = pod(json!([{"name": "a", "image": "img:1"}]));
        p.spec.as_mut().unwrap().runtime_class_name = Some(class.into());
        p
    }

    #[tokio::test]
    async fn the_runtime_class_handler_reaches_run_pod_sandbox() {
        static CLASSES: &[(&str, &str)] = &[("fast", "crun"), ("odd", "nosuch")];
        // No class: the runtime's default (empty) handler; a class: its handler.
        for (class, call) in [
            (None, "RunPodSandbox sb1"),
            (Some("fast"), "RunPodSandbox sb1 crun"),
        ] {
            let fake = Arc::new(Fake::default());
            fake.images.lock().unwrap().push("img:1".into());
            fake.handlers.lock().unwrap().push("crun".into());
            let (ex, _dir) = executor(fake.clone());
            let ex = ex.with_client(classes_api(CLASSES));
            let p = match class {
                Some(c) => with_class(c),
                None => pod(json!([{"name": "a", "image": "img:1"}])),
            };
            let rt = observe(&fake).await;
            ex.execute(&p, &rt, plan::decide(&p, &rt, "Pending", 0), &mut NoObjects)
                .await;
            let calls = fake.calls();
            assert!(calls.contains(&call.to_string()), "{calls:?}");
            assert!(ex.waiting("u1").is_empty());
            assert_eq!(observe(&fake).await.containers.len(), 1);
        }
    }

    #[tokio::test]
    async fn an_unknown_handler_or_class_fails_the_sandbox_with_back_off() {
        static CLASSES: &[(&str, &str)] = &[("odd", "nosuch")];
        for (class, want) in [
            ("odd", "no runtime for \"nosuch\" is configured"),
            ("gone", "runtimeclass.node.k8s.io \"gone\" not found"),
        ] {
            let fake = Arc::new(Fake::default());
            fake.images.lock().unwrap().push("img:1".into());
            let (ex, _dir) = executor(fake.clone());
            let ex = ex.with_client(classes_api(CLASSES));
            let p = with_class(class);
            let rt = observe(&fake).await;
            ex.execute(&p, &rt, plan::decide(&p, &rt, "Pending", 0), &mut NoObjects)
                .await;
            let w = ex.waiting("u1");
            let f = &w[""];
            assert_eq!(f.reason, "FailedCreatePodSandBox");
            assert!(f.message.contains(want), "{}", f.message);
            assert!(fake.list_pod_sandbox().await.unwrap().is_empty());
            // Backing off: the next sync does not try again at once.
            let tries = fake.calls().len();
            let rt = observe(&fake).await;
            ex.execute(&p, &rt, plan::decide(&p, &rt, "Pending", 0), &mut NoObjects)
                .await;
            assert_eq!(fake.calls().len(), tries, "{:?}", fake.calls());
        }
    }
}
