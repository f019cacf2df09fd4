//! `networking.k8s.io/v1` ingresses, ingress classes and network policies,
//! and `discovery.k8s.io/v1` endpoint slices.

use serde_json::{json, Value};

use super::format::{
    arr, format_label_selector, list_with_more, load_balancer_ingress, obj, s, Clock,
};
use super::{Column, AGE, NAME};

/// Ingress columns.
pub(super) const INGRESS: &[Column] = &[
    NAME,
    Column::new(
        "Class",
        "string",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    Column::new(
        "Hosts",
        "string",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    Column::new(
        "Address",
        "string",
        "Address is a list containing ingress points for the load-balancer",
    ),
    Column::new("Ports", "string", "Ports of TLS configurations that open"),
    AGE,
];

/// HOSTS: the first three rule hosts, `+ N more...` counting every rule
/// beyond the third, `*` when no rule names a host.
fn hosts(ing: &Value) -> String {
    const MAX: usize = 3;
    let rules = arr(ing, "/spec/rules");
    let mut list: Vec<&str> = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == MAX {
            more = true;
        }
        let host = s(rule, "/host");
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".to_string();
    }
    let ret = list.join(",");
    if more {
        return format!("{ret} + {} more...", rules.len() - MAX);
    }
    ret
}

/// One Ingress row. PORTS is `80`, or `80, 443` when TLS is configured.
pub(super) fn ingress(ing: &Value, clock: &Clock) -> Vec<Value> {
    let ports = if arr(ing, "/spec/tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        json!(s(ing, "/metadata/name")),
        json!(ing
            .pointer("/spec/ingressClassName")
            .and_then(Value::as_str)
            .unwrap_or("<none>")),
        json!(hosts(ing)),
        json!(load_balancer_ingress(arr(
            ing,
            "/status/loadBalancer/ingress"
        ))),
        json!(ports),
        json!(clock.age(ing)),
    ]
}

/// IngressClass columns.
pub(super) const INGRESS_CLASS: &[Column] = &[
    NAME,
    Column::new(
        "Controller",
        "string",
        "Controller that is responsible for handling this class",
    ),
    Column::new(
        "Parameters",
        "string",
        "A reference to a resource with additional parameters",
    ),
    AGE,
];

/// One IngressClass row: PARAMETERS is `Kind.apiGroup/name` or `<none>`.
pub(super) fn ingress_class(ic: &Value, clock: &Clock) -> Vec<Value> {
    let parameters = match obj(ic, "/spec/parameters") {
        Some(p) => {
            let mut text = p
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            if let Some(group) = p.get("apiGroup").and_then(Value::as_str) {
                text = format!("{text}.{group}");
            }
            format!(
                "{text}/{}",
                p.get("name").and_then(Value::as_str).unwrap_or("")
            )
        }
        None => "<none>".to_string(),
    };
    vec![
        json!(s(ic, "/metadata/name")),
        json!(s(ic, "/spec/controller")),
        json!(parameters),
        json!(clock.age(ic)),
    ]
}

/// NetworkPolicy columns.
pub(super) const NETWORK_POLICY: &[Column] = &[
    NAME,
    Column::new(
        "Pod-Selector",
        "string",
        "Selects the pods to which this NetworkPolicy object applies.",
    ),
    AGE,
];

/// One NetworkPolicy row; an empty pod selector (all pods) prints `<none>`.
pub(super) fn network_policy(np: &Value, clock: &Clock) -> Vec<Value> {
    let selector = np
        .pointer("/spec/podSelector")
        .cloned()
        .unwrap_or_else(|| json!({}));
    vec![
        json!(s(np, "/metadata/name")),
        json!(format_label_selector(Some(&selector))),
        json!(clock.age(np)),
    ]
}

/// EndpointSlice columns.
pub(super) const ENDPOINT_SLICE: &[Column] = &[
    NAME,
    Column::new(
        "AddressType",
        "string",
        "addressType specifies the type of address carried by this EndpointSlice.",
    ),
    Column::new(
        "Ports",
        "string",
        "ports specifies the list of network ports exposed by each endpoint in this slice.",
    ),
    Column::new(
        "Endpoints",
        "string",
        "endpoints is a list of unique endpoints in this slice.",
    ),
    AGE,
];

/// The first three of `values`, with upstream's `+ N more...` / `<unset>`.
fn first_three(values: Vec<String>) -> String {
    const MAX: usize = 3;
    let count = values.len();
    let more = count > MAX;
    let list: Vec<String> = values.into_iter().take(MAX).collect();
    list_with_more(&list, more, count, MAX)
}

/// One EndpointSlice row: ports by number (else name, else `*`) and
/// endpoint addresses.
pub(super) fn endpoint_slice(slice: &Value, clock: &Clock) -> Vec<Value> {
    let ports = arr(slice, "/ports")
        .iter()
        .map(|p| {
            match (
                p.get("port").and_then(Value::as_i64),
                p.get("name").and_then(Value::as_str),
            ) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.to_string(),
                (None, None) => "*".to_string(),
            }
        })
        .collect();
    let addresses = arr(slice, "/endpoints")
        .iter()
        .flat_map(|e| {
            arr(e, "/addresses")
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    vec![
        json!(s(slice, "/metadata/name")),
        json!(s(slice, "/addressType")),
        json!(first_three(ports)),
        json!(first_three(addresses)),
        json!(clock.age(slice)),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{ago, cells, headers};
    use serde_json::json;

    #[test]
    fn ingress() {
        assert_eq!(
            headers("networking.k8s.io", "Ingress"),
            vec![
                ("Name", "string", "name", 0),
                ("Class", "string", "", 0),
                ("Hosts", "string", "", 0),
                ("Address", "string", "", 0),
                ("Ports", "string", "", 0),
                ("Age", "string", "", 0),
            ]
        );
        let ing = json!({"metadata": {"name": "web", "namespace": "default", "creationTimestamp": ago(3000)},
            "spec": {"ingressClassName": "traefik", "tls": [{"hosts": ["a.example.com"], "secretName": "tls"}],
                     "rules": [{"host": "a.example.com"}, {"host": "b.example.com"}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "192.168.1.20"}, {"ip": "192.168.1.10"}]}}});
        assert_eq!(
            cells("networking.k8s.io", "Ingress", ing),
            vec![
                json!("web"),
                json!("traefik"),
                json!("a.example.com,b.example.com"),
                json!("192.168.1.10,192.168.1.20"),
                json!("80, 443"),
                json!("50m"),
            ]
        );
        let ing = json!({"metadata": {"name": "many"}, "spec": {"rules": [
            {"host": "a"}, {"host": "b"}, {}, {"host": "d"}, {"host": "e"}]}});
        assert_eq!(
            cells("networking.k8s.io", "Ingress", ing)[1..5],
            [
                json!("<none>"),
                json!("a,b,d + 2 more..."),
                json!(""),
                json!("80")
            ]
        );
        let ing = json!({"metadata": {"name": "default"}, "spec": {"defaultBackend": {"service": {"name": "x"}}}});
        assert_eq!(cells("networking.k8s.io", "Ingress", ing)[2], "*");
    }

    #[test]
    fn ingress_class() {
        assert_eq!(
            headers("networking.k8s.io", "IngressClass"),
            vec![
                ("Name", "string", "name", 0),
                ("Controller", "string", "", 0),
                ("Parameters", "string", "", 0),
                ("Age", "string", "", 0)
            ]
        );
        let ic = json!({"metadata": {"name": "traefik", "creationTimestamp": ago(86400)}, "spec": {"controller": "traefik.io/ingress-controller"}});
        assert_eq!(
            cells("networking.k8s.io", "IngressClass", ic),
            vec![
                json!("traefik"),
                json!("traefik.io/ingress-controller"),
                json!("<none>"),
                json!("24h")
            ]
        );
        let ic = json!({"metadata": {"name": "x"}, "spec": {"controller": "c",
            "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "external-lb"}}});
        assert_eq!(
            cells("networking.k8s.io", "IngressClass", ic)[2],
            "IngressParameters.k8s.example.com/external-lb"
        );
    }

    #[test]
    fn network_policy() {
        assert_eq!(
            headers("networking.k8s.io", "NetworkPolicy"),
            vec![
                ("Name", "string", "name", 0),
                ("Pod-Selector", "string", "", 0),
                ("Age", "string", "", 0)
            ]
        );
        let np = json!({"metadata": {"name": "deny-all", "creationTimestamp": ago(5)}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}});
        assert_eq!(
            cells("networking.k8s.io", "NetworkPolicy", np),
            vec![json!("deny-all"), json!("<none>"), json!("5s")]
        );
        let np = json!({"metadata": {"name": "db"}, "spec": {"podSelector": {"matchLabels": {"role": "db"}}}});
        assert_eq!(
            cells("networking.k8s.io", "NetworkPolicy", np)[1],
            "role=db"
        );
    }

    #[test]
    fn endpoint_slice() {
        assert_eq!(
            headers("discovery.k8s.io", "EndpointSlice"),
            vec![
                ("Name", "string", "name", 0),
                ("AddressType", "string", "", 0),
                ("Ports", "string", "", 0),
                ("Endpoints", "string", "", 0),
                ("Age", "string", "", 0),
            ]
        );
        let es = json!({"metadata": {"name": "web-abc12", "creationTimestamp": ago(61)}, "addressType": "IPv4",
            "ports": [{"name": "http", "port": 8080, "protocol": "TCP"}],
            "endpoints": [{"addresses": ["10.42.0.5"]}, {"addresses": ["10.42.0.6"]}, {"addresses": ["10.42.1.2"]}, {"addresses": ["10.42.1.3"]}]});
        assert_eq!(
            cells("discovery.k8s.io", "EndpointSlice", es),
            vec![
                json!("web-abc12"),
                json!("IPv4"),
                json!("8080"),
                json!("10.42.0.5,10.42.0.6,10.42.1.2 + 1 more..."),
                json!("61s")
            ]
        );
        let es = json!({"metadata": {"name": "empty"}, "addressType": "IPv6", "ports": [{"name": "dns"}, {}]});
        assert_eq!(
            cells("discovery.k8s.io", "EndpointSlice", es)[2..4],
            [json!("dns,*"), json!("<unset>")]
        );
    }
}
