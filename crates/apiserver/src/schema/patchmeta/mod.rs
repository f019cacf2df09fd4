//! Patch and list metadata of the built-in types: the facts upstream keeps in
//! Go struct tags (`patchStrategy`, `patchMergeKey`) and markers
//! (`+listType`, `+listMapKey`, `+mapType`, `+structType`), which
//! `k8s-openapi`'s schemas do not carry. [`apply`] writes them into the
//! definitions as the `x-kubernetes-*` extensions upstream's OpenAPI has.

use serde_json::{Map, Value};

/// The metadata of one field of one definition.
#[derive(Clone, Copy, Debug)]
pub struct FieldMeta {
    /// Definition, e.g. `io.k8s.api.core.v1.PodSpec`.
    pub def: &'static str,
    /// Property, e.g. `containers`.
    pub field: &'static str,
    /// `x-kubernetes-patch-strategy`: `merge`, `retainKeys` or `merge,retainKeys`.
    pub strategy: Option<&'static str>,
    /// `x-kubernetes-patch-merge-key`.
    pub merge_key: Option<&'static str>,
    /// `x-kubernetes-list-type`: `atomic`, `set` or `map`.
    pub list_type: Option<&'static str>,
    /// `x-kubernetes-list-map-keys`.
    pub map_keys: &'static [&'static str],
    /// `x-kubernetes-map-type` (`atomic` or `granular`).
    pub map_type: Option<&'static str>,
}

mod apps;
mod batch;
mod core_v1;
mod discovery;
mod meta;
mod networking;
mod node;
mod policy;
mod rbac;

/// Every table, by API group.
static TABLES: &[&[FieldMeta]] = &[
    core_v1::FIELDS,
    apps::FIELDS,
    batch::FIELDS,
    networking::FIELDS,
    node::FIELDS,
    policy::FIELDS,
    rbac::FIELDS,
    discovery::FIELDS,
    meta::FIELDS,
];

/// Definitions of struct types upstream marks `+structType=atomic` (a
/// server-side apply owner replaces them whole). They get
/// `x-kubernetes-map-type: atomic` on the definition itself.
static ATOMIC_TYPES: &[&[&str]] = &[
    core_v1::ATOMIC,
    apps::ATOMIC,
    batch::ATOMIC,
    networking::ATOMIC,
    node::ATOMIC,
    policy::ATOMIC,
    rbac::ATOMIC,
    discovery::ATOMIC,
    meta::ATOMIC,
];

/// Every field entry.
pub fn entries() -> impl Iterator<Item = &'static FieldMeta> {
    TABLES.iter().flat_map(|t| t.iter())
}

/// Every atomic struct definition.
pub fn atomic_types() -> impl Iterator<Item = &'static str> {
    ATOMIC_TYPES.iter().flat_map(|t| t.iter().copied())
}

const EMPTY: FieldMeta = FieldMeta {
    def: "",
    field: "",
    strategy: None,
    merge_key: None,
    list_type: None,
    map_keys: &[],
    map_type: None,
};

/// `patchStrategy:"merge" patchMergeKey:"<key>"` with `+listType=map` and
/// its `+listMapKey`s.
const fn merge_map(
    def: &'static str,
    field: &'static str,
    key: &'static str,
    keys: &'static [&'static str],
) -> FieldMeta {
    FieldMeta {
        def,
        field,
        strategy: Some("merge"),
        merge_key: Some(key),
        list_type: Some("map"),
        map_keys: keys,
        ..EMPTY
    }
}

/// `patchStrategy:"merge" patchMergeKey:"<key>"` on a `+listType=atomic` list.
const fn merge_atomic(def: &'static str, field: &'static str, key: &'static str) -> FieldMeta {
    FieldMeta {
        def,
        field,
        strategy: Some("merge"),
        merge_key: Some(key),
        list_type: Some("atomic"),
        ..EMPTY
    }
}

/// `patchStrategy:"merge"` on a `+listType=set` list of scalars.
const fn merge_set(def: &'static str, field: &'static str) -> FieldMeta {
    FieldMeta {
        def,
        field,
        strategy: Some("merge"),
        list_type: Some("set"),
        ..EMPTY
    }
}

/// A patch strategy alone (`retainKeys`, `replace`).
const fn strategy(def: &'static str, field: &'static str, s: &'static str) -> FieldMeta {
    FieldMeta {
        def,
        field,
        strategy: Some(s),
        ..EMPTY
    }
}

/// `+listType=atomic`.
const fn atomic_list(def: &'static str, field: &'static str) -> FieldMeta {
    FieldMeta {
        def,
        field,
        list_type: Some("atomic"),
        ..EMPTY
    }
}

/// `+listType=set`.
const fn set_list(def: &'static str, field: &'static str) -> FieldMeta {
    FieldMeta {
        def,
        field,
        list_type: Some("set"),
        ..EMPTY
    }
}

