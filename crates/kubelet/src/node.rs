//! The kubelet's Node: registration with the host's capacity, addresses and
//! nodeInfo, the Lease in `kube-node-lease` renewed every 10 s, and the
//! status (conditions) posted when it changes and at least every 5 min.
//! The object formats are shared with the hollow nodes (`hollow::node`).

use std::path::Path;
use std::time::{Duration, Instant};

use hollow::node::NodeFacts;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{json, Value};

use crate::{api_err, Result};

/// The Lease's duration (upstream's 40 s).
pub const LEASE_DURATION_SECS: i32 = 40;
/// How often the Lease is renewed and the status computed.
pub const RENEW_EVERY: Duration = Duration::from_secs(10);
/// A status that did not change is posted again after this long.
pub const REPORT_EVERY: Duration = Duration::from_secs(300);

/// The host as the Node shows it.
#[derive(Clone, Debug)]
pub struct Host {
    /// Logical CPUs.
    pub cpus: usize,
    /// Memory in bytes.
    pub memory: u64,
    /// Size of the filesystem of the data directory, bytes.
    pub ephemeral_storage: u64,
    /// The InternalIP.
    pub ip: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Measure the host. `ip` is the address to advertise.
pub fn host(data_dir: &Path, ip: String) -> Host {
    let memory = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap_or(0)
        * 1024;
    Host {
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        memory,
        ephemeral_storage: fs_size(data_dir),
        ip,
    }
}

fn fs_size(p: &Path) -> u64 {
    crate::gc::fs_usage(p).map_or(0, |u| u.capacity)
}

/// An eviction threshold's amount: an absolute one (bytes, or a count), or
/// a percentage of the capacity.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Amount {
    Absolute(u64),
    Percent(f64),
}

impl Amount {
    /// Whether `available` of `capacity` is below the threshold.
    fn crossed(self, available: u64, capacity: u64) -> bool {
        match self {
            Amount::Absolute(min) => available < min,
            Amount::Percent(p) => capacity > 0 && (available as f64) < p / 100.0 * capacity as f64,
        }
    }
}

/// The hard eviction thresholds (upstream's `--eviction-hard`), each
/// signal's condition True while the signal is below it. A signal without
/// a threshold never sets its condition.
#[derive(Clone, Debug, PartialEq)]
pub struct Thresholds {
    pub memory_available: Option<Amount>,
    pub nodefs_available: Option<Amount>,
    pub nodefs_inodes_free: Option<Amount>,
    pub imagefs_available: Option<Amount>,
    pub imagefs_inodes_free: Option<Amount>,
    pub pid_available: Option<Amount>,
}

/// Upstream's default `evictionHard`; there is none for `pid.available`.
pub const DEFAULT_EVICTION_HARD: &str =
    "memory.available<100Mi,nodefs.available<10%,nodefs.inodesFree<5%,imagefs.available<15%,imagefs.inodesFree<5%";

impl Default for Thresholds {
    fn default() -> Self {
        DEFAULT_EVICTION_HARD
            .parse()
            .expect("the default thresholds parse")
    }
}

impl std::str::FromStr for Thresholds {
    type Err = String;

    /// `signal<amount` pairs, comma-separated, as upstream's flag: given
    /// thresholds replace the defaults, and a signal not given has none.
    fn from_str(text: &str) -> std::result::Result<Self, String> {
        let mut t = Thresholds {
            memory_available: None,
            nodefs_available: None,
            nodefs_inodes_free: None,
            imagefs_available: None,
            imagefs_inodes_free: None,
            pid_available: None,
        };
        for pair in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (signal, amount) = pair.split_once('<').ok_or_else(|| {
                format!("invalid eviction threshold {pair:?}: want signal<quantity")
            })?;
            let amount = match amount.trim().strip_suffix('%') {
                Some(p) => match p.parse::<f64>() {
                    Ok(p) if (0.0..=100.0).contains(&p) => Amount::Percent(p),
                    _ => return Err(format!("invalid percentage in eviction threshold {pair:?}")),
                },
                None => {
                    Amount::Absolute(quantity(amount.trim()).ok_or_else(|| {
                        format!("invalid quantity in eviction threshold {pair:?}")
                    })?)
                }
            };
            let slot = match signal.trim() {
                "memory.available" => &mut t.memory_available,
                "nodefs.available" => &mut t.nodefs_available,
                "nodefs.inodesFree" => &mut t.nodefs_inodes_free,
                "imagefs.available" => &mut t.imagefs_available,
                "imagefs.inodesFree" => &mut t.imagefs_inodes_free,
                "pid.available" => &mut t.pid_available,
                other => return Err(format!("unsupported eviction signal {other:?}")),
            };
            *slot = Some(amount);
        }
        Ok(t)
    }
}

