//! `certificates.k8s.io/v1` CertificateSigningRequests: upstream's strategy
//! (`pkg/registry/certificates/certificates/strategy.go`) and validation
//! (`pkg/apis/certificates/validation`).
//!
//! The requester (`spec.username`, `uid`, `groups`, `extra`) is not the
//! client's to choose: every create (a POST, or a server-side apply that
//! creates) overwrites it from the authenticated user ([`set_requester`],
//! through `WriteOptions::requester`), and the spec never changes afterwards.

use std::collections::HashSet;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use serde_json::{json, Value};
use x509_parser::prelude::FromDer;

use super::util::*;
use super::{unknown, Decoded, Strategy};
use crate::authn::UserInfo;
use crate::error::FieldError;

/// Upstream's `allValidUsages`.
const USAGES: &[&str] = &[
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
];

/// The shortest certificate a request may ask for (upstream: 10 minutes).
const MIN_EXPIRATION_SECONDS: i64 = 600;

/// Condition types that may appear at most once.
const UNIQUE_CONDITIONS: &[&str] = &["Approved", "Denied", "Failed"];

/// Writes the authenticated requester into `spec`, replacing whatever the
/// client sent (upstream's `PrepareForCreate`).
pub fn set_requester(obj: &mut Value, user: &UserInfo) {
    let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    spec.insert("username".into(), json!(user.username));
    spec.insert("groups".into(), json!(user.groups));
    spec.remove("uid");
    if !user.uid.is_empty() {
        spec.insert("uid".into(), json!(user.uid));
    }
    spec.remove("extra");
    if !user.extra.is_empty() {
        spec.insert("extra".into(), json!(user.extra));
    }
}

/// CertificateSigningRequests.
pub struct CsrStrategy;

