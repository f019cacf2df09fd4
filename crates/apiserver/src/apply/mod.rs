//! Server-side apply and `metadata.managedFields`, with upstream's
//! (structured-merge-diff's) semantics over our [`SchemaNode`]s, so custom
//! resources, whose schemas arrive in the same JSON form, work the same.
//!
//! - [`path`] and [`set`]: field paths, sets of them, the `FieldsV1` form.
//! - [`compiled`]: what the rules ask of a schema, read from the JSON or
//!   from a tree compiled once per kind (what the write paths use).
//! - [`typed`]: objects read through a schema: list and map types, the
//!   fields an object sets, the difference of two objects, the checks of an
//!   apply configuration.
//! - [`merge`]: the apply merge and the removal of fields an applier no
//!   longer applies.
//! - [`managed`]: `managedFields` entries and the bookkeeping of an update.
//! - [`operation`] and [`conflict`]: one apply, and its 409.
//!
//! The registry calls [`track_create`], [`track_update`] and [`apply`] on
//! its write paths (`registry/write.rs`, `registry/apply.rs`).

pub mod compiled;
pub mod conflict;
pub mod managed;
pub mod merge;
pub mod operation;
pub mod path;
pub mod set;
pub mod typed;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use serde_json::Value;

use compiled::{Compiled, Schema};
pub use managed::{same_ignoring_time, Writer};
pub use operation::{apply, apply_known, check_config, Prepared};
pub use typed::plain_patch;

use crate::resources::ResourceInfo;
use crate::schema::SchemaNode;

/// The schema a kind is applied and tracked with, compiled: a built-in
/// kind's, or a custom resource version's `openAPIV3Schema` with the fields
/// every kind has (`apiVersion`, `kind`, and `metadata` as an ObjectMeta),
/// as upstream completes it for server-side apply. With none, objects are
/// handled as free-form (maps granular, lists atomic).
pub struct KindSchema(Option<Arc<Compiled>>);

impl KindSchema {
    /// The root node.
    pub fn node(&self) -> Option<compiled::Node<'_>> {
        self.0.as_ref().map(|c| c.root())
    }
}

/// Compiled custom resource schemas, by resource and version, kept while
/// the version definition they were made from is current.
type CustomCache = HashMap<String, (Weak<crate::crd::definition::VersionDef>, Arc<Compiled>)>;
static CUSTOM: LazyLock<Mutex<CustomCache>> = LazyLock::new(|| Mutex::new(HashMap::new()));

/// The schema of a served kind.
pub fn schema_for(info: &ResourceInfo) -> KindSchema {
    if let Some(n) = crate::schema::builtin().kind(info.group, info.version, info.kind) {
        return KindSchema(Some(compiled::builtin(n)));
    }
    let Some((_, version)) = crate::crd::version_of(info) else {
        return KindSchema(None);
    };
    let Some(raw) = &version.raw_schema else {
        return KindSchema(None);
    };
    let key = format!("{}/{}/{}", info.group, info.version, info.plural);
    let mut cache = CUSTOM.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((def, schema)) = cache.get(&key) {
        if def.upgrade().is_some_and(|d| Arc::ptr_eq(&d, &version)) {
            return KindSchema(Some(schema.clone()));
        }
    }
    let full = with_standard_fields(raw);
    let schema = Arc::new(Compiled::new(SchemaNode::new(
        &crate::schema::builtin().defs,
        &full,
    )));
    cache.insert(key, (Arc::downgrade(&version), schema.clone()));
    KindSchema(Some(schema))
}

/// A custom resource schema with `apiVersion`, `kind` and `metadata`.
fn with_standard_fields(raw: &Value) -> Value {
    let mut s = raw.clone();
    let Some(root) = s.as_object_mut() else {
        return s;
    };
    let props = root
        .entry("properties")
        .or_insert_with(|| Value::Object(Default::default()));
    if let Some(p) = props.as_object_mut() {
        p.insert("apiVersion".into(), serde_json::json!({"type": "string"}));
        p.insert("kind".into(), serde_json::json!({"type": "string"}));
        p.insert(
            "metadata".into(),
            serde_json::json!({"$ref": format!("{}io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta", crate::schema::REF_PREFIX)}),
        );
    }
    s
}

