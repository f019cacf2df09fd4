//! The API server benchmark: `wharf server` started as a child process and
//! driven over HTTPS on loopback by the `kube` client.
//!
//! [`run_apiserver_bench`] starts the server on a fresh data directory, waits
//! for `/readyz`, loads the admin kubeconfig it wrote, runs the phases (pod
//! creates, GETs, LISTs, watch delivery) and reads the server's resident memory
//! from `/proc/<pid>/status` along the way. The returned [`ApiReport`] prints
//! as a table against the goals. Progress goes to stderr.
//!
//! The caller provides the tokio runtime; it should be multi-threaded.

#[path = "apiserver_report.rs"]
mod report;
#[path = "apiserver_workload.rs"]
mod workload;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use kube::config::{KubeConfigOptions, Kubeconfig};
use test_support::ChildGuard;

pub(crate) use report::{all_met, goal_table, Goal, Row};
pub use report::{
    ApiReport, PhaseCpu, WatchResults, GOAL_CREATES_PER_SEC, GOAL_GET_P99, GOAL_IDLE_RSS_MIB,
    GOAL_LIST, GOAL_WATCH_P99,
};
pub(crate) use workload::{
    call, call_ok, contains, create_namespace, excerpt, get, make_pod, p50_p99, pod_json, pod_name,
    post, timed_tasks,
};

/// How many times the full LIST is timed; the median is reported.
pub const LIST_RUNS: usize = 5;
/// How long the server idles after `/readyz` before its idle RSS is read.
pub const IDLE_SETTLE: Duration = Duration::from_secs(2);
/// How long the server may take to write its kubeconfig and become ready.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);
/// Namespace of the pods.
pub const POD_NAMESPACE: &str = "wharf-bench";
/// Namespace of the config maps watched over HTTP/2.
pub const WATCH_NAMESPACE: &str = "wharf-bench-watch";
/// Namespace of the config maps watched over HTTP/1.1.
pub const WATCH_NAMESPACE_H1: &str = "wharf-bench-watch-h1";

/// The workload of [`run_apiserver_bench`].
#[derive(Clone, Debug)]
pub struct ApiBenchConfig {
    /// Pods created (about 2 KB of JSON each), all in [`POD_NAMESPACE`].
    pub pods: usize,
    /// Concurrent client tasks for the create and GET phases; each has one
    /// request in flight at a time.
    pub clients: usize,
    /// GETs of single pods chosen at random among those created.
    pub gets: usize,
    /// Watches open in each watch phase: on [`WATCH_NAMESPACE`]'s config maps
    /// over HTTP/2 (spread over `clients` connections, as `clients` client-go
    /// processes would hold them), then on [`WATCH_NAMESPACE_H1`]'s over
    /// HTTP/1.1 (a connection each).
    pub watchers: usize,
    /// Config maps each watch phase's single writer creates.
    pub watch_events: usize,
    /// The writer creates one config map per this interval. The default, 20 ms
    /// (50 writes/s, so 50,000 deliveries/s to 1,000 watchers), measures
    /// delivery latency below saturation: each delivery is a TLS write to its
    /// own connection, and at 5 ms (200,000 deliveries/s) the server's loopback
    /// writes and the client's 1,000 readers fill both cores of the reference
    /// machine, so the figure becomes queueing time. Pass `--watch-pace-ms 5`
    /// to measure that.
    pub watch_pace: Duration,
    /// Directory for the server's temporary data directory; the system
    /// temporary directory if `None`.
    pub work_dir: Option<PathBuf>,
}

impl Default for ApiBenchConfig {
    /// Sized to finish in about three minutes on a two-core machine (usually
    /// much less).
    fn default() -> Self {
        ApiBenchConfig {
            pods: 10_000,
            clients: 32,
            gets: 20_000,
            watchers: 1_000,
            watch_events: 500,
            watch_pace: Duration::from_millis(20),
            work_dir: None,
        }
    }
}

