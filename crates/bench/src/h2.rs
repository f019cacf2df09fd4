//! HTTP/2 connections to the API server, opened as client-go and kubectl open
//! them: TLS with ALPN `h2` and the kubeconfig's credentials, then many
//! requests (here, watches) multiplexed on each connection. kube's own
//! connector offers HTTP/1.1 only, where every watch holds a connection.

use std::sync::Arc;

use anyhow::{ensure, Context, Result};
use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use kube::client::ConfigExt;
use tokio::task::JoinHandle;

/// Opens HTTP/2 connections to one loopback port with the kubeconfig's TLS
/// settings (CA, client certificate).
#[derive(Clone)]
pub(crate) struct H2Connector {
    tls: Arc<rustls::ClientConfig>,
    port: u16,
}

/// One HTTP/2 connection: requests go out through `send`; `driver` runs the
/// connection and ends with it.
pub(crate) struct H2Conn {
    send: SendRequest<Empty<Bytes>>,
    port: u16,
    pub(crate) driver: JoinHandle<()>,
}

impl H2Connector {
    pub(crate) fn new(config: &kube::Config, port: u16) -> Result<H2Connector> {
        let mut tls = config
            .rustls_client_config()
            .context("TLS settings from the kubeconfig")?;
        tls.alpn_protocols = vec![b"h2".to_vec()];
        Ok(H2Connector {
            tls: Arc::new(tls),
            port,
        })
    }

    pub(crate) async fn connect(&self) -> Result<H2Conn> {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .context("connecting")?;
        tcp.set_nodelay(true)?;
        let name = rustls::pki_types::ServerName::IpAddress(std::net::Ipv4Addr::LOCALHOST.into());
        let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
            .connect(name, tcp)
            .await
            .context("TLS handshake")?;
        ensure!(
            tls.get_ref().1.alpn_protocol() == Some(b"h2".as_slice()),
            "the server did not negotiate HTTP/2 (ALPN h2)"
        );
        let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .handshake(TokioIo::new(tls))
            .await
            .context("HTTP/2 handshake")?;
        let driver = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(H2Conn {
            send,
            port: self.port,
            driver,
        })
    }
}

impl H2Conn {
    /// GET `path_and_query` on this connection (a new stream).
    pub(crate) async fn get(&self, path_and_query: &str) -> Result<http::Response<Incoming>> {
        let req = http::Request::get(format!("https://127.0.0.1:{}{path_and_query}", self.port))
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::new())
            .context("building the request")?;
        let mut send = self.send.clone();
        send.ready().await.context("the connection closed")?;
        Ok(send.send_request(req).await?)
    }
}
