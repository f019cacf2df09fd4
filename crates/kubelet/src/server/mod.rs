//! The kubelet API on `--kubelet-port` (10250): HTTPS with a serving
//! certificate, client certificates from the cluster CA required (requests
//! without one, or with one from another CA, get 401, as upstream's kubelet
//! with anonymous auth off). The API
//! server proxies the pod subresources here:
//!
//! - `GET /containerLogs/{ns}/{pod}/{container}`: [`crate::logs`].
//! - `/exec/{ns}/{pod}/{container}` and `/attach/...`: a WebSocket
//!   (`v5.channel.k8s.io` or `v4.channel.k8s.io`) bridged to containerd's
//!   streaming server over SPDY ([`stream`]).
//! - `/portForward/{ns}/{pod}`: SPDY port forwarding, tunnelled in a
//!   WebSocket (`SPDY/3.1+portforward.k8s.io`) or over a plain SPDY upgrade
//!   ([`portforward`]).

pub mod channel;
mod exec;
mod portforward;
pub mod spdy;
mod stream;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::TokioIo;
use k8s_openapi::api::core::v1::Pod;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use tokio::net::TcpListener;

use crate::cri::Runtime;

/// The kubelet's serving certificate and the CA its clients' certificates
/// must chain to.
#[derive(Clone)]
pub struct ServingTls {
    /// Serving certificate (PEM).
    pub cert_pem: String,
    /// Its key (PEM).
    pub key_pem: String,
    /// The cluster CA certificates (DER) client certificates must chain to.
    pub client_ca_der: Vec<Vec<u8>>,
}

impl std::fmt::Debug for ServingTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServingTls").finish_non_exhaustive()
    }
}

impl ServingTls {
    /// A self-signed serving certificate for `names` (IPs or DNS names), as
    /// upstream's kubelet makes when it is given none; clients are still
    /// verified against `client_ca_pem`.
    pub fn self_signed(names: &[String], client_ca_der: Vec<Vec<u8>>) -> crate::Result<Self> {
        let ck = rcgen::generate_simple_self_signed(names.to_vec())
            .map_err(|e| crate::Error::Runtime(format!("self-signed certificate: {e}")))?;
        Ok(ServingTls {
            cert_pem: ck.cert.pem(),
            key_pem: ck.signing_key.serialize_pem(),
            client_ca_der,
        })
    }

    /// The DER certificates of a PEM bundle.
    pub fn pem_to_der(pem: &str) -> crate::Result<Vec<Vec<u8>>> {
        CertificateDer::pem_slice_iter(pem.as_bytes())
            .map(|c| c.map(|c| c.to_vec()))
            .collect::<Result<_, _>>()
            .map_err(|e| crate::Error::Runtime(format!("reading PEM certificates: {e}")))
    }
}

pub(crate) type Body = BoxBody<Bytes, Infallible>;

pub(crate) fn text(code: StatusCode, msg: impl Into<String>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(msg.into())).boxed());
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// What the handlers share.
pub(crate) struct Ctx {
    pub client: kube::Client,
    pub runtime: Arc<dyn Runtime>,
}

/// The listener's TLS configuration, and the verifier of client
/// certificates that [`start`] applies to each connection.
fn tls_config(
    tls: &ServingTls,
) -> crate::Result<(Arc<rustls::ServerConfig>, Arc<dyn ClientCertVerifier>)> {
    let bad = |what: &str, e: &dyn std::fmt::Display| {
        crate::Error::Runtime(format!("kubelet serving TLS: {what}: {e}"))
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in &tls.client_ca_der {
        roots
            .add(CertificateDer::from(c.clone()))
            .map_err(|e| bad("client CA", &e))?;
    }
    // Clients without a certificate, or with one from another CA, pass the
    // handshake (upstream's `tls.RequestClientCert`) so that they get a
    // 401, as from upstream's kubelet, rather than a TLS alert.
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| bad("verifier", &e))?;
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(tls.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|e| bad("certificate", &e))?;
    let key = PrivateKeyDer::from_pem_slice(tls.key_pem.as_bytes()).map_err(|e| bad("key", &e))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| bad("versions", &e))?
        .with_client_cert_verifier(Arc::new(RequestClientCert(verifier.clone())))
        .with_single_cert(chain, key)
        .map_err(|e| bad("certificate", &e))?;
    // HTTP/1.1 only: exec, attach and port-forward are connection upgrades.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((Arc::new(cfg), verifier))
}

