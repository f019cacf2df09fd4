//! Service-account tokens: the TokenRequest API
//! (`POST .../serviceaccounts/{name}/token`, authentication.k8s.io/v1) and
//! the authenticator for the tokens it issues, as kube-apiserver's.
//!
//! Tokens are JWTs signed with ES256 by a key kept in
//! `<data-dir>/tls/service-account.key` (created once). Claims follow
//! upstream: `iss` (wharf's issuer), `sub`
//! `system:serviceaccount:<ns>:<name>`, `aud`, `exp`/`iat`/`nbf`, `jti`,
//! and `kubernetes.io` with the namespace, the account and the bound pod.
//! A token authenticates as the account, in groups `system:serviceaccounts`
//! and `system:serviceaccounts:<ns>`, when its signature, issuer, audience
//! and times check out, and while the account and the bound pod still
//! exist with the same UIDs ([`still_valid`]). Not done:
//! `--service-account-extend-token-expiration`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair};
use serde_json::{json, Value};

use crate::authn::UserInfo;
use crate::error::{ApiError, ApiResult, FieldError};
use crate::registry::Registry;
use crate::route::ResourcePath;

/// The issuer, and the API server's audience (upstream's default
/// `--service-account-issuer` in clusters like kubeadm's and k3s's).
pub const ISSUER: &str = "https://kubernetes.default.svc.cluster.local";

/// TokenRequest's default `expirationSeconds`.
pub const DEFAULT_EXPIRATION: i64 = 3600;

const KEY_FILE: &str = "service-account.key";

/// The signing key.
pub struct Keys {
    pair: EcdsaKeyPair,
    public: Vec<u8>,
    kid: String,
}

// The key of the running API server. One per process: a second server in
// the same process (tests) replaces it.
static KEYS: RwLock<Option<Arc<Keys>>> = RwLock::new(None);

fn pem(der: &[u8]) -> String {
    let b = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out
}

fn unpem(text: &str) -> Option<Vec<u8>> {
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    STANDARD.decode(body.trim()).ok()
}

/// Load the key under `tls_dir` (creating it the first time) and make it
/// the one tokens are issued and checked with.
pub fn install(tls_dir: &Path) -> std::io::Result<()> {
    let k = load_or_create(tls_dir)?;
    *KEYS.write().expect("service-account keys") = Some(Arc::new(k));
    Ok(())
}

fn load_or_create(tls_dir: &Path) -> std::io::Result<Keys> {
    let path = tls_dir.join(KEY_FILE);
    let rng = SystemRandom::new();
    let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
    let der = match std::fs::read_to_string(&path) {
        Ok(t) => unpem(&t)
            .ok_or_else(|| std::io::Error::other(format!("{}: not a PEM key", path.display())))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng)
                .map_err(|_| std::io::Error::other("generating the service-account key failed"))?;
            let der = doc.as_ref().to_vec();
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            std::io::Write::write_all(&mut f, pem(&der).as_bytes())?;
            der
        }
        Err(e) => return Err(e),
    };
    let pair = EcdsaKeyPair::from_pkcs8(alg, &der, &rng)
        .map_err(|e| std::io::Error::other(format!("{}: {e}", path.display())))?;
    let public = pair.public_key().as_ref().to_vec();
    let digest = ring::digest::digest(&ring::digest::SHA256, &public);
    let kid = URL_SAFE_NO_PAD.encode(digest.as_ref());
    Ok(Keys { pair, public, kid })
}

fn keys() -> Option<Arc<Keys>> {
    KEYS.read().expect("service-account keys").clone()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// `secs` as metav1.Time.
fn rfc3339(secs: i64) -> String {
    crate::strategy::util::rfc3339(
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH),
    )
}

/// What a token is about.
pub struct Subject<'a> {
    /// The account's namespace.
    pub namespace: &'a str,
    /// The account's name.
    pub name: &'a str,
    /// The account's UID.
    pub uid: &'a str,
    /// The pod it is bound to: name, UID.
    pub pod: Option<(&'a str, &'a str)>,
}

/// A signed token for `who`, valid for `audiences` during `seconds`.
fn issue(k: &Keys, who: &Subject<'_>, audiences: &[String], seconds: i64, iat: i64) -> String {
    let header = json!({"alg": "ES256", "kid": k.kid});
    let mut kio = json!({
        "namespace": who.namespace,
        "serviceaccount": {"name": who.name, "uid": who.uid},
    });
    if let Some((name, uid)) = who.pod {
        kio["pod"] = json!({"name": name, "uid": uid});
    }
    let claims = json!({
        "aud": audiences, "exp": iat + seconds, "iat": iat, "nbf": iat, "iss": ISSUER,
        "jti": uuid::Uuid::new_v4().to_string(),
        "kubernetes.io": kio,
        "sub": format!("system:serviceaccount:{}:{}", who.namespace, who.name),
    });
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let sig = k
        .pair
        .sign(&SystemRandom::new(), signing_input.as_bytes())
        .map(|s| URL_SAFE_NO_PAD.encode(s.as_ref()))
        .unwrap_or_default();
    format!("{signing_input}.{sig}")
}

