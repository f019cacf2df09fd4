//! Registry credentials from a pod's `imagePullSecrets`, matched to an image
//! the way upstream's kubelet keyring does it:
//!
//! - a Secret of type `kubernetes.io/dockerconfigjson` (`{"auths": {...}}`)
//!   or `kubernetes.io/dockercfg` (the map itself) adds one entry per key;
//! - a key is a registry location with an optional scheme and path
//!   (`https://index.docker.io/v1/`, `registry:5000/team`, `*.example.com`);
//!   the scheme and a leading `/v1` or `/v2` are dropped;
//! - an image matches a key when the host has the same number of labels,
//!   each matching the key's (which may hold `*` globs), the ports are equal,
//!   and the image's path starts with the key's; more specific keys come
//!   first (reverse lexical order, as upstream);
//! - an image of Docker Hub (`busybox`, `library/busybox`, `docker.io/…`)
//!   that matched nothing uses the credentials for `index.docker.io`.
//!
//! Every matching credential is tried in order; upstream also tries them all.

use std::collections::BTreeMap;

use base64::Engine;
use serde_json::Value;

/// One set of credentials for a registry, as CRI's `AuthConfig` takes them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credential {
    /// User name.
    pub username: String,
    /// Password.
    pub password: String,
    /// An identity token (`identitytoken`), used instead of a password.
    pub identity_token: String,
}

/// The credentials of some docker config files, by normalized key.
#[derive(Clone, Debug, Default)]
pub struct Keyring {
    creds: BTreeMap<String, Vec<Credential>>,
}

const DEFAULT_REGISTRY_HOST: &str = "index.docker.io";

impl Keyring {
    /// Add the entries of one Secret's data (`type` decides the layout).
    /// Returns an error naming what is malformed; the caller reports it and
    /// goes on with the other secrets, as upstream does.
    pub fn add_secret(
        &mut self,
        secret_type: &str,
        data: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        let (field, nested) = match secret_type {
            "kubernetes.io/dockerconfigjson" => (".dockerconfigjson", true),
            "kubernetes.io/dockercfg" => (".dockercfg", false),
            other => {
                return Err(format!(
                    "secret type {other:?} holds no registry credentials"
                ))
            }
        };
        let text = data
            .get(field)
            .ok_or_else(|| format!("the secret has no {field} key"))?;
        let doc: Value =
            serde_json::from_str(text).map_err(|e| format!("{field} is not valid JSON: {e}"))?;
        let entries = if nested { &doc["auths"] } else { &doc };
        let Some(entries) = entries.as_object() else {
            return Err(format!("{field} holds no registry entries"));
        };
        for (location, entry) in entries {
            let Some(key) = normalize_key(location) else {
                tracing::warn!(location = %location, "registry entry with an invalid location; ignored");
                continue;
            };
            let cred = credential(entry)?;
            self.creds.entry(key).or_default().push(cred);
        }
        Ok(())
    }

    /// Whether no credentials were added.
    pub fn is_empty(&self) -> bool {
        self.creds.is_empty()
    }

    /// The credentials to try for `image`, most specific first.
    pub fn lookup(&self, image: &str) -> Vec<Credential> {
        let image = strip_tag_and_digest(image);
        let mut out = Vec::new();
        for (key, creds) in self.creds.iter().rev() {
            if urls_match(key, image) {
                out.extend(creds.iter().cloned());
            }
        }
        if out.is_empty() && is_default_registry(image) {
            if let Some(c) = self.creds.get(DEFAULT_REGISTRY_HOST) {
                out.extend(c.iter().cloned());
            }
        }
        out
    }
}

fn credential(entry: &Value) -> Result<Credential, String> {
    let s = |k: &str| entry[k].as_str().unwrap_or_default().to_string();
    let mut c = Credential {
        username: s("username"),
        password: s("password"),
        identity_token: s("identitytoken"),
    };
    // `auth` is base64 of "user:password" and wins where it is set.
    let auth = s("auth");
    if !auth.is_empty() {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(auth.trim())
            .map_err(|e| format!("the auth field is not valid base64: {e}"))?;
        let raw = String::from_utf8(raw).map_err(|_| "the auth field is not UTF-8".to_string())?;
        let (user, pass) = raw
            .split_once(':')
            .ok_or_else(|| "the auth field is not of the form user:password".to_string())?;
        c.username = user.to_string();
        c.password = pass.to_string();
    }
    Ok(c)
}

/// `https://host:port/v1/path` → `host:port/path`; `None` when empty.
fn normalize_key(location: &str) -> Option<String> {
    let rest = location
        .strip_prefix("https://")
        .or_else(|| location.strip_prefix("http://"))
        .unwrap_or(location);
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return None;
    }
    let path = path
        .strip_prefix("/v1")
        .or_else(|| path.strip_prefix("/v2"))
        .filter(|p| p.is_empty() || p.starts_with('/'))
        .unwrap_or(path);
    if path.is_empty() || path == "/" {
        Some(host.to_string())
    } else {
        Some(format!("{host}{path}"))
    }
}

