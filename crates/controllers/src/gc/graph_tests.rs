//! Unit tests of the dependency graph.

use super::*;

fn res(api_version: &str, kind: &str, plural: &str, namespaced: bool) -> Arc<Resource> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    Arc::new(Resource {
        ar: ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: api_version.into(),
            kind: kind.into(),
            plural: plural.into(),
        },
        namespaced,
    })
}

fn cm() -> Arc<Resource> {
    res("v1", "ConfigMap", "configmaps", true)
}

fn oref(kind: &str, name: &str, uid: &str, block: Option<bool>) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: kind.into(),
        name: name.into(),
        uid: uid.into(),
        block_owner_deletion: block,
        controller: None,
    }
}

fn meta(uid: &str, ns: &str, owners: Vec<OwnerReference>) -> Meta {
    Meta {
        uid: uid.into(),
        name: format!("n-{uid}"),
        namespace: ns.into(),
        owners,
        ..Meta::default()
    }
}

fn del(uid: &str) -> Effect {
    Effect::AttemptToDelete(uid.into())
}

#[test]
fn an_unobserved_owner_is_queued_for_verification() {
    let mut g = Graph::default();
    let fx = g.upsert(
        &cm(),
        meta("d", "ns", vec![oref("ConfigMap", "n-o", "o", None)]),
    );
    assert_eq!(fx, vec![del("o")]);
    assert!(g.node("o").is_none());
    assert_eq!(g.dependents("o").len(), 1);
}

#[test]
fn an_observed_matching_owner_queues_nothing() {
    let mut g = Graph::default();
    assert!(g.upsert(&cm(), meta("o", "ns", vec![])).is_empty());
    let fx = g.upsert(
        &cm(),
        meta("d", "ns", vec![oref("ConfigMap", "n-o", "o", None)]),
    );
    assert!(fx.is_empty(), "{fx:?}");
}

#[test]
fn deleting_an_owner_queues_its_dependents_and_marks_it_absent() {
    let mut g = Graph::default();
    g.upsert(&cm(), meta("o", "ns", vec![]));
    g.upsert(
        &cm(),
        meta("a", "ns", vec![oref("ConfigMap", "n-o", "o", None)]),
    );
    g.upsert(
        &cm(),
        meta("b", "ns", vec![oref("ConfigMap", "n-o", "o", None)]),
    );
    let fx = g.remove("o");
    let owner = Identity::of_ref(&oref("ConfigMap", "n-o", "o", None), "ns");
    assert_eq!(fx[0], Effect::Absent(owner));
    assert_eq!(&fx[1..], &[del("a"), del("b")]);
    // The dependents still name it, so it stays in the index.
    assert_eq!(g.dependents("o").len(), 2);
    // A deletion of something never seen changes nothing.
    assert!(g.remove("zz").is_empty());
}

#[test]
fn owner_reference_updates_relink_the_graph() {
    let mut g = Graph::default();
    g.upsert(&cm(), meta("o1", "ns", vec![]));
    g.upsert(&cm(), meta("o2", "ns", vec![]));
    g.upsert(
        &cm(),
        meta("d", "ns", vec![oref("ConfigMap", "n-o1", "o1", None)]),
    );
    let fx = g.upsert(
        &cm(),
        meta("d", "ns", vec![oref("ConfigMap", "n-o2", "o2", None)]),
    );
    assert!(fx.is_empty(), "{fx:?}");
    assert!(g.dependents("o1").is_empty());
    assert_eq!(g.dependents("o2").len(), 1);
    // Deleting the dependent unlinks it everywhere.
    g.remove("d");
    assert!(g.dependents("o2").is_empty());
}

#[test]
fn removing_or_unsetting_a_blocking_reference_unblocks_the_owner() {
    let mut g = Graph::default();
    g.upsert(&cm(), meta("o", "ns", vec![]));
    g.upsert(&cm(), meta("p", "ns", vec![]));
    let both = vec![
        oref("ConfigMap", "n-o", "o", Some(true)),
        oref("ConfigMap", "n-p", "p", Some(true)),
    ];
    g.upsert(&cm(), meta("d", "ns", both));
    assert_eq!(g.blocking_dependents("o").len(), 1);
    let fx = g.upsert(
        &cm(),
        meta("d", "ns", vec![oref("ConfigMap", "n-p", "p", Some(false))]),
    );
    assert_eq!(fx, vec![del("o"), del("p")]);
    assert!(g.blocking_dependents("p").is_empty());
    assert_eq!(g.dependents("p").len(), 1);
}

#[test]
fn only_blocking_references_block_a_foreground_deletion() {
    let mut g = Graph::default();
    g.upsert(&cm(), meta("o", "ns", vec![]));
    g.upsert(
        &cm(),
        meta("a", "ns", vec![oref("ConfigMap", "n-o", "o", Some(true))]),
    );
    g.upsert(
        &cm(),
        meta("b", "ns", vec![oref("ConfigMap", "n-o", "o", None)]),
    );
    g.upsert(
        &cm(),
        meta("c", "ns", vec![oref("ConfigMap", "n-o", "o", Some(false))]),
    );
    let blocking: Vec<&str> = g
        .blocking_dependents("o")
        .iter()
        .map(|n| n.id.uid.as_str())
        .collect();
    assert_eq!(blocking, vec!["a"]);
}