/// A non-negative integer quantity with an optional binary (`Ki` … `Ei`)
/// or decimal (`k` … `E`) suffix.
fn quantity(s: &str) -> Option<u64> {
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, suffix) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let mult: u64 = match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "Pi" => 1 << 50,
        "Ei" => 1 << 60,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "P" => 1_000_000_000_000_000,
        "E" => 1_000_000_000_000_000_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// What the eviction signals read: the host's memory, the filesystem of
/// the kubelet's data directory (nodefs), that of the runtime's images
/// (imagefs), and process IDs.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Signals {
    /// (available, capacity) bytes.
    pub memory: Option<(u64, u64)>,
    pub nodefs: Option<crate::gc::FsUsage>,
    pub imagefs: Option<crate::gc::FsUsage>,
    /// (available, limit) process IDs.
    pub pids: Option<(u64, u64)>,
}

/// How long a condition stays True after its signal recovers (upstream's
/// `evictionPressureTransitionPeriod`), so that it does not flap.
pub const PRESSURE_TRANSITION: Duration = Duration::from_secs(300);

impl Thresholds {
    /// The pressure `signals` show against these thresholds.
    pub fn pressure(&self, signals: &Signals) -> hollow::node::Pressure {
        let below = |t: Option<Amount>, v: Option<(u64, u64)>| {
            t.zip(v)
                .is_some_and(|(t, (avail, cap))| t.crossed(avail, cap))
        };
        let fs = |fs: Option<crate::gc::FsUsage>, bytes: Option<Amount>, inodes: Option<Amount>| {
            below(bytes, fs.map(|f| (f.available, f.capacity)))
                || below(
                    inodes,
                    fs.filter(|f| f.inodes > 0)
                        .map(|f| (f.inodes_free, f.inodes)),
                )
        };
        hollow::node::Pressure {
            memory: below(self.memory_available, signals.memory),
            disk: fs(
                signals.nodefs,
                self.nodefs_available,
                self.nodefs_inodes_free,
            ) || fs(
                signals.imagefs,
                self.imagefs_available,
                self.imagefs_inodes_free,
            ),
            pid: below(self.pid_available, signals.pids),
        }
    }
}

/// Read the signals: nodefs is the filesystem of `data_dir`, imagefs that
/// of `image_dir` (the runtime's, when the kubelet knows it).
pub fn signals(data_dir: &Path, image_dir: Option<&Path>) -> Signals {
    Signals {
        memory: memory_available(),
        nodefs: crate::gc::fs_usage(data_dir).ok(),
        imagefs: image_dir.and_then(|d| crate::gc::fs_usage(d).ok()),
        pids: pids_available(),
    }
}

/// `kernel.pid_max` less the tasks running (upstream's `pid.available`).
fn pids_available() -> Option<(u64, u64)> {
    let max: u64 = read("/proc/sys/kernel/pid_max").parse().ok()?;
    // SAFETY: sysinfo(2) fills a zeroed out-struct.
    let procs = unsafe {
        let mut si: libc::sysinfo = std::mem::zeroed();
        if libc::sysinfo(&mut si) != 0 {
            return None;
        }
        si.procs as u64
    };
    Some((max.saturating_sub(procs), max))
}

/// `MemAvailable` and `MemTotal` from `/proc/meminfo`, in bytes.
fn memory_available() -> Option<(u64, u64)> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kb| kb * 1024)
    };
    Some((field("MemAvailable:")?, field("MemTotal:")?))
}

/// The node's pressure conditions over time: each measured on every
/// status computation, and held True for [`PRESSURE_TRANSITION`] after its
/// signal last crossed its threshold.
#[derive(Debug, Default)]
pub struct PressureWatch {
    last_seen: [Option<Instant>; 3],
}

impl PressureWatch {
    /// The pressure the host shows now against `thresholds`.
    pub fn measure(
        &mut self,
        thresholds: &Thresholds,
        data_dir: &Path,
        image_dir: Option<&Path>,
    ) -> hollow::node::Pressure {
        let now = thresholds.pressure(&signals(data_dir, image_dir));
        self.hold(now, Instant::now())
    }

    /// `now` as reported at `at`, with each condition seen within the
    /// transition period still True.
    pub fn hold(&mut self, now: hollow::node::Pressure, at: Instant) -> hollow::node::Pressure {
        let mut out = [now.memory, now.disk, now.pid];
        for (seen, last) in out.iter_mut().zip(self.last_seen.iter_mut()) {
            if *seen {
                *last = Some(at);
            } else if last.is_some_and(|l| at.duration_since(l) < PRESSURE_TRANSITION) {
                *seen = true;
            }
        }
        hollow::node::Pressure {
            memory: out[0],
            disk: out[1],
            pid: out[2],
        }
    }
}

