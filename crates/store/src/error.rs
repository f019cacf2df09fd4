use std::path::PathBuf;

/// Everything a store operation can fail with.
///
/// Failed compare-and-swap is *not* an error: it is a normal outcome reported
/// through [`crate::TxnOutcome`], so callers can build a 409 from the current value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The requested revision is older than the compaction point. The API server
    /// turns this into 410 Gone.
    #[error("required revision {requested} has been compacted (compacted revision {compacted})")]
    Compacted {
        /// The revision the caller asked for.
        requested: i64,
        /// The store's compaction revision.
        compacted: i64,
    },
    /// The requested revision is newer than anything committed.
    #[error("required revision {requested} is a future revision (current revision {current})")]
    FutureRevision {
        /// The revision the caller asked for.
        requested: i64,
        /// The store's current revision.
        current: i64,
    },
    /// The value is larger than [`crate::MAX_VALUE_BYTES`].
    #[error("value of {size} bytes for key {key:?} exceeds the limit of {limit} bytes")]
    ValueTooLarge {
        /// The key being written.
        key: String,
        /// The size of the rejected value.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// A request was malformed (empty key, bad range, bad TTL…).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The database file is not a valid wharf store.
    #[error("database file {path} is corrupt or truncated: {detail}")]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// What SQLite reported.
        detail: String,
    },
    /// An error from SQLite.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// An error talking to etcd.
    #[error("etcd: {0}")]
    Etcd(#[from] etcd_client::Error),
    /// An I/O error, e.g. creating the data directory.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The store was closed or its writer stopped after a fatal error.
    #[error("store is closed: {0}")]
    Closed(String),
    /// A watch could not keep up and was cancelled; resume it from the last
    /// revision it delivered.
    #[error("watch cancelled: {0}")]
    WatchCancelled(String),
}

/// Result with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
