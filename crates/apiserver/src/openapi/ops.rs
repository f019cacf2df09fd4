//! The paths and operations of a group-version, independent of the OpenAPI
//! version they are written in: `v3` and `v2` render the same model, so the
//! two documents always describe the same API.
//!
//! Only what the server routes is described: collections, objects, the
//! all-namespaces list of namespaced resources, and subresources. The
//! deprecated `/watch/` paths are not served, so they are not listed.

use crate::resources::{ResourceInfo, Subresource};
use crate::schema;

/// Where a parameter goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum In {
    Path,
    Query,
}

/// One parameter.
#[derive(Clone, Debug)]
pub struct Param {
    pub name: &'static str,
    pub location: In,
    /// `string`, `integer` or `boolean`.
    pub ty: &'static str,
    pub description: String,
    pub required: bool,
}

/// What a request body is.
#[derive(Clone, Debug)]
pub enum Body {
    /// An object of this definition (create, replace, subresource posts).
    Object(String),
    /// A patch document; strategic merge patch is offered for built-in
    /// kinds only (kubectl's client-side apply reads this to choose between
    /// a strategic and a JSON merge patch, and custom resources take the
    /// latter).
    Patch {
        /// Whether `application/strategic-merge-patch+json` is accepted.
        strategic: bool,
    },
    /// `DeleteOptions`, optional.
    Delete,
}

/// One operation on a path.
#[derive(Clone, Debug)]
pub struct Op {
    /// HTTP method, lower case: `get`, `put`, `post`, `patch`, `delete`.
    pub method: &'static str,
    /// `x-kubernetes-action`.
    pub action: &'static str,
    pub operation_id: String,
    pub description: String,
    /// `x-kubernetes-group-version-kind`.
    pub gvk: (String, String, String),
    pub body: Option<Body>,
    /// Status codes answered with the response definition.
    pub codes: &'static [u16],
    /// Definition of the response body.
    pub response: String,
    /// Whether the response can be a watch stream (list operations).
    pub watchable: bool,
    /// Query parameters of this operation.
    pub params: Vec<Param>,
}

/// One path and its operations.
#[derive(Clone, Debug)]
pub struct PathItem {
    pub path: String,
    /// Parameters shared by every operation (path parameters, `pretty`).
    pub params: Vec<Param>,
    pub ops: Vec<Op>,
}

/// A served resource and the definition of its kind.
#[derive(Clone, Copy, Debug)]
pub struct Served<'a> {
    pub info: &'a ResourceInfo,
    pub definition: &'a str,
}

pub const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub const WATCH_EVENT: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent";
pub const RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";

/// Patch bodies the server accepts.
pub const PATCH_TYPES: &[&str] = &[
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
];

/// Patch bodies of a kind: all, or all but strategic merge patch.
pub fn patch_types(strategic: bool) -> &'static [&'static str] {
    if strategic {
        PATCH_TYPES
    } else {
        &PATCH_TYPES[..3]
    }
}

