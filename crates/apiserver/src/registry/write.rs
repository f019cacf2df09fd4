//! create, update and patch.

use std::net::Ipv4Addr;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{json, Value};
use store::{Precondition, WriteOp, WriteOutcome};

use super::meta::{meta_str, metadata_mut, name_suffix, now_rfc3339, remove_path};
use super::{keylock, store_error, FieldValidation, Registry, WriteOptions, WriteResult, Written};
use crate::cache::Prepared;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::resources::ResourceInfo;
use crate::route::ResourcePath;
use crate::strategy::{self, Strategy};

/// PATCH content types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    /// `application/json-patch+json` (RFC 6902)
    Json,
    /// `application/merge-patch+json` (RFC 7386)
    Merge,
    /// `application/strategic-merge-patch+json`
    Strategic,
    /// `application/apply-patch+yaml` (server-side apply), with `force`
    Apply {
        /// Take over fields other managers own instead of failing.
        force: bool,
    },
}

/// Whether a write records its manager's fields itself, or an apply
/// computed the managed fields already.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Track {
    /// Record the writer's changes as an `Update`.
    Update,
    /// Keep the managed fields the change produced.
    Precomputed,
}

/// What a guaranteed update and its change tell each other.
#[derive(Default)]
pub(super) struct ChangeNotes {
    /// What the change found when it decoded the new object (a PUT's body,
    /// a patch's result), so the update does not decode it again: `None`
    /// until the change says.
    found: std::sync::Mutex<Option<Option<FieldError>>>,
    /// The change reads the object's resourceVersion (a JSON patch may
    /// `test` it), so it must not start before the version is known.
    reads_version: bool,
    /// The change leaves the object's `managedFields` as they were (a
    /// strategic merge patch without directives that does not name them),
    /// so the new object's need not be compared with the old one's.
    keeps_managed_fields: bool,
    /// For an apply ([`Track::Precomputed`]): the old object's managers,
    /// decoded, when the previous writer of the key left them; then the
    /// managers the change wrote, for the next writer.
    managed: std::sync::Mutex<Option<crate::apply::managed::Managed>>,
}

impl ChangeNotes {
    pub(super) fn found(&self, e: Option<FieldError>) {
        *self.found.lock().unwrap_or_else(|e| e.into_inner()) = Some(e);
    }

    fn take(&self) -> Option<Option<FieldError>> {
        self.found.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Hand managers over (either way).
    pub(super) fn put_managed(&self, m: Option<crate::apply::managed::Managed>) {
        *self.managed.lock().unwrap_or_else(|e| e.into_inner()) = m;
    }

    /// Take the managers handed over.
    pub(super) fn take_managed(&self) -> Option<crate::apply::managed::Managed> {
        self.managed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}

pub(super) fn served(mut obj: Value, rev: i64) -> Value {
    metadata_mut(&mut obj).insert("resourceVersion".into(), json!(rev.to_string()));
    obj
}

/// Put managedFields kept apart as JSON (see [`keylock::LastWrite`]) back
/// into their object.
pub(super) fn attach_managed_fields(obj: &mut Value, managed_fields: &[u8]) -> ApiResult<()> {
    let list: Value = serde_json::from_slice(managed_fields)
        .map_err(|e| ApiError::internal(format!("undecodable managed fields: {e}")))?;
    metadata_mut(obj).insert("managedFields".into(), list);
    Ok(())
}

/// Whether an apply's result may keep its managedFields apart until it is
/// encoded: where the stored form is the served one.
fn detachable(info: &ResourceInfo) -> bool {
    crate::resources::is_builtin(info) && !crate::convert::is_events_v1(info)
}

/// Check `apiVersion`/`kind` of a body against the endpoint; missing ones are
/// taken from the endpoint, as upstream's decoder defaults them.
fn check_type(info: &ResourceInfo, obj: &mut Value) -> ApiResult<()> {
    let Some(m) = obj.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the body of the request must be a JSON object",
        ));
    };
    let kind = m
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let api_version = m
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !api_version.is_empty() && api_version != info.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            info.api_version()
        )));
    }
    if !kind.is_empty() && kind != info.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({})",
            info.kind
        )));
    }
    m.insert("apiVersion".into(), json!(info.api_version()));
    m.insert("kind".into(), json!(info.kind));
    if m.get("metadata")
        .is_some_and(|md| !md.is_object() && !md.is_null())
    {
        return Err(ApiError::bad_request("metadata must be an object"));
    }
    Ok(())
}

/// Drop unknown fields, or refuse or warn, per `fieldValidation`.
/// Decode `obj` as its kind: unknown fields follow `fieldValidation` (refused,
/// warned about or dropped); a value of the wrong type is returned, for the
/// caller to report with the validation errors.
fn handle_unknown(
    strat: &dyn Strategy,
    obj: &mut Value,
    fv: FieldValidation,
    warnings: &mut Vec<String>,
) -> ApiResult<Option<FieldError>> {
    let decoded = strat.decode(obj);
    let unknown = decoded.unknown;
    if unknown.is_empty() {
        return Ok(decoded.error);
    }
    match fv {
        FieldValidation::Strict => {
            let list = unknown
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ApiError::bad_request(format!(
                "strict decoding error: {list}"
            )));
        }
        FieldValidation::Warn => {
            warnings.extend(unknown.iter().map(|f| format!("unknown field \"{f}\"")))
        }
        FieldValidation::Ignore => {}
    }
    for f in unknown.iter().rev() {
        remove_path(obj, f);
    }
    Ok(decoded.error)
}

fn check_namespace(rp: &ResourcePath, obj: &mut Value) -> ApiResult<()> {
    let body_ns = meta_str(obj, "namespace").map(str::to_string);
    if rp.info.namespaced {
        let ns = rp
            .namespace
            .as_deref()
            .ok_or_else(|| ApiError::bad_request("a namespace is required"))?;
        match body_ns.as_deref() {
            Some(b) if !b.is_empty() && b != ns => {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
            }
            _ => {
                metadata_mut(obj).insert("namespace".into(), json!(ns));
            }
        }
    } else {
        metadata_mut(obj).remove("namespace");
    }
    Ok(())
}

