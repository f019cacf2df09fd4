//! A pod's resolver configuration, as upstream's kubelet computes it from
//! `dnsPolicy` and `dnsConfig` (containerd writes it as the sandbox's
//! resolv.conf):
//!
//! - `ClusterFirst` (the default): the cluster DNS, searching
//!   `<ns>.svc.<domain>`, `svc.<domain>`, `<domain>` and then the host's
//!   search domains, with `ndots:5`; a `hostNetwork` pod uses `Default`
//!   instead, unless its policy is `ClusterFirstWithHostNet`;
//! - `Default`: the host's resolv.conf;
//! - `None`: only `dnsConfig`.
//!
//! `dnsConfig` is then merged in: nameservers and searches appended without
//! duplicates, options replaced by name. At most 3 nameservers are kept.

use k8s_openapi::api::core::v1::Pod;

use crate::cri::api;

/// The node's DNS settings (`--cluster-dns`, `--cluster-domain`, the
/// host's resolv.conf).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NodeDns {
    /// The cluster DNS servers; empty: none is configured.
    pub cluster_dns: Vec<String>,
    /// The cluster domain.
    pub domain: String,
    /// The host's resolv.conf: nameservers, searches, options.
    pub host: Resolv,
}

/// The parts of a resolv.conf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolv {
    /// `nameserver` lines.
    pub servers: Vec<String>,
    /// The `search` (or `domain`) line's domains.
    pub searches: Vec<String>,
    /// The `options` line's options.
    pub options: Vec<String>,
}

impl Resolv {
    /// Parse resolv.conf text.
    pub fn parse(text: &str) -> Resolv {
        let mut r = Resolv::default();
        for line in text.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => r.servers.extend(words.next().map(String::from)),
                Some("search") | Some("domain") => {
                    r.searches = words.map(String::from).collect();
                }
                Some("options") => r.options.extend(words.map(String::from)),
                _ => {}
            }
        }
        r
    }
}

/// Upstream's limit on nameservers.
const MAX_SERVERS: usize = 3;

/// The sandbox's DNS config for `pod`.
pub fn dns_config(pod: &Pod, node: &NodeDns) -> api::DnsConfig {
    let spec = pod.spec.clone().unwrap_or_default();
    let host_network = spec.host_network.unwrap_or(false);
    let policy = spec.dns_policy.as_deref().unwrap_or("ClusterFirst");
    let cluster = match policy {
        "ClusterFirstWithHostNet" => true,
        "ClusterFirst" => !host_network,
        _ => false,
    };
    let mut out = if policy == "None" {
        api::DnsConfig::default()
    } else if cluster && !node.cluster_dns.is_empty() {
        let ns = pod.metadata.namespace.as_deref().unwrap_or("default");
        let d = &node.domain;
        let mut searches = vec![format!("{ns}.svc.{d}"), format!("svc.{d}"), d.clone()];
        searches.extend(node.host.searches.iter().cloned());
        api::DnsConfig {
            servers: node.cluster_dns.clone(),
            searches,
            options: vec!["ndots:5".into()],
        }
    } else {
        if cluster {
            tracing::warn!(
                pod = ?pod.metadata.name,
                "ClusterFirst without a cluster DNS configured: using the host's resolv.conf"
            );
        }
        api::DnsConfig {
            servers: node.host.servers.clone(),
            searches: node.host.searches.clone(),
            options: node.host.options.clone(),
        }
    };
    if let Some(c) = &spec.dns_config {
        for s in c.nameservers.iter().flatten() {
            if !out.servers.contains(s) {
                out.servers.push(s.clone());
            }
        }
        for s in c.searches.iter().flatten() {
            if !out.searches.contains(s) {
                out.searches.push(s.clone());
            }
        }
        for o in c.options.iter().flatten() {
            let name = o.name.clone().unwrap_or_default();
            let text = match &o.value {
                Some(v) => format!("{name}:{v}"),
                None => name.clone(),
            };
            out.options
                .retain(|x| x.split(':').next() != Some(name.as_str()));
            out.options.push(text);
        }
    }
    out.servers.truncate(MAX_SERVERS);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node() -> NodeDns {
        NodeDns {
            cluster_dns: vec!["10.43.0.10".into()],
            domain: "cluster.local".into(),
            host: Resolv::parse("search corp.example\nnameserver 192.0.2.53\noptions edns0\n"),
        }
    }

    fn pod(spec: serde_json::Value) -> Pod {
        serde_json::from_value(
            json!({"metadata": {"name": "p", "namespace": "team"}, "spec": spec}),
        )
        .unwrap()
    }

    #[test]
    fn cluster_first_searches_the_namespace_first() {
        let c = dns_config(&pod(json!({"containers": []})), &node());
        assert_eq!(c.servers, ["10.43.0.10"]);
        assert_eq!(
            c.searches,
            [
                "team.svc.cluster.local",
                "svc.cluster.local",
                "cluster.local",
                "corp.example"
            ]
        );
        assert_eq!(c.options, ["ndots:5"]);
    }

    #[test]
    fn host_network_and_default_use_the_host() {
        let host = dns_config(
            &pod(json!({"containers": [], "hostNetwork": true})),
            &node(),
        );
        assert_eq!(host.servers, ["192.0.2.53"]);
        assert_eq!(host.options, ["edns0"]);
        let with = dns_config(
            &pod(
                json!({"containers": [], "hostNetwork": true, "dnsPolicy": "ClusterFirstWithHostNet"}),
            ),
            &node(),
        );
        assert_eq!(with.servers, ["10.43.0.10"]);
        let default = dns_config(
            &pod(json!({"containers": [], "dnsPolicy": "Default"})),
            &node(),
        );
        assert_eq!(default.searches, ["corp.example"]);
    }

    #[test]
    fn none_takes_only_dns_config_and_config_merges() {
        let none = dns_config(
            &pod(json!({"containers": [], "dnsPolicy": "None", "dnsConfig": {
                "nameservers": ["1.1.1.1"], "searches": ["a.example"],
                "options": [{"name": "ndots", "value": "2"}, {"name": "rotate"}]}})),
            &node(),
        );
        assert_eq!(none.servers, ["1.1.1.1"]);
        assert_eq!(none.searches, ["a.example"]);
        assert_eq!(none.options, ["ndots:2", "rotate"]);
        let merged = dns_config(
            &pod(json!({"containers": [], "dnsConfig": {
                "nameservers": ["10.43.0.10", "9.9.9.9", "8.8.8.8", "7.7.7.7"],
                "options": [{"name": "ndots", "value": "1"}]}})),
            &node(),
        );
        assert_eq!(
            merged.servers,
            ["10.43.0.10", "9.9.9.9", "8.8.8.8"],
            "3 at most, no duplicate"
        );
        assert_eq!(
            merged.options,
            ["ndots:1"],
            "the pod's option replaces the default"
        );
    }
}
