//! What the patch benchmark sends: the Deployment it creates and the patches
//! its clients send, with their URIs and content types.
//!
//! Every patch changes the same things, so that each one is a real update:
//! the shared `bench.wharf.dev/revision` annotation, the client's own
//! `bench.wharf.dev/client-NN` annotation, and in the pod template the `web`
//! container's image tag and its `BENCH_REVISION` env var. The containers and
//! env lists are merged by their `name` keys (strategic merge) or as
//! associative lists (apply), so both merge paths do keyed list work.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, RollingUpdateDeployment,
};
use k8s_openapi::api::core::v1::{EnvVar, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;

use super::{PatchKind, Target, PATCH_NAMESPACE};
use crate::apiserver::make_pod;

/// The annotation every patch sets to its revision.
pub(super) const REVISION_ANNOTATION: &str = "bench.wharf.dev/revision";
/// The `web` container's env var every patch sets to its revision.
pub(super) const REVISION_ENV: &str = "BENCH_REVISION";
/// The image every patch retags.
pub(super) const WEB_IMAGE: &str = "registry.example.com/bench/web";
/// Field manager of the creates.
pub(super) const SETUP_MANAGER: &str = "bench-setup";
/// Field manager of every strategic-merge patch, as `kubectl patch` uses one
/// name for every invocation.
pub(super) const SMP_MANAGER: &str = "bench-smp";

pub(super) fn deployments_path() -> String {
    format!("/apis/apps/v1/namespaces/{PATCH_NAMESPACE}/deployments")
}

/// The Deployment client `t` patches in a phase.
pub(super) fn deployment_name(kind: PatchKind, target: Target, t: usize) -> String {
    let k = match kind {
        PatchKind::Strategic => "smp",
        PatchKind::Apply => "ssa",
    };
    match target {
        Target::Shared => format!("patch-{k}"),
        Target::PerClient => format!("patch-{k}-{t:02}"),
    }
}

/// Client `t`'s own annotation (and, for apply, label).
pub(super) fn client_key(t: usize) -> String {
    format!("bench.wharf.dev/client-{t:02}")
}

/// The field manager of client `t`'s applies.
pub(super) fn apply_manager(t: usize) -> String {
    format!("bench-{t:02}")
}

/// What patch `i` of client `t` sets the shared fields to.
pub(super) fn revision(t: usize, i: usize) -> String {
    format!("c{t:02}-{i}")
}

pub(super) fn image(rev: &str) -> String {
    format!("{WEB_IMAGE}:1.27.3-{rev}")
}

/// A Deployment as an application would ship it: 3 replicas, a rolling
/// update strategy, and the API server benchmark's pod (two containers with
/// env, ports, resources and a probe) as its template; about 2.5 KB of JSON.
pub(super) fn deployment_json(name: &str) -> Vec<u8> {
    let pod = make_pod(0);
    let mut spec = pod.spec.expect("the benchmark pod has a spec");
    let web = spec
        .containers
        .iter_mut()
        .find(|c| c.name == "web")
        .expect("the benchmark pod has a web container");
    web.env.get_or_insert_with(Vec::new).push(EnvVar {
        name: REVISION_ENV.into(),
        value: Some("initial".into()),
        ..EnvVar::default()
    });
    let mut template_labels = pod.metadata.labels.unwrap_or_default();
    // Set on pods by the ReplicaSet controller, never in a template; the shard
    // is per pod.
    template_labels.remove("pod-template-hash");
    template_labels.remove("bench.wharf.dev/shard");
    let selector: BTreeMap<String, String> =
        ["app.kubernetes.io/name", "app.kubernetes.io/instance"]
            .into_iter()
            .map(|k| (k.to_string(), template_labels[k].clone()))
            .collect();
    let mut labels = selector.clone();
    labels.insert("app.kubernetes.io/part-of".into(), "wharf-bench".into());
    let annotations = [
        (REVISION_ANNOTATION, "initial"),
        ("kubernetes.io/change-cause", "initial rollout"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let d = Deployment {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(PATCH_NAMESPACE.into()),
            labels: Some(labels),
            annotations: Some(annotations),
            ..ObjectMeta::default()
        },
        spec: DeploymentSpec {
            replicas: Some(3),
            selector: LabelSelector {
                match_labels: Some(selector),
                ..LabelSelector::default()
            },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(template_labels),
                    annotations: pod.metadata.annotations,
                    ..ObjectMeta::default()
                }),
                spec: Some(spec),
            },
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(IntOrString::String("25%".into())),
                    max_unavailable: Some(IntOrString::Int(0)),
                }),
            }),
            revision_history_limit: Some(10),
            progress_deadline_seconds: Some(600),
            ..DeploymentSpec::default()
        },
        status: None,
    };
    let mut v = serde_json::to_value(d).expect("a deployment serializes");
    let obj = v.as_object_mut().expect("a deployment is an object");
    obj.insert("apiVersion".into(), "apps/v1".into());
    obj.insert("kind".into(), "Deployment".into());
    serde_json::to_vec(&v).expect("a deployment serializes")
}

/// Patch `i` of client `t` to the Deployment `name`: the shared revision
/// annotation, the client's own annotation (set to `i`), and the `web`
/// container's image and `BENCH_REVISION`. An apply also names the object and
/// carries the client's own label, which it keeps owning throughout.
pub(super) fn patch_body(kind: PatchKind, name: &str, t: usize, i: usize) -> Vec<u8> {
    let rev = revision(t, i);
    let annotations = json!({
        REVISION_ANNOTATION: rev,
        client_key(t): i.to_string(),
    });
    let spec = json!({"template": {"spec": {"containers": [{
        "name": "web",
        "image": image(&rev),
        "env": [{"name": REVISION_ENV, "value": rev}],
    }]}}});
    let body = match kind {
        PatchKind::Strategic => json!({
            "metadata": {"annotations": annotations},
            "spec": spec,
        }),
        PatchKind::Apply => json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": name,
                "namespace": PATCH_NAMESPACE,
                "labels": {client_key(t): format!("c{t:02}")},
                "annotations": annotations,
            },
            "spec": spec,
        }),
    };
    serde_json::to_vec(&body).expect("a patch serializes")
}

