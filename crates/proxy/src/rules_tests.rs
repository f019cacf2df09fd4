use super::*;
use serde_json::json;

/// A Service from JSON `spec` (namespace `ns`).
pub(crate) fn service(name: &str, spec: serde_json::Value) -> Service {
    serde_json::from_value(json!({
        "metadata": { "name": name, "namespace": "ns" },
        "spec": spec,
    }))
    .unwrap()
}

/// An EndpointSlice of service `svc` with `ports` and endpoints given as
/// (ip, node, ready, serving, terminating).
pub(crate) fn slice(
    svc: &str,
    ports: serde_json::Value,
    eps: &[(&str, &str, bool, bool, bool)],
) -> EndpointSlice {
    let endpoints: Vec<serde_json::Value> = eps
        .iter()
        .map(|(ip, node, r, s, t)| {
            json!({ "addresses": [ip], "nodeName": node,
                    "conditions": { "ready": r, "serving": s, "terminating": t } })
        })
        .collect();
    serde_json::from_value(json!({
        "metadata": { "name": format!("{svc}-abc"), "namespace": "ns",
                      "labels": { "kubernetes.io/service-name": svc } },
        "addressType": "IPv4",
        "ports": ports,
        "endpoints": endpoints,
    }))
    .unwrap()
}

pub(crate) fn ready(
    ip: &'static str,
    node: &'static str,
) -> (&'static str, &'static str, bool, bool, bool) {
    (ip, node, true, true, false)
}

fn compute_for(svcs: &[Service], slices: &[EndpointSlice]) -> Ruleset {
    compute(&Input {
        table: "t",
        services: svcs.iter().collect(),
        slices: slices.iter().collect(),
        node_name: "n1",
        node_ips: vec![
            "192.168.1.10".parse().unwrap(),
            "127.0.0.1".parse().unwrap(),
        ],
        nodeport_addresses: NodePortAddresses::Primary,
        cluster_cidr: Some("10.42.0.0/16".parse().unwrap()),
    })
}

fn rules<'a>(rs: &'a Ruleset, chain: &str) -> &'a [String] {
    &rs.chains
        .get(chain)
        .unwrap_or_else(|| panic!("no chain {chain}; have {:?}", rs.chains.keys()))
        .rules
}

fn elements<'a>(rs: &'a Ruleset, set: &str) -> &'a [String] {
    &rs.sets[set].elements
}

fn web() -> Service {
    service(
        "web",
        json!({ "clusterIP": "10.43.0.10", "ports": [{ "port": 80, "targetPort": 8080 }] }),
    )
}

fn web_slice(eps: &[(&str, &str, bool, bool, bool)]) -> EndpointSlice {
    slice("web", json!([{ "port": 8080, "protocol": "TCP" }]), eps)
}

#[test]
fn cluster_ip_spreads_over_ready_endpoints_and_masquerades_outside_traffic() {
    let rs = compute_for(
        &[web()],
        &[web_slice(&[
            ready("10.42.0.5", "n1"),
            ready("10.42.1.7", "n2"),
            ("10.42.1.8", "n2", false, false, false),
        ])],
    );
    assert_eq!(
        elements(&rs, "service-ips"),
        ["10.43.0.10 . tcp . 80 : goto svc-ns/web/tcp/80"]
    );
    assert_eq!(
        rules(&rs, "svc-ns/web/tcp/80"),
        [
            "ip daddr 10.43.0.10 ip saddr != 10.42.0.0/16 jump mark-for-masquerade",
            "meta l4proto tcp dnat to numgen random mod 2 map @eps-ns/web/tcp/80",
        ]
    );
    // The endpoints are elements of the service-port's named map, not
    // chains; the not-ready one is left out.
    assert_eq!(
        elements(&rs, "eps-ns/web/tcp/80"),
        ["0 : 10.42.0.5 . 8080", "1 : 10.42.1.7 . 8080"]
    );
    assert_eq!(
        rs.sets["eps-ns/web/tcp/80"].def,
        "typeof numgen random mod 1 : ip daddr . tcp dport ;"
    );
    assert!(!rs.chains.keys().any(|c| c.starts_with("ep-")));
    // Both endpoints are masqueraded when they reach themselves.
    assert_eq!(
        elements(&rs, "hairpin"),
        ["10.42.0.5 . 10.42.0.5", "10.42.1.7 . 10.42.1.7"]
    );
    assert!(!rs.chains.keys().any(|c| c.starts_with("ext-")));
    assert!(elements(&rs, "no-endpoint-services").is_empty());
    // The loopback address never takes NodePorts.
    assert_eq!(elements(&rs, "nodeport-ips"), ["192.168.1.10"]);
}

