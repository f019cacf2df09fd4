//! The private-registry file, in k3s's `registries.yaml` format, turned
//! into configuration for wharf's own containerd:
//!
//! ```yaml
//! mirrors:
//!   docker.io:
//!     endpoint: ["http://127.0.0.1:5000"]
//! configs:
//!   "127.0.0.1:5000":
//!     auth: {username: alice, password: s3cret}
//!     tls: {insecure_skip_verify: true}
//! ```
//!
//! - every mirrored registry (and every configured one with TLS settings)
//!   gets `certs.d/<registry>/hosts.toml`, which containerd reads through
//!   its `config_path`: the endpoints are tried in order, then the registry
//!   itself;
//! - credentials go into the CRI plugin's `registry.configs.<host>.auth`,
//!   which containerd uses for a host when the pull request carries none
//!   (a pod's `imagePullSecrets` take precedence, as upstream).
//!
//! Not supported (warned about): the `*` mirror and `rewrite` rules, which
//! need k3s's patched containerd.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

/// The file, as k3s documents it.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Registries {
    /// Mirrors by registry name (`docker.io`, `registry.example.com:5000`).
    #[serde(default)]
    pub mirrors: BTreeMap<String, Mirror>,
    /// Per-host settings by `host[:port]`.
    #[serde(default)]
    pub configs: BTreeMap<String, HostConfig>,
}

/// Where a registry's images are pulled from instead.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mirror {
    /// Endpoint URLs (`https://mirror:5000`, `http://10.0.0.1:5000`), in order.
    #[serde(default)]
    pub endpoint: Vec<String>,
    /// Repository rewrites (k3s only; ignored here with a warning).
    #[serde(default)]
    pub rewrite: BTreeMap<String, String>,
}

/// Credentials and TLS for one host.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostConfig {
    /// Credentials.
    pub auth: Option<Auth>,
    /// TLS settings.
    pub tls: Option<Tls>,
}

/// Registry credentials.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Auth {
    /// User name.
    pub username: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// base64 of `user:password`.
    pub auth: Option<String>,
    /// An identity token.
    pub identitytoken: Option<String>,
}

/// TLS settings for a host.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    /// CA bundle file.
    pub ca_file: Option<String>,
    /// Client certificate file.
    pub cert_file: Option<String>,
    /// Client key file.
    pub key_file: Option<String>,
    /// Skip server certificate verification.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

impl Registries {
    /// Read the file; a missing file is an empty configuration, a broken one
    /// an error that names the file and the problem.
    pub fn load(path: &Path) -> Result<Registries, String> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Registries::default()),
            Err(e) => return Err(format!("reading {}: {e}", path.display())),
        };
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parse the YAML text.
    pub fn parse(text: &str) -> Result<Registries, String> {
        if text.trim().is_empty() {
            return Ok(Registries::default());
        }
        let r: Registries = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        for (name, m) in &r.mirrors {
            if name.is_empty() || name.contains('/') {
                return Err(format!("mirrors: invalid registry name {name:?}"));
            }
            for e in &m.endpoint {
                endpoint_host(e).ok_or_else(|| {
                    format!("mirrors.{name}.endpoint: {e:?} is not an http or https URL")
                })?;
            }
        }
        Ok(r)
    }

    /// The `hosts.toml` files to write, by registry directory name.
    pub fn hosts_files(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (name, m) in &self.mirrors {
            if name == "*" {
                tracing::warn!("registries: the \"*\" mirror needs a newer containerd; ignored");
                continue;
            }
            if !m.rewrite.is_empty() {
                tracing::warn!(registry = %name, "registries: rewrite rules are not supported; ignored");
            }
            let mut text = format!(
                "# Written by wharf from the registries file.\nserver = \"{}\"\n",
                default_server(name)
            );
            for e in &m.endpoint {
                let host = endpoint_host(e).unwrap_or_default();
                text.push_str(&format!(
                    "\n[host.\"{}\"]\n  capabilities = [\"pull\", \"resolve\"]\n",
                    toml_escape(e.trim_end_matches('/'))
                ));
                text.push_str(&self.tls_lines(&host));
            }
            out.insert(name.clone(), text);
        }
        // A registry with TLS settings and no mirror: its own hosts.toml.
        for (host, c) in &self.configs {
            if out.contains_key(host) || c.tls.is_none() {
                continue;
            }
            let server = format!("https://{host}");
            let mut text = format!(
                "# Written by wharf from the registries file.\nserver = \"{server}\"\n\n[host.\"{server}\"]\n  capabilities = [\"pull\", \"resolve\"]\n"
            );
            text.push_str(&self.tls_lines(host));
            out.insert(host.clone(), text);
        }
        out
    }

    fn tls_lines(&self, host: &str) -> String {
        let Some(tls) = self.configs.get(host).and_then(|c| c.tls.as_ref()) else {
            return String::new();
        };
        let mut s = String::new();
        if tls.insecure_skip_verify {
            s.push_str("  skip_verify = true\n");
        }
        if let Some(ca) = &tls.ca_file {
            s.push_str(&format!("  ca = \"{}\"\n", toml_escape(ca)));
        }
        if let (Some(c), Some(k)) = (&tls.cert_file, &tls.key_file) {
            s.push_str(&format!(
                "  client = [[\"{}\", \"{}\"]]\n",
                toml_escape(c),
                toml_escape(k)
            ));
        }
        s
    }

    /// The CRI plugin's `registry.configs` auth sections for config.toml.
    pub fn auth_toml(&self) -> String {
        let mut s = String::new();
        for (host, c) in &self.configs {
            let Some(a) = &c.auth else { continue };
            s.push_str(&format!(
                "    [plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"{}\".auth]\n",
                toml_escape(host)
            ));
            for (k, v) in [
                ("username", &a.username),
                ("password", &a.password),
                ("auth", &a.auth),
                ("identitytoken", &a.identitytoken),
            ] {
                if let Some(v) = v {
                    s.push_str(&format!("      {k} = \"{}\"\n", toml_escape(v)));
                }
            }
        }
        s
    }

    /// Replace `certs_d` with the files for this configuration (the
    /// directory is wharf's own: what an older file configured goes away).
    pub fn write_hosts(&self, certs_d: &Path) -> std::io::Result<()> {
        if certs_d.exists() {
            std::fs::remove_dir_all(certs_d)?;
        }
        std::fs::create_dir_all(certs_d)?;
        for (name, text) in self.hosts_files() {
            let dir = certs_d.join(name);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("hosts.toml"), text)?;
        }
        Ok(())
    }
}

