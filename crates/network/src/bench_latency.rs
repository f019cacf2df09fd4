//! `wharf bench network`'s latency phase: a small TCP request and its
//! answer from pod A to pod B across the lab's VXLAN, once to pod B's IP
//! and once through a ClusterIP whose only endpoint is pod B (issue #7:
//! "connection latency through a ClusterIP, as a ratio of direct pod-IP
//! latency").
//!
//! The Service is the proxy's real ruleset (`proxy::rules::compute`,
//! rendered whole and loaded with `nft -f` in both hosts, as every node's
//! proxy would). Two kinds of request:
//! - a fresh connection per request (connect, send, receive, close): every
//!   one is a new conntrack entry, and through the ClusterIP it walks the
//!   nat chains and is DNATed;
//! - a round trip on an open connection (a new one per batch): after its
//!   first packet a flow never sees the nat rules again, so this shows
//!   what is left (the conntrack lookup both paths pay, the DNAT rewrite).
//!
//! The two targets alternate in batches, so the machine's noise lands on
//! both alike. Pod B asking the ClusterIP (itself as the endpoint, the
//! hairpin: DNAT and masquerade on host B) is measured once more, alone.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use proxy::nft::Nft;
use proxy::rules::{Input, NodePortAddresses};
use serde_json::json;

use crate::bench::{enter, vxlan_lab};
use crate::lab::Host;

const CLUSTER_IP: Ipv4Addr = Ipv4Addr::new(10, 43, 100, 10);
const SERVICE_PORT: u16 = 80;
const POD_B: Ipv4Addr = Ipv4Addr::new(10, 42, 2, 5);
/// The Service's targetPort.
const TARGET_PORT: u16 = 8080;
const TABLE: &str = "wharf-proxy";
/// Request and answer size: a small RPC.
const MESSAGE: usize = 64;
/// Requests to one target before switching to the other.
const BATCH: usize = 50;
/// Untimed round trips on a new kept-open connection: its first few dozen
/// take about twice as long as later ones (~95 µs against ~41 µs here,
/// to the pod IP and the ClusterIP alike), which is TCP's start, not the
/// path.
const WARM: usize = 50;
const TIMEOUT: Duration = Duration::from_secs(3);

/// p50 and p99 of one series, in microseconds.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    pub count: usize,
    pub p50_us: f64,
    pub p99_us: f64,
}

impl Stats {
    fn of(mut samples: Vec<Duration>) -> Stats {
        samples.sort();
        let n = samples.len();
        let at = |q: usize| samples[((n * q) / 100).min(n - 1)].as_secs_f64() * 1e6;
        Stats {
            count: n,
            p50_us: at(50),
            p99_us: at(99),
        }
    }
}

/// Pod IP against ClusterIP for one kind of request.
#[derive(Debug, Clone, Copy)]
pub struct Pair {
    pub pod_ip: Stats,
    pub cluster_ip: Stats,
}

impl Pair {
    /// ClusterIP median over pod-IP median: 1.0 means the VIP costs nothing.
    pub fn ratio(&self) -> f64 {
        self.cluster_ip.p50_us / self.pod_ip.p50_us
    }
}

#[derive(Debug)]
pub struct LatencyReport {
    /// connect + request + answer + close, pod A to pod B.
    pub fresh: Pair,
    /// One request and answer on a kept-open connection, pod A to pod B.
    pub persistent: Pair,
    /// Fresh connections from pod B to the ClusterIP, answered by pod B
    /// itself (hairpin).
    pub hairpin: Stats,
}

impl fmt::Display for LatencyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "connection latency ({MESSAGE}-byte request and answer, pod A -> pod B over VXLAN, targets alternating every {BATCH})"
        )?;
        writeln!(
            f,
            "{:<44} {:>7} {:>10} {:>10}",
            "path", "count", "p50 us", "p99 us"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, s: &Stats| {
            writeln!(
                f,
                "{:<44} {:>7} {:>10.1} {:>10.1}",
                name, s.count, s.p50_us, s.p99_us
            )
        };
        row(f, "new connection, pod IP", &self.fresh.pod_ip)?;
        row(f, "new connection, ClusterIP", &self.fresh.cluster_ip)?;
        row(f, "kept-open connection, pod IP", &self.persistent.pod_ip)?;
        row(
            f,
            "kept-open connection, ClusterIP",
            &self.persistent.cluster_ip,
        )?;
        row(
            f,
            "new connection, pod B -> ClusterIP (hairpin)",
            &self.hairpin,
        )?;
        writeln!(
            f,
            "ClusterIP / pod IP (p50): new connection {:.2}, kept-open {:.2}",
            self.fresh.ratio(),
            self.persistent.ratio()
        )?;
        Ok(())
    }
}

