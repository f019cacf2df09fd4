//! Join tokens and upstream's bootstrap-token authenticator.
//!
//! A join token has k3s's secure format, `K10<ca-hash>::<id>.<secret>`:
//! `<ca-hash>` is the hex SHA-256 of the CA bundle the server serves at
//! `GET /cacerts` (so an agent can pin the CA before trusting it), and
//! `<id>.<secret>` is an upstream bootstrap token (`[a-z0-9]{6}.[a-z0-9]{16}`).
//! The server keeps it as the Secret `kube-system/bootstrap-token-<id>` of
//! type `bootstrap.kubernetes.io/token`; a request with
//! `Authorization: Bearer <id>.<secret>` authenticates as
//! `system:bootstrap:<id>` in `system:bootstrappers`, as kube-apiserver's
//! `--enable-bootstrap-token-auth` does.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::authn::UserInfo;
use crate::registry::Registry;

/// The group every bootstrap token user is in.
pub const BOOTSTRAPPERS_GROUP: &str = "system:bootstrappers";
/// The Secret type of bootstrap tokens.
pub const SECRET_TYPE: &str = "bootstrap.kubernetes.io/token";
/// Where bootstrap token Secrets live.
pub const NAMESPACE: &str = "kube-system";
const USER_PREFIX: &str = "system:bootstrap:";
const SECRET_PREFIX: &str = "bootstrap-token-";

/// Why a join token string is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not `K10<hash>::<id>.<secret>`.
    #[error("the token is not in the form K10<sha256 of the CA>::<id>.<secret>")]
    Format,
    /// The CA hash is not 64 hex digits.
    #[error("the token's CA hash is not a SHA-256 in hex")]
    Hash,
    /// The credential part is not an upstream bootstrap token.
    #[error("the token's credential is not of the form [a-z0-9]{{6}}.[a-z0-9]{{16}}")]
    Credential,
}

/// A parsed join token.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// Hex SHA-256 of the CA bundle (lower case).
    pub ca_hash: String,
    /// The bootstrap token id (public).
    pub id: String,
    /// The bootstrap token secret.
    pub secret: String,
}

impl fmt::Debug for JoinToken {
    /// The secret stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinToken")
            .field("ca_hash", &self.ca_hash)
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for JoinToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "K10{}::{}.{}", self.ca_hash, self.id, self.secret)
    }
}

impl JoinToken {
    /// Parses `K10<hash>::<id>.<secret>`.
    pub fn parse(s: &str) -> Result<JoinToken, TokenError> {
        let rest = s.trim().strip_prefix("K10").ok_or(TokenError::Format)?;
        let (hash, cred) = rest.split_once("::").ok_or(TokenError::Format)?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(TokenError::Hash);
        }
        let (id, secret) = parse_credential(cred).ok_or(TokenError::Credential)?;
        Ok(JoinToken {
            ca_hash: hash.to_ascii_lowercase(),
            id: id.into(),
            secret: secret.into(),
        })
    }

    /// The bearer credential, `<id>.<secret>`.
    pub fn bearer(&self) -> String {
        format!("{}.{}", self.id, self.secret)
    }

    /// Whether `ca_pem` (the exact bytes served at `/cacerts`) is the CA
    /// this token pins.
    pub fn matches_ca(&self, ca_pem: &[u8]) -> bool {
        ca_hash(ca_pem) == self.ca_hash
    }
}

/// `<id>.<secret>` if `s` is an upstream bootstrap token
/// (`^([a-z0-9]{6})\.([a-z0-9]{16})$`).
pub fn parse_credential(s: &str) -> Option<(&str, &str)> {
    let (id, secret) = s.split_once('.')?;
    let ok = |p: &str, n: usize| {
        p.len() == n
            && p.bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_lowercase())
    };
    (ok(id, 6) && ok(secret, 16)).then_some((id, secret))
}

