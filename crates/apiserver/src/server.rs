//! The HTTPS listener: TLS (rustls, HTTP/2 and HTTP/1.1), authentication, and
//! hand-off to the handler.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::alloc::ServiceAllocator;
use crate::authn::{Authenticator, UserInfo};
use crate::cache::WatchCache;
use crate::registry::Registry;

/// What the API server needs to start.
#[derive(Clone, Debug)]
pub struct Config {
    /// Data directory: certificates, kubeconfig.
    pub data_dir: PathBuf,
    /// Address to listen on.
    pub bind_address: std::net::IpAddr,
    /// HTTPS port; 0 picks a free one.
    pub port: u16,
    /// The address clients and the `kubernetes` service use to reach us.
    pub advertise_address: std::net::IpAddr,
    /// Service ClusterIP range.
    pub service_cidr: String,
    /// Extra names and addresses for the serving certificate.
    pub extra_sans: Vec<String>,
    /// Where to write the admin kubeconfig (default: `<data_dir>/kubeconfig.yaml`).
    pub kubeconfig_path: Option<PathBuf>,
    /// Its file mode.
    pub kubeconfig_mode: u32,
    /// How long Events live after their last write.
    pub event_ttl: std::time::Duration,
}

/// Shared by every request.
pub(crate) struct Ctx {
    pub registry: Registry,
    pub authn: Authenticator,
    pub ready: AtomicBool,
    pub advertise: SocketAddr,
    pub kubelet: crate::podproxy::KubeletClient,
    /// The CA bundle served unauthenticated at `/cacerts` (PEM).
    pub ca_pem: String,
}

/// A running API server.
pub struct ApiServer {
    /// The bound address.
    pub local_addr: SocketAddr,
    /// Where the admin kubeconfig was written.
    pub kubeconfig: PathBuf,
    /// The CA certificate clients should trust (PEM).
    pub ca_pem: String,
    ctx: Arc<Ctx>,
    pki: crate::pki::Pki,
    shutdown: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ApiServer {
    /// Bind, prepare certificates, load the watch cache, bootstrap the default
    /// objects and start serving.
    pub async fn start(config: Config, store: Arc<dyn store::Store>) -> anyhow::Result<ApiServer> {
        let listener = TcpListener::bind((config.bind_address, config.port)).await?;
        let local_addr = listener.local_addr()?;
        let mut sans = vec![config.advertise_address.to_string()];
        sans.extend(config.extra_sans.iter().cloned());
        if let Ok(h) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
            sans.push(h.trim().to_string());
        }
        let services = ServiceAllocator::new(store.clone(), &config.service_cidr)
            .map_err(anyhow::Error::msg)?;
        let first_ip = services.first_ip();
        sans.push(first_ip.to_string());
        let pki = crate::pki::ensure(&config.data_dir, &sans)?;
        let tls = pki.server_config()?;
        crate::satoken::install(&pki.tls_dir)?;
        let mut authn = Authenticator::new(&pki.ca_cert_pem, None)?;
        let token_file = config.data_dir.join("tokens.csv");
        if token_file.exists() {
            authn = Authenticator::new(&pki.ca_cert_pem, Some(&token_file))?;
        }
        let kubeconfig = config
            .kubeconfig_path
            .clone()
            .unwrap_or_else(|| config.data_dir.join("kubeconfig.yaml"));
        let (cert, key) = pki.issue_client_cert("system:admin", &["system:masters"], 365)?;
        let host = match config.advertise_address {
            std::net::IpAddr::V6(a) => format!("[{a}]"),
            a => a.to_string(),
        };
        let url = format!("https://{host}:{}", local_addr.port());
        crate::pki::write_kubeconfig(
            &kubeconfig,
            &url,
            &pki.ca_cert_pem,
            &cert,
            &key,
            config.kubeconfig_mode,
        )?;

        let cache = WatchCache::start(store.clone()).await?;
        let mut registry = Registry::new(store, cache, services);
        registry.event_ttl = config.event_ttl;
        let advertise = SocketAddr::new(config.advertise_address, local_addr.port());
        let ctx = Arc::new(Ctx {
            registry,
            authn,
            ready: AtomicBool::new(false),
            advertise,
            kubelet: crate::podproxy::KubeletClient::new(&pki)?,
            ca_pem: pki.ca_cert_pem.clone(),
        });
        crate::bootstrap::run(&ctx.registry, advertise, first_ip).await?;
        crate::crd::controller::spawn(&ctx);
        ctx.ready.store(true, Ordering::SeqCst);

        let (shutdown, rx) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(serve(listener, TlsAcceptor::from(tls), ctx.clone(), rx));
        tracing::info!(address = %local_addr, kubeconfig = %kubeconfig.display(), "API server listening");
        Ok(ApiServer {
            local_addr,
            kubeconfig,
            ca_pem: pki.ca_cert_pem.clone(),
            ctx,
            pki,
            shutdown,
            task,
        })
    }