/// `/api/v1` or `/apis/{group}/{version}`.
pub fn gv_prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// The operation-id and tag stem of a group: `core`, `apps`,
/// `rbacAuthorization` (dots joined in camel case, `.k8s.io` dropped).
fn group_stem(group: &str) -> String {
    if group.is_empty() {
        return "core".into();
    }
    let g = group.strip_suffix(".k8s.io").unwrap_or(group);
    let mut out = String::new();
    for (i, part) in g.split(['.', '-']).filter(|p| !p.is_empty()).enumerate() {
        if i == 0 {
            out.push_str(part);
        } else {
            out.push_str(&capitalize(part));
        }
    }
    out
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// The tag of a group-version's operations, e.g. `apps_v1`.
pub fn tag(group: &str, version: &str) -> String {
    format!("{}_{version}", group_stem(group))
}

fn query(name: &'static str, ty: &'static str, description: &str) -> Param {
    Param {
        name,
        location: In::Query,
        ty,
        description: description.into(),
        required: false,
    }
}

fn path_param(name: &'static str, description: String) -> Param {
    Param {
        name,
        location: In::Path,
        ty: "string",
        description,
        required: true,
    }
}

fn pretty() -> Param {
    query(
        "pretty",
        "string",
        "If 'true', then the output is pretty printed.",
    )
}

fn write_params(patch: bool) -> Vec<Param> {
    let mut p = vec![
        query("dryRun", "string", "When present, indicates that modifications should not be persisted. The only valid value is All: every dry-run stage is processed."),
        query("fieldManager", "string", "A name for the actor making these changes; required for apply patches. At most 128 printable characters."),
        query("fieldValidation", "string", "How to handle unknown or duplicate fields in the request object: Ignore, Warn (the default) or Strict."),
    ];
    if patch {
        p.push(query("force", "boolean", "Force an apply patch: take ownership of fields other managers own. Must be unset for other patch types."));
    }
    p
}

fn list_params(watch: bool) -> Vec<Param> {
    let mut p = vec![
        query("continue", "string", "The token from a previous paged list, to fetch the next page with the same query."),
        query("fieldSelector", "string", "Restrict the returned objects by their fields. Defaults to everything."),
        query("labelSelector", "string", "Restrict the returned objects by their labels. Defaults to everything."),
        query("limit", "integer", "The largest number of objects to return; the list metadata then carries a continue token if more exist."),
        query("resourceVersion", "string", "Constrains which resource versions the request may be served from. Defaults to unset (the most recent)."),
        query("resourceVersionMatch", "string", "How resourceVersion applies to a list: Exact or NotOlderThan."),
        query("sendInitialEvents", "boolean", "With watch=true, start the watch with synthetic ADDED events for the current state, ended by a bookmark."),
        query("timeoutSeconds", "integer", "Timeout for the list or watch call, regardless of activity."),
    ];
    if watch {
        p.insert(0, query("allowWatchBookmarks", "boolean", "Ask for BOOKMARK watch events. Servers may send them at their discretion; ignored when not watching."));
        p.push(query("watch", "boolean", "Watch for changes to the described resources and return them as a stream of add, update and remove notifications."));
    }
    p
}

fn delete_params() -> Vec<Param> {
    vec![
        query("dryRun", "string", "When present, indicates that modifications should not be persisted. The only valid value is All: every dry-run stage is processed."),
        query("gracePeriodSeconds", "integer", "Seconds before the object is deleted; zero deletes immediately. Unset uses the kind's default."),
        query("orphanDependents", "boolean", "Deprecated: use propagationPolicy. Whether dependents are orphaned."),
        query("propagationPolicy", "string", "Garbage collection of dependents: Orphan, Background or Foreground."),
    ]
}

/// Resources whose DELETE answers with the object instead of a `Status`.
fn delete_returns_object(info: &ResourceInfo) -> bool {
    crate::registry::delete::returns_object(info)
}

struct Names<'a> {
    stem: String,
    info: &'a ResourceInfo,
}

impl Names<'_> {
    /// e.g. `listCoreV1NamespacedPod`, `deleteCoreV1CollectionNamespacedPod`,
    /// `readAppsV1NamespacedDeploymentScale`.
    fn id(&self, verb: &str, collection: bool, suffix: &str) -> String {
        format!(
            "{verb}{}{}{}{}{suffix}",
            self.stem,
            if collection { "Collection" } else { "" },
            if self.info.namespaced {
                "Namespaced"
            } else {
                ""
            },
            self.info.kind
        )
    }
}

fn gvk(info: &ResourceInfo) -> (String, String, String) {
    (
        info.group.to_string(),
        info.version.to_string(),
        info.kind.to_string(),
    )
}

/// The kind and definition a subresource speaks.
fn sub_kind(parent: &Served, sub: &Subresource) -> Option<((String, String, String), String)> {
    let group = if sub.group.is_empty() && sub.version.is_empty() {
        parent.info.group
    } else {
        sub.group
    };
    let version = if sub.version.is_empty() {
        parent.info.version
    } else {
        sub.version
    };
    let key = (group.to_string(), version.to_string(), sub.kind.to_string());
    if group == parent.info.group && version == parent.info.version && sub.kind == parent.info.kind
    {
        return Some((key, parent.definition.to_string()));
    }
    let def = schema::builtin().definition_of(group, version, sub.kind)?;
    Some((key, def.to_string()))
}

