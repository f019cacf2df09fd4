//! The DNS listeners (UDP and TCP on one address) and the forwarder for
//! names outside the cluster zone.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

use crate::answer::{answer, servfail, Reply};
use crate::records::Table;

/// How long one upstream resolver gets before the next is tried.
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);
/// The largest UDP response without EDNS.
const PLAIN_UDP_MAX: usize = 512;

/// What the listeners share.
pub struct Shared {
    /// The current zone.
    pub table: RwLock<Arc<Table>>,
    /// Resolvers for other names, tried in order.
    pub upstreams: Vec<SocketAddr>,
}

impl Shared {
    fn table(&self) -> Arc<Table> {
        self.table.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The nameservers of a resolv.conf text, on port 53.
pub fn nameservers(resolv_conf: &str) -> Vec<SocketAddr> {
    resolv_conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|ip| ip.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect()
}

/// Answer (or forward) one raw query; `None` when it cannot be parsed (no
/// reply is possible without an ID).
async fn handle(shared: &Shared, raw: &[u8], tcp: bool) -> Option<Vec<u8>> {
    let request = Message::from_vec(raw).ok()?;
    match answer(&request, &shared.table()) {
        Reply::Answer(mut m) => {
            let mut bytes = m.to_vec().ok()?;
            let limit = request
                .extensions()
                .as_ref()
                .map(|e| e.max_payload() as usize)
                .unwrap_or(PLAIN_UDP_MAX)
                .max(PLAIN_UDP_MAX);
            if !tcp && bytes.len() > limit {
                // Too big for UDP: the client retries over TCP.
                m.set_truncated(true);
                m.take_answers();
                m.take_additionals();
                bytes = m.to_vec().ok()?;
            }
            Some(bytes)
        }
        Reply::Forward => {
            for up in &shared.upstreams {
                let r = if tcp {
                    forward_tcp(*up, raw).await
                } else {
                    forward_udp(*up, raw).await
                };
                match r {
                    Ok(resp) => return Some(resp),
                    Err(e) => {
                        tracing::debug!(upstream = %up, error = %e, "upstream resolver failed")
                    }
                }
            }
            servfail(&request).to_vec().ok()
        }
    }
}

async fn forward_udp(up: SocketAddr, raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let bind: SocketAddr = if up.is_ipv4() {
        "0.0.0.0:0".parse().expect("address")
    } else {
        "[::]:0".parse().expect("address")
    };
    let sock = UdpSocket::bind(bind).await?;
    sock.connect(up).await?;
    sock.send(raw).await?;
    let mut buf = vec![0u8; 65535];
    let n = tokio::time::timeout(UPSTREAM_TIMEOUT, sock.recv(&mut buf))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"))??;
    buf.truncate(n);
    Ok(buf)
}

async fn forward_tcp(up: SocketAddr, raw: &[u8]) -> std::io::Result<Vec<u8>> {
    let work = async {
        let mut s = TcpStream::connect(up).await?;
        s.write_all(&(raw.len() as u16).to_be_bytes()).await?;
        s.write_all(raw).await?;
        read_framed(&mut s).await
    };
    tokio::time::timeout(UPSTREAM_TIMEOUT, work)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"))?
}

async fn read_framed(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    s.read_exact(&mut buf).await?;
    Ok(buf)
}

/// Serve UDP queries until the task is aborted.
pub async fn serve_udp(sock: Arc<UdpSocket>, shared: Arc<Shared>) {
    let mut buf = vec![0u8; 65535];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "DNS: receiving");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let raw = buf[..n].to_vec();
        let (sock, shared) = (sock.clone(), shared.clone());
        tokio::spawn(async move {
            if let Some(resp) = handle(&shared, &raw, false).await {
                let _ = sock.send_to(&resp, peer).await;
            }
        });
    }
}

/// Serve TCP connections (length-prefixed messages) until aborted.
pub async fn serve_tcp(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((mut stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            // Several queries may come on one connection; idle ones close.
            while let Ok(Ok(raw)) =
                tokio::time::timeout(Duration::from_secs(10), read_framed(&mut stream)).await
            {
                let Some(resp) = handle(&shared, &raw, true).await else {
                    return;
                };
                let len = (resp.len() as u16).to_be_bytes();
                if stream.write_all(&len).await.is_err() || stream.write_all(&resp).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::{Query, ResponseCode};
    use hickory_proto::rr::{Name, RecordType};

    #[test]
    fn nameservers_of_resolv_conf() {
        let text = "# comment\nsearch example.com\nnameserver 10.0.0.2\nnameserver  ::1\nnameserver bogus\n";
        let got: Vec<String> = nameservers(text).iter().map(|a| a.to_string()).collect();
        assert_eq!(got, ["10.0.0.2:53", "[::1]:53"]);
    }

    fn query(name: &str) -> Vec<u8> {
        let mut m = Message::new();
        m.set_id(9);
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        m.to_vec().unwrap()
    }

    #[tokio::test]
    async fn udp_and_tcp_answer_and_forward_to_an_upstream() {
        // An "upstream" that answers every query with NXDOMAIN-free REFUSED,
        // so the forwarded reply is recognizable.
        let up = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let up_addr = up.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 512];
            while let Ok((n, peer)) = up.recv_from(&mut buf).await {
                let req = Message::from_vec(&buf[..n]).unwrap();
                let mut resp = servfail(&req);
                resp.set_response_code(ResponseCode::Refused);
                up.send_to(&resp.to_vec().unwrap(), peer).await.unwrap();
            }
        });
        let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "web", "namespace": "default"},
            "spec": {"clusterIP": "10.43.0.20"}}))
        .unwrap();
        let shared = Arc::new(Shared {
            table: RwLock::new(Arc::new(Table::build("cluster.local", &[svc], &[]))),
            upstreams: vec![up_addr],
        });
        let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = sock.local_addr().unwrap();
        tokio::spawn(serve_udp(sock, shared.clone()));
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp_addr = tcp.local_addr().unwrap();
        tokio::spawn(serve_tcp(tcp, shared));

        let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let ask = |name: &'static str| {
            let client = &client;
            async move {
                client.send_to(&query(name), addr).await.unwrap();
                let mut buf = vec![0u8; 4096];
                let (n, _) = client.recv_from(&mut buf).await.unwrap();
                Message::from_vec(&buf[..n]).unwrap()
            }
        };
        let m = ask("web.default.svc.cluster.local.").await;
        assert_eq!(m.answers().len(), 1);
        let f = ask("example.org.").await;
        assert_eq!(
            f.response_code(),
            ResponseCode::Refused,
            "the upstream's answer"
        );

        let mut s = TcpStream::connect(tcp_addr).await.unwrap();
        let q = query("web.default.svc.cluster.local.");
        s.write_all(&(q.len() as u16).to_be_bytes()).await.unwrap();
        s.write_all(&q).await.unwrap();
        let m = Message::from_vec(&read_framed(&mut s).await.unwrap()).unwrap();
        assert_eq!(m.answers().len(), 1);
    }
}
