//! The OS boundary: links, addresses, routes, neighbours and FDB entries.
//!
//! The real implementation drives iproute2 (`ip -j` and `bridge -j` to
//! read, `ip -batch -` and `bridge -batch -` to change), not netlink
//! directly: iproute2 is already a dependency of the node (the CNI plugins
//! and the tests use it), it creates VXLAN devices and VXLAN FDB entries
//! with a destination in one line each, and `-n <netns>` lets the kernel
//! test run the same code inside a network namespace. A sync is a handful
//! of process spawns, and syncs happen on Node changes only.

use std::io::Write;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use serde::Deserialize;

use crate::plan::{Cidr, Fdb, Mac, Neigh, Route};

/// The route protocol number that marks our routes (`proto 87` in `ip route`),
/// so we find them again on any device, and never touch anyone else's.
pub const ROUTE_PROTO: u8 = 87;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("running {0}: {1}")]
    Spawn(&'static str, std::io::Error),
    #[error("{cmd} failed: {stderr}")]
    Failed { cmd: String, stderr: String },
    #[error("unexpected output of {cmd}: {error}")]
    Parse { cmd: String, error: String },
}

/// A VXLAN device as we want it (flannel's settings: no learning, the FDB
/// and neighbour entries come from the Node objects).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VxlanSpec {
    pub name: String,
    pub vni: u32,
    pub port: u16,
    /// The tunnel's source address (this node's IP).
    pub local: Ipv4Addr,
    /// The underlying interface.
    pub underlay: String,
    pub mtu: u32,
    /// This node's VTEP address (its podCIDR's network address) as /32.
    pub address: Ipv4Addr,
}

/// VXLAN parameters of an existing device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VxlanInfo {
    pub vni: u32,
    pub port: u16,
    pub local: Option<Ipv4Addr>,
    pub underlay: Option<String>,
    pub learning: bool,
}

/// An existing link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    pub name: String,
    pub mtu: u32,
    pub mac: Option<Mac>,
    pub up: bool,
    /// Set for VXLAN devices.
    pub vxlan: Option<VxlanInfo>,
    /// IPv4 addresses.
    pub addrs: Vec<Cidr>,
}

/// What we find in the kernel for our device and routes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// Routes marked with [`ROUTE_PROTO`] in the main table, on any device.
    pub routes: Vec<Route>,
    /// Permanent IPv4 neighbour entries on the VXLAN device.
    pub neighs: Vec<Neigh>,
    /// FDB entries with a destination on the VXLAN device.
    pub fdb: Vec<Fdb>,
}

/// One change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    CreateVxlan(VxlanSpec),
    DeleteLink(String),
    SetMtuUp { dev: String, mtu: u32 },
    AddAddr { dev: String, addr: Cidr },
    DelAddr { dev: String, addr: Cidr },
    AddRoute(Route),
    DelRoute(Route),
    AddNeigh(Neigh),
    DelNeigh(Neigh),
    AddFdb(Fdb),
    DelFdb(Fdb),
}

/// Which tool runs an op.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tool {
    Ip,
    Bridge,
}

impl Op {
    /// The op as one line of `ip -batch` or `bridge -batch`.
    fn line(&self) -> (Tool, String) {
        match self {
            Op::CreateVxlan(s) => (
                Tool::Ip,
                format!(
                    "link add name {} mtu {} type vxlan id {} local {} dev {} dstport {} nolearning",
                    s.name, s.mtu, s.vni, s.local, s.underlay, s.port
                ),
            ),
            Op::DeleteLink(n) => (Tool::Ip, format!("link del dev {n}")),
            Op::SetMtuUp { dev, mtu } => (Tool::Ip, format!("link set dev {dev} mtu {mtu} up")),
            Op::AddAddr { dev, addr } => (Tool::Ip, format!("addr replace {addr} dev {dev}")),
            Op::DelAddr { dev, addr } => (Tool::Ip, format!("addr del {addr} dev {dev}")),
            Op::AddRoute(r) => (Tool::Ip, format!("route replace {}", route_args(r))),
            Op::DelRoute(r) => (Tool::Ip, format!("route del {}", route_args(r))),
            Op::AddNeigh(n) => (
                Tool::Ip,
                format!(
                    "neigh replace {} lladdr {} dev {} nud permanent",
                    n.ip, n.mac, n.dev
                ),
            ),
            Op::DelNeigh(n) => (Tool::Ip, format!("neigh del {} dev {}", n.ip, n.dev)),
            // `replace` keeps one entry per MAC (`append` would add a
            // second destination, flooding both).
            Op::AddFdb(f) => (
                Tool::Bridge,
                format!(
                    "fdb replace {} dev {} dst {} self permanent",
                    f.mac, f.dev, f.dst
                ),
            ),
            Op::DelFdb(f) => (
                Tool::Bridge,
                format!("fdb del {} dev {} dst {} self", f.mac, f.dev, f.dst),
            ),
        }
    }
}

