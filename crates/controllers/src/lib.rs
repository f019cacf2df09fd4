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
        // Aborting this task drops the tasks' guard, which aborts them too.
        let mut tasks = AbortOnDrop(vec![
            tokio::spawn(namespace::run(client.clone())),
            tokio::spawn(serviceaccount::run(client.clone())),
            tokio::spawn(replicaset::run(client.clone())),
            tokio::spawn(deployment::run(client.clone())),
            tokio::spawn(endpoints::run(client.clone())),
            tokio::spawn(gc::run(client.clone())),
        ]);
        let _ = futures::future::join_all(tasks.0.iter_mut()).await;
        tracing::warn!("controller manager stopped");
    })
}

/// Tasks aborted when this is dropped: a controller's helper tasks end with it.
pub(crate) struct AbortOnDrop(pub(crate) Vec<tokio::task::JoinHandle<()>>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.iter().for_each(tokio::task::JoinHandle::abort);
    }
}

/// How long a controller waits before retrying an object whose reconcile failed.
pub const ERROR_REQUEUE: Duration = Duration::from_secs(5);
