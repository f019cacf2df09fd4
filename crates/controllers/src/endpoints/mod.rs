//! The Endpoints and EndpointSlice controllers. Both follow every service
//! with a selector: the Endpoints controller keeps one Endpoints object
//! named as the service, the EndpointSlice controller a set of slices owned
//! by it. Services without a selector, and ExternalName ones, are left to
//! their users.
//!
//! They share one informer per resource (services, pods, nodes, Endpoints,
//! and the slices this controller manages). Each change is mapped to the
//! keys (`namespace/name`) of the services it concerns, a pod to the
//! services of its namespace whose selector matches it before or after the
//! change; each controller has its own queue of keys and pool of workers.

mod cache;
mod endpointsctl;
mod plan;
mod pods;
mod ports;
mod queue;
mod slicectl;
mod slices;
mod subsets;
mod tracker;
mod trigger;

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::Api;
use kube::runtime::watcher;
use kube::Client;

use cache::{trim_managed_fields, Cache, Change};
use queue::Queue;

/// Label: the service a slice belongs to.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";
/// Label: who manages a slice.
pub const SLICE_MANAGED_BY: &str = "endpointslice.kubernetes.io/managed-by";
/// This controller's name in [`SLICE_MANAGED_BY`].
pub const SLICE_CONTROLLER: &str = "endpointslice-controller.k8s.io";
/// Label: who manages an Endpoints object.
pub const ENDPOINTS_MANAGED_BY: &str = "endpoints.kubernetes.io/managed-by";
/// This controller's name in [`ENDPOINTS_MANAGED_BY`].
pub const ENDPOINTS_CONTROLLER: &str = "endpoint-controller";
/// Label on the endpoints of a service without a cluster IP.
pub const HEADLESS_LABEL: &str = "service.kubernetes.io/headless";
/// Annotation: when the change happened that the object publishes.
pub const TRIGGER_TIME: &str = "endpoints.kubernetes.io/last-change-trigger-time";
/// Annotation: the Endpoints object was cut to 1000 addresses.
pub const OVER_CAPACITY: &str = "endpoints.kubernetes.io/over-capacity";
/// Node label read into each endpoint's zone.
pub const ZONE_LABEL: &str = "topology.kubernetes.io/zone";

/// Workers per controller (upstream's default for both).
const WORKERS: usize = 5;
/// A sync that found the cache behind runs again when the cache moves, or
/// after this long at the latest.
const STALE_RETRY: Duration = Duration::from_secs(1);

/// Errors of one sync.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("API call failed: {0}")]
    Kube(#[source] kube::Error),
    /// The cache does not show our own last write yet; retried shortly.
    #[error("the cache of {0} is behind our writes")]
    Stale(String),
    /// Written, but with something left out that a retry may fix.
    #[error("{0}")]
    Incomplete(String),
}

/// What the informers keep.
#[derive(Default)]
pub struct Caches {
    services: Arc<Cache<Service>>,
    pods: Arc<Cache<Pod>>,
    nodes: Arc<Cache<Node>>,
    endpoints: Arc<Cache<Endpoints>>,
    slices: Arc<Cache<EndpointSlice>>,
}

impl Caches {
    async fn wait_ready(&self) {
        self.services.wait_ready().await;
        self.pods.wait_ready().await;
        self.nodes.wait_ready().await;
        self.endpoints.wait_ready().await;
        self.slices.wait_ready().await;
    }

    /// Keys of the services in `pod`'s namespace whose selector matches it.
    fn services_of(&self, pod: &Pod) -> Vec<String> {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("");
        self.services
            .list(ns, |s| {
                !pods::unmanaged(s)
                    && pods::selector(s)
                        .is_some_and(|sel| pods::selects(sel, pod.metadata.labels.as_ref()))
            })
            .iter()
            .map(|s| key(s.metadata.namespace.as_deref(), s.metadata.name.as_deref()))
            .collect()
    }
}

fn key(ns: Option<&str>, name: Option<&str>) -> String {
    format!("{}/{}", ns.unwrap_or(""), name.unwrap_or(""))
}

/// `namespace/name` split in two.
pub fn split_key(key: &str) -> (&str, &str) {
    key.split_once('/').unwrap_or(("", key))
}

/// Pods are kept without what the controllers never read.
fn trim_pod(p: &mut Pod) {
    trim_managed_fields(p);
    p.metadata.annotations = None;
}

/// Of a node, only its labels are read (the zone).
fn trim_node(n: &mut Node) {
    trim_managed_fields(n);
    n.metadata.annotations = None;
    n.spec = None;
    n.status = None;
}

