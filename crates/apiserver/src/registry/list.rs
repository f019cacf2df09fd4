//! List: from the cache, or page by page from the store at one revision.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use store::RangeRequest;

use super::{parse_rv, store_error, too_large_rv, ListOptions, Registry};
use crate::cache::{make_entry, Entry};
use crate::error::{ApiError, ApiResult};
use crate::resources::ResourceInfo;
use crate::route::ResourcePath;
use crate::strategy;

/// A list's items and its `ListMeta`.
#[derive(Debug)]
pub struct ListResult {
    /// The items, in key order.
    pub items: Vec<Arc<Entry>>,
    /// The revision the list reflects.
    pub revision: i64,
    /// `continue`, when more items remain.
    pub continue_token: Option<String>,
    /// `remainingItemCount`, when known.
    pub remaining: Option<i64>,
}

impl ListResult {
    /// The list's `metadata`.
    pub fn list_meta(&self) -> Value {
        let mut m = json!({ "resourceVersion": self.revision.to_string() });
        if let Some(c) = &self.continue_token {
            m["continue"] = json!(c);
        }
        if let Some(r) = self.remaining {
            m["remainingItemCount"] = json!(r);
        }
        m
    }

    /// The list as JSON bytes, items copied verbatim from the cache.
    pub fn to_json(&self, info: &ResourceInfo) -> Vec<u8> {
        let head = json!({ "kind": format!("{}List", info.kind), "apiVersion": info.api_version(), "metadata": self.list_meta() });
        let head = serde_json::to_string(&head).unwrap_or_default();
        let mut out = Vec::with_capacity(
            64 + self.items.iter().map(|e| e.raw.len() + 1).sum::<usize>() + head.len(),
        );
        out.extend_from_slice(&head.as_bytes()[..head.len() - 1]);
        out.extend_from_slice(b",\"items\":[");
        for (i, e) in self.items.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(&e.raw);
        }
        out.extend_from_slice(b"]}");
        out
    }
}

/// The store prefix of a list: the resource, or one namespace of it.
pub fn list_prefix(rp: &ResourcePath) -> String {
    match (&rp.namespace, rp.info.namespaced) {
        (Some(ns), true) => format!("{}{ns}/", rp.info.key_prefix()),
        _ => rp.info.key_prefix(),
    }
}

/// Check that every field in a field selector is selectable for the kind.
pub fn check_fields(info: &'static ResourceInfo, opts: &ListOptions) -> ApiResult<()> {
    if opts.fields.is_empty() {
        return Ok(());
    }
    let mut supported: Vec<&str> = vec!["metadata.name"];
    if info.namespaced {
        supported.push("metadata.namespace");
    }
    // Ask the strategy for its fields on an empty object to learn their names.
    let sample = json!({ "metadata": {}, "spec": {}, "status": {} });
    supported.extend(
        strategy::strategy_for(info)
            .selectable_fields(&sample)
            .into_iter()
            .map(|(f, _)| f),
    );
    match opts.fields.unsupported(&supported) {
        Some(f) => Err(ApiError::bad_request(format!(
            "field label not supported: {f}"
        ))),
        None => Ok(()),
    }
}

/// Whether an entry passes the selectors.
pub fn matches(e: &Entry, opts: &ListOptions) -> bool {
    opts.labels.matches(&e.labels) && opts.fields.matches(|f| e.field(f))
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Continue {
    v: String,
    rv: i64,
    start: String,
}

fn encode_continue(rv: i64, start: &str) -> String {
    use base64::Engine;
    let c = Continue {
        v: "meta.k8s.io/v1".into(),
        rv,
        start: start.into(),
    };
    base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&c).unwrap_or_default())
}

fn decode_continue(token: &str) -> ApiResult<Continue> {
    let bad = || ApiError::bad_request("continue key is not valid: illegal base64 data");
    let bytes = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(token)
            .map_err(|_| bad())?
    };
    let c: Continue = serde_json::from_slice(&bytes)
        .map_err(|_| ApiError::bad_request("continue key is not valid: invalid JSON"))?;
    if c.v != "meta.k8s.io/v1" {
        return Err(ApiError::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)"));
    }
    if c.start.contains("..") || c.start.starts_with('/') {
        return Err(ApiError::bad_request(
            "continue key is not valid: path traversal attempt",
        ));
    }
    Ok(c)
}

impl Registry {
    /// List a resource (in one namespace, or all).
    pub async fn list(&self, rp: &ResourcePath, opts: &ListOptions) -> ApiResult<ListResult> {
        let mut result = self.list_at_stored_versions(rp, opts).await?;
        // Custom resources are stored at one version and served at any;
        // events.k8s.io Events are stored as core Events.
        if crate::crd::is_custom(rp.info) || crate::convert::is_events_v1(rp.info) {
            result.items = result
                .items
                .into_iter()
                .map(|e| crate::convert::entry_for(rp.info, e))
                .collect();
        }
        Ok(result)
    }

