//! The upgrade proxy on its failure paths (CVE-2018-1002105), driven end to
//! end: a client on plain TCP talks to a hyper server whose service is the
//! real `KubeletClient::connect` and `upgrade`, which dial a fake kubelet
//! serving TLS on 127.0.0.1 with a self-signed certificate. Each test checks
//! what the client sees, what the kubelet sees, and that every task the
//! proxy started has ended.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::service::service_fn;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::*;

/// What "promptly" means for a close to travel through the proxy.
const PROMPTLY: Duration = Duration::from_secs(2);

/// What the fake kubelet does after answering 101.
#[derive(Clone, Copy, Debug)]
enum Kubelet {
    /// Reads the request, then dies without answering it.
    DieBeforeAnswer,
    /// Closes the connection cleanly at once.
    CloseAtOnce,
    /// Echoes `n` bytes, then dies: the socket is dropped without a TLS
    /// close_notify.
    EchoThenDie(usize),
    /// Echoes until its peer ends the stream.
    EchoUntilEnd,
    /// Ends its sending side (close_notify and FIN) but keeps reading.
    HalfClose,
}

/// What the fake kubelet reports.
#[derive(Debug)]
enum Seen {
    /// The request head it got.
    Request(String),
    /// When it saw the proxy's connection end (end of stream or error).
    Ended(Instant),
}

fn tls_acceptor() -> tokio_rustls::TlsAcceptor {
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![CertificateDer::from(ck.cert.der().to_vec())], key)
    .unwrap();
    tokio_rustls::TlsAcceptor::from(Arc::new(cfg))
}

/// A fake kubelet for one connection: it answers the upgrade with 101 and
/// then behaves as `how` says.
async fn fake_kubelet(how: Kubelet) -> (u16, mpsc::UnboundedReceiver<Seen>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let acceptor = tls_acceptor();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let (tcp, _) = l.accept().await.unwrap();
        drop(l);
        let mut s = acceptor.accept(tcp).await.unwrap();
        let head = read_head(&mut s).await;
        let _ = tx.send(Seen::Request(head));
        if let Kubelet::DieBeforeAnswer = how {
            drop(s.into_inner().0);
            let _ = tx.send(Seen::Ended(Instant::now()));
            return;
        }
        s.write_all(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n",
        )
        .await
        .unwrap();
        s.flush().await.unwrap();
        let mut buf = [0u8; 1024];
        match how {
            Kubelet::CloseAtOnce => {
                let _ = s.shutdown().await;
            }
            Kubelet::EchoThenDie(mut n) => {
                while n > 0 {
                    let got = s.read(&mut buf).await.unwrap();
                    assert!(got > 0, "the proxy ended the stream early");
                    s.write_all(&buf[..got]).await.unwrap();
                    s.flush().await.unwrap();
                    n = n.saturating_sub(got);
                }
                // Dies: the TCP socket goes without a TLS goodbye.
                drop(s.into_inner().0);
            }
            Kubelet::EchoUntilEnd => loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if s.write_all(&buf[..n]).await.is_err() || s.flush().await.is_err() {
                            break;
                        }
                    }
                }
            },
            Kubelet::DieBeforeAnswer => unreachable!(),
            Kubelet::HalfClose => {
                s.shutdown().await.unwrap();
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            }
        }
        let _ = tx.send(Seen::Ended(Instant::now()));
    });
    (port, rx)
}

/// The bytes up to the end of an HTTP head, read one at a time so that
/// nothing after it is consumed.
async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let b = s.read_u8().await.unwrap();
        head.push(b);
    }
    String::from_utf8(head).unwrap()
}