/// Whether two maps are equal leaving out the keys `skip` names; maps are
/// sorted, so equal maps yield equal sequences.
fn eq_except(
    a: &serde_json::Map<String, Value>,
    b: &serde_json::Map<String, Value>,
    skip: impl Fn(&str) -> bool,
) -> bool {
    a.iter()
        .filter(|(k, _)| !skip(k))
        .eq(b.iter().filter(|(k, _)| !skip(k)))
}

/// `spec_part(a) != spec_part(b)` (everything but metadata, status,
/// apiVersion and kind), without copying the objects.
fn spec_changed(a: &Value, b: &Value) -> bool {
    match (a.as_object(), b.as_object()) {
        (Some(x), Some(y)) => !eq_except(x, y, |k| {
            matches!(k, "metadata" | "status" | "apiVersion" | "kind")
        }),
        _ => a != b,
    }
}

/// `without_volatile(a) == without_volatile(b)` (equal but for
/// `metadata.resourceVersion` and `metadata.managedFields`), without
/// copying the objects.
fn same_but_volatile(a: &Value, b: &Value) -> bool {
    let (Some(x), Some(y)) = (a.as_object(), b.as_object()) else {
        return a == b;
    };
    if !eq_except(x, y, |k| k == "metadata") {
        return false;
    }
    match (x.get("metadata"), y.get("metadata")) {
        (Some(Value::Object(m)), Some(Value::Object(n))) => {
            eq_except(m, n, |k| k == "resourceVersion" || k == "managedFields")
        }
        (m, n) => m == n,
    }
}

fn invalid(info: &ResourceInfo, obj: &Value, errs: &[FieldError]) -> ApiError {
    let name = meta_str(obj, "name").unwrap_or_default();
    ApiError::invalid(info.group, info.kind, name, errs)
}

impl Registry {
    async fn check_namespace_lifecycle(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        name: &str,
    ) -> ApiResult<()> {
        let (Some(ns), true) = (ns, info.namespaced) else {
            return Ok(());
        };
        let key = crate::resources::lookup("", "v1", "namespaces")
            .expect("namespaces are served")
            .key(None, ns);
        let found = match self.cache.get(&key) {
            Some(e) if e.deleting => Some(e),
            _ => {
                // The cache may be a moment behind a namespace just created,
                // or one whose deletion was just acknowledged.
                self.cache.sync().await;
                self.cache.get(&key)
            }
        };
        match found {
            None => Err(ApiError::not_found(
                crate::error::GroupResource {
                    group: "",
                    resource: "namespaces",
                },
                ns,
            )),
            Some(e) if e.deleting => {
                // Upstream's NamespaceLifecycle admission: a Forbidden about
                // the object, with a cause clients (controllers) look for.
                let gr = info.group_resource();
                let what = if name.is_empty() {
                    format!("{} is forbidden", gr.qualified())
                } else {
                    format!("{} \"{name}\" is forbidden", gr.qualified())
                };
                let mut err = ApiError::forbidden(format!(
                    "{what}: unable to create new content in namespace {ns} because it is being terminated"
                ));
                err.details = Some(json!({
                    "name": name,
                    "group": gr.group,
                    "kind": gr.resource,
                    "causes": [{
                        "reason": "NamespaceTerminating",
                        "message": format!("namespace {ns} is being terminated"),
                        "field": "metadata.namespace",
                    }],
                }));
                Err(err)
            }
            Some(_) => Ok(()),
        }
    }

    /// POST to a collection.
    pub async fn create(
        &self,
        rp: &ResourcePath,
        obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<WriteResult> {
        self.create_tracked(rp, obj, opts, Track::Update).await
    }

    pub(super) async fn create_tracked(
        &self,
        rp: &ResourcePath,
        mut obj: Value,
        opts: &WriteOptions,
        track: Track,
    ) -> ApiResult<WriteResult> {
        let info = rp.info;
        check_type(info, &mut obj)?;
        let strat = strategy::strategy_for(info);
        let mut warnings = Vec::new();
        let type_error = handle_unknown(strat, &mut obj, opts.field_validation, &mut warnings)?;
        check_namespace(rp, &mut obj)?;
        {
            let m = metadata_mut(&mut obj);
            let name = m
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            if name.is_empty() {
                if let Some(g) = m
                    .get("generateName")
                    .and_then(Value::as_str)
                    .filter(|g| !g.is_empty())
                {
                    let g = g.to_string();
                    m.insert("name".into(), json!(format!("{g}{}", name_suffix())));
                }
            }
            m.insert("uid".into(), json!(uuid::Uuid::new_v4().to_string()));
            m.insert("creationTimestamp".into(), json!(now_rfc3339()));
            for f in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                m.remove(f);
            }
            if strat.tracks_generation() {
                m.insert("generation".into(), json!(1));
            } else {
                m.remove("generation");
            }
        }
        strat.prepare_for_create(&mut obj);
        if let Some(user) = opts.requester.as_ref() {
            if info.group == "certificates.k8s.io" {
                strategy::certificates::set_requester(&mut obj, user);
            }
        }
        strat.default(&mut obj);
        if info.group.is_empty() && info.plural == "pods" {
            self.admit_pod_priority(&mut obj).await?;
            self.admit_pod_runtime_class(&mut obj).await?;
        }
        if track == Track::Update {
            let (manager, version) = (
                crate::apply::manager_of(opts.field_manager.as_deref()),
                info.api_version(),
            );
            let schema = crate::apply::schema_for(info);
            let w = crate::apply::writer(info, "", manager, &version);
            crate::apply::track_create(schema.node(), &mut obj, &w);
        }
        let mut errs = strategy::validate_object_meta(&obj, info);
        errs.extend(strat.validate(&obj));
        let errs = strategy::with_type_error(errs, type_error);
        if !errs.is_empty() {
            return Err(invalid(info, &obj, &errs));
        }
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        self.check_namespace_lifecycle(info, rp.namespace.as_deref(), &name)
            .await?;
        if opts.dry_run {
            return Ok(WriteResult {
                raw: None,
                object: obj.into(),
                code: 201,
                warnings,
            });
        }
        let key = info.key(rp.namespace.as_deref(), &name);
        let allocated = self.allocate_service(info, &key, &mut obj, None).await?;
        let (bytes, prepared, _) = self.encode(info, &key, &mut obj, None)?;
        let out = self
            .store
            .create(key.as_bytes(), bytes, self.ttl_of(info))
            .await;
        match out {
            Ok(WriteOutcome::Committed { revision, .. }) => Ok(WriteResult {
                raw: prepared.map(|p| p.stamp(revision)),
                object: served(obj, revision).into(),
                code: 201,
                warnings,
            }),
            Ok(WriteOutcome::Failed { .. }) => {
                self.unexpect(&prepared);
                self.release_service(&allocated).await;
                Err(ApiError::already_exists(info.group_resource(), &name))
            }
            Err(e) => {
                self.unexpect(&prepared);
                self.release_service(&allocated).await;
                Err(store_error(e))
            }
        }
    }

