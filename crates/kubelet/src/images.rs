//! Images without a registry: the sandbox ("pause") image, written by wharf
//! itself as a docker-archive tarball, and the import of docker or OCI
//! archives into containerd's `k8s.io` namespace.
//!
//! The pause image's rootfs holds only the host's static busybox (from
//! Debian's `busybox-static`), with the entrypoint
//! `/bin/busybox sleep 2147483647`: it only has to hold the sandbox's
//! namespaces open. Zombies of the sandbox's PID namespace are not reaped
//! (containers get their own PID namespace, so none end up there).

use std::path::Path;

use crate::{Error, Result};

/// Where Debian's `busybox-static` installs the static binary.
pub const BUSYBOX: &str = "/bin/busybox";

/// The sandbox image's name. The tag carries a digest of the image, so a
/// changed busybox binary makes a new image instead of reusing a stale one.
pub fn pause_image_name(archive: &Archive) -> String {
    format!("localhost/wharf-pause:{}", &archive.config_digest[..12])
}

/// A docker-archive tarball in memory.
pub struct Archive {
    /// The tarball.
    pub tar: Vec<u8>,
    /// The hex SHA-256 of the image config (the image ID).
    pub config_digest: String,
}

/// Build the pause image's docker-archive from the busybox binary at `busybox`.
pub fn pause_archive(busybox: &Path) -> Result<Archive> {
    let bin = std::fs::read(busybox).map_err(|source| Error::Io {
        what: format!("reading {} (install busybox-static)", busybox.display()),
        source,
    })?;
    let mut layer = Tar::default();
    layer.dir("bin/", 0o755);
    layer.dir("dev/", 0o755);
    layer.dir("etc/", 0o755);
    layer.dir("proc/", 0o755);
    layer.dir("sys/", 0o755);
    layer.file("bin/busybox", 0o755, &bin);
    layer.file(
        "etc/passwd",
        0o644,
        b"root:x:0:0:root:/:/bin/busybox\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    );
    layer.file("etc/group", 0o644, b"root:x:0:\nnogroup:x:65534:\n");
    let layer = layer.finish();
    let entrypoint = ["/bin/busybox", "sleep", "2147483647"];
    Ok(docker_archive(
        "localhost/wharf-pause",
        &layer,
        &entrypoint,
        &[],
        None,
    ))
}

/// A one-layer docker-archive for `repo` (tagged with the config digest's
/// first 12 hex digits unless `tag` is given).
pub fn docker_archive(
    repo: &str,
    layer: &[u8],
    entrypoint: &[&str],
    cmd: &[&str],
    tag: Option<&str>,
) -> Archive {
    let diff_id = sha256_hex(layer);
    let config = serde_json::json!({
        "architecture": std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64"),
        "os": "linux",
        "created": "2024-01-01T00:00:00Z",
        "config": {
            "Env": ["PATH=/bin"],
            "Entrypoint": if entrypoint.is_empty() { serde_json::Value::Null } else { serde_json::json!(entrypoint) },
            "Cmd": if cmd.is_empty() { serde_json::Value::Null } else { serde_json::json!(cmd) },
            "WorkingDir": "/",
        },
        "rootfs": { "type": "layers", "diff_ids": [format!("sha256:{diff_id}")] },
        "history": [{ "created": "2024-01-01T00:00:00Z", "created_by": "wharf" }],
    });
    let config = serde_json::to_vec(&config).expect("config serializes");
    let config_digest = sha256_hex(&config);
    let tag = tag
        .map(str::to_string)
        .unwrap_or_else(|| config_digest[..12].to_string());
    let manifest = serde_json::json!([{
        "Config": format!("{config_digest}.json"),
        "RepoTags": [format!("{repo}:{tag}")],
        "Layers": [format!("{diff_id}/layer.tar")],
    }]);
    let mut tar = Tar::default();
    tar.file(&format!("{config_digest}.json"), 0o644, &config);
    tar.dir(&format!("{diff_id}/"), 0o755);
    tar.file(&format!("{diff_id}/layer.tar"), 0o644, layer);
    tar.file(
        "manifest.json",
        0o644,
        &serde_json::to_vec(&manifest).expect("json"),
    );
    Archive {
        tar: tar.finish(),
        config_digest,
    }
}

fn sha256_hex(b: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// A minimal ustar writer: regular files and directories with fixed owner
/// and time, enough for image layers and archives.
#[derive(Default)]
pub struct Tar {
    out: Vec<u8>,
}

impl Tar {
    /// Add a directory (`name` ends with `/`).
    pub fn dir(&mut self, name: &str, mode: u32) {
        self.entry(name, mode, b'5', &[], "");
    }

    /// Add a regular file.
    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, mode, b'0', data, "");
    }

    /// Add a symbolic link to `target`.
    pub fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, 0o777, b'2', &[], target);
    }

    fn entry(&mut self, name: &str, mode: u32, kind: u8, data: &[u8], link: &str) {
        assert!(
            name.len() < 100 && link.len() < 100,
            "tar names are short here"
        );
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        let octal = |h: &mut [u8], at: usize, width: usize, v: u64| {
            let s = format!("{v:0w$o}", w = width - 1);
            h[at..at + width - 1].copy_from_slice(s.as_bytes());
        };
        octal(&mut h, 100, 8, mode as u64);
        octal(&mut h, 108, 8, 0);
        octal(&mut h, 116, 8, 0);
        octal(&mut h, 124, 12, data.len() as u64);
        octal(&mut h, 136, 12, 1_704_067_200);
        h[156] = kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        // The checksum is computed with its own field as spaces.
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        let s = format!("{sum:06o}\0 ");
        h[148..156].copy_from_slice(s.as_bytes());
        self.out.extend_from_slice(&h);
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
    }

    /// The archive, with its two zero end blocks.
    pub fn finish(mut self) -> Vec<u8> {
        self.out.extend(std::iter::repeat_n(0u8, 1024));
        self.out
    }
}

