//! One function per request: route it, call the registry, and encode the
//! answer (JSON, a Table, or a stream of watch events). Every failure becomes
//! a `metav1.Status`.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::Request;
use serde_json::{json, Value};

use crate::authn::UserInfo;
use crate::cache::Entry;
use crate::discovery;
use crate::error::{ApiError, ApiResult};
use crate::negotiate::{self, Output};
use crate::registry::delete::DeleteOptions;
use crate::registry::{
    FieldValidation, ListOptions, PatchType, WatchItem, WriteOptions, WriteResult,
};
use crate::route::{route, ResourcePath, Route, RouteError};
use crate::selector::{FieldSelector, LabelSelector};
use crate::server::Ctx;
use crate::table::{self, IncludeObject};

/// Largest request body accepted (upstream's limit for JSON bodies is 3 MiB).
pub const MAX_BODY: usize = 3 * 1024 * 1024;
const TABLE_TYPE: &str = "application/json;as=Table;v=v1;g=meta.k8s.io";

type Body = BoxBody<Bytes, Infallible>;

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn respond(code: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::OK);
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    r
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    respond(
        code,
        "application/json",
        serde_json::to_vec(v).unwrap_or_default(),
    )
}

fn error_response(e: &ApiError) -> Response<Body> {
    let mut r = json_response(e.code, &e.to_status());
    if let Some(s) = e.retry_after {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    r
}

/// The query string, decoded.
#[derive(Default, Debug)]
pub struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Query {
        let Some(q) = q else { return Query::default() };
        Query(
            form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    fn get(&self, k: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true" | "1"))
    }
}

/// Handle one request; never fails, errors become Status responses.
pub(crate) async fn handle(
    ctx: Arc<Ctx>,
    user: Option<UserInfo>,
    req: Request<Incoming>,
) -> Response<Body> {
    let started = std::time::Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let resp = match dispatch(&ctx, user, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    };
    tracing::debug!(%method, path, code = resp.status().as_u16(), micros = started.elapsed().as_micros() as u64, "request");
    resp
}

async fn dispatch(
    ctx: &Arc<Ctx>,
    user: Option<UserInfo>,
    req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let path = req.uri().path().to_string();
    let query = Query::parse(req.uri().query());
    let accept = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    // The CA bundle is public (k3s's `/cacerts`): a joining agent fetches
    // it before it trusts anything and checks it against its token's hash.
    if path == "/cacerts" {
        return Ok(respond(200, "text/plain", ctx.ca_pem.clone().into_bytes()));
    }
    let r = match route(&path) {
        Ok(r) => r,
        Err(RouteError::UnknownResource) | Err(RouteError::BadPath) => {
            return Err(ApiError::not_found_path())
        }
    };
    // Health and version are public, as upstream's system:public-info-viewer makes them.
    match &r {
        Route::Health { kind, check } => {
            return Ok(health(ctx, kind, check.as_deref(), query.flag("verbose")).await)
        }
        Route::Version => return Ok(json_response(200, &version())),
        _ => {}
    }
    let Some(user) = user else {
        return Err(ApiError::unauthorized());
    };
    crate::bootstrap_token::authorize(&user, &r, req.method(), query.flag("watch"))?;
    if let Route::OpenApi(rest) = &r {
        let if_none_match = req
            .headers()
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let hash = query.get("hash").map(str::to_string);
        return crate::openapi::serve_blocking(rest.clone(), hash, accept, if_none_match)
            .await
            .map(|resp| resp.map(full));
    }
    check_accept(&accept)?;
    match r {
        Route::LegacyVersions => Ok(if discovery::wants_aggregated(&accept) {
            respond(
                200,
                discovery::AGGREGATED_V2,
                serde_json::to_vec(&discovery::aggregated(true)).unwrap_or_default(),
            )
        } else {
            json_response(200, &discovery::legacy_versions(&ctx.advertise.to_string()))
        }),
        Route::Groups => Ok(if discovery::wants_aggregated(&accept) {
            respond(
                200,
                discovery::AGGREGATED_V2,
                serde_json::to_vec(&discovery::aggregated(false)).unwrap_or_default(),
            )
        } else {
            json_response(200, &discovery::group_list())
        }),
        Route::Group(g) => discovery::group(&g)
            .map(|d| json_response(200, &d))
            .ok_or_else(ApiError::not_found_path),
        Route::ResourceList { group, version } => discovery::resource_list(&group, &version)
            .map(|d| json_response(200, &d))
            .ok_or_else(ApiError::not_found_path),
        Route::Resource(rp) => {
            // Requests to a deprecated custom resource version carry a warning.
            let deprecated = crate::crd::deprecation_warning(rp.info);
            let r = resource(ctx, &user, rp, query, &accept, req).await;
            match deprecated {
                Some(w) => r.map(|resp| with_warnings(resp, &[w])),
                None => r,
            }
        }
        Route::OpenApi(_) | Route::Unknown => Err(ApiError::not_found_path()),
        Route::Health { .. } | Route::Version => unreachable!("handled above"),
    }
}

fn check_accept(accept: &str) -> ApiResult<()> {
    if accept.is_empty() {
        return Ok(());
    }
    let ok = accept.split(',').any(|part| {
        let mt = part.split(';').next().unwrap_or("").trim();
        matches!(
            mt,
            "application/json"
                | "*/*"
                | "application/*"
                | "application/yaml"
                | "application/json-patch+json"
                | "application/merge-patch+json"
        )
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::not_acceptable(format!("only the following media types are accepted: application/json, application/yaml (got {accept:?})")))
    }
}

fn version() -> Value {
    json!({
        "major": "1",
        "minor": "37",
        "emulationMajor": "1",
        "emulationMinor": "37",
        "gitVersion": "v1.37.0+wharf",
        "gitCommit": option_env!("WHARF_GIT_COMMIT").unwrap_or("unknown"),
        "gitTreeState": "clean",
        "buildDate": "1970-01-01T00:00:00Z",
        "goVersion": "none (wharf is written in Rust)",
        "compiler": "rustc",
        "platform": format!("{}/{}", std::env::consts::OS, match std::env::consts::ARCH { "x86_64" => "amd64", "aarch64" => "arm64", a => a }),
    })
}

async fn health(ctx: &Ctx, kind: &str, check: Option<&str>, verbose: bool) -> Response<Body> {
    let store_ok = ctx.registry.store.current_revision().await.is_ok();
    let mut checks: Vec<(&str, bool)> = vec![("ping", true), ("log", true), ("etcd", store_ok)];
    if kind == "readyz" {
        checks.push((
            "informer-sync",
            ctx.registry.cache.revision() > 0 || ctx.ready.load(Ordering::SeqCst),
        ));
        checks.push((
            "poststarthook/bootstrap-controller",
            ctx.ready.load(Ordering::SeqCst),
        ));
    }
    if let Some(c) = check {
        return match checks.iter().find(|(n, _)| *n == c) {
            Some((_, true)) => respond(200, "text/plain; charset=utf-8", "ok"),
            Some((_, false)) => respond(
                500,
                "text/plain; charset=utf-8",
                format!("[-]{c} failed: reason withheld\n"),
            ),
            None => respond(404, "text/plain; charset=utf-8", "404 page not found\n"),
        };
    }
    let all_ok = checks.iter().all(|(_, ok)| *ok);
    if verbose || !all_ok {
        let mut body = String::new();
        for (n, ok) in &checks {
            body.push_str(&if *ok {
                format!("[+]{n} ok\n")
            } else {
                format!("[-]{n} failed: reason withheld\n")
            });
        }
        body.push_str(&if all_ok {
            format!("{kind} check passed\n")
        } else {
            format!("{kind} check failed\n")
        });
        return respond(
            if all_ok { 200 } else { 500 },
            "text/plain; charset=utf-8",
            body,
        );
    }
    respond(200, "text/plain; charset=utf-8", "ok")
}

/// Past the limit a body is still read (and dropped) up to this much, so the
/// client, which is usually still sending, gets the 413 instead of a reset.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

async fn read_body(req: Request<Incoming>) -> ApiResult<Bytes> {
    let mut body = req.into_body();
    let mut buf = bytes::BytesMut::new();
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::bad_request(format!("reading the request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            total += data.len();
            if total <= MAX_BODY {
                buf.extend_from_slice(&data);
            } else if total > DRAIN_LIMIT {
                break;
            }
        }
    }
    if total > MAX_BODY {
        return Err(ApiError::too_large(format!(
            "Request entity too large: limit is {MAX_BODY}"
        )));
    }
    Ok(buf.freeze())
}

/// Decode a JSON or YAML object body.
pub(crate) fn decode_object(content_type: &str, body: &[u8]) -> ApiResult<Value> {
    let mt = content_type.split(';').next().unwrap_or("").trim();
    match mt {
        "" | "application/json" => serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}"))),
        "application/yaml" => crate::yaml::decode(body).map_err(ApiError::bad_request),
        // Typed client-go clients (kubectl create namespace, secret, ...) send
        // protobuf; we read it and answer in JSON, which they accept.
        "application/vnd.kubernetes.protobuf" => crate::protobuf::decode(body).map_err(|e| {
            if e.http_status() == 415 {
                let mut err = ApiError::unsupported_media_type(mt);
                err.message = e.to_string();
                err
            } else {
                ApiError::bad_request(e.to_string())
            }
        }),
        other => Err(ApiError::unsupported_media_type(other)),
    }
}

fn list_options(q: &Query) -> ApiResult<ListOptions> {
    Ok(ListOptions {
        labels: LabelSelector::parse(q.get("labelSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?,
        fields: FieldSelector::parse(q.get("fieldSelector").unwrap_or(""))
            .map_err(ApiError::bad_request)?,
        limit: match q.get("limit") {
            Some(l) if !l.is_empty() => l
                .parse()
                .map_err(|_| ApiError::bad_request(format!("invalid limit {l:?}")))?,
            _ => 0,
        },
        continue_token: q
            .get("continue")
            .filter(|c| !c.is_empty())
            .map(str::to_string),
        resource_version: q.get("resourceVersion").map(str::to_string),
        resource_version_match: q
            .get("resourceVersionMatch")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        timeout_seconds: q.get("timeoutSeconds").and_then(|t| t.parse().ok()),
        allow_bookmarks: q.flag("allowWatchBookmarks"),
        send_initial_events: q.get("sendInitialEvents").map(|v| v == "true"),
    })
}

fn write_options(
    q: &Query,
    headers: &http::HeaderMap,
    options_kind: &str,
) -> ApiResult<WriteOptions> {
    let field_validation = match q.get("fieldValidation") {
        None | Some("") | Some("Warn") => FieldValidation::Warn,
        Some("Strict") => FieldValidation::Strict,
        Some("Ignore") => FieldValidation::Ignore,
        Some(other) => {
            return Err(ApiError::bad_request(format!("fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\"")))
        }
    };
    let dry_run = match q.get("dryRun") {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "dryRun: Unsupported value: {other:?}: supported values: \"All\""
            )))
        }
    };
    let explicit = q.get("fieldManager").unwrap_or("");
    let errs = crate::apply::validate_field_manager(explicit);
    if !errs.is_empty() {
        return Err(ApiError::invalid("meta.k8s.io", options_kind, "", &errs));
    }
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    Ok(WriteOptions {
        dry_run,
        field_validation,
        field_manager: Some(crate::apply::manager_or_user_agent(explicit, user_agent)),
        requester: None,
    })
}

