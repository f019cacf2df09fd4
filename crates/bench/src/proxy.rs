//! The service proxy benchmark (issue 7): how long the proxy takes to
//! program 1,000 Services × 10 endpoints into a fresh nftables table, and
//! then one endpoint change, each the whole way the proxy does it: compute
//! the ruleset from the objects, render the script (whole, or the diff
//! against the previous ruleset) and load it as one transaction, with the
//! applier the proxy uses (libnftables with a context kept open; the `nft`
//! binary if the library is missing). Each round runs in a network namespace of its own, made and
//! removed by the benchmark, so the host's rules are never touched.

use std::fmt;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use proxy::nft::{Nft, NftCommand, NftLib};
use proxy::rules::{compute, Input, NodePortAddresses, Ruleset};
use serde_json::json;

use crate::apiserver::{all_met, goal_table, Goal, Row};
use crate::stats::median;

/// Goal: a full sync of [`SERVICES`] × [`ENDPOINTS`], in ms.
pub const GOAL_FULL_MS: f64 = 1000.0;
/// Goal: one endpoint change after that, in ms.
pub const GOAL_CHANGE_MS: f64 = 50.0;
/// Services in the table.
pub const SERVICES: u32 = 1000;
/// Endpoints per Service.
pub const ENDPOINTS: u32 = 10;
const TABLE: &str = "wharf-bench-proxy";

/// Medians over the rounds.
pub struct ProxyReport {
    pub rounds: usize,
    pub full: Phase,
    pub change: Phase,
    /// Lines of the one-endpoint diff script, and of the full one.
    pub change_lines: usize,
    pub full_lines: usize,
    /// Which applier loaded the scripts.
    pub applier: &'static str,
}

/// One phase's median times.
#[derive(Default)]
pub struct Phase {
    pub compute: Duration,
    pub render: Duration,
    pub apply: Duration,
    pub total: Duration,
}

fn service(i: u32) -> Service {
    serde_json::from_value(json!({
        "metadata": { "name": format!("s{i}"), "namespace": "default" },
        "spec": { "type": "NodePort",
                  "clusterIP": format!("10.43.{}.{}", i / 250, i % 250 + 1),
                  "ports": [{ "port": 80, "targetPort": 8080, "nodePort": 30000 + i }] },
    }))
    .expect("a valid Service")
}

fn slice(i: u32, ips: &[String]) -> EndpointSlice {
    let eps: Vec<_> = ips
        .iter()
        .map(
            |ip| json!({ "addresses": [ip], "nodeName": "bench", "conditions": { "ready": true } }),
        )
        .collect();
    serde_json::from_value(json!({
        "metadata": { "name": format!("s{i}-x"), "namespace": "default",
                      "labels": { "kubernetes.io/service-name": format!("s{i}") } },
        "addressType": "IPv4",
        "ports": [{ "port": 8080, "protocol": "TCP" }],
        "endpoints": eps,
    }))
    .expect("a valid EndpointSlice")
}

fn ruleset(services: &[Service], slices: &[EndpointSlice]) -> Ruleset {
    compute(&Input {
        table: TABLE,
        services: services.iter().collect(),
        slices: slices.iter().collect(),
        node_name: "bench",
        node_ips: vec![Ipv4Addr::new(192, 168, 77, 1)],
        nodeport_addresses: NodePortAddresses::Primary,
        cluster_cidr: Some("10.42.0.0/16".parse().expect("a CIDR")),
    })
}

/// A network namespace of the benchmark's, deleted on drop.
struct Netns(String);