#[test]
fn base_chains_hook_nat_output_at_minus_100_and_masquerade_by_mark() {
    let rs = compute_for(&[], &[]);
    assert_eq!(
        rs.chains["nat-output"].header.as_deref(),
        Some("type nat hook output priority -100 ; policy accept ;")
    );
    assert_eq!(rules(&rs, "nat-prerouting"), ["jump services"]);
    assert_eq!(
        rules(&rs, "nat-postrouting"),
        [
            "ct status dnat ip saddr . ip daddr @hairpin jump mark-for-masquerade",
            "jump masquerading"
        ]
    );
    assert_eq!(rs.sets["hairpin"].def, "type ipv4_addr . ipv4_addr ;");
    assert_eq!(
        rules(&rs, "masquerading"),
        [
            "meta mark & 0x4000 == 0 return",
            "meta mark set meta mark ^ 0x4000",
            "masquerade fully-random"
        ]
    );
    assert_eq!(
        rules(&rs, "services")[1],
        "ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports"
    );
    let script = rs.render(None);
    assert!(script.starts_with("add table ip t\ndelete table ip t\nadd table ip t\n"));
    assert!(!script.contains("flush"));
}

#[test]
fn no_ready_endpoint_falls_back_to_serving_terminating_ones() {
    let rs = compute_for(
        &[web()],
        &[web_slice(&[
            ("10.42.0.5", "n1", false, true, true),
            ("10.42.0.6", "n1", false, false, true),
        ])],
    );
    assert_eq!(
        rules(&rs, "svc-ns/web/tcp/80")[1],
        "meta l4proto tcp dnat to numgen random mod 1 map @eps-ns/web/tcp/80"
    );
    assert_eq!(elements(&rs, "eps-ns/web/tcp/80"), ["0 : 10.42.0.5 . 8080"]);
    // With one ready endpoint the terminating one is not used.
    let rs = compute_for(
        &[web()],
        &[web_slice(&[
            ("10.42.0.5", "n1", false, true, true),
            ready("10.42.0.7", "n2"),
        ])],
    );
    assert_eq!(
        rules(&rs, "svc-ns/web/tcp/80")[1],
        "meta l4proto tcp dnat to numgen random mod 1 map @eps-ns/web/tcp/80"
    );
    assert_eq!(elements(&rs, "eps-ns/web/tcp/80"), ["0 : 10.42.0.7 . 8080"]);
}

#[test]
fn service_without_endpoints_is_rejected_for_every_destination() {
    let svc = service(
        "web",
        json!({ "type": "NodePort", "clusterIP": "10.43.0.10", "externalIPs": ["203.0.113.5"],
                "ports": [{ "port": 80, "nodePort": 30080, "protocol": "UDP" }] }),
    );
    let rs = compute_for(&[svc], &[]);
    assert!(elements(&rs, "service-ips").is_empty());
    assert_eq!(
        elements(&rs, "no-endpoint-services"),
        [
            "10.43.0.10 . udp . 80 : goto reject-chain",
            "203.0.113.5 . udp . 80 : goto reject-chain"
        ]
    );
    assert_eq!(
        elements(&rs, "no-endpoint-nodeports"),
        ["udp . 30080 : goto reject-chain"]
    );
    assert_eq!(
        rules(&rs, "reject-chain"),
        ["meta l4proto tcp reject with tcp reset", "reject"]
    );
    assert_eq!(
        rules(&rs, "filter-output"),
        ["jump firewall-check", "ct state new jump endpoints-check"]
    );
    assert_eq!(
        rs.chains["filter-output"].header.as_deref().unwrap(),
        "type filter hook output priority -110 ; policy accept ;"
    );
    assert!(!rs.chains.keys().any(|c| c.starts_with("svc-")));
    assert!(!rs.sets.keys().any(|c| c.starts_with("eps-")));
    assert!(elements(&rs, "hairpin").is_empty());
}

