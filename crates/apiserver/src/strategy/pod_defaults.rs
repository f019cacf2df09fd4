//! Upstream's v1 defaulting for pod specs (`SetDefaults_PodSpec`,
//! `SetDefaults_Container`, probes, volumes...), pod templates and pods, plus
//! the empty structs Go always serializes (`resources: {}`), so stored
//! objects read back exactly as a real cluster returns them.

use serde_json::{json, Value};

use super::quantity::{canonicalize, canonicalize_list};
use super::util::*;
use super::volumes::VOLUME_SOURCES;

/// The pull policy upstream derives from an image reference: `Always` for
/// `:latest` or no tag (and no digest), `IfNotPresent` otherwise.
pub fn pull_policy_for(image: &str) -> &'static str {
    let (name, has_digest) = match image.split_once('@') {
        Some((n, _)) => (n, true),
        None => (image, false),
    };
    let last = name.rsplit('/').next().unwrap_or(name);
    let (repo, tag) = match last.split_once(':') {
        Some((r, t)) => (r, Some(t)),
        None => (last, None),
    };
    match tag {
        Some("latest") => "Always",
        // A reference that does not parse (upper-case repository) has no tag.
        _ if repo.bytes().any(|c| c.is_ascii_uppercase()) => "IfNotPresent",
        None if !has_digest => "Always",
        _ => "IfNotPresent",
    }
}

fn default_http_get(h: &mut Value) {
    if let Some(g) = h.get_mut("httpGet").filter(|g| g.is_object()) {
        set_default_str(g, "path", "/");
        set_default_str(g, "scheme", "HTTP");
    }
    if let Some(g) = h.get_mut("grpc").filter(|g| g.is_object()) {
        set_default(g, "service", json!(""));
    }
}

fn default_probe(p: &mut Value) {
    if !p.is_object() {
        return;
    }
    for (k, v) in [
        ("timeoutSeconds", 1),
        ("periodSeconds", 10),
        ("successThreshold", 1),
        ("failureThreshold", 3),
    ] {
        if int(p, k).unwrap_or(0) == 0 {
            p[k] = json!(v);
        }
    }
    default_http_get(p);
}

fn default_field_refs(items: &mut Value) {
    if let Some(a) = items.as_array_mut() {
        for it in a {
            if let Some(f) = it.get_mut("fieldRef").filter(|f| f.is_object()) {
                set_default_str(f, "apiVersion", "v1");
            }
            if let Some(r) = it.get_mut("resourceFieldRef").filter(|f| f.is_object()) {
                set_default(r, "divisor", json!("0"));
                canonicalize(r.get_mut("divisor"));
            }
        }
    }
}

/// `SetDefaults_Container` and the generated defaults of its parts.
fn default_container(c: &mut Value) {
    if !c.is_object() {
        return;
    }
    if s(c, "imagePullPolicy").is_empty() {
        let policy = pull_policy_for(s(c, "image"));
        c["imagePullPolicy"] = json!(policy);
    }
    set_default_str(c, "terminationMessagePath", "/dev/termination-log");
    set_default_str(c, "terminationMessagePolicy", "File");
    set_default(c, "resources", json!({}));
    if let Some(r) = c.get_mut("resources") {
        canonicalize_list(r.get_mut("limits"));
        canonicalize_list(r.get_mut("requests"));
    }
    each_mut(c, "ports", |p| set_default_str(p, "protocol", "TCP"));
    each_mut(c, "env", |e| {
        if let Some(from) = e.get_mut("valueFrom") {
            let mut items = Value::Array(vec![from.clone()]);
            default_field_refs(&mut items);
            *from = items[0].take();
        }
    });
    for k in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(k) {
            default_probe(p);
        }
    }
    if let Some(l) = c.get_mut("lifecycle") {
        for k in ["postStart", "preStop"] {
            if let Some(h) = l.get_mut(k) {
                default_http_get(h);
            }
        }
    }
}

