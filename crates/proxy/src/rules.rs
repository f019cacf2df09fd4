//! The desired nftables state: a pure function of Services, EndpointSlices,
//! this node's name and addresses, and the cluster CIDR.
//!
//! Layout (one table `ip <table>`, after the tested host-probe ruleset and
//! kube-proxy's nftables mode):
//! - `service-ips` maps `daddr . l4proto . dport` of ClusterIPs, external
//!   IPs and load-balancer IPs to a per-service-port chain;
//!   `service-nodeports` maps `l4proto . dport` on node addresses.
//! - `svc-<key>` picks one of the cluster-wide endpoints and DNATs to it
//!   in one rule, `dnat to numgen random mod N map @eps-<key>`, where
//!   `eps-<key>` is a named map `index → ip . port`; `svl-<key>` the same
//!   over this node's endpoints (`epl-<key>`, traffic policy `Local`);
//!   `ext-<key>` is the entry for traffic to external destinations
//!   (NodePort, external IPs, load-balancer IPs).
//! - So the table has a few chains per service-port, not one per endpoint,
//!   and no anonymous sets outside ClientIP affinity. Both matter for the
//!   kernel's cost of a transaction (measured with 1,000 Services × 10
//!   endpoints): every anonymous set bound in a transaction scans the whole
//!   transaction (`__nft_set_trans_bind`), so a per-chain `numgen … vmap
//!   { … }` made a full load quadratic; and every transaction that adds a
//!   rule revalidates all chains reachable from the base chains, which were
//!   ~12,000 with per-endpoint chains. Named maps are bound without that
//!   scan, and an endpoint change is just element deletes and adds in one
//!   map (plus the service chain's rule when the endpoint count changes).
//!   One shared map with an index range per service (`numgen … offset`)
//!   was measured too: slower to load, and it would need index allocation
//!   that stays stable across syncs.
//! - `sessionAffinity: ClientIP` keeps upstream's per-endpoint layout:
//!   `ep-<key>__<ip>/<port>` chains that record the client in a timed set
//!   (`aff-…`) before DNAT, reached through `numgen random … vmap`.
//! - Masquerading goes by mark: traffic to a ClusterIP from outside the
//!   cluster CIDR, external traffic under policy `Cluster`, and an endpoint
//!   reaching itself (hairpin). Hairpin traffic is recognised after DNAT,
//!   in `nat-postrouting`: a DNATed packet whose `saddr . daddr` is in the
//!   `hairpin` set of `ip . ip` pairs, one per endpoint address. Under
//!   external policy `Local` the client address is kept.
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
/// The declaration of a service-port's endpoint map: the index `numgen`
/// draws to the endpoint's address and port. `typeof`, because nft 1.0.6
/// has no named integer type that matches `numgen`'s; and the port typed by
/// the service's own protocol, because nft refuses a map typed `tcp dport`
/// in a UDP rule, and one typed `th dport` in any rule that a later `nft`
/// run adds (it reads the type back from the kernel).
fn endpoint_map_def(proto: &str) -> String {
    format!("typeof numgen random mod 1 : ip daddr . {proto} dport ;")
}
/// The set of `ip . ip` pairs (one per endpoint address) that marks a
/// DNATed packet from an endpoint to itself.
const HAIRPIN_SET: &str = "hairpin";

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
    /// The endpoint carries node hints (`hints.forNodes`).
    node_hinted: bool,
    /// Its node hints name this node.
    hinted_here: bool,
}

