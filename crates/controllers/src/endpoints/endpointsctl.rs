//! The Endpoints controller: one Endpoints object per service with a
//! selector, named as the service, listing its pods' addresses.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::core::v1::{Endpoints, Service};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ObjectMeta, PostParams};
use kube::Client;

use super::queue::Queue;
use super::trigger::{self, TriggerTimes};
use super::{pods, split_key, subsets, Caches, Error};
use super::{
    ENDPOINTS_CONTROLLER, ENDPOINTS_MANAGED_BY, HEADLESS_LABEL, OVER_CAPACITY, TRIGGER_TIME,
};

/// The controller's state between syncs.
pub struct Controller {
    client: Client,
    caches: Arc<Caches>,
    /// Service keys to sync.
    pub queue: Arc<Queue>,
    triggers: TriggerTimes,
    /// Per service: the resourceVersion our last update replaced. Seeing it
    /// in the cache again means the cache has not caught up yet.
    replaced: Mutex<HashMap<String, String>>,
    /// Services seen deleted whose Endpoints are to go whoever made them (as
    /// the upstream API server deletes a service's Endpoints with it).
    deleted: Mutex<HashSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether this controller made `ep` (its `managed-by` label).
pub fn managed(ep: &Endpoints) -> bool {
    ep.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(ENDPOINTS_MANAGED_BY))
        .is_some_and(|v| v == ENDPOINTS_CONTROLLER)
}

/// The labels of `svc`'s Endpoints: the service's own, the `managed-by`
/// label, and the headless label when it has no cluster IP.
pub fn labels(svc: &Service) -> BTreeMap<String, String> {
    let mut l = svc.metadata.labels.clone().unwrap_or_default();
    l.insert(ENDPOINTS_MANAGED_BY.into(), ENDPOINTS_CONTROLLER.into());
    if pods::has_cluster_ip(svc) {
        l.remove(HEADLESS_LABEL);
    } else {
        l.insert(HEADLESS_LABEL.into(), String::new());
    }
    l
}

/// The Endpoints to write for `svc` given the current object (if any), or
/// `None` when the current one already says it all. `subsets` are the
/// untruncated desired subsets. Annotations others set are kept.
pub fn to_write(
    svc: &Service,
    current: Option<&Endpoints>,
    mut subsets: Vec<k8s_openapi::api::core::v1::EndpointSubset>,
    trigger: Option<Timestamp>,
) -> Option<Endpoints> {
    let truncated = subsets::truncate(&mut subsets);
    let labels = labels(svc);
    if let Some(cur) = current {
        let has_cap = cur
            .metadata
            .annotations
            .as_ref()
            .is_some_and(|a| a.contains_key(OVER_CAPACITY));
        // Compared after truncation, so an over-capacity service is not
        // rewritten on every sync.
        if subsets::normalized(cur.subsets.as_ref()) == subsets
            && cur.metadata.labels.as_ref() == Some(&labels)
            && has_cap == truncated
        {
            return None;
        }
    }
    let mut ep = current.cloned().unwrap_or_else(|| Endpoints {
        metadata: ObjectMeta {
            name: svc.metadata.name.clone(),
            namespace: svc.metadata.namespace.clone(),
            ..ObjectMeta::default()
        },
        ..Endpoints::default()
    });
    ep.subsets = (!subsets.is_empty()).then_some(subsets);
    ep.metadata.labels = Some(labels);
    let ann = ep.metadata.annotations.get_or_insert_with(BTreeMap::new);
    match trigger {
        Some(t) => ann.insert(TRIGGER_TIME.into(), trigger::format(t)),
        None => ann.remove(TRIGGER_TIME),
    };
    if truncated {
        ann.insert(OVER_CAPACITY.into(), "truncated".into());
    } else {
        ann.remove(OVER_CAPACITY);
    }
    if ann.is_empty() {
        ep.metadata.annotations = None;
    }
    Some(ep)
}

