//! The PKI and the authenticator together over real TLS: files and modes on
//! disk, re-use and re-issue across restarts, and who a client is taken to be
//! with a CA-signed certificate, a bearer token, nothing, or a foreign CA.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;

use apiserver::authn::{Authenticator, AuthnError, UserInfo};
use apiserver::pki::{self, Pki};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn ensure_creates_reuses_and_reissues() {
    let data = tempfile::tempdir().unwrap();
    let tls = data.path().join("tls");

    let first = pki::ensure(data.path(), &[]).unwrap();
    assert_eq!(mode(&tls), 0o700);
    for key in ["ca.key", "serving.key", "admin.key"] {
        assert_eq!(mode(&tls.join(key)), 0o600, "{key}");
    }
    for (file, pem) in [
        ("ca.crt", &first.ca_cert_pem),
        ("serving.crt", &first.serving_cert_pem),
        ("admin.crt", &first.admin_cert_pem),
        ("admin.key", &first.admin_key_pem),
    ] {
        assert_eq!(&fs::read_to_string(tls.join(file)).unwrap(), pem, "{file}");
    }

    // A restart with the same names changes nothing.
    let second = pki::ensure(data.path(), &[]).unwrap();
    assert_eq!(second.ca_cert_pem, first.ca_cert_pem);
    assert_eq!(second.serving_cert_pem, first.serving_cert_pem);
    assert_eq!(second.admin_cert_pem, first.admin_cert_pem);

    // Loosened permissions are tightened again.
    fs::set_permissions(tls.join("ca.key"), fs::Permissions::from_mode(0o644)).unwrap();
    fs::set_permissions(&tls, fs::Permissions::from_mode(0o755)).unwrap();

    // A new name re-issues the serving certificate, and only that.
    let sans = ["10.1.2.3".to_string(), "api.example.com".to_string()];
    let third = pki::ensure(data.path(), &sans).unwrap();
    assert_eq!(third.ca_cert_pem, first.ca_cert_pem);
    assert_eq!(third.admin_cert_pem, first.admin_cert_pem);
    assert_ne!(third.serving_cert_pem, first.serving_cert_pem);
    assert_eq!(mode(&tls.join("ca.key")), 0o600);
    assert_eq!(mode(&tls), 0o700);
    assert_eq!(mode(&tls.join("serving.key")), 0o600);

    // ... and a subset of the names it already covers does not.
    let fourth = pki::ensure(data.path(), &sans[..1]).unwrap();
    assert_eq!(fourth.serving_cert_pem, third.serving_cert_pem);
}

/// What the test server reports back: the user, or the authentication error.
type Outcome = Result<UserInfo, AuthnError>;

/// A TLS server that reads one line (an `Authorization` header value, or an
/// empty line), authenticates it with the connection's peer certificates and
/// writes back `user|group,group` or `error|<AuthnError debug>`. Each
/// connection's outcome (or handshake error) is also sent on the channel.
async fn start_server(
    pki: &Pki,
    authn: Authenticator,
) -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<Result<Outcome, String>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = TlsAcceptor::from(pki.server_config().unwrap());
    let authn = Arc::new(authn);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, authn, tx) = (acceptor.clone(), authn.clone(), tx.clone());
            tokio::spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(tls) => tls,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                };
                let (_, conn) = tls.get_ref();
                let certs: Option<Vec<CertificateDer<'static>>> =
                    conn.peer_certificates().map(|c| c.to_vec());
                let mut stream = BufReader::new(tls);
                let mut line = String::new();
                if let Err(e) = stream.read_line(&mut line).await {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
                let header = Some(line.trim()).filter(|h| !h.is_empty());
                let outcome = authn.authenticate(certs.as_deref(), header);
                let reply = match &outcome {
                    Ok(user) => format!("{}|{}\n", user.username, user.groups.join(",")),
                    Err(e) => format!("error|{e:?}\n"),
                };
                let mut tls = stream.into_inner();
                tls.write_all(reply.as_bytes()).await.unwrap();
                tls.shutdown().await.unwrap();
                let _ = tx.send(Ok(outcome));
            });
        }
    });
    (addr, rx)
}

/// The next connection outcome from the server; fails instead of hanging.
async fn next(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Result<Outcome, String>>,
) -> Result<Outcome, String> {
    tokio::time::timeout(std::time::Duration::from_secs(10), rx.recv())
        .await
        .expect("server reported nothing within 10s")
        .expect("server task ended")
}

fn client_config(ca_pem: &str, identity: Option<(&str, &str)>) -> Arc<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
        .unwrap();
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(cert.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Arc::new(config)
}

/// Connects, sends `line`, and returns the server's reply; an error if the
/// handshake or the exchange failed.
async fn exchange(
    addr: std::net::SocketAddr,
    server_name: &str,
    config: Arc<ClientConfig>,
    line: &str,
) -> std::io::Result<String> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let mut tls = TlsConnector::from(config).connect(name, tcp).await?;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    tls.write_all(format!("{line}\n").as_bytes()).await?;
    tls.flush().await?;
    let mut reply = String::new();
    tls.read_to_string(&mut reply).await?;
    Ok(reply)
}

