//! Pod volumes (upstream's `ValidateVolumes`): unique DNS-label names and
//! exactly one source each, with each source's own required fields.

use std::collections::HashSet;

use serde_json::Value;

use super::names::*;
use super::podspec::{local_descending_path, validate_field_ref, validate_resource_field_ref};
use super::storage::validate_pvc_spec;
use super::util::*;
use crate::error::FieldError;

/// Every volume source a `Volume` (and, for most, a PV) may carry.
/// In upstream's checking order, which decides which source a second one is reported as.
pub const VOLUME_SOURCES: &[&str] = &[
    "emptyDir",
    "hostPath",
    "gitRepo",
    "gcePersistentDisk",
    "awsElasticBlockStore",
    "secret",
    "nfs",
    "iscsi",
    "glusterfs",
    "flocker",
    "persistentVolumeClaim",
    "rbd",
    "cinder",
    "cephfs",
    "quobyte",
    "downwardAPI",
    "fc",
    "flexVolume",
    "configMap",
    "azureFile",
    "vsphereVolume",
    "photonPersistentDisk",
    "portworxVolume",
    "azureDisk",
    "storageos",
    "projected",
    "scaleIO",
    "csi",
    "ephemeral",
    "image",
];

const FILE_MODE_MSG: &str = "must be a number between 0 and 0777 (octal), both inclusive";
const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];

/// The volumes that validated, which mounts and devices may refer to.
#[derive(Default)]
pub struct Volumes {
    /// Names of valid volumes.
    pub names: HashSet<String>,
    /// Names of valid volumes backed by a claim (usable as block devices).
    pub claims: HashSet<String>,
}

/// Upstream's `ValidateVolumes`.
pub fn validate_volumes(spec: &Value, path: &str, errs: &mut Vec<FieldError>) -> Volumes {
    let mut out = Volumes::default();
    for (i, v) in arr(spec, "volumes").iter().enumerate() {
        let p = index(path, i);
        let mut el = Vec::new();
        validate_volume_source(v, &p, &mut el);
        let name = s(v, "name");
        if name.is_empty() {
            el.push(FieldError::required(child(&p, "name"), ""));
        } else {
            el.extend(invalid_each(
                &child(&p, "name"),
                name,
                is_dns1123_label(name),
            ));
        }
        if out.names.contains(name) {
            el.push(FieldError::duplicate(child(&p, "name"), name));
        }
        if el.is_empty() {
            out.names.insert(name.to_string());
            if get(v, "persistentVolumeClaim").is_some() || get(v, "ephemeral").is_some() {
                out.claims.insert(name.to_string());
            }
        } else {
            errs.extend(el);
        }
    }
    out
}

fn file_mode(v: &Value, k: &str, path: &str, errs: &mut Vec<FieldError>) {
    if let Some(m) = int(v, k) {
        if !(0..=0o777).contains(&m) {
            errs.push(FieldError::invalid(child(path, k), m, FILE_MODE_MSG));
        }
    }
}

fn key_to_paths(items: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    for (i, kp) in items.iter().enumerate() {
        let p = index(path, i);
        if s(kp, "key").is_empty() {
            errs.push(FieldError::required(child(&p, "key"), ""));
        }
        let target = s(kp, "path");
        if target.is_empty() {
            errs.push(FieldError::required(child(&p, "path"), ""));
        }
        local_non_reserved_path(target, &child(&p, "path"), errs);
        file_mode(kp, "mode", &p, errs);
    }
}

fn local_non_reserved_path(target: &str, path: &str, errs: &mut Vec<FieldError>) {
    local_descending_path(target, path, errs);
    if target.starts_with("..") {
        errs.push(FieldError::invalid(
            path,
            target,
            "must not start with '..'",
        ));
    }
}

fn required_str(v: &Value, k: &str, path: &str, errs: &mut Vec<FieldError>) {
    if s(v, k).is_empty() {
        errs.push(FieldError::required(child(path, k), ""));
    }
}

