//! OpenAPI: `/openapi/v3` (the index), `/openapi/v3/{api/v1|apis/g/v}` (one
//! document per group-version) and `/openapi/v2` (Swagger 2.0, JSON or
//! protobuf).
//!
//! The schemas are [`crate::schema::builtin`]'s definitions; [`ops`]
//! describes the paths once and [`v3`] and [`v2`] render them. Documents are
//! built on first use and kept only as serialized bytes with their hash, so
//! serving one is a clone of a reference-counted buffer.
//!
//! Custom resources register their group-versions with
//! [`Registry::set_group_version`]: the index lists them, and the v2
//! document is rebuilt to include them.

pub mod ops;
pub mod v2;
mod v2proto;
pub mod v3;

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::error::{ApiError, ApiResult};
use crate::resources::{self, ResourceInfo};
use crate::schema;
use ops::Served;
use v3::Defs;

const JSON: &str = "application/json";
/// The v2 protobuf media type clients ask for, and the one upstream answers with.
const PROTO_V2_ASKED: &str = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf";
const PROTO_V2: &str = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

fn info() -> Value {
    json!({ "title": "Kubernetes", "version": "v1.37.0" })
}

fn bearer_token() -> Value {
    json!({ "type": "apiKey", "name": "authorization", "in": "header", "description": "Bearer Token authentication" })
}

fn code_description(code: u16) -> &'static str {
    match code {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        _ => "",
    }
}

/// A serialized document and its content hash.
pub struct Document {
    pub body: Bytes,
    /// Upper-case hex, as in `?hash=` and the ETag.
    pub hash: String,
}

impl Document {
    fn new(body: Vec<u8>) -> Document {
        let hash = hash(&body);
        Document {
            body: body.into(),
            hash,
        }
    }
}

/// FNV-1a 64 over the bytes: stable across restarts, changes with content.
/// Clients treat the value as opaque.
fn hash(bytes: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016X}")
}

/// `api/v1` or `apis/{group}/{version}`: the key of a document in the index.
pub fn gv_path(group: &str, version: &str) -> String {
    ops::gv_prefix(group, version)
        .trim_start_matches('/')
        .to_string()
}

/// A group-version served besides the built-in ones (a custom resource's).
pub struct ExtraGroupVersion {
    pub group: String,
    pub version: String,
    /// Each resource and the name of its kind's definition in `defs`.
    pub resources: Vec<(ResourceInfo, String)>,
    /// Definitions the built-in ones lack (the kinds and their lists).
    pub defs: Map<String, Value>,
}

impl ExtraGroupVersion {
    fn served(&self) -> Vec<Served<'_>> {
        self.resources
            .iter()
            .map(|(info, definition)| Served { info, definition })
            .collect()
    }

    fn defs(&self) -> Defs<'_> {
        Defs {
            builtin: &schema::builtin().defs,
            extra: Some(&self.defs),
        }
    }
}

/// The v2 document in both encodings.
struct V2 {
    json: Document,
    proto: Bytes,
}

/// An added group-version and its v3 document, by index path.
type Extras = BTreeMap<String, (Arc<ExtraGroupVersion>, Arc<Document>)>;

/// Every document served.
#[derive(Default)]
pub struct Registry {
    builtin: OnceLock<BTreeMap<String, Arc<Document>>>,
    extra: RwLock<Extras>,
    v2: RwLock<Option<Arc<V2>>>,
}

/// The served resources of each built-in group-version, with their kinds'
/// definitions.
fn builtin_served() -> Vec<(&'static str, &'static str, Vec<Served<'static>>)> {
    let s = schema::builtin();
    let mut out = Vec::new();
    for (group, versions) in resources::groups() {
        for version in versions {
            let served = resources::RESOURCES
                .iter()
                .filter(|r| r.group == group && r.version == version)
                .filter_map(|info| {
                    let definition = s.definition_of(info.group, info.version, info.kind)?;
                    Some(Served { info, definition })
                })
                .collect();
            out.push((group, version, served));
        }
    }
    out
}

