//! Volumes made of API data, as upstream's kubelet provides them:
//! `configMap`, `secret` (on a tmpfs), `downwardAPI` and `projected` (on
//! a tmpfs), each written with the [`atomic`] writer under
//! `<pods>/<uid>/volumes/kubernetes.io~<kind>/<name>` and mounted
//! read-only. [`Manager::setup`] runs before containers start and again
//! every [`RESYNC`] for running pods, so changes to the objects (and to
//! the pod's labels and annotations) reach running containers. Local
//! volumes (emptyDir, hostPath) are in `pod::volumes`; `subPath` in
//! [`subpath`].

pub mod atomic;
pub mod configmap;
pub mod downward;
pub mod projected;
pub mod secret;
pub mod subpath;

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, Secret, ServiceAccount};
use kube::{Api, Client};

use crate::cri::api;
use crate::pod::volumes as local;
use downward::NodeFacts;

/// How often the API-data volumes of running pods are rewritten from the
/// objects (upstream's kubelet: its sync period, about a minute, plus the
/// cache TTL; shorter here because a GET per object is cheap).
pub const RESYNC: Duration = Duration::from_secs(10);

/// A volume ready to be mounted into containers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Provided {
    /// Its host path.
    pub path: PathBuf,
    /// API data is always mounted read-only, whatever the volumeMount says.
    pub read_only: bool,
}

/// Where API objects come from (the API server, or a map in tests).
pub trait Objects: Send {
    /// ConfigMap `name` of the pod's namespace, `None` if absent.
    fn config_map(
        &mut self,
        name: &str,
    ) -> impl Future<Output = Result<Option<ConfigMap>, String>> + Send;
    /// Secret `name` of the pod's namespace, `None` if absent.
    fn secret(&mut self, name: &str)
        -> impl Future<Output = Result<Option<Secret>, String>> + Send;
    /// A token of the pod's service account bound to the pod
    /// (TokenRequest), for `audience` (empty: the API server's).
    fn token(
        &mut self,
        pod: &Pod,
        audience: &str,
        expiration: i64,
    ) -> impl Future<Output = Result<String, String>> + Send;
}

/// The API server as [`Objects`] for one namespace; each object is read
/// once per instance.
pub struct ApiObjects {
    client: Client,
    namespace: String,
    cms: HashMap<String, Option<ConfigMap>>,
    secrets: HashMap<String, Option<Secret>>,
}

impl ApiObjects {
    /// Objects of `namespace`.
    pub fn new(client: &Client, namespace: &str) -> Self {
        ApiObjects {
            client: client.clone(),
            namespace: namespace.to_string(),
            cms: HashMap::new(),
            secrets: HashMap::new(),
        }
    }
}

impl Objects for ApiObjects {
    async fn config_map(&mut self, name: &str) -> Result<Option<ConfigMap>, String> {
        if let Some(v) = self.cms.get(name) {
            return Ok(v.clone());
        }
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        let v = api.get_opt(name).await.map_err(|e| e.to_string())?;
        self.cms.insert(name.to_string(), v.clone());
        Ok(v)
    }

    async fn secret(&mut self, name: &str) -> Result<Option<Secret>, String> {
        if let Some(v) = self.secrets.get(name) {
            return Ok(v.clone());
        }
        let api: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        let v = api.get_opt(name).await.map_err(|e| e.to_string())?;
        self.secrets.insert(name.to_string(), v.clone());
        Ok(v)
    }