/// `/etc/os-release`'s PRETTY_NAME.
fn os_image() -> String {
    read("/etc/os-release")
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "Linux".into())
}

/// The node's facts: capacity from the host, nodeInfo from the host and
/// the runtime's version (`containerd://1.6.20`).
pub fn facts(
    name: &str,
    host: &Host,
    runtime_version: &str,
    ready: Result<(), String>,
    pressure: hollow::node::Pressure,
) -> NodeFacts {
    NodeFacts {
        capacity: json!({
            "cpu": host.cpus.to_string(),
            "memory": format!("{}Ki", host.memory / 1024),
            "pods": "110",
            "ephemeral-storage": format!("{}Ki", host.ephemeral_storage / 1024),
        }),
        addresses: vec![
            ("InternalIP".into(), host.ip.clone()),
            ("Hostname".into(), name.into()),
        ],
        node_info: json!({
            "machineID": read("/etc/machine-id"),
            "systemUUID": read("/sys/class/dmi/id/product_uuid"),
            "bootID": read("/proc/sys/kernel/random/boot_id"),
            "kernelVersion": read("/proc/sys/kernel/osrelease"),
            "osImage": os_image(),
            "containerRuntimeVersion": runtime_version,
            "kubeletVersion": "v1.37.0",
            "kubeProxyVersion": "",
            "operatingSystem": "linux",
            "architecture": arch(),
        }),
        ready,
        pressure,
    }
}

/// The Node object as the kubelet registers it.
pub fn node_object(name: &str, status: Value) -> Value {
    hollow::node::registered_node(name, arch(), status)
}

/// The architecture as Kubernetes names it.
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        a => a,
    }
}

/// Keep each condition's `lastTransitionTime` from `old` when its status
/// did not change.
pub fn keep_transitions(new: &mut Value, old: Option<&Node>) {
    let Some(old) = old
        .and_then(|n| n.status.as_ref())
        .and_then(|s| s.conditions.as_ref())
    else {
        return;
    };
    for c in new["conditions"].as_array_mut().into_iter().flatten() {
        if let Some(o) = old.iter().find(|o| c["type"] == o.type_.as_str()) {
            if c["status"] == o.status.as_str() {
                if let Some(t) = &o.last_transition_time {
                    c["lastTransitionTime"] = serde_json::to_value(t).unwrap_or(Value::Null);
                }
            }
        }
    }
}

/// The part of a status that decides whether it must be posted now.
fn signature(status: &Value) -> Value {
    let conds: Vec<Value> = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| json!([c["type"], c["status"], c["message"]]))
        .collect();
    json!([
        conds,
        status["capacity"],
        status["addresses"],
        status["nodeInfo"]
    ])
}

/// Whether every condition of `ours` has the same status and message in
/// `server` (a node status as the API server holds it).
fn conditions_hold(ours: &Value, server: &Value) -> bool {
    let theirs = server["conditions"].as_array();
    ours["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|c| {
            theirs.into_iter().flatten().any(|s| {
                s["type"] == c["type"] && s["status"] == c["status"] && s["message"] == c["message"]
            })
        })
}

/// Create the Node (or take the existing one) and post its status, then
/// create or renew its Lease. Returns the Node.
pub async fn register(client: &Client, name: &str, status: Value) -> Result<Node> {
    let nodes: Api<Node> = Api::all(client.clone());
    let body: Node = serde_json::from_value(node_object(name, status.clone()))
        .map_err(|e| crate::Error::Runtime(format!("node object: {e}")))?;
    let node = match nodes.create(&PostParams::default(), &body).await {
        Ok(n) => n,
        Err(kube::Error::Api(s)) if s.code == 409 => {
            nodes.get(name).await.map_err(api_err("reading the node"))?
        }
        Err(e) => return Err(api_err("registering the node")(e)),
    };
    let node = post_status(&nodes, &node, status).await?;
    renew_lease(
        client,
        name,
        node.metadata.uid.as_deref().unwrap_or_default(),
    )
    .await?;
    Ok(node)
}

/// Post `status` over `cur`'s, keeping the transition times that still hold.
async fn post_status(nodes: &Api<Node>, cur: &Node, mut status: Value) -> Result<Node> {
    keep_transitions(&mut status, Some(cur));
    let name = cur.metadata.name.as_deref().unwrap_or_default();
    nodes
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status })),
        )
        .await
        .map_err(api_err("posting the node status"))
}

