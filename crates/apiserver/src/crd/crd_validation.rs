//! Validation of CustomResourceDefinition objects: upstream's
//! `ValidateCustomResourceDefinition` and `...Update` with the v1 rules
//! (names, group, scope, versions with exactly one storage version, each
//! version's schema via [`super::structural`], subresources, printer
//! columns, selectable fields, conversion, API approval, stored versions).

use serde_json::{json, Value};

use super::definition::{condition_true, s, Names};
use super::jsonpath::JsonPath;
use super::schema::Schema;
use super::structural;
use crate::error::FieldError;
use crate::strategy::names::{is_dns1035_label, is_dns1123_subdomain};

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
            invalid_each(
                &format!("{path}.{field}"),
                value,
                is_dns1035_label(value),
                out,
            );
        }
    }
    for (field, value) in [("kind", &n.kind), ("listKind", &n.list_kind)] {
        let errs = is_dns1035_label(&value.to_lowercase());
        if !value.is_empty() && !errs.is_empty() {
            out.push(FieldError::invalid(
                format!("{path}.{field}"),
                value.as_str(),
                format!(
                    "may have mixed case, but should otherwise match: {}",
                    errs.join(",")
                ),
            ));
        }
    }
    for (i, sn) in n.short_names.iter().enumerate() {
        invalid_each(
            &format!("{path}.shortNames[{i}]"),
            sn,
            is_dns1035_label(sn),
            out,
        );
    }
    if !n.kind.is_empty() && n.kind == n.list_kind {
        out.push(FieldError::invalid(
            format!("{path}.listKind"),
            n.list_kind.as_str(),
            "kind and listKind may not be the same",
        ));
    }
    for (i, c) in n.categories.iter().enumerate() {
        invalid_each(
            &format!("{path}.categories[{i}]"),
            c,
            is_dns1035_label(c),
            out,
        );
    }
}

fn simple_json_path(p: &str, field: &str, out: &mut Vec<FieldError>) -> bool {
    if p.is_empty() {
        out.push(FieldError::invalid(field, p, "must not be empty"));
        false
    } else if !p.starts_with('.') {
        out.push(FieldError::invalid(
            field,
            p,
            "must be a simple json path starting with .",
        ));
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
        out.push(FieldError::invalid(
            f,
            spec_path,
            "should be a json path under .spec",
        ));
    }
    let status_path = s(scale, "statusReplicasPath");
    let f = format!("{path}.scale.statusReplicasPath");
    if status_path.is_empty() {
        out.push(FieldError::required(f, ""));
    } else if simple_json_path(status_path, &f, out) && !status_path.starts_with(".status.") {
        out.push(FieldError::invalid(
            f,
            status_path,
            "should be a json path under .status",
        ));
    }
    let sel = s(scale, "labelSelectorPath");
    let f = format!("{path}.scale.labelSelectorPath");
    if !sel.is_empty()
        && simple_json_path(sel, &f, out)
        && !sel.starts_with(".spec.")
        && !sel.starts_with(".status.")
    {
        out.push(FieldError::invalid(
            f,
            sel,
            "should be a json path under either .spec or .status",
        ));
    }
}

fn validate_column(c: &Value, path: &str, out: &mut Vec<FieldError>) {
    const TYPES: &[&str] = &["boolean", "date", "integer", "number", "string"];
    const FORMATS: &[&str] = &[
        "byte",
        "date",
        "date-time",
        "double",
        "float",
        "int32",
        "int64",
        "password",
    ];
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
            out.push(FieldError::invalid(
                f,
                jp,
                format!("must be a valid JSONPath: {e}"),
            ));
        }
    }
}

