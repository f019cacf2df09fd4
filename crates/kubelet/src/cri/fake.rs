//! An in-memory runtime for unit tests of the sync logic: it records every
//! call and keeps sandboxes, containers and images as a runtime would.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{api, CriError, CriResult, Runtime};

#[derive(Default)]
pub struct Fake {
    pub calls: Mutex<Vec<String>>,
    pub images: Mutex<Vec<String>>,
    /// Images PullImage can fetch.
    pub registry: Mutex<Vec<String>>,
    /// The user the registry demands, if any.
    pub registry_user: Mutex<Option<String>>,
    pub sandboxes: Mutex<HashMap<String, api::PodSandbox>>,
    pub containers: Mutex<HashMap<String, api::Container>>,
    /// The runtime handlers RunPodSandbox accepts besides the default
    /// (empty); others fail as containerd's CRI plugin does.
    pub handlers: Mutex<Vec<String>>,
    /// What each call of `exits` streams, in turn; when none are left the
    /// fake has no event service.
    pub exits: Mutex<
        std::collections::VecDeque<
            tokio::sync::mpsc::UnboundedReceiver<CriResult<super::events::RuntimeEvent>>,
        >,
    >,
    /// What ExecSync answers for a command (its words joined by spaces);
    /// exit 0 and no output for the others.
    pub exec_results: Mutex<HashMap<String, api::ExecSyncResponse>>,
    next: Mutex<u32>,
}

impl Fake {
    fn call(&self, c: String) {
        self.calls.lock().unwrap().push(c);
    }

