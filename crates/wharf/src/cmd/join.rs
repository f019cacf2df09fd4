//! How `wharf agent` joins: the CA pinned by the token, then a client
//! certificate for `system:node:<name>` through a CertificateSigningRequest.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context};
use apiserver::bootstrap_token::JoinToken;
use base64::Engine as _;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use k8s_openapi::ByteString;
use kube::api::{Api, ObjectMeta, PostParams};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";

/// `https://host:port` split into what a TCP connect and SNI need.
fn host_port(server: &str) -> anyhow::Result<(String, u16)> {
    let uri: http::Uri = server
        .parse()
        .with_context(|| format!("--server {server:?}"))?;
    if uri.scheme_str() != Some("https") {
        bail!("--server {server:?} must be an https:// URL");
    }
    let host = uri
        .host()
        .with_context(|| format!("--server {server:?} names no host"))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    Ok((host, uri.port_u16().unwrap_or(6443)))
}

/// Downloads the server's CA bundle (`GET /cacerts`) without trusting the
/// server, and returns it only if its SHA-256 is the token's. A server not
/// answering yet (an agent started with its server) is retried for
/// `retry_for`; a wrong CA is refused at once.
pub async fn fetch_ca(
    server: &str,
    token: &JoinToken,
    retry_for: Duration,
) -> anyhow::Result<String> {
    host_port(server)?;
    let deadline = tokio::time::Instant::now() + retry_for;
    let mut backoff = Duration::from_millis(500);
    let body = loop {
        match download_ca(server).await {
            Ok(b) => break b,
            Err(e) if tokio::time::Instant::now() + backoff < deadline => {
                tracing::warn!(
                    error = format!("{e:#}"),
                    "the server is not reachable yet; retrying"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
            Err(e) => return Err(e),
        }
    };
    if !token.matches_ca(&body) {
        bail!(
            "the server's CA does not match the token's hash (token pins {}, {server} serves {}): refusing to join",
            token.ca_hash,
            apiserver::bootstrap_token::ca_hash(&body)
        );
    }
    String::from_utf8(body).context("the CA bundle is not text")
}

/// One `GET /cacerts`, trusting nothing.
async fn download_ca(server: &str) -> anyhow::Result<Vec<u8>> {
    let (host, port) = host_port(server)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(
            // Nothing but the `/cacerts` download goes over this
            // connection, and its bytes are checked against the token.
            apiserver::podproxy::AnyServerCert(provider),
        ))
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let fetch = async {
        let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .with_context(|| format!("connecting to {host}:{port}"))?;
        let name = ServerName::try_from(host.clone()).context("server name")?;
        let mut tls = connector
            .connect(name, tcp)
            .await
            .context("TLS handshake")?;
        let req = format!("GET /cacerts HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\nUser-Agent: wharf-agent\r\n\r\n");
        tls.write_all(req.as_bytes()).await?;
        let mut resp = Vec::new();
        // A server closing without close_notify still gave us the body.
        if let Err(e) = tls.read_to_end(&mut resp).await {
            if resp.is_empty() {
                return Err(anyhow::Error::from(e).context("reading the response"));
            }
        }
        anyhow::Ok(resp)
    };
    let resp = tokio::time::timeout(Duration::from_secs(30), fetch)
        .await
        .with_context(|| format!("no answer from {server} within 30 s"))??;
    let body = http_body(&resp).with_context(|| format!("GET {server}/cacerts"))?;
    Ok(body.to_vec())
}

/// The body of a `200` HTTP/1.1 response with a Content-Length (or read to close).
fn http_body(resp: &[u8]) -> anyhow::Result<&[u8]> {
    let split = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("malformed HTTP response")?;
    let head = std::str::from_utf8(&resp[..split]).context("malformed HTTP header")?;
    let body = &resp[split + 4..];
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        bail!("the server answered {status} (is it a wharf server?)");
    }
    let len = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("content-length")
            .then(|| v.trim().parse::<usize>().ok())
            .flatten()
    });
    match len {
        Some(n) if n <= body.len() => Ok(&body[..n]),
        Some(_) => bail!("the response was cut short"),
        None => Ok(body),
    }
}

