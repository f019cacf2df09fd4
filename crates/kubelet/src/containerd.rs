//! wharf's own containerd: without `--container-runtime-endpoint`, the
//! kubelet writes a config under `<data-dir>/agent/containerd/`, starts the
//! machine's `containerd` with it as a child, and restarts it when it dies.
//! Every path containerd and runc write to is under that directory, so two
//! data directories never share state (the shims' sockets are derived from
//! the grpc address, which is ours too).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::registries::Registries;
use crate::{Error, Result};

/// Where the CNI plugins of Debian's `containernetworking-plugins` live.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";

/// The paths of one data directory's containerd.
#[derive(Clone, Debug)]
pub struct Layout {
    /// `<data-dir>/agent/containerd`.
    pub dir: PathBuf,
    /// The CNI configuration directory (the kubelet writes the conflist).
    pub cni_conf_dir: PathBuf,
    /// host-local's allocation directory.
    pub cni_ipam_dir: PathBuf,
}

impl Layout {
    /// The layout under a data directory.
    pub fn new(data_dir: &Path) -> Self {
        let agent = data_dir.join("agent");
        Layout {
            dir: agent.join("containerd"),
            cni_conf_dir: agent.join("cni").join("net.d"),
            cni_ipam_dir: agent.join("cni").join("ipam"),
        }
    }

    /// The CRI (grpc) socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    /// The registry hosts directory (`config_path`).
    pub fn certs_d(&self) -> PathBuf {
        self.dir.join("certs.d")
    }

    /// The config file.
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    fn pid_file(&self) -> PathBuf {
        self.dir.join("containerd.pid")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }
}

/// Whether this process has CAP_SYS_RESOURCE (bit 24 of CapEff). Without it
/// runc cannot lower a sandbox's oom_score_adj, and every RunPodSandbox
/// fails unless containerd is told to clamp the value.
pub fn has_cap_sys_resource() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    cap_from_status(&status, 24)
}

fn cap_from_status(status: &str, bit: u32) -> bool {
    status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .is_some_and(|caps| caps & (1 << bit) != 0)
}

/// The name of the runtime every containerd of wharf has (the default
/// unless `--default-runtime` says otherwise, as in k3s).
pub const RUNC: &str = "runc";
/// The name of the runtime added when a `crun` binary is found.
pub const CRUN: &str = "crun";

/// The OCI runtimes wharf's containerd is configured with: `runc` always
/// (containerd finds it on its PATH), `crun` when its binary was found and
/// can run containers here, as k3s adds the alternative runtimes it
/// detects; and which one runs pods that ask for none.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Runtimes {
    /// containerd's `default_runtime_name`.
    pub default: String,
    /// The `crun` binary, if the `crun` runtime is configured.
    pub crun: Option<PathBuf>,
}

impl Default for Runtimes {
    fn default() -> Self {
        Runtimes {
            default: RUNC.into(),
            crun: None,
        }
    }
}

/// What the host offers for the `crun` runtime.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrunProbe {
    /// No `crun` on the PATH.
    Missing,
    /// Found, and the host's cgroups suit it.
    Usable(PathBuf),
    /// Found, but it would refuse every container here (the reason).
    Unusable(PathBuf, String),
}

impl CrunProbe {
    /// Look for `crun` on the PATH and check the host's cgroup layout.
    pub fn detect() -> CrunProbe {
        let Some(path) = find_in_path(CRUN) else {
            return CrunProbe::Missing;
        };
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        match crun_blocker(&mountinfo, || {
            std::fs::read_to_string("/sys/fs/cgroup/unified/cgroup.controllers").unwrap_or_default()
        }) {
            None => CrunProbe::Usable(path),
            Some(reason) => CrunProbe::Unusable(path, reason),
        }
    }
}