    fn id(&self, prefix: &str) -> String {
        let mut n = self.next.lock().unwrap();
        *n += 1;
        format!("{prefix}{n}")
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

fn not_found(method: &'static str) -> CriError {
    CriError::new(method, tonic::Code::NotFound, "not found")
}

#[async_trait]
impl Runtime for Fake {
    async fn version(&self) -> CriResult<api::VersionResponse> {
        Ok(api::VersionResponse {
            runtime_name: "fake".into(),
            ..Default::default()
        })
    }

    async fn status(&self) -> CriResult<Vec<api::RuntimeCondition>> {
        Ok(vec![])
    }

    async fn run_pod_sandbox(
        &self,
        config: api::PodSandboxConfig,
        runtime_handler: &str,
    ) -> CriResult<String> {
        if !runtime_handler.is_empty()
            && !self
                .handlers
                .lock()
                .unwrap()
                .iter()
                .any(|h| h == runtime_handler)
        {
            self.call(format!("RunPodSandbox refused {runtime_handler}"));
            return Err(CriError::new(
                "RunPodSandbox",
                tonic::Code::Unknown,
                format!(
                    "failed to get sandbox runtime: no runtime for \"{runtime_handler}\" is configured"
                ),
            ));
        }
        let id = self.id("sb");
        if runtime_handler.is_empty() {
            self.call(format!("RunPodSandbox {id}"));
        } else {
            self.call(format!("RunPodSandbox {id} {runtime_handler}"));
        }
        let s = api::PodSandbox {
            id: id.clone(),
            metadata: config.metadata.clone(),
            state: api::PodSandboxState::SandboxReady as i32,
            labels: config.labels.clone(),
            ..Default::default()
        };
        self.sandboxes.lock().unwrap().insert(id.clone(), s);
        Ok(id)
    }

    async fn stop_pod_sandbox(&self, id: &str) -> CriResult<()> {
        self.call(format!("StopPodSandbox {id}"));
        let mut sbs = self.sandboxes.lock().unwrap();
        let s = sbs.get_mut(id).ok_or_else(|| not_found("StopPodSandbox"))?;
        s.state = api::PodSandboxState::SandboxNotready as i32;
        Ok(())
    }

    async fn remove_pod_sandbox(&self, id: &str) -> CriResult<()> {
        self.call(format!("RemovePodSandbox {id}"));
        self.sandboxes.lock().unwrap().remove(id);
        self.containers
            .lock()
            .unwrap()
            .retain(|_, c| c.pod_sandbox_id != id);
        Ok(())
    }

    async fn pod_sandbox_status(&self, id: &str) -> CriResult<api::PodSandboxStatus> {
        let sbs = self.sandboxes.lock().unwrap();
        let s = sbs.get(id).ok_or_else(|| not_found("PodSandboxStatus"))?;
        Ok(api::PodSandboxStatus {
            id: id.into(),
            state: s.state,
            network: Some(api::PodSandboxNetworkStatus {
                ip: "10.9.0.2".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    async fn list_pod_sandbox(&self) -> CriResult<Vec<api::PodSandbox>> {
        Ok(self.sandboxes.lock().unwrap().values().cloned().collect())
    }

    async fn create_container(
        &self,
        sandbox_id: &str,
        config: api::ContainerConfig,
        _sandbox_config: api::PodSandboxConfig,
    ) -> CriResult<String> {
        let image = config.image.clone().unwrap_or_default().image;
        if !self.images.lock().unwrap().contains(&image) {
            return Err(CriError::new(
                "CreateContainer",
                tonic::Code::NotFound,
                "no image",
            ));
        }
        let id = self.id("c");
        self.call(format!(
            "CreateContainer {id} {}",
            config.metadata.clone().unwrap_or_default().name
        ));
        let c = api::Container {
            id: id.clone(),
            pod_sandbox_id: sandbox_id.into(),
            metadata: config.metadata.clone(),
            image: config.image.clone(),
            state: api::ContainerState::ContainerCreated as i32,
            labels: config.labels.clone(),
            annotations: config.annotations.clone(),
            ..Default::default()
        };
        self.containers.lock().unwrap().insert(id.clone(), c);
        Ok(id)
    }

    async fn start_container(&self, id: &str) -> CriResult<()> {
        self.call(format!("StartContainer {id}"));
        let mut cs = self.containers.lock().unwrap();
        cs.get_mut(id)
            .ok_or_else(|| not_found("StartContainer"))?
            .state = api::ContainerState::ContainerRunning as i32;
        Ok(())
    }

    async fn stop_container(&self, id: &str, timeout: i64) -> CriResult<()> {
        self.call(format!("StopContainer {id} {timeout}"));
        let mut cs = self.containers.lock().unwrap();
        cs.get_mut(id)
            .ok_or_else(|| not_found("StopContainer"))?
            .state = api::ContainerState::ContainerExited as i32;
        Ok(())
    }

    async fn remove_container(&self, id: &str) -> CriResult<()> {
        self.call(format!("RemoveContainer {id}"));
        self.containers.lock().unwrap().remove(id);
        Ok(())
    }

    async fn list_containers(&self) -> CriResult<Vec<api::Container>> {
        Ok(self.containers.lock().unwrap().values().cloned().collect())
    }

    async fn container_status(&self, id: &str) -> CriResult<api::ContainerStatus> {
        let cs = self.containers.lock().unwrap();
        let c = cs.get(id).ok_or_else(|| not_found("ContainerStatus"))?;
        Ok(api::ContainerStatus {
            id: id.into(),
            state: c.state,
            image: c.image.clone(),
            image_ref: "sha256:fake".into(),
            labels: c.labels.clone(),
            annotations: c.annotations.clone(),
            ..Default::default()
        })
    }

    async fn exec_sync(
        &self,
        id: &str,
        cmd: Vec<String>,
        _timeout: i64,
    ) -> CriResult<api::ExecSyncResponse> {
        self.call(format!("ExecSync {id} {}", cmd.join(" ")));
        Ok(self
            .exec_results
            .lock()
            .unwrap()
            .get(&cmd.join(" "))
            .cloned()
            .unwrap_or_default())
    }

    async fn image_status(&self, image: &str) -> CriResult<Option<api::Image>> {
        self.call(format!("ImageStatus {image}"));
        Ok(self
            .images
            .lock()
            .unwrap()
            .iter()
            .any(|i| i == image)
            .then(|| api::Image {
                id: "sha256:fake".into(),
                ..Default::default()
            }))
    }

    async fn list_images(&self) -> CriResult<Vec<api::Image>> {
        self.call("ListImages".into());
        Ok(self
            .images
            .lock()
            .unwrap()
            .iter()
            .map(|i| api::Image {
                id: format!("sha256:{i}"),
                repo_tags: vec![i.clone()],
                size: 1,
                ..Default::default()
            })
            .collect())
    }

    async fn remove_image(&self, image: &str) -> CriResult<()> {
        self.call(format!("RemoveImage {image}"));
        let name = image.strip_prefix("sha256:").unwrap_or(image);
        self.images.lock().unwrap().retain(|i| i != name);
        Ok(())
    }

    async fn pull_image(
        &self,
        image: &str,
        auth: Option<api::AuthConfig>,
        _sandbox: Option<api::PodSandboxConfig>,
    ) -> CriResult<String> {
        let auth_user = auth.map(|a| a.username);
        match &auth_user {
            Some(u) => self.call(format!("PullImage {image} as {u}")),
            None => self.call(format!("PullImage {image}")),
        }
        if let Some(user) = self.registry_user.lock().unwrap().as_deref() {
            if auth_user.as_deref() != Some(user) {
                return Err(CriError::new(
                    "PullImage",
                    tonic::Code::Unknown,
                    format!("failed to pull and unpack image \"{image}\": 401 Unauthorized"),
                ));
            }
        }
        if !self.registry.lock().unwrap().iter().any(|i| i == image) {
            return Err(CriError::new(
                "PullImage",
                tonic::Code::NotFound,
                format!("{image}: not found"),
            ));
        }
        self.images.lock().unwrap().push(image.into());
        Ok("sha256:fake".into())
    }

    async fn exec(&self, req: api::ExecRequest) -> CriResult<String> {
        self.call(format!("Exec {} {:?}", req.container_id, req.cmd));
        if !self
            .containers
            .lock()
            .unwrap()
            .contains_key(&req.container_id)
        {
            return Err(not_found("Exec"));
        }
        Ok(format!("http://127.0.0.1:1/exec/{}", req.container_id))
    }

    async fn attach(&self, req: api::AttachRequest) -> CriResult<String> {
        self.call(format!("Attach {}", req.container_id));
        if !self
            .containers
            .lock()
            .unwrap()
            .contains_key(&req.container_id)
        {
            return Err(not_found("Attach"));
        }
        Ok(format!("http://127.0.0.1:1/attach/{}", req.container_id))
    }

    async fn port_forward(&self, req: api::PortForwardRequest) -> CriResult<String> {
        self.call(format!("PortForward {} {:?}", req.pod_sandbox_id, req.port));
        if !self
            .sandboxes
            .lock()
            .unwrap()
            .contains_key(&req.pod_sandbox_id)
        {
            return Err(not_found("PortForward"));
        }
        Ok(format!(
            "http://127.0.0.1:1/portforward/{}",
            req.pod_sandbox_id
        ))
    }

    async fn exits(&self) -> CriResult<super::Events> {
        use futures::StreamExt;
        match self.exits.lock().unwrap().pop_front() {
            Some(rx) => Ok(tokio_stream_of(rx).boxed()),
            None => Err(CriError::new(
                "Events/Subscribe",
                tonic::Code::Unimplemented,
                "no events",
            )),
        }
    }
}

fn tokio_stream_of<T: Send + 'static>(
    rx: tokio::sync::mpsc::UnboundedReceiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|x| (x, rx)) })
}