#[test]
fn headless_and_external_name_services_get_nothing() {
    let headless = service(
        "h",
        json!({ "clusterIP": "None", "ports": [{ "port": 80 }] }),
    );
    let ext = service(
        "x",
        json!({ "type": "ExternalName", "externalName": "example.com", "ports": [{ "port": 80 }] }),
    );
    let rs = compute_for(
        &[headless, ext],
        &[slice(
            "h",
            json!([{ "port": 80 }]),
            &[ready("10.42.0.5", "n1")],
        )],
    );
    assert!(rs.sets.values().all(|s| s.elements.len() <= 1)); // nodeport-ips only
    assert!(elements(&rs, "service-ips").is_empty());
    assert!(elements(&rs, "no-endpoint-services").is_empty());
}

#[test]
fn named_target_ports_and_protocols_come_from_the_slice_ports() {
    let svc = service(
        "dns",
        json!({ "clusterIP": "10.43.0.53", "ports": [
            { "name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns" },
            { "name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": "dns-tcp" },
            { "name": "sctp", "port": 9, "protocol": "SCTP", "targetPort": 9999 }] }),
    );
    let sl = slice(
        "dns",
        json!([{ "name": "dns", "port": 5353, "protocol": "UDP" },
               { "name": "dns-tcp", "port": 5354, "protocol": "TCP" },
               { "name": "sctp", "port": 9999, "protocol": "SCTP" }]),
        &[ready("10.42.0.9", "n1")],
    );
    let rs = compute_for(&[svc], &[sl]);
    assert_eq!(
        elements(&rs, "service-ips"),
        [
            "10.43.0.53 . udp . 53 : goto svc-ns/dns/udp/53",
            "10.43.0.53 . tcp . 53 : goto svc-ns/dns/tcp/53",
            "10.43.0.53 . sctp . 9 : goto svc-ns/dns/sctp/9",
        ]
    );
    for (key, proto, port) in [
        ("ns/dns/udp/53", "udp", 5353),
        ("ns/dns/tcp/53", "tcp", 5354),
        ("ns/dns/sctp/9", "sctp", 9999),
    ] {
        assert_eq!(
            rules(&rs, &format!("svc-{key}"))[1],
            format!("meta l4proto {proto} dnat to numgen random mod 1 map @eps-{key}")
        );
        assert_eq!(
            elements(&rs, &format!("eps-{key}")),
            [format!("0 : 10.42.0.9 . {port}")]
        );
    }
    assert_eq!(
        rs.sets["eps-ns/dns/udp/53"].def,
        "typeof numgen random mod 1 : ip daddr . udp dport ;"
    );
    // One address serving three ports is one hairpin pair.
    assert_eq!(elements(&rs, "hairpin"), ["10.42.0.9 . 10.42.0.9"]);
}