/// Every path of one group-version.
pub fn group_version(group: &str, version: &str, served: &[Served]) -> Vec<PathItem> {
    let base = gv_prefix(group, version);
    let stem = format!("{}{}", capitalize(&group_stem(group)), capitalize(version));
    let mut out = vec![PathItem {
        path: format!("{base}/"),
        params: vec![],
        ops: vec![Op {
            method: "get",
            action: "",
            operation_id: format!("get{stem}APIResources"),
            description: "get available resources".into(),
            gvk: Default::default(),
            body: None,
            codes: &[200],
            response: RESOURCE_LIST.into(),
            watchable: false,
            params: vec![],
        }],
    }];
    for s in served {
        resource_paths(&base, &stem, s, &mut out);
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

fn resource_paths(base: &str, stem: &str, s: &Served, out: &mut Vec<PathItem>) {
    let info = s.info;
    let names = Names {
        stem: stem.to_string(),
        info,
    };
    let kind = info.kind;
    let def = s.definition.to_string();
    let list_def = format!("{def}List");
    let has = |v: &str| info.verbs.contains(&v);
    let ns_param = || {
        path_param(
            "namespace",
            "object name and auth scope, such as for teams and projects".into(),
        )
    };
    let name_param = || path_param("name", format!("name of the {kind}"));
    let (collection, item, scope) = if info.namespaced {
        (
            format!("{base}/namespaces/{{namespace}}/{}", info.plural),
            format!("{base}/namespaces/{{namespace}}/{}/{{name}}", info.plural),
            vec![ns_param()],
        )
    } else {
        (
            format!("{base}/{}", info.plural),
            format!("{base}/{}/{{name}}", info.plural),
            vec![],
        )
    };
    let op = |method, action, operation_id, description: String| Op {
        method,
        action,
        operation_id,
        description,
        gvk: gvk(info),
        body: None,
        codes: &[200],
        response: def.clone(),
        watchable: false,
        params: vec![],
    };

    let mut coll = Vec::new();
    if has("list") {
        coll.push(Op {
            response: list_def.clone(),
            watchable: has("watch"),
            params: list_params(has("watch")),
            ..op(
                "get",
                "list",
                names.id("list", false, ""),
                format!("list or watch objects of kind {kind}"),
            )
        });
    }
    if has("create") {
        coll.push(Op {
            body: Some(Body::Object(def.clone())),
            codes: &[200, 201, 202],
            params: write_params(false),
            ..op(
                "post",
                "post",
                names.id("create", false, ""),
                format!("create a {kind}"),
            )
        });
    }
    if has("deletecollection") {
        let mut params = delete_params();
        params.extend(list_params(false));
        coll.push(Op {
            body: Some(Body::Delete),
            response: STATUS.into(),
            params,
            ..op(
                "delete",
                "deletecollection",
                names.id("delete", true, ""),
                format!("delete collection of {kind}"),
            )
        });
    }
    if !coll.is_empty() {
        let mut params = scope.clone();
        params.push(pretty());
        out.push(PathItem {
            path: collection,
            params,
            ops: coll,
        });
    }

    // A namespaced resource can also be listed across namespaces.
    if info.namespaced && has("list") {
        out.push(PathItem {
            path: format!("{base}/{}", info.plural),
            params: {
                let mut p = list_params(has("watch"));
                p.push(pretty());
                p
            },
            ops: vec![Op {
                response: list_def.clone(),
                watchable: has("watch"),
                ..op(
                    "get",
                    "list",
                    format!("list{stem}{kind}ForAllNamespaces"),
                    format!("list or watch objects of kind {kind}"),
                )
            }],
        });
    }

    let mut one = Vec::new();
    if has("get") {
        one.push(op(
            "get",
            "get",
            names.id("read", false, ""),
            format!("read the specified {kind}"),
        ));
    }
    if has("update") {
        one.push(Op {
            body: Some(Body::Object(def.clone())),
            codes: &[200, 201],
            params: write_params(false),
            ..op(
                "put",
                "put",
                names.id("replace", false, ""),
                format!("replace the specified {kind}"),
            )
        });
    }
    if has("patch") {
        one.push(Op {
            body: Some(Body::Patch {
                strategic: crate::resources::is_builtin(s.info),
            }),
            codes: &[200, 201],
            params: write_params(true),
            ..op(
                "patch",
                "patch",
                names.id("patch", false, ""),
                format!("partially update the specified {kind}"),
            )
        });
    }
    if has("delete") {
        one.push(Op {
            body: Some(Body::Delete),
            codes: &[200, 202],
            response: if delete_returns_object(info) {
                def.clone()
            } else {
                STATUS.into()
            },
            params: delete_params(),
            ..op(
                "delete",
                "delete",
                names.id("delete", false, ""),
                format!("delete a {kind}"),
            )
        });
    }
    let item_params = || {
        let mut p = vec![name_param()];
        p.extend(scope.iter().cloned());
        p.push(pretty());
        p
    };
    if !one.is_empty() {
        out.push(PathItem {
            path: item.clone(),
            params: item_params(),
            ops: one,
        });
    }

    for sub in info.subresources {
        let Some((sub_gvk, sub_def)) = sub_kind(s, sub) else {
            continue;
        };
        let suffix = capitalize(sub.name);
        let sub_op = |method, action, verb: &str, what: String| Op {
            gvk: sub_gvk.clone(),
            response: sub_def.clone(),
            ..op(method, action, names.id(verb, false, &suffix), what)
        };
        let mut ops = Vec::new();
        let name = sub.name;
        for verb in sub.verbs {
            match *verb {
                "get" => ops.push(sub_op(
                    "get",
                    "get",
                    "read",
                    format!("read {name} of the specified {kind}"),
                )),
                "update" => ops.push(Op {
                    body: Some(Body::Object(sub_def.clone())),
                    codes: &[200, 201],
                    params: write_params(false),
                    ..sub_op(
                        "put",
                        "put",
                        "replace",
                        format!("replace {name} of the specified {kind}"),
                    )
                }),
                "patch" => ops.push(Op {
                    body: Some(Body::Patch {
                        strategic: crate::resources::is_builtin(s.info),
                    }),
                    codes: &[200, 201],
                    params: write_params(true),
                    ..sub_op(
                        "patch",
                        "patch",
                        "patch",
                        format!("partially update {name} of the specified {kind}"),
                    )
                }),
                "create" => ops.push(Op {
                    body: Some(Body::Object(sub_def.clone())),
                    codes: &[200, 201, 202],
                    params: write_params(false),
                    ..sub_op(
                        "post",
                        "post",
                        "create",
                        format!("create {name} of a {kind}"),
                    )
                }),
                _ => {}
            }
        }
        if !ops.is_empty() {
            out.push(PathItem {
                path: format!("{item}/{name}"),
                params: item_params(),
                ops,
            });
        }
    }
}

/// The definitions the operations name directly.
pub fn referenced(paths: &[PathItem]) -> Vec<&str> {
    let mut out = Vec::new();
    for p in paths {
        for op in &p.ops {
            out.push(op.response.as_str());
            match &op.body {
                Some(Body::Object(d)) => out.push(d.as_str()),
                Some(Body::Patch { .. }) => out.push(PATCH),
                Some(Body::Delete) => out.push(DELETE_OPTIONS),
                None => {}
            }
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_upstream_conventions() {
        assert_eq!(group_stem(""), "core");
        assert_eq!(group_stem("rbac.authorization.k8s.io"), "rbacAuthorization");
        assert_eq!(tag("apps", "v1"), "apps_v1");
        let pods = crate::resources::lookup("", "v1", "pods").unwrap();
        let served = [Served {
            info: pods,
            definition: "io.k8s.api.core.v1.Pod",
        }];
        let paths = group_version("", "v1", &served);
        let ids: Vec<&str> = paths
            .iter()
            .flat_map(|p| p.ops.iter().map(|o| o.operation_id.as_str()))
            .collect();
        for want in [
            "listCoreV1NamespacedPod",
            "createCoreV1NamespacedPod",
            "deleteCoreV1CollectionNamespacedPod",
            "readCoreV1NamespacedPod",
            "patchCoreV1NamespacedPodStatus",
            "createCoreV1NamespacedPodEviction",
            "createCoreV1NamespacedPodBinding",
            "listCoreV1PodForAllNamespaces",
            "getCoreV1APIResources",
        ] {
            assert!(ids.contains(&want), "{want} missing from {ids:?}");
        }
        let eviction = paths
            .iter()
            .find(|p| p.path == "/api/v1/namespaces/{namespace}/pods/{name}/eviction")
            .unwrap();
        assert_eq!(eviction.ops[0].gvk.0, "policy");
        assert_eq!(eviction.ops[0].response, "io.k8s.api.policy.v1.Eviction");
    }
}
