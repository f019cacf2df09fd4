use super::*;
use crate::error::FieldErrorType;

/// What `kubectl create job pi --image=perl` sends.
fn kubectl_job() -> Value {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": { "name": "pi", "namespace": "default", "uid": "u-1" },
        "spec": { "template": { "metadata": {}, "spec": { "containers": [{ "name": "pi", "image": "perl", "resources": {} }], "restartPolicy": "Never" } } },
        "status": {}
    })
}

fn created<S: Strategy>(s: &S, mut obj: Value) -> Value {
    s.prepare_for_create(&mut obj);
    s.default(&mut obj);
    obj
}

use crate::strategy::error_fields as fields;

#[test]
fn job_gets_a_generated_selector_and_defaults() {
    let j = created(&JobStrategy, kubectl_job());
    let labels = json!({ "batch.kubernetes.io/controller-uid": "u-1", "batch.kubernetes.io/job-name": "pi", "controller-uid": "u-1", "job-name": "pi" });
    assert_eq!(j["metadata"]["labels"], labels);
    assert_eq!(j["spec"]["template"]["metadata"]["labels"], labels);
    assert_eq!(
        j["spec"]["selector"],
        json!({ "matchLabels": { "batch.kubernetes.io/controller-uid": "u-1" } })
    );
    for (k, v) in [
        ("backoffLimit", json!(6)),
        ("completionMode", json!("NonIndexed")),
        ("completions", json!(1)),
        ("manualSelector", json!(false)),
        ("parallelism", json!(1)),
        ("podReplacementPolicy", json!("TerminatingOrFailed")),
        ("suspend", json!(false)),
    ] {
        assert_eq!(j["spec"][k], v, "{k}");
    }
    assert!(
        JobStrategy.validate(&j).is_empty(),
        "{:?}",
        JobStrategy.validate(&j)
    );
    assert_eq!(
        JobStrategy.selectable_fields(&j),
        vec![("status.successful", "0".to_string())]
    );
}

#[test]
fn job_rules() {
    let mut always = kubectl_job();
    always["spec"]["template"]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("restartPolicy");
    let e = JobStrategy.validate(&created(&JobStrategy, always));
    assert_eq!(
        fields(e.clone()),
        vec![(
            "spec.template.spec.restartPolicy".into(),
            FieldErrorType::NotSupported
        )]
    );
    assert_eq!(e[0].message(), "spec.template.spec.restartPolicy: Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\"");
    let mut own = kubectl_job();
    own["spec"]["selector"] = json!({ "matchLabels": { "a": "b" } });
    own["spec"]["template"]["metadata"]["labels"] = json!({ "a": "b" });
    assert_eq!(
        fields(JobStrategy.validate(&created(&JobStrategy, own))),
        vec![("spec.selector".into(), FieldErrorType::Invalid)]
    );
    let mut manual = kubectl_job();
    manual["spec"]["manualSelector"] = json!(true);
    manual["spec"]["selector"] = json!({ "matchLabels": { "a": "b" } });
    manual["spec"]["template"]["metadata"]["labels"] = json!({ "a": "c" });
    assert_eq!(
        fields(JobStrategy.validate(&created(&JobStrategy, manual))),
        vec![(
            "spec.template.metadata.labels".into(),
            FieldErrorType::Invalid
        )]
    );
}

#[test]
fn job_template_is_immutable_unless_suspended() {
    let old = created(&JobStrategy, kubectl_job());
    let mut new = old.clone();
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5");
    new["spec"]["parallelism"] = json!(3);
    assert_eq!(
        fields(JobStrategy.validate_update(&new, &old)),
        vec![("spec.template".into(), FieldErrorType::Invalid)]
    );
    let mut suspended = old.clone();
    suspended["spec"]["suspend"] = json!(true);
    suspended["spec"]["template"]["spec"]["nodeSelector"] = json!({ "zone": "a" });
    assert!(JobStrategy.validate_update(&suspended, &old).is_empty());
    let mut comp = old.clone();
    comp["spec"]["completions"] = json!(2);
    assert_eq!(
        fields(JobStrategy.validate_update(&comp, &old)),
        vec![("spec.completions".into(), FieldErrorType::Invalid)]
    );
}

#[test]
fn cronjob_defaults_and_schedule() {
    let cj = json!({
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": { "name": "hello", "namespace": "default" },
        "spec": { "schedule": "*/1 * * * *", "jobTemplate": { "metadata": { "name": "hello" }, "spec": { "template": { "metadata": {},
                  "spec": { "containers": [{ "name": "hello", "image": "busybox" }], "restartPolicy": "OnFailure" } } } } }
    });
    let c = created(&CronJobStrategy, cj);
    assert_eq!(c["spec"]["concurrencyPolicy"], "Allow");
    assert_eq!(c["spec"]["suspend"], false);
    assert_eq!(c["spec"]["successfulJobsHistoryLimit"], 3);
    assert_eq!(c["spec"]["failedJobsHistoryLimit"], 1);
    assert!(c["spec"]["jobTemplate"]["spec"]
        .get("backoffLimit")
        .is_none());
    assert!(
        CronJobStrategy.validate(&c).is_empty(),
        "{:?}",
        CronJobStrategy.validate(&c)
    );
    let mut bad = c.clone();
    bad["spec"]["schedule"] = json!("61 * * * *");
    bad["spec"]["concurrencyPolicy"] = json!("Sometimes");
    let e = CronJobStrategy.validate(&bad);
    assert_eq!(
        fields(e.clone()),
        vec![
            ("spec.schedule".into(), FieldErrorType::Invalid),
            (
                "spec.concurrencyPolicy".into(),
                FieldErrorType::NotSupported
            )
        ]
    );
    assert_eq!(e[0].detail, "end of range (61) above maximum (59): 61");
    let mut long = c;
    long["metadata"]["name"] = json!("x".repeat(53));
    assert_eq!(
        fields(CronJobStrategy.validate(&long)),
        vec![("metadata.name".into(), FieldErrorType::Invalid)]
    );
}

#[test]
fn cron_parser() {
    for ok in [
        "* * * * *",
        "0 0 * * 0",
        "*/15 9-17 * JAN-mar mon-fri",
        "@daily",
        "@every 1h30m",
        "5 4 1,15 * ?",
        "0 0 1/2 * *",
    ] {
        assert_eq!(parse_schedule(ok), Ok(()), "{ok}");
    }
    assert_eq!(
        parse_schedule("* * * *"),
        Err("expected exactly 5 fields, found 4: [* * * *]".into())
    );
    assert_eq!(
        parse_schedule("* 24 * * *"),
        Err("end of range (24) above maximum (23): 24".into())
    );
    assert_eq!(
        parse_schedule("* * 0 * *"),
        Err("beginning of range (0) below minimum (1): 0".into())
    );
    assert_eq!(
        parse_schedule("5-1 * * * *"),
        Err("beginning of range (5) beyond end of range (1): 5-1".into())
    );
    assert_eq!(
        parse_schedule("*/0 * * * *"),
        Err("step of range should be a positive number: */0".into())
    );
    assert_eq!(
        parse_schedule("x * * * *"),
        Err("failed to parse int from x: strconv.Atoi: parsing \"x\": invalid syntax".into())
    );
    assert_eq!(
        parse_schedule("@sometimes"),
        Err("unrecognized descriptor: @sometimes".into())
    );
    assert_eq!(parse_schedule(""), Err("empty spec string".into()));
}
