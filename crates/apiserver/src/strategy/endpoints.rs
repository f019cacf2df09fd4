//! Endpoints (core/v1) and EndpointSlices (discovery.k8s.io/v1).

use std::collections::HashSet;

use k8s_openapi::api::core::v1::Endpoints;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{json, Value};

use super::names::*;
use super::podspec::PROTOCOLS;
use super::service::non_special_ip;
use super::util::*;
use super::{unknown, Decoded, Strategy};
use crate::error::FieldError;

/// Endpoints.
pub struct EndpointsStrategy;

fn validate_address(a: &Value, path: &str, errs: &mut Vec<FieldError>) {
    let ip = s(a, "ip");
    let msgs = is_valid_ip(ip);
    if msgs.is_empty() {
        errs.extend(non_special_ip(ip, &child(path, "ip")));
    }
    errs.extend(invalid_each(&child(path, "ip"), ip, msgs));
    let host = s(a, "hostname");
    if !host.is_empty() {
        errs.extend(invalid_each(
            &child(path, "hostname"),
            host,
            is_dns1123_label(host),
        ));
    }
    if let Some(n) = opt_s(a, "nodeName") {
        errs.extend(invalid_each(
            &child(path, "nodeName"),
            n,
            name_is_dns_subdomain(n, false),
        ));
    }
}

