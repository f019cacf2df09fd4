//! The relist at once when a container exits: the runtime's exit and OOM
//! events (see [`crate::cri::events`]) wake the pod loop, so that a pod's
//! status follows a container's end within a fraction of a second instead
//! of at the next relist. containerd's CRI plugin records an exit from the
//! same event, after deleting the task, so for a container's own exit the
//! loop is woken once CRI shows the container stopped; it is woken once
//! more a little later in any case. A runtime without events leaves the
//! relist every second alone ([`super::RELIST_EVERY`]).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::cri::events::RuntimeEvent;
use crate::cri::{api, Runtime};

/// How often CRI is asked whether it has recorded an exit it was told of.
pub const POLL: Duration = Duration::from_millis(20);
/// How long CRI is given to record it before the loop is woken anyway.
pub const RECORD_MAX: Duration = Duration::from_secs(1);
/// The wake after an event that names no container to ask about (an OOM
/// kill, an unreadable payload).
pub const SETTLE: Duration = Duration::from_millis(20);
/// The second wake after an event, for anything CRI recorded later.
pub const AGAIN: Duration = Duration::from_millis(250);
/// The pause before subscribing again after the stream broke (containerd
/// restarting).
pub const RESUBSCRIBE: Duration = Duration::from_secs(1);

