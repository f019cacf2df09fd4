//! Zones and their eviction rates, pure (upstream's `ComputeZoneState` and
//! `handleDisruption`): NoExecute taints are added at most `rate` nodes per
//! second per zone; a zone where many nodes are down slows down or stops,
//! and when every zone is fully down the controller assumes its own network
//! is at fault and taints nothing.

use k8s_openapi::api::core::v1::Node;

use crate::Config;

/// A node's zone key: region and zone labels.
pub fn zone_of(n: &Node) -> String {
    let l = n.metadata.labels.as_ref();
    let get = |k: &str| l.and_then(|l| l.get(k)).map(String::as_str).unwrap_or("");
    format!(
        "{}:\u{0}:{}",
        get("topology.kubernetes.io/region"),
        get("topology.kubernetes.io/zone")
    )
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ZoneState {
    Normal,
    PartialDisruption,
    FullDisruption,
}

/// A zone's state from its Ready and not-Ready node counts.
pub fn zone_state(ready: usize, not_ready: usize, threshold: f64) -> ZoneState {
    if ready == 0 && not_ready > 0 {
        ZoneState::FullDisruption
    } else if not_ready > 2 && not_ready as f64 / (ready + not_ready) as f64 >= threshold {
        ZoneState::PartialDisruption
    } else {
        ZoneState::Normal
    }
}

/// Taints per second in a zone of `size` nodes in `state`.
pub fn rate(cfg: &Config, state: ZoneState, size: usize) -> f64 {
    match state {
        ZoneState::Normal | ZoneState::FullDisruption => cfg.node_eviction_rate,
        ZoneState::PartialDisruption if size > cfg.large_cluster_size_threshold => {
            cfg.secondary_node_eviction_rate
        }
        ZoneState::PartialDisruption => 0.0,
    }
}

/// A token bucket with a burst of one, refilled at `rate` per second.
#[derive(Debug)]
pub struct Bucket {
    tokens: f64,
    at: std::time::Instant,
}

impl Bucket {
    pub fn new(now: std::time::Instant) -> Self {
        Bucket {
            tokens: 1.0,
            at: now,
        }
    }

    /// Take a token if one is there.
    pub fn take(&mut self, rate: f64, now: std::time::Instant) -> bool {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * rate).min(1.0);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn zone_states_and_rates() {
        assert_eq!(zone_state(3, 0, 0.55), ZoneState::Normal);
        assert_eq!(zone_state(0, 2, 0.55), ZoneState::FullDisruption);
        // Two down nodes never make a partial disruption.
        assert_eq!(zone_state(1, 2, 0.55), ZoneState::Normal);
        assert_eq!(zone_state(2, 3, 0.55), ZoneState::PartialDisruption);
        assert_eq!(zone_state(3, 3, 0.55), ZoneState::Normal);
        let cfg = Config::default();
        assert_eq!(rate(&cfg, ZoneState::Normal, 3), 0.1);
        assert_eq!(rate(&cfg, ZoneState::PartialDisruption, 10), 0.0);
        assert_eq!(rate(&cfg, ZoneState::PartialDisruption, 51), 0.01);
    }

    #[test]
    fn buckets_let_one_through_then_refill() {
        let t0 = Instant::now();
        let mut b = Bucket::new(t0);
        assert!(b.take(0.1, t0));
        assert!(!b.take(0.1, t0 + Duration::from_secs(5)));
        assert!(b.take(0.1, t0 + Duration::from_secs(10)));
        // A stopped zone lets nothing through.
        assert!(!b.take(0.0, t0 + Duration::from_secs(1000)));
    }

    #[test]
    fn zones_come_from_labels() {
        let n: Node = serde_json::from_value(serde_json::json!({"metadata": {"name": "n",
            "labels": {"topology.kubernetes.io/zone": "a"}}}))
        .unwrap();
        assert_eq!(zone_of(&n), ":\u{0}:a");
    }
}
