//! The ServiceAccount admission plugin's pod mutations, on create:
//! `serviceAccountName` defaults to `default`, and unless
//! `automountServiceAccountToken` is false, a `kube-api-access-<5 chars>`
//! projected volume (a bound token, the `kube-root-ca.crt` CA bundle, the
//! namespace) is added and mounted read-only at
//! `/var/run/secrets/kubernetes.io/serviceaccount` in every container that
//! does not mount something there already. Mirror pods are left alone.
//! Not done: rejecting pods whose service account does not exist, and the
//! account's own `automountServiceAccountToken` (the pod's field decides).

use serde_json::{json, Value};

use super::util::*;

/// Where the token volume is mounted.
pub const TOKEN_MOUNT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// The volume's name prefix.
pub const VOLUME_PREFIX: &str = "kube-api-access-";

/// Upstream's projected volume: token (3607 s, the kubelet refreshes it),
/// CA bundle, namespace; `defaultMode` set explicitly.
pub fn token_volume_source() -> Value {
    json!({
        "defaultMode": 420,
        "sources": [
            {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
            {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
            {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}]}}
        ]
    })
}

/// Five random characters from upstream's `utilrand.String` alphabet.
pub fn suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    uuid::Uuid::new_v4().into_bytes()[..5]
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}

/// Mutate a pod being created. `suffix` makes the volume's name.
pub fn admit(pod: &mut Value, suffix: &str) {
    let mirror = pod["metadata"]["annotations"]
        .get("kubernetes.io/config.mirror")
        .is_some();
    let Some(spec) = obj_mut(pod, "spec") else {
        return;
    };
    let lists_ok = ["initContainers", "containers", "volumes"]
        .iter()
        .all(|k| spec.get(*k).is_none_or(|v| v.is_array() || v.is_null()));
    if mirror || !lists_ok {
        return;
    }
    if s(spec, "serviceAccountName").is_empty() {
        spec["serviceAccountName"] = json!("default");
        spec["serviceAccount"] = json!("default");
    }
    if flag(spec, "automountServiceAccountToken") == Some(false) {
        return;
    }
    let existing = arr(spec, "volumes").iter().find_map(|v| {
        v["name"]
            .as_str()
            .filter(|n| n.starts_with(VOLUME_PREFIX))
            .map(str::to_string)
    });
    let name = existing
        .clone()
        .unwrap_or_else(|| format!("{VOLUME_PREFIX}{suffix}"));
    let mut needed = false;
    for k in ["initContainers", "containers"] {
        each_mut(spec, k, |c| {
            if !c.is_object() {
                return;
            }
            let mounted = arr(c, "volumeMounts")
                .iter()
                .any(|m| m["mountPath"] == TOKEN_MOUNT_PATH);
            if !mounted {
                let m = json!({"name": name, "readOnly": true, "mountPath": TOKEN_MOUNT_PATH});
                match c.get_mut("volumeMounts").and_then(Value::as_array_mut) {
                    Some(list) => list.push(m),
                    None => c["volumeMounts"] = json!([m]),
                }
                needed = true;
            }
        });
    }
    if existing.is_none() && needed {
        let v = json!({"name": name, "projected": token_volume_source()});
        match spec.get_mut("volumes").and_then(Value::as_array_mut) {
            Some(list) => list.push(v),
            None => spec["volumes"] = json!([v]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_the_token_volume_to_every_container() {
        let mut p = json!({"metadata": {"name": "p"}, "spec": {
            "initContainers": [{"name": "i"}],
            "containers": [{"name": "a", "volumeMounts": [{"name": "x", "mountPath": "/x"}]},
                           {"name": "b", "volumeMounts": [{"name": "own", "mountPath": TOKEN_MOUNT_PATH}]}],
            "volumes": [{"name": "x", "emptyDir": {}}]}});
        admit(&mut p, "abcde");
        let spec = &p["spec"];
        assert_eq!(spec["serviceAccountName"], "default");
        assert_eq!(spec["volumes"][1]["name"], "kube-api-access-abcde");
        assert_eq!(
            spec["volumes"][1]["projected"]["sources"][0]["serviceAccountToken"]
                ["expirationSeconds"],
            3607
        );
        assert_eq!(
            spec["initContainers"][0]["volumeMounts"][0]["name"],
            "kube-api-access-abcde"
        );
        assert_eq!(spec["containers"][0]["volumeMounts"][1]["readOnly"], true);
        assert_eq!(
            spec["containers"][1]["volumeMounts"]
                .as_array()
                .unwrap()
                .len(),
            1,
            "its own mount stays"
        );
    }

    #[test]
    fn opt_out_and_mirror_pods() {
        let mut p = json!({"spec": {"serviceAccountName": "builder", "automountServiceAccountToken": false,
            "containers": [{"name": "a"}]}});
        admit(&mut p, "abcde");
        assert_eq!(p["spec"]["serviceAccountName"], "builder");
        assert!(p["spec"].get("volumes").is_none());
        let mut m = json!({"metadata": {"annotations": {"kubernetes.io/config.mirror": "x"}},
            "spec": {"containers": [{"name": "a"}]}});
        admit(&mut m, "abcde");
        assert!(m["spec"].get("serviceAccountName").is_none());
    }
}
