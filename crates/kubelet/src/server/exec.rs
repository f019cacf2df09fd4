//! exec and attach: the client's WebSocket (v5 or v4 channel protocol)
//! bridged to containerd's streaming server over SPDY. Every channel maps to
//! one SPDY stream (`streamtype` error, stdin, stdout, stderr, resize); the
//! v5 close of stdin becomes the stdin stream's FIN. containerd writes the
//! v4 Status on the error stream, which is the same document v5 carries.

use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use http::{header, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::channel::{self, Inbound, Protocol};
use super::spdy::{self, Frame};
use super::stream::{self, Dialed};
use super::{text, Body, Ctx, Query};
use crate::cri::api;

/// The WebSocket key of an upgrade request, if it is one.
pub(super) fn websocket_key(req: &Request<Incoming>) -> Option<String> {
    let h = req.headers();
    let upgrade = h
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if !upgrade {
        return None;
    }
    h.get("sec-websocket-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The offered subprotocols.
pub(super) fn offered_protocols(req: &Request<Incoming>) -> Vec<String> {
    req.headers()
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect()
}

/// The 101 that accepts a WebSocket with `protocol`.
pub(super) fn switching(key: &str, protocol: &str) -> Response<Body> {
    let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
    let mut r = Response::new(Empty::new().map_err(|e| match e {}).boxed());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, http::HeaderValue::from_static("websocket"));
    h.insert(
        header::CONNECTION,
        http::HeaderValue::from_static("Upgrade"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&accept) {
        h.insert("sec-websocket-accept", v);
    }
    if let Ok(v) = http::HeaderValue::from_str(protocol) {
        h.insert("sec-websocket-protocol", v);
    }
    r
}

/// The running container's CRI ID, from the pod's status.
fn running_container(pod: &k8s_openapi::api::core::v1::Pod, container: &str) -> Option<String> {
    let s = pod.status.as_ref()?;
    s.container_statuses
        .iter()
        .flatten()
        .chain(s.init_container_statuses.iter().flatten())
        .chain(s.ephemeral_container_statuses.iter().flatten())
        .find(|c| c.name == container)
        .filter(|c| c.state.as_ref().is_some_and(|st| st.running.is_some()))
        .and_then(|c| c.container_id.as_deref())
        .map(|id| super::cri_id(id).to_string())
}

/// SPDY stream IDs of the channels in use (odd: we open them).
#[derive(Clone, Copy, Debug, Default)]
struct Ids {
    error: u32,
    stdin: Option<u32>,
    stdout: Option<u32>,
    stderr: Option<u32>,
    resize: Option<u32>,
}

pub(super) async fn serve(
    ctx: Arc<Ctx>,
    ns: &str,
    name: &str,
    container: &str,
    q: &Query,
    attach: bool,
    req: Request<Incoming>,
) -> Response<Body> {
    // Older clients upgrade to SPDY, which containerd speaks too: their
    // connection is joined to containerd's once both switched.
    let spdy_offers = spdy_protocols(&req);
    let key = websocket_key(&req);
    if key.is_none() && spdy_offers.is_empty() {
        return text(
            StatusCode::BAD_REQUEST,
            "unable to upgrade connection: a WebSocket or SPDY/3.1 upgrade is required",
        );
    }
    let offers = offered_protocols(&req);
    let proto = channel::negotiate(offers.iter().map(String::as_str));
    if key.is_some() && proto.is_none() {
        return text(
            StatusCode::BAD_REQUEST,
            format!(
                "unable to upgrade connection: none of the subprotocols {offers:?} is supported (v5.channel.k8s.io, v4.channel.k8s.io)"
            ),
        );
    }
    let pod = match super::get_pod(&ctx, ns, name).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(id) = running_container(&pod, container) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("container not found (\"{container}\")"),
        );
    };
    let cmd = q.all("command");
    let tty = q.flag("tty");
    let stdin = q.flag("stdin");
    let stdout = q.flag("stdout");
    // A terminal merges stderr into stdout (CRI refuses both).
    let stderr = q.flag("stderr") && !tty;
    if !stdin && !stdout && !stderr {
        return text(
            StatusCode::BAD_REQUEST,
            "you must specify at least 1 of stdin, stdout, stderr",
        );
    }
    let url = if attach {
        ctx.runtime
            .attach(api::AttachRequest {
                container_id: id,
                stdin,
                tty,
                stdout,
                stderr,
            })
            .await
    } else {
        if cmd.is_empty() {
            return text(
                StatusCode::BAD_REQUEST,
                "you must specify at least 1 command",
            );
        }
        ctx.runtime
            .exec(api::ExecRequest {
                container_id: id,
                cmd: cmd.clone(),
                tty,
                stdin,
                stdout,
                stderr,
            })
            .await
    };
    let url = match url {
        Ok(u) => u,
        Err(e) => return text(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    // The runtime's upgrade happens before ours: a refusal is still an
    // ordinary HTTP error for the client.
    let wanted: Vec<&str> = match (&key, proto) {
        (Some(_), _) => vec!["v4.channel.k8s.io"],
        (None, _) => spdy_offers.iter().map(String::as_str).collect(),
    };
    let dialed = match stream::dial(&url, &wanted).await {
        Ok(d) => d,
        Err(e) => {
            let code = StatusCode::from_u16(e.status)
                .ok()
                .filter(|c| c.is_client_error() || c.is_server_error())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return text(code, e.message);
        }
    };
    let (Some(key), Some(proto)) = (key, proto) else {
        return spdy_passthrough(dialed, req);
    };
    let (sender, out) = spdy::Sender::new();
    let mut next = 1u32;
    let mut open = |kind: &str| {
        let id = next;
        next += 2;
        sender.syn_stream(id, false, &[("streamtype", kind)]);
        id
    };
    let ids = Ids {
        error: open("error"),
        stdin: stdin.then(|| open("stdin")),
        stdout: stdout.then(|| open("stdout")),
        stderr: stderr.then(|| open("stderr")),
        resize: tty.then(|| open("resize")),
    };
    let resp = super::exec::switching(&key, proto.name());
    tokio::spawn(async move {
        let upgraded = match hyper::upgrade::on(req).await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "exec upgrade failed");
                return;
            }
        };
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        bridge(ws, proto, dialed, ids, sender, out).await;
    });
    resp
}

