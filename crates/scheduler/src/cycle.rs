//! One scheduling cycle: pre-filter (per-pod work of the affinity and
//! spread plugins), filter every node, score the feasible ones, then assume
//! and bind; or, when nothing fits, preempt and report why.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

use crate::plugins::{self, NodeInfo, Reason, Request};
use crate::{affinity, preempt, priority, report, spread, uid, Nomination, State};

/// Score weights of upstream's default profile (the resource scores
/// weigh 1 each).
const AFFINITY_WEIGHT: i64 = 2;
const SPREAD_WEIGHT: i64 = 2;

/// How long a preemptor waits for its victims before it may choose again
/// (a victim's default grace period is 30 s).
const VICTIMS_GONE_WITHIN: std::time::Duration = std::time::Duration::from_secs(60);

/// The per-pod state of the filters that look at other pods.
struct Checks {
    spread: Option<spread::FilterState>,
    affinity: Option<affinity::FilterState>,
}

impl Checks {
    /// PodTopologySpread, then InterPodAffinity, as upstream orders them.
    fn run(&self, n: &NodeInfo) -> Result<(), Reason> {
        if let Some(s) = &self.spread {
            spread::filter(s, n)?;
        }
        if let Some(a) = &self.affinity {
            affinity::filter(a, n)?;
        }
        Ok(())
    }
}

/// Filter one node; on failure, the reasons and whether evicting pods
/// there could help.
fn check(
    pod: &Pod,
    req: &Request,
    n: &NodeInfo,
    checks: &Checks,
) -> Result<(), (Vec<Reason>, bool)> {
    if let Err(rs) = plugins::filter(pod, req, n) {
        let helps = rs.iter().all(|r| preempt::resolvable(r))
            && checks
                .run(n)
                .map_or_else(|r| preempt::resolvable(&r), |()| true);
        return Err((rs, helps));
    }
    checks.run(n).map_err(|r| {
        let helps = preempt::resolvable(&r);
        (vec![r], helps)
    })
}

/// Pick the highest score, uniformly among ties.
fn best(scores: &[i64]) -> Option<usize> {
    let mut best: Option<(i64, usize)> = None;
    let mut ties = 0u32;
    for (i, &s) in scores.iter().enumerate() {
        match best {
            Some((b, _)) if s < b => {}
            Some((b, _)) if s == b => {
                ties += 1;
                if rand::random_range(0..=ties) == 0 {
                    best = Some((s, i));
                }
            }
            _ => {
                ties = 0;
                best = Some((s, i));
            }
        }
    }
    best.map(|(_, i)| i)
}

impl State {
    /// How many feasible nodes to look for before scoring: all of a small
    /// cluster, an adaptive share of a large one (upstream's
    /// percentageOfNodesToScore: 50% minus 1% per 125 nodes, at least 5% and
    /// at least 100 nodes).
    fn feasible_wanted(&self) -> usize {
        let n = self.nodes.len();
        if n <= 100 {
            return n;
        }
        let pct = (50 - (n as i64) / 125).max(5) as usize;
        (n * pct / 100).max(100)
    }

    /// The node with the requests of pods nominated to it (by preemption)
    /// that are at least as important as this one added, so they keep the
    /// room they preempted for; `None` when there are none.
    fn reserved(&self, pod: &str, prio: i32, n: &NodeInfo) -> Option<NodeInfo> {
        let mut adj: Option<NodeInfo> = None;
        for (u, nom) in &self.nominated {
            if u != pod && nom.node == n.name() && nom.priority >= prio {
                adj.get_or_insert_with(|| n.clone()).add(&nom.request);
            }
        }
        adj
    }

