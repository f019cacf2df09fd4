//! Image garbage collection, as upstream's kubelet does it: every
//! `period` the image filesystem's usage is read; at or above
//! `high_percent` the images no container uses (running or not), that are
//! not pinned or the sandbox image, and that have been unused for at least
//! `min_age`, are removed least recently used first, until usage is back
//! to `low_percent`.
//!
//! The choice is a pure function ([`select`]); [`ImageGc::run_once`]
//! gathers the facts from the runtime and removes what it chose.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::cri::{api, Runtime};

/// The thresholds (upstream's flags `--image-gc-high-threshold`,
/// `--image-gc-low-threshold`, `--image-minimum-gc-age`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Collect at or above this disk usage (percent).
    pub high_percent: u8,
    /// Collect down to this usage (percent).
    pub low_percent: u8,
    /// An image must have been unused this long.
    pub min_age: Duration,
    /// How often usage is checked.
    pub period: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            high_percent: 85,
            low_percent: 80,
            min_age: Duration::from_secs(120),
            period: Duration::from_secs(300),
        }
    }
}

impl Policy {
    /// Refuse thresholds upstream refuses, with its wording.
    pub fn check(&self) -> Result<(), String> {
        if self.high_percent > 100 {
            return Err(format!(
                "invalid HighThresholdPercent {}, must be in range [0-100]",
                self.high_percent
            ));
        }
        if self.low_percent > 100 {
            return Err(format!(
                "invalid LowThresholdPercent {}, must be in range [0-100]",
                self.low_percent
            ));
        }
        if self.low_percent > self.high_percent {
            return Err(format!(
                "LowThresholdPercent {} can not be higher than HighThresholdPercent {}",
                self.low_percent, self.high_percent
            ));
        }
        Ok(())
    }
}

/// Capacity and free bytes (and inodes) of a filesystem.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FsUsage {
    /// Total bytes.
    pub capacity: u64,
    /// Bytes available.
    pub available: u64,
    /// Inodes in all (0 where the filesystem does not count them).
    pub inodes: u64,
    /// Inodes free.
    pub inodes_free: u64,
}

/// `statvfs` of `path`.
pub fn fs_usage(path: &std::path::Path) -> std::io::Result<FsUsage> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: statvfs(3) with a NUL-terminated path and a zeroed out-struct.
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let frsize = s.f_frsize as u64;
    Ok(FsUsage {
        capacity: s.f_blocks as u64 * frsize,
        available: s.f_bavail as u64 * frsize,
        inodes: s.f_files as u64,
        inodes_free: s.f_ffree as u64,
    })
}

/// What the collector knows about one image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The image ID.
    pub id: String,
    /// Bytes it frees.
    pub size: u64,
    /// When a container last used it (or when it was first seen).
    pub last_used: Instant,
}

/// The images to remove, in order, to bring usage from `usage` to the low
/// threshold; empty below the high threshold.
pub fn select(
    policy: &Policy,
    usage: FsUsage,
    mut unused: Vec<Candidate>,
    now: Instant,
) -> Vec<String> {
    if usage.capacity == 0 {
        return Vec::new();
    }
    let used = usage.capacity.saturating_sub(usage.available);
    let percent = used.saturating_mul(100) / usage.capacity;
    if percent < policy.high_percent as u64 {
        return Vec::new();
    }
    let target = usage.capacity * policy.low_percent as u64 / 100;
    let mut to_free = used.saturating_sub(target);
    unused.retain(|c| now.saturating_duration_since(c.last_used) >= policy.min_age);
    unused.sort_by_key(|c| c.last_used);
    let mut out = Vec::new();
    for c in unused {
        if to_free == 0 {
            break;
        }
        to_free = to_free.saturating_sub(c.size);
        out.push(c.id);
    }
    out
}

/// The collector's memory of when each image was last used.
pub struct ImageGc {
    policy: Policy,
    /// Where the image filesystem is (containerd's root).
    fs_path: PathBuf,
    /// The sandbox image, which is never removed.
    sandbox_image: String,
    last_used: HashMap<String, Instant>,
}

impl ImageGc {
    /// A collector for the image filesystem at `fs_path`.
    pub fn new(policy: Policy, fs_path: PathBuf, sandbox_image: String) -> Self {
        ImageGc {
            policy,
            fs_path,
            sandbox_image,
            last_used: HashMap::new(),
        }
    }

    /// The check period.
    pub fn period(&self) -> Duration {
        self.policy.period
    }

