//! PersistentVolumes and PersistentVolumeClaims (and the claim spec that
//! StatefulSet templates and ephemeral volumes embed).

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use serde_json::{json, Value};

use super::container::resource_list;
use super::meta::validate_label_selector;
use super::names::*;
use super::quantity::canonicalize_list;
use super::util::*;
use super::{unknown, Decoded, Strategy};
use crate::error::FieldError;

const ACCESS_MODES: &[&str] = &[
    "ReadOnlyMany",
    "ReadWriteMany",
    "ReadWriteOnce",
    "ReadWriteOncePod",
];
const VOLUME_MODES: &[&str] = &["Block", "Filesystem"];
const PV_SOURCES: &[&str] = &[
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "csi",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "glusterfs",
    "hostPath",
    "iscsi",
    "local",
    "nfs",
    "photonPersistentDisk",
    "portworxVolume",
    "quobyte",
    "rbd",
    "scaleIO",
    "storageos",
    "vsphereVolume",
];

fn access_modes(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let mut rwop = false;
    let mut other = false;
    for m in strs(spec, "accessModes") {
        if !ACCESS_MODES.contains(&m) {
            errs.push(FieldError::not_supported(
                child(path, "accessModes"),
                m,
                ACCESS_MODES,
            ));
        } else if m == "ReadWriteOncePod" {
            rwop = true;
        } else {
            other = true;
        }
    }
    if rwop && other {
        errs.push(FieldError::forbidden(
            child(path, "accessModes"),
            "may not use ReadWriteOncePod with other access modes",
        ));
    }
}

/// Upstream's `ValidatePersistentVolumeClaimSpec`.
pub fn validate_pvc_spec(spec: &Value, path: &str) -> Vec<FieldError> {
    let mut errs = Vec::new();
    if arr(spec, "accessModes").is_empty() {
        errs.push(FieldError::required(
            child(path, "accessModes"),
            "at least 1 access mode is required",
        ));
    }
    if let Some(sel) = get(spec, "selector") {
        errs.extend(validate_label_selector(sel, &child(path, "selector")));
    }
    access_modes(spec, path, &mut errs);
    let storage_path = key(&child(path, "resources"), "storage");
    let requests = spec.get("resources").and_then(|r| r.get("requests"));
    let mut scratch = Vec::new();
    let parsed = resource_list(
        requests,
        &child(&child(path, "resources"), "requests"),
        false,
        &mut scratch,
    );
    match parsed.iter().find(|(n, _)| *n == "storage") {
        None if requests.and_then(|r| r.get("storage")).is_some() => errs.extend(scratch),
        None => errs.push(FieldError::required(&storage_path, "")),
        Some((_, q)) if q.nanos <= 0 => errs.push(FieldError::invalid(
            &storage_path,
            q.canonical(),
            "must be greater than zero",
        )),
        Some(_) => {}
    }
    if let Some(sc) = opt_s(spec, "storageClassName").filter(|s| !s.is_empty()) {
        errs.extend(invalid_each(
            &child(path, "storageClassName"),
            sc,
            name_is_dns_subdomain(sc, false),
        ));
    }
    if let Some(vm) = opt_s(spec, "volumeMode") {
        if !VOLUME_MODES.contains(&vm) {
            errs.push(FieldError::not_supported(
                child(path, "volumeMode"),
                vm,
                VOLUME_MODES,
            ));
        }
    }
    errs
}

/// `SetDefaults_PersistentVolumeClaimSpec`.
pub fn default_pvc_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    set_default(spec, "volumeMode", json!("Filesystem"));
    if let Some(r) = spec.get_mut("resources") {
        canonicalize_list(r.get_mut("requests"));
        canonicalize_list(r.get_mut("limits"));
    }
}

/// Defaults of a whole claim (template): spec, and `status.phase: Pending`.
pub fn default_pvc(pvc: &mut Value) {
    if let Some(spec) = obj_mut(pvc, "spec") {
        default_pvc_spec(spec);
    }
    if let Some(st) = obj_mut(pvc, "status") {
        set_default_str(st, "phase", "Pending");
    }
}

/// PersistentVolumes (cluster-scoped).
pub struct PersistentVolumeStrategy;

