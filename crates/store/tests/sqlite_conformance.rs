//! The conformance suite against the embedded SQLite backend.

use std::sync::Arc;

use store::conformance::Fixture;
use store::{SqliteStore, StoreOptions};

async fn fresh(opts: StoreOptions) -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("state.db"), opts)
        .await
        .expect("open");
    Fixture {
        store: Arc::new(store),
        guard: Box::new(dir),
    }
}

store::conformance_tests!(fresh);
