//! The OpenAPI schemas of every served kind, and a navigator over them.
//!
//! The schemas come from `k8s-openapi`'s `schemars` implementations, generated
//! once in OpenAPI v3 form (`#/components/schemas/<definition>` references).
//! Our own table of patch metadata ([`patchmeta`]) then adds the extensions
//! upstream derives from its Go struct tags and markers:
//! `x-kubernetes-patch-strategy`, `x-kubernetes-patch-merge-key`,
//! `x-kubernetes-list-type`, `x-kubernetes-list-map-keys` and
//! `x-kubernetes-map-type`. Each kind's definition also carries
//! `x-kubernetes-group-version-kind`.
//!
//! One representation serves three readers: strategic merge patch (which
//! reads the patch strategy and merge key), server-side apply (which reads
//! list and map types), and the OpenAPI documents. Custom resources bring
//! their own schemas in the same JSON form, so [`SchemaNode`] works over
//! either.

pub mod patchmeta;
mod types;

use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::{Map, Value};

/// Prefix of a definition reference.
pub const REF_PREFIX: &str = "#/components/schemas/";

/// Every built-in definition, and which definition each served kind is.
pub struct Schemas {
    /// Definitions by name, e.g. `io.k8s.api.core.v1.Pod`.
    pub defs: Map<String, Value>,
    /// `(group, version, kind)` to definition name.
    kinds: HashMap<(String, String, String), String>,
}

static SCHEMAS: OnceLock<Schemas> = OnceLock::new();

/// The built-in schemas, generated on first use.
pub fn builtin() -> &'static Schemas {
    SCHEMAS.get_or_init(Schemas::generate)
}

impl Schemas {
    fn generate() -> Schemas {
        let started = std::time::Instant::now();
        let (mut defs, mut kinds) = types::generate();
        patchmeta::apply(&mut defs);
        // k8s-openapi marks `metadata` required on every resource because its
        // Rust field is not an `Option`; upstream never requires it, and
        // clients (kubectl explain, generators) show and enforce `required`.
        for (_, def) in &kinds {
            if let Some(Value::Object(d)) = defs.get_mut(def) {
                drop_required(d, "metadata");
            }
        }
        // k8s-openapi has one generic `List<T>` and no `PodList` types, so
        // the list of every listable resource is synthesized here.
        for r in crate::resources::RESOURCES {
            if !r.verbs.contains(&"list") {
                continue;
            }
            let Some((_, item)) = kinds
                .iter()
                .find(|((g, v, k), _)| g == r.group && v == r.version && k == r.kind)
            else {
                continue;
            };
            let name = format!("{item}List");
            let list = list_definition(item, r.kind, r.plural, &defs);
            defs.insert(name.clone(), list);
            kinds.push((
                (r.group.into(), r.version.into(), format!("{}List", r.kind)),
                name,
            ));
        }
        // Options and watch events are kinds of every group-version, as in
        // upstream's documents.
        for (group, versions) in crate::resources::groups() {
            for version in versions {
                for (kind, def) in [
                    (
                        "DeleteOptions",
                        "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions",
                    ),
                    (
                        "WatchEvent",
                        "io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent",
                    ),
                ] {
                    let key = (group.to_string(), version.to_string(), kind.to_string());
                    if !kinds.iter().any(|(k, _)| *k == key) {
                        kinds.push((key, def.to_string()));
                    }
                }
            }
        }
        // One definition can be several kinds (DeleteOptions): the extension
        // lists them all, in a stable order.
        let mut gvks: HashMap<&str, Vec<Value>> = HashMap::new();
        let mut sorted: Vec<_> = kinds.iter().collect();
        sorted.sort();
        for ((group, version, kind), def) in sorted {
            gvks.entry(def.as_str())
                .or_default()
                .push(serde_json::json!({ "group": group, "version": version, "kind": kind }));
        }
        for (def, list) in gvks {
            if let Some(Value::Object(d)) = defs.get_mut(def) {
                d.insert("x-kubernetes-group-version-kind".into(), Value::Array(list));
            }
        }
        tracing::info!(
            definitions = defs.len(),
            millis = started.elapsed().as_millis() as u64,
            "generated built-in schemas"
        );
        Schemas {
            defs,
            kinds: kinds.into_iter().collect(),
        }
    }

