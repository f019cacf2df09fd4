//! The `approval` subresource of CertificateSigningRequests: an update that
//! changes only `status.conditions` (upstream's approval strategy resets
//! everything else to the stored object).

use serde_json::Value;

use crate::error::ApiResult;
use crate::registry::{Registry, WriteOptions, WriteResult};
use crate::route::ResourcePath;

/// `PUT .../certificatesigningrequests/{name}/approval` with `body` decoded:
/// its conditions replace the stored ones; a `resourceVersion` in the body
/// is a precondition, as for any update. Validation is the status
/// strategy's (Approved and Denied exclusive, none removed).
pub async fn approval(
    reg: &Registry,
    rp: &ResourcePath,
    body: Value,
    opts: &WriteOptions,
) -> ApiResult<WriteResult> {
    let wanted_rv = body
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.parse().ok());
    let conditions = body.pointer("/status/conditions").cloned();
    reg.update_with(rp, wanted_rv, opts, move |old| {
        Ok(set_conditions(old, conditions.as_ref()))
    })
    .await
}

/// `old` with `conditions` as its `status.conditions` (none if null).
fn set_conditions(old: &Value, conditions: Option<&Value>) -> Value {
    let mut new = old.clone();
    if !new["status"].is_object() {
        new["status"] = serde_json::json!({});
    }
    match conditions {
        Some(c) if !c.is_null() => new["status"]["conditions"] = c.clone(),
        _ => {
            if let Some(st) = new["status"].as_object_mut() {
                st.remove("conditions");
            }
        }
    }
    new
}

/// A PATCH of `.../approval`: of the patched object `patched`, only the
/// conditions are taken; everything else stays as stored in `old`.
pub fn with_conditions_of(old: &Value, patched: &Value) -> Value {
    set_conditions(old, patched.pointer("/status/conditions"))
}