impl Runtimes {
    /// The runtimes of this host, with `default` (`--default-runtime`;
    /// `None`: runc) as the default. A name that is not configured is an
    /// error that says why.
    pub fn detect(default: Option<&str>) -> Result<Runtimes> {
        let r = Self::resolve(default, CrunProbe::detect())?;
        tracing::info!(default = %r.default, crun = ?r.crun, "containerd runtimes");
        Ok(r)
    }

    /// [`Runtimes::detect`] with what the host offers already probed.
    pub fn resolve(default: Option<&str>, crun: CrunProbe) -> Result<Runtimes> {
        let crun = match crun {
            CrunProbe::Missing => None,
            CrunProbe::Usable(p) => Some(p),
            CrunProbe::Unusable(p, reason) => {
                if default == Some(CRUN) {
                    return Err(Error::Runtime(format!(
                        "--default-runtime {CRUN}: {} cannot run containers on this host: {reason}",
                        p.display()
                    )));
                }
                tracing::warn!(crun = %p.display(), %reason, "crun found but not configured: it cannot run containers on this host");
                None
            }
        };
        let r = Runtimes {
            default: default.unwrap_or(RUNC).to_string(),
            crun,
        };
        if !r.names().contains(&r.default.as_str()) {
            let hint = if r.default == CRUN {
                " (no crun binary on the PATH: install crun)"
            } else {
                ""
            };
            return Err(Error::Runtime(format!(
                "unknown --default-runtime {:?}: this node's containerd has {}{hint}",
                r.default,
                r.names().join(", ")
            )));
        }
        Ok(r)
    }

    /// The configured runtimes' names (the RuntimeClass handlers this node
    /// serves).
    pub fn names(&self) -> Vec<&str> {
        let mut n = vec![RUNC];
        if self.crun.is_some() {
            n.push(CRUN);
        }
        n
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Why crun cannot run containers with these mounts, if it cannot: crun
/// refuses the hybrid cgroup layout (v1 controllers, a cgroup2 mount at
/// `/sys/fs/cgroup/unified`) once any controller is attached to the v2
/// hierarchy ("cgroups in hybrid mode not supported, drop all controllers
/// from cgroupv2"). `controllers` reads the v2 root's `cgroup.controllers`.
fn crun_blocker(mountinfo: &str, controllers: impl FnOnce() -> String) -> Option<String> {
    let fs_at = |point: &str| {
        mountinfo.lines().rev().find_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            (pre.split(' ').nth(4)? == point)
                .then(|| post.split(' ').next().unwrap_or("").to_string())
        })
    };
    if fs_at("/sys/fs/cgroup").as_deref() == Some("cgroup2")
        || fs_at("/sys/fs/cgroup/unified").as_deref() != Some("cgroup2")
    {
        return None;
    }
    let c = controllers();
    let c = c.trim();
    (!c.is_empty()).then(|| {
        format!(
            "the cgroups are hybrid (v1 plus /sys/fs/cgroup/unified) and the v2 hierarchy holds \
             controllers ({c}), which crun refuses; mount them on v1 hierarchies or boot with \
             the unified (v2-only) layout"
        )
    })
}

/// containerd's config for this layout. `restrict_oom` clamps negative
/// oom_score_adj values (needed without CAP_SYS_RESOURCE); `registry_auth`
/// is [`Registries::auth_toml`](crate::registries::Registries::auth_toml).
pub fn config_toml(
    layout: &Layout,
    sandbox_image: &str,
    restrict_oom: bool,
    registry_auth: &str,
    runtimes: &Runtimes,
) -> String {
    let d = layout.dir.display();
    let q = |p: &Path| {
        p.display()
            .to_string()
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
    };
    format!(
        r#"# Written by wharf; rewritten at every start.
version = 2
root = "{d}/root"
state = "{d}/state"

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "{d}/opt"
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "{sandbox_image}"
    restrict_oom_score_adj = {restrict_oom}
    # Pod netns bind-mounts under the state dir: an `ip netns add` elsewhere
    # re-binds /run/netns and would make StopPodSandbox fail with EBUSY.
    netns_mounts_under_state_dir = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "{default}"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
          SystemdCgroup = false
          Root = "{d}/runc"
{crun}    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "{bin}"
      conf_dir = "{conf}"
      max_conf_num = 1
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "{d}/certs.d"
{registry_auth}"#,
        bin = CNI_BIN_DIR,
        conf = q(&layout.cni_conf_dir),
        default = runtimes.default,
        crun = match &runtimes.crun {
            // The same shim, calling crun instead of runc.
            Some(bin) => format!(
                r#"      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{CRUN}]
        runtime_type = "io.containerd.runc.v2"
        [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.{CRUN}.options]
          BinaryName = "{bin}"
          SystemdCgroup = false
          Root = "{d}/crun"
"#,
                bin = q(bin)
            ),
            None => String::new(),
        },
    )
}

