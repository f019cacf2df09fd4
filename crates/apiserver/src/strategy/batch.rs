//! Jobs and CronJobs (batch/v1), including the controller-uid selector a Job
//! gets unless it asks for a manual one, and upstream's cron schedule parser
//! (robfig/cron's standard five-field syntax and descriptors).

use k8s_openapi::api::batch::v1::{CronJob, Job};
use serde_json::{json, Value};

use super::meta::{selector_matches, validate_label_selector};
use super::pod_defaults::default_template;
use super::util::*;
use super::workloads::validate_pod_template;
use super::{unknown, Decoded, Strategy};
use crate::error::FieldError;

const CONTROLLER_UID: &str = "batch.kubernetes.io/controller-uid";
const LEGACY_CONTROLLER_UID: &str = "controller-uid";
const JOB_NAME: &str = "batch.kubernetes.io/job-name";
const LEGACY_JOB_NAME: &str = "job-name";
const MAX_INDEXED: i64 = 100_000;

fn manual(spec: &Value) -> bool {
    flag(spec, "manualSelector") == Some(true)
}

/// Upstream's `generateSelector`: label the template with the job's name and
/// uid and select on the uid, so a Job only ever owns its own pods.
fn generate_selector(job: &mut Value) {
    let name = job
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let uid = match job
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
    {
        Some(u) => u.to_string(),
        None => {
            let u = uuid::Uuid::new_v4().to_string();
            if let Some(m) = obj_mut(job, "metadata") {
                m["uid"] = json!(u);
            }
            u
        }
    };
    let Some(spec) = obj_mut(job, "spec") else {
        return;
    };
    if let Some(labels) = obj_mut(spec, "template")
        .and_then(|t| obj_mut(t, "metadata"))
        .and_then(|m| obj_mut(m, "labels"))
    {
        for (k, v) in [
            (LEGACY_JOB_NAME, &name),
            (JOB_NAME, &name),
            (LEGACY_CONTROLLER_UID, &uid),
            (CONTROLLER_UID, &uid),
        ] {
            set_default(labels, k, json!(v));
        }
    }
    if let Some(ml) = obj_mut(spec, "selector").and_then(|s| obj_mut(s, "matchLabels")) {
        set_default(ml, CONTROLLER_UID, json!(uid));
    }
}

/// `SetDefaults_Job`'s label rule: an unlabelled Job takes its template's labels.
fn labels_from_template(job: &mut Value) {
    let Some(labels) = job
        .pointer("/spec/template/metadata/labels")
        .filter(|l| l.is_object())
        .cloned()
    else {
        return;
    };
    if let Some(m) = obj_mut(job, "metadata") {
        if !non_empty(m, "labels") {
            m["labels"] = labels;
        }
    }
}

/// Upstream's `validateJobSpec` (shared by Jobs and CronJob job templates).
fn validate_job_spec(spec: &Value, path: &str, errs: &mut Vec<FieldError>) {
    for k in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        errs.extend(nonnegative(spec, k, &child(path, k)));
    }
    let indexed = s(spec, "completionMode") == "Indexed";
    if let Some(mode) = opt_s(spec, "completionMode") {
        errs.extend(one_of(
            &child(path, "completionMode"),
            mode,
            &["NonIndexed", "Indexed"],
            true,
        ));
        if indexed {
            match int(spec, "completions") {
                None => errs.push(FieldError::required(child(path, "completions"), "when completion mode is Indexed")),
                Some(c) if c > MAX_INDEXED => errs.push(FieldError::invalid(
                    child(path, "completions"),
                    c,
                    format!("must be less than or equal to {MAX_INDEXED} when completion mode is Indexed"),
                )),
                _ => {}
            }
            if let Some(p) = int(spec, "parallelism").filter(|p| *p > MAX_INDEXED) {
                errs.push(FieldError::invalid(child(path, "parallelism"), p, format!("must be less than or equal to {MAX_INDEXED} when completion mode is Indexed")));
            }
        }
    }
    for k in ["backoffLimitPerIndex", "maxFailedIndexes"] {
        if get(spec, k).is_some() && !indexed {
            errs.push(FieldError::forbidden(
                child(path, k),
                "requires indexed completion mode",
            ));
        }
    }
    if let Some(p) = opt_s(spec, "podReplacementPolicy") {
        errs.extend(one_of(
            &child(path, "podReplacementPolicy"),
            p,
            &["TerminatingOrFailed", "Failed"],
            false,
        ));
    }
    let tp = child(path, "template");
    let template = spec.get("template").unwrap_or(&Value::Null);
    errs.extend(validate_pod_template(template, &tp));
    let rp = template
        .pointer("/spec/restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("");
    if rp != "OnFailure" && rp != "Never" {
        errs.push(FieldError::not_supported(
            child(&tp, "spec.restartPolicy"),
            rp,
            &["OnFailure", "Never"],
        ));
    } else if get(spec, "podFailurePolicy").is_some() && rp != "Never" {
        errs.push(FieldError::invalid(
            child(&tp, "spec.restartPolicy"),
            rp,
            "only \"Never\" is supported when podFailurePolicy is specified",
        ));
    }
}

