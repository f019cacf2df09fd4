//! The CustomResourceDefinition object: its defaults and its parsed form,
//! [`CrdDef`], which serving works from. Its validation is in
//! [`super::crd_validation`].

use std::sync::Arc;

use serde_json::{json, Value};

use super::jsonpath::JsonPath;
use super::schema::Schema;

/// Names a CRD asks for (`spec.names`) or has been granted (`status.acceptedNames`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Names {
    /// `plural`
    pub plural: String,
    /// `singular`
    pub singular: String,
    /// `kind`
    pub kind: String,
    /// `listKind`
    pub list_kind: String,
    /// `shortNames`
    pub short_names: Vec<String>,
    /// `categories`
    pub categories: Vec<String>,
}

impl Names {
    /// Read a `CustomResourceDefinitionNames` object.
    pub fn parse(v: &Value) -> Names {
        let list = |k: &str| -> Vec<String> {
            v.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        };
        Names {
            plural: s(v, "plural").to_string(),
            singular: s(v, "singular").to_string(),
            kind: s(v, "kind").to_string(),
            list_kind: s(v, "listKind").to_string(),
            short_names: list("shortNames"),
            categories: list("categories"),
        }
    }

    /// The JSON form, as upstream serializes it (empty lists omitted).
    pub fn to_json(&self) -> Value {
        let mut v = json!({ "plural": self.plural, "kind": self.kind });
        if !self.singular.is_empty() {
            v["singular"] = json!(self.singular);
        }
        if !self.short_names.is_empty() {
            v["shortNames"] = json!(self.short_names);
        }
        if !self.list_kind.is_empty() {
            v["listKind"] = json!(self.list_kind);
        }
        if !self.categories.is_empty() {
            v["categories"] = json!(self.categories);
        }
        v
    }
}

/// The `scale` subresource of a version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScaleDef {
    /// `specReplicasPath`, e.g. `.spec.replicas`.
    pub spec_replicas_path: String,
    /// `statusReplicasPath`.
    pub status_replicas_path: String,
    /// `labelSelectorPath`, if any.
    pub label_selector_path: Option<String>,
}

/// One `additionalPrinterColumns` entry.
#[derive(Clone, Debug)]
pub struct ColumnDef {
    /// Header.
    pub name: String,
    /// `integer`, `number`, `string`, `boolean` or `date`.
    pub ty: String,
    /// OpenAPI format.
    pub format: String,
    /// Description.
    pub description: String,
    /// 0 for the standard view, higher for `-o wide`.
    pub priority: i64,
    /// The path as written.
    pub json_path: String,
    /// Where the value comes from; `None` if the path does not parse.
    pub path: Option<JsonPath>,
}

/// One version of a CRD.
#[derive(Clone, Debug)]
pub struct VersionDef {
    /// Version name, e.g. `v1`.
    pub name: String,
    /// Served over the API.
    pub served: bool,
    /// The storage version.
    pub storage: bool,
    /// The parsed schema.
    pub schema: Option<Schema>,
    /// The schema as written, for OpenAPI documents.
    pub raw_schema: Option<Value>,
    /// A `status` subresource.
    pub status: bool,
    /// A `scale` subresource.
    pub scale: Option<ScaleDef>,
    /// Printer columns as declared (empty: upstream's default, an Age column).
    pub columns: Vec<ColumnDef>,
    /// Selectable fields: the field name (path without the leading dot) and its path.
    pub selectable: Vec<(&'static str, JsonPath)>,
    /// `deprecated`
    pub deprecated: bool,
    /// `deprecationWarning`
    pub deprecation_warning: Option<String>,
}

/// A CRD as serving needs it.
#[derive(Clone, Debug)]
pub struct CrdDef {
    /// `metadata.name`
    pub name: String,
    /// `metadata.uid`
    pub uid: String,
    /// `spec.group`
    pub group: String,
    /// `spec.scope == Namespaced`
    pub namespaced: bool,
    /// The accepted names (the requested ones until names are accepted).
    pub names: Names,
    /// `spec.versions`
    pub versions: Vec<Arc<VersionDef>>,
    /// The storage version's name.
    pub storage_version: String,
    /// `NamesAccepted` is true.
    pub names_accepted: bool,
    /// `Established` is true.
    pub established: bool,
    /// Being deleted (`Terminating` true, or a deletion timestamp).
    pub terminating: bool,
}

pub(super) fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Whether the CRD has condition `ty` with status `True`.
pub fn condition_true(crd: &Value, ty: &str) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| {
            cs.iter()
                .any(|c| s(c, "type") == ty && s(c, "status") == "True")
        })
}

