//! The scheduling queue: active pods by priority then arrival, pods backing
//! off after a failed binding or a change that may help, and parked
//! (unschedulable) pods that wait for a cluster change.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use tokio::time::Instant;

/// Unschedulable pods are retried at least this often (upstream's
/// `podMaxInUnschedulablePodsDuration`).
const PARKED_AT_MOST: Duration = Duration::from_secs(300);
const BACKOFF_INITIAL: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

enum Where {
    /// In the heap under this sequence number.
    Active(u64),
    /// Eligible again at this time.
    BackingOff(Instant),
    /// Waiting for a change since this time.
    Parked(Instant),
    /// Popped and placed: its binding is in flight. Only the binding's
    /// failure, the pod's deletion or the watch seeing it bound moves it on;
    /// a cluster change does not make it eligible again (that would schedule
    /// it twice).
    InFlight,
}

struct Entry {
    pod: Pod,
    priority: i32,
    attempts: u32,
    at: Where,
}

/// The queue.
#[derive(Default)]
pub struct Queue {
    entries: HashMap<String, Entry>,
    heap: BinaryHeap<(i32, Reverse<u64>, String)>,
    seq: u64,
    /// Parked pods with required pod affinity: a newly placed pod may be
    /// the match they wait for.
    wait_for_pods: HashSet<String>,
}

fn uid(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_default()
}

fn priority(p: &Pod) -> i32 {
    p.spec.as_ref().and_then(|s| s.priority).unwrap_or(0)
}

fn has_required_pod_affinity(p: &Pod) -> bool {
    p.spec
        .as_ref()
        .and_then(|s| s.affinity.as_ref())
        .and_then(|a| a.pod_affinity.as_ref())
        .and_then(|a| {
            a.required_during_scheduling_ignored_during_execution
                .as_ref()
        })
        .is_some_and(|t| !t.is_empty())
}

/// Whether an update could change where the pod fits.
fn relevant_change(old: &Pod, new: &Pod) -> bool {
    old.spec != new.spec || old.metadata.labels != new.metadata.labels
}

impl Queue {
    fn activate(&mut self, id: &str) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(e) = self.entries.get_mut(id) {
            e.at = Where::Active(seq);
            self.heap.push((e.priority, Reverse(seq), id.to_string()));
        }
    }

    /// A pending pod, new or updated.
    pub fn push(&mut self, pod: Pod) {
        let id = uid(&pod);
        match self.entries.get_mut(&id) {
            Some(e) => {
                let changed = relevant_change(&e.pod, &pod);
                e.priority = priority(&pod);
                e.pod = pod;
                if changed && matches!(e.at, Where::Parked(_)) {
                    e.at = Where::BackingOff(Instant::now());
                }
            }
            None => {
                self.entries.insert(
                    id.clone(),
                    Entry {
                        priority: priority(&pod),
                        pod,
                        attempts: 0,
                        at: Where::Parked(Instant::now()),
                    },
                );
                self.activate(&id);
            }
        }
    }

    /// A pod that is no longer pending.
    pub fn remove(&mut self, id: &str) {
        self.entries.remove(id);
        self.wait_for_pods.remove(id);
    }

    /// The pod fits nowhere now: wait for a change.
    pub fn park(&mut self, pod: Pod) {
        let id = uid(&pod);
        if has_required_pod_affinity(&pod) {
            self.wait_for_pods.insert(id.clone());
        }
        let attempts = self.entries.get(&id).map(|e| e.attempts + 1).unwrap_or(1);
        self.entries.insert(
            id,
            Entry {
                priority: priority(&pod),
                pod,
                attempts,
                at: Where::Parked(Instant::now()),
            },
        );
    }

    /// Whether the pod was popped and its binding has not been settled.
    pub fn in_flight(&self, id: &str) -> bool {
        self.entries
            .get(id)
            .is_some_and(|e| matches!(e.at, Where::InFlight))
    }

    /// The pod's binding failed: retry after its backoff.
    pub fn push_backoff(&mut self, pod: Pod) {
        let id = uid(&pod);
        let attempts = self.entries.get(&id).map(|e| e.attempts + 1).unwrap_or(1);
        let at = Where::BackingOff(Instant::now() + backoff(attempts));
        self.entries.insert(
            id,
            Entry {
                priority: priority(&pod),
                pod,
                attempts,
                at,
            },
        );
    }

    /// Something that may help parked pods changed (a node, a freed slot):
    /// each parked pod becomes eligible after its backoff.
    pub fn cluster_changed(&mut self) {
        for e in self.entries.values_mut() {
            if let Where::Parked(since) = e.at {
                e.at = Where::BackingOff((since + backoff(e.attempts)).max(Instant::now()));
            }
        }
    }

    /// A pod was placed: parked pods waiting for a pod affinity match
    /// become eligible after their backoff.
    pub fn pod_placed(&mut self) {
        for id in std::mem::take(&mut self.wait_for_pods) {
            if let Some(e) = self.entries.get_mut(&id) {
                if let Where::Parked(since) = e.at {
                    e.at = Where::BackingOff((since + backoff(e.attempts)).max(Instant::now()));
                }
            }
        }
    }

    /// Move pods whose wait is over into the heap.
    fn promote(&mut self) {
        let now = Instant::now();
        let due: Vec<String> = self
            .entries
            .iter()
            .filter(|(_, e)| match e.at {
                Where::BackingOff(t) => t <= now,
                Where::Parked(t) => t + PARKED_AT_MOST <= now,
                Where::Active(_) | Where::InFlight => false,
            })
            .map(|(k, _)| k.clone())
            .collect();
        for id in due {
            self.activate(&id);
        }
    }

    /// The next pod to schedule, if one is eligible.
    pub fn pop(&mut self) -> Option<Pod> {
        self.promote();
        while let Some((_, Reverse(seq), id)) = self.heap.pop() {
            let current = self
                .entries
                .get(&id)
                .is_some_and(|e| matches!(e.at, Where::Active(s) if s == seq));
            if current {
                let e = self.entries.get_mut(&id).expect("checked above");
                e.at = Where::InFlight;
                return Some(e.pod.clone());
            }
        }
        None
    }

    /// Zero if a pod is eligible now, the time until the next one becomes
    /// eligible, or `None` when nothing waits.
    pub fn next_ready_in(&mut self) -> Option<Duration> {
        let now = Instant::now();
        let mut soonest: Option<Duration> = None;
        let mut any_active = false;
        for e in self.entries.values() {
            let at = match e.at {
                Where::Active(_) => {
                    any_active = true;
                    break;
                }
                Where::BackingOff(t) => t,
                Where::Parked(t) => t + PARKED_AT_MOST,
                Where::InFlight => continue,
            };
            let d = at.saturating_duration_since(now);
            soonest = Some(soonest.map_or(d, |s| s.min(d)));
        }
        if any_active {
            Some(Duration::ZERO)
        } else {
            soonest
        }
    }
}