/// A running, supervised containerd. Stop it with [`Containerd::stop`];
/// dropping it kills it too.
pub struct Containerd {
    layout: Layout,
    pid: Arc<AtomicI32>,
    stopping: Arc<AtomicBool>,
    supervisor: Option<tokio::task::JoinHandle<()>>,
}

impl Containerd {
    /// Write the config, start containerd and wait until its socket answers.
    pub async fn start(layout: Layout, sandbox_image: &str) -> Result<Containerd> {
        Self::start_with(
            layout,
            sandbox_image,
            &Registries::default(),
            &Runtimes::default(),
        )
        .await
    }

    /// [`Containerd::start`] with the registries file's mirrors and
    /// credentials, and these runtimes.
    pub async fn start_with(
        layout: Layout,
        sandbox_image: &str,
        registries: &Registries,
        runtimes: &Runtimes,
    ) -> Result<Containerd> {
        let io = |what: String| move |source| Error::Io { what, source };
        std::fs::create_dir_all(&layout.dir)
            .map_err(io(format!("creating {}", layout.dir.display())))?;
        std::fs::create_dir_all(&layout.cni_conf_dir)
            .map_err(io(format!("creating {}", layout.cni_conf_dir.display())))?;
        let restrict = !has_cap_sys_resource();
        registries
            .write_hosts(&layout.certs_d())
            .map_err(io(format!("writing {}", layout.certs_d().display())))?;
        std::fs::write(
            layout.config(),
            config_toml(
                &layout,
                sandbox_image,
                restrict,
                &registries.auth_toml(),
                runtimes,
            ),
        )
        .map_err(io(format!("writing {}", layout.config().display())))?;
        kill_stale(&layout);
        let pid = Arc::new(AtomicI32::new(0));
        let stopping = Arc::new(AtomicBool::new(false));
        let child = spawn(&layout)?;
        pid.store(child.id().unwrap_or(0) as i32, Ordering::SeqCst);
        let _ = std::fs::write(layout.pid_file(), pid.load(Ordering::SeqCst).to_string());
        tracing::info!(pid = pid.load(Ordering::SeqCst), config = %layout.config().display(), restrict_oom_score_adj = restrict, "containerd started");
        let supervisor = tokio::spawn(supervise(
            layout.clone(),
            child,
            pid.clone(),
            stopping.clone(),
        ));
        let me = Containerd {
            layout,
            pid,
            stopping,
            supervisor: Some(supervisor),
        };
        wait_for_socket(&me.layout.socket(), Duration::from_secs(30)).await?;
        Ok(me)
    }

