//! The container runtime as the kubelet sees it: the CRI v1 calls it makes,
//! behind a trait so the sync logic is unit-tested with a fake, and
//! [`grpc::GrpcRuntime`], the real client over a unix socket.

pub mod events;
#[cfg(test)]
pub(crate) mod fake;
pub mod grpc;

use async_trait::async_trait;
pub use k8s_cri::v1 as api;

/// A failed CRI call: the method and the runtime's gRPC status.
#[derive(Debug, thiserror::Error)]
#[error("CRI {method}: {message}")]
pub struct CriError {
    /// The CRI method, e.g. `RunPodSandbox`.
    pub method: &'static str,
    /// The gRPC code.
    pub code: tonic::Code,
    /// The runtime's message.
    pub message: String,
}

impl CriError {
    /// An error of `method` with this message (fakes and local checks).
    pub fn new(method: &'static str, code: tonic::Code, message: impl Into<String>) -> Self {
        CriError {
            method,
            code,
            message: message.into(),
        }
    }

    /// Whether the object the call named does not exist (any more).
    pub fn is_not_found(&self) -> bool {
        self.code == tonic::Code::NotFound
    }
}

/// `Result` of a CRI call.
pub type CriResult<T> = std::result::Result<T, CriError>;

/// The runtime's container events, as [`Runtime::exits`] streams them.
pub type Events = futures::stream::BoxStream<'static, CriResult<events::RuntimeEvent>>;

/// The CRI runtime and image services, as far as the kubelet uses them.
#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// The runtime's name and version.
    async fn version(&self) -> CriResult<api::VersionResponse>;
    /// The runtime's conditions (RuntimeReady, NetworkReady).
    async fn status(&self) -> CriResult<Vec<api::RuntimeCondition>>;
    /// Create and start a sandbox with the runtime `runtime_handler` names
    /// (a RuntimeClass's handler; empty: the runtime's default); returns its ID.
    async fn run_pod_sandbox(
        &self,
        config: api::PodSandboxConfig,
        runtime_handler: &str,
    ) -> CriResult<String>;
    /// Stop a sandbox's processes and tear down its network.
    async fn stop_pod_sandbox(&self, id: &str) -> CriResult<()>;
    /// Remove a stopped sandbox and its containers.
    async fn remove_pod_sandbox(&self, id: &str) -> CriResult<()>;
    /// A sandbox's status (its IPs).
    async fn pod_sandbox_status(&self, id: &str) -> CriResult<api::PodSandboxStatus>;
    /// Every sandbox.
    async fn list_pod_sandbox(&self) -> CriResult<Vec<api::PodSandbox>>;
    /// Create a container in a sandbox; returns its ID.
    async fn create_container(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        sandbox_config: api::PodSandboxConfig,
    ) -> CriResult<String>;
    /// Start a created container.
    async fn start_container(&self, id: &str) -> CriResult<()>;
    /// Stop a container: its stop signal, then SIGKILL after `timeout` seconds.
    async fn stop_container(&self, id: &str, timeout: i64) -> CriResult<()>;
    /// Remove a container.
    async fn remove_container(&self, id: &str) -> CriResult<()>;
    /// Every container.
    async fn list_containers(&self) -> CriResult<Vec<api::Container>>;
    /// One container's status (exit code, times, reason).
    async fn container_status(&self, id: &str) -> CriResult<api::ContainerStatus>;
    /// Run a command in a running container; returns its exit code and
    /// output. `timeout` in seconds (0: none).
    async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: i64,
    ) -> CriResult<api::ExecSyncResponse>;
    /// The image if present: `None` when the runtime does not have it.
    async fn image_status(&self, image: &str) -> CriResult<Option<api::Image>>;
    /// Every image the runtime has.
    async fn list_images(&self) -> CriResult<Vec<api::Image>>;
    /// Remove an image (by ID or reference).
    async fn remove_image(&self, image: &str) -> CriResult<()>;
    /// Pull an image, with registry credentials if given; returns its
    /// reference (ID).
    async fn pull_image(
        &self,
        image: &str,
        auth: Option<api::AuthConfig>,
        sandbox_config: Option<api::PodSandboxConfig>,
    ) -> CriResult<String>;
    /// Prepare a streaming exec; returns the URL on the runtime's
    /// streaming server that serves it (SPDY or WebSocket).
    async fn exec(&self, req: api::ExecRequest) -> CriResult<String>;
    /// Prepare a streaming attach; returns its URL.
    async fn attach(&self, req: api::AttachRequest) -> CriResult<String>;
    /// Prepare a port forward into a sandbox; returns its URL.
    async fn port_forward(&self, req: api::PortForwardRequest) -> CriResult<String>;
    /// Container exits and OOM kills as they happen, see [`events`]. A
    /// runtime that cannot tell answers `Unimplemented` (at once or as the
    /// stream's first item), and the relist alone finds the changes.
    async fn exits(&self) -> CriResult<Events> {
        Err(CriError::new(
            "Events/Subscribe",
            tonic::Code::Unimplemented,
            "this runtime has no event service",
        ))
    }
}

/// Upstream's CRI labels and annotations on sandboxes and containers; the
/// kubelet finds its pods by them after a restart.
pub mod labels {
    /// Pod name (sandbox and container label).
    pub const POD_NAME: &str = "io.kubernetes.pod.name";
    /// Pod namespace.
    pub const POD_NAMESPACE: &str = "io.kubernetes.pod.namespace";
    /// Pod UID.
    pub const POD_UID: &str = "io.kubernetes.pod.uid";
    /// Container name (container label).
    pub const CONTAINER_NAME: &str = "io.kubernetes.container.name";
    /// Restart count of the container (container annotation).
    pub const RESTART_COUNT: &str = "io.kubernetes.container.restartCount";
    /// The pod's termination grace period (annotation).
    pub const GRACE_PERIOD: &str = "io.kubernetes.pod.terminationGracePeriod";
    /// The container's termination message path (annotation).
    pub const TERMINATION_MESSAGE_PATH: &str = "io.kubernetes.container.terminationMessagePath";
    /// Which pod created the sandbox (label); upstream sets `podsandbox` on
    /// sandboxes too, through `io.kubernetes.container.name=POD`.
    pub const SANDBOX_CONTAINER_NAME: &str = "POD";
    /// Label wharf adds to every sandbox it creates: the kubelet's own, so a
    /// runtime shared with something else is left alone.
    pub const MANAGED_BY: &str = "wharf.dev/kubelet";
}
