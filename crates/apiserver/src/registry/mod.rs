//! The generic registry: every REST verb, once, for every resource. Kind
//! specifics come from [`crate::strategy`].
//!
//! Reads come from the [`WatchCache`] once it has caught up with the store;
//! paged lists and exact-revision reads come from the store at a fixed
//! revision; writes go to the store as compare-and-swap transactions keyed by
//! `metadata.resourceVersion`, which is the store revision.

mod apply;
pub mod delete;
mod keylock;
mod list;
mod meta;
mod priority;
mod runtimeclass;
mod watch;
mod write;

use std::sync::Arc;

use serde_json::Value;

use crate::cache::WatchCache;
use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceInfo;
use crate::route::ResourcePath;
use crate::selector::{FieldSelector, LabelSelector};

pub use list::ListResult;
pub use meta::now_rfc3339;
pub use watch::{WatchItem, WatchStream};
pub use write::PatchType;

/// The registry.
pub struct Registry {
    /// The store; only the registry writes to it.
    pub store: Arc<dyn store::Store>,
    /// The watch cache.
    pub cache: Arc<WatchCache>,
    /// Service address allocation.
    pub services: crate::alloc::ServiceAllocator,
    /// How long an Event lives after its last write (upstream's `--event-ttl`).
    pub event_ttl: std::time::Duration,
    /// Read-modify-write cycles queue per key.
    key_locks: keylock::KeyLocks,
}

/// Upstream's default `--event-ttl`.
pub const DEFAULT_EVENT_TTL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Query options of list and watch.
#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    /// `labelSelector`
    pub labels: LabelSelector,
    /// `fieldSelector`
    pub fields: FieldSelector,
    /// `limit` (0: none)
    pub limit: i64,
    /// `continue`
    pub continue_token: Option<String>,
    /// `resourceVersion`
    pub resource_version: Option<String>,
    /// `resourceVersionMatch`
    pub resource_version_match: Option<String>,
    /// `timeoutSeconds`
    pub timeout_seconds: Option<u64>,
    /// `allowWatchBookmarks`
    pub allow_bookmarks: bool,
    /// `sendInitialEvents`
    pub send_initial_events: Option<bool>,
}

/// `fieldValidation`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValidation {
    /// Drop unknown fields silently.
    Ignore,
    /// Drop them and warn (the default).
    Warn,
    /// Refuse the request.
    Strict,
}

/// Options of create, update and patch.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// `dryRun=All`
    pub dry_run: bool,
    /// `fieldValidation`
    pub field_validation: FieldValidation,
    /// `fieldManager`
    pub field_manager: Option<String>,
    /// Who asks, for kinds that record it on create (CertificateSigningRequests).
    pub requester: Option<crate::authn::UserInfo>,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            dry_run: false,
            field_validation: FieldValidation::Warn,
            field_manager: None,
            requester: None,
        }
    }
}

/// A successful write: the object, the HTTP code, and warnings for the client.
#[derive(Debug)]
pub struct WriteResult {
    /// The object as stored (or as it would be, with dryRun).
    pub object: Written,
    /// 200 or 201 (or 202 for a delete still in progress).
    pub code: u16,
    /// `Warning` headers.
    pub warnings: Vec<String>,
    /// `object` as JSON, when the write already encoded it.
    pub raw: Option<bytes::Bytes>,
}

/// The object of a [`WriteResult`]: owned, or shared with the next writer of
/// the key, which took it before the store gave the write its revision (the
/// revision is set in the copy made when the object is read).
#[derive(Debug)]
pub enum Written {
    Owned(Value),
    /// The object as handed to the next writer of its key, without its
    /// revision, and without its managedFields where an apply kept them
    /// apart (their JSON).
    Shared {
        object: Arc<Value>,
        revision: i64,
        managed_fields: Option<bytes::Bytes>,
    },
    /// The object as served (its JSON, revision and managedFields in it),
    /// where the write freed its tree before it was durable; decoded only
    /// if asked for as a value.
    Encoded {
        raw: bytes::Bytes,
        kind: Option<String>,
    },
}

impl From<Value> for Written {
    fn from(v: Value) -> Self {
        Written::Owned(v)
    }
}

impl Written {
    /// The object's `kind`.
    pub fn kind(&self) -> Option<&str> {
        let v = match self {
            Written::Owned(v) => v,
            Written::Shared { object, .. } => object,
            Written::Encoded { kind, .. } => return kind.as_deref(),
        };
        v.get("kind").and_then(Value::as_str)
    }

