//! The `scale` subresource of a custom resource: an `autoscaling/v1` Scale
//! read from and written to the paths the CRD names. A write goes through
//! the resource's own strategy (schema validation included), as upstream's
//! scale storage updates the custom resource with its main strategy.

use http::Method;
use serde_json::{json, Value};

use super::definition::ScaleDef;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::registry::{parse_rv, Registry, WriteOptions};
use crate::route::ResourcePath;
use crate::strategy::custom::nested_int;

/// Build the Scale of a custom resource; `None` replicas when the spec path is unset.
fn to_scale(cr: &Value, def: &ScaleDef) -> ApiResult<(Value, bool)> {
    let spec = nested_int(cr, &def.spec_replicas_path).map_err(ApiError::internal)?;
    let status = nested_int(cr, &def.status_replicas_path).map_err(ApiError::internal)?;
    let mut selector = String::new();
    if let Some(p) = &def.label_selector_path {
        let found = p
            .trim_start_matches('.')
            .split('.')
            .try_fold(cr, |cur, k| cur.get(k));
        match found {
            Some(Value::String(s)) => selector = s.clone(),
            Some(Value::Null) | None => {}
            Some(other) => {
                return Err(ApiError::internal(format!(
                    "{p} accessor error: {other} is of the type {}, expected string",
                    if other.is_number() {
                        "float64"
                    } else {
                        "non-string"
                    }
                )))
            }
        }
    }
    let m = &cr["metadata"];
    let mut meta = json!({
        "name": m["name"], "uid": m["uid"],
        "resourceVersion": m["resourceVersion"], "creationTimestamp": m["creationTimestamp"],
    });
    if let Some(ns) = m.get("namespace") {
        meta["namespace"] = ns.clone();
    }
    let mut status_v = json!({ "replicas": status.unwrap_or(0) });
    if !selector.is_empty() {
        status_v["selector"] = json!(selector);
    }
    Ok((
        json!({
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": meta,
            "spec": { "replicas": spec.unwrap_or(0) },
            "status": status_v,
        }),
        spec.is_some(),
    ))
}

/// Set the integer at a `.a.b` path, creating objects on the way.
fn set_path(obj: &mut Value, path: &str, v: i64) -> ApiResult<()> {
    let parts: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let mut cur = obj;
    for (i, p) in parts.iter().enumerate() {
        if !cur.is_object() {
            return Err(ApiError::internal(format!(
                "value cannot be set because {} is not a map",
                parts[..i].join(".")
            )));
        }
        if i + 1 == parts.len() {
            cur[*p] = json!(v);
        } else {
            if cur.get(*p).is_none_or(Value::is_null) {
                cur[*p] = json!({});
            }
            cur = &mut cur[*p];
        }
    }
    Ok(())
}

/// Apply a patch or take a body as the new Scale.
fn desired_scale(
    current: &Value,
    method: &Method,
    content_type: &str,
    body: &[u8],
) -> ApiResult<Value> {
    if *method == Method::PUT {
        return crate::handler::decode_object(content_type, body);
    }
    let patch: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
    let mut doc = current.clone();
    match content_type.split(';').next().unwrap_or("").trim() {
        "application/json-patch+json" => {
            let p: json_patch::Patch = serde_json::from_value(patch)
                .map_err(|e| ApiError::bad_request(format!("error decoding json patch: {e}")))?;
            crate::patch::json::check_operations(p.len())?;
            crate::patch::json::apply(&mut doc, &p)?;
        }
        "application/merge-patch+json" => json_patch::merge(&mut doc, &patch),
        _ => {
            let mut e = ApiError::unsupported_media_type(content_type);
            e.message = "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml".into();
            return Err(e);
        }
    }
    Ok(doc)
}