impl Strategy for PersistentVolumeStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<PersistentVolume>(obj)
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        let now = obj
            .pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(now_rfc3339);
        put(
            obj,
            "status",
            json!({ "phase": "Pending", "lastPhaseTransitionTime": now }),
        );
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_from_old(new, old, "status");
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        keep_all_but_status(new, old);
        let phase = |v: &Value| v.pointer("/status/phase").cloned();
        let stamp = |v: &Value| v.pointer("/status/lastPhaseTransitionTime").cloned();
        if phase(new) != phase(old) && (stamp(new).is_none() || stamp(new) == stamp(old)) {
            if let Some(st) = obj_mut(new, "status") {
                st["lastPhaseTransitionTime"] = json!(now_rfc3339());
            }
        }
    }

    fn default(&self, obj: &mut Value) {
        if let Some(spec) = obj_mut(obj, "spec") {
            set_default_str(spec, "persistentVolumeReclaimPolicy", "Retain");
            set_default(spec, "volumeMode", json!("Filesystem"));
            canonicalize_list(spec.get_mut("capacity"));
            if let Some(h) = spec.get_mut("hostPath").filter(|h| h.is_object()) {
                set_default(h, "type", json!(""));
            }
        }
        if let Some(st) = obj_mut(obj, "status") {
            set_default_str(st, "phase", "Pending");
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let mut errs = Vec::new();
        if arr(spec, "accessModes").is_empty() {
            errs.push(FieldError::required("spec.accessModes", ""));
        }
        access_modes(spec, "spec", &mut errs);
        let capacity = spec.get("capacity").and_then(Value::as_object);
        if capacity.is_none_or(|c| c.is_empty()) {
            errs.push(FieldError::required("spec.capacity", ""));
        }
        if capacity.is_none_or(|c| !c.contains_key("storage") || c.len() > 1) {
            errs.push(FieldError::not_supported(
                "spec.capacity",
                spec.get("capacity").cloned().unwrap_or(Value::Null),
                &["storage"],
            ));
        }
        for (name, q) in resource_list(spec.get("capacity"), "spec.capacity", false, &mut errs) {
            if q.nanos <= 0 {
                errs.push(FieldError::invalid(
                    key("spec.capacity", name),
                    q.canonical(),
                    "must be greater than zero",
                ));
            }
        }
        if let Some(p) = opt_s(spec, "persistentVolumeReclaimPolicy").filter(|p| !p.is_empty()) {
            errs.extend(one_of(
                "spec.persistentVolumeReclaimPolicy",
                p,
                &["Delete", "Recycle", "Retain"],
                false,
            ));
        }
        let sources: Vec<&str> = PV_SOURCES
            .iter()
            .copied()
            .filter(|k| get(spec, k).is_some())
            .collect();
        match sources.as_slice() {
            [] => errs.push(FieldError::required("spec", "must specify a volume type")),
            [_] => {}
            [_, second, ..] => errs.push(FieldError::forbidden(
                child("spec", second),
                "may not specify more than 1 volume type",
            )),
        }
        if let Some(h) = get(spec, "hostPath") {
            if s(h, "path").is_empty() {
                errs.push(FieldError::required("spec.hostPath.path", ""));
            }
        }
        if let Some(l) = get(spec, "local") {
            if s(l, "path").is_empty() {
                errs.push(FieldError::required("spec.local.path", ""));
            }
            if get(spec, "nodeAffinity").is_none() {
                errs.push(FieldError::required(
                    "spec.nodeAffinity",
                    "Local volume requires node affinity",
                ));
            }
        }
        if let Some(n) = get(spec, "nfs") {
            if s(n, "server").is_empty() {
                errs.push(FieldError::required("spec.nfs.server", ""));
            }
            if !s(n, "path").starts_with('/') {
                errs.push(FieldError::invalid(
                    "spec.nfs.path",
                    s(n, "path"),
                    "must be an absolute path",
                ));
            }
        }
        if let Some(c) = get(spec, "csi") {
            for k in ["driver", "volumeHandle"] {
                if s(c, k).is_empty() {
                    errs.push(FieldError::required(child("spec.csi", k), ""));
                }
            }
        }
        if let Some(vm) = opt_s(spec, "volumeMode") {
            if !VOLUME_MODES.contains(&vm) {
                errs.push(FieldError::not_supported(
                    "spec.volumeMode",
                    vm,
                    VOLUME_MODES,
                ));
            }
        }
        if let Some(sc) = opt_s(spec, "storageClassName").filter(|s| !s.is_empty()) {
            errs.extend(invalid_each(
                "spec.storageClassName",
                sc,
                name_is_dns_subdomain(sc, false),
            ));
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        let (ns, os) = (
            new.get("spec").unwrap_or(&Value::Null),
            old.get("spec").unwrap_or(&Value::Null),
        );
        if PV_SOURCES.iter().any(|k| !same(ns.get(*k), os.get(*k))) {
            errs.push(FieldError::forbidden(
                "spec.persistentvolumesource",
                "spec.persistentvolumesource is immutable after creation",
            ));
        }
        errs.extend(immutable(ns, os, "volumeMode", "volumeMode"));
        if get(os, "nodeAffinity").is_some() {
            errs.extend(immutable(ns, os, "nodeAffinity", "nodeAffinity"));
        }
        errs
    }

    fn selectable_fields(&self, obj: &Value) -> Vec<(&'static str, String)> {
        vec![(
            "name",
            obj.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        )]
    }
}

/// PersistentVolumeClaims.
pub struct PersistentVolumeClaimStrategy;

impl Strategy for PersistentVolumeClaimStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<PersistentVolumeClaim>(obj)
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        put(obj, "status", json!({}));
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_from_old(new, old, "status");
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        keep_all_but_status(new, old);
    }

    fn default(&self, obj: &mut Value) {
        default_pvc(obj);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let errs = validate_pvc_spec(obj.get("spec").unwrap_or(&Value::Null), "spec");
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        let mut ns = new.get("spec").cloned().unwrap_or(Value::Null);
        let os = old.get("spec").cloned().unwrap_or(Value::Null);
        // The binder sets volumeName once; requests may change (expansion);
        // so may the volume attributes class.
        if s(&os, "volumeName").is_empty() {
            keep_from_old(&mut ns, &os, "volumeName");
        }
        keep_from_old(&mut ns, &os, "volumeAttributesClassName");
        if let (Some(nr), Some(or)) = (ns.get_mut("resources"), os.get("resources")) {
            keep_from_old(nr, or, "requests");
        }
        if !same(Some(&ns), Some(&os)) {
            errs.push(FieldError::forbidden("spec", "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims"));
        }
        let storage = |v: &Value| {
            v.pointer("/spec/resources/requests/storage")
                .and_then(|q| super::quantity::parse_value(q)?.ok())
        };
        if let (Some(n), Some(o)) = (storage(new), storage(old)) {
            let capacity = old
                .pointer("/status/capacity/storage")
                .and_then(|q| super::quantity::parse_value(q)?.ok());
            if n < o && capacity.is_none_or(|c| n < c) {
                errs.push(FieldError::forbidden(
                    "spec.resources.requests.storage",
                    "field can not be less than status.capacity",
                ));
            }
        }
        errs
    }

    fn selectable_fields(&self, obj: &Value) -> Vec<(&'static str, String)> {
        vec![(
            "name",
            obj.pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldErrorType;

    fn pvc() -> Value {
        json!({ "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": { "name": "data", "namespace": "default" },
                "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } } } })
    }

    #[test]
    fn claim_defaults_and_validation() {
        let s = PersistentVolumeClaimStrategy;
        let mut c = pvc();
        s.prepare_for_create(&mut c);
        s.default(&mut c);
        assert_eq!(c["spec"]["volumeMode"], "Filesystem");
        assert_eq!(c["status"], json!({ "phase": "Pending" }));
        assert!(s.validate(&c).is_empty(), "{:?}", s.validate(&c));
        let bad = json!({ "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": { "name": "d" }, "spec": { "accessModes": ["ReadWriteSometimes"] } });
        let kinds: Vec<_> = s
            .validate(&bad)
            .into_iter()
            .map(|e| (e.field, e.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("spec.accessModes".to_string(), FieldErrorType::NotSupported),
                (
                    "spec.resources[storage]".to_string(),
                    FieldErrorType::Required
                )
            ]
        );
    }

    #[test]
    fn claim_spec_is_immutable_but_may_grow() {
        let s = PersistentVolumeClaimStrategy;
        let mut old = pvc();
        s.default(&mut old);
        let mut grow = old.clone();
        grow["spec"]["resources"]["requests"]["storage"] = json!("2Gi");
        assert!(s.validate_update(&grow, &old).is_empty());
        let mut change = old.clone();
        change["spec"]["accessModes"] = json!(["ReadWriteMany"]);
        assert_eq!(s.validate_update(&change, &old)[0].field, "spec");
    }

    #[test]
    fn volumes_need_capacity_and_one_source() {
        let s = PersistentVolumeStrategy;
        let mut pv = json!({ "apiVersion": "v1", "kind": "PersistentVolume", "metadata": { "name": "pv1" },
            "spec": { "accessModes": ["ReadWriteOnce"], "capacity": { "storage": "10Gi" }, "hostPath": { "path": "/data" } } });
        s.prepare_for_create(&mut pv);
        s.default(&mut pv);
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Retain");
        assert_eq!(pv["status"]["phase"], "Pending");
        assert!(s.validate(&pv).is_empty(), "{:?}", s.validate(&pv));
        pv["spec"].as_object_mut().unwrap().remove("hostPath");
        pv["spec"].as_object_mut().unwrap().remove("capacity");
        let fields: Vec<_> = s.validate(&pv).into_iter().map(|e| e.field).collect();
        assert_eq!(fields, vec!["spec.capacity", "spec.capacity", "spec"]);
    }
}
