//! Subresources that speak another kind than their parent: `scale`
//! (autoscaling/v1 Scale), `binding`, `eviction`, `namespaces/finalize`,
//! and `serviceaccounts/token` (in `satoken`).

use std::convert::Infallible;

use bytes::Bytes;
use http::{Method, Response};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use serde_json::{json, Value};

use crate::error::{ApiError, ApiResult, FieldError};
use crate::registry::delete::DeleteOptions;
use crate::registry::{parse_rv, Registry, WriteOptions};
use crate::route::ResourcePath;
use crate::selector::LabelSelector;

type Body = BoxBody<Bytes, Infallible>;

fn json_response(code: u16, v: &Value) -> Response<Body> {
    let mut r =
        Response::new(Full::new(Bytes::from(serde_json::to_vec(v).unwrap_or_default())).boxed());
    *r.status_mut() = http::StatusCode::from_u16(code).unwrap_or(http::StatusCode::OK);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    r
}

fn decode(content_type: &str, body: &[u8]) -> ApiResult<Value> {
    crate::handler::decode_object(content_type, body)
}

fn decode_patch(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))
}

/// Where the replicas a Scale speaks of live in the parent object.
static REPLICAS: std::sync::LazyLock<[crate::apply::path::PathElement; 2]> =
    std::sync::LazyLock::new(|| {
        [
            crate::apply::path::PathElement::field("spec"),
            crate::apply::path::PathElement::field("replicas"),
        ]
    });

/// The label selector of a workload, as the Scale status shows it.
fn selector_string(obj: &Value) -> String {
    let sel = &obj["spec"]["selector"];
    // ReplicationControllers have a plain map; the apps kinds a LabelSelector.
    let labels = sel.get("matchLabels").unwrap_or(sel);
    let mut parts: Vec<String> = labels
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some(format!("{k}={}", v.as_str()?)))
                .collect()
        })
        .unwrap_or_default();
    if let Some(exprs) = sel.get("matchExpressions").and_then(Value::as_array) {
        for e in exprs {
            let key = e["key"].as_str().unwrap_or("");
            let vals: Vec<&str> = e["values"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            parts.push(match e["operator"].as_str().unwrap_or("") {
                "In" => format!("{key} in ({})", vals.join(",")),
                "NotIn" => format!("{key} notin ({})", vals.join(",")),
                "Exists" => key.to_string(),
                "DoesNotExist" => format!("!{key}"),
                _ => continue,
            });
        }
    }
    parts.sort();
    parts.join(",")
}

fn to_scale(obj: &Value) -> Value {
    let m = &obj["metadata"];
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            "name": m["name"], "namespace": m["namespace"], "uid": m["uid"],
            "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
        },
        "spec": { "replicas": obj["spec"]["replicas"].as_i64().unwrap_or(1) },
        "status": { "replicas": obj["status"]["replicas"].as_i64().unwrap_or(0), "selector": selector_string(obj) },
    })
}

