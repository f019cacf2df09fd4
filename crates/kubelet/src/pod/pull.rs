//! Image pulls with the pod's `imagePullSecrets`, as upstream's kubelet does
//! them: the secrets are read when an image is pulled, the credentials that
//! match the image are tried in turn until one pull succeeds, and without a
//! match the pull goes out without credentials (containerd then uses those
//! of the registries file, if any).

use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::{Api, Client};

use crate::cri::{api, CriError, CriResult, Runtime};
use crate::keyring::{Credential, Keyring};

/// The pod's pull secrets, and those that could not be read.
#[derive(Default)]
pub struct PullSecrets {
    /// Their credentials.
    pub keyring: Keyring,
    /// Names of secrets that are missing or unusable.
    pub missing: Vec<String>,
}

/// Read the pod's `imagePullSecrets` from its namespace.
pub async fn secrets(client: Option<&Client>, pod: &Pod) -> PullSecrets {
    let mut out = PullSecrets::default();
    let names: Vec<String> = pod
        .spec
        .as_ref()
        .and_then(|s| s.image_pull_secrets.as_ref())
        .into_iter()
        .flatten()
        .map(|r| r.name.clone())
        .filter(|n| !n.is_empty())
        .collect();
    if names.is_empty() {
        return out;
    }
    let Some(client) = client else {
        out.missing = names;
        return out;
    };
    let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    for name in names {
        let secret = match api.get_opt(&name).await {
            Ok(Some(s)) => s,
            Ok(None) => {
                out.missing.push(name);
                continue;
            }
            Err(e) => {
                tracing::warn!(secret = %name, error = %e, "reading an image pull secret");
                out.missing.push(name);
                continue;
            }
        };
        let data = secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
            .collect();
        let kind = secret.type_.unwrap_or_default();
        if let Err(e) = out.keyring.add_secret(&kind, &data) {
            tracing::warn!(secret = %name, error = %e, "unusable image pull secret");
            out.missing.push(name);
        }
    }
    out
}

/// Pull `image`, trying each of `creds` in turn (none: one anonymous pull).
/// The error of several failed attempts lists them all, as upstream's
/// aggregate error does.
pub async fn pull(
    runtime: &dyn Runtime,
    image: &str,
    creds: &[Credential],
    sandbox: api::PodSandboxConfig,
) -> CriResult<String> {
    if creds.is_empty() {
        return runtime.pull_image(image, None, Some(sandbox)).await;
    }
    let mut errors: Vec<CriError> = Vec::new();
    for c in creds {
        let auth = api::AuthConfig {
            username: c.username.clone(),
            password: c.password.clone(),
            identity_token: c.identity_token.clone(),
            ..Default::default()
        };
        match runtime
            .pull_image(image, Some(auth), Some(sandbox.clone()))
            .await
        {
            Ok(r) => return Ok(r),
            Err(e) => errors.push(e),
        }
    }
    if errors.len() == 1 {
        return Err(errors.remove(0));
    }
    let code = errors
        .last()
        .map(|e| e.code)
        .unwrap_or(tonic::Code::Unknown);
    let all: Vec<String> = errors.into_iter().map(|e| e.message).collect();
    Err(CriError::new(
        "PullImage",
        code,
        format!("[{}]", all.join(", ")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri::fake::Fake;

    fn creds(users: &[&str]) -> Vec<Credential> {
        users
            .iter()
            .map(|u| Credential {
                username: u.to_string(),
                password: "p".into(),
                ..Default::default()
            })
            .collect()
    }

    #[tokio::test]
    async fn matching_credentials_are_tried_until_one_works() {
        let rt = Fake::default();
        rt.registry.lock().unwrap().push("reg:5000/app:1".into());
        *rt.registry_user.lock().unwrap() = Some("right".into());
        let sb = api::PodSandboxConfig::default();
        pull(
            &rt,
            "reg:5000/app:1",
            &creds(&["wrong", "right"]),
            sb.clone(),
        )
        .await
        .unwrap();
        assert_eq!(
            rt.calls(),
            [
                "PullImage reg:5000/app:1 as wrong",
                "PullImage reg:5000/app:1 as right"
            ]
        );
        // Without credentials: one anonymous attempt, refused.
        let e = pull(&rt, "reg:5000/app:1", &[], sb.clone())
            .await
            .unwrap_err();
        assert!(e.message.contains("401 Unauthorized"), "{e}");
        // Every attempt failed: all errors are reported.
        let e = pull(&rt, "reg:5000/app:1", &creds(&["a", "b"]), sb)
            .await
            .unwrap_err();
        assert!(
            e.message.starts_with('[') && e.message.matches("401").count() == 2,
            "{e}"
        );
    }

    #[tokio::test]
    async fn a_pod_without_a_client_reports_its_secrets_missing() {
        let pod = Pod {
            spec: Some(k8s_openapi::api::core::v1::PodSpec {
                image_pull_secrets: Some(vec![k8s_openapi::api::core::v1::LocalObjectReference {
                    name: "regcred".into(),
                }]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let s = secrets(None, &pod).await;
        assert_eq!(s.missing, ["regcred"]);
        assert!(s.keyring.is_empty());
    }
}
