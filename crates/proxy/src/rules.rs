//! The desired nftables state: a pure function of Services, EndpointSlices,
//! this node's name and addresses, and the cluster CIDR.
//!
//! Layout (one table `ip <table>`, after the tested host-probe ruleset and
//! kube-proxy's nftables mode):
//! - `service-ips` maps `daddr . l4proto . dport` of ClusterIPs, external
//!   IPs and load-balancer IPs to a per-service-port chain;
//!   `service-nodeports` maps `l4proto . dport` on node addresses.
//! - `svc-<key>` picks one of the cluster-wide endpoints with
//!   `numgen random`; `svl-<key>` the same over this node's endpoints
//!   (traffic policy `Local`); `ext-<key>` is the entry for traffic to
//!   external destinations (NodePort, external IPs, load-balancer IPs);
//!   `ep-<key>__<ip>/<port>` DNATs to one endpoint.
//! - Masquerading goes by mark: traffic to a ClusterIP from outside the
//!   cluster CIDR, an endpoint reaching itself (hairpin), external traffic
//!   under policy `Cluster`. Under external policy `Local` the client
//!   address is kept.
//! - Services without usable endpoints are in `no-endpoint-*` maps read by
//!   filter chains that reject new connections at once.
//!
//! Only IPv4 is done: IPv6 ClusterIPs and IPv6 EndpointSlices are skipped.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use k8s_openapi::api::core::v1::{Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// The mark bit that asks `masquerading` to SNAT a packet.
pub const MASQ_MARK: u32 = 0x4000;
/// Priority of the nat hooks: dstnat (-100), written as a number because
/// nft 1.0.6 rejects `dstnat` on the output hook.
const NAT_PRIORITY: i32 = -100;
/// The filter chains run before DNAT on output (-100) so that the VIP is
/// still the destination there.
const FILTER_PRIORITY: i32 = -110;
/// upstream's default `sessionAffinityConfig.clientIP.timeoutSeconds`.
const DEFAULT_AFFINITY_TIMEOUT: i32 = 10800;
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// An IPv4 prefix such as `10.42.0.0/16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        };
        u32::from(ip) & mask == u32::from(self.addr) & mask
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s.split_once('/').unwrap_or((s, "32"));
        let addr = a
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IPv4 CIDR"))?;
        let prefix: u8 = p
            .trim()
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("{s:?} has no valid prefix length"))?;
        Ok(Cidr { addr, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Which local addresses accept NodePorts (kube-proxy's `--nodeport-addresses`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodePortAddresses {
    /// The node's own addresses from its Node object (kube-proxy's default
    /// in nftables mode, `primary`).
    Primary,
    /// Every local address inside one of these prefixes.
    Cidrs(Vec<Cidr>),
}

/// Everything the ruleset depends on.
pub struct Input<'a> {
    pub table: &'a str,
    pub services: Vec<&'a Service>,
    pub slices: Vec<&'a EndpointSlice>,
    pub node_name: &'a str,
    /// This node's addresses (from its Node object), for `Primary`.
    pub node_ips: Vec<Ipv4Addr>,
    pub nodeport_addresses: NodePortAddresses,
    /// The pod network; traffic to a ClusterIP from outside it is masqueraded.
    pub cluster_cidr: Option<Cidr>,
}

/// A chain: its base-chain header (hook) if any, and its rules in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Chain {
    pub header: Option<String>,
    pub rules: Vec<String>,
}

/// A named set or map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Collection {
    /// The body of its declaration (`type …; flags …;`).
    pub def: String,
    pub elements: Vec<String>,
    /// Session-affinity sets are filled by the kernel: re-declared, never
    /// flushed, so a re-apply keeps the clients' affinity.
    pub dynamic: bool,
}

/// The desired contents of the table.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ruleset {
    pub table: String,
    pub chains: BTreeMap<String, Chain>,
    pub sets: BTreeMap<String, Collection>,
    /// The UDP destinations and the endpoints they lead to: not rules, but
    /// what the conntrack cleanup after an apply compares
    /// (`crate::conntrack`).
    pub udp: crate::conntrack::UdpTargets,
}

