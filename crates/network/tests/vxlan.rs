//! The pod network in the real kernel (needs root, iproute2, nft and
//! /bin/busybox). Five network namespaces of this test's own:
//!
//! ```text
//!  pod A 10.42.1.5 ─ br ─ host A 192.168.91.1 ═══ 192.168.91.2 host B ─ br ─ pod B 10.42.2.5
//!                         host A 172.31.91.1 ── 172.31.91.2 outside (no route to 10.42/16)
//! ```
//!
//! Each host runs the crate's real `apply` (iproute2 with `-n`) and its
//! masquerade table (`ip netns exec … nft`) with the other host as its
//! peer: pod A reaches pod B over VXLAN with its own address, and reaches
//! "outside" only thanks to masquerading; removing the peer removes its
//! route, neighbour and FDB entry; host-gw mode works too; cleanup leaves
//! nothing. Every namespace is deleted at the end, also when an assertion
//! fails (Drop), which removes every device in it.

use std::net::Ipv4Addr;
use std::process::Command;

use network::kernel::{IpRoute, Kernel};
use network::plan::{self, Backend, Cidr, Peer};
use network::{Config, Underlay};
use proxy::nft::{Nft, NftCommand};

fn run(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn must(args: &[&str]) {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Lab {
    tag: String,
    namespaces: Vec<String>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            let _ = run(&["ip", "netns", "del", ns]);
        }
    }
}

impl Lab {
    fn ns(&self, role: &str) -> String {
        format!("wharf-net-{}-{role}", self.tag)
    }

    fn exec(&self, role: &str, args: &[&str]) -> std::process::Output {
        let ns = self.ns(role);
        let mut full = vec!["ip", "netns", "exec", ns.as_str()];
        full.extend_from_slice(args);
        run(&full)
    }

    fn exec_ok(&self, role: &str, args: &[&str]) {
        let out = self.exec(role, args);
        assert!(
            out.status.success(),
            "{role}: {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn sh(&self, role: &str, script: &str) {
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let args: Vec<&str> = line.split_whitespace().collect();
            self.exec_ok(role, &args);
        }
    }

    fn new() -> Lab {
        let tag = format!(
            "{:x}{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
                % 0xffff
        );
        let mut lab = Lab {
            tag,
            namespaces: Vec::new(),
        };
        for role in ["ha", "hb", "pa", "pb", "out"] {
            let ns = lab.ns(role);
            must(&["ip", "netns", "add", &ns]);
            lab.namespaces.push(ns);
            lab.exec_ok(role, &["ip", "link", "set", "lo", "up"]);
        }
        let (hb, pa, pb, out) = (lab.ns("hb"), lab.ns("pa"), lab.ns("pb"), lab.ns("out"));
        // The wire between the hosts, the pods' veths, the outside link;
        // all created in host A and moved, so no name touches the host.
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
        );
        lab.sh(
            "hb",
            &format!(
                "ip link set eth0b name eth0
                 ip link add vpb type veth peer name eth0p
                 ip link set eth0p netns {pb}"
            ),
        );
        for (h, p, wire, pod_gw, pod_net) in [
            (
                "ha",
                "pa",
                "192.168.91.1/24",
                "10.42.1.1/24",
                "10.42.1.5/24",
            ),
            (
                "hb",
                "pb",
                "192.168.91.2/24",
                "10.42.2.1/24",
                "10.42.2.5/24",
            ),
        ] {
            let veth = if h == "ha" { "vpa" } else { "vpb" };
            let gw = pod_gw.split('/').next().unwrap();
            lab.sh(
                h,
                &format!(
                    "ip addr add {wire} dev eth0
                     ip link set eth0 up
                     ip link add name podbr type bridge
                     ip addr add {pod_gw} dev podbr
                     ip link set podbr up
                     ip link set {veth} master podbr
                     ip link set {veth} mtu 1450 up
                     sysctl -qw net.ipv4.ip_forward=1"
                ),
            );
            // The pod's side, as the CNI bridge would make it with the
            // network's MTU.
            lab.sh(
                p,
                &format!(
                    "ip link set eth0p name eth0
                     ip link set eth0 mtu 1450
                     ip addr add {pod_net} dev eth0
                     ip link set eth0 up
                     ip route add default via {gw}"
                ),
            );
        }
        lab.sh(
            "ha",
            "ip addr add 172.31.91.1/24 dev ext
             ip link set ext up",
        );
        lab.sh(
            "out",
            "ip addr add 172.31.91.2/24 dev ext0
             ip link set ext0 up",
        );
        lab
    }

    fn ping(&self, from: &str, to: &str, size: u32) -> bool {
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
        .status
        .success()
    }
}