#[test]
fn node_port_external_ips_and_load_balancer_ingress_go_through_the_external_chain() {
    let mut svc = service(
        "web",
        json!({ "type": "LoadBalancer", "clusterIP": "10.43.0.10", "externalIPs": ["203.0.113.5"],
                "ports": [{ "port": 80, "nodePort": 30080 }] }),
    );
    svc.status = serde_json::from_value(json!({ "loadBalancer": { "ingress": [
        { "ip": "192.168.1.10", "ipMode": "VIP" }, { "ip": "198.51.100.1", "ipMode": "Proxy" },
        { "hostname": "lb.example.com" }] } }))
    .unwrap();
    let rs = compute_for(&[svc], &[web_slice(&[ready("10.42.0.5", "n2")])]);
    assert_eq!(
        elements(&rs, "service-ips"),
        [
            "10.43.0.10 . tcp . 80 : goto svc-ns/web/tcp/80",
            "192.168.1.10 . tcp . 80 : goto ext-ns/web/tcp/80",
            "203.0.113.5 . tcp . 80 : goto ext-ns/web/tcp/80",
        ]
    );
    assert_eq!(
        elements(&rs, "service-nodeports"),
        ["tcp . 30080 : goto ext-ns/web/tcp/80"]
    );
    assert_eq!(
        rules(&rs, "ext-ns/web/tcp/80"),
        ["jump mark-for-masquerade", "goto svc-ns/web/tcp/80"]
    );
}

#[test]
fn a_node_port_of_a_cluster_ip_service_is_ignored() {
    let svc = service(
        "web",
        json!({ "clusterIP": "10.43.0.10", "ports": [{ "port": 80, "nodePort": 30080 }] }),
    );
    let rs = compute_for(&[svc], &[web_slice(&[ready("10.42.0.5", "n1")])]);
    assert!(elements(&rs, "service-nodeports").is_empty());
}

#[test]
fn external_traffic_policy_local_keeps_the_client_address_and_uses_local_endpoints() {
    let svc = service(
        "web",
        json!({ "type": "NodePort", "clusterIP": "10.43.0.10", "externalTrafficPolicy": "Local",
                "ports": [{ "port": 80, "nodePort": 30080 }] }),
    );
    let rs = compute_for(
        std::slice::from_ref(&svc),
        &[web_slice(&[
            ready("10.42.0.5", "n1"),
            ready("10.42.1.5", "n2"),
        ])],
    );
    assert_eq!(
        rules(&rs, "ext-ns/web/tcp/80"),
        [
            "ip saddr 10.42.0.0/16 goto svc-ns/web/tcp/80",
            "fib saddr type local jump mark-for-masquerade",
            "fib saddr type local goto svc-ns/web/tcp/80",
            "goto svl-ns/web/tcp/80",
        ]
    );
    assert_eq!(
        rules(&rs, "svl-ns/web/tcp/80")[1],
        "meta l4proto tcp dnat to numgen random mod 1 map @epl-ns/web/tcp/80"
    );
    assert_eq!(elements(&rs, "epl-ns/web/tcp/80"), ["0 : 10.42.0.5 . 8080"]);
    // The ClusterIP still uses every endpoint.
    assert_eq!(
        rules(&rs, "svc-ns/web/tcp/80")[1],
        "meta l4proto tcp dnat to numgen random mod 2 map @eps-ns/web/tcp/80"
    );
    assert_eq!(elements(&rs, "eps-ns/web/tcp/80").len(), 2);
    // No local endpoint: external traffic is dropped, not rejected.
    let rs = compute_for(&[svc], &[web_slice(&[ready("10.42.1.5", "n2")])]);
    assert_eq!(rules(&rs, "ext-ns/web/tcp/80").last().unwrap(), "drop");
    assert!(!rs.chains.contains_key("svl-ns/web/tcp/80"));
    assert!(!rs.sets.contains_key("epl-ns/web/tcp/80"));
    assert!(elements(&rs, "no-endpoint-nodeports").is_empty());
}

