use super::*;
use serde_json::json;

fn node(name: &str, cidr: Option<&str>, ip: Option<&str>, ann: serde_json::Value) -> Node {
    let mut n = json!({
        "metadata": {"name": name, "annotations": ann},
        "spec": {},
        "status": {"addresses": [{"type": "Hostname", "address": name}]},
    });
    if let Some(c) = cidr {
        n["spec"]["podCIDR"] = c.into();
    }
    if let Some(ip) = ip {
        n["status"]["addresses"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "InternalIP", "address": ip}));
    }
    serde_json::from_value(n).unwrap()
}

fn vx(name: &str, cidr: &str, ip: &str, mac: &str) -> Node {
    node(
        name,
        Some(cidr),
        Some(ip),
        json!({ANNOTATION_BACKEND: "vxlan", ANNOTATION_VTEP_MAC: mac}),
    )
}

fn local(backend: Backend) -> Local {
    Local {
        node_name: "a".into(),
        backend,
        device: "wv0".into(),
        underlay: "eth0".into(),
        underlay_subnets: vec!["192.168.1.0/24".parse().unwrap()],
        ip: Ipv4Addr::new(192, 168, 1, 1),
        pod_cidr: Some("10.42.0.0/24".parse().unwrap()),
    }
}

fn peers(nodes: &[Node]) -> Vec<Peer> {
    nodes.iter().filter_map(peer).collect()
}

fn mac(s: &str) -> Mac {
    s.parse().unwrap()
}

#[test]
fn cidr_and_mac_parse_and_print() {
    let c: Cidr = "10.42.1.7/24".parse().unwrap();
    assert_eq!(c.network(), Ipv4Addr::new(10, 42, 1, 0));
    assert_eq!(c.normalized().to_string(), "10.42.1.0/24");
    assert!("10.42.1.0".parse::<Cidr>().is_err());
    assert!("10.42.1.0/33".parse::<Cidr>().is_err());
    assert!("fd00::/64".parse::<Cidr>().is_err());
    let big: Cidr = "10.42.0.0/16".parse().unwrap();
    assert!(big.overlaps("10.42.9.0/24".parse().unwrap()));
    assert!("10.42.9.0/24".parse::<Cidr>().unwrap().overlaps(big));
    assert!(!big.overlaps("10.43.0.0/24".parse().unwrap()));
    assert_eq!(mac("0A:0b:00:00:00:ff").to_string(), "0a:0b:00:00:00:ff");
    for bad in [
        "",
        "0a:0b:00:00:00",
        "0a:0b:00:00:00:ff:00",
        "0a:0b:00:00:00:fg",
        "a:b:c:d:e:f",
    ] {
        assert!(bad.parse::<Mac>().is_err(), "{bad}");
    }
    assert_eq!("host-gw".parse::<Backend>(), Ok(Backend::HostGw));
    assert!("wireguard".parse::<Backend>().is_err());
}

#[test]
fn vxlan_routes_neighbours_and_fdb_per_remote_node() {
    let nodes = [
        vx("a", "10.42.0.0/24", "192.168.1.1", "02:00:00:00:00:0a"),
        vx("b", "10.42.1.0/24", "192.168.1.2", "02:00:00:00:00:0b"),
        vx("c", "10.42.2.0/24", "192.168.1.3", "02:00:00:00:00:0c"),
    ];
    let d = plan(&local(Backend::Vxlan), &peers(&nodes));
    let routes: Vec<_> = d.routes.iter().cloned().collect();
    assert_eq!(
        routes,
        vec![
            Route {
                dst: "10.42.1.0/24".parse().unwrap(),
                via: Ipv4Addr::new(10, 42, 1, 0),
                dev: "wv0".into(),
                onlink: true
            },
            Route {
                dst: "10.42.2.0/24".parse().unwrap(),
                via: Ipv4Addr::new(10, 42, 2, 0),
                dev: "wv0".into(),
                onlink: true
            },
        ]
    );
    assert!(d.neighs.contains(&Neigh {
        dev: "wv0".into(),
        ip: Ipv4Addr::new(10, 42, 1, 0),
        mac: mac("02:00:00:00:00:0b")
    }));
    assert!(d.fdb.contains(&Fdb {
        dev: "wv0".into(),
        mac: mac("02:00:00:00:00:0c"),
        dst: Ipv4Addr::new(192, 168, 1, 3)
    }));
    // Our own node (by name) is never a peer.
    assert_eq!(d.neighs.len(), 2);
    assert_eq!(d.fdb.len(), 2);
    assert!(!d.fdb.iter().any(|f| f.dst == Ipv4Addr::new(192, 168, 1, 1)));
}

