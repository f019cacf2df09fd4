//! Pod volumes the kubelet provides so far: `emptyDir` (a directory under
//! the pod's directory; `medium: Memory` is a tmpfs with `sizeLimit`) and
//! `hostPath` (with its `type` checks). They are bind-mounted into
//! containers through CRI mounts. Other volume types are not provided yet:
//! their mounts are left out (logged), not failed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, Pod};

use crate::cri::api;

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

fn is_mount_point(p: &Path) -> bool {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return false;
    };
    let p = p.display().to_string();
    mounts
        .lines()
        .any(|l| l.split_whitespace().nth(1) == Some(p.as_str()))
}

fn mount_tmpfs(dir: &Path, size: Option<i64>) -> Result<(), String> {
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

/// Prepare the pod's volumes; returns the host path of each provided one.
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
        } else {
            tracing::debug!(volume = %v.name, "volume type not provided yet; its mounts are left out");
        }
    }
    Ok(out)
}

/// The CRI mounts of container `c`.
pub fn mounts(c: &Container, volumes: &HashMap<String, PathBuf>) -> Vec<api::Mount> {
    c.volume_mounts
        .iter()
        .flatten()
        .filter_map(|m| {
            let host = volumes.get(&m.name)?;
            Some(api::Mount {
                container_path: m.mount_path.clone(),
                host_path: host.display().to_string(),
                readonly: m.read_only.unwrap_or(false),
                ..Default::default()
            })
        })
        .collect()
}

/// Remove the pod's directory, unmounting its memory-backed emptyDirs.
pub fn teardown(pods_root: &Path, uid: &str) {
    let dir = pod_dir(pods_root, uid);
    let empty = dir.join("volumes").join("kubernetes.io~empty-dir");
    for e in std::fs::read_dir(&empty).into_iter().flatten().flatten() {
        if is_mount_point(&e.path()) {
            if let Ok(p) = std::ffi::CString::new(e.path().as_os_str().as_encoded_bytes()) {
                // SAFETY: umount2(2) on a path we mounted.
                unsafe { libc::umount2(p.as_ptr(), libc::MNT_DETACH) };
            }
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
        let m = mounts(&p.spec.as_ref().unwrap().containers[0], &vols);
        assert_eq!(m.len(), 2, "the configMap volume is not provided yet");
        assert_eq!(m[0].container_path, "/scratch");
        assert!(Path::new(&m[0].host_path).is_dir());
        assert!(m[1].readonly);
        teardown(&pods, "u1");
        assert!(!pods.join("u1").exists());
        let bad: Pod = serde_json::from_value(json!({"metadata": {"uid": "u2"}, "spec": {"containers": [],
            "volumes": [{"name": "h", "hostPath": {"path": "/nonexistent/x", "type": "Directory"}}]}})).unwrap();
        assert!(setup(&bad, &pods).unwrap_err().contains("not a directory"));
    }
}