/// Jobs.
pub struct JobStrategy;

impl Strategy for JobStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<Job>(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        if !manual(obj.get("spec").unwrap_or(&Value::Null)) {
            generate_selector(obj);
        }
        put(obj, "status", json!({}));
        // Upstream applies this default again when reading the stored Job, so
        // a new Job shows its generated labels at once.
        labels_from_template(obj);
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_from_old(new, old, "status");
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        keep_all_but_status(new, old);
    }

    fn default(&self, obj: &mut Value) {
        labels_from_template(obj);
        let Some(spec) = obj_mut(obj, "spec") else {
            return;
        };
        if get(spec, "completions").is_none() && get(spec, "parallelism").is_none() {
            spec["completions"] = json!(1);
        }
        set_default(spec, "parallelism", json!(1));
        let backoff = if get(spec, "backoffLimitPerIndex").is_some() {
            i64::from(i32::MAX)
        } else {
            6
        };
        set_default(spec, "backoffLimit", json!(backoff));
        set_default(spec, "completionMode", json!("NonIndexed"));
        set_default(spec, "suspend", json!(false));
        set_default(spec, "manualSelector", json!(false));
        let replacement = if get(spec, "podFailurePolicy").is_some() {
            "Failed"
        } else {
            "TerminatingOrFailed"
        };
        set_default(spec, "podReplacementPolicy", json!(replacement));
        if let Some(pfp) = spec.get_mut("podFailurePolicy") {
            each_mut(pfp, "rules", |r| {
                each_mut(r, "onPodConditions", |c| {
                    set_default_str(c, "status", "True")
                })
            });
        }
        default_template(obj_mut(spec, "template"));
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let spec = obj.get("spec").unwrap_or(&Value::Null);
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let uid = obj
            .pointer("/metadata/uid")
            .and_then(Value::as_str)
            .unwrap_or("");
        let mut errs = Vec::new();
        if !manual(spec) && get(spec, "selector").is_some() {
            if uid.is_empty() {
                errs.push(FieldError::required("metadata.uid", ""));
            }
            let labels = spec.pointer("/template/metadata/labels");
            let expected = [
                (LEGACY_CONTROLLER_UID, uid),
                (LEGACY_JOB_NAME, name),
                (CONTROLLER_UID, uid),
                (JOB_NAME, name),
            ];
            for (k, want) in expected {
                let p = key("spec.template.metadata.labels", k);
                match labels.and_then(|l| l.get(k)).and_then(Value::as_str) {
                    None => errs.push(FieldError::required(p, format!("must be '{want}'"))),
                    Some(v) if v != want => errs.push(FieldError::invalid(
                        p,
                        labels.cloned().unwrap_or_default(),
                        format!("must be '{want}'"),
                    )),
                    Some(_) => {}
                }
            }
            let expected: serde_json::Map<String, Value> = expected
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            let sel = get(spec, "selector");
            if validate_label_selector(sel.unwrap_or(&Value::Null), "").is_empty()
                && !selector_matches(sel, Some(&Value::Object(expected)))
            {
                errs.push(FieldError::invalid(
                    "spec.selector",
                    sel.cloned().unwrap_or_default(),
                    "`selector` not auto-generated",
                ));
            }
        }
        match get(spec, "selector") {
            None => errs.push(FieldError::required("spec.selector", "")),
            Some(sel) => errs.extend(validate_label_selector(sel, "spec.selector")),
        }
        if get(spec, "selector").is_some()
            && !selector_matches(
                get(spec, "selector"),
                spec.pointer("/template/metadata/labels"),
            )
        {
            let labels = spec
                .pointer("/template/metadata/labels")
                .cloned()
                .unwrap_or(Value::Null);
            errs.push(FieldError::invalid(
                "spec.template.metadata.labels",
                labels,
                "`selector` does not match template `labels`",
            ));
        }
        validate_job_spec(spec, "spec", &mut errs);
        if s(spec, "completionMode") == "Indexed" {
            if let Some(c) = int(spec, "completions").filter(|c| *c > 0) {
                let host = format!("{name}-{}", c - 1);
                if !super::names::is_dns1123_label(&host).is_empty() {
                    errs.push(FieldError::invalid(
                        "metadata.name",
                        name,
                        format!("will not able to create pod with invalid DNS label: {host}"),
                    ));
                }
            }
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = self.validate(new);
        let (ns, os) = (
            new.get("spec").unwrap_or(&Value::Null),
            old.get("spec").unwrap_or(&Value::Null),
        );
        // Elastic indexed jobs may change completions together with parallelism.
        let elastic = s(ns, "completionMode") == "Indexed"
            && s(os, "completionMode") == "Indexed"
            && int(ns, "completions") == int(ns, "parallelism")
            && int(os, "completions") == int(os, "parallelism");
        if !elastic {
            errs.extend(immutable(ns, os, "completions", "spec.completions"));
        }
        for k in [
            "selector",
            "completionMode",
            "podFailurePolicy",
            "backoffLimitPerIndex",
            "managedBy",
            "successPolicy",
            "podReplacementPolicy",
        ] {
            errs.extend(immutable(ns, os, k, &child("spec", k)));
        }
        // A suspended Job that never started may retarget its pods.
        let mut old_t = os.get("template").cloned().unwrap_or(Value::Null);
        let never_started = old.pointer("/status/startTime").is_none_or(Value::is_null);
        if flag(ns, "suspend") == Some(true) && never_started {
            let new_t = ns.get("template").unwrap_or(&Value::Null);
            for k in ["nodeSelector", "affinity", "tolerations", "schedulingGates"] {
                if let (Some(o), Some(n)) = (old_t.get_mut("spec"), new_t.get("spec")) {
                    keep_from_old(o, n, k);
                }
            }
            for k in ["labels", "annotations"] {
                if let (Some(o), Some(n)) = (old_t.get_mut("metadata"), new_t.get("metadata")) {
                    keep_from_old(o, n, k);
                }
            }
        }
        if !same(ns.get("template"), Some(&old_t)) {
            errs.push(FieldError::invalid(
                "spec.template",
                ns.get("template").cloned().unwrap_or(Value::Null),
                IMMUTABLE,
            ));
        }
        errs
    }

    fn validate_status_update(&self, new: &Value, _old: &Value) -> Vec<FieldError> {
        let st = new.get("status").unwrap_or(&Value::Null);
        let mut errs = Vec::new();
        for k in ["active", "succeeded", "failed", "terminating", "ready"] {
            errs.extend(nonnegative(st, k, &child("status", k)));
        }
        errs
    }

    fn selectable_fields(&self, obj: &Value) -> Vec<(&'static str, String)> {
        vec![(
            "status.successful",
            obj.pointer("/status/succeeded")
                .and_then(Value::as_i64)
                .unwrap_or(0)
                .to_string(),
        )]
    }
}