    /// A kubelet serving certificate for `sans` signed by the cluster CA
    /// (the in-process kubelet's). Returns `(cert_pem, key_pem)`.
    pub fn kubelet_serving_cert(&self, sans: &[String]) -> anyhow::Result<(String, String)> {
        Ok(self.pki.issue_serving_cert("kubelet", sans, 365)?)
    }

    /// Whether bootstrap is done and requests are served.
    pub fn is_ready(&self) -> bool {
        self.ctx.ready.load(Ordering::SeqCst)
    }

    /// Stop accepting connections and wait for the accept loop to end.
    pub async fn shutdown(self) {
        let _ = self.shutdown.send(true);
        let _ = self.task.await;
    }
}

async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    ctx: Arc<Ctx>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => return,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let ctx = ctx.clone();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let certs: Option<Vec<rustls::pki_types::CertificateDer<'static>>> = tls
                .get_ref()
                .1
                .peer_certificates()
                .map(|c| c.iter().map(|c| c.clone().into_owned()).collect());
            let conn_ctx = ctx.clone();
            let conn_auth = Arc::new(ConnAuth {
                certs,
                cached: std::sync::Mutex::new(None),
            });
            let svc = service_fn(move |req: Request<Incoming>| {
                let ctx = conn_ctx.clone();
                let user = authenticate(&ctx, &conn_auth, &req);
                async move {
                    Ok::<_, std::convert::Infallible>(crate::handler::handle(ctx, user, req).await)
                }
            });
            let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice());
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http2()
                .max_concurrent_streams(H2_MAX_STREAMS_PER_CONNECTION);
            // HTTP/2 multiplexes many watches on one connection: their frames
            // for one event leave in one write (see `combine`).
            let result = if h2 {
                crate::combine::combined(TokioIo::new(tls), |io| {
                    builder.serve_connection_with_upgrades(io, svc)
                })
                .await
            } else {
                builder
                    .serve_connection_with_upgrades(TokioIo::new(tls), svc)
                    .await
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
}

/// Streams a client may have open on one HTTP/2 connection: Go's default,
/// which kube-apiserver keeps (`--http2-max-streams-per-connection` 0). A
/// client-go process multiplexes all its watches on one connection.
const H2_MAX_STREAMS_PER_CONNECTION: u32 = 250;

/// How long a connection's verified client certificate is trusted before it
/// is checked again (which also catches expiry on long-lived connections).
const CERT_RECHECK: Duration = Duration::from_secs(60);

/// A connection's client certificate and the identity it proved. Verifying the
/// chain costs a signature check, so it is done once per connection (and again
/// after [`CERT_RECHECK`]), not on every request.
struct ConnAuth {
    certs: Option<Vec<rustls::pki_types::CertificateDer<'static>>>,
    cached: std::sync::Mutex<Option<(UserInfo, std::time::Instant)>>,
}

fn authenticate(ctx: &Ctx, conn: &ConnAuth, req: &Request<Incoming>) -> Option<UserInfo> {
    let auth = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth.is_some() {
        return ctx
            .authn
            .authenticate(conn.certs.as_deref(), auth)
            .ok()
            .filter(|u| crate::satoken::still_valid(&ctx.registry, u))
            .or_else(|| crate::bootstrap_token::authenticate(&ctx.registry, auth));
    }
    let certs = conn.certs.as_deref()?;
    let mut cached = conn.cached.lock().expect("auth cache lock");
    if let Some((user, at)) = cached.as_ref() {
        if at.elapsed() < CERT_RECHECK {
            return Some(user.clone());
        }
    }
    let user = ctx.authn.authenticate(Some(certs), None).ok()?;
    *cached = Some((user.clone(), std::time::Instant::now()));
    Some(user)
}
