//! What the scheduler writes to the API server besides bindings' effects:
//! bindings, `PodScheduled=False` with `FailedScheduling`, preemption
//! (nominatedNodeName, the victims' DisruptionTarget and deletion,
//! `Preempted` events), and events.

use k8s_openapi::api::core::v1::{Binding, Event, ObjectReference, Pod};
use kube::api::{Api, DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::json;

use crate::Config;

/// Bind the pod to the node, then record `Scheduled`.
pub async fn bind(client: &Client, cfg: &Config, pod: &Pod, node: &str) -> Result<(), kube::Error> {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let binding = Binding {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            namespace: Some(ns.clone()),
            uid: pod.metadata.uid.clone(),
            ..ObjectMeta::default()
        },
        target: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Node".into()),
            name: Some(node.to_string()),
            ..ObjectReference::default()
        },
    };
    api.create_subresource::<Binding, serde_json::Value>(
        "binding",
        &name,
        &PostParams::default(),
        &binding,
    )
    .await?;
    event(
        client,
        cfg,
        pod,
        "Normal",
        "Scheduled",
        &format!("Successfully assigned {ns}/{name} to {node}"),
    )
    .await;
    Ok(())
}

/// `PodScheduled=False` (and the node nominated for it, after a
/// preemption) and a `FailedScheduling` event.
pub async fn unschedulable(
    client: Client,
    cfg: &Config,
    pod: &Pod,
    msg: &str,
    nominated: Option<&str>,
) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
    let status = pod.status.as_ref();
    let already = status
        .and_then(|s| s.conditions.as_ref())
        .and_then(|cs| cs.iter().find(|c| c.type_ == "PodScheduled"))
        .is_some_and(|c| c.status == "False" && c.message.as_deref() == Some(msg));
    let nominated_already =
        nominated.is_none() || status.and_then(|s| s.nominated_node_name.as_deref()) == nominated;
    if !already || !nominated_already {
        let mut patch = json!({ "status": { "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": msg, "lastProbeTime": null,
            "lastTransitionTime": now(),
        }]}});
        if let Some(n) = nominated {
            patch["status"]["nominatedNodeName"] = json!(n);
        }
        if let Err(e) = api
            .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
            .await
        {
            tracing::debug!(pod = name, error = %e, "setting PodScheduled=False failed");
        }
    }
    event(&client, cfg, pod, "Warning", "FailedScheduling", msg).await;
}

/// Evict the victims for `preemptor` on `node`: a DisruptionTarget
/// condition, the deletion, and a `Preempted` event on each.
pub async fn preempt(client: Client, cfg: &Config, preemptor: &Pod, node: &str, victims: Vec<Pod>) {
    let by = preemptor.metadata.uid.clone().unwrap_or_default();
    let scheduler = preemptor
        .spec
        .as_ref()
        .and_then(|s| s.scheduler_name.clone())
        .unwrap_or_else(|| cfg.name.clone());
    let work = victims.into_iter().map(|v| {
        let client = client.clone();
        let (by, scheduler) = (by.clone(), scheduler.clone());
        async move {
            let ns = v.metadata.namespace.clone().unwrap_or_default();
            let name = v.metadata.name.clone().unwrap_or_default();
            let api: Api<Pod> = Api::namespaced(client.clone(), &ns);
            let patch = json!({ "status": { "conditions": [{
                "type": "DisruptionTarget", "status": "True", "reason": "PreemptionByScheduler",
                "message": format!("{scheduler}: preempting to accommodate a higher priority pod"),
                "lastTransitionTime": now(),
            }]}});
            if let Err(e) = api
                .patch_status(&name, &PatchParams::default(), &Patch::Strategic(patch))
                .await
            {
                tracing::debug!(pod = name, error = %e, "setting DisruptionTarget failed");
            }
            let mut dp = DeleteParams::default();
            if let Some(u) = v.metadata.uid.clone() {
                dp.preconditions = Some(kube::api::Preconditions {
                    uid: Some(u),
                    resource_version: None,
                });
            }
            match api.delete(&name, &dp).await {
                Ok(_) => {}
                Err(kube::Error::Api(s)) if s.code == 404 => return,
                Err(e) => {
                    tracing::warn!(pod = name, error = %e, "deleting a preemption victim failed");
                    return;
                }
            }
            event(
                &client,
                cfg,
                &v,
                "Normal",
                "Preempted",
                &format!("Preempted by pod {by} on node {node}"),
            )
            .await;
        }
    });
    futures::future::join_all(work).await;
}

/// The current time as metav1.Time.
pub fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Record an event about a pod.
pub async fn event(client: &Client, cfg: &Config, pod: &Pod, kind: &str, reason: &str, msg: &str) {
    let ns = pod.metadata.namespace.clone().unwrap_or_default();
    let name = pod.metadata.name.clone().unwrap_or_default();
    let api: Api<Event> = Api::namespaced(client.clone(), &ns);
    let at = now();
    let ev: Event = match serde_json::from_value(json!({
        "metadata": { "generateName": format!("{name}.") },
        "involvedObject": {
            "apiVersion": "v1", "kind": "Pod", "namespace": ns, "name": name,
            "uid": pod.metadata.uid, "resourceVersion": pod.metadata.resource_version,
        },
        "reason": reason, "message": msg, "type": kind,
        "source": { "component": cfg.name },
        "reportingComponent": cfg.name, "reportingInstance": cfg.name,
        "firstTimestamp": at, "lastTimestamp": at, "count": 1,
    })) {
        Ok(e) => e,
        Err(_) => return,
    };
    if let Err(e) = api.create(&PostParams::default(), &ev).await {
        tracing::debug!(pod = name, error = %e, "recording an event failed");
    }
}
