//! A pod's `runtimeClassName` resolved to the CRI runtime handler its
//! sandbox runs with, as upstream's runtimeclass manager does: no class is
//! the runtime's default (the empty handler); a named class is read from
//! the API (when the sandbox is created, so the kubelet keeps no watch for
//! classes that pods rarely name) and gives its `handler`. A class that
//! cannot be read fails the sandbox, and is retried with its back-off.

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::node::v1::RuntimeClass;
use kube::{Api, Client};

/// The class a pod names, if any (an empty name is no class).
pub fn class_name(pod: &Pod) -> Option<&str> {
    pod.spec
        .as_ref()
        .and_then(|s| s.runtime_class_name.as_deref())
        .filter(|n| !n.is_empty())
}

/// The runtime handler for `pod`, or why there is none, in upstream's
/// words: its informer's lister says `runtimeclass.node.k8s.io "x" not
/// found` (lister-gen names the resource by its singular), other failures
/// are wrapped in `failed to lookup RuntimeClass`.
pub async fn handler(client: Option<&Client>, pod: &Pod) -> Result<String, String> {
    let Some(name) = class_name(pod) else {
        return Ok(String::new());
    };
    let Some(client) = client else {
        return Err(format!(
            "failed to lookup RuntimeClass {name}: no API client"
        ));
    };
    let api: Api<RuntimeClass> = Api::all(client.clone());
    match api.get(name).await {
        Ok(rc) => Ok(rc.handler),
        Err(kube::Error::Api(s)) if s.code == 404 => {
            Err(format!("runtimeclass.node.k8s.io \"{name}\" not found"))
        }
        Err(e) => Err(format!("failed to lookup RuntimeClass {name}: {e}")),
    }
}
