//! Masquerading for traffic leaving the cluster CIDR, in our own nftables
//! table (flannel's four rules). It replaces the CNI bridge plugin's
//! `ipMasq`, which runs iptables for every pod. Pod-to-pod traffic (also
//! across nodes, and to a ClusterIP once DNATed to a pod) keeps its source;
//! pod-to-outside is masqueraded; so is host-to-remote-pod traffic, whose
//! replies must come back through the tunnel.

use crate::plan::Cidr;

/// The whole table as one nft script: delete and recreate in one
/// transaction, so the table is never seen half-written and a rejected
/// script changes nothing.
pub fn render(table: &str, cluster: Cidr, own_pod_cidr: Option<Cidr>) -> String {
    let cluster = cluster.normalized();
    let mut s = format!("add table ip {table}\ndelete table ip {table}\ntable ip {table} {{\n");
    s.push_str("  chain postrouting {\n");
    s.push_str("    type nat hook postrouting priority srcnat; policy accept;\n");
    s.push_str(&format!(
        "    ip saddr {cluster} ip daddr {cluster} return\n"
    ));
    s.push_str(&format!(
        "    ip saddr {cluster} ip daddr 224.0.0.0/4 return\n"
    ));
    s.push_str(&format!("    ip saddr {cluster} masquerade fully-random\n"));
    if let Some(own) = own_pod_cidr {
        // The host talking to its own pods keeps its address.
        s.push_str(&format!(
            "    ip saddr != {cluster} ip daddr {} return\n",
            own.normalized()
        ));
    }
    s.push_str(&format!(
        "    ip saddr != {cluster} ip daddr {cluster} masquerade fully-random\n"
    ));
    s.push_str("  }\n}\n");
    s
}

/// The script that removes the table (a missing one is fine).
pub fn delete(table: &str) -> String {
    format!("add table ip {table}\ndelete table ip {table}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_flannels_rules_in_one_transaction() {
        let s = render(
            "wharf-net-x",
            "10.42.0.0/16".parse().unwrap(),
            Some("10.42.3.0/24".parse().unwrap()),
        );
        assert_eq!(
            s,
            "add table ip wharf-net-x\ndelete table ip wharf-net-x\ntable ip wharf-net-x {\n  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n    ip saddr 10.42.0.0/16 ip daddr 10.42.0.0/16 return\n    ip saddr 10.42.0.0/16 ip daddr 224.0.0.0/4 return\n    ip saddr 10.42.0.0/16 masquerade fully-random\n    ip saddr != 10.42.0.0/16 ip daddr 10.42.3.0/24 return\n    ip saddr != 10.42.0.0/16 ip daddr 10.42.0.0/16 masquerade fully-random\n  }\n}\n"
        );
    }

    #[test]
    fn host_bits_are_cleared_and_own_cidr_is_optional() {
        let s = render("t", "10.42.7.9/16".parse().unwrap(), None);
        assert!(s.contains("ip saddr 10.42.0.0/16 masquerade"));
        assert!(!s.contains("/24"));
        assert_eq!(s.matches("masquerade").count(), 2);
        assert_eq!(s.matches("return").count(), 2);
    }
}
