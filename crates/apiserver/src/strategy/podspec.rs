//! Upstream's `ValidatePodSpec` for pods and for the pod templates inside
//! workloads: containers, ports, env and mounts. Resources and probes are in
//! [`super::container`], volumes in [`super::volumes`], and the pod-level
//! scheduling and security fields in [`super::podextra`].

use std::collections::{BTreeSet, HashSet};

use serde_json::Value;

use super::container::{validate_lifecycle, validate_probes, validate_resources};
use super::meta::validate_labels;
use super::names::*;
use super::podextra;
use super::util::*;
use super::volumes::{self, Volumes};
use crate::error::FieldError;

/// Port protocols, sorted as upstream lists them.
pub const PROTOCOLS: &[&str] = &["SCTP", "TCP", "UDP"];

/// Validate a pod spec at `path` (`spec` for pods, `spec.template.spec` for
/// workloads). `is_pod` enables the checks upstream only applies to pods.
pub fn validate_pod_spec(spec: &Value, path: &str, is_pod: bool) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let vols = volumes::validate_volumes(spec, &child(path, "volumes"), &mut errs);
    let containers = arr(spec, "containers");
    validate_containers(containers, &vols, &child(path, "containers"), &mut errs);
    validate_init_containers(
        arr(spec, "initContainers"),
        containers,
        &vols,
        &child(path, "initContainers"),
        &mut errs,
    );
    host_network_ports(spec, path, is_pod, &mut errs);
    errs.extend(one_of(
        &child(path, "restartPolicy"),
        s(spec, "restartPolicy"),
        &["Always", "OnFailure", "Never"],
        true,
    ));
    errs.extend(one_of(
        &child(path, "dnsPolicy"),
        s(spec, "dnsPolicy"),
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        true,
    ));
    errs.extend(validate_labels(
        spec.get("nodeSelector"),
        &child(path, "nodeSelector"),
    ));
    podextra::validate_pod_extras(spec, path, &mut errs);
    for (k, rule) in [
        (
            "serviceAccountName",
            name_is_dns_subdomain as fn(&str, bool) -> Vec<String>,
        ),
        ("nodeName", name_is_dns_subdomain),
    ] {
        let v = s(spec, k);
        if !v.is_empty() {
            errs.extend(invalid_each(&child(path, k), v, rule(v, false)));
        }
    }
    if let Some(v) = int(spec, "activeDeadlineSeconds") {
        if !(1..=i64::from(i32::MAX)).contains(&v) {
            errs.push(FieldError::invalid(
                child(path, "activeDeadlineSeconds"),
                v,
                inclusive_range_error(1, i64::from(i32::MAX)),
            ));
        }
    }
    for k in ["hostname", "subdomain"] {
        let v = s(spec, k);
        if !v.is_empty() {
            errs.extend(invalid_each(&child(path, k), v, is_dns1123_label(v)));
        }
    }
    let pc = s(spec, "priorityClassName");
    if !pc.is_empty() {
        errs.extend(invalid_each(
            &child(path, "priorityClassName"),
            pc,
            name_is_dns_subdomain(pc, false),
        ));
    }
    if let Some(p) = opt_s(spec, "preemptionPolicy") {
        errs.extend(one_of(
            &child(path, "preemptionPolicy"),
            p,
            &["PreemptLowerPriority", "Never"],
            true,
        ));
    }
    if let Some(rc) = opt_s(spec, "runtimeClassName") {
        errs.extend(invalid_each(
            &child(path, "runtimeClassName"),
            rc,
            name_is_dns_subdomain(rc, false),
        ));
    }
    errs
}

fn validate_containers(
    containers: &[Value],
    vols: &Volumes,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    if containers.is_empty() {
        errs.push(FieldError::required(path, ""));
        return;
    }
    let mut names = HashSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = index(path, i);
        container_common(c, vols, &p, errs);
        let name = s(c, "name");
        if !names.insert(name) {
            errs.push(FieldError::duplicate(child(&p, "name"), name));
        }
        validate_probes(c, &p, errs);
        validate_lifecycle(c.get("lifecycle"), &child(&p, "lifecycle"), errs);
    }
    unique_host_ports(containers, path, errs);
}