    /// The definition name of a kind, e.g. `io.k8s.api.apps.v1.Deployment`.
    pub fn definition_of(&self, group: &str, version: &str, kind: &str) -> Option<&str> {
        self.kinds
            .get(&(group.to_string(), version.to_string(), kind.to_string()))
            .map(String::as_str)
    }

    /// The schema of a kind, to navigate.
    pub fn kind(&self, group: &str, version: &str, kind: &str) -> Option<SchemaNode<'_>> {
        let def = self.definition_of(group, version, kind)?;
        self.definition(def)
    }

    /// A definition by name.
    pub fn definition(&self, name: &str) -> Option<SchemaNode<'_>> {
        self.defs.get(name).map(|v| SchemaNode::new(&self.defs, v))
    }

    /// Every `(group, version, kind, definition)` known.
    pub fn kinds(&self) -> impl Iterator<Item = (&str, &str, &str, &str)> {
        self.kinds
            .iter()
            .map(|((g, v, k), d)| (g.as_str(), v.as_str(), k.as_str(), d.as_str()))
    }
}

fn drop_required(def: &mut Map<String, Value>, field: &str) {
    let empty = match def.get_mut("required").and_then(Value::as_array_mut) {
        Some(req) => {
            req.retain(|f| f != field);
            req.is_empty()
        }
        None => false,
    };
    if empty {
        def.remove("required");
    }
}

/// The definition of the list of a kind, as upstream's `...List` types are:
/// `apiVersion`, `kind`, list metadata and the items. `item` is the kind's
/// definition name; `defs` lends the `apiVersion` and `kind` property schemas.
/// Custom resources build theirs the same way.
pub fn list_definition(item: &str, kind: &str, plural: &str, defs: &Map<String, Value>) -> Value {
    let prop = |name: &str| {
        defs.get(item)
            .and_then(|d| d.get("properties"))
            .and_then(|p| p.get(name))
            .cloned()
            .unwrap_or_else(|| serde_json::json!({ "type": "string" }))
    };
    serde_json::json!({
        "description": format!("{kind}List is a list of {kind} objects."),
        "type": "object",
        "properties": {
            "apiVersion": prop("apiVersion"),
            "kind": prop("kind"),
            "metadata": {
                "allOf": [{ "$ref": format!("{REF_PREFIX}io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta") }],
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
            },
            "items": {
                "description": format!("List of {plural}."),
                "type": "array",
                "items": { "$ref": format!("{REF_PREFIX}{item}") },
            },
        },
        "required": ["items"],
    })
}

/// How a list is merged (`x-kubernetes-list-type`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole.
    Atomic,
    /// A set of scalars.
    Set,
    /// A map keyed by these fields of each item.
    Map(Vec<String>),
}

/// One point in a schema: an object, a list, a scalar, or "anything".
/// References and single-element `allOf` wrappers are followed, so callers
/// see the effective schema.
#[derive(Clone, Copy)]
pub struct SchemaNode<'a> {
    defs: &'a Map<String, Value>,
    /// The schema at this point, with its `$ref`s resolved.
    pub value: &'a Value,
    /// The schema as written where it was reached (before resolving
    /// references); field-level extensions live here.
    pub site: &'a Value,
}

impl std::fmt::Debug for SchemaNode<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaNode")
            .field("site", self.site)
            .finish_non_exhaustive()
    }
}

