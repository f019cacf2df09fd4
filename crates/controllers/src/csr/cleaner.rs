//! Deletes finished and stale CertificateSigningRequests, as upstream's
//! `csrcleaner`: approved, denied or failed ones an hour after that
//! decision, pending ones after a day, and any whose issued certificate
//! has expired.

use std::time::Duration;

use k8s_openapi::api::certificates::v1::CertificateSigningRequest;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, Preconditions};
use kube::Client;

const DECIDED_EXPIRATION: Duration = Duration::from_secs(3600);
const PENDING_EXPIRATION: Duration = Duration::from_secs(24 * 3600);
/// How often the requests are looked at (upstream: hourly).
const PERIOD: Duration = Duration::from_secs(3600);

/// Why `csr` should be deleted at `now`, if it should.
pub fn expired(csr: &CertificateSigningRequest, now: Timestamp) -> Option<&'static str> {
    let older = |t: Option<Timestamp>, d: Duration| {
        t.is_some_and(|t| now.duration_since(t).unsigned_abs() >= d && now > t)
    };
    let conditions = csr
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or(&[]);
    for (t, why) in [
        ("Approved", "approved an hour ago"),
        ("Denied", "denied an hour ago"),
        ("Failed", "failed an hour ago"),
    ] {
        if let Some(c) = conditions.iter().find(|c| c.type_ == t) {
            let at = c
                .last_update_time
                .as_ref()
                .or(c.last_transition_time.as_ref())
                .map(|t| t.0);
            if older(at, DECIDED_EXPIRATION) {
                return Some(why);
            }
        }
    }
    let issued = csr
        .status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .filter(|c| !c.0.is_empty());
    if let Some(cert) = issued {
        let not_after = x509_parser::pem::parse_x509_pem(&cert.0)
            .ok()
            .and_then(|(_, p)| {
                p.parse_x509()
                    .ok()
                    .map(|c| c.validity().not_after.timestamp())
            });
        if let Some(secs) = not_after {
            if now.as_second() > secs {
                return Some("its certificate expired");
            }
        }
    }
    let decided = conditions
        .iter()
        .any(|c| matches!(c.type_.as_str(), "Approved" | "Denied" | "Failed"));
    let created = csr.metadata.creation_timestamp.as_ref().map(|t| t.0);
    if !decided && older(created, PENDING_EXPIRATION) {
        return Some("pending for a day");
    }
    None
}

/// Run until the process ends.
pub async fn run(client: Client) {
    let api: Api<CertificateSigningRequest> = Api::all(client);
    loop {
        match api.list(&ListParams::default()).await {
            Ok(list) => {
                let now = Timestamp::now();
                for csr in list.items {
                    let Some(why) = expired(&csr, now) else {
                        continue;
                    };
                    let name = csr.metadata.name.clone().unwrap_or_default();
                    // Only the request we judged, not one re-created under its name.
                    let dp = DeleteParams {
                        preconditions: Some(Preconditions {
                            uid: csr.metadata.uid.clone(),
                            resource_version: None,
                        }),
                        ..DeleteParams::default()
                    };
                    match api.delete(&name, &dp).await {
                        Ok(_) => tracing::info!(csr = name, reason = why, "deleted"),
                        Err(e) => tracing::debug!(csr = name, error = %e, "cleaning up"),
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "listing certificate signing requests"),
        }
        tokio::time::sleep(PERIOD).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequestCondition, CertificateSigningRequestStatus,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn csr(created: Timestamp, cond: Option<(&str, Timestamp)>) -> CertificateSigningRequest {
        let mut c = CertificateSigningRequest::default();
        c.metadata.creation_timestamp = Some(Time(created));
        if let Some((t, at)) = cond {
            c.status = Some(CertificateSigningRequestStatus {
                conditions: Some(vec![CertificateSigningRequestCondition {
                    type_: t.into(),
                    status: "True".into(),
                    last_update_time: Some(Time(at)),
                    ..Default::default()
                }]),
                certificate: None,
            });
        }
        c
    }

    #[test]
    fn what_gets_cleaned() {
        let now = Timestamp::from_second(1_000_000).unwrap();
        let ago = |s: i64| Timestamp::from_second(1_000_000 - s).unwrap();
        assert_eq!(expired(&csr(ago(60), None), now), None);
        assert_eq!(
            expired(&csr(ago(86_400), None), now),
            Some("pending for a day")
        );
        assert_eq!(
            expired(&csr(ago(7200), Some(("Approved", ago(60)))), now),
            None
        );
        assert!(expired(&csr(ago(7200), Some(("Approved", ago(3600)))), now).is_some());
        assert!(expired(&csr(ago(7200), Some(("Denied", ago(4000)))), now).is_some());
        // A decided request is not "pending", however old.
        assert_eq!(
            expired(&csr(ago(90_000), Some(("Approved", ago(60)))), now),
            None
        );
    }
}
