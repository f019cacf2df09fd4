//! `subPath` without symlink escapes (CVE-2017-1002101, CVE-2021-25741).
//! As upstream: the path is resolved once on the host and must stay inside
//! the volume; then it is opened again component by component with
//! `O_NOFOLLOW` from the volume's root (a symlink swapped in meanwhile is
//! refused), and that open file — not the path — is bind-mounted through
//! `/proc/self/fd/N` onto a target under the pod's directory, which the
//! container then mounts. A container cannot move what was mounted by
//! changing links afterwards.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

fn cstr(s: &std::ffi::OsStr) -> Result<CString, String> {
    CString::new(s.as_bytes()).map_err(|e| e.to_string())
}

fn last_err(what: &str) -> String {
    format!("{what}: {}", std::io::Error::last_os_error())
}

fn open_path(p: &Path) -> Result<OwnedFd, String> {
    let c = cstr(p.as_os_str())?;
    // SAFETY: open(2) with a NUL-terminated path; the fd is owned below.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(last_err(&format!("opening {}", p.display())));
    }
    // SAFETY: fd is a fresh descriptor we own.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Open `name` under directory `dir` without following a symlink; a
/// symlink is an error.
fn open_at(dir: &OwnedFd, name: &std::ffi::OsStr) -> Result<OwnedFd, String> {
    let c = cstr(name)?;
    // SAFETY: openat(2) on a valid dir fd with a NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(last_err(&format!("opening {}", name.to_string_lossy())));
    }
    // SAFETY: fd is a fresh descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat(2) into a zeroed stat buffer.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(last_err("fstat"));
    }
    if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        return Err(format!("{} is a symlink", name.to_string_lossy()));
    }
    Ok(fd)
}

fn within(base: &Path, p: &Path) -> bool {
    p.starts_with(base)
}

/// Walk `rel` (no symlinks allowed) from `base`'s descriptor.
fn walk(base: &Path, rel: &Path) -> Result<OwnedFd, String> {
    let mut fd = open_path(base)?;
    for c in rel.components() {
        match c {
            Component::Normal(n) => fd = open_at(&fd, n)?,
            Component::CurDir => {}
            _ => return Err(format!("invalid path element in {}", rel.display())),
        }
    }
    Ok(fd)
}

/// Upstream's checks of a subPath string: relative, no `..` element.
pub fn validate(sub: &str) -> Result<(), String> {
    if Path::new(sub).is_absolute() {
        return Err(format!(
            "error SubPath `{sub}` must not be an absolute path"
        ));
    }
    if Path::new(sub)
        .components()
        .any(|c| c == Component::ParentDir)
    {
        return Err(format!(
            "unable to provision SubPath `{sub}`: must not contain '..'"
        ));
    }
    Ok(())
}

/// Open `sub` inside `volume` safely: its resolved location must be inside
/// the volume, and no symlink may be met on the way there.
pub fn open_beneath(volume: &Path, sub: &str) -> Result<OwnedFd, String> {
    validate(sub)?;
    let base = std::fs::canonicalize(volume).map_err(|e| format!("{}: {e}", volume.display()))?;
    let full = std::fs::canonicalize(volume.join(sub)).map_err(|e| format!("{sub}: {e}"))?;
    if !within(&base, &full) {
        return Err(format!(
            "subpath {:?} not within volume path {:?}",
            full.display().to_string(),
            base.display().to_string()
        ));
    }
    walk(&base, full.strip_prefix(&base).unwrap_or(Path::new("")))
}

/// Create `sub` inside `volume` as a directory (with the volume's mode)
/// when missing, as upstream does before mounting a subPath, never
/// through a symlink that leaves the volume.
pub fn make_dir(volume: &Path, sub: &str) -> Result<(), String> {
    validate(sub)?;
    let full = volume.join(sub);
    if full.exists() {
        return Ok(());
    }
    let base = std::fs::canonicalize(volume).map_err(|e| format!("{}: {e}", volume.display()))?;
    let mut existing = full.clone();
    let mut missing = Vec::new();
    while std::fs::symlink_metadata(&existing).is_err() {
        let Some(name) = existing.file_name() else {
            break;
        };
        missing.push(name.to_os_string());
        existing.pop();
    }
    let real = std::fs::canonicalize(&existing).map_err(|e| format!("{sub}: {e}"))?;
    if !within(&base, &real) {
        return Err(format!(
            "subpath {sub:?} not within volume path {:?}",
            base.display().to_string()
        ));
    }
    let mode = std::fs::metadata(&base)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777)
        .unwrap_or(0o755);
    let mut fd = walk(&base, real.strip_prefix(&base).unwrap_or(Path::new("")))?;
    for name in missing.into_iter().rev() {
        let c = cstr(&name)?;
        // SAFETY: mkdirat(2) on a valid dir fd with a NUL-terminated name.
        if unsafe { libc::mkdirat(fd.as_raw_fd(), c.as_ptr(), mode) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::AlreadyExists {
                return Err(format!("creating {}: {e}", name.to_string_lossy()));
            }
        }
        fd = open_at(&fd, &name)?;
    }
    Ok(())
}

