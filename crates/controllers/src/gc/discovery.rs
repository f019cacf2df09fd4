//! Which resources the collector watches, and where an owner reference
//! points, from API discovery (upstream's `GetDeletableResources` and REST
//! mapper).
//!
//! Discovery runs every 30 s, and sooner when a worker meets a kind it
//! cannot map (a custom resource defined since the last run). When the set
//! of watched resources changes, the workers pause until every new monitor
//! has listed its resource, so no decision is taken on a partial graph;
//! unlike upstream, a monitor that cannot list within a period no longer
//! holds the whole collector back.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::discovery::{verbs, ApiCapabilities, ApiResource, Discovery, Scope};
use kube::runtime::watcher::{self, watcher};
use kube::runtime::WatchStreamExt;
use kube::Client;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::OwnedRwLockWriteGuard;
use tokio::time::Instant;

use super::graph::{Meta, Resource};
use super::{Change, Ctx};

/// How often discovery runs (upstream's GC resync period).
pub const PERIOD: Duration = Duration::from_secs(30);
/// The shortest gap between two runs asked for by workers.
const MIN_GAP: Duration = Duration::from_secs(1);
/// Retry delay while discovery has never succeeded.
const FIRST_RETRY: Duration = Duration::from_secs(1);

/// Resources upstream's collector never watches.
fn ignored(group: &str, plural: &str) -> bool {
    plural == "events" && (group.is_empty() || group == "events.k8s.io")
}

/// Split an `apiVersion` into group and version.
pub fn parse_api_version(api_version: &str) -> Option<(&str, &str)> {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    (!version.is_empty() && !version.contains('/')).then_some((group, version))
}

/// Maps owner references' `apiVersion` and `kind` to resources.
#[derive(Default)]
pub struct Mapper {
    by_gvk: HashMap<(String, String, String), Arc<Resource>>,
    /// The preferred version of each group and kind: used when a reference
    /// names a version no longer served, since the object is the same.
    by_gk: HashMap<(String, String), Arc<Resource>>,
}

impl Mapper {
    /// The resource `api_version` and `kind` name.
    pub fn resolve(&self, api_version: &str, kind: &str) -> Option<Arc<Resource>> {
        let (group, version) = parse_api_version(api_version)?;
        self.by_gvk
            .get(&(group.to_string(), version.to_string(), kind.to_string()))
            .or_else(|| self.by_gk.get(&(group.to_string(), kind.to_string())))
            .cloned()
    }
}

/// One group as discovery reports it: its versions, preferred first, each
/// with its resources.
pub type Group = Vec<(String, Vec<(ApiResource, ApiCapabilities)>)>;

/// What one discovery run found.
pub struct Found {
    pub mapper: Mapper,
    /// The resources to watch, by [`Resource::key`].
    pub watched: BTreeMap<String, Arc<Resource>>,
}

/// Build the mapper and the watch list: every resource that can be
/// listed, watched and deleted, each at its group's preferred version
/// (or the first version serving it).
pub fn build(groups: impl IntoIterator<Item = Group>) -> Found {
    let mut mapper = Mapper::default();
    let mut watched = BTreeMap::new();
    for group in groups {
        let mut taken = HashSet::new();
        for (_, resources) in group {
            for (ar, caps) in resources {
                let res = Arc::new(Resource {
                    namespaced: caps.scope == Scope::Namespaced,
                    ar,
                });
                let ar = &res.ar;
                mapper
                    .by_gvk
                    .entry((ar.group.clone(), ar.version.clone(), ar.kind.clone()))
                    .or_insert_with(|| res.clone());
                mapper
                    .by_gk
                    .entry((ar.group.clone(), ar.kind.clone()))
                    .or_insert_with(|| res.clone());
                if !taken.insert(ar.plural.clone()) {
                    continue;
                }
                let deletable = [verbs::LIST, verbs::WATCH, verbs::DELETE]
                    .iter()
                    .all(|v| caps.supports_operation(v));
                if deletable && !ignored(&ar.group, &ar.plural) {
                    watched.insert(res.key(), res.clone());
                }
            }
        }
    }
    Found { mapper, watched }
}