fn validate_init_containers(
    init: &[Value],
    regular: &[Value],
    vols: &Volumes,
    path: &str,
    errs: &mut Vec<FieldError>,
) {
    let mut names: HashSet<&str> = regular.iter().map(|c| s(c, "name")).collect();
    for (i, c) in init.iter().enumerate() {
        let p = index(path, i);
        container_common(c, vols, &p, errs);
        let restart = opt_s(c, "restartPolicy");
        if let Some(r) = restart {
            if r != "Always" {
                errs.push(FieldError::not_supported(
                    child(&p, "restartPolicy"),
                    r,
                    &["Always"],
                ));
            }
        }
        let name = s(c, "name");
        if names.contains(name) {
            errs.push(FieldError::duplicate(child(&p, "name"), name));
        } else if !name.is_empty() {
            names.insert(name);
        }
        if restart == Some("Always") {
            // Sidecars behave like regular containers.
            validate_probes(c, &p, errs);
            validate_lifecycle(c.get("lifecycle"), &child(&p, "lifecycle"), errs);
        } else {
            for k in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if get(c, k).is_some() {
                    errs.push(FieldError::forbidden(
                        child(&p, k),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
    unique_host_ports(init, path, errs);
}

/// The checks every kind of container shares (upstream `validateContainerCommon`).
fn container_common(c: &Value, vols: &Volumes, p: &str, errs: &mut Vec<FieldError>) {
    let name = s(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(child(p, "name"), ""));
    } else {
        errs.extend(invalid_each(
            &child(p, "name"),
            name,
            is_dns1123_label(name),
        ));
    }
    if s(c, "image").is_empty() {
        errs.push(FieldError::required(child(p, "image"), ""));
    }
    match s(c, "terminationMessagePolicy") {
        "File" | "FallbackToLogsOnError" => {}
        "" => errs.push(FieldError::required(
            child(p, "terminationMessagePolicy"),
            "must be 'File' or 'FallbackToLogsOnError'",
        )),
        other => errs.push(FieldError::not_supported(
            child(p, "terminationMessagePolicy"),
            other,
            &["File", "FallbackToLogsOnError"],
        )),
    }
    validate_ports(arr(c, "ports"), &child(p, "ports"), errs);
    validate_env(arr(c, "env"), &child(p, "env"), errs);
    validate_env_from(arr(c, "envFrom"), &child(p, "envFrom"), errs);
    validate_mounts(c, vols, p, errs);
    errs.extend(one_of(
        &child(p, "imagePullPolicy"),
        s(c, "imagePullPolicy"),
        &["Always", "IfNotPresent", "Never"],
        true,
    ));
    if let Some(r) = get(c, "resources") {
        validate_resources(r, &child(p, "resources"), errs);
    }
    for (i, rp) in arr(c, "resizePolicy").iter().enumerate() {
        let rpp = index(&child(p, "resizePolicy"), i);
        errs.extend(one_of(
            &child(&rpp, "resourceName"),
            s(rp, "resourceName"),
            &["cpu", "memory"],
            true,
        ));
        errs.extend(one_of(
            &child(&rpp, "restartPolicy"),
            s(rp, "restartPolicy"),
            &["NotRequired", "RestartContainer"],
            true,
        ));
    }
    if let Some(sc) = get(c, "securityContext") {
        validate_security_context(sc, &child(p, "securityContext"), errs);
    }
}

fn validate_ports(ports: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    let mut names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = index(path, i);
        let name = s(port, "name");
        if !name.is_empty() {
            let msgs = is_valid_port_name(name);
            if !msgs.is_empty() {
                errs.extend(invalid_each(&child(&p, "name"), name, msgs));
            } else if !names.insert(name) {
                errs.push(FieldError::duplicate(child(&p, "name"), name));
            }
        }
        match int(port, "containerPort").unwrap_or(0) {
            0 => errs.push(FieldError::required(child(&p, "containerPort"), "")),
            n => errs.extend(
                is_valid_port_num(n)
                    .into_iter()
                    .map(|m| FieldError::invalid(child(&p, "containerPort"), n, m)),
            ),
        }
        match int(port, "hostPort").unwrap_or(0) {
            0 => {}
            n => errs.extend(
                is_valid_port_num(n)
                    .into_iter()
                    .map(|m| FieldError::invalid(child(&p, "hostPort"), n, m)),
            ),
        }
        let proto = s(port, "protocol");
        if proto.is_empty() {
            errs.push(FieldError::required(child(&p, "protocol"), ""));
        } else if !PROTOCOLS.contains(&proto) {
            errs.push(FieldError::not_supported(
                child(&p, "protocol"),
                proto,
                PROTOCOLS,
            ));
        }
    }
}

/// Upstream's `AccumulateUniqueHostPorts`: two containers may not claim the
/// same host port.
fn unique_host_ports(containers: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    let mut seen = HashSet::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, port) in arr(c, "ports").iter().enumerate() {
            let hp = int(port, "hostPort").unwrap_or(0);
            if hp == 0 {
                continue;
            }
            let key = format!("{}/{}/{hp}", s(port, "protocol"), s(port, "hostIP"));
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(
                    child(&index(&child(&index(path, ci), "ports"), pi), "hostPort"),
                    key,
                ));
            }
        }
    }
}

