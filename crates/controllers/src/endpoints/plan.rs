//! Which slices to create, update and delete so a service's existing
//! EndpointSlices hold the desired endpoints with little churn (upstream's
//! reconciler): endpoints stay in the slice they are in and are updated in
//! place; slices that changed anyway are filled up first; leftovers go into
//! the unchanged slice they fill best, or new slices; a slice that would be
//! deleted is reused for one that would be created.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::{Endpoint, EndpointSlice};

use super::ports::{port_key, PortKey};
use super::slices::{endpoint_key, labels, new_slice, owned_by, same_beyond_key, Group};

/// The writes one sync makes.
#[derive(Debug, Default)]
pub struct Plan {
    /// New slices (no name yet: `generateName`).
    pub create: Vec<EndpointSlice>,
    /// Changed copies of existing slices.
    pub update: Vec<EndpointSlice>,
    /// Slices to delete.
    pub delete: Vec<Arc<EndpointSlice>>,
}

/// The plan for `svc`'s slices of one `address_type`: `existing` are its
/// current slices of that type, `desired` the endpoints by port list.
pub fn plan(
    svc: &Service,
    existing: &[Arc<EndpointSlice>],
    desired: BTreeMap<PortKey, Group>,
    address_type: &str,
    max: usize,
) -> Plan {
    let mut plan = Plan::default();
    let mut by_ports: BTreeMap<PortKey, Vec<Arc<EndpointSlice>>> = BTreeMap::new();
    for s in existing {
        if owned_by(s, svc) {
            let key = port_key(s.ports.as_deref().unwrap_or_default());
            by_ports.entry(key).or_default().push(s.clone());
        } else {
            // Left by an earlier service of the same name.
            plan.delete.push(s.clone());
        }
    }
    for (key, group) in desired {
        let current = by_ports.remove(&key).unwrap_or_default();
        plan_ports(svc, &current, group, address_type, max, &mut plan);
    }
    // Port lists no pod has any more.
    plan.delete.extend(by_ports.into_values().flatten());
    // A service with no endpoints keeps one empty slice (a placeholder).
    if existing.len() == plan.delete.len() && plan.create.is_empty() {
        let placeholder = new_slice(svc, Vec::new(), address_type);
        if plan.delete.len() == 1 && same_placeholder(&plan.delete[0], &placeholder) {
            plan.delete.clear();
        } else {
            plan.create.push(placeholder);
        }
    }
    reuse_deleted(svc, &mut plan);
    plan
}

fn same_placeholder(a: &EndpointSlice, b: &EndpointSlice) -> bool {
    let empty = |s: &EndpointSlice| {
        s.endpoints.as_ref().is_none_or(Vec::is_empty) && s.ports.as_ref().is_none_or(Vec::is_empty)
    };
    empty(a)
        && empty(b)
        && a.address_type == b.address_type
        && a.metadata.namespace == b.metadata.namespace
        && a.metadata.labels.clone().unwrap_or_default()
            == b.metadata.labels.clone().unwrap_or_default()
}

/// Where one port list's endpoints go.
fn plan_ports(
    svc: &Service,
    existing: &[Arc<EndpointSlice>],
    group: Group,
    address_type: &str,
    max: usize,
    plan: &mut Plan,
) {
    let want_labels = labels(svc);
    let mut wanted = group.endpoints;
    let mut changed: Vec<EndpointSlice> = Vec::new();
    let mut unchanged: Vec<Arc<EndpointSlice>> = Vec::new();
    // 1. Keep each existing endpoint that is still wanted, in its slice,
    //    at its desired version; drop the others.
    for s in existing {
        let mut kept: Vec<Endpoint> = Vec::new();
        let mut updated = false;
        for ep in s.endpoints.iter().flatten() {
            if let Some(want) = wanted.remove(&endpoint_key(ep)) {
                updated |= !same_beyond_key(&want, ep);
                kept.push(want);
            }
        }
        let old_len = s.endpoints.as_ref().map_or(0, Vec::len);
        let relabel = s.metadata.labels.as_ref() != Some(&want_labels);
        if updated || kept.len() != old_len {
            if kept.is_empty() {
                plan.delete.push(s.clone());
                continue;
            }
            let mut copy = (**s).clone();
            copy.endpoints = Some(kept);
            copy.metadata.labels = Some(want_labels.clone());
            changed.push(copy);
        } else if relabel {
            let mut copy = (**s).clone();
            copy.metadata.labels = Some(want_labels.clone());
            changed.push(copy);
        } else {
            unchanged.push(s.clone());
        }
    }
    // 2. Fill the slices being written anyway, fullest first.
    changed.sort_by_key(|s| std::cmp::Reverse(len(s)));
    for s in changed.iter_mut() {
        fill(s, &mut wanted, max);
    }
    // 3. The rest: into the unchanged slice they fill best, else new slices.
    while !wanted.is_empty() {
        let target = if wanted.len() < max {
            best_fit(&unchanged, wanted.len(), max)
        } else {
            None
        };
        match target {
            Some(i) => {
                let mut s = (*unchanged.remove(i)).clone();
                fill(&mut s, &mut wanted, max);
                changed.push(s);
            }
            None => {
                let mut s = new_slice(svc, group.ports.clone(), address_type);
                fill(&mut s, &mut wanted, max);
                plan.create.push(s);
            }
        }
    }
    plan.update.extend(changed);
}

