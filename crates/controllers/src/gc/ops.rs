//! The collector's API calls: metadata reads, deletes with a UID
//! precondition, and merge patches of `metadata` pinned to the
//! resourceVersion they were computed from (upstream's JSON merge patch
//! path, which works for every kind, custom resources included).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, Preconditions, PropagationPolicy,
};
use kube::Client;
use serde_json::{json, Map, Value};

use super::graph::{Identity, Resource};

/// Attempts of a pinned patch before giving up until the next retry.
const PATCH_ATTEMPTS: usize = 5;

/// Errors of one work item.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    Kube(#[from] kube::Error),
    /// The kind is not (yet) known to discovery.
    #[error("unable to get REST mapping for {api_version}/{kind}")]
    Unmapped { api_version: String, kind: String },
    /// Never resolves: such a dependent is left alone.
    #[error("cluster-scoped objects cannot refer to namespaced owners")]
    NamespacedOwnerOfClusterScoped,
    #[error("{0} kept changing while being patched")]
    Conflicts(Identity),
    #[error("failed to orphan dependents of owner {owner}, got errors: {errors}")]
    Orphaning { owner: Identity, errors: String },
}

impl Error {
    /// Log a failure of item `uid`, quieter once it keeps failing.
    pub fn log(&self, uid: &str, retries: u32) {
        if matches!(self, Error::Unmapped { .. }) || retries >= 5 {
            tracing::debug!(uid, error = %self, "garbage collector: will retry");
        } else {
            tracing::warn!(uid, error = %self, "garbage collector: will retry");
        }
    }
}

fn code(e: &kube::Error) -> Option<u16> {
    match e {
        kube::Error::Api(s) => Some(s.code),
        _ => None,
    }
}

/// The API of `res` for objects in `namespace`.
pub fn api(client: &Client, res: &Resource, namespace: &str) -> Api<DynamicObject> {
    if res.namespaced {
        Api::namespaced_with(client.clone(), namespace, &res.ar)
    } else {
        Api::all_with(client.clone(), &res.ar)
    }
}

/// The live metadata of `name`, if it exists.
pub async fn get(
    client: &Client,
    res: &Resource,
    namespace: &str,
    name: &str,
) -> Result<Option<ObjectMeta>, kube::Error> {
    Ok(api(client, res, namespace)
        .get_metadata_opt(name)
        .await?
        .map(|p| p.metadata))
}

