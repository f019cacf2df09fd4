//! CRI v1 over gRPC on a unix socket (tonic).

use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;
use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};

use super::api;
use super::api::image_service_client::ImageServiceClient;
use super::api::runtime_service_client::RuntimeServiceClient;
use super::{CriError, CriResult, Runtime};

/// The real runtime: containerd's CRI plugin (or any CRI v1 runtime).
#[derive(Clone)]
pub struct GrpcRuntime {
    runtime: RuntimeServiceClient<Channel>,
    images: ImageServiceClient<Channel>,
    /// The socket's channel, for containerd's own event service.
    channel: Channel,
}

/// Messages larger than tonic's 4 MiB default: ListContainers of a busy node.
const MAX_MESSAGE: usize = 16 << 20;

impl GrpcRuntime {
    /// A client of the runtime at `endpoint` (`unix:///path` or a path).
    /// The connection is made lazily and re-made after a runtime restart.
    pub fn connect(endpoint: &str) -> CriResult<Self> {
        let path: PathBuf = Path::new(endpoint.strip_prefix("unix://").unwrap_or(endpoint)).into();
        // The URI is required by tonic but unused: the connector dials the socket.
        let channel = Endpoint::from_static("http://[::1]:50051")
            .connect_timeout(Duration::from_secs(5))
            .connect_with_connector_lazy(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }));
        Ok(GrpcRuntime {
            runtime: RuntimeServiceClient::new(channel.clone())
                .max_decoding_message_size(MAX_MESSAGE),
            images: ImageServiceClient::new(channel.clone()).max_decoding_message_size(MAX_MESSAGE),
            channel,
        })
    }
}

/// Whether a container whose stop failed is stopped all the same: its state
/// (`None` when it could not be read) is exited.
fn stopped_anyway(state: Option<i32>) -> bool {
    state == Some(api::ContainerState::ContainerExited as i32)
}

fn err(method: &'static str) -> impl FnOnce(tonic::Status) -> CriError {
    move |s| CriError {
        method,
        code: s.code(),
        message: s.message().to_string(),
    }
}

#[async_trait]
impl Runtime for GrpcRuntime {
    async fn version(&self) -> CriResult<api::VersionResponse> {
        let req = api::VersionRequest {
            version: "v1".into(),
        };
        Ok(self
            .runtime
            .clone()
            .version(req)
            .await
            .map_err(err("Version"))?
            .into_inner())
    }

    async fn status(&self) -> CriResult<Vec<api::RuntimeCondition>> {
        let r = self
            .runtime
            .clone()
            .status(api::StatusRequest { verbose: false })
            .await
            .map_err(err("Status"))?
            .into_inner();
        Ok(r.status.map(|s| s.conditions).unwrap_or_default())
    }