impl CrdDef {
    /// Parse a stored CRD.
    pub fn parse(crd: &Value) -> CrdDef {
        let spec = &crd["spec"];
        let accepted = Names::parse(crd.pointer("/status/acceptedNames").unwrap_or(&Value::Null));
        let names = if accepted.plural.is_empty() {
            Names::parse(&spec["names"])
        } else {
            accepted
        };
        let versions: Vec<Arc<VersionDef>> = spec["versions"]
            .as_array()
            .map(|vs| vs.iter().map(|v| Arc::new(parse_version(v))).collect())
            .unwrap_or_default();
        let storage_version = versions
            .iter()
            .find(|v| v.storage)
            .or(versions.first())
            .map(|v| v.name.clone())
            .unwrap_or_default();
        let deleting = crd
            .pointer("/metadata/deletionTimestamp")
            .is_some_and(|d| !d.is_null());
        CrdDef {
            name: crd
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            uid: crd
                .pointer("/metadata/uid")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            group: s(spec, "group").to_string(),
            namespaced: s(spec, "scope") == "Namespaced",
            names,
            versions,
            storage_version,
            names_accepted: condition_true(crd, "NamesAccepted"),
            established: condition_true(crd, "Established"),
            terminating: deleting || condition_true(crd, "Terminating"),
        }
    }

    /// A version by name.
    pub fn version(&self, name: &str) -> Option<Arc<VersionDef>> {
        self.versions.iter().find(|v| v.name == name).cloned()
    }
}

