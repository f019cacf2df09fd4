//! The pod subresources served by the pod's kubelet: `log`, `exec`,
//! `attach` and `portforward`. The API server checks the request against the
//! pod (container names, phase, log options) with upstream's messages, then
//! proxies it over HTTPS to the kubelet found through the Node's InternalIP
//! and `daemonEndpoints.kubeletEndpoint.Port`, authenticating with its own
//! kubelet-client certificate.
//!
//! Logs are streamed through. Connection upgrades (exec, attach,
//! port-forward over WebSocket or SPDY) are forwarded as they are, and only
//! once the kubelet answered 101 are the two connections joined; any other
//! answer is returned to the client as a Status and the kubelet connection
//! is dropped, never piped (CVE-2018-1002105). Once joined, the end of
//! either direction closes both connections.

mod kubelet;
#[cfg(test)]
mod upgrade_tests;

pub use kubelet::AnyServerCert;

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderValue, Method, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Empty, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::Request;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

pub use kubelet::KubeletClient;

use crate::error::{ApiError, ApiResult, FieldError};
use crate::route::ResourcePath;
use crate::server::Ctx;

type Body = BoxBody<Bytes, Infallible>;

/// Whether `sub` of `plural` is served here.
pub fn handles(plural: &str, sub: &str) -> bool {
    plural == "pods" && matches!(sub, "log" | "exec" | "attach" | "portforward")
}

/// Query parameters in order, decoded.
fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn get<'a>(q: &'a [(String, String)], k: &str) -> Option<&'a str> {
    q.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

/// The container a request is for: the named one if the pod has it, the
/// only one if there is one, else upstream's 400s.
pub fn validate_container(pod: &Value, container: Option<&str>) -> ApiResult<String> {
    let name = pod["metadata"]["name"].as_str().unwrap_or_default();
    let names = |key: &str| -> Vec<String> {
        pod["spec"][key]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["name"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (init, main, eph) = (
        names("initContainers"),
        names("containers"),
        names("ephemeralContainers"),
    );
    match container.filter(|c| !c.is_empty()) {
        Some(c) => {
            if init.iter().chain(&main).chain(&eph).any(|n| n == c) {
                Ok(c.to_string())
            } else {
                Err(ApiError::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
        }
        None => match main.len() {
            1 => Ok(main[0].clone()),
            0 => Err(ApiError::bad_request(format!(
                "a container name must be specified for pod {name}"
            ))),
            _ => {
                let all: Vec<String> = init.into_iter().chain(main).chain(eph).collect();
                Err(ApiError::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    all.join(" ")
                )))
            }
        },
    }
}

/// PodLogOptions checks (upstream's ValidatePodLogOptions): 422 with the
/// field errors; unparsable numbers are 400.
pub fn validate_log_options(name: &str, q: &[(String, String)]) -> ApiResult<()> {
    let num = |k: &str| -> ApiResult<Option<i64>> {
        get(q, k)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!(
                        "couldn't parse '{v}' as an integer for parameter {k}"
                    ))
                })
            })
            .transpose()
    };
    let mut errs = Vec::new();
    if let Some(t) = num("tailLines")?.filter(|t| *t < 0) {
        errs.push(FieldError::invalid(
            "tailLines",
            t,
            "must be greater than or equal to 0",
        ));
    }
    if let Some(l) = num("limitBytes")?.filter(|l| *l < 1) {
        errs.push(FieldError::invalid(
            "limitBytes",
            l,
            "must be greater than 0",
        ));
    }
    let since_seconds = num("sinceSeconds")?;
    if let Some(t) = get(q, "sinceTime") {
        if time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).is_err() {
            return Err(ApiError::bad_request(format!(
                "parsing time \"{t}\" as RFC 3339 failed"
            )));
        }
        if since_seconds.is_some() {
            errs.push(FieldError::forbidden(
                "",
                "at most one of `sinceTime` or `sinceSeconds` may be specified",
            ));
        }
    } else if let Some(s) = since_seconds.filter(|s| *s < 1) {
        errs.push(FieldError::invalid(
            "sinceSeconds",
            s,
            "must be greater than 0",
        ));
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid("", "PodLogOptions", name, &errs))
    }
}

/// The kubelet's non-success answer as the Status upstream's API server
/// makes of it (GenericHttpResponseChecker).
fn kubelet_error(code: u16, body: &[u8], name: &str) -> ApiError {
    let text = String::from_utf8_lossy(body).trim().to_string();
    match code {
        400 => ApiError::bad_request(text),
        500 => ApiError::internal(text),
        _ => ApiError {
            code,
            reason: match code {
                401 => "Unauthorized",
                403 => "Forbidden",
                404 => "NotFound",
                _ => "InternalError",
            },
            message: if text.is_empty() {
                format!("the kubelet answered {code} for pods \"{name}\"")
            } else {
                text
            },
            details: Some(serde_json::json!({"name": name, "kind": "pods"})),
            retry_after: None,
        },
    }
}

