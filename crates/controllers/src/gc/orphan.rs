//! `attemptToOrphan`: an owner deleted with `propagationPolicy=Orphan`
//! carries the `orphan` finalizer; its dependents lose their reference to
//! it, then the finalizer is removed and the API server deletes the owner.

use futures::StreamExt;

use super::graph::ORPHAN;
use super::ops::{self, Error};
use super::Ctx;

/// Dependents patched at once.
const PARALLEL: usize = 16;

/// Process one owner UID of the `attemptToOrphan` queue.
pub async fn attempt_to_orphan(ctx: &Ctx, uid: &str) -> Result<(), Error> {
    let (owner, dependents) = {
        let st = ctx.state();
        let Some(owner) = st.graph.node(uid).cloned() else {
            // Gone already: nothing waits for us.
            return Ok(());
        };
        let deps: Vec<_> = st
            .graph
            .dependents(uid)
            .into_iter()
            .map(|d| (d.res.clone(), d.id.clone()))
            .collect();
        (owner, deps)
    };
    let uids = [uid.to_string()];
    let errors: Vec<String> = futures::stream::iter(dependents)
        .map(|(res, id)| {
            let uids = &uids;
            async move {
                ops::patch_pinned(&ctx.client, &res, &id, |m| ops::without_owners(m, uids))
                    .await
                    .err()
                    .map(|e| format!("orphaning {id} failed, {e}"))
            }
        })
        .buffer_unordered(PARALLEL)
        .filter_map(std::future::ready)
        .collect()
        .await;
    if !errors.is_empty() {
        return Err(Error::Orphaning {
            owner: owner.id,
            errors: errors.join(", "),
        });
    }
    tracing::debug!(owner = %owner.id, "dependents orphaned; removing the orphan finalizer");
    ops::patch_pinned(&ctx.client, &owner.res, &owner.id, |m| {
        ops::without_finalizer(m, ORPHAN)
    })
    .await?;
    Ok(())
}
