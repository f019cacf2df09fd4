//! ConfigMaps, Secrets, ServiceAccounts, Namespaces, LimitRanges and
//! ResourceQuotas.

use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, ResourceQuota, Secret, ServiceAccount,
};
use serde_json::{json, Map, Value};

use super::container::resource_list;
use super::meta::validate_kube_finalizer;
use super::names::*;
use super::quantity::canonicalize_list;
use super::util::*;
use super::{object_name, unknown, Decoded, Strategy};
use crate::error::FieldError;

/// Upstream's `MaxSecretSize`, also the ConfigMap limit.
pub const MAX_SIZE: usize = 1024 * 1024;
const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding, as Go's JSON encodes `[]byte`.
pub fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Go's `base64.StdEncoding` decoding (padding required, CR/LF ignored);
/// the error is upstream's message.
pub fn b64_decode(s: &str) -> Result<Vec<u8>, String> {
    let bytes: Vec<(usize, u8)> = s
        .bytes()
        .enumerate()
        .filter(|(_, c)| *c != b'\r' && *c != b'\n')
        .collect();
    let illegal = |i: usize| format!("illegal base64 data at input byte {i}");
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for (ci, chunk) in bytes.chunks(4).enumerate() {
        if chunk.len() < 4 {
            return Err(illegal(chunk.first().map(|c| c.0).unwrap_or(s.len())));
        }
        let mut n = 0u32;
        let mut pad = 0;
        for (j, (pos, c)) in chunk.iter().enumerate() {
            let v = match c {
                b'=' if j >= 2 => {
                    pad += 1;
                    0
                }
                _ if pad > 0 => return Err(illegal(*pos)),
                _ => match B64.iter().position(|b| b == c) {
                    Some(v) => v as u32,
                    None => return Err(illegal(*pos)),
                },
            };
            n = (n << 6) | v;
        }
        if pad > 0 && (ci + 1) * 4 < bytes.len() {
            return Err(illegal(chunk[4 - pad].0));
        }
        let decoded = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&decoded[..3 - pad]);
    }
    Ok(out)
}

fn immutable_data(new: &Value, old: &Value, keys: &[&str], errs: &mut Vec<FieldError>) {
    if flag(old, "immutable") != Some(true) {
        return;
    }
    if flag(new, "immutable") != Some(true) {
        errs.push(FieldError::forbidden("immutable", IMMUTABLE_SET));
    }
    for k in keys {
        if !same(new.get(*k), old.get(*k)) {
            errs.push(FieldError::forbidden(*k, IMMUTABLE_SET));
        }
    }
}

/// ConfigMaps.
pub struct ConfigMapStrategy;

