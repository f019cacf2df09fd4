//! Port forwarding (`portforward.k8s.io`): the client opens, per forwarded
//! connection, an error stream and a data stream over SPDY, both with the
//! headers `port` and `requestid`; the kubelet connects to the pod's IP on
//! that port from the host and copies the data stream to and from it,
//! closing (FIN) both streams at the end and writing a message on the error
//! stream if the port cannot be reached.
//!
//! kubectl 1.31+ tunnels the SPDY bytes in WebSocket binary messages
//! (subprotocol `SPDY/3.1+portforward.k8s.io`, KEP-4006); older clients
//! upgrade to SPDY directly. Both are served.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use http::{header, Response, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::exec::{offered_protocols, switching, websocket_key};
use super::spdy::{self, Frame};
use super::{text, Body, Ctx};

/// The port-forward protocol (the only version there is).
pub const PROTOCOL: &str = "portforward.k8s.io";
/// Its name when tunnelled in a WebSocket.
pub const TUNNELED: &str = "SPDY/3.1+portforward.k8s.io";

pub(super) async fn serve(
    ctx: Arc<Ctx>,
    ns: &str,
    name: &str,
    req: Request<Incoming>,
) -> Response<Body> {
    let pod = match super::get_pod(&ctx, ns, name).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let Some(ip) = pod
        .status
        .as_ref()
        .and_then(|s| s.pod_ip.clone())
        .filter(|ip| !ip.is_empty())
    else {
        return text(
            StatusCode::BAD_REQUEST,
            format!("pod {name} has no IP address yet"),
        );
    };
    let target = Target {
        ip,
        pod: format!("{name}_{ns}"),
        uid: pod.metadata.uid.clone().unwrap_or_default(),
    };
    if let Some(key) = websocket_key(&req) {
        let offered = offered_protocols(&req);
        let ok = offered
            .iter()
            .flat_map(|h| h.split(','))
            .any(|p| p.trim() == TUNNELED);
        if !ok {
            return text(
                StatusCode::BAD_REQUEST,
                format!("unable to upgrade connection: subprotocols {offered:?} do not include {TUNNELED}"),
            );
        }
        let resp = switching(&key, TUNNELED);
        tokio::spawn(async move {
            let Ok(up) = hyper::upgrade::on(req).await else {
                return;
            };
            let ws = WebSocketStream::from_raw_socket(TokioIo::new(up), Role::Server, None).await;
            let (mut ws_tx, mut ws_rx) = ws.split();
            let (in_tx, in_rx) = mpsc::channel::<Bytes>(64);
            let (sender, mut out) = spdy::Sender::new();
            let reader = tokio::spawn(async move {
                while let Some(Ok(m)) = ws_rx.next().await {
                    let b = match m {
                        Message::Binary(b) => b,
                        Message::Close(_) => break,
                        _ => continue,
                    };
                    if in_tx.send(b).await.is_err() {
                        break;
                    }
                }
            });
            let writer = tokio::spawn(async move {
                while let Some(f) = out.recv().await {
                    if ws_tx.send(Message::Binary(f)).await.is_err() {
                        break;
                    }
                }
                let _ = ws_tx.close().await;
            });
            session(target, in_rx, sender).await;
            reader.abort();
            writer.abort();
        });
        return resp;
    }
    let spdy_upgrade = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("SPDY/3.1"));
    let wants = req
        .headers()
        .get_all("x-stream-protocol-version")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim() == PROTOCOL));
    if !spdy_upgrade || !wants {
        return text(
            StatusCode::BAD_REQUEST,
            "unable to upgrade connection: port forwarding needs a SPDY/3.1 or WebSocket upgrade offering portforward.k8s.io",
        );
    }
    let mut resp = Response::new(Empty::new().map_err(|e| match e {}).boxed());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(
        header::CONNECTION,
        http::HeaderValue::from_static("Upgrade"),
    );
    h.insert(header::UPGRADE, http::HeaderValue::from_static("SPDY/3.1"));
    h.insert(
        "x-stream-protocol-version",
        http::HeaderValue::from_static(PROTOCOL),
    );
    tokio::spawn(async move {
        let Ok(up) = hyper::upgrade::on(req).await else {
            return;
        };
        let (mut r, mut w) = tokio::io::split(TokioIo::new(up));
        let (in_tx, in_rx) = mpsc::channel::<Bytes>(64);
        let (sender, mut out) = spdy::Sender::new();
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 32 * 1024];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if in_tx.send(Bytes::copy_from_slice(&buf[..n])).await.is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let writer = tokio::spawn(async move {
            while let Some(f) = out.recv().await {
                if w.write_all(&f).await.is_err() {
                    break;
                }
            }
            let _ = w.shutdown().await;
        });
        session(target, in_rx, sender).await;
        reader.abort();
        writer.abort();
    });
    resp
}

