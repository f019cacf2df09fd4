//! The controller manager: each controller is a level-triggered reconcile
//! function driven by kube-rs's runtime, talking to the API server over HTTPS
//! like any other client. It never touches the store.

pub mod gc;
pub mod namespace;
pub mod replicaset;
pub mod serviceaccount;

use std::time::Duration;

/// Start every controller on `client`; runs until the returned task is aborted.
pub fn start(client: kube::Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let ns = tokio::spawn(namespace::run(client.clone()));
        let sa = tokio::spawn(serviceaccount::run(client.clone()));
        let rs = tokio::spawn(replicaset::run(client.clone()));
        let gc = tokio::spawn(gc::run(client.clone()));
        let _ = futures::future::join4(ns, sa, rs, gc).await;
        tracing::warn!("controller manager stopped");
    })
}

/// How long a controller waits before retrying an object whose reconcile failed.
pub const ERROR_REQUEUE: Duration = Duration::from_secs(5);
