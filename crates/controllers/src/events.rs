//! core/v1 Events about the owners, written in the background with
//! client-go's correlation so a large scale-up does not write one Event per
//! pod:
//!
//! - similar events (same object, type and reason) with more than ten
//!   distinct messages within ten minutes collapse into one
//!   "(combined from similar events): ..." event;
//! - a repeated event (same message) bumps `count` and `lastTimestamp` of
//!   the event already written (a merge patch) instead of writing anew;
//! - each object may emit 25 writes in a burst, then one per five minutes
//!   (the rest are dropped, as upstream's spam filter does).
//!
//! Recording never blocks a sync: records go through a bounded channel and
//! are dropped when it is full.

use std::collections::{HashMap, HashSet};

use k8s_openapi::api::core::v1::{Event, ObjectReference};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::Client;
use serde_json::{json, Value};
use tokio::sync::mpsc;

/// Distinct messages of one reason before they are combined.
const MAX_SIMILAR: usize = 10;
/// The window in which similar events are combined.
const SIMILAR_WINDOW: SignedDuration = SignedDuration::from_secs(600);
/// Writes per object in a burst, and the refill rate (one per 300 s).
const SPAM_BURST: f64 = 25.0;
const SPAM_REFILL_PER_SEC: f64 = 1.0 / 300.0;
/// Entries kept per map before old ones are dropped.
const MAX_ENTRIES: usize = 4096;
/// Records waiting to be written before new ones are dropped.
const QUEUE: usize = 1000;

/// One event to record.
#[derive(Clone, Debug)]
pub struct Record {
    pub object: ObjectReference,
    /// `Normal` or `Warning`.
    pub type_: &'static str,
    pub reason: &'static str,
    pub message: String,
}

/// What the correlator decided to write.
#[derive(Debug, PartialEq)]
pub enum Write {
    Create(Value),
    /// A merge patch of an event already written.
    Patch {
        namespace: String,
        name: String,
        body: Value,
    },
}

struct Seen {
    namespace: String,
    name: String,
    count: i64,
    first: Timestamp,
    last: Timestamp,
}

struct Similar {
    messages: HashSet<String>,
    last: Timestamp,
}

struct Bucket {
    tokens: f64,
    at: Timestamp,
}

/// client-go's `EventCorrelator`, over one event source.
pub struct Correlator {
    component: &'static str,
    similar: HashMap<String, Similar>,
    seen: HashMap<String, Seen>,
    spam: HashMap<String, Bucket>,
}

fn obj_key(o: &ObjectReference) -> String {
    [
        o.kind.as_deref(),
        o.namespace.as_deref(),
        o.name.as_deref(),
        o.uid.as_deref(),
        o.api_version.as_deref(),
    ]
    .map(|s| s.unwrap_or(""))
    .join("\u{0}")
}

fn since(a: Timestamp, b: Timestamp) -> SignedDuration {
    a.duration_since(b)
}

/// Keep a map bounded: drop entries idle for longer than the window, then
/// everything if that was not enough.
fn bound<V>(m: &mut HashMap<String, V>, now: Timestamp, last: impl Fn(&V) -> Timestamp) {
    if m.len() <= MAX_ENTRIES {
        return;
    }
    m.retain(|_, v| since(now, last(v)) < SIMILAR_WINDOW);
    if m.len() > MAX_ENTRIES {
        m.clear();
    }
}