fn parse_version(v: &Value) -> VersionDef {
    let raw_schema = v
        .pointer("/schema/openAPIV3Schema")
        .filter(|x| x.is_object())
        .cloned();
    let subs = &v["subresources"];
    let scale = subs
        .get("scale")
        .filter(|x| x.is_object())
        .map(|sc| ScaleDef {
            spec_replicas_path: s(sc, "specReplicasPath").to_string(),
            status_replicas_path: s(sc, "statusReplicasPath").to_string(),
            label_selector_path: sc
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
                .map(str::to_string),
        });
    let columns = v["additionalPrinterColumns"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .map(|c| ColumnDef {
                    name: s(c, "name").to_string(),
                    ty: s(c, "type").to_string(),
                    format: s(c, "format").to_string(),
                    description: s(c, "description").to_string(),
                    priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    json_path: s(c, "jsonPath").to_string(),
                    path: JsonPath::parse(s(c, "jsonPath")).ok(),
                })
                .collect()
        })
        .unwrap_or_default();
    let selectable = v["selectableFields"]
        .as_array()
        .map(|fs| {
            fs.iter()
                .filter_map(|f| {
                    let p = s(f, "jsonPath");
                    let path = JsonPath::parse(p).ok()?;
                    Some((
                        crate::resources::intern_str(p.trim_start_matches('.')),
                        path,
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    VersionDef {
        name: s(v, "name").to_string(),
        served: v.get("served").and_then(Value::as_bool).unwrap_or(false),
        storage: v.get("storage").and_then(Value::as_bool).unwrap_or(false),
        schema: raw_schema.as_ref().map(Schema::parse),
        raw_schema,
        status: subs.get("status").is_some_and(|x| x.is_object()),
        scale,
        columns,
        selectable,
        deprecated: v
            .get("deprecated")
            .and_then(Value::as_bool)
            .unwrap_or(false),
        deprecation_warning: v
            .get("deprecationWarning")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

/// Upstream's v1 defaults: `singular` (lowercase kind), `listKind`
/// (`<Kind>List`), conversion strategy `None`, webhook service port 443.
pub fn set_defaults(crd: &mut Value) {
    let Some(spec) = crd.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    if let Some(names) = spec.get_mut("names").and_then(Value::as_object_mut) {
        let kind = names
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if names
            .get("singular")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            names.insert("singular".into(), json!(kind.to_lowercase()));
        }
        if names
            .get("listKind")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
            && !kind.is_empty()
        {
            names.insert("listKind".into(), json!(format!("{kind}List")));
        }
    }
    if spec.get("conversion").is_none_or(Value::is_null) {
        spec.insert("conversion".into(), json!({ "strategy": "None" }));
    }
    if let Some(svc) = spec
        .get_mut("conversion")
        .and_then(|c| c.pointer_mut("/webhook/clientConfig/service"))
        .and_then(Value::as_object_mut)
    {
        svc.entry("port").or_insert(json!(443));
    }
}

/// The storage version named in `spec.versions`, if exactly one is marked.
pub fn storage_version(crd: &Value) -> Option<String> {
    let vs = crd.pointer("/spec/versions")?.as_array()?;
    vs.iter()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .map(|v| s(v, "name").to_string())
}

/// Add the storage version to `status.storedVersions` if missing.
pub fn record_stored_version(crd: &mut Value) {
    let Some(sv) = storage_version(crd) else {
        return;
    };
    if !crd["status"].is_object() {
        crd["status"] = json!({});
    }
    let stored = &mut crd["status"]["storedVersions"];
    if !stored.is_array() {
        *stored = json!([]);
    }
    if let Some(a) = stored.as_array_mut() {
        if !a.iter().any(|v| v == &json!(sv)) {
            a.push(json!(sv));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A namespaced CRD with two versions, status and scale.
    pub(crate) fn crontab() -> Value {
        json!({
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "crontabs.stable.example.com"},
            "spec": {
                "group": "stable.example.com",
                "scope": "Namespaced",
                "names": {"plural": "crontabs", "kind": "CronTab", "shortNames": ["ct"], "categories": ["all"]},
                "versions": [
                    {"name": "v1", "served": true, "storage": true,
                     "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                         "spec": {"type": "object", "properties": {"replicas": {"type": "integer"}, "cronSpec": {"type": "string"}}},
                         "status": {"type": "object", "properties": {"replicas": {"type": "integer"}}}}}},
                     "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas"}},
                     "additionalPrinterColumns": [{"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"}]},
                    {"name": "v1beta1", "served": true, "storage": false,
                     "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}
                ]
            }
        })
    }

    /// `crd` after defaulting and the create preparation.
    pub(crate) fn prepared(mut crd: Value) -> Value {
        set_defaults(&mut crd);
        record_stored_version(&mut crd);
        crd
    }

    #[test]
    fn defaults() {
        let crd = prepared(crontab());
        assert_eq!(crd["spec"]["names"]["singular"], "crontab");
        assert_eq!(crd["spec"]["names"]["listKind"], "CronTabList");
        assert_eq!(crd["spec"]["conversion"], json!({"strategy": "None"}));
        assert_eq!(crd["status"]["storedVersions"], json!(["v1"]));
    }

    #[test]
    fn parse_for_serving() {
        let mut crd = prepared(crontab());
        crd["status"]["acceptedNames"] = crd["spec"]["names"].clone();
        crd["status"]["conditions"] = json!([{"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": "True"}]);
        let d = CrdDef::parse(&crd);
        assert!(d.names_accepted && d.established && !d.terminating && d.namespaced);
        assert_eq!(d.storage_version, "v1");
        let v1 = d.version("v1").unwrap();
        assert!(v1.status);
        assert_eq!(
            v1.scale.as_ref().unwrap().spec_replicas_path,
            ".spec.replicas"
        );
        assert_eq!(v1.columns[0].name, "Spec");
        assert!(!d.version("v1beta1").unwrap().status);
        assert_eq!(d.names.short_names, vec!["ct"]);
    }
}
