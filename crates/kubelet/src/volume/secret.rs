//! secret volumes and projections: like configMap ones (keys or `items`,
//! `defaultMode` 0644, `optional`), with the Secret's `data` decoded; the
//! volume itself is a tmpfs so secrets never reach the node's disk.

use k8s_openapi::api::core::v1::{KeyToPath, Secret};

use super::atomic::Payload;

/// Upstream's `SecretVolumeSourceDefaultMode`.
pub const DEFAULT_MODE: i32 = 0o644;

/// The payload of Secret `name` (`None`: not found).
pub fn payload(
    name: &str,
    secret: Option<&Secret>,
    items: Option<&Vec<KeyToPath>>,
    default_mode: Option<i32>,
    optional: bool,
) -> Result<Payload, String> {
    let Some(s) = secret else {
        return if optional {
            Ok(Payload::new())
        } else {
            Err(format!("secret \"{name}\" not found"))
        };
    };
    // `data` holds the bytes (base64 only on the wire); `stringData` is
    // merged into it by the API server on write.
    let mut data: std::collections::BTreeMap<String, Vec<u8>> = s
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in s.string_data.iter().flatten() {
        data.entry(k.clone())
            .or_insert_with(|| v.clone().into_bytes());
    }
    super::configmap::keyed_payload(
        &data,
        items,
        default_mode.unwrap_or(DEFAULT_MODE),
        optional,
        |k| format!("references non-existent secret key: {k}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decoded_data_and_missing() {
        let s: Secret = serde_json::from_value(json!({
            "metadata": {"name": "s"}, "data": {"password": "czNjcmV0", "raw": "/wA="}
        }))
        .unwrap();
        let p = payload("s", Some(&s), None, Some(0o400), false).unwrap();
        assert_eq!(p["password"].data, b"s3cret");
        assert_eq!(p["raw"].data, vec![0xff, 0]);
        assert_eq!(p["raw"].mode, 0o400);
        let items: Vec<KeyToPath> =
            serde_json::from_value(json!([{"key": "nope", "path": "x"}])).unwrap();
        assert_eq!(
            payload("s", Some(&s), Some(&items), None, false).unwrap_err(),
            "references non-existent secret key: nope"
        );
        assert_eq!(
            payload("t", None, None, None, false).unwrap_err(),
            "secret \"t\" not found"
        );
    }
}