impl Strategy for ConfigMapStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<ConfigMap>(obj)
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let mut total = 0;
        let binary = obj.get("binaryData").and_then(Value::as_object);
        for (k, v) in obj
            .get("data")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
        {
            let p = key("data", k);
            errs.extend(invalid_each(&p, k, is_config_map_key(k)));
            if binary.is_some_and(|b| b.contains_key(k)) {
                errs.push(FieldError::invalid(
                    &p,
                    k.as_str(),
                    "duplicate of key present in binaryData",
                ));
            }
            total += v.as_str().map(str::len).unwrap_or(0);
        }
        for (k, v) in binary.into_iter().flatten() {
            errs.extend(invalid_each(&key("binaryData", k), k, is_config_map_key(k)));
            total += v
                .as_str()
                .and_then(|s| b64_decode(s).ok())
                .map(|d| d.len())
                .unwrap_or(0);
        }
        if total > MAX_SIZE {
            errs.push(FieldError::too_long("", MAX_SIZE));
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        immutable_data(new, old, &["data", "binaryData"], &mut errs);
        errs.extend(self.validate(new));
        errs
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// Secrets.
pub struct SecretStrategy;

fn secret_data(obj: &Value) -> Map<String, Value> {
    obj.get("data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

impl Strategy for SecretStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<Secret>(obj)
    }

    fn default(&self, obj: &mut Value) {
        if !obj.is_object() {
            return;
        }
        set_default_str(obj, "type", "Opaque");
        // The v1 conversion folds the write-only stringData into data.
        if let Some(Value::Object(sd)) = obj.as_object_mut().and_then(|m| m.remove("stringData")) {
            if let Some(data) = obj_mut(obj, "data").and_then(Value::as_object_mut) {
                for (k, v) in sd {
                    if let Some(v) = v.as_str() {
                        data.insert(k, json!(b64_encode(v.as_bytes())));
                    }
                }
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let data = secret_data(obj);
        let mut decoded = Map::new();
        let mut total = 0;
        for (k, v) in &data {
            let p = key("data", k);
            errs.extend(invalid_each(&p, k, is_config_map_key(k)));
            match v.as_str().map(b64_decode) {
                Some(Ok(bytes)) => {
                    total += bytes.len();
                    decoded.insert(k.clone(), json!(String::from_utf8_lossy(&bytes)));
                }
                Some(Err(e)) => errs.push(FieldError::invalid(&p, "<secret contents redacted>", e)),
                None => {}
            }
        }
        if total > MAX_SIZE {
            errs.push(FieldError::too_long("data", MAX_SIZE));
        }
        let has = |k: &str| data.contains_key(k);
        let req = |k: &str| FieldError::required(key("data", k), "");
        match s(obj, "type") {
            "kubernetes.io/service-account-token" => {
                let sa = obj
                    .pointer("/metadata/annotations/kubernetes.io~1service-account.name")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                if sa.is_empty() {
                    errs.push(FieldError::required(
                        key("metadata.annotations", "kubernetes.io/service-account.name"),
                        "",
                    ));
                }
            }
            t @ ("kubernetes.io/dockercfg" | "kubernetes.io/dockerconfigjson") => {
                let k = if t == "kubernetes.io/dockercfg" {
                    ".dockercfg"
                } else {
                    ".dockerconfigjson"
                };
                match decoded.get(k).and_then(Value::as_str) {
                    None if !has(k) => errs.push(req(k)),
                    Some(text) => {
                        if let Err(e) = serde_json::from_str::<Map<String, Value>>(text) {
                            errs.push(FieldError::invalid(
                                key("data", k),
                                "<secret contents redacted>",
                                e.to_string(),
                            ));
                        }
                    }
                    None => {}
                }
            }
            "kubernetes.io/basic-auth" if !has("username") && !has("password") => {
                errs.push(req("username"));
                errs.push(req("password"));
            }
            "kubernetes.io/ssh-auth"
                if decoded
                    .get("ssh-privatekey")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty() =>
            {
                errs.push(req("ssh-privatekey"));
            }
            "kubernetes.io/tls" => {
                for k in ["tls.crt", "tls.key"] {
                    if !has(k) {
                        errs.push(req(k));
                    }
                }
            }
            _ => {}
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = immutable(new, old, "type", "type");
        immutable_data(new, old, &["data"], &mut errs);
        errs.extend(self.validate(new));
        errs
    }

    fn selectable_fields(&self, obj: &Value) -> Vec<(&'static str, String)> {
        vec![("type", s(obj, "type").to_string())]
    }
}

/// ServiceAccounts.
pub struct ServiceAccountStrategy;

impl Strategy for ServiceAccountStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<ServiceAccount>(obj)
    }

    fn validate(&self, _obj: &Value) -> Vec<FieldError> {
        Vec::new()
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// Namespaces.
pub struct NamespaceStrategy;

impl Strategy for NamespaceStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<Namespace>(obj)
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        put(obj, "status", json!({ "phase": "Active" }));
        let Some(spec) = obj_mut(obj, "spec") else {
            return;
        };
        if !strs(spec, "finalizers").contains(&"kubernetes") {
            match spec.get_mut("finalizers").and_then(Value::as_array_mut) {
                Some(list) => list.push(json!("kubernetes")),
                None => spec["finalizers"] = json!(["kubernetes"]),
            }
        }
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_from_old(new, old, "status");
        let old_spec = old.get("spec").cloned().unwrap_or_else(|| json!({}));
        if let Some(spec) = obj_mut(new, "spec") {
            keep_from_old(spec, &old_spec, "finalizers");
        }
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        keep_all_but_status(new, old);
    }

    fn default(&self, obj: &mut Value) {
        let name = object_name(obj);
        if !name.is_empty() {
            if let Some(labels) = obj_mut(obj, "metadata").and_then(|m| obj_mut(m, "labels")) {
                labels["kubernetes.io/metadata.name"] = json!(name);
            }
        }
        if let Some(st) = obj_mut(obj, "status") {
            set_default_str(st, "phase", "Active");
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        for f in strs(spec, "finalizers") {
            errs.extend(invalid_each("spec.finalizers", f, is_qualified_name(f)));
            errs.extend(validate_kube_finalizer(f, "spec.finalizers"));
        }
        errs
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        let phase = new
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        let deleting = new
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|d| !d.is_null());
        let mut errs = Vec::new();
        if !deleting && phase != "Active" {
            errs.push(FieldError::invalid(
                "status.Phase",
                phase,
                "may only be 'Active' if `deletionTimestamp` is empty",
            ));
        } else if deleting && phase != "Terminating" {
            errs.push(FieldError::invalid(
                "status.Phase",
                phase,
                "may only be 'Terminating' if `deletionTimestamp` is not empty",
            ));
        }
        errs
    }

    fn selectable_fields(&self, obj: &Value) -> Vec<(&'static str, String)> {
        let phase = obj
            .pointer("/status/phase")
            .and_then(Value::as_str)
            .unwrap_or("");
        vec![
            ("status.phase", phase.to_string()),
            ("name", object_name(obj)),
        ]
    }
}

/// LimitRanges.
pub struct LimitRangeStrategy;

impl Strategy for LimitRangeStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<LimitRange>(obj)
    }

    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj_mut(obj, "spec") else {
            return;
        };
        each_mut(spec, "limits", |l| {
            for k in [
                "max",
                "min",
                "default",
                "defaultRequest",
                "maxLimitRequestRatio",
            ] {
                canonicalize_list(l.get_mut(k));
            }
            if s(l, "type") != "Container" {
                return;
            }
            let fill = |l: &mut Value, to: &str, from: &str| {
                let src = l
                    .get(from)
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default();
                let missing: Vec<(String, Value)> = src
                    .into_iter()
                    .filter(|(k, _)| l.get(to).and_then(|t| t.get(k)).is_none())
                    .collect();
                if !missing.is_empty() {
                    if let Some(t) = obj_mut(l, to).and_then(Value::as_object_mut) {
                        t.extend(missing);
                    }
                }
            };
            fill(l, "default", "max");
            fill(l, "defaultRequest", "default");
            fill(l, "defaultRequest", "min");
        });
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let mut seen = Vec::new();
        for (i, l) in arr(spec, "limits").iter().enumerate() {
            let p = index("spec.limits", i);
            let t = s(l, "type");
            if seen.contains(&t) {
                errs.push(FieldError::duplicate(child(&p, "type"), t));
            }
            seen.push(t);
            let list = |k: &str, errs: &mut Vec<FieldError>| {
                resource_list(l.get(k), &child(&p, k), false, errs)
            };
            let max = list("max", &mut errs);
            let min = list("min", &mut errs);
            let (default, default_req) = if t == "Pod" {
                for k in ["default", "defaultRequest"] {
                    if non_empty(l, k) {
                        errs.push(FieldError::forbidden(
                            child(&p, k),
                            "may not be specified when `type` is 'Pod'",
                        ));
                    }
                }
                (Vec::new(), Vec::new())
            } else {
                (
                    list("default", &mut errs),
                    list("defaultRequest", &mut errs),
                )
            };
            let ratio = list("maxLimitRequestRatio", &mut errs);
            if t == "PersistentVolumeClaim"
                && !min.iter().any(|(n, _)| *n == "storage")
                && !max.iter().any(|(n, _)| *n == "storage")
            {
                errs.push(FieldError::required(
                    child(&p, "limits"),
                    "either minimum or maximum storage value is required, but neither was provided",
                ));
            }
            let find = |v: &[(&str, super::quantity::Quantity)], k: &str| {
                v.iter().find(|(n, _)| *n == k).map(|(_, q)| *q)
            };
            let mut keys: Vec<&str> = max
                .iter()
                .chain(&min)
                .chain(&default)
                .chain(&default_req)
                .chain(&ratio)
                .map(|(n, _)| *n)
                .collect();
            keys.sort_unstable();
            keys.dedup();
            for k in keys {
                let (mx, mn, d, dr) = (
                    find(&max, k),
                    find(&min, k),
                    find(&default, k),
                    find(&default_req, k),
                );
                let mut bad = |field: &str, q: super::quantity::Quantity, msg: String| {
                    errs.push(FieldError::invalid(
                        key(&child(&p, field), k),
                        q.canonical(),
                        msg,
                    ))
                };
                if let (Some(mn), Some(mx)) = (mn, mx) {
                    if mn > mx {
                        bad(
                            "min",
                            mn,
                            format!(
                                "min value {} is greater than max value {}",
                                mn.canonical(),
                                mx.canonical()
                            ),
                        );
                    }
                }
                if let Some(dr) = dr {
                    if let Some(mn) = mn.filter(|mn| *mn > dr) {
                        bad(
                            "defaultRequest",
                            dr,
                            format!(
                                "min value {} is greater than default request value {}",
                                mn.canonical(),
                                dr.canonical()
                            ),
                        );
                    }
                    if let Some(mx) = mx.filter(|mx| dr > *mx) {
                        bad(
                            "defaultRequest",
                            dr,
                            format!(
                                "default request value {} is greater than max value {}",
                                dr.canonical(),
                                mx.canonical()
                            ),
                        );
                    }
                    if let Some(d) = d.filter(|d| dr > *d) {
                        bad(
                            "defaultRequest",
                            dr,
                            format!(
                                "default request value {} is greater than default limit value {}",
                                dr.canonical(),
                                d.canonical()
                            ),
                        );
                    }
                }
                if let Some(d) = d {
                    if let Some(mn) = mn.filter(|mn| *mn > d) {
                        bad(
                            "default",
                            mn,
                            format!(
                                "min value {} is greater than default value {}",
                                mn.canonical(),
                                d.canonical()
                            ),
                        );
                    }
                    if let Some(mx) = mx.filter(|mx| d > *mx) {
                        bad(
                            "default",
                            mx,
                            format!(
                                "default value {} is greater than max value {}",
                                d.canonical(),
                                mx.canonical()
                            ),
                        );
                    }
                }
                if let Some(r) = find(&ratio, k).filter(|r| r.nanos < 1_000_000_000) {
                    bad(
                        "maxLimitRequestRatio",
                        r,
                        format!("ratio {} is less than 1", r.canonical()),
                    );
                }
            }
        }
        errs
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// ResourceQuotas.
pub struct ResourceQuotaStrategy;

const QUOTA_RESOURCES: &[&str] = &[
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "services.nodeports",
    "services.loadbalancers",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "cpu",
    "memory",
    "ephemeral-storage",
];

fn quota_list(list: Option<&Value>, path: &str, errs: &mut Vec<FieldError>) {
    let Some(m) = list.and_then(Value::as_object) else {
        return;
    };
    for (name, v) in m {
        let p = key(path, name);
        let msgs = is_qualified_name(name);
        if !msgs.is_empty() {
            errs.extend(invalid_each(&p, name, msgs));
        } else if !name.contains('/')
            && !QUOTA_RESOURCES.contains(&name.as_str())
            && !name.starts_with("hugepages-")
            && !name.starts_with("requests.hugepages-")
        {
            errs.push(FieldError::invalid(
                &p,
                name.as_str(),
                "must be a standard resource for quota",
            ));
        }
        match super::quantity::parse_value(v) {
            Some(Ok(q)) if q.nanos < 0 => {
                errs.push(FieldError::invalid(&p, q.canonical(), NEGATIVE))
            }
            Some(Err(e)) => errs.push(FieldError::invalid(&p, v.clone(), e)),
            _ => {}
        }
    }
}

impl Strategy for ResourceQuotaStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<ResourceQuota>(obj)
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
        if let Some(spec) = obj.get_mut("spec") {
            canonicalize_list(spec.get_mut("hard"));
        }
        if let Some(st) = obj.get_mut("status") {
            canonicalize_list(st.get_mut("hard"));
            canonicalize_list(st.get_mut("used"));
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        quota_list(spec.get("hard"), "spec.hard", &mut errs);
        const SCOPES: &[&str] = &[
            "Terminating",
            "NotTerminating",
            "BestEffort",
            "NotBestEffort",
            "PriorityClass",
            "CrossNamespacePodAffinity",
            "VolumeAttributesClass",
        ];
        for sc in strs(spec, "scopes") {
            if !SCOPES.contains(&sc) {
                errs.push(FieldError::invalid("spec.scopes", sc, "unsupported scope"));
            }
        }
        for (i, r) in arr(
            spec.get("scopeSelector").unwrap_or(&Value::Null),
            "matchExpressions",
        )
        .iter()
        .enumerate()
        {
            let p = index("spec.scopeSelector.matchExpressions", i);
            if !SCOPES.contains(&s(r, "scopeName")) {
                errs.push(FieldError::invalid(
                    child(&p, "scopeName"),
                    s(r, "scopeName"),
                    "unsupported scope",
                ));
            }
            errs.extend(one_of(
                &child(&p, "operator"),
                s(r, "operator"),
                &["In", "NotIn", "Exists", "DoesNotExist"],
                true,
            ));
        }
        errs
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let st = new.get("status").unwrap_or(&Value::Null);
        quota_list(st.get("hard"), "status.hard", &mut errs);
        quota_list(st.get("used"), "status.used", &mut errs);
        errs
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
