//! The computed ruleset in the real kernel (needs root, `ip`, `nft` and
//! /bin/busybox). Three network namespaces of this test's own:
//!
//! ```text
//!  client 192.168.77.2 ── 192.168.77.1 router 10.42.0.1 ── 10.42.0.5, 10.42.0.6 backend
//! ```
//!
//! The rules are loaded in the router, which forwards the client's traffic
//! (prerouting) and also connects itself (output hook). The backend runs
//! two busybox httpd, one per address, answering "one" and "two".
//! Every namespace and process is removed by name/PID at the end, also when
//! an assertion fails (Drop).

use std::net::Ipv4Addr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use proxy::nft::{Nft, NftCommand, NftLib};
use proxy::rules::{compute, Input, NodePortAddresses, Ruleset};
use serde_json::json;

const TABLE: &str = "wharf-test";

struct Topology {
    client: String,
    router: String,
    backend: String,
    children: Vec<Child>,
    dir: std::path::PathBuf,
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

/// `nft list ARGS` inside namespace `ns`, as text.
fn nft_list(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["ip", "netns", "exec", ns, "nft", "list"];
    all.extend_from_slice(args);
    String::from_utf8_lossy(&run(&all).stdout).into_owned()
}

fn must(args: &[&str]) {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Topology {
    fn new() -> Topology {
        let tag = format!(
            "{:x}{:x}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let dir = std::env::temp_dir().join(format!("wharf-test-{tag}"));
        let t = Topology {
            client: format!("wharf-test-{tag}-c"),
            router: format!("wharf-test-{tag}-r"),
            backend: format!("wharf-test-{tag}-b"),
            children: Vec::new(),
            dir,
        };
        for ns in [&t.client, &t.router, &t.backend] {
            must(&["ip", "netns", "add", ns]);
            t.exec_ok(ns, &["ip", "link", "set", "dev", "lo", "up"]);
        }
        // veth pairs are created inside the router so no host name collides.
        t.exec_ok(
            &t.router,
            &[
                "ip", "link", "add", "rc", "type", "veth", "peer", "name", "vc",
            ],
        );
        t.exec_ok(
            &t.router,
            &[
                "ip", "link", "add", "rb", "type", "veth", "peer", "name", "vb",
            ],
        );
        t.exec_ok(
            &t.router,
            &["ip", "link", "set", "dev", "vc", "netns", &t.client],
        );
        t.exec_ok(
            &t.router,
            &["ip", "link", "set", "dev", "vb", "netns", &t.backend],
        );
        t.exec_ok(
            &t.router,
            &["ip", "addr", "add", "192.168.77.1/24", "dev", "rc"],
        );
        t.exec_ok(
            &t.router,
            &["ip", "addr", "add", "10.42.0.1/24", "dev", "rb"],
        );
        t.exec_ok(&t.router, &["ip", "link", "set", "dev", "rc", "up"]);
        t.exec_ok(&t.router, &["ip", "link", "set", "dev", "rb", "up"]);
        t.exec_ok(&t.router, &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        // Like a real node, the router has a default route: the VIPs are
        // not local addresses, only the rules make them answer.
        t.exec_ok(
            &t.router,
            &["ip", "route", "add", "default", "via", "192.168.77.2"],
        );
        t.exec_ok(
            &t.client,
            &["ip", "addr", "add", "192.168.77.2/24", "dev", "vc"],
        );
        t.exec_ok(&t.client, &["ip", "link", "set", "dev", "vc", "up"]);
        t.exec_ok(
            &t.client,
            &["ip", "route", "add", "default", "via", "192.168.77.1"],
        );
        t.exec_ok(
            &t.backend,
            &["ip", "addr", "add", "10.42.0.5/24", "dev", "vb"],
        );
        t.exec_ok(
            &t.backend,
            &["ip", "addr", "add", "10.42.0.6/24", "dev", "vb"],
        );
        t.exec_ok(&t.backend, &["ip", "link", "set", "dev", "vb", "up"]);
        t.exec_ok(
            &t.backend,
            &["ip", "route", "add", "default", "via", "10.42.0.1"],
        );
        t
    }

    fn exec(&self, ns: &str, args: &[&str]) -> std::process::Output {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(args);
        run(&full)
    }

    fn exec_ok(&self, ns: &str, args: &[&str]) {
        let mut full = vec!["ip", "netns", "exec", ns];
        full.extend_from_slice(args);
        must(&full);
    }

    /// busybox httpd on `addr:8080` in the backend, answering `body`.
    fn httpd(&mut self, addr: &str, body: &str) {
        let www = self.dir.join(addr);
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("index.html"), body).unwrap();
        // /cgi-bin/ip answers the client address the backend sees.
        let cgi = www.join("cgi-bin");
        std::fs::create_dir_all(&cgi).unwrap();
        std::fs::write(
            cgi.join("ip"),
            "#!/bin/sh\nprintf 'Content-Type: text/plain\\r\\n\\r\\n%s\\n' \"$REMOTE_ADDR\"\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(cgi.join("ip"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.backend,
                "/bin/busybox",
                "httpd",
                "-f",
            ])
            .args(["-p", &format!("{addr}:8080"), "-h"])
            .arg(&www)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.children.push(child);
    }

    /// `wget` from `ns`: the body, or the error text.
    fn get(&self, ns: &str, url: &str) -> Result<String, String> {
        let out = self.exec(ns, &["timeout", "10", "/bin/busybox", "wget", "-qO-", url]);
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in [&self.client, &self.router, &self.backend] {
            let _ = run(&["ip", "netns", "del", ns]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn service(name: &str, spec: serde_json::Value) -> Service {
    serde_json::from_value(
        json!({ "metadata": { "name": name, "namespace": "default" }, "spec": spec }),
    )
    .unwrap()
}

fn slice(svc: &str, ips: &[&str]) -> EndpointSlice {
    let eps: Vec<_> = ips
        .iter()
        .map(|ip| json!({ "addresses": [ip], "nodeName": "router", "conditions": { "ready": true } }))
        .collect();
    serde_json::from_value(json!({
        "metadata": { "name": format!("{svc}-x"), "namespace": "default",
                      "labels": { "kubernetes.io/service-name": svc } },
        "addressType": "IPv4",
        "ports": [{ "port": 8080, "protocol": "TCP" }],
        "endpoints": eps,
    }))
    .unwrap()
}

fn ruleset(services: &[Service], slices: &[EndpointSlice]) -> Ruleset {
    compute(&Input {
        table: TABLE,
        services: services.iter().collect(),
        slices: slices.iter().collect(),
        node_name: "router",
        node_ips: vec![Ipv4Addr::new(192, 168, 77, 1)],
        nodeport_addresses: NodePortAddresses::Primary,
        cluster_cidr: Some("10.42.0.0/16".parse().unwrap()),
    })
}

#[test]
fn services_in_real_network_namespaces() {
    assert!(
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0")),
        "this test creates network namespaces and needs root"
    );
    let mut t = Topology::new();
    t.httpd("10.42.0.5", "one");
    t.httpd("10.42.0.6", "two");
    let services = vec![
        service(
            "web",
            json!({ "type": "NodePort", "clusterIP": "10.43.0.10",
            "ports": [{ "port": 80, "targetPort": 8080, "nodePort": 30080 }] }),
        ),
        service(
            "empty",
            json!({ "type": "NodePort", "clusterIP": "10.43.0.20",
            "ports": [{ "port": 80, "targetPort": 8080, "nodePort": 30081 }] }),
        ),
        service(
            "sticky",
            json!({ "clusterIP": "10.43.0.30", "sessionAffinity": "ClientIP",
            "ports": [{ "port": 80, "targetPort": 8080 }] }),
        ),
        {
            let mut lb = service(
                "lb",
                json!({ "type": "LoadBalancer", "clusterIP": "10.43.0.40",
                "loadBalancerSourceRanges": ["192.168.77.2/32"],
                "ports": [{ "port": 80, "targetPort": 8080, "nodePort": 30082 }] }),
            );
            lb.status = serde_json::from_value(
                json!({ "loadBalancer": { "ingress": [{ "ip": "203.0.113.9", "ipMode": "VIP" }] } }),
            )
            .unwrap();
            lb
        },
        service(
            "local",
            json!({ "type": "NodePort", "clusterIP": "10.43.0.50", "externalTrafficPolicy": "Local",
            "ports": [{ "port": 80, "targetPort": 8080, "nodePort": 30083 }] }),
        ),
        // UDP and SCTP endpoint maps load too (their rules are not TCP's).
        service(
            "dns",
            json!({ "clusterIP": "10.43.0.60", "ports": [
                { "name": "dns", "port": 53, "protocol": "UDP", "targetPort": 5353 },
                { "name": "sctp", "port": 9, "protocol": "SCTP", "targetPort": 9999 }] }),
        ),
    ];
    let dns = |ips: &[&str]| -> EndpointSlice {
        let eps: Vec<_> = ips
            .iter()
            .map(|ip| json!({ "addresses": [ip], "conditions": { "ready": true } }))
            .collect();
        serde_json::from_value(json!({
            "metadata": { "name": "dns-x", "namespace": "default",
                          "labels": { "kubernetes.io/service-name": "dns" } },
            "addressType": "IPv4",
            "ports": [{ "name": "dns", "port": 5353, "protocol": "UDP" },
                      { "name": "sctp", "port": 9999, "protocol": "SCTP" }],
            "endpoints": eps,
        }))
        .unwrap()
    };
    let slices = vec![
        slice("web", &["10.42.0.5", "10.42.0.6"]),
        slice("sticky", &["10.42.0.5", "10.42.0.6"]),
        slice("lb", &["10.42.0.5"]),
        slice("local", &["10.42.0.5"]),
        dns(&["10.42.0.6"]),
    ];
    // What the proxy uses: libnftables with a context kept open (inside
    // the router's namespace).
    let nft = NftLib::new(Some(&t.router)).expect("libnftables loads");
    let first = ruleset(&services, &slices);
    nft.apply(&first.render(None))
        .expect("the first ruleset loads");
    let listed = t.exec(&t.router, &["nft", "list", "table", "ip", TABLE]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    for (rule, elements) in [
        (
            "meta l4proto udp dnat ip to numgen random mod 1 map @eps-default/dns/udp/53",
            "elements = { 0 : 10.42.0.6 . 5353 }",
        ),
        (
            "meta l4proto sctp dnat ip to numgen random mod 1 map @eps-default/dns/sctp/9",
            "elements = { 0 : 10.42.0.6 . 9999 }",
        ),
    ] {
        assert!(listed.contains(rule), "{listed}");
        assert!(listed.contains(elements), "{listed}");
    }
    // Wait for both servers (they start asynchronously).
    for ip in ["10.42.0.5", "10.42.0.6"] {
        let deadline = Instant::now() + Duration::from_secs(10);
        while t.get(&t.router, &format!("http://{ip}:8080/")).is_err() {
            assert!(Instant::now() < deadline, "httpd on {ip} did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    // ClusterIP from a routed client (prerouting) spreads over both endpoints.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..24 {
        seen.insert(
            t.get(&t.client, "http://10.43.0.10/")
                .expect("ClusterIP from the client"),
        );
    }
    assert_eq!(seen, ["one", "two"].map(String::from).into());
    // ... and from the router itself (output hook).
    let body = t
        .get(&t.router, "http://10.43.0.10/")
        .expect("ClusterIP from the node");
    assert!(body == "one" || body == "two", "{body}");

    // NodePort on the router's address.
    let body = t
        .get(&t.client, "http://192.168.77.1:30080/")
        .expect("NodePort");
    assert!(body == "one" || body == "two", "{body}");

    // No endpoints: refused at once, not a timeout; for the NodePort too.
    for (ns, url) in [
        (&t.client, "http://10.43.0.20/"),
        (&t.router, "http://10.43.0.20/"),
        (&t.client, "http://192.168.77.1:30081/"),
    ] {
        let start = Instant::now();
        let err = t.get(ns, url).expect_err("a service without endpoints");
        assert!(err.contains("refused"), "{url}: {err}");
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "{url} took {:?}",
            start.elapsed()
        );
    }

    // A load-balancer IP with loadBalancerSourceRanges: the client (in
    // range) gets through; the router itself (outside) is dropped, so its
    // request times out.
    assert_eq!(
        t.get(&t.client, "http://203.0.113.9/").as_deref(),
        Ok("one")
    );
    let out = t.exec(
        &t.router,
        &[
            "timeout",
            "2",
            "/bin/busybox",
            "wget",
            "-qO-",
            "http://203.0.113.9/",
        ],
    );
    assert_eq!(out.status.code(), Some(124), "{out:?}");

    // Who the backend sees: the router (masqueraded) for a ClusterIP reached
    // from outside the cluster CIDR and for a NodePort under policy
    // Cluster; the client itself under externalTrafficPolicy Local; the
    // router again for an endpoint reaching itself (hairpin).
    let seen = |ns: &str, url: &str| t.get(ns, url).unwrap_or_else(|e| panic!("{url}: {e}"));
    assert_eq!(seen(&t.client, "http://10.43.0.50/cgi-bin/ip"), "10.42.0.1");
    assert_eq!(
        seen(&t.client, "http://192.168.77.1:30080/cgi-bin/ip"),
        "10.42.0.1"
    );
    assert_eq!(
        seen(&t.client, "http://192.168.77.1:30083/cgi-bin/ip"),
        "192.168.77.2"
    );
    assert_eq!(
        seen(&t.backend, "http://10.43.0.50/cgi-bin/ip"),
        "10.42.0.1"
    );

    // ClientIP affinity: one backend for every request of this client.
    let sticky: std::collections::BTreeSet<String> = (0..12)
        .map(|_| {
            t.get(&t.client, "http://10.43.0.30/")
                .expect("sticky service")
        })
        .collect();
    assert_eq!(sticky.len(), 1, "{sticky:?}");

    // A changed ruleset applied over the first one in one transaction:
    // web now has only "two"; empty gets "one"; the old chains are gone.
    let slices = vec![
        slice("web", &["10.42.0.6"]),
        slice("empty", &["10.42.0.5"]),
        slice("sticky", &["10.42.0.5", "10.42.0.6"]),
        dns(&["10.42.0.5", "10.42.0.6"]),
    ];
    let second = ruleset(&services, &slices);
    nft.apply(&second.diff(&first)).expect("the update applies");
    for _ in 0..8 {
        assert_eq!(t.get(&t.client, "http://10.43.0.10/").as_deref(), Ok("two"));
    }
    assert_eq!(t.get(&t.client, "http://10.43.0.20/").as_deref(), Ok("one"));
    // Hairpin: the endpoint reaches itself through its service (masqueraded,
    // or its reply would skip the router's conntrack).
    assert_eq!(
        t.get(&t.backend, "http://10.43.0.20/").as_deref(),
        Ok("one")
    );
    assert_eq!(
        t.get(&t.client, "http://192.168.77.1:30081/").as_deref(),
        Ok("one")
    );
    // Affinity survived the re-apply (its sets are never flushed).
    let again = t.get(&t.client, "http://10.43.0.30/").unwrap();
    assert!(sticky.contains(&again), "{again} vs {sticky:?}");
    let map = |name: &str| {
        let out = t.exec(&t.router, &["nft", "list", "map", "ip", TABLE, name]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let web = map("eps-default/web/tcp/80");
    assert!(web.contains("elements = { 0 : 10.42.0.6 . 8080 }"), "{web}");
    let empty = map("eps-default/empty/tcp/80");
    assert!(
        empty.contains("elements = { 0 : 10.42.0.5 . 8080 }"),
        "{empty}"
    );
    // ClientIP affinity keeps its per-endpoint chains.
    let listed = t.exec(&t.router, &["nft", "list", "table", "ip", TABLE]);
    let listed = String::from_utf8_lossy(&listed.stdout);
    // The UDP and SCTP rules were rewritten by a later nft run (which reads
    // the maps' types back from the kernel).
    assert!(listed
        .contains("meta l4proto udp dnat ip to numgen random mod 2 map @eps-default/dns/udp/53"));
    assert!(listed
        .contains("meta l4proto sctp dnat ip to numgen random mod 2 map @eps-default/dns/sctp/9"));
    assert!(listed.contains("chain ep-default/sticky/tcp/80__10.42.0.5/8080 {"));
    assert!(!listed.contains("chain ep-default/web/"), "{listed}");

    // A broken script changes nothing (one transaction).
    let bad = format!(
        "{}add rule ip {TABLE} services nonsense\n",
        second
            .render(Some(&second))
            .replace("10.42.0.6 . 8080", "10.42.0.5 . 8080")
    );
    let err = nft.apply(&bad).expect_err("a broken script").to_string();
    assert!(
        err.starts_with("nft rejected the ruleset: ") && err.contains("nonsense"),
        "{err}"
    );
    for _ in 0..4 {
        assert_eq!(t.get(&t.client, "http://10.43.0.10/").as_deref(), Ok("two"));
    }
    // web loses every endpoint: its chains (which refer to each other) go
    // in one diff, and it is refused at once.
    let third = ruleset(
        &services,
        &[
            slice("empty", &["10.42.0.5"]),
            slice("sticky", &["10.42.0.5", "10.42.0.6"]),
        ],
    );
    nft.apply(&third.diff(&second))
        .expect("removing every endpoint applies");
    for url in ["http://10.43.0.10/", "http://192.168.77.1:30080/"] {
        let err = t.get(&t.client, url).expect_err("web without endpoints");
        assert!(err.contains("refused"), "{url}: {err}");
    }
    nft.apply(&second.diff(&third)).expect("and back");
    assert_eq!(t.get(&t.client, "http://10.43.0.10/").as_deref(), Ok("two"));
    // Only our table was ever touched, and deleting it is clean.
    proxy::nft::delete_table(&nft, TABLE).unwrap();
    let tables = t.exec(&t.router, &["nft", "list", "tables"]);
    assert!(!String::from_utf8_lossy(&tables.stdout).contains(TABLE));
}

/// One namespace, deleted on drop.
struct Netns(String);

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = run(&["ip", "netns", "del", &self.0]);
    }
}

/// 1,000 Services × 10 endpoints: checks the kernel holds what was computed
/// and prints how long computing, rendering and applying take (a
/// measurement for the record, not a timed assertion).
#[test]
fn a_thousand_services_with_ten_endpoints_each() {
    let ns = Netns(format!("wharf-test-{:x}-scale", std::process::id()));
    must(&["ip", "netns", "add", &ns.0]);
    let mut services = Vec::new();
    let mut slices = Vec::new();
    for i in 0..1000u32 {
        let name = format!("s{i}");
        services.push(service(
            &name,
            json!({ "type": "NodePort",
            "clusterIP": format!("10.43.{}.{}", i / 250, i % 250 + 1),
            "ports": [{ "port": 80, "targetPort": 8080, "nodePort": 30000 + i }] }),
        ));
        let ips: Vec<String> = (0..10)
            .map(|j| format!("10.42.{}.{}", i / 25, (i % 25) * 10 + j + 1))
            .collect();
        let refs: Vec<&str> = ips.iter().map(String::as_str).collect();
        slices.push(slice(&name, &refs));
    }
    let t = Instant::now();
    let first = ruleset(&services, &slices);
    let compute = t.elapsed();
    let t = Instant::now();
    let script = first.render(None);
    let render = t.elapsed();
    let nft = NftCommand {
        netns: Some(ns.0.clone()),
    };
    let t = Instant::now();
    nft.apply(&script).expect("the full ruleset loads");
    let full = t.elapsed();
    // One endpoint of one service changes: only that is sent.
    slices[500] = slice("s500", &["10.42.99.1"]);
    let second = ruleset(&services, &slices);
    let script2 = second.diff(&first);
    let t = Instant::now();
    nft.apply(&script2).expect("the update applies");
    let update = t.elapsed();
    // The same change back and forth through libnftables (what the proxy
    // uses; the binary above is its fallback), whose context stays open.
    let lib = NftLib::new(Some(&ns.0)).expect("libnftables loads");
    let mut lib_updates = Vec::new();
    for (to, from) in [(&first, &second), (&second, &first)] {
        let t = Instant::now();
        lib.apply(&to.diff(from)).expect("the update applies");
        lib_updates.push(t.elapsed());
    }
    // The periodic refill of the whole table (same contents).
    let t = Instant::now();
    lib.apply(&second.render(Some(&second)))
        .expect("the refill applies");
    let refill = t.elapsed();

    let count = |what: &str| {
        let out = run(&[
            "ip", "netns", "exec", &ns.0, "nft", "list", "map", "ip", TABLE, what,
        ]);
        String::from_utf8_lossy(&out.stdout)
            .matches(" : goto ")
            .count()
    };
    assert_eq!(count("service-ips"), 1000);
    assert_eq!(count("service-nodeports"), 1000);
    let chain = nft_list(&ns.0, &["chain", "ip", TABLE, "svc-default/s500/tcp/80"]);
    assert!(
        chain.contains("dnat ip to numgen random mod 1 map @eps-default/s500/tcp/80"),
        "{chain}"
    );
    let map = nft_list(&ns.0, &["map", "ip", TABLE, "eps-default/s500/tcp/80"]);
    assert!(
        map.contains("elements = { 0 : 10.42.99.1 . 8080 }"),
        "{map}"
    );
    let n_chains = nft_list(&ns.0, &["chains", "ip"])
        .lines()
        .filter(|l| l.trim_start().starts_with("chain "))
        .count();
    assert_eq!(n_chains, second.chains.len());
    // A few chains per service-port (svc-, ext-), none per endpoint.
    assert_eq!(second.chains.len(), first.chains.len());
    assert!(first.chains.len() < 2100, "{}", first.chains.len());
    println!(
        "1000 services x 10 endpoints: {} rules+elements, {} chains, script {} KiB; \
         compute {:?}, render {:?}, first (full) apply {:?}, one endpoint changed (diff of {} lines) {:?} \
         (nft binary), {:?} (libnftables), refill of the whole table {:?}",
        first.size(),
        first.chains.len(),
        script.len() / 1024,
        compute,
        render,
        full,
        script2.lines().count(),
        update,
        lib_updates,
        refill
    );
}

/// The conntrack cleanup against the real kernel (conntrack-tools in a
/// network namespace of the test's): entries NATed to a removed endpoint
/// go, others stay; a destination that gains endpoints loses its
/// un-NATed entries; nothing matching is not an error.
#[test]
fn stale_udp_conntrack_entries_are_deleted() {
    use proxy::conntrack::{Conntrack, ConntrackCommand, Flush, UdpDest};
    let ns = Netns(format!("wharf-test-{:x}-ct", std::process::id()));
    must(&["ip", "netns", "add", &ns.0]);
    let insert = |dst: &str, sport: &str, reply_src: &str, reply_sport: &str| {
        must(&[
            "ip",
            "netns",
            "exec",
            &ns.0,
            "conntrack",
            "-I",
            "-p",
            "udp",
            "-s",
            "10.42.0.9",
            "-d",
            dst,
            "--sport",
            sport,
            "--dport",
            "53",
            "-r",
            reply_src,
            "-q",
            "10.42.0.9",
            "--reply-port-src",
            reply_sport,
            "--reply-port-dst",
            sport,
            "-t",
            "120",
        ])
    };
    insert("10.43.0.60", "40000", "10.42.0.5", "8053"); // NATed to .5
    insert("10.43.0.60", "40001", "10.42.0.6", "8053"); // NATed to .6
    insert("10.43.0.61", "40002", "10.43.0.61", "53"); // never NATed
    let list = || {
        let out = run(&["ip", "netns", "exec", &ns.0, "conntrack", "-L", "-p", "udp"]);
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert_eq!(list().lines().count(), 3, "{}", list());
    let ct = ConntrackCommand {
        netns: Some(ns.0.clone()),
    };
    let dest = |ip: &str| UdpDest {
        ip: Some(ip.parse().unwrap()),
        port: 53,
    };
    ct.flush(&Flush::Endpoint(
        dest("10.43.0.60"),
        "10.42.0.5".parse().unwrap(),
    ))
    .unwrap();
    let left = list();
    assert!(!left.contains("sport=40000"), "{left}");
    assert!(
        left.contains("sport=40001") && left.contains("sport=40002"),
        "{left}"
    );
    ct.flush(&Flush::Dest(dest("10.43.0.61"))).unwrap();
    let left = list();
    assert!(
        !left.contains("sport=40002") && left.contains("sport=40001"),
        "{left}"
    );
    // Nothing matches: fine.
    ct.flush(&Flush::Dest(dest("10.43.0.99"))).unwrap();
    assert!(list().contains("sport=40001"));
}

/// libnftables' context lives in the namespace it is given; without one,
/// in the process's own, even when the thread that makes it has entered
/// another. A table that exists only in the test's namespace tells them
/// apart (on the host, only read: `list`).
#[test]
fn a_library_context_is_in_the_namespace_it_is_given() {
    let ns = Netns(format!("wharf-test-{:x}-lib", std::process::id()));
    must(&["ip", "netns", "add", &ns.0]);
    let table = format!("wharf-test-lib-{:x}", std::process::id());
    let inside = NftLib::new(Some(&ns.0)).expect("libnftables loads");
    inside
        .apply(&format!("add table ip {table}\n"))
        .expect("a table in the namespace");
    inside
        .apply(&format!("list table ip {table}\n"))
        .expect("listed where it was made");
    let name = ns.0.clone();
    let outside = std::thread::spawn(move || {
        let f = std::fs::File::open(format!("/run/netns/{name}")).unwrap();
        // SAFETY: setns on an open namespace file, for this thread only.
        let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&f), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "{}", std::io::Error::last_os_error());
        NftLib::new(None).expect("libnftables loads")
    })
    .join()
    .unwrap();
    let err = outside
        .apply(&format!("list table ip {table}\n"))
        .expect_err("not in the process's namespace");
    assert!(
        err.to_string().contains("No such file or directory"),
        "{err}"
    );
    // A script that cannot apply leaves the context usable.
    let bad = inside
        .apply(&format!(
            "add chain ip {table} c\nadd rule ip {table} c nonsense\n"
        ))
        .expect_err("a syntax error");
    assert!(bad.to_string().contains("nonsense"), "{bad}");
    assert!(!nft_list(&ns.0, &["table", "ip", &table]).contains("chain c"));
    inside
        .apply(&format!("add chain ip {table} c\n"))
        .expect("the next script applies");
    assert!(nft_list(&ns.0, &["table", "ip", &table]).contains("chain c {"));
}
