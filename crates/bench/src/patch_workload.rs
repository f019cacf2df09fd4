//! The phases of the patch benchmark.
//!
//! As in the API server benchmark, every request goes through one
//! `kube::Client` whose pool opens a connection per request in flight, so
//! `clients` tasks keep `clients` HTTPS connections busy. Patch bodies are
//! serialized before the clock starts; a response is timed to its last byte
//! and checked afterwards (status 200, and the object it returns holds the
//! change the patch made).

use std::collections::BTreeMap;
use std::fmt;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use bytes::Bytes;
use http::StatusCode;
use kube::Client;
use serde_json::Value;

use super::bodies::{
    apply_manager, client_key, deployment_json, deployment_name, deployments_path,
    expected_in_response, image, patch_body, patch_request, patch_uri, REVISION_ANNOTATION,
    REVISION_ENV, SETUP_MANAGER, SMP_MANAGER,
};
use super::report::{PatchReport, PhaseResults};
use super::{ms, PatchBenchConfig, PatchKind, Target, PATCH_NAMESPACE, WARMUP_PER_CLIENT};
use crate::apiserver::{
    call, contains, create_namespace, excerpt, get, p50_p99, post, timed_tasks, CpuMeter, Server,
};
use crate::stats::rate;
use crate::tasks::join_all;

/// Error messages kept per client task.
const ERRORS_KEPT: usize = 3;

/// The phases, in order.
const PHASES: [(PatchKind, Target); 4] = [
    (PatchKind::Strategic, Target::Shared),
    (PatchKind::Apply, Target::Shared),
    (PatchKind::Strategic, Target::PerClient),
    (PatchKind::Apply, Target::PerClient),
];

pub(crate) async fn run(
    client: &Client,
    cfg: &PatchBenchConfig,
    server: &mut Server,
) -> Result<PatchReport> {
    let name = "[bench] patch";
    let meter = server.cpu_meter();
    let (rss_start_kib, _) = server.memory_kib()?;
    create_namespace(client, PATCH_NAMESPACE).await?;

    let mut phases = Vec::with_capacity(PHASES.len());
    for (kind, target) in PHASES {
        eprintln!(
            "{name}: {kind} to {}: {} patches from {} clients ...",
            match target {
                Target::Shared => "one Deployment",
                Target::PerClient => "one Deployment per client",
            },
            cfg.requests,
            cfg.tasks()
        );
        let r = phase(client, cfg, kind, target, meter).await?;
        eprintln!(
            "{name}:   {:.0} patches/s ({:.2} s), p50 {:.3} / p99 {:.3} / max {:.3} ms; {} failed \
             (+{} of the warm-up), {} final-state mismatches; {} bytes per patch, {} bytes of object after, {} managedFields entries",
            r.per_sec,
            r.took.as_secs_f64(),
            ms(r.p50),
            ms(r.p99),
            ms(r.max),
            r.failed,
            r.warmup_failed,
            r.mismatches.len(),
            r.patch_bytes,
            r.object_bytes,
            r.managed_fields.map_or_else(|| "?".into(), |n| n.to_string()),
        );
        for (class, n) in &r.failures {
            eprintln!("{name}:   ! {n} x {class}");
        }
        for e in r.errors.iter().chain(&r.mismatches).take(5) {
            eprintln!("{name}:   ! {e}");
        }
        phases.push(r);
    }
    let (rss_end_kib, hwm_end_kib) = server.memory_kib()?;
    let [smp, ssa, smp_spread, ssa_spread]: [PhaseResults; 4] = phases
        .try_into()
        .map_err(|_| anyhow::anyhow!("expected four phases"))?;
    Ok(PatchReport {
        config: cfg.clone(),
        deployment_bytes: deployment_json("patch-smp").len(),
        smp,
        ssa,
        smp_spread,
        ssa_spread,
        rss_start_kib,
        rss_end_kib,
        hwm_end_kib,
    })
}

/// Why a patch failed.
#[derive(Debug, PartialEq)]
struct Failure {
    /// What failures are counted by: `HTTP 409 Conflict`, `request error`, ...
    class: String,
    /// What the server (its Status message) or the client said.
    detail: String,
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.class, self.detail)
    }
}

