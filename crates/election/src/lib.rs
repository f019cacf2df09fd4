//! Leader election through a coordination.k8s.io Lease, as upstream's
//! client-go leaderelection: only the holder runs its component, so two
//! schedulers never both bind and two controller managers never both act
//! (several `wharf server`s on one etcd, or standalone components).
//!
//! A candidate takes the Lease when it does not exist, names no holder, or
//! has not changed for `leaseDurationSeconds` as measured on this
//! process's own clock (never comparing timestamps across machines). The
//! holder renews every `retry_period`; if it cannot renew for
//! `renew_deadline` it stops working and campaigns again. On shutdown it
//! releases the Lease (empty holder, duration 1 s) so a successor need not
//! wait.

use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{Api, ObjectMeta, PostParams};
use kube::Client;
use tokio::time::Instant;

/// Where the Lease is and how it is held.
#[derive(Clone, Debug)]
pub struct Config {
    /// The Lease's namespace.
    pub namespace: String,
    /// The Lease's name.
    pub name: String,
    /// Who this candidate is.
    pub identity: String,
    /// How long a Lease lasts without renewal.
    pub lease_duration: Duration,
    /// How long the holder keeps working without a successful renewal.
    pub renew_deadline: Duration,
    /// How often to try to acquire or renew.
    pub retry_period: Duration,
}

impl Config {
    /// Upstream's defaults for the component whose Lease is
    /// `kube-system/<name>` (`kube-scheduler`, `kube-controller-manager`):
    /// 15 s lease, 10 s renew deadline, 2 s retry.
    pub fn upstream_defaults(name: &str, identity: String) -> Config {
        Config {
            namespace: "kube-system".into(),
            name: name.into(),
            identity,
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// `<hostname>_<uuid>`, as upstream's components name themselves; a new
/// uuid for every process.
pub fn default_identity() -> String {
    format!("{}_{}", hostname(), uuid::Uuid::new_v4())
}

/// `<hostname>_<uuid>` with the uuid kept in `file` (created on first use):
/// the identity of the components `wharf server` runs, stable across its
/// restarts, so that a restarted server renews its own Lease at once instead
/// of waiting for it to expire.
pub fn stable_identity(file: &std::path::Path) -> std::io::Result<String> {
    let id = match std::fs::read_to_string(file) {
        Ok(s) if uuid::Uuid::parse_str(s.trim()).is_ok() => s.trim().to_string(),
        _ => {
            let id = uuid::Uuid::new_v4().to_string();
            let tmp = file.with_extension("tmp");
            std::fs::write(&tmp, &id)?;
            std::fs::rename(&tmp, file)?;
            id
        }
    };
    Ok(format!("{}_{id}", hostname()))
}

fn hostname() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    if host.is_empty() {
        "localhost".into()
    } else {
        host
    }
}

/// What this candidate last saw of the Lease, and when it saw it change.
struct Observed {
    record: Option<(String, Option<String>, Option<i32>)>,
    at: Instant,
}

struct Elector {
    api: Api<Lease>,
    cfg: Config,
    seen: Observed,
}

fn now() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

impl Elector {
    /// One attempt; `Ok(true)` if this candidate holds the Lease now.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let lease_secs = self.cfg.lease_duration.as_secs().max(1) as i32;
        let Some(mut lease) = self.api.get_opt(&self.cfg.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.cfg.name.clone()),
                    namespace: Some(self.cfg.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.cfg.identity.clone()),
                    lease_duration_seconds: Some(lease_secs),
                    acquire_time: Some(now()),
                    renew_time: Some(now()),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let holder = spec.holder_identity.clone().unwrap_or_default();
        let record = (
            holder.clone(),
            spec.renew_time.as_ref().map(|t| t.0.to_string()),
            spec.lease_duration_seconds,
        );
        if self.seen.record.as_ref() != Some(&record) {
            self.seen.record = Some(record);
            self.seen.at = Instant::now();
        }
        let held_for =
            Duration::from_secs(spec.lease_duration_seconds.unwrap_or(lease_secs).max(0) as u64);
        let mine = holder == self.cfg.identity;
        if !holder.is_empty() && !mine && self.seen.at + held_for > Instant::now() {
            return Ok(false);
        }
        let mut next = spec.clone();
        next.holder_identity = Some(self.cfg.identity.clone());
        next.lease_duration_seconds = Some(lease_secs);
        next.renew_time = Some(now());
        if !mine {
            next.acquire_time = Some(now());
            next.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
        }
        lease.spec = Some(next);
        match self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn acquire(&mut self) {
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return,
                Ok(false) => {}
                Err(e) => tracing::debug!(error = %e, "acquiring the lease failed"),
            }
            // Jitter, as upstream's JitterFactor 1.2, so candidates stagger.
            let jitter = rand::random_range(0.0..1.2);
            tokio::time::sleep(self.cfg.retry_period.mul_f64(1.0 + jitter)).await;
        }
    }

