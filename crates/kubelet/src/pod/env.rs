//! Environment from API objects: `envFrom` (ConfigMaps and Secrets, with a
//! prefix) and `valueFrom.configMapKeyRef` / `secretKeyRef`, read when a
//! container is started. A missing object or key that is not `optional`
//! keeps the container from starting with `CreateContainerConfigError` and
//! upstream's message.

use std::collections::{BTreeMap, HashMap};

use k8s_openapi::api::core::v1::{Container, Pod};

/// A container's variables that come from ConfigMaps and Secrets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    /// From `envFrom`, in order (later sources win).
    pub from: Vec<(String, String)>,
    /// `env` entries with a key reference, by variable name.
    pub refs: HashMap<String, String>,
}

/// Reads objects once per resolution.
pub trait Source {
    /// The ConfigMap's data (`binaryData` as UTF-8), `None` if absent.
    fn config_map(
        &mut self,
        name: &str,
    ) -> impl std::future::Future<Output = Result<Option<BTreeMap<String, String>>, String>> + Send;
    /// The Secret's data, `None` if absent.
    fn secret(
        &mut self,
        name: &str,
    ) -> impl std::future::Future<Output = Result<Option<BTreeMap<String, String>>, String>> + Send;
}

/// The API as a [`Source`], for one pod's namespace (the same reader as
/// the volumes', so one sync reads each object once).
pub type ApiSource = crate::volume::ApiObjects;

impl Source for ApiSource {
    async fn config_map(&mut self, name: &str) -> Result<Option<BTreeMap<String, String>>, String> {
        let cm = crate::volume::Objects::config_map(self, name).await?;
        Ok(cm.map(|cm| {
            let mut d = cm.data.unwrap_or_default();
            for (k, b) in cm.binary_data.unwrap_or_default() {
                d.insert(k, String::from_utf8_lossy(&b.0).to_string());
            }
            d
        }))
    }

    async fn secret(&mut self, name: &str) -> Result<Option<BTreeMap<String, String>>, String> {
        let s = crate::volume::Objects::secret(self, name).await?;
        Ok(s.map(|s| {
            let mut d: BTreeMap<String, String> = s
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, b)| (k, String::from_utf8_lossy(&b.0).to_string()))
                .collect();
            for (k, v) in s.string_data.unwrap_or_default() {
                d.entry(k).or_insert(v);
            }
            d
        }))
    }
}