struct Host {
    cfg: Config,
    kernel: IpRoute,
    nft: NftCommand,
    underlay: Underlay,
    cidr: Cidr,
}

impl Host {
    fn new(lab: &Lab, role: &str, ip: Ipv4Addr, cidr: &str, iface: Option<&str>) -> Host {
        let ns = lab.ns(role);
        let mut cfg = Config::new(
            role,
            ip,
            Backend::Vxlan,
            "10.42.0.0/16".parse().unwrap(),
            std::path::Path::new(&format!("/nonexistent/{ns}")),
        );
        cfg.iface = iface.map(str::to_string);
        let kernel = IpRoute {
            netns: Some(ns.clone()),
        };
        let underlay = network::underlay(&kernel, &cfg).unwrap();
        assert_eq!(underlay.name, "eth0");
        assert_eq!(underlay.ip, ip);
        Host {
            cfg,
            kernel,
            nft: NftCommand { netns: Some(ns) },
            underlay,
            cidr: cidr.parse().unwrap(),
        }
    }

    fn apply(&self, peers: &[Peer]) -> Option<plan::Mac> {
        self.nft
            .apply(&network::masq::render(
                &self.cfg.table,
                self.cfg.cluster_cidr,
                Some(self.cidr),
            ))
            .unwrap();
        network::apply(&self.cfg, &self.underlay, self.cidr, peers, &self.kernel).unwrap()
    }

    fn peer(&self, mac: Option<plan::Mac>) -> Peer {
        Peer {
            name: self.cfg.node_name.clone(),
            pod_cidr: self.cidr,
            ip: self.underlay.ip,
            backend: Some(self.cfg.backend),
            vtep_mac: mac,
        }
    }
}

/// Packets from `src` arriving in pod B, counted by a rule of our own.
fn count_from(lab: &Lab, role: &str, src: &str) -> u64 {
    let out = lab.exec(role, &["nft", "list", "chain", "ip", "probe", "input"]);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.contains(&format!("ip saddr {src}")))
        .and_then(|l| l.split("packets ").nth(1))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter for {src} in:\n{text}"))
}