impl Ruleset {
    /// Rules plus set and map elements: what the kernel has to hold.
    pub fn size(&self) -> usize {
        self.chains.values().map(|c| c.rules.len()).sum::<usize>()
            + self.sets.values().map(|s| s.elements.len()).sum::<usize>()
    }

    fn chain(&mut self, name: &str) -> &mut Vec<String> {
        &mut self.chains.entry(name.to_string()).or_default().rules
    }

    fn base(&mut self, name: &str, kind: &str, hook: &str, prio: i32, rules: &[&str]) {
        self.chains.insert(
            name.into(),
            Chain {
                header: Some(format!(
                    "type {kind} hook {hook} priority {prio} ; policy accept ;"
                )),
                rules: rules.iter().map(|r| r.to_string()).collect(),
            },
        );
    }

    fn set(&mut self, name: &str, def: &str) {
        self.sets.insert(
            name.into(),
            Collection {
                def: def.into(),
                elements: Vec::new(),
                dynamic: false,
            },
        );
    }

    fn element(&mut self, set: &str, e: String) {
        if let Some(s) = self.sets.get_mut(set) {
            s.elements.push(e);
        }
    }
}

/// One endpoint of one service port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Ep {
    ip: Ipv4Addr,
    port: u16,
    local: bool,
    ready: bool,
    serving_terminating: bool,
}

/// upstream's endpoint choice: the ready ones; if none is ready, the ones
/// still serving while terminating (so connections drain during a rollout).
fn usable(eps: &[Ep], local_only: bool) -> Vec<Ep> {
    let cand: Vec<Ep> = eps
        .iter()
        .filter(|e| !local_only || e.local)
        .copied()
        .collect();
    let ready: Vec<Ep> = cand.iter().filter(|e| e.ready).copied().collect();
    if !ready.is_empty() {
        return ready;
    }
    cand.into_iter().filter(|e| e.serving_terminating).collect()
}

fn proto_of(p: Option<&str>) -> &'static str {
    match p.unwrap_or("TCP") {
        "UDP" => "udp",
        "SCTP" => "sctp",
        _ => "tcp",
    }
}

/// The endpoints a slice set offers for `port` (matched by port name and
/// protocol; the slice's port number is the resolved target port, so
/// named target ports work), deduplicated by address and port.
fn endpoints_for(port: &ServicePort, slices: &[&EndpointSlice], node: &str) -> Vec<Ep> {
    let name = port.name.as_deref().unwrap_or("");
    let proto = proto_of(port.protocol.as_deref());
    let mut out = BTreeMap::new();
    for sl in slices {
        if sl.address_type != "IPv4" {
            continue;
        }
        let Some(num) = sl.ports.iter().flatten().find_map(|p| {
            (p.name.as_deref().unwrap_or("") == name && proto_of(p.protocol.as_deref()) == proto)
                .then_some(p.port)
                .flatten()
        }) else {
            continue;
        };
        let Ok(num) = u16::try_from(num) else {
            continue;
        };
        for e in sl.endpoints.iter().flatten() {
            let c = e.conditions.clone().unwrap_or_default();
            // upstream: an unknown (nil) ready counts as ready, serving
            // defaults to ready, terminating to false.
            let ready = c.ready.unwrap_or(true);
            let serving = c.serving.unwrap_or(ready);
            let terminating = c.terminating.unwrap_or(false);
            let local = e.node_name.as_deref() == Some(node);
            for a in &e.addresses {
                let Ok(ip) = a.parse::<Ipv4Addr>() else {
                    continue;
                };
                let ep = Ep {
                    ip,
                    port: num,
                    local,
                    ready: ready && !terminating,
                    serving_terminating: serving && terminating,
                };
                // Duplicates (a pod moving between slices) keep the best view.
                out.entry((ip, num))
                    .and_modify(|o: &mut Ep| {
                        o.ready |= ep.ready;
                        o.serving_terminating |= ep.serving_terminating;
                        o.local |= ep.local;
                    })
                    .or_insert(ep);
            }
        }
    }
    out.into_values().collect()
}