    /// The object with its `resourceVersion`: a copy only if it is shared.
    pub fn value(&self) -> std::borrow::Cow<'_, Value> {
        match self {
            Written::Owned(v) => std::borrow::Cow::Borrowed(v),
            Written::Shared {
                object,
                revision,
                managed_fields,
            } => std::borrow::Cow::Owned(Written::whole(
                (**object).clone(),
                *revision,
                managed_fields.as_deref(),
            )),
            Written::Encoded { raw, .. } => std::borrow::Cow::Owned(Written::decode(raw)),
        }
    }

    /// The object with its `resourceVersion`, taken.
    pub fn into_value(self) -> Value {
        match self {
            Written::Owned(v) => v,
            Written::Shared {
                object,
                revision,
                managed_fields,
            } => Written::whole(
                Arc::unwrap_or_clone(object),
                revision,
                managed_fields.as_deref(),
            ),
            Written::Encoded { raw, .. } => Written::decode(&raw),
        }
    }

    fn decode(raw: &[u8]) -> Value {
        // Our own encoding: it decodes.
        serde_json::from_slice(raw).unwrap_or(Value::Null)
    }

    fn whole(mut object: Value, revision: i64, managed_fields: Option<&[u8]>) -> Value {
        if let Some(mf) = managed_fields {
            // Our own encoding: it decodes.
            let _ = write::attach_managed_fields(&mut object, mf);
        }
        write::served(object, revision)
    }
}

impl Registry {
    /// A registry over `store`, with its cache.
    pub fn new(
        store: Arc<dyn store::Store>,
        cache: Arc<WatchCache>,
        services: crate::alloc::ServiceAllocator,
    ) -> Registry {
        Registry {
            store,
            cache,
            services,
            event_ttl: DEFAULT_EVENT_TTL,
            key_locks: keylock::KeyLocks::default(),
        }
    }

    /// The store TTL of a write to `info`: Events expire `event_ttl` after
    /// their last write, as upstream's do; nothing else expires.
    pub(crate) fn ttl_of(
        &self,
        info: &crate::resources::ResourceInfo,
    ) -> Option<std::time::Duration> {
        let event =
            info.kind == "Event" && (info.group.is_empty() || info.group == "events.k8s.io");
        event.then_some(self.event_ttl)
    }

    /// Read one object.
    pub async fn get(&self, rp: &ResourcePath, resource_version: Option<&str>) -> ApiResult<Value> {
        let name = rp
            .name
            .as_deref()
            .ok_or_else(|| ApiError::method_not_allowed("get needs a name"))?;
        let key = rp.info.key(rp.namespace.as_deref(), name);
        match resource_version {
            Some("0") => {}
            Some(rv) if !rv.is_empty() => {
                let want = parse_rv(rv)?;
                if !self
                    .cache
                    .wait_for(want, std::time::Duration::from_secs(3))
                    .await
                {
                    return Err(too_large_rv(want, self.cache.revision()));
                }
            }
            _ => {
                if !self.cache.sync().await {
                    return self.get_from_store(rp.info, &key, name).await;
                }
            }
        }
        match self.cache.get(&key) {
            Some(e) => Ok(crate::convert::to_served(rp.info, e.value())),
            None => Err(ApiError::not_found(rp.info.group_resource(), name)),
        }
    }

    async fn get_from_store(
        &self,
        info: &'static ResourceInfo,
        key: &str,
        name: &str,
    ) -> ApiResult<Value> {
        let (kv, _) = self.store.get(key.as_bytes()).await.map_err(store_error)?;
        let kv = kv.ok_or_else(|| ApiError::not_found(info.group_resource(), name))?;
        let e = crate::cache::make_entry(key, &kv.value, kv.mod_revision)
            .ok_or_else(|| ApiError::internal(format!("undecodable object at {key}")))?;
        Ok(crate::convert::to_served(info, e.value()))
    }
}

/// Parse a `resourceVersion` parameter.
pub fn parse_rv(rv: &str) -> ApiResult<i64> {
    rv.parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| ApiError::bad_request(format!("invalid resource version: {rv:?}")))
}

fn too_large_rv(want: i64, have: i64) -> ApiError {
    let mut e = ApiError::timeout(format!(
        "Too large resource version: {want}, current: {have}"
    ));
    e.details = Some(
        serde_json::json!({ "causes": [{ "reason": "ResourceVersionTooLarge", "message": "Too large resource version" }], "retryAfterSeconds": 1 }),
    );
    e
}

/// Map a store failure to an API error.
pub fn store_error(e: store::Error) -> ApiError {
    match e {
        store::Error::Compacted {
            requested,
            compacted,
        } => ApiError::gone(format!(
            "too old resource version: {requested} ({compacted})"
        )),
        store::Error::ValueTooLarge { .. } => {
            ApiError::too_large(format!("Request entity too large: {e}"))
        }
        store::Error::FutureRevision { requested, current } => too_large_rv(requested, current),
        other => ApiError::internal(other.to_string()),
    }
}