/// `Ok` if a patch's response is a 200 holding the change it made.
fn check_response(res: Result<(StatusCode, Bytes)>, t: usize, i: usize) -> Result<(), Failure> {
    let (status, body) = res.map_err(|e| Failure {
        class: "request error".into(),
        detail: format!("{e:#}"),
    })?;
    if status != StatusCode::OK {
        return Err(Failure {
            class: format!("HTTP {status}"),
            detail: status_message(&body),
        });
    }
    for needle in expected_in_response(t, i) {
        if !contains(&body, needle.as_bytes()) {
            return Err(Failure {
                class: "HTTP 200 without the change".into(),
                detail: format!("no {needle} in {}", excerpt(&body)),
            });
        }
    }
    Ok(())
}

/// The `message` of a metav1.Status body, else the body's start.
fn status_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| excerpt(body))
}

// ---------------------------------------------------------------------------
// A phase

/// What one client task did in a phase's timed part.
#[derive(Debug, Default)]
struct ClientRun {
    /// Latency of every patch that succeeded.
    latencies: Vec<Duration>,
    /// Patches that failed (any error, status or response without the change).
    failed: usize,
    /// Failures by class, warm-up included.
    classes: BTreeMap<String, usize>,
    /// The first few failures, warm-up included.
    errors: Vec<String>,
    /// The index of the client's last patch.
    last: usize,
    /// Untimed warm-up patches that failed.
    warmup_failed: usize,
}

impl ClientRun {
    /// Count a failure of the patch `what`, keeping the first few in full.
    fn record(&mut self, what: String, failure: Failure) {
        if self.errors.len() < ERRORS_KEPT {
            self.errors.push(format!("{what}: {failure}"));
        }
        *self.classes.entry(failure.class).or_insert(0) += 1;
    }
}

