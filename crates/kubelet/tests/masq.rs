//! The kubelet's masquerade table in the real kernel (needs root, iproute2,
//! nft, br_netfilter and /bin/busybox), in network namespaces this test
//! creates and deletes (also when an assertion fails), so no table or
//! device of the host is touched:
//!
//! ```text
//!  pod A 10.77.1.5 ─┐
//!                   podbr 10.77.1.1 host 172.31.77.1 ── 172.31.77.2 outside (no route to 10.77/16)
//!  pod B 10.77.1.6 ─┘
//! ```
//!
//! The host bridges its pods as the CNI bridge does (hairpin ports, bridged
//! traffic through the IP hooks). Pod A reaches "outside" only through the
//! table, with the host's address; pod A → pod B keeps its source (a table
//! masquerading everything from the podCIDR would not, which the test also
//! shows); another table in the host is never changed; the table can be
//! written again over itself, and removing it leaves nothing.

use std::process::Output;

use kubelet::masq;
use network::lab::Namespaces;
use proxy::nft::NftCommand;

const POD_CIDR: &str = "10.77.1.0/24";

/// The test's namespaces (`h`: the host, `pa`, `pb`: its pods, `out`).
struct Lab {
    nets: Namespaces,
}

impl Lab {
    fn ns(&self, role: &str) -> String {
        self.nets.ns(role)
    }

