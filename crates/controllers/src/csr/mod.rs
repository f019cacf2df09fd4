//! CertificateSigningRequests: the approver of kubelet client requests
//! (upstream's `csrapproving` controller) and the signer of approved
//! `kubernetes.io/kube-apiserver-client(-kubelet)` requests with the
//! cluster CA (`csrsigning`). Both in one reconcile: approve first, then,
//! once the approval shows, sign. `cleaner` deletes old requests.

pub mod cleaner;
pub mod rules;
pub mod sign;

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::ByteString;
use kube::api::{Api, PostParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::Client;

pub use sign::Signer;

/// Errors of one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("API call failed: {0}")]
    Kube(#[source] kube::Error),
}

struct Ctx {
    api: Api<CertificateSigningRequest>,
    signer: Option<Signer>,
}

/// Run until the process ends. Without a signer (no CA key at hand) only
/// approvals happen.
pub async fn run(client: Client, signer: Option<Signer>) {
    let api: Api<CertificateSigningRequest> = Api::all(client);
    let ctx = Arc::new(Ctx {
        api: api.clone(),
        signer,
    });
    Controller::new(api, watcher::Config::default())
        .run(reconcile, error_policy, ctx)
        .for_each(|r| async move {
            if let Err(e) = r {
                tracing::debug!(error = %e, "csr reconcile");
            }
        })
        .await;
}

fn error_policy(_csr: Arc<CertificateSigningRequest>, e: &Error, _ctx: Arc<Ctx>) -> Action {
    tracing::warn!(error = %e, "certificate signing request controller");
    Action::requeue(crate::ERROR_REQUEUE)
}

fn has_condition(csr: &CertificateSigningRequest, t: &str) -> bool {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == t))
}

fn condition(type_: &str, reason: &str, message: String) -> CertificateSigningRequestCondition {
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    CertificateSigningRequestCondition {
        type_: type_.into(),
        status: "True".into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(now.clone()),
        last_transition_time: Some(now),
    }
}

fn push_condition(csr: &mut CertificateSigningRequest, c: CertificateSigningRequestCondition) {
    csr.status
        .get_or_insert_with(Default::default)
        .conditions
        .get_or_insert_with(Vec::new)
        .push(c);
}

async fn reconcile(csr: Arc<CertificateSigningRequest>, ctx: Arc<Ctx>) -> Result<Action, Error> {
    let Some(name) = csr.metadata.name.clone() else {
        return Ok(Action::await_change());
    };
    if has_condition(&csr, "Denied") || has_condition(&csr, "Failed") {
        return Ok(Action::await_change());
    }
    let issued = csr
        .status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .is_some_and(|c| !c.0.is_empty());
    if issued {
        return Ok(Action::await_change());
    }
    let spec = &csr.spec;
    let usages: Vec<&str> = spec.usages.iter().flatten().map(String::as_str).collect();
    let parsed = rules::parse(&spec.request.0);
    if !has_condition(&csr, "Approved") {
        let Ok((req, _)) = &parsed else {
            return Ok(Action::await_change());
        };
        let groups: Vec<&str> = spec.groups.iter().flatten().map(String::as_str).collect();
        let username = spec.username.as_deref().unwrap_or("");
        let Some(how) = rules::auto_approval(&spec.signer_name, req, &usages, username, &groups)
        else {
            return Ok(Action::await_change());
        };
        let mut approved = (*csr).clone();
        push_condition(
            &mut approved,
            condition("Approved", "AutoApproved", how.message().into()),
        );
        ctx.api
            .replace_subresource("approval", &name, &PostParams::default(), &approved)
            .await
            .map_err(Error::Kube)?;
        tracing::info!(csr = name, requester = username, "approved");
        return Ok(Action::await_change());
    }
    let Some(signer) = &ctx.signer else {
        return Ok(Action::await_change());
    };
    let problem = match (spec.signer_name.as_str(), &parsed) {
        (_, Err(e)) => Some(e.clone()),
        (rules::KUBELET_CLIENT_SIGNER, Ok((req, _))) => rules::kubelet_client_problem(req, &usages),
        (rules::CLIENT_SIGNER, Ok(_)) => rules::client_problem(&usages),
        // Another signer's request: not ours to sign.
        _ => return Ok(Action::await_change()),
    };
    let mut updated = (*csr).clone();
    match (problem, &parsed) {
        (None, Ok((_, der))) => {
            let now = time::OffsetDateTime::now_utc();
            let pem =
                match signer.sign_client(der, &usages, spec.expiration_seconds.map(i64::from), now)
                {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(csr = name, error = %e, "signing failed");
                        return Ok(Action::requeue(crate::ERROR_REQUEUE));
                    }
                };
            updated
                .status
                .get_or_insert_with(Default::default)
                .certificate = Some(ByteString(pem.into_bytes()));
            tracing::info!(csr = name, "signed");
        }
        (why, _) => {
            let why = why.unwrap_or_default();
            tracing::info!(csr = name, reason = why, "refusing to sign");
            push_condition(
                &mut updated,
                condition("Failed", "SignerValidationFailure", why),
            );
        }
    }
    ctx.api
        .replace_status(&name, &PostParams::default(), &updated)
        .await
        .map_err(Error::Kube)?;
    Ok(Action::await_change())
}