/// The IPv4 ClusterIP of a proxied service: none for headless or
/// ExternalName services.
fn cluster_ip(svc: &Service) -> Option<Ipv4Addr> {
    let spec = svc.spec.as_ref()?;
    if spec.type_.as_deref() == Some("ExternalName") {
        return None;
    }
    let ips = spec.cluster_ips.clone().unwrap_or_default();
    let first = spec.cluster_ip.iter().chain(ips.iter());
    first.filter_map(|ip| ip.parse::<Ipv4Addr>().ok()).next()
}

/// Addresses that count as external destinations: `externalIPs` and, for
/// LoadBalancer services, the ingress IPs (not those with `ipMode: Proxy`,
/// which the load balancer terminates itself). The second list is the
/// load-balancer IPs alone.
fn external_ips(svc: &Service) -> (Vec<Ipv4Addr>, Vec<Ipv4Addr>) {
    let spec = svc.spec.as_ref();
    let mut out: Vec<Ipv4Addr> = spec
        .and_then(|s| s.external_ips.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|ip| ip.parse().ok())
        .collect();
    let mut lb = Vec::new();
    if spec.and_then(|s| s.type_.as_deref()) == Some("LoadBalancer") {
        let ingress = svc
            .status
            .as_ref()
            .and_then(|s| s.load_balancer.as_ref())
            .and_then(|l| l.ingress.as_ref());
        for i in ingress.into_iter().flatten() {
            if i.ip_mode.as_deref() == Some("Proxy") {
                continue;
            }
            if let Some(ip) = i.ip.as_ref().and_then(|ip| ip.parse().ok()) {
                lb.push(ip);
            }
        }
    }
    lb.sort();
    lb.dedup();
    out.extend(&lb);
    out.sort();
    out.dedup();
    (out, lb)
}

/// The desired ruleset for `input`.
pub fn compute(input: &Input<'_>) -> Ruleset {
    let mut rs = Ruleset {
        table: input.table.to_string(),
        ..Ruleset::default()
    };
    base_chains(&mut rs, input);

    let mut by_service: HashMap<(&str, &str), Vec<&EndpointSlice>> = HashMap::new();
    for sl in &input.slices {
        let ns = sl.metadata.namespace.as_deref().unwrap_or("");
        if let Some(svc) = sl
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        {
            by_service.entry((ns, svc.as_str())).or_default().push(sl);
        }
    }
    let mut services = input.services.clone();
    services.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    for svc in services {
        let Some(cip) = cluster_ip(svc) else {
            continue;
        };
        let ns = svc.metadata.namespace.as_deref().unwrap_or("");
        let name = svc.metadata.name.as_deref().unwrap_or("");
        let slices = by_service.get(&(ns, name)).cloned().unwrap_or_default();
        for port in svc.spec.iter().flat_map(|s| s.ports.iter().flatten()) {
            service_port(&mut rs, input, svc, cip, port, &slices);
        }
    }
    rs
}

