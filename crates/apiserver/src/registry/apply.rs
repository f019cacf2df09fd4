//! PATCH with `application/apply-patch+yaml`: server-side apply. The merge
//! and the ownership rules live in [`crate::apply`]; this is the verb: read
//! the configuration, apply it to the stored object with the usual
//! compare-and-swap, or create the object when there is none.

use serde_json::{json, Value};

use super::meta::{meta_str, metadata_mut};
use super::write::Track;
use super::{Registry, WriteOptions, WriteResult};
use crate::error::{ApiError, ApiResult};
use crate::route::ResourcePath;

/// How often an apply retries when the object appears or disappears under it.
const CREATE_RACE_RETRIES: usize = 4;

/// The configuration: YAML, or JSON (which upstream reads as YAML too).
fn decode_config(body: &[u8]) -> ApiResult<Value> {
    let starts_json = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    let v: Value = if starts_json {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
    } else {
        crate::yaml::decode(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "error decoding patch: an apply configuration must be an object",
        ));
    }
    Ok(v)
}

impl Registry {
    /// Apply a configuration to the object `rp` names, creating it if absent
    /// (except through a subresource).
    pub(super) async fn apply_patch(
        &self,
        rp: &ResourcePath,
        body: &[u8],
        force: bool,
        opts: &WriteOptions,
    ) -> ApiResult<WriteResult> {
        let info = rp.info;
        let name = rp
            .name
            .clone()
            .ok_or_else(|| ApiError::method_not_allowed("patch needs a name"))?;
        let mut config = decode_config(body)?;
        let ty = crate::apply::schema_for(info);
        let api_version = info.api_version();
        crate::apply::check_config(ty, &api_version, info.kind, &config)?;
        match meta_str(&config, "name") {
            Some(n) if !n.is_empty() && n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )))
            }
            _ => {}
        }
        // A configuration may pin the version it was written against.
        let wanted_rv = meta_str(&config, "resourceVersion")
            .filter(|s| !s.is_empty())
            .map(super::parse_rv)
            .transpose()?;
        if let Some(m) = config.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        let sub = rp.subresource.clone().unwrap_or_default();
        let manager = opts.field_manager.clone().unwrap_or_default();
        let writer = || crate::apply::writer(info, &sub, &manager, &api_version);
        let mut last_err = None;
        for _ in 0..CREATE_RACE_RETRIES {
            let updated = self
                .guaranteed_update(
                    rp,
                    &name,
                    wanted_rv,
                    opts,
                    Vec::new(),
                    Track::Precomputed,
                    |old| crate::apply::apply(ty, Some(old), &config, &writer(), force),
                )
                .await;
            match updated {
                Err(e) if e.code == 404 && rp.subresource.is_none() => {}
                other => return other,
            }
            let mut obj = crate::apply::apply(ty, None, &config, &writer(), force)?;
            metadata_mut(&mut obj).insert("name".into(), json!(name));
            match self.create_tracked(rp, obj, opts, Track::Precomputed).await {
                // Created by someone else meanwhile: apply to theirs.
                Err(e) if e.reason == "AlreadyExists" => last_err = Some(e),
                other => return other,
            }
        }
        Err(last_err.unwrap_or_else(|| {
            ApiError::conflict(
                info.group_resource(),
                &name,
                "too many concurrent updates; try again",
            )
        }))
    }
}