    /// The CRI endpoint.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.layout.socket().display())
    }

    /// The layout it runs with.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The current process ID (changes when it is restarted).
    pub fn pid(&self) -> i32 {
        self.pid.load(Ordering::SeqCst)
    }

    /// SIGTERM, then SIGKILL after 10 s; waits until it is gone.
    pub async fn stop(mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        let pid = self.pid();
        if pid > 0 {
            // SAFETY: kill(2) on a PID this process started and still owns
            // (the supervisor reaps it, so the PID cannot be reused before).
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        if let Some(sup) = self.supervisor.take() {
            let abort = sup.abort_handle();
            if tokio::time::timeout(Duration::from_secs(10), sup)
                .await
                .is_err()
            {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                abort.abort();
            }
        }
        let _ = std::fs::remove_file(self.layout.pid_file());
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if self.supervisor.is_some() {
            self.stopping.store(true, Ordering::SeqCst);
            let pid = self.pid();
            if pid > 0 {
                // SAFETY: our own child, not yet reaped (see `stop`).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            if let Some(s) = self.supervisor.take() {
                s.abort();
            }
        }
    }
}

fn spawn(layout: &Layout) -> Result<tokio::process::Child> {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(layout.log_file())
        .map_err(|source| Error::Io {
            what: format!("opening {}", layout.log_file().display()),
            source,
        })?;
    let err = log.try_clone().map_err(|source| Error::Io {
        what: "duplicating the log file".into(),
        source,
    })?;
    let _ = std::fs::remove_file(layout.socket());
    tokio::process::Command::new("containerd")
        .arg("--config")
        .arg(layout.config())
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(err)
        .spawn()
        .map_err(|source| Error::Io {
            what: "starting containerd (is it installed? scripts/install-deps.sh)".into(),
            source,
        })
}

/// Restart containerd whenever it exits, until told to stop.
async fn supervise(
    layout: Layout,
    mut child: tokio::process::Child,
    pid: Arc<AtomicI32>,
    stopping: Arc<AtomicBool>,
) {
    loop {
        let status = child.wait().await;
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        tracing::warn!(?status, "containerd exited; restarting it in 1 s");
        tokio::time::sleep(Duration::from_secs(1)).await;
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        match spawn(&layout) {
            Ok(c) => {
                pid.store(c.id().unwrap_or(0) as i32, Ordering::SeqCst);
                let _ = std::fs::write(layout.pid_file(), pid.load(Ordering::SeqCst).to_string());
                tracing::info!(pid = pid.load(Ordering::SeqCst), "containerd restarted");
                child = c;
            }
            Err(e) => {
                tracing::error!(error = %e, "restarting containerd failed; retrying in 5 s");
                tokio::time::sleep(Duration::from_secs(4)).await;
                // Loop again with a child that has already exited.
            }
        }
    }
}