fn time(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

impl Correlator {
    pub fn new(component: &'static str) -> Self {
        Correlator {
            component,
            similar: HashMap::new(),
            seen: HashMap::new(),
            spam: HashMap::new(),
        }
    }

    /// Decide what to write for `r` at `now`; `None` drops it.
    pub fn correlate(&mut self, r: &Record, now: Timestamp) -> Option<Write> {
        let ok = obj_key(&r.object);
        // Aggregation: too many distinct messages become one event.
        let agg_key = format!("{ok}\u{0}{}\u{0}{}", r.type_, r.reason);
        let sim = self
            .similar
            .entry(agg_key.clone())
            .or_insert_with(|| Similar {
                messages: HashSet::new(),
                last: now,
            });
        if since(now, sim.last) > SIMILAR_WINDOW {
            sim.messages.clear();
        }
        sim.last = now;
        sim.messages.insert(r.message.clone());
        let (key, message) = if sim.messages.len() < MAX_SIMILAR {
            (format!("{agg_key}\u{0}{}", r.message), r.message.clone())
        } else {
            (
                agg_key,
                format!("(combined from similar events): {}", r.message),
            )
        };
        bound(&mut self.similar, now, |s| s.last);

        // The spam filter sees every write, new or repeated.
        let b = self.spam.entry(ok).or_insert(Bucket {
            tokens: SPAM_BURST,
            at: now,
        });
        let elapsed = since(now, b.at).as_secs_f64().max(0.0);
        b.tokens = (b.tokens + elapsed * SPAM_REFILL_PER_SEC).min(SPAM_BURST);
        b.at = now;
        let allowed = b.tokens >= 1.0;
        if allowed {
            b.tokens -= 1.0;
        }
        bound(&mut self.spam, now, |b| b.at);

        // Deduplication: a repeat bumps the count of the written event.
        let write = match self.seen.get_mut(&key) {
            Some(s) => {
                s.count += 1;
                s.last = now;
                Write::Patch {
                    namespace: s.namespace.clone(),
                    name: s.name.clone(),
                    body: json!({ "count": s.count, "lastTimestamp": time(now), "message": message }),
                }
            }
            None => {
                let ev = self.event(r, &message, now);
                self.seen.insert(
                    key,
                    Seen {
                        namespace: ev["metadata"]["namespace"].as_str().unwrap_or("").into(),
                        name: ev["metadata"]["name"].as_str().unwrap_or("").into(),
                        count: 1,
                        first: now,
                        last: now,
                    },
                );
                Write::Create(ev)
            }
        };
        bound(&mut self.seen, now, |s| s.last);
        allowed.then_some(write)
    }

    /// A new core/v1 Event, named as client-go names them
    /// (`<object>.<unix nanoseconds in hex>`).
    fn event(&self, r: &Record, message: &str, now: Timestamp) -> Value {
        let ns = r
            .object
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let name = format!(
            "{}.{:x}",
            r.object.name.as_deref().unwrap_or(""),
            now.as_nanosecond()
        );
        json!({
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": { "name": name, "namespace": ns },
            "involvedObject": r.object,
            "reason": r.reason,
            "message": message,
            "type": r.type_,
            "source": { "component": self.component },
            "reportingComponent": self.component,
            "firstTimestamp": time(now),
            "lastTimestamp": time(now),
            "count": 1,
        })
    }

    /// The event behind `key` was lost (patch said 404): write it again.
    fn recreate(
        &mut self,
        namespace: &str,
        name: &str,
        r: &Record,
        message: &str,
        now: Timestamp,
    ) -> Value {
        let mut ev = self.event(r, message, now);
        if let Some(s) = self
            .seen
            .values_mut()
            .find(|s| s.namespace == namespace && s.name == name)
        {
            s.name = ev["metadata"]["name"].as_str().unwrap_or("").into();
            ev["count"] = json!(s.count);
            ev["firstTimestamp"] = json!(time(s.first));
        }
        ev
    }
}

/// Records events for one controller.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Record>,
}

impl Recorder {
    /// Start the writer task on `client`.
    pub fn start(
        client: Client,
        component: &'static str,
    ) -> (Recorder, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(write_all(client, Correlator::new(component), rx));
        (Recorder { tx }, task)
    }

    /// Record an event; never waits.
    pub fn record(&self, r: Record) {
        if self.tx.try_send(r).is_err() {
            tracing::debug!("event queue full; event dropped");
        }
    }
}

async fn write_all(client: Client, mut c: Correlator, mut rx: mpsc::Receiver<Record>) {
    while let Some(r) = rx.recv().await {
        let now = Timestamp::now();
        let Some(w) = c.correlate(&r, now) else {
            tracing::debug!(reason = r.reason, "event dropped by the spam filter");
            continue;
        };
        let res = match w {
            Write::Create(ev) => create(&client, ev).await,
            Write::Patch {
                namespace,
                name,
                body,
            } => {
                let api: Api<Event> = Api::namespaced(client.clone(), &namespace);
                match api
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&body))
                    .await
                {
                    Err(kube::Error::Api(s)) if s.code == 404 => {
                        let msg = body["message"].as_str().unwrap_or("").to_string();
                        create(&client, c.recreate(&namespace, &name, &r, &msg, now)).await
                    }
                    other => other.map(|_| ()),
                }
            }
        };
        if let Err(e) = res {
            tracing::debug!(reason = r.reason, error = %e, "writing an event failed");
        }
    }
}