/// The API server side: the real `connect` and `upgrade` to the kubelet at
/// `kport`, errors answered as the API server answers them.
async fn proxy(kport: u16) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let data = tempfile::tempdir().unwrap();
    let pki = crate::pki::ensure(data.path(), &[]).unwrap();
    let kc = Arc::new(KubeletClient::new(&pki).unwrap());
    tokio::spawn(async move {
        let _data = data;
        loop {
            let (tcp, _) = l.accept().await.unwrap();
            let kc = kc.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| {
                    let kc = kc.clone();
                    async move {
                        let uri = "/exec/default/p/c?command=sh&stdin=true";
                        let r = match kc.connect("127.0.0.1", kport).await {
                            Ok(sender) => upgrade(sender, req, uri, "127.0.0.1", kport, "p").await,
                            Err(e) => Err(e),
                        };
                        Ok::<_, Infallible>(r.unwrap_or_else(|e| {
                            let mut out = Response::new(
                                Full::new(Bytes::from(e.to_status().to_string())).boxed(),
                            );
                            *out.status_mut() = StatusCode::from_u16(e.code).unwrap();
                            out
                        }))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

/// A client's upgrade request for exec; returns the connection and the
/// response head.
async fn client_upgrade(addr: SocketAddr) -> (TcpStream, String) {
    let mut c = TcpStream::connect(addr).await.unwrap();
    c.write_all(
        b"GET /api/v1/namespaces/default/pods/p/exec?command=sh&stdin=true HTTP/1.1\r\n\
          Host: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
          Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n",
    )
    .await
    .unwrap();
    let head = tokio::time::timeout(PROMPTLY * 5, read_head(&mut c))
        .await
        .expect("an answer to the upgrade");
    (c, head)
}

/// Whether the connection ends (end of stream, or an error such as a
/// reset) within `PROMPTLY`, with nothing more to read.
async fn ends_promptly(c: &mut TcpStream) -> bool {
    let mut buf = [0u8; 64];
    matches!(
        tokio::time::timeout(PROMPTLY, c.read(&mut buf)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Waits until only `n` tasks are alive; false if that takes longer than
/// `PROMPTLY`.
async fn tasks_settle_to(n: usize) -> bool {
    let m = tokio::runtime::Handle::current().metrics();
    let until = Instant::now() + PROMPTLY;
    while Instant::now() < until {
        if m.num_alive_tasks() == n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

async fn request_seen(rx: &mut mpsc::UnboundedReceiver<Seen>) -> String {
    match rx.recv().await {
        Some(Seen::Request(h)) => h,
        other => panic!("expected the kubelet to see a request, got {other:?}"),
    }
}

async fn end_seen(rx: &mut mpsc::UnboundedReceiver<Seen>) -> Option<Instant> {
    match tokio::time::timeout(PROMPTLY, rx.recv()).await {
        Ok(Some(Seen::Ended(t))) => Some(t),
        _ => None,
    }
}

async fn echo(c: &mut TcpStream, msg: &[u8]) {
    c.write_all(msg).await.unwrap();
    let mut got = vec![0u8; msg.len()];
    tokio::time::timeout(PROMPTLY, c.read_exact(&mut got))
        .await
        .expect("the echo in time")
        .unwrap();
    assert_eq!(got, msg);
}

/// The Status the proxy answered with instead of an upgrade.
async fn status_answer(c: &mut TcpStream, head: &str) -> Value {
    assert!(head.starts_with("HTTP/1.1 500 "), "{head}");
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .expect("a content-length");
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).await.unwrap();
    let status: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["code"], 500);
    // Upstream's responder gets a plain error: the reason stays unknown.
    assert_eq!(status["reason"].as_str().unwrap_or_default(), "");
    status
}

#[tokio::test]
async fn unreachable_kubelet_is_a_status_not_an_upgrade() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let kport = closed.local_addr().unwrap().port();
    drop(closed);
    let addr = proxy(kport).await;
    let (mut c, head) = client_upgrade(addr).await;
    let status = status_answer(&mut c, &head).await;
    assert_eq!(
        status["message"],
        format!("error dialing backend: dial tcp 127.0.0.1:{kport}: connect: connection refused")
    );
    drop(c);
    // Only the accept loop is left once the client is gone.
    assert!(tasks_settle_to(1).await, "tasks left behind");
}

#[tokio::test]
async fn kubelet_dying_before_it_answers_is_a_plain_500() {
    let (kport, mut seen) = fake_kubelet(Kubelet::DieBeforeAnswer).await;
    let addr = proxy(kport).await;
    let (mut c, head) = client_upgrade(addr).await;
    let status = status_answer(&mut c, &head).await;
    let msg = status["message"].as_str().unwrap();
    assert!(msg.starts_with("error talking to the kubelet: "), "{msg}");
    request_seen(&mut seen).await;
    drop(c);
    assert!(tasks_settle_to(1).await, "tasks left behind");
}

#[tokio::test]
async fn kubelet_closing_right_after_101_closes_the_client() {
    let (kport, mut seen) = fake_kubelet(Kubelet::CloseAtOnce).await;
    let addr = proxy(kport).await;
    let (mut c, head) = client_upgrade(addr).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head
        .to_ascii_lowercase()
        .contains("sec-websocket-protocol: v5.channel.k8s.io"));
    let req = request_seen(&mut seen).await;
    assert!(
        req.starts_with("GET /exec/default/p/c?command=sh&stdin=true HTTP/1.1\r\n"),
        "{req}"
    );
    assert!(
        req.to_ascii_lowercase().contains("upgrade: websocket"),
        "{req}"
    );
    assert!(
        ends_promptly(&mut c).await,
        "the client's connection stayed open"
    );
    assert!(end_seen(&mut seen).await.is_some());
    assert!(tasks_settle_to(1).await, "tasks left behind");
}

#[tokio::test]
async fn kubelet_dying_mid_stream_closes_the_client() {
    let (kport, mut seen) = fake_kubelet(Kubelet::EchoThenDie(8)).await;
    let addr = proxy(kport).await;
    let (mut c, head) = client_upgrade(addr).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    request_seen(&mut seen).await;
    echo(&mut c, b"ping").await;
    echo(&mut c, b"pong").await;
    assert!(
        ends_promptly(&mut c).await,
        "the client's connection stayed open"
    );
    assert!(tasks_settle_to(1).await, "tasks left behind");
}

#[tokio::test]
async fn client_leaving_mid_stream_closes_the_kubelet_connection() {
    let (kport, mut seen) = fake_kubelet(Kubelet::EchoUntilEnd).await;
    let addr = proxy(kport).await;
    let (mut c, head) = client_upgrade(addr).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    request_seen(&mut seen).await;
    echo(&mut c, b"hello").await;
    echo(&mut c, b"again").await;
    let left = Instant::now();
    drop(c);
    let ended = end_seen(&mut seen)
        .await
        .expect("the kubelet's connection stayed open");
    assert!(ended.duration_since(left) < PROMPTLY);
    assert!(tasks_settle_to(1).await, "tasks left behind");
}

/// A kubelet that ends its stream but keeps reading must not keep the
/// pipe open: the client's connection ends and the kubelet's is closed
/// too, although the client, still connected, has not closed its own.
#[tokio::test]
async fn kubelet_ending_its_stream_closes_both_connections() {
    let (kport, mut seen) = fake_kubelet(Kubelet::HalfClose).await;
    let addr = proxy(kport).await;
    let (mut c, head) = client_upgrade(addr).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    request_seen(&mut seen).await;
    assert!(
        ends_promptly(&mut c).await,
        "the client's connection stayed open"
    );
    assert!(
        end_seen(&mut seen).await.is_some(),
        "the kubelet's connection stayed open while the client kept its own"
    );
    assert!(tasks_settle_to(1).await, "tasks left behind");
    drop(c);
}