#[test]
fn host_gw_routes_to_the_node_ip() {
    let nodes = [
        node("b", Some("10.42.1.0/24"), Some("192.168.1.2"), json!({})),
        node(
            "c",
            Some("10.42.2.0/24"),
            Some("192.168.1.3"),
            json!({ANNOTATION_BACKEND: "host-gw"}),
        ),
    ];
    let d = plan(&local(Backend::HostGw), &peers(&nodes));
    let routes: Vec<_> = d
        .routes
        .iter()
        .map(|r| {
            (
                r.dst.to_string(),
                r.via.to_string(),
                r.dev.as_str(),
                r.onlink,
            )
        })
        .collect();
    assert_eq!(
        routes,
        vec![
            ("10.42.1.0/24".into(), "192.168.1.2".into(), "eth0", false),
            ("10.42.2.0/24".into(), "192.168.1.3".into(), "eth0", false),
        ]
    );
    assert!(d.neighs.is_empty() && d.fdb.is_empty());
}

#[test]
fn node_added_removed_and_cidr_changed() {
    let l = local(Backend::Vxlan);
    let b = vx("b", "10.42.1.0/24", "192.168.1.2", "02:00:00:00:00:0b");
    let one = plan(&l, &peers(std::slice::from_ref(&b)));
    assert_eq!(one.routes.len(), 1);
    let c = vx("c", "10.42.2.0/24", "192.168.1.3", "02:00:00:00:00:0c");
    let two = plan(&l, &peers(&[b.clone(), c.clone()]));
    assert_eq!(two.routes.len(), 2);
    assert!(one.routes.is_subset(&two.routes));
    // Removing b removes all three of its entries.
    let only_c = plan(&l, &peers(std::slice::from_ref(&c)));
    assert_eq!(only_c.routes.len(), 1);
    assert!(only_c
        .neighs
        .iter()
        .all(|n| n.ip == Ipv4Addr::new(10, 42, 2, 0)));
    assert!(only_c
        .fdb
        .iter()
        .all(|f| f.dst == Ipv4Addr::new(192, 168, 1, 3)));
    // A new podCIDR for b moves route and neighbour; the FDB entry stays.
    let moved = vx("b", "10.42.7.0/24", "192.168.1.2", "02:00:00:00:00:0b");
    let after = plan(&l, &peers(&[moved, c]));
    assert!(after
        .routes
        .iter()
        .any(|r| r.dst.to_string() == "10.42.7.0/24" && r.via == Ipv4Addr::new(10, 42, 7, 0)));
    assert!(!after
        .routes
        .iter()
        .any(|r| r.dst.to_string() == "10.42.1.0/24"));
    assert!(after
        .neighs
        .iter()
        .any(|n| n.ip == Ipv4Addr::new(10, 42, 7, 0)));
    assert_eq!(after.fdb, two.fdb);
    // A new MAC (the peer recreated its device) replaces the old entries.
    let remac = vx("b", "10.42.1.0/24", "192.168.1.2", "02:00:00:00:00:bb");
    let d = plan(&l, &peers(&[remac]));
    assert_eq!(d.fdb.iter().next().unwrap().mac, mac("02:00:00:00:00:bb"));
    assert_eq!(
        d.neighs.iter().next().unwrap().mac,
        mac("02:00:00:00:00:bb")
    );
}