/// A client authenticating with the bootstrap token, trusting only `ca_pem`.
pub async fn bootstrap_client(
    server: &str,
    ca_pem: &str,
    token: &JoinToken,
) -> anyhow::Result<kube::Client> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let kc: kube::config::Kubeconfig = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "wharf", "cluster": {"server": server, "certificate-authority-data": b64}}],
        "users": [{"name": "bootstrap", "user": {"token": token.bearer()}}],
        "contexts": [{"name": "bootstrap", "context": {"cluster": "wharf", "user": "bootstrap"}}],
        "current-context": "bootstrap",
    }))?;
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .context("the bootstrap credentials")?;
    kube::Client::try_from(config).context("building the bootstrap client")
}

/// What a client certificate says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// The subject's common name.
    pub common_name: String,
    /// The serial number in hex.
    pub serial: String,
    /// Validity start and end.
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

/// Reads the first certificate of a PEM bundle.
pub fn cert_info(pem: &str) -> anyhow::Result<CertInfo> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).context("not PEM")?;
    let cert = block.parse_x509().context("not a certificate")?;
    let at = |ts: i64| SystemTime::UNIX_EPOCH + Duration::from_secs(ts.max(0) as u64);
    let common_name: String = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|c| c.as_str().ok())
        .unwrap_or("")
        .to_string();
    let info = CertInfo {
        common_name,
        serial: cert.raw_serial_as_string(),
        not_before: at(cert.validity().not_before.timestamp()),
        not_after: at(cert.validity().not_after.timestamp()),
    };
    Ok(info)
}

