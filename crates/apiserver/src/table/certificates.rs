//! CertificateSigningRequests, with upstream's columns.

use serde_json::{json, Value};

use super::format::{arr, human_duration, s, Clock};
use super::{Column, AGE, NAME};

/// CertificateSigningRequest columns.
pub(super) const CSR: &[Column] = &[
    NAME,
    AGE,
    Column::new(
        "SignerName",
        "string",
        "Name of the signer that will issue the certificate.",
    ),
    Column::new(
        "Requestor",
        "string",
        "Name of the user who requested the certificate.",
    ),
    Column::new(
        "RequestedDuration",
        "string",
        "Requested validity period of the issued certificate.",
    ),
    Column::new(
        "Condition",
        "string",
        "Approval state of the request and whether it was issued.",
    ),
];

/// One CSR row; the condition column is the approval conditions plus
/// `Issued` once a certificate is set, or `Pending`.
pub(super) fn csr(item: &Value, clock: &Clock) -> Vec<Value> {
    let duration = match item
        .pointer("/spec/expirationSeconds")
        .and_then(Value::as_i64)
    {
        Some(secs) => human_duration(time::Duration::seconds(secs)),
        None => "<none>".to_string(),
    };
    vec![
        json!(s(item, "/metadata/name")),
        json!(clock.age(item)),
        json!(s(item, "/spec/signerName")),
        json!(s(item, "/spec/username")),
        json!(duration),
        json!(condition(item)),
    ]
}

fn condition(item: &Value) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in arr(item, "/status/conditions") {
        let t = s(c, "/type");
        if matches!(t, "Approved" | "Denied" | "Failed") && !parts.contains(&t) {
            parts.push(t);
        }
    }
    if !s(item, "/status/certificate").is_empty() {
        parts.push("Issued");
    }
    if parts.is_empty() {
        "Pending".into()
    } else {
        parts.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_column() {
        let mut c = json!({"spec": {}});
        assert_eq!(condition(&c), "Pending");
        c["status"] = json!({"conditions": [{"type": "Approved"}], "certificate": "QQ=="});
        assert_eq!(condition(&c), "Approved,Issued");
    }
}
