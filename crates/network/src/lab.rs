//! A two-host lab in network namespaces, for the kernel test and
//! `wharf bench network` (needs root, iproute2, nft). Five namespaces:
//!
//! ```text
//!  pod A 10.42.1.5 ─ podbr ─ host A 192.168.91.1 ═══ 192.168.91.2 host B ─ podbr ─ pod B 10.42.2.5
//!                            host A 172.31.91.1 ── 172.31.91.2 outside (no route to 10.42/16)
//! ```
//!
//! The pods' veths have the VXLAN MTU (1450) and their bridge ports
//! hairpin mode, as the kubelet's CNI bridge gives them (with br_netfilter,
//! a pod's connection to a ClusterIP it is itself behind is DNATed inside
//! the bridge and leaves by the port it came in on). Every namespace is deleted on drop, which removes every device
//! in it; devices are created inside the namespaces, so no name ever
//! touches the host.

use std::net::Ipv4Addr;
use std::process::{Command, Output};

use proxy::nft::{Nft, NftCommand};

use crate::kernel::IpRoute;
use crate::plan::{self, Backend, Cidr, Peer};
use crate::{Config, Underlay};

fn run(args: &[&str]) -> Result<Output, String> {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .map_err(|e| format!("{args:?}: {e}"))
}

/// Network namespaces a test or benchmark creates, one per role, named
/// `<prefix>-<tag>-<role>` with a tag unique to this process and moment, and
/// deleted on drop (also when a test fails), which removes every device in
/// them. The kubelet's masquerade test uses it too.
pub struct Namespaces {
    prefix: String,
    created: Vec<String>,
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for ns in &self.created {
            let _ = run(&["ip", "netns", "del", ns]);
        }
    }
}