/// Hex SHA-256 of a CA bundle.
pub fn ca_hash(ca_pem: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, ca_pem);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// A credential derived from a free-form `--token` value, so that the same
/// value gives the same bootstrap token on every server start.
pub fn credential_from_passphrase(passphrase: &str) -> (String, String) {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("wharf join token:{passphrase}").as_bytes(),
    );
    let chars: String = digest
        .as_ref()
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    (chars[..6].to_string(), chars[6..22].to_string())
}

/// The Secret that makes `<id>.<secret>` an authentication token.
pub fn secret_object(id: &str, secret: &str) -> Value {
    let b = |s: &str| BASE64.encode(s);
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": { "name": format!("{SECRET_PREFIX}{id}"), "namespace": NAMESPACE },
        "type": SECRET_TYPE,
        "data": {
            "description": b("the wharf join token"),
            "token-id": b(id),
            "token-secret": b(secret),
            "usage-bootstrap-authentication": b("true"),
            "usage-bootstrap-signing": b("true"),
        }
    })
}

/// Authenticates `Bearer <id>.<secret>` against the bootstrap token Secrets
/// in the watch cache, with upstream's checks: the Secret's type, its
/// `token-id` and `token-secret` (compared in constant time),
/// `usage-bootstrap-authentication: "true"`, not expired, not being deleted.
pub fn authenticate(reg: &Registry, authorization: Option<&str>) -> Option<UserInfo> {
    let token = authorization.and_then(crate::authn::bearer_token)?;
    let (id, secret) = parse_credential(token)?;
    let info = crate::resources::lookup("", "v1", "secrets")?;
    let entry = reg
        .cache
        .get(&info.key(Some(NAMESPACE), &format!("{SECRET_PREFIX}{id}")))?;
    user_for(&entry.value(), id, secret, time::OffsetDateTime::now_utc())
}

/// The user a bootstrap token Secret grants to `id`/`secret`, if any.
fn user_for(
    secret_obj: &Value,
    id: &str,
    secret: &str,
    now: time::OffsetDateTime,
) -> Option<UserInfo> {
    if secret_obj["type"].as_str() != Some(SECRET_TYPE) {
        return None;
    }
    if secret_obj["metadata"]
        .get("deletionTimestamp")
        .is_some_and(|d| !d.is_null())
    {
        return None;
    }
    let data = |k: &str| -> Option<String> {
        let b = secret_obj["data"][k].as_str()?;
        String::from_utf8(BASE64.decode(b).ok()?).ok()
    };
    if data("token-id").as_deref() != Some(id) {
        return None;
    }
    let want = data("token-secret")?;
    if !crate::authn::constant_time_eq(want.as_bytes(), secret.as_bytes()) {
        tracing::info!(token_id = id, "bootstrap token with a wrong secret");
        return None;
    }
    if data("usage-bootstrap-authentication").as_deref() != Some("true") {
        return None;
    }
    if let Some(exp) = data("expiration") {
        let at = time::OffsetDateTime::parse(&exp, &time::format_description::well_known::Rfc3339);
        match at {
            Ok(at) if at > now => {}
            _ => {
                tracing::info!(token_id = id, "expired bootstrap token");
                return None;
            }
        }
    }
    let mut groups = vec![BOOTSTRAPPERS_GROUP.to_string()];
    for g in data("auth-extra-groups").unwrap_or_default().split(',') {
        let g = g.trim();
        // Upstream only honours extra groups under system:bootstrappers:.
        if g.starts_with("system:bootstrappers:") && !groups.iter().any(|x| x == g) {
            groups.push(g.to_string());
        }
    }
    Some(UserInfo {
        username: format!("{USER_PREFIX}{id}"),
        uid: String::new(),
        groups,
        extra: BTreeMap::new(),
    })
}

