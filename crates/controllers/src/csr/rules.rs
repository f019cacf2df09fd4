//! Which CertificateSigningRequests are approved and signed: pure checks
//! over the request, as upstream's csrapproving recognizers and the
//! kube-apiserver-client(-kubelet) signers apply them.

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;

/// The signer of kubelet client certificates.
pub const KUBELET_CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client-kubelet";
/// The signer of other API client certificates.
pub const CLIENT_SIGNER: &str = "kubernetes.io/kube-apiserver-client";
/// The group of node identities.
pub const NODES_GROUP: &str = "system:nodes";
/// The prefix of node user names.
pub const NODE_USER_PREFIX: &str = "system:node:";
const BOOTSTRAPPERS_GROUP: &str = "system:bootstrappers";
/// Whom upstream's authorizer lets do anything, `nodeclient` approval included.
const MASTERS_GROUP: &str = "system:masters";

/// The parts of a request the rules look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The subject's common name.
    pub common_name: String,
    /// The subject's organizations, in order.
    pub organizations: Vec<String>,
    /// Whether the request asks for any subject alternative name.
    pub has_sans: bool,
}

/// Parses a PEM certificate request and checks its self-signature.
pub fn parse(pem: &[u8]) -> Result<(Request, Vec<u8>), String> {
    let (_, block) = x509_parser::pem::parse_x509_pem(pem)
        .map_err(|e| format!("the request is not PEM: {e}"))?;
    if block.label != "CERTIFICATE REQUEST" {
        return Err("PEM block type must be CERTIFICATE REQUEST".into());
    }
    let (_, csr) = X509CertificationRequest::from_der(&block.contents)
        .map_err(|e| format!("invalid certificate request: {e}"))?;
    csr.verify_signature()
        .map_err(|e| format!("the request's signature does not verify: {e}"))?;
    let subject = &csr.certification_request_info.subject;
    let common_name = subject
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .unwrap_or("")
        .to_string();
    let organizations = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok().map(str::to_string))
        .collect();
    let has_sans = csr.requested_extensions().into_iter().flatten().any(|e| {
        matches!(e, ParsedExtension::SubjectAlternativeName(san) if !san.general_names.is_empty())
    });
    Ok((
        Request {
            common_name,
            organizations,
            has_sans,
        },
        block.contents,
    ))
}

/// Why a request is not a kubelet client certificate request, if it is not
/// (upstream's `ValidateKubeletClientCSR`): `O` exactly `system:nodes`, a
/// `system:node:` common name, no alternative names, and usages exactly
/// {digital signature, client auth}, optionally with key encipherment.
pub fn kubelet_client_problem(req: &Request, usages: &[&str]) -> Option<String> {
    if req.organizations != [NODES_GROUP] {
        return Some(format!("subject organization is not {NODES_GROUP}"));
    }
    if !req.common_name.starts_with(NODE_USER_PREFIX)
        || req.common_name.len() == NODE_USER_PREFIX.len()
    {
        return Some(format!(
            "subject common name does not begin with {NODE_USER_PREFIX}"
        ));
    }
    if req.has_sans {
        return Some("subject alternative names are not allowed".into());
    }
    let mut sorted: Vec<&str> = usages.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let ok = sorted == ["client auth", "digital signature"]
        || sorted == ["client auth", "digital signature", "key encipherment"];
    if !ok {
        return Some(format!(
            "usages did not match [digital signature client auth] or [digital signature key encipherment client auth]: {usages:?}"
        ));
    }
    None
}

/// Why a request cannot be signed as an API client certificate
/// (`kube-apiserver-client`): usages must include client auth and stay
/// within {digital signature, key encipherment, client auth}.
pub fn client_problem(usages: &[&str]) -> Option<String> {
    let allowed = ["digital signature", "key encipherment", "client auth"];
    if !usages.contains(&"client auth") {
        return Some("usages must include client auth".into());
    }
    usages
        .iter()
        .find(|u| !allowed.contains(u))
        .map(|u| format!("usage {u:?} is not allowed for this signer"))
}

/// How a kubelet client request is auto-approved, like upstream's
/// `selfnodeclient` and `nodeclient` recognizers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// A node renewing its own certificate.
    SelfNodeClient,
    /// A bootstrapper (or an administrator) asking for a node's first one.
    NodeClient,
}

impl Approval {
    /// The Approved condition's message, upstream's text.
    pub fn message(self) -> &'static str {
        match self {
            Approval::SelfNodeClient => {
                "Auto approving self kubelet client certificate after SubjectAccessReview."
            }
            Approval::NodeClient => {
                "Auto approving kubelet client certificate after SubjectAccessReview."
            }
        }
    }
}