fn validate_volume_source(v: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let mut n = 0;
    for k in VOLUME_SOURCES {
        let Some(src) = get(v, k) else { continue };
        let p = child(path, k);
        if n > 0 {
            errs.push(FieldError::forbidden(
                &p,
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        n += 1;
        match *k {
            "hostPath" => {
                required_str(src, "path", &p, errs);
                if s(src, "path").split('/').any(|x| x == "..") {
                    errs.push(FieldError::invalid(
                        child(&p, "path"),
                        s(src, "path"),
                        "must not contain '..'",
                    ));
                }
                if let Some(t) = opt_s(src, "type") {
                    let ok = [
                        "",
                        "DirectoryOrCreate",
                        "Directory",
                        "FileOrCreate",
                        "File",
                        "Socket",
                        "CharDevice",
                        "BlockDevice",
                    ];
                    if !ok.contains(&t) {
                        errs.push(FieldError::not_supported(child(&p, "type"), t, &ok));
                    }
                }
            }
            "secret" => {
                required_str(src, "secretName", &p, errs);
                file_mode(src, "defaultMode", &p, errs);
                key_to_paths(arr(src, "items"), &child(&p, "items"), errs);
            }
            "configMap" => {
                required_str(src, "name", &p, errs);
                file_mode(src, "defaultMode", &p, errs);
                key_to_paths(arr(src, "items"), &child(&p, "items"), errs);
            }
            "persistentVolumeClaim" => required_str(src, "claimName", &p, errs),
            "nfs" => {
                required_str(src, "server", &p, errs);
                let np = s(src, "path");
                if np.is_empty() {
                    errs.push(FieldError::required(child(&p, "path"), ""));
                } else if !np.starts_with('/') {
                    errs.push(FieldError::invalid(
                        child(&p, "path"),
                        np,
                        "must be an absolute path",
                    ));
                }
            }
            "csi" => required_str(src, "driver", &p, errs),
            "gitRepo" => {
                required_str(src, "repository", &p, errs);
                local_descending_path(s(src, "directory"), &child(&p, "directory"), errs);
            }
            "downwardAPI" => {
                file_mode(src, "defaultMode", &p, errs);
                downward_items(arr(src, "items"), &child(&p, "items"), errs);
            }
            "projected" => {
                file_mode(src, "defaultMode", &p, errs);
                projected_sources(arr(src, "sources"), &child(&p, "sources"), errs);
            }
            "ephemeral" => match get(src, "volumeClaimTemplate") {
                None => errs.push(FieldError::required(child(&p, "volumeClaimTemplate"), "")),
                Some(t) => errs.extend(validate_pvc_spec(
                    t.get("spec").unwrap_or(&Value::Null),
                    &child(&child(&p, "volumeClaimTemplate"), "spec"),
                )),
            },
            "image" => {
                required_str(src, "reference", &p, errs);
                if let Some(pp) = opt_s(src, "pullPolicy") {
                    errs.extend(one_of(
                        &child(&p, "pullPolicy"),
                        pp,
                        &["Always", "IfNotPresent", "Never"],
                        false,
                    ));
                }
            }
            "iscsi" => {
                required_str(src, "targetPortal", &p, errs);
                required_str(src, "iqn", &p, errs);
            }
            "rbd" => required_str(src, "image", &p, errs),
            "cephfs" if arr(src, "monitors").is_empty() => {
                errs.push(FieldError::required(child(&p, "monitors"), ""))
            }
            "glusterfs" => {
                required_str(src, "endpoints", &p, errs);
                required_str(src, "path", &p, errs);
            }
            "flexVolume" => required_str(src, "driver", &p, errs),
            "azureFile" => {
                required_str(src, "secretName", &p, errs);
                required_str(src, "shareName", &p, errs);
            }
            "azureDisk" => {
                required_str(src, "diskName", &p, errs);
                required_str(src, "diskURI", &p, errs);
            }
            "gcePersistentDisk" => required_str(src, "pdName", &p, errs),
            "awsElasticBlockStore" | "cinder" => required_str(src, "volumeID", &p, errs),
            "vsphereVolume" => required_str(src, "volumePath", &p, errs),
            _ => {}
        }
    }
    if n == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
}

fn downward_items(items: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    for (i, it) in items.iter().enumerate() {
        let p = index(path, i);
        let target = s(it, "path");
        if target.is_empty() {
            errs.push(FieldError::required(child(&p, "path"), ""));
        }
        local_non_reserved_path(target, &child(&p, "path"), errs);
        file_mode(it, "mode", &p, errs);
        match (get(it, "fieldRef"), get(it, "resourceFieldRef")) {
            (Some(f), None) => {
                validate_field_ref(f, VOLUME_FIELD_PATHS, &child(&p, "fieldRef"), errs)
            }
            (None, Some(r)) => validate_resource_field_ref(r, &child(&p, "resourceFieldRef"), errs),
            (Some(_), Some(_)) => errs.push(FieldError::invalid(
                &p,
                "resource",
                "fieldRef and resourceFieldRef can not be specified simultaneously",
            )),
            (None, None) => {}
        }
    }
}

fn projected_sources(sources: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    for (i, src) in sources.iter().enumerate() {
        let p = index(path, i);
        let kinds = [
            "secret",
            "configMap",
            "downwardAPI",
            "serviceAccountToken",
            "clusterTrustBundle",
            "podCertificate",
        ];
        let present: Vec<&str> = kinds
            .iter()
            .copied()
            .filter(|k| get(src, k).is_some())
            .collect();
        if present.len() > 1 {
            errs.push(FieldError::forbidden(
                child(&p, present[1]),
                "may not specify more than 1 volume type per source",
            ));
        }
        if present.is_empty() {
            errs.push(FieldError::required(
                &p,
                "must specify exactly one volume type",
            ));
        }
        if let Some(x) = get(src, "secret").or_else(|| get(src, "configMap")) {
            let k = if get(src, "secret").is_some() {
                "secret"
            } else {
                "configMap"
            };
            key_to_paths(arr(x, "items"), &child(&child(&p, k), "items"), errs);
        }
        if let Some(d) = get(src, "downwardAPI") {
            downward_items(
                arr(d, "items"),
                &child(&child(&p, "downwardAPI"), "items"),
                errs,
            );
        }
        if let Some(t) = get(src, "serviceAccountToken") {
            let tp = child(&p, "serviceAccountToken");
            if let Some(e) = int(t, "expirationSeconds") {
                if e < 600 {
                    errs.push(FieldError::invalid(
                        child(&tp, "expirationSeconds"),
                        e,
                        "may not specify a duration less than 10 minutes",
                    ));
                } else if e > (1 << 32) {
                    errs.push(FieldError::invalid(
                        child(&tp, "expirationSeconds"),
                        e,
                        "may not specify a duration larger than 2^32 seconds",
                    ));
                }
            }
            if s(t, "path").is_empty() {
                errs.push(FieldError::required(child(&tp, "path"), ""));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldErrorType;
    use serde_json::json;

    fn kinds(errs: Vec<FieldError>) -> Vec<(String, FieldErrorType)> {
        errs.into_iter().map(|e| (e.field, e.kind)).collect()
    }

    #[test]
    fn volumes_need_unique_names_and_one_source() {
        let spec = json!({ "volumes": [
            { "name": "a", "emptyDir": {} },
            { "name": "a", "emptyDir": {} },
            { "name": "b", "emptyDir": {}, "hostPath": { "path": "/x" } },
            { "name": "c" },
            { "name": "d", "secret": {} },
            { "name": "e", "configMap": { "name": "x", "defaultMode": 1000 } }
        ]});
        let mut errs = Vec::new();
        let vols = validate_volumes(&spec, "spec.volumes", &mut errs);
        assert_eq!(
            kinds(errs),
            vec![
                ("spec.volumes[1].name".into(), FieldErrorType::Duplicate),
                ("spec.volumes[2].hostPath".into(), FieldErrorType::Forbidden),
                ("spec.volumes[3]".into(), FieldErrorType::Required),
                (
                    "spec.volumes[4].secret.secretName".into(),
                    FieldErrorType::Required
                ),
                (
                    "spec.volumes[5].configMap.defaultMode".into(),
                    FieldErrorType::Invalid
                ),
            ]
        );
        assert!(vols.names.contains("a") && !vols.names.contains("b"));
    }
}