#[test]
fn foreground_deletion_queues_all_dependents_then_the_owner_once() {
    let mut g = Graph::default();
    g.upsert(&cm(), meta("o", "ns", vec![]));
    g.upsert(
        &cm(),
        meta("a", "ns", vec![oref("ConfigMap", "n-o", "o", Some(true))]),
    );
    g.upsert(
        &cm(),
        meta("b", "ns", vec![oref("ConfigMap", "n-o", "o", None)]),
    );
    let mut m = meta("o", "ns", vec![]);
    m.deleting = true;
    m.finalizers = vec![FOREGROUND.into()];
    let fx = g.upsert(&cm(), m.clone());
    assert_eq!(fx, vec![del("a"), del("b"), del("o")]);
    assert!(g.node("o").unwrap().deleting_dependents());
    // A later update of the same state starts nothing again.
    assert!(g.upsert(&cm(), m).is_empty());
    // A blocking dependent's deletion brings the owner back.
    assert_eq!(g.remove("a"), vec![del("o")]);
}

#[test]
fn orphan_deletion_queues_the_owner_for_orphaning_once() {
    let mut g = Graph::default();
    let mut m = meta("o", "ns", vec![]);
    assert!(g.upsert(&cm(), m.clone()).is_empty());
    m.deleting = true;
    m.finalizers = vec![ORPHAN.into(), "x/y".into()];
    assert_eq!(
        g.upsert(&cm(), m.clone()),
        vec![Effect::AttemptToOrphan("o".into())]
    );
    assert!(g.upsert(&cm(), m.clone()).is_empty());
    // Seen first already being deleted (e.g. after a restart).
    let mut g = Graph::default();
    assert_eq!(
        g.upsert(&cm(), m),
        vec![Effect::AttemptToOrphan("o".into())]
    );
}

#[test]
fn a_namespaced_owner_in_another_namespace_is_reported_and_checked() {
    let mut g = Graph::default();
    g.upsert(&cm(), meta("o", "a", vec![]));
    let r = oref("ConfigMap", "n-o", "o", None);
    let fx = g.upsert(&cm(), meta("d", "b", vec![r.clone()]));
    assert_eq!(fx.len(), 2);
    assert!(
        matches!(&fx[0], Effect::InvalidNamespace { dependent, owner }
        if dependent.uid == "d" && dependent.namespace == "b" && *owner == r)
    );
    assert_eq!(fx[1], del("d"));
}

#[test]
fn the_owner_observed_after_its_dependent_checks_mismatched_references() {
    let mut g = Graph::default();
    // Named with the wrong namespace, and with the wrong kind.
    g.upsert(
        &cm(),
        meta("d1", "b", vec![oref("ConfigMap", "n-o", "o", None)]),
    );
    g.upsert(
        &cm(),
        meta("d2", "a", vec![oref("Secret", "n-o", "o", None)]),
    );
    g.upsert(
        &cm(),
        meta("d3", "a", vec![oref("ConfigMap", "n-o", "o", None)]),
    );
    let fx = g.upsert(&cm(), meta("o", "a", vec![]));
    assert_eq!(fx.len(), 3, "{fx:?}");
    assert!(matches!(&fx[0], Effect::InvalidNamespace { dependent, .. } if dependent.uid == "d1"));
    assert_eq!(&fx[1..], &[del("d1"), del("d2")]);
}

#[test]
fn a_cluster_scoped_owner_may_own_objects_in_any_namespace() {
    let node = res("v1", "Node", "nodes", false);
    let mut g = Graph::default();
    g.upsert(&node, meta("n", "", vec![]));
    let fx = g.upsert(&cm(), meta("d", "x", vec![oref("Node", "n-n", "n", None)]));
    assert!(fx.is_empty(), "{fx:?}");
}

#[test]
fn a_relist_removes_objects_deleted_while_unwatched() {
    let mut g = Graph::default();
    let node = res("v1", "Node", "nodes", false);
    g.upsert(&cm(), meta("o", "ns", vec![]));
    g.upsert(
        &cm(),
        meta("d", "ns", vec![oref("ConfigMap", "n-o", "o", None)]),
    );
    g.upsert(&node, meta("n", "", vec![]));
    let seen: HashSet<String> = ["d".to_string()].into();
    let fx = g.relisted(&cm().key(), &seen);
    assert!(fx.contains(&del("d")));
    assert!(g.node("o").is_none());
    // Other resources are untouched.
    assert!(g.node("n").is_some());
    assert_eq!(g.len(), 2);
}

#[test]
fn resources_match_their_key() {
    let apps = res("apps/v1", "ReplicaSet", "replicasets", true);
    assert!(apps.has_key(&apps.key()));
    assert!(cm().has_key("/v1/configmaps"));
    assert!(!cm().has_key("/v1/configmap"));
    assert!(!cm().has_key("/v2/configmaps"));
    assert!(!apps.has_key("/v1/replicasets"));
}

#[test]
fn reference_diffs_by_uid() {
    let a = oref("ConfigMap", "a", "1", None);
    let b = oref("ConfigMap", "b", "2", None);
    let b2 = oref("ConfigMap", "b", "2", Some(true));
    let c = oref("ConfigMap", "c", "3", None);
    let (added, removed, changed) =
        references_diffs(&[a.clone(), b.clone()], &[b2.clone(), c.clone()]);
    assert_eq!(added, vec![c]);
    assert_eq!(removed, vec![a]);
    assert_eq!(changed, vec![(b, b2)]);
}

#[test]
fn identity_prints_like_upstream() {
    let id = Identity::of_ref(&oref("ConfigMap", "x", "u1", None), "ns");
    assert_eq!(
        id.to_string(),
        "[v1/ConfigMap, namespace: ns, name: x, uid: u1]"
    );
}