/// The writer of a request to `info` (or its `subresource`) by `manager`.
pub fn writer<'a>(
    info: &ResourceInfo,
    subresource: &'a str,
    manager: &'a str,
    api_version: &'a str,
) -> Writer<'a> {
    Writer {
        manager,
        api_version,
        subresource,
        scope: typed::Scope {
            skip_status: subresource.is_empty() && info.has_status(),
            skip_spec: subresource == "status",
        },
        now: crate::registry::now_rfc3339(),
    }
}

/// Record the managed fields of a new object.
pub fn track_create<S: Schema>(ty: Option<S>, obj: &mut Value, w: &Writer<'_>) {
    managed::track_update(ty, None, obj, w);
}

/// Record the managed fields of an update from `old` to `new`.
pub fn track_update<S: Schema>(ty: Option<S>, old: &Value, new: &mut Value, w: &Writer<'_>) {
    managed::track_update(ty, Some(old), new, w);
}

/// [`track_update`] with `old`'s managers already decoded, if the caller
/// kept them from the previous write; returns the new ones to keep.
/// `sent_live`: `new` carries `old`'s `managedFields` untouched.
pub fn track_update_known<S: Schema>(
    ty: Option<S>,
    old: &Value,
    new: &mut Value,
    w: &Writer<'_>,
    known: Option<managed::Managed>,
    sent_live: bool,
) -> Option<managed::Managed> {
    managed::track_update_known(ty, Some(old), new, w, known, sent_live)
}

/// The manager of writes the server makes itself (bootstrap objects, CRD
/// status): with no request there is no `fieldManager` nor User-Agent, and
/// upstream's API server writes these as `kube-apiserver`.
pub const SERVER_MANAGER: &str = "kube-apiserver";

/// The manager of a write: the request's, or the server's own.
pub fn manager_of(field_manager: Option<&str>) -> &str {
    field_manager.unwrap_or(SERVER_MANAGER)
}

/// Longest `fieldManager` accepted.
pub const FIELD_MANAGER_MAX_LENGTH: usize = 128;

/// The checks upstream makes of a `fieldManager` parameter.
pub fn validate_field_manager(manager: &str) -> Vec<crate::error::FieldError> {
    let mut errs = Vec::new();
    if manager.len() > FIELD_MANAGER_MAX_LENGTH {
        errs.push(crate::error::FieldError::too_long(
            "fieldManager",
            FIELD_MANAGER_MAX_LENGTH,
        ));
    }
    if let Some((i, c)) = manager.chars().enumerate().find(|(_, c)| !is_printable(*c)) {
        errs.push(crate::error::FieldError::invalid(
            "fieldManager",
            manager,
            format!("invalid character U+{:04X} (at position {i})", c as u32),
        ));
    }
    errs
}

/// Roughly Go's `unicode.IsPrint`: no control characters and no spaces other
/// than the plain one.
fn is_printable(c: char) -> bool {
    c == ' ' || !(c.is_control() || c.is_whitespace())
}

/// The manager of a write: `fieldManager` when given, else the User-Agent
/// up to its first `/`, without unprintable characters and cut to the
/// length limit (so `kubectl/v1.37.0 (linux/amd64)` is `kubectl`).
pub fn manager_or_user_agent(manager: &str, user_agent: &str) -> String {
    if !manager.is_empty() {
        return manager.to_string();
    }
    let mut out = String::new();
    for c in user_agent.split('/').next().unwrap_or("").chars() {
        if !is_printable(c) {
            continue;
        }
        if out.len() + c.len_utf8() > FIELD_MANAGER_MAX_LENGTH {
            break;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod builtin_tests;
#[cfg(test)]
mod compiled_tests;
#[cfg(test)]
mod guided_tests;
#[cfg(test)]
mod tests;