impl<'a> SchemaNode<'a> {
    /// A node over `value`, resolving references against `defs`.
    pub fn new(defs: &'a Map<String, Value>, value: &'a Value) -> SchemaNode<'a> {
        SchemaNode {
            defs,
            value: resolve(defs, value),
            site: value,
        }
    }

    fn child(&self, v: &'a Value) -> SchemaNode<'a> {
        SchemaNode::new(self.defs, v)
    }

    /// An extension or keyword, looked up where the field was declared first,
    /// then on the referenced definition.
    pub fn ext(&self, name: &str) -> Option<&'a Value> {
        self.site.get(name).or_else(|| self.value.get(name))
    }

    /// The schema of property `name` of an object.
    pub fn property(&self, name: &str) -> Option<SchemaNode<'a>> {
        self.value
            .get("properties")
            .and_then(|p| p.get(name))
            .map(|v| self.child(v))
    }

    /// The schema of the values of a map (`additionalProperties`).
    pub fn values(&self) -> Option<SchemaNode<'a>> {
        match self.value.get("additionalProperties") {
            Some(v @ Value::Object(_)) => Some(self.child(v)),
            _ => None,
        }
    }

    /// The schema of a field: a declared property, else the map's values.
    pub fn field(&self, name: &str) -> Option<SchemaNode<'a>> {
        self.property(name).or_else(|| self.values())
    }

    /// The schema of a list's items.
    pub fn items(&self) -> Option<SchemaNode<'a>> {
        self.value.get("items").map(|v| self.child(v))
    }

    /// The JSON type (`object`, `array`, `string`, ...), if stated.
    pub fn type_name(&self) -> Option<&'a str> {
        self.value.get("type").and_then(Value::as_str)
    }

    /// Whether unknown fields are kept here (`x-kubernetes-preserve-unknown-fields`).
    pub fn preserves_unknown(&self) -> bool {
        self.ext("x-kubernetes-preserve-unknown-fields")
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// `x-kubernetes-patch-strategy`, e.g. `merge` or `merge,retainKeys`.
    pub fn patch_strategy(&self) -> Option<&'a str> {
        self.ext("x-kubernetes-patch-strategy")
            .and_then(Value::as_str)
    }

    /// `x-kubernetes-patch-merge-key`.
    pub fn patch_merge_key(&self) -> Option<&'a str> {
        self.ext("x-kubernetes-patch-merge-key")
            .and_then(Value::as_str)
    }

    /// The list type for server-side apply. Upstream's defaults apply: a list
    /// without a marker is atomic.
    pub fn list_type(&self) -> ListType {
        match self.ext("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => ListType::Set,
            Some("map") => ListType::Map(
                self.ext("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|keys| {
                        keys.iter()
                            .filter_map(|k| k.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default(),
            ),
            _ => ListType::Atomic,
        }
    }

    /// Whether a map or struct is atomic for server-side apply
    /// (`x-kubernetes-map-type: atomic`).
    pub fn map_atomic(&self) -> bool {
        self.ext("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic")
    }
}

/// Follow `$ref` and the `allOf: [{$ref}]` wrapper until a concrete schema.
fn resolve<'a>(defs: &'a Map<String, Value>, mut v: &'a Value) -> &'a Value {
    for _ in 0..16 {
        if let Some(r) = v.get("$ref").and_then(Value::as_str) {
            match r.strip_prefix(REF_PREFIX).and_then(|name| defs.get(name)) {
                Some(next) => {
                    v = next;
                    continue;
                }
                None => return v,
            }
        }
        match v.get("allOf").and_then(Value::as_array) {
            Some(all) if all.len() == 1 => v = &all[0],
            _ => return v,
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_kind_has_a_schema() {
        let s = builtin();
        for r in crate::resources::RESOURCES {
            assert!(
                s.kind(r.group, r.version, r.kind).is_some(),
                "{}/{} {} has no schema",
                r.group,
                r.version,
                r.kind
            );
        }
    }

    #[test]
    fn navigation_reaches_container_ports() {
        let s = builtin();
        let pod = s.kind("", "v1", "Pod").unwrap();
        let containers = pod
            .property("spec")
            .unwrap()
            .property("containers")
            .unwrap();
        assert_eq!(containers.type_name(), Some("array"));
        assert_eq!(containers.patch_strategy(), Some("merge"));
        assert_eq!(containers.patch_merge_key(), Some("name"));
        assert_eq!(containers.list_type(), ListType::Map(vec!["name".into()]));
        let ports = containers.items().unwrap().property("ports").unwrap();
        assert_eq!(ports.patch_merge_key(), Some("containerPort"));
        let name = containers.items().unwrap().property("name").unwrap();
        assert_eq!(name.type_name(), Some("string"));
        // Map values.
        let labels = pod
            .property("metadata")
            .unwrap()
            .property("labels")
            .unwrap();
        assert_eq!(labels.values().unwrap().type_name(), Some("string"));
        // The kind carries its GVK.
        assert!(pod.ext("x-kubernetes-group-version-kind").is_some());
    }
}