#[test]
fn internal_traffic_policy_local_serves_the_cluster_ip_from_local_endpoints() {
    let svc = service(
        "web",
        json!({ "clusterIP": "10.43.0.10", "internalTrafficPolicy": "Local",
                "ports": [{ "port": 80 }] }),
    );
    let sl = |eps: &[(&str, &str, bool, bool, bool)]| slice("web", json!([{ "port": 80 }]), eps);
    let rs = compute_for(
        std::slice::from_ref(&svc),
        &[sl(&[ready("10.42.0.5", "n1"), ready("10.42.1.5", "n2")])],
    );
    assert_eq!(
        elements(&rs, "service-ips"),
        ["10.43.0.10 . tcp . 80 : goto svl-ns/web/tcp/80"]
    );
    assert_eq!(
        rules(&rs, "svl-ns/web/tcp/80")[1],
        "meta l4proto tcp dnat to numgen random mod 1 map @epl-ns/web/tcp/80"
    );
    assert_eq!(elements(&rs, "epl-ns/web/tcp/80"), ["0 : 10.42.0.5 . 80"]);
    let rs = compute_for(&[svc], &[sl(&[ready("10.42.1.5", "n2")])]);
    assert_eq!(
        elements(&rs, "service-ips"),
        ["10.43.0.10 . tcp . 80 : drop"]
    );
}

/// A slice whose endpoints carry node hints (ip, node, hinted nodes), as
/// the EndpointSlice controller writes them for `PreferSameNode`.
fn hinted_slice(eps: &[(&str, &str, &[&str])]) -> EndpointSlice {
    let mut sl = web_slice(&[]);
    sl.endpoints = eps
        .iter()
        .map(|(ip, node, hints)| {
            let for_nodes: Vec<_> = hints.iter().map(|n| json!({ "name": n })).collect();
            serde_json::from_value(json!({
                "addresses": [ip], "nodeName": node,
                "conditions": { "ready": true },
                "hints": { "forNodes": for_nodes },
            }))
            .unwrap()
        })
        .collect();
    sl
}

#[test]
fn node_hints_keep_traffic_on_this_node_when_every_endpoint_has_them() {
    let eps = |rs: &Ruleset| elements(rs, "eps-ns/web/tcp/80").to_vec();
    // Every ready endpoint is hinted and one is for n1: only it is used.
    let rs = compute_for(
        &[web()],
        &[hinted_slice(&[
            ("10.42.0.5", "n1", &["n1"]),
            ("10.42.1.7", "n2", &["n2"]),
        ])],
    );
    assert_eq!(eps(&rs), ["0 : 10.42.0.5 . 8080"]);
    // None is for this node: every endpoint is used.
    let rs = compute_for(
        &[web()],
        &[hinted_slice(&[
            ("10.42.1.7", "n2", &["n2"]),
            ("10.42.2.7", "n3", &["n3"]),
        ])],
    );
    assert_eq!(eps(&rs).len(), 2);
    // One ready endpoint without hints: hints are ignored.
    let rs = compute_for(
        &[web()],
        &[hinted_slice(&[
            ("10.42.0.5", "n1", &["n1"]),
            ("10.42.1.7", "n2", &[]),
        ])],
    );
    assert_eq!(eps(&rs).len(), 2);
}