/// The user a token issued here stands for, if it is valid now.
fn verify(k: &Keys, token: &str, at: i64) -> Option<UserInfo> {
    let mut parts = token.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).ok()?).ok()?;
    if header["alg"] != "ES256" {
        return None;
    }
    let sig = URL_SAFE_NO_PAD.decode(s).ok()?;
    signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &k.public)
        .verify(format!("{h}.{c}").as_bytes(), &sig)
        .ok()?;
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    // Upstream allows some clock skew on both ends.
    const SKEW: i64 = 60;
    let exp = claims["exp"].as_i64()?;
    let nbf = claims["nbf"].as_i64().unwrap_or(0);
    if claims["iss"] != ISSUER || at > exp + SKEW || at + SKEW < nbf {
        return None;
    }
    let aud_ok = match &claims["aud"] {
        Value::Array(a) => a.iter().any(|x| x == ISSUER),
        Value::String(s) => s == ISSUER,
        _ => false,
    };
    if !aud_ok {
        return None;
    }
    let kio = &claims["kubernetes.io"];
    let ns = kio["namespace"].as_str()?;
    let name = kio["serviceaccount"]["name"].as_str()?;
    if claims["sub"] != format!("system:serviceaccount:{ns}:{name}") {
        return None;
    }
    let mut extra = BTreeMap::new();
    if let (Some(p), Some(u)) = (kio["pod"]["name"].as_str(), kio["pod"]["uid"].as_str()) {
        extra.insert(
            "authentication.kubernetes.io/pod-name".into(),
            vec![p.to_string()],
        );
        extra.insert(
            "authentication.kubernetes.io/pod-uid".into(),
            vec![u.to_string()],
        );
    }
    if let Some(j) = claims["jti"].as_str() {
        extra.insert(
            "authentication.kubernetes.io/credential-id".into(),
            vec![format!("JTI={j}")],
        );
    }
    Some(UserInfo {
        username: format!("system:serviceaccount:{ns}:{name}"),
        uid: kio["serviceaccount"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        groups: vec![
            "system:serviceaccounts".into(),
            format!("system:serviceaccounts:{ns}"),
        ],
        extra,
    })
}

/// The user of a bearer token issued by this API server, if valid.
pub fn authenticate(token: &str) -> Option<UserInfo> {
    // Only JWTs are worth the signature check.
    if token.matches('.').count() != 2 {
        return None;
    }
    verify(keys()?.as_ref(), token, now())
}

/// Whether the account and the pod a token of `user` was bound to still
/// exist with the UIDs it names (upstream's check: deleting the pod or
/// the account invalidates its tokens at once). Users not from tokens
/// issued here pass.
pub fn still_valid(reg: &Registry, user: &UserInfo) -> bool {
    let ours = user
        .extra
        .get("authentication.kubernetes.io/credential-id")
        .is_some_and(|v| v.iter().any(|j| j.starts_with("JTI=")));
    let Some(rest) = user.username.strip_prefix("system:serviceaccount:") else {
        return true;
    };
    let Some((ns, name)) = rest.split_once(':').filter(|_| ours) else {
        return true;
    };
    let uid_of = |plural: &str, obj: &str| -> Option<String> {
        let info = crate::resources::lookup("", "v1", plural)?;
        let e = reg.cache.get(&info.key(Some(ns), obj))?;
        e.value()["metadata"]["uid"].as_str().map(str::to_string)
    };
    if uid_of("serviceaccounts", name).as_deref() != Some(user.uid.as_str()) {
        return false;
    }
    let one = |k: &str| user.extra.get(k).and_then(|v| v.first()).cloned();
    match (
        one("authentication.kubernetes.io/pod-name"),
        one("authentication.kubernetes.io/pod-uid"),
    ) {
        (Some(pod), Some(uid)) => uid_of("pods", &pod).as_deref() == Some(uid.as_str()),
        _ => true,
    }
}