/// A containerd left running by an earlier wharf with this data directory
/// (killed with SIGKILL, so it could not stop its child) holds the socket:
/// stop it, but only if the PID file's process really is containerd with
/// our config.
fn kill_stale(layout: &Layout) {
    let Some(pid) = std::fs::read_to_string(layout.pid_file())
        .ok()
        .and_then(|s| s.trim().parse::<i32>().ok())
    else {
        return;
    };
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
    let ours = args.first().is_some_and(|a| a.ends_with(b"containerd"))
        && args
            .iter()
            .any(|a| *a == layout.config().as_os_str().as_encoded_bytes());
    if ours {
        tracing::warn!(pid, "stopping the containerd of an earlier run");
        // SAFETY: the PID's command line shows our containerd.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        for _ in 0..50 {
            if !Path::new(&format!("/proc/{pid}")).exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

async fn wait_for_socket(path: &Path, limit: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if tokio::net::UnixStream::connect(path).await.is_ok() {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::Runtime(format!(
                "containerd did not open {} within {limit:?}",
                path.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_bit_24() {
        assert!(!cap_from_status(
            "Name:\tx\nCapEff:\t000001fffeffffff\n",
            24
        ));
        assert!(cap_from_status("CapEff:\t000001ffffffffff\n", 24));
        assert!(!cap_from_status("nothing", 24));
    }

    #[test]
    fn config_keeps_everything_under_the_data_dir() {
        let l = Layout::new(Path::new("/d"));
        let c = config_toml(&l, "localhost/pause:1", true, "", &Runtimes::default());
        assert!(c.contains("root = \"/d/agent/containerd/root\""));
        assert!(c.contains("Root = \"/d/agent/containerd/runc\""));
        assert!(c.contains("restrict_oom_score_adj = true"));
        assert!(c.contains("conf_dir = \"/d/agent/cni/net.d\""));
        assert!(c.contains("netns_mounts_under_state_dir = true"));
        assert!(config_toml(&l, "p", false, "", &Runtimes::default())
            .contains("restrict_oom_score_adj = false"));
        assert!(c.contains("default_runtime_name = \"runc\""));
        assert!(
            !c.contains("crun"),
            "no crun runtime without a crun binary:\n{c}"
        );
    }

    #[test]
    fn config_with_crun_adds_a_runtime_of_the_same_shim() {
        let l = Layout::new(Path::new("/d"));
        let rt = Runtimes {
            default: CRUN.into(),
            crun: Some("/usr/bin/crun".into()),
        };
        let c = config_toml(&l, "p", true, "", &rt);
        assert!(c.contains("default_runtime_name = \"crun\""), "{c}");
        let table = c
            .split("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crun]")
            .nth(1)
            .expect("a crun runtime table");
        assert!(table.contains("runtime_type = \"io.containerd.runc.v2\""));
        assert!(table
            .contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.crun.options]"));
        assert!(table.contains("BinaryName = \"/usr/bin/crun\""));
        assert!(table.contains("Root = \"/d/agent/containerd/crun\""));
        assert!(table.contains("SystemdCgroup = false"));
        // runc stays configured, with its own state directory.
        assert!(c.contains("[plugins.\"io.containerd.grpc.v1.cri\".containerd.runtimes.runc]"));
        assert!(c.contains("Root = \"/d/agent/containerd/runc\""));
    }

    #[test]
    fn default_runtime_must_be_configured() {
        let crun = || CrunProbe::Usable("/usr/bin/crun".into());
        assert_eq!(
            Runtimes::resolve(None, CrunProbe::Missing).unwrap(),
            Runtimes::default()
        );
        let r = Runtimes::resolve(None, crun()).unwrap();
        assert_eq!(r.default, "runc");
        assert_eq!(r.names(), ["runc", "crun"]);
        let r = Runtimes::resolve(Some("crun"), crun()).unwrap();
        assert_eq!(r.default, "crun");
        assert_eq!(r.crun.as_deref(), Some(Path::new("/usr/bin/crun")));
        let e = Runtimes::resolve(Some("kata"), crun())
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown --default-runtime \"kata\""), "{e}");
        assert!(e.contains("runc, crun"), "{e}");
        let e = Runtimes::resolve(Some("crun"), CrunProbe::Missing)
            .unwrap_err()
            .to_string();
        assert!(e.contains("install crun"), "{e}");
        // Found but unusable: not configured, and not a default.
        let unusable = || CrunProbe::Unusable("/usr/bin/crun".into(), "hybrid".into());
        assert_eq!(
            Runtimes::resolve(None, unusable()).unwrap().names(),
            ["runc"]
        );
        let e = Runtimes::resolve(Some("crun"), unusable())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("/usr/bin/crun cannot run containers on this host: hybrid"),
            "{e}"
        );
    }

    #[test]
    fn crun_refuses_hybrid_cgroups_with_v2_controllers() {
        let hybrid = "31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n\
            35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
        let why = crun_blocker(hybrid, || "hugetlb\n".into()).expect("blocked");
        assert!(why.contains("(hugetlb)"), "{why}");
        assert_eq!(crun_blocker(hybrid, || "\n".into()), None);
        // Legacy (no cgroup2 mount) and unified layouts are fine.
        let legacy = "31 23 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n\
            35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        assert_eq!(crun_blocker(legacy, || "hugetlb".into()), None);
        let unified = "31 23 0:28 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
        assert_eq!(crun_blocker(unified, || "cpu memory".into()), None);
    }
}