/// Serve `pods/{sub}` of the pod in `rp`.
pub(crate) async fn handle(
    ctx: &Arc<Ctx>,
    rp: &ResourcePath,
    sub: &str,
    req: Request<Incoming>,
) -> ApiResult<Response<Body>> {
    let name = rp.name.clone().ok_or_else(ApiError::not_found_path)?;
    let ns = rp.namespace.clone().unwrap_or_default();
    let q = query_pairs(req.uri().query());
    if sub == "log" {
        validate_log_options(&name, &q)?;
    }
    let parent = ResourcePath {
        info: rp.info,
        namespace: rp.namespace.clone(),
        name: Some(name.clone()),
        subresource: None,
    };
    let pod = ctx.registry.get(&parent, None).await?;
    let container = match sub {
        "portforward" => String::new(),
        _ => validate_container(&pod, get(&q, "container"))?,
    };
    if matches!(sub, "exec" | "attach") {
        let phase = pod["status"]["phase"].as_str().unwrap_or_default();
        if phase == "Succeeded" || phase == "Failed" {
            return Err(ApiError::bad_request(format!(
                "cannot exec into or attach to a completed pod; current phase is {phase}"
            )));
        }
    }
    let node = pod["spec"]["nodeName"].as_str().unwrap_or_default();
    if node.is_empty() {
        return Err(ApiError::bad_request(format!(
            "pod {name} does not have a host assigned"
        )));
    }
    let (host, port) = kubelet::node_address(&ctx.registry, node).await?;
    let pass: Vec<String> = q
        .iter()
        .filter(|(k, _)| k != "container")
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect();
    let path = match sub {
        "log" => format!("/containerLogs/{ns}/{name}/{container}"),
        "exec" => format!("/exec/{ns}/{name}/{container}"),
        "attach" => format!("/attach/{ns}/{name}/{container}"),
        _ => format!("/portForward/{ns}/{name}"),
    };
    let uri = if pass.is_empty() {
        path
    } else {
        format!("{path}?{}", pass.join("&"))
    };
    let mut sender = ctx.kubelet.connect(&host, port).await?;
    if sub == "log" {
        let kreq = Request::builder()
            .method(Method::GET)
            .uri(&uri)
            .header(header::HOST, format!("{host}:{port}"))
            .body(Empty::<Bytes>::new())
            .map_err(|e| ApiError::internal(e.to_string()))?;
        let resp = sender
            .send_request(kreq)
            .await
            .map_err(|e| kubelet::backend_error(format!("error talking to the kubelet: {e}")))?;
        let status = resp.status();
        if !status.is_success() {
            let body = read_limited(resp.into_body()).await;
            return Err(kubelet_error(status.as_u16(), &body, &name));
        }
        // The kubelet's stream, chunk by chunk; a broken stream just ends.
        let stream = resp
            .into_body()
            .into_data_stream()
            .take_while(|r| std::future::ready(r.is_ok()))
            .filter_map(|r| std::future::ready(r.ok().map(|b| Ok(Frame::data(b)))));
        let mut out = Response::new(BodyExt::boxed(StreamBody::new(stream)));
        out.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        return Ok(out);
    }
    upgrade(sender, req, &uri, &host, port, &name).await
}

async fn read_limited(body: Incoming) -> Vec<u8> {
    let mut out = Vec::new();
    let mut s = body.into_data_stream();
    while let Some(Ok(b)) = s.next().await {
        out.extend_from_slice(&b);
        if out.len() > 64 * 1024 {
            out.truncate(64 * 1024);
            break;
        }
    }
    out
}

/// Headers of an upgrade request that the kubelet needs to see.
const FORWARDED: &[&str] = &[
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "x-stream-protocol-version",
];

/// Headers of the kubelet's 101 that the client needs to see.
const RETURNED: &[&str] = &[
    "upgrade",
    "connection",
    "sec-websocket-accept",
    "sec-websocket-protocol",
    "x-stream-protocol-version",
];

