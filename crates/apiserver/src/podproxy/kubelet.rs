//! The API server as a client of kubelets: where a node's kubelet listens,
//! and an HTTPS connection to it with the kubelet-client certificate.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::error::{ApiError, ApiResult};
use crate::pki::{Pki, PkiError};
use crate::registry::Registry;
use crate::route::ResourcePath;

/// The user the API server is to kubelets (upstream's
/// `kube-apiserver-kubelet-client`), with full rights.
const CLIENT_CN: &str = "kube-apiserver-kubelet-client";

/// HTTPS connections to kubelets.
pub struct KubeletClient {
    connector: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for KubeletClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeletClient").finish_non_exhaustive()
    }
}

/// A server-certificate verifier that accepts any certificate but still
/// checks the handshake signatures, so the peer holds the key of the
/// certificate it showed. Kubelets serve certificates of their own making
/// (a standalone `wharf kubelet` signs its own, as upstream's does without
/// TLS bootstrap), so like kube-apiserver without
/// `--kubelet-certificate-authority` the API server does not check them
/// against a CA; `wharf agent` uses it only to download `/cacerts`, whose
/// bytes it then checks against its join token's hash.
#[derive(Debug)]
pub struct AnyServerCert(pub Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyServerCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

impl KubeletClient {
    /// A client with a fresh kubelet-client certificate from the cluster CA.
    pub fn new(pki: &Pki) -> Result<Self, PkiError> {
        let (cert, key) = pki.issue_client_cert(CLIENT_CN, &["system:masters"], 365)?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = vec![CertificateDer::from_pem_slice(cert.as_bytes())
            .map_err(|e| PkiError::InvalidRequest(format!("kubelet client certificate: {e}")))?];
        let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
            .map_err(|e| PkiError::InvalidRequest(format!("kubelet client key: {e}")))?;
        let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(PkiError::Tls)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCert(provider)))
            .with_client_auth_cert(chain, key)
            .map_err(PkiError::Tls)?;
        cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(KubeletClient {
            connector: tokio_rustls::TlsConnector::from(Arc::new(cfg)),
        })
    }

    /// An HTTP/1.1 connection (with upgrades) to the kubelet at `host:port`.
    pub(crate) async fn connect(
        &self,
        host: &str,
        port: u16,
    ) -> ApiResult<SendRequest<Empty<Bytes>>> {
        let fail = |e: &dyn std::fmt::Display| dial_error(host, port, e);
        let tcp = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            tokio::net::TcpStream::connect((host, port)),
        )
        .await
        .map_err(|_| fail(&"i/o timeout"))?
        .map_err(|e| fail(&connect_error(&e)))?;
        let _ = tcp.set_nodelay(true);
        let name = ServerName::try_from(host.to_string()).map_err(|e| fail(&e))?;
        let tls = self
            .connector
            .connect(name, tcp)
            .await
            .map_err(|e| fail(&e))?;
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| fail(&e))?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "kubelet connection ended");
            }
        });
        Ok(sender)
    }
}

/// A failed dial as upstream's API server answers it (upgradeaware.go's
/// `error dialing backend: %v` handed to the responder).
fn dial_error(host: &str, port: u16, e: &dyn std::fmt::Display) -> ApiError {
    backend_error(format!(
        "error dialing backend: dial tcp {host}:{port}: {e}"
    ))
}

/// An error talking to the kubelet as upstream's responder answers it: the
/// error is not an API status, so `ErrorToAPIStatus` makes it a 500 whose
/// reason is left unknown (empty) and whose message is the error alone.
pub(crate) fn backend_error(message: String) -> ApiError {
    ApiError {
        code: 500,
        reason: "",
        message,
        details: None,
        retry_after: None,
    }
}

/// A socket error as Go's net package words it: `connect: connection
/// refused` rather than Rust's `Connection refused (os error 111)`.
fn connect_error(e: &std::io::Error) -> String {
    let text = e.to_string();
    if e.raw_os_error().is_none() {
        return text;
    }
    let text = text.split(" (os error").next().unwrap_or_default();
    let mut chars = text.chars();
    let first = chars.next().map(|c| c.to_ascii_lowercase());
    format!(
        "connect: {}{}",
        first.into_iter().collect::<String>(),
        chars.as_str()
    )
}

/// The node's kubelet address: its InternalIP (else the first address)
/// and `daemonEndpoints.kubeletEndpoint.Port`.
pub(crate) async fn node_address(reg: &Registry, node: &str) -> ApiResult<(String, u16)> {
    let info = crate::resources::lookup_builtin("", "v1", "nodes")
        .ok_or_else(|| ApiError::internal("nodes are not served"))?;
    let rp = ResourcePath {
        info,
        namespace: None,
        name: Some(node.to_string()),
        subresource: None,
    };
    let n = reg.get(&rp, None).await?;
    let addrs = n["status"]["addresses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let ip = addrs
        .iter()
        .find(|a| a["type"] == "InternalIP")
        .or_else(|| addrs.first())
        .and_then(|a| a["address"].as_str())
        .map(str::to_string)
        .ok_or_else(|| ApiError::internal(format!("node {node} has no address")))?;
    let port = n["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .filter(|p| *p > 0 && *p <= u64::from(u16::MAX))
        .unwrap_or(10250) as u16;
    Ok((ip, port))
}
