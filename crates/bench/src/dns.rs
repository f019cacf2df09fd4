//! The cluster DNS benchmark (issue 7): queries per second answered by the
//! DNS server's own UDP listener (crate `dns`: `server::serve_udp` with a
//! zone built by `records::Table::build`) for a zone of 1,000 Services.
//!
//! The server runs on a multi-threaded runtime of its own, as in
//! `wharf server`; the clients are [`CLIENTS`] UDP sockets on another
//! runtime in the same process, each with one query in flight (a closed
//! loop), asking A records of random Services, and every answer is checked
//! (ID, NOERROR, one answer). The clients share the machine's CPUs with the
//! server, so the rate is a floor.

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::Service;
use serde_json::json;

use crate::apiserver::{all_met, goal_table, Goal, Row};

/// Goal: queries answered per second.
pub const GOAL_QPS: f64 = 20_000.0;
/// Services in the zone.
pub const SERVICES: u32 = 1000;
/// Concurrent client sockets.
pub const CLIENTS: usize = 16;

/// What the run measured.
pub struct DnsReport {
    pub answered: u64,
    pub wrong: u64,
    pub lost: u64,
    pub elapsed: Duration,
    pub p50: Duration,
    pub p99: Duration,
}

/// A query for the A record of `name`, with ID `id` (RFC 1035 wire format).
fn query(id: u16, name: &str) -> Vec<u8> {
    let mut q = Vec::with_capacity(64);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]); // RD; 1 question
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]); // root; type A; class IN
    q
}

/// Whether `resp` answers query `id` with NOERROR and exactly one record.
fn good(resp: &[u8], id: u16) -> bool {
    resp.len() >= 12
        && resp[0..2] == id.to_be_bytes()
        && resp[2] & 0x80 != 0
        && resp[3] & 0x0f == 0
        && u16::from_be_bytes([resp[6], resp[7]]) == 1
}

fn zone() -> dns::records::Table {
    let services: Vec<Service> = (0..SERVICES)
        .map(|i| {
            serde_json::from_value(json!({
                "metadata": { "name": format!("s{i}"), "namespace": "default" },
                "spec": { "clusterIP": format!("10.43.{}.{}", i / 250, i % 250 + 1),
                          "ports": [{ "name": "http", "port": 80 }] },
            }))
            .expect("a valid Service")
        })
        .collect();
    dns::records::Table::build("cluster.local", &services, &[])
}

/// Serve the zone on a loopback port and query it for `run_for`.
pub fn run(run_for: Duration) -> Result<DnsReport> {
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let shared = Arc::new(dns::server::Shared {
        table: RwLock::new(Arc::new(zone())),
        upstreams: Vec::new(),
    });
    let addr: SocketAddr = server_rt.block_on(async {
        let sock = tokio::net::UdpSocket::bind("127.0.0.1:0")
            .await
            .context("binding the DNS socket")?;
        let addr = sock.local_addr()?;
        tokio::spawn(dns::server::serve_udp(Arc::new(sock), shared));
        anyhow::Ok(addr)
    })?;

    let client_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let stop = Arc::new(AtomicBool::new(false));
    let (answered, wrong, lost) = (
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
        Arc::new(AtomicU64::new(0)),
    );
    let started = Instant::now();
    let mut latencies: Vec<Duration> = client_rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let (stop, answered, wrong, lost) =
                (stop.clone(), answered.clone(), wrong.clone(), lost.clone());
            tasks.push(tokio::spawn(async move {
                let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
                sock.connect(addr).await?;
                let mut buf = vec![0u8; 1500];
                let mut lat = Vec::new();
                let mut n: u32 = c as u32 * 7919;
                while !stop.load(Ordering::Relaxed) {
                    n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    let id = (n >> 16) as u16;
                    let name = format!("s{}.default.svc.cluster.local", (n >> 8) % SERVICES);
                    let t = Instant::now();
                    sock.send(&query(id, &name)).await?;
                    match tokio::time::timeout(Duration::from_secs(1), sock.recv(&mut buf)).await {
                        Ok(Ok(len)) if good(&buf[..len], id) => {
                            answered.fetch_add(1, Ordering::Relaxed);
                            lat.push(t.elapsed());
                        }
                        Ok(Ok(_)) => {
                            wrong.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(Err(e)) => return Err(anyhow::Error::from(e)),
                        Err(_) => {
                            lost.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                anyhow::Ok(lat)
            }));
        }
        tokio::time::sleep(run_for).await;
        stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.context("a DNS client panicked")??);
        }
        anyhow::Ok(all)
    })?;
    let elapsed = started.elapsed();
    drop(server_rt);
    if latencies.is_empty() {
        bail!("no query was answered");
    }
    latencies.sort();
    let pick = |p: f64| crate::stats::percentile(&latencies, p).unwrap_or_default();
    Ok(DnsReport {
        answered: answered.load(Ordering::Relaxed),
        wrong: wrong.load(Ordering::Relaxed),
        lost: lost.load(Ordering::Relaxed),
        elapsed,
        p50: pick(50.0),
        p99: pick(99.0),
    })
}

impl DnsReport {
    fn rows(&self) -> Vec<Row> {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        vec![
            Row {
                label: "queries answered per second".into(),
                value: self.answered as f64 / self.elapsed.as_secs_f64(),
                decimals: 0,
                unit: "",
                goal: Some(Goal::AtLeast(GOAL_QPS)),
            },
            Row {
                label: "latency p50 (ms)".into(),
                value: ms(self.p50),
                decimals: 3,
                unit: " ms",
                goal: None,
            },
            Row {
                label: "latency p99 (ms)".into(),
                value: ms(self.p99),
                decimals: 3,
                unit: " ms",
                goal: None,
            },
            Row {
                label: "wrong or lost answers".into(),
                value: (self.wrong + self.lost) as f64,
                decimals: 0,
                unit: "",
                goal: Some(Goal::AtMost(0.0)),
            },
        ]
    }

    /// Whether every goal was met.
    pub fn all_goals_met(&self) -> bool {
        all_met(&self.rows())
    }
}

impl fmt::Display for DnsReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (table, goals, met) = goal_table(&self.rows());
        write!(f, "{table}")?;
        writeln!(
            f,
            "\nSetup: the cluster DNS's UDP server (crate dns) on 127.0.0.1 with a zone of {SERVICES} Services, \
             on a 2-thread runtime; {CLIENTS} client sockets in the same process (one more thread), one \
             query in flight each, A records of random Services, every answer checked; {} answered, \
             {} wrong, {} lost in {:.1} s. Goal: >= {} queries/s. Goals met: {met} of {goals}.",
            self.answered,
            self.wrong,
            self.lost,
            self.elapsed.as_secs_f64(),
            GOAL_QPS
        )
    }
}