/// Upstream's `tls.RequestClientCert` for rustls: a client certificate is
/// asked for and the handshake signature checked against it (the client
/// holds its key), but its chain is verified per connection by [`start`].
#[derive(Debug)]
struct RequestClientCert(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for RequestClientCert {
    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _leaf: &CertificateDer<'_>,
        _chain: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        msg: &[u8],
        leaf: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(msg, leaf, dss)
    }

    fn verify_tls13_signature(
        &self,
        msg: &[u8],
        leaf: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(msg, leaf, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// Whether a connection's client certificates chain to the cluster CA.
fn authenticated(verifier: &dyn ClientCertVerifier, certs: Option<&[CertificateDer<'_>]>) -> bool {
    match certs {
        Some([leaf, chain @ ..]) => verifier
            .verify_client_cert(leaf, chain, UnixTime::now())
            .is_ok(),
        _ => false,
    }
}

/// Bind the kubelet API on `port` (all addresses) and serve it in the
/// background. Returns the bound address and the accept task.
pub(crate) async fn start(
    port: u16,
    tls: &ServingTls,
    ctx: Arc<Ctx>,
) -> crate::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let (cfg, verifier) = tls_config(tls)?;
    let listener = TcpListener::bind(("0.0.0.0", port))
        .await
        .map_err(|source| crate::Error::Io {
            what: format!("binding the kubelet API on port {port}"),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| crate::Error::Io {
        what: "kubelet API address".into(),
        source,
    })?;
    let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
    let task = tokio::spawn(async move {
        loop {
            let (tcp, peer) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "kubelet API accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            let ctx = ctx.clone();
            let verifier = verifier.clone();
            tokio::spawn(async move {
                let Ok(Ok(tls)) =
                    tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                else {
                    return;
                };
                let authenticated =
                    authenticated(verifier.as_ref(), tls.get_ref().1.peer_certificates());
                let svc = service_fn(move |req: Request<Incoming>| {
                    let ctx = ctx.clone();
                    async move { Ok::<_, Infallible>(handle(ctx, authenticated, req).await) }
                });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tls), svc)
                    .with_upgrades();
                if let Err(e) = conn.await {
                    tracing::debug!(%peer, error = %e, "kubelet API connection ended");
                }
            });
        }
    });
    tracing::info!(%addr, "kubelet API listening");
    Ok((addr, task))
}

/// The query string as name → values.
pub(crate) struct Query(Vec<(String, String)>);

impl Query {
    pub(crate) fn parse(q: Option<&str>) -> Query {
        let pairs = form_urlencoded::parse(q.unwrap_or("").as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Query(pairs)
    }

    pub(crate) fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }

    pub(crate) fn all(&self, k: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean parameter: `1` or `true` (as Go's strconv.ParseBool accepts).
    pub(crate) fn flag(&self, k: &str) -> bool {
        matches!(
            self.get(k),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True")
        )
    }
}

async fn handle(ctx: Arc<Ctx>, authenticated: bool, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    if path == "/healthz" {
        return text(StatusCode::OK, "ok");
    }
    if !authenticated {
        return text(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    let parts: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|seg| {
            percent_encoding::percent_decode_str(seg)
                .decode_utf8_lossy()
                .into_owned()
        })
        .collect();
    let q = Query::parse(req.uri().query());
    let p: Vec<&str> = parts.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["containerLogs", ns, pod, container] => container_logs(&ctx, ns, pod, container, &q).await,
        ["exec" | "attach", ns, pod, container] | ["exec" | "attach", ns, pod, _, container] => {
            let attach = p[0] == "attach";
            exec::serve(ctx.clone(), ns, pod, container, &q, attach, req).await
        }
        ["portForward", ns, pod] | ["portForward", ns, pod, _] => {
            portforward::serve(ctx.clone(), ns, pod, req).await
        }
        _ => text(StatusCode::NOT_FOUND, "404 page not found"),
    }
}

/// The pod from the API server, or the kubelet's 404.
pub(crate) async fn get_pod(ctx: &Ctx, ns: &str, name: &str) -> Result<Pod, Response<Body>> {
    let api: kube::Api<Pod> = kube::Api::namespaced(ctx.client.clone(), ns);
    match api.get_opt(name).await {
        Ok(Some(p)) => Ok(p),
        Ok(None) => Err(text(
            StatusCode::NOT_FOUND,
            format!("pod \"{name}\" not found"),
        )),
        Err(e) => Err(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reading pod {ns}/{name}: {e}"),
        )),
    }
}

/// Which container instance's log a request reads, from the pod's status,
/// with upstream kubelet's rules and messages.
pub fn log_container_id(pod: &Pod, container: &str, previous: bool) -> Result<String, String> {
    let name = pod.metadata.name.as_deref().unwrap_or_default();
    let status = pod.status.as_ref().and_then(|s| {
        s.container_statuses
            .iter()
            .flatten()
            .chain(s.init_container_statuses.iter().flatten())
            .chain(s.ephemeral_container_statuses.iter().flatten())
            .find(|c| c.name == container)
    });
    let Some(cs) = status else {
        return Err(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: ContainerCreating"
        ));
    };
    let last_term = cs
        .last_state
        .as_ref()
        .and_then(|s| s.terminated.as_ref())
        .and_then(|t| t.container_id.clone())
        .filter(|id| !id.is_empty());
    let state = cs.state.as_ref();
    if previous {
        return last_term.ok_or_else(|| {
            format!("previous terminated container \"{container}\" in pod \"{name}\" not found")
        });
    }
    if state.and_then(|s| s.running.as_ref()).is_some() {
        return cs.container_id.clone().ok_or_else(|| {
            format!("container \"{container}\" in pod \"{name}\" is not available")
        });
    }
    if let Some(t) = state.and_then(|s| s.terminated.as_ref()) {
        return t
            .container_id
            .clone()
            .filter(|id| !id.is_empty())
            .or(last_term)
            .ok_or_else(|| format!("container \"{container}\" in pod \"{name}\" is terminated"));
    }
    if let Some(id) = last_term {
        return Ok(id);
    }
    if let Some(w) = state.and_then(|s| s.waiting.as_ref()) {
        let why = match w.reason.as_deref().unwrap_or_default() {
            "ErrImagePull" => "image can't be pulled".to_string(),
            "ImagePullBackOff" => "trying and failing to pull image".to_string(),
            r => r.to_string(),
        };
        return Err(format!(
            "container \"{container}\" in pod \"{name}\" is waiting to start: {why}"
        ));
    }
    Err(format!(
        "container \"{container}\" in pod \"{name}\" is waiting to start - no logs yet"
    ))
}

/// `containerd://<id>` → `<id>`.
pub(crate) fn cri_id(id: &str) -> &str {
    id.split_once("://").map(|(_, i)| i).unwrap_or(id)
}

fn log_options(q: &Query) -> Result<crate::logs::Options, String> {
    use time::format_description::well_known::Rfc3339;
    let num = |k: &str| -> Result<Option<i64>, String> {
        q.get(k)
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| format!("invalid value for {k}: {v:?}"))
            })
            .transpose()
    };
    let mut since = None;
    if let Some(s) = num("sinceSeconds")? {
        since = Some(time::OffsetDateTime::now_utc() - time::Duration::seconds(s));
    }
    if let Some(t) = q.get("sinceTime") {
        since = Some(
            time::OffsetDateTime::parse(t, &Rfc3339)
                .map_err(|_| format!("invalid value for sinceTime: {t:?}"))?,
        );
    }
    Ok(crate::logs::Options {
        follow: q.flag("follow"),
        tail_lines: num("tailLines")?.filter(|n| *n >= 0).map(|n| n as u64),
        since,
        timestamps: q.flag("timestamps"),
        limit_bytes: num("limitBytes")?.filter(|n| *n > 0).map(|n| n as u64),
    })
}

