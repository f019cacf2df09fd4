//! Pods: upstream's pod strategy (status on create, QoS class, what updates
//! may change), with the two admission steps every real cluster runs on pod
//! create folded in (DefaultTolerationSeconds and Priority without classes).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

use super::names::*;
use super::pod_defaults::default_pod;
use super::podspec::validate_pod_spec;
use super::quantity;
use super::util::*;
use super::{unknown, Decoded, Strategy};
use crate::error::FieldError;

/// Upstream's message for a forbidden pod spec change.
pub const POD_UPDATE_MSG: &str = "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// Pods.
pub struct PodStrategy;

fn quantities(list: Option<&Value>) -> BTreeMap<String, i128> {
    list.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter(|(k, _)| matches!(k.as_str(), "cpu" | "memory"))
                .filter_map(|(k, v)| Some((k.clone(), quantity::parse_value(v)?.ok()?.nanos)))
                .filter(|(_, n)| *n > 0)
                .collect()
        })
        .unwrap_or_default()
}

/// Upstream's `ComputePodQOS`. Requests default to limits (as `SetDefaults_Pod`
/// would have done by now upstream), so the result does not depend on order.
pub fn qos_class(spec: &Value) -> &'static str {
    let resources: Vec<&Value> = match get(spec, "resources")
        .filter(|r| non_empty(r, "limits") || non_empty(r, "requests"))
    {
        Some(pod_level) => vec![pod_level],
        None => ["containers", "initContainers"]
            .iter()
            .flat_map(|k| arr(spec, k))
            .map(|c| c.get("resources").unwrap_or(&Value::Null))
            .collect(),
    };
    let mut requests: BTreeMap<String, i128> = BTreeMap::new();
    let mut limits: BTreeMap<String, i128> = BTreeMap::new();
    let mut guaranteed = true;
    for r in resources {
        let lim = quantities(r.get("limits"));
        let mut req = quantities(r.get("requests"));
        for (k, v) in &lim {
            req.entry(k.clone()).or_insert(*v);
        }
        for (k, v) in req {
            *requests.entry(k).or_default() += v;
        }
        if !(lim.contains_key("cpu") && lim.contains_key("memory")) {
            guaranteed = false;
        }
        for (k, v) in lim {
            *limits.entry(k).or_default() += v;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests.iter().all(|(k, v)| limits.get(k) == Some(v))
        && requests.len() == limits.len()
    {
        "Guaranteed"
    } else {
        "Burstable"
    }
}

/// The DefaultTolerationSeconds admission plugin: tolerate not-ready and
/// unreachable nodes for 300s unless the pod already says otherwise.
fn add_default_tolerations(spec: &mut Value) {
    let tolerates = |key: &str| {
        arr(spec, "tolerations").iter().any(|t| {
            (s(t, "key") == key || s(t, "key").is_empty())
                && (s(t, "effect") == "NoExecute" || s(t, "effect").is_empty())
        })
    };
    let add: Vec<&str> = [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ]
    .into_iter()
    .filter(|k| !tolerates(k))
    .collect();
    if add.is_empty() {
        return;
    }
    if !spec.get("tolerations").is_some_and(Value::is_array) {
        spec["tolerations"] = json!([]);
    }
    if let Some(list) = spec["tolerations"].as_array_mut() {
        for k in add {
            list.push(json!({ "key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300 }));
        }
    }
}

/// Paths where two values differ, for the diff upstream appends to its
/// forbidden-update message.
fn diff_paths(old: &Value, new: &Value, path: &str, out: &mut Vec<String>) {
    if out.len() >= 8 || same(Some(old), Some(new)) {
        return;
    }
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            for k in a.keys().chain(b.keys().filter(|k| !a.contains_key(*k))) {
                diff_paths(
                    a.get(k).unwrap_or(&Value::Null),
                    b.get(k).unwrap_or(&Value::Null),
                    &child(path, k),
                    out,
                );
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                diff_paths(x, y, &index(path, i), out);
            }
        }
        _ => out.push(format!("  {path}: {old} -> {new}")),
    }
}

fn validate_pod_update(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let ns = new.get("spec").unwrap_or(&Value::Null);
    let os = old.get("spec").unwrap_or(&Value::Null);
    for k in ["containers", "initContainers"] {
        let (n, o) = (arr(ns, k), arr(os, k));
        if n.len() != o.len() {
            errs.push(FieldError::forbidden(
                child("spec", k),
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
        for (i, c) in n.iter().enumerate() {
            let image = s(c, "image");
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    child(&index(&child("spec", k), i), "image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    let ads = "spec.activeDeadlineSeconds";
    match (
        int(ns, "activeDeadlineSeconds"),
        int(os, "activeDeadlineSeconds"),
    ) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => {
            errs.push(FieldError::invalid(
                ads,
                n,
                inclusive_range_error(0, i64::from(i32::MAX)),
            ));
            return errs;
        }
        (Some(n), Some(o)) if o < n => {
            errs.push(FieldError::invalid(
                ads,
                n,
                "must be less than or equal to previous value",
            ));
            return errs;
        }
        (None, Some(_)) => errs.push(FieldError::invalid(
            ads,
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => {}
    }
    for old_t in arr(os, "tolerations") {
        let found = arr(ns, "tolerations").iter().any(|nt| {
            let mut o = old_t.clone();
            match nt.get("tolerationSeconds") {
                Some(v) => put(&mut o, "tolerationSeconds", v.clone()),
                None => {
                    o.as_object_mut().map(|m| m.remove("tolerationSeconds"));
                }
            }
            same(Some(&o), Some(nt))
        });
        if !found {
            errs.push(FieldError::forbidden(
                "spec.tolerations",
                "existing toleration can not be modified except its tolerationSeconds",
            ));
            break;
        }
    }
    let old_gates: Vec<&str> = arr(os, "schedulingGates")
        .iter()
        .map(|g| s(g, "name"))
        .collect();
    for (i, g) in arr(ns, "schedulingGates").iter().enumerate() {
        if !old_gates.contains(&s(g, "name")) {
            errs.push(FieldError::forbidden(
                child(&index("spec.schedulingGates", i), "name"),
                format!(
                    "only deletion is allowed, but found new scheduling gate '{}'",
                    s(g, "name")
                ),
            ));
        }
    }
    if same(Some(ns), Some(os)) {
        return errs;
    }
    let mut munged = ns.clone();
    for k in ["containers", "initContainers"] {
        if let Some(list) = munged.get_mut(k).and_then(Value::as_array_mut) {
            for (i, c) in list.iter_mut().enumerate() {
                if let Some(img) = os
                    .get(k)
                    .and_then(|o| o.get(i))
                    .and_then(|c| c.get("image"))
                {
                    put(c, "image", img.clone());
                }
            }
        }
    }
    for k in ["activeDeadlineSeconds", "schedulingGates", "tolerations"] {
        keep_from_old(&mut munged, os, k);
    }
    if int(os, "terminationGracePeriodSeconds").is_some_and(|g| g < 0)
        && int(&munged, "terminationGracePeriodSeconds") == Some(1)
    {
        keep_from_old(&mut munged, os, "terminationGracePeriodSeconds");
    }
    if !old_gates.is_empty() {
        // Gated pods may gain node selector entries (but not change or lose them).
        let old_sel = string_map(os, "nodeSelector");
        let new_sel = string_map(&munged, "nodeSelector");
        if old_sel.iter().all(|kv| new_sel.contains(kv)) {
            keep_from_old(&mut munged, os, "nodeSelector");
        }
    }
    if !same(Some(&munged), Some(os)) {
        let mut lines = Vec::new();
        diff_paths(os, &munged, "spec", &mut lines);
        errs.push(FieldError::forbidden(
            "spec",
            format!("{POD_UPDATE_MSG}\n{}", lines.join("\n")),
        ));
    }
    errs
}

fn validate_status(new: &Value, old: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let st = new.get("status").unwrap_or(&Value::Null);
    let ost = old.get("status").unwrap_or(&Value::Null);
    for (i, c) in arr(st, "conditions").iter().enumerate() {
        let t = s(c, "type");
        if !matches!(t, "PodScheduled" | "Ready" | "Initialized") {
            errs.extend(invalid_each(
                &child(&index("status.conditions", i), "type"),
                t,
                is_qualified_name(t),
            ));
        }
    }
    let nominated = s(st, "nominatedNodeName");
    if !nominated.is_empty() && nominated != s(ost, "nominatedNodeName") {
        errs.extend(invalid_each(
            "status.nominatedNodeName",
            nominated,
            name_is_dns_subdomain(nominated, false),
        ));
    }
    for k in ["podIPs", "hostIPs"] {
        let ips = arr(st, k);
        for (i, ip) in ips.iter().enumerate() {
            let v = s(ip, "ip");
            errs.extend(invalid_each(
                &index(&child("status", k), i),
                v,
                is_valid_ip(v),
            ));
        }
        if ips.len() > 1 {
            let fams: Vec<bool> = ips
                .iter()
                .filter_map(|ip| parse_ip(s(ip, "ip")))
                .map(|a| a.is_ipv4())
                .collect();
            if ips.len() > 2 || fams.len() == 2 && fams[0] == fams[1] {
                errs.push(FieldError::invalid(
                    child("status", k),
                    st[k].clone(),
                    "may specify no more than one IP for each IP family",
                ));
            }
        }
    }
    // A container of a pod that will not restart stays terminated.
    let restart = old
        .pointer("/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Always");
    for k in ["containerStatuses", "initContainerStatuses"] {
        for (i, cs) in arr(st, k).iter().enumerate() {
            let Some(prev) = arr(ost, k).iter().find(|o| s(o, "name") == s(cs, "name")) else {
                continue;
            };
            let Some(term) = prev.pointer("/state/terminated") else {
                continue;
            };
            let stays =
                restart == "Never" || restart == "OnFailure" && int(term, "exitCode") == Some(0);
            if k == "containerStatuses" && stays && cs.pointer("/state/terminated").is_none() {
                errs.push(FieldError::forbidden(
                    child(&index(&child("status", k), i), "state"),
                    "may not be transitioned to non-terminated state",
                ));
            }
        }
    }
    errs.extend(immutable(st, ost, "qosClass", "status.qosClass"));
    errs
}

impl Strategy for PodStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<Pod>(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        // The ServiceAccount admission plugin's mutations.
        super::sa_admission::admit(obj, &super::sa_admission::suffix());
        let Some(spec) = obj_mut(obj, "spec") else {
            return;
        };
        add_default_tolerations(spec);
        let qos = qos_class(spec);
        let gated = non_empty(spec, "schedulingGates");
        let mut status = json!({ "phase": "Pending", "qosClass": qos });
        if gated {
            status["conditions"] = json!([{
                "type": "PodScheduled", "status": "False", "lastProbeTime": null, "lastTransitionTime": null,
                "reason": "SchedulingGated", "message": "Scheduling is blocked due to non-empty scheduling gates"
            }]);
        }
        put(obj, "status", status);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_from_old(new, old, "status");
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        keep_all_but_status(new, old);
        if let (Some(m), Some(om)) = (new.get_mut("metadata"), old.get("metadata")) {
            // Old kubelets corrupt owner references; status writes may not touch them.
            keep_from_old(m, om, "ownerReferences");
        }
        if new
            .pointer("/status/qosClass")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            if let (Some(q), Some(st)) = (
                old.pointer("/status/qosClass").cloned(),
                obj_mut(new, "status"),
            ) {
                st["qosClass"] = q;
            }
        }
    }

    fn default(&self, obj: &mut Value) {
        default_pod(obj);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let mut errs = validate_pod_spec(spec, "spec", true);
        if non_empty(spec, "ephemeralContainers") {
            errs.push(FieldError::forbidden(
                "spec.ephemeralContainers",
                "cannot be set on create",
            ));
        }
        if !s(spec, "nodeName").is_empty() && non_empty(spec, "schedulingGates") {
            errs.push(FieldError::forbidden(
                "spec.nodeName",
                "cannot be set until all schedulingGates have been cleared",
            ));
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = validate_pod_spec(new.get("spec").unwrap_or(&Value::Null), "spec", true);
        dedup_fields(&mut errs, validate_pod_update(new, old));
        errs
    }

    fn validate_status_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        validate_status(new, old)
    }

    fn selectable_fields(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let st = obj.get("status").unwrap_or(&Value::Null);
        let pod_ip = arr(st, "podIPs")
            .first()
            .map(|p| s(p, "ip"))
            .unwrap_or_else(|| s(st, "podIP"));
        vec![
            ("spec.nodeName", s(spec, "nodeName").to_string()),
            ("spec.restartPolicy", s(spec, "restartPolicy").to_string()),
            ("spec.schedulerName", s(spec, "schedulerName").to_string()),
            (
                "spec.serviceAccountName",
                s(spec, "serviceAccountName").to_string(),
            ),
            (
                "spec.hostNetwork",
                flag(spec, "hostNetwork").unwrap_or(false).to_string(),
            ),
            ("status.phase", s(st, "phase").to_string()),
            ("status.podIP", pod_ip.to_string()),
            (
                "status.nominatedNodeName",
                s(st, "nominatedNodeName").to_string(),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldErrorType;

    fn pod() -> Value {
        json!({ "apiVersion": "v1", "kind": "Pod",
                "metadata": { "name": "web", "namespace": "default", "uid": "u1", "creationTimestamp": "2024-01-01T00:00:00Z" },
                "spec": { "containers": [{ "name": "nginx", "image": "nginx" }] } })
    }

    fn created() -> Value {
        let s = PodStrategy;
        let mut p = pod();
        s.prepare_for_create(&mut p);
        s.default(&mut p);
        p
    }

    #[test]
    fn create_sets_status_admission_fields_and_defaults() {
        let p = created();
        assert_eq!(
            p["status"],
            json!({ "phase": "Pending", "qosClass": "BestEffort" })
        );
        // The ServiceAccount admission's account and token volume.
        let vol = p["spec"]["volumes"][0]["name"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            vol.starts_with("kube-api-access-") && vol.len() == 21,
            "{vol}"
        );
        assert_eq!(
            p["spec"]["volumes"][0]["projected"],
            super::super::sa_admission::token_volume_source()
        );
        assert_eq!(
            p["spec"],
            json!({
                "containers": [{ "name": "nginx", "image": "nginx", "imagePullPolicy": "Always", "resources": {},
                                 "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
                                 "volumeMounts": [{ "name": vol, "readOnly": true,
                                                    "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount" }] }],
                "serviceAccount": "default", "serviceAccountName": "default",
                "volumes": p["spec"]["volumes"].clone(),
                "dnsPolicy": "ClusterFirst", "enableServiceLinks": true,
                "restartPolicy": "Always", "schedulerName": "default-scheduler", "securityContext": {}, "terminationGracePeriodSeconds": 30,
                "tolerations": [
                    { "effect": "NoExecute", "key": "node.kubernetes.io/not-ready", "operator": "Exists", "tolerationSeconds": 300 },
                    { "effect": "NoExecute", "key": "node.kubernetes.io/unreachable", "operator": "Exists", "tolerationSeconds": 300 }
                ]
            })
        );
        assert!(
            PodStrategy.validate(&p).is_empty(),
            "{:?}",
            PodStrategy.validate(&p)
        );
    }

    #[test]
    fn qos_classes() {
        let with = |r: Value| qos_class(&json!({ "containers": [{ "resources": r }] }));
        assert_eq!(with(json!({})), "BestEffort");
        assert_eq!(
            with(json!({ "limits": { "cpu": "1", "memory": "1Gi" } })),
            "Guaranteed"
        );
        assert_eq!(with(json!({ "requests": { "cpu": "1" } })), "Burstable");
        assert_eq!(
            with(
                json!({ "requests": { "cpu": "500m", "memory": "1Gi" }, "limits": { "cpu": "1", "memory": "1Gi" } })
            ),
            "Burstable"
        );
    }

    #[test]
    fn updates_may_only_change_images_and_a_few_fields() {
        let s = PodStrategy;
        let old = created();
        let mut img = old.clone();
        img["spec"]["containers"][0]["image"] = json!("nginx:1.27");
        img["spec"]["activeDeadlineSeconds"] = json!(100);
        img["spec"]["tolerations"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "key": "k", "operator": "Exists" }));
        assert!(
            s.validate_update(&img, &old).is_empty(),
            "{:?}",
            s.validate_update(&img, &old)
        );
        let mut port = old.clone();
        port["spec"]["containers"][0]["ports"] =
            json!([{ "containerPort": 80, "protocol": "TCP" }]);
        let e = s.validate_update(&port, &old);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].field, "spec");
        assert_eq!(e[0].kind, FieldErrorType::Forbidden);
        assert!(e[0].detail.starts_with(POD_UPDATE_MSG));
        assert!(
            e[0].detail.contains("spec.containers[0].ports"),
            "{}",
            e[0].detail
        );
        let mut more = old.clone();
        more["spec"]["containers"]
            .as_array_mut()
            .unwrap()
            .push(json!({ "name": "b", "image": "b" }));
        let e = s.validate_update(&more, &old);
        assert!(
            e.iter().any(|e| e.field == "spec.containers"
                && e.detail == "pod updates may not add or remove containers"),
            "{e:?}"
        );
        let mut tol = old.clone();
        tol["spec"]["tolerations"] = json!([]);
        assert_eq!(s.validate_update(&tol, &old)[0].field, "spec.tolerations");
    }

    #[test]
    fn status_updates_keep_spec_and_selectable_fields() {
        let s = PodStrategy;
        let old = created();
        let mut new = old.clone();
        new["spec"]["nodeName"] = json!("n1");
        new["status"] =
            json!({ "phase": "Running", "podIP": "10.0.0.5", "podIPs": [{ "ip": "10.0.0.5" }] });
        s.prepare_for_status_update(&mut new, &old);
        assert_eq!(new["spec"], old["spec"]);
        assert_eq!(new["status"]["qosClass"], "BestEffort");
        assert!(s.validate_status_update(&new, &old).is_empty());
        let f = s.selectable_fields(&new);
        assert!(f.contains(&("status.podIP", "10.0.0.5".into())));
        assert!(f.contains(&("spec.hostNetwork", "false".into())));
        assert!(f.contains(&("status.phase", "Running".into())));
    }

    #[test]
    fn ephemeral_containers_on_create() {
        let mut p = created();
        p["spec"]["ephemeralContainers"] = json!([{ "name": "dbg", "image": "busybox" }]);
        let fields: Vec<_> = PodStrategy
            .validate(&p)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, vec!["spec.ephemeralContainers"]);
    }
}