/// upstream's endpoint choice: the ready ones; if none is ready, the ones
/// still serving while terminating (so connections drain during a rollout).
/// For the cluster-wide set, node hints (`trafficDistribution:
/// PreferSameNode`) narrow the ready ones to those hinted for this node
/// when every ready endpoint has node hints and one names this node, as
/// upstream's topology mode does. Zone hints are not used: the proxy does
/// not know its node's zone, which upstream treats as no zone.
fn usable(eps: &[Ep], local_only: bool) -> Vec<Ep> {
    let cand: Vec<Ep> = eps
        .iter()
        .filter(|e| !local_only || e.local)
        .copied()
        .collect();
    let ready: Vec<Ep> = cand.iter().filter(|e| e.ready).copied().collect();
    if !ready.is_empty() {
        let same_node = !local_only
            && ready.iter().all(|e| e.node_hinted)
            && ready.iter().any(|e| e.hinted_here);
        if same_node {
            return ready.into_iter().filter(|e| e.hinted_here).collect();
        }
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
            let for_nodes = e.hints.as_ref().and_then(|h| h.for_nodes.as_deref());
            let node_hinted = for_nodes.is_some_and(|n| !n.is_empty());
            let hinted_here = for_nodes.is_some_and(|n| n.iter().any(|f| f.name == node));
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
                    node_hinted,
                    hinted_here,
                };
                // Duplicates (a pod moving between slices) keep the best view.
                out.entry((ip, num))
                    .and_modify(|o: &mut Ep| {
                        o.ready |= ep.ready;
                        o.serving_terminating |= ep.serving_terminating;
                        o.local |= ep.local;
                        o.node_hinted |= ep.node_hinted;
                        o.hinted_here |= ep.hinted_here;
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
    // Endpoint addresses, for the hairpin pairs: an address serving several
    // services is one pair.
    let mut hairpin = BTreeSet::new();
    for svc in services {
        let Some(cip) = cluster_ip(svc) else {
            continue;
        };
        let ns = svc.metadata.namespace.as_deref().unwrap_or("");
        let name = svc.metadata.name.as_deref().unwrap_or("");
        let slices = by_service.get(&(ns, name)).cloned().unwrap_or_default();
        for port in svc.spec.iter().flat_map(|s| s.ports.iter().flatten()) {
            service_port(&mut rs, input, svc, cip, port, &slices, &mut hairpin);
        }
    }
    if let Some(h) = rs.sets.get_mut(HAIRPIN_SET) {
        h.elements = hairpin.iter().map(|ip| format!("{ip} . {ip}")).collect();
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
    rs.set(HAIRPIN_SET, "type ipv4_addr . ipv4_addr ;");
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
    // A packet DNATed to the endpoint it came from: without SNAT the
    // endpoint would answer itself directly, bypassing the reverse NAT.
    let hairpin =
        format!("ct status dnat ip saddr . ip daddr @{HAIRPIN_SET} jump mark-for-masquerade");
    rs.base(
        "nat-postrouting",
        "nat",
        "postrouting",
        100,
        &[&hairpin, "jump masquerading"],
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
    hairpin: &mut BTreeSet<Ipv4Addr>,
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
        let eps: BTreeSet<Ipv4Addr> = cluster.iter().map(|e| e.ip).collect();
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
    let lb = |rs: &mut Ruleset, chain: &str, map: &str, eps: &[Ep]| match affinity {
        Some(t) => affinity_chain(rs, chain, &key, proto, eps, t, masq_cluster_ip.as_deref()),
        None => lb_chain(rs, chain, map, proto, eps, masq_cluster_ip.as_deref()),
    };
    lb(rs, &svc_chain, &format!("eps-{key}"), &cluster);
    if need_local && !local.is_empty() {
        lb(rs, &svl_chain, &format!("epl-{key}"), &local);
    }
    for ep in cluster.iter().chain(local.iter()) {
        hairpin.insert(ep.ip);
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

/// A chain that spreads new connections over `eps` and DNATs in the same
/// rule, through the named map `map` (index → endpoint).
fn lb_chain(
    rs: &mut Ruleset,
    chain: &str,
    map: &str,
    proto: &str,
    eps: &[Ep],
    masq_cluster_ip: Option<&str>,
) {
    let elements = eps
        .iter()
        .enumerate()
        .map(|(i, ep)| format!("{i} : {} . {}", ep.ip, ep.port))
        .collect();
    rs.sets.insert(
        map.to_string(),
        Collection {
            def: endpoint_map_def(proto),
            elements,
            dynamic: false,
        },
    );
    let mut rules: Vec<String> = masq_cluster_ip.map(str::to_string).into_iter().collect();
    rules.push(format!(
        "meta l4proto {proto} dnat to numgen random mod {} map @{map}",
        eps.len()
    ));
    *rs.chain(chain) = rules;
}

/// The ClientIP-affinity form of [`lb_chain`]: a client with a live entry
/// in an endpoint's timed set goes back to that endpoint; new clients are
/// spread with `numgen` over per-endpoint chains, which record the client
/// and DNAT (as upstream's nftables mode does).
fn affinity_chain(
    rs: &mut Ruleset,
    chain: &str,
    key: &str,
    proto: &str,
    eps: &[Ep],
    timeout: i32,
    masq_cluster_ip: Option<&str>,
) {
    let mut rules: Vec<String> = masq_cluster_ip.map(str::to_string).into_iter().collect();
    for ep in eps {
        let set = affinity_set(key, ep, timeout);
        rs.sets.insert(
            set.clone(),
            Collection {
                def: format!("type ipv4_addr ; flags dynamic,timeout ; timeout {timeout}s ;"),
                elements: Vec::new(),
                dynamic: true,
            },
        );
        let ep_chain = ep_chain_name(key, ep);
        rules.push(format!("ip saddr @{set} goto {ep_chain}"));
        // svc- and svl- share the chains of the endpoints they both have.
        *rs.chain(&ep_chain) = vec![
            format!("update @{set} {{ ip saddr }}"),
            format!("meta l4proto {proto} dnat to {}:{}", ep.ip, ep.port),
        ];
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
    *rs.chain(chain) = rules;
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