/// Where the streams go.
#[derive(Clone)]
struct Target {
    ip: String,
    /// For messages: `<name>_<namespace>`, upstream's pod full name.
    pod: String,
    uid: String,
}

/// One SPDY session: streams come in pairs per request ID.
async fn session(target: Target, mut input: mpsc::Receiver<Bytes>, sender: spdy::Sender) {
    let mut reader = spdy::Reader::default();
    // Data stream ID → the task's inbound queue (None: the client closed it).
    let mut data: HashMap<u32, mpsc::UnboundedSender<Option<Bytes>>> = HashMap::new();
    // Request ID → its error stream.
    let mut errors: HashMap<String, u32> = HashMap::new();
    let mut tasks = Vec::new();
    while let Some(chunk) = input.recv().await {
        reader.feed(&chunk);
        loop {
            let frame = match reader.next_frame() {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "port-forward: bad frame");
                    return;
                }
            };
            match frame {
                Frame::SynStream { id, headers, .. } => {
                    sender.syn_reply(id, false);
                    let get = |k: &str| {
                        headers
                            .iter()
                            .find(|(n, _)| n == k)
                            .map(|(_, v)| v.clone())
                            .unwrap_or_default()
                    };
                    let request = get("requestid");
                    match get("streamtype").as_str() {
                        "error" => {
                            errors.insert(request, id);
                        }
                        "data" => {
                            let port = get("port");
                            let error_id = errors.remove(&request);
                            let (tx, rx) = mpsc::unbounded_channel();
                            data.insert(id, tx);
                            tasks.push(tokio::spawn(forward(
                                target.clone(),
                                port,
                                id,
                                error_id,
                                rx,
                                sender.clone(),
                            )));
                        }
                        _ => {
                            sender.rst(id, spdy::RST_CANCEL);
                        }
                    }
                }
                Frame::Data { id, fin, data: d } => {
                    if let Some(tx) = data.get(&id) {
                        if !d.is_empty() {
                            let _ = tx.send(Some(d));
                        }
                        if fin {
                            let _ = tx.send(None);
                        }
                    }
                }
                Frame::RstStream { id } => {
                    if let Some(tx) = data.remove(&id) {
                        let _ = tx.send(None);
                    }
                }
                Frame::Ping(p) => {
                    sender.ping(p);
                }
                Frame::GoAway => return,
                _ => {}
            }
        }
    }
    for t in tasks {
        t.abort();
    }
}

/// Copy one data stream to and from `ip:port`.
async fn forward(
    t: Target,
    port: String,
    id: u32,
    error_id: Option<u32>,
    mut inbound: mpsc::UnboundedReceiver<Option<Bytes>>,
    sender: spdy::Sender,
) {
    let finish = |msg: Option<String>| {
        if let (Some(e), Some(m)) = (error_id, msg.as_ref()) {
            sender.data(e, false, m.as_bytes());
        }
        if let Some(e) = error_id {
            sender.data(e, true, &[]);
        }
    };
    let port_num: u16 = match port.parse() {
        Ok(p) if p > 0 => p,
        _ => {
            finish(Some(format!("invalid port {port:?}")));
            sender.data(id, true, &[]);
            return;
        }
    };
    let conn = tokio::net::TcpStream::connect((t.ip.as_str(), port_num)).await;
    let tcp = match conn {
        Ok(c) => c,
        Err(e) => {
            finish(Some(format!(
                "error forwarding port {port_num} to pod {}, uid {}: {e}",
                t.pod, t.uid
            )));
            sender.data(id, true, &[]);
            return;
        }
    };
    let (mut r, mut w) = tcp.into_split();
    let s2 = sender.clone();
    let up = async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !s2.data(id, false, &buf[..n]) {
                        break;
                    }
                }
            }
        }
        s2.data(id, true, &[]);
    };
    let down = async move {
        while let Some(Some(b)) = inbound.recv().await {
            if w.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = w.shutdown().await;
    };
    // The stream is done when the pod's side closes, as upstream's: the
    // client waits for the error stream to end before it closes its side.
    tokio::spawn(down);
    up.await;
    finish(None);
}
