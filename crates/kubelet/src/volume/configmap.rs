//! configMap volumes and projections: every key of `data` and
//! `binaryData` (or only `items`, each to its path with its mode), with
//! `defaultMode` (0644) otherwise. A missing ConfigMap or key is an error
//! unless `optional`; an optional missing ConfigMap is an empty volume.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, KeyToPath};

use super::atomic::{File, Payload};

/// Upstream's `ConfigMapVolumeSourceDefaultMode`.
pub const DEFAULT_MODE: i32 = 0o644;

/// A ConfigMap's keys and their bytes (`binaryData` as is).
pub fn data(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut d: BTreeMap<String, Vec<u8>> = cm
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .collect();
    for (k, v) in cm.binary_data.iter().flatten() {
        d.insert(k.clone(), v.0.clone());
    }
    d
}

/// The files of `items` (all keys when empty) out of `data`. `missing_key`
/// is the error for a key that is not there (upstream words it per kind).
pub fn keyed_payload(
    data: &BTreeMap<String, Vec<u8>>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: i32,
    optional: bool,
    missing_key: impl Fn(&str) -> String,
) -> Result<Payload, String> {
    let mut out = Payload::new();
    match items.filter(|i| !i.is_empty()) {
        None => {
            for (k, v) in data {
                out.insert(
                    k.clone(),
                    File {
                        data: v.clone(),
                        mode: default_mode as u32,
                    },
                );
            }
        }
        Some(items) => {
            for it in items {
                match data.get(&it.key) {
                    Some(v) => {
                        out.insert(
                            it.path.clone(),
                            File {
                                data: v.clone(),
                                mode: it.mode.unwrap_or(default_mode) as u32,
                            },
                        );
                    }
                    None if optional => {}
                    None => return Err(missing_key(&it.key)),
                }
            }
        }
    }
    Ok(out)
}

/// The payload of ConfigMap `name` (`None`: not found).
pub fn payload(
    name: &str,
    cm: Option<&ConfigMap>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: Option<i32>,
    optional: bool,
) -> Result<Payload, String> {
    let Some(cm) = cm else {
        return if optional {
            Ok(Payload::new())
        } else {
            Err(format!("configmap \"{name}\" not found"))
        };
    };
    keyed_payload(
        &data(cm),
        items,
        default_mode.unwrap_or(DEFAULT_MODE),
        optional,
        |k| format!("configmap references non-existent config key: {k}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn items_modes_and_missing() {
        let cm: ConfigMap = serde_json::from_value(json!({
            "metadata": {"name": "cfg"}, "data": {"a": "1", "b": "2"}, "binaryData": {"bin": "AAE="}
        }))
        .unwrap();
        let all = payload("cfg", Some(&cm), None, None, false).unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all["bin"].data, vec![0, 1]);
        assert_eq!(all["a"].mode, 0o644);
        let items: Vec<KeyToPath> = serde_json::from_value(json!([
            {"key": "a", "path": "conf/a.txt", "mode": 0o600}, {"key": "b", "path": "b"}
        ]))
        .unwrap();
        let some = payload("cfg", Some(&cm), Some(&items), Some(0o440), false).unwrap();
        assert_eq!(some.keys().collect::<Vec<_>>(), ["b", "conf/a.txt"]);
        assert_eq!(some["conf/a.txt"].mode, 0o600);
        assert_eq!(some["b"].mode, 0o440);
        let bad: Vec<KeyToPath> =
            serde_json::from_value(json!([{"key": "zz", "path": "z"}])).unwrap();
        assert_eq!(
            payload("cfg", Some(&cm), Some(&bad), None, false).unwrap_err(),
            "configmap references non-existent config key: zz"
        );
        assert!(payload("cfg", Some(&cm), Some(&bad), None, true)
            .unwrap()
            .is_empty());
        assert_eq!(
            payload("gone", None, None, None, false).unwrap_err(),
            "configmap \"gone\" not found"
        );
        assert!(payload("gone", None, None, None, true).unwrap().is_empty());
    }
}
