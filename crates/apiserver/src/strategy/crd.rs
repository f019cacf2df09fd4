//! CustomResourceDefinitions (upstream's `customresourcedefinition` strategy):
//! status belongs to the API server's controllers, `status.storedVersions`
//! always includes the storage version, generation tracks the spec.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{json, Value};

use super::util::keep_from_old;
use super::{unknown, Decoded, Strategy};
use crate::crd::{crd_validation, definition};
use crate::error::FieldError;

/// CustomResourceDefinitions.
pub struct CrdStrategy;

impl Strategy for CrdStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<CustomResourceDefinition>(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        // A new CRD starts with an empty status, as upstream serializes it.
        obj["status"] = json!({ "acceptedNames": { "plural": "", "kind": "" } });
        definition::record_stored_version(obj);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_from_old(new, old, "status");
        definition::record_stored_version(new);
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        keep_from_old(new, old, "spec");
    }

    fn default(&self, obj: &mut Value) {
        definition::set_defaults(obj);
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        crd_validation::validate(obj, None)
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        crd_validation::validate(new, Some(old))
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        crd_validation::validate_status(new)
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}