/// What a bootstrap token may do: upstream's `system:node-bootstrapper`
/// role (create, get, list and watch CertificateSigningRequests) plus
/// discovery (`system:discovery`). wharf has no authorizer yet; without
/// this a leaked join token would be an administrator's credential.
/// Other users are not restricted here.
pub fn authorize(
    user: &UserInfo,
    route: &crate::route::Route,
    method: &http::Method,
    watch: bool,
) -> crate::error::ApiResult<()> {
    use crate::route::Route;
    if !user.username.starts_with(USER_PREFIX)
        || !user.groups.iter().any(|g| g == BOOTSTRAPPERS_GROUP)
    {
        return Ok(());
    }
    let rp = match route {
        Route::Resource(rp) => rp,
        Route::LegacyVersions
        | Route::Groups
        | Route::Group(_)
        | Route::ResourceList { .. }
        | Route::OpenApi(_)
        | Route::Version
        | Route::Health { .. } => return Ok(()),
        Route::Unknown => return Err(crate::error::ApiError::not_found_path()),
    };
    let verb = match (method.as_str(), rp.name.is_some()) {
        ("GET", _) if watch => "watch",
        ("GET", true) => "get",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        _ => "unknown",
    };
    let csr =
        rp.info.group == "certificates.k8s.io" && rp.info.plural == "certificatesigningrequests";
    if csr && rp.subresource.is_none() && matches!(verb, "create" | "get" | "list" | "watch") {
        return Ok(());
    }
    Err(crate::error::ApiError::forbidden(forbidden_message(
        user, rp, verb,
    )))
}