/// CronJobs.
pub struct CronJobStrategy;

fn validate_cron_spec(spec: &Value, old: Option<&Value>, errs: &mut Vec<FieldError>) {
    let schedule = s(spec, "schedule");
    if schedule.is_empty() {
        errs.push(FieldError::required("spec.schedule", ""));
    } else {
        if let Err(e) = parse_schedule(schedule) {
            errs.push(FieldError::invalid("spec.schedule", schedule, e));
        }
        let allow_tz = old.is_some_and(|o| s(o, "schedule").contains("TZ"));
        if allow_tz && schedule.contains("TZ") && get(spec, "timeZone").is_some() {
            errs.push(FieldError::invalid(
                "spec.schedule",
                schedule,
                "cannot use both timeZone field and TZ or CRON_TZ in schedule",
            ));
        } else if !allow_tz && schedule.contains("TZ") {
            errs.push(FieldError::invalid(
                "spec.schedule",
                schedule,
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ));
        }
    }
    errs.extend(nonnegative(
        spec,
        "startingDeadlineSeconds",
        "spec.startingDeadlineSeconds",
    ));
    if let Some(tz) = opt_s(spec, "timeZone") {
        if old.is_none_or(|o| opt_s(o, "timeZone") != Some(tz)) {
            validate_time_zone(tz, errs);
        }
    }
    errs.extend(one_of(
        "spec.concurrencyPolicy",
        s(spec, "concurrencyPolicy"),
        &["Allow", "Forbid", "Replace"],
        true,
    ));
    let jt = spec.get("jobTemplate").unwrap_or(&Value::Null);
    let js = jt.get("spec").unwrap_or(&Value::Null);
    validate_job_spec(js, "spec.jobTemplate.spec", errs);
    if let Some(sel) = get(js, "selector") {
        errs.push(FieldError::invalid(
            "spec.jobTemplate.spec.selector",
            sel.clone(),
            "`selector` will be auto-generated",
        ));
    }
    if manual(js) {
        errs.push(FieldError::not_supported(
            "spec.jobTemplate.spec.manualSelector",
            true,
            &["nil", "false"],
        ));
    }
    for k in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        errs.extend(nonnegative(spec, k, &child("spec", k)));
    }
}