fn len(s: &EndpointSlice) -> usize {
    s.endpoints.as_ref().map_or(0, Vec::len)
}

/// Move endpoints from `wanted` into `s` until it holds `max`.
fn fill(
    s: &mut EndpointSlice,
    wanted: &mut BTreeMap<super::slices::EndpointKey, Endpoint>,
    max: usize,
) {
    let eps = s.endpoints.get_or_insert_with(Vec::new);
    while eps.len() < max {
        let Some((_, ep)) = wanted.pop_first() else {
            break;
        };
        eps.push(ep);
    }
}

/// The slice that `n` more endpoints bring closest to `max` without
/// passing it.
fn best_fit(slices: &[Arc<EndpointSlice>], n: usize, max: usize) -> Option<usize> {
    slices
        .iter()
        .enumerate()
        .filter(|(_, s)| len(s) + n <= max)
        .min_by_key(|(_, s)| max - (len(s) + n))
        .map(|(i, _)| i)
}

/// Turn creations into updates of slices that would be deleted (same
/// address type, owned by this service), so a slice keeps its name.
fn reuse_deleted(svc: &Service, plan: &mut Plan) {
    let mut i = 0;
    while i < plan.delete.len() && !plan.create.is_empty() {
        let old = &plan.delete[i];
        let fits = plan
            .create
            .last()
            .is_some_and(|c| c.address_type == old.address_type);
        if fits && owned_by(old, svc) {
            let old = plan.delete.remove(i);
            let mut s = plan.create.pop().expect("checked above");
            s.metadata.generate_name = None;
            s.metadata.name = old.metadata.name.clone();
            s.metadata.resource_version = old.metadata.resource_version.clone();
            s.metadata.uid = old.metadata.uid.clone();
            plan.update.push(s);
        } else {
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoints::pods::Family;
    use crate::endpoints::slices::desired;
    use k8s_openapi::api::core::v1::{Node, Pod};
    use serde_json::json;

    fn svc() -> Service {
        serde_json::from_value(json!({
            "metadata": { "name": "web", "namespace": "n", "uid": "svc-uid", "labels": { "app": "web" } },
            "spec": { "clusterIP": "10.96.0.1", "selector": { "app": "web" }, "ports": [
                { "name": "http", "port": 80, "protocol": "TCP", "targetPort": "http" }] },
        }))
        .unwrap()
    }

    fn pod(i: usize, port: i32) -> Arc<Pod> {
        Arc::new(
            serde_json::from_value(json!({
                "metadata": { "name": format!("p{i:04}"), "namespace": "n", "uid": format!("u{i}") },
                "spec": { "nodeName": "node-1", "containers": [{ "name": "c", "ports": [{ "name": "http", "containerPort": port }] }] },
                "status": { "phase": "Running", "podIP": format!("10.1.{}.{}", i / 250, i % 250),
                            "conditions": [{ "type": "Ready", "status": "True" }] },
            }))
            .unwrap(),
        )
    }

    fn node() -> Option<Arc<Node>> {
        Some(Arc::new(
            serde_json::from_value(json!({ "metadata": { "name": "node-1" } })).unwrap(),
        ))
    }

    fn groups(pods: &[Arc<Pod>]) -> BTreeMap<PortKey, Group> {
        desired(&svc(), pods, Family::V4, |_| node()).0
    }

    /// Pretend the plan was written: name new slices, give back all slices.
    fn apply(
        existing: &[Arc<EndpointSlice>],
        p: Plan,
        next: &mut usize,
    ) -> Vec<Arc<EndpointSlice>> {
        let mut out: BTreeMap<String, Arc<EndpointSlice>> = existing
            .iter()
            .map(|s| (s.metadata.name.clone().unwrap(), s.clone()))
            .collect();
        for d in p.delete {
            out.remove(d.metadata.name.as_ref().unwrap());
        }
        for u in p.update {
            out.insert(u.metadata.name.clone().unwrap(), Arc::new(u));
        }
        for mut c in p.create {
            *next += 1;
            c.metadata.name = Some(format!("web-{next}"));
            out.insert(c.metadata.name.clone().unwrap(), Arc::new(c));
        }
        out.into_values().collect()
    }

    fn sizes(slices: &[Arc<EndpointSlice>]) -> Vec<usize> {
        let mut v: Vec<usize> = slices.iter().map(|s| len(s)).collect();
        v.sort();
        v
    }

    #[test]
    fn endpoints_are_packed_into_slices_of_at_most_max() {
        let pods: Vec<_> = (0..250).map(|i| pod(i, 8080)).collect();
        let p = plan(&svc(), &[], groups(&pods), "IPv4", 100);
        assert!(p.update.is_empty() && p.delete.is_empty());
        let mut n = 0;
        let slices = apply(&[], p, &mut n);
        assert_eq!(sizes(&slices), vec![50, 100, 100]);
        // The same pods again: nothing to do.
        let again = plan(&svc(), &slices, groups(&pods), "IPv4", 100);
        assert!(again.create.is_empty() && again.update.is_empty() && again.delete.is_empty());
    }

    #[test]
    fn changes_touch_only_the_slices_concerned() {
        let pods: Vec<_> = (0..250).map(|i| pod(i, 8080)).collect();
        let mut n = 0;
        let slices = apply(&[], plan(&svc(), &[], groups(&pods), "IPv4", 100), &mut n);
        // One pod gone and one new: the slice that lost one takes the new one.
        let mut next: Vec<_> = pods.iter().skip(1).cloned().collect();
        next.push(pod(900, 8080));
        let p = plan(&svc(), &slices, groups(&next), "IPv4", 100);
        assert!(p.create.is_empty() && p.delete.is_empty());
        assert_eq!(p.update.len(), 1);
        let slices = apply(&slices, p, &mut n);
        assert_eq!(sizes(&slices), vec![50, 100, 100]);
        // Five new pods fit the half-full slice.
        let more: Vec<_> = next
            .iter()
            .cloned()
            .chain((1000..1005).map(|i| pod(i, 8080)))
            .collect();
        let p = plan(&svc(), &slices, groups(&more), "IPv4", 100);
        assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (0, 1, 0));
        assert_eq!(len(&p.update[0]), 55);
    }

    #[test]
    fn a_changed_port_reuses_the_slice_and_no_pods_leave_a_placeholder() {
        let pods: Vec<_> = (0..3).map(|i| pod(i, 8080)).collect();
        let mut n = 0;
        let slices = apply(&[], plan(&svc(), &[], groups(&pods), "IPv4", 100), &mut n);
        let name = slices[0].metadata.name.clone();
        // All pods now serve on 9090: new port list, same slice name.
        let moved: Vec<_> = (0..3).map(|i| pod(i, 9090)).collect();
        let p = plan(&svc(), &slices, groups(&moved), "IPv4", 100);
        assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (0, 1, 0));
        assert_eq!(p.update[0].metadata.name, name);
        assert_eq!(p.update[0].ports.as_ref().unwrap()[0].port, Some(9090));
        let slices = apply(&slices, p, &mut n);
        // No pods: the slice stays as an empty placeholder, once.
        let p = plan(&svc(), &slices, BTreeMap::new(), "IPv4", 100);
        assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (0, 1, 0));
        let s = &p.update[0];
        assert!(s.endpoints.as_ref().unwrap().is_empty() && s.ports.as_ref().unwrap().is_empty());
        let slices = apply(&slices, p, &mut n);
        let p = plan(&svc(), &slices, BTreeMap::new(), "IPv4", 100);
        assert!(p.create.is_empty() && p.update.is_empty() && p.delete.is_empty());
    }

    #[test]
    fn slices_of_another_service_uid_are_replaced() {
        let pods: Vec<_> = (0..2).map(|i| pod(i, 8080)).collect();
        let mut n = 0;
        let slices = apply(&[], plan(&svc(), &[], groups(&pods), "IPv4", 100), &mut n);
        let mut other = svc();
        other.metadata.uid = Some("new-uid".into());
        let p = plan(
            &other,
            &slices,
            desired(&other, &pods, Family::V4, |_| node()).0,
            "IPv4",
            100,
        );
        // Not ours to reuse: deleted, and a new one created.
        assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (1, 0, 1));
    }

    #[test]
    fn condition_and_label_changes_update_in_place() {
        let pods: Vec<_> = (0..2).map(|i| pod(i, 8080)).collect();
        let mut n = 0;
        let slices = apply(&[], plan(&svc(), &[], groups(&pods), "IPv4", 100), &mut n);
        let mut unready: Pod = (*pods[0]).clone();
        unready
            .status
            .as_mut()
            .unwrap()
            .conditions
            .as_mut()
            .unwrap()[0]
            .status = "False".into();
        let p = plan(
            &svc(),
            &slices,
            groups(&[Arc::new(unready), pods[1].clone()]),
            "IPv4",
            100,
        );
        assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (0, 1, 0));
        let c = p.update[0].endpoints.as_ref().unwrap()[0]
            .conditions
            .clone()
            .unwrap();
        assert_eq!(c.ready, Some(false));
        let mut relabelled = svc();
        relabelled
            .metadata
            .labels
            .as_mut()
            .unwrap()
            .insert("tier".into(), "x".into());
        let p = plan(&relabelled, &slices, groups(&pods), "IPv4", 100);
        assert_eq!(p.update.len(), 1);
        assert_eq!(
            p.update[0]
                .metadata
                .labels
                .as_ref()
                .unwrap()
                .get("tier")
                .map(String::as_str),
            Some("x")
        );
    }
}