    async fn token(
        &mut self,
        pod: &Pod,
        audience: &str,
        expiration: i64,
    ) -> Result<String, String> {
        let sa = pod
            .spec
            .as_ref()
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_else(|| "default".into());
        let req = TokenRequest {
            spec: Some(TokenRequestSpec {
                // No audience: the API server's own.
                audiences: (!audience.is_empty()).then(|| vec![audience.to_string()]),
                expiration_seconds: Some(expiration),
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let api: Api<ServiceAccount> = Api::namespaced(self.client.clone(), &self.namespace);
        let tr: TokenRequest = api
            .create_subresource("token", &sa, &Default::default(), &req)
            .await
            .map_err(|e| match e {
                kube::Error::Api(s) => s.message,
                e => e.to_string(),
            })?;
        tr.status
            .and_then(|s| s.token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| "the TokenRequest returned no token".to_string())
    }
}

/// Service-account tokens by projection, reused until 80% of their
/// lifetime has passed (upstream's refresh rule).
#[derive(Default)]
pub struct Tokens(Mutex<HashMap<String, (String, Instant)>>);

impl Tokens {
    /// The token under `key`, from `fetch` when there is none or it is due.
    pub async fn get<F: Future<Output = Result<String, String>>>(
        &self,
        key: &str,
        fetch: impl FnOnce() -> F,
        expiration: i64,
    ) -> Result<String, String> {
        if let Some((t, due)) = self.0.lock().expect("tokens").get(key) {
            if Instant::now() < *due {
                return Ok(t.clone());
            }
        }
        let t = fetch().await?;
        let due = Instant::now() + Duration::from_secs((expiration.max(1) as u64) * 8 / 10);
        self.0
            .lock()
            .expect("tokens")
            .insert(key.to_string(), (t.clone(), due));
        Ok(t)
    }

    fn forget(&self, uid: &str) {
        let prefix = format!("{uid}/");
        self.0
            .lock()
            .expect("tokens")
            .retain(|k, _| !k.starts_with(&prefix));
    }
}

/// The kubelet's volumes of all pods.
pub struct Manager {
    pods_root: PathBuf,
    tokens: Tokens,
    synced: Mutex<HashMap<String, Instant>>,
}

/// Whether `pod` has volumes made of API data (those that need resyncs).
pub fn has_api_volumes(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
        .any(|v| {
            v.config_map.is_some()
                || v.secret.is_some()
                || v.downward_api.is_some()
                || v.projected.is_some()
        })
}

fn kind_dir(pods_root: &Path, uid: &str, kind: &str, name: &str) -> PathBuf {
    local::pod_dir(pods_root, uid)
        .join("volumes")
        .join(format!("kubernetes.io~{kind}"))
        .join(name)
}

impl Manager {
    /// Volumes under `pods_root`.
    pub fn new(pods_root: PathBuf) -> Self {
        Manager {
            pods_root,
            tokens: Tokens::default(),
            synced: Mutex::new(HashMap::new()),
        }
    }

    /// Where pod directories go.
    pub fn pods_root(&self) -> &Path {
        &self.pods_root
    }

    /// Whether the running pod's API-data volumes are due for a rewrite.
    pub fn resync_due(&self, pod: &Pod) -> bool {
        if !has_api_volumes(pod) {
            return false;
        }
        let uid = pod.metadata.uid.as_deref().unwrap_or_default();
        self.synced
            .lock()
            .expect("synced")
            .get(uid)
            .is_none_or(|t| t.elapsed() >= RESYNC)
    }

    /// Prepare every volume of `pod` (write the API-data ones from the
    /// objects now). The error is upstream's FailedMount message.
    pub async fn setup(
        &self,
        pod: &Pod,
        objs: &mut impl Objects,
        facts: &NodeFacts,
    ) -> Result<HashMap<String, Provided>, String> {
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        self.synced
            .lock()
            .expect("synced")
            .insert(uid.clone(), Instant::now());
        let mut out: HashMap<String, Provided> = local::setup(pod, &self.pods_root)?
            .into_iter()
            .map(|(k, path)| {
                (
                    k,
                    Provided {
                        path,
                        read_only: false,
                    },
                )
            })
            .collect();
        let failed =
            |v: &str, e: String| format!("MountVolume.SetUp failed for volume \"{v}\" : {e}");
        for v in pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.as_ref())
            .into_iter()
            .flatten()
        {
            let (kind, tmpfs, payload) = if let Some(c) = &v.config_map {
                let optional = c.optional.unwrap_or(false);
                let cm = objs
                    .config_map(&c.name)
                    .await
                    .map_err(|e| failed(&v.name, e))?;
                let p = configmap::payload(
                    &c.name,
                    cm.as_ref(),
                    c.items.as_ref(),
                    c.default_mode,
                    optional,
                );
                ("configmap", false, p)
            } else if let Some(s) = &v.secret {
                let name = s.secret_name.clone().unwrap_or_default();
                let optional = s.optional.unwrap_or(false);
                let sec = objs.secret(&name).await.map_err(|e| failed(&v.name, e))?;
                let p = secret::payload(
                    &name,
                    sec.as_ref(),
                    s.items.as_ref(),
                    s.default_mode,
                    optional,
                );
                ("secret", true, p)
            } else if let Some(d) = &v.downward_api {
                let mode = d.default_mode.unwrap_or(downward_default_mode());
                let p = downward::payload(pod, d.items.as_deref().unwrap_or_default(), mode, facts);
                ("downward-api", false, p)
            } else if let Some(p) = &v.projected {
                let p = projected::payload(pod, &v.name, p, objs, facts, &self.tokens).await;
                ("projected", true, p)
            } else {
                continue;
            };
            let payload = payload.map_err(|e| failed(&v.name, e))?;
            let dir = kind_dir(&self.pods_root, &uid, kind, &v.name);
            std::fs::create_dir_all(&dir)
                .map_err(|e| failed(&v.name, format!("creating {}: {e}", dir.display())))?;
            if tmpfs && !local::is_mount_point(&dir) {
                local::mount_tmpfs(&dir, None).map_err(|e| failed(&v.name, e))?;
            }
            if atomic::write(&dir, &payload).map_err(|e| failed(&v.name, e))? {
                tracing::debug!(pod = ?pod.metadata.name, volume = %v.name, "volume data written");
            }
            out.insert(
                v.name.clone(),
                Provided {
                    path: dir,
                    read_only: true,
                },
            );
        }
        Ok(out)
    }

    /// Forget a pod and remove its directory (unmounting what is mounted
    /// under it).
    pub fn teardown(&self, uid: &str) {
        self.synced.lock().expect("synced").remove(uid);
        self.tokens.forget(uid);
        local::teardown(&self.pods_root, uid);
    }
}

/// The CRI mounts of container `c`: each volumeMount's volume, or its
/// `subPath` (`subPathExpr` expanded with the container's `env`) bound
/// safely under `<pod>/volume-subpaths/<volume>/<container>/<index>`.
/// The error is the container's CreateContainerConfigError message.
pub fn container_mounts(
    pods_root: &Path,
    pod: &Pod,
    c: &Container,
    volumes: &HashMap<String, Provided>,
    env: &HashMap<String, String>,
) -> Result<Vec<api::Mount>, String> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let mut out = Vec::new();
    for (i, m) in c.volume_mounts.iter().flatten().enumerate() {
        let Some(v) = volumes.get(&m.name) else {
            tracing::debug!(volume = %m.name, "volume type not provided; its mount is left out");
            continue;
        };
        let mut sub = m.sub_path.clone().unwrap_or_default();
        if let Some(expr) = m.sub_path_expr.as_deref().filter(|e| !e.is_empty()) {
            let mut missing = std::collections::BTreeSet::new();
            sub = crate::pod::env::expand(expr, |k| match env.get(k) {
                Some(v) if !v.is_empty() => Some(v.clone()),
                _ => {
                    missing.insert(k.to_string());
                    Some(String::new())
                }
            });
            if !missing.is_empty() {
                let keys: Vec<String> = missing.into_iter().collect();
                return Err(format!("missing value for {}", keys.join(", ")));
            }
        }
        let host = if sub.is_empty() {
            v.path.clone()
        } else {
            subpath::validate(&sub)?;
            if let Err(e) = subpath::make_dir(&v.path, &sub) {
                tracing::warn!(volume = %m.name, container = %c.name, error = %e, "creating a subPath failed");
                return Err(format!(
                    "failed to create subPath directory for volumeMount \"{}\" of container \"{}\"",
                    m.name, c.name
                ));
            }
            let target = local::pod_dir(pods_root, uid)
                .join("volume-subpaths")
                .join(&m.name)
                .join(&c.name)
                .join(i.to_string());
            // The details stay in the kubelet's log: they describe the host.
            subpath::prepare(&v.path, &sub, &target).map_err(|e| {
                tracing::warn!(volume = %m.name, container = %c.name, error = %e, "preparing a subPath failed");
                format!(
                    "failed to prepare subPath for volumeMount \"{}\" of container \"{}\"",
                    m.name, c.name
                )
            })?
        };
        out.push(api::Mount {
            container_path: m.mount_path.clone(),
            host_path: host.display().to_string(),
            readonly: m.read_only.unwrap_or(false) || v.read_only,
            ..Default::default()
        });
    }
    Ok(out)
}

/// Upstream's `DownwardAPIVolumeSourceDefaultMode`.
fn downward_default_mode() -> i32 {
    0o644
}

#[cfg(test)]
mod tests;