/// Whether the request is auto-approved. wharf has no authorizer, so the
/// SubjectAccessReviews upstream makes are replaced by the grants its
/// default bindings give: `selfnodeclient` to `system:nodes` (a node asking
/// for its own name), `nodeclient` to `system:bootstrappers` (kubeadm's
/// binding) and to `system:masters`.
pub fn auto_approval(
    signer: &str,
    req: &Request,
    usages: &[&str],
    username: &str,
    groups: &[&str],
) -> Option<Approval> {
    if signer != KUBELET_CLIENT_SIGNER || kubelet_client_problem(req, usages).is_some() {
        return None;
    }
    if username == req.common_name && groups.contains(&NODES_GROUP) {
        return Some(Approval::SelfNodeClient);
    }
    if groups.contains(&BOOTSTRAPPERS_GROUP) || groups.contains(&MASTERS_GROUP) {
        return Some(Approval::NodeClient);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(cn: &str) -> Request {
        Request {
            common_name: cn.into(),
            organizations: vec![NODES_GROUP.into()],
            has_sans: false,
        }
    }

    const USAGES: &[&str] = &["digital signature", "client auth"];

    #[test]
    fn kubelet_client_shape() {
        assert_eq!(kubelet_client_problem(&node("system:node:a"), USAGES), None);
        assert_eq!(
            kubelet_client_problem(
                &node("system:node:a"),
                &["key encipherment", "client auth", "digital signature"]
            ),
            None
        );
        assert!(kubelet_client_problem(&node("system:node:"), USAGES).is_some());
        assert!(kubelet_client_problem(&node("alice"), USAGES).is_some());
        assert!(kubelet_client_problem(&node("system:node:a"), &["client auth"]).is_some());
        assert!(kubelet_client_problem(
            &node("system:node:a"),
            &["digital signature", "client auth", "server auth"]
        )
        .is_some());
        let mut two_orgs = node("system:node:a");
        two_orgs.organizations.push("system:masters".into());
        assert!(kubelet_client_problem(&two_orgs, USAGES).is_some());
        let mut sans = node("system:node:a");
        sans.has_sans = true;
        assert!(kubelet_client_problem(&sans, USAGES).is_some());
    }

    #[test]
    fn who_gets_auto_approved() {
        let req = node("system:node:a");
        let boot = ["system:bootstrappers", "system:authenticated"];
        assert_eq!(
            auto_approval(
                KUBELET_CLIENT_SIGNER,
                &req,
                USAGES,
                "system:bootstrap:abcdef",
                &boot
            ),
            Some(Approval::NodeClient)
        );
        let nodes = ["system:nodes", "system:authenticated"];
        assert_eq!(
            auto_approval(KUBELET_CLIENT_SIGNER, &req, USAGES, "system:node:a", &nodes),
            Some(Approval::SelfNodeClient)
        );
        // A node may not ask for another node's name.
        assert_eq!(
            auto_approval(KUBELET_CLIENT_SIGNER, &req, USAGES, "system:node:b", &nodes),
            None
        );
        // Nobody in particular gets nothing; other signers are left alone.
        assert_eq!(
            auto_approval(
                KUBELET_CLIENT_SIGNER,
                &req,
                USAGES,
                "bob",
                &["system:authenticated"]
            ),
            None
        );
        assert_eq!(
            auto_approval(CLIENT_SIGNER, &req, USAGES, "system:bootstrap:x", &boot),
            None
        );
    }

    #[test]
    fn client_signer_usages() {
        assert_eq!(client_problem(&["client auth"]), None);
        assert!(client_problem(&["digital signature"]).is_some());
        assert!(client_problem(&["client auth", "server auth"]).is_some());
    }

    #[test]
    fn parses_and_verifies_requests() {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut p = rcgen::CertificateParams::default();
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "system:node:a");
        p.distinguished_name
            .push(rcgen::DnType::OrganizationName, NODES_GROUP);
        let pem = p.serialize_request(&key).unwrap().pem().unwrap();
        let (req, _) = parse(pem.as_bytes()).unwrap();
        assert_eq!(req, node("system:node:a"));
        // A flipped bit in the signature is refused.
        let (_, block) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).unwrap();
        let mut der = block.contents.clone();
        let last = der.len() - 1;
        der[last] ^= 1;
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &der);
        let bad = format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{b64}\n-----END CERTIFICATE REQUEST-----\n"
        );
        assert!(parse(bad.as_bytes()).is_err());
    }
}