    /// PUT of an object or its `status`.
    pub async fn update(
        &self,
        rp: &ResourcePath,
        mut obj: Value,
        opts: &WriteOptions,
    ) -> ApiResult<WriteResult> {
        let info = rp.info;
        let name = rp
            .name
            .clone()
            .ok_or_else(|| ApiError::method_not_allowed("update needs a name"))?;
        check_type(info, &mut obj)?;
        let strat = strategy::strategy_for(info);
        let mut warnings = Vec::new();
        let type_error = handle_unknown(strat, &mut obj, opts.field_validation, &mut warnings)?;
        check_namespace(rp, &mut obj)?;
        match meta_str(&obj, "name") {
            Some(n) if n == name => {}
            Some(n) if !n.is_empty() => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )))
            }
            _ => {
                metadata_mut(&mut obj).insert("name".into(), json!(name));
            }
        }
        let wanted_rv = meta_str(&obj, "resourceVersion")
            .filter(|s| !s.is_empty())
            .map(super::parse_rv)
            .transpose()?;
        let checked = ChangeNotes::default();
        self.guaranteed_update(
            rp,
            &name,
            wanted_rv,
            opts,
            warnings,
            Track::Update,
            &checked,
            |_old| {
                checked.found(type_error.clone());
                Ok(obj.clone())
            },
        )
        .await
    }

    /// PATCH of an object or its `status`.
    pub async fn patch(
        &self,
        rp: &ResourcePath,
        patch_type: PatchType,
        patch: &[u8],
        opts: &WriteOptions,
    ) -> ApiResult<WriteResult> {
        // A CSR's approval: the patch's conditions, nothing else (as PUT).
        let approval = rp.subresource.as_deref() == Some("approval");
        if let PatchType::Apply { force } = patch_type {
            if approval {
                return Err(ApiError::unsupported_media_type(
                    "application/apply-patch+yaml is not supported on certificatesigningrequests/approval; use a JSON, merge or strategic merge patch",
                ));
            }
            return self.apply_patch(rp, patch, force, opts).await;
        }
        let name = rp
            .name
            .clone()
            .ok_or_else(|| ApiError::method_not_allowed("patch needs a name"))?;
        let patch: Value = if patch_type == PatchType::Strategic {
            Value::Object(crate::patch::decode_strategic(patch)?)
        } else {
            serde_json::from_slice(patch)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?
        };
        if patch_type == PatchType::Json {
            let n = patch.as_array().map(Vec::len).ok_or_else(|| {
                ApiError::bad_request("json patch must be an array of operations")
            })?;
            crate::patch::json::check_operations(n)?;
        } else if !patch.is_object() {
            return Err(ApiError::bad_request("merge patch must be a JSON object"));
        }
        // A patch may pin the version it was computed against.
        let wanted_rv = patch
            .get("metadata")
            .and_then(|m| m.get("resourceVersion"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(super::parse_rv)
            .transpose()?;
        let info = rp.info;
        let strat = strategy::strategy_for(info);
        let fv = opts.field_validation;
        // Warnings of the latest attempt: the closure runs once per attempt.
        let patch_warnings = std::sync::Mutex::new(Vec::new());
        let pw = &patch_warnings;
        // A strategic merge patch of declared fields with values of their
        // plain types leaves nothing to find in the merged object.
        let plain = patch_type == PatchType::Strategic
            && !approval
            && crate::apply::plain_patch(crate::apply::schema_for(info).node(), &patch);
        let checked = ChangeNotes {
            reads_version: patch_type == PatchType::Json,
            // Without directives, what the patch does not name stays.
            keeps_managed_fields: plain
                && patch
                    .get("metadata")
                    .is_none_or(|m| m.get("managedFields").is_none()),
            ..ChangeNotes::default()
        };
        let ck = &checked;
        let mut res = self
            .guaranteed_update(
                rp,
                &name,
                wanted_rv,
                opts,
                Vec::new(),
                Track::Update,
                ck,
                move |old| {
                    // The strategic merge builds a new object: only the others
                    // change a copy of the old one.
                    let doc = match patch_type {
                        PatchType::Apply { .. } => unreachable!("apply is dispatched above"),
                        PatchType::Json => {
                            let mut doc = old.clone();
                            let p: json_patch::Patch = serde_json::from_value(patch.clone())
                                .map_err(|e| {
                                    ApiError::bad_request(format!("error decoding json patch: {e}"))
                                })?;
                            crate::patch::json::apply(&mut doc, &p)?;
                            doc
                        }
                        PatchType::Merge => {
                            let mut doc = old.clone();
                            json_patch::merge(&mut doc, &patch);
                            doc
                        }
                        PatchType::Strategic => {
                            let no_patch = serde_json::Map::new();
                            let smp = patch.as_object().unwrap_or(&no_patch);
                            let mut doc = crate::patch::apply_strategic(info, old, smp)?;
                            if plain {
                                ck.found(None);
                                return Ok(doc);
                            }
                            crate::patch::refuse_unknown(strat, &doc, smp, fv)?;
                            let mut w = Vec::new();
                            ck.found(handle_unknown(strat, &mut doc, fv, &mut w)?);
                            *pw.lock().unwrap_or_else(|e| e.into_inner()) = w;
                            doc
                        }
                    };
                    if approval {
                        return Ok(crate::certificates::with_conditions_of(old, &doc));
                    }
                    Ok(doc)
                },
            )
            .await?;
        res.warnings.extend(
            patch_warnings
                .into_inner()
                .unwrap_or_else(|e| e.into_inner()),
        );
        Ok(res)
    }

    /// Change an object (or, with a `status` path, its status) through the
    /// kind's strategy like an update would: for in-process controllers and
    /// subresources that compute the new object from the stored one.
    /// `wanted_rv` pins the resourceVersion; otherwise lost races are retried.
    pub async fn update_with(
        &self,
        rp: &ResourcePath,
        wanted_rv: Option<i64>,
        opts: &WriteOptions,
        change: impl Fn(&Value) -> ApiResult<Value>,
    ) -> ApiResult<WriteResult> {
        let name = rp
            .name
            .clone()
            .ok_or_else(|| ApiError::method_not_allowed("update needs a name"))?;
        self.guaranteed_update(
            rp,
            &name,
            wanted_rv,
            opts,
            Vec::new(),
            Track::Update,
            &ChangeNotes::default(),
            change,
        )
        .await
    }

    /// Read, change, validate and compare-and-swap, retrying lost races unless
    /// the caller pinned a resourceVersion.
    // `resolved!` sets the precondition and revision for every path after
    // it, some of which return without reading them.
    #[allow(clippy::too_many_arguments, unused_assignments)]
    pub(super) async fn guaranteed_update(
        &self,
        rp: &ResourcePath,
        name: &str,
        wanted_rv: Option<i64>,
        opts: &WriteOptions,
        mut warnings: Vec<String>,
        track: Track,
        checked: &ChangeNotes,
        change: impl Fn(&Value) -> ApiResult<Value>,
    ) -> ApiResult<WriteResult> {
        let info = rp.info;
        let strat = strategy::strategy_for(info);
        let key = info.key(rp.namespace.as_deref(), name);
        // A CSR's `approval` is written as its status is (its change is
        // limited to the conditions by its caller), and recorded in
        // managedFields under its own name, as upstream.
        let status_only = matches!(rp.subresource.as_deref(), Some("status" | "approval"));
        // The turn of the key; given up early when this write hands its
        // object to the next writer (and taken again if it must retry).
        let mut turn = Some(self.key_locks.lock(&key).await);
        let mut line;
        // Without a resourceVersion, a lost race is retried until the write
        // lands, as upstream's GuaranteedUpdate does; with one, it is a 409.
        loop {
            if turn.is_none() {
                turn = Some(self.key_locks.lock(&key).await);
            }
            // The previous writer's object, maybe not even applied yet: this
            // write is chained on its ticket and fails if that one did not
            // commit or another write got in between. Else a read.
            // A write in a broken line is not built on.
            let mut left = turn.as_mut().and_then(|t| t.take()).filter(|l| !l.doomed());
            // Else this server's last write of the key, kept since: a guess
            // that the key has not changed, which must be confirmed before
            // anything is answered without a write of its own.
            let mut guessed = false;
            if left.is_none() {
                left = self.key_locks.take_kept(&key);
                guessed = left.is_some();
            }
            // The line of writes chained by id that this one continues.
            line = match left.as_ref().and_then(|l| l.chain.as_ref()) {
                Some(c) => c.line.clone(),
                None => keylock::Line::default(),
            };
            let (mut cond, mut mod_revision, mut old, mut base) = match left {
                Some(mut l) => {
                    let object = std::mem::take(&mut l.object);
                    (None, 0, object, Some(l))
                }
                None => {
                    tracing::trace!(key = %key, "read for a write");
                    let (kv, _) = self.store.get(key.as_bytes()).await.map_err(store_error)?;
                    let kv = kv.ok_or_else(|| ApiError::not_found(info.group_resource(), name))?;
                    let mut old: Value = serde_json::from_slice(&kv.value).map_err(|e| {
                        ApiError::internal(format!("undecodable stored object: {e}"))
                    })?;
                    metadata_mut(&mut old)
                        .insert("resourceVersion".into(), json!(kv.mod_revision.to_string()));
                    // Custom resources are stored at one version and served at any.
                    crate::crd::decode_stored(info, &mut old);
                    let old = Arc::new(crate::convert::to_served(info, old));
                    (
                        Some(Precondition::ModRevision(kv.mod_revision)),
                        kv.mod_revision,
                        old,
                        None,
                    )
                }
            };
            // An object an apply wrote keeps its managedFields apart (as
            // their JSON); only an apply that has them decoded builds on it
            // as it is, other changes see them in the object.
            let mut old_mf = base.as_mut().and_then(|b| b.managed_fields.take());
            if let Some(mf) = old_mf.take_if(|_| {
                track == Track::Update || base.as_ref().is_none_or(|b| b.managed.is_none())
            }) {
                attach_managed_fields(Arc::make_mut(&mut old), &mf)?;
            }
            // The previous writer's revision, once the store gave it: the
            // precondition of this write, and the object's resourceVersion.
            // If that write was not applied, read again.
            macro_rules! resolved {
                () => {
                    if cond.is_none() {
                        match base.as_mut() {
                            Some(b) => match b.ticket().await {
                                Some(t) => {
                                    cond = Some(Precondition::Ticket(t));
                                    mod_revision = t.revision;
                                    // A copy if the previous writer still
                                    // holds the object: only on paths that
                                    // need the version.
                                    metadata_mut(Arc::make_mut(&mut old)).insert(
                                        "resourceVersion".into(),
                                        json!(t.revision.to_string()),
                                    );
                                }
                                None => continue,
                            },
                            None => continue,
                        }
                    }
                };
            }
            // Before answering from the previous writer's object without a
            // write of our own, it must be durable; if it failed, read again.
            macro_rules! base_committed {
                () => {
                    resolved!();
                    if let Some(b) = base.as_mut() {
                        if !b.committed().await {
                            continue;
                        }
                    }
                };
            }
            // An answer without a write of this request's own (an error, a
            // no-op, a dry run) is built on the stored object: the previous
            // writer's object must have committed, and a kept guess is
            // checked against the store first; if the key has changed
            // since, it is read again, as upstream retries an error computed
            // on its cached object.
            macro_rules! current {
                () => {
                    base_committed!();
                    if guessed {
                        resolved!();
                        let now = self
                            .store
                            .mod_revision(key.as_bytes())
                            .await
                            .map_err(store_error)?;
                        if now != Some(mod_revision) {
                            tracing::debug!(key = %key, "kept object is stale; reading again");
                            continue;
                        }
                    }
                };
            }
            // The change sees the object's resourceVersion where it may
            // matter: a pinned version, or a change that reads it.
            if wanted_rv.is_some() || checked.reads_version {
                resolved!();
            }
            if let Some(rv) = wanted_rv {
                if rv != mod_revision {
                    // A kept guess may just be stale.
                    if guessed {
                        continue;
                    }
                    return Err(ApiError::conflict(
                        info.group_resource(),
                        name,
                        "the object has been modified; please apply your changes to the latest version and try again",
                    ));
                }
            }
            if track == Track::Precomputed {
                checked.put_managed(base.as_mut().and_then(|b| b.managed.take()));
            }
            let mut new = match change(&old) {
                Ok(new) => new,
                Err(e) => {
                    current!();
                    return Err(e);
                }
            };
            // An apply's result comes without its managedFields (`managed`):
            // their encoding is spliced into the object's, where the stored
            // form is the served one.
            let mut managed = None;
            let mut detached = false;
            if track == Track::Precomputed {
                managed = checked.take_managed();
                if let Some(m) = managed.as_mut() {
                    if detachable(info) {
                        detached = true;
                    } else {
                        m.write_to(&mut new);
                    }
                }
            }
            // Put them back where the object itself is answered.
            macro_rules! attach {
                () => {
                    if std::mem::take(&mut detached) {
                        if let Some(m) = managed.as_mut() {
                            m.write_to(&mut new);
                        }
                    }
                };
            }
            check_type(info, &mut new)?;
            if rp.info.namespaced {
                metadata_mut(&mut new).insert(
                    "namespace".into(),
                    json!(rp.namespace.clone().unwrap_or_default()),
                );
            }
            if meta_str(&new, "name") != Some(name) {
                return Err(ApiError::bad_request(
                    "the name of the object may not change",
                ));
            }
            // System-owned metadata comes from the stored object.
            {
                let no_meta = serde_json::Map::new();
                let old_meta = old["metadata"].as_object().unwrap_or(&no_meta);
                let m = metadata_mut(&mut new);
                for f in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                ] {
                    match old_meta.get(f) {
                        Some(v) => {
                            m.insert(f.into(), v.clone());
                        }
                        None => {
                            m.remove(f);
                        }
                    }
                }
                m.remove("resourceVersion");
                m.remove("selfLink");
            }
            if status_only {
                strat.prepare_for_status_update(&mut new, &old);
            } else {
                strat.prepare_for_update(&mut new, &old);
            }
            strat.default(&mut new);
            if strat.tracks_generation() && !status_only && spec_changed(&new, &old) {
                let g = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
                metadata_mut(&mut new).insert("generation".into(), json!(g));
            }
            // The managers written, decoded, for the next writer.
            if track == Track::Update {
                let sub = rp.subresource.as_deref().unwrap_or("");
                let (manager, version) = (
                    crate::apply::manager_of(opts.field_manager.as_deref()),
                    info.api_version(),
                );
                let w = crate::apply::writer(info, sub, manager, &version);
                let schema = crate::apply::schema_for(info);
                let known = base.as_mut().and_then(|b| b.managed.take());
                managed = crate::apply::track_update_known(
                    schema.node(),
                    &old,
                    &mut new,
                    &w,
                    known,
                    checked.keeps_managed_fields,
                );
            }
            let mut errs = strategy::validate_object_meta_update(&new, &old, info);
            errs.extend(if status_only {
                strat.validate_status_update(&new, &old)
            } else {
                strat.validate_update(&new, &old)
            });
            let type_error = checked.take().unwrap_or_else(|| strat.decode(&new).error);
            let errs = strategy::with_type_error(errs, type_error);
            if !errs.is_empty() {
                current!();
                return Err(invalid(info, &new, &errs));
            }
            // Nothing changed: no write, the stored version stands.
            if same_but_volatile(&new, &old) && {
                // Managers compared with their objects (rare: copies).
                let new_mf = match managed.as_mut() {
                    Some(m) if detached => m.encode_bytes(),
                    _ => None,
                };
                fn full<'v>(
                    v: &'v Value,
                    mf: Option<&[u8]>,
                ) -> ApiResult<std::borrow::Cow<'v, Value>> {
                    Ok(match mf {
                        None => std::borrow::Cow::Borrowed(v),
                        Some(mf) => {
                            let mut v = v.clone();
                            attach_managed_fields(&mut v, mf)?;
                            std::borrow::Cow::Owned(v)
                        }
                    })
                }
                crate::apply::same_ignoring_time(
                    &*full(&new, new_mf.as_deref())?,
                    &*full(&old, old_mf.as_deref())?,
                )
            } {
                base_committed!();
                current!();
                let mut object = Arc::unwrap_or_clone(old);
                if let Some(mf) = &old_mf {
                    attach_managed_fields(&mut object, mf)?;
                }
                return Ok(WriteResult {
                    raw: None,
                    object: object.into(),
                    code: 200,
                    warnings,
                });
            }
            // The last finalizer of an object being deleted is gone: delete it.
            let deleting = new["metadata"]
                .get("deletionTimestamp")
                .is_some_and(|d| !d.is_null());
            let no_finalizers = new["metadata"]["finalizers"]
                .as_array()
                .is_none_or(|f| f.is_empty());
            let graceful_pod = info.plural == "pods"
                && info.group.is_empty()
                && new["metadata"]["deletionGracePeriodSeconds"]
                    .as_i64()
                    .unwrap_or(0)
                    > 0;
            // A namespace also waits for its spec.finalizers (upstream's
            // namespace strategy: ShouldDeleteDuringUpdate).
            let namespace_pending = info.plural == "namespaces"
                && info.group.is_empty()
                && new["spec"]["finalizers"]
                    .as_array()
                    .is_some_and(|f| !f.is_empty());
            if deleting && no_finalizers && !graceful_pod && !namespace_pending {
                attach!();
                base_committed!();
                if opts.dry_run {
                    current!();
                    return Ok(WriteResult {
                        raw: None,
                        object: new.into(),
                        code: 200,
                        warnings,
                    });
                }
                return match self.store.delete(key.as_bytes(), mod_revision).await.map_err(store_error)? {
                    WriteOutcome::Committed { revision, .. } => {
                        self.key_locks.forget(&key);
                        self.release_service_of(info, &new).await;
                        Ok(WriteResult { object: served(new, revision).into(), code: 200, warnings, raw: None })
                    }
                    WriteOutcome::Failed { .. } if wanted_rv.is_none() => continue,
                    WriteOutcome::Failed { .. } => Err(ApiError::conflict(info.group_resource(), name, "the object has been modified; please apply your changes to the latest version and try again")),
                };
            }
            if opts.dry_run {
                attach!();
                base_committed!();
                current!();
                return Ok(WriteResult {
                    raw: None,
                    object: served(new, mod_revision).into(),
                    code: 200,
                    warnings,
                });
            }
            let allocated = match self
                .allocate_service(info, &key, &mut new, Some(&old))
                .await
            {
                Ok(a) => a,
                Err(e) => {
                    current!();
                    return Err(e);
                }
            };
            let (bytes, prepared, new_mf) =
                self.encode(info, &key, &mut new, managed.as_mut().filter(|_| detached))?;
            if bytes.len() > store::MAX_VALUE_BYTES {
                self.unexpect(&prepared);
                self.release_service(&allocated).await;
                current!();
                return Err(ApiError::too_large(
                    "Request entity too large: the patched object is too large",
                ));
            }
            // Chained on the previous writer's write: by its id where the
            // store gives one (no wait: the store checks it in order), else
            // on its ticket, which has come by now (this write's change was
            // computed meanwhile).
            let cond = match cond {
                Some(c) => c,
                None => match base.as_mut() {
                    Some(b) => match &b.chain {
                        Some(c) if !c.line.broken() => Precondition::After(c.id),
                        // Broken while this change was computed.
                        Some(_) => {
                            self.unexpect(&prepared);
                            self.release_service(&allocated).await;
                            continue;
                        }
                        None => match b.ticket().await {
                            Some(t) => Precondition::Ticket(t),
                            None => {
                                self.unexpect(&prepared);
                                self.release_service(&allocated).await;
                                continue;
                            }
                        },
                    },
                    None => unreachable!("a write without a read has a precondition"),
                },
            };
            let size = bytes.len();
            let op = WriteOp::Put {
                key: key.as_bytes().to_vec(),
                value: bytes,
                ttl: self.ttl_of(info),
            };
            let waiters = turn.as_ref().is_some_and(keylock::has_waiters);
            // What the replaced object is still needed for once committed.
            let replaced_ports = replaced_node_ports(info, &old, &new);
            // Shared with the next writer of the key, not copied for it.
            let new = Arc::new(new);
            let mut write = match self.store.write_pipelined(cond, op, waiters).await {
                Ok(w) => w,
                Err(e) => {
                    self.unexpect(&prepared);
                    self.release_service(&allocated).await;
                    return Err(store_error(e));
                }
            };
            // Where the stored bytes are `new` as served (built-in kinds), a
            // writer waiting for this key starts from this object at once,
            // before the store has even applied it: it computes its change
            // while this write is applied and synced, and chains its write
            // on this one's ticket when that comes.
            let mut tell = None;
            let mut ticket_to = None;
            if prepared.is_some() && waiters {
                let (ttx, trx) = tokio::sync::oneshot::channel();
                let (dtx, drx) = tokio::sync::oneshot::channel();
                if let Some(t) = turn.as_mut() {
                    **t = Some(keylock::LastWrite {
                        ticket: keylock::TicketSlot::Pending(trx),
                        chain: write.id().map(|id| keylock::Chained {
                            id,
                            line: line.clone(),
                        }),
                        object: Arc::clone(&new),
                        managed_fields: new_mf.clone(),
                        managed: managed.take(),
                        durable: Some(drx),
                    });
                }
                turn = None;
                ticket_to = Some(ttx);
                tell = Some(dtx);
            }
            // The replaced object is freed here, with the turn handed on,
            // not once this write is durable: a freed tree's memory is
            // reused while it is likely still in the CPU's caches, and the
            // writes waiting on the disk do not keep a tree each alive.
            drop(old);
            let applied = write.applied().await;
            if let Some(tx) = ticket_to {
                let _ = tx.send(applied);
            }
            if let Some(ticket) = applied {
                // The object for a writer that came while this one was
                // being applied, or else kept for the next one.
                if let Some(t) = turn.as_mut() {
                    if prepared.is_some() {
                        let (tx, rx) = tokio::sync::oneshot::channel();
                        tell = Some(tx);
                        let last = keylock::LastWrite {
                            ticket: keylock::TicketSlot::Known(Some(ticket)),
                            chain: None,
                            object: Arc::clone(&new),
                            managed_fields: new_mf.clone(),
                            managed: managed.take(),
                            durable: Some(rx),
                        };
                        if keylock::has_waiters(t) {
                            **t = Some(last);
                        } else {
                            self.key_locks.keep(&key, last, size);
                        }
                    }
                }
                turn = None;
                // Where the answer is the object's encoding, this write keeps
                // no tree for it while it waits for the disk: the tree lives
                // on only with the next writer of the key, if any.
                let answer = match prepared.clone() {
                    Some(p) => {
                        let kind = new.get("kind").and_then(Value::as_str).map(str::to_string);
                        drop(new);
                        Answer::Encoded(p, kind)
                    }
                    None => Answer::Tree(new),
                };
                let outcome = write.outcome().await;
                if let Some(tx) = tell {
                    let _ = tx.send(matches!(outcome, Ok(WriteOutcome::Committed { .. })));
                }
                return match outcome {
                    Ok(WriteOutcome::Committed { revision, .. }) => {
                        for p in replaced_ports {
                            self.services.release_node_port(p).await;
                        }
                        let (raw, object) = match answer {
                            Answer::Tree(object) => (
                                None,
                                Written::Shared {
                                    object,
                                    revision,
                                    managed_fields: new_mf,
                                },
                            ),
                            Answer::Encoded(p, kind) => {
                                let raw = p.stamp(revision);
                                (Some(raw.clone()), Written::Encoded { raw, kind })
                            }
                        };
                        Ok(WriteResult {
                            raw,
                            object,
                            code: 200,
                            warnings,
                        })
                    }
                    Ok(WriteOutcome::Failed { .. }) => {
                        self.unexpect(&prepared);
                        self.release_service(&allocated).await;
                        Err(ApiError::internal(
                            "the store refused a write it had accepted",
                        ))
                    }
                    Err(e) => {
                        self.unexpect(&prepared);
                        self.release_service(&allocated).await;
                        Err(store_error(e))
                    }
                };
            }
            // Not applied: writes chained on this one by id fail too.
            line.break_off();
            tracing::debug!(key = %key, chained = base.is_some(), "write not applied; reading again");
            self.unexpect(&prepared);
            self.release_service(&allocated).await;
            match write.outcome().await {
                Ok(WriteOutcome::Failed { .. }) if wanted_rv.is_none() => {}
                Ok(WriteOutcome::Failed { .. }) => return Err(ApiError::conflict(info.group_resource(), name, "the object has been modified; please apply your changes to the latest version and try again")),
                Ok(WriteOutcome::Committed { .. }) => {
                    return Err(ApiError::internal("the store committed a write without a ticket"))
                }
                Err(e) => return Err(store_error(e)),
            }
            warnings.clear();
        }
    }
}

