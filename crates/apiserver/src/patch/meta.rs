//! Patch metadata lookups while walking a patch down a kind's schema.
//!
//! Upstream looks up each field's Go struct tags (`patchStrategy`,
//! `patchMergeKey`) by reflection as the merge descends. We walk the OpenAPI
//! schema of the same types instead, which carries those tags as the
//! `x-kubernetes-patch-strategy` and `x-kubernetes-patch-merge-key`
//! extensions. Lookups fail where upstream's would, with its messages: a
//! field the struct does not have, or a map or opaque value (such as a
//! `RawExtension`) that a patch tries to descend into.

use serde_json::Value;

use super::PatchError;
use crate::schema::{SchemaNode, REF_PREFIX};

/// A point in the schema, with the Go type name upstream prints in errors.
#[derive(Clone, Copy, Debug)]
pub struct Schema<'a> {
    node: SchemaNode<'a>,
    name: &'a str,
}

/// The patch metadata of one field.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldMeta<'a> {
    /// The strategy other than `retainKeys` (which matters only when a
    /// patch is computed): `merge`, `replace` or empty.
    pub strategy: &'a str,
    /// The merge key of a list of objects; empty if none.
    pub merge_key: &'a str,
}

/// The definition a schema site refers to, shortened to the Go type name
/// (`io.k8s.api.core.v1.PodSpec` is `PodSpec`).
fn type_name(site: &Value) -> &str {
    let r = site.get("$ref").or_else(|| {
        site.get("allOf")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|f| f.get("$ref"))
    });
    r.and_then(Value::as_str)
        .and_then(|r| r.strip_prefix(REF_PREFIX))
        .map(|d| d.rsplit('.').next().unwrap_or(d))
        .unwrap_or("")
}

impl<'a> Schema<'a> {
    /// The schema of a kind's definition, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub fn root(node: SchemaNode<'a>, definition: &'a str) -> Schema<'a> {
        Schema {
            node,
            name: definition.rsplit('.').next().unwrap_or(definition),
        }
    }

    fn at(node: SchemaNode<'a>) -> Schema<'a> {
        Schema {
            node,
            name: type_name(node.site),
        }
    }

    /// A field of an object, as upstream's `LookupPatchMetadataForStruct`.
    pub fn field(&self, key: &str) -> Result<(Schema<'a>, FieldMeta<'a>), PatchError> {
        let v = self.node.value;
        if v.get("properties").is_some_and(Value::is_object) {
            let Some(child) = self.node.property(key) else {
                return Err(PatchError::Internal(format!(
                    "unable to find api field in struct {} for the json field \"{key}\"",
                    self.name
                )));
            };
            return Ok((Schema::at(child), field_meta(&child)?));
        }
        if v.get("additionalProperties").is_some_and(Value::is_object) {
            return Err(PatchError::Internal(
                "merging an object in json but data type is not struct, instead is: map".into(),
            ));
        }
        // An object without declared fields (RawExtension, IntOrString,
        // Quantity) is a Go struct whose JSON form is opaque: no field is found.
        Err(PatchError::Internal(format!(
            "unable to find api field in struct {} for the json field \"{key}\"",
            self.name
        )))
    }

    /// A list field of an object and the schema of its items, as upstream's
    /// `LookupPatchMetadataForSlice`. A field that is not declared a list
    /// stands for its own items (upstream accepts a pointer there).
    pub fn list_field(&self, key: &str) -> Result<(Schema<'a>, FieldMeta<'a>), PatchError> {
        let (field, meta) = self.field(key)?;
        match field.node.items() {
            Some(items) => Ok((Schema::at(items), meta)),
            None => Ok((field, meta)),
        }
    }
}

/// The strategies of a field split as upstream's
/// `extractRetainKeysPatchStrategy` does.
fn field_meta<'a>(node: &SchemaNode<'a>) -> Result<FieldMeta<'a>, PatchError> {
    let merge_key = node.patch_merge_key().unwrap_or("");
    let strategies: Vec<&str> = node.patch_strategy().unwrap_or("").split(',').collect();
    let strategy = match strategies.as_slice() {
        ["retainKeys"] => "",
        [one] => *one,
        ["retainKeys", other] | [other, "retainKeys"] => *other,
        _ => {
            return Err(PatchError::Internal(format!(
                "unexpected patch strategy: [{}]",
                strategies.join(" ")
            )))
        }
    };
    Ok(FieldMeta {
        strategy,
        merge_key,
    })
}