/// Whether `p` is mounted on.
fn is_mount_point(p: &Path) -> bool {
    crate::pod::volumes::is_mount_point(p)
}

/// Bind-mount the safely opened `sub` of `volume` onto `target` (created
/// as a file or directory to match). Returns `target`.
pub fn prepare(volume: &Path, sub: &str, target: &Path) -> Result<PathBuf, String> {
    let fd = open_beneath(volume, sub)?;
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fstat(2) into a zeroed stat buffer.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(last_err("fstat"));
    }
    let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
    if is_mount_point(target) {
        let t = cstr(target.as_os_str())?;
        // SAFETY: umount2(2) of a path this kubelet mounted earlier.
        unsafe { libc::umount2(t.as_ptr(), libc::MNT_DETACH) };
    }
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("creating {}: {e}", parent.display()))?;
    }
    if is_dir {
        if !target.is_dir() {
            let _ = std::fs::remove_file(target);
            std::fs::create_dir_all(target)
                .map_err(|e| format!("creating {}: {e}", target.display()))?;
        }
    } else if !target.is_file() {
        let _ = std::fs::remove_dir(target);
        std::fs::write(target, b"").map_err(|e| format!("creating {}: {e}", target.display()))?;
    }
    let src =
        CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(|e| e.to_string())?;
    let t = cstr(target.as_os_str())?;
    // SAFETY: mount(2) MS_BIND of our own fd's magic link onto a target we
    // created; all strings are NUL-terminated and outlive the call.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            t.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(last_err(&format!(
            "bind-mounting onto {}",
            target.display()
        )));
    }
    Ok(target.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn refuses_symlinks_that_leave_the_volume() {
        let t = tempfile::tempdir().unwrap();
        let vol = t.path().join("vol");
        std::fs::create_dir_all(vol.join("dir/inner")).unwrap();
        std::fs::write(vol.join("dir/file"), b"x").unwrap();
        std::fs::write(t.path().join("outside"), b"secret").unwrap();
        symlink("/etc", vol.join("abs")).unwrap();
        symlink("../outside", vol.join("rel_out")).unwrap();
        symlink("dir/file", vol.join("rel_in")).unwrap();
        symlink("../../..", vol.join("dir/up")).unwrap();
        assert!(open_beneath(&vol, "dir/file").is_ok());
        assert!(open_beneath(&vol, "dir/inner").is_ok());
        assert!(
            open_beneath(&vol, "rel_in").is_ok(),
            "a link that stays inside is fine"
        );
        for bad in ["abs", "abs/passwd", "rel_out", "dir/up"] {
            let e = open_beneath(&vol, bad).unwrap_err();
            assert!(e.contains("not within volume path"), "{bad}: {e}");
        }
        assert!(open_beneath(&vol, "../outside")
            .unwrap_err()
            .contains("must not contain '..'"));
        assert!(open_beneath(&vol, "/etc").unwrap_err().contains("absolute"));
        // The component walk refuses a symlink even when it points inside
        // (what a link swapped in after resolving would look like).
        let base = std::fs::canonicalize(&vol).unwrap();
        assert!(walk(&base, Path::new("rel_in"))
            .unwrap_err()
            .contains("is a symlink"));
    }

    #[test]
    fn creates_missing_directories_only_inside() {
        let t = tempfile::tempdir().unwrap();
        let vol = t.path().join("vol");
        std::fs::create_dir_all(&vol).unwrap();
        let out = t.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        symlink(&out, vol.join("esc")).unwrap();
        make_dir(&vol, "a/b").unwrap();
        assert!(vol.join("a/b").is_dir());
        assert!(make_dir(&vol, "esc/new")
            .unwrap_err()
            .contains("not within volume path"));
        assert!(!out.join("new").exists());
    }
}
