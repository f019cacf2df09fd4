//! The pod network in the real kernel (needs root, iproute2, nft and
//! /bin/busybox), in `network::lab`'s two hosts with a pod each and an
//! "outside" host A alone can reach.
//!
//! Each host runs the crate's real `apply` (iproute2 with `-n`) and its
//! masquerade table (`ip netns exec … nft`) with the other host as its
//! peer: pod A reaches pod B over VXLAN with its own address, and reaches
//! "outside" only thanks to masquerading; removing the peer removes its
//! route, neighbour and FDB entry; host-gw mode works too; cleanup leaves
//! nothing. The lab's namespaces are deleted at the end, also when an
//! assertion fails (Drop).

use std::net::Ipv4Addr;

use network::kernel::Kernel;
use network::lab::Lab;
use network::plan::{Backend, Cidr};
use proxy::nft::Nft;

/// Packets arriving in `role` from `src`, counted by the probe table.
fn count_from(lab: &Lab, role: &str, src: &str) -> u64 {
    let out = lab
        .exec(role, &["nft", "list", "chain", "ip", "probe", "input"])
        .unwrap();
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
    let lab = Lab::new().unwrap();
    // A finds its underlay by its node IP, B by `--flannel-iface`.
    let mut a = lab.host("ha", None).unwrap();
    let mut b = lab.host("hb", Some("eth0")).unwrap();
    for h in [&a, &b] {
        assert_eq!(h.underlay.name, "eth0");
        assert_eq!(h.underlay.mtu, 1500);
    }
    assert_eq!(b.underlay.ip, Ipv4Addr::new(192, 168, 91, 2));

    // Nothing routes pod to pod before the network runs.
    assert!(!lab.ping("pa", "10.42.2.5", 56));

    // First pass: devices only (no peer has published a MAC yet).
    let mac_a = a.apply(&[]).unwrap().expect("a VTEP MAC");
    let mac_b = b.apply(&[]).unwrap().expect("a VTEP MAC");
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
    assert_eq!(a.apply(&[b.peer(Some(mac_b))]).unwrap(), Some(mac_a));
    assert_eq!(b.apply(&[a.peer(Some(mac_a))]).unwrap(), Some(mac_b));
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
    assert_eq!(a.apply(&[b.peer(Some(mac_b))]).unwrap(), Some(mac_a));
    assert_eq!(a.kernel.observe(&a.cfg.device).unwrap(), seen);

    // Pod B counts what arrives from pod A's own address.
    lab.sh(
        "pb",
        "nft add table ip probe
         nft add chain ip probe input { type filter hook input priority 0 ; }
         nft add rule ip probe input ip saddr 10.42.1.5 counter
         nft add rule ip probe input ip saddr 192.168.91.1 counter",
    )
    .unwrap();
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
    a.apply(&[]).unwrap();
    assert_eq!(
        a.kernel.observe(&a.cfg.device).unwrap(),
        network::kernel::Observed::default()
    );
    assert!(!lab.ping("pa", "10.42.2.5", 56));

    // host-gw: the device goes, the route is via B's address.
    a.cfg.backend = Backend::HostGw;
    b.cfg.backend = Backend::HostGw;
    assert_eq!(a.apply(&[b.peer(None)]).unwrap(), None);
    assert_eq!(b.apply(&[a.peer(None)]).unwrap(), None);
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
    a.apply(&[stray]).unwrap();
    assert!(a.kernel.observe(&a.cfg.device).unwrap().routes.is_empty());

    // Cleanup removes our routes, device and table, and nothing else.
    b.cfg.backend = Backend::Vxlan;
    b.apply(&[a.peer(Some(mac_a))]).unwrap();
    network::cleanup(&b.cfg, &b.kernel, &b.nft).unwrap();
    assert!(b.kernel.link(&b.cfg.device).unwrap().is_none());
    assert!(b.kernel.observe(&b.cfg.device).unwrap().routes.is_empty());
    let tables = lab.exec("hb", &["nft", "list", "tables"]).unwrap();
    assert!(!String::from_utf8_lossy(&tables.stdout).contains(&b.cfg.table));
    assert!(b.kernel.link("eth0").unwrap().is_some());
}