    /// One round: returns the IDs of the images it removed.
    pub async fn run_once(&mut self, rt: &dyn Runtime) -> Result<Vec<String>, String> {
        let now = Instant::now();
        let images = rt.list_images().await.map_err(|e| e.to_string())?;
        let containers = rt.list_containers().await.map_err(|e| e.to_string())?;
        let in_use: HashSet<&str> = containers
            .iter()
            .flat_map(|c| [c.image_ref.as_str(), image_name(c)])
            .collect();
        let mut unused = Vec::new();
        let mut present = HashSet::new();
        for i in &images {
            present.insert(i.id.clone());
            let used = in_use.contains(i.id.as_str())
                || i.repo_tags.iter().any(|t| in_use.contains(t.as_str()))
                || i.repo_digests.iter().any(|d| in_use.contains(d.as_str()));
            let sandbox = i.repo_tags.contains(&self.sandbox_image);
            let last = self.last_used.entry(i.id.clone()).or_insert(now);
            if used || sandbox || i.pinned {
                *last = now;
                continue;
            }
            unused.push(Candidate {
                id: i.id.clone(),
                size: i.size,
                last_used: *last,
            });
        }
        self.last_used.retain(|id, _| present.contains(id));
        let usage = fs_usage(&self.fs_path)
            .map_err(|e| format!("reading the usage of {}: {e}", self.fs_path.display()))?;
        let chosen = select(&self.policy, usage, unused, now);
        let mut removed = Vec::new();
        for id in chosen {
            match rt.remove_image(&id).await {
                Ok(()) => {
                    tracing::info!(image = %id, "image garbage-collected");
                    self.last_used.remove(&id);
                    removed.push(id);
                }
                Err(e) => tracing::warn!(image = %id, error = %e, "removing an unused image"),
            }
        }
        Ok(removed)
    }
}

fn image_name(c: &api::Container) -> &str {
    c.image
        .as_ref()
        .map(|i| i.image.as_str())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri::fake::Fake;

    fn cand(id: &str, size: u64, age_s: u64, now: Instant) -> Candidate {
        Candidate {
            id: id.into(),
            size,
            last_used: now - Duration::from_secs(age_s),
        }
    }

    #[test]
    fn nothing_is_collected_below_the_high_threshold() {
        let now = Instant::now() + Duration::from_secs(10_000);
        let p = Policy::default();
        let usage = FsUsage {
            capacity: 100,
            available: 16,
            ..Default::default()
        };
        assert!(select(&p, usage, vec![cand("a", 50, 1000, now)], now).is_empty());
    }

    #[test]
    fn oldest_unused_images_go_first_until_the_low_threshold() {
        let now = Instant::now() + Duration::from_secs(10_000);
        let p = Policy::default();
        // 90 % used: 10 bytes must go to reach 80 %.
        let usage = FsUsage {
            capacity: 100,
            available: 10,
            ..Default::default()
        };
        let c = vec![
            cand("new", 50, 60, now), // younger than min_age: kept
            cand("mid", 6, 500, now),
            cand("old", 6, 900, now),
            cand("older-but-small", 1, 1000, now),
        ];
        assert_eq!(select(&p, usage, c, now), ["older-but-small", "old", "mid"]);
    }

    #[test]
    fn thresholds_are_checked_as_upstream() {
        assert!(Policy::default().check().is_ok());
        let bad = Policy {
            high_percent: 70,
            low_percent: 80,
            ..Policy::default()
        };
        assert_eq!(
            bad.check().unwrap_err(),
            "LowThresholdPercent 80 can not be higher than HighThresholdPercent 70"
        );
    }

    #[tokio::test]
    async fn images_in_use_and_the_sandbox_image_are_kept() {
        let rt = Fake::default();
        rt.images.lock().unwrap().extend([
            "pause:1".to_string(),
            "used:1".into(),
            "unused:1".into(),
        ]);
        let sb = rt
            .run_pod_sandbox(api::PodSandboxConfig::default(), "")
            .await
            .unwrap();
        let cfg = api::ContainerConfig {
            image: Some(api::ImageSpec {
                image: "used:1".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        rt.create_container(&sb, cfg, api::PodSandboxConfig::default())
            .await
            .unwrap();
        // Every filesystem is above 0 %: collect everything eligible.
        let policy = Policy {
            high_percent: 0,
            low_percent: 0,
            min_age: Duration::ZERO,
            period: Duration::from_secs(1),
        };
        let mut gc = ImageGc::new(policy, PathBuf::from("/"), "pause:1".into());
        let removed = gc.run_once(&rt).await.unwrap();
        assert_eq!(removed, ["sha256:unused:1"]);
        assert_eq!(*rt.images.lock().unwrap(), ["pause:1", "used:1"]);
    }
}