/// `POST serviceaccounts/{name}/token`: the TokenRequest with its token.
pub async fn token_request(
    reg: &Registry,
    account: &ResourcePath,
    req: &Value,
) -> ApiResult<Value> {
    let name = account.name.clone().unwrap_or_default();
    let ns = account.namespace.clone().unwrap_or_default();
    let spec = &req["spec"];
    let seconds = spec["expirationSeconds"]
        .as_i64()
        .unwrap_or(DEFAULT_EXPIRATION);
    let invalid = |msg: &str| {
        ApiError::invalid(
            "authentication.k8s.io",
            "TokenRequest",
            &name,
            &[FieldError::invalid("spec.expirationSeconds", seconds, msg)],
        )
    };
    if seconds < 600 {
        return Err(invalid("may not specify a duration less than 10 minutes"));
    }
    if seconds > 1 << 32 {
        return Err(invalid(
            "may not specify a duration larger than 2^32 seconds",
        ));
    }
    let sa = reg.get(account, None).await?;
    let sa_uid = sa["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let bound = &spec["boundObjectRef"];
    let mut pod = None;
    if bound.is_object() {
        let kind = bound["kind"].as_str().unwrap_or_default();
        if kind != "Pod" {
            return Err(ApiError::bad_request(format!(
                "cannot bind token for serviceaccount \"{name}\" to object of kind \"{kind}\""
            )));
        }
        let pod_name = bound["name"].as_str().unwrap_or_default().to_string();
        let pods =
            crate::resources::lookup("", "v1", "pods").ok_or_else(ApiError::not_found_path)?;
        let rp = ResourcePath {
            info: pods,
            namespace: Some(ns.clone()),
            name: Some(pod_name.clone()),
            subresource: None,
        };
        let p = reg.get(&rp, None).await?;
        let uid = p["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if let Some(want) = bound["uid"].as_str().filter(|u| !u.is_empty()) {
            if want != uid {
                return Err(ApiError::conflict(
                    pods.group_resource(),
                    &pod_name,
                    &format!("the UID in the bound object reference ({want}) does not match the UID in record. The object might have been deleted and then recreated"),
                ));
            }
        }
        pod = Some((pod_name, uid));
    }
    let audiences: Vec<String> = spec["audiences"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .filter(|a: &Vec<String>| !a.is_empty())
        .unwrap_or_else(|| vec![ISSUER.to_string()]);
    let k =
        keys().ok_or_else(|| ApiError::bad_request("service-account tokens are not configured"))?;
    let iat = now();
    let who = Subject {
        namespace: &ns,
        name: &name,
        uid: &sa_uid,
        pod: pod.as_ref().map(|(n, u)| (n.as_str(), u.as_str())),
    };
    let token = issue(&k, &who, &audiences, seconds, iat);
    let mut out_spec =
        json!({"audiences": audiences, "expirationSeconds": seconds, "boundObjectRef": null});
    if bound.is_object() {
        out_spec["boundObjectRef"] = bound.clone();
    }
    Ok(json!({
        "kind": "TokenRequest",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": null},
        "spec": out_spec,
        "status": {"token": token, "expirationTimestamp": rfc3339(iat + seconds)},
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_keys() -> Keys {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let doc = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(alg, doc.as_ref(), &rng).unwrap();
        let public = pair.public_key().as_ref().to_vec();
        Keys {
            pair,
            public,
            kid: "k".into(),
        }
    }

    #[test]
    fn issued_tokens_authenticate_until_they_expire() {
        let k = test_keys();
        let who = Subject {
            namespace: "ns",
            name: "sa",
            uid: "u-sa",
            pod: Some(("p", "u-p")),
        };
        let t = issue(&k, &who, &[ISSUER.to_string()], 600, 1000);
        let u = verify(&k, &t, 1000).unwrap();
        assert_eq!(u.username, "system:serviceaccount:ns:sa");
        assert_eq!(u.uid, "u-sa");
        assert_eq!(
            u.groups,
            ["system:serviceaccounts", "system:serviceaccounts:ns"]
        );
        assert_eq!(u.extra["authentication.kubernetes.io/pod-name"], ["p"]);
        assert!(verify(&k, &t, 1000 + 600 + 61).is_none(), "expired");
        assert!(verify(&k, &t, 1000 - 61).is_none(), "not yet valid");
        // Another audience is not for the API server.
        let other = issue(&k, &who, &["vault".to_string()], 600, 1000);
        assert!(verify(&k, &other, 1000).is_none());
        // A changed claim breaks the signature; another key does not verify.
        let mut parts: Vec<String> = t.split('.').map(str::to_string).collect();
        let mut claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        claims["kubernetes.io"]["namespace"] = json!("kube-system");
        claims["sub"] = json!("system:serviceaccount:kube-system:sa");
        parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
        assert!(verify(&k, &parts.join("."), 1000).is_none());
        assert!(verify(&test_keys(), &t, 1000).is_none());
        assert!(verify(&k, "a.b", 1000).is_none());
    }

    #[test]
    fn key_file_round_trip() {
        let d = tempfile::tempdir().unwrap();
        let first = load_or_create(d.path()).unwrap();
        let again = load_or_create(d.path()).unwrap();
        assert_eq!(
            again.public, first.public,
            "the key is loaded, not replaced"
        );
        assert_eq!(again.kid, first.kid);
        let t = issue(
            &first,
            &Subject {
                namespace: "n",
                name: "s",
                uid: "",
                pod: None,
            },
            &[ISSUER.into()],
            600,
            5,
        );
        assert!(verify(&again, &t, 5).is_some());
    }
}
