//! The client side of containerd's streaming server: the URL that CRI
//! `Exec`/`Attach` return is upgraded to SPDY/3.1 with a
//! `X-Stream-Protocol-Version`, as kubectl did before WebSockets. SPDY,
//! not containerd's WebSocket, because only SPDY can half-close stdin
//! (containerd 1.6 knows no `v5.channel.k8s.io`).

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// An upgraded connection to the streaming server.
pub(crate) struct Dialed {
    pub read: OwnedReadHalf,
    pub write: OwnedWriteHalf,
    /// Bytes read past the response head (the first frames).
    pub leftover: Vec<u8>,
    /// The protocol the server chose (`X-Stream-Protocol-Version`).
    pub protocol: String,
}

/// Why the upgrade failed: the streaming server's status and body, or a
/// connection error (status 0).
#[derive(Debug)]
pub(crate) struct DialError {
    pub status: u16,
    pub message: String,
}

fn split_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("http://")?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Some((host.to_string(), path.to_string()))
}

/// POST `url` with the SPDY upgrade offering `protocols` (in order of
/// preference).
pub(crate) async fn dial(url: &str, protocols: &[&str]) -> Result<Dialed, DialError> {
    let err = |m: String| DialError {
        status: 0,
        message: m,
    };
    let (host, path) =
        split_url(url).ok_or_else(|| err(format!("unsupported stream URL {url:?}")))?;
    let mut tcp = TcpStream::connect(&host)
        .await
        .map_err(|e| err(format!("connecting to the streaming server {host}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let offers: String = protocols
        .iter()
        .map(|p| format!("X-Stream-Protocol-Version: {p}\r\n"))
        .collect();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n\
         {offers}Content-Length: 0\r\n\r\n"
    );
    tcp.write_all(req.as_bytes())
        .await
        .map_err(|e| err(format!("writing to the streaming server: {e}")))?;
    let mut buf = Vec::with_capacity(1024);
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err(err("streaming server response head too long".into()));
        }
        let mut chunk = [0u8; 4096];
        let n = tcp
            .read(&mut chunk)
            .await
            .map_err(|e| err(format!("reading from the streaming server: {e}")))?;
        if n == 0 {
            return Err(err("the streaming server closed the connection".into()));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if status != 101 {
        // The body says why (e.g. an unknown token); read what came with it.
        let mut body = buf[end..].to_vec();
        let mut chunk = [0u8; 4096];
        if let Ok(Ok(n)) =
            tokio::time::timeout(std::time::Duration::from_millis(200), tcp.read(&mut chunk)).await
        {
            body.extend_from_slice(&chunk[..n]);
        }
        return Err(DialError {
            status,
            message: String::from_utf8_lossy(&body).trim().to_string(),
        });
    }
    let leftover = buf[end..].to_vec();
    let protocol = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("x-stream-protocol-version"))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_default();
    let (read, write) = tcp.into_split();
    Ok(Dialed {
        read,
        write,
        leftover,
        protocol,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        assert_eq!(
            split_url("http://127.0.0.1:4321/exec/abc"),
            Some(("127.0.0.1:4321".into(), "/exec/abc".into()))
        );
        assert_eq!(split_url("https://x/"), None);
    }

    #[tokio::test]
    async fn refused_upgrade_is_an_error_with_the_body() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut b = [0u8; 1024];
            let _ = s.read(&mut b).await;
            s.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found")
                .await
                .unwrap();
        });
        let e = dial(&format!("http://{addr}/exec/x"), &["v4.channel.k8s.io"])
            .await
            .err()
            .unwrap();
        assert_eq!(e.status, 404);
        assert_eq!(e.message, "not found");
    }
}