fn base_chains(rs: &mut Ruleset, input: &Input<'_>) {
    rs.set(
        "service-ips",
        "type ipv4_addr . inet_proto . inet_service : verdict ;",
    );
    rs.set(
        "service-nodeports",
        "type inet_proto . inet_service : verdict ;",
    );
    rs.set(
        "no-endpoint-services",
        "type ipv4_addr . inet_proto . inet_service : verdict ;",
    );
    rs.set(
        "firewall-ips",
        "type ipv4_addr . inet_proto . inet_service : verdict ;",
    );
    rs.set(
        "no-endpoint-nodeports",
        "type inet_proto . inet_service : verdict ;",
    );
    // Locally generated packets to 127.0.0.0/8 would need route_localnet
    // to be DNATed to a pod; kube-proxy's nftables mode does not serve
    // NodePorts on localhost either, so neither do we.
    let nodeport_match = match &input.nodeport_addresses {
        NodePortAddresses::Primary => {
            rs.set("nodeport-ips", "type ipv4_addr ;");
            let mut ips: Vec<Ipv4Addr> = input
                .node_ips
                .iter()
                .copied()
                .filter(|ip| !ip.is_loopback())
                .collect();
            ips.sort();
            ips.dedup();
            for ip in ips {
                rs.element("nodeport-ips", ip.to_string());
            }
            "ip daddr @nodeport-ips".to_string()
        }
        NodePortAddresses::Cidrs(cidrs) => {
            let mut m = "fib daddr type local ip daddr != 127.0.0.0/8".to_string();
            if !cidrs.is_empty() && !cidrs.iter().any(|c| c.prefix == 0) {
                let list: Vec<String> = cidrs.iter().map(Cidr::to_string).collect();
                m.push_str(&format!(" ip daddr {{ {} }}", list.join(", ")));
            }
            m
        }
    };
    rs.base(
        "nat-prerouting",
        "nat",
        "prerouting",
        NAT_PRIORITY,
        &["jump services"],
    );
    rs.base(
        "nat-output",
        "nat",
        "output",
        NAT_PRIORITY,
        &["jump services"],
    );
    rs.base(
        "nat-postrouting",
        "nat",
        "postrouting",
        100,
        &["jump masquerading"],
    );
    *rs.chain("masquerading") = vec![
        format!("meta mark & {MASQ_MARK:#x} == 0 return"),
        format!("meta mark set meta mark ^ {MASQ_MARK:#x}"),
        "masquerade fully-random".into(),
    ];
    *rs.chain("mark-for-masquerade") = vec![format!("meta mark set meta mark | {MASQ_MARK:#x}")];
    *rs.chain("services") = vec![
        "ip daddr . meta l4proto . th dport vmap @service-ips".into(),
        format!("{nodeport_match} meta l4proto . th dport vmap @service-nodeports"),
    ];
    let check = ["ct state new jump endpoints-check"];
    rs.base("filter-input", "filter", "input", FILTER_PRIORITY, &check);
    rs.base(
        "filter-forward",
        "filter",
        "forward",
        FILTER_PRIORITY,
        &check,
    );
    rs.base(
        "filter-output",
        "filter",
        "output",
        FILTER_PRIORITY,
        &["jump firewall-check", check[0]],
    );
    // Before DNAT, while the load-balancer IP is still the destination.
    rs.base(
        "filter-prerouting",
        "filter",
        "prerouting",
        FILTER_PRIORITY,
        &["jump firewall-check"],
    );
    *rs.chain("firewall-check") =
        vec!["ip daddr . meta l4proto . th dport vmap @firewall-ips".into()];
    *rs.chain("endpoints-check") = vec![
        "ip daddr . meta l4proto . th dport vmap @no-endpoint-services".into(),
        format!("{nodeport_match} meta l4proto . th dport vmap @no-endpoint-nodeports"),
    ];
    // A TCP client gets a reset, anything else ICMP port-unreachable: both
    // fail the connection at once instead of a timeout.
    *rs.chain("reject-chain") = vec![
        "meta l4proto tcp reject with tcp reset".into(),
        "reject".into(),
    ];
}

