//! Objects every cluster has: the system namespaces, the system
//! PriorityClasses, and the `kubernetes` service with its endpoints pointing
//! at this API server.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde_json::{json, Value};

use crate::error::ApiResult;
use crate::registry::{Registry, WriteOptions};
use crate::resources;
use crate::route::ResourcePath;

/// Namespaces that always exist.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

fn path(group: &str, plural: &str, ns: Option<&str>, name: Option<&str>) -> ResourcePath {
    ResourcePath {
        info: resources::lookup(group, "v1", plural).expect("bootstrap resources are served"),
        namespace: ns.map(str::to_string),
        name: name.map(str::to_string),
        subresource: None,
    }
}

/// Create `obj` unless it exists; or, with `reconcile`, replace what differs.
async fn ensure(
    reg: &Registry,
    rp: ResourcePath,
    obj: Value,
    reconcile: impl Fn(&Value) -> Option<Value>,
) -> ApiResult<()> {
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let named = ResourcePath {
        name: Some(name),
        ..rp.clone()
    };
    match reg.get(&named, None).await {
        Ok(existing) => {
            if let Some(updated) = reconcile(&existing) {
                reg.update(&named, updated, &WriteOptions::default())
                    .await?;
            }
            Ok(())
        }
        Err(e) if e.code == 404 => match reg.create(&rp, obj, &WriteOptions::default()).await {
            Ok(_) => Ok(()),
            Err(e) if e.code == 409 => Ok(()),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Create or repair the bootstrap objects.
pub async fn run(
    reg: &Registry,
    advertise: SocketAddr,
    service_ip: Ipv4Addr,
) -> anyhow::Result<()> {
    for ns in SYSTEM_NAMESPACES {
        let obj = json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": ns } });
        ensure(reg, path("", "namespaces", None, None), obj, |_| None)
            .await
            .map_err(|e| anyhow::anyhow!("namespace {ns}: {}", e.message))?;
    }
    // The scheduling bootstrap: the two system PriorityClasses.
    for (name, value, description) in [
        ("system-node-critical", 2_000_001_000i64, "Used for system critical pods that must not be moved from their current node."),
        ("system-cluster-critical", 2_000_000_000, "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."),
    ] {
        let obj = json!({
            "apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": { "name": name },
            "value": value, "description": description, "preemptionPolicy": "PreemptLowerPriority",
        });
        ensure(reg, path("scheduling.k8s.io", "priorityclasses", None, None), obj, |_| None)
            .await
            .map_err(|e| anyhow::anyhow!("priority class {name}: {}", e.message))?;
    }
    let port = advertise.port();
    let svc = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": { "name": "kubernetes", "namespace": "default", "labels": { "component": "apiserver", "provider": "kubernetes" } },
        "spec": {
            "type": "ClusterIP", "clusterIP": service_ip.to_string(), "sessionAffinity": "None",
            "ports": [{ "name": "https", "port": 443, "protocol": "TCP", "targetPort": port }],
        },
    });
    ensure(
        reg,
        path("", "services", Some("default"), None),
        svc,
        |existing| {
            let cur = existing["spec"]["ports"][0]["targetPort"].as_u64();
            (cur != Some(port as u64)).then(|| {
                let mut u = existing.clone();
                u["spec"]["ports"][0]["targetPort"] = json!(port);
                u
            })
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("service kubernetes: {}", e.message))?;

    let ip = match advertise.ip() {
        IpAddr::V4(a) if a.is_unspecified() => "127.0.0.1".to_string(),
        a => a.to_string(),
    };
    let subsets = json!([{ "addresses": [{ "ip": ip }], "ports": [{ "name": "https", "port": port, "protocol": "TCP" }] }]);
    let ep = json!({
        "apiVersion": "v1", "kind": "Endpoints",
        "metadata": { "name": "kubernetes", "namespace": "default", "labels": { "endpointslice.kubernetes.io/skip-mirror": "true" } },
        "subsets": subsets,
    });
    let want = subsets.clone();
    ensure(
        reg,
        path("", "endpoints", Some("default"), None),
        ep,
        move |existing| {
            (existing["subsets"] != want).then(|| {
                let mut u = existing.clone();
                u["subsets"] = want.clone();
                u
            })
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("endpoints kubernetes: {}", e.message))?;

    let endpoints = json!([{ "addresses": [ip], "conditions": { "ready": true } }]);
    let slice = json!({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": { "name": "kubernetes", "namespace": "default", "labels": { "kubernetes.io/service-name": "kubernetes" } },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{ "name": "https", "port": port, "protocol": "TCP" }],
    });
    let want = endpoints.clone();
    ensure(
        reg,
        path("discovery.k8s.io", "endpointslices", Some("default"), None),
        slice,
        move |existing| {
            (existing["endpoints"] != want || existing["ports"][0]["port"] != json!(port)).then(
                || {
                    let mut u = existing.clone();
                    u["endpoints"] = want.clone();
                    u["ports"] = json!([{ "name": "https", "port": port, "protocol": "TCP" }]);
                    u
                },
            )
        },
    )
    .await
    .map_err(|e| anyhow::anyhow!("endpointslice kubernetes: {}", e.message))?;
    Ok(())
}
