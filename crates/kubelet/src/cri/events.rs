//! Container exits as they happen, from containerd's event service
//! (`containerd.services.events.v1.Events/Subscribe` on the same socket as
//! CRI). containerd 1.6 has no CRI container events (`GetContainerEvents`
//! came with 1.7), so the kubelet subscribes to the task events instead and
//! relists at once when a container exits or is OOM-killed; the relist every
//! second stays, for runtimes without the service and for anything missed.
//! The messages are written here (no generated code), with only the fields
//! read: `SubscribeRequest { repeated string filters = 1; }`, `Envelope {
//! string namespace = 2; string topic = 3; Any event = 4; }`, `Any {
//! string type_url = 1; bytes value = 2; }`, and in it `TaskExit`/`TaskOOM`
//! `{ string container_id = 1; string id = 2; }` (`TaskOOM` has no `id`).

use futures::stream::StreamExt;
use tonic::transport::Channel;

use super::CriError;

/// `containerd.services.events.v1.SubscribeRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct SubscribeRequest {
    /// containerd filters; the event matches if any one of them does.
    #[prost(string, repeated, tag = "1")]
    pub filters: Vec<String>,
}

/// `containerd.services.events.v1.Envelope`, without its timestamp.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Envelope {
    /// The containerd namespace (`k8s.io` for CRI's containers).
    #[prost(string, tag = "2")]
    pub namespace: String,
    /// The event's topic, e.g. `/tasks/exit`.
    #[prost(string, tag = "3")]
    pub topic: String,
    /// The event (`google.protobuf.Any`).
    #[prost(message, optional, tag = "4")]
    pub event: Option<Any>,
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    /// The payload's type, e.g. `containerd.events.TaskExit`.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The payload.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `containerd.events.TaskExit` and `TaskOOM`: the fields they share.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TaskEvent {
    /// The container (the CRI container or sandbox ID).
    #[prost(string, tag = "1")]
    pub container_id: String,
    /// The process: the container's own task has the container's ID, an
    /// exec'd process another; empty in `TaskOOM`.
    #[prost(string, tag = "2")]
    pub id: String,
}

/// One event as the kubelet uses it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuntimeEvent {
    /// The topic, one of [`TOPICS`].
    pub topic: String,
    /// The container (or sandbox) it is about; empty if the payload could
    /// not be read.
    pub container_id: String,
    /// Whether it is the container's own process that exited (not an
    /// exec'd one, nor an OOM kill).
    pub container_exited: bool,
}

impl RuntimeEvent {
    /// Whether the event can change a pod's status: a container's own
    /// exit, an OOM kill, or an event whose payload could not be read (an
    /// exec'd process, such as a probe, ending does not).
    pub fn matters(&self) -> bool {
        self.container_exited || self.topic != TOPICS[0] || self.container_id.is_empty()
    }

    /// The event an envelope carries.
    pub fn of(e: Envelope) -> RuntimeEvent {
        use prost::Message;
        let task = e
            .event
            .and_then(|a| TaskEvent::decode(a.value.as_slice()).ok())
            .unwrap_or_default();
        RuntimeEvent {
            container_exited: e.topic == TOPICS[0]
                && !task.container_id.is_empty()
                && task.id == task.container_id,
            topic: e.topic,
            container_id: task.container_id,
        }
    }
}

const METHOD: &str = "/containerd.services.events.v1.Events/Subscribe";

/// The topics that change what a relist sees without the kubelet asking:
/// a process ended, or the kernel's OOM killer struck.
pub const TOPICS: [&str; 2] = ["/tasks/exit", "/tasks/oom"];

/// The filters asking for [`TOPICS`].
pub fn filters() -> Vec<String> {
    TOPICS.iter().map(|t| format!("topic==\"{t}\"")).collect()
}