#[test]
fn pods_talk_across_hosts_over_vxlan_and_host_gw() {
    let lab = Lab::new();
    // A by its node IP, B by `--flannel-iface`.
    let mut a = Host::new(
        &lab,
        "ha",
        Ipv4Addr::new(192, 168, 91, 1),
        "10.42.1.0/24",
        None,
    );
    let mut b = Host::new(
        &lab,
        "hb",
        Ipv4Addr::new(192, 168, 91, 2),
        "10.42.2.0/24",
        Some("eth0"),
    );

    // Nothing routes pod to pod before the network runs.
    assert!(!lab.ping("pa", "10.42.2.5", 56));

    // First pass: devices only (no peer has published a MAC yet).
    let mac_a = a.apply(&[]).expect("a VTEP MAC");
    let mac_b = b.apply(&[]).expect("a VTEP MAC");
    let dev = a
        .kernel
        .link(&a.cfg.device)
        .unwrap()
        .expect("the VXLAN device");
    assert_eq!(dev.mtu, 1450, "1500 minus the 50 bytes of VXLAN");
    assert!(dev.up);
    assert_eq!(dev.addrs, vec!["10.42.1.0/32".parse::<Cidr>().unwrap()]);
    assert_eq!(dev.mac, Some(mac_a));
    let vx = dev.vxlan.unwrap();
    assert_eq!((vx.vni, vx.port, vx.learning), (1, 8472, false));

    // Second pass with the peers: pod A reaches pod B over the tunnel.
    assert_eq!(a.apply(&[b.peer(Some(mac_b))]), Some(mac_a));
    assert_eq!(b.apply(&[a.peer(Some(mac_a))]), Some(mac_b));
    let seen = a.kernel.observe(&a.cfg.device).unwrap();
    assert_eq!(seen.routes.len(), 1);
    assert_eq!(seen.routes[0].dst.to_string(), "10.42.2.0/24");
    assert_eq!(seen.routes[0].via, Ipv4Addr::new(10, 42, 2, 0));
    assert!(seen.routes[0].onlink);
    assert_eq!(seen.neighs.len(), 1);
    assert_eq!(seen.neighs[0].mac, mac_b);
    assert_eq!(seen.fdb.len(), 1);
    assert_eq!(seen.fdb[0].dst, Ipv4Addr::new(192, 168, 91, 2));
    // A second pass changes nothing (and fails on nothing).
    assert_eq!(a.apply(&[b.peer(Some(mac_b))]), Some(mac_a));
    assert_eq!(a.kernel.observe(&a.cfg.device).unwrap(), seen);

    // Pod B counts what arrives from pod A's own address.
    lab.sh(
        "pb",
        "nft add table ip probe
         nft add chain ip probe input { type filter hook input priority 0 ; }
         nft add rule ip probe input ip saddr 10.42.1.5 counter
         nft add rule ip probe input ip saddr 192.168.91.1 counter",
    );
    assert!(lab.ping("pa", "10.42.2.5", 56), "pod A -> pod B over VXLAN");
    // The largest ICMP payload the pod MTU carries (1450 - 28) crosses.
    assert!(lab.ping("pa", "10.42.2.5", 1422), "a full-MTU packet");
    assert!(
        count_from(&lab, "pb", "10.42.1.5") >= 4,
        "pod to pod keeps its source"
    );
    assert_eq!(count_from(&lab, "pb", "192.168.91.1"), 0);
    // The host reaches the remote pod too (masqueraded to its VTEP address).
    assert!(lab.ping("ha", "10.42.2.5", 56));

    // "outside" has no route to the pods: only masquerading makes this work.
    assert!(
        lab.ping("pa", "172.31.91.2", 56),
        "pod -> outside is masqueraded"
    );
    a.nft.apply(&network::masq::delete(&a.cfg.table)).unwrap();
    assert!(
        !lab.ping("pa", "172.31.91.2", 56),
        "without the table it is not"
    );

    // Node B removed: its route, neighbour and FDB entry go.
    a.apply(&[]);
    assert_eq!(
        a.kernel.observe(&a.cfg.device).unwrap(),
        network::kernel::Observed::default()
    );
    assert!(!lab.ping("pa", "10.42.2.5", 56));

    // host-gw: the device goes, the route is via B's address.
    a.cfg.backend = Backend::HostGw;
    b.cfg.backend = Backend::HostGw;
    assert_eq!(a.apply(&[b.peer(None)]), None);
    assert_eq!(b.apply(&[a.peer(None)]), None);
    assert!(a.kernel.link(&a.cfg.device).unwrap().is_none());
    let seen = a.kernel.observe(&a.cfg.device).unwrap();
    assert_eq!(seen.routes.len(), 1);
    assert_eq!(seen.routes[0].via, Ipv4Addr::new(192, 168, 91, 2));
    assert_eq!(seen.routes[0].dev, "eth0");
    assert!(
        lab.ping("pa", "10.42.2.5", 56),
        "pod A -> pod B over host-gw"
    );

    // A VXLAN peer is not a host-gw peer.
    let mut stray = b.peer(Some(mac_b));
    stray.backend = Some(Backend::Vxlan);
    a.apply(&[stray]);
    assert!(a.kernel.observe(&a.cfg.device).unwrap().routes.is_empty());

    // Cleanup removes our routes, device and table, and nothing else.
    b.cfg.backend = Backend::Vxlan;
    b.apply(&[a.peer(Some(mac_a))]);
    network::cleanup(&b.cfg, &b.kernel, &b.nft).unwrap();
    assert!(b.kernel.link(&b.cfg.device).unwrap().is_none());
    assert!(b.kernel.observe(&b.cfg.device).unwrap().routes.is_empty());
    let tables = lab.exec("hb", &["nft", "list", "tables"]);
    assert!(!String::from_utf8_lossy(&tables.stdout).contains(&b.cfg.table));
    assert!(b.kernel.link("eth0").unwrap().is_some());
}
