//! The root CA certificate publisher: every active namespace has the
//! ConfigMap `kube-root-ca.crt` with the cluster CA bundle under `ca.crt`,
//! created when the namespace appears and put back when deleted or
//! changed, as upstream's `root-ca-cert-publisher`. Pods read it through
//! their `kube-api-access-*` projected volume.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, ObjectMeta, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::Client;

/// The ConfigMap's name.
pub const NAME: &str = "kube-root-ca.crt";
/// Its key.
pub const KEY: &str = "ca.crt";
const DESCRIPTION_KEY: &str = "kubernetes.io/description";
const DESCRIPTION: &str = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.";

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("API call failed: {0}")]
    Kube(#[source] kube::Error),
}

struct Ctx {
    client: Client,
    ca: String,
}

/// The ConfigMap as it should be.
pub fn desired(ca: &str) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(NAME.into()),
            annotations: Some(BTreeMap::from([(
                DESCRIPTION_KEY.into(),
                DESCRIPTION.into(),
            )])),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([(KEY.into(), ca.to_string())])),
        ..ConfigMap::default()
    }
}

/// Run until the process ends, publishing `ca` (PEM).
pub async fn run(client: Client, ca: String) {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let maps: Api<ConfigMap> = Api::all(client.clone());
    let ctx = Arc::new(Ctx { client, ca });
    Controller::new(namespaces, watcher::Config::default())
        // A deleted or edited ConfigMap brings its namespace back to reconcile.
        .watches(
            maps,
            watcher::Config::default().fields(&format!("metadata.name={NAME}")),
            |cm: ConfigMap| cm.metadata.namespace.map(|ns| ObjectRef::new(&ns)),
        )
        .run(reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "root CA publisher reconcile");
            }
        })
        .await;
}

fn error_policy(_ns: Arc<Namespace>, e: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(error = %e, "root CA publisher");
    Action::requeue(crate::ERROR_REQUEUE)
}

async fn reconcile(ns: Arc<Namespace>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let Some(name) = ns.metadata.name.clone() else {
        return Ok(Action::await_change());
    };
    if ns.metadata.deletion_timestamp.is_some() {
        return Ok(Action::await_change());
    }
    let api: Api<ConfigMap> = Api::namespaced(ctx.client.clone(), &name);
    let want = desired(&ctx.ca);
    let result = match api.get_opt(NAME).await.map_err(Error::Kube)? {
        None => api.create(&PostParams::default(), &want).await.map(|_| ()),
        Some(cur) if cur.data == want.data => return Ok(Action::await_change()),
        Some(mut cur) => {
            // Put the bundle back, keeping the object's other metadata.
            cur.data = want.data;
            cur.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(DESCRIPTION_KEY.into(), DESCRIPTION.into());
            api.replace(NAME, &PostParams::default(), &cur)
                .await
                .map(|_| ())
        }
    };
    match result {
        Ok(()) => {
            tracing::debug!(namespace = name, "published the root CA");
            Ok(Action::await_change())
        }
        // A race with another writer, or a terminating namespace: the watch brings it back.
        Err(kube::Error::Api(s)) if s.code == 409 || s.code == 403 => Ok(Action::await_change()),
        Err(e) => Err(Error::Kube(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desired_object() {
        let cm = desired("PEM");
        assert_eq!(cm.metadata.name.as_deref(), Some("kube-root-ca.crt"));
        assert_eq!(cm.data.unwrap()["ca.crt"], "PEM");
        assert!(
            cm.metadata.annotations.unwrap()[DESCRIPTION_KEY].starts_with("Contains a CA bundle")
        );
    }
}
