//! The desired state of this node's pod network: a pure function of this
//! node's settings and the Node objects. Each other node's `spec.podCIDR`
//! is routed to it, over VXLAN (flannel's layout: the route goes through
//! the remote VTEP address, the podCIDR's network address, `onlink`; a
//! permanent neighbour entry maps that address to the remote VTEP's MAC,
//! and an FDB entry maps the MAC to the remote node's IP) or, in host-gw
//! mode, straight to the remote node's IP.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use k8s_openapi::api::core::v1::Node;

/// The backend a node uses (published on its Node, so peers of another
/// backend are not mistaken for ours).
pub const ANNOTATION_BACKEND: &str = "network.wharf.dev/backend-type";
/// The node's VTEP MAC (VXLAN only).
pub const ANNOTATION_VTEP_MAC: &str = "network.wharf.dev/vtep-mac";
/// The address the node's tunnel (or host-gw route) ends at; the Node's
/// InternalIP when absent (it differs when `--flannel-iface` names another
/// interface).
pub const ANNOTATION_PUBLIC_IP: &str = "network.wharf.dev/public-ip";

/// An IPv4 prefix such as `10.42.1.0/24`. Ordered, so plans are sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

impl Cidr {
    fn mask(self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// The network address (`10.42.1.0` of `10.42.1.7/24`): the VTEP
    /// address flannel gives each node.
    pub fn network(self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The same prefix with the host bits cleared.
    pub fn normalized(self) -> Cidr {
        Cidr {
            addr: self.network(),
            prefix: self.prefix,
        }
    }

    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr) & self.mask()
    }

    pub fn overlaps(self, other: Cidr) -> bool {
        let p = self.prefix.min(other.prefix);
        let shorter = Cidr {
            addr: self.addr,
            prefix: p,
        };
        shorter.contains(other.addr)
    }
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Cidr, String> {
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| format!("{s:?} is not an IPv4 CIDR"))?;
        let addr = a
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not an IPv4 CIDR"))?;
        let prefix = p
            .trim()
            .parse::<u8>()
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

/// An Ethernet address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac(pub [u8; 6]);

impl FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Mac, String> {
        let bad = || format!("{s:?} is not a MAC address");
        let mut out = [0u8; 6];
        let mut parts = s.trim().split(':');
        for b in &mut out {
            let p = parts.next().ok_or_else(bad)?;
            if p.len() != 2 {
                return Err(bad());
            }
            *b = u8::from_str_radix(p, 16).map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Mac(out))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// How pod traffic reaches other nodes (k3s's `--flannel-backend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Vxlan,
    HostGw,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Vxlan => "vxlan",
            Backend::HostGw => "host-gw",
        }
    }
}

impl FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Backend, String> {
        match s {
            "vxlan" => Ok(Backend::Vxlan),
            "host-gw" => Ok(Backend::HostGw),
            _ => Err(format!("unknown backend {s:?} (vxlan or host-gw)")),
        }
    }
}

/// What this node's plan depends on from one Node object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub pod_cidr: Cidr,
    /// Where its tunnel ends (the public-ip annotation, else InternalIP).
    pub ip: Ipv4Addr,
    pub backend: Option<Backend>,
    pub vtep_mac: Option<Mac>,
}

/// The peer view of a Node, or None when it has no usable IPv4 podCIDR or
/// address yet (it is routed once it has both).
pub fn peer(node: &Node) -> Option<Peer> {
    let name = node.metadata.name.clone()?;
    let pod_cidr: Cidr = node
        .spec
        .as_ref()?
        .pod_cidr
        .as_deref()?
        .parse::<Cidr>()
        .ok()?
        .normalized();
    let ann = node.metadata.annotations.as_ref();
    let get = |k: &str| ann.and_then(|a| a.get(k)).map(String::as_str);
    let internal = || {
        node.status
            .as_ref()?
            .addresses
            .as_ref()?
            .iter()
            .filter(|a| a.type_ == "InternalIP")
            .find_map(|a| a.address.parse::<Ipv4Addr>().ok())
    };
    let ip = match get(ANNOTATION_PUBLIC_IP).and_then(|s| s.parse().ok()) {
        Some(ip) => ip,
        None => internal()?,
    };
    Some(Peer {
        name,
        pod_cidr,
        ip,
        backend: get(ANNOTATION_BACKEND).and_then(|s| s.parse().ok()),
        vtep_mac: get(ANNOTATION_VTEP_MAC).and_then(|s| s.parse().ok()),
    })
}