/// GET, PUT or PATCH of `<resource>/<name>/scale`; returns the code and the Scale.
pub async fn handle(
    reg: &Registry,
    rp: &ResourcePath,
    method: Method,
    content_type: &str,
    body: &[u8],
    opts: &WriteOptions,
) -> ApiResult<(u16, Value)> {
    let name = rp.name.clone().ok_or_else(ApiError::not_found_path)?;
    let (_, version) = super::version_of(rp.info).ok_or_else(ApiError::not_found_path)?;
    let def = version.scale.clone().ok_or_else(ApiError::not_found_path)?;
    let parent = ResourcePath {
        info: rp.info,
        namespace: rp.namespace.clone(),
        name: Some(name.clone()),
        subresource: None,
    };
    let cr = reg.get(&parent, None).await?;
    let (current, found) = to_scale(&cr, &def)?;
    if method == Method::GET {
        if !found {
            return Err(ApiError::internal(format!(
                "the spec replicas field {:?} does not exist",
                def.spec_replicas_path
            )));
        }
        return Ok((200, current));
    }
    if !matches!(method, Method::PUT | Method::PATCH) {
        return Err(ApiError::method_not_allowed(format!(
            "{method} is not supported on {}/scale",
            rp.info.plural
        )));
    }
    let desired = desired_scale(&current, &method, content_type, body)?;
    if desired
        .get("kind")
        .and_then(Value::as_str)
        .is_some_and(|k| k != "Scale")
    {
        return Err(ApiError::bad_request(format!(
            "wrong object passed to Scale update: kind {}",
            desired["kind"]
        )));
    }
    let replicas = match desired.pointer("/spec/replicas") {
        None | Some(Value::Null) if !found && method == Method::PATCH => {
            return Err(ApiError::bad_request(format!(
                "the spec replicas field {:?} cannot be empty",
                def.spec_replicas_path
            )))
        }
        None | Some(Value::Null) => 0,
        Some(v) => v
            .as_i64()
            .filter(|n| i32::try_from(*n).is_ok())
            .ok_or_else(|| ApiError::bad_request(format!("unable to decode spec.replicas: {v}")))?,
    };
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
    let wanted_rv = desired
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(parse_rv)
        .transpose()?;
    let path = def.spec_replicas_path.clone();
    // Through `scale`, so the scaler is recorded as its manager.
    let through_scale = ResourcePath {
        subresource: Some("scale".into()),
        ..parent.clone()
    };
    let w = reg
        .update_with(&through_scale, wanted_rv, opts, move |old| {
            let mut new = old.clone();
            set_path(&mut new, &path, replicas)?;
            Ok(new)
        })
        .await?;
    let (scale, _) = to_scale(&w.object.value(), &def)?;
    Ok((200, scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def() -> ScaleDef {
        ScaleDef {
            spec_replicas_path: ".spec.replicas".into(),
            status_replicas_path: ".status.replicas".into(),
            label_selector_path: Some(".status.selector".into()),
        }
    }

    #[test]
    fn scale_from_custom_resource() {
        let cr = json!({"metadata": {"name": "a", "namespace": "d", "uid": "u", "resourceVersion": "7", "creationTimestamp": "t"},
                        "spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "app=x"}});
        let (s, found) = to_scale(&cr, &def()).unwrap();
        assert!(found);
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"], json!({"replicas": 2, "selector": "app=x"}));
        assert_eq!(s["metadata"]["resourceVersion"], "7");
        let (s, found) = to_scale(&json!({"metadata": {}}), &def()).unwrap();
        assert!(!found);
        assert_eq!(s["spec"]["replicas"], 0);
        assert!(to_scale(&json!({"spec": {"replicas": "x"}}), &def()).is_err());
    }

    #[test]
    fn sets_nested_paths() {
        let mut v = json!({"spec": {}});
        set_path(&mut v, ".spec.scaling.replicas", 4).unwrap();
        assert_eq!(v, json!({"spec": {"scaling": {"replicas": 4}}}));
        let mut v = json!({"spec": 1});
        assert!(set_path(&mut v, ".spec.replicas", 4).is_err());
    }

    #[test]
    fn patches_the_current_scale() {
        let current = json!({"kind": "Scale", "spec": {"replicas": 1}});
        let d = desired_scale(
            &current,
            &Method::PATCH,
            "application/merge-patch+json",
            br#"{"spec":{"replicas":5}}"#,
        )
        .unwrap();
        assert_eq!(d["spec"]["replicas"], 5);
        let e = desired_scale(
            &current,
            &Method::PATCH,
            "application/strategic-merge-patch+json",
            b"{}",
        )
        .unwrap_err();
        assert_eq!(e.code, 415);
    }
}