/// `SetDefaults_Volume` and the defaults of each source.
fn default_volume(v: &mut Value) {
    if !v.is_object() {
        return;
    }
    if VOLUME_SOURCES.iter().all(|k| get(v, k).is_none()) {
        v["emptyDir"] = json!({});
    }
    for k in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(src) = v.get_mut(k).filter(|x| x.is_object()) {
            set_default(src, "defaultMode", json!(420));
        }
    }
    if let Some(d) = v.get_mut("downwardAPI").and_then(|d| d.get_mut("items")) {
        default_field_refs(d);
    }
    if let Some(p) = v.get_mut("projected") {
        each_mut(p, "sources", |src| {
            if let Some(t) = src.get_mut("serviceAccountToken").filter(|x| x.is_object()) {
                set_default(t, "expirationSeconds", json!(3600));
            }
            if let Some(d) = src.get_mut("downwardAPI").and_then(|d| d.get_mut("items")) {
                default_field_refs(d);
            }
        });
    }
    if let Some(h) = v.get_mut("hostPath").filter(|x| x.is_object()) {
        set_default(h, "type", json!(""));
    }
    if let Some(e) = v.get_mut("emptyDir") {
        canonicalize(e.get_mut("sizeLimit"));
    }
    if let Some(i) = v.get_mut("iscsi").filter(|x| x.is_object()) {
        set_default_str(i, "iscsiInterface", "default");
    }
    if let Some(r) = v.get_mut("rbd").filter(|x| x.is_object()) {
        set_default_str(r, "pool", "rbd");
        set_default_str(r, "user", "admin");
        set_default_str(r, "keyring", "/etc/ceph/keyring");
    }
    if let Some(a) = v.get_mut("azureDisk").filter(|x| x.is_object()) {
        set_default(a, "cachingMode", json!("ReadWrite"));
        set_default(a, "fsType", json!("ext4"));
        set_default(a, "readOnly", json!(false));
        set_default(a, "kind", json!("Shared"));
    }
    if let Some(sc) = v.get_mut("scaleIO").filter(|x| x.is_object()) {
        set_default_str(sc, "storageMode", "ThinProvisioned");
        set_default_str(sc, "fsType", "xfs");
    }
    if let Some(spec) = at_mut(v, &["ephemeral", "volumeClaimTemplate", "spec"]) {
        super::storage::default_pvc_spec(spec);
    }
}

/// `SetDefaults_PodSpec` and everything it contains: for pods and templates.
pub fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    set_default_str(spec, "dnsPolicy", "ClusterFirst");
    set_default_str(spec, "restartPolicy", "Always");
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default_str(spec, "schedulerName", "default-scheduler");
    // The v1 conversion keeps the deprecated `serviceAccount` in step.
    let sa = match (s(spec, "serviceAccountName"), s(spec, "serviceAccount")) {
        ("", old) => old.to_string(),
        (new, _) => new.to_string(),
    };
    if !sa.is_empty() {
        spec["serviceAccountName"] = json!(sa);
        spec["serviceAccount"] = json!(sa);
    }
    for k in ["containers", "initContainers", "ephemeralContainers"] {
        each_mut(spec, k, default_container);
    }
    each_mut(spec, "volumes", default_volume);
    canonicalize_list(spec.get_mut("overhead"));
    if let Some(r) = spec.get_mut("resources") {
        canonicalize_list(r.get_mut("limits"));
        canonicalize_list(r.get_mut("requests"));
    }
}

/// Defaults of a PodTemplateSpec inside a workload: the spec, and the
/// `metadata: {}` Go always writes for the embedded ObjectMeta.
pub fn default_template(template: Option<&mut Value>) {
    let Some(t) = template.filter(|t| t.is_object()) else {
        return;
    };
    set_default(t, "metadata", json!({}));
    if let Some(spec) = obj_mut(t, "spec") {
        default_pod_spec(spec);
    }
}