/// Subscribe to [`TOPICS`] over `channel`. Each item is one event; the stream yields an error and ends when the call fails
/// (`Unimplemented`: the runtime has no event service) or containerd goes
/// away. The call starts at once, in a task that lives as long as the
/// stream: containerd sends its response headers only with the first
/// event, so nothing here waits for them.
pub fn subscribe(channel: Channel) -> super::Events {
    fn failed(s: tonic::Status) -> CriError {
        CriError {
            method: "Events/Subscribe",
            code: s.code(),
            message: s.message().to_string(),
        }
    }
    let (tx, rx) = futures::channel::mpsc::unbounded();
    let call = async move {
        let mut g = tonic::client::Grpc::new(channel);
        if let Err(e) = g.ready().await {
            let _ = tx.unbounded_send(Err(CriError {
                method: "Events/Subscribe",
                code: tonic::Code::Unavailable,
                message: e.to_string(),
            }));
            return;
        }
        let codec = tonic_prost::ProstCodec::<SubscribeRequest, Envelope>::default();
        let req = tonic::Request::new(SubscribeRequest { filters: filters() });
        let path = http::uri::PathAndQuery::from_static(METHOD);
        match g.server_streaming(req, path, codec).await {
            Err(s) => {
                let _ = tx.unbounded_send(Err(failed(s)));
            }
            Ok(resp) => {
                let mut events = resp.into_inner();
                loop {
                    let item = match events.next().await {
                        None => return,
                        Some(r) => r.map(RuntimeEvent::of).map_err(failed),
                    };
                    let end = item.is_err();
                    if tx.unbounded_send(item).is_err() || end {
                        return;
                    }
                }
            }
        }
    };
    let task = tokio::spawn(call);
    let guard = AbortOnDrop(task);
    rx.map(move |item| {
        let _ = &guard;
        item
    })
    .boxed()
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn the_filters_name_the_topics_in_containerd_syntax() {
        assert_eq!(
            filters(),
            ["topic==\"/tasks/exit\"", "topic==\"/tasks/oom\""]
        );
    }

    fn envelope(topic: &str, container_id: &str, id: &str) -> Vec<u8> {
        let mut payload = Vec::new();
        prost::encoding::string::encode(1, &container_id.to_string(), &mut payload);
        if !id.is_empty() {
            prost::encoding::string::encode(2, &id.to_string(), &mut payload);
        }
        prost::encoding::uint32::encode(3, &4242, &mut payload); // pid
        prost::encoding::uint32::encode(4, &137, &mut payload); // exit_status
        let any = Any {
            type_url: "containerd.events.TaskExit".into(),
            value: payload,
        };
        let mut buf = Vec::new();
        // timestamp (1) is skipped; namespace, topic and event are read.
        prost::encoding::message::encode(
            1,
            &SubscribeRequest {
                filters: vec!["x".into()],
            },
            &mut buf,
        );
        prost::encoding::string::encode(2, &"k8s.io".to_string(), &mut buf);
        prost::encoding::string::encode(3, &topic.to_string(), &mut buf);
        prost::encoding::message::encode(4, &any, &mut buf);
        buf
    }

    #[test]
    fn an_envelope_gives_the_container_and_whether_its_own_process_exited() {
        let ev = |buf: Vec<u8>| RuntimeEvent::of(Envelope::decode(buf.as_slice()).unwrap());
        let e = Envelope::decode(envelope("/tasks/exit", "c1", "c1").as_slice()).unwrap();
        assert_eq!(
            (e.namespace.as_str(), e.topic.as_str()),
            ("k8s.io", "/tasks/exit")
        );
        assert_eq!(
            ev(envelope("/tasks/exit", "c1", "c1")),
            RuntimeEvent {
                topic: "/tasks/exit".into(),
                container_id: "c1".into(),
                container_exited: true
            }
        );
        // An exec'd process (a probe) ending is not the container's exit.
        assert!(!ev(envelope("/tasks/exit", "c1", "exec-7")).container_exited);
        let oom = ev(envelope("/tasks/oom", "c1", ""));
        assert_eq!(
            (oom.container_id.as_str(), oom.container_exited),
            ("c1", false)
        );
        // An envelope without a payload still wakes the relist.
        let mut bare = Vec::new();
        prost::encoding::string::encode(3, &"/tasks/exit".to_string(), &mut bare);
        assert_eq!(ev(bare).container_id, "");
    }
}
