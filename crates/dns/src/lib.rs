//! Cluster DNS (the role of CoreDNS in k3s), served in-process as an API
//! client like the other components:
//!
//! - [`records`]: the zone as a pure function of Services and EndpointSlices;
//! - [`answer`]: one query against the zone (authoritative), or "forward";
//! - [`server`]: UDP and TCP listeners and the forwarder to the host's
//!   resolvers (from `/etc/resolv.conf`) for other names.
//!
//! [`Dns::start`] watches Services and EndpointSlices, rebuilds the zone on
//! change, and publishes itself as the `kube-dns` Service in `kube-system`
//! (its ClusterIP is `--cluster-dns`), with an EndpointSlice that points at
//! the listen address, so pods reach it through the Service proxy.

pub mod answer;
pub mod records;
pub mod server;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{reflector, watcher, WatchStreamExt};
use kube::Client;

/// Errors of the DNS server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listen address could not be bound.
    #[error("binding {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// The DNS server's settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen (UDP and TCP).
    pub listen: SocketAddr,
    /// The cluster domain (`cluster.local`).
    pub zone: String,
    /// Resolvers for other names; `None`: the host's `/etc/resolv.conf`.
    pub upstreams: Option<Vec<SocketAddr>>,
    /// The `kube-dns` Service's ClusterIP (`--cluster-dns`); `None`: do
    /// not publish the Service.
    pub service_ip: Option<String>,
    /// The address pods reach the listener on (the node's IP).
    pub advertise_ip: String,
    /// The node this server runs on. Its endpoint in `kube-dns` is hinted
    /// for that node, and the Service asks for `trafficDistribution:
    /// PreferSameNode`, so pods on a node with a DNS server of its own ask
    /// that one (the per-node path); the others spread over all of them.
    pub node_name: String,
}

/// A running DNS server; dropping it stops it.
pub struct Dns {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    listen: SocketAddr,
}

impl Drop for Dns {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// The field manager of what the DNS server writes.
const MANAGER: &str = "wharf-dns";

impl Dns {
    /// Bind, then serve and watch in the background.
    pub async fn start(client: Client, cfg: Config) -> Result<Dns, Error> {
        let udp = tokio::net::UdpSocket::bind(cfg.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: cfg.listen,
                source,
            })?;
        let listen = udp.local_addr().map_err(|source| Error::Bind {
            addr: cfg.listen,
            source,
        })?;
        // TCP on the same port (it may have been chosen by the kernel).
        let tcp = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|source| Error::Bind {
                addr: listen,
                source,
            })?;
        let upstreams = cfg.upstreams.clone().unwrap_or_else(|| {
            server::nameservers(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
        });
        let upstreams: Vec<SocketAddr> = upstreams.into_iter().filter(|u| *u != listen).collect();
        let shared = Arc::new(server::Shared {
            table: RwLock::new(Arc::new(records::Table::build(&cfg.zone, &[], &[]))),
            upstreams,
        });
        let mut tasks = vec![
            tokio::spawn(server::serve_udp(Arc::new(udp), shared.clone())),
            tokio::spawn(server::serve_tcp(tcp, shared.clone())),
            tokio::spawn(watch(client.clone(), cfg.zone.clone(), shared)),
        ];
        if let Some(ip) = cfg.service_ip.clone() {
            let advertise = cfg.advertise_ip.clone();
            let node = cfg.node_name.clone();
            tasks.push(tokio::spawn(async move {
                publish(client, ip, advertise, node, listen.port()).await
            }));
        }
        tracing::info!(%listen, zone = %cfg.zone, "cluster DNS serving");
        Ok(Dns { tasks, listen })
    }

    /// The address it listens on.
    pub fn listen(&self) -> SocketAddr {
        self.listen
    }
}