fn route_args(r: &Route) -> String {
    format!(
        "{} via {} dev {}{} proto {ROUTE_PROTO}",
        r.dst,
        r.via,
        r.dev,
        if r.onlink { " onlink" } else { "" }
    )
}

/// The kernel operations the network needs.
pub trait Kernel: Send + Sync {
    /// The link named `name`, if any.
    fn link(&self, name: &str) -> Result<Option<Link>, Error>;
    /// The link holding the address `ip` (the underlay of a node IP).
    fn link_with_address(&self, ip: Ipv4Addr) -> Result<Option<Link>, Error>;
    /// Our routes everywhere, and the entries on `device` (empty if absent).
    fn observe(&self, device: &str) -> Result<Observed, Error>;
    /// Carry out `ops` in order.
    fn apply(&self, ops: &[Op]) -> Result<(), Error>;
}

/// iproute2, optionally inside a named network namespace (`-n`).
#[derive(Clone, Debug, Default)]
pub struct IpRoute {
    pub netns: Option<String>,
}

#[derive(Deserialize)]
struct JsonLink {
    ifname: String,
    #[serde(default)]
    mtu: u32,
    #[serde(default)]
    address: Option<String>,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    linkinfo: Option<JsonLinkInfo>,
    #[serde(default)]
    addr_info: Vec<JsonAddr>,
}

#[derive(Deserialize)]
struct JsonLinkInfo {
    #[serde(default)]
    info_kind: Option<String>,
    #[serde(default)]
    info_data: Option<JsonVxlan>,
}

#[derive(Deserialize)]
struct JsonVxlan {
    #[serde(default)]
    id: u32,
    #[serde(default)]
    port: u16,
    #[serde(default)]
    local: Option<String>,
    #[serde(default)]
    link: Option<String>,
    #[serde(default)]
    learning: bool,
}

#[derive(Deserialize)]
struct JsonAddr {
    family: String,
    local: String,
    prefixlen: u8,
}

#[derive(Deserialize)]
struct JsonRoute {
    dst: String,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    dev: Option<String>,
    #[serde(default)]
    flags: Vec<String>,
}

#[derive(Deserialize)]
struct JsonNeigh {
    dst: String,
    #[serde(default)]
    lladdr: Option<String>,
    #[serde(default)]
    state: Vec<String>,
}

#[derive(Deserialize)]
struct JsonFdb {
    mac: String,
    #[serde(default)]
    dst: Option<String>,
}

impl JsonLink {
    fn into_link(self) -> Link {
        let vxlan = self.linkinfo.and_then(|li| {
            if li.info_kind.as_deref() != Some("vxlan") {
                return None;
            }
            let d = li.info_data?;
            Some(VxlanInfo {
                vni: d.id,
                port: d.port,
                local: d.local.and_then(|l| l.parse().ok()),
                underlay: d.link,
                learning: d.learning,
            })
        });
        Link {
            up: self.flags.iter().any(|f| f == "UP"),
            mac: self.address.and_then(|a| a.parse().ok()),
            mtu: self.mtu,
            vxlan,
            addrs: self
                .addr_info
                .iter()
                .filter(|a| a.family == "inet")
                .filter_map(|a| {
                    Some(Cidr {
                        addr: a.local.parse().ok()?,
                        prefix: a.prefixlen,
                    })
                })
                .collect(),
            name: self.ifname,
        }
    }
}