impl ApiBenchConfig {
    fn validate(&self) -> Result<()> {
        let positive = [
            ("pods", self.pods),
            ("clients", self.clients),
            ("gets", self.gets),
            ("watchers", self.watchers),
            ("watch_events", self.watch_events),
        ];
        for (name, v) in positive {
            anyhow::ensure!(v > 0, "{name} must be positive");
        }
        anyhow::ensure!(self.pods < 100_000, "pods must be below 100,000");
        anyhow::ensure!(
            self.watch_events < 100_000,
            "watch_events must be below 100,000"
        );
        Ok(())
    }
}

/// Start `wharf_exe server` on a fresh data directory and a free loopback port,
/// run every phase against it over HTTPS, and stop it (by PID). Fails if the
/// server fails a request or a watcher misses or repeats an event.
pub async fn run_apiserver_bench(cfg: &ApiBenchConfig, wharf_exe: &Path) -> Result<ApiReport> {
    cfg.validate()?;
    with_server(
        wharf_exe,
        cfg.work_dir.as_deref(),
        "wharf-apibench-",
        async |client, server| workload::run(client, cfg, server).await,
    )
    .await
}

/// Start `wharf_exe server` in a fresh temporary directory (named `prefix…`,
/// under `work_dir` or the system temporary directory), wait until it is
/// ready, run `body` with the admin client, then stop the server by PID and
/// remove the directory. A failure carries the server's last log lines.
pub(crate) async fn with_server<T>(
    wharf_exe: &Path,
    work_dir: Option<&Path>,
    prefix: &str,
    body: impl AsyncFnOnce(&kube::Client, &mut Server) -> Result<T>,
) -> Result<T> {
    // The API server alone: with no nodes, the scheduler would answer every
    // benchmark pod with a status patch and an event, and the controllers
    // would act on the benchmark's objects (a Deployment patched with a new
    // image rolls out a new ReplicaSet each time).
    with_server_flags(
        wharf_exe,
        work_dir,
        prefix,
        &["--disable-scheduler", "--disable-controller-manager"],
        body,
    )
    .await
}

/// [`with_server`] with these flags after the common ones (the data
/// directory, port, loopback addresses and `--disable-agent`): which of the
/// scheduler and controller manager run.
pub(crate) async fn with_server_flags<T>(
    wharf_exe: &Path,
    work_dir: Option<&Path>,
    prefix: &str,
    flags: &[&str],
    body: impl AsyncFnOnce(&kube::Client, &mut Server) -> Result<T>,
) -> Result<T> {
    let dir = {
        let mut b = tempfile::Builder::new();
        b.prefix(prefix);
        match work_dir {
            Some(d) => {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
                b.tempdir_in(d)
            }
            None => b.tempdir(),
        }
        .context("creating a temporary directory for the server")?
    };
    let mut server = Server::start(wharf_exe, dir.path(), flags)?;
    let result = async {
        let client = server.wait_ready().await?;
        body(&client, &mut server).await
    }
    .await;
    let result = result.map_err(|e| {
        let tail = server.log_tail(20);
        if tail.is_empty() {
            e
        } else {
            e.context(format!("server log (last lines):\n{tail}"))
        }
    });
    server.stop();
    drop(dir);
    result
}

/// The server child process.
pub(crate) struct Server {
    guard: ChildGuard,
    pid: u32,
    port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    /// The client settings from the kubeconfig, once the server wrote it.
    kube_config: Option<kube::Config>,
}