/// `+listType=map` with `+listMapKey`s and no patch strategy.
const fn map_list(
    def: &'static str,
    field: &'static str,
    keys: &'static [&'static str],
) -> FieldMeta {
    FieldMeta {
        def,
        field,
        list_type: Some("map"),
        map_keys: keys,
        ..EMPTY
    }
}

/// `+mapType` on a map, or `+structType` on a struct field.
const fn map_type(def: &'static str, field: &'static str, t: &'static str) -> FieldMeta {
    FieldMeta {
        def,
        field,
        map_type: Some(t),
        ..EMPTY
    }
}

/// Write the table's extensions into `defs`. Fields whose definition or
/// property does not exist are skipped (a test checks there are none).
pub fn apply(defs: &mut Map<String, Value>) {
    for def in atomic_types() {
        if let Some(Value::Object(d)) = defs.get_mut(def) {
            d.insert("x-kubernetes-map-type".into(), "atomic".into());
        }
    }
    for m in entries() {
        let Some(prop) = defs
            .get_mut(m.def)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(m.field))
            .and_then(Value::as_object_mut)
        else {
            continue;
        };
        if let Some(s) = m.strategy {
            prop.insert("x-kubernetes-patch-strategy".into(), s.into());
        }
        if let Some(k) = m.merge_key {
            prop.insert("x-kubernetes-patch-merge-key".into(), k.into());
        }
        if let Some(t) = m.list_type {
            prop.insert("x-kubernetes-list-type".into(), t.into());
        }
        if !m.map_keys.is_empty() {
            prop.insert("x-kubernetes-list-map-keys".into(), m.map_keys.into());
        }
        if let Some(t) = m.map_type {
            prop.insert("x-kubernetes-map-type".into(), t.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_names_a_real_field() {
        let s = crate::schema::builtin();
        for m in entries() {
            let def = s
                .defs
                .get(m.def)
                .unwrap_or_else(|| panic!("no definition {}", m.def));
            assert!(
                def.get("properties").and_then(|p| p.get(m.field)).is_some(),
                "{} has no property {}",
                m.def,
                m.field
            );
        }
    }

    #[test]
    fn every_atomic_type_is_a_definition() {
        let s = crate::schema::builtin();
        for def in atomic_types() {
            assert!(s.defs.contains_key(def), "no definition {def}");
            assert!(s.definition(def).unwrap().map_atomic(), "{def}");
        }
    }

    #[test]
    fn no_field_is_listed_twice() {
        let mut seen = std::collections::HashSet::new();
        for m in entries() {
            assert!(seen.insert((m.def, m.field)), "{}.{} twice", m.def, m.field);
        }
    }

    /// Spot checks against upstream's published OpenAPI.
    #[test]
    fn well_known_fields() {
        use crate::schema::ListType;
        let s = crate::schema::builtin();
        let field = |def: &str, path: &[&str]| {
            let mut n = s.definition(def).unwrap();
            for p in path {
                n = n
                    .property(p)
                    .or_else(|| n.items().and_then(|i| i.property(p)))
                    .unwrap();
            }
            n
        };
        let pod = "io.k8s.api.core.v1.Pod";
        let env = field(pod, &["spec", "containers", "env"]);
        assert_eq!(
            (env.patch_strategy(), env.patch_merge_key()),
            (Some("merge"), Some("name"))
        );
        let vols = field(pod, &["spec", "volumes"]);
        assert_eq!(vols.patch_strategy(), Some("merge,retainKeys"));
        let tol = field(pod, &["spec", "tolerations"]);
        assert_eq!(
            (tol.patch_strategy(), tol.list_type()),
            (None, ListType::Atomic)
        );
        let fin = field(pod, &["metadata", "finalizers"]);
        assert_eq!(
            (fin.patch_strategy(), fin.list_type()),
            (Some("merge"), ListType::Set)
        );
        let owners = field(pod, &["metadata", "ownerReferences"]);
        assert_eq!(owners.patch_merge_key(), Some("uid"));
        assert!(owners.items().unwrap().map_atomic());
        let tsc = field(pod, &["spec", "topologySpreadConstraints"]);
        assert_eq!(
            tsc.list_type(),
            ListType::Map(vec!["topologyKey".into(), "whenUnsatisfiable".into()])
        );
        assert!(field(pod, &["spec", "nodeSelector"]).map_atomic());
        let svc_ports = field("io.k8s.api.core.v1.Service", &["spec", "ports"]);
        assert_eq!(
            (svc_ports.patch_merge_key(), svc_ports.list_type()),
            (
                Some("port"),
                ListType::Map(vec!["port".into(), "protocol".into()])
            )
        );
        let strat = field("io.k8s.api.apps.v1.Deployment", &["spec", "strategy"]);
        assert_eq!(strat.patch_strategy(), Some("retainKeys"));
        let sel = field(
            "io.k8s.api.policy.v1.PodDisruptionBudget",
            &["spec", "selector"],
        );
        assert_eq!(sel.patch_strategy(), Some("replace"));
        let eph = field(pod, &["spec", "ephemeralContainers", "volumeMounts"]);
        assert_eq!(eph.patch_merge_key(), Some("mountPath"));
    }
}