async fn upgrade(
    mut sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    req: Request<Incoming>,
    uri: &str,
    host: &str,
    port: u16,
    name: &str,
) -> ApiResult<Response<Body>> {
    let is_upgrade = req
        .headers()
        .get(header::CONNECTION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        });
    if !is_upgrade {
        return Err(ApiError::bad_request("Upgrade request required"));
    }
    let mut b = Request::builder()
        .method(req.method().clone())
        .uri(uri)
        .header(header::HOST, format!("{host}:{port}"));
    for h in FORWARDED {
        for v in req.headers().get_all(*h) {
            b = b.header(*h, v.clone());
        }
    }
    let kreq = b
        .body(Empty::<Bytes>::new())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let resp = sender
        .send_request(kreq)
        .await
        .map_err(|e| kubelet::backend_error(format!("error talking to the kubelet: {e}")))?;
    if resp.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The kubelet refused: its answer becomes ours and its connection
        // is dropped with `sender` here, never joined to the client's.
        let code = resp.status().as_u16();
        let body = read_limited(resp.into_body()).await;
        drop(sender);
        return Err(kubelet_error(code, &body, name));
    }
    let mut out = Response::new(Empty::new().map_err(|e| match e {}).boxed());
    *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    for h in RETURNED {
        for v in resp.headers().get_all(*h) {
            out.headers_mut().append(*h, v.clone());
        }
    }
    tokio::spawn(async move {
        let (client, backend) = tokio::join!(hyper::upgrade::on(req), hyper::upgrade::on(resp));
        let (Ok(client), Ok(backend)) = (client, backend) else {
            // Either side failed to switch: both are dropped (closed).
            return;
        };
        join(TokioIo::new(client), TokioIo::new(backend)).await;
    });
    Ok(out)
}

/// How long closing the two connections may take once the stream is over.
const CLOSE_WITHIN: std::time::Duration = std::time::Duration::from_secs(2);

/// Pipe the client's upgraded connection and the kubelet's into each other
/// until either direction ends (end of stream or error); then both are shut
/// down and closed, as upstream's upgrade-aware proxy closes both halves
/// once one copy exits. A half-closed side therefore never keeps the other
/// connection open (CVE-2018-1002105).
pub(crate) async fn join<C, B>(client: C, backend: B)
where
    C: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut client_r, mut client_w) = tokio::io::split(client);
    let (mut backend_r, mut backend_w) = tokio::io::split(backend);
    let ended = tokio::select! {
        r = tokio::io::copy(&mut client_r, &mut backend_w) => ("client", r),
        r = tokio::io::copy(&mut backend_r, &mut client_w) => ("kubelet", r),
    };
    match ended {
        (side, Ok(bytes)) => tracing::debug!(side, bytes, "upgraded stream ended"),
        (side, Err(e)) => tracing::debug!(side, error = %e, "upgraded stream failed"),
    }
    // Best effort: a peer that does not read cannot hold the close up.
    let _ = tokio::time::timeout(CLOSE_WITHIN, async {
        let _ = tokio::join!(client_w.shutdown(), backend_w.shutdown());
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(containers: &[&str], init: &[&str]) -> Value {
        let c = |n: &&str| json!({"name": n, "image": "x"});
        json!({
            "metadata": {"name": "web"},
            "spec": {
                "containers": containers.iter().map(c).collect::<Vec<_>>(),
                "initContainers": init.iter().map(c).collect::<Vec<_>>(),
            }
        })
    }

    #[test]
    fn container_choice() {
        assert_eq!(validate_container(&pod(&["a"], &[]), None).unwrap(), "a");
        let two = pod(&["a", "b"], &["i"]);
        assert_eq!(
            validate_container(&two, None).unwrap_err().message,
            "a container name must be specified for pod web, choose one of: [i a b]"
        );
        assert_eq!(validate_container(&two, Some("i")).unwrap(), "i");
        let e = validate_container(&two, Some("z")).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (400, "container z is not valid for pod web")
        );
    }

    #[test]
    fn log_options() {
        let q = |s: &str| query_pairs(Some(s));
        assert!(validate_log_options("p", &q("tailLines=0&limitBytes=1&sinceSeconds=1")).is_ok());
        let e = validate_log_options("p", &q("tailLines=-1")).unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "PodLogOptions \"p\" is invalid: tailLines: Invalid value: -1: must be greater than or equal to 0"
        );
        let e = validate_log_options("p", &q("sinceSeconds=5&sinceTime=2024-01-01T00:00:00Z"))
            .unwrap_err();
        assert!(e
            .message
            .contains("at most one of `sinceTime` or `sinceSeconds`"));
        assert_eq!(
            validate_log_options("p", &q("limitBytes=x"))
                .unwrap_err()
                .code,
            400
        );
    }

    #[test]
    fn query_round_trip() {
        let q = query_pairs(Some("command=sh&command=-c&command=echo+a%26b&container=c"));
        assert_eq!(get(&q, "container"), Some("c"));
        assert_eq!(q[2].1, "echo a&b");
        assert_eq!(encode("echo a&b"), "echo%20a%26b");
    }

    #[test]
    fn kubelet_errors_become_statuses() {
        let e = kubelet_error(
            400,
            b"container \"c\" in pod \"p\" is waiting to start: ContainerCreating\n",
            "p",
        );
        assert_eq!(e.reason, "BadRequest");
        assert_eq!(
            e.message,
            "container \"c\" in pod \"p\" is waiting to start: ContainerCreating"
        );
        assert_eq!(
            kubelet_error(404, b"container not found (\"c\")", "p").reason,
            "NotFound"
        );
        assert_eq!(kubelet_error(401, b"Unauthorized", "p").code, 401);
    }
}