fn groups_of(d: &Discovery) -> Vec<Group> {
    d.groups()
        .map(|g| {
            let preferred = g.preferred_version_or_latest().to_string();
            let mut versions: Vec<String> = vec![preferred.clone()];
            versions.extend(g.versions().filter(|v| *v != preferred).map(str::to_string));
            versions
                .into_iter()
                .map(|v| {
                    let rs = g.versioned_resources(&v);
                    (v, rs)
                })
                .collect()
        })
        .collect()
}

/// Running monitors, aborted when dropped.
#[derive(Default)]
struct Monitors(HashMap<String, (Arc<Resource>, tokio::task::JoinHandle<()>)>);

impl Drop for Monitors {
    fn drop(&mut self) {
        for (_, t) in self.0.values() {
            t.abort();
        }
    }
}

/// Keep the monitors in line with discovery, until the process ends.
/// `first` pauses the workers until the first full sync.
pub async fn sync(ctx: Arc<Ctx>, tx: UnboundedSender<Change>, first: OwnedRwLockWriteGuard<()>) {
    let mut first = Some(first);
    let mut monitors = Monitors::default();
    let mut last: Option<Instant> = None;
    loop {
        if let Some(t) = last {
            let period = if first.is_some() { FIRST_RETRY } else { PERIOD };
            tokio::select! {
                _ = tokio::time::sleep_until(t + period) => {}
                _ = ctx.refresh.notified() => tokio::time::sleep_until(t + MIN_GAP).await,
            }
        }
        last = Some(Instant::now());
        let found = match Discovery::new(ctx.client.clone()).run_aggregated().await {
            Ok(d) => build(groups_of(&d)),
            Err(e) => {
                tracing::warn!(error = %e, "garbage collector: discovery failed");
                continue;
            }
        };
        if found.watched.is_empty() {
            tracing::warn!("garbage collector: discovery reported no resources");
            continue;
        }
        *ctx.mapper.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(found.mapper);
        let unchanged = monitors.0.len() == found.watched.len()
            && found
                .watched
                .iter()
                .all(|(k, r)| monitors.0.get(k).is_some_and(|(m, _)| m == r));
        if unchanged && first.is_none() {
            continue;
        }
        // No worker runs while the graph is incomplete.
        let pause = match first.take() {
            Some(g) => g,
            None => ctx.pause.clone().write_owned().await,
        };
        let stale: Vec<String> = monitors
            .0
            .iter()
            .filter(|(k, (r, _))| found.watched.get(*k) != Some(r))
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            if let Some((_, t)) = monitors.0.remove(&key) {
                t.abort();
            }
            let _ = tx.send(Change::Stopped(key));
        }
        let mut started = Vec::new();
        for (key, res) in &found.watched {
            if monitors.0.contains_key(key) {
                continue;
            }
            let task = tokio::spawn(monitor(ctx.client.clone(), res.clone(), tx.clone()));
            monitors.0.insert(key.clone(), (res.clone(), task));
            started.push(key.clone());
        }
        // Only the new monitors are waited for: one that never lists would
        // otherwise pause the workers at every change.
        let deadline = Instant::now() + PERIOD;
        while !ctx.synced(&started) {
            if Instant::now() >= deadline {
                let late: Vec<&String> = started
                    .iter()
                    .filter(|k| !ctx.synced(std::slice::from_ref(k)))
                    .collect();
                tracing::warn!(resources = ?late, "garbage collector: resources not listed in time");
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        drop(pause);
        tracing::info!(
            resources = monitors.0.len(),
            started = started.len(),
            "garbage collector: monitors synced"
        );
    }
}

/// Feed one resource's metadata changes to the graph builder.
async fn monitor(client: Client, res: Arc<Resource>, tx: UnboundedSender<Change>) {
    // Metadata-only requests: the graph needs nothing else.
    let api: Api<PartialObjectMeta<DynamicObject>> = Api::all_with(client, &res.ar);
    let key = res.key();
    let mut stream = std::pin::pin!(watcher(api, watcher::Config::default()).default_backoff());
    let mut seen: Option<HashSet<String>> = None;
    let mut failing = false;
    while let Some(ev) = stream.next().await {
        let change = match ev {
            Ok(watcher::Event::Init) => {
                seen = Some(HashSet::new());
                None
            }
            Ok(watcher::Event::InitApply(o)) => Meta::from_object_meta(&o.metadata).map(|m| {
                if let Some(s) = seen.as_mut() {
                    s.insert(m.uid.clone());
                }
                Change::Upsert(res.clone(), m)
            }),
            Ok(watcher::Event::InitDone) => Some(Change::Relisted {
                key: key.clone(),
                seen: seen.take().unwrap_or_default(),
            }),
            Ok(watcher::Event::Apply(o)) => {
                Meta::from_object_meta(&o.metadata).map(|m| Change::Upsert(res.clone(), m))
            }
            Ok(watcher::Event::Delete(o)) => o.metadata.uid.map(Change::Delete),
            Err(e) => {
                if failing {
                    tracing::debug!(resource = %key, error = %e, "garbage collector watch failed");
                } else {
                    tracing::warn!(resource = %key, error = %e, "garbage collector watch failed; retrying");
                }
                failing = true;
                continue;
            }
        };
        failing = false;
        if let Some(c) = change {
            if tx.send(c).is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ar(group: &str, version: &str, kind: &str, plural: &str) -> ApiResource {
        ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: if group.is_empty() {
                version.into()
            } else {
                format!("{group}/{version}")
            },
            kind: kind.into(),
            plural: plural.into(),
        }
    }

    fn caps(namespaced: bool, ops: &[&str]) -> ApiCapabilities {
        ApiCapabilities {
            scope: if namespaced {
                Scope::Namespaced
            } else {
                Scope::Cluster
            },
            subresources: vec![],
            operations: ops.iter().map(|s| s.to_string()).collect(),
        }
    }

    const ALL: &[&str] = &["get", "list", "watch", "delete", "create"];

    fn groups() -> Vec<Group> {
        vec![
            vec![(
                "v1".into(),
                vec![
                    (ar("", "v1", "ConfigMap", "configmaps"), caps(true, ALL)),
                    (ar("", "v1", "Node", "nodes"), caps(false, ALL)),
                    (ar("", "v1", "Event", "events"), caps(true, ALL)),
                    (ar("", "v1", "Binding", "bindings"), caps(true, &["create"])),
                ],
            )],
            vec![
                (
                    "v2".into(),
                    vec![(ar("x.io", "v2", "Widget", "widgets"), caps(true, ALL))],
                ),
                (
                    "v1".into(),
                    vec![
                        (ar("x.io", "v1", "Widget", "widgets"), caps(true, ALL)),
                        (ar("x.io", "v1", "Gadget", "gadgets"), caps(false, ALL)),
                    ],
                ),
            ],
        ]
    }

    #[test]
    fn watches_deletable_resources_at_the_preferred_version() {
        let f = build(groups());
        let keys: Vec<&str> = f.watched.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            vec![
                "/v1/configmaps",
                "/v1/nodes",
                "x.io/v1/gadgets",
                "x.io/v2/widgets"
            ]
        );
        assert!(!f.watched["/v1/nodes"].namespaced);
    }

    #[test]
    fn maps_references_by_version_then_by_kind() {
        let f = build(groups());
        let m = &f.mapper;
        assert_eq!(m.resolve("x.io/v1", "Widget").unwrap().ar.version, "v1");
        assert_eq!(m.resolve("x.io/v2", "Widget").unwrap().ar.version, "v2");
        // A version no longer served: the preferred one.
        assert_eq!(m.resolve("x.io/v9", "Widget").unwrap().ar.version, "v2");
        assert_eq!(m.resolve("v1", "Binding").unwrap().ar.plural, "bindings");
        assert!(m.resolve("v1", "Widget").is_none());
        assert!(m.resolve("a/b/c", "Widget").is_none());
        assert!(m.resolve("", "ConfigMap").is_none());
    }

    #[test]
    fn api_versions_split_into_group_and_version() {
        assert_eq!(parse_api_version("v1"), Some(("", "v1")));
        assert_eq!(parse_api_version("apps/v1"), Some(("apps", "v1")));
        assert_eq!(parse_api_version("apps/"), None);
        assert_eq!(parse_api_version("a/b/c"), None);
    }
}