async fn container_logs(
    ctx: &Arc<Ctx>,
    ns: &str,
    name: &str,
    container: &str,
    q: &Query,
) -> Response<Body> {
    let opts = match log_options(q) {
        Ok(o) => o,
        Err(m) => return text(StatusCode::BAD_REQUEST, m),
    };
    let pod = match get_pod(ctx, ns, name).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let id = match log_container_id(&pod, container, q.flag("previous")) {
        Ok(id) => cri_id(&id).to_string(),
        Err(m) => return text(StatusCode::BAD_REQUEST, m),
    };
    let status = match ctx.runtime.container_status(&id).await {
        Ok(s) => s,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                format!("failed to get container status {id:?}: {e}"),
            )
        }
    };
    let path = std::path::PathBuf::from(status.log_path);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let runtime = ctx.runtime.clone();
    tokio::spawn(async move {
        crate::logs::stream(&path, opts, tx, || {
            let runtime = runtime.clone();
            let id = id.clone();
            async move {
                matches!(runtime.container_status(&id).await,
                    Ok(s) if s.state == crate::cri::api::ContainerState::ContainerRunning as i32)
            }
        })
        .await
    });
    let body = StreamBody::new(tokio_stream_from(rx).map(|b| Ok::<_, Infallible>(Frame::data(b))));
    let mut r = Response::new(BodyExt::boxed(body));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain"),
    );
    r
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Bytes>,
) -> impl futures::Stream<Item = Bytes> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