/// The registry's own address, tried after its mirrors.
fn default_server(name: &str) -> String {
    if name == "docker.io" {
        "https://registry-1.docker.io".to_string()
    } else {
        format!("https://{name}")
    }
}

/// `http://host:port/path` → `host:port`.
fn endpoint_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    (!host.is_empty()).then(|| host.to_string())
}

fn toml_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
mirrors:
  docker.io:
    endpoint:
      - "http://127.0.0.1:5000"
      - "https://mirror.example.com:8443/"
  "*":
    endpoint: ["http://everything:5000"]
configs:
  "mirror.example.com:8443":
    tls:
      ca_file: /etc/ssl/mirror-ca.pem
      cert_file: /etc/ssl/c.pem
      key_file: /etc/ssl/k.pem
  "127.0.0.1:5000":
    auth:
      username: alice
      password: "s3\"cret"
  "secure.example.com":
    tls:
      insecure_skip_verify: true
"#;

    #[test]
    fn mirrors_become_hosts_files_in_order_with_their_tls() {
        let r = Registries::parse(FILE).unwrap();
        let files = r.hosts_files();
        assert_eq!(
            files.keys().collect::<Vec<_>>(),
            ["docker.io", "mirror.example.com:8443", "secure.example.com"],
            "the * mirror is skipped; hosts with TLS settings get their own"
        );
        let hub = &files["docker.io"];
        assert!(
            hub.contains("server = \"https://registry-1.docker.io\""),
            "{hub}"
        );
        let local = hub.find("[host.\"http://127.0.0.1:5000\"]").unwrap();
        let remote = hub
            .find("[host.\"https://mirror.example.com:8443\"]")
            .unwrap();
        assert!(local < remote, "endpoints keep their order: {hub}");
        assert!(hub.contains("ca = \"/etc/ssl/mirror-ca.pem\""), "{hub}");
        assert!(hub.contains("client = [[\"/etc/ssl/c.pem\", \"/etc/ssl/k.pem\"]]"));
        assert_eq!(
            hub.matches("capabilities = [\"pull\", \"resolve\"]")
                .count(),
            2
        );
        let secure = &files["secure.example.com"];
        assert!(secure.contains("[host.\"https://secure.example.com\"]\n  capabilities = [\"pull\", \"resolve\"]\n  skip_verify = true"), "{secure}");
    }

    #[test]
    fn credentials_go_to_the_cri_plugin_escaped() {
        let r = Registries::parse(FILE).unwrap();
        let t = r.auth_toml();
        assert!(t.contains(
            "[plugins.\"io.containerd.grpc.v1.cri\".registry.configs.\"127.0.0.1:5000\".auth]"
        ));
        assert!(t.contains("username = \"alice\""));
        assert!(t.contains("password = \"s3\\\"cret\""), "{t}");
        assert!(!t.contains("mirror.example.com"), "no auth there: {t}");
    }

    #[test]
    fn bad_files_are_refused_with_the_reason() {
        assert!(Registries::parse("").unwrap().mirrors.is_empty());
        let e =
            Registries::parse("mirrors:\n  docker.io:\n    endpoint: [\"ftp://x\"]\n").unwrap_err();
        assert!(e.contains("mirrors.docker.io.endpoint"), "{e}");
        let e = Registries::parse("mirror:\n  docker.io: {}\n").unwrap_err();
        assert!(e.contains("unknown field `mirror`"), "{e}");
        let missing = Registries::load(Path::new("/nonexistent/registries.yaml")).unwrap();
        assert_eq!(missing, Registries::default());
    }

    #[test]
    fn write_hosts_replaces_the_directory() {
        let d = tempfile::tempdir().unwrap();
        let certs = d.path().join("certs.d");
        std::fs::create_dir_all(certs.join("stale.example.com")).unwrap();
        Registries::parse(FILE)
            .unwrap()
            .write_hosts(&certs)
            .unwrap();
        assert!(!certs.join("stale.example.com").exists());
        assert!(certs.join("docker.io/hosts.toml").is_file());
    }
}