/// Run both controllers until the process ends.
pub async fn run(client: Client) {
    let caches = Arc::new(Caches::default());
    let eps = Arc::new(endpointsctl::Controller::new(
        client.clone(),
        caches.clone(),
    ));
    let sls = Arc::new(slicectl::Controller::new(client.clone(), caches.clone()));

    let both = {
        let (e, s) = (eps.clone(), sls.clone());
        move |k: &str| {
            e.queue.add(k);
            s.queue.add(k);
        }
    };
    let cfg = watcher::Config::default;

    let on_service = {
        let (e, s, both) = (eps.clone(), sls.clone(), both.clone());
        move |(old, new): Change<Service>| {
            let Some(obj) = new.as_ref().or(old.as_ref()) else {
                return;
            };
            let k = key(
                obj.metadata.namespace.as_deref(),
                obj.metadata.name.as_deref(),
            );
            e.service_deleted(&k, new.is_none());
            s.service_deleted(&k, new.is_none());
            both(&k);
        }
    };
    let on_pod = {
        let (c, both) = (caches.clone(), both.clone());
        move |(old, new): Change<Pod>| {
            if let (Some(o), Some(n)) = (&old, &new) {
                if !pods::endpoint_relevant_change(o, n) {
                    return;
                }
            }
            let keys: BTreeSet<String> = old
                .iter()
                .chain(new.iter())
                .flat_map(|p| c.services_of(p))
                .collect();
            keys.iter().for_each(|k| both(k));
        }
    };
    let on_endpoints = {
        let (c, e) = (caches.clone(), eps.clone());
        move |(old, new): Change<Endpoints>| {
            if let Some(o) = new.as_ref().or(old.as_ref()) {
                e.queue.cache_moved(&key(
                    o.metadata.namespace.as_deref(),
                    o.metadata.name.as_deref(),
                ));
            }
            match (old, new) {
                // Deleted: recreated if its service still wants it.
                (Some(o), None) => e.queue.add(&key(
                    o.metadata.namespace.as_deref(),
                    o.metadata.name.as_deref(),
                )),
                // Ours without a service: left over, to delete.
                (_, Some(n)) if endpointsctl::managed(&n) => {
                    let (ns, name) = (n.metadata.namespace.as_deref(), n.metadata.name.as_deref());
                    if c.services
                        .get(ns.unwrap_or(""), name.unwrap_or(""))
                        .is_none()
                    {
                        e.queue.add(&key(ns, name));
                    }
                }
                _ => {}
            }
        }
    };
    let on_slice = {
        let s = sls.clone();
        move |(old, new): Change<EndpointSlice>| {
            let svc_of =
                |x: &Option<Arc<EndpointSlice>>| x.as_deref().and_then(tracker::service_key);
            // A sync waiting for the cache to show its writes may go on.
            svc_of(&old)
                .iter()
                .chain(svc_of(&new).iter())
                .for_each(|k| s.queue.cache_moved(k));
            match (&old, &new) {
                (_, Some(n)) => {
                    let (before, after) = (svc_of(&old), svc_of(&new));
                    if before.is_some() && before != after {
                        before
                            .iter()
                            .chain(after.iter())
                            .for_each(|k| s.queue.add(k));
                    } else if s.tracker.should_sync(n) {
                        after.iter().for_each(|k| s.queue.add(k));
                    }
                }
                (Some(o), None) => {
                    if s.tracker.deleted(o) {
                        svc_of(&old).iter().for_each(|k| s.queue.add(k));
                    }
                }
                (None, None) => {}
            }
        }
    };

    let slice_cfg = cfg().labels(&format!("{SLICE_MANAGED_BY}={SLICE_CONTROLLER}"));
    let informers = [
        tokio::spawn(cache::run(
            Api::all(client.clone()),
            cfg(),
            caches.services.clone(),
            trim_managed_fields,
            on_service,
        )),
        tokio::spawn(cache::run(
            Api::all(client.clone()),
            cfg(),
            caches.pods.clone(),
            trim_pod,
            on_pod,
        )),
        tokio::spawn(cache::run(
            Api::all(client.clone()),
            cfg(),
            caches.nodes.clone(),
            trim_node,
            |_: Change<Node>| {},
        )),
        tokio::spawn(cache::run(
            Api::all(client.clone()),
            cfg(),
            caches.endpoints.clone(),
            trim_managed_fields,
            on_endpoints,
        )),
        tokio::spawn(cache::run(
            Api::all(client.clone()),
            slice_cfg,
            caches.slices.clone(),
            trim_managed_fields,
            on_slice,
        )),
    ];
    caches.wait_ready().await;
    tracing::info!("endpoints and endpointslice controllers started");
    for _ in 0..WORKERS {
        let e = eps.clone();
        tokio::spawn(work(e.queue.clone(), "endpoints", move |k| {
            let e = e.clone();
            async move { e.sync(&k).await }
        }));
        let s = sls.clone();
        tokio::spawn(work(s.queue.clone(), "endpointslices", move |k| {
            let s = s.clone();
            async move { s.sync(&k).await }
        }));
    }
    let _ = futures::future::join_all(informers).await;
}

/// One worker: sync keys from `queue` one at a time, retrying failures.
async fn work<F, Fut>(queue: Arc<Queue>, what: &'static str, sync: F)
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    loop {
        let k = queue.next().await;
        let started = std::time::Instant::now();
        let res = sync(k.clone()).await;
        let took = started.elapsed();
        match res {
            Ok(()) => {
                queue.forget(&k);
                tracing::trace!(controller = what, service = %k, ?took, "synced");
            }
            Err(Error::Stale(_)) => {
                queue.park(&k, STALE_RETRY);
                tracing::debug!(controller = what, service = %k, "cache behind our writes; waiting for it");
            }
            Err(e) => {
                let delay = queue.retry(&k);
                tracing::warn!(controller = what, service = %k, error = %e, ?delay, "sync failed; retrying");
            }
        }
        queue.done(&k);
    }
}
