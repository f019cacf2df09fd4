//! One server-side apply: check the configuration, merge it into the live
//! object, remove what the applier stopped setting, and settle ownership
//! (or refuse with the conflicts).

use serde_json::{json, Value};

use super::compiled::Schema;
use super::conflict::{conflict_error, Conflicts};
use super::managed::{Managed, ManagerId, Operation, Writer, MAX_UPDATE_MANAGERS};
use super::merge::{merge, prune};
use super::set::Set;
use super::typed::{compare, compare_guided, field_set, validate, Guide, Ty};
use crate::error::{ApiError, ApiResult};

/// The annotation client-side `kubectl apply` keeps its configuration in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";
/// The manager `kubectl apply --server-side` uses by default; applies by it
/// keep the client-side annotation in step, so both ways can be mixed.
const KUBECTL: &str = "kubectl";
/// Who owns the fields of an object that had no managed fields when it was
/// first applied to.
const BEFORE_FIRST_APPLY: &str = "before-first-apply";

/// `apps/v1, Kind=Deployment`, as Go prints a GroupVersionKind.
fn gvk_string(api_version: &str, kind: &str) -> String {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    format!("{group}/{version}, Kind={kind}")
}

/// The checks upstream makes before merging: the configuration is of the
/// endpoint's kind, carries no managed fields, and fits the schema.
pub fn check_config<S: Schema>(
    ty: Ty<S>,
    api_version: &str,
    kind: &str,
    config: &Value,
) -> ApiResult<()> {
    let s = |k: &str| config.get(k).and_then(Value::as_str).unwrap_or("");
    let (got_version, got_kind) = (s("apiVersion"), s("kind"));
    if got_version != api_version || got_kind != kind {
        return Err(ApiError::bad_request(format!(
            "invalid object type: {}",
            gvk_string(got_version, got_kind)
        )));
    }
    let meta = config.get("metadata");
    if meta
        .and_then(|m| m.get("managedFields"))
        .is_some_and(|f| !f.is_null())
    {
        return Err(ApiError::bad_request("metadata.managedFields must be nil"));
    }
    // Upstream answers 500 here (kubernetes#122480); the fault is the
    // client's, so this is a 400 with the same message.
    validate(ty, config).map_err(|e| {
        let m = |k: &str| {
            meta.and_then(|m| m.get(k))
                .and_then(Value::as_str)
                .unwrap_or("")
        };
        ApiError::bad_request(format!(
            "failed to create typed patch object ({}/{}; {}): {e}",
            m("namespace"),
            m("name"),
            gvk_string(api_version, kind)
        ))
    })
}

/// Apply `config` (already checked) by `w` to `live` (`None` when the
/// object does not exist yet). Returns the merged object with its managed
/// fields, or the 409 listing the conflicts.
pub fn apply<S: Schema>(
    ty: Ty<S>,
    live: Option<&Value>,
    config: &Value,
    w: &Writer<'_>,
    force: bool,
) -> ApiResult<Value> {
    let prepared = Prepared::new(ty, config, w);
    let (mut merged, mut managed) = apply_known(ty, live, &prepared, w, force, None)?;
    managed.write_to(&mut merged);
    Ok(merged)
}

/// What an apply takes from its configuration alone, worked out once for
/// all the attempts of a request.
pub struct Prepared<'c> {
    config: &'c Value,
    /// The fields the configuration sets.
    set: Set,
}

impl<'c> Prepared<'c> {
    /// The configuration `config` (already checked) of writer `w`.
    pub fn new<S: Schema>(ty: Ty<S>, config: &'c Value, w: &Writer<'_>) -> Prepared<'c> {
        Prepared {
            config,
            set: field_set(ty, config, &w.scope),
        }
    }
}

