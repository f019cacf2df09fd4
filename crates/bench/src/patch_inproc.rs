//! `wharf bench patch --in-process`: the API server's write path alone,
//! without HTTP, TLS or a client process. The same Deployment and patches
//! as the HTTPS phases on one Deployment, sent by `clients` tasks straight
//! to a [`Registry`] on a fresh embedded store in this process.
//!
//! Writers of one key take turns, so the rate here is the inverse of one
//! turn (merge, managedFields, defaulting, validation, encoding) plus what
//! cannot overlap it; the CPU time per patch is the whole process's
//! (including the store's commits). It is the figure to watch when making
//! a turn cheaper: unlike the HTTPS phases it is not shared with a client
//! process, and under `valgrind --tool=callgrind` its instruction counts
//! per function repeat from run to run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use apiserver::registry::{PatchType, Registry, WriteOptions};
use apiserver::route::ResourcePath;
use serde_json::json;

use super::bodies::{
    apply_manager, deployment_json, deployment_name, expected_in_response, patch_body,
    SETUP_MANAGER, SMP_MANAGER,
};
use super::{ms, PatchKind, Target, PATCH_NAMESPACE, WARMUP_PER_CLIENT};
use crate::apiserver::process_cpu;
use crate::stats::{percentile, rate};
use crate::tasks::join_all;

/// One phase's figures.
#[derive(Debug)]
pub struct InProcessPhase {
    pub kind: PatchKind,
    pub patches: usize,
    pub per_sec: f64,
    pub p50: Duration,
    pub p90: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// CPU time of the whole process per patch, if /proc could tell.
    pub cpu_per_patch: Option<Duration>,
}

/// Both phases, strategic merge first.
#[derive(Debug)]
pub struct InProcessReport {
    pub clients: usize,
    pub phases: Vec<InProcessPhase>,
}

impl std::fmt::Display for InProcessReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "In-process patches of one Deployment ({} writers, no HTTP):",
            self.clients
        )?;
        writeln!(
            f,
            "{:<6} {:>9} {:>10} {:>10} {:>10} {:>10} {:>10} {:>14}",
            "kind", "patches", "per sec", "p50 ms", "p90 ms", "p99 ms", "max ms", "CPU us/patch"
        )?;
        for p in &self.phases {
            writeln!(
                f,
                "{:<6} {:>9} {:>10.0} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>14}",
                p.kind.to_string(),
                p.patches,
                p.per_sec,
                ms(p.p50),
                ms(p.p90),
                ms(p.p99),
                ms(p.max),
                p.cpu_per_patch
                    .map_or_else(|| "?".into(), |d| format!("{:.0}", d.as_secs_f64() * 1e6)),
            )?;
        }
        Ok(())
    }
}

fn deployments(name: Option<&str>) -> Result<ResourcePath> {
    Ok(ResourcePath {
        info: apiserver::resources::lookup("apps", "v1", "deployments")
            .context("deployments are served")?,
        namespace: Some(PATCH_NAMESPACE.into()),
        name: name.map(str::to_string),
        subresource: None,
    })
}

fn options(manager: String) -> WriteOptions {
    WriteOptions {
        field_manager: Some(manager),
        ..WriteOptions::default()
    }
}

/// Patch `i` of client `t`: sent, and its answer checked to hold the change.
async fn send(reg: &Registry, kind: PatchKind, name: &str, t: usize, i: usize) -> Result<()> {
    let (pt, manager) = match kind {
        PatchKind::Strategic => (PatchType::Strategic, SMP_MANAGER.to_string()),
        PatchKind::Apply => (PatchType::Apply { force: true }, apply_manager(t)),
    };
    let body = patch_body(kind, name, t, i);
    let w = reg
        .patch(&deployments(Some(name))?, pt, &body, &options(manager))
        .await
        .map_err(|e| anyhow::anyhow!("patch {i} of client {t}: {} {}", e.code, e.message))?;
    // What the handler would answer: the encoding made in the turn, or the object.
    let answer = match w.raw {
        Some(raw) => raw.to_vec(),
        None => serde_json::to_vec(&*w.object.value())?,
    };
    let answer = std::str::from_utf8(&answer).context("the answer is not UTF-8")?;
    for want in expected_in_response(t, i) {
        ensure!(
            answer.contains(want.as_str()),
            "patch {i} of client {t}: no {want} in the answer"
        );
    }
    Ok(())
}