impl Namespaces {
    /// Create a namespace for each of `roles`, with its loopback up.
    pub fn new(prefix: &str, roles: &[&str]) -> Result<Namespaces, String> {
        let tag = format!(
            "{:x}{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .subsec_nanos()
                % 0xffff
        );
        let mut nets = Namespaces {
            prefix: format!("{prefix}-{tag}"),
            created: Vec::new(),
        };
        for role in roles {
            let ns = nets.ns(role);
            let out = run(&["ip", "netns", "add", &ns])?;
            if !out.status.success() {
                return Err(format!(
                    "ip netns add {ns}: {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            nets.created.push(ns);
            nets.exec_ok(role, &["ip", "link", "set", "lo", "up"])?;
        }
        Ok(nets)
    }

    /// The namespace of a role.
    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.prefix)
    }

    pub fn exec(&self, role: &str, args: &[&str]) -> Result<Output, String> {
        let ns = self.ns(role);
        let mut full = vec!["ip", "netns", "exec", ns.as_str()];
        full.extend_from_slice(args);
        run(&full)
    }

    pub fn exec_ok(&self, role: &str, args: &[&str]) -> Result<(), String> {
        let out = self.exec(role, args)?;
        if !out.status.success() {
            return Err(format!(
                "{role}: {args:?} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(())
    }

    /// Run each line (split on whitespace, no shell) in `role`.
    pub fn sh(&self, role: &str, script: &str) -> Result<(), String> {
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let args: Vec<&str> = line.split_whitespace().collect();
            self.exec_ok(role, &args)?;
        }
        Ok(())
    }
}

/// The two-host lab: its namespaces' roles are `ha`, `hb` (hosts), `pa`,
/// `pb` (pods) and `out`; [`Namespaces`]' methods work on it directly.
pub struct Lab {
    nets: Namespaces,
}

impl std::ops::Deref for Lab {
    type Target = Namespaces;

    fn deref(&self) -> &Namespaces {
        &self.nets
    }
}

impl Lab {
    pub fn new() -> Result<Lab, String> {
        let lab = Lab {
            nets: Namespaces::new("wharf-net", &["ha", "hb", "pa", "pb", "out"])?,
        };
        let (hb, pa, pb, out) = (lab.ns("hb"), lab.ns("pa"), lab.ns("pb"), lab.ns("out"));
        lab.sh(
            "ha",
            &format!(
                "ip link add eth0 type veth peer name eth0b
                 ip link set eth0b netns {hb}
                 ip link add vpa type veth peer name eth0p
                 ip link set eth0p netns {pa}
                 ip link add ext type veth peer name ext0
                 ip link set ext0 netns {out}"
            ),
        )?;
        lab.sh(
            "hb",
            &format!(
                "ip link set eth0b name eth0
                 ip link add vpb type veth peer name eth0p
                 ip link set eth0p netns {pb}"
            ),
        )?;
        for (h, p, veth, wire, pod_gw, pod_net) in [
            (
                "ha",
                "pa",
                "vpa",
                "192.168.91.1/24",
                "10.42.1.1",
                "10.42.1.5/24",
            ),
            (
                "hb",
                "pb",
                "vpb",
                "192.168.91.2/24",
                "10.42.2.1",
                "10.42.2.5/24",
            ),
        ] {
            lab.sh(
                h,
                &format!(
                    "ip addr add {wire} dev eth0
                     ip link set eth0 up
                     ip link add name podbr type bridge
                     ip addr add {pod_gw}/24 dev podbr
                     ip link set podbr up
                     ip link set {veth} master podbr
                     ip link set {veth} type bridge_slave hairpin on
                     ip link set {veth} mtu 1450 up
                     sysctl -qw net.ipv4.ip_forward=1"
                ),
            )?;
            lab.sh(
                p,
                &format!(
                    "ip link set eth0p name eth0
                     ip link set eth0 mtu 1450
                     ip addr add {pod_net} dev eth0
                     ip link set eth0 up
                     ip route add default via {pod_gw}"
                ),
            )?;
        }
        lab.sh(
            "ha",
            "ip addr add 172.31.91.1/24 dev ext
             ip link set ext up",
        )?;
        lab.sh(
            "out",
            "ip addr add 172.31.91.2/24 dev ext0
             ip link set ext0 up",
        )?;
        Ok(lab)
    }

    /// Make the hosts behave like two machines with a CPU each: what
    /// arrives on host A's underlay is processed on CPU 0 and on host B's
    /// on CPU 1 (RPS), wherever the sender runs. Without this, a packet
    /// sent into a veth is received on the sender's CPU, so one CPU does
    /// every hop of a transfer.
    pub fn split_cpus(&self) -> Result<(), String> {
        // SAFETY: sysconf has no memory effects.
        let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
        if cpus < 2 {
            return Err(format!(
                "splitting the hosts' CPUs needs 2 CPUs, found {cpus}"
            ));
        }
        // `ip netns exec` mounts the namespace's own /sys.
        for (role, mask) in [("ha", 1), ("hb", 2)] {
            self.exec_ok(
                role,
                &[
                    "sh",
                    "-c",
                    &format!("echo {mask} > /sys/class/net/eth0/queues/rx-0/rps_cpus"),
                ],
            )?;
        }
        Ok(())
    }

    /// Two pings of `size` bytes from `from` to `to`; did they answer?
    pub fn ping(&self, from: &str, to: &str, size: u32) -> bool {
        let size = size.to_string();
        self.exec(
            from,
            &[
                "/bin/busybox",
                "ping",
                "-c",
                "2",
                "-W",
                "2",
                "-s",
                &size,
                to,
            ],
        )
        .is_ok_and(|o| o.status.success())
    }

    /// Host A or B (`ha`, `hb`) as a node of the pod network; `iface`
    /// names the underlay as `--flannel-iface` does, else it is found by IP.
    pub fn host(&self, role: &str, iface: Option<&str>) -> Result<Host, String> {
        let (ip, cidr) = match role {
            "ha" => (Ipv4Addr::new(192, 168, 91, 1), "10.42.1.0/24"),
            "hb" => (Ipv4Addr::new(192, 168, 91, 2), "10.42.2.0/24"),
            _ => return Err(format!("no host {role:?}")),
        };
        let ns = self.ns(role);
        let mut cfg = Config::new(
            role,
            ip,
            Backend::Vxlan,
            "10.42.0.0/16".parse().expect("a CIDR"),
            std::path::Path::new(&format!("/nonexistent/{ns}")),
        );
        cfg.iface = iface.map(str::to_string);
        let kernel = IpRoute {
            netns: Some(ns.clone()),
        };
        let underlay = crate::underlay(&kernel, &cfg).map_err(|e| e.to_string())?;
        Ok(Host {
            cfg,
            kernel,
            nft: NftCommand { netns: Some(ns) },
            underlay,
            cidr: cidr.parse().expect("a CIDR"),
        })
    }
}

/// A lab host running the crate's real code.
pub struct Host {
    pub cfg: Config,
    pub kernel: IpRoute,
    pub nft: NftCommand,
    pub underlay: Underlay,
    pub cidr: Cidr,
}

impl Host {
    /// One sync with `peers`: the masquerade table, then [`crate::apply`].
    pub fn apply(&self, peers: &[Peer]) -> Result<Option<plan::Mac>, String> {
        self.nft
            .apply(&crate::masq::render(
                &self.cfg.table,
                self.cfg.cluster_cidr,
                Some(self.cidr),
            ))
            .map_err(|e| e.to_string())?;
        crate::apply(&self.cfg, &self.underlay, self.cidr, peers, &self.kernel)
            .map_err(|e| e.to_string())
    }

    /// This host as its Node would show it to the other.
    pub fn peer(&self, mac: Option<plan::Mac>) -> Peer {
        Peer {
            name: self.cfg.node_name.clone(),
            pod_cidr: self.cidr,
            ip: self.underlay.ip,
            backend: Some(self.cfg.backend),
            vtep_mac: mac,
        }
    }
}