impl Server {
    fn start(wharf_exe: &Path, dir: &Path, flags: &[&str]) -> Result<Server> {
        let data_dir = dir.join("data");
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        let log = dir.join("server.log");
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone().context("duplicating the log file handle")?;
        let port = test_support::free_port();
        let mut cmd = Command::new(wharf_exe);
        cmd.arg("server")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--https-listen-port")
            .arg(port.to_string())
            .args(["--bind-address", "127.0.0.1"])
            .args(["--advertise-address", "127.0.0.1"])
            .arg("--disable-agent")
            .args(flags)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        scrub_env(&mut cmd, false);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {} server", wharf_exe.display()))?;
        let pid = child.id();
        eprintln!(
            "[bench] apiserver: started {} server (pid {pid}) on 127.0.0.1:{port}, data in {}",
            wharf_exe.display(),
            data_dir.display()
        );
        Ok(Server {
            guard: ChildGuard::new("wharf server", child),
            pid,
            port,
            data_dir,
            log,
            kube_config: None,
        })
    }

    /// Wait for the kubeconfig, then for `/readyz` to answer 200 through a
    /// client that trusts the kubeconfig's CA and presents its client
    /// certificate; return that client.
    async fn wait_ready(&mut self) -> Result<kube::Client> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let path = self.data_dir.join("kubeconfig.yaml");
        let kubeconfig = loop {
            self.ensure_running()?;
            if let Ok(k) = Kubeconfig::read_from(&path) {
                if !k.clusters.is_empty() && !k.auth_infos.is_empty() {
                    break k;
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "the server did not write {} within {STARTUP_TIMEOUT:?}",
                    path.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .with_context(|| format!("loading {}", path.display()))?;
        // A retried request would hide a 429/503 and its latency.
        config.default_retry = false;
        let url = config.cluster_url.to_string();
        anyhow::ensure!(
            url.starts_with(&format!("https://127.0.0.1:{}", self.port)),
            "the kubeconfig points at {url}, not at the loopback port {}",
            self.port
        );
        self.kube_config = Some(config.clone());
        let client = kube::Client::try_from(config).context("building the client")?;
        loop {
            self.ensure_running()?;
            let req = http::Request::get("/readyz")
                .body(Vec::new())
                .expect("a valid request");
            let last = match tokio::time::timeout(Duration::from_secs(2), client.request_text(req))
                .await
            {
                Ok(Ok(_)) => break,
                Ok(Err(e)) => e.to_string(),
                Err(_) => "timed out".to_string(),
            };
            if Instant::now() > deadline {
                bail!("/readyz did not answer 200 within {STARTUP_TIMEOUT:?}: {last}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!(
            "[bench] apiserver: /readyz ok; kubeconfig {}",
            path.display()
        );
        Ok(client)
    }

    pub(crate) fn ensure_running(&mut self) -> Result<()> {
        if self.guard.is_running() {
            Ok(())
        } else {
            Err(anyhow!("the server (pid {}) exited", self.pid))
        }
    }

    /// `VmRSS` and `VmHWM` of the server, in KiB.
    pub(crate) fn memory_kib(&mut self) -> Result<(u64, u64)> {
        self.ensure_running()?;
        let path = format!("/proc/{}/status", self.pid);
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let rss = status_kib(&status, "VmRSS").ok_or_else(|| anyhow!("no VmRSS in {path}"))?;
        let hwm = status_kib(&status, "VmHWM").ok_or_else(|| anyhow!("no VmHWM in {path}"))?;
        Ok((rss, hwm))
    }

    /// Reads the CPU time of the server and of this process.
    pub(crate) fn cpu_meter(&self) -> CpuMeter {
        CpuMeter {
            server_pid: self.pid,
        }
    }

    /// Opens HTTP/2 connections to the server with the kubeconfig's
    /// credentials.
    pub(crate) fn h2_connector(&self) -> Result<crate::h2::H2Connector> {
        let config = self
            .kube_config
            .as_ref()
            .ok_or_else(|| anyhow!("the server is not ready yet"))?;
        crate::h2::H2Connector::new(config, self.port)
    }

    /// The server's port.
    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    /// The server's PID.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The admin kubeconfig the server wrote.
    pub(crate) fn kubeconfig(&self) -> PathBuf {
        self.data_dir.join("kubeconfig.yaml")
    }

    /// The server's output so far.
    pub(crate) fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `n` lines of the server's output.
    pub(crate) fn log_tail(&self, n: usize) -> String {
        let Ok(text) = std::fs::read_to_string(&self.log) else {
            return String::new();
        };
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// SIGKILL the server by its PID and reap it.
    fn stop(&mut self) {
        self.guard.kill();
    }
}

/// Clock ticks per second of the times in `/proc/<pid>/stat` (`USER_HZ`,
/// 100 on every Linux ABI).
const USER_HZ: u64 = 100;

/// User plus system CPU time, all threads, from a `/proc/<pid>/stat` line.
fn stat_cpu(stat: &str) -> Option<Duration> {
    // Fields after the command name, which is in parentheses and may hold
    // spaces: the state (field 3) comes first, utime and stime are 14 and 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11)?.parse().ok()?;
    let stime: u64 = f.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / USER_HZ))
}

/// CPU time of process `pid` (or `self`), all threads.
pub(crate) fn process_cpu(pid: &str) -> Option<Duration> {
    stat_cpu(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Busy CPU time of the whole machine, all CPUs together, from the `cpu`
/// line of `/proc/stat`: everything but idle and iowait (guest time is
/// already inside user time).
fn machine_busy(proc_stat: &str) -> Option<Duration> {
    let line = proc_stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().ok())
        .collect::<Option<_>>()?;
    // user nice system idle iowait irq softirq steal [guest guest_nice]
    let busy = v.get(..8)?.iter().sum::<u64>() - v[3] - v[4];
    Some(Duration::from_millis(busy * 1000 / USER_HZ))
}

/// Busy CPU time of the whole machine so far.
pub(crate) fn machine_cpu() -> Option<Duration> {
    machine_busy(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Samples the CPU time of the server and of the benchmark process.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CpuMeter {
    server_pid: u32,
}

/// CPU times at one instant.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CpuSample {
    at: Instant,
    server: Option<Duration>,
    client: Option<Duration>,
    machine: Option<Duration>,
}

impl CpuMeter {
    pub(crate) fn sample(&self) -> CpuSample {
        CpuSample {
            at: Instant::now(),
            server: process_cpu(&self.server_pid.to_string()),
            client: process_cpu("self"),
            machine: machine_cpu(),
        }
    }
}

impl CpuSample {
    /// What was spent from `self` to `later`.
    pub(crate) fn until(&self, later: &CpuSample) -> PhaseCpu {
        let diff = |a: Option<Duration>, b: Option<Duration>| Some(b?.saturating_sub(a?));
        PhaseCpu {
            wall: later.at.saturating_duration_since(self.at),
            server: diff(self.server, later.server),
            client: diff(self.client, later.client),
            machine: diff(self.machine, later.machine),
        }
    }
}

/// A `Name:   123 kB` field of `/proc/<pid>/status`, in KiB.
pub(crate) fn status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        let mut parts = rest.split_whitespace();
        let n = parts.next()?.parse().ok()?;
        match parts.next() {
            Some("kB") | None => Some(n),
            Some(_) => None,
        }
    })
}

/// Socket inodes of the ESTABLISHED connections in a `/proc/net/tcp` or
/// `/proc/net/tcp6` table whose remote port is `port`.
fn established_to(table: &str, port: u16) -> Vec<u64> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 || f[3] != "01" {
                return None;
            }
            let (_, rem_port) = f[2].rsplit_once(':')?;
            if u16::from_str_radix(rem_port, 16).ok()? != port {
                return None;
            }
            f[9].parse().ok()
        })
        .collect()
}