/// Create the phase's Deployments, send [`WARMUP_PER_CLIENT`] untimed patches
/// from every client, then time `cfg.requests` patches spread over the
/// clients, and read every Deployment back to check for lost updates.
async fn phase(
    client: &Client,
    cfg: &PatchBenchConfig,
    kind: PatchKind,
    target: Target,
    meter: CpuMeter,
) -> Result<PhaseResults> {
    let tasks = cfg.tasks();
    let object_of = |t: usize| match target {
        Target::Shared => 0,
        Target::PerClient => t,
    };
    let names: Vec<String> = match target {
        Target::Shared => vec![deployment_name(kind, target, 0)],
        Target::PerClient => (0..tasks)
            .map(|t| deployment_name(kind, target, t))
            .collect(),
    };
    let path = deployments_path();
    for name in &names {
        let uri = format!("{path}?fieldManager={SETUP_MANAGER}");
        let (status, body) = call(client, post(&uri, deployment_json(name)))
            .await
            .with_context(|| format!("creating Deployment {name}"))?;
        ensure!(
            status == StatusCode::CREATED,
            "creating Deployment {name}: HTTP {status}: {}",
            excerpt(&body)
        );
    }

    // Failures here are counted like the timed ones (the server may refuse
    // a contended update), not fatal.
    let warmups = (0..tasks)
        .map(|t| {
            let client = client.clone();
            let name = names[object_of(t)].clone();
            tokio::spawn(async move {
                let uri = patch_uri(kind, &name, t);
                let mut run = ClientRun::default();
                for i in 0..WARMUP_PER_CLIENT {
                    let req = patch_request(kind, &uri, patch_body(kind, &name, t, i));
                    if let Err(e) = check_response(call(&client, req).await, t, i) {
                        run.warmup_failed += 1;
                        run.record(format!("client {t}, warm-up patch {i}"), e);
                    }
                }
                Ok(run)
            })
        })
        .collect();
    let mut warmup_runs: Vec<ClientRun> = join_all(warmups).await?;

    let mut body_bytes = 0;
    let (runs, took, cpu) = timed_tasks(tasks, meter, |t| {
        let n = cfg.requests / tasks + usize::from(t < cfg.requests % tasks);
        let name = &names[object_of(t)];
        let uri = patch_uri(kind, name, t);
        let bodies: Vec<(usize, Vec<u8>)> = (WARMUP_PER_CLIENT..WARMUP_PER_CLIENT + n)
            .map(|i| (i, patch_body(kind, name, t, i)))
            .collect();
        body_bytes += bodies.iter().map(|(_, b)| b.len()).sum::<usize>();
        let client = client.clone();
        let mut run = std::mem::take(&mut warmup_runs[t]);
        run.latencies.reserve(bodies.len());
        async move {
            for (i, body) in bodies {
                let start = Instant::now();
                let res = call(&client, patch_request(kind, &uri, body)).await;
                let took = start.elapsed();
                match check_response(res, t, i) {
                    Ok(()) => run.latencies.push(took),
                    Err(e) => {
                        run.failed += 1;
                        run.record(format!("client {t}, patch {i}"), e);
                    }
                }
                run.last = i;
            }
            Ok(run)
        }
    })
    .await?;

    let mut mismatches = Vec::new();
    let mut object_bytes = 0;
    let mut managed_fields = None;
    for (o, name) in names.iter().enumerate() {
        let uri = format!("{path}/{name}");
        let (status, body) = call(client, get(&uri))
            .await
            .with_context(|| format!("reading Deployment {name} back"))?;
        ensure!(
            status == StatusCode::OK,
            "reading Deployment {name} back: HTTP {status}: {}",
            excerpt(&body)
        );
        let obj: Value =
            serde_json::from_slice(&body).with_context(|| format!("parsing Deployment {name}"))?;
        object_bytes = object_bytes.max(body.len());
        if o == 0 {
            managed_fields = obj["metadata"]["managedFields"].as_array().map(Vec::len);
        }
        let clients: Vec<(usize, &ClientRun)> = (0..tasks)
            .filter(|&t| object_of(t) == o)
            .map(|t| (t, &runs[t]))
            .collect();
        mismatches.extend(check_final(kind, name, &obj, &clients));
    }

    let failed = runs.iter().map(|r| r.failed).sum();
    let warmup_failed = runs.iter().map(|r| r.warmup_failed).sum();
    let errors = runs
        .iter()
        .flat_map(|r| r.errors.iter().cloned())
        .take(ERRORS_KEPT)
        .collect();
    let mut classes = BTreeMap::new();
    for (class, n) in runs.iter().flat_map(|r| &r.classes) {
        *classes.entry(class.clone()).or_insert(0) += n;
    }
    let mut failures: Vec<(String, usize)> = classes.into_iter().collect();
    failures.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let latencies: Vec<Duration> = runs
        .iter()
        .flat_map(|r| r.latencies.iter().copied())
        .collect();
    let ok = latencies.len();
    let max = latencies.iter().max().copied().unwrap_or_default();
    let (p50, p99) = p50_p99(latencies);
    Ok(PhaseResults {
        kind,
        target,
        clients: tasks,
        objects: names.len(),
        requests: cfg.requests,
        ok,
        failed,
        warmups: tasks * WARMUP_PER_CLIENT,
        warmup_failed,
        failures,
        errors,
        mismatches,
        per_sec: rate(ok, took),
        p50,
        p99,
        max,
        took,
        cpu,
        patch_bytes: body_bytes / cfg.requests,
        object_bytes,
        managed_fields,
    })
}

