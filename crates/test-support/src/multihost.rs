//! A cluster of several "hosts" on one machine, for tests of what only
//! shows with more than one node: node loss, pods spread over nodes,
//! traffic between nodes.
//!
//! Each host is a named network namespace (`wharf-mh-<suffix>-<i>`) with
//! one veth into a test bridge in the root namespace and its own address on
//! a private /24 picked clear of the host's routes and of the cluster's
//! ranges. Host 0 runs `wharf server --disable-agent` (a control plane
//! only, so every pod lands on a worker and a worker's loss is the only
//! loss; with [`Options::server_is_node`] it is node `server` too, with its
//! kubelet, proxy and DNS); hosts 1..=n run a worker ([`WorkerCommand`]), each with its own
//! data directory and so its own containerd. The bridge has the subnet's
//! first address, so the test process in the root namespace reaches the
//! API server through it, and it is every host's default gateway.
//!
//! Processes enter only the host's network namespace (`nsenter --net`), not
//! a mount namespace: every path they write is under their data directory
//! (containerd's root, state, runc root and pod network namespaces, the CNI
//! config and host-local's allocations), so two workers never share a file.
//! Devices and nftables tables (the CNI bridge, the proxy's table, the CNI
//! plugins' masquerade rules) are per network namespace and go with it;
//! `/var/lib/cni/results` is keyed by container ID; port 10250 is per
//! namespace.
//!
//! On drop the cluster deletes every pod (so the kubelets stop their
//! containers), stops by PID what it started (and what its kubelets left:
//! containerd, shims), unmounts what is mounted under its directory,
//! deletes its namespaces, veths and bridge, and removes its directory
//! (kept with `WHARF_MH_KEEP=1`, for the logs).

mod net;
mod procs;
mod worker;

use std::ffi::OsString;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

pub use net::Cidr;
pub use procs::unmount_under;
pub use worker::{WorkerCommand, WorkerSpec};

use crate::ChildGuard;

/// The API server's port inside host 0's namespace.
pub const API_PORT: u16 = 6443;

/// The hard eviction thresholds of the harness's nodes unless
/// `WHARF_EVICTION_HARD` says otherwise (as `scripts/test.sh` does).
pub const TEST_EVICTION_HARD: &str =
    "memory.available<1Mi,nodefs.available<1%,imagefs.available<1%";

/// How to build the cluster.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `wharf` binary (`env!("CARGO_BIN_EXE_wharf")` in wharf's tests).
    pub wharf: PathBuf,
    /// Worker hosts (the server is host 0, workers are 1..=workers).
    pub workers: usize,
    pub worker_command: WorkerCommand,
    /// Extra `wharf server` flags, e.g. shortened node lifecycle timings.
    pub server_args: Vec<String>,
    /// Image archives (docker-archive or OCI tarballs) imported into every
    /// worker's containerd once it is Ready (`wharf images import`).
    pub images: Vec<PathBuf>,
    /// Run the server with its agent (node `server`: kubelet, proxy, DNS)
    /// instead of `--disable-agent`.
    pub server_is_node: bool,
    /// How long to wait for the server, then for the nodes to be Ready.
    pub ready_timeout: Duration,
}

impl Options {
    pub fn new(wharf: impl Into<PathBuf>, workers: usize) -> Self {
        Options {
            wharf: wharf.into(),
            workers,
            worker_command: WorkerCommand::Agent,
            server_args: Vec::new(),
            images: Vec::new(),
            server_is_node: false,
            ready_timeout: Duration::from_secs(120),
        }
    }
}

/// One process the harness started in a host.
struct Proc {
    name: &'static str,
    guard: ChildGuard,
    log: PathBuf,
}

/// One host: a network namespace with its address, data directory and
/// processes.
pub struct Host {
    pub index: usize,
    /// The network namespace's name (`ip netns exec NAME ...` works).
    pub netns: String,
    pub ip: Ipv4Addr,
    pub data_dir: PathBuf,
    /// The Node's name (`None` for the server host, which is no node).
    pub node_name: Option<String>,
    /// The host side of its veth (in the root namespace, on the bridge).
    veth: String,
    cut: bool,
    procs: Vec<Proc>,
}

impl Host {
    /// The PIDs of its running processes, by name.
    pub fn pids(&mut self) -> Vec<(&'static str, u32)> {
        self.procs
            .iter_mut()
            .filter_map(|p| {
                if p.guard.is_running() {
                    p.guard.pid().map(|pid| (p.name, pid))
                } else {
                    None
                }
            })
            .collect()
    }