/// Wake `wake` after each of the runtime's exit events that can change a
/// pod's status, until dropped; return at once if the runtime has no event
/// service.
pub async fn follow(runtime: Arc<dyn Runtime>, wake: Arc<Notify>) {
    loop {
        let mut events = match runtime.exits().await {
            Ok(s) => s,
            Err(e) if e.code == tonic::Code::Unimplemented => return no_events(e),
            Err(e) => {
                tracing::debug!(error = %e, "runtime events unavailable; subscribing again");
                tokio::time::sleep(RESUBSCRIBE).await;
                continue;
            }
        };
        let mut again: Option<Instant> = None;
        loop {
            let second = async {
                match again {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                ev = events.next() => match ev {
                    Some(Ok(ev)) if ev.matters() => {
                        tracing::debug!(topic = %ev.topic, container = %ev.container_id, "runtime event");
                        recorded(runtime.as_ref(), &ev).await;
                        wake.notify_one();
                        again = Some(Instant::now() + AGAIN);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) if e.code == tonic::Code::Unimplemented => return no_events(e),
                    Some(Err(e)) => {
                        tracing::debug!(error = %e, "runtime events ended");
                        break;
                    }
                    None => break,
                },
                _ = second => {
                    again = None;
                    wake.notify_one();
                }
            }
        }
        tokio::time::sleep(RESUBSCRIBE).await;
    }
}

/// Wait until CRI shows the container of `ev` no longer running (at most
/// [`RECORD_MAX`]); a moment for events that name no container's exit.
async fn recorded(runtime: &dyn Runtime, ev: &RuntimeEvent) {
    if !ev.container_exited {
        return tokio::time::sleep(SETTLE).await;
    }
    let deadline = Instant::now() + RECORD_MAX;
    while Instant::now() < deadline {
        match runtime.container_status(&ev.container_id).await {
            Ok(st) if st.state == api::ContainerState::ContainerRunning as i32 => {}
            // Exited, or not a container (a sandbox's pause process), or gone.
            _ => return,
        }
        tokio::time::sleep(POLL).await;
    }
}

fn no_events(e: crate::cri::CriError) {
    tracing::info!(error = %e, "the runtime has no event service; relisting every second only");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cri::fake::Fake;

    async fn woken(wake: &Notify, within: Duration) -> bool {
        tokio::time::timeout(within, wake.notified()).await.is_ok()
    }

    fn oom() -> RuntimeEvent {
        RuntimeEvent {
            topic: "/tasks/oom".into(),
            container_id: "c1".into(),
            container_exited: false,
        }
    }

    fn exit(container: &str, own: bool) -> RuntimeEvent {
        RuntimeEvent {
            topic: "/tasks/exit".into(),
            container_id: container.into(),
            container_exited: own,
        }
    }

    fn fake_with(state: api::ContainerState) -> Fake {
        let fake = Fake::default();
        fake.containers.lock().unwrap().insert(
            "c1".into(),
            api::Container {
                id: "c1".into(),
                state: state as i32,
                ..Default::default()
            },
        );
        fake
    }

    #[tokio::test(start_paused = true)]
    async fn an_exit_wakes_the_loop_once_cri_has_recorded_it() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let fake = Arc::new(fake_with(api::ContainerState::ContainerRunning));
        fake.exits.lock().unwrap().push_back(rx);
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(follow(fake.clone(), wake.clone()));
        // An exec'd process ending (a probe) wakes nothing.
        tx.send(Ok(exit("c1", false))).unwrap();
        assert!(!woken(&wake, Duration::from_secs(5)).await);
        // The container's own exit: not before CRI shows it stopped.
        tx.send(Ok(exit("c1", true))).unwrap();
        let t0 = Instant::now();
        assert!(!woken(&wake, Duration::from_millis(300)).await);
        fake.containers.lock().unwrap().get_mut("c1").unwrap().state =
            api::ContainerState::ContainerExited as i32;
        assert!(woken(&wake, Duration::from_secs(1)).await);
        assert!(
            t0.elapsed() <= Duration::from_millis(300) + POLL,
            "{:?}",
            t0.elapsed()
        );
        // A container CRI still shows running after RECORD_MAX wakes the
        // loop anyway, and so does a sandbox's exit (no such container).
        tokio::time::sleep(AGAIN * 2).await;
        while woken(&wake, Duration::ZERO).await {}
        fake.containers.lock().unwrap().get_mut("c1").unwrap().state =
            api::ContainerState::ContainerRunning as i32;
        tx.send(Ok(exit("c1", true))).unwrap();
        let t0 = Instant::now();
        assert!(woken(&wake, RECORD_MAX * 2).await);
        assert!(t0.elapsed() >= RECORD_MAX, "{:?}", t0.elapsed());
        tokio::time::sleep(AGAIN * 2).await;
        while woken(&wake, Duration::ZERO).await {}
        tx.send(Ok(exit("sandbox-1", true))).unwrap();
        let t0 = Instant::now();
        assert!(woken(&wake, Duration::from_secs(1)).await);
        assert_eq!(t0.elapsed(), Duration::ZERO);
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn an_oom_wakes_the_loop_soon_and_once_more_later() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let fake = Fake::default();
        fake.exits.lock().unwrap().push_back(rx);
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(follow(Arc::new(fake), wake.clone()));
        // Nothing happens without an event.
        assert!(!woken(&wake, Duration::from_secs(5)).await);
        tx.send(Ok(oom())).unwrap();
        let t0 = Instant::now();
        assert!(woken(&wake, Duration::from_secs(1)).await);
        assert_eq!(t0.elapsed(), SETTLE);
        assert!(woken(&wake, Duration::from_secs(1)).await);
        assert_eq!(t0.elapsed(), SETTLE + AGAIN);
        // And then quiet until the next event.
        assert!(!woken(&wake, Duration::from_secs(5)).await);
        tx.send(Ok(oom())).unwrap();
        assert!(woken(&wake, Duration::from_secs(1)).await);
        task.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn a_runtime_without_events_is_left_to_the_relist() {
        let wake = Arc::new(Notify::new());
        tokio::time::timeout(
            Duration::from_secs(1),
            follow(Arc::new(Fake::default()), wake),
        )
        .await
        .expect("follow returns at once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_says_unimplemented_is_left_to_the_relist() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let fake = Fake::default();
        fake.exits.lock().unwrap().push_back(rx);
        tx.send(Err(crate::cri::CriError::new(
            "Events/Subscribe",
            tonic::Code::Unimplemented,
            "unknown service containerd.services.events.v1.Events",
        )))
        .unwrap();
        let wake = Arc::new(Notify::new());
        tokio::time::timeout(Duration::from_secs(1), follow(Arc::new(fake), wake))
            .await
            .expect("follow returns at once");
    }

    #[tokio::test(start_paused = true)]
    async fn a_broken_stream_is_subscribed_again() {
        let (tx1, rx1) = tokio::sync::mpsc::unbounded_channel();
        let (tx2, rx2) = tokio::sync::mpsc::unbounded_channel();
        let fake = Arc::new(Fake::default());
        fake.exits.lock().unwrap().extend([rx1, rx2]);
        tx1.send(Err(crate::cri::CriError::new(
            "Events/Subscribe",
            tonic::Code::Unavailable,
            "containerd went away",
        )))
        .unwrap();
        tx2.send(Ok(oom())).unwrap();
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(follow(fake.clone(), wake.clone()));
        let t0 = Instant::now();
        assert!(woken(&wake, Duration::from_secs(5)).await);
        assert_eq!(t0.elapsed(), RESUBSCRIBE + SETTLE);
        assert!(fake.exits.lock().unwrap().is_empty());
        task.abort();
    }
}