impl Registry {
    /// The bytes to store for `obj` (which carries no resourceVersion) and,
    /// where the stored form is the served one, the encoding the cache and
    /// the response reuse (the cache is told to expect it). `detached`:
    /// `obj`'s managers, kept out of it; their encoding is spliced in and
    /// returned, to keep with the object, or where it is not stored as
    /// served they are written into `obj` (and `None` returned).
    fn encode(
        &self,
        info: &'static ResourceInfo,
        key: &str,
        obj: &mut Value,
        detached: Option<&mut crate::apply::managed::Managed>,
    ) -> ApiResult<(Bytes, Option<Arc<Prepared>>, Option<Bytes>)> {
        let mut managed_fields = None;
        if let Some(m) = detached {
            managed_fields = m.encode_bytes();
            match Prepared::with_managed_fields(info, key, obj, managed_fields.as_deref()) {
                Some(p) => {
                    let p = Arc::new(p);
                    self.cache.expect(p.clone());
                    return Ok((p.stored(), Some(p), managed_fields));
                }
                None => {
                    m.write_to(obj);
                    managed_fields = None;
                }
            }
        }
        if let Some(p) = Prepared::new(info, key, obj) {
            let p = Arc::new(p);
            self.cache.expect(p.clone());
            return Ok((p.stored(), Some(p), managed_fields));
        }
        let bytes = serde_json::to_vec(
            crate::convert::for_storage(info, obj)
                .as_ref()
                .unwrap_or(obj),
        )
        .map_err(|e| ApiError::internal(e.to_string()))?;
        Ok((Bytes::from(bytes), None, managed_fields))
    }

