//! Server-side apply and `metadata.managedFields`, with upstream's
//! (structured-merge-diff's) semantics over our [`SchemaNode`]s, so custom
//! resources, whose schemas arrive in the same JSON form, work the same.
//!
//! - [`path`] and [`set`]: field paths, sets of them, the `FieldsV1` form.
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

pub mod conflict;
pub mod managed;
pub mod merge;
pub mod operation;
pub mod path;
pub mod set;
pub mod typed;

use serde_json::Value;

pub use managed::{same_ignoring_time, Writer};
pub use operation::{apply, check_config};

use crate::resources::ResourceInfo;
use crate::schema::SchemaNode;

/// The schema of a served kind, if one is known; without one, objects are
/// handled as free-form (maps granular, lists atomic).
pub fn schema_for(info: &ResourceInfo) -> Option<SchemaNode<'static>> {
    crate::schema::builtin().kind(info.group, info.version, info.kind)
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
pub fn track_create(info: &ResourceInfo, obj: &mut Value, w: &Writer<'_>) {
    managed::track_update(schema_for(info), None, obj, w);
}

/// Record the managed fields of an update from `old` to `new`.
pub fn track_update(info: &ResourceInfo, old: &Value, new: &mut Value, w: &Writer<'_>) {
    managed::track_update(schema_for(info), Some(old), new, w);
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
mod tests;