    async fn list_at_stored_versions(
        &self,
        rp: &ResourcePath,
        opts: &ListOptions,
    ) -> ApiResult<ListResult> {
        check_fields(rp.info, opts)?;
        let prefix = list_prefix(rp);
        let rv = opts.resource_version.as_deref().filter(|s| !s.is_empty());
        let exact = opts.resource_version_match.as_deref() == Some("Exact");
        if let Some(m) = opts.resource_version_match.as_deref() {
            if !matches!(m, "Exact" | "NotOlderThan") {
                return Err(ApiError::bad_request(format!(
                    "resourceVersionMatch: Unsupported value: {m:?}"
                )));
            }
            if rv.is_none() {
                return Err(ApiError::bad_request(
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
        }
        if opts.continue_token.is_some() || opts.limit > 0 || exact {
            if opts.continue_token.is_some() && rv.is_some_and(|r| r != "0") {
                return Err(ApiError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            // A limit with rv=0 or NotOlderThan may be served from the cache whole.
            let from_cache = opts.continue_token.is_none() && !exact && rv.is_some();
            if !from_cache {
                return self
                    .list_from_store(
                        &prefix,
                        opts,
                        if exact {
                            rv.map(parse_rv).transpose()?
                        } else {
                            None
                        },
                    )
                    .await;
            }
        }
        match rv {
            Some("0") => {}
            Some(r) => {
                let want = parse_rv(r)?;
                if !self.cache.wait_for(want, Duration::from_secs(3)).await {
                    return Err(too_large_rv(want, self.cache.revision()));
                }
            }
            None => {
                if !self.cache.sync().await {
                    return self.list_from_store(&prefix, opts, None).await;
                }
            }
        }
        let (all, revision) = self.cache.list(&prefix);
        let items = all.into_iter().filter(|e| matches(e, opts)).collect();
        Ok(ListResult {
            items,
            revision,
            continue_token: None,
            remaining: None,
        })
    }

    /// Page through the store at one revision, filtering as we go.
    async fn list_from_store(
        &self,
        prefix: &str,
        opts: &ListOptions,
        at: Option<i64>,
    ) -> ApiResult<ListResult> {
        let (mut start, mut revision) = (prefix.to_string(), at.unwrap_or(0));
        if let Some(token) = &opts.continue_token {
            let c = decode_continue(token)?;
            start = format!("{prefix}{}", c.start);
            revision = c.rv;
            let compacted = self.store.compacted_revision().await.map_err(store_error)?;
            if revision < compacted {
                return Err(ApiError::gone("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter."));
            }
        }
        let end = store::prefix_end(prefix.as_bytes());
        let limit = if opts.limit > 0 { opts.limit } else { 0 };
        let mut items = Vec::new();
        loop {
            let want = if limit > 0 {
                (limit - items.len() as i64).max(1)
            } else {
                0
            };
            // Over-fetch a little when filtering, so selective lists need fewer rounds.
            let fetch = if want > 0 && !(opts.labels.is_empty() && opts.fields.is_empty()) {
                want * 2
            } else {
                want
            };
            let req = RangeRequest {
                range: store::KeyRange {
                    key: start.clone().into_bytes(),
                    range_end: Some(end.clone()),
                },
                revision,
                limit: fetch,
            };
            let resp = self.store.range(req).await.map_err(|e| match e {
                store::Error::Compacted { .. } if opts.continue_token.is_some() => ApiError::gone("The provided continue parameter is too old to display a consistent list result."),
                other => store_error(other),
            })?;
            revision = resp.revision;
            let mut last_key = None;
            let mut consumed = 0;
            for kv in resp.kvs.iter() {
                consumed += 1;
                let key = String::from_utf8_lossy(&kv.key).into_owned();
                if let Some(e) = make_entry(&key, &kv.value, kv.mod_revision) {
                    if matches(&e, opts) {
                        items.push(Arc::new(e));
                    }
                }
                last_key = Some(key);
                if limit > 0 && items.len() as i64 >= limit {
                    break;
                }
            }
            let more = resp.more || consumed < resp.kvs.len();
            let full = limit > 0 && items.len() as i64 >= limit;
            if !more || full || last_key.is_none() {
                let continue_token = match (more, &last_key) {
                    (true, Some(k)) => {
                        let suffix = k.strip_prefix(prefix).unwrap_or(k);
                        Some(encode_continue(revision, &format!("{suffix}\u{0}")))
                    }
                    _ => None,
                };
                let remaining =
                    if continue_token.is_some() && opts.labels.is_empty() && opts.fields.is_empty()
                    {
                        Some(resp.count - consumed as i64).filter(|r| *r > 0)
                    } else {
                        None
                    };
                return Ok(ListResult {
                    items,
                    revision,
                    continue_token,
                    remaining,
                });
            }
            let mut next = last_key.expect("checked above").into_bytes();
            next.push(0);
            start = String::from_utf8_lossy(&next).into_owned();
        }
    }
}