/// A boolean query parameter, read as Go's `strconv.ParseBool` reads it.
fn parse_bool(name: &str, v: &str) -> ApiResult<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        other => Err(ApiError::bad_request(format!(
            "{name}: strconv.ParseBool: parsing {other:?}: invalid syntax"
        ))),
    }
}

/// The checks of `PatchOptions` that depend on the patch type: apply needs
/// a `fieldManager`, and only apply takes `force`.
fn apply_options(q: &Query, apply: bool) -> ApiResult<Option<bool>> {
    let force = match q.get("force") {
        None => None,
        Some(v) => Some(parse_bool("force", v)?),
    };
    let mut errs = Vec::new();
    if apply && q.get("fieldManager").unwrap_or("").is_empty() {
        errs.push(crate::error::FieldError::required(
            "fieldManager",
            "is required for apply patch",
        ));
    }
    if !apply && force.is_some() {
        errs.push(crate::error::FieldError::forbidden(
            "force",
            "may not be specified for non-apply patch",
        ));
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid("meta.k8s.io", "PatchOptions", "", &errs));
    }
    Ok(force)
}

fn with_warnings(mut r: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            r.headers_mut().append(header::WARNING, v);
        }
    }
    r
}

fn write_response(
    w: WriteResult,
    out: Output,
    info: &'static crate::resources::ResourceInfo,
    include: IncludeObject,
) -> ApiResult<Response<Body>> {
    let own_kind = w.object.kind() == Some(info.kind);
    let r = if matches!(out, Output::Partial(_) | Output::PartialList(_)) && own_kind {
        json_response(w.code, &negotiate::partial(out, info, &w.object.value())?)
    } else if out == Output::Table && own_kind {
        let object = w.object.into_value();
        let rv = object["metadata"]["resourceVersion"].clone();
        let t = table::render(
            info,
            std::slice::from_ref(&object),
            include,
            json!({ "resourceVersion": rv }),
            std::time::SystemTime::now(),
        );
        respond(
            w.code,
            TABLE_TYPE,
            serde_json::to_vec(&t).unwrap_or_default(),
        )
    } else if let Some(raw) = w.raw {
        respond(w.code, "application/json", raw)
    } else {
        json_response(w.code, &w.object.value())
    };
    Ok(with_warnings(r, &w.warnings))
}