impl Strategy for EndpointsStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<Endpoints>(obj)
    }

    fn default(&self, obj: &mut Value) {
        each_mut(obj, "subsets", |ss| {
            each_mut(ss, "ports", |p| set_default_str(p, "protocol", "TCP"))
        });
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        for (i, ss) in arr(obj, "subsets").iter().enumerate() {
            let p = index("subsets", i);
            if arr(ss, "addresses").is_empty() && arr(ss, "notReadyAddresses").is_empty() {
                errs.push(FieldError::required(
                    &p,
                    "must specify `addresses` or `notReadyAddresses`",
                ));
            }
            for k in ["addresses", "notReadyAddresses"] {
                for (j, a) in arr(ss, k).iter().enumerate() {
                    validate_address(a, &index(&child(&p, k), j), &mut errs);
                }
            }
            let ports = arr(ss, "ports");
            for (j, port) in ports.iter().enumerate() {
                let pp = index(&child(&p, "ports"), j);
                let name = s(port, "name");
                if ports.len() > 1 && name.is_empty() {
                    errs.push(FieldError::required(child(&pp, "name"), ""));
                } else if !name.is_empty() {
                    errs.extend(invalid_each(
                        &child(&pp, "name"),
                        name,
                        is_dns1123_label(name),
                    ));
                }
                let n = int(port, "port").unwrap_or(0);
                errs.extend(
                    is_valid_port_num(n)
                        .into_iter()
                        .map(|m| FieldError::invalid(child(&pp, "port"), n, m)),
                );
                errs.extend(one_of(
                    &child(&pp, "protocol"),
                    s(port, "protocol"),
                    PROTOCOLS,
                    true,
                ));
                if let Some(ap) = opt_s(port, "appProtocol") {
                    errs.extend(invalid_each(
                        &child(&pp, "appProtocol"),
                        ap,
                        is_qualified_name(ap),
                    ));
                }
            }
        }
        errs
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// EndpointSlices (discovery.k8s.io/v1).
pub struct EndpointSliceStrategy;

impl Strategy for EndpointSliceStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<EndpointSlice>(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn default(&self, obj: &mut Value) {
        each_mut(obj, "ports", |p| {
            set_default(p, "name", json!(""));
            set_default(p, "protocol", json!("TCP"));
        });
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        let at = s(obj, "addressType");
        errs.extend(one_of("addressType", at, &["FQDN", "IPv4", "IPv6"], true));
        let endpoints = arr(obj, "endpoints");
        if endpoints.len() > 1000 {
            errs.push(too_many("endpoints", endpoints.len(), 1000));
        }
        for (i, e) in endpoints.iter().enumerate().take(1000) {
            let p = index("endpoints", i);
            let addrs = strs(e, "addresses");
            if addrs.is_empty() {
                errs.push(FieldError::required(
                    child(&p, "addresses"),
                    "must contain at least 1 address",
                ));
            } else if addrs.len() > 100 {
                errs.push(too_many(child(&p, "addresses"), addrs.len(), 100));
            }
            for (j, a) in addrs.iter().enumerate() {
                let ap = index(&child(&p, "addresses"), j);
                match at {
                    "IPv4" | "IPv6" => {
                        let ok = parse_ip(a).is_some_and(|ip| ip.is_ipv4() == (at == "IPv4"));
                        if !ok {
                            let what = if at == "IPv4" {
                                "IPv4 address, (e.g. 10.9.8.7)"
                            } else {
                                "IPv6 address, (e.g. 2001:db8::1)"
                            };
                            errs.push(FieldError::invalid(
                                &ap,
                                *a,
                                format!("must be a valid {what}"),
                            ));
                        } else {
                            errs.extend(non_special_ip(a, &ap));
                        }
                    }
                    "FQDN" => errs.extend(invalid_each(
                        &ap,
                        a,
                        is_dns1123_subdomain(a.trim_end_matches('.')),
                    )),
                    _ => {}
                }
            }
            if let Some(n) = opt_s(e, "nodeName") {
                errs.extend(invalid_each(
                    &child(&p, "nodeName"),
                    n,
                    name_is_dns_subdomain(n, false),
                ));
            }
            if let Some(h) = opt_s(e, "hostname") {
                errs.extend(invalid_each(&child(&p, "hostname"), h, is_dns1123_label(h)));
            }
        }
        let mut names = HashSet::new();
        for (i, port) in arr(obj, "ports").iter().enumerate() {
            let p = index("ports", i);
            let name = s(port, "name");
            if !name.is_empty() {
                errs.extend(invalid_each(
                    &child(&p, "name"),
                    name,
                    is_dns1123_label(name),
                ));
            }
            if !names.insert(name) {
                errs.push(FieldError::duplicate(child(&p, "name"), name));
            }
            errs.extend(one_of(
                &child(&p, "protocol"),
                s(port, "protocol"),
                PROTOCOLS,
                true,
            ));
            if let Some(ap) = opt_s(port, "appProtocol") {
                errs.extend(invalid_each(
                    &child(&p, "appProtocol"),
                    ap,
                    is_qualified_name(ap),
                ));
            }
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        errs.extend(immutable(new, old, "addressType", "addressType"));
        errs
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::FieldErrorType;

    use crate::strategy::error_fields as fields;

    #[test]
    fn endpoints_and_slices() {
        let mut ep = json!({ "apiVersion": "v1", "kind": "Endpoints", "metadata": { "name": "web", "namespace": "default" },
            "subsets": [{ "addresses": [{ "ip": "10.1.0.5" }, { "ip": "0.0.0.0" }], "ports": [{ "port": 8080 }] }, { "ports": [] }] });
        EndpointsStrategy.default(&mut ep);
        assert_eq!(ep["subsets"][0]["ports"][0]["protocol"], "TCP");
        assert_eq!(
            fields(EndpointsStrategy.validate(&ep)),
            vec![
                ("subsets[0].addresses[1].ip".into(), FieldErrorType::Invalid),
                ("subsets[1]".into(), FieldErrorType::Required)
            ]
        );
        let mut slice = json!({ "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "metadata": { "name": "web-1", "namespace": "default" },
            "addressType": "IPv4", "endpoints": [{ "addresses": ["127.0.0.1"], "conditions": { "ready": true } }], "ports": [{ "port": 443 }] });
        EndpointSliceStrategy.default(&mut slice);
        assert_eq!(
            slice["ports"][0],
            json!({ "port": 443, "name": "", "protocol": "TCP" })
        );
        assert!(EndpointSliceStrategy.validate(&slice).is_empty());
        let mut v6 = slice.clone();
        v6["addressType"] = json!("IPv6");
        assert_eq!(
            fields(EndpointSliceStrategy.validate_update(&v6, &slice)),
            vec![
                ("endpoints[0].addresses[0]".into(), FieldErrorType::Invalid),
                ("addressType".into(), FieldErrorType::Invalid)
            ]
        );
    }
}