    /// Renew until the Lease is lost; returns then.
    async fn keep(&mut self) {
        let mut last_ok = Instant::now();
        loop {
            tokio::time::sleep(self.cfg.retry_period).await;
            let left = self
                .cfg
                .renew_deadline
                .saturating_sub(last_ok.elapsed())
                .max(Duration::from_millis(1));
            match tokio::time::timeout(left, self.try_acquire_or_renew()).await {
                Ok(Ok(true)) => last_ok = Instant::now(),
                Ok(Ok(false)) => return,
                Ok(Err(e)) => tracing::debug!(error = %e, "renewing the lease failed"),
                Err(_) => {}
            }
            if last_ok.elapsed() >= self.cfg.renew_deadline {
                return;
            }
        }
    }

    /// Give the Lease up if this candidate still holds it.
    async fn release(&mut self) {
        let Ok(Some(mut lease)) = self.api.get_opt(&self.cfg.name).await else {
            return;
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(self.cfg.identity.as_str()) {
            return;
        }
        spec.holder_identity = Some(String::new());
        spec.lease_duration_seconds = Some(1);
        spec.renew_time = Some(now());
        spec.acquire_time = Some(now());
        lease.spec = Some(spec);
        if let Err(e) = self
            .api
            .replace(&self.cfg.name, &PostParams::default(), &lease)
            .await
        {
            tracing::warn!(error = %e, "releasing the lease failed");
        }
    }
}

/// Run `work` only while holding the Lease, campaigning again whenever it
/// is lost, until `shutdown` completes; then release the Lease.
pub async fn run_elected<W, Fut, S>(client: Client, cfg: Config, work: W, shutdown: S)
where
    W: Fn() -> Fut,
    Fut: Future<Output = ()>,
    S: Future<Output = ()>,
{
    let mut el = Elector {
        api: Api::namespaced(client, &cfg.namespace),
        cfg,
        seen: Observed {
            record: None,
            at: Instant::now(),
        },
    };
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            _ = el.acquire() => {}
            _ = &mut shutdown => return,
        }
        tracing::info!(identity = %el.cfg.identity, lease = %el.cfg.name, "became the leader");
        let lost = {
            let w = work();
            tokio::select! {
                _ = w => false,
                _ = el.keep() => true,
                _ = &mut shutdown => false,
            }
        };
        if !lost {
            el.release().await;
            return;
        }
        tracing::warn!(identity = %el.cfg.identity, lease = %el.cfg.name, "lost the lease; stopped working");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_host_underscore_uuid_and_unique() {
        let a = default_identity();
        let (host, id) = a.rsplit_once('_').unwrap();
        assert!(!host.is_empty());
        assert!(uuid::Uuid::parse_str(id).is_ok());
        assert_ne!(a, default_identity());
        let c = Config::upstream_defaults("kube-scheduler", a);
        assert_eq!(
            (c.namespace.as_str(), c.name.as_str()),
            ("kube-system", "kube-scheduler")
        );
        assert!(c.lease_duration > c.renew_deadline && c.renew_deadline > c.retry_period);
    }

    #[test]
    fn a_stable_identity_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("wharf-election-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("identity");
        let a = stable_identity(&file).unwrap();
        assert_eq!(a, stable_identity(&file).unwrap());
        std::fs::write(&file, "garbage").unwrap();
        let b = stable_identity(&file).unwrap();
        assert_ne!(a, b);
        assert!(uuid::Uuid::parse_str(b.rsplit_once('_').unwrap().1).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