fn include_object(q: &Query) -> IncludeObject {
    IncludeObject::parse(q.get("includeObject").unwrap_or(""))
}

async fn resource(
    ctx: &Arc<Ctx>,
    user: &UserInfo,
    rp: ResourcePath,
    q: Query,
    accept: &str,
    req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let reg = &ctx.registry;
    let info = rp.info;
    let method = req.method().clone();
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let sub = rp.subresource.clone();
    if let Some(s) = sub.as_deref() {
        let known = info.subresource(s).ok_or_else(ApiError::not_found_path)?;
        let verb = match method {
            Method::GET => "get",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::POST => "create",
            _ => "",
        };
        if !known.verbs.contains(&verb) {
            return Err(ApiError::method_not_allowed(format!(
                "{} is not supported on {}/{}",
                method, info.plural, s
            )));
        }
        if crate::podproxy::handles(info.plural, s) {
            return crate::podproxy::handle(ctx, &rp, s, req).await;
        }
        if s == "scale" && crate::crd::is_custom(info) {
            let opts = write_options(&q, req.headers(), "UpdateOptions")?;
            let body = read_body(req).await?;
            let (code, scale) =
                crate::crd::scale::handle(reg, &rp, method, &content_type, &body, &opts).await?;
            return Ok(json_response(code, &scale));
        }
        if s == "approval" && method == Method::PUT {
            let opts = write_options(&q, req.headers(), "UpdateOptions")?;
            let body = decode_object(&content_type, &read_body(req).await?)?;
            let w = crate::certificates::approval(reg, &rp, body, &opts).await?;
            return write_response(w, negotiate::output(accept), info, include_object(&q));
        }
        if matches!(s, "scale" | "eviction" | "binding" | "finalize" | "token") {
            let opts = write_options(&q, req.headers(), "UpdateOptions")?;
            return crate::subresource::handle(
                reg,
                &rp,
                s,
                method,
                &content_type,
                read_body(req).await?,
                &opts,
            )
            .await;
        }
    }
    if info.plural == "selfsubjectreviews" {
        if method != Method::POST {
            return Err(ApiError::method_not_allowed(
                "only create is supported on selfsubjectreviews",
            ));
        }
        let review = json!({
            "kind": "SelfSubjectReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": { "creationTimestamp": null },
            "status": { "userInfo": { "username": user.username, "uid": user.uid, "groups": user.groups } },
        });
        let mut review = review;
        if !user.extra.is_empty() {
            review["status"]["userInfo"]["extra"] = json!(user.extra);
        }
        return Ok(json_response(201, &review));
    }
    let out = negotiate::output(accept);
    match (method, rp.name.is_some()) {
        (Method::GET, true) if !q.flag("watch") => {
            let obj = reg.get(&rp, q.get("resourceVersion")).await?;
            write_response(
                WriteResult {
                    raw: None,
                    object: obj.into(),
                    code: 200,
                    warnings: vec![],
                },
                out,
                info,
                include_object(&q),
            )
        }
        (Method::GET, _) => {
            let opts = list_options(&q)?;
            if q.flag("watch") {
                if let Output::PartialList(_) = out {
                    // Each event carries one object, never a list.
                    negotiate::partial(out, info, &Value::Null)?;
                }
                let events = reg.watch(&rp, opts).await?;
                return Ok(watch_response(info, events, out, include_object(&q)));
            }
            let list = reg.list(&rp, &opts).await?;
            if matches!(out, Output::Partial(_) | Output::PartialList(_)) {
                let v = negotiate::partial_list(
                    out,
                    info,
                    list.items.iter().map(|e| e.value()),
                    list.list_meta(),
                )?;
                return Ok(json_response(200, &v));
            }
            if out == Output::Table {
                let items: Vec<Value> = list.items.iter().map(|e| e.value()).collect();
                let t = table::render(
                    info,
                    &items,
                    include_object(&q),
                    list.list_meta(),
                    std::time::SystemTime::now(),
                );
                return Ok(respond(
                    200,
                    TABLE_TYPE,
                    serde_json::to_vec(&t).unwrap_or_default(),
                ));
            }
            Ok(respond(200, "application/json", list.to_json(info)))
        }
        (Method::POST, false) => {
            crate::crd::refuse_create_while_terminating(info)?;
            let mut opts = write_options(&q, req.headers(), "CreateOptions")?;
            opts.requester = Some(user.clone());
            let body = read_body(req).await?;
            let obj = decode_object(&content_type, &body)?;
            let w = reg.create(&rp, obj, &opts).await?;
            write_response(w, out, info, include_object(&q))
        }
        (Method::PUT, true) => {
            let opts = write_options(&q, req.headers(), "UpdateOptions")?;
            let body = read_body(req).await?;
            let obj = decode_object(&content_type, &body)?;
            let w = reg.update(&rp, obj, &opts).await?;
            write_response(w, out, info, include_object(&q))
        }
        (Method::PATCH, true) => {
            let mt = content_type.split(';').next().unwrap_or("").trim();
            let pt = match mt {
                "application/json-patch+json" => PatchType::Json,
                "application/merge-patch+json" => PatchType::Merge,
                "application/strategic-merge-patch+json" => PatchType::Strategic,
                "application/apply-patch+yaml" => PatchType::Apply { force: false },
                other => {
                    let mut e = ApiError::unsupported_media_type(other);
                    e.message = format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {other:?})");
                    return Err(e);
                }
            };
            crate::crd::check_patch_type(info, pt)?;
            let force = apply_options(&q, matches!(pt, PatchType::Apply { .. }))?;
            let pt = match pt {
                PatchType::Apply { .. } => PatchType::Apply {
                    force: force.unwrap_or(false),
                },
                other => other,
            };
            let mut opts = write_options(&q, req.headers(), "PatchOptions")?;
            // Server-side apply may create the object.
            opts.requester = Some(user.clone());
            let body = read_body(req).await?;
            let w = reg.patch(&rp, pt, &body, &opts).await?;
            write_response(w, out, info, include_object(&q))
        }
        (Method::DELETE, named) => {
            let body = read_body(req).await?;
            let body_v: Value = if body.is_empty() {
                Value::Null
            } else {
                decode_object(&content_type, &body)?
            };
            let mut opts = DeleteOptions {
                grace_period_seconds: q.get("gracePeriodSeconds").and_then(|g| g.parse().ok()),
                propagation_policy: q.get("propagationPolicy").map(str::to_string),
                orphan_dependents: match q.get("orphanDependents") {
                    None => None,
                    Some(v) => Some(parse_bool("orphanDependents", v)?),
                },
                dry_run: q.get("dryRun") == Some("All"),
                ..Default::default()
            };
            opts = opts.merge_body(&body_v)?;
            if named {
                let w = reg.delete(&rp, &opts).await?;
                Ok(json_response(w.code, &w.object.value()))
            } else {
                if !info.verbs.contains(&"deletecollection") {
                    return Err(ApiError::method_not_allowed(format!(
                        "deletecollection is not supported on {}",
                        info.plural
                    )));
                }
                let list = list_options(&q)?;
                Ok(json_response(
                    200,
                    &reg.delete_collection(&rp, &list, &opts).await?,
                ))
            }
        }
        (m, _) => Err(ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({m})"
        ))),
    }
}