/// Upstream's `validatePodHostNetworkDeps`.
fn host_network_ports(spec: &Value, path: &str, is_pod: bool, errs: &mut Vec<FieldError>) {
    if flag(spec, "hostNetwork") != Some(true) {
        return;
    }
    for (ci, c) in arr(spec, "containers").iter().enumerate() {
        for (pi, port) in arr(c, "ports").iter().enumerate() {
            let hp = int(port, "hostPort").unwrap_or(0);
            if (is_pod || hp != 0) && hp != int(port, "containerPort").unwrap_or(0) {
                let p = index(&child(&index(&child(path, "containers"), ci), "ports"), pi);
                errs.push(FieldError::invalid(
                    child(&p, "hostPort"),
                    hp,
                    "must match `containerPort` when `hostNetwork` is true",
                ));
            }
        }
    }
}

const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

fn validate_env(env: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    for (i, e) in env.iter().enumerate() {
        let p = index(path, i);
        let name = s(e, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&p, "name"), ""));
        } else {
            errs.extend(invalid_each(
                &child(&p, "name"),
                name,
                is_env_var_name(name),
            ));
        }
        let Some(from) = get(e, "valueFrom") else {
            continue;
        };
        let vp = child(&p, "valueFrom");
        let mut sources = 0;
        if let Some(f) = get(from, "fieldRef") {
            sources += 1;
            validate_field_ref(f, ENV_FIELD_PATHS, &child(&vp, "fieldRef"), errs);
        }
        if let Some(r) = get(from, "resourceFieldRef") {
            sources += 1;
            validate_resource_field_ref(r, &child(&vp, "resourceFieldRef"), errs);
        }
        for k in ["configMapKeyRef", "secretKeyRef"] {
            if let Some(r) = get(from, k) {
                sources += 1;
                let rp = child(&vp, k);
                let n = s(r, "name");
                errs.extend(invalid_each(
                    &child(&rp, "name"),
                    n,
                    name_is_dns_subdomain(n, false),
                ));
                let key = s(r, "key");
                if key.is_empty() {
                    errs.push(FieldError::required(child(&rp, "key"), ""));
                } else {
                    errs.extend(invalid_each(
                        &child(&rp, "key"),
                        key,
                        is_config_map_key(key),
                    ));
                }
            }
        }
        if get(from, "fileKeyRef").is_some() {
            sources += 1;
        }
        if sources == 0 {
            errs.push(FieldError::invalid(&vp, "", "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"));
        } else if !s(e, "value").is_empty() {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if sources > 1 {
            errs.push(FieldError::invalid(
                &vp,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
}

/// Upstream's `validateObjectFieldSelector` (env and downward API volumes).
pub fn validate_field_ref(f: &Value, allowed: &[&str], path: &str, errs: &mut Vec<FieldError>) {
    if s(f, "apiVersion").is_empty() {
        errs.push(FieldError::required(child(path, "apiVersion"), ""));
        return;
    }
    let fp = s(f, "fieldPath");
    if fp.is_empty() {
        errs.push(FieldError::required(child(path, "fieldPath"), ""));
        return;
    }
    if let Some((base, rest)) = fp.split_once('[') {
        let sub = rest.trim_end_matches(']').trim_matches('\'');
        match base {
            "metadata.annotations" => errs.extend(invalid_each(
                path,
                sub,
                is_qualified_name(&sub.to_lowercase()),
            )),
            "metadata.labels" => errs.extend(invalid_each(path, sub, is_qualified_name(sub))),
            _ => errs.push(FieldError::invalid(
                path,
                base,
                "does not support subscript",
            )),
        }
    } else if !allowed.contains(&fp) {
        let mut sorted = allowed.to_vec();
        sorted.sort_unstable();
        errs.push(FieldError::not_supported(
            child(path, "fieldPath"),
            fp,
            &sorted,
        ));
    }
}

/// Upstream's `validateContainerResourceFieldSelector` (without divisors).
pub fn validate_resource_field_ref(r: &Value, path: &str, errs: &mut Vec<FieldError>) {
    const OK: &[&str] = &[
        "limits.cpu",
        "limits.ephemeral-storage",
        "limits.memory",
        "requests.cpu",
        "requests.ephemeral-storage",
        "requests.memory",
    ];
    let res = s(r, "resource");
    if res.is_empty() {
        errs.push(FieldError::required(child(path, "resource"), ""));
    } else if !OK.contains(&res)
        && !res.starts_with("limits.hugepages-")
        && !res.starts_with("requests.hugepages-")
    {
        errs.push(FieldError::not_supported(child(path, "resource"), res, OK));
    }
}

fn validate_env_from(from: &[Value], path: &str, errs: &mut Vec<FieldError>) {
    for (i, e) in from.iter().enumerate() {
        let p = index(path, i);
        let prefix = s(e, "prefix");
        if !prefix.is_empty() {
            errs.extend(invalid_each(
                &child(&p, "prefix"),
                prefix,
                is_env_var_name(prefix),
            ));
        }
        let mut sources = 0;
        for k in ["configMapRef", "secretRef"] {
            if let Some(r) = get(e, k) {
                sources += 1;
                let n = s(r, "name");
                if n.is_empty() {
                    errs.push(FieldError::required(child(&child(&p, k), "name"), ""));
                } else {
                    errs.extend(invalid_each(
                        &child(&child(&p, k), "name"),
                        n,
                        name_is_dns_subdomain(n, true),
                    ));
                }
            }
        }
        if sources == 0 {
            errs.push(FieldError::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            ));
        } else if sources > 1 {
            errs.push(FieldError::invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
}

fn validate_mounts(c: &Value, vols: &Volumes, p: &str, errs: &mut Vec<FieldError>) {
    let path = child(p, "volumeMounts");
    let devices: Vec<(&str, &str)> = arr(c, "volumeDevices")
        .iter()
        .map(|d| (s(d, "name"), s(d, "devicePath")))
        .collect();
    let mut mount_points = HashSet::new();
    let privileged = c
        .pointer("/securityContext/privileged")
        .and_then(Value::as_bool)
        == Some(true);
    for (i, m) in arr(c, "volumeMounts").iter().enumerate() {
        let mp = index(&path, i);
        let name = s(m, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&mp, "name"), ""));
        }
        if !vols.names.contains(name) {
            errs.push(not_found(child(&mp, "name"), name));
        }
        let mount_path = s(m, "mountPath");
        if mount_path.is_empty() {
            errs.push(FieldError::required(child(&mp, "mountPath"), ""));
        }
        if !mount_points.insert(mount_path) {
            errs.push(FieldError::invalid(
                child(&mp, "mountPath"),
                mount_path,
                "must be unique",
            ));
        }
        if devices.iter().any(|(n, _)| *n == name) {
            errs.push(FieldError::invalid(
                child(&mp, "name"),
                name,
                "must not already exist in volumeDevices",
            ));
        }
        if devices.iter().any(|(_, d)| *d == mount_path) {
            errs.push(FieldError::invalid(
                child(&mp, "mountPath"),
                mount_path,
                "must not already exist as a path in volumeDevices",
            ));
        }
        let sub = s(m, "subPath");
        if !sub.is_empty() {
            local_descending_path(sub, &child(&path, "subPath"), errs);
        }
        if !sub.is_empty() && !s(m, "subPathExpr").is_empty() {
            errs.push(FieldError::invalid(
                child(&mp, "subPathExpr"),
                s(m, "subPathExpr"),
                "subPathExpr and subPath are mutually exclusive",
            ));
        }
        if let Some(prop) = opt_s(m, "mountPropagation") {
            match prop {
                "None" | "HostToContainer" => {}
                "Bidirectional" if !privileged => errs.push(FieldError::forbidden(
                    child(&mp, "mountPropagation"),
                    "Bidirectional mount propagation is available only to privileged containers",
                )),
                "Bidirectional" => {}
                other => errs.push(FieldError::not_supported(
                    child(&mp, "mountPropagation"),
                    other,
                    &["Bidirectional", "HostToContainer", "None"],
                )),
            }
        }
        if let Some(r) = opt_s(m, "recursiveReadOnly") {
            errs.extend(one_of(
                &child(&mp, "recursiveReadOnly"),
                r,
                &["Disabled", "IfPossible", "Enabled"],
                false,
            ));
        }
    }
    for (i, d) in arr(c, "volumeDevices").iter().enumerate() {
        let dp = index(&child(p, "volumeDevices"), i);
        let name = s(d, "name");
        if name.is_empty() {
            errs.push(FieldError::required(child(&dp, "name"), ""));
        } else if !vols.names.contains(name) {
            errs.push(not_found(child(&dp, "name"), name));
        } else if !vols.claims.contains(name) {
            errs.push(FieldError::invalid(child(&dp, "name"), name, "can only use volume source type of PersistentVolumeClaim or Ephemeral for block mode"));
        }
        if s(d, "devicePath").is_empty() {
            errs.push(FieldError::required(child(&dp, "devicePath"), ""));
        }
    }
}

/// Upstream's `validateLocalDescendingPath`.
pub fn local_descending_path(target: &str, path: &str, errs: &mut Vec<FieldError>) {
    if target.starts_with('/') {
        errs.push(FieldError::invalid(path, target, "must be a relative path"));
    }
    if target.split('/').any(|p| p == "..") {
        errs.push(FieldError::invalid(path, target, "must not contain '..'"));
    }
}

/// Upstream's `ValidateSecurityContext` for containers (ids, privilege escalation, profiles).
fn validate_security_context(sc: &Value, path: &str, errs: &mut Vec<FieldError>) {
    podextra::validate_ids(sc, path, errs);
    let no_escalation = flag(sc, "allowPrivilegeEscalation") == Some(false);
    if no_escalation && flag(sc, "privileged") == Some(true) {
        errs.push(FieldError::invalid(
            path,
            sc.clone(),
            "cannot set `allowPrivilegeEscalation` to false and `privileged` to true",
        ));
    }
    let added: BTreeSet<&str> = sc
        .pointer("/capabilities/add")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if no_escalation && (added.contains("CAP_SYS_ADMIN") || added.contains("SYS_ADMIN")) {
        errs.push(FieldError::invalid(
            path,
            sc.clone(),
            "cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN",
        ));
    }
    if let Some(pm) = opt_s(sc, "procMount") {
        errs.extend(one_of(
            &child(path, "procMount"),
            pm,
            &["Default", "Unmasked"],
            false,
        ));
    }
    podextra::validate_profiles(sc, path, errs);
}

#[cfg(test)]
#[path = "podspec_tests.rs"]
mod tests;
