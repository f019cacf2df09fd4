//! The CustomResourceDefinition object: its defaults, its validation
//! (upstream's `ValidateCustomResourceDefinition`, v1 rules), and its parsed
//! form, [`CrdDef`], which serving works from.

use std::sync::Arc;

use serde_json::{json, Value};

use super::jsonpath::JsonPath;
use super::schema::Schema;
use super::structural;
use crate::error::FieldError;
use crate::strategy::names::{is_dns1035_label, is_dns1123_subdomain};

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

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// Whether the CRD has condition `ty` with status `True`.
pub fn condition_true(crd: &Value, ty: &str) -> bool {
    crd.pointer("/status/conditions")
        .and_then(Value::as_array)
        .is_some_and(|cs| cs.iter().any(|c| s(c, "type") == ty && s(c, "status") == "True"))
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
            name: crd.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("").to_string(),
            uid: crd.pointer("/metadata/uid").and_then(Value::as_str).unwrap_or("").to_string(),
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
    let scale = subs.get("scale").filter(|x| x.is_object()).map(|sc| ScaleDef {
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
                    Some((crate::resources::intern_str(p.trim_start_matches('.')), path))
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
        deprecated: v.get("deprecated").and_then(Value::as_bool).unwrap_or(false),
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
        let kind = names.get("kind").and_then(Value::as_str).unwrap_or("").to_string();
        if names.get("singular").and_then(Value::as_str).unwrap_or("").is_empty() {
            names.insert("singular".into(), json!(kind.to_lowercase()));
        }
        if names.get("listKind").and_then(Value::as_str).unwrap_or("").is_empty() && !kind.is_empty() {
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
    let Some(sv) = storage_version(crd) else { return };
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

fn invalid_each(field: &str, value: &str, msgs: Vec<String>, out: &mut Vec<FieldError>) {
    if !msgs.is_empty() {
        out.push(FieldError::invalid(field, value, msgs.join(",")));
    }
}

fn enum_string(field: &str, value: &str, accepted: &[&str], out: &mut Vec<FieldError>) {
    if value.is_empty() {
        out.push(FieldError::required(field, ""));
    } else if !accepted.contains(&value) {
        out.push(FieldError::not_supported(field, value, accepted));
    }
}

/// `ValidateCustomResourceDefinitionNames`.
pub fn validate_names(names: &Value, path: &str, out: &mut Vec<FieldError>) {
    let n = Names::parse(names);
    for (field, value) in [("plural", &n.plural), ("singular", &n.singular)] {
        if !value.is_empty() {
            invalid_each(&format!("{path}.{field}"), value, is_dns1035_label(value), out);
        }
    }
    for (field, value) in [("kind", &n.kind), ("listKind", &n.list_kind)] {
        let errs = is_dns1035_label(&value.to_lowercase());
        if !value.is_empty() && !errs.is_empty() {
            out.push(FieldError::invalid(
                format!("{path}.{field}"),
                value.as_str(),
                format!("may have mixed case, but should otherwise match: {}", errs.join(",")),
            ));
        }
    }
    for (i, sn) in n.short_names.iter().enumerate() {
        invalid_each(&format!("{path}.shortNames[{i}]"), sn, is_dns1035_label(sn), out);
    }
    if !n.kind.is_empty() && n.kind == n.list_kind {
        out.push(FieldError::invalid(
            format!("{path}.listKind"),
            n.list_kind.as_str(),
            "kind and listKind may not be the same",
        ));
    }
    for (i, c) in n.categories.iter().enumerate() {
        invalid_each(&format!("{path}.categories[{i}]"), c, is_dns1035_label(c), out);
    }
}

fn simple_json_path(p: &str, field: &str, out: &mut Vec<FieldError>) -> bool {
    if p.is_empty() {
        out.push(FieldError::invalid(field, p, "must not be empty"));
        false
    } else if !p.starts_with('.') {
        out.push(FieldError::invalid(field, p, "must be a simple json path starting with ."));
        false
    } else {
        true
    }
}

fn validate_subresources(subs: &Value, path: &str, out: &mut Vec<FieldError>) {
    let Some(scale) = subs.get("scale").filter(|x| x.is_object()) else {
        return;
    };
    let spec_path = s(scale, "specReplicasPath");
    let f = format!("{path}.scale.specReplicasPath");
    if spec_path.is_empty() {
        out.push(FieldError::required(f, ""));
    } else if simple_json_path(spec_path, &f, out) && !spec_path.starts_with(".spec.") {
        out.push(FieldError::invalid(f, spec_path, "should be a json path under .spec"));
    }
    let status_path = s(scale, "statusReplicasPath");
    let f = format!("{path}.scale.statusReplicasPath");
    if status_path.is_empty() {
        out.push(FieldError::required(f, ""));
    } else if simple_json_path(status_path, &f, out) && !status_path.starts_with(".status.") {
        out.push(FieldError::invalid(f, status_path, "should be a json path under .status"));
    }
    let sel = s(scale, "labelSelectorPath");
    let f = format!("{path}.scale.labelSelectorPath");
    if !sel.is_empty()
        && simple_json_path(sel, &f, out)
        && !sel.starts_with(".spec.")
        && !sel.starts_with(".status.")
    {
        out.push(FieldError::invalid(f, sel, "should be a json path under either .spec or .status"));
    }
}

fn validate_column(c: &Value, path: &str, out: &mut Vec<FieldError>) {
    const TYPES: &[&str] = &["boolean", "date", "integer", "number", "string"];
    const FORMATS: &[&str] = &["byte", "date", "date-time", "double", "float", "int32", "int64", "password"];
    if s(c, "name").is_empty() {
        out.push(FieldError::required(format!("{path}.name"), ""));
    }
    let ty = s(c, "type");
    let must = format!("must be one of {}", TYPES.join(","));
    if ty.is_empty() {
        out.push(FieldError::required(format!("{path}.type"), must));
    } else if !TYPES.contains(&ty) {
        out.push(FieldError::invalid(format!("{path}.type"), ty, must));
    }
    let format = s(c, "format");
    if !format.is_empty() && !FORMATS.contains(&format) {
        out.push(FieldError::invalid(
            format!("{path}.format"),
            format,
            format!("must be one of {}", FORMATS.join(",")),
        ));
    }
    let jp = s(c, "jsonPath");
    let f = format!("{path}.JSONPath");
    if jp.is_empty() {
        out.push(FieldError::required(f, ""));
    } else if simple_json_path(jp, &f, out) {
        if let Err(e) = JsonPath::parse(jp) {
            out.push(FieldError::invalid(f, jp, format!("must be a valid JSONPath: {e}")));
        }
    }
}

fn validate_selectable(fields: &[Value], schema: Option<&Schema>, path: &str, out: &mut Vec<FieldError>) {
    let mut seen: Vec<&str> = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        let fp = format!("{path}[{i}].jsonPath");
        let jp = s(f, "jsonPath");
        if jp.is_empty() {
            out.push(FieldError::required(fp, ""));
            continue;
        }
        let simple = jp.starts_with('.')
            && jp[1..]
                .split('.')
                .all(|p| !p.is_empty() && !p.contains(['[', ']', '*', '?', '@']));
        let target = schema.and_then(|sc| sc.at_path(jp));
        if !simple || target.is_none() {
            out.push(FieldError::invalid(fp, jp, "is an invalid path: does not refer to a valid field"));
            continue;
        }
        if jp.trim_start_matches('.').split('.').next() == Some("metadata") {
            out.push(FieldError::invalid(fp.clone(), jp, "must not point to fields in metadata"));
        }
        if !target.is_some_and(|t| matches!(t.ty.as_str(), "string" | "boolean" | "integer")) {
            out.push(FieldError::invalid(fp.clone(), jp, "must point to a field of type string, boolean or integer. Enum string fields and strings with formats are allowed."));
        }
        if seen.contains(&jp) {
            out.push(FieldError::duplicate(fp, jp));
        } else {
            seen.push(jp);
        }
    }
    if seen.len() > 8 {
        out.push(FieldError {
            field: path.to_string(),
            kind: crate::error::FieldErrorType::TooMany,
            value: Some(json!(seen.len())),
            detail: "must have at most 8 items".into(),
        });
    }
}

fn validate_deprecation(v: &Value, path: &str, out: &mut Vec<FieldError>) {
    let deprecated = v.get("deprecated").and_then(Value::as_bool).unwrap_or(false);
    let Some(w) = v.get("deprecationWarning").and_then(Value::as_str) else {
        return;
    };
    let f = format!("{path}.deprecationWarning");
    if !deprecated {
        out.push(FieldError::invalid(f.clone(), w, "can only be set for deprecated versions"));
    }
    if w.len() > 256 {
        out.push(FieldError::invalid(f.clone(), w, "must be <= 256 characters long"));
    }
    if w.is_empty() {
        out.push(FieldError::invalid(f.clone(), w, "must not be an empty string"));
    }
    if let Some((i, _)) = w.char_indices().find(|(_, c)| c.is_control()) {
        out.push(FieldError::invalid(f, w, format!("must only contain printable UTF-8 characters; control character found at index {i}")));
    }
}

fn validate_conversion(conv: &Value, out: &mut Vec<FieldError>) {
    if conv.is_null() {
        return;
    }
    let strategy = s(conv, "strategy");
    enum_string("spec.conversion.strategy", strategy, &["None", "Webhook"], out);
    if strategy == "Webhook" {
        match conv.pointer("/webhook/clientConfig").filter(|c| c.is_object()) {
            None => out.push(FieldError::required(
                "spec.conversion.webhookClientConfig",
                "required when strategy is set to Webhook",
            )),
            Some(cc) => {
                let url = cc.get("url").is_some_and(|u| !u.is_null());
                let svc = cc.get("service").is_some_and(|u| !u.is_null());
                if url == svc {
                    out.push(FieldError::required(
                        "spec.conversion.webhookClientConfig",
                        "exactly one of url or service is required",
                    ));
                }
            }
        }
        let versions = conv
            .pointer("/webhook/conversionReviewVersions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if versions.is_empty() {
            out.push(FieldError::required("spec.conversion.conversionReviewVersions", ""));
        } else if !versions.iter().any(|v| v == "v1" || v == "v1beta1") {
            out.push(FieldError::invalid(
                "spec.conversion.conversionReviewVersions",
                Value::Array(versions),
                "must include at least one of v1, v1beta1",
            ));
        }
    } else if conv.get("webhook").is_some_and(|w| !w.is_null()) {
        out.push(FieldError::forbidden(
            "spec.conversion.webhookClientConfig",
            "should not be set when strategy is not set to Webhook",
        ));
    }
}

fn protected_group(g: &str) -> bool {
    g == "k8s.io" || g.ends_with(".k8s.io") || g == "kubernetes.io" || g.ends_with(".kubernetes.io")
}

/// The `api-approved.kubernetes.io` rule for groups of the Kubernetes project.
fn validate_api_approval(new: &Value, old: Option<&Value>, out: &mut Vec<FieldError>) {
    const ANNOTATION: &str = "api-approved.kubernetes.io";
    if !protected_group(s(&new["spec"], "group")) {
        return;
    }
    let state = |crd: &Value| -> (u8, String) {
        let a = crd
            .pointer("/metadata/annotations")
            .and_then(|m| m.get(ANNOTATION))
            .and_then(Value::as_str)
            .unwrap_or("");
        if a.is_empty() {
            (0, format!("protected groups must have approval annotation {ANNOTATION:?}, see https://github.com/kubernetes/enhancements/pull/1111"))
        } else if a.starts_with("unapproved") {
            (2, String::new())
        } else if a.starts_with("http://") || a.starts_with("https://") || a.starts_with('/') {
            (3, String::new())
        } else {
            (1, format!("protected groups must have approval annotation {ANNOTATION:?} with either a URL or a reason starting with \"unapproved\", see https://github.com/kubernetes/enhancements/pull/1111"))
        }
    };
    let (now, why) = state(new);
    if old.is_some_and(|o| state(o).0 == now) {
        return;
    }
    let field = format!("metadata.annotations[{ANNOTATION}]");
    match now {
        0 => out.push(FieldError::required(field, why)),
        1 => {
            let v = new.pointer("/metadata/annotations").and_then(|m| m.get(ANNOTATION)).cloned().unwrap_or(Value::Null);
            out.push(FieldError::invalid(field, v, why))
        }
        _ => {}
    }
}

/// Upstream's `ValidateCustomResourceDefinition` (create) and, with `old`,
/// `ValidateCustomResourceDefinitionUpdate`; object meta is validated by
/// the registry, except the CRD's name rule, checked here.
pub fn validate(crd: &Value, old: Option<&Value>) -> Vec<FieldError> {
    let mut out = Vec::new();
    let spec = &crd["spec"];
    let group = s(spec, "group");
    let plural = spec.pointer("/names/plural").and_then(Value::as_str).unwrap_or("");
    let name = crd.pointer("/metadata/name").and_then(Value::as_str).unwrap_or("");
    if old.is_none() && !name.is_empty() && name != format!("{plural}.{group}") {
        out.push(FieldError::invalid("metadata.name", name, "must be spec.names.plural+\".\"+spec.group"));
    }
    if group.is_empty() {
        out.push(FieldError::required("spec.group", ""));
    } else {
        let errs = is_dns1123_subdomain(group);
        if !errs.is_empty() {
            out.push(FieldError::invalid("spec.group", group, errs.join(",")));
        } else if !group.contains('.') {
            out.push(FieldError::invalid("spec.group", group, "should be a domain with at least one dot"));
        }
    }
    enum_string("spec.scope", s(spec, "scope"), &["Cluster", "Namespaced"], &mut out);

    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    let mut storage = 0;
    let mut seen: Vec<&str> = Vec::new();
    let mut unique = true;
    for (i, v) in versions.iter().enumerate() {
        let vp = format!("spec.versions[{i}]");
        let vname = s(v, "name");
        if v.get("storage").and_then(Value::as_bool) == Some(true) {
            storage += 1;
        }
        if seen.contains(&vname) {
            unique = false;
        } else {
            seen.push(vname);
        }
        invalid_each(&format!("{vp}.name"), vname, is_dns1035_label(vname), &mut out);
        validate_deprecation(v, &vp, &mut out);
        let status_enabled = v.pointer("/subresources/status").is_some_and(|x| x.is_object());
        match v.pointer("/schema/openAPIV3Schema").filter(|x| !x.is_null()) {
            None => out.push(FieldError::required(format!("{vp}.schema.openAPIV3Schema"), "")),
            Some(schema) => out.extend(structural::check(schema, &format!("{vp}.schema.openAPIV3Schema"), status_enabled)),
        }
        if let Some(subs) = v.get("subresources").filter(|x| x.is_object()) {
            validate_subresources(subs, &format!("{vp}.subresources"), &mut out);
        }
        if let Some(cols) = v.get("additionalPrinterColumns").and_then(Value::as_array) {
            for (j, c) in cols.iter().enumerate() {
                validate_column(c, &format!("{vp}.additionalPrinterColumns[{j}]"), &mut out);
            }
        }
        if let Some(fields) = v.get("selectableFields").and_then(Value::as_array).filter(|f| !f.is_empty()) {
            let schema = v.pointer("/schema/openAPIV3Schema").map(Schema::parse);
            validate_selectable(fields, schema.as_ref(), &format!("{vp}.selectableFields"), &mut out);
        }
    }
    if !unique {
        out.push(FieldError::invalid("spec.versions", Value::Array(versions.clone()), "must contain unique version names"));
    }
    if storage != 1 {
        out.push(FieldError::invalid("spec.versions", Value::Array(versions.clone()), "must have exactly one version marked as storage version"));
    }
    for field in ["plural", "singular", "kind", "listKind"] {
        if spec.pointer(&format!("/names/{field}")).and_then(Value::as_str).unwrap_or("").is_empty() {
            out.push(FieldError::required(format!("spec.names.{field}"), ""));
        }
    }
    validate_names(&spec["names"], "spec.names", &mut out);
    validate_conversion(&spec["conversion"], &mut out);
    if spec.get("preserveUnknownFields") == Some(&Value::Bool(true))
        && old.is_none_or(|o| o.pointer("/spec/preserveUnknownFields") != Some(&Value::Bool(true)))
    {
        out.push(FieldError::invalid(
            "spec.preserveUnknownFields",
            true,
            "cannot set to true, set x-kubernetes-preserve-unknown-fields to true in spec.versions[*].schema instead",
        ));
    }
    out.extend(validate_status(crd));
    validate_api_approval(crd, old, &mut out);
    if let Some(old) = old {
        let ospec = &old["spec"];
        if condition_true(old, "Established") {
            for (field, ptr) in [("spec.scope", "/scope"), ("spec.names.kind", "/names/kind")] {
                if spec.pointer(ptr) != ospec.pointer(ptr) {
                    out.push(FieldError::invalid(field, spec.pointer(ptr).cloned().unwrap_or(Value::Null), "field is immutable"));
                }
            }
        }
        for (field, ptr) in [("spec.group", "/group"), ("spec.names.plural", "/names/plural")] {
            if spec.pointer(ptr) != ospec.pointer(ptr) {
                out.push(FieldError::invalid(field, spec.pointer(ptr).cloned().unwrap_or(Value::Null), "field is immutable"));
            }
        }
    }
    out
}

/// Status rules: accepted names, and stored versions that still exist.
pub fn validate_status(crd: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    if let Some(an) = crd.pointer("/status/acceptedNames") {
        validate_names(an, "status.acceptedNames", &mut out);
    }
    let stored: Vec<String> = crd
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let path = "status.storedVersions";
    if stored.is_empty() {
        out.push(FieldError::invalid(path, json!(stored), "must have at least one stored version"));
        return out;
    }
    let versions = crd.pointer("/spec/versions").and_then(Value::as_array).cloned().unwrap_or_default();
    for v in &versions {
        let name = s(v, "name");
        if v.get("storage").and_then(Value::as_bool) == Some(true) && !stored.iter().any(|x| x == name) {
            out.push(FieldError::invalid(path, json!(stored), format!("must have the storage version {name}")));
        }
    }
    for (i, sv) in stored.iter().enumerate() {
        if !versions.iter().any(|v| s(v, "name") == sv) {
            out.push(FieldError::invalid(
                format!("{path}[{i}]"),
                sv.as_str(),
                format!("missing from spec.versions; {sv} was previously a storage version, and must remain in spec.versions until a storage migration ensures no data remains persisted in {sv} and removes {sv} from status.storedVersions"),
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn prepared(mut crd: Value) -> Value {
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
    fn valid_crd_passes() {
        let crd = prepared(crontab());
        assert_eq!(validate(&crd, None), vec![]);
    }

    #[test]
    fn invalid_crds() {
        let cases: Vec<(fn(&mut Value), &str)> = vec![
            (|c| c["metadata"]["name"] = json!("wrong.stable.example.com"), "metadata.name: Invalid value: \"wrong.stable.example.com\": must be spec.names.plural+\".\"+spec.group"),
            (|c| c["spec"]["group"] = json!("nodots"), "spec.group: Invalid value: \"nodots\": should be a domain with at least one dot"),
            (|c| c["spec"]["scope"] = json!("Global"), "spec.scope: Unsupported value: \"Global\": supported values: \"Cluster\", \"Namespaced\""),
            (|c| c["spec"]["versions"][1]["storage"] = json!(true), "spec.versions: Invalid value: "),
            (|c| c["spec"]["versions"][1]["name"] = json!("v1"), "must contain unique version names"),
            (|c| c["spec"]["versions"][0]["subresources"]["scale"]["specReplicasPath"] = json!(".status.x"), "spec.versions[0].subresources.scale.specReplicasPath: Invalid value: \".status.x\": should be a json path under .spec"),
            (|c| c["spec"]["versions"][0]["additionalPrinterColumns"][0]["type"] = json!("text"), "spec.versions[0].additionalPrinterColumns[0].type: Invalid value: \"text\": must be one of boolean,date,integer,number,string"),
            (|c| c["spec"]["versions"][0]["additionalPrinterColumns"][0]["jsonPath"] = json!("spec.x"), "spec.versions[0].additionalPrinterColumns[0].JSONPath: Invalid value: \"spec.x\": must be a simple json path starting with ."),
            (|c| c["spec"]["names"]["shortNames"] = json!(["Bad_Name"]), "spec.names.shortNames[0]: Invalid value: \"Bad_Name\": a DNS-1035 label must consist of"),
            (|c| { c["spec"]["versions"][1].as_object_mut().unwrap().remove("schema"); }, "spec.versions[1].schema.openAPIV3Schema: Required value"),
            (|c| c["spec"]["group"] = json!("things.k8s.io"), "metadata.annotations[api-approved.kubernetes.io]: Required value: protected groups must have approval annotation"),
        ];
        for (mutate, want) in cases {
            let mut crd = crontab();
            mutate(&mut crd);
            let crd = prepared(crd);
            let msgs: Vec<String> = validate(&crd, None).iter().map(FieldError::message).collect();
            assert!(msgs.iter().any(|m| m.contains(want)), "want {want}\ngot {msgs:#?}");
        }
    }

    #[test]
    fn immutable_fields_on_update() {
        let mut old = prepared(crontab());
        old["status"]["conditions"] = json!([{"type": "Established", "status": "True"}]);
        let mut new = old.clone();
        new["spec"]["scope"] = json!("Cluster");
        new["spec"]["names"]["plural"] = json!("crons");
        let msgs: Vec<String> = validate(&new, Some(&old)).iter().map(FieldError::message).collect();
        assert!(msgs.iter().any(|m| m == "spec.scope: Invalid value: \"Cluster\": field is immutable"), "{msgs:?}");
        assert!(msgs.iter().any(|m| m == "spec.names.plural: Invalid value: \"crons\": field is immutable"), "{msgs:?}");
    }

    #[test]
    fn stored_versions_must_stay() {
        let mut crd = prepared(crontab());
        crd["status"]["storedVersions"] = json!(["v1", "v0"]);
        let msgs: Vec<String> = validate_status(&crd).iter().map(FieldError::message).collect();
        assert!(msgs[0].starts_with("status.storedVersions[1]: Invalid value: \"v0\": missing from spec.versions"), "{msgs:?}");
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
        assert_eq!(v1.scale.as_ref().unwrap().spec_replicas_path, ".spec.replicas");
        assert_eq!(v1.columns[0].name, "Spec");
        assert!(!d.version("v1beta1").unwrap().status);
        assert_eq!(d.names.short_names, vec!["ct"]);
    }
}