fn validate_time_zone(tz: &str, errs: &mut Vec<FieldError>) {
    if tz.is_empty() {
        errs.push(FieldError::invalid(
            "spec.timeZone",
            tz,
            "timeZone must be nil or non-empty string",
        ));
        return;
    }
    let ok_part = |p: &str| {
        p != "."
            && p != ".."
            && !p.starts_with('-')
            && (1..=14).contains(&p.len())
            && p.bytes()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'-' | b'_' | b'+'))
    };
    if !tz.split('/').all(ok_part) {
        errs.push(FieldError::invalid(
            "spec.timeZone",
            tz,
            format!("unknown time zone {tz}"),
        ));
    } else if tz.eq_ignore_ascii_case("Local") {
        errs.push(FieldError::invalid(
            "spec.timeZone",
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        ));
    }
}

impl Strategy for CronJobStrategy {
    fn decode(&self, obj: &Value) -> Decoded {
        unknown::decode::<CronJob>(obj)
    }

    fn tracks_generation(&self) -> bool {
        true
    }

    fn prepare_for_create(&self, obj: &mut Value) {
        put(obj, "status", json!({}));
    }

    fn prepare_for_update(&self, new: &mut Value, old: &Value) {
        keep_from_old(new, old, "status");
    }

    fn prepare_for_status_update(&self, new: &mut Value, old: &Value) {
        keep_all_but_status(new, old);
    }

    fn default(&self, obj: &mut Value) {
        let Some(spec) = obj_mut(obj, "spec") else {
            return;
        };
        set_default_str(spec, "concurrencyPolicy", "Allow");
        set_default(spec, "suspend", json!(false));
        set_default(spec, "successfulJobsHistoryLimit", json!(3));
        set_default(spec, "failedJobsHistoryLimit", json!(1));
        if let Some(jt) = obj_mut(spec, "jobTemplate") {
            set_default(jt, "metadata", json!({}));
            if let Some(js) = obj_mut(jt, "spec") {
                default_template(obj_mut(js, "template"));
            }
        }
    }

    fn validate(&self, obj: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        validate_cron_spec(obj.get("spec").unwrap_or(&Value::Null), None, &mut errs);
        let name = obj
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        if name.len() > 52 {
            // The controller appends an 11-character suffix to name its Jobs.
            errs.push(FieldError::invalid(
                "metadata.name",
                name,
                "must be no more than 52 characters",
            ));
        }
        errs
    }

    fn validate_update(&self, new: &Value, old: &Value) -> Vec<FieldError> {
        let mut errs = Vec::new();
        validate_cron_spec(
            new.get("spec").unwrap_or(&Value::Null),
            old.get("spec"),
            &mut errs,
        );
        errs
    }