fn service() -> Result<Service, String> {
    serde_json::from_value(json!({
        "metadata": { "name": "echo", "namespace": "default" },
        "spec": { "type": "ClusterIP", "clusterIP": CLUSTER_IP.to_string(),
                  "ports": [{ "port": SERVICE_PORT, "targetPort": TARGET_PORT, "protocol": "TCP" }] },
    }))
    .map_err(|e| format!("the Service: {e}"))
}

fn slice() -> Result<EndpointSlice, String> {
    serde_json::from_value(json!({
        "metadata": { "name": "echo-1", "namespace": "default",
                      "labels": { "kubernetes.io/service-name": "echo" } },
        "addressType": "IPv4",
        "ports": [{ "port": TARGET_PORT, "protocol": "TCP" }],
        "endpoints": [{ "addresses": [POD_B.to_string()], "nodeName": "hb",
                        "conditions": { "ready": true } }],
    }))
    .map_err(|e| format!("the EndpointSlice: {e}"))
}

/// The proxy's ruleset for the Service, loaded whole in `host`.
fn load_proxy(host: &Host, svc: &Service, slice: &EndpointSlice) -> Result<(), String> {
    let rs = proxy::rules::compute(&Input {
        table: TABLE,
        services: vec![svc],
        slices: vec![slice],
        node_name: &host.cfg.node_name,
        node_ips: vec![host.underlay.ip],
        nodeport_addresses: NodePortAddresses::Primary,
        cluster_cidr: Some(proxy::rules::Cidr {
            addr: host.cfg.cluster_cidr.addr,
            prefix: host.cfg.cluster_cidr.prefix,
        }),
    });
    host.nft
        .apply(&rs.render(None))
        .map_err(|e| format!("loading the proxy rules in {}: {e}", host.cfg.node_name))
}

/// Threads answering in pod B: a thread already waiting in accept adds no
/// thread start to a fresh connection's time (and one to spare while the
/// previous connection's thread sees its close).
const WORKERS: usize = 3;

/// An echo server in pod B on `TARGET_PORT`: answers each
/// `MESSAGE`-byte request on a connection until the client closes it.
struct Echo {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// A namespace the server is reachable from, to wake it on drop.
    client_ns: String,
}

impl Echo {
    fn start(ns: String, client_ns: String) -> Result<Echo, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let mut echo = Echo {
            stop: stop.clone(),
            threads: Vec::new(),
            client_ns,
        };
        let l = in_ns(ns, || {
            TcpListener::bind((Ipv4Addr::UNSPECIFIED, TARGET_PORT))
                .map_err(|e| format!("bind {TARGET_PORT}: {e}"))
        })?;
        for _ in 0..WORKERS {
            // The socket lives in pod B's namespace whatever thread uses it.
            let l = l.try_clone().map_err(|e| format!("listener: {e}"))?;
            let stop = stop.clone();
            echo.threads
                .push(std::thread::spawn(move || serve(l, stop)));
        }
        Ok(echo)
    }
}

fn serve(l: TcpListener, stop: Arc<AtomicBool>) {
    let mut buf = [0u8; MESSAGE];
    while !stop.load(Ordering::Relaxed) {
        let Ok((mut s, _)) = l.accept() else { return };
        let _ = s.set_nodelay(true);
        let _ = s.set_read_timeout(Some(TIMEOUT));
        // A connection ends with the client's close (EOF) or an error;
        // either way the next one is served.
        while s.read_exact(&mut buf).is_ok() {
            if s.write_all(&buf).is_err() {
                break;
            }
        }
    }
}

impl Drop for Echo {
    /// Stop the server, whose sockets would otherwise keep pod B's
    /// namespace (and the lab's devices) alive: raise the flag, then wake
    /// each thread's accept with one connection from the client's namespace.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = in_ns(self.client_ns.clone(), move || {
            for _ in 0..WORKERS {
                let _ = connect(SocketAddr::from((POD_B, TARGET_PORT)));
            }
            Ok(())
        });
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn exchange(s: &mut TcpStream, buf: &mut [u8; MESSAGE]) -> Result<(), String> {
    s.write_all(buf).map_err(|e| format!("send: {e}"))?;
    s.read_exact(buf).map_err(|e| match e.kind() {
        ErrorKind::UnexpectedEof => "the server closed the connection".to_string(),
        _ => format!("receive: {e}"),
    })
}

fn connect(to: SocketAddr) -> Result<TcpStream, String> {
    let s = TcpStream::connect_timeout(&to, TIMEOUT).map_err(|e| format!("connect {to}: {e}"))?;
    s.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
    s.set_read_timeout(Some(TIMEOUT))
        .map_err(|e| format!("timeout: {e}"))?;
    Ok(s)
}

/// connect + request + answer + close.
fn fresh_once(to: SocketAddr, buf: &mut [u8; MESSAGE]) -> Result<Duration, String> {
    let t = Instant::now();
    let mut s = connect(to)?;
    exchange(&mut s, buf).map_err(|e| format!("{to}: {e}"))?;
    drop(s);
    Ok(t.elapsed())
}

