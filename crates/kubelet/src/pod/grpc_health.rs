//! gRPC probes: the standard health protocol, `grpc.health.v1.Health/Check`
//! over plain-text HTTP/2 to the pod's IP, with the probe's `service`
//! name. Only `SERVING` is a success, as upstream. The two messages are
//! written here (no generated code): `HealthCheckRequest { string service
//! = 1; }` and `HealthCheckResponse { ServingStatus status = 1; }`.

use std::time::Duration;

use tonic::transport::Endpoint;

/// `grpc.health.v1.HealthCheckRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckRequest {
    /// The service to check; empty for the server as a whole.
    #[prost(string, tag = "1")]
    pub service: String,
}

/// `grpc.health.v1.HealthCheckResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct HealthCheckResponse {
    /// `ServingStatus`: 0 UNKNOWN, 1 SERVING, 2 NOT_SERVING, 3 SERVICE_UNKNOWN.
    #[prost(int32, tag = "1")]
    pub status: i32,
}

/// `ServingStatus.SERVING`.
pub const SERVING: i32 = 1;

const METHOD: &str = "/grpc.health.v1.Health/Check";

fn status_name(s: i32) -> &'static str {
    match s {
        0 => "UNKNOWN",
        1 => "SERVING",
        2 => "NOT_SERVING",
        3 => "SERVICE_UNKNOWN",
        _ => "UNKNOWN",
    }
}

/// Check `service` at `host:port` within `timeout`: `Ok` when SERVING, else
/// the reason (upstream's wording where it has one).
pub async fn check(host: &str, port: u16, service: &str, timeout: Duration) -> Result<(), String> {
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    let addr = format!("http://{host}:{port}");
    let ep = Endpoint::from_shared(addr.clone())
        .map_err(|e| e.to_string())?
        .connect_timeout(timeout)
        .timeout(timeout)
        .user_agent("kube-probe/1.37")
        .map_err(|e| e.to_string())?;
    let call = async {
        let ch = ep.connect().await.map_err(|e| {
            tracing::debug!(error = %e, "gRPC probe connection failed");
            // Upstream dials blocking until the timeout: its error is the
            // context's, whatever refused the connection.
            format!(
                "timeout: failed to connect service \"{}\" within {timeout:?}: context deadline exceeded",
                addr.trim_start_matches("http://")
            )
        })?;
        let mut g = tonic::client::Grpc::new(ch);
        g.ready().await.map_err(|e| e.to_string())?;
        let codec = tonic_prost::ProstCodec::<HealthCheckRequest, HealthCheckResponse>::default();
        let req = tonic::Request::new(HealthCheckRequest {
            service: service.to_string(),
        });
        let path = http::uri::PathAndQuery::from_static(METHOD);
        g.unary(req, path, codec).await.map_err(|s| match s.code() {
            tonic::Code::Unimplemented => {
                "this server does not implement the grpc health protocol (grpc.health.v1.Health)"
                    .to_string()
            }
            tonic::Code::DeadlineExceeded => {
                format!("timeout: health rpc did not complete within {timeout:?}")
            }
            _ => format!("error: health rpc probe failed: {}", s.message()),
        })
    };
    let resp = tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| format!("timeout: health rpc did not complete within {timeout:?}"))??;
    let st = resp.into_inner().status;
    if st == SERVING {
        Ok(())
    } else {
        Err(format!(
            "service unhealthy (responded with \"{}\")",
            status_name(st)
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    type BoxFut<T> = Pin<Box<dyn Future<Output = T> + Send>>;

    /// A health server answering `status` for service "app", SERVICE_UNKNOWN otherwise.
    #[derive(Clone)]
    struct Health(i32);

    impl tonic::server::NamedService for Health {
        const NAME: &'static str = "grpc.health.v1.Health";
    }

    struct Check(i32);

    impl tonic::server::UnaryService<HealthCheckRequest> for Check {
        type Response = HealthCheckResponse;
        type Future = BoxFut<Result<tonic::Response<HealthCheckResponse>, tonic::Status>>;
        fn call(&mut self, r: tonic::Request<HealthCheckRequest>) -> Self::Future {
            let status = if r.get_ref().service == "app" {
                self.0
            } else {
                3
            };
            Box::pin(async move { Ok(tonic::Response::new(HealthCheckResponse { status })) })
        }
    }

    impl tower::Service<http::Request<tonic::body::Body>> for Health {
        type Response = http::Response<tonic::body::Body>;
        type Error = Infallible;
        type Future = BoxFut<Result<Self::Response, Infallible>>;
        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }
        fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
            let status = self.0;
            Box::pin(async move {
                let mut g = tonic::server::Grpc::new(tonic_prost::ProstCodec::<
                    HealthCheckResponse,
                    HealthCheckRequest,
                >::default());
                Ok(g.unary(Check(status), req).await)
            })
        }
    }

    async fn serve(status: i32) -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(Health(status))
                .serve(([127, 0, 0, 1], port).into()),
        );
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        port
    }

    #[tokio::test]
    async fn serving_and_not() {
        let t = Duration::from_secs(2);
        let up = serve(SERVING).await;
        assert_eq!(check("127.0.0.1", up, "app", t).await, Ok(()));
        assert_eq!(
            check("127.0.0.1", up, "other", t).await.unwrap_err(),
            "service unhealthy (responded with \"SERVICE_UNKNOWN\")"
        );
        let down = serve(2).await;
        assert!(check("127.0.0.1", down, "app", t)
            .await
            .unwrap_err()
            .contains("NOT_SERVING"));
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let closed = l.local_addr().unwrap().port();
        drop(l);
        assert_eq!(
            check("127.0.0.1", closed, "", t).await.unwrap_err(),
            format!("timeout: failed to connect service \"127.0.0.1:{closed}\" within 2s: context deadline exceeded")
        );
    }
}