#[test]
fn incomplete_or_foreign_nodes_are_ignored() {
    let l = local(Backend::Vxlan);
    let nodes = [
        // No podCIDR yet.
        node(
            "n1",
            None,
            Some("192.168.1.5"),
            json!({ANNOTATION_VTEP_MAC: "02:00:00:00:00:01"}),
        ),
        // No address.
        node(
            "n2",
            Some("10.42.3.0/24"),
            None,
            json!({ANNOTATION_VTEP_MAC: "02:00:00:00:00:02"}),
        ),
        // No VTEP MAC published yet.
        node("n3", Some("10.42.4.0/24"), Some("192.168.1.6"), json!({})),
        // Another backend.
        node(
            "n4",
            Some("10.42.5.0/24"),
            Some("192.168.1.7"),
            json!({ANNOTATION_BACKEND: "host-gw", ANNOTATION_VTEP_MAC: "02:00:00:00:00:04"}),
        ),
        // An IPv6 podCIDR, and a garbage MAC.
        node(
            "n5",
            Some("fd00:1::/64"),
            Some("192.168.1.8"),
            json!({ANNOTATION_VTEP_MAC: "02:00:00:00:00:05"}),
        ),
        node(
            "n6",
            Some("10.42.6.0/24"),
            Some("192.168.1.9"),
            json!({ANNOTATION_VTEP_MAC: "zz"}),
        ),
    ];
    let ps = peers(&nodes);
    assert_eq!(
        ps.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["n3", "n4", "n6"]
    );
    assert_eq!(plan(&l, &ps), Desired::default());
    // host-gw needs no MAC: n3 (no backend stated) and n4 are routed.
    let hg = plan(&local(Backend::HostGw), &ps);
    let dsts: Vec<String> = hg.routes.iter().map(|r| r.dst.to_string()).collect();
    assert_eq!(dsts, ["10.42.4.0/24", "10.42.5.0/24", "10.42.6.0/24"]);
}

#[test]
fn public_ip_annotation_wins_over_internal_ip() {
    let n = node(
        "b",
        Some("10.42.1.0/24"),
        Some("192.168.1.2"),
        json!({ANNOTATION_PUBLIC_IP: "172.16.0.2", ANNOTATION_VTEP_MAC: "02:00:00:00:00:0b"}),
    );
    let p = peer(&n).unwrap();
    assert_eq!(p.ip, Ipv4Addr::new(172, 16, 0, 2));
    assert_eq!(p.backend, None);
    let d = plan(&local(Backend::Vxlan), &[p]);
    assert_eq!(
        d.fdb.iter().next().unwrap().dst,
        Ipv4Addr::new(172, 16, 0, 2)
    );
}

#[test]
fn overlapping_cidrs_route_once() {
    let nodes = [
        // Claims our own podCIDR (a stale object): never routed away.
        vx("x", "10.42.0.0/24", "192.168.1.9", "02:00:00:00:00:09"),
        vx("b", "10.42.1.0/24", "192.168.1.2", "02:00:00:00:00:0b"),
        vx("c", "10.42.1.0/24", "192.168.1.3", "02:00:00:00:00:0c"),
    ];
    let d = plan(&local(Backend::Vxlan), &peers(&nodes));
    assert_eq!(d.routes.len(), 1);
    assert_eq!(
        d.fdb.iter().next().unwrap().dst,
        Ipv4Addr::new(192, 168, 1, 2)
    );
}

#[test]
fn mtu_leaves_room_for_the_vxlan_header() {
    assert_eq!(pod_mtu(Backend::Vxlan, 1500), 1450);
    assert_eq!(pod_mtu(Backend::HostGw, 1500), 1500);
    assert_eq!(pod_mtu(Backend::Vxlan, 9000), 8950);
}

#[test]
fn unreachable_peers_are_skipped() {
    let nodes = [
        // Another node on this very host (same address): no tunnel to self.
        vx("twin", "10.42.8.0/24", "192.168.1.1", "02:00:00:00:00:08"),
        // Off the underlay's subnet: fine for VXLAN, no next hop for host-gw.
        vx("far", "10.42.9.0/24", "172.20.0.9", "02:00:00:00:00:09"),
    ];
    let ps = peers(&nodes);
    let d = plan(&local(Backend::Vxlan), &ps);
    let dsts: Vec<String> = d.routes.iter().map(|r| r.dst.to_string()).collect();
    assert_eq!(dsts, ["10.42.9.0/24"]);
    let mut hg: Vec<Peer> = ps.clone();
    for p in &mut hg {
        p.backend = Some(Backend::HostGw);
    }
    assert_eq!(plan(&local(Backend::HostGw), &hg), Desired::default());
}
