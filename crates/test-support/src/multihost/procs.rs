//! What a worker leaves on the host besides its own process: the containerd
//! its kubelet started (left running when the kubelet is SIGKILLed, by
//! design), containerd's shims and the containers under them, and mounts
//! under its data directory. Each is found through the data directory's own
//! paths (PID file, socket path on the shim's command line), so nothing of
//! anyone else's is touched.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Send `sig` (a name for kill(1): TERM, KILL) to `pid`.
pub(crate) fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

fn alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; its state letter is Z.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

/// Wait up to `limit` for `pid` to be gone.
pub(crate) fn wait_gone(pid: u32, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

fn cmdline(pid: u32) -> Vec<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn parent(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(") ")?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// The containerd a kubelet with this data directory started, if it is
/// still running: the PID file's process, and only if its command line
/// names this data directory's config (the PID may have been reused).
pub(crate) fn containerd_of(data_dir: &Path) -> Option<u32> {
    let dir = data_dir.join("agent").join("containerd");
    let pid: u32 = std::fs::read_to_string(dir.join("containerd.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let config = dir.join("config.toml");
    let args = cmdline(pid);
    let ours = args.first().is_some_and(|a| a.ends_with(b"containerd"))
        && args
            .iter()
            .any(|a| a.as_slice() == config.as_os_str().as_encoded_bytes());
    (ours && alive(pid)).then_some(pid)
}

/// PIDs of the shims serving this data directory's containerd (their
/// command line names its socket).
pub(crate) fn shims_of(data_dir: &Path) -> Vec<u32> {
    let sock = data_dir
        .join("agent")
        .join("containerd")
        .join("containerd.sock");
    let want = sock.as_os_str().as_encoded_bytes();
    all_pids()
        .into_iter()
        .filter(|&pid| {
            let args = cmdline(pid);
            args.first()
                .is_some_and(|a| a.ends_with(b"containerd-shim-runc-v2"))
                && args.iter().any(|a| a.as_slice() == want)
        })
        .collect()
}

/// SIGKILL what this data directory's kubelet left running: its containerd,
/// the containers' init processes (children of the shims; each is PID 1 of
/// its PID namespace, so its descendants die with it) and the shims.
pub(crate) fn kill_leftovers(data_dir: &Path) {
    if let Some(pid) = containerd_of(data_dir) {
        signal(pid, "KILL");
        wait_gone(pid, Duration::from_secs(5));
    }
    let shims = shims_of(data_dir);
    if shims.is_empty() {
        return;
    }
    let children: Vec<u32> = all_pids()
        .into_iter()
        .filter(|&p| parent(p).is_some_and(|pp| shims.contains(&pp)))
        .collect();
    for &pid in &children {
        signal(pid, "KILL");
    }
    for &pid in &children {
        wait_gone(pid, Duration::from_secs(5));
    }
    for &pid in &shims {
        signal(pid, "KILL");
    }
    for &pid in &shims {
        wait_gone(pid, Duration::from_secs(5));
    }
}

/// Unmount (lazily) every mount point under `dir`, deepest first.
pub fn unmount_under(dir: &Path) {
    let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
        return;
    };
    let prefix = format!("{}/", dir.display());
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|m| m.starts_with(&prefix))
        .collect();
    points.sort_by_key(|m| std::cmp::Reverse(m.len()));
    for m in points {
        let _ = Command::new("umount")
            .args(["-l", m])
            .stderr(Stdio::null())
            .status();
    }
}

/// The last `n` lines of a log file.
pub(crate) fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