    fn unexpect(&self, prepared: &Option<Arc<Prepared>>) {
        if let Some(p) = prepared {
            self.cache.unexpect(p);
        }
    }
}

/// What a service write allocated, to give back if the write fails.
#[derive(Default)]
pub(super) struct Allocated {
    ips: Vec<Ipv4Addr>,
    ports: Vec<u16>,
}

/// What a committed write answers with: its object's tree, or (where the
/// stored form is the served one) its encoding, the tree already freed.
enum Answer {
    Tree(Arc<Value>),
    Encoded(Arc<Prepared>, Option<String>),
}

/// The NodePorts a Service update gives up (none for other kinds), to
/// release once it has committed.
fn replaced_node_ports(info: &ResourceInfo, old: &Value, new: &Value) -> Vec<u16> {
    if !(info.group.is_empty() && info.plural == "services") {
        return Vec::new();
    }
    let kept = node_ports(new);
    node_ports(old)
        .into_iter()
        .filter(|p| !kept.contains(p))
        .collect()
}

fn node_ports(svc: &Value) -> Vec<u16> {
    svc["spec"]["ports"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p["nodePort"].as_u64())
                .map(|p| p as u16)
                .collect()
        })
        .unwrap_or_default()
}

impl Registry {
    /// Give a service its ClusterIP and NodePorts.
    pub(super) async fn allocate_service(
        &self,
        info: &ResourceInfo,
        key: &str,
        svc: &mut Value,
        old: Option<&Value>,
    ) -> ApiResult<Allocated> {
        let mut got = Allocated::default();
        if !(info.group.is_empty() && info.plural == "services") {
            return Ok(got);
        }
        let owner = key.trim_start_matches(&info.key_prefix()).to_string();
        let ty = svc["spec"]["type"]
            .as_str()
            .unwrap_or("ClusterIP")
            .to_string();
        let old_ip = old
            .and_then(|o| o["spec"]["clusterIP"].as_str())
            .filter(|s| !s.is_empty() && *s != "None")
            .map(str::to_string);
        if ty != "ExternalName" {
            let ip = svc["spec"]["clusterIP"].as_str().unwrap_or("").to_string();
            if ip.is_empty() && old_ip.is_none() {
                let a = self.services.allocate_ip(None, &owner).await?;
                got.ips.push(a);
                svc["spec"]["clusterIP"] = json!(a.to_string());
                svc["spec"]["clusterIPs"] = json!([a.to_string()]);
            } else if !ip.is_empty() && ip != "None" && old_ip.as_deref() != Some(ip.as_str()) {
                let requested: Ipv4Addr = ip.parse().map_err(|_| {
                    ApiError::invalid(
                        "",
                        "Service",
                        owner.rsplit('/').next().unwrap_or(""),
                        &[FieldError::invalid(
                            "spec.clusterIPs[0]",
                            ip.clone(),
                            "must be a valid IP address",
                        )],
                    )
                })?;
                got.ips
                    .push(self.services.allocate_ip(Some(requested), &owner).await?);
                svc["spec"]["clusterIPs"] = json!([ip]);
            } else if ip == "None" {
                svc["spec"]["clusterIPs"] = json!(["None"]);
            }
        }
        if matches!(ty.as_str(), "NodePort" | "LoadBalancer") {
            let held: Vec<u16> = old.map(node_ports).unwrap_or_default();
            if let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
                for (i, p) in ports.iter_mut().enumerate() {
                    let field = format!("spec.ports[{i}].nodePort");
                    match p["nodePort"].as_u64() {
                        Some(n) if held.contains(&(n as u16)) => {}
                        Some(n) => got.ports.push(
                            self.services
                                .allocate_node_port(Some(n as u16), &owner, &field)
                                .await?,
                        ),
                        None => {
                            let n = self
                                .services
                                .allocate_node_port(None, &owner, &field)
                                .await?;
                            got.ports.push(n);
                            p["nodePort"] = json!(n);
                        }
                    }
                }
            }
        } else if let Some(ports) = svc.pointer_mut("/spec/ports").and_then(Value::as_array_mut) {
            for p in ports {
                if let Some(m) = p.as_object_mut() {
                    m.remove("nodePort");
                }
            }
        }
        Ok(got)
    }

    pub(super) async fn release_service(&self, a: &Allocated) {
        for ip in &a.ips {
            self.services.release_ip(*ip).await;
        }
        for p in &a.ports {
            self.services.release_node_port(*p).await;
        }
    }

    /// Free a deleted service's address and ports.
    pub(super) async fn release_service_of(&self, info: &ResourceInfo, svc: &Value) {
        if !(info.group.is_empty() && info.plural == "services") {
            return;
        }
        if let Some(ip) = svc["spec"]["clusterIP"]
            .as_str()
            .and_then(|s| s.parse().ok())
        {
            self.services.release_ip(ip).await;
        }
        for p in node_ports(svc) {
            self.services.release_node_port(p).await;
        }
    }
}