/// Import a docker or OCI archive into containerd's `k8s.io` namespace (the
/// one the CRI plugin serves), through the machine's `ctr`.
pub async fn import(socket: &Path, archive: &Path) -> Result<String> {
    let out = tokio::process::Command::new("ctr")
        .arg("--address")
        .arg(socket)
        .args(["-n", "k8s.io", "images", "import", "--all-platforms"])
        .arg(archive)
        .output()
        .await
        .map_err(|source| Error::Io {
            what: "running ctr".into(),
            source,
        })?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(Error::Runtime(format!(
            "ctr images import {}: {}",
            archive.display(),
            text.trim()
        )));
    }
    Ok(text)
}

/// The auto-import folder: archives put there are imported at every start
/// (k3s's `agent/images`).
pub fn auto_import_dir(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("agent").join("images")
}

/// Import every `*.tar` in `dir` (sorted by name); failures are logged, so
/// one bad archive does not keep the node from starting.
pub async fn import_dir(socket: &Path, dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut tars: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "tar"))
        .collect();
    tars.sort();
    for t in tars {
        match import(socket, &t).await {
            Ok(_) => tracing::info!(archive = %t.display(), "image archive imported"),
            Err(e) => {
                tracing::warn!(archive = %t.display(), error = %e, "image archive import failed")
            }
        }
    }
}

/// Make sure the pause image is in the runtime: build it, and import it
/// unless the runtime already has that exact image. Returns its name.
pub async fn ensure_pause(
    runtime: &dyn crate::cri::Runtime,
    socket: &Path,
    work_dir: &Path,
) -> Result<String> {
    let archive = pause_archive(Path::new(BUSYBOX))?;
    let name = pause_image_name(&archive);
    if runtime.image_status(&name).await?.is_some() {
        return Ok(name);
    }
    std::fs::create_dir_all(work_dir).map_err(|source| Error::Io {
        what: format!("creating {}", work_dir.display()),
        source,
    })?;
    let path = work_dir.join("pause.tar");
    std::fs::write(&path, &archive.tar).map_err(|source| Error::Io {
        what: format!("writing {}", path.display()),
        source,
    })?;
    import(socket, &path).await?;
    tracing::info!(image = %name, "sandbox image imported");
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tar_headers_have_valid_checksums() {
        let mut t = Tar::default();
        t.file("a/b.txt", 0o644, b"hello");
        t.symlink("bin/sh", "busybox");
        let out = t.finish();
        assert_eq!(out.len(), 512 + 512 + 512 + 1024);
        let h = &out[..512];
        let stored = u32::from_str_radix(std::str::from_utf8(&h[148..154]).unwrap(), 8).unwrap();
        let mut copy = h.to_vec();
        copy[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, copy.iter().map(|&b| b as u32).sum::<u32>());
        assert_eq!(&h[124..135], b"00000000005");
        assert_eq!(&out[512..517], b"hello");
        assert_eq!(out[1024 + 156], b'2');
    }

    #[test]
    fn archive_manifest_names_config_and_layer() {
        let a = docker_archive("localhost/x", b"layer", &["/bin/true"], &[], Some("t"));
        let text = String::from_utf8_lossy(&a.tar);
        assert!(text.contains("\"RepoTags\":[\"localhost/x:t\"]"));
        assert!(text.contains(&format!("{}.json", a.config_digest)));
        assert_eq!(a.config_digest.len(), 64);
    }
}