#[test]
fn client_ip_affinity_uses_a_timed_set_per_endpoint() {
    let svc = service(
        "web",
        json!({ "clusterIP": "10.43.0.10", "sessionAffinity": "ClientIP",
                "sessionAffinityConfig": { "clientIP": { "timeoutSeconds": 60 } },
                "ports": [{ "port": 80, "targetPort": 8080 }] }),
    );
    let rs = compute_for(
        &[svc],
        &[web_slice(&[
            ready("10.42.0.5", "n1"),
            ready("10.42.0.6", "n1"),
        ])],
    );
    let set = "aff-ns/web/tcp/80__10.42.0.5/8080/60";
    assert_eq!(
        rs.sets[set].def,
        "type ipv4_addr ; flags dynamic,timeout ; timeout 60s ;"
    );
    assert!(rs.sets[set].dynamic);
    assert_eq!(
        rules(&rs, "svc-ns/web/tcp/80")[1..3],
        [
            format!("ip saddr @{set} goto ep-ns/web/tcp/80__10.42.0.5/8080"),
            "ip saddr @aff-ns/web/tcp/80__10.42.0.6/8080/60 goto ep-ns/web/tcp/80__10.42.0.6/8080"
                .to_string(),
        ]
    );
    assert_eq!(
        rules(&rs, "svc-ns/web/tcp/80")[3],
        "numgen random mod 2 vmap { 0 : goto ep-ns/web/tcp/80__10.42.0.5/8080, 1 : goto ep-ns/web/tcp/80__10.42.0.6/8080 }"
    );
    assert_eq!(
        rules(&rs, "ep-ns/web/tcp/80__10.42.0.5/8080"),
        [
            format!("update @{set} {{ ip saddr }}"),
            "meta l4proto tcp dnat to 10.42.0.5:8080".to_string()
        ]
    );
    // Affinity needs the per-endpoint chains, not the endpoint map; hairpin
    // traffic is caught by the same set as for other services.
    assert!(!rs.sets.contains_key("eps-ns/web/tcp/80"));
    assert_eq!(elements(&rs, "hairpin").len(), 2);
    // Re-applying re-declares the set but never flushes it.
    let script = rs.render(Some(&rs));
    assert!(script.contains(&format!("add set ip t {set} {{")));
    assert!(!script.contains(&format!("flush set ip t {set}")));
    assert!(script.contains("flush map ip t service-ips\n"));
}

#[test]
fn re_render_flushes_refills_and_deletes_what_is_gone() {
    let before = compute_for(&[web()], &[web_slice(&[ready("10.42.0.5", "n1")])]);
    let after = compute_for(&[web()], &[web_slice(&[ready("10.42.0.6", "n1")])]);
    let script = after.render(Some(&before));
    let lines: Vec<&str> = script.lines().collect();
    assert_eq!(lines[..2], ["add table ip t", "flush table ip t"]);
    let map = "eps-ns/web/tcp/80";
    let flush = lines
        .iter()
        .position(|l| *l == format!("flush map ip t {map}"))
        .unwrap();
    assert_eq!(
        lines[flush + 1],
        format!("add element ip t {map} {{ 0 : 10.42.0.6 . 8080 }}")
    );
    assert!(!script.contains("delete "));
    // The service loses its endpoints: its chain and map go.
    let none = compute_for(&[web()], &[web_slice(&[])]);
    let script = none.render(Some(&after));
    let lines: Vec<&str> = script.lines().collect();
    assert!(lines.contains(&"delete chain ip t svc-ns/web/tcp/80"));
    assert!(lines.contains(&"delete map ip t eps-ns/web/tcp/80"));
    // Deletions come after every reference was flushed.
    let del = lines
        .iter()
        .position(|l| l.starts_with("delete chain"))
        .unwrap();
    assert!(lines[del..].iter().all(|l| l.starts_with("delete ")));
    assert!(!script.contains("delete table"));
}

#[test]
fn cidrs_parse_and_match() {
    let c: Cidr = "10.42.0.0/16".parse().unwrap();
    assert!(c.contains("10.42.200.1".parse().unwrap()));
    assert!(!c.contains("10.43.0.1".parse().unwrap()));
    assert!("10.42.0.0/33".parse::<Cidr>().is_err());
    assert!("nope/8".parse::<Cidr>().is_err());
    assert!("0.0.0.0/0"
        .parse::<Cidr>()
        .unwrap()
        .contains("1.2.3.4".parse().unwrap()));
}

#[test]
fn nodeport_cidrs_match_local_addresses() {
    let rs = compute(&Input {
        table: "t",
        services: vec![],
        slices: vec![],
        node_name: "n1",
        node_ips: vec![],
        nodeport_addresses: NodePortAddresses::Cidrs(vec!["192.168.0.0/16".parse().unwrap()]),
        cluster_cidr: None,
    });
    assert_eq!(
        rules(&rs, "services")[1],
        "fib daddr type local ip daddr != 127.0.0.0/8 ip daddr { 192.168.0.0/16 } meta l4proto . th dport vmap @service-nodeports"
    );
    assert!(!rs.sets.contains_key("nodeport-ips"));
}

