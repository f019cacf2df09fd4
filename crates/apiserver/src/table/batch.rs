//! `batch/v1`: jobs and cron jobs.

use serde_json::{json, Value};

use super::format::{
    arr, containers_and_images, format_label_selector, human_duration, int, parse_time, s, Clock,
};
use super::{Column, AGE, CONTAINERS, IMAGES, NAME};

/// Job columns.
pub(super) const JOB: &[Column] = &[
    NAME,
    Column::new("Status", "string", "Status of the job."),
    Column::new(
        "Completions",
        "string",
        "The number of pods which reached phase Succeeded.",
    ),
    Column::new("Duration", "string", "Time required to complete the job."),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::wide(
        "Selector",
        "string",
        "A label query over pods that should match the pod count.",
    ),
];

/// Whether the job's first condition of `kind` has status True.
fn has_condition(job: &Value, kind: &str) -> bool {
    arr(job, "/status/conditions")
        .iter()
        .find(|c| s(c, "/type") == kind)
        .is_some_and(|c| s(c, "/status") == "True")
}

/// STATUS, in upstream's order of precedence: a finished job is Complete or
/// Failed even while being deleted.
fn job_status(job: &Value) -> &'static str {
    if has_condition(job, "Complete") {
        "Complete"
    } else if has_condition(job, "Failed") {
        "Failed"
    } else if job
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|v| !v.is_null())
    {
        "Terminating"
    } else if has_condition(job, "Suspended") {
        "Suspended"
    } else if has_condition(job, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

/// COMPLETIONS: `succeeded/completions`; a work-queue job (no completions)
/// is `n/1`, or `n/1 of p` when it runs more than one pod in parallel.
fn completions(job: &Value) -> String {
    let succeeded = int(job, "/status/succeeded");
    if let Some(c) = job.pointer("/spec/completions").and_then(Value::as_i64) {
        return format!("{succeeded}/{c}");
    }
    let parallelism = int(job, "/spec/parallelism");
    if parallelism > 1 {
        format!("{succeeded}/1 of {parallelism}")
    } else {
        format!("{succeeded}/1")
    }
}

/// DURATION: empty before the job starts, running time while it runs, and
/// start to completion once it has completed.
fn duration(job: &Value, clock: &Clock) -> String {
    let Some(start) = parse_time(job.pointer("/status/startTime")) else {
        return String::new();
    };
    match parse_time(job.pointer("/status/completionTime")) {
        Some(done) => human_duration(done - start),
        None => human_duration(clock.elapsed(start)),
    }
}

/// One Job row.
pub(super) fn job(job: &Value, clock: &Clock) -> Vec<Value> {
    let (names, images) = containers_and_images(arr(job, "/spec/template/spec/containers"));
    vec![
        json!(s(job, "/metadata/name")),
        json!(job_status(job)),
        json!(completions(job)),
        json!(duration(job, clock)),
        json!(clock.age(job)),
        json!(names),
        json!(images),
        json!(format_label_selector(job.pointer("/spec/selector"))),
    ]
}

/// CronJob columns.
pub(super) const CRON_JOB: &[Column] = &[
    NAME,
    Column::new("Schedule", "string", "The schedule in Cron format, see https://en.wikipedia.org/wiki/Cron."),
    Column::new("Timezone", "string", "The time zone name for the given schedule, see https://en.wikipedia.org/wiki/List_of_tz_database_time_zones."),
    Column::new("Suspend", "boolean", "This flag tells the controller to suspend subsequent executions, it does not apply to already started executions. Defaults to false."),
    Column::new("Active", "integer", "A list of pointers to currently running jobs."),
    Column::new("Last Schedule", "string", "Information when was the last time the job was successfully scheduled."),
    AGE,
    CONTAINERS,
    IMAGES,
    Column::wide("Selector", "string", "A label query over pods that should match the pod count."),
];

/// One CronJob row. SUSPEND is upstream's `printBoolPtr` text (`True`,
/// `False`); `suspend` defaults to false upstream, so a missing one is False.
pub(super) fn cron_job(cj: &Value, clock: &Clock) -> Vec<Value> {
    let (names, images) =
        containers_and_images(arr(cj, "/spec/jobTemplate/spec/template/spec/containers"));
    let suspend = match cj.pointer("/spec/suspend").and_then(Value::as_bool) {
        Some(true) => "True",
        _ => "False",
    };
    let last_schedule = match parse_time(cj.pointer("/status/lastScheduleTime")) {
        Some(t) => clock.since(Some(t)),
        None => "<none>".to_string(),
    };
    vec![
        json!(s(cj, "/metadata/name")),
        json!(s(cj, "/spec/schedule")),
        json!(cj
            .pointer("/spec/timeZone")
            .and_then(Value::as_str)
            .unwrap_or("<none>")),
        json!(suspend),
        json!(arr(cj, "/status/active").len()),
        json!(last_schedule),
        json!(clock.age(cj)),
        json!(names),
        json!(images),
        json!(format_label_selector(
            cj.pointer("/spec/jobTemplate/spec/selector")
        )),
    ]
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{ago, cells, headers};
    use serde_json::{json, Value};

    fn job(spec: Value, status: Value) -> Value {
        let mut spec = spec;
        spec["template"] = json!({"spec": {"containers": [{"name": "pi", "image": "perl:5.34"}]}});
        json!({"metadata": {"name": "pi", "namespace": "default", "creationTimestamp": ago(400)}, "spec": spec, "status": status})
    }

    #[test]
    fn job_columns() {
        assert_eq!(
            headers("batch", "Job"),
            vec![
                ("Name", "string", "name", 0),
                ("Status", "string", "", 0),
                ("Completions", "string", "", 0),
                ("Duration", "string", "", 0),
                ("Age", "string", "", 0),
                ("Containers", "string", "", 1),
                ("Images", "string", "", 1),
                ("Selector", "string", "", 1),
            ]
        );
    }

    #[test]
    fn complete_job() {
        let j = job(
            json!({"completions": 1, "parallelism": 1, "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}}}),
            json!({"succeeded": 1, "startTime": ago(400), "completionTime": ago(400 - 75),
                   "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}),
        );
        assert_eq!(
            cells("batch", "Job", j),
            vec![
                json!("pi"),
                json!("Complete"),
                json!("1/1"),
                json!("75s"),
                json!("6m40s"),
                json!("pi"),
                json!("perl:5.34"),
                json!("batch.kubernetes.io/controller-uid=abc"),
            ]
        );
    }

    #[test]
    fn running_failed_and_work_queue_jobs() {
        let j = job(
            json!({"completions": 5, "parallelism": 2}),
            json!({"succeeded": 2, "active": 2, "startTime": ago(200)}),
        );
        assert_eq!(
            cells("batch", "Job", j)[1..4],
            [json!("Running"), json!("2/5"), json!("3m20s")]
        );
        let j = job(json!({"parallelism": 3}), json!({}));
        assert_eq!(
            cells("batch", "Job", j)[1..4],
            [json!("Running"), json!("0/1 of 3"), json!("")]
        );
        let j = job(
            json!({}),
            json!({"conditions": [{"type": "Failed", "status": "True"}], "startTime": ago(50), "completionTime": ago(10)}),
        );
        assert_eq!(
            cells("batch", "Job", j)[1..4],
            [json!("Failed"), json!("0/1"), json!("40s")]
        );
        let j = job(
            json!({"suspend": true}),
            json!({"conditions": [{"type": "Suspended", "status": "True"}]}),
        );
        assert_eq!(cells("batch", "Job", j)[1], "Suspended");
        let mut j = job(
            json!({}),
            json!({"conditions": [{"type": "FailureTarget", "status": "True"}]}),
        );
        assert_eq!(cells("batch", "Job", j.clone())[1], "FailureTarget");
        j["metadata"]["deletionTimestamp"] = json!(ago(1));
        assert_eq!(cells("batch", "Job", j)[1], "Terminating");
    }

    #[test]
    fn cron_job() {
        assert_eq!(
            headers("batch", "CronJob"),
            vec![
                ("Name", "string", "name", 0),
                ("Schedule", "string", "", 0),
                ("Timezone", "string", "", 0),
                ("Suspend", "boolean", "", 0),
                ("Active", "integer", "", 0),
                ("Last Schedule", "string", "", 0),
                ("Age", "string", "", 0),
                ("Containers", "string", "", 1),
                ("Images", "string", "", 1),
                ("Selector", "string", "", 1),
            ]
        );
        let cj = json!({"metadata": {"name": "hello", "creationTimestamp": ago(86400 + 7200)},
            "spec": {"schedule": "*/5 * * * *", "suspend": false, "jobTemplate": {"spec": {"template": {"spec":
                {"containers": [{"name": "hello", "image": "busybox:1.36"}]}}}}},
            "status": {"active": [{"kind": "Job", "name": "hello-1"}], "lastScheduleTime": ago(130)}});
        assert_eq!(
            cells("batch", "CronJob", cj),
            vec![
                json!("hello"),
                json!("*/5 * * * *"),
                json!("<none>"),
                json!("False"),
                json!(1),
                json!("2m10s"),
                json!("26h"),
                json!("hello"),
                json!("busybox:1.36"),
                json!("<none>"),
            ]
        );
        let cj = json!({"metadata": {"name": "tz"}, "spec": {"schedule": "@daily", "timeZone": "Europe/Paris", "suspend": true}});
        assert_eq!(
            cells("batch", "CronJob", cj)[2..6],
            [
                json!("Europe/Paris"),
                json!("True"),
                json!(0),
                json!("<none>")
            ]
        );
    }
}