    /// The path of this host's containerd socket (workers).
    pub fn containerd_socket(&self) -> PathBuf {
        self.data_dir
            .join("agent")
            .join("containerd")
            .join("containerd.sock")
    }
}

/// The running cluster; see the module documentation.
pub struct Cluster {
    opts: Options,
    suffix: String,
    subnet: Cidr,
    bridge: Option<String>,
    hosts: Vec<Host>,
    dir: PathBuf,
    kubeconfig: PathBuf,
    server_url: String,
    token: String,
    kubectl: PathBuf,
}

/// The kubectl to use: `$WHARF_KUBECTL`, else the workspace's
/// `.venv/bin/kubectl` (scripts/install-deps.sh), else `kubectl` on PATH.
pub fn kubectl_path() -> PathBuf {
    if let Some(p) = std::env::var_os("WHARF_KUBECTL") {
        return p.into();
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/kubectl");
    if venv.exists() {
        venv
    } else {
        PathBuf::from("kubectl")
    }
}

fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    format!("{:06x}", h.finish() & 0xff_ffff)
}

impl Cluster {
    /// A server and `workers` workers with the default options.
    pub fn start(wharf: impl Into<PathBuf>, workers: usize) -> Result<Cluster> {
        Cluster::start_with(Options::new(wharf, workers))
    }