async fn phase(
    reg: &Arc<Registry>,
    kind: PatchKind,
    requests: usize,
    clients: usize,
) -> Result<InProcessPhase> {
    let name = deployment_name(kind, Target::Shared, 0);
    let mut created: serde_json::Value = serde_json::from_slice(&deployment_json(&name))?;
    created["metadata"]["namespace"] = json!(PATCH_NAMESPACE);
    reg.create(&deployments(None)?, created, &options(SETUP_MANAGER.into()))
        .await
        .map_err(|e| anyhow::anyhow!("creating {name}: {}", e.message))?;
    for t in 0..clients {
        for i in 0..WARMUP_PER_CLIENT {
            send(reg, kind, &name, t, i).await?;
        }
    }
    let cpu_before = process_cpu("self");
    let start = Instant::now();
    let handles = (0..clients)
        .map(|t| {
            let reg = reg.clone();
            let name = name.clone();
            // Client t sends patches t, t + clients, ... of the phase.
            let mine = (t..requests).step_by(clients).count();
            tokio::spawn(async move {
                let mut took = Vec::with_capacity(mine);
                for i in 0..mine {
                    let at = Instant::now();
                    send(&reg, kind, &name, t, WARMUP_PER_CLIENT + i).await?;
                    took.push(at.elapsed());
                }
                Ok(took)
            })
        })
        .collect();
    let mut took: Vec<Duration> = join_all(handles).await?.into_iter().flatten().collect();
    let wall = start.elapsed();
    let cpu = process_cpu("self")
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before) / requests as u32);
    took.sort_unstable();
    let at = |p: f64| percentile(&took, p).unwrap_or_default();
    Ok(InProcessPhase {
        kind,
        patches: requests,
        per_sec: rate(requests, wall),
        p50: at(50.0),
        p90: at(90.0),
        p99: at(99.0),
        max: took.last().copied().unwrap_or_default(),
        cpu_per_patch: cpu,
    })
}

/// Run the strategic-merge and apply phases on one Deployment each, in a
/// registry on a fresh embedded store under `cfg.work_dir`.
pub async fn run_in_process(cfg: &super::PatchBenchConfig) -> Result<InProcessReport> {
    cfg.validate()?;
    let mut b = tempfile::Builder::new();
    b.prefix("wharf-patchturn-");
    let dir = match &cfg.work_dir {
        Some(d) => b.tempdir_in(d),
        None => b.tempdir(),
    }
    .context("creating the store's directory")?;
    let store: Arc<dyn store::Store> = Arc::new(
        store::SqliteStore::open(dir.path().join("store.db"), store::StoreOptions::default())
            .await
            .context("opening the embedded store")?,
    );
    let cache = apiserver::cache::WatchCache::start(store.clone()).await?;
    let services = apiserver::alloc::ServiceAllocator::new(store.clone(), "10.43.0.0/16")
        .map_err(anyhow::Error::msg)?;
    let reg = Arc::new(Registry::new(store, cache, services));
    let namespaces = ResourcePath {
        info: apiserver::resources::lookup("", "v1", "namespaces")
            .context("namespaces are served")?,
        namespace: None,
        name: None,
        subresource: None,
    };
    reg.create(
        &namespaces,
        json!({"metadata": {"name": PATCH_NAMESPACE}}),
        &WriteOptions::default(),
    )
    .await
    .map_err(|e| anyhow::anyhow!("creating the namespace: {}", e.message))?;
    let clients = cfg.tasks();
    let mut phases = Vec::new();
    for kind in [PatchKind::Strategic, PatchKind::Apply] {
        eprintln!(
            "[bench] patch in process: {kind}, {} patches from {clients} tasks ...",
            cfg.requests
        );
        phases.push(phase(&reg, kind, cfg.requests, clients).await?);
    }
    Ok(InProcessReport { clients, phases })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A short run: every answer holds its patch (checked in `send`), and
    /// both phases report.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn both_phases_patch_one_deployment() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = super::super::PatchBenchConfig {
            requests: 48,
            clients: 4,
            work_dir: Some(dir.path().to_path_buf()),
        };
        let report = run_in_process(&cfg).await.unwrap();
        let kinds: Vec<PatchKind> = report.phases.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, [PatchKind::Strategic, PatchKind::Apply]);
        for p in &report.phases {
            assert_eq!(p.patches, 48);
            assert!(p.per_sec > 0.0 && p.p50 <= p.p99 && p.p99 <= p.max, "{p:?}");
        }
        assert!(report.to_string().contains("SSA"));
    }
}