/// The rules of one port of one service.
fn service_port(
    rs: &mut Ruleset,
    input: &Input<'_>,
    svc: &Service,
    cip: Ipv4Addr,
    port: &ServicePort,
    slices: &[&EndpointSlice],
) {
    let spec = svc.spec.as_ref().expect("cluster_ip checked the spec");
    let ns = svc.metadata.namespace.as_deref().unwrap_or("");
    let name = svc.metadata.name.as_deref().unwrap_or("");
    let proto = proto_of(port.protocol.as_deref());
    let Ok(svc_port) = u16::try_from(port.port) else {
        return;
    };
    let key = format!("{ns}/{name}/{proto}/{svc_port}");
    let ty = spec.type_.as_deref().unwrap_or("ClusterIP");
    let node_port = port
        .node_port
        .filter(|_| matches!(ty, "NodePort" | "LoadBalancer"))
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0);
    let (ext_ips, lb_ips) = external_ips(svc);
    // loadBalancerSourceRanges: other clients of the load-balancer IPs are
    // dropped before DNAT (IPv6 ranges are skipped).
    let ranges: Vec<String> = spec
        .load_balancer_source_ranges
        .iter()
        .flatten()
        .filter_map(|r| r.trim().parse::<Cidr>().ok())
        .map(|c| c.to_string())
        .collect();
    if !ranges.is_empty() && !lb_ips.is_empty() {
        let fw = format!("fw-{key}");
        *rs.chain(&fw) = vec![format!("ip saddr != {{ {} }} drop", ranges.join(", "))];
        for ip in &lb_ips {
            rs.element(
                "firewall-ips",
                format!("{ip} . {proto} . {svc_port} : goto {fw}"),
            );
        }
    }
    let has_external = node_port.is_some() || !ext_ips.is_empty();
    let internal_local = spec.internal_traffic_policy.as_deref() == Some("Local");
    let external_local = spec.external_traffic_policy.as_deref() == Some("Local")
        && matches!(ty, "NodePort" | "LoadBalancer");

    let all = endpoints_for(port, slices, input.node_name);
    let cluster = usable(&all, false);
    if proto == "udp" {
        let eps: std::collections::BTreeSet<Ipv4Addr> = cluster.iter().map(|e| e.ip).collect();
        let dests = std::iter::once(Some(cip))
            .chain(ext_ips.iter().map(|ip| Some(*ip)))
            .map(|ip| (ip, svc_port))
            .chain(node_port.map(|p| (None, p)));
        for (ip, port) in dests {
            rs.udp
                .entry(crate::conntrack::UdpDest { ip, port })
                .or_default()
                .extend(eps.iter().copied());
        }
    }
    if cluster.is_empty() {
        // No endpoint anywhere: reject at once, for every destination.
        let reject = "goto reject-chain";
        rs.element(
            "no-endpoint-services",
            format!("{cip} . {proto} . {svc_port} : {reject}"),
        );
        for ip in &ext_ips {
            rs.element(
                "no-endpoint-services",
                format!("{ip} . {proto} . {svc_port} : {reject}"),
            );
        }
        if let Some(np) = node_port {
            rs.element(
                "no-endpoint-nodeports",
                format!("{proto} . {np} : {reject}"),
            );
        }
        return;
    }
    let local = usable(&all, true);
    let need_local = internal_local || (external_local && has_external);

    let affinity = (spec.session_affinity.as_deref() == Some("ClientIP")).then(|| {
        spec.session_affinity_config
            .as_ref()
            .and_then(|c| c.client_ip.as_ref())
            .and_then(|c| c.timeout_seconds)
            .unwrap_or(DEFAULT_AFFINITY_TIMEOUT)
    });
    let masq_cluster_ip = input
        .cluster_cidr
        .map(|c| format!("ip daddr {cip} ip saddr != {c} jump mark-for-masquerade"));

    let svc_chain = format!("svc-{key}");
    let svl_chain = format!("svl-{key}");
    let ext_chain = format!("ext-{key}");
    let mut ep_chains = BTreeSet::new();
    lb_chain(
        rs,
        &svc_chain,
        &key,
        &cluster,
        affinity,
        masq_cluster_ip.as_deref(),
        &mut ep_chains,
    );
    if need_local && !local.is_empty() {
        lb_chain(
            rs,
            &svl_chain,
            &key,
            &local,
            affinity,
            masq_cluster_ip.as_deref(),
            &mut ep_chains,
        );
    }
    for ep in cluster.iter().chain(local.iter()) {
        let chain = ep_chain_name(&key, ep);
        if !ep_chains.remove(&chain) {
            continue;
        }
        let mut rules = vec![format!("ip saddr {} jump mark-for-masquerade", ep.ip)];
        if let Some(t) = affinity {
            rules.push(format!(
                "update @{} {{ ip saddr }}",
                affinity_set(&key, ep, t)
            ));
        }
        rules.push(format!(
            "meta l4proto {proto} dnat to {}:{}",
            ep.ip, ep.port
        ));
        *rs.chain(&chain) = rules;
    }

    // Traffic to the ClusterIP.
    let internal = if !internal_local {
        format!("goto {svc_chain}")
    } else if local.is_empty() {
        // upstream drops (not rejects): endpoints exist, just not here.
        "drop".to_string()
    } else {
        format!("goto {svl_chain}")
    };
    rs.element(
        "service-ips",
        format!("{cip} . {proto} . {svc_port} : {internal}"),
    );
    if !has_external {
        return;
    }
    // Traffic to external destinations.
    let ext = rs.chain(&ext_chain);
    if !external_local {
        ext.push("jump mark-for-masquerade".into());
        ext.push(format!("goto {svc_chain}"));
    } else {
        // Pods and the node itself are not "external": they keep the
        // cluster-wide endpoints (upstream's short-circuit).
        if let Some(c) = input.cluster_cidr {
            ext.push(format!("ip saddr {c} goto {svc_chain}"));
        }
        ext.push("fib saddr type local jump mark-for-masquerade".into());
        ext.push(format!("fib saddr type local goto {svc_chain}"));
        if local.is_empty() {
            ext.push("drop".into());
        } else {
            ext.push(format!("goto {svl_chain}"));
        }
    }
    for ip in &ext_ips {
        rs.element(
            "service-ips",
            format!("{ip} . {proto} . {svc_port} : goto {ext_chain}"),
        );
    }
    if let Some(np) = node_port {
        rs.element(
            "service-nodeports",
            format!("{proto} . {np} : goto {ext_chain}"),
        );
    }
}