/// Upstream's RBAC denial text.
fn forbidden_message(user: &UserInfo, rp: &crate::route::ResourcePath, verb: &str) -> String {
    let info = rp.info;
    let resource = match &rp.subresource {
        Some(s) => format!("{}/{s}", info.plural),
        None => info.plural.to_string(),
    };
    let qualified = if info.group.is_empty() {
        info.plural.to_string()
    } else {
        format!("{}.{}", info.plural, info.group)
    };
    let what = match &rp.name {
        Some(n) => format!("{qualified} {n:?}"),
        None => qualified,
    };
    let scope = match &rp.namespace {
        Some(ns) => format!("in the namespace {ns:?}"),
        None => "at the cluster scope".into(),
    };
    format!(
        "{what} is forbidden: User {:?} cannot {verb} resource {resource:?} in API group {:?} {scope}",
        user.username, info.group
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn tokens_round_trip_and_bad_ones_are_refused() {
        let t = JoinToken::parse(&format!("K10{HASH}::abcdef.0123456789abcdef")).unwrap();
        assert_eq!(
            (t.id.as_str(), t.secret.as_str()),
            ("abcdef", "0123456789abcdef")
        );
        assert_eq!(t.to_string(), format!("K10{HASH}::abcdef.0123456789abcdef"));
        assert_eq!(t.bearer(), "abcdef.0123456789abcdef");
        let hidden = JoinToken::parse(&format!("K10{HASH}::abcdef.zyxwvutsrqponmlk")).unwrap();
        assert!(!format!("{hidden:?}").contains("zyxwvutsrqponmlk"));
        assert_eq!(
            JoinToken::parse("abcdef.0123456789abcdef"),
            Err(TokenError::Format)
        );
        assert_eq!(
            JoinToken::parse("K10abc::abcdef.0123456789abcdef"),
            Err(TokenError::Hash)
        );
        assert_eq!(
            JoinToken::parse(&format!("K10{HASH}::ABCDEF.0123456789abcdef")),
            Err(TokenError::Credential)
        );
        assert_eq!(
            JoinToken::parse(&format!("K10{HASH}::abcdef.short")),
            Err(TokenError::Credential)
        );
    }

    #[test]
    fn ca_hash_pins_the_exact_bundle() {
        let pem = b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let t = JoinToken {
            ca_hash: ca_hash(pem),
            id: "abcdef".into(),
            secret: "0123456789abcdef".into(),
        };
        assert!(t.matches_ca(pem));
        assert!(!t.matches_ca(b"-----BEGIN CERTIFICATE-----\nAAAB\n-----END CERTIFICATE-----\n"));
        // SHA-256 of the empty string, a known value.
        assert_eq!(
            ca_hash(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn passphrases_give_stable_valid_credentials() {
        let (id, secret) = credential_from_passphrase("hunter2");
        assert!(parse_credential(&format!("{id}.{secret}")).is_some());
        assert_eq!(credential_from_passphrase("hunter2"), (id, secret));
        assert_ne!(credential_from_passphrase("hunter3").0 + "x", "x");
    }

    #[test]
    fn bootstrappers_may_only_ask_for_certificates() {
        use crate::route::{route, Route};
        use http::Method;
        let user = user_for(
            &secret_object("abcdef", "0123456789abcdef"),
            "abcdef",
            "0123456789abcdef",
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        let r = |p: &str| route(p).unwrap();
        let csrs = "/apis/certificates.k8s.io/v1/certificatesigningrequests";
        assert!(authorize(&user, &r(csrs), &Method::POST, false).is_ok());
        assert!(authorize(&user, &r(csrs), &Method::GET, true).is_ok());
        assert!(authorize(&user, &r(&format!("{csrs}/x")), &Method::GET, false).is_ok());
        assert!(authorize(&user, &r("/apis"), &Method::GET, false).is_ok());
        let e = authorize(
            &user,
            &r(&format!("{csrs}/x/approval")),
            &Method::PUT,
            false,
        )
        .unwrap_err();
        assert_eq!(e.code, 403);
        assert_eq!(
            e.message,
            "certificatesigningrequests.certificates.k8s.io \"x\" is forbidden: User \"system:bootstrap:abcdef\" cannot update resource \"certificatesigningrequests/approval\" in API group \"certificates.k8s.io\" at the cluster scope"
        );
        let e = authorize(
            &user,
            &r("/api/v1/namespaces/kube-system/secrets"),
            &Method::GET,
            false,
        )
        .unwrap_err();
        assert_eq!(
            e.message,
            "secrets is forbidden: User \"system:bootstrap:abcdef\" cannot list resource \"secrets\" in API group \"\" in the namespace \"kube-system\""
        );
        assert!(matches!(r("/api/v1/nodes"), Route::Resource(_)));
        // Anyone else is not restricted here.
        let admin = UserInfo::new("system:admin", vec!["system:masters".into()]);
        assert!(authorize(&admin, &r("/api/v1/nodes"), &Method::DELETE, false).is_ok());
    }

    #[test]
    fn secrets_authenticate_only_when_valid() {
        let now = time::OffsetDateTime::now_utc();
        let s = secret_object("abcdef", "0123456789abcdef");
        let user = user_for(&s, "abcdef", "0123456789abcdef", now).unwrap();
        assert_eq!(user.username, "system:bootstrap:abcdef");
        assert_eq!(user.groups, ["system:bootstrappers"]);
        assert!(user_for(&s, "abcdef", "0123456789abcdeX", now).is_none());
        assert!(user_for(&s, "abcdeg", "0123456789abcdef", now).is_none());
        let mut wrong_type = s.clone();
        wrong_type["type"] = json!("Opaque");
        assert!(user_for(&wrong_type, "abcdef", "0123456789abcdef", now).is_none());
        let mut expired = s.clone();
        expired["data"]["expiration"] = json!(BASE64.encode("2000-01-01T00:00:00Z"));
        assert!(user_for(&expired, "abcdef", "0123456789abcdef", now).is_none());
        let mut no_auth = s.clone();
        no_auth["data"]["usage-bootstrap-authentication"] = json!(BASE64.encode("false"));
        assert!(user_for(&no_auth, "abcdef", "0123456789abcdef", now).is_none());
        let mut extra = s;
        extra["data"]["auth-extra-groups"] =
            json!(BASE64.encode("system:bootstrappers:wharf,system:masters"));
        let user = user_for(&extra, "abcdef", "0123456789abcdef", now).unwrap();
        assert_eq!(
            user.groups,
            ["system:bootstrappers", "system:bootstrappers:wharf"]
        );
    }
}
