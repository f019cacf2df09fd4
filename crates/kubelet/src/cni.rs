//! The pod network's CNI configuration: one bridge per data directory with
//! host-local addresses from the node's `podCIDR`, and portmap for
//! `hostPort`. The bridge plugin never masquerades (`ipMasq` runs iptables
//! for every pod): an nft table does, the pod network's or the kubelet's
//! own (`masq.rs`). containerd reads the file from its `conf_dir` and
//! runs the plugins from `/usr/lib/cni`; it brings up each pod's `lo` itself
//! with the `loopback` plugin from the same directory.

use std::path::Path;

use crate::{Error, Result};

/// The bridge device of a data directory: `wh` and 8 hex digits of a hash
/// of its path, so two wharf instances (or a test and a real node) never
/// share or touch each other's device (15 characters at most).
pub fn bridge_name(data_dir: &Path) -> String {
    format!("wh{}", data_dir_tag(data_dir))
}

/// 8 hex digits of a hash of the (canonical) data directory: the bridge's,
/// the masquerade table's and the pod network's names end with it.
pub(crate) fn data_dir_tag(data_dir: &Path) -> String {
    let canon = std::fs::canonicalize(data_dir).unwrap_or_else(|_| data_dir.to_path_buf());
    let d = ring::digest::digest(&ring::digest::SHA256, canon.as_os_str().as_encoded_bytes());
    let h = d.as_ref();
    format!("{:02x}{:02x}{:02x}{:02x}", h[0], h[1], h[2], h[3])
}

/// The first usable address of an IPv4 CIDR: the bridge's (gateway's).
fn gateway(cidr: &str) -> Option<String> {
    let (ip, len) = cidr.split_once('/')?;
    let ip: std::net::Ipv4Addr = ip.parse().ok()?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 30)?;
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    Some(std::net::Ipv4Addr::from((u32::from(ip) & mask) + 1).to_string())
}

/// Settings of the bridge that come from the pod network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// The pods' MTU (the overlay's); None: the plugin's default.
    pub mtu: Option<u32>,
    /// The kubelet masquerades pod traffic leaving the podCIDR in its own
    /// nft table (`masq.rs`). Off when the `network` crate's table does it
    /// for the cluster CIDR. Either way the bridge plugin's `ipMasq` (an
    /// iptables chain per pod, tens of ms per CNI ADD and DEL) stays off.
    pub masquerade: bool,
}

impl Default for Options {
    /// A node without wharf's pod network: the kubelet masquerades.
    fn default() -> Options {
        Options {
            mtu: None,
            masquerade: true,
        }
    }
}

/// The conflist for `pod_cidr`.
pub fn conflist(
    bridge: &str,
    pod_cidr: &str,
    ipam_dir: &Path,
    opts: Options,
) -> Result<serde_json::Value> {
    let gw = gateway(pod_cidr).ok_or_else(|| {
        Error::Runtime(format!(
            "podCIDR {pod_cidr:?} is not an IPv4 CIDR of /30 or wider"
        ))
    })?;
    let mut conf = serde_json::json!({
        "cniVersion": "0.4.0",
        "name": "wharf",
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": false,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{ "subnet": pod_cidr, "gateway": gw }]],
                    "routes": [{ "dst": "0.0.0.0/0" }],
                    "dataDir": ipam_dir,
                },
            },
            { "type": "portmap", "capabilities": { "portMappings": true }, "snat": true },
        ],
    });
    if let Some(mtu) = opts.mtu {
        conf["plugins"][0]["mtu"] = mtu.into();
    }
    Ok(conf)
}

/// Write the conflist (atomically: containerd watches the directory).
pub fn write(
    conf_dir: &Path,
    bridge: &str,
    pod_cidr: &str,
    ipam_dir: &Path,
    opts: Options,
) -> Result<()> {
    let io = |what: String| move |source| Error::Io { what, source };
    std::fs::create_dir_all(conf_dir).map_err(io(format!("creating {}", conf_dir.display())))?;
    let body =
        serde_json::to_vec_pretty(&conflist(bridge, pod_cidr, ipam_dir, opts)?).expect("json");
    let path = conf_dir.join("10-wharf.conflist");
    if std::fs::read(&path).ok().as_deref() == Some(&body[..]) {
        return Ok(());
    }
    let tmp = conf_dir.join(".10-wharf.conflist.tmp");
    std::fs::write(&tmp, &body).map_err(io(format!("writing {}", tmp.display())))?;
    std::fs::rename(&tmp, &path).map_err(io(format!("renaming to {}", path.display())))?;
    tracing::info!(path = %path.display(), pod_cidr, bridge, "CNI configuration written");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_names_are_short_and_distinct() {
        let a = bridge_name(Path::new("/var/lib/wharf"));
        let b = bridge_name(Path::new("/tmp/other"));
        assert_eq!(a.len(), 10);
        assert!(a.starts_with("wh"));
        assert_ne!(a, b);
        assert_eq!(a, bridge_name(Path::new("/var/lib/wharf")));
    }

    #[test]
    fn conflist_uses_the_pod_cidr() {
        let c = conflist(
            "wh0",
            "10.42.3.0/24",
            Path::new("/d/ipam"),
            Options::default(),
        )
        .unwrap();
        let ipam = &c["plugins"][0]["ipam"];
        assert_eq!(ipam["ranges"][0][0]["subnet"], "10.42.3.0/24");
        assert_eq!(ipam["ranges"][0][0]["gateway"], "10.42.3.1");
        assert_eq!(c["plugins"][1]["type"], "portmap");
        assert_eq!(c["plugins"][0]["ipMasq"], false);
        assert!(c["plugins"][0].get("mtu").is_none());
        assert!(conflist("wh0", "fd00::/64", Path::new("/x"), Options::default()).is_err());
    }

    #[test]
    fn conflist_takes_the_networks_mtu_and_never_masquerades() {
        let opts = Options {
            mtu: Some(1450),
            masquerade: false,
        };
        let c = conflist("wh0", "10.42.3.0/24", Path::new("/d/ipam"), opts).unwrap();
        assert_eq!(c["plugins"][0]["mtu"], 1450);
        assert_eq!(c["plugins"][0]["ipMasq"], false);
    }
}
