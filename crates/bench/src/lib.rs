//! Benchmarks.
//!
//! [`run_store_bench`] runs one workload against the embedded store
//! ([`store::SqliteStore`]) and then against a local single-member etcd
//! ([`store::EtcdStore`]), and returns a [`StoreReport`] whose `Display` is a
//! table comparing the two. Progress goes to stderr as each phase runs.
//!
//! The caller provides the tokio runtime; it should be multi-threaded.
//!
//! The other suites start `wharf server` as a child process: [`apiserver`]
//! and [`patch`] the API server alone; [`scheduler`], [`deployment`] and
//! [`idle`] with the scheduler (and controllers) and hollow nodes
//! ([`cluster`]) in another child process; [`kubelet`] with a real
//! `wharf kubelet` child process and its containerd.

pub mod apiserver;
pub mod cluster;
pub mod deployment;
pub mod dns;
mod h2;
pub mod idle;
pub mod kubelet;
pub mod kubelet_leak;
pub mod patch;
mod podwatch;
pub mod proxy;
mod report;
pub mod scheduler;
mod stats;
mod tasks;
mod workload;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use store::{EtcdStore, SqliteStore, StoreOptions};
use test_support::etcd::EtcdCluster;

pub use apiserver::{run_apiserver_bench, ApiBenchConfig, ApiReport};
pub use deployment::{run_deployment_bench, DeploymentBenchConfig, DeploymentReport};
pub use idle::{run_idle_bench, IdleBenchConfig, IdleReport};
pub use kubelet::{run_kubelet_bench, KubeletBenchConfig, KubeletReport};
pub use patch::{run_patch_bench, PatchBenchConfig, PatchReport};
pub use report::{
    BackendResults, StoreReport, GOAL_COMPACTION_STALL, GOAL_CONCURRENT_WRITES_PER_SEC,
    GOAL_WATCH_P99,
};
pub use scheduler::{run_scheduler_bench, SchedulerBenchConfig, SchedulerReport};
pub use stats::{median, percentile};

/// Concurrent tasks doing point reads.
pub const READERS: usize = 16;
/// How many times the full range is timed; the median is reported.
pub const RANGE_RUNS: usize = 5;
/// How long the compaction phase keeps writing after `compact()` returns; the
/// embedded store deletes rows in steps after it has recorded the compaction.
pub const COMPACTION_TAIL: Duration = Duration::from_secs(3);
/// Revisions of churn the compaction phase creates before compacting.
pub const CHURN_REVISIONS: usize = 40_000;
/// The watch phase's writer does one put per this interval.
pub const WATCH_PACE: Duration = Duration::from_millis(2);

/// The workload of [`run_store_bench`].
#[derive(Clone, Debug)]
pub struct StoreBenchConfig {
    /// Creates of distinct keys from one task, one at a time.
    pub serial_writes: usize,
    /// Creates of distinct keys from [`StoreBenchConfig::writers`] tasks, in total.
    pub concurrent_writes: usize,
    /// Concurrent writer tasks for the concurrent-writes phase.
    pub writers: usize,
    /// Point reads of random existing keys, from [`READERS`] tasks in total.
    pub reads: usize,
    /// Keys under the prefix read by the range phase.
    pub range_keys: usize,
    /// Watches open on one prefix during the watch phase.
    pub watchers: usize,
    /// Puts the watch phase's writer does, one every [`WATCH_PACE`].
    pub watch_events: usize,
    /// Bytes in every value written (about the size of a Kubernetes object).
    pub value_bytes: usize,
    /// Directory for the SQLite file's temporary directory; the system temporary
    /// directory if `None`.
    pub work_dir: Option<PathBuf>,
}

impl Default for StoreBenchConfig {
    /// Sized to finish in well under two minutes on a two-core machine.
    fn default() -> Self {
        StoreBenchConfig {
            serial_writes: 3_000,
            concurrent_writes: 30_000,
            writers: 64,
            reads: 100_000,
            range_keys: 10_000,
            watchers: 100,
            watch_events: 2_500,
            value_bytes: 1024,
            work_dir: None,
        }
    }
}

impl StoreBenchConfig {
    fn validate(&self) -> anyhow::Result<()> {
        let positive = [
            ("serial_writes", self.serial_writes),
            ("concurrent_writes", self.concurrent_writes),
            ("writers", self.writers),
            ("reads", self.reads),
            ("range_keys", self.range_keys),
            ("watchers", self.watchers),
            ("watch_events", self.watch_events),
            ("value_bytes", self.value_bytes),
        ];
        for (name, v) in positive {
            anyhow::ensure!(v > 0, "{name} must be positive");
        }
        anyhow::ensure!(
            self.value_bytes <= store::MAX_VALUE_BYTES,
            "value_bytes {} exceeds the store's limit of {}",
            self.value_bytes,
            store::MAX_VALUE_BYTES
        );
        Ok(())
    }
}

/// Run the workload against a fresh embedded store, then against a fresh local
/// etcd, and compare. Fails if either backend fails or misbehaves (for example a
/// watcher that misses or repeats an event).
pub async fn run_store_bench(cfg: &StoreBenchConfig) -> anyhow::Result<StoreReport> {
    cfg.validate()?;
    let opts = StoreOptions {
        compaction_interval: None,
        ..StoreOptions::default()
    };

    let dir = {
        let mut b = tempfile::Builder::new();
        b.prefix("wharf-bench-");
        match &cfg.work_dir {
            Some(d) => {
                std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
                b.tempdir_in(d)
            }
            None => b.tempdir(),
        }
        .context("creating a temporary directory for the embedded store")?
    };
    let path = dir.path().join("store.db");
    eprintln!("[bench] embedded (sqlite): opening {}", path.display());
    let sqlite = Arc::new(
        SqliteStore::open(&path, opts.clone())
            .await
            .context("opening the embedded store")?,
    );
    let embedded = workload::run(sqlite.clone(), cfg, "embedded")
        .await
        .context("embedded (sqlite) run")?;
    sqlite.close().await;
    drop(sqlite);
    drop(dir);

    eprintln!("[bench] etcd: starting a single-member cluster");
    let cluster = tokio::task::spawn_blocking(|| EtcdCluster::start(1))
        .await
        .context("etcd start task")?
        .context("starting etcd")?;
    let endpoints = cluster.endpoints();
    eprintln!("[bench] etcd: connecting to {}", endpoints.join(","));
    let etcd_store = Arc::new(
        EtcdStore::connect(&endpoints, opts)
            .await
            .context("connecting to etcd")?,
    );
    let etcd = workload::run(etcd_store.clone(), cfg, "etcd")
        .await
        .context("etcd run")?;
    drop(etcd_store);
    // Kills the member by PID and removes its data directory.
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .context("stopping etcd")?;

    Ok(StoreReport {
        config: cfg.clone(),
        embedded,
        etcd,
    })
}