/// The client certificate, key and CA of a kubeconfig wharf wrote.
pub fn read_identity(path: &Path) -> anyhow::Result<(String, String, String)> {
    let kc = kube::config::Kubeconfig::read_from(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let dec = |s: Option<&String>, what: &str| -> anyhow::Result<String> {
        let s = s.with_context(|| format!("{} has no {what}", path.display()))?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(s.trim())?;
        Ok(String::from_utf8(bytes)?)
    };
    let user = kc
        .auth_infos
        .first()
        .and_then(|a| a.auth_info.as_ref())
        .with_context(|| format!("{} has no user", path.display()))?;
    let cluster = kc
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .with_context(|| format!("{} has no cluster", path.display()))?;
    let key = user
        .client_key_data
        .as_ref()
        .map(|k| secrecy::ExposeSecret::expose_secret(k).to_string());
    Ok((
        dec(user.client_certificate_data.as_ref(), "client certificate")?,
        dec(key.as_ref(), "client key")?,
        dec(cluster.certificate_authority_data.as_ref(), "CA")?,
    ))
}

/// Whether the kubeconfig at `path` is a usable identity for `node`: its
/// certificate names `system:node:<node>`, is valid now, and it trusts `ca_pem`.
pub fn reusable_identity(path: &Path, node: &str, ca_pem: &str) -> Option<CertInfo> {
    let (cert, _, ca) = read_identity(path).ok()?;
    let info = cert_info(&cert).ok()?;
    let now = SystemTime::now();
    let ok = info.common_name == format!("system:node:{node}")
        && ca.trim() == ca_pem.trim()
        && info.not_after > now + Duration::from_secs(10);
    ok.then_some(info)
}

/// Asks for a client certificate for `system:node:<node>` through a
/// CertificateSigningRequest and waits until it is issued. Returns
/// `(cert_pem, key_pem)`. A 401 means the credentials were refused.
pub async fn request_node_cert(
    client: kube::Client,
    node: &str,
    timeout: Duration,
) -> anyhow::Result<(String, String)> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = rcgen::CertificateParams::default();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("system:node:{node}"));
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "system:nodes");
    let request = params.serialize_request(&key)?.pem()?;
    let api: Api<CertificateSigningRequest> = Api::all(client);
    let csr = CertificateSigningRequest {
        metadata: ObjectMeta {
            generate_name: Some("node-csr-".into()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(request.into_bytes()),
            signer_name: KUBELET_CLIENT_SIGNER.into(),
            usages: Some(vec!["digital signature".into(), "client auth".into()]),
            ..Default::default()
        },
        status: None,
    };
    let created = match api.create(&PostParams::default(), &csr).await {
        Ok(c) => c,
        Err(kube::Error::Api(s)) if s.code == 401 => {
            bail!("the server refused our credentials (401 Unauthorized): check --token")
        }
        Err(e) => return Err(e).context("creating the CertificateSigningRequest"),
    };
    let name = created.metadata.name.unwrap_or_default();
    tracing::info!(
        csr = name,
        node,
        "certificate requested; waiting for approval and signing"
    );
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let got = api
            .get(&name)
            .await
            .with_context(|| format!("reading CertificateSigningRequest {name}"))?;
        if let Some(st) = &got.status {
            for c in st.conditions.iter().flatten() {
                if c.type_ == "Denied" || c.type_ == "Failed" {
                    bail!(
                        "CertificateSigningRequest {name} was {}: {}",
                        c.type_.to_lowercase(),
                        c.message.clone().unwrap_or_default()
                    );
                }
            }
            if let Some(cert) = st.certificate.as_ref().filter(|c| !c.0.is_empty()) {
                let pem = String::from_utf8(cert.0.clone())
                    .context("the issued certificate is not PEM")?;
                let info = cert_info(&pem)?;
                if info.common_name != format!("system:node:{node}") {
                    bail!(
                        "CertificateSigningRequest {name} was issued for {:?}",
                        info.common_name
                    );
                }
                tracing::info!(csr = name, serial = info.serial, "certificate issued");
                return Ok((pem, key.serialize_pem()));
            }
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("CertificateSigningRequest {name} was not issued within {timeout:?} (approve it with `kubectl certificate approve {name}`)");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_bodies() {
        let r = b"HTTP/1.1 200 OK\r\ncontent-length: 3\r\n\r\nabcdef";
        assert_eq!(http_body(r).unwrap(), b"abc");
        assert!(http_body(b"HTTP/1.1 404 Not Found\r\n\r\n").is_err());
        assert!(http_body(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc").is_err());
        assert_eq!(http_body(b"HTTP/1.1 200 OK\r\n\r\nxyz").unwrap(), b"xyz");
    }

    #[test]
    fn servers() {
        assert_eq!(
            host_port("https://10.0.0.1:6443").unwrap(),
            ("10.0.0.1".into(), 6443)
        );
        assert_eq!(host_port("https://[::1]").unwrap(), ("::1".into(), 6443));
        assert!(host_port("http://x:1").is_err());
    }

    #[test]
    fn identities_are_reused_only_when_they_fit() {
        let dir = tempfile::tempdir().unwrap();
        let pki = apiserver::pki::ensure(dir.path(), &[]).unwrap();
        let (cert, key) = pki
            .issue_client_cert("system:node:n1", &["system:nodes"], 1)
            .unwrap();
        let path = dir.path().join("kubelet.kubeconfig");
        apiserver::pki::write_kubeconfig(
            &path,
            "https://127.0.0.1:6443",
            &pki.ca_cert_pem,
            &cert,
            &key,
            0o600,
        )
        .unwrap();
        let info = reusable_identity(&path, "n1", &pki.ca_cert_pem).unwrap();
        assert_eq!(info.common_name, "system:node:n1");
        assert!(reusable_identity(&path, "n2", &pki.ca_cert_pem).is_none());
        assert!(reusable_identity(&path, "n1", "another CA").is_none());
        assert!(reusable_identity(&dir.path().join("missing"), "n1", &pki.ca_cert_pem).is_none());
    }
}