#[test]
fn diff_touches_only_what_changed() {
    let two = web_slice(&[ready("10.42.0.5", "n1"), ready("10.42.0.6", "n1")]);
    let before = compute_for(&[web()], std::slice::from_ref(&two));
    assert_eq!(before.diff(&before), "");
    let after = compute_for(&[web()], &[web_slice(&[ready("10.42.0.6", "n1")])]);
    let script = after.diff(&before);
    // The endpoint count changed, so the service chain's rule does too.
    assert_eq!(
        script.lines().collect::<Vec<_>>(),
        [
            "flush chain ip t svc-ns/web/tcp/80",
            "add rule ip t svc-ns/web/tcp/80 ip daddr 10.43.0.10 ip saddr != 10.42.0.0/16 jump mark-for-masquerade",
            "add rule ip t svc-ns/web/tcp/80 meta l4proto tcp dnat to numgen random mod 1 map @eps-ns/web/tcp/80",
            "delete element ip t eps-ns/web/tcp/80 { 0, 1 }",
            "add element ip t eps-ns/web/tcp/80 { 0 : 10.42.0.6 . 8080 }",
            "delete element ip t hairpin { 10.42.0.5 . 10.42.0.5 }",
        ]
    );
    // No endpoints left: the map entry moves to the reject map, the chain
    // and the endpoint map go (the map after the rule that used it).
    let none = compute_for(&[web()], &[web_slice(&[])]);
    assert_eq!(
        none.diff(&after).lines().collect::<Vec<_>>(),
        [
            "delete element ip t hairpin { 10.42.0.6 . 10.42.0.6 }",
            "add element ip t no-endpoint-services { 10.43.0.10 . tcp . 80 : goto reject-chain }",
            "delete element ip t service-ips { 10.43.0.10 . tcp . 80 }",
            "flush chain ip t svc-ns/web/tcp/80",
            "delete chain ip t svc-ns/web/tcp/80",
            "delete map ip t eps-ns/web/tcp/80",
        ]
    );
    // And back: the map is declared before the rule that uses it.
    assert_eq!(
        before.diff(&none).lines().collect::<Vec<_>>(),
        [
            "add chain ip t svc-ns/web/tcp/80",
            "add map ip t eps-ns/web/tcp/80 { typeof numgen random mod 1 : ip daddr . tcp dport ; }",
            "add rule ip t svc-ns/web/tcp/80 ip daddr 10.43.0.10 ip saddr != 10.42.0.0/16 jump mark-for-masquerade",
            "add rule ip t svc-ns/web/tcp/80 meta l4proto tcp dnat to numgen random mod 2 map @eps-ns/web/tcp/80",
            "add element ip t eps-ns/web/tcp/80 { 0 : 10.42.0.5 . 8080, 1 : 10.42.0.6 . 8080 }",
            "add element ip t hairpin { 10.42.0.5 . 10.42.0.5, 10.42.0.6 . 10.42.0.6 }",
            "delete element ip t no-endpoint-services { 10.43.0.10 . tcp . 80 }",
            "add element ip t service-ips { 10.43.0.10 . tcp . 80 : goto svc-ns/web/tcp/80 }",
        ]
    );
}

#[test]
fn one_replaced_endpoint_changes_only_map_elements() {
    let before = compute_for(
        &[web()],
        &[web_slice(&[
            ready("10.42.0.5", "n1"),
            ready("10.42.0.6", "n1"),
            ready("10.42.0.7", "n2"),
        ])],
    );
    let after = compute_for(
        &[web()],
        &[web_slice(&[
            ready("10.42.0.5", "n1"),
            ready("10.42.0.8", "n2"),
            ready("10.42.0.7", "n2"),
        ])],
    );
    // The same count: no chain is touched, so the kernel revalidates
    // nothing; the indexes after the replaced one shift.
    assert_eq!(
        after.diff(&before).lines().collect::<Vec<_>>(),
        [
            "delete element ip t eps-ns/web/tcp/80 { 1, 2 }",
            "add element ip t eps-ns/web/tcp/80 { 1 : 10.42.0.7 . 8080, 2 : 10.42.0.8 . 8080 }",
            "delete element ip t hairpin { 10.42.0.6 . 10.42.0.6 }",
            "add element ip t hairpin { 10.42.0.8 . 10.42.0.8 }",
        ]
    );
}