/// Delete `id` with `policy`, only if it is still the same object.
pub async fn delete(
    client: &Client,
    res: &Resource,
    id: &Identity,
    policy: PropagationPolicy,
) -> Result<(), Error> {
    let dp = DeleteParams {
        propagation_policy: Some(policy),
        preconditions: Some(Preconditions {
            uid: Some(id.uid.clone()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api(client, res, &id.namespace).delete(&id.name, &dp).await {
        Ok(_) => Ok(()),
        Err(e) if code(&e) == Some(404) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Patch `id`'s metadata with the fields `change` computes from its live
/// metadata (`None`: nothing to change), pinned to the resourceVersion read
/// and retried on conflicts. Returns whether a patch was written; an
/// object gone or replaced (another UID) is left alone.
pub async fn patch_pinned(
    client: &Client,
    res: &Resource,
    id: &Identity,
    change: impl Fn(&ObjectMeta) -> Option<Map<String, Value>>,
) -> Result<bool, Error> {
    let api = api(client, res, &id.namespace);
    for _ in 0..PATCH_ATTEMPTS {
        let Some(live) = api.get_metadata_opt(&id.name).await?.map(|p| p.metadata) else {
            return Ok(false);
        };
        if live.uid.as_deref() != Some(id.uid.as_str()) {
            return Ok(false);
        }
        let Some(mut fields) = change(&live) else {
            return Ok(false);
        };
        fields.insert(
            "resourceVersion".into(),
            json!(live.resource_version.unwrap_or_default()),
        );
        let body = json!({ "metadata": fields });
        match api
            .patch_metadata(&id.name, &PatchParams::default(), &Patch::Merge(&body))
            .await
        {
            Ok(_) => return Ok(true),
            Err(e) if code(&e) == Some(409) => continue,
            Err(e) if code(&e) == Some(404) => return Ok(false),
            Err(e) => return Err(e.into()),
        }
    }
    Err(Error::Conflicts(id.clone()))
}

/// `ownerReferences` without those to `uids`, if any was there.
pub fn without_owners(m: &ObjectMeta, uids: &[String]) -> Option<Map<String, Value>> {
    let refs = m.owner_references.as_deref().unwrap_or_default();
    let keep: Vec<_> = refs.iter().filter(|r| !uids.contains(&r.uid)).collect();
    if keep.len() == refs.len() {
        return None;
    }
    let mut f = Map::new();
    // An empty list is sent as null: a merge patch removes the field.
    let value = if keep.is_empty() {
        Value::Null
    } else {
        json!(keep)
    };
    f.insert("ownerReferences".into(), value);
    Some(f)
}

/// `ownerReferences` with every `blockOwnerDeletion: true` set to false.
pub fn unblocked(m: &ObjectMeta) -> Option<Map<String, Value>> {
    let mut refs = m.owner_references.clone().unwrap_or_default();
    let mut changed = false;
    for r in &mut refs {
        if r.block_owner_deletion == Some(true) {
            r.block_owner_deletion = Some(false);
            changed = true;
        }
    }
    changed.then(|| {
        let mut f = Map::new();
        f.insert("ownerReferences".into(), json!(refs));
        f
    })
}

/// `finalizers` without `finalizer`, if it was there.
pub fn without_finalizer(m: &ObjectMeta, finalizer: &str) -> Option<Map<String, Value>> {
    let all = m.finalizers.as_deref().unwrap_or_default();
    if !all.iter().any(|f| f == finalizer) {
        return None;
    }
    let rest: Vec<&String> = all.iter().filter(|f| *f != finalizer).collect();
    let mut f = Map::new();
    let value = if rest.is_empty() {
        Value::Null
    } else {
        json!(rest)
    };
    f.insert("finalizers".into(), value);
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    fn r(uid: &str, block: Option<bool>) -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: format!("n-{uid}"),
            uid: uid.into(),
            block_owner_deletion: block,
            controller: None,
        }
    }

    fn meta(refs: Vec<OwnerReference>, finalizers: &[&str]) -> ObjectMeta {
        ObjectMeta {
            owner_references: Some(refs),
            finalizers: Some(finalizers.iter().map(|s| s.to_string()).collect()),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn removing_owners_keeps_the_others_in_order() {
        let m = meta(vec![r("a", None), r("b", Some(true)), r("c", None)], &[]);
        let f = without_owners(&m, &["b".into()]).unwrap();
        let uids: Vec<&str> = f["ownerReferences"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["uid"].as_str().unwrap())
            .collect();
        assert_eq!(uids, vec!["a", "c"]);
        assert_eq!(f["ownerReferences"][0]["apiVersion"], "v1");
        // The last one removed: the field goes.
        let m = meta(vec![r("a", None)], &[]);
        assert_eq!(
            without_owners(&m, &["a".into()]).unwrap()["ownerReferences"],
            Value::Null
        );
        // Nothing to remove: no patch.
        assert!(without_owners(&m, &["z".into()]).is_none());
    }

    #[test]
    fn unblocking_sets_only_blocking_references_to_false() {
        let m = meta(vec![r("a", Some(true)), r("b", None)], &[]);
        let f = unblocked(&m).unwrap();
        assert_eq!(f["ownerReferences"][0]["blockOwnerDeletion"], false);
        assert!(f["ownerReferences"][1].get("blockOwnerDeletion").is_none());
        assert!(unblocked(&meta(vec![r("a", Some(false))], &[])).is_none());
    }

    #[test]
    fn removing_a_finalizer_keeps_the_others() {
        let m = meta(vec![], &["x.io/keep", "foregroundDeletion"]);
        let f = without_finalizer(&m, "foregroundDeletion").unwrap();
        assert_eq!(f["finalizers"], json!(["x.io/keep"]));
        let m = meta(vec![], &["orphan"]);
        assert_eq!(
            without_finalizer(&m, "orphan").unwrap()["finalizers"],
            Value::Null
        );
        assert!(without_finalizer(&m, "foregroundDeletion").is_none());
    }
}