    fn exec(&self, role: &str, args: &[&str]) -> Output {
        self.nets.exec(role, args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Run each line (split on whitespace) in `role`; each must succeed.
    fn sh(&self, role: &str, script: &str) {
        self.nets.sh(role, script).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Apply an nft script in `role`.
    fn nft(&self, role: &str, script: &str) {
        let nft = NftCommand {
            netns: Some(self.ns(role)),
        };
        proxy::nft::Nft::apply(&nft, script).unwrap_or_else(|e| panic!("{role}: {e}"));
    }

    fn new() -> Lab {
        let lab = Lab {
            nets: Namespaces::new("wharf-kmq", &["h", "pa", "pb", "out"])
                .unwrap_or_else(|e| panic!("{e}")),
        };
        let (pa, pb, out) = (lab.ns("pa"), lab.ns("pb"), lab.ns("out"));
        lab.sh(
            "h",
            &format!(
                "ip link add vpa type veth peer name eth0a
                 ip link set eth0a netns {pa}
                 ip link add vpb type veth peer name eth0b
                 ip link set eth0b netns {pb}
                 ip link add ext type veth peer name ext0
                 ip link set ext0 netns {out}
                 ip link add name podbr type bridge
                 ip addr add 10.77.1.1/24 dev podbr
                 ip link set podbr up
                 ip addr add 172.31.77.1/24 dev ext
                 ip link set ext up
                 sysctl -qw net.ipv4.ip_forward=1"
            ),
        );
        // Bridged traffic goes through the IP hooks, as on a node (the
        // setting is the namespace's own).
        let brnf = lab.exec(
            "h",
            &["sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1"],
        );
        assert!(
            brnf.status.success(),
            "needs br_netfilter, as a node does: {}",
            String::from_utf8_lossy(&brnf.stderr)
        );
        for (role, veth, addr) in [("pa", "vpa", "10.77.1.5/24"), ("pb", "vpb", "10.77.1.6/24")] {
            lab.sh(
                "h",
                &format!(
                    "ip link set {veth} master podbr
                     ip link set {veth} type bridge_slave hairpin on
                     ip link set {veth} up"
                ),
            );
            let dev = if role == "pa" { "eth0a" } else { "eth0b" };
            lab.sh(
                role,
                &format!(
                    "ip link set {dev} name eth0
                     ip addr add {addr} dev eth0
                     ip link set eth0 up
                     ip route add default via 10.77.1.1"
                ),
            );
        }
        lab.sh(
            "out",
            "ip addr add 172.31.77.2/24 dev ext0
             ip link set ext0 up",
        );
        lab
    }

    /// Two pings from `from` to `to`; did they answer?
    fn ping(&self, from: &str, to: &str) -> bool {
        self.exec(from, &["/bin/busybox", "ping", "-c", "2", "-W", "2", to])
            .status
            .success()
    }

    /// (Re)create a probe table in `role` counting ICMP echo requests by
    /// source address, for each of `sources`.
    fn probe(&self, role: &str, sources: &[&str]) {
        let mut s = String::from(
            "add table ip probe\ndelete table ip probe\ntable ip probe {\n  chain input {\n    type filter hook input priority 0;\n",
        );
        for src in sources {
            s.push_str(&format!(
                "    ip saddr {src} icmp type echo-request counter\n"
            ));
        }
        s.push_str("  }\n}\n");
        self.nft(role, &s);
    }

    /// Echo requests from `src` the probe in `role` has counted.
    fn count(&self, role: &str, src: &str) -> u64 {
        let out = self.exec(role, &["nft", "list", "chain", "ip", "probe", "input"]);
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines()
            .find(|l| l.contains(&format!("ip saddr {src} ")))
            .and_then(|l| l.split("packets ").nth(1))
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no counter for {src} in {role}:\n{text}"))
    }

    fn list_tables(&self, role: &str) -> String {
        String::from_utf8_lossy(&self.exec(role, &["nft", "list", "tables"]).stdout).into_owned()
    }

    fn list_table(&self, role: &str, table: &str) -> Option<String> {
        let out = self.exec(role, &["nft", "list", "table", "ip", table]);
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }
}

#[test]
fn pods_reach_outside_masqueraded_and_each_other_with_their_own_address() {
    let lab = Lab::new();
    let nft = NftCommand {
        netns: Some(lab.ns("h")),
    };
    let table = masq::table_name(std::path::Path::new(&format!(
        "/nonexistent/{}",
        lab.ns("h")
    )));
    // Someone else's nat table in the same host: never touched.
    lab.nft(
        "h",
        "table ip bystander {\n  chain post {\n    type nat hook postrouting priority srcnat; policy accept;\n    ip daddr 192.0.2.1 counter\n  }\n}\n",
    );
    let bystander = lab
        .list_table("h", "bystander")
        .expect("the bystander table");

    // Without the table, "outside" cannot answer a pod.
    lab.probe("out", &["10.77.1.5", "172.31.77.1"]);
    assert!(
        !lab.ping("pa", "172.31.77.2"),
        "outside has no route to pods"
    );
    assert!(lab.count("out", "10.77.1.5") >= 1);

    // A table masquerading everything from the podCIDR would hide pod
    // A's address from pod B (bridged traffic passes the nat hook here).
    lab.nft(
        "h",
        &format!(
            "table ip {table} {{\n  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    ip saddr {POD_CIDR} masquerade\n  }}\n}}\n"
        ),
    );
    lab.probe("pb", &["10.77.1.5", "10.77.1.1"]);
    assert!(lab.ping("pa", "10.77.1.6"));
    assert!(
        lab.count("pb", "10.77.1.1") >= 1,
        "the check below can fail"
    );

    // The kubelet's table, written over it (and again: idempotent).
    masq::sync(&nft, &table, Some(POD_CIDR)).unwrap();
    masq::sync(&nft, &table, Some(POD_CIDR)).unwrap();
    let listed = lab.list_table("h", &table).expect("the kubelet's table");
    assert_eq!(listed.matches("masquerade").count(), 1, "{listed}");
    assert_eq!(listed.matches("return").count(), 2, "{listed}");
    assert_eq!(lab.list_tables("h").matches(&table).count(), 1);

    // Pod to pod: its own address.
    lab.probe("pb", &["10.77.1.5", "10.77.1.1"]);
    assert!(lab.ping("pa", "10.77.1.6"));
    assert!(lab.count("pb", "10.77.1.5") >= 2);
    assert_eq!(lab.count("pb", "10.77.1.1"), 0);

    // Pod to outside: the host's address, and the answers come back.
    lab.probe("out", &["10.77.1.5", "172.31.77.1"]);
    assert!(
        lab.ping("pa", "172.31.77.2"),
        "pod -> outside is masqueraded"
    );
    assert!(lab.ping("pb", "172.31.77.2"));
    assert!(lab.count("out", "172.31.77.1") >= 4);
    assert_eq!(lab.count("out", "10.77.1.5"), 0);

    // The host's own traffic keeps its address.
    lab.probe("pa", &["10.77.1.1", "172.31.77.1"]);
    assert!(lab.ping("h", "10.77.1.5"));
    assert!(lab.count("pa", "10.77.1.1") >= 2);

    // Removing it leaves nothing of ours, and the bystander as it was.
    proxy::nft::delete_table(&nft, &table).unwrap();
    proxy::nft::delete_table(&nft, &table).unwrap();
    assert!(lab.list_table("h", &table).is_none());
    assert!(!lab.list_tables("h").contains(&table));
    assert!(
        !lab.ping("pa", "172.31.77.2"),
        "masquerading came from the table"
    );
    assert_eq!(
        lab.list_table("h", "bystander").as_deref(),
        Some(&*bystander)
    );
}
