//! Task helpers shared by the suites.

use anyhow::{anyhow, Result};
use tokio::task::{AbortHandle, JoinHandle};

/// Aborts the tasks it holds when dropped, so a failed phase leaves nothing
/// running against the system under test.
pub(crate) struct AbortOnDrop(pub(crate) Vec<AbortHandle>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

/// Wait for every task and collect their outputs; the first failure (error or
/// panic) is returned and the remaining tasks are aborted.
pub(crate) async fn join_all<T>(handles: Vec<JoinHandle<Result<T>>>) -> Result<Vec<T>> {
    let _guard = AbortOnDrop(handles.iter().map(JoinHandle::abort_handle).collect());
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.map_err(|e| anyhow!("task failed: {e}"))??);
    }
    Ok(out)
}