async fn create(client: &Client, ev: Value) -> Result<(), kube::Error> {
    let ns = ev["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let ev: Event = serde_json::from_value(ev).map_err(kube::Error::SerdeError)?;
    let api: Api<Event> = Api::namespaced(client.clone(), &ns);
    api.create(&PostParams::default(), &ev).await.map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(reason: &'static str, msg: &str) -> Record {
        Record {
            object: ObjectReference {
                api_version: Some("apps/v1".into()),
                kind: Some("ReplicaSet".into()),
                namespace: Some("ns".into()),
                name: Some("web".into()),
                uid: Some("u1".into()),
                ..ObjectReference::default()
            },
            type_: "Normal",
            reason,
            message: msg.into(),
        }
    }

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    #[test]
    fn a_new_event_names_its_object_and_source() {
        let mut c = Correlator::new("replicaset-controller");
        let Some(Write::Create(ev)) =
            c.correlate(&rec("SuccessfulCreate", "Created pod: web-abcde"), t(0))
        else {
            panic!("expected a create");
        };
        assert_eq!(ev["message"], "Created pod: web-abcde");
        assert_eq!(ev["reason"], "SuccessfulCreate");
        assert_eq!(ev["type"], "Normal");
        assert_eq!(ev["count"], 1);
        assert_eq!(ev["metadata"]["namespace"], "ns");
        assert!(ev["metadata"]["name"].as_str().unwrap().starts_with("web."));
        assert_eq!(ev["involvedObject"]["kind"], "ReplicaSet");
        assert_eq!(ev["source"]["component"], "replicaset-controller");
        // The body is a valid core Event.
        serde_json::from_value::<Event>(ev).unwrap();
    }

    #[test]
    fn repeats_bump_the_count() {
        let mut c = Correlator::new("x");
        let Some(Write::Create(ev)) =
            c.correlate(&rec("FailedCreate", "Error creating: quota"), t(0))
        else {
            panic!()
        };
        match c.correlate(&rec("FailedCreate", "Error creating: quota"), t(5)) {
            Some(Write::Patch {
                name,
                namespace,
                body,
            }) => {
                assert_eq!(name, ev["metadata"]["name"].as_str().unwrap());
                assert_eq!(namespace, "ns");
                assert_eq!(body["count"], 2);
                assert_eq!(body["message"], "Error creating: quota");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn many_similar_events_are_combined_and_then_limited() {
        let mut c = Correlator::new("x");
        let mut creates = Vec::new();
        let mut patches = 0;
        let mut dropped = 0;
        for i in 0..100 {
            match c.correlate(
                &rec("SuccessfulCreate", &format!("Created pod: web-{i}")),
                t(0),
            ) {
                Some(Write::Create(ev)) => {
                    creates.push(ev["message"].as_str().unwrap().to_string())
                }
                Some(Write::Patch { body, .. }) => {
                    patches += 1;
                    assert!(body["message"]
                        .as_str()
                        .unwrap()
                        .starts_with("(combined from similar events): "));
                }
                None => dropped += 1,
            }
        }
        // Nine distinct events, then one combined event bumped from there on,
        // 25 writes in all before the spam filter drops the rest.
        assert_eq!(creates.len(), 10);
        assert_eq!(creates[8], "Created pod: web-8");
        assert_eq!(
            creates[9],
            "(combined from similar events): Created pod: web-9"
        );
        assert_eq!(patches, 15);
        assert_eq!(dropped, 75);
        // Five minutes later one more write is allowed.
        assert!(c
            .correlate(&rec("SuccessfulCreate", "Created pod: x"), t(301))
            .is_some());
        assert!(c
            .correlate(&rec("SuccessfulCreate", "Created pod: y"), t(302))
            .is_none());
        // Other objects have their own budget.
        let mut other = rec("SuccessfulCreate", "Created pod: z");
        other.object.uid = Some("u2".into());
        assert!(c.correlate(&other, t(302)).is_some());
    }
}