    async fn run_pod_sandbox(
        &self,
        config: api::PodSandboxConfig,
        runtime_handler: &str,
    ) -> CriResult<String> {
        let req = api::RunPodSandboxRequest {
            config: Some(config),
            runtime_handler: runtime_handler.into(),
        };
        Ok(self
            .runtime
            .clone()
            .run_pod_sandbox(req)
            .await
            .map_err(err("RunPodSandbox"))?
            .into_inner()
            .pod_sandbox_id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> CriResult<()> {
        let req = api::StopPodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.runtime
            .clone()
            .stop_pod_sandbox(req)
            .await
            .map_err(err("StopPodSandbox"))?;
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> CriResult<()> {
        let req = api::RemovePodSandboxRequest {
            pod_sandbox_id: id.into(),
        };
        self.runtime
            .clone()
            .remove_pod_sandbox(req)
            .await
            .map_err(err("RemovePodSandbox"))?;
        Ok(())
    }

    async fn pod_sandbox_status(&self, id: &str) -> CriResult<api::PodSandboxStatus> {
        let req = api::PodSandboxStatusRequest {
            pod_sandbox_id: id.into(),
            verbose: false,
        };
        self.runtime
            .clone()
            .pod_sandbox_status(req)
            .await
            .map_err(err("PodSandboxStatus"))?
            .into_inner()
            .status
            .ok_or_else(|| CriError::new("PodSandboxStatus", tonic::Code::Internal, "no status"))
    }

    async fn list_pod_sandbox(&self) -> CriResult<Vec<api::PodSandbox>> {
        let req = api::ListPodSandboxRequest { filter: None };
        Ok(self
            .runtime
            .clone()
            .list_pod_sandbox(req)
            .await
            .map_err(err("ListPodSandbox"))?
            .into_inner()
            .items)
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        sandbox_config: api::PodSandboxConfig,
    ) -> CriResult<String> {
        let req = api::CreateContainerRequest {
            pod_sandbox_id: sandbox_id.into(),
            config: Some(config),
            sandbox_config: Some(sandbox_config),
        };
        Ok(self
            .runtime
            .clone()
            .create_container(req)
            .await
            .map_err(err("CreateContainer"))?
            .into_inner()
            .container_id)
    }

    async fn start_container(&self, id: &str) -> CriResult<()> {
        let req = api::StartContainerRequest {
            container_id: id.into(),
        };
        self.runtime
            .clone()
            .start_container(req)
            .await
            .map_err(err("StartContainer"))?;
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout: i64) -> CriResult<()> {
        let req = api::StopContainerRequest {
            container_id: id.into(),
            timeout,
        };
        let Err(status) = self.runtime.clone().stop_container(req).await else {
            return Ok(());
        };
        let e = err("StopContainer")(status);
        // containerd can lose its shim's connection while the task exits
        // ("ttrpc: closed", containerd#11505): the stop then fails although
        // the container stopped. The CRI's rule is that stopping a stopped
        // container succeeds, so its state decides.
        let state = self.container_status(id).await.map(|s| s.state).ok();
        if stopped_anyway(state) {
            tracing::debug!(container = %id, error = %e, "the stop failed but the container exited");
            return Ok(());
        }
        Err(e)
    }

    async fn remove_container(&self, id: &str) -> CriResult<()> {
        let req = api::RemoveContainerRequest {
            container_id: id.into(),
        };
        self.runtime
            .clone()
            .remove_container(req)
            .await
            .map_err(err("RemoveContainer"))?;
        Ok(())
    }

    async fn list_containers(&self) -> CriResult<Vec<api::Container>> {
        let req = api::ListContainersRequest { filter: None };
        Ok(self
            .runtime
            .clone()
            .list_containers(req)
            .await
            .map_err(err("ListContainers"))?
            .into_inner()
            .containers)
    }

    async fn container_status(&self, id: &str) -> CriResult<api::ContainerStatus> {
        let req = api::ContainerStatusRequest {
            container_id: id.into(),
            verbose: false,
        };
        self.runtime
            .clone()
            .container_status(req)
            .await
            .map_err(err("ContainerStatus"))?
            .into_inner()
            .status
            .ok_or_else(|| CriError::new("ContainerStatus", tonic::Code::Internal, "no status"))
    }

    async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        timeout: i64,
    ) -> CriResult<api::ExecSyncResponse> {
        let req = api::ExecSyncRequest {
            container_id: id.into(),
            cmd,
            timeout,
        };
        Ok(self
            .runtime
            .clone()
            .exec_sync(req)
            .await
            .map_err(err("ExecSync"))?
            .into_inner())
    }

    async fn image_status(&self, image: &str) -> CriResult<Option<api::Image>> {
        let req = api::ImageStatusRequest {
            image: Some(api::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            verbose: false,
        };
        Ok(self
            .images
            .clone()
            .image_status(req)
            .await
            .map_err(err("ImageStatus"))?
            .into_inner()
            .image)
    }

    async fn list_images(&self) -> CriResult<Vec<api::Image>> {
        let req = api::ListImagesRequest { filter: None };
        Ok(self
            .images
            .clone()
            .list_images(req)
            .await
            .map_err(err("ListImages"))?
            .into_inner()
            .images)
    }

    async fn remove_image(&self, image: &str) -> CriResult<()> {
        let req = api::RemoveImageRequest {
            image: Some(api::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
        };
        self.images
            .clone()
            .remove_image(req)
            .await
            .map_err(err("RemoveImage"))?;
        Ok(())
    }

    async fn pull_image(
        &self,
        image: &str,
        auth: Option<api::AuthConfig>,
        sandbox_config: Option<api::PodSandboxConfig>,
    ) -> CriResult<String> {
        let req = api::PullImageRequest {
            image: Some(api::ImageSpec {
                image: image.into(),
                ..Default::default()
            }),
            auth,
            sandbox_config,
        };
        Ok(self
            .images
            .clone()
            .pull_image(req)
            .await
            .map_err(err("PullImage"))?
            .into_inner()
            .image_ref)
    }

    async fn exec(&self, req: api::ExecRequest) -> CriResult<String> {
        Ok(self
            .runtime
            .clone()
            .exec(req)
            .await
            .map_err(err("Exec"))?
            .into_inner()
            .url)
    }

    async fn attach(&self, req: api::AttachRequest) -> CriResult<String> {
        Ok(self
            .runtime
            .clone()
            .attach(req)
            .await
            .map_err(err("Attach"))?
            .into_inner()
            .url)
    }

    async fn port_forward(&self, req: api::PortForwardRequest) -> CriResult<String> {
        Ok(self
            .runtime
            .clone()
            .port_forward(req)
            .await
            .map_err(err("PortForward"))?
            .into_inner()
            .url)
    }

    async fn exits(&self) -> CriResult<super::Events> {
        Ok(super::events::subscribe(self.channel.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_stop_counts_only_if_the_container_exited() {
        use api::ContainerState as S;
        assert!(stopped_anyway(Some(S::ContainerExited as i32)));
        for s in [
            S::ContainerRunning,
            S::ContainerCreated,
            S::ContainerUnknown,
        ] {
            assert!(!stopped_anyway(Some(s as i32)), "{s:?}");
        }
        assert!(!stopped_anyway(None));
    }
}