#[tokio::test]
async fn tls_client_authentication() {
    let data = tempfile::tempdir().unwrap();
    let pki = pki::ensure(data.path(), &[]).unwrap();
    let mut authn = Authenticator::new(&pki.ca_cert_pem, None).unwrap();
    authn.add_token(
        "s3cr3t".into(),
        UserInfo {
            username: "token-user".into(),
            uid: "42".into(),
            groups: vec!["tokens".into()],
            extra: Default::default(),
        },
    );
    let (addr, mut outcomes) = start_server(&pki, authn).await;

    // (a) The admin certificate, over an IP and a DNS name from the defaults.
    let admin = client_config(
        &pki.ca_cert_pem,
        Some((&pki.admin_cert_pem, &pki.admin_key_pem)),
    );
    for name in ["127.0.0.1", "localhost"] {
        let reply = exchange(addr, name, admin.clone(), "").await.unwrap();
        assert_eq!(reply, "system:admin|system:masters,system:authenticated\n");
        let user = next(&mut outcomes).await.unwrap().unwrap();
        assert_eq!(user.username, "system:admin");
        assert_eq!(user.groups, ["system:masters", "system:authenticated"]);
    }

    // A certificate issued at run time with several groups.
    let (cert, key) = pki
        .issue_client_cert("system:node:n1", &["system:nodes", "extra"], 1)
        .unwrap();
    let node = client_config(&pki.ca_cert_pem, Some((&cert, &key)));
    let reply = exchange(addr, "localhost", node, "").await.unwrap();
    assert_eq!(
        reply,
        "system:node:n1|system:nodes,extra,system:authenticated\n"
    );
    next(&mut outcomes).await.unwrap().unwrap();

    // (b) No certificate, a bearer token.
    let anonymous = client_config(&pki.ca_cert_pem, None);
    let reply = exchange(addr, "localhost", anonymous.clone(), "Bearer s3cr3t")
        .await
        .unwrap();
    assert_eq!(reply, "token-user|tokens,system:authenticated\n");
    let user = next(&mut outcomes).await.unwrap().unwrap();
    assert_eq!(user.uid, "42");

    // A wrong token without a certificate is rejected ...
    let reply = exchange(addr, "localhost", anonymous.clone(), "Bearer nope")
        .await
        .unwrap();
    assert_eq!(reply, "error|InvalidToken\n");
    assert_eq!(
        next(&mut outcomes).await.unwrap(),
        Err(AuthnError::InvalidToken)
    );

    // ... but does not spoil a valid certificate (union of authenticators).
    let reply = exchange(addr, "localhost", admin.clone(), "Bearer nope")
        .await
        .unwrap();
    assert!(reply.starts_with("system:admin|"), "{reply}");
    next(&mut outcomes).await.unwrap().unwrap();

    // (c) Neither certificate nor token.
    let reply = exchange(addr, "localhost", anonymous, "").await.unwrap();
    assert_eq!(reply, "error|Anonymous\n");
    assert_eq!(
        next(&mut outcomes).await.unwrap(),
        Err(AuthnError::Anonymous)
    );

    // (d) A certificate from another CA passes the handshake, as with
    // upstream's `tls.RequestClientCert`, and proves nothing: the request
    // is refused, and a valid bearer token beside it still counts.
    let other = tempfile::tempdir().unwrap();
    let foreign = pki::ensure(other.path(), &[]).unwrap();
    let impostor = client_config(
        &pki.ca_cert_pem,
        Some((&foreign.admin_cert_pem, &foreign.admin_key_pem)),
    );
    let reply = exchange(addr, "localhost", impostor.clone(), "")
        .await
        .unwrap();
    assert!(reply.starts_with("error|InvalidCertificate"), "{reply}");
    assert!(matches!(
        next(&mut outcomes).await.unwrap(),
        Err(AuthnError::InvalidCertificate(_))
    ));
    let reply = exchange(addr, "localhost", impostor, "Bearer s3cr3t")
        .await
        .unwrap();
    assert_eq!(reply, "token-user|tokens,system:authenticated\n");
    next(&mut outcomes).await.unwrap().unwrap();

    // A client that does not trust our CA refuses the server, too.
    let distrustful = client_config(&foreign.ca_cert_pem, None);
    assert!(exchange(addr, "localhost", distrustful, "").await.is_err());
}

#[test]
fn admin_kubeconfig_from_pki() {
    let data = tempfile::tempdir().unwrap();
    let pki = pki::ensure(data.path(), &[]).unwrap();
    let path = data.path().join("kubeconfig.yaml");
    pki::write_kubeconfig(
        &path,
        "https://127.0.0.1:6443",
        &pki.ca_cert_pem,
        &pki.admin_cert_pem,
        &pki.admin_key_pem,
        0o600,
    )
    .unwrap();
    assert_eq!(mode(&path), 0o600);
    let doc: serde_norway::Value =
        serde_norway::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(doc["current-context"].as_str(), Some("default"));
    assert!(doc["users"][0]["user"]["client-key-data"]
        .as_str()
        .is_some());
}
