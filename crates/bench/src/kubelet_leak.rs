//! The kubelet's leak check (issue 6: "nothing leaks over 1,000 pod
//! create/delete cycles"): pods are created and deleted in waves on the
//! benchmark's node, and what pods leave on the host is counted before and
//! after: veths on the node's bridge, host-local IP allocations, mounts
//! under the kubelet's data directory, pod and log directories, and
//! containerd's cgroups; and the kubelet's RSS.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use kube::Client;

use crate::apiserver::{call_ok, post};
use crate::podwatch::PodWatch;

/// Pods created at once in a wave.
pub const WAVE: usize = 20;

/// What pods leave on the host.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostState {
    /// Interfaces enslaved to the node's bridge (one veth per pod).
    pub veths: usize,
    /// host-local's allocation files (one per pod IP).
    pub ips: usize,
    /// Mount points under the kubelet's data directory.
    pub mounts: usize,
    /// Directories under `agent/pods` and `agent/pod-logs`.
    pub pod_dirs: usize,
    /// Container cgroups in the memory hierarchy's `k8s.io` group.
    pub cgroups: usize,
}

impl HostState {
    /// Count what the node at `data_dir` has on the host now.
    pub fn sample(data_dir: &Path) -> HostState {
        let count = |p: &Path| std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0);
        let bridge = kubelet::cni::bridge_name(data_dir);
        let ipam = data_dir.join("agent/cni/ipam");
        let ips = std::fs::read_dir(&ipam)
            .into_iter()
            .flatten()
            .flatten()
            .map(|net| {
                std::fs::read_dir(net.path())
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter(|f| {
                        f.file_name()
                            .to_str()
                            .is_some_and(|n| n.parse::<std::net::IpAddr>().is_ok())
                    })
                    .count()
            })
            .sum();
        let prefix = format!("{}/", data_dir.display());
        let mounts = std::fs::read_to_string("/proc/self/mounts")
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                l.split_whitespace()
                    .nth(1)
                    .is_some_and(|m| m.starts_with(&prefix))
            })
            .count();
        HostState {
            veths: count(&Path::new("/sys/class/net").join(&bridge).join("brif")),
            ips,
            mounts,
            pod_dirs: count(&data_dir.join("agent/pods")) + count(&data_dir.join("agent/pod-logs")),
            cgroups: count(Path::new("/sys/fs/cgroup/memory/k8s.io")),
        }
    }

    /// What `after` has more of than `self`, as `name +n` entries.
    pub fn grown(&self, after: &HostState) -> Vec<String> {
        [
            ("veths", self.veths, after.veths),
            ("IPs", self.ips, after.ips),
            ("mounts", self.mounts, after.mounts),
            ("pod and log dirs", self.pod_dirs, after.pod_dirs),
            ("cgroups", self.cgroups, after.cgroups),
        ]
        .into_iter()
        .filter(|(_, b, a)| a > b)
        .map(|(n, b, a)| format!("{n} +{}", a - b))
        .collect()
    }
}

/// What the leak check saw.
#[derive(Clone, Debug, Default)]
pub struct LeakReport {
    /// Pods created and deleted.
    pub cycles: usize,
    /// Host state with no pods, before and after the cycles.
    pub before: HostState,
    pub after: HostState,
    /// The kubelet's VmRSS before and after, in KiB.
    pub rss_before_kib: u64,
    pub rss_after_kib: u64,
    /// How long the cycles took.
    pub took: Duration,
}

fn pod_body(name: &str, image: &str, node: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node},
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 1,
            // A tmpfs volume, so that mounts are exercised too.
            "volumes": [{"name": "scratch", "emptyDir": {"medium": "Memory"}}],
            "containers": [{
                "name": "sleep",
                "image": image,
                "imagePullPolicy": "Never",
                "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
            }],
        },
    }))
    .expect("a pod serializes")
}

/// Where the cycles run.
pub struct Target<'a> {
    /// The namespace (empty, with its service account).
    pub ns: &'a str,
    /// The node the pods are pinned to.
    pub node: &'a str,
    /// The image, present on the node.
    pub image: &'a str,
    /// The kubelet's data directory.
    pub data_dir: &'a Path,
}

/// Run `cycles` pod create/delete cycles in waves of [`WAVE`]. `rss` reads
/// the kubelet's VmRSS in KiB.
pub async fn run_cycles(
    client: &Client,
    target: Target<'_>,
    cycles: usize,
    timeout: Duration,
    mut rss: impl FnMut() -> Result<u64>,
) -> Result<LeakReport> {
    let Target {
        ns,
        node,
        image,
        data_dir,
    } = target;
    let before = HostState::sample(data_dir);
    let rss_before_kib = rss()?;
    let started = Instant::now();
    let mut watch = PodWatch::start(client, ns, cycles).await?;
    let mut done = 0;
    while done < cycles {
        let n = WAVE.min(cycles - done);
        let names: Vec<String> = (done..done + n).map(|i| format!("cycle-{i:05}")).collect();
        let creates = names.iter().map(|name| {
            call_ok(
                client,
                post(
                    &format!("/api/v1/namespaces/{ns}/pods"),
                    pod_body(name, image, node),
                ),
                "creating a cycle pod",
            )
        });
        for r in futures::future::join_all(creates).await {
            r?;
        }
        wait(&mut watch, timeout, |t| t.ready >= done + n, "Running").await?;
        super::kubelet::delete_pods(client, ns, &names).await?;
        wait(&mut watch, timeout, |t| t.deleted >= done + n, "gone").await?;
        done += n;
        if done % 100 == 0 || done == cycles {
            eprintln!(
                "[bench] kubelet: {done} of {cycles} pods created and deleted ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    }
    let took = started.elapsed();
    // Give the kubelet's last cleanups (CNI delete, unmounts) a moment.
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut after = HostState::sample(data_dir);
    while !before.grown(&after).is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        after = HostState::sample(data_dir);
    }
    Ok(LeakReport {
        cycles,
        before,
        after,
        rss_before_kib,
        rss_after_kib: rss()?,
        took,
    })
}

async fn wait(
    watch: &mut PodWatch,
    timeout: Duration,
    done: impl Fn(&crate::podwatch::Tracker) -> bool,
    what: &str,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        watch.check().context("the cycle pods' watch")?;
        {
            let t = watch.lock();
            if done(&t) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("cycle pods not {what} after {timeout:?}: {}", t.census());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growth_is_named() {
        let a = HostState {
            veths: 1,
            ips: 1,
            ..Default::default()
        };
        let b = HostState {
            veths: 1,
            ips: 3,
            mounts: 2,
            ..Default::default()
        };
        assert_eq!(a.grown(&b), ["IPs +2", "mounts +2"]);
        assert!(b.grown(&a).is_empty());
    }

    #[test]
    fn an_empty_directory_has_nothing() {
        let d = tempfile::tempdir().unwrap();
        let s = HostState::sample(d.path());
        assert_eq!((s.veths, s.ips, s.mounts, s.pod_dirs), (0, 0, 0, 0));
    }
}