fn partial_bytes(out: Output, info: &crate::resources::ResourceInfo, object: &Value) -> Bytes {
    let v = negotiate::partial(out, info, object).unwrap_or_default();
    Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
}

fn event_line(kind: &str, object: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(object.len() + 32);
    out.extend_from_slice(b"{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"object\":");
    out.extend_from_slice(object);
    out.extend_from_slice(b"}\n");
    Bytes::from(out)
}

fn bookmark(info: &crate::resources::ResourceInfo, rev: i64, initial_end: bool) -> Value {
    let mut meta = json!({ "resourceVersion": rev.to_string(), "creationTimestamp": null });
    if initial_end {
        meta["annotations"] = json!({ "k8s.io/initial-events-end": "true" });
    }
    json!({ "kind": info.kind, "apiVersion": info.api_version(), "metadata": meta })
}

fn watch_response(
    info: &'static crate::resources::ResourceInfo,
    events: crate::registry::WatchStream,
    out: Output,
    include: IncludeObject,
) -> Response<Body> {
    let table_mode = out == Output::Table;
    // The object as it goes into the event line: the cached JSON itself
    // (no copy) unless a Table or a metadata view is wanted.
    let render = move |e: &Arc<Entry>| -> Bytes {
        match out {
            Output::Table => {
                let t = table::render(
                    info,
                    &[e.value()],
                    include,
                    json!({ "resourceVersion": e.rev.to_string() }),
                    std::time::SystemTime::now(),
                );
                Bytes::from(serde_json::to_vec(&t).unwrap_or_default())
            }
            Output::Partial(_) => partial_bytes(out, info, &e.value()),
            _ => e.raw.clone(),
        }
    };
    // Bookmarks take the view too, so a metadata informer can decode them.
    let bookmark_bytes = move |b: Value| -> Bytes {
        match out {
            Output::Partial(_) => partial_bytes(out, info, &b),
            _ => Bytes::from(serde_json::to_vec(&b).unwrap_or_default()),
        }
    };
    let stream = events.map(move |item| {
        let line = match item {
            WatchItem::Event(kind, entry) => event_line(kind.as_str(), &render(&entry)),
            WatchItem::Bookmark(rev) => {
                event_line("BOOKMARK", &bookmark_bytes(bookmark(info, rev, false)))
            }
            WatchItem::InitialEventsEnd(rev) => {
                event_line("BOOKMARK", &bookmark_bytes(bookmark(info, rev, true)))
            }
            WatchItem::Error(e) => event_line(
                "ERROR",
                &serde_json::to_vec(&e.to_status()).unwrap_or_default(),
            ),
        };
        Ok::<_, Infallible>(Frame::data(line))
    });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    let ct = if table_mode {
        TABLE_TYPE
    } else {
        "application/json"
    };
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some("labelSelector=app%3Dweb%2Ctier+in+%28a%29&watch=1&x"));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("watch"));
        assert_eq!(q.get("x"), Some(""));
        // Malformed escapes are kept as written.
        let q = Query::parse(Some("a=100%&b=%zz"));
        assert_eq!((q.get("a"), q.get("b")), (Some("100%"), Some("%zz")));
    }

    #[test]
    fn negotiation() {
        assert!(check_accept("application/vnd.kubernetes.protobuf,application/json").is_ok());
        assert!(check_accept("text/html").is_err());
    }
}