/// Keep the zone in step with Services and EndpointSlices.
async fn watch(client: Client, zone: String, shared: Arc<server::Shared>) {
    let (services, svc_writer) = reflector::store::<Service>();
    let (slices, slice_writer) = reflector::store::<EndpointSlice>();
    let changed = Arc::new(tokio::sync::Notify::new());
    let svc_stream = watcher(
        Api::<Service>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(svc_writer)
    .touched_objects();
    let slice_stream = watcher(
        Api::<EndpointSlice>::all(client),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(slice_writer)
    .touched_objects();
    let n1 = changed.clone();
    let n2 = changed.clone();
    let feeds = [
        tokio::spawn(async move {
            let mut s = std::pin::pin!(svc_stream);
            while let Some(ev) = s.next().await {
                if let Err(e) = ev {
                    tracing::debug!(error = %e, "DNS: service watch");
                }
                n1.notify_one();
            }
        }),
        tokio::spawn(async move {
            let mut s = std::pin::pin!(slice_stream);
            while let Some(ev) = s.next().await {
                if let Err(e) = ev {
                    tracing::debug!(error = %e, "DNS: endpointslice watch");
                }
                n2.notify_one();
            }
        }),
    ];
    struct Abort<const N: usize>([tokio::task::JoinHandle<()>; N]);
    impl<const N: usize> Drop for Abort<N> {
        fn drop(&mut self) {
            for t in &self.0 {
                t.abort();
            }
        }
    }
    let _feeds = Abort(feeds);
    loop {
        changed.notified().await;
        // Coalesce a burst of changes into one rebuild.
        tokio::time::sleep(Duration::from_millis(20)).await;
        let svcs: Vec<Service> = services.state().iter().map(|s| (**s).clone()).collect();
        let eps: Vec<EndpointSlice> = slices.state().iter().map(|s| (**s).clone()).collect();
        let table = Arc::new(records::Table::build(&zone, &svcs, &eps));
        tracing::debug!(names = table.len(), "DNS zone rebuilt");
        *shared.table.write().unwrap_or_else(|e| e.into_inner()) = table;
    }
}

/// Create or update the `kube-dns` Service and this server's EndpointSlice,
/// retrying until the API server accepts them. The slice is owned by this
/// server's Node, so it goes when the node is deleted; it waits for the
/// kubelet to register the Node.
async fn publish(client: Client, service_ip: String, advertise: String, node: String, port: u16) {
    let services: Api<Service> = Api::namespaced(client.clone(), "kube-system");
    let slices: Api<EndpointSlice> = Api::namespaced(client.clone(), "kube-system");
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client);
    let labels = BTreeMap::from([
        ("k8s-app".to_string(), "kube-dns".to_string()),
        ("kubernetes.io/name".to_string(), "CoreDNS".to_string()),
    ]);
    let svc: Service = serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
        "spec": {
            "clusterIP": service_ip,
            "trafficDistribution": "PreferSameNode",
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": port},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": port},
            ],
        },
    }))
    .expect("a valid Service");
    let slice_name = format!("kube-dns-{}", advertise.replace([':', '.'], "-"));
    let slice = |node_uid: &str| -> EndpointSlice {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": slice_name, "namespace": "kube-system", "labels": {
                "kubernetes.io/service-name": "kube-dns",
                "endpointslice.kubernetes.io/managed-by": MANAGER,
            }, "ownerReferences": [{
                "apiVersion": "v1", "kind": "Node", "name": node, "uid": node_uid,
            }]},
            "addressType": if advertise.contains(':') { "IPv6" } else { "IPv4" },
            "endpoints": [{
                "addresses": [advertise],
                "conditions": {"ready": true},
                "nodeName": node,
                "hints": {"forNodes": [{"name": node}]},
            }],
            "ports": [
                {"name": "dns", "port": port, "protocol": "UDP"},
                {"name": "dns-tcp", "port": port, "protocol": "TCP"},
            ],
        }))
        .expect("a valid EndpointSlice")
    };
    let pp = PatchParams::apply(MANAGER).force();
    let mut delay = Duration::from_millis(200);
    loop {
        let r1 = services.patch("kube-dns", &pp, &Patch::Apply(&svc)).await;
        let r2 = match nodes.get_opt(&node).await {
            Ok(Some(n)) => {
                let uid = n.metadata.uid.unwrap_or_default();
                slices
                    .patch(&slice_name, &pp, &Patch::Apply(&slice(&uid)))
                    .await
            }
            Ok(None) => Err(kube::Error::Api(
                kube::core::Status::failure(&format!("node {node} not registered yet"), "NotFound")
                    .with_code(404)
                    .boxed(),
            )),
            Err(e) => Err(e),
        };
        match (r1, r2) {
            (Ok(_), Ok(_)) => {
                tracing::info!(cluster_ip = %service_ip, endpoint = %format!("{advertise}:{port}"), "kube-dns Service published");
                return;
            }
            (a, b) => {
                let e = a
                    .err()
                    .or(b.err())
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                tracing::warn!(error = %e, "publishing the kube-dns Service; retrying");
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}
