//! Patch formats beyond RFC 6902 and RFC 7386.
//!
//! - [`strategic`]: `application/strategic-merge-patch+json`, upstream's
//!   strategic merge patch (`k8s.io/apimachinery/pkg/util/strategicpatch`),
//!   which merges lists by key where the schema says so and understands the
//!   `$patch`, `$retainKeys`, `$setElementOrder/` and
//!   `$deleteFromPrimitiveList/` directives. kubectl's `apply`, `edit`,
//!   `patch`, `set` and `rollout restart` send it.
//!
//! - [`json`]: `application/json-patch+json` (RFC 6902), with upstream's
//!   limit on what `copy` operations may add.
//!
//! [`meta`] looks up patch metadata in the schemas of `crate::schema`;
//! [`gofmt`] prints values in error messages as upstream does.

pub mod gofmt;
pub mod json;
pub mod meta;
pub mod strategic;

use serde_json::{Map, Value};

use crate::error::{ApiError, FieldError};
use crate::registry::FieldValidation;
use crate::resources::ResourceInfo;
use crate::strategy::Strategy;

/// Why a patch could not be applied, classified by the status upstream
/// answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatchError {
    /// A malformed directive: 400 BadRequest.
    #[error("{0}")]
    BadRequest(String),
    /// A list of lists: 422, which upstream words generically.
    #[error("lists of lists are not supported")]
    ListOfLists,
    /// Anything else upstream does not classify (a missing merge key, an
    /// unknown `$patch` value, a field the schema lacks): upstream returns
    /// the bare error, which its API server serves as a 500 with an empty
    /// reason. kubectl prints it as `Error from server: <message>`.
    #[error("{0}")]
    Internal(String),
}

impl From<PatchError> for ApiError {
    fn from(e: PatchError) -> ApiError {
        match e {
            PatchError::BadRequest(m) => ApiError::bad_request(m),
            PatchError::ListOfLists => ApiError::rejected(),
            PatchError::Internal(m) => ApiError {
                code: 500,
                reason: "",
                message: m,
                details: None,
                retry_after: None,
            },
        }
    }
}

/// Decode a strategic merge patch body as upstream does: invalid JSON is
/// refused before anything else, a body that is not an object cannot decode
/// into a map, and `null` is an empty patch.
pub fn decode_strategic(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    let v: Value =
        serde_json::from_slice(body).map_err(|_| ApiError::bad_request("invalid JSON patch"))?;
    let found = match v {
        Value::Object(m) => return Ok(m),
        Value::Null => return Ok(Map::new()),
        Value::Array(_) => "array",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
    };
    Err(ApiError::bad_request(format!(
        "json: cannot unmarshal {found} into Go value of type map[string]interface {{}}"
    )))
}

/// Apply a strategic merge patch to a stored object of `info`'s kind.
///
/// Like upstream's decoding of the result into the typed object, `null`
/// members left by the patch (inside list items or maps added as a whole)
/// are dropped: they would decode to zero values that are not serialized.
pub fn apply_strategic(
    info: &ResourceInfo,
    original: &Value,
    patch: &Map<String, Value>,
) -> Result<Value, ApiError> {
    let schemas = crate::schema::builtin();
    let Some((def, node)) = schemas
        .definition_of(info.group, info.version, info.kind)
        .and_then(|d| Some((d, schemas.definition(d)?)))
    else {
        // Only kinds with a compiled-in schema support strategic merge
        // (upstream serves custom resources without it).
        return Err(ApiError::unsupported_media_type(
            "application/strategic-merge-patch+json",
        ));
    };
    let Value::Object(original) = original.clone() else {
        return Err(ApiError::internal("the stored object is not a JSON object"));
    };
    let merged = strategic::apply(original, patch.clone(), meta::Schema::root(node, def))?;
    let mut merged = Value::Object(merged);
    drop_nulls(&mut merged);
    Ok(merged)
}

/// Remove `null` members of maps, at any depth.
fn drop_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, v| !v.is_null());
            m.values_mut().for_each(drop_nulls);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_nulls),
        _ => {}
    }
}

/// With `fieldValidation=Strict`, fields of a patched object its kind does
/// not know fail the request as upstream's decoding of a strategic merge
/// patch result does: a 422 naming the patch. (Otherwise they are dropped,
/// with warnings for `Warn`, like those of a created object.)
pub fn refuse_unknown(
    strat: &dyn Strategy,
    obj: &Value,
    patch: &Map<String, Value>,
    validation: FieldValidation,
) -> Result<(), ApiError> {
    if validation != FieldValidation::Strict {
        return Ok(());
    }
    let unknown = strat.unknown_fields(obj);
    if unknown.is_empty() {
        return Ok(());
    }
    let msgs: Vec<String> = unknown
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    let shown = gofmt::v(&Value::Object(patch.clone()));
    let detail = format!("strict decoding error: {}", msgs.join(", "));
    Err(ApiError::invalid(
        "",
        "",
        "",
        &[FieldError::invalid("patch", shown, detail)],
    ))
}