fn backoff(attempts: u32) -> Duration {
    let d = BACKOFF_INITIAL * 2u32.saturating_pow(attempts.saturating_sub(1).min(8));
    d.min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(uid: &str, prio: i32) -> Pod {
        serde_json::from_value(json!({
            "metadata": {"name": uid, "uid": uid},
            "spec": {"priority": prio, "containers": [{"name": "c", "image": "x"}]}
        }))
        .unwrap()
    }

    fn name(p: Option<Pod>) -> Option<String> {
        p.and_then(|p| p.metadata.name)
    }

    #[tokio::test(start_paused = true)]
    async fn priority_then_arrival() {
        let mut q = Queue::default();
        q.push(pod("a", 0));
        q.push(pod("b", 10));
        q.push(pod("c", 0));
        assert_eq!(name(q.pop()).as_deref(), Some("b"));
        assert_eq!(name(q.pop()).as_deref(), Some("a"));
        assert_eq!(name(q.pop()).as_deref(), Some("c"));
        assert_eq!(name(q.pop()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn parked_pods_wait_for_a_change_then_back_off() {
        let mut q = Queue::default();
        q.push(pod("a", 0));
        let a = q.pop().unwrap();
        q.park(a);
        assert_eq!(name(q.pop()), None);
        // An update that changes nothing relevant does not wake it.
        q.push(pod("a", 0));
        assert_eq!(name(q.pop()), None);
        assert_eq!(q.next_ready_in(), Some(PARKED_AT_MOST));
        q.cluster_changed();
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert_eq!(name(q.pop()).as_deref(), Some("a"));
        // Removed pods are never handed out.
        q.push(pod("b", 0));
        q.remove("b");
        assert_eq!(name(q.pop()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn pods_waiting_for_an_affinity_match_wake_on_placements() {
        let mut q = Queue::default();
        let mut waiting = pod("a", 0);
        waiting.spec.as_mut().unwrap().affinity = serde_json::from_value(json!({"podAffinity":
            {"requiredDuringSchedulingIgnoredDuringExecution": [{"topologyKey": "k"}]}}))
        .unwrap();
        q.push(waiting);
        q.push(pod("b", 0));
        let a = q.pop().unwrap();
        let b = q.pop().unwrap();
        q.park(a);
        q.park(b);
        q.pod_placed();
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert_eq!(name(q.pop()).as_deref(), Some("a"));
        assert_eq!(name(q.pop()), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_pod_being_bound_is_never_handed_out_again() {
        // Nodes post status all the time; those changes wake parked pods,
        // never one whose binding is in flight (it would be placed twice).
        let mut q = Queue::default();
        q.push(pod("a", 0));
        assert_eq!(name(q.pop()).as_deref(), Some("a"));
        assert!(q.in_flight("a"));
        for _ in 0..3 {
            q.cluster_changed();
            q.pod_placed();
            q.push(pod("a", 0));
            tokio::time::advance(PARKED_AT_MOST + Duration::from_secs(1)).await;
            assert_eq!(name(q.pop()), None);
        }
        assert_eq!(q.next_ready_in(), None);
        // A failed binding puts it back after its backoff; the watch seeing
        // it bound takes it out.
        q.push_backoff(pod("a", 0));
        assert!(!q.in_flight("a"));
        tokio::time::advance(Duration::from_millis(1001)).await;
        assert_eq!(name(q.pop()).as_deref(), Some("a"));
        q.remove("a");
        assert!(!q.in_flight("a"));
        assert_eq!(q.next_ready_in(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn parked_pods_are_retried_after_five_minutes_anyway() {
        let mut q = Queue::default();
        q.push(pod("a", 0));
        let a = q.pop().unwrap();
        q.park(a);
        tokio::time::advance(PARKED_AT_MOST).await;
        assert_eq!(name(q.pop()).as_deref(), Some("a"));
    }

    #[test]
    fn backoff_doubles_to_ten_seconds() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(9), Duration::from_secs(10));
    }
}