/// How many TCP connections this process has open to `port` on any address
/// (the client's connections to the server); `None` if `/proc` cannot tell.
pub(crate) fn client_connections(port: u16) -> Option<usize> {
    let mut ours = HashSet::new();
    for entry in std::fs::read_dir("/proc/self/fd").ok()?.flatten() {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let t = target.to_string_lossy();
            if let Some(inode) = t
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
                .and_then(|s| s.parse::<u64>().ok())
            {
                ours.insert(inode);
            }
        }
    }
    let mut n = 0;
    for table in ["/proc/self/net/tcp", "/proc/self/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            n += established_to(&text, port)
                .into_iter()
                .filter(|i| ours.contains(i))
                .count();
        }
    }
    Some(n)
}

/// Flags win over the environment, but a stray WHARF_DATASTORE_ENDPOINT or
/// WHARF_TOKEN (or, for clients, KUBECONFIG) must not change what is
/// measured: remove them from a child's environment, keeping the log filter.
pub(crate) fn scrub_env(cmd: &mut std::process::Command, kubeconfig_too: bool) {
    for (k, _) in std::env::vars_os() {
        if let Some(k) = k.to_str() {
            if (kubeconfig_too && k == "KUBECONFIG")
                || (k.starts_with("WHARF_") && k != "WHARF_LOG")
            {
                cmd.env_remove(k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_fields() {
        let status = "Name:\twharf\nVmPeak:\t  900000 kB\nVmHWM:\t   40960 kB\nVmRSS:\t   30720 kB\nThreads:\t5\n";
        assert_eq!(status_kib(status, "VmRSS"), Some(30720));
        assert_eq!(status_kib(status, "VmHWM"), Some(40960));
        assert_eq!(status_kib(status, "VmSwap"), None);
        // A field name that is a prefix of another does not match it.
        assert_eq!(status_kib("VmRSSx:\t1 kB\n", "VmRSS"), None);
    }

    #[test]
    fn stat_cpu_times() {
        let stat = "4242 (wharf (x) y) S 1 4242 4242 0 -1 4194560 5000 0 3 0 250 125 0 0 20 0 9 0 100 900000 7000 18446744073709551615";
        assert_eq!(stat_cpu(stat), Some(Duration::from_millis(3_750)));
        assert_eq!(stat_cpu("4242 (wharf) S 1"), None);
        assert!(process_cpu("self").is_some());
        let proc_stat =
            "cpu  100 5 50 1000 20 1 4 2 30 0\ncpu0 50 2 25 500 10 1 2 1 15 0\nintr 1\n";
        // user + nice + system + irq + softirq + steal = 162 ticks.
        assert_eq!(machine_busy(proc_stat), Some(Duration::from_millis(1_620)));
        assert_eq!(machine_busy("cpu0 1 2 3\n"), None);
    }

    #[test]
    fn established_connections_by_remote_port() {
        let table = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 111 1 0 100 0 0 10 0
   1: 0100007F:A000 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 222 1 0 20 4 30 10 -1
   2: 0100007F:A001 0100007F:1F90 06 00000000:00000000 03:00000000 00000000     0        0 0 3 0
   3: 0100007F:A002 0100007F:1F91 01 00000000:00000000 00:00000000 00000000  1000        0 333 1 0 20 4 30 10 -1
   4: 0100007F:A003 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 444 1 0 20 4 30 10 -1
";
        assert_eq!(established_to(table, 0x1F90), vec![222, 444]);
        assert_eq!(established_to(table, 0x1F91), vec![333]);
        assert!(established_to(table, 80).is_empty());
        let v6 = "\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:B000 00000000000000000000000001000000:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 555 1 0 20 4 30 10 -1
";
        assert_eq!(established_to(v6, 0x1F90), vec![555]);
    }

    #[test]
    fn config_validation() {
        assert!(ApiBenchConfig::default().validate().is_ok());
        let cfg = ApiBenchConfig {
            clients: 0,
            ..ApiBenchConfig::default()
        };
        assert!(cfg.validate().unwrap_err().to_string().contains("clients"));
    }
}