impl Registry {
    /// The process-wide registry.
    pub fn global() -> &'static Registry {
        static R: OnceLock<Registry> = OnceLock::new();
        R.get_or_init(Registry::default)
    }

    fn builtin(&self) -> &BTreeMap<String, Arc<Document>> {
        self.builtin.get_or_init(|| {
            let started = Instant::now();
            let defs = Defs {
                builtin: &schema::builtin().defs,
                extra: None,
            };
            let docs: BTreeMap<_, _> = builtin_served()
                .into_iter()
                .map(|(g, v, served)| {
                    let doc = Document::new(v3::document(g, v, &served, defs));
                    (gv_path(g, v), Arc::new(doc))
                })
                .collect();
            tracing::info!(
                documents = docs.len(),
                bytes = docs.values().map(|d| d.body.len()).sum::<usize>(),
                millis = started.elapsed().as_millis() as u64,
                "generated OpenAPI v3 documents"
            );
            docs
        })
    }

    /// Serve (or replace) a group-version besides the built-in ones. A
    /// built-in group-version cannot be replaced.
    pub fn set_group_version(&self, gv: ExtraGroupVersion) -> Result<(), String> {
        let path = gv_path(&gv.group, &gv.version);
        if resources::RESOURCES
            .iter()
            .any(|r| r.group == gv.group && r.version == gv.version)
        {
            return Err(format!("{path} is a built-in group-version"));
        }
        let doc = Document::new(v3::document(
            &gv.group,
            &gv.version,
            &gv.served(),
            gv.defs(),
        ));
        self.extra
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(path, (Arc::new(gv), Arc::new(doc)));
        *self.v2.write().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }

    /// Stop serving a group-version added with [`Self::set_group_version`].
    pub fn remove_group_version(&self, group: &str, version: &str) {
        let removed = self
            .extra
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&gv_path(group, version));
        if removed.is_some() {
            *self.v2.write().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// The document of a group-version (`api/v1`, `apis/apps/v1`).
    pub fn v3(&self, path: &str) -> Option<Arc<Document>> {
        if let Some(d) = self.builtin().get(path) {
            return Some(d.clone());
        }
        let extra = self.extra.read().unwrap_or_else(|e| e.into_inner());
        extra.get(path).map(|(_, d)| d.clone())
    }

    /// `/openapi/v3`: each group-version with the URL of its current content.
    pub fn index(&self) -> Vec<u8> {
        let mut paths = Map::new();
        let mut add = |path: &str, doc: &Document| {
            paths.insert(
                path.to_string(),
                json!({ "serverRelativeURL": format!("/openapi/v3/{path}?hash={}", doc.hash) }),
            );
        };
        for (path, doc) in self.builtin() {
            add(path, doc);
        }
        for (path, (_, doc)) in self.extra.read().unwrap_or_else(|e| e.into_inner()).iter() {
            add(path, doc);
        }
        serde_json::to_vec(&json!({ "paths": paths })).unwrap_or_default()
    }

    fn v2(&self) -> Arc<V2> {
        if let Some(v) = self.v2.read().unwrap_or_else(|e| e.into_inner()).as_ref() {
            return v.clone();
        }
        let mut slot = self.v2.write().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = slot.as_ref() {
            return v.clone();
        }
        let started = Instant::now();
        let builtin_defs = Defs {
            builtin: &schema::builtin().defs,
            extra: None,
        };
        let extra = self.extra.read().unwrap_or_else(|e| e.into_inner());
        let mut gvs: Vec<v2::GroupVersion> = builtin_served()
            .into_iter()
            .map(|(group, version, served)| v2::GroupVersion {
                group,
                version,
                served,
                defs: builtin_defs,
            })
            .collect();
        for (gv, _) in extra.values() {
            gvs.push(v2::GroupVersion {
                group: &gv.group,
                version: &gv.version,
                served: gv.served(),
                defs: gv.defs(),
            });
        }
        let doc = v2::document(&gvs);
        let json = Document::new(doc.to_json());
        let proto = Bytes::from(v2proto::encode(&doc));
        tracing::info!(
            json_bytes = json.body.len(),
            proto_bytes = proto.len(),
            millis = started.elapsed().as_millis() as u64,
            "generated OpenAPI v2 document"
        );
        let v = Arc::new(V2 { json, proto });
        *slot = Some(v.clone());
        v
    }
}

/// The media types of an Accept header, most preferred first (by `q`, then
/// by order); `*/*` when absent.
fn accepted(accept: &str) -> Vec<String> {
    let mut clauses: Vec<(f32, usize, String)> = accept
        .split(',')
        .enumerate()
        .filter_map(|(i, part)| {
            let mut fields = part.split(';').map(str::trim);
            let media = fields
                .next()
                .filter(|m| !m.is_empty())?
                .to_ascii_lowercase();
            let q = fields
                .filter_map(|f| f.strip_prefix("q="))
                .find_map(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            (q > 0.0).then_some((q, i, media))
        })
        .collect();
    if clauses.is_empty() {
        return vec!["*/*".into()];
    }
    clauses.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    clauses.into_iter().map(|c| c.2).collect()
}

/// The first offer the client accepts, in the client's order of preference.
fn negotiate<'a>(accept: &str, offers: &[&'a str]) -> Option<&'a str> {
    for clause in accepted(accept) {
        let (ct, cs) = clause.split_once('/').unwrap_or((clause.as_str(), ""));
        for offer in offers {
            let (ot, os) = offer.split_once('/').unwrap_or((offer, ""));
            if (ct == "*" || ct == ot) && (cs == "*" || cs == os) {
                return Some(*offer);
            }
        }
    }
    None
}