impl IpRoute {
    fn command(&self, tool: &'static str) -> Command {
        let mut c = Command::new(tool);
        if let Some(ns) = &self.netns {
            c.args(["-n", ns]);
        }
        c
    }

    /// Run a read command and return its stdout; a missing device is
    /// reported as `None` (iproute2 says "does not exist").
    fn read(&self, tool: &'static str, args: &[&str]) -> Result<Option<String>, Error> {
        let out = self
            .command(tool)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| Error::Spawn(tool, e))?;
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if stderr.contains("does not exist") || stderr.contains("Cannot find device") {
                return Ok(None);
            }
            return Err(Error::Failed {
                cmd: format!("{tool} {}", args.join(" ")),
                stderr,
            });
        }
        Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
    }

    fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        tool: &'static str,
        args: &[&str],
    ) -> Result<Option<Vec<T>>, Error> {
        let Some(text) = self.read(tool, args)? else {
            return Ok(None);
        };
        // Some iproute2 commands print nothing at all for an empty list.
        if text.trim().is_empty() {
            return Ok(Some(Vec::new()));
        }
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Parse {
                cmd: format!("{tool} {}", args.join(" ")),
                error: e.to_string(),
            })
    }

    fn batch(&self, tool: Tool, lines: &[String]) -> Result<(), Error> {
        let name = match tool {
            Tool::Ip => "ip",
            Tool::Bridge => "bridge",
        };
        let mut child = self
            .command(name)
            // -force: one bad line (a next hop gone meanwhile) does not
            // keep the others from being applied; the exit code still
            // reports it, and the next sync retries.
            .args(["-force", "-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::Spawn(name, e))?;
        let script = lines.join("\n") + "\n";
        let write = child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(script.as_bytes());
        let out = child
            .wait_with_output()
            .map_err(|e| Error::Spawn(name, e))?;
        if !out.status.success() {
            return Err(Error::Failed {
                cmd: format!("{name} -batch ({})", script.trim().replace('\n', "; ")),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            });
        }
        write.map_err(|e| Error::Spawn(name, e))
    }
}

impl Kernel for IpRoute {
    fn link(&self, name: &str) -> Result<Option<Link>, Error> {
        let links: Option<Vec<JsonLink>> =
            self.read_json("ip", &["-j", "-d", "addr", "show", "dev", name])?;
        Ok(links
            .and_then(|l| l.into_iter().next())
            .map(JsonLink::into_link))
    }

    fn link_with_address(&self, ip: Ipv4Addr) -> Result<Option<Link>, Error> {
        let links: Vec<JsonLink> = self
            .read_json("ip", &["-j", "-d", "addr", "show"])?
            .unwrap_or_default();
        Ok(links
            .into_iter()
            .map(JsonLink::into_link)
            .find(|l| l.addrs.iter().any(|a| a.addr == ip)))
    }

    fn observe(&self, device: &str) -> Result<Observed, Error> {
        let proto = ROUTE_PROTO.to_string();
        let routes: Vec<JsonRoute> = self
            .read_json("ip", &["-j", "-4", "route", "show", "proto", &proto])?
            .unwrap_or_default();
        let mut out = Observed {
            routes: routes
                .into_iter()
                .filter_map(|r| {
                    Some(Route {
                        dst: r.dst.parse().ok()?,
                        via: r.gateway?.parse().ok()?,
                        dev: r.dev?,
                        onlink: r.flags.iter().any(|f| f == "onlink"),
                    })
                })
                .collect(),
            ..Observed::default()
        };
        if self.link(device)?.is_none() {
            return Ok(out);
        }
        let neighs: Vec<JsonNeigh> = self
            .read_json("ip", &["-j", "-4", "neigh", "show", "dev", device])?
            .unwrap_or_default();
        out.neighs = neighs
            .into_iter()
            // Only permanent entries are ours; others are the kernel's.
            .filter(|n| n.state.iter().any(|s| s == "PERMANENT"))
            .filter_map(|n| {
                Some(Neigh {
                    dev: device.to_string(),
                    ip: n.dst.parse().ok()?,
                    mac: n.lladdr?.parse().ok()?,
                })
            })
            .collect();
        let fdb: Vec<JsonFdb> = self
            .read_json("bridge", &["-j", "fdb", "show", "dev", device])?
            .unwrap_or_default();
        out.fdb = fdb
            .into_iter()
            .filter_map(|f| {
                Some(Fdb {
                    dev: device.to_string(),
                    mac: f.mac.parse().ok()?,
                    dst: f.dst?.parse().ok()?,
                })
            })
            .collect();
        Ok(out)
    }

    fn apply(&self, ops: &[Op]) -> Result<(), Error> {
        // Consecutive ops of one tool go in one batch; order is kept.
        let mut run: Vec<String> = Vec::new();
        let mut tool = None;
        for op in ops {
            let (t, line) = op.line();
            if tool.is_some_and(|cur| cur != t) {
                self.batch(tool.unwrap(), &std::mem::take(&mut run))?;
            }
            tool = Some(t);
            run.push(line);
        }
        if let Some(t) = tool {
            self.batch(t, &run)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_render_as_iproute2_lines() {
        let spec = VxlanSpec {
            name: "wv0".into(),
            vni: 1,
            port: 8472,
            local: Ipv4Addr::new(192, 168, 1, 1),
            underlay: "eth0".into(),
            mtu: 1450,
            address: Ipv4Addr::new(10, 42, 0, 0),
        };
        assert_eq!(
            Op::CreateVxlan(spec).line(),
            (
                Tool::Ip,
                "link add name wv0 mtu 1450 type vxlan id 1 local 192.168.1.1 dev eth0 dstport 8472 nolearning".into()
            )
        );
        let r = Route {
            dst: "10.42.1.0/24".parse().unwrap(),
            via: Ipv4Addr::new(10, 42, 1, 0),
            dev: "wv0".into(),
            onlink: true,
        };
        assert_eq!(
            Op::AddRoute(r.clone()).line().1,
            "route replace 10.42.1.0/24 via 10.42.1.0 dev wv0 onlink proto 87"
        );
        assert_eq!(
            Op::DelRoute(Route { onlink: false, ..r }).line().1,
            "route del 10.42.1.0/24 via 10.42.1.0 dev wv0 proto 87"
        );
        let f = Fdb {
            dev: "wv0".into(),
            mac: "02:00:00:00:00:0b".parse().unwrap(),
            dst: Ipv4Addr::new(192, 168, 1, 2),
        };
        assert_eq!(
            Op::AddFdb(f).line(),
            (
                Tool::Bridge,
                "fdb replace 02:00:00:00:00:0b dev wv0 dst 192.168.1.2 self permanent".into()
            )
        );
    }

    #[test]
    fn iproute2_json_parses() {
        let link: Vec<JsonLink> = serde_json::from_str(
            r#"[{"ifindex":4,"ifname":"vx","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1450,
            "address":"de:ed:72:e0:55:b0","linkinfo":{"info_kind":"vxlan","info_data":{"id":1,
            "local":"192.168.5.1","link":"v0","port":8472,"learning":false,"ttl":0}},
            "addr_info":[{"family":"inet","local":"10.42.0.0","prefixlen":32},
            {"family":"inet6","local":"fe80::1","prefixlen":64}]}]"#,
        )
        .unwrap();
        let l = link.into_iter().next().unwrap().into_link();
        assert_eq!(
            l,
            Link {
                name: "vx".into(),
                mtu: 1450,
                mac: Some("de:ed:72:e0:55:b0".parse().unwrap()),
                up: true,
                vxlan: Some(VxlanInfo {
                    vni: 1,
                    port: 8472,
                    local: Some(Ipv4Addr::new(192, 168, 5, 1)),
                    underlay: Some("v0".into()),
                    learning: false
                }),
                addrs: vec!["10.42.0.0/32".parse().unwrap()],
            }
        );
    }
}