impl Netns {
    fn new(round: usize) -> Result<Self> {
        let name = format!("wharf-bench-proxy-{}-{round}", std::process::id());
        let out = std::process::Command::new("ip")
            .args(["netns", "add", &name])
            .output()
            .context("running ip netns add")?;
        if !out.status.success() {
            bail!(
                "ip netns add {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(Netns(name))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .output();
    }
}

/// Run `rounds` rounds (each: a fresh namespace, the full sync, then one
/// endpoint change) and report the medians. Needs root.
pub fn run(rounds: usize) -> Result<ProxyReport> {
    let services: Vec<Service> = (0..SERVICES).map(service).collect();
    let ips = |i: u32| -> Vec<String> {
        (0..ENDPOINTS)
            .map(|j| format!("10.42.{}.{}", i / 25, (i % 25) * 10 + j + 1))
            .collect()
    };
    let slices: Vec<EndpointSlice> = (0..SERVICES).map(|i| slice(i, &ips(i))).collect();
    let mut full = Vec::new();
    let mut change = Vec::new();
    let (mut full_lines, mut change_lines) = (0, 0);
    let mut applier = "";
    for round in 0..rounds.max(1) {
        let ns = Netns::new(round)?;
        let nft: Box<dyn Nft> = match NftLib::new(Some(&ns.0)) {
            Ok(lib) => {
                applier = "libnftables with a context kept open, as the proxy";
                Box::new(lib)
            }
            Err(e) => {
                applier = "the nft binary through `ip netns exec` (libnftables did not load)";
                eprintln!("[bench] {e}");
                Box::new(NftCommand {
                    netns: Some(ns.0.clone()),
                })
            }
        };
        let t = Instant::now();
        let first = ruleset(&services, &slices);
        let compute_t = t.elapsed();
        let script = first.render(None);
        let render_t = t.elapsed() - compute_t;
        nft.apply(&script).context("loading the full ruleset")?;
        let total = t.elapsed();
        full.push((compute_t, render_t, total - compute_t - render_t, total));
        full_lines = script.lines().count();

        // One endpoint of one Service is replaced.
        let mut changed = slices.clone();
        let i = 500 + round as u32;
        let mut moved = ips(i);
        moved[0] = format!("10.42.99.{}", round + 1);
        changed[i as usize] = slice(i, &moved);
        let t = Instant::now();
        let second = ruleset(&services, &changed);
        let compute_t = t.elapsed();
        let script = second.diff(&first);
        let render_t = t.elapsed() - compute_t;
        nft.apply(&script)
            .context("loading the one-endpoint change")?;
        let total = t.elapsed();
        change.push((compute_t, render_t, total - compute_t - render_t, total));
        change_lines = script.lines().count();
        eprintln!(
            "[bench] proxy round {}: full sync {:?}, one endpoint change {:?}",
            round + 1,
            full.last().expect("pushed").3,
            total
        );
    }
    let phase = |v: &[(Duration, Duration, Duration, Duration)]| {
        let pick = |f: fn(&(Duration, Duration, Duration, Duration)) -> Duration| {
            median(&v.iter().map(f).collect::<Vec<_>>()).unwrap_or_default()
        };
        Phase {
            compute: pick(|x| x.0),
            render: pick(|x| x.1),
            apply: pick(|x| x.2),
            total: pick(|x| x.3),
        }
    };
    Ok(ProxyReport {
        rounds: rounds.max(1),
        full: phase(&full),
        change: phase(&change),
        change_lines,
        full_lines,
        applier,
    })
}

impl ProxyReport {
    fn rows(&self) -> Vec<Row> {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let row = |label: &str, d: Duration, goal: Option<Goal>| Row {
            label: label.into(),
            value: ms(d),
            decimals: 1,
            unit: " ms",
            goal,
        };
        vec![
            row(
                "full sync, 1,000 Services x 10 endpoints (ms)",
                self.full.total,
                Some(Goal::AtMost(GOAL_FULL_MS)),
            ),
            row("  of which computing the ruleset", self.full.compute, None),
            row("  of which rendering the script", self.full.render, None),
            row("  of which applying it", self.full.apply, None),
            row(
                "one endpoint change after it (ms)",
                self.change.total,
                Some(Goal::AtMost(GOAL_CHANGE_MS)),
            ),
            row(
                "  of which computing the ruleset",
                self.change.compute,
                None,
            ),
            row("  of which the diff", self.change.render, None),
            row("  of which applying it", self.change.apply, None),
        ]
    }

    /// Whether both goals were met.
    pub fn all_goals_met(&self) -> bool {
        all_met(&self.rows())
    }
}

impl fmt::Display for ProxyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (table, goals, met) = goal_table(&self.rows());
        write!(f, "{table}")?;
        writeln!(
            f,
            "\nSetup: the proxy's own code (crate proxy: rules::compute, the script's render or diff, \
             applied by {}) in a fresh network namespace per round, {} rounds, medians. \
             The full script is {} lines; the one-endpoint diff {} lines. Goals: full sync <= {} ms, \
             one endpoint change <= {} ms. Goals met: {met} of {goals}.",
            self.applier, self.rounds, self.full_lines, self.change_lines, GOAL_FULL_MS, GOAL_CHANGE_MS
        )
    }
}
