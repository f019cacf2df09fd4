//! The EndpointSlice controller: the slices of each service with a
//! selector, per address family, at most [`MAX_PER_SLICE`] endpoints each.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::Client;

use super::endpointsctl::namespace_terminating;
use super::plan::{plan, Plan};
use super::queue::Queue;
use super::slices::{desired, MAX_PER_SLICE};
use super::tracker::Tracker;
use super::trigger::{self, TriggerTimes};
use super::{pods, split_key, Caches, Error};
use super::{SERVICE_NAME_LABEL, SLICE_CONTROLLER, SLICE_MANAGED_BY, TRIGGER_TIME};

/// The controller's state between syncs.
pub struct Controller {
    client: Client,
    caches: Arc<Caches>,
    /// Service keys to sync.
    pub queue: Arc<Queue>,
    /// Our writes, to tell a stale cache and foreign changes.
    pub tracker: Tracker,
    triggers: TriggerTimes,
    /// Services seen deleted, whose slices are still to delete.
    deleted: Mutex<HashSet<String>>,
}

fn set_trigger(slice: &mut EndpointSlice, t: Option<Timestamp>) {
    let ann = slice
        .metadata
        .annotations
        .get_or_insert_with(Default::default);
    match t {
        Some(t) => ann.insert(TRIGGER_TIME.into(), trigger::format(t)),
        None => ann.remove(TRIGGER_TIME),
    };
    if ann.is_empty() {
        slice.metadata.annotations = None;
    }
}

fn not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

impl Controller {
    /// A controller reading `caches` and writing through `client`.
    pub fn new(client: Client, caches: Arc<Caches>) -> Self {
        Controller {
            client,
            caches,
            queue: Arc::new(Queue::default()),
            tracker: Tracker::default(),
            triggers: TriggerTimes::default(),
            deleted: Mutex::new(HashSet::new()),
        }
    }

    /// The service `key` was deleted (or created again, `false`).
    pub fn service_deleted(&self, key: &str, deleted: bool) {
        let mut d = self.deleted.lock().unwrap_or_else(|e| e.into_inner());
        if deleted {
            d.insert(key.to_string());
        } else {
            d.remove(key);
        }
    }

    fn cached_slices(&self, ns: &str, name: &str) -> Vec<Arc<EndpointSlice>> {
        self.caches.slices.list(ns, |s| {
            let l = s.metadata.labels.as_ref();
            l.and_then(|l| l.get(SERVICE_NAME_LABEL))
                .map(String::as_str)
                == Some(name)
                && l.and_then(|l| l.get(SLICE_MANAGED_BY)).map(String::as_str)
                    == Some(SLICE_CONTROLLER)
        })
    }

    /// Bring the EndpointSlices of service `key` (`namespace/name`) in line.
    pub async fn sync(&self, key: &str) -> Result<(), Error> {
        let (ns, name) = split_key(key);
        let Some(svc) = self.caches.services.get(ns, name) else {
            return self.cleanup(key, ns, name).await;
        };
        let Some(selector) = pods::selector(&svc).filter(|_| !pods::unmanaged(&svc)) else {
            return Ok(());
        };
        let pods = self
            .caches
            .pods
            .list(ns, |p| pods::selects(selector, p.metadata.labels.as_ref()));
        // Slices on their way out are not planned with.
        let existing: Vec<Arc<EndpointSlice>> = self
            .cached_slices(ns, name)
            .into_iter()
            .filter(|s| s.metadata.deletion_timestamp.is_none())
            .collect();
        if self.tracker.stale(key, &existing) {
            return Err(Error::Stale(key.to_string()));
        }
        let trigger = self.triggers.compute(key, &svc, &pods);
        let families = pods::service_families(&svc);
        let mut total = Plan::default();
        let mut skipped = Vec::new();
        for family in &families {
            let at = family.address_type();
            let (groups, left_out) =
                desired(&svc, &pods, *family, |n| self.caches.nodes.get("", n));
            skipped.extend(left_out);
            let of_type: Vec<_> = existing
                .iter()
                .filter(|s| s.address_type == at)
                .cloned()
                .collect();
            let p = plan(&svc, &of_type, groups, at, MAX_PER_SLICE);
            total.create.extend(p.create);
            total.update.extend(p.update);
            total.delete.extend(p.delete);
        }
        // Slices of a family the service no longer has.
        let types: Vec<&str> = families.iter().map(|f| f.address_type()).collect();
        total.delete.extend(
            existing
                .iter()
                .filter(|s| !types.contains(&s.address_type.as_str()))
                .cloned(),
        );
        self.write(&svc, total, trigger).await?;
        if !skipped.is_empty() {
            skipped.sort();
            skipped.dedup();
            return Err(Error::Incomplete(format!(
                "pods {} of service {key} left out: their nodes are unknown",
                skipped.join(", ")
            )));
        }
        Ok(())
    }

    async fn write(&self, svc: &Service, p: Plan, trigger: Option<Timestamp>) -> Result<(), Error> {
        let ns = svc.metadata.namespace.as_deref().unwrap_or_default();
        let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
        let pp = PostParams::default();
        let (created, updated, deleted) = (p.create.len(), p.update.len(), p.delete.len());
        // No new slices for a service on its way out.
        if svc.metadata.deletion_timestamp.is_none() {
            for mut s in p.create {
                set_trigger(&mut s, trigger);
                match api.create(&pp, &s).await {
                    Ok(s) => self.tracker.written(&s),
                    Err(e) if namespace_terminating(&e) => return Ok(()),
                    Err(e) => return Err(Error::Kube(e)),
                }
            }
        }
        for mut s in p.update {
            set_trigger(&mut s, trigger);
            let name = s.metadata.name.clone().unwrap_or_default();
            let s = api.replace(&name, &pp, &s).await.map_err(Error::Kube)?;
            self.tracker.written(&s);
        }
        for s in p.delete {
            let name = s.metadata.name.clone().unwrap_or_default();
            match api.delete(&name, &DeleteParams::default()).await {
                Ok(_) => self.tracker.expect_deletion(&s),
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(Error::Kube(e)),
            }
        }
        if created + updated + deleted > 0 {
            tracing::debug!(
                service = %format!("{ns}/{}", svc.metadata.name.as_deref().unwrap_or_default()),
                created, updated, deleted, "endpoint slices written"
            );
        }
        Ok(())
    }

    /// The service is gone. Its slices would go by their owner reference
    /// once a garbage collector runs; until then they are deleted here.
    async fn cleanup(&self, key: &str, ns: &str, name: &str) -> Result<(), Error> {
        self.triggers.forget(key);
        let seen_deleted = self
            .deleted
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key);
        if seen_deleted || !self.cached_slices(ns, name).is_empty() {
            let api: Api<EndpointSlice> = Api::namespaced(self.client.clone(), ns);
            // By label, on the server: slices just written may not be cached.
            let lp = ListParams::default().labels(&format!(
                "{SERVICE_NAME_LABEL}={name},{SLICE_MANAGED_BY}={SLICE_CONTROLLER}"
            ));
            match api.delete_collection(&DeleteParams::default(), &lp).await {
                Ok(_) => {
                    tracing::debug!(service = key, "endpoint slices deleted with their service")
                }
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(Error::Kube(e)),
            }
        }
        self.tracker.forget(key);
        self.service_deleted(key, false);
        Ok(())
    }
}