/// This node's side of the plan.
#[derive(Clone, Debug)]
pub struct Local {
    pub node_name: String,
    pub backend: Backend,
    /// The VXLAN device (its routes, neighbours and FDB entries).
    pub device: String,
    /// The interface host-gw routes leave by.
    pub underlay: String,
    /// Its subnets: a host-gw next hop must be on one of them.
    pub underlay_subnets: Vec<Cidr>,
    /// This node's tunnel address: a peer claiming it (another node on
    /// this very host) cannot be tunnelled to.
    pub ip: Ipv4Addr,
    /// This node's podCIDR, once assigned: no peer may route it away.
    pub pod_cidr: Option<Cidr>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Route {
    pub dst: Cidr,
    pub via: Ipv4Addr,
    pub dev: String,
    /// The gateway is not on a subnet of `dev` (the VTEP addresses).
    pub onlink: bool,
}

/// A permanent neighbour (ARP) entry on `dev`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Neigh {
    pub dev: String,
    pub ip: Ipv4Addr,
    pub mac: Mac,
}

/// A permanent VXLAN forwarding entry: frames for `mac` go to `dst`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fdb {
    pub dev: String,
    pub mac: Mac,
    pub dst: Ipv4Addr,
}

/// Everything this node should have for its peers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Desired {
    pub routes: BTreeSet<Route>,
    pub neighs: BTreeSet<Neigh>,
    pub fdb: BTreeSet<Fdb>,
}

/// The routes, neighbours and FDB entries for `peers` (every Node; our own
/// is skipped by name). Peers without what the backend needs (a VTEP MAC
/// for VXLAN), or that published another backend, are left out; so are
/// peers whose podCIDR overlaps ours or one already planned (the first by
/// name wins), so a reassignment in flight never yields two routes for
/// one prefix. Peers at our own address are skipped, and in host-gw mode
/// so are peers off our underlay's subnets (no next hop reaches them;
/// simulated nodes are such).
pub fn plan(local: &Local, peers: &[Peer]) -> Desired {
    let mut by_name: BTreeMap<&str, &Peer> = BTreeMap::new();
    for p in peers {
        if p.name != local.node_name {
            by_name.insert(&p.name, p);
        }
    }
    let mut taken: Vec<Cidr> = local.pod_cidr.into_iter().collect();
    let mut out = Desired::default();
    for p in by_name.values() {
        if p.backend.is_some_and(|b| b != local.backend) {
            continue;
        }
        if taken.iter().any(|t| t.overlaps(p.pod_cidr)) || p.ip == local.ip {
            continue;
        }
        match local.backend {
            Backend::Vxlan => {
                let Some(mac) = p.vtep_mac else { continue };
                let vtep = p.pod_cidr.network();
                out.routes.insert(Route {
                    dst: p.pod_cidr,
                    via: vtep,
                    dev: local.device.clone(),
                    onlink: true,
                });
                out.neighs.insert(Neigh {
                    dev: local.device.clone(),
                    ip: vtep,
                    mac,
                });
                out.fdb.insert(Fdb {
                    dev: local.device.clone(),
                    mac,
                    dst: p.ip,
                });
            }
            Backend::HostGw => {
                if !local.underlay_subnets.iter().any(|n| n.contains(p.ip)) {
                    continue;
                }
                out.routes.insert(Route {
                    dst: p.pod_cidr,
                    via: p.ip,
                    dev: local.underlay.clone(),
                    onlink: false,
                });
            }
        }
        taken.push(p.pod_cidr);
    }
    out
}

/// The pods' MTU (and the VXLAN device's): VXLAN over IPv4 costs 50 bytes
/// (outer IPv4 20, UDP 8, VXLAN 8, inner Ethernet 14).
pub fn pod_mtu(backend: Backend, underlay_mtu: u32) -> u32 {
    match backend {
        Backend::Vxlan => underlay_mtu.saturating_sub(50),
        Backend::HostGw => underlay_mtu,
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