/// Renew the node's Lease, creating it when absent.
pub async fn renew_lease(client: &Client, name: &str, node_uid: &str) -> Result<()> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "kube-node-lease");
    let patch = json!({ "spec": { "holderIdentity": name, "renewTime": hollow::now(),
        "leaseDurationSeconds": LEASE_DURATION_SECS } });
    match leases
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => {
            let lease: Lease = serde_json::from_value(hollow::node::lease_object(
                name,
                node_uid,
                LEASE_DURATION_SECS,
                &hollow::now(),
            ))
            .map_err(|e| crate::Error::Runtime(format!("lease object: {e}")))?;
            leases
                .create(&PostParams::default(), &lease)
                .await
                .map(|_| ())
                .map_err(api_err("creating the node lease"))
        }
        Err(e) => Err(api_err("renewing the node lease")(e)),
    }
}

/// Tracks when the status was last posted and what it said.
#[derive(Default)]
pub struct StatusReporter {
    last: Option<(Value, Instant)>,
}

impl StatusReporter {
    /// Post `status` if it differs from the last one posted or the last
    /// post is older than [`REPORT_EVERY`].
    pub async fn report(
        &mut self,
        client: &Client,
        name: &str,
        status: Value,
    ) -> Result<Option<Node>> {
        let sig = signature(&status);
        let nodes: Api<Node> = Api::all(client.clone());
        let cur = nodes.get(name).await.map_err(api_err("reading the node"))?;
        if let Some((last, at)) = &self.last {
            // The node lifecycle controller rewrites the conditions of a
            // node it has not heard from (Ready: Unknown): like upstream's
            // kubelet, compare with the server's copy, not only with what
            // was posted last, or a node that comes back stays NotReady.
            let held = serde_json::to_value(&cur.status)
                .is_ok_and(|server| conditions_hold(&status, &server));
            if *last == sig && at.elapsed() < REPORT_EVERY && held {
                return Ok(None);
            }
        }
        let node = post_status(&nodes, &cur, status).await?;
        self.last = Some((sig, Instant::now()));
        Ok(Some(node))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pressure_follows_upstreams_default_eviction_thresholds() {
        let gib = 1u64 << 30;
        let fs = |available: u64, inodes_free: u64| crate::gc::FsUsage {
            capacity: 100 * gib,
            available,
            inodes: 1000,
            inodes_free,
        };
        let t = Thresholds::default();
        let at = |memory: Option<u64>, nodefs, imagefs| {
            t.pressure(&Signals {
                memory: memory.map(|m| (m, 8 * gib)),
                nodefs,
                imagefs,
                pids: Some((10, 4_000_000)),
            })
        };
        let calm = at(
            Some(2 * gib),
            Some(fs(50 * gib, 500)),
            Some(fs(50 * gib, 500)),
        );
        assert_eq!(calm, hollow::node::Pressure::default());
        // memory.available<100Mi.
        assert!(at(Some(99 << 20), None, None).memory);
        assert!(!at(Some(100 << 20), None, None).memory);
        // nodefs.available<10%, nodefs.inodesFree<5%.
        assert!(at(None, Some(fs(9 * gib, 500)), None).disk);
        assert!(!at(None, Some(fs(11 * gib, 500)), None).disk);
        assert!(at(None, Some(fs(50 * gib, 49)), None).disk);
        // imagefs.available<15%.
        assert!(at(None, None, Some(fs(14 * gib, 500))).disk);
        assert!(!at(None, None, Some(fs(16 * gib, 500))).disk);
        // A filesystem that counts no inodes is not short of them, and by
        // default nothing watches PIDs.
        let no_inodes = crate::gc::FsUsage {
            inodes: 0,
            ..fs(50 * gib, 0)
        };
        assert!(!at(None, Some(no_inodes), None).disk);
        assert!(!at(None, None, None).pid);
    }

    #[test]
    fn eviction_thresholds_parse_as_upstreams_flag() {
        let t: Thresholds = "memory.available<1Gi, nodefs.available<1%,pid.available<500"
            .parse()
            .unwrap();
        assert_eq!(t.memory_available, Some(Amount::Absolute(1 << 30)));
        assert_eq!(t.nodefs_available, Some(Amount::Percent(1.0)));
        assert_eq!(t.pid_available, Some(Amount::Absolute(500)));
        // Given thresholds replace the defaults.
        assert_eq!(t.imagefs_available, None);
        assert!(
            t.pressure(&Signals {
                pids: Some((499, 1000)),
                ..Default::default()
            })
            .pid
        );
        assert_eq!(
            Thresholds::default().imagefs_available,
            Some(Amount::Percent(15.0))
        );
        assert_eq!("".parse::<Thresholds>().unwrap().memory_available, None);
        for bad in [
            "memory.available>1Gi",
            "disk.free<1%",
            "nodefs.available<150%",
            "memory.available<1Xi",
        ] {
            assert!(bad.parse::<Thresholds>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_pressure_condition_is_held_for_the_transition_period() {
        let mut w = PressureWatch::default();
        let t0 = Instant::now();
        let disk = hollow::node::Pressure {
            disk: true,
            ..Default::default()
        };
        let none = hollow::node::Pressure::default();
        assert_eq!(w.hold(none, t0), none);
        assert_eq!(w.hold(disk, t0), disk);
        assert_eq!(w.hold(none, t0 + Duration::from_secs(60)), disk);
        assert_eq!(w.hold(none, t0 + PRESSURE_TRANSITION), none);
    }

    #[test]
    fn the_hosts_signals_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let s = signals(dir.path(), Some(dir.path()));
        let (avail, total) = s.memory.unwrap();
        assert!(avail > 0 && avail <= total);
        let fs = s.nodefs.unwrap();
        assert!(fs.capacity > 0 && fs.available <= fs.capacity, "{fs:?}");
        assert!(s.imagefs.is_some());
        let (free, max) = s.pids.unwrap();
        assert!(free > 0 && free < max);
        assert!(signals(&dir.path().join("missing"), None).nodefs.is_none());
    }

    #[test]
    fn conditions_changed_on_the_server_are_noticed() {
        let ours = json!({"conditions": [
            {"type": "Ready", "status": "True", "message": "kubelet is posting ready status"},
            {"type": "MemoryPressure", "status": "False", "message": "ok"}]});
        let mut server = json!({"conditions": [
            {"type": "MemoryPressure", "status": "False", "message": "ok"},
            {"type": "NetworkUnavailable", "status": "False", "message": "set by others"},
            {"type": "Ready", "status": "True", "message": "kubelet is posting ready status"}]});
        assert!(conditions_hold(&ours, &server));
        server["conditions"][2]["status"] = json!("Unknown");
        assert!(!conditions_hold(&ours, &server));
        assert!(!conditions_hold(&ours, &json!({})));
    }

    #[test]
    fn node_status_parses_and_reports_readiness() {
        let h = Host {
            cpus: 2,
            memory: 4 << 30,
            ephemeral_storage: 10 << 30,
            ip: "10.0.0.9".into(),
        };
        let f = facts(
            "n1",
            &h,
            "containerd://1.6.20",
            Err("runtime network not ready".into()),
            Default::default(),
        );
        let st = hollow::node::status_from_facts(&f, "2026-01-01T00:00:00Z");
        let n: Node = serde_json::from_value(node_object("n1", st)).unwrap();
        let st = n.status.unwrap();
        assert_eq!(st.capacity.as_ref().unwrap()["memory"].0, "4194304Ki");
        assert_eq!(st.capacity.as_ref().unwrap()["pods"].0, "110");
        assert_eq!(st.allocatable.unwrap()["cpu"].0, "2");
        let ready = st
            .conditions
            .unwrap()
            .into_iter()
            .find(|c| c.type_ == "Ready")
            .unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_deref()),
            ("False", Some("KubeletNotReady"))
        );
        assert_eq!(st.addresses.unwrap()[0].address, "10.0.0.9");
        assert_eq!(
            st.node_info.unwrap().container_runtime_version,
            "containerd://1.6.20"
        );
    }

    #[test]
    fn transitions_are_kept_while_the_status_holds() {
        let h = Host {
            cpus: 1,
            memory: 1 << 30,
            ephemeral_storage: 1 << 30,
            ip: "10.0.0.9".into(),
        };
        let old = hollow::node::status_from_facts(
            &facts("n", &h, "c", Ok(()), Default::default()),
            "2026-01-01T00:00:00Z",
        );
        let old: Node = serde_json::from_value(node_object("n", old)).unwrap();
        let mut new = hollow::node::status_from_facts(
            &facts("n", &h, "c", Err("x".into()), Default::default()),
            "2026-01-02T00:00:00Z",
        );
        keep_transitions(&mut new, Some(&old));
        let t = |v: &Value, ty: &str| {
            v["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == ty)
                .unwrap()["lastTransitionTime"]
                .clone()
        };
        assert_eq!(t(&new, "MemoryPressure"), "2026-01-01T00:00:00Z");
        assert_eq!(t(&new, "Ready"), "2026-01-02T00:00:00Z");
    }
}
