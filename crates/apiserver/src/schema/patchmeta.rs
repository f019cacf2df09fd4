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
        map_type: None,
    }
}

/// The table. Entries are added per definition; see upstream's
/// `staging/src/k8s.io/api/*/types.go` for the source facts.
pub static TABLE: &[FieldMeta] = &[
    merge_map(
        "io.k8s.api.core.v1.PodSpec",
        "containers",
        "name",
        &["name"],
    ),
    merge_map(
        "io.k8s.api.core.v1.PodSpec",
        "initContainers",
        "name",
        &["name"],
    ),
    merge_map(
        "io.k8s.api.core.v1.Container",
        "ports",
        "containerPort",
        &["containerPort", "protocol"],
    ),
];

/// Write the table's extensions into `defs`. Fields whose definition or
/// property does not exist are skipped (a test checks there are none).
pub fn apply(defs: &mut Map<String, Value>) {
    for m in TABLE {
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
        for m in TABLE {
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
}