fn etag_matches(if_none_match: Option<&str>, etag: &str) -> bool {
    if_none_match.is_some_and(|h| {
        h.split(',')
            .map(|t| t.trim().trim_start_matches("W/"))
            .any(|t| t == "*" || t == etag)
    })
}

/// An HTTP date (`Mon, 02 Jan 2006 15:04:05 GMT`).
fn http_date(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let day = match t.weekday() {
        time::Weekday::Monday => "Mon",
        time::Weekday::Tuesday => "Tue",
        time::Weekday::Wednesday => "Wed",
        time::Weekday::Thursday => "Thu",
        time::Weekday::Friday => "Fri",
        time::Weekday::Saturday => "Sat",
        time::Weekday::Sunday => "Sun",
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{day}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        t.day(),
        MONTHS[t.month() as usize - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn reply(
    content_type: &str,
    etag: &str,
    if_none_match: Option<&str>,
    body: Bytes,
) -> Response<Bytes> {
    let etag = format!("\"{etag}\"");
    let not_modified = etag_matches(if_none_match, &etag);
    let mut r = Response::new(if not_modified { Bytes::new() } else { body });
    if not_modified {
        *r.status_mut() = StatusCode::NOT_MODIFIED;
    }
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    r
}

/// A request for `/openapi/...`.
pub struct Request<'a> {
    /// The path after `/openapi/`.
    pub rest: &'a str,
    /// The `hash` query parameter.
    pub hash: Option<&'a str>,
    pub accept: &'a str,
    pub if_none_match: Option<&'a str>,
}

/// Answer a request for `/openapi/...`, with upstream's caching headers:
/// an ETag everywhere; a document asked for with its current `?hash=` is
/// immutable (cacheable for a year); an outdated hash is redirected to the
/// current one.
pub fn serve(req: &Request) -> ApiResult<Response<Bytes>> {
    let registry = Registry::global();
    let rest = req.rest.trim_end_matches('/');
    if rest == "v2" {
        let Some(media) = negotiate(req.accept, &[JSON, PROTO_V2_ASKED, PROTO_V2]) else {
            return Err(ApiError::not_acceptable(format!(
                "/openapi/v2 is served as {JSON} or {PROTO_V2}"
            )));
        };
        let v2 = registry.v2();
        let (ct, body) = if media == JSON {
            (JSON, v2.json.body.clone())
        } else {
            (PROTO_V2, v2.proto.clone())
        };
        let mut r = reply(ct, &v2.json.hash, req.if_none_match, body);
        r.headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Accept"));
        return Ok(r);
    }
    if rest == "v3" {
        let body = Bytes::from(registry.index());
        let etag = hash(&body);
        return Ok(reply(JSON, &etag, req.if_none_match, body));
    }
    let path = rest
        .strip_prefix("v3/")
        .ok_or_else(ApiError::not_found_path)?;
    let doc = registry.v3(path).ok_or_else(ApiError::not_found_path)?;
    if negotiate(req.accept, &[JSON]).is_none() {
        return Err(ApiError::not_acceptable(format!(
            "OpenAPI v3 documents are served as {JSON}"
        )));
    }
    if let Some(h) = req.hash.filter(|h| !h.is_empty()) {
        if h != doc.hash {
            let mut r = Response::new(Bytes::new());
            *r.status_mut() = StatusCode::MOVED_PERMANENTLY;
            let location = format!("/openapi/v3/{path}?hash={}", doc.hash);
            if let Ok(v) = HeaderValue::from_str(&location) {
                r.headers_mut().insert(header::LOCATION, v);
            }
            return Ok(r);
        }
    }
    let mut r = reply(JSON, &doc.hash, req.if_none_match, doc.body.clone());
    let h = r.headers_mut();
    h.insert(header::VARY, HeaderValue::from_static("Accept"));
    if req.hash.is_some_and(|h| !h.is_empty()) {
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, immutable"),
        );
        let expires = http_date(time::OffsetDateTime::now_utc() + time::Duration::days(365));
        if let Ok(v) = HeaderValue::from_str(&expires) {
            h.insert(header::EXPIRES, v);
        }
    }
    Ok(r)
}

/// [`serve`] on a blocking thread: the first request generates the
/// documents (a few hundred milliseconds in a debug build), which must not
/// stall the tasks serving other connections.
pub async fn serve_blocking(
    rest: String,
    hash: Option<String>,
    accept: String,
    if_none_match: Option<String>,
) -> ApiResult<Response<Bytes>> {
    tokio::task::spawn_blocking(move || {
        serve(&Request {
            rest: &rest,
            hash: hash.as_deref(),
            accept: &accept,
            if_none_match: if_none_match.as_deref(),
        })
    })
    .await
    .unwrap_or_else(|e| Err(ApiError::internal(format!("serving OpenAPI failed: {e}"))))
}

#[cfg(test)]
mod tests;
