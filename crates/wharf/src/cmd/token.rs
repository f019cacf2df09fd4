//! The server's join token: `<data-dir>/server/token` (and k3s's
//! `node-token` alias), `K10<sha256 of the CA>::<id>.<secret>`, whose
//! credential is the bootstrap token Secret `kube-system/bootstrap-token-<id>`.

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use apiserver::bootstrap_token::{self as bt, JoinToken};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, PostParams};
use kube::ResourceExt;

/// Marks the Secrets this module writes: only those are ever retired.
const LABEL: &str = "wharf.dev/join-token";

/// The credential to use: from `--token` (a whole join token, a bootstrap
/// token `<id>.<secret>`, or any passphrase, hashed into one), else the one
/// already in `path`, else a new random one.
fn credential(flag: Option<&str>, path: &Path, ca_hash: &str) -> anyhow::Result<(String, String)> {
    if let Some(flag) = flag.map(str::trim).filter(|f| !f.is_empty()) {
        if flag.starts_with("K10") {
            let t = JoinToken::parse(flag).context("--token")?;
            if t.ca_hash != ca_hash {
                bail!(
                    "--token pins a CA whose hash is {}, but this server's CA hashes to {ca_hash}",
                    t.ca_hash
                );
            }
            return Ok((t.id, t.secret));
        }
        if let Some((id, secret)) = bt::parse_credential(flag) {
            return Ok((id.into(), secret.into()));
        }
        return Ok(bt::credential_from_passphrase(flag));
    }
    match std::fs::read_to_string(path) {
        Ok(text) => match JoinToken::parse(&text) {
            Ok(t) => return Ok((t.id, t.secret)),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "unreadable join token; making a new one")
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    }
    Ok(random_credential())
}

fn random_credential() -> (String, String) {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect()
    };
    (pick(6), pick(16))
}

/// Writes `contents` to `path` with mode 0600 through a rename.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp");
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(contents.as_bytes())?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// Makes sure the token file and its Secret exist and agree; returns the
/// token file's path.
pub async fn ensure(
    data_dir: &Path,
    flag: Option<&str>,
    ca_pem: &str,
    client: kube::Client,
) -> anyhow::Result<PathBuf> {
    let dir = data_dir.join("server");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    let path = dir.join("token");
    let ca_hash = bt::ca_hash(ca_pem.as_bytes());
    let previous = std::fs::read_to_string(&path)
        .ok()
        .and_then(|t| JoinToken::parse(&t).ok());
    let (id, secret) = credential(flag, &path, &ca_hash)?;
    let token = JoinToken {
        ca_hash,
        id: id.clone(),
        secret: secret.clone(),
    };
    write_private(&path, &format!("{token}\n"))?;
    let alias = dir.join("node-token");
    if std::fs::read_link(&alias).ok().as_deref() != Some(Path::new("token")) {
        let _ = std::fs::remove_file(&alias);
        std::os::unix::fs::symlink("token", &alias)
            .with_context(|| format!("linking {}", alias.display()))?;
    }

    let api: Api<Secret> = Api::namespaced(client, bt::NAMESPACE);
    let mut want: Secret = serde_json::from_value(bt::secret_object(&id, &secret))?;
    want.metadata.labels = Some([(LABEL.to_string(), "true".to_string())].into());
    let name = want.metadata.name.clone().unwrap_or_default();
    // The API server's bootstrap may still be creating kube-system.
    let mut tries = 0;
    loop {
        let r = match api.get_opt(&name).await {
            Ok(Some(have)) if have.data == want.data && have.type_ == want.type_ => Ok(()),
            Ok(Some(have)) => {
                want.metadata.resource_version = have.metadata.resource_version;
                api.replace(&name, &PostParams::default(), &want)
                    .await
                    .map(|_| ())
            }
            Ok(None) => api.create(&PostParams::default(), &want).await.map(|_| ()),
            Err(e) => Err(e),
        };
        match r {
            Ok(()) => break,
            Err(e) if tries < 50 => {
                tries += 1;
                tracing::debug!(error = %e, "join token Secret not written yet");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            Err(e) => return Err(e).context("writing the join token Secret"),
        }
    }
    // This server's previous token (another --token) stops working. Other
    // servers' tokens (several servers on one etcd) are left alone.
    if let Some(old) = previous.filter(|p| p.id != id) {
        let old_name = format!("bootstrap-token-{}", old.id);
        match api.get_opt(&old_name).await {
            Ok(Some(s)) if s.labels().get(LABEL).map(String::as_str) == Some("true") => {
                tracing::info!(secret = old_name, "retiring the previous join token");
                api.delete(&old_name, &DeleteParams::default())
                    .await
                    .context("deleting the previous join token")?;
            }
            Ok(_) => {}
            Err(e) => return Err(e).context("reading the previous join token"),
        }
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_from_flag_file_or_random() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        let hash = bt::ca_hash(b"ca");
        // A bootstrap token is used as is; a passphrase is hashed, stably.
        assert_eq!(
            credential(Some("abcdef.0123456789abcdef"), &path, &hash).unwrap(),
            ("abcdef".into(), "0123456789abcdef".into())
        );
        let a = credential(Some("my secret"), &path, &hash).unwrap();
        assert_eq!(a, credential(Some("my secret"), &path, &hash).unwrap());
        // A whole token must pin this server's CA.
        let t = JoinToken {
            ca_hash: hash.clone(),
            id: "abcdef".into(),
            secret: "0123456789abcdef".into(),
        };
        assert!(credential(Some(&t.to_string()), &path, &hash).is_ok());
        assert!(credential(Some(&t.to_string()), &path, &bt::ca_hash(b"other")).is_err());
        // Without a flag: the file's, else random and valid.
        let (id, secret) = credential(None, &path, &hash).unwrap();
        assert!(bt::parse_credential(&format!("{id}.{secret}")).is_some());
        write_private(&path, &t.to_string()).unwrap();
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            credential(None, &path, &hash).unwrap(),
            ("abcdef".into(), "0123456789abcdef".into())
        );
    }
}