    /// Build the network, start the server, then the workers, and wait
    /// until every worker's Node is Ready (and has the test image). On
    /// error, everything made so far is removed (the half-built cluster is
    /// dropped).
    pub fn start_with(opts: Options) -> Result<Cluster> {
        if Command::new("which")
            .arg("containerd")
            .stdout(Stdio::null())
            .status()
            .map(|s| !s.success())
            .unwrap_or(true)
        {
            bail!("containerd is not installed: run scripts/install-deps.sh");
        }
        let suffix = random_suffix();
        let seed = u64::from_str_radix(&suffix, 16).unwrap_or(0);
        let dir = tempfile::Builder::new()
            .prefix(&format!("wharf-mh-{suffix}-"))
            .tempdir()
            .context("creating the cluster's directory")?
            .keep();
        let token = format!("mh{suffix}{:x}", seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut c = Cluster {
            subnet: net::pick_subnet(seed)?,
            kubeconfig: dir.join("host-0").join("kubeconfig.yaml"),
            server_url: String::new(),
            opts,
            suffix,
            bridge: None,
            hosts: Vec::new(),
            dir,
            token,
            kubectl: kubectl_path(),
        };
        c.make_network()?;
        c.start_server()?;
        for i in 1..=c.opts.workers {
            c.start_worker(i)?;
        }
        c.wait_nodes_ready(c.opts.ready_timeout)?;
        c.import_images()?;
        Ok(c)
    }

    fn make_network(&mut self) -> Result<()> {
        let bridge = format!("whmb{}", self.suffix);
        net::ip(&["link", "add", &bridge, "type", "bridge"])?;
        self.bridge = Some(bridge.clone());
        let gw = self.gateway();
        net::ip(&["addr", "add", &format!("{gw}/24"), "dev", &bridge])?;
        net::ip(&["link", "set", &bridge, "up"])?;
        for i in 0..=self.opts.workers {
            let netns = format!("wharf-mh-{}-{i}", self.suffix);
            let veth = format!("whm{}h{i}", self.suffix);
            let data_dir = self.dir.join(format!("host-{i}"));
            std::fs::create_dir_all(&data_dir)
                .with_context(|| format!("creating {}", data_dir.display()))?;
            let ip = net::host_addr(self.subnet, 10 + i as u8);
            net::ip(&["netns", "add", &netns])?;
            self.hosts.push(Host {
                index: i,
                netns: netns.clone(),
                ip,
                data_dir,
                node_name: if i == 0 {
                    self.opts.server_is_node.then(|| "server".to_string())
                } else {
                    Some(format!("worker-{i}"))
                },
                veth: veth.clone(),
                cut: false,
                procs: Vec::new(),
            });
            net::ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &netns,
            ])?;
            net::ip(&["link", "set", &veth, "master", &bridge, "up"])?;
            net::ip(&["-n", &netns, "link", "set", "lo", "up"])?;
            net::ip(&[
                "-n",
                &netns,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                "eth0",
            ])?;
            net::ip(&["-n", &netns, "link", "set", "eth0", "up"])?;
            net::ip(&[
                "-n",
                &netns,
                "route",
                "add",
                "default",
                "via",
                &gw.to_string(),
            ])?;
        }
        Ok(())
    }

    /// The bridge's address: every host's default gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        net::host_addr(self.subnet, 1)
    }

    /// The test subnet.
    pub fn subnet(&self) -> Cidr {
        self.subnet
    }

    /// Start `wharf ARGS` in host `i`'s network namespace, logging to
    /// `<data dir>/<name>.log`.
    fn spawn(&mut self, i: usize, name: &'static str, args: Vec<OsString>) -> Result<()> {
        let host = &mut self.hosts[i];
        let log = host.data_dir.join(format!("{name}.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("creating {}", log.display()))?;
        let err = out.try_clone().context("duplicating the log file")?;
        let mut cmd = Command::new("nsenter");
        // Only the network namespace: exec keeps the PID, so the guard's PID
        // is wharf's own.
        cmd.arg(format!("--net=/run/netns/{}", host.netns))
            .arg("--")
            .arg(&self.opts.wharf)
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        for (k, _) in std::env::vars_os() {
            if let Some(k) = k.to_str() {
                if k == "KUBECONFIG" || (k.starts_with("WHARF_") && k != "WHARF_LOG") {
                    cmd.env_remove(k);
                }
            }
        }
        if std::env::var_os("WHARF_LOG").is_none() {
            cmd.env("WHARF_LOG", "info");
        }
        // Test machines keep much of their disk reserved, which upstream's
        // default thresholds report as DiskPressure (and the node is tainted).
        cmd.env(
            "WHARF_EVICTION_HARD",
            std::env::var("WHARF_EVICTION_HARD").unwrap_or_else(|_| TEST_EVICTION_HARD.into()),
        );
        let child = cmd
            .spawn()
            .with_context(|| format!("starting wharf {name} in {}", host.netns))?;
        host.procs.push(Proc {
            name,
            guard: ChildGuard::new(format!("wharf {name} (host {i})"), child),
            log,
        });
        Ok(())
    }

    fn start_server(&mut self) -> Result<()> {
        let h = &self.hosts[0];
        let ip = h.ip.to_string();
        let mut args: Vec<OsString> = [
            "server",
            "--https-listen-port",
            &API_PORT.to_string(),
            "--bind-address",
            &ip,
            "--advertise-address",
            &ip,
            "--node-name",
            "server",
            "--token",
            &self.token,
        ]
        .iter()
        .map(OsString::from)
        .collect();
        args.push("--data-dir".into());
        args.push(h.data_dir.clone().into());
        if self.opts.server_is_node {
            // No registries file of the machine's: the tests pull nothing.
            args.push("--private-registry".into());
            args.push(h.data_dir.join("registries.yaml").into());
        } else {
            args.push("--disable-agent".into());
        }
        args.extend(self.opts.server_args.iter().map(OsString::from));
        self.server_url = format!("https://{ip}:{API_PORT}");
        self.spawn(0, "server", args)?;
        let deadline = Instant::now() + self.opts.ready_timeout;
        loop {
            self.check_running(0)?;
            if self.kubeconfig.exists()
                && self
                    .kubectl_output(&["get", "--raw", "/readyz"], None)
                    .is_ok_and(|o| o.status.success())
            {
                // A server that writes a full join token (with the hash of
                // its CA) keeps it there; agents join with that one.
                let file = self.hosts[0].data_dir.join("server").join("token");
                match std::fs::read_to_string(file) {
                    Ok(t) if !t.trim().is_empty() => {
                        self.token = t.trim().to_string();
                        return Ok(());
                    }
                    // Agents need it; kubelets do not.
                    _ if self.opts.worker_command != WorkerCommand::Agent => return Ok(()),
                    _ => {}
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "wharf server not ready at {} in {:?}\n{}",
                    self.server_url,
                    self.opts.ready_timeout,
                    self.log_tail(0, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The argv of worker `i`'s processes.
    fn worker_spec(&self, i: usize) -> WorkerSpec {
        let h = &self.hosts[i];
        WorkerSpec {
            node_name: h.node_name.clone().expect("a worker host"),
            data_dir: h.data_dir.clone(),
            node_ip: h.ip,
            server_url: self.server_url.clone(),
            token: self.token.clone(),
            kubeconfig: h.data_dir.join("kubeconfig.yaml"),
        }
    }

    /// Start worker `i`'s processes (again, after [`Cluster::kill_worker`]).
    pub fn start_worker(&mut self, i: usize) -> Result<()> {
        if i == 0 || i >= self.hosts.len() {
            bail!("host {i} is not a worker");
        }
        let spec = self.worker_spec(i);
        std::fs::copy(&self.kubeconfig, &spec.kubeconfig)
            .with_context(|| format!("copying the kubeconfig to {}", spec.kubeconfig.display()))?;
        self.hosts[i].procs.retain_mut(|p| p.guard.is_running());
        for (name, args) in self.opts.worker_command.clone().argvs(&spec) {
            self.spawn(i, name, args)?;
        }
        Ok(())
    }

    /// SIGKILL worker `i`'s processes (its containerd, shims and
    /// containers keep running, as after a crash).
    pub fn kill_worker(&mut self, i: usize) {
        for p in &mut self.hosts[i].procs {
            p.guard.kill();
        }
    }

    /// Fail with the log of the first process of host `i` that exited.
    pub fn check_running(&mut self, i: usize) -> Result<()> {
        for p in &mut self.hosts[i].procs {
            if !p.guard.is_running() {
                let status = p
                    .guard
                    .child
                    .as_mut()
                    .and_then(|c| c.try_wait().ok().flatten());
                bail!(
                    "wharf {} of host {i} is not running ({status:?}); log:\n{}",
                    p.name,
                    procs::tail(&p.log, 30)
                );
            }
        }
        Ok(())
    }

    /// The last `n` lines of every log of host `i`.
    pub fn log_tail(&self, i: usize, n: usize) -> String {
        self.hosts[i]
            .procs
            .iter()
            .map(|p| {
                format!(
                    "--- {} ({}):\n{}",
                    p.guard.name,
                    p.log.display(),
                    procs::tail(&p.log, n)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Wait until every worker's Node is Ready.
    pub fn wait_nodes_ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            for i in 0..self.hosts.len() {
                self.check_running(i)?;
            }
            let ready = self.ready_nodes().unwrap_or_default();
            let missing: Vec<String> = self
                .node_names()
                .into_iter()
                .filter(|n| !ready.contains(n))
                .collect();
            if missing.is_empty() {
                return Ok(());
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = (0..self.hosts.len())
                    .map(|i| self.log_tail(i, 15))
                    .collect();
                bail!(
                    "nodes {missing:?} not Ready after {timeout:?}\n{}",
                    logs.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The names of the Nodes whose Ready condition is True.
    pub fn ready_nodes(&self) -> Result<Vec<String>> {
        let nodes = self.kubectl_json(&["get", "nodes"])?;
        Ok(nodes["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| {
                n["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
            .filter_map(|n| n["metadata"]["name"].as_str().map(String::from))
            .collect())
    }

    /// The workers' node names, in host order.
    pub fn worker_names(&self) -> Vec<String> {
        self.hosts[1..]
            .iter()
            .filter_map(|h| h.node_name.clone())
            .collect()
    }

    /// Every node's name (with `server` when the server is a node too).
    pub fn node_names(&self) -> Vec<String> {
        self.hosts
            .iter()
            .filter_map(|h| h.node_name.clone())
            .collect()
    }

    fn import_images(&mut self) -> Result<()> {
        if self.opts.images.is_empty() {
            return Ok(());
        }
        for h in self.hosts.iter().filter(|h| h.node_name.is_some()) {
            let out = Command::new(&self.opts.wharf)
                .args(["images", "import", "--data-dir"])
                .arg(&h.data_dir)
                .args(&self.opts.images)
                .env_remove("WHARF_CONTAINER_RUNTIME_ENDPOINT")
                .output()
                .context("running wharf images import")?;
            if !out.status.success() {
                bail!(
                    "importing {:?} into host {}: {}{}",
                    self.opts.images,
                    h.index,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        Ok(())
    }

    /// Cut host `i` off: its veth goes down on the bridge side, so nothing
    /// reaches it and it reaches nothing (its routes stay, so
    /// [`Cluster::restore`] needs only to bring the link back).
    pub fn cut(&mut self, i: usize) -> Result<()> {
        net::ip(&["link", "set", &self.hosts[i].veth, "down"])?;
        self.hosts[i].cut = true;
        Ok(())
    }

    /// Bring host `i` back after [`Cluster::cut`].
    pub fn restore(&mut self, i: usize) -> Result<()> {
        net::ip(&["link", "set", &self.hosts[i].veth, "up"])?;
        self.hosts[i].cut = false;
        Ok(())
    }

    pub fn host(&self, i: usize) -> &Host {
        &self.hosts[i]
    }

    pub fn host_mut(&mut self, i: usize) -> &mut Host {
        &mut self.hosts[i]
    }

    /// The host index of a worker node.
    pub fn host_of(&self, node_name: &str) -> Option<usize> {
        self.hosts
            .iter()
            .position(|h| h.node_name.as_deref() == Some(node_name))
    }

    /// The admin kubeconfig; its server URL is host 0's address, reachable
    /// from the root namespace through the bridge.
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    pub fn server_url(&self) -> &str {
        &self.server_url
    }

    /// The join token: the server's `<data-dir>/server/token` when it
    /// writes one, else the passphrase it was given.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The cluster's directory (every host's data directory is under it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn kubectl_output(&self, args: &[&str], input: Option<&str>) -> Result<std::process::Output> {
        let mut cmd = Command::new(&self.kubectl);
        cmd.args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("running {}", self.kubectl.display()))?;
        if let Some(input) = input {
            child
                .stdin
                .take()
                .expect("piped")
                .write_all(input.as_bytes())
                .context("writing kubectl's stdin")?;
        }
        child.wait_with_output().context("waiting for kubectl")
    }

    /// Run kubectl with the admin kubeconfig (and `input` on stdin); its
    /// stdout, or an error with its stderr.
    pub fn kubectl_in(&self, args: &[&str], input: Option<&str>) -> Result<String> {
        let out = self.kubectl_output(args, input)?;
        if !out.status.success() {
            bail!(
                "kubectl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn kubectl(&self, args: &[&str]) -> Result<String> {
        self.kubectl_in(args, None)
    }

    /// `kubectl ARGS -o json`, parsed.
    pub fn kubectl_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut a = args.to_vec();
        a.extend(["-o", "json"]);
        let out = self.kubectl(&a)?;
        serde_json::from_str(&out).map_err(|e| anyhow!("kubectl {}: {e}: {out}", a.join(" ")))
    }

    /// Run `ctr -n k8s.io ARGS` against worker `i`'s containerd.
    pub fn ctr(&self, i: usize, args: &[&str]) -> Result<String> {
        let out = Command::new("ctr")
            .arg("--address")
            .arg(self.hosts[i].containerd_socket())
            .args(["-n", "k8s.io"])
            .args(args)
            .output()
            .context("running ctr")?;
        if !out.status.success() {
            bail!(
                "ctr {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Run a command inside host `i`'s network namespace.
    pub fn exec_in(&self, i: usize, program: &str, args: &[&str]) -> Result<std::process::Output> {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.hosts[i].netns))
            .arg("--")
            .arg(program)
            .args(args)
            .output()
            .with_context(|| format!("running {program} in host {i}"))
    }

    fn teardown(&mut self) {
        // Bring cut hosts back, so their kubelets can finish their pods.
        for i in 0..self.hosts.len() {
            if self.hosts[i].cut {
                let _ = self.restore(i);
            }
        }
        let nodes_up = self
            .hosts
            .iter_mut()
            .any(|h| h.node_name.is_some() && !h.pids().is_empty());
        let server_up = self.hosts.first_mut().is_some_and(|h| !h.pids().is_empty());
        if nodes_up && server_up {
            // The kubelets stop the containers and remove the sandboxes;
            // what is left after this is killed below.
            let _ = self.kubectl_output(
                &[
                    "delete",
                    "pods",
                    "--all",
                    "-A",
                    "--grace-period=1",
                    "--wait=true",
                    "--timeout=40s",
                ],
                None,
            );
        }
        // Workers first (SIGTERM: the kubelet stops its containerd), then the
        // server.
        for i in (0..self.hosts.len()).rev() {
            let pids = self.hosts[i].pids();
            for (_, pid) in &pids {
                procs::signal(*pid, "TERM");
            }
            for (_, pid) in &pids {
                procs::wait_gone(*pid, Duration::from_secs(15));
            }
            for p in &mut self.hosts[i].procs {
                p.guard.kill();
            }
            procs::kill_leftovers(&self.hosts[i].data_dir);
        }
        procs::unmount_under(&self.dir);
        for h in &self.hosts {
            net::ip_quiet(&["netns", "del", &h.netns]);
            net::ip_quiet(&["link", "del", &h.veth]);
        }
        if let Some(b) = self.bridge.take() {
            net::ip_quiet(&["link", "del", &b]);
        }
        if std::env::var_os("WHARF_MH_KEEP").is_some() {
            eprintln!("multihost: kept {}", self.dir.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.teardown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_differ() {
        assert_ne!(random_suffix(), random_suffix());
        assert_eq!(random_suffix().len(), 6);
    }
}
