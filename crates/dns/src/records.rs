//! The cluster zone's records as a pure function of Services and
//! EndpointSlices, following Kubernetes' DNS specification (and CoreDNS's
//! kubernetes plugin where the spec leaves a choice):
//!
//! - `<svc>.<ns>.svc.<zone>`: A/AAAA of the ClusterIPs; for a headless
//!   Service, of its ready endpoints; CNAME for an ExternalName Service;
//! - `<host>.<svc>.<ns>.svc.<zone>` for each ready endpoint of a headless
//!   Service: `<host>` is the endpoint's `hostname`, or its IP with dashes;
//! - `_<port>._<proto>.<svc>.<ns>.svc.<zone>`: SRV for named ports
//!   (priority 0, weight 100, as CoreDNS), pointing at the Service name, or
//!   at each endpoint's name for a headless Service;
//! - `<a-b-c-d>.<ns>.pod.<zone>`: A of that IP, without a lookup (CoreDNS's
//!   `pods insecure`, the default in kube-dns and k3s);
//! - PTR in `in-addr.arpa` and `ip6.arpa`: a ClusterIP names its Service, a
//!   ready endpoint of a headless Service its `<host>.<svc>.<ns>.svc.<zone>`
//!   name. Other reverse names are forwarded (CoreDNS's `fallthrough
//!   in-addr.arpa ip6.arpa` in k3s's Corefile).
//!
//! Endpoints count when `ready` is true or unset; names are lower case.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

/// One name's data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// IPv4 addresses.
    pub a: Vec<Ipv4Addr>,
    /// IPv6 addresses.
    pub aaaa: Vec<Ipv6Addr>,
    /// SRV records: (priority, weight, port, target FQDN without the dot).
    pub srv: Vec<(u16, u16, u16, String)>,
    /// The canonical name (ExternalName).
    pub cname: Option<String>,
    /// PTR targets (reverse names), FQDNs without the dot.
    pub ptr: Vec<String>,
}

/// What a name is, in the zone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// The name has data (which may lack the asked type: NODATA).
    Found(std::borrow::Cow<'a, Entry>),
    /// Inside the zone, no such name: NXDOMAIN.
    NoSuchName,
    /// Not in the cluster zone: forward.
    Outside,
}

/// The zone: every name's entry, by lower-case name without the final dot.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    zone: String,
    names: HashMap<String, Entry>,
    /// Reverse names (`4.3.2.1.in-addr.arpa`) with their PTR targets.
    reverse: HashMap<String, Entry>,
}

impl Table {
    /// Build the zone `zone` (e.g. `cluster.local`).
    pub fn build(zone: &str, services: &[Service], slices: &[EndpointSlice]) -> Table {
        let zone = zone.trim_end_matches('.').to_ascii_lowercase();
        let mut names: HashMap<String, Entry> = HashMap::new();
        let mut reverse: HashMap<String, Entry> = HashMap::new();
        let mut by_service: BTreeMap<(String, String), Vec<&EndpointSlice>> = BTreeMap::new();
        for s in slices {
            let (Some(ns), Some(svc)) = (
                s.metadata.namespace.as_deref(),
                s.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("kubernetes.io/service-name")),
            ) else {
                continue;
            };
            by_service
                .entry((ns.to_string(), svc.clone()))
                .or_default()
                .push(s);
        }
        for svc in services {
            let (Some(name), Some(ns)) = (
                svc.metadata.name.as_deref(),
                svc.metadata.namespace.as_deref(),
            ) else {
                continue;
            };
            let Some(spec) = &svc.spec else { continue };
            let fqdn = format!("{name}.{ns}.svc.{zone}").to_ascii_lowercase();
            if spec.type_.as_deref() == Some("ExternalName") {
                if let Some(target) = &spec.external_name {
                    names.entry(fqdn).or_default().cname =
                        Some(target.trim_end_matches('.').to_ascii_lowercase());
                }
                continue;
            }
            let ips: Vec<IpAddr> = spec
                .cluster_ips
                .clone()
                .or_else(|| spec.cluster_ip.clone().map(|ip| vec![ip]))
                .unwrap_or_default()
                .iter()
                .filter_map(|ip| ip.parse().ok())
                .collect();
            let headless = spec.cluster_ip.as_deref() == Some("None");
            let slices = by_service
                .get(&(ns.to_string(), name.to_string()))
                .map(Vec::as_slice)
                .unwrap_or_default();
            if headless {
                headless_records(&mut names, &mut reverse, &fqdn, slices);
            } else if !ips.is_empty() {
                let e = names.entry(fqdn.clone()).or_default();
                for ip in ips {
                    push_ip(e, ip);
                    push_ptr(&mut reverse, ip, &fqdn);
                }
                for p in spec.ports.iter().flatten() {
                    let Some(pname) = p.name.as_deref().filter(|n| !n.is_empty()) else {
                        continue;
                    };
                    let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
                    let srv = format!("_{pname}._{proto}.{fqdn}").to_ascii_lowercase();
                    let port = u16::try_from(p.port).unwrap_or(0);
                    names
                        .entry(srv)
                        .or_default()
                        .srv
                        .push((0, 100, port, fqdn.clone()));
                }
            }
        }
        Table {
            zone,
            names,
            reverse,
        }
    }

    /// The zone's name.
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// Names in the table.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// What `name` (any case, with or without the final dot) is.
    pub fn lookup(&self, name: &str) -> Lookup<'_> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if name.ends_with(".in-addr.arpa") || name.ends_with(".ip6.arpa") {
            return match self.reverse.get(&name) {
                Some(e) => Lookup::Found(std::borrow::Cow::Borrowed(e)),
                None => Lookup::Outside,
            };
        }
        let in_zone = name == self.zone || name.ends_with(&format!(".{}", self.zone));
        if !in_zone {
            return Lookup::Outside;
        }
        if let Some(e) = self.names.get(&name) {
            return Lookup::Found(std::borrow::Cow::Borrowed(e));
        }
        // <a-b-c-d>.<ns>.pod.<zone>
        let rest = &name[..name.len() - self.zone.len()];
        let labels: Vec<&str> = rest.trim_end_matches('.').split('.').collect();
        if let [ip, _ns, "pod"] = labels.as_slice() {
            if let Ok(v4) = ip.replace('-', ".").parse::<Ipv4Addr>() {
                return Lookup::Found(std::borrow::Cow::Owned(Entry {
                    a: vec![v4],
                    ..Entry::default()
                }));
            }
        }
        // A name above existing ones (e.g. `<ns>.svc.<zone>`) exists with
        // no data: NODATA rather than NXDOMAIN (empty non-terminal).
        let suffix = format!(".{name}");
        if self.names.keys().any(|k| k.ends_with(&suffix)) {
            return Lookup::Found(std::borrow::Cow::Owned(Entry::default()));
        }
        Lookup::NoSuchName
    }
}

