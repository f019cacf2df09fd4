//! The controller manager: each controller is a level-triggered reconcile
//! function driven by kube-rs's runtime, talking to the API server over HTTPS
//! like any other client. It never touches the store.

pub mod cache;
pub mod deployment;
pub mod endpoints;
pub mod events;
pub mod gc;
pub mod namespace;
pub mod replicaset;
pub mod serviceaccount;

use std::time::Duration;

/// Start every controller on `client`; runs until the returned task is
/// aborted, which stops the controllers with it.
pub fn start(client: kube::Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let tasks = vec![
            tokio::spawn(namespace::run(client.clone())),
            tokio::spawn(serviceaccount::run(client.clone())),
            tokio::spawn(replicaset::run(client.clone())),
            tokio::spawn(deployment::run(client.clone())),
            tokio::spawn(endpoints::run(client.clone())),
            tokio::spawn(gc::run(client.clone())),
        ];
        // Aborting this task drops the guards, which abort the controllers.
        let guards: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
        struct AbortAll(Vec<tokio::task::AbortHandle>);
        impl Drop for AbortAll {
            fn drop(&mut self) {
                self.0.iter().for_each(tokio::task::AbortHandle::abort);
            }
        }
        let _guard = AbortAll(guards);
        let _ = futures::future::join_all(tasks).await;
        tracing::warn!("controller manager stopped");
    })
}

/// How long a controller waits before retrying an object whose reconcile failed.
pub const ERROR_REQUEUE: Duration = Duration::from_secs(5);
