//! A throwaway etcd cluster of real `etcd` processes on loopback ports.
//!
//! Each member gets a data directory and a log file inside one temporary
//! directory owned by [`EtcdCluster`]; dropping the cluster SIGKILLs the members
//! this process started (by PID, through [`ChildGuard`]) and removes the files.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tempfile::TempDir;

use crate::{free_port, ChildGuard};

/// How long [`EtcdCluster::start`] and [`EtcdCluster::restart`] wait for health.
const START_TIMEOUT: Duration = Duration::from_secs(20);

struct Member {
    name: String,
    client_port: u16,
    peer_port: u16,
    data_dir: PathBuf,
    log: PathBuf,
    process: ChildGuard,
}

/// A running etcd cluster for tests.
pub struct EtcdCluster {
    members: Vec<Member>,
    initial_cluster: String,
    binary: PathBuf,
    // Dropped last (fields drop in declaration order), after the processes are gone.
    _dir: TempDir,
}

impl EtcdCluster {
    /// Start `n` members and wait until every one reports itself healthy, which
    /// in etcd means a leader is elected and a quorum read succeeds.
    pub fn start(n: usize) -> Result<Self> {
        if n == 0 {
            bail!("an etcd cluster needs at least one member");
        }
        let binary = find_etcd()?;
        let dir = tempfile::Builder::new().prefix("wharf-etcd-").tempdir()?;
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let initial_cluster = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("m{i}=http://127.0.0.1:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            members: Vec::with_capacity(n),
            initial_cluster,
            binary,
            _dir: dir,
        };
        for (i, (client_port, peer_port)) in ports.into_iter().enumerate() {
            let name = format!("m{i}");
            let data_dir = cluster._dir.path().join(&name);
            let log = cluster._dir.path().join(format!("{name}.log"));
            let process = cluster.spawn(&name, client_port, peer_port, &data_dir, &log)?;
            cluster.members.push(Member {
                name,
                client_port,
                peer_port,
                data_dir,
                log,
                process,
            });
        }
        // Members only become healthy together (a leader needs a quorum), so
        // they are all started before any is waited for.
        for i in 0..n {
            cluster.wait_healthy(i)?;
        }
        Ok(cluster)
    }

    /// Number of members, running or not.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the cluster has no members (never true for a started cluster).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Every member's client URL, `http://127.0.0.1:PORT`.
    pub fn endpoints(&self) -> Vec<String> {
        (0..self.members.len()).map(|i| self.endpoint(i)).collect()
    }

    /// Member `i`'s client URL.
    pub fn endpoint(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.members[i].client_port)
    }

    /// Member `i`'s name in `--initial-cluster` (`m0`, `m1`, …).
    pub fn name(&self, i: usize) -> &str {
        &self.members[i].name
    }

    /// Member `i`'s PID, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].process.pid()
    }

    /// Whether member `i` is still running.
    pub fn is_running(&mut self, i: usize) -> bool {
        self.members[i].process.is_running()
    }

    /// SIGKILL member `i`, as a crash would.
    pub fn kill(&mut self, i: usize) {
        self.members[i].process.kill();
    }

    /// Start member `i` again on its old ports and data directory (so it rejoins
    /// as the same member) and wait until it is healthy.
    pub fn restart(&mut self, i: usize) -> Result<()> {
        self.kill(i);
        let m = &self.members[i];
        let process = self.spawn(&m.name, m.client_port, m.peer_port, &m.data_dir, &m.log)?;
        self.members[i].process = process;
        self.wait_healthy(i)
    }

    /// The last lines of member `i`'s log, for failure messages.
    pub fn log_tail(&self, i: usize) -> String {
        tail(&self.members[i].log, 20)
    }

    fn spawn(
        &self,
        name: &str,
        client_port: u16,
        peer_port: u16,
        data_dir: &Path,
        log: &Path,
    ) -> Result<ChildGuard> {
        fs::create_dir_all(data_dir)?;
        let log_file = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("opening {}", log.display()))?;
        let client = format!("http://127.0.0.1:{client_port}");
        let peer = format!("http://127.0.0.1:{peer_port}");
        let child = Command::new(&self.binary)
            .arg("--name")
            .arg(name)
            .arg("--data-dir")
            .arg(data_dir)
            .args([
                "--listen-client-urls",
                &client,
                "--advertise-client-urls",
                &client,
            ])
            .args([
                "--listen-peer-urls",
                &peer,
                "--initial-advertise-peer-urls",
                &peer,
            ])
            .args(["--initial-cluster", &self.initial_cluster])
            .args([
                "--initial-cluster-state",
                "new",
                "--initial-cluster-token",
                "wharf-test",
            ])
            // Fast elections keep failover tests short.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"])
            // The store accepts values up to 1.5 MiB, etcd's default limit for a
            // whole request; leave room for the key and the transaction around it.
            .args(["--max-request-bytes", "2097152"])
            .args([
                "--logger",
                "zap",
                "--log-level",
                "error",
                "--log-outputs",
                "stderr",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .spawn()
            .with_context(|| format!("spawning {}", self.binary.display()))?;
        Ok(ChildGuard::new(format!("etcd {name}"), child))
    }

    fn wait_healthy(&mut self, i: usize) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let port = self.members[i].client_port;
        loop {
            if !self.members[i].process.is_running() {
                bail!(
                    "etcd member {} exited during startup; log tail:\n{}",
                    self.members[i].name,
                    self.log_tail(i)
                );
            }
            if health(port) {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "etcd member {} not healthy on port {port} after {START_TIMEOUT:?}; log tail:\n{}",
                    self.members[i].name,
                    self.log_tail(i)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// `/usr/bin/etcd` (the Debian package), else `etcd` found on `PATH`.
fn find_etcd() -> Result<PathBuf> {
    let debian = PathBuf::from("/usr/bin/etcd");
    if debian.is_file() {
        return Ok(debian);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join("etcd");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    bail!("etcd not found at /usr/bin/etcd or on PATH")
}

/// Whether the member on `port` answers `GET /health` with `"health":"true"`.
/// Plain HTTP/1.0 so the harness needs no HTTP client crate.
fn health(port: u16) -> bool {
    let attempt = || -> std::io::Result<String> {
        let addr = ([127, 0, 0, 1], port).into();
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        s.set_write_timeout(Some(Duration::from_secs(1)))?;
        s.write_all(b"GET /health HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut body = String::new();
        s.read_to_string(&mut body)?;
        Ok(body)
    };
    attempt()
        .map(|body| body.contains(r#""health":"true""#))
        .unwrap_or(false)
}

fn tail(path: &Path, lines: usize) -> String {
    match fs::read_to_string(path) {
        Ok(text) => {
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}
