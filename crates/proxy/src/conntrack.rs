//! Stale UDP conntrack entries, cleared the way kube-proxy clears them.
//!
//! A UDP "connection" is only NATed on its first packet. A client that sent
//! to a Service address before its rules existed (or before it had an
//! endpoint) keeps an entry that sends every later packet of that flow
//! nowhere; one whose endpoint went away keeps sending to the dead address.
//! TCP recovers by itself (resets, new connections), UDP does not. So after
//! every apply the proxy compares the UDP destinations and their endpoints
//! with the previous ones ([`stale`]) and deletes the matching entries
//! through the `conntrack` tool ([`ConntrackCommand`]), the OS boundary.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::process::Command;

/// Why a flush failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("running conntrack: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("{0}")]
    Failed(String),
}

/// A UDP destination the proxy serves: an address and port (a ClusterIP,
/// external or load-balancer IP), or a NodePort on any address (`ip`
/// `None`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UdpDest {
    pub ip: Option<Ipv4Addr>,
    pub port: u16,
}

/// Every UDP destination with the endpoint addresses it is DNATed to.
pub type UdpTargets = BTreeMap<UdpDest, BTreeSet<Ipv4Addr>>;

/// One deletion of conntrack entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flush {
    /// Every UDP entry to the destination: it had no endpoint (or no rule)
    /// and now has one, so un-NATed entries must go.
    Dest(UdpDest),
    /// The entries to the destination that were NATed to an endpoint that
    /// is gone.
    Endpoint(UdpDest, Ipv4Addr),
}

/// What to flush going from `before` to `now`.
pub fn stale(before: &UdpTargets, now: &UdpTargets) -> Vec<Flush> {
    let none = BTreeSet::new();
    let mut out = Vec::new();
    for (dest, eps) in now {
        if !eps.is_empty() && before.get(dest).unwrap_or(&none).is_empty() {
            out.push(Flush::Dest(*dest));
        }
    }
    for (dest, old) in before {
        let new = now.get(dest).unwrap_or(&none);
        for ep in old.difference(new) {
            out.push(Flush::Endpoint(*dest, *ep));
        }
    }
    out
}

/// The kernel's connection tracking table, as far as the proxy changes it.
pub trait Conntrack: Send + Sync {
    /// Delete the entries `flush` names; none matching is not an error.
    fn flush(&self, flush: &Flush) -> Result<(), Error>;
}

/// The `conntrack` tool (conntrack-tools), optionally inside a network
/// namespace (`ip netns exec`), which the integration test uses.
#[derive(Clone, Debug, Default)]
pub struct ConntrackCommand {
    pub netns: Option<String>,
}

/// The arguments after `conntrack` for `flush`.
pub fn args(flush: &Flush) -> Vec<String> {
    let (dest, nat) = match flush {
        Flush::Dest(d) => (d, None),
        Flush::Endpoint(d, ep) => (d, Some(ep)),
    };
    let mut a: Vec<String> = ["-D", "-p", "udp", "--orig-port-dst"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    a.push(dest.port.to_string());
    if let Some(ip) = dest.ip {
        a.extend(["--orig-dst".to_string(), ip.to_string()]);
    }
    // The reply of a DNATed flow comes from its endpoint. (conntrack's
    // `--dst-nat` would also need the entry's DST_NAT status bit.)
    if let Some(ep) = nat {
        a.extend(["--reply-src".to_string(), ep.to_string()]);
    }
    a
}

impl Conntrack for ConntrackCommand {
    fn flush(&self, flush: &Flush) -> Result<(), Error> {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "conntrack"]);
                c
            }
            None => Command::new("conntrack"),
        };
        let out = cmd.args(args(flush)).output()?;
        let err = String::from_utf8_lossy(&out.stderr);
        // conntrack exits 1 when nothing matched ("0 flow entries have
        // been deleted"): that is the common case, not a failure.
        if out.status.success() || err.contains("0 flow entries") {
            return Ok(());
        }
        Err(Error::Failed(format!(
            "conntrack {}: {}",
            args(flush).join(" "),
            err.trim()
        )))
    }
}

/// A fake that records every flush, for unit tests.
#[derive(Default)]
pub struct Recorder {
    pub flushes: std::sync::Mutex<Vec<Flush>>,
}

impl Conntrack for Recorder {
    fn flush(&self, flush: &Flush) -> Result<(), Error> {
        self.flushes.lock().unwrap().push(flush.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ip: &str, port: u16) -> UdpDest {
        UdpDest {
            ip: Some(ip.parse().unwrap()),
            port,
        }
    }

    fn targets(v: &[(UdpDest, &[&str])]) -> UdpTargets {
        v.iter()
            .map(|(k, eps)| (*k, eps.iter().map(|e| e.parse().unwrap()).collect()))
            .collect()
    }

    #[test]
    fn a_destination_that_gains_its_first_endpoint_is_flushed_whole() {
        let dns = d("10.43.0.10", 53);
        // New service with endpoints (the proxy's first sync too).
        assert_eq!(
            stale(&UdpTargets::new(), &targets(&[(dns, &["10.42.0.5"])])),
            [Flush::Dest(dns)]
        );
        // From none to one.
        assert_eq!(
            stale(&targets(&[(dns, &[])]), &targets(&[(dns, &["10.42.0.5"])])),
            [Flush::Dest(dns)]
        );
        // A second endpoint added: nothing is stale.
        assert!(stale(
            &targets(&[(dns, &["10.42.0.5"])]),
            &targets(&[(dns, &["10.42.0.5", "10.42.0.6"])])
        )
        .is_empty());
        // Still none: nothing to do.
        assert!(stale(&UdpTargets::new(), &targets(&[(dns, &[])])).is_empty());
    }

    #[test]
    fn removed_endpoints_are_flushed_per_destination() {
        let (dns, np) = (
            d("10.43.0.10", 53),
            UdpDest {
                ip: None,
                port: 30053,
            },
        );
        let before = targets(&[(dns, &["10.42.0.5", "10.42.0.6"]), (np, &["10.42.0.5"])]);
        let now = targets(&[(dns, &["10.42.0.6"])]);
        let ep: Ipv4Addr = "10.42.0.5".parse().unwrap();
        assert_eq!(
            stale(&before, &now),
            // NodePorts (no address) sort first.
            [Flush::Endpoint(np, ep), Flush::Endpoint(dns, ep)]
        );
    }

    #[test]
    fn command_arguments() {
        let ep = "10.42.0.5".parse().unwrap();
        assert_eq!(
            args(&Flush::Endpoint(d("10.43.0.10", 53), ep)).join(" "),
            "-D -p udp --orig-port-dst 53 --orig-dst 10.43.0.10 --reply-src 10.42.0.5"
        );
        let np = UdpDest {
            ip: None,
            port: 30053,
        };
        assert_eq!(
            args(&Flush::Dest(np)).join(" "),
            "-D -p udp --orig-port-dst 30053"
        );
    }
}
