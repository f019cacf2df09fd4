//! Adoption and release, as upstream's `ControllerRefManager.ClaimObject`
//! (for pods here, and for ReplicaSets by the Deployment controller):
//! an owner keeps the pods it controls while its selector matches them,
//! releases those it no longer matches, and adopts matching orphans. It
//! never touches a pod another controller owns, and neither adopts nor
//! releases while it is being deleted. The patches carry the pod's UID, so
//! a pod deleted and recreated under the same name is not touched (the
//! API server rejects the changed UID).

use kube::Resource;
use serde_json::{json, Value};

use super::podcache::controller_uid;

/// What an owner does with one pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// Ours and matching.
    Keep,
    /// Not ours to touch.
    Ignore,
    /// A matching orphan: take it.
    Adopt,
    /// Ours but no longer matching: let it go.
    Release,
}

/// Decide for `pod` (or any owned object), given the owner's UID, whether
/// the owner is being deleted, and whether its selector matches the object.
pub fn decide<K: Resource>(pod: &K, owner_uid: &str, owner_deleting: bool, matches: bool) -> Claim {
    match controller_uid(pod) {
        Some(uid) if uid != owner_uid => Claim::Ignore,
        // Keeping what we own needs no action, even while being deleted.
        Some(_) if matches => Claim::Keep,
        Some(_) if owner_deleting => Claim::Ignore,
        Some(_) => Claim::Release,
        None if owner_deleting || !matches => Claim::Ignore,
        None if pod.meta().deletion_timestamp.is_some() => Claim::Ignore,
        None => Claim::Adopt,
    }
}

/// The strategic merge patch that makes the owner the pod's controller.
pub fn adopt_patch(
    api_version: &str,
    kind: &str,
    name: &str,
    owner_uid: &str,
    pod_uid: &str,
) -> Value {
    json!({ "metadata": {
        "ownerReferences": [{
            "apiVersion": api_version, "kind": kind, "name": name, "uid": owner_uid,
            "controller": true, "blockOwnerDeletion": true,
        }],
        "uid": pod_uid,
    }})
}

/// The strategic merge patch that removes the owner's reference.
pub fn release_patch(owner_uid: &str, pod_uid: &str) -> Value {
    json!({ "metadata": {
        "ownerReferences": [{ "$patch": "delete", "uid": owner_uid }],
        "uid": pod_uid,
    }})
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    fn pod(controller: Option<&str>, deleting: bool) -> Pod {
        let refs = controller.map(|u| {
            json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "x", "uid": u, "controller": true},
                   {"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "cm"}])
        });
        let ts = deleting.then_some("2024-01-01T00:00:00Z");
        serde_json::from_value(json!({"metadata": {"name": "p", "uid": "pu",
            "ownerReferences": refs, "deletionTimestamp": ts}}))
        .unwrap()
    }

    #[test]
    fn claim_rules() {
        use Claim::*;
        // Ours.
        assert_eq!(decide(&pod(Some("me"), false), "me", false, true), Keep);
        assert_eq!(decide(&pod(Some("me"), false), "me", true, true), Keep);
        assert_eq!(decide(&pod(Some("me"), false), "me", false, false), Release);
        assert_eq!(decide(&pod(Some("me"), false), "me", true, false), Ignore);
        // Someone else's, matching or not.
        assert_eq!(
            decide(&pod(Some("other"), false), "me", false, true),
            Ignore
        );
        assert_eq!(
            decide(&pod(Some("other"), false), "me", false, false),
            Ignore
        );
        // Orphans.
        assert_eq!(decide(&pod(None, false), "me", false, true), Adopt);
        assert_eq!(decide(&pod(None, false), "me", false, false), Ignore);
        assert_eq!(decide(&pod(None, false), "me", true, true), Ignore);
        assert_eq!(decide(&pod(None, true), "me", false, true), Ignore);
        // A non-controller owner reference does not make a pod owned.
        let mut p = pod(None, false);
        p.metadata.owner_references = serde_json::from_value(
            json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "uid": "cm"}]),
        )
        .unwrap();
        assert_eq!(decide(&p, "me", false, true), Adopt);
    }

    #[test]
    fn patches_carry_the_pod_uid() {
        let a = adopt_patch("v1", "ReplicationController", "web", "ou", "pu");
        assert_eq!(a["metadata"]["uid"], "pu");
        assert_eq!(
            a["metadata"]["ownerReferences"][0]["kind"],
            "ReplicationController"
        );
        assert_eq!(a["metadata"]["ownerReferences"][0]["controller"], true);
        assert_eq!(
            a["metadata"]["ownerReferences"][0]["blockOwnerDeletion"],
            true
        );
        let r = release_patch("ou", "pu");
        assert_eq!(
            r,
            json!({"metadata": {"ownerReferences": [{"$patch": "delete", "uid": "ou"}], "uid": "pu"}})
        );
    }
}