fn validate_selectable(
    fields: &[Value],
    schema: Option<&Schema>,
    path: &str,
    out: &mut Vec<FieldError>,
) {
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
            out.push(FieldError::invalid(
                fp,
                jp,
                "is an invalid path: does not refer to a valid field",
            ));
            continue;
        }
        if jp.trim_start_matches('.').split('.').next() == Some("metadata") {
            out.push(FieldError::invalid(
                fp.clone(),
                jp,
                "must not point to fields in metadata",
            ));
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
    let deprecated = v
        .get("deprecated")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let Some(w) = v.get("deprecationWarning").and_then(Value::as_str) else {
        return;
    };
    let f = format!("{path}.deprecationWarning");
    if !deprecated {
        out.push(FieldError::invalid(
            f.clone(),
            w,
            "can only be set for deprecated versions",
        ));
    }
    if w.len() > 256 {
        out.push(FieldError::invalid(
            f.clone(),
            w,
            "must be <= 256 characters long",
        ));
    }
    if w.is_empty() {
        out.push(FieldError::invalid(
            f.clone(),
            w,
            "must not be an empty string",
        ));
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
    enum_string(
        "spec.conversion.strategy",
        strategy,
        &["None", "Webhook"],
        out,
    );
    if strategy == "Webhook" {
        match conv
            .pointer("/webhook/clientConfig")
            .filter(|c| c.is_object())
        {
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
            out.push(FieldError::required(
                "spec.conversion.conversionReviewVersions",
                "",
            ));
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
            let v = new
                .pointer("/metadata/annotations")
                .and_then(|m| m.get(ANNOTATION))
                .cloned()
                .unwrap_or(Value::Null);
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
    let plural = spec
        .pointer("/names/plural")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = crd
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if old.is_none() && !name.is_empty() && name != format!("{plural}.{group}") {
        out.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if group.is_empty() {
        out.push(FieldError::required("spec.group", ""));
    } else {
        let errs = is_dns1123_subdomain(group);
        if !errs.is_empty() {
            out.push(FieldError::invalid("spec.group", group, errs.join(",")));
        } else if !group.contains('.') {
            out.push(FieldError::invalid(
                "spec.group",
                group,
                "should be a domain with at least one dot",
            ));
        }
    }
    enum_string(
        "spec.scope",
        s(spec, "scope"),
        &["Cluster", "Namespaced"],
        &mut out,
    );

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
        invalid_each(
            &format!("{vp}.name"),
            vname,
            is_dns1035_label(vname),
            &mut out,
        );
        validate_deprecation(v, &vp, &mut out);
        let status_enabled = v
            .pointer("/subresources/status")
            .is_some_and(|x| x.is_object());
        match v
            .pointer("/schema/openAPIV3Schema")
            .filter(|x| !x.is_null())
        {
            None => out.push(FieldError::required(
                format!("{vp}.schema.openAPIV3Schema"),
                "",
            )),
            Some(schema) => out.extend(structural::check(
                schema,
                &format!("{vp}.schema.openAPIV3Schema"),
                status_enabled,
            )),
        }
        if let Some(subs) = v.get("subresources").filter(|x| x.is_object()) {
            validate_subresources(subs, &format!("{vp}.subresources"), &mut out);
        }
        if let Some(cols) = v.get("additionalPrinterColumns").and_then(Value::as_array) {
            for (j, c) in cols.iter().enumerate() {
                validate_column(c, &format!("{vp}.additionalPrinterColumns[{j}]"), &mut out);
            }
        }
        if let Some(fields) = v
            .get("selectableFields")
            .and_then(Value::as_array)
            .filter(|f| !f.is_empty())
        {
            let schema = v.pointer("/schema/openAPIV3Schema").map(Schema::parse);
            validate_selectable(
                fields,
                schema.as_ref(),
                &format!("{vp}.selectableFields"),
                &mut out,
            );
        }
    }
    if !unique {
        out.push(FieldError::invalid(
            "spec.versions",
            Value::Array(versions.clone()),
            "must contain unique version names",
        ));
    }
    if storage != 1 {
        out.push(FieldError::invalid(
            "spec.versions",
            Value::Array(versions.clone()),
            "must have exactly one version marked as storage version",
        ));
    }
    for field in ["plural", "singular", "kind", "listKind"] {
        if spec
            .pointer(&format!("/names/{field}"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
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
    out.extend(validate_stored_versions(crd));
    validate_api_approval(crd, old, &mut out);
    if let Some(old) = old {
        let ospec = &old["spec"];
        if condition_true(old, "Established") {
            for (field, ptr) in [("spec.scope", "/scope"), ("spec.names.kind", "/names/kind")] {
                if spec.pointer(ptr) != ospec.pointer(ptr) {
                    out.push(FieldError::invalid(
                        field,
                        spec.pointer(ptr).cloned().unwrap_or(Value::Null),
                        "field is immutable",
                    ));
                }
            }
        }
        for (field, ptr) in [
            ("spec.group", "/group"),
            ("spec.names.plural", "/names/plural"),
        ] {
            if spec.pointer(ptr) != ospec.pointer(ptr) {
                out.push(FieldError::invalid(
                    field,
                    spec.pointer(ptr).cloned().unwrap_or(Value::Null),
                    "field is immutable",
                ));
            }
        }
    }
    out
}

/// Status rules (also all a status update is checked for): accepted names.
pub fn validate_status(crd: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    if let Some(an) = crd.pointer("/status/acceptedNames") {
        validate_names(an, "status.acceptedNames", &mut out);
    }
    out
}

/// Stored versions must include the storage version, and every stored
/// version must still be in `spec.versions` (checked on create and update of
/// the CRD, not on status updates, which storage migrations use).
pub fn validate_stored_versions(crd: &Value) -> Vec<FieldError> {
    let mut out = Vec::new();
    let stored: Vec<String> = crd
        .pointer("/status/storedVersions")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let path = "status.storedVersions";
    if stored.is_empty() {
        out.push(FieldError::invalid(
            path,
            json!(stored),
            "must have at least one stored version",
        ));
        return out;
    }
    let versions = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for v in &versions {
        let name = s(v, "name");
        if v.get("storage").and_then(Value::as_bool) == Some(true)
            && !stored.iter().any(|x| x == name)
        {
            out.push(FieldError::invalid(
                path,
                json!(stored),
                format!("must have the storage version {name}"),
            ));
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
    use super::super::definition::tests::{crontab, prepared};
    use super::*;

    #[test]
    fn valid_crd_passes() {
        let crd = prepared(crontab());
        assert_eq!(validate(&crd, None), vec![]);
    }

    #[test]
    fn invalid_crds() {
        type Mutation = fn(&mut Value);
        let cases: Vec<(Mutation, &str)> = vec![
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
            let msgs: Vec<String> = validate(&crd, None)
                .iter()
                .map(FieldError::message)
                .collect();
            assert!(
                msgs.iter().any(|m| m.contains(want)),
                "want {want}\ngot {msgs:#?}"
            );
        }
    }

    #[test]
    fn immutable_fields_on_update() {
        let mut old = prepared(crontab());
        old["status"]["conditions"] = json!([{"type": "Established", "status": "True"}]);
        let mut new = old.clone();
        new["spec"]["scope"] = json!("Cluster");
        new["spec"]["names"]["plural"] = json!("crons");
        let msgs: Vec<String> = validate(&new, Some(&old))
            .iter()
            .map(FieldError::message)
            .collect();
        assert!(
            msgs.iter()
                .any(|m| m == "spec.scope: Invalid value: \"Cluster\": field is immutable"),
            "{msgs:?}"
        );
        assert!(
            msgs.iter()
                .any(|m| m == "spec.names.plural: Invalid value: \"crons\": field is immutable"),
            "{msgs:?}"
        );
    }

    #[test]
    fn stored_versions_must_stay() {
        let mut crd = prepared(crontab());
        crd["status"]["storedVersions"] = json!(["v1", "v0"]);
        let msgs: Vec<String> = validate_stored_versions(&crd)
            .iter()
            .map(FieldError::message)
            .collect();
        assert!(
            msgs[0].starts_with(
                "status.storedVersions[1]: Invalid value: \"v0\": missing from spec.versions"
            ),
            "{msgs:?}"
        );
    }
}