impl Strategy for CsrStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<CertificateSigningRequest>(obj)
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if let Some(m) = obj.as_object_mut() {
            m.remove("status");
        }
    }

    /// The main resource changes only metadata: spec is fixed at creation,
    /// status goes through `status` and `approval`.
    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_from_old(new, old, "spec");
        keep_from_old(new, old, "status");
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        keep_all_but_status(new, old);
        stamp_conditions(new, old);
    }

    fn default(&self, obj: &mut Value) {
        // v1's SetDefaults_CertificateSigningRequestCondition.
        if let Some(conds) = obj
            .pointer_mut("/status/conditions")
            .and_then(Value::as_array_mut)
        {
            for c in conds.iter_mut().filter_map(Value::as_object_mut) {
                if c.get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .is_empty()
                {
                    c.insert("status".into(), json!("True"));
                }
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let mut errs = Vec::new();
        let request = s(spec, "request");
        if request.is_empty() {
            errs.push(FieldError::required("spec.request", ""));
        } else if let Err(why) = parse_request(request) {
            errs.push(FieldError::invalid("spec.request", request, why));
        }
        let usages = strs(spec, "usages");
        if usages.is_empty() {
            errs.push(FieldError::required("spec.usages", ""));
        }
        let mut seen = HashSet::new();
        for (i, u) in usages.iter().enumerate() {
            let p = index("spec.usages", i);
            if !USAGES.contains(u) {
                errs.push(FieldError::not_supported(p.clone(), *u, USAGES));
            }
            if !seen.insert(*u) {
                errs.push(FieldError::duplicate(p, *u));
            }
        }
        errs.extend(validate_signer_name(s(spec, "signerName")));
        if let Some(secs) = spec.get("expirationSeconds").and_then(Value::as_i64) {
            if secs < MIN_EXPIRATION_SECONDS {
                errs.push(FieldError::invalid(
                    "spec.expirationSeconds",
                    secs,
                    "may not specify a duration less than 600 seconds (10 minutes)",
                ));
            }
        }
        errs.extend(validate_status(obj, None));
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        if new.get("spec") != old.get("spec") {
            errs.push(FieldError::invalid("spec", new["spec"].clone(), IMMUTABLE));
        }
        errs
    }

    fn validate_status_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        validate_status(new, Some(old))
    }

    fn selectable_fields(&self, obj: &Value) -> Vec<(&'static str, String)> {
        vec![(
            "spec.signerName",
            obj.pointer("/spec/signerName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        )]
    }
}

/// The DER of a base64 PEM `CERTIFICATE REQUEST`, parsed once to prove it is one.
pub fn parse_request(b64: &str) -> Result<Vec<u8>, String> {
    let pem = BASE64.decode(b64).map_err(|e| format!("not base64: {e}"))?;
    let (_, block) = x509_parser::pem::parse_x509_pem(&pem)
        .map_err(|_| "PEM block type must be CERTIFICATE REQUEST".to_string())?;
    if block.label != "CERTIFICATE REQUEST" {
        return Err("PEM block type must be CERTIFICATE REQUEST".into());
    }
    x509_parser::certification_request::X509CertificationRequest::from_der(&block.contents)
        .map_err(|e| format!("invalid certificate request: {e}"))?;
    Ok(block.contents)
}

/// `<domain>/<path>`: a DNS subdomain, a slash, and a path of qualified-name
/// characters (upstream's `ValidateSignerName`, in short).
fn validate_signer_name(name: &str) -> Vec<FieldError> {
    const P: &str = "spec.signerName";
    if name.is_empty() {
        return vec![FieldError::required(P, "")];
    }
    let Some((domain, path)) = name.split_once('/') else {
        return vec![FieldError::invalid(
            P,
            name,
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        )];
    };
    let mut errs = Vec::new();
    let msgs = super::names::is_dns1123_subdomain(domain);
    if !msgs.is_empty() {
        errs.push(FieldError::invalid(P, name, msgs.join(";")));
    }
    let ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/');
    if path.is_empty() || !path.chars().all(ok) || name.len() > 571 {
        errs.push(FieldError::invalid(
            P,
            name,
            "the path after the domain must be non-empty and use only letters, digits, '-', '_', '.' and '/'",
        ));
    }
    errs
}

/// Conditions and certificate; with `old`, also what may not change.
fn validate_status(obj: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let conds = obj
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut seen = HashSet::new();
    for (i, c) in conds.iter().enumerate() {
        let p = index("status.conditions", i);
        let t = s(c, "type");
        if t.is_empty() {
            errs.push(FieldError::required(child(&p, "type"), ""));
        }
        let st = s(c, "status");
        if !["True", "False", "Unknown"].contains(&st) {
            errs.push(FieldError::not_supported(
                child(&p, "status"),
                st,
                &["False", "True", "Unknown"],
            ));
        }
        if matches!(t, "Approved" | "Denied") && st != "True" {
            errs.push(FieldError::not_supported(
                child(&p, "status"),
                st,
                &["True"],
            ));
        }
        if UNIQUE_CONDITIONS.contains(&t) && !seen.insert(t) {
            errs.push(FieldError::duplicate(child(&p, "type"), t));
        }
    }
    if seen.contains("Approved") && seen.contains("Denied") {
        errs.push(FieldError::invalid(
            "status.conditions",
            Value::Array(conds.to_vec()),
            "Approved and Denied conditions are mutually exclusive",
        ));
    }
    let cert = obj
        .pointer("/status/certificate")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !cert.is_empty() {
        if let Err(why) = check_certificates(cert) {
            errs.push(FieldError::invalid(
                "status.certificate",
                "<certificate data>",
                why,
            ));
        }
    }
    if let Some(old) = old {
        let had = |v: &Value, t: &str| {
            v.pointer("/status/conditions")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|c| s(c, "type") == t))
        };
        for t in UNIQUE_CONDITIONS {
            if had(old, t) && !had(obj, t) {
                errs.push(FieldError::forbidden(
                    "status.conditions",
                    format!("updates may not remove a condition of type {t:?}"),
                ));
            }
        }
        let old_cert = old
            .pointer("/status/certificate")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !old_cert.is_empty() && old_cert != cert {
            errs.push(FieldError::invalid(
                "status.certificate",
                "<certificate data>",
                "updates may not modify existing certificate content",
            ));
        }
    }
    errs
}

/// `status.certificate`: base64 of one or more PEM `CERTIFICATE` blocks.
fn check_certificates(b64: &str) -> Result<(), String> {
    let pem = BASE64.decode(b64).map_err(|e| format!("not base64: {e}"))?;
    let mut n = 0;
    for block in x509_parser::pem::Pem::iter_from_buffer(&pem) {
        let block = block.map_err(|e| format!("invalid PEM: {e}"))?;
        if block.label != "CERTIFICATE" {
            return Err(format!(
                "only CERTIFICATE PEM blocks are allowed, found {:?}",
                block.label
            ));
        }
        block
            .parse_x509()
            .map_err(|e| format!("invalid certificate: {e}"))?;
        n += 1;
    }
    if n == 0 {
        return Err("must contain at least one CERTIFICATE PEM block".into());
    }
    Ok(())
}

/// Sets `lastUpdateTime` on conditions that lack it and `lastTransitionTime`
/// on conditions that are new or changed status (upstream's
/// `populateConditionTimestamps`).
fn stamp_conditions(new: &mut Value, old: &Value) {
    let now = now_rfc3339();
    let old_conds = old
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let Some(conds) = new
        .pointer_mut("/status/conditions")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for c in conds.iter_mut().filter_map(Value::as_object_mut) {
        let t = c
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let st = c
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if c.get("lastUpdateTime").is_none_or(Value::is_null) {
            c.insert("lastUpdateTime".into(), json!(now));
        }
        if c.get("lastTransitionTime").is_none_or(Value::is_null) {
            let prev = old_conds.iter().find(|o| s(o, "type") == t);
            let stamp = match prev {
                Some(p) if s(p, "status") == st => p.get("lastTransitionTime").cloned(),
                _ => None,
            };
            c.insert(
                "lastTransitionTime".into(),
                stamp.filter(|v| !v.is_null()).unwrap_or_else(|| json!(now)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn csr_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "system:node:n1");
        p.serialize_request(&key).unwrap().pem().unwrap()
    }

    fn csr() -> Value {
        json!({
            "apiVersion": "certificates.k8s.io/v1",
            "kind": "CertificateSigningRequest",
            "metadata": {"name": "c"},
            "spec": {
                "request": BASE64.encode(csr_pem()),
                "signerName": "kubernetes.io/kube-apiserver-client-kubelet",
                "usages": ["digital signature", "client auth"],
            }
        })
    }

    #[test]
    fn a_valid_request_passes_and_bad_ones_do_not() {
        assert!(CsrStrategy.validate(&csr()).is_empty());
        let mut bad = csr();
        bad["spec"]["request"] =
            json!(BASE64.encode("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"));
        bad["spec"]["usages"] = json!(["client auth", "client auth", "flying"]);
        bad["spec"]["signerName"] = json!("nodomain");
        bad["spec"]["expirationSeconds"] = json!(60);
        let fields: Vec<_> = CsrStrategy
            .validate(&bad)
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "spec.request",
                "spec.usages[1]",
                "spec.usages[2]",
                "spec.signerName",
                "spec.expirationSeconds"
            ]
        );
    }

    #[test]
    fn requester_comes_from_the_user() {
        let mut obj = csr();
        obj["spec"]["username"] = json!("system:admin");
        obj["spec"]["uid"] = json!("forged");
        let user = UserInfo::new(
            "system:bootstrap:abcdef",
            vec!["system:bootstrappers".into()],
        );
        set_requester(&mut obj, &user);
        assert_eq!(obj["spec"]["username"], "system:bootstrap:abcdef");
        assert_eq!(obj["spec"]["groups"], json!(["system:bootstrappers"]));
        assert!(obj["spec"].get("uid").is_none());
    }

    #[test]
    fn approval_rules() {
        let old = csr();
        let mut new = old.clone();
        new["status"] = json!({"conditions": [{"type": "Approved", "reason": "r"}]});
        CsrStrategy.default(&mut new);
        CsrStrategy.prepare_for_status_update(&mut new, &old);
        assert!(CsrStrategy.validate_status_update(&new, &old).is_empty());
        assert_eq!(new["status"]["conditions"][0]["status"], "True");
        assert!(new["status"]["conditions"][0]["lastUpdateTime"].is_string());
        // Approved and Denied together, and removing Approved, are refused.
        let mut both = new.clone();
        both["status"]["conditions"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "Denied", "status": "True"}));
        assert!(!CsrStrategy.validate_status_update(&both, &new).is_empty());
        let mut removed = new.clone();
        removed["status"]["conditions"] = json!([]);
        assert!(!CsrStrategy
            .validate_status_update(&removed, &new)
            .is_empty());
        // The spec cannot change through status.
        let mut sneaky = new.clone();
        sneaky["spec"]["usages"] = json!(["server auth"]);
        CsrStrategy.prepare_for_status_update(&mut sneaky, &new);
        assert_eq!(sneaky["spec"], new["spec"]);
    }
}
