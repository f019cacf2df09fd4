//! Parsing request paths into what they address.

use crate::resources::{self, ResourceInfo};

/// What a request path names.
#[derive(Clone, Debug, PartialEq)]
pub enum Route {
    /// `/api`
    LegacyVersions,
    /// `/apis`
    Groups,
    /// `/apis/{group}`
    Group(String),
    /// `/api/v1` or `/apis/{group}/{version}`
    ResourceList { group: String, version: String },
    /// A resource, a collection or a subresource.
    Resource(ResourcePath),
    /// `/version`
    Version,
    /// `/healthz`, `/livez`, `/readyz`, optionally with one check's name.
    Health {
        kind: &'static str,
        check: Option<String>,
    },
    /// `/openapi/...`
    OpenApi(String),
    /// Anything else.
    Unknown,
}

/// A path under a served group-version.
#[derive(Clone, Debug, PartialEq)]
pub struct ResourcePath {
    /// The resource.
    pub info: &'static ResourceInfo,
    /// The namespace in the path, if any.
    pub namespace: Option<String>,
    /// The object's name, if the path names one.
    pub name: Option<String>,
    /// The subresource, if any.
    pub subresource: Option<String>,
}

impl PartialEq for ResourceInfo {
    fn eq(&self, other: &Self) -> bool {
        self.group == other.group && self.version == other.version && self.plural == other.plural
    }
}

/// Why a path could not be routed to a resource.
#[derive(Clone, Debug, PartialEq)]
pub enum RouteError {
    /// The group-version is served but the resource is not.
    UnknownResource,
    /// A namespace was given for a cluster-scoped resource, or the path shape is wrong.
    BadPath,
}

/// Split a path into segments, rejecting empty ones (`//`) and dot segments.
fn segments(path: &str) -> Option<Vec<&str>> {
    let trimmed = path.trim_start_matches('/');
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Some(Vec::new());
    }
    let segs: Vec<&str> = trimmed.split('/').collect();
    if segs.iter().any(|s| s.is_empty() || *s == "." || *s == "..") {
        return None;
    }
    Some(segs)
}

/// Route a request path (without the query).
pub fn route(path: &str) -> Result<Route, RouteError> {
    let Some(segs) = segments(path) else {
        return Ok(Route::Unknown);
    };
    match segs.as_slice() {
        ["api"] => Ok(Route::LegacyVersions),
        ["apis"] => Ok(Route::Groups),
        ["version"] => Ok(Route::Version),
        ["healthz"] => Ok(Route::Health {
            kind: "healthz",
            check: None,
        }),
        ["livez"] => Ok(Route::Health {
            kind: "livez",
            check: None,
        }),
        ["readyz"] => Ok(Route::Health {
            kind: "readyz",
            check: None,
        }),
        ["healthz", c] => Ok(Route::Health {
            kind: "healthz",
            check: Some(c.to_string()),
        }),
        ["livez", c] => Ok(Route::Health {
            kind: "livez",
            check: Some(c.to_string()),
        }),
        ["readyz", c] => Ok(Route::Health {
            kind: "readyz",
            check: Some(c.to_string()),
        }),
        ["openapi", rest @ ..] => Ok(Route::OpenApi(rest.join("/"))),
        ["api", "v1"] => Ok(Route::ResourceList {
            group: String::new(),
            version: "v1".into(),
        }),
        ["api", "v1", rest @ ..] => resource_path("", "v1", rest),
        ["apis", g] => {
            if resources::groups().iter().any(|(name, _)| name == g) {
                Ok(Route::Group(g.to_string()))
            } else {
                Ok(Route::Unknown)
            }
        }
        ["apis", g, v] => {
            if resources::groups()
                .iter()
                .any(|(name, vs)| name == g && vs.contains(v))
            {
                Ok(Route::ResourceList {
                    group: g.to_string(),
                    version: v.to_string(),
                })
            } else {
                Ok(Route::Unknown)
            }
        }
        ["apis", g, v, rest @ ..] => resource_path(g, v, rest),
        _ => Ok(Route::Unknown),
    }
}

fn resource_path(group: &str, version: &str, rest: &[&str]) -> Result<Route, RouteError> {
    if !resources::serves_group_version(group, version) {
        return Ok(Route::Unknown);
    }
    let find =
        |plural: &str| resources::lookup(group, version, plural).ok_or(RouteError::UnknownResource);
    let rp = |info, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| {
        Ok(Route::Resource(ResourcePath {
            info,
            namespace: namespace.map(str::to_string),
            name: name.map(str::to_string),
            subresource: sub.map(str::to_string),
        }))
    };
    match rest {
        // /namespaces/{ns} itself and its subresources are the namespaces resource.
        ["namespaces", ns] if group.is_empty() => rp(find("namespaces")?, None, Some(ns), None),
        ["namespaces", ns, sub @ ("status" | "finalize")] if group.is_empty() => {
            rp(find("namespaces")?, None, Some(ns), Some(sub))
        }
        ["namespaces", ns, plural, tail @ ..] => {
            let info = find(plural)?;
            if !info.namespaced {
                return Err(RouteError::BadPath);
            }
            match tail {
                [] => rp(info, Some(ns), None, None),
                [name] => rp(info, Some(ns), Some(name), None),
                [name, sub] => rp(info, Some(ns), Some(name), Some(sub)),
                _ => Err(RouteError::BadPath),
            }
        }
        [plural] => rp(find(plural)?, None, None, None),
        [plural, name] => {
            let info = find(plural)?;
            if info.namespaced {
                return Err(RouteError::BadPath);
            }
            rp(info, None, Some(name), None)
        }
        [plural, name, sub] => {
            let info = find(plural)?;
            if info.namespaced {
                return Err(RouteError::BadPath);
            }
            rp(info, None, Some(name), Some(sub))
        }
        _ => Err(RouteError::BadPath),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(path: &str) -> ResourcePath {
        match route(path).unwrap() {
            Route::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn paths() {
        let r = res("/api/v1/namespaces/default/pods/web/status");
        assert_eq!(
            (
                r.info.plural,
                r.namespace.as_deref(),
                r.name.as_deref(),
                r.subresource.as_deref()
            ),
            ("pods", Some("default"), Some("web"), Some("status"))
        );
        let r = res("/api/v1/pods");
        assert_eq!((r.info.plural, r.namespace, r.name), ("pods", None, None));
        let r = res("/api/v1/namespaces/kube-system");
        assert_eq!(
            (r.info.plural, r.name.as_deref()),
            ("namespaces", Some("kube-system"))
        );
        let r = res("/apis/apps/v1/namespaces/a/deployments");
        assert_eq!(
            (r.info.plural, r.namespace.as_deref()),
            ("deployments", Some("a"))
        );
        let r = res("/api/v1/nodes/n1");
        assert_eq!(r.name.as_deref(), Some("n1"));
        assert_eq!(
            route("/apis/apps/v1").unwrap(),
            Route::ResourceList {
                group: "apps".into(),
                version: "v1".into()
            }
        );
        assert_eq!(route("/apis/nope/v1/things").unwrap(), Route::Unknown);
        assert_eq!(
            route("/api/v1/nothings").unwrap_err(),
            RouteError::UnknownResource
        );
        assert_eq!(
            route("/api/v1/namespaces/a/nodes").unwrap_err(),
            RouteError::BadPath
        );
        assert_eq!(route("/api/v1/namespaces/../pods").unwrap(), Route::Unknown);
        assert_eq!(
            route("/readyz").unwrap(),
            Route::Health {
                kind: "readyz",
                check: None
            }
        );
    }
}