    fn selectable_fields(&self, _obj: &Value) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// Go's `strconv.Atoi` error text.
fn atoi(s: &str) -> Result<i64, String> {
    s.parse::<i64>().map_err(|e| {
        let why = match e.kind() {
            std::num::IntErrorKind::PosOverflow | std::num::IntErrorKind::NegOverflow => {
                "value out of range"
            }
            _ => "invalid syntax",
        };
        format!("strconv.Atoi: parsing {s:?}: {why}")
    })
}

fn must_parse_int(s: &str) -> Result<i64, String> {
    let n = atoi(s).map_err(|e| format!("failed to parse int from {s}: {e}"))?;
    if n < 0 {
        return Err(format!("negative number ({n}) not allowed: {s}"));
    }
    Ok(n)
}

fn int_or_name(s: &str, names: &[&str], offset: i64) -> Result<i64, String> {
    let lower = s.to_lowercase();
    match names.iter().position(|n| *n == lower) {
        Some(i) => Ok(i as i64 + offset),
        None => must_parse_int(s),
    }
}

const MONTHS: &[&str] = &[
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: &[&str] = &["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn parse_range(expr: &str, min: i64, max: i64, names: &[&str], offset: i64) -> Result<(), String> {
    let range_step: Vec<&str> = expr.split('/').collect();
    let low_high: Vec<&str> = range_step[0].split('-').collect();
    let (start, mut end) = if low_high[0] == "*" || low_high[0] == "?" {
        (min, max)
    } else {
        let start = int_or_name(low_high[0], names, offset)?;
        match low_high.len() {
            1 => (start, start),
            2 => (start, int_or_name(low_high[1], names, offset)?),
            _ => return Err(format!("too many hyphens: {expr}")),
        }
    };
    let step = match range_step.len() {
        1 => 1,
        2 => {
            let step = must_parse_int(range_step[1])?;
            if low_high.len() == 1 {
                end = max;
            }
            step
        }
        _ => return Err(format!("too many slashes: {expr}")),
    };
    if start < min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({min}): {expr}"
        ));
    }
    if end > max {
        return Err(format!(
            "end of range ({end}) above maximum ({max}): {expr}"
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    if step == 0 {
        return Err(format!("step of range should be a positive number: {expr}"));
    }
    Ok(())
}

fn parse_duration(d: &str) -> bool {
    let mut rest = d;
    if rest == "0" {
        return true;
    }
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let num = rest
            .bytes()
            .take_while(|c| c.is_ascii_digit() || *c == b'.')
            .count();
        if num == 0 {
            return false;
        }
        rest = &rest[num..];
        let unit = ["ns", "us", "µs", "ms", "s", "m", "h"]
            .iter()
            .find(|u| rest.starts_with(**u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

/// robfig/cron's `ParseStandard`, with its error messages.
pub fn parse_schedule(spec: &str) -> Result<(), String> {
    let mut spec = spec.trim_start();
    if spec.is_empty() {
        return Err("empty spec string".into());
    }
    if spec.starts_with("TZ=") || spec.starts_with("CRON_TZ=") {
        spec = spec.split_once(' ').map(|(_, r)| r.trim()).unwrap_or("");
    }
    if let Some(d) = spec.strip_prefix('@') {
        return match d {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            _ => match d.strip_prefix("every ") {
                Some(dur) if parse_duration(dur) => Ok(()),
                Some(dur) => Err(format!(
                    "failed to parse duration {spec}: time: invalid duration {dur:?}"
                )),
                None => Err(format!("unrecognized descriptor: {spec}")),
            },
        };
    }
    let fields: Vec<&str> = spec.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    let bounds: [(i64, i64, &[&str], i64); 5] = [
        (0, 59, &[], 0),
        (0, 23, &[], 0),
        (1, 31, &[], 0),
        (1, 12, MONTHS, 1),
        (0, 6, DAYS, 0),
    ];
    for (field, (min, max, names, offset)) in fields.iter().zip(bounds) {
        for part in field.split(',') {
            parse_range(part, min, max, names, offset)?;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "batch_tests.rs"]
mod tests;
