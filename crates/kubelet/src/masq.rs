//! Masquerading for the node's pods when no wharf pod network does it: one
//! nftables table, `ip wharf-pods-<hash>` (the bridge's hash), with the
//! bridge plugin's `ipMasq` rules for the whole podCIDR. Traffic from the
//! podCIDR to outside it is masqueraded, pod-to-pod traffic within it and
//! multicast keep their source, as with `ipMasq`; but the table is written
//! once per node instead of the plugin's iptables chain per pod, which cost
//! every CNI ADD and DEL about 9 and 7 `iptables` runs (tens of ms).
//!
//! The table is distinct from the pod network's (`wharf-net-<hash>`,
//! `crates/network`), whose rules are about the cluster CIDR: a node that
//! runs the network deletes this table instead (see [`sync`]). Like
//! flannel's and kube-proxy's rules, it stays on exit, so a restart does not
//! cut the pods' outbound traffic; `proxy::nft::delete_table` removes it.

use std::net::Ipv4Addr;
use std::path::Path;

use proxy::nft::Nft;

use crate::{Error, Result};

/// The table of the node whose data directory is `data_dir`: `wharf-pods-`
/// and the same 8 hex digits as its bridge (`wh…`) and the pod network's
/// device and table, so two nodes on one host never share it.
pub fn table_name(data_dir: &Path) -> String {
    format!("wharf-pods-{}", crate::cni::data_dir_tag(data_dir))
}

/// `cidr` (IPv4) with its host bits cleared, as `a.b.c.d/len`.
fn normalized(cidr: &str) -> Option<String> {
    let (ip, len) = cidr.split_once('/')?;
    let ip: Ipv4Addr = ip.parse().ok()?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some(format!("{}/{len}", Ipv4Addr::from(u32::from(ip) & mask)))
}

/// The whole table for `pod_cidr` as one nft script: delete and recreate
/// in one transaction, so the table is never seen half-written and a
/// rejected script changes nothing.
pub fn render(table: &str, pod_cidr: &str) -> Result<String> {
    let p = normalized(pod_cidr)
        .ok_or_else(|| Error::Runtime(format!("podCIDR {pod_cidr:?} is not an IPv4 CIDR")))?;
    Ok(format!(
        "add table ip {table}
delete table ip {table}
table ip {table} {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr {p} ip daddr {p} return
    ip saddr {p} ip daddr 224.0.0.0/4 return
    ip saddr {p} masquerade fully-random
  }}
}}
"
    ))
}

/// Bring the table to what the node needs: with `pod_cidr`, the table for
/// it (the kubelet masquerades); without, no table (the pod network's own
/// table masquerades, and one left from a run without it would masquerade
/// pod-to-pod traffic across nodes). Blocking: it runs nft.
pub fn sync(nft: &dyn Nft, table: &str, pod_cidr: Option<&str>) -> Result<()> {
    match pod_cidr {
        Some(c) => nft.apply(&render(table, c)?),
        None => proxy::nft::delete_table(nft, table),
    }
    .map_err(|e| Error::Runtime(format!("the pods' masquerade table {table}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proxy::nft::Recorder;

    #[test]
    fn renders_the_bridge_plugins_rules_for_the_pod_cidr_in_one_transaction() {
        assert_eq!(
            render("wharf-pods-x", "10.42.3.0/24").unwrap(),
            "add table ip wharf-pods-x\ndelete table ip wharf-pods-x\ntable ip wharf-pods-x {\n  chain postrouting {\n    type nat hook postrouting priority srcnat; policy accept;\n    ip saddr 10.42.3.0/24 ip daddr 10.42.3.0/24 return\n    ip saddr 10.42.3.0/24 ip daddr 224.0.0.0/4 return\n    ip saddr 10.42.3.0/24 masquerade fully-random\n  }\n}\n"
        );
    }

    #[test]
    fn host_bits_are_cleared_and_non_ipv4_cidrs_refused() {
        let s = render("t", "10.42.3.77/24").unwrap();
        assert!(s.contains("ip saddr 10.42.3.0/24 masquerade"));
        assert!(!s.contains(".77"));
        assert!(render("t", "0.0.0.0/0").unwrap().contains("0.0.0.0/0"));
        for bad in ["fd00::/64", "10.42.3.0", "10.42.3.0/33", "x/24"] {
            assert!(render("t", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn table_names_follow_the_bridges_hash() {
        let d = Path::new("/var/lib/wharf");
        let t = table_name(d);
        assert_eq!(
            t,
            format!("wharf-pods-{}", &crate::cni::bridge_name(d)[2..])
        );
        assert_ne!(t, table_name(Path::new("/tmp/other")));
    }

    #[test]
    fn sync_writes_the_table_or_removes_it() {
        let nft = Recorder::default();
        sync(&nft, "wharf-pods-x", Some("10.42.3.0/24")).unwrap();
        sync(&nft, "wharf-pods-x", None).unwrap();
        let scripts = nft.scripts.lock().unwrap().clone();
        assert_eq!(scripts.len(), 2);
        assert_eq!(scripts[0], render("wharf-pods-x", "10.42.3.0/24").unwrap());
        // Removing a table that may not exist: create-then-delete.
        assert_eq!(
            scripts[1],
            "add table ip wharf-pods-x\ndelete table ip wharf-pods-x\n"
        );
        // A bad podCIDR runs nothing; nft's refusal is the kubelet's error.
        assert!(sync(&nft, "wharf-pods-x", Some("fd00::/64")).is_err());
        assert_eq!(nft.scripts.lock().unwrap().len(), 2);
        *nft.fail.lock().unwrap() = Some("no nft".into());
        let e = sync(&nft, "wharf-pods-x", Some("10.42.3.0/24")).unwrap_err();
        assert!(e.to_string().contains("wharf-pods-x"), "{e}");
    }
}
