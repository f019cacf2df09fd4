//! Service ports resolved per pod: a numeric `targetPort` is used as is, a
//! named one is looked up in the pod's container ports (and in restartable
//! init containers, i.e. sidecars) with the service port's protocol. A pod
//! without that name gets no endpoint for that port.

use k8s_openapi::api::core::v1::{ContainerPort, EndpointPort, Pod, Service, ServicePort};
use k8s_openapi::api::discovery::v1::EndpointPort as SlicePort;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

/// The protocol a port has when none is written.
const DEFAULT_PROTOCOL: &str = "TCP";

fn protocol(p: Option<&String>) -> &str {
    p.map(String::as_str).unwrap_or(DEFAULT_PROTOCOL)
}

/// The port on `pod` that service port `sp` sends to, if the pod has it.
pub fn find_port(pod: &Pod, sp: &ServicePort) -> Option<i32> {
    let name = match sp.target_port.as_ref() {
        Some(IntOrString::String(name)) => name,
        Some(IntOrString::Int(n)) if *n != 0 => return Some(*n),
        // The server defaults an unset targetPort to the port.
        _ => return Some(sp.port),
    };
    let spec = pod.spec.as_ref()?;
    let want = protocol(sp.protocol.as_ref());
    let matches = |p: &&ContainerPort| {
        p.name.as_deref() == Some(name.as_str()) && protocol(p.protocol.as_ref()) == want
    };
    let sidecars = spec
        .init_containers
        .iter()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"));
    spec.containers
        .iter()
        .chain(sidecars)
        .flat_map(|c| c.ports.iter().flatten())
        .find(matches)
        .map(|p| p.container_port)
}

fn service_ports(svc: &Service) -> &[ServicePort] {
    svc.spec
        .as_ref()
        .and_then(|s| s.ports.as_deref())
        .unwrap_or_default()
}

/// The Endpoints ports of `pod` for `svc`: one per service port the pod has.
pub fn endpoints_ports(svc: &Service, pod: &Pod) -> Vec<EndpointPort> {
    service_ports(svc)
        .iter()
        .filter_map(|sp| {
            let port = find_port(pod, sp)?;
            Some(EndpointPort {
                name: sp.name.clone().filter(|n| !n.is_empty()),
                port,
                protocol: Some(protocol(sp.protocol.as_ref()).to_string()),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// The EndpointSlice ports of `pod` for `svc`. Unlike Endpoints, the name is
/// always written (`""` for an unnamed port), as upstream does.
pub fn slice_ports(svc: &Service, pod: &Pod) -> Vec<SlicePort> {
    service_ports(svc)
        .iter()
        .filter_map(|sp| {
            let port = find_port(pod, sp)?;
            Some(SlicePort {
                name: Some(sp.name.clone().unwrap_or_default()),
                port: Some(port),
                protocol: Some(protocol(sp.protocol.as_ref()).to_string()),
                app_protocol: sp.app_protocol.clone(),
            })
        })
        .collect()
}

/// The service has no ports (allowed for headless services only).
pub fn has_no_ports(svc: &Service) -> bool {
    service_ports(svc).is_empty()
}

/// A port list as a comparable key: EndpointSlices are grouped by it.
pub type PortKey = Vec<(String, i32, String, String)>;

/// The key of a slice's port list, independent of order and defaults.
pub fn port_key(ports: &[SlicePort]) -> PortKey {
    let mut key: PortKey = ports
        .iter()
        .map(|p| {
            (
                p.name.clone().unwrap_or_default(),
                p.port.unwrap_or(0),
                protocol(p.protocol.as_ref()).to_string(),
                p.app_protocol.clone().unwrap_or_default(),
            )
        })
        .collect();
    key.sort();
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn svc() -> Service {
        serde_json::from_value(json!({
            "metadata": { "name": "s" },
            "spec": { "ports": [
                { "name": "http", "port": 80, "protocol": "TCP", "targetPort": "web" },
                { "name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns" },
                { "name": "metrics", "port": 9090, "protocol": "TCP", "targetPort": 9100, "appProtocol": "http" },
                { "name": "plain", "port": 81 },
            ] },
        }))
        .unwrap()
    }

    fn pod(containers: serde_json::Value, init: serde_json::Value) -> Pod {
        serde_json::from_value(json!({
            "metadata": { "name": "p" },
            "spec": { "containers": containers, "initContainers": init },
        }))
        .unwrap()
    }

    #[test]
    fn named_ports_resolve_per_pod_and_protocol() {
        let s = svc();
        let sps = s.spec.as_ref().unwrap().ports.as_ref().unwrap();
        let a = pod(
            json!([{ "name": "c", "ports": [
                { "name": "web", "containerPort": 8080 },
                { "name": "dns", "containerPort": 5353, "protocol": "TCP" },
            ] }]),
            json!([]),
        );
        assert_eq!(find_port(&a, &sps[0]), Some(8080));
        // The name exists, but for TCP only.
        assert_eq!(find_port(&a, &sps[1]), None);
        assert_eq!(find_port(&a, &sps[2]), Some(9100));
        assert_eq!(find_port(&a, &sps[3]), Some(81));
        let b = pod(json!([{ "name": "c" }]), json!([]));
        assert_eq!(find_port(&b, &sps[0]), None);
    }

    #[test]
    fn sidecars_count_but_plain_init_containers_do_not() {
        let s = svc();
        let sp = &s.spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
        let init = |policy: serde_json::Value| {
            pod(
                json!([{ "name": "c" }]),
                json!([{ "name": "i", "restartPolicy": policy,
                         "ports": [{ "name": "web", "containerPort": 7000 }] }]),
            )
        };
        assert_eq!(find_port(&init(json!("Always")), sp), Some(7000));
        assert_eq!(find_port(&init(json!(null)), sp), None);
    }

    #[test]
    fn endpoint_ports_skip_what_the_pod_lacks() {
        let p = pod(
            json!([{ "name": "c", "ports": [{ "name": "web", "containerPort": 8080 }] }]),
            json!([]),
        );
        let eps = endpoints_ports(&svc(), &p);
        let got: Vec<(Option<&str>, i32)> =
            eps.iter().map(|e| (e.name.as_deref(), e.port)).collect();
        assert_eq!(
            got,
            vec![
                (Some("http"), 8080),
                (Some("metrics"), 9100),
                (Some("plain"), 81)
            ]
        );
        assert_eq!(eps[1].app_protocol.as_deref(), Some("http"));
        assert_eq!(eps[2].protocol.as_deref(), Some("TCP"));
        let sps = slice_ports(&svc(), &p);
        assert_eq!(sps.len(), 3);
        let mut reversed = sps.clone();
        reversed.reverse();
        assert_eq!(port_key(&sps), port_key(&reversed));
    }
}