/// What is wrong with the Deployment `name` as read back after a phase, given
/// the runs of the clients that patched it (warm-up patches not included);
/// one message per problem.
fn check_final(
    kind: PatchKind,
    name: &str,
    obj: &Value,
    clients: &[(usize, &ClientRun)],
) -> Vec<String> {
    let mut out = Vec::new();
    let meta = &obj["metadata"];
    // Every patch changed the annotations and the pod template, so each one
    // that succeeded bumped the generation by exactly one. A failed request
    // may or may not have been applied, so only then is the count exact.
    if clients
        .iter()
        .all(|(_, r)| r.failed == 0 && r.warmup_failed == 0)
    {
        let patches: usize = clients
            .iter()
            .map(|(_, r)| WARMUP_PER_CLIENT + r.latencies.len())
            .sum();
        let want = 1 + patches as i64;
        let got = meta["generation"].as_i64();
        if got != Some(want) {
            out.push(format!(
                "{name}: generation {got:?}, expected {want} (1 + {patches} patches): an update was lost"
            ));
        }
    }
    for (t, run) in clients {
        let key = client_key(*t);
        // A client's own annotation is written by no one else, so it holds
        // the client's last patch, unless that one failed.
        if run.failed == 0 && run.warmup_failed == 0 {
            let want = run.last.to_string();
            let got = meta["annotations"][&key].as_str();
            if got != Some(want.as_str()) {
                out.push(format!(
                    "{name}: annotation {key} is {got:?}, expected {want:?} (client {t}'s last patch)"
                ));
            }
        }
        if kind == PatchKind::Apply {
            let manager = apply_manager(*t);
            if !has_manager(obj, &manager, "Apply") {
                out.push(format!(
                    "{name}: no Apply entry for field manager {manager} in managedFields"
                ));
            }
            let want = format!("c{t:02}");
            if meta["labels"][&key].as_str() != Some(want.as_str()) {
                out.push(format!("{name}: label {key} is not {want:?}"));
            }
        }
    }
    if kind == PatchKind::Strategic && !has_manager(obj, SMP_MANAGER, "Update") {
        out.push(format!(
            "{name}: no Update entry for field manager {SMP_MANAGER} in managedFields"
        ));
    }
    // One patch set the shared revision everywhere at once, so the three
    // places must agree.
    let rev = meta["annotations"][REVISION_ANNOTATION]
        .as_str()
        .unwrap_or_default();
    let web = obj["spec"]["template"]["spec"]["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == "web"));
    let env = web
        .and_then(|c| c["env"].as_array())
        .and_then(|env| env.iter().find(|e| e["name"] == REVISION_ENV))
        .and_then(|e| e["value"].as_str());
    let img = web.and_then(|c| c["image"].as_str());
    if env != Some(rev) || img != Some(image(rev).as_str()) {
        out.push(format!(
            "{name}: the shared fields come from different patches: annotation {rev:?}, \
             env {env:?}, image {img:?}"
        ));
    }
    out
}

fn has_manager(obj: &Value, manager: &str, operation: &str) -> bool {
    obj["metadata"]["managedFields"]
        .as_array()
        .is_some_and(|entries| {
            entries
                .iter()
                .any(|e| e["manager"] == manager && e["operation"] == operation)
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::bodies::revision;
    use super::*;

    /// A Deployment as the server would return it after `patches` patches,
    /// the last of `t` being patch `i`.
    fn patched(kind: PatchKind, generation: i64, last: &[(usize, usize)]) -> Value {
        let mut v: Value = serde_json::from_slice(&deployment_json("d")).unwrap();
        v["metadata"]["generation"] = json!(generation);
        let mut managed = vec![json!({"manager": SETUP_MANAGER, "operation": "Update"})];
        if kind == PatchKind::Strategic {
            managed.push(json!({"manager": SMP_MANAGER, "operation": "Update"}));
        }
        for &(t, i) in last {
            let patch: Value = serde_json::from_slice(&patch_body(kind, "d", t, i)).unwrap();
            for (k, val) in patch["metadata"]["annotations"].as_object().unwrap() {
                v["metadata"]["annotations"][k] = val.clone();
            }
            if kind == PatchKind::Apply {
                v["metadata"]["labels"][client_key(t)] = json!(format!("c{t:02}"));
                managed.push(json!({"manager": apply_manager(t), "operation": "Apply"}));
            }
            let rev = revision(t, i);
            let web = &mut v["spec"]["template"]["spec"]["containers"][0];
            web["image"] = json!(image(&rev));
            let env = web["env"].as_array_mut().unwrap();
            env.last_mut().unwrap()["value"] = json!(rev);
        }
        v["metadata"]["managedFields"] = json!(managed);
        v
    }

    fn run(last: usize, ok: usize, failed: usize) -> ClientRun {
        ClientRun {
            latencies: vec![Duration::from_millis(1); ok],
            failed,
            last,
            ..ClientRun::default()
        }
    }

    #[test]
    fn final_state_checks() {
        let w = WARMUP_PER_CLIENT;
        let (a, b) = (run(w + 9, 10, 0), run(w + 9, 10, 0));
        let clients = [(0, &a), (1, &b)];
        let gen = 1 + 2 * (w + 10) as i64;
        for kind in [PatchKind::Strategic, PatchKind::Apply] {
            let good = patched(kind, gen, &[(0, w + 9), (1, w + 9)]);
            assert_eq!(
                check_final(kind, "d", &good, &clients),
                Vec::<String>::new()
            );

            // One update lost: the generation is one short.
            let lost = patched(kind, gen - 1, &[(0, w + 9), (1, w + 9)]);
            let msgs = check_final(kind, "d", &lost, &clients);
            assert_eq!(msgs.len(), 1, "{msgs:?}");
            assert!(msgs[0].contains("an update was lost"), "{msgs:?}");

            // Client 1's last patch is not there.
            let stale = patched(kind, gen, &[(0, w + 9), (1, w + 8)]);
            let msgs = check_final(kind, "d", &stale, &clients);
            assert_eq!(msgs.len(), 1, "{msgs:?}");
            assert!(msgs[0].contains("client-01 is Some(\"13\")"), "{msgs:?}");
        }

        // After a failure the counts are not exact, so only the clients
        // without failures are checked.
        let c = run(w + 9, 9, 1);
        let with_failure = [(0, &a), (1, &c)];
        let odd = patched(PatchKind::Apply, 5, &[(0, w + 9), (1, w + 3)]);
        assert_eq!(
            check_final(PatchKind::Apply, "d", &odd, &with_failure),
            Vec::<String>::new()
        );

        // A failed warm-up patch makes the generation uncertain too.
        let mut d = run(w + 9, 10, 0);
        d.warmup_failed = 1;
        let short = patched(PatchKind::Strategic, gen - 1, &[(0, w + 9), (1, w + 2)]);
        assert_eq!(
            check_final(PatchKind::Strategic, "d", &short, &[(0, &a), (1, &d)]),
            Vec::<String>::new()
        );

        // Shared fields from two different patches; a manager missing.
        let mut torn = patched(PatchKind::Apply, gen, &[(0, w + 9), (1, w + 9)]);
        torn["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image("c00-1"));
        torn["metadata"]["managedFields"]
            .as_array_mut()
            .unwrap()
            .pop();
        let msgs = check_final(PatchKind::Apply, "d", &torn, &clients);
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert!(msgs.iter().any(|m| m.contains("field manager bench-01")));
        assert!(msgs.iter().any(|m| m.contains("different patches")));
    }

    fn err_of(code: u16) -> Failure {
        Failure {
            class: format!("HTTP {}", StatusCode::from_u16(code).unwrap()),
            detail: "x".into(),
        }
    }

    #[test]
    fn responses_must_be_200_with_the_change() {
        let obj = patched(PatchKind::Strategic, 2, &[(4, 9)]);
        let body = Bytes::from(serde_json::to_vec(&obj).unwrap());
        assert_eq!(
            check_response(Ok((StatusCode::OK, body.clone())), 4, 9),
            Ok(())
        );
        let err = check_response(Ok((StatusCode::OK, body.clone())), 4, 10).unwrap_err();
        assert_eq!(err.class, "HTTP 200 without the change");
        assert!(
            err.detail
                .starts_with("no \"bench.wharf.dev/client-04\":\"10\" in {"),
            "{err}"
        );
        let err = check_response(Ok((StatusCode::CREATED, body)), 4, 9).unwrap_err();
        assert_eq!(err.class, "HTTP 201 Created");
        let status = Bytes::from_static(
            br#"{"kind":"Status","code":409,"reason":"Conflict","message":"too busy"}"#,
        );
        let err = check_response(Ok((StatusCode::CONFLICT, status)), 4, 9).unwrap_err();
        assert_eq!(err.to_string(), "HTTP 409 Conflict: too busy");
        let err = check_response(Err(anyhow::anyhow!("connection reset")), 4, 9).unwrap_err();
        assert_eq!(err.class, "request error");
        assert_eq!(err.detail, "connection reset");

        let mut run = ClientRun::default();
        for i in 0..5 {
            run.record(format!("patch {i}"), err_of(409));
        }
        run.record("patch 5".into(), err_of(500));
        assert_eq!(run.errors.len(), ERRORS_KEPT);
        assert_eq!(run.errors[0], "patch 0: HTTP 409 Conflict: x");
        assert_eq!(run.classes["HTTP 409 Conflict"], 5);
        assert_eq!(run.classes["HTTP 500 Internal Server Error"], 1);
    }
}