    pub(crate) async fn schedule(&mut self, pod: Pod) {
        let req = plugins::request_of(&pod);
        let id = uid(&pod);
        let prio = priority(&pod);
        let cs = spread::Constraints::of(&pod);
        let checks = Checks {
            spread: spread::pre_filter(&pod, &cs, &mut self.index, &self.nodes),
            affinity: affinity::pre_filter(&pod, &mut self.index, &self.nodes, &self.namespaces),
        };
        let total = self.nodes.len();
        let want = self.feasible_wanted();
        let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
        let mut feasible: Vec<&NodeInfo> = Vec::new();
        let mut helpable: Vec<&NodeInfo> = Vec::new();
        let start = if total == 0 {
            0
        } else {
            self.next_start % total
        };
        for (i, n) in self
            .nodes
            .values()
            .cycle()
            .skip(start)
            .take(total)
            .enumerate()
        {
            let adj = if self.nominated.is_empty() {
                None
            } else {
                self.reserved(&id, prio, n)
            };
            match check(&pod, &req, adj.as_ref().unwrap_or(n), &checks) {
                Ok(()) => {
                    feasible.push(n);
                    if feasible.len() >= want {
                        self.next_start = start + i + 1;
                        break;
                    }
                }
                Err((rs, helps)) => {
                    for r in rs {
                        *reasons.entry(r).or_default() += 1;
                    }
                    if helps {
                        helpable.push(n);
                    }
                }
            }
        }
        if !feasible.is_empty() {
            let mut scores: Vec<i64> = feasible.iter().map(|n| plugins::score(&req, n)).collect();
            if let Some(pairs) =
                affinity::pre_score(&pod, &mut self.index, &self.nodes, &self.namespaces)
            {
                let mut raw: Vec<i64> = feasible
                    .iter()
                    .map(|n| affinity::score(&pairs, n))
                    .collect();
                affinity::normalize(&mut raw);
                for (s, a) in scores.iter_mut().zip(raw) {
                    *s += AFFINITY_WEIGHT * a;
                }
            }
            if !cs.no_score() {
                let raw = spread::score(&pod, &cs, &mut self.index, &self.nodes, &feasible);
                for (s, a) in scores.iter_mut().zip(raw) {
                    *s += SPREAD_WEIGHT * a;
                }
            }
            let chosen = best(&scores).map(|i| feasible[i].name().to_string());
            if let Some(node) = chosen {
                self.nominated.remove(&id);
                self.place(id, node.clone(), req, Arc::new(pod.clone()));
                self.queue.pod_placed();
                if self.binds.send((pod, node)).await.is_err() {
                    tracing::warn!("the binder stopped");
                }
                return;
            }
        }
        let msg = plugins::unschedulable_message(total, &reasons);
        let may_preempt = pod
            .spec
            .as_ref()
            .and_then(|s| s.preemption_policy.as_deref())
            != Some("Never");
        let mut nominated_node = None;
        let waiting = self
            .nominated
            .get(&id)
            .filter(|nom| nom.victims.iter().any(|v| self.index.contains(v)))
            .filter(|nom| nom.at.elapsed() < VICTIMS_GONE_WITHIN);
        if let Some(nom) = waiting {
            // Its victims are still going: do not preempt again (unless
            // they have been going for too long, say a failed deletion).
            nominated_node = Some(nom.node.clone());
        } else if may_preempt {
            let budgets: Vec<preempt::Budget> = self.budgets.values().cloned().collect();
            // Affinity and spread are re-run as victims leave, but only for
            // a pod they concern: without constraints before any removal,
            // removing pods cannot add any.
            let (nodes, nsl) = (&self.nodes, &self.namespaces);
            let mut rerun = |idx: &mut crate::index::Index, n: &NodeInfo| {
                Checks {
                    spread: spread::pre_filter(&pod, &cs, idx, nodes),
                    affinity: affinity::pre_filter(&pod, idx, nodes, nsl),
                }
                .run(n)
                .is_ok()
            };
            let recheck: preempt::Recheck<'_> =
                if checks.spread.is_some() || checks.affinity.is_some() {
                    Some(&mut rerun)
                } else {
                    None
                };
            if let Some(c) = preempt::select(
                prio,
                &req,
                helpable.iter().copied(),
                &mut self.index,
                &budgets,
                recheck,
            ) {
                let victims: Vec<Pod> = c
                    .victims
                    .iter()
                    .filter_map(|u| self.index.get(u))
                    .map(|p| (*p.pod).clone())
                    .collect();
                tracing::info!(pod = ?pod.metadata.name, node = c.node, victims = victims.len(), "preempting");
                let (client, cfg, p, node) = (
                    self.client.clone(),
                    self.cfg.clone(),
                    pod.clone(),
                    c.node.clone(),
                );
                tokio::spawn(
                    async move { report::preempt(client, &cfg, &p, &node, victims).await },
                );
                nominated_node = Some(c.node.clone());
                self.nominated.insert(
                    id.clone(),
                    Nomination {
                        node: c.node,
                        priority: prio,
                        request: req,
                        victims: c.victims,
                        at: tokio::time::Instant::now(),
                    },
                );
            }
        }
        tracing::debug!(pod = ?pod.metadata.name, message = %msg, "unschedulable");
        let (client, cfg, p) = (self.client.clone(), self.cfg.clone(), pod.clone());
        tokio::spawn(async move {
            report::unschedulable(client, &cfg, &p, &msg, nominated_node.as_deref()).await
        });
        self.queue.park(pod);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_takes_the_highest_score() {
        assert_eq!(best(&[1, 5, 3]), Some(1));
        assert_eq!(best(&[]), None);
        let mut seen = [false; 2];
        for _ in 0..200 {
            seen[best(&[7, 7]).unwrap()] = true;
        }
        assert_eq!(seen, [true, true], "ties are broken at random");
    }
}