fn requests_from_limits(r: &mut Value) {
    let Some(limits) = r.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    let Some(req) = obj_mut(r, "requests").and_then(Value::as_object_mut) else {
        return;
    };
    for (k, v) in limits {
        req.entry(k).or_insert(v);
    }
}

/// `SetDefaults_Pod`: what only pods (not templates) get.
pub fn default_pod(pod: &mut Value) {
    let Some(spec) = obj_mut(pod, "spec") else {
        return;
    };
    default_pod_spec(spec);
    for k in ["containers", "initContainers"] {
        each_mut(spec, k, |c| {
            if let Some(r) = c.get_mut("resources").filter(|r| r.is_object()) {
                requests_from_limits(r);
            }
        });
    }
    if let Some(r) = spec.get_mut("resources").filter(|r| r.is_object()) {
        requests_from_limits(r);
    }
    set_default(spec, "enableServiceLinks", json!(true));
    if flag(spec, "hostNetwork") == Some(true) {
        for k in ["containers", "initContainers"] {
            each_mut(spec, k, |c| {
                each_mut(c, "ports", |p| {
                    if int(p, "hostPort").unwrap_or(0) == 0 {
                        if let Some(cp) = p.get("containerPort").cloned() {
                            put(p, "hostPort", cp);
                        }
                    }
                })
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_policy_follows_the_tag() {
        assert_eq!(pull_policy_for("nginx"), "Always");
        assert_eq!(pull_policy_for("nginx:latest"), "Always");
        assert_eq!(pull_policy_for("nginx:1.25"), "IfNotPresent");
        assert_eq!(pull_policy_for("localhost:5000/nginx"), "Always");
        assert_eq!(pull_policy_for("localhost:5000/nginx:v1"), "IfNotPresent");
        assert_eq!(pull_policy_for("nginx@sha256:abcd"), "IfNotPresent");
    }

    #[test]
    fn template_defaults_match_kubectl_create_deployment() {
        let mut t = json!({ "metadata": { "labels": { "app": "web" } }, "spec": { "containers": [{ "name": "nginx", "image": "nginx" }] } });
        default_template(Some(&mut t));
        assert_eq!(
            t,
            json!({ "metadata": { "labels": { "app": "web" } }, "spec": {
                "containers": [{ "name": "nginx", "image": "nginx", "imagePullPolicy": "Always", "resources": {},
                                 "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File" }],
                "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "schedulerName": "default-scheduler",
                "securityContext": {}, "terminationGracePeriodSeconds": 30
            }})
        );
    }

    #[test]
    fn pod_defaults() {
        let mut p = json!({ "spec": {
            "hostNetwork": true,
            "containers": [{
                "name": "a", "image": "busybox:1.36",
                "ports": [{ "containerPort": 8080 }],
                "resources": { "limits": { "cpu": "0.5", "memory": "1024Mi" } },
                "readinessProbe": { "httpGet": { "port": 8080 } },
                "env": [{ "name": "N", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } }]
            }],
            "volumes": [{ "name": "scratch" }, { "name": "cfg", "configMap": { "name": "c" } }]
        }});
        default_pod(&mut p);
        let c = &p["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(
            c["ports"][0],
            json!({ "containerPort": 8080, "hostPort": 8080, "protocol": "TCP" })
        );
        assert_eq!(
            c["resources"],
            json!({ "limits": { "cpu": "500m", "memory": "1Gi" }, "requests": { "cpu": "500m", "memory": "1Gi" } })
        );
        assert_eq!(
            c["readinessProbe"],
            json!({ "httpGet": { "port": 8080, "path": "/", "scheme": "HTTP" }, "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1, "failureThreshold": 3 })
        );
        assert_eq!(c["env"][0]["valueFrom"]["fieldRef"]["apiVersion"], "v1");
        assert_eq!(
            p["spec"]["volumes"][0],
            json!({ "name": "scratch", "emptyDir": {} })
        );
        assert_eq!(p["spec"]["volumes"][1]["configMap"]["defaultMode"], 420);
        assert_eq!(p["spec"]["enableServiceLinks"], true);
    }
}