fn push_ip(e: &mut Entry, ip: IpAddr) {
    match ip {
        IpAddr::V4(v4) if !e.a.contains(&v4) => e.a.push(v4),
        IpAddr::V6(v6) if !e.aaaa.contains(&v6) => e.aaaa.push(v6),
        _ => {}
    }
}

/// The reverse name of `ip`: `4.3.2.1.in-addr.arpa`, or the 32 nibbles
/// of an IPv6 address in reverse under `ip6.arpa`.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut s = String::with_capacity(72);
            for b in v6.octets().iter().rev() {
                s.push_str(&format!("{:x}.{:x}.", b & 0xf, b >> 4));
            }
            s.push_str("ip6.arpa");
            s
        }
    }
}

fn push_ptr(reverse: &mut HashMap<String, Entry>, ip: IpAddr, target: &str) {
    let e = reverse.entry(reverse_name(ip)).or_default();
    if !e.ptr.iter().any(|t| t == target) {
        e.ptr.push(target.to_string());
    }
}

fn headless_records(
    names: &mut HashMap<String, Entry>,
    reverse: &mut HashMap<String, Entry>,
    fqdn: &str,
    slices: &[&EndpointSlice],
) {
    // The Service name exists even with no endpoints (NODATA, not NXDOMAIN).
    names.entry(fqdn.to_string()).or_default();
    for s in slices {
        for ep in s.endpoints.iter().flatten() {
            let ready = ep.conditions.as_ref().and_then(|c| c.ready).unwrap_or(true);
            if !ready {
                continue;
            }
            for addr in &ep.addresses {
                let Ok(ip) = addr.parse::<IpAddr>() else {
                    continue;
                };
                push_ip(names.entry(fqdn.to_string()).or_default(), ip);
                let host = ep
                    .hostname
                    .clone()
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| addr.replace(['.', ':'], "-"));
                let host_fqdn = format!("{host}.{fqdn}").to_ascii_lowercase();
                push_ip(names.entry(host_fqdn.clone()).or_default(), ip);
                push_ptr(reverse, ip, &host_fqdn);
                for p in s.ports.iter().flatten() {
                    let (Some(pname), Some(port)) = (
                        p.name.as_deref().filter(|n| !n.is_empty()),
                        p.port.and_then(|p| u16::try_from(p).ok()),
                    ) else {
                        continue;
                    };
                    let proto = p.protocol.as_deref().unwrap_or("TCP").to_ascii_lowercase();
                    let srv = format!("_{pname}._{proto}.{fqdn}").to_ascii_lowercase();
                    let rec = (0, 100, port, host_fqdn.clone());
                    let e = names.entry(srv).or_default();
                    if !e.srv.contains(&rec) {
                        e.srv.push(rec);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc(v: serde_json::Value) -> Service {
        serde_json::from_value(v).unwrap()
    }

    fn slice(v: serde_json::Value) -> EndpointSlice {
        serde_json::from_value(v).unwrap()
    }

    fn table() -> Table {
        let services = vec![
            svc(json!({"metadata": {"name": "Web", "namespace": "default"},
                "spec": {"clusterIP": "10.43.0.20", "clusterIPs": ["10.43.0.20"],
                         "ports": [{"name": "http", "port": 80, "protocol": "TCP"}, {"port": 81}]}})),
            svc(json!({"metadata": {"name": "db", "namespace": "prod"},
                "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}})),
            svc(json!({"metadata": {"name": "ext", "namespace": "default"},
                "spec": {"type": "ExternalName", "externalName": "example.com."}})),
        ];
        let slices = vec![slice(json!({
        "metadata": {"name": "db-abc", "namespace": "prod",
                     "labels": {"kubernetes.io/service-name": "db"}},
        "addressType": "IPv4",
        "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": ["10.42.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
            {"addresses": ["10.42.1.6"], "conditions": {}},
            {"addresses": ["10.42.1.7"], "conditions": {"ready": false}},
        ]}))];
        Table::build("cluster.local", &services, &slices)
    }

    fn found(t: &Table, name: &str) -> Entry {
        match t.lookup(name) {
            Lookup::Found(e) => e.into_owned(),
            other => panic!("{name}: {other:?}"),
        }
    }

    #[test]
    fn cluster_ip_services_and_their_named_ports() {
        let t = table();
        let e = found(&t, "web.default.svc.cluster.local.");
        assert_eq!(e.a, ["10.43.0.20".parse::<Ipv4Addr>().unwrap()]);
        let srv = found(&t, "_http._tcp.web.default.svc.cluster.local");
        assert_eq!(
            srv.srv,
            [(0, 100, 80, "web.default.svc.cluster.local".into())]
        );
        // The unnamed port has no SRV record.
        assert_eq!(
            t.lookup("_81._tcp.web.default.svc.cluster.local"),
            Lookup::NoSuchName
        );
    }

    #[test]
    fn headless_services_answer_with_ready_endpoints_and_their_names() {
        let t = table();
        let e = found(&t, "db.prod.svc.cluster.local");
        let ips: Vec<String> = e.a.iter().map(|i| i.to_string()).collect();
        assert_eq!(
            ips,
            ["10.42.0.5", "10.42.1.6"],
            "the unready endpoint is left out"
        );
        assert_eq!(
            found(&t, "db-0.db.prod.svc.cluster.local").a[0].to_string(),
            "10.42.0.5"
        );
        assert_eq!(
            found(&t, "10-42-1-6.db.prod.svc.cluster.local").a[0].to_string(),
            "10.42.1.6"
        );
        let srv = found(&t, "_pg._tcp.db.prod.svc.cluster.local").srv;
        assert_eq!(srv.len(), 2);
        assert!(srv.contains(&(0, 100, 5432, "db-0.db.prod.svc.cluster.local".into())));
    }

    #[test]
    fn external_names_pods_and_missing_names() {
        let t = table();
        assert_eq!(
            found(&t, "ext.default.svc.cluster.local").cname.as_deref(),
            Some("example.com")
        );
        assert_eq!(
            found(&t, "10-42-0-9.default.pod.cluster.local").a[0].to_string(),
            "10.42.0.9"
        );
        assert_eq!(
            t.lookup("nope.default.svc.cluster.local"),
            Lookup::NoSuchName
        );
        assert_eq!(t.lookup("example.org"), Lookup::Outside);
        // An empty non-terminal exists, with no data.
        assert_eq!(found(&t, "default.svc.cluster.local"), Entry::default());
    }

    #[test]
    fn reverse_names_of_cluster_ips_and_headless_endpoints() {
        let t = table();
        assert_eq!(
            found(&t, "20.0.43.10.in-addr.arpa.").ptr,
            ["web.default.svc.cluster.local"]
        );
        assert_eq!(
            found(&t, "5.0.42.10.IN-ADDR.ARPA").ptr,
            ["db-0.db.prod.svc.cluster.local"]
        );
        assert_eq!(
            found(&t, "6.1.42.10.in-addr.arpa").ptr,
            ["10-42-1-6.db.prod.svc.cluster.local"]
        );
        // Not ready, or not ours: forwarded.
        assert_eq!(t.lookup("7.1.42.10.in-addr.arpa"), Lookup::Outside);
        assert_eq!(t.lookup("8.8.8.8.in-addr.arpa"), Lookup::Outside);
        assert_eq!(
            reverse_name("2001:db8::1".parse().unwrap()),
            "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
        );
    }
}