/// Byte strings the object returned by patch `i` of client `t` must contain:
/// its own annotation and its image (the response is the object with the
/// patch applied, whatever the other clients did).
pub(super) fn expected_in_response(t: usize, i: usize) -> [String; 2] {
    [
        format!("\"{}\":\"{i}\"", client_key(t)),
        format!("\"image\":\"{}\"", image(&revision(t, i))),
    ]
}

pub(super) fn patch_uri(kind: PatchKind, name: &str, t: usize) -> String {
    let base = format!("{}/{name}", deployments_path());
    match kind {
        PatchKind::Strategic => format!("{base}?fieldManager={SMP_MANAGER}"),
        PatchKind::Apply => format!("{base}?fieldManager={}&force=true", apply_manager(t)),
    }
}

pub(super) fn patch_request(kind: PatchKind, uri: &str, body: Vec<u8>) -> http::Request<Vec<u8>> {
    let content_type = match kind {
        PatchKind::Strategic => "application/strategic-merge-patch+json",
        // JSON is YAML; kubectl sends its applies as JSON under this type.
        PatchKind::Apply => "application/apply-patch+yaml",
    };
    http::Request::patch(uri)
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::CONTENT_TYPE, content_type)
        .body(body)
        .expect("a valid PATCH")
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    #[test]
    fn deployments_are_realistic_and_valid_json() {
        let body = deployment_json("patch-smp");
        assert!(
            (2_000..=3_000).contains(&body.len()),
            "{} bytes",
            body.len()
        );
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["kind"], "Deployment");
        assert_eq!(v["apiVersion"], "apps/v1");
        assert_eq!(v["metadata"]["name"], "patch-smp");
        assert_eq!(v["metadata"]["namespace"], PATCH_NAMESPACE);
        // The selector must match the template's labels or the create fails.
        let selector = v["spec"]["selector"]["matchLabels"].as_object().unwrap();
        assert!(!selector.is_empty());
        for (k, val) in selector {
            assert_eq!(&v["spec"]["template"]["metadata"]["labels"][k], val, "{k}");
        }
        let containers = v["spec"]["template"]["spec"]["containers"]
            .as_array()
            .unwrap();
        assert_eq!(containers.len(), 2);
        let web = containers.iter().find(|c| c["name"] == "web").unwrap();
        assert!(web["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == REVISION_ENV && e["value"] == "initial"));
        assert!(v["spec"]["template"]["metadata"]["labels"]
            .get("pod-template-hash")
            .is_none());
    }

    #[test]
    fn strategic_patches_change_keyed_list_entries() {
        let body = patch_body(PatchKind::Strategic, "patch-smp", 3, 17);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["metadata"]["annotations"][REVISION_ANNOTATION], "c03-17");
        assert_eq!(
            v["metadata"]["annotations"]["bench.wharf.dev/client-03"],
            "17"
        );
        // No apiVersion/kind/name: a strategic-merge patch is a partial object.
        assert!(v.get("kind").is_none() && v["metadata"].get("name").is_none());
        let web = &v["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(web["name"], "web", "the merge key of containers");
        assert_eq!(web["image"], format!("{WEB_IMAGE}:1.27.3-c03-17"));
        assert_eq!(web["env"][0]["name"], REVISION_ENV, "the merge key of env");
        assert_eq!(web["env"][0]["value"], "c03-17");
        assert!(body.len() < 400, "{} bytes", body.len());
    }

    #[test]
    fn applies_name_the_object_and_the_client() {
        let body = patch_body(PatchKind::Apply, "patch-ssa", 31, 5);
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["apiVersion"], "apps/v1");
        assert_eq!(v["kind"], "Deployment");
        assert_eq!(v["metadata"]["name"], "patch-ssa");
        assert_eq!(v["metadata"]["namespace"], PATCH_NAMESPACE);
        assert_eq!(v["metadata"]["labels"]["bench.wharf.dev/client-31"], "c31");
        assert_eq!(
            v["metadata"]["annotations"]["bench.wharf.dev/client-31"],
            "5"
        );
        assert_eq!(
            v["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"],
            "c31-5"
        );
        assert_eq!(
            patch_uri(PatchKind::Apply, "patch-ssa", 31),
            format!(
                "/apis/apps/v1/namespaces/{PATCH_NAMESPACE}/deployments/patch-ssa?fieldManager=bench-31&force=true"
            )
        );
        assert_eq!(
            patch_request(PatchKind::Apply, "/x", body).headers()[http::header::CONTENT_TYPE],
            "application/apply-patch+yaml"
        );
    }

    #[test]
    fn patches_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for kind in [PatchKind::Strategic, PatchKind::Apply] {
            for t in 0..32 {
                for i in 0..20 {
                    assert!(seen.insert(patch_body(kind, "d", t, i)), "{kind} {t} {i}");
                }
            }
        }
        assert_eq!(
            deployment_name(PatchKind::Apply, Target::PerClient, 7),
            "patch-ssa-07"
        );
        assert_eq!(
            deployment_name(PatchKind::Strategic, Target::Shared, 7),
            "patch-smp"
        );
    }
}
