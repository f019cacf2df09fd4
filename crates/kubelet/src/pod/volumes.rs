//! Local pod volumes: `emptyDir` (a directory under the pod's directory;
//! `medium: Memory` is a tmpfs with `sizeLimit`) and `hostPath` (with its
//! `type` checks). They are bind-mounted into containers through CRI
//! mounts. Volumes made of API data are in `crate::volume`, which calls
//! this; volume types neither provides are left out of the mounts
//! (logged), not failed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;

/// `<pods_root>/<uid>`: everything the kubelet keeps for one pod.
pub fn pod_dir(pods_root: &Path, uid: &str) -> PathBuf {
    pods_root.join(uid)
}

fn empty_dir_path(pods_root: &Path, uid: &str, name: &str) -> PathBuf {
    pod_dir(pods_root, uid)
        .join("volumes")
        .join("kubernetes.io~empty-dir")
        .join(name)
}

pub(crate) fn is_mount_point(p: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    let p = p.display().to_string();
    mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(p.as_str()))
}

pub(crate) fn mount_tmpfs(dir: &Path, size: Option<i64>) -> Result<(), String> {
    let target =
        std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    let opts = size.map(|s| format!("size={s}")).unwrap_or_default();
    let data = std::ffi::CString::new(opts).map_err(|e| e.to_string())?;
    // SAFETY: mount(2) with NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            c"tmpfs".as_ptr(),
            target.as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            data.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "mounting tmpfs on {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Prepare the pod's local volumes; returns the host path of each.
pub fn setup(pod: &Pod, pods_root: &Path) -> Result<HashMap<String, PathBuf>, String> {
    let uid = pod.metadata.uid.as_deref().unwrap_or_default();
    let mut out = HashMap::new();
    for v in pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.as_ref())
        .into_iter()
        .flatten()
    {
        if let Some(e) = &v.empty_dir {
            let dir = empty_dir_path(pods_root, uid, &v.name);
            std::fs::create_dir_all(&dir)
                .map_err(|e| format!("creating {}: {e}", dir.display()))?;
            if e.medium.as_deref() == Some("Memory") && !is_mount_point(&dir) {
                let size = e
                    .size_limit
                    .as_ref()
                    .map(|q| scheduler::quantity::units(&q.0));
                mount_tmpfs(&dir, size)?;
            }
            // Containers may run as any user: the directory is world-writable, as upstream's.
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777));
            out.insert(v.name.clone(), dir);
        } else if let Some(h) = &v.host_path {
            let path = PathBuf::from(&h.path);
            match h.type_.as_deref().unwrap_or("") {
                "DirectoryOrCreate" => std::fs::create_dir_all(&path)
                    .map_err(|e| format!("creating {}: {e}", path.display()))?,
                "FileOrCreate" if !path.exists() => {
                    if let Some(parent) = path.parent() {
                        let _ = std::fs::create_dir_all(parent);
                    }
                    std::fs::write(&path, b"")
                        .map_err(|e| format!("creating {}: {e}", path.display()))?;
                }
                "Directory" if !path.is_dir() => {
                    return Err(format!(
                        "hostPath type check failed: {} is not a directory",
                        h.path
                    ))
                }
                "File" if !path.is_file() => {
                    return Err(format!(
                        "hostPath type check failed: {} is not a file",
                        h.path
                    ))
                }
                "Socket" | "CharDevice" | "BlockDevice" if !path.exists() => {
                    return Err(format!(
                        "hostPath type check failed: {} does not exist",
                        h.path
                    ))
                }
                _ => {}
            }
            out.insert(v.name.clone(), path);
        }
    }
    Ok(out)
}

/// Remove the pod's directory, unmounting first whatever is mounted under
/// it (memory-backed emptyDirs, secret and projected tmpfs, subPath
/// binds), deepest first.
pub fn teardown(pods_root: &Path, uid: &str) {
    let dir = pod_dir(pods_root, uid);
    let prefix = format!("{}/", dir.display());
    let mut mounted: Vec<String> = std::fs::read_to_string("/proc/self/mounts")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_string)
        .collect();
    mounted.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in mounted {
        if let Ok(p) = std::ffi::CString::new(m) {
            // SAFETY: umount2(2) on a path under the pod's own directory.
            unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) };
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn empty_dir_and_host_path() {
        let root = tempfile::tempdir().unwrap();
        let host = root.path().join("host");
        let p: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p", "uid": "u1"},
            "spec": {"containers": [{"name": "c", "volumeMounts": [
                {"name": "scratch", "mountPath": "/scratch"},
                {"name": "h", "mountPath": "/h", "readOnly": true},
                {"name": "cm", "mountPath": "/cm"}]}],
             "volumes": [{"name": "scratch", "emptyDir": {}},
                         {"name": "h", "hostPath": {"path": host.display().to_string(), "type": "DirectoryOrCreate"}},
                         {"name": "cm", "configMap": {"name": "x"}}]}
        }))
        .unwrap();
        let pods = root.path().join("pods");
        let vols = setup(&p, &pods).unwrap();
        assert!(host.is_dir());
        assert_eq!(vols.len(), 2, "the configMap volume is not a local one");
        assert!(vols["scratch"].is_dir());
        teardown(&pods, "u1");
        assert!(!pods.join("u1").exists());
        let bad: Pod = serde_json::from_value(json!({"metadata": {"uid": "u2"}, "spec": {"containers": [],
            "volumes": [{"name": "h", "hostPath": {"path": "/nonexistent/x", "type": "Directory"}}]}})).unwrap();
        assert!(setup(&bad, &pods).unwrap_err().contains("not a directory"));
    }
}
