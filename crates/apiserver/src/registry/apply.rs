//! PATCH with `application/apply-patch+yaml`: server-side apply. The merge
//! and the ownership rules live in [`crate::apply`]; this is the verb: read
//! the configuration, apply it to the stored object with the usual
//! compare-and-swap, or create the object when there is none.

use serde_json::{json, Value};

use super::meta::{meta_str, metadata_mut};
use super::write::Track;
use super::{FieldValidation, Registry, WriteOptions, WriteResult};
use crate::error::{ApiError, ApiResult};
use crate::route::ResourcePath;

/// How often an apply retries when the object appears or disappears under it.
const CREATE_RACE_RETRIES: usize = 4;

/// The configuration: YAML, or JSON (which upstream reads as YAML too),
/// and the keys it repeats within one map.
fn decode_config(body: &[u8]) -> ApiResult<(Value, Vec<String>)> {
    let starts_json = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    let (v, repeated): (Value, Vec<String>) = if starts_json {
        let v = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
        (
            v,
            repeated_keys(&mut serde_json::Deserializer::from_slice(body)),
        )
    } else {
        // `decode` refuses alias bombs and deep nesting before anything else
        // reads the text.
        let v = crate::yaml::decode(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
        let text = std::str::from_utf8(body).unwrap_or_default();
        (v, repeated_keys(serde_norway::Deserializer::from_str(text)))
    };
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "error decoding patch: an apply configuration must be an object",
        ));
    }
    Ok((v, repeated))
}

/// Keys that appear twice in one map of a document, which decoding
/// silently resolves to the last value.
fn repeated_keys<'de, D: serde::Deserializer<'de>>(d: D) -> Vec<String> {
    let found = std::cell::RefCell::new(Vec::new());
    let _ = serde::de::DeserializeSeed::deserialize(Repeats(&found), d);
    found.into_inner()
}

struct Repeats<'a>(&'a std::cell::RefCell<Vec<String>>);

impl<'de> serde::de::DeserializeSeed<'de> for Repeats<'_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Repeats<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Repeats(self.0))?.is_some() {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(k) = map.next_key::<Value>()? {
            let k = match k {
                Value::String(s) => s,
                other => other.to_string(),
            };
            if !seen.insert(k.clone()) {
                self.0.borrow_mut().push(k);
            }
            map.next_value_seed(Repeats(self.0))?;
        }
        Ok(())
    }
}

impl Registry {
    /// Apply a configuration to the object `rp` names, creating it if absent
    /// (except through a subresource).
    pub(super) async fn apply_patch(
        &self,
        rp: &ResourcePath,
        body: &[u8],
        force: bool,
        opts: &WriteOptions,
    ) -> ApiResult<WriteResult> {
        let info = rp.info;
        let name = rp
            .name
            .clone()
            .ok_or_else(|| ApiError::method_not_allowed("patch needs a name"))?;
        let (mut config, repeated) = decode_config(body)?;
        // Upstream reads apply bodies strictly only to find repeated keys;
        // unknown fields fail the schema check below whatever the setting.
        let mut warnings = Vec::new();
        if !repeated.is_empty() {
            let msgs: Vec<String> = repeated
                .iter()
                .map(|k| format!("key {k:?} already set in map"))
                .collect();
            match opts.field_validation {
                FieldValidation::Strict => {
                    return Err(ApiError::bad_request(format!(
                        "error strict decoding patch: yaml: unmarshal errors:\n  {}",
                        msgs.join("\n  ")
                    )))
                }
                FieldValidation::Warn => warnings = msgs,
                FieldValidation::Ignore => {}
            }
        }
        let schema = crate::apply::schema_for(info);
        let ty = schema.node();
        let api_version = info.api_version();
        crate::apply::check_config(ty, &api_version, info.kind, &config)?;
        match meta_str(&config, "name") {
            Some(n) if !n.is_empty() && n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )))
            }
            _ => {}
        }
        // A configuration may pin the version it was written against.
        let wanted_rv = meta_str(&config, "resourceVersion")
            .filter(|s| !s.is_empty())
            .map(super::parse_rv)
            .transpose()?;
        if let Some(m) = config.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        let sub = rp.subresource.clone().unwrap_or_default();
        let manager = crate::apply::manager_of(opts.field_manager.as_deref()).to_string();
        let writer = || crate::apply::writer(info, &sub, &manager, &api_version);
        let prepared = crate::apply::Prepared::new(ty, &config, &writer());
        let notes = super::write::ChangeNotes::default();
        let mut last_err = None;
        for _ in 0..CREATE_RACE_RETRIES {
            let updated = self
                .guaranteed_update(
                    rp,
                    &name,
                    wanted_rv,
                    opts,
                    Vec::new(),
                    Track::Precomputed,
                    &notes,
                    |old| {
                        let known = notes.take_managed();
                        let (new, managed) = crate::apply::apply_known(
                            ty,
                            Some(old),
                            &prepared,
                            &writer(),
                            force,
                            known,
                        )?;
                        notes.put_managed(Some(managed));
                        // The configuration passed the schema check, unknown
                        // fields and types included, and the rest of `new` is
                        // the stored object: nothing to decode again.
                        notes.found(None);
                        Ok(new)
                    },
                )
                .await;
            match updated {
                Err(e) if e.code == 404 && rp.subresource.is_none() => {}
                other => return other,
            }
            // Creating through apply is a create: refused while a CRD ends.
            crate::crd::refuse_create_while_terminating(info)?;
            let (mut obj, mut managed) =
                crate::apply::apply_known(ty, None, &prepared, &writer(), force, None)?;
            managed.write_to(&mut obj);
            metadata_mut(&mut obj).insert("name".into(), json!(name));
            match self.create_tracked(rp, obj, opts, Track::Precomputed).await {
                // Created by someone else meanwhile: apply to theirs.
                Err(e) if e.reason == "AlreadyExists" => last_err = Some(e),
                Ok(mut created) => {
                    created.warnings.splice(0..0, warnings);
                    return Ok(created);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or_else(|| {
            ApiError::conflict(
                info.group_resource(),
                &name,
                "too many concurrent updates; try again",
            )
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configurations_and_their_repeated_keys() {
        let cases: &[(&str, Value, &[&str])] = &[
            (
                "{\"a\": 1, \"b\": {\"c\": 1, \"c\": 2}}",
                json!({"a": 1, "b": {"c": 2}}),
                &["c"],
            ),
            (
                "a: 1\nb:\n  - x: 1\n    x: 2\na: 3\n",
                json!({"a": 3, "b": [{"x": 2}]}),
                &["x", "a"],
            ),
            (
                "kind: ConfigMap\ndata: {k: v}\n",
                json!({"kind": "ConfigMap", "data": {"k": "v"}}),
                &[],
            ),
        ];
        for (body, want, repeated) in cases {
            let (v, r) = decode_config(body.as_bytes()).unwrap();
            assert_eq!(&v, want, "{body}");
            assert_eq!(r, *repeated, "{body}");
        }
        for bad in ["[1, 2]", "{", "a: [", "just text"] {
            let e = decode_config(bad.as_bytes()).unwrap_err();
            assert_eq!(e.code, 400, "{bad}");
            assert!(
                e.message.starts_with("error decoding patch"),
                "{bad}: {}",
                e.message
            );
        }
    }
}
