//! placeholder, being written
/// Embedded store.
pub struct SqliteStore;