fn ep_chain_name(key: &str, ep: &Ep) -> String {
    format!("ep-{key}__{}/{}", ep.ip, ep.port)
}

/// One set per endpoint and timeout: a changed timeout is a new set (nft
/// cannot change a set's timeout in place).
fn affinity_set(key: &str, ep: &Ep, timeout: i32) -> String {
    format!("aff-{key}__{}/{}/{timeout}", ep.ip, ep.port)
}

/// A chain that spreads new connections over `eps`, sending a client
/// with a live affinity entry back to its endpoint first.
fn lb_chain(
    rs: &mut Ruleset,
    chain: &str,
    key: &str,
    eps: &[Ep],
    affinity: Option<i32>,
    masq_cluster_ip: Option<&str>,
    ep_chains: &mut BTreeSet<String>,
) {
    let mut rules = Vec::new();
    rules.extend(masq_cluster_ip.map(str::to_string));
    if let Some(t) = affinity {
        for ep in eps {
            let set = affinity_set(key, ep, t);
            rs.sets.insert(
                set.clone(),
                Collection {
                    def: format!("type ipv4_addr ; flags dynamic,timeout ; timeout {t}s ;"),
                    elements: Vec::new(),
                    dynamic: true,
                },
            );
            rules.push(format!("ip saddr @{set} goto {}", ep_chain_name(key, ep)));
        }
    }
    let targets: Vec<String> = eps
        .iter()
        .enumerate()
        .map(|(i, ep)| format!("{i} : goto {}", ep_chain_name(key, ep)))
        .collect();
    rules.push(format!(
        "numgen random mod {} vmap {{ {} }}",
        eps.len(),
        targets.join(", ")
    ));
    for ep in eps {
        ep_chains.insert(ep_chain_name(key, ep));
    }
    *rs.chain(chain) = rules;
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