/// The namespace is being deleted: nothing new may be created in it.
pub fn namespace_terminating(e: &kube::Error) -> bool {
    let kube::Error::Api(s) = e else {
        return false;
    };
    let cause = s
        .details
        .as_ref()
        .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"));
    cause || (s.code == 403 && s.message.contains("because it is being terminated"))
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
            triggers: TriggerTimes::default(),
            replaced: Mutex::new(HashMap::new()),
            deleted: Mutex::new(HashSet::new()),
        }
    }

    /// The service `key` was deleted (or created again, `false`).
    pub fn service_deleted(&self, key: &str, deleted: bool) {
        if deleted {
            lock(&self.deleted).insert(key.to_string());
        } else {
            lock(&self.deleted).remove(key);
        }
    }

    /// Bring the Endpoints of service `key` (`namespace/name`) in line.
    pub async fn sync(&self, key: &str) -> Result<(), Error> {
        let (ns, name) = split_key(key);
        let Some(svc) = self.caches.services.get(ns, name) else {
            return self.cleanup(key, ns, name).await;
        };
        let Some(selector) = pods::selector(&svc).filter(|_| !pods::unmanaged(&svc)) else {
            // Users manage these Endpoints, if any.
            return Ok(());
        };
        let pods = self
            .caches
            .pods
            .list(ns, |p| pods::selects(selector, p.metadata.labels.as_ref()));
        let current = self.caches.endpoints.get(ns, name);
        if let Some(cur) = &current {
            if lock(&self.replaced).get(key) == cur.metadata.resource_version.as_ref() {
                return Err(Error::Stale(key.to_string()));
            }
        }
        // Computed on every sync that may write, so the tracker stays
        // current even when nothing is written; not before the stale check,
        // whose retry would then find the changes already seen.
        let trigger = self.triggers.compute(key, &svc, &pods);
        let desired = subsets::desired(&svc, &pods);
        let Some(ep) = to_write(&svc, current.as_deref(), desired, trigger) else {
            return Ok(());
        };
        let api: Api<Endpoints> = Api::namespaced(self.client.clone(), ns);
        match &current {
            None => match api.create(&PostParams::default(), &ep).await {
                Ok(_) => {}
                Err(e) if namespace_terminating(&e) => {}
                Err(e) => return Err(Error::Kube(e)),
            },
            Some(cur) => {
                let written = api
                    .replace(name, &PostParams::default(), &ep)
                    .await
                    .map_err(Error::Kube)?;
                let old = cur.metadata.resource_version.clone();
                if written.metadata.resource_version != old {
                    if let Some(old) = old {
                        lock(&self.replaced).insert(key.to_string(), old);
                    }
                }
            }
        }
        tracing::debug!(
            service = key,
            addresses = subsets::count(ep.subsets.as_deref().unwrap_or_default()),
            "endpoints written"
        );
        Ok(())
    }

    /// The service is gone: so are its Endpoints, if it was seen deleted or
    /// they are ours (left over from a service deleted while we were down).
    async fn cleanup(&self, key: &str, ns: &str, name: &str) -> Result<(), Error> {
        self.triggers.forget(key);
        lock(&self.replaced).remove(key);
        let seen_deleted = lock(&self.deleted).contains(key);
        let ours = self
            .caches
            .endpoints
            .get(ns, name)
            .is_some_and(|e| managed(&e));
        if seen_deleted || ours {
            let api: Api<Endpoints> = Api::namespaced(self.client.clone(), ns);
            match api.delete(name, &DeleteParams::default()).await {
                Ok(_) => tracing::debug!(service = key, "endpoints deleted with their service"),
                Err(e) if not_found(&e) => {}
                Err(e) => return Err(Error::Kube(e)),
            }
        }
        lock(&self.deleted).remove(key);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{EndpointAddress, EndpointSubset};
    use serde_json::json;

    fn svc(cluster_ip: &str) -> Service {
        serde_json::from_value(json!({
            "metadata": { "name": "web", "namespace": "n", "labels": { "app": "web" } },
            "spec": { "clusterIP": cluster_ip, "selector": { "app": "web" } },
        }))
        .unwrap()
    }

    fn subset(ips: &[&str]) -> EndpointSubset {
        EndpointSubset {
            addresses: Some(
                ips.iter()
                    .map(|ip| EndpointAddress {
                        ip: ip.to_string(),
                        ..EndpointAddress::default()
                    })
                    .collect(),
            ),
            ..EndpointSubset::default()
        }
    }

    #[test]
    fn new_endpoints_carry_labels_and_trigger_time() {
        let t: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let ep = to_write(&svc("None"), None, vec![subset(&["10.0.0.1"])], Some(t)).unwrap();
        assert_eq!(ep.metadata.name.as_deref(), Some("web"));
        let l = ep.metadata.labels.as_ref().unwrap();
        assert_eq!(l.get("app").map(String::as_str), Some("web"));
        assert_eq!(l.get(HEADLESS_LABEL).map(String::as_str), Some(""));
        assert_eq!(
            l.get(ENDPOINTS_MANAGED_BY).map(String::as_str),
            Some(ENDPOINTS_CONTROLLER)
        );
        let a = ep.metadata.annotations.as_ref().unwrap();
        assert_eq!(
            a.get(TRIGGER_TIME).map(String::as_str),
            Some("2024-01-01T00:00:00Z")
        );
        assert!(!a.contains_key(OVER_CAPACITY));
    }

    #[test]
    fn unchanged_endpoints_are_not_rewritten_and_changes_keep_foreign_annotations() {
        let s = svc("10.96.0.1");
        let mut cur = to_write(&s, None, vec![subset(&["10.0.0.1"])], None).unwrap();
        assert!(!cur
            .metadata
            .labels
            .as_ref()
            .unwrap()
            .contains_key(HEADLESS_LABEL));
        cur.metadata.resource_version = Some("5".into());
        assert!(to_write(&s, Some(&cur), vec![subset(&["10.0.0.1"])], None).is_none());
        cur.metadata.annotations = Some([("keep".to_string(), "me".to_string())].into());
        let t: Timestamp = "2024-01-01T00:00:00Z".parse().unwrap();
        let next = to_write(&s, Some(&cur), vec![subset(&["10.0.0.2"])], Some(t)).unwrap();
        assert_eq!(next.metadata.resource_version.as_deref(), Some("5"));
        let a = next.metadata.annotations.as_ref().unwrap();
        assert!(a.contains_key("keep") && a.contains_key(TRIGGER_TIME));
        // A user-added label is put back to the service's.
        let mut relabelled = cur.clone();
        relabelled
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("x".into(), "y".into());
        assert!(to_write(&s, Some(&relabelled), vec![subset(&["10.0.0.1"])], None).is_some());
    }

    #[test]
    fn over_capacity_is_truncated_and_annotated_once() {
        let s = svc("10.96.0.1");
        let ips: Vec<String> = (0..1200)
            .map(|i| format!("10.0.{}.{}", i / 250, i % 250))
            .collect();
        let refs: Vec<&str> = ips.iter().map(String::as_str).collect();
        let ep = to_write(&s, None, vec![subset(&refs)], None).unwrap();
        assert_eq!(
            subsets::count(ep.subsets.as_deref().unwrap()),
            subsets::MAX_ADDRESSES
        );
        let ann = ep.metadata.annotations.clone().unwrap();
        assert_eq!(
            ann.get(OVER_CAPACITY).map(String::as_str),
            Some("truncated")
        );
        // Written once; the same pods do not rewrite it.
        assert!(to_write(&s, Some(&ep), vec![subset(&refs)], None).is_none());
        // Back under capacity: the annotation goes.
        let back = to_write(&s, Some(&ep), vec![subset(&refs[..10])], None).unwrap();
        assert!(back.metadata.annotations.is_none());
    }
}