use futures::StreamExt;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(statuses: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"containers": [{"name": "c", "image": "x"}]},
            "status": {"containerStatuses": statuses},
        }))
        .unwrap()
    }

    #[test]
    fn picks_the_log_instance() {
        let running = pod(
            json!([{"name": "c", "ready": true, "restartCount": 1, "image": "x", "imageID": "",
            "containerID": "containerd://new",
            "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}},
            "lastState": {"terminated": {"exitCode": 1, "containerID": "containerd://old"}}}]),
        );
        assert_eq!(
            log_container_id(&running, "c", false).unwrap(),
            "containerd://new"
        );
        assert_eq!(
            log_container_id(&running, "c", true).unwrap(),
            "containerd://old"
        );
        assert_eq!(cri_id("containerd://old"), "old");

        let waiting = pod(
            json!([{"name": "c", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
            "state": {"waiting": {"reason": "ContainerCreating"}}}]),
        );
        assert_eq!(
            log_container_id(&waiting, "c", false).unwrap_err(),
            "container \"c\" in pod \"web\" is waiting to start: ContainerCreating"
        );
        assert_eq!(
            log_container_id(&waiting, "c", true).unwrap_err(),
            "previous terminated container \"c\" in pod \"web\" not found"
        );
        let pulling = pod(
            json!([{"name": "c", "ready": false, "restartCount": 0, "image": "x", "imageID": "",
            "state": {"waiting": {"reason": "ImagePullBackOff"}}}]),
        );
        assert_eq!(
            log_container_id(&pulling, "c", false).unwrap_err(),
            "container \"c\" in pod \"web\" is waiting to start: trying and failing to pull image"
        );
        let none = pod(json!([]));
        assert!(log_container_id(&none, "c", false)
            .unwrap_err()
            .ends_with("is waiting to start: ContainerCreating"));
    }

    #[test]
    fn query_parsing() {
        let q = Query::parse(Some(
            "command=sh&command=-c&command=echo%20hi%3Bexit+3&tty=1&stdin=true",
        ));
        assert_eq!(q.all("command"), vec!["sh", "-c", "echo hi;exit 3"]);
        assert!(q.flag("tty") && q.flag("stdin") && !q.flag("stderr"));
        let o = log_options(&Query::parse(Some(
            "tailLines=2&limitBytes=10&timestamps=true",
        )))
        .unwrap();
        assert_eq!(o.tail_lines, Some(2));
        assert_eq!(o.limit_bytes, Some(10));
        assert!(o.timestamps && !o.follow);
        assert!(log_options(&Query::parse(Some("tailLines=x"))).is_err());
    }
}