/// The `X-Stream-Protocol-Version`s of a SPDY upgrade request (none if it
/// is not one).
fn spdy_protocols(req: &Request<Incoming>) -> Vec<String> {
    let spdy = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("SPDY/3.1"));
    if !spdy {
        return Vec::new();
    }
    req.headers()
        .get_all("x-stream-protocol-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Answer a SPDY client with containerd's choice and join the connections.
fn spdy_passthrough(dialed: Dialed, req: Request<Incoming>) -> Response<Body> {
    let mut r = Response::new(Empty::new().map_err(|e| match e {}).boxed());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(
        header::CONNECTION,
        http::HeaderValue::from_static("Upgrade"),
    );
    h.insert(header::UPGRADE, http::HeaderValue::from_static("SPDY/3.1"));
    if let Ok(v) = http::HeaderValue::from_str(&dialed.protocol) {
        h.insert("x-stream-protocol-version", v);
    }
    tokio::spawn(async move {
        let Ok(up) = hyper::upgrade::on(req).await else {
            return;
        };
        let Dialed {
            mut read,
            mut write,
            leftover,
            ..
        } = dialed;
        let (mut cr, mut cw) = tokio::io::split(TokioIo::new(up));
        let down = async {
            if cw.write_all(&leftover).await.is_ok() {
                let _ = tokio::io::copy(&mut read, &mut cw).await;
            }
            let _ = cw.shutdown().await;
        };
        let up = async {
            let _ = tokio::io::copy(&mut cr, &mut write).await;
            let _ = write.shutdown().await;
        };
        tokio::join!(down, up);
    });
    r
}

async fn bridge<S>(
    ws: WebSocketStream<S>,
    proto: Protocol,
    dialed: Dialed,
    ids: Ids,
    sender: spdy::Sender,
    mut out: tokio::sync::mpsc::UnboundedReceiver<bytes::Bytes>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let Dialed {
        mut read,
        mut write,
        leftover,
        ..
    } = dialed;
    let writer = tokio::spawn(async move {
        while let Some(f) = out.recv().await {
            if write.write_all(&f).await.is_err() {
                break;
            }
        }
        let _ = write.shutdown().await;
    });
    let (mut ws_tx, mut ws_rx) = ws.split();
    let to_runtime = {
        let sender = sender.clone();
        async move {
            while let Some(Ok(msg)) = ws_rx.next().await {
                // Clients may send text frames (the Python client does for
                // str data); upstream reads both kinds as the same bytes.
                let data = match msg {
                    Message::Binary(b) => b,
                    Message::Text(t) => bytes::Bytes::copy_from_slice(t.as_bytes()),
                    Message::Close(_) => break,
                    _ => continue,
                };
                match channel::decode(proto, &data) {
                    Inbound::Stdin(d) => {
                        if let Some(id) = ids.stdin {
                            sender.data(id, false, d);
                        }
                    }
                    Inbound::CloseStdin => {
                        if let Some(id) = ids.stdin {
                            sender.data(id, true, &[]);
                        }
                    }
                    Inbound::Resize(d) => {
                        if let Some(id) = ids.resize {
                            sender.data(id, false, d);
                        }
                    }
                    Inbound::Ignore => {}
                }
            }
        }
    };
    let from_runtime = async {
        let mut reader = spdy::Reader::default();
        reader.feed(&leftover);
        let mut buf = vec![0u8; 32 * 1024];
        'conn: loop {
            loop {
                let frame = match reader.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "bad frame from the streaming server");
                        break 'conn;
                    }
                };
                match frame {
                    Frame::Data { id, data, .. } if !data.is_empty() => {
                        let ch = if Some(id) == ids.stdout {
                            channel::STDOUT
                        } else if Some(id) == ids.stderr {
                            channel::STDERR
                        } else if id == ids.error {
                            channel::ERROR
                        } else {
                            continue;
                        };
                        let m = Message::Binary(channel::encode(ch, &data).into());
                        if ws_tx.send(m).await.is_err() {
                            break 'conn;
                        }
                    }
                    Frame::Ping(p) => {
                        sender.ping(p);
                    }
                    Frame::GoAway => break 'conn,
                    _ => {}
                }
            }
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => reader.feed(&buf[..n]),
            }
        }
        let close = CloseFrame {
            code: tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode::Normal,
            reason: "".into(),
        };
        let _ = ws_tx.send(Message::Close(Some(close))).await;
        let _ = ws_tx.close().await;
    };
    tokio::select! {
        _ = from_runtime => {}
        _ = to_runtime => {}
    }
    drop(sender);
    writer.abort();
}
