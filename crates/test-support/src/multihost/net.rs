//! The test network: one bridge in the root network namespace and, per
//! host, a named network namespace joined to it by a veth pair. Every name
//! carries the cluster's random suffix, so two harnesses (or a harness and
//! anything else on the machine) never touch each other's devices.

use std::net::Ipv4Addr;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

/// Run `ip ARGS`, failing with its stderr.
pub(crate) fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ip (install iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Run `ip ARGS` during cleanup: errors are ignored (the device may already
/// be gone with its namespace).
pub(crate) fn ip_quiet(args: &[&str]) {
    let _ = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// An IPv4 prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub addr: Ipv4Addr,
    pub len: u8,
}

impl Cidr {
    /// Parse `a.b.c.d/len` (or a bare address, as a /32).
    pub fn parse(s: &str) -> Option<Cidr> {
        let (a, l) = s.split_once('/').unwrap_or((s, "32"));
        let len: u8 = l.parse().ok().filter(|l| *l <= 32)?;
        Some(Cidr {
            addr: a.parse().ok()?,
            len,
        })
    }

    fn mask(&self) -> u32 {
        if self.len == 0 {
            0
        } else {
            u32::MAX << (32 - self.len)
        }
    }

    /// Whether the two prefixes share any address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        let m = self.mask() & other.mask();
        u32::from(self.addr) & m == u32::from(other.addr) & m
    }
}

/// The prefixes the root namespace already routes or holds addresses in
/// (the default route is not a conflict: it is what every subnet falls
/// back to).
pub(crate) fn used_prefixes() -> Result<Vec<Cidr>> {
    let mut used = Vec::new();
    for args in [
        &["-4", "-o", "route", "show", "table", "all"][..],
        &["-4", "-o", "addr", "show"][..],
    ] {
        let out = Command::new("ip")
            .args(args)
            .output()
            .context("running ip (install iproute2)")?;
        let text = String::from_utf8_lossy(&out.stdout);
        for line in text.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            let candidates: Vec<&str> = if args[2] == "route" {
                // `[type] DST ...`: the first word that parses as a prefix.
                words.iter().take(2).copied().collect()
            } else {
                words
                    .windows(2)
                    .filter(|w| w[0] == "inet")
                    .map(|w| w[1])
                    .collect()
            };
            if let Some(c) = candidates.iter().find_map(|w| Cidr::parse(w)) {
                used.push(c);
            }
        }
    }
    Ok(used)
}

/// The cluster's own ranges, which the test subnet must stay clear of.
pub const CLUSTER_CIDR: &str = "10.42.0.0/16";
pub const SERVICE_CIDR: &str = "10.43.0.0/16";

/// Pick a /24 in 172.20.0.0/14 that overlaps nothing the host routes and
/// neither cluster range; `seed` varies the start so concurrent harnesses
/// spread out.
pub(crate) fn pick_subnet(seed: u64) -> Result<Cidr> {
    let mut used = used_prefixes()?;
    used.push(Cidr::parse(CLUSTER_CIDR).expect("valid"));
    used.push(Cidr::parse(SERVICE_CIDR).expect("valid"));
    // 172.20.0.0 - 172.23.255.0: 1024 candidates.
    for k in 0..1024u64 {
        let n = ((seed + k) % 1024) as u32;
        let c = Cidr {
            addr: Ipv4Addr::from(u32::from(Ipv4Addr::new(172, 20, 0, 0)) + (n << 8)),
            len: 24,
        };
        if !used.iter().any(|u| u.len > 0 && u.overlaps(&c)) {
            return Ok(c);
        }
    }
    bail!("no free /24 in 172.20.0.0/14 for the test network")
}

/// Address `host` (1-254) of a /24.
pub(crate) fn host_addr(subnet: Cidr, host: u8) -> Ipv4Addr {
    let o = subnet.addr.octets();
    Ipv4Addr::new(o[0], o[1], o[2], host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_overlap() {
        let a = Cidr::parse("10.42.0.0/16").unwrap();
        assert!(a.overlaps(&Cidr::parse("10.42.7.0/24").unwrap()));
        assert!(a.overlaps(&Cidr::parse("10.0.0.0/8").unwrap()));
        assert!(!a.overlaps(&Cidr::parse("10.43.0.0/16").unwrap()));
        assert!(Cidr::parse("172.20.1.5")
            .unwrap()
            .overlaps(&Cidr::parse("172.20.1.0/24").unwrap()));
        assert!(!Cidr::parse("172.20.2.0/24")
            .unwrap()
            .overlaps(&Cidr::parse("172.20.1.0/24").unwrap()));
        assert_eq!(Cidr::parse("1.2.3.4/33"), None);
        assert_eq!(Cidr::parse("default"), None);
    }

    #[test]
    fn picked_subnet_is_clear_of_the_host_and_the_cluster() {
        let s = pick_subnet(7).unwrap();
        assert_eq!(s.len, 24);
        for u in used_prefixes().unwrap() {
            if u.len > 0 {
                assert!(!u.overlaps(&s), "{s:?} overlaps {u:?}");
            }
        }
        assert!(!s.overlaps(&Cidr::parse(CLUSTER_CIDR).unwrap()));
        assert_eq!(host_addr(s, 10).octets()[3], 10);
    }
}