/// `registry/repo:tag` and `repo@sha256:…` → the repository part.
fn strip_tag_and_digest(image: &str) -> &str {
    let image = image.split('@').next().unwrap_or(image);
    match image.rfind(':') {
        // A colon after the last slash is a tag; before it, a port.
        Some(i) if !image[i..].contains('/') => &image[..i],
        _ => image,
    }
}

/// Upstream's rule for names that go to Docker Hub.
fn is_default_registry(image: &str) -> bool {
    let mut parts = image.splitn(2, '/');
    let first = parts.next().unwrap_or_default();
    if first.is_empty() {
        return false;
    }
    match parts.next() {
        None => true,
        Some(_) if first == "docker.io" || first == "index.docker.io" => true,
        Some(_) => !first.contains(['.', ':']),
    }
}

fn split_host(hostport: &str) -> (Vec<&str>, &str) {
    match hostport.rsplit_once(':') {
        Some((h, p)) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            (h.split('.').collect(), p)
        }
        _ => (hostport.split('.').collect(), ""),
    }
}

/// Whether `target` (a schemeless image location) is covered by `glob`.
fn urls_match(glob: &str, target: &str) -> bool {
    let split = |s: &str| -> (String, String) {
        match s.find('/') {
            Some(i) => (s[..i].to_string(), s[i..].to_string()),
            None => (s.to_string(), String::new()),
        }
    };
    let (ghost, gpath) = split(glob);
    let (thost, tpath) = split(target);
    let (gparts, gport) = split_host(&ghost);
    let (tparts, tport) = split_host(&thost);
    if gparts.len() != tparts.len() || gport != tport {
        return false;
    }
    if !gparts.iter().zip(&tparts).all(|(g, t)| glob_match(g, t)) {
        return false;
    }
    tpath.starts_with(&gpath)
}

/// Shell-style `*` and `?` within one host label.
fn glob_match(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Iterative matching with backtracking to the last star.
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(json: &str) -> Keyring {
        let mut k = Keyring::default();
        let data = BTreeMap::from([(".dockerconfigjson".to_string(), json.to_string())]);
        k.add_secret("kubernetes.io/dockerconfigjson", &data)
            .unwrap();
        k
    }

    fn users(k: &Keyring, image: &str) -> Vec<String> {
        k.lookup(image).into_iter().map(|c| c.username).collect()
    }

    #[test]
    fn auth_field_is_decoded_and_wins() {
        // "alice:s3cret"
        let k = ring(r#"{"auths":{"reg:5000":{"username":"x","auth":"YWxpY2U6czNjcmV0"}}}"#);
        let c = &k.lookup("reg:5000/app:v1")[0];
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("alice", "s3cret")
        );
    }

    #[test]
    fn hosts_ports_paths_and_globs_match_as_upstream() {
        let k = ring(
            r#"{"auths":{
                "https://reg.example.com:5000/v2/":{"username":"port"},
                "reg.example.com":{"username":"host"},
                "reg.example.com/team":{"username":"team"},
                "*.corp.io":{"username":"glob"}}}"#,
        );
        assert_eq!(users(&k, "reg.example.com:5000/app:1"), ["port"]);
        assert_eq!(users(&k, "reg.example.com/team/app:1"), ["team", "host"]);
        assert_eq!(users(&k, "reg.example.com/other"), ["host"]);
        assert_eq!(users(&k, "a.corp.io/x@sha256:00"), ["glob"]);
        // A glob covers one label only, and a different port is another registry.
        assert!(users(&k, "a.b.corp.io/x").is_empty());
        assert!(users(&k, "reg.example.com:6000/app").is_empty());
    }

    #[test]
    fn docker_hub_names_use_the_index_credentials() {
        let k = ring(r#"{"auths":{"https://index.docker.io/v1/":{"username":"hub"}}}"#);
        for image in [
            "busybox",
            "busybox:1.36",
            "library/busybox",
            "docker.io/library/busybox:latest",
        ] {
            assert_eq!(users(&k, image), ["hub"], "{image}");
        }
        assert!(users(&k, "quay.io/x/y").is_empty());
        assert!(users(&k, "localhost:5000/x").is_empty());
    }

    #[test]
    fn legacy_dockercfg_and_bad_secrets() {
        let mut k = Keyring::default();
        let data = BTreeMap::from([(
            ".dockercfg".to_string(),
            r#"{"reg:5000":{"username":"old","password":"p"}}"#.to_string(),
        )]);
        k.add_secret("kubernetes.io/dockercfg", &data).unwrap();
        assert_eq!(users(&k, "reg:5000/a"), ["old"]);
        let bad = BTreeMap::from([(".dockerconfigjson".to_string(), "{".to_string())]);
        let e = k
            .add_secret("kubernetes.io/dockerconfigjson", &bad)
            .unwrap_err();
        assert!(e.contains("not valid JSON"), "{e}");
        let e = k.add_secret("Opaque", &bad).unwrap_err();
        assert!(e.contains("holds no registry credentials"), "{e}");
    }

    #[test]
    fn glob_matching() {
        assert!(glob_match("*", "abc"));
        assert!(glob_match("a*c", "abbbc"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a*d", "abc"));
        assert!(glob_match("", ""));
    }
}