/// Upstream's `$(VAR)` expansion (env values, command, args,
/// subPathExpr): `$(NAME)` becomes `lookup(NAME)`, or stays as written
/// when that is `None`; `$$` is a literal `$`; any other `$` (and an
/// unclosed `$(`) is kept as is.
pub fn expand(input: &str, mut lookup: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let mut chars = after.chars();
        match chars.next() {
            None => {
                out.push('$');
                rest = after;
            }
            Some('$') => {
                out.push('$');
                rest = &after[1..];
            }
            Some('(') => match after.find(')') {
                Some(close) => {
                    let name = &after[1..close];
                    match lookup(name) {
                        Some(v) => out.push_str(&v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &after[close + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = &after[1..];
                }
            },
            Some(c) => {
                out.push('$');
                out.push(c);
                rest = &after[c.len_utf8()..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `name` is a valid environment variable name (C identifier-ish,
/// as upstream's `IsEnvVarName`: letters, digits, `_`, `-`, `.`, not
/// starting with a digit).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// Resolve container `c`'s variables from ConfigMaps and Secrets.
pub async fn resolve(src: &mut impl Source, pod: &Pod, c: &Container) -> Result<Resolved, String> {
    let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
    let mut out = Resolved::default();
    for f in c.env_from.iter().flatten() {
        let prefix = f.prefix.clone().unwrap_or_default();
        let (data, what, name, optional) = if let Some(r) = &f.config_map_ref {
            (
                src.config_map(&r.name).await?,
                "configmap",
                r.name.clone(),
                r.optional.unwrap_or(false),
            )
        } else if let Some(r) = &f.secret_ref {
            (
                src.secret(&r.name).await?,
                "secret",
                r.name.clone(),
                r.optional.unwrap_or(false),
            )
        } else {
            continue;
        };
        match data {
            Some(d) => out.from.extend(
                d.into_iter()
                    .map(|(k, v)| (format!("{prefix}{k}"), v))
                    .filter(|(k, _)| valid_name(k)),
            ),
            None if optional => {}
            None => return Err(format!("{what} \"{name}\" not found")),
        }
    }
    for e in c.env.iter().flatten() {
        let Some(from) = &e.value_from else { continue };
        let (data, kind, what, name, key, optional) = if let Some(r) = &from.config_map_key_ref {
            (
                src.config_map(&r.name).await?,
                "ConfigMap",
                "configmap",
                &r.name,
                &r.key,
                r.optional.unwrap_or(false),
            )
        } else if let Some(r) = &from.secret_key_ref {
            (
                src.secret(&r.name).await?,
                "Secret",
                "secret",
                &r.name,
                &r.key,
                r.optional.unwrap_or(false),
            )
        } else {
            continue;
        };
        match data.map(|d| d.get(key).cloned()) {
            Some(Some(v)) => {
                out.refs.insert(e.name.clone(), v);
            }
            _ if optional => {}
            None => return Err(format!("{what} \"{name}\" not found")),
            Some(None) => return Err(format!("couldn't find key {key} in {kind} {ns}/{name}")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Map(HashMap<(bool, String), BTreeMap<String, String>>);

    impl Source for Map {
        async fn config_map(
            &mut self,
            name: &str,
        ) -> Result<Option<BTreeMap<String, String>>, String> {
            Ok(self.0.get(&(false, name.to_string())).cloned())
        }
        async fn secret(&mut self, name: &str) -> Result<Option<BTreeMap<String, String>>, String> {
            Ok(self.0.get(&(true, name.to_string())).cloned())
        }
    }

    fn src() -> Map {
        let mut m = HashMap::new();
        m.insert(
            (false, "cm".to_string()),
            BTreeMap::from([
                ("A".to_string(), "1".to_string()),
                ("bad key".into(), "x".into()),
            ]),
        );
        m.insert(
            (true, "sec".to_string()),
            BTreeMap::from([("PW".to_string(), "s3cret".to_string())]),
        );
        Map(m)
    }

    fn pod(c: serde_json::Value) -> (Pod, Container) {
        let p: Pod = serde_json::from_value(
            json!({"metadata": {"name": "p", "namespace": "ns"}, "spec": {"containers": [c]}}),
        )
        .unwrap();
        let c = p.spec.clone().unwrap().containers[0].clone();
        (p, c)
    }

    #[test]
    fn expansion_table() {
        let vars: HashMap<&str, &str> =
            HashMap::from([("A", "a"), ("B", "b"), ("EMPTY", ""), ("LONG", "x y")]);
        let lookup = |k: &str| vars.get(k).map(|v| v.to_string());
        for (input, want) in [
            ("$(A)", "a"),
            ("pre-$(A)-$(B)-post", "pre-a-b-post"),
            ("$(EMPTY)", ""),
            ("$(NOPE)", "$(NOPE)"),
            ("$$(A)", "$(A)"),
            ("$$$(A)", "$a"),
            ("$$", "$"),
            ("$", "$"),
            ("a$", "a$"),
            ("$A", "$A"),
            ("$(A", "$(A"),
            ("$()", "$()"),
            ("$(A)$(B)", "ab"),
            ("$(LONG)", "x y"),
            ("é$(A)é", "éaé"),
            ("$é", "$é"),
            ("no vars", "no vars"),
        ] {
            assert_eq!(expand(input, lookup), want, "{input}");
        }
    }

    #[tokio::test]
    async fn env_from_and_key_refs() {
        let (p, c) = pod(
            json!({"name": "c", "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CM_"},
                {"secretRef": {"name": "gone", "optional": true}}],
            "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "PW"}}},
                    {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "nope", "optional": true}}}]}),
        );
        let r = resolve(&mut src(), &p, &c).await.unwrap();
        assert_eq!(r.from, vec![("CM_A".to_string(), "1".to_string())]);
        assert_eq!(r.refs["PASSWORD"], "s3cret");
        assert!(!r.refs.contains_key("OPT"));
    }

    #[tokio::test]
    async fn missing_objects_and_keys() {
        let (p, c) = pod(
            json!({"name": "c", "env": [{"name": "X", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "nope"}}}]}),
        );
        assert_eq!(
            resolve(&mut src(), &p, &c).await.unwrap_err(),
            "couldn't find key nope in ConfigMap ns/cm"
        );
        let (p, c) = pod(
            json!({"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "other", "key": "k"}}}]}),
        );
        assert_eq!(
            resolve(&mut src(), &p, &c).await.unwrap_err(),
            "secret \"other\" not found"
        );
        let (p, c) = pod(json!({"name": "c", "envFrom": [{"configMapRef": {"name": "absent"}}]}));
        assert_eq!(
            resolve(&mut src(), &p, &c).await.unwrap_err(),
            "configmap \"absent\" not found"
        );
    }
}
