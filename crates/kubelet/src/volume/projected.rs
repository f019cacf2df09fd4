//! projected volumes: configMap, secret, downwardAPI and
//! serviceAccountToken sources written together into one directory (a
//! tmpfs, as upstream, since it may hold secrets and tokens), with the
//! volume's `defaultMode` (0644) for files without their own mode. This is
//! what admission's `kube-api-access-*` volume is: a token, the
//! `kube-root-ca.crt` ConfigMap's `ca.crt`, and the namespace.

use k8s_openapi::api::core::v1::{Pod, ProjectedVolumeSource};

use super::atomic::{File, Payload};
use super::downward::NodeFacts;
use super::{configmap, downward, secret, Objects, Tokens};

/// Upstream's `ProjectedVolumeSourceDefaultMode`.
pub const DEFAULT_MODE: i32 = 0o644;

/// Upstream's default `expirationSeconds` of a token projection.
pub const TOKEN_EXPIRATION: i64 = 3600;

/// Errors of several sources, as upstream's aggregate prints them.
fn aggregate(errs: Vec<String>) -> String {
    if errs.len() == 1 {
        errs.into_iter().next().unwrap_or_default()
    } else {
        format!("[{}]", errs.join(", "))
    }
}

/// The files of projected volume `volume` of `pod`.
pub async fn payload(
    pod: &Pod,
    volume: &str,
    src: &ProjectedVolumeSource,
    objs: &mut impl Objects,
    facts: &NodeFacts,
    tokens: &Tokens,
) -> Result<Payload, String> {
    let mode = src.default_mode.unwrap_or(DEFAULT_MODE);
    let mut out = Payload::new();
    let mut errs = Vec::new();
    for s in src.sources.iter().flatten() {
        let part = if let Some(c) = &s.config_map {
            let optional = c.optional.unwrap_or(false);
            match objs.config_map(&c.name).await {
                Ok(cm) => {
                    configmap::payload(&c.name, cm.as_ref(), c.items.as_ref(), Some(mode), optional)
                }
                Err(e) => Err(e),
            }
        } else if let Some(c) = &s.secret {
            let optional = c.optional.unwrap_or(false);
            match objs.secret(&c.name).await {
                Ok(sec) => secret::payload(
                    &c.name,
                    sec.as_ref(),
                    c.items.as_ref(),
                    Some(mode),
                    optional,
                ),
                Err(e) => Err(e),
            }
        } else if let Some(d) = &s.downward_api {
            downward::payload(pod, d.items.as_deref().unwrap_or_default(), mode, facts)
        } else if let Some(t) = &s.service_account_token {
            let audience = t.audience.clone().unwrap_or_default();
            let expiration = t.expiration_seconds.unwrap_or(TOKEN_EXPIRATION);
            let key = format!(
                "{}/{volume}/{}/{audience}/{expiration}",
                pod.metadata.uid.as_deref().unwrap_or_default(),
                t.path
            );
            tokens
                .get(&key, || objs.token(pod, &audience, expiration), expiration)
                .await
                .map(|tok| {
                    Payload::from([(
                        t.path.clone(),
                        File {
                            data: tok.into_bytes(),
                            mode: mode as u32,
                        },
                    )])
                })
                .map_err(|e| format!("failed to fetch token: {e}"))
        } else {
            // clusterTrustBundle and podCertificate projections need APIs
            // wharf does not serve.
            Err("projected volume source not supported by this kubelet".to_string())
        };
        match part {
            Ok(p) => out.extend(p),
            Err(e) => errs.push(e),
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(aggregate(errs))
    }
}