/// Handle a subresource request.
pub async fn handle(
    reg: &Registry,
    rp: &ResourcePath,
    sub: &str,
    method: Method,
    content_type: &str,
    body: Bytes,
    opts: &WriteOptions,
) -> ApiResult<Response<Body>> {
    let info = rp.info;
    let name = rp.name.clone().ok_or_else(ApiError::not_found_path)?;
    let ns = rp.namespace.as_deref();
    let parent = ResourcePath {
        info,
        namespace: rp.namespace.clone(),
        name: Some(name.clone()),
        subresource: None,
    };
    match (sub, method) {
        ("scale", Method::GET) => Ok(json_response(
            200,
            &to_scale(&reg.get(&parent, None).await?),
        )),
        ("scale", m @ (Method::PUT | Method::PATCH)) => {
            let current = to_scale(&reg.get(&parent, None).await?);
            let scale = if m == Method::PUT {
                decode(content_type, &body)?
            } else {
                let patch = decode_patch(&body)?;
                let mut doc = current.clone();
                match content_type.split(';').next().unwrap_or("").trim() {
                    "application/json-patch+json" => {
                        let p: json_patch::Patch = serde_json::from_value(patch)
                            .map_err(|e| ApiError::bad_request(e.to_string()))?;
                        crate::patch::json::check_operations(p.len())?;
                        crate::patch::json::apply(&mut doc, &p)?;
                    }
                    "application/merge-patch+json" | "application/strategic-merge-patch+json" => {
                        json_patch::merge(&mut doc, &patch)
                    }
                    other => return Err(ApiError::unsupported_media_type(other)),
                }
                doc
            };
            let replicas = scale["spec"]["replicas"].as_i64().unwrap_or(0);
            if replicas < 0 {
                return Err(ApiError::invalid(
                    "autoscaling",
                    "Scale",
                    &name,
                    &[FieldError::invalid(
                        "spec.replicas",
                        replicas,
                        "must be greater than or equal to 0",
                    )],
                ));
            }
            let expected = scale["metadata"]["resourceVersion"]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(parse_rv)
                .transpose()?;
            let manager = crate::apply::manager_of(opts.field_manager.as_deref());
            let api_version = info.api_version();
            let updated = reg
                .modify(info, ns, &name, expected, |obj| {
                    let before = obj.clone();
                    obj["spec"]["replicas"] = json!(replicas);
                    if obj["spec"] != Value::Null {
                        let g = obj["metadata"]["generation"].as_i64().unwrap_or(0);
                        obj["metadata"]["generation"] = json!(g + 1);
                    }
                    // The replicas are the parent's `.spec.replicas`; the
                    // scaler takes them over as a `scale` manager.
                    let w = crate::apply::writer(info, "scale", manager, &api_version);
                    crate::apply::managed::track_field(&before, obj, REPLICAS.as_slice(), &w);
                    Ok(())
                })
                .await?;
            Ok(json_response(200, &to_scale(&updated)))
        }
        ("binding", Method::POST) => {
            let b = decode(content_type, &body)?;
            let node = b["target"]["name"].as_str().unwrap_or("").to_string();
            if node.is_empty() {
                return Err(ApiError::invalid(
                    "",
                    "Binding",
                    &name,
                    &[FieldError::required("target.name", "")],
                ));
            }
            reg.modify(info, ns, &name, None, |pod| {
                if pod["metadata"]
                    .get("deletionTimestamp")
                    .is_some_and(|d| !d.is_null())
                {
                    return Err(ApiError::conflict(
                        info.group_resource(),
                        &name,
                        "pod is being deleted, cannot be assigned to a host",
                    ));
                }
                match pod["spec"]["nodeName"].as_str() {
                    Some(n) if !n.is_empty() => Err(ApiError::conflict(
                        info.group_resource(),
                        &name,
                        &format!("pod {name} is already assigned to node \"{n}\""),
                    )),
                    _ => {
                        pod["spec"]["nodeName"] = json!(node);
                        Ok(())
                    }
                }
            })
            .await?;
            Ok(json_response(
                201,
                &json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 }),
            ))
        }
        ("eviction", Method::POST) => {
            let ev = decode(content_type, &body)?;
            let pod = reg.get(&parent, None).await?;
            let labels = pod["metadata"]["labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default();
            let pdbs =
                crate::resources::lookup("policy", "v1", "poddisruptionbudgets").expect("served");
            let prefix = format!("{}{}/", pdbs.key_prefix(), ns.unwrap_or(""));
            let (items, _) = reg.cache.list(&prefix);
            for pdb in items {
                let v = pdb.value();
                let sel =
                    selector_string(&json!({ "spec": { "selector": v["spec"]["selector"] } }));
                let matches = LabelSelector::parse(&sel)
                    .map(|s| !sel.is_empty() && s.matches(&labels))
                    .unwrap_or(false);
                if matches && v["status"]["disruptionsAllowed"].as_i64().unwrap_or(0) < 1 {
                    let mut e = ApiError::too_many_requests(
                        "Cannot evict pod as it would violate the pod's disruption budget.",
                        10,
                    );
                    e.details = Some(
                        json!({ "causes": [{ "reason": "DisruptionBudget", "message": format!("The disruption budget {} needs {} healthy pods and has {} currently", pdb.name, v["status"]["desiredHealthy"], v["status"]["currentHealthy"]) }] }),
                    );
                    return Err(e);
                }
            }
            let opts = DeleteOptions::default()
                .merge_body(ev.get("deleteOptions").unwrap_or(&Value::Null))?;
            reg.delete(&parent, &opts).await?;
            Ok(json_response(
                201,
                &json!({ "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201 }),
            ))
        }
        ("token", Method::POST) => Ok(json_response(
            201,
            &crate::satoken::token_request(reg, &parent, &decode(content_type, &body)?).await?,
        )),
        ("finalize", Method::PUT) => {
            let ns_obj = decode(content_type, &body)?;
            let finalizers = ns_obj["spec"]["finalizers"].clone();
            let updated = reg
                .modify(info, None, &name, None, |obj| {
                    obj["spec"]["finalizers"] = if finalizers.is_null() {
                        json!([])
                    } else {
                        finalizers.clone()
                    };
                    Ok(())
                })
                .await?;
            // With every finalizer gone, a terminating namespace is removed.
            let done = updated["spec"]["finalizers"]
                .as_array()
                .is_none_or(|f| f.is_empty())
                && updated["metadata"]
                    .get("deletionTimestamp")
                    .is_some_and(|d| !d.is_null())
                && updated["metadata"]["finalizers"]
                    .as_array()
                    .is_none_or(|f| f.is_empty());
            if done {
                let _ = reg.delete(&parent, &DeleteOptions::default()).await;
            }
            Ok(json_response(200, &updated))
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "{sub} does not support this method"
        ))),
    }
}