/// [`apply`] of a [`Prepared`] configuration, with `live`'s managers
/// already decoded (`known`) if the caller kept them from the write that
/// made `live`. Returns the merged object without `managedFields` and its
/// managers apart: the caller writes them into it ([`Managed::write_to`])
/// or splices their encoding into the object's
/// ([`Managed::encode_bytes`]), and keeps them for the next write.
/// `live` may lack its `managedFields` only if `known` is given.
pub fn apply_known<S: Schema>(
    ty: Ty<S>,
    live: Option<&Value>,
    prepared: &Prepared<'_>,
    w: &Writer<'_>,
    force: bool,
    known: Option<Managed>,
) -> ApiResult<(Value, Managed)> {
    let empty = json!({});
    let live_obj = live.unwrap_or(&empty);
    let mut managed = match (live, known) {
        (Some(_), Some(k)) => k,
        (Some(l), None) => Managed::decode(l)
            .map_err(|e| ApiError::internal(format!("failed to decode managed fields: {e}")))?,
        (None, _) => Managed::default(),
    };
    if managed.is_empty() && live.is_some() {
        // Fields set before anyone applied belong to a stand-in updater, so
        // that the first applier conflicts with them like with any writer.
        let before = compare(ty, &empty, live_obj, &w.scope).added;
        if !before.is_empty() {
            let id = ManagerId::new(
                BEFORE_FIRST_APPLY,
                Operation::Update,
                w.api_version,
                w.subresource,
            );
            let e = managed.entry(&id, w.api_version);
            e.replace_set(before);
            e.time = Some(w.now.clone());
            managed.cap_updaters(MAX_UPDATE_MANAGERS);
        }
    }
    // Only kubectl's applies may settle twice (see below).
    let kept = (w.manager == KUBECTL).then(|| managed.clone());
    match settle(ty, live_obj, prepared, managed, w, force) {
        Err(conflicts) if w.manager == KUBECTL => {
            // Conflicts on fields whose live value is still what client-side
            // apply last set are the same user's: they are taken over.
            let allowed = allowed_by_last_applied(ty, live_obj, w);
            let left: Conflicts = conflicts
                .into_iter()
                .map(|(m, s)| (m, s.difference(&allowed)))
                .filter(|(_, s)| !s.is_empty())
                .collect();
            if !left.is_empty() {
                return Err(conflict_error(&left));
            }
            let managed = kept.expect("kept for kubectl");
            settle(ty, live_obj, prepared, managed, w, true).map_err(|c| conflict_error(&c))
        }
        other => other.map_err(|c| conflict_error(&c)),
    }
}

/// The merge and the new ownership, or the conflicts.
fn settle<S: Schema>(
    ty: Ty<S>,
    live: &Value,
    prepared: &Prepared<'_>,
    mut managed: Managed,
    w: &Writer<'_>,
    force: bool,
) -> Result<(Value, Managed), Conflicts> {
    let config = prepared.config;
    let id = w.id(Operation::Apply);
    let last = managed.get(&id).map(|e| e.set().clone());
    let mut merged = merge(ty, live, config);
    {
        let e = managed.entry(&id, w.api_version);
        if e.set() != &prepared.set {
            e.replace_set(prepared.set.clone());
        }
        e.api_version = w.api_version.into();
    }
    // What the applier set last time and no longer sets is removed, unless
    // another manager owns it; usually it sets the same fields again.
    let pruned = last.filter(|l| !l.difference(&prepared.set).is_empty());
    if let Some(last) = &pruned {
        prune(ty, &mut merged, last, &managed.owned());
    }
    // The merge changed only the configuration's fields and the prune only
    // the applier's last ones: the comparison walks those alone.
    let mut guides = vec![Guide::Config(config)];
    guides.extend(pruned.as_ref().map(Guide::Paths));
    let cmp = compare_guided(ty, live, &merged, &guides, &w.scope);
    let changed = cmp.changed();
    // Forced, the applier takes the fields over: no need to find conflicts.
    if !force {
        let conflicts: Conflicts = managed
            .entries
            .iter()
            .filter(|e| e.id != id)
            .map(|e| (e.id.clone(), e.set().intersection(&changed)))
            .filter(|(_, s)| !s.is_empty())
            .collect();
        if !conflicts.is_empty() {
            return Err(conflicts);
        }
    }
    let mut gone = changed;
    gone.union_with(&cmp.removed);
    for e in managed.entries.iter_mut().filter(|e| e.id != id) {
        e.subtract(&gone);
    }
    managed.entry(&id, w.api_version).time = Some(w.now.clone());
    managed.prune_empty();
    if w.manager == KUBECTL {
        refresh_last_applied(&mut merged, config);
    }
    Ok((merged, managed))
}

/// The fields of the last-applied annotation whose live values still match
/// it: what client-side apply set and nobody changed since.
fn allowed_by_last_applied<S: Schema>(ty: Ty<S>, live: &Value, w: &Writer<'_>) -> Set {
    let Some(text) = live["metadata"]["annotations"][LAST_APPLIED]
        .as_str()
        .filter(|s| !s.is_empty())
    else {
        return Set::new();
    };
    let Ok(last) = serde_json::from_str::<Value>(text) else {
        return Set::new();
    };
    if last.get("apiVersion").and_then(Value::as_str) != Some(w.api_version) {
        return Set::new();
    }
    let fields = field_set(ty, &last, &w.scope);
    let cmp = compare(ty, &last, live, &w.scope);
    fields
        .difference(&cmp.modified)
        .difference(&cmp.added)
        .difference(&cmp.removed)
}

/// An object kubectl manages both ways keeps the annotation equal to the
/// configuration last applied (without the annotation itself).
fn refresh_last_applied(merged: &mut Value, config: &Value) {
    let has = merged["metadata"]["annotations"][LAST_APPLIED]
        .as_str()
        .is_some_and(|s| !s.is_empty());
    if !has {
        return;
    }
    let mut cfg = config.clone();
    if let Some(a) = cfg
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        a.remove(LAST_APPLIED);
    }
    // Go's encoder: keys sorted, a trailing newline.
    let text = format!("{}\n", serde_json::to_string(&cfg).unwrap_or_default());
    merged["metadata"]["annotations"][LAST_APPLIED] = Value::String(text);
}