impl Registry {
    /// Change a stored object with `f`, bypassing the kind's update strategy:
    /// for subresources (binding, scale, finalize) that check what they change
    /// themselves. `expected` pins the resourceVersion; otherwise lost races
    /// are retried.
    pub async fn modify(
        &self,
        info: &'static ResourceInfo,
        namespace: Option<&str>,
        name: &str,
        expected: Option<i64>,
        f: impl Fn(&mut Value) -> ApiResult<()>,
    ) -> ApiResult<Value> {
        let key = info.key(namespace, name);
        let mut turn = self.key_locks.lock(&key).await;
        // A write handed over before it was durable: let it land first, so
        // the read below sees it (not a wasted compare-and-swap). A kept
        // one is dropped: this write makes it stale.
        if let Some(mut last) = turn.take().or_else(|| self.key_locks.take_kept(&key)) {
            last.committed().await;
        }
        loop {
            let (kv, _) = self.store.get(key.as_bytes()).await.map_err(store_error)?;
            let kv = kv.ok_or_else(|| ApiError::not_found(info.group_resource(), name))?;
            if expected.is_some_and(|rv| rv != kv.mod_revision) {
                return Err(ApiError::conflict(info.group_resource(), name, "the object has been modified; please apply your changes to the latest version and try again"));
            }
            let mut obj: Value =
                serde_json::from_slice(&kv.value).map_err(|e| ApiError::internal(e.to_string()))?;
            let before = obj.clone();
            f(&mut obj)?;
            if obj == before {
                return Ok(served(obj, kv.mod_revision));
            }
            let bytes = Bytes::from(
                serde_json::to_vec(&obj).map_err(|e| ApiError::internal(e.to_string()))?,
            );
            match self.store.update(key.as_bytes(), kv.mod_revision, bytes, self.ttl_of(info)).await.map_err(store_error)? {
                WriteOutcome::Committed { revision, .. } => return Ok(served(obj, revision)),
                WriteOutcome::Failed { .. } if expected.is_none() => continue,
                WriteOutcome::Failed { .. } => {
                    return Err(ApiError::conflict(info.group_resource(), name, "the object has been modified; please apply your changes to the latest version and try again"))
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "write_tests.rs"]
mod tests;