#[test]
fn load_balancer_source_ranges_drop_other_clients_of_the_load_balancer_ips() {
    let mut svc = service(
        "web",
        json!({ "type": "LoadBalancer", "clusterIP": "10.43.0.10", "externalIPs": ["203.0.113.5"],
                "loadBalancerSourceRanges": ["192.168.0.0/16", " 10.1.0.0/24", "fd00::/8"],
                "ports": [{ "port": 80, "nodePort": 30080 }] }),
    );
    svc.status = serde_json::from_value(
        json!({ "loadBalancer": { "ingress": [{ "ip": "198.51.100.7" }] } }),
    )
    .unwrap();
    let rs = compute_for(&[svc], &[web_slice(&[ready("10.42.0.5", "n1")])]);
    // Only the load-balancer IP is filtered, not the external IP or the NodePort.
    assert_eq!(
        elements(&rs, "firewall-ips"),
        ["198.51.100.7 . tcp . 80 : goto fw-ns/web/tcp/80"]
    );
    assert_eq!(
        rules(&rs, "fw-ns/web/tcp/80"),
        ["ip saddr != { 192.168.0.0/16, 10.1.0.0/24 } drop"]
    );
    assert_eq!(
        rs.chains["filter-prerouting"].header.as_deref(),
        Some("type filter hook prerouting priority -110 ; policy accept ;")
    );
    assert_eq!(
        rules(&rs, "firewall-check"),
        ["ip daddr . meta l4proto . th dport vmap @firewall-ips"]
    );
    // The LB IP is served like an external IP.
    assert!(elements(&rs, "service-ips")
        .contains(&"198.51.100.7 . tcp . 80 : goto ext-ns/web/tcp/80".to_string()));
}

#[test]
fn udp_destinations_are_recorded_for_the_conntrack_cleanup() {
    use crate::conntrack::UdpDest;
    let svcs = [
        service(
            "dns",
            json!({ "type": "NodePort", "clusterIP": "10.43.0.10",
                    "externalIPs": ["203.0.113.7"],
                    "ports": [{ "name": "dns", "port": 53, "protocol": "UDP", "nodePort": 30053 },
                              { "name": "dns-tcp", "port": 53, "protocol": "TCP" }] }),
        ),
        service(
            "empty",
            json!({ "clusterIP": "10.43.0.11", "ports": [{ "port": 53, "protocol": "UDP" }] }),
        ),
    ];
    let slices = [slice(
        "dns",
        json!([{ "name": "dns", "port": 8053, "protocol": "UDP" },
               { "name": "dns-tcp", "port": 8053, "protocol": "TCP" }]),
        &[ready("10.42.0.5", "n1"), ready("10.42.0.6", "n2")],
    )];
    let rs = compute_for(&svcs, &slices);
    let eps: std::collections::BTreeSet<Ipv4Addr> = ["10.42.0.5", "10.42.0.6"]
        .iter()
        .map(|ip| ip.parse().unwrap())
        .collect();
    let d = |ip: Option<&str>, port| UdpDest {
        ip: ip.map(|i| i.parse().unwrap()),
        port,
    };
    let want: crate::conntrack::UdpTargets = [
        (d(Some("10.43.0.10"), 53), eps.clone()),
        (d(Some("203.0.113.7"), 53), eps.clone()),
        (d(None, 30053), eps),
        (d(Some("10.43.0.11"), 53), Default::default()),
    ]
    .into_iter()
    .collect();
    // TCP ports are not recorded.
    assert_eq!(rs.udp, want);
}