/// `requests` fresh-connection requests to each target, alternating
/// batches, after one unmeasured batch each (neighbour entries, caches).
fn fresh(targets: [SocketAddr; 2], requests: usize) -> Result<[Vec<Duration>; 2], String> {
    let mut buf = [0x5au8; MESSAGE];
    for to in targets {
        for _ in 0..BATCH {
            fresh_once(to, &mut buf)?;
        }
    }
    let mut out = [Vec::with_capacity(requests), Vec::with_capacity(requests)];
    while out[1].len() < requests {
        for (i, to) in targets.iter().enumerate() {
            for _ in 0..BATCH.min(requests - out[i].len()) {
                out[i].push(fresh_once(*to, &mut buf)?);
            }
        }
    }
    Ok(out)
}

/// `requests` round trips to each target: each batch on a connection of
/// its own, opened (and warmed) before the clock starts. One connection per target for the whole run let a single
/// connection's state (its congestion control's pacing) decide a whole
/// series: one run measured 41 µs on one and 116 µs on the other.
fn persistent(targets: [SocketAddr; 2], requests: usize) -> Result<[Vec<Duration>; 2], String> {
    let mut buf = [0x5au8; MESSAGE];
    let mut out = [Vec::with_capacity(requests), Vec::with_capacity(requests)];
    while out[1].len() < requests {
        for (i, to) in targets.iter().enumerate() {
            let mut s = connect(*to)?;
            for _ in 0..WARM {
                exchange(&mut s, &mut buf)?;
            }
            for _ in 0..BATCH.min(requests - out[i].len()) {
                let t = Instant::now();
                exchange(&mut s, &mut buf)?;
                out[i].push(t.elapsed());
            }
        }
    }
    Ok(out)
}

/// Run `f` on a thread inside network namespace `ns`.
fn in_ns<T: Send + 'static>(
    ns: String,
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    std::thread::spawn(move || {
        enter(&ns)?;
        f()
    })
    .join()
    .map_err(|_| "a measuring thread panicked".to_string())?
}

/// Build the lab, load the Service in both hosts, measure.
pub fn run(requests: usize) -> Result<LatencyReport, String> {
    let requests = requests.max(BATCH);
    let (lab, a, b) = vxlan_lab()?;
    let (svc, slice) = (service()?, slice()?);
    load_proxy(&a, &svc, &slice)?;
    load_proxy(&b, &svc, &slice)?;
    let echo = Echo::start(lab.ns("pb"), lab.ns("pa"))?;
    let pod = SocketAddr::from((POD_B, TARGET_PORT));
    let vip = SocketAddr::from((CLUSTER_IP, SERVICE_PORT));
    let result = (|| {
        let [f_pod, f_vip] = in_ns(lab.ns("pa"), move || fresh([pod, vip], requests))
            .map_err(|e| format!("new connections from pod A: {e}"))?;
        let [p_pod, p_vip] = in_ns(lab.ns("pa"), move || persistent([pod, vip], requests))
            .map_err(|e| format!("a kept-open connection from pod A: {e}"))?;
        let [_, hairpin] = in_ns(lab.ns("pb"), move || {
            fresh([pod, vip], (requests / 2).max(BATCH))
        })
        .map_err(|e| format!("new connections from pod B (hairpin): {e}"))?;
        Ok(LatencyReport {
            fresh: Pair {
                pod_ip: Stats::of(f_pod),
                cluster_ip: Stats::of(f_vip),
            },
            persistent: Pair {
                pod_ip: Stats::of(p_pod),
                cluster_ip: Stats::of(p_vip),
            },
            hairpin: Stats::of(hairpin),
        })
    })();
    drop(echo);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_series() {
        let us = |n: u64| Duration::from_micros(n);
        // 1..=100 µs, shuffled: p50 is the 51st value, p99 the 100th.
        let mut v: Vec<Duration> = (1..=100).map(us).collect();
        v.reverse();
        let s = Stats::of(v);
        assert_eq!(s.count, 100);
        assert_eq!(s.p50_us, 51.0);
        assert_eq!(s.p99_us, 100.0);
        let one = Stats::of(vec![us(7)]);
        assert_eq!((one.p50_us, one.p99_us), (7.0, 7.0));
    }

    #[test]
    fn ratio_is_of_medians() {
        let s = |p50_us| Stats {
            count: 1,
            p50_us,
            p99_us: 1000.0,
        };
        let p = Pair {
            pod_ip: s(200.0),
            cluster_ip: s(230.0),
        };
        assert!((p.ratio() - 1.15).abs() < 1e-9);
    }

    #[test]
    fn the_service_objects_parse() {
        let svc = service().unwrap();
        assert_eq!(
            svc.spec.unwrap().cluster_ip.as_deref(),
            Some("10.43.100.10")
        );
        let sl = slice().unwrap();
        let eps = sl.endpoints.unwrap();
        assert_eq!(eps[0].addresses, vec!["10.42.2.5".to_string()]);
    }
}
