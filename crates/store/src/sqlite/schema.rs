//! Opening the database file: pragmas, schema, the corruption check, and the
//! rebuild of the in-memory index of live keys.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;

use rusqlite::{params, Connection, OpenFlags};

use super::{Live, State};
use crate::{Error, Result};

const SQLITE_MAGIC: &[u8; 16] = b"SQLite format 3\0";

/// The log of every write. A row per revision; deletes are tombstones with a NULL
/// value. Compaction removes rows superseded at or below the compaction revision.
/// `codec` says how `value` is stored (see `codec.rs`).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS kv (
    rev        INTEGER PRIMARY KEY,
    key        BLOB    NOT NULL,
    create_rev INTEGER NOT NULL,
    version    INTEGER NOT NULL,
    value      BLOB,
    expires_ms INTEGER,
    codec      INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS kv_key_rev ON kv(key, rev);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO meta(name, value) VALUES ('rev', 0), ('compact_rev', 0);
";

fn corrupt(path: &Path, detail: impl Into<String>) -> Error {
    Error::Corrupt {
        path: path.to_path_buf(),
        detail: detail.into(),
    }
}

/// Map SQLite's "not a database" and "malformed" errors to [`Error::Corrupt`].
pub(super) fn classify(path: &Path, e: rusqlite::Error) -> Error {
    use rusqlite::ffi::ErrorCode;
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) | Some(ErrorCode::DatabaseCorrupt) => {
            corrupt(path, e.to_string())
        }
        _ => Error::Sqlite(e),
    }
}

fn apply_pragmas(conn: &Connection, path: &Path) -> Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| classify(path, e))?;
    // page_size and auto_vacuum only take effect before the first table
    // exists (an older file keeps its own). 8 KiB pages hold a typical
    // object with its managedFields (4-7 KB of JSON) in its leaf page: with
    // 4 KiB pages each such row spilled into an overflow page, so a commit
    // wrote about twice as many WAL frames. The writer's
    // own small auto-checkpoint is what lets the WAL restart under steady writes
    // (no frames can be added while it runs); the checkpointer thread in mod.rs
    // copies most frames beforehand, so that one has little left to do.
    conn.execute_batch(
        "PRAGMA page_size = 8192;
         PRAGMA auto_vacuum = INCREMENTAL;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA wal_autocheckpoint = 1000;
         PRAGMA journal_size_limit = 16777216;
         PRAGMA cache_size = -16000;",
    )
    .map_err(|e| classify(path, e))
}

/// Open the writer connection, creating the file and schema when new, and
/// refusing a file that is not an intact wharf store.
pub(super) fn open_writer(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() {
            std::fs::create_dir_all(dir)?;
        }
    }
    let existed = check_header(path)?;
    let conn = Connection::open(path).map_err(|e| classify(path, e))?;
    apply_pragmas(&conn, path)?;
    if existed {
        let verdict: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| classify(path, e))?;
        if verdict != "ok" {
            return Err(corrupt(path, verdict));
        }
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('kv', 'meta')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| classify(path, e))?;
        let any: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(|e| classify(path, e))?;
        if tables != 2 && any != 0 {
            return Err(corrupt(
                path,
                "not a wharf store: tables kv and meta are missing",
            ));
        }
    }
    conn.execute_batch(SCHEMA).map_err(|e| classify(path, e))?;
    add_codec_column(&conn).map_err(|e| classify(path, e))?;
    Ok(conn)
}

/// A store made before values could be compressed lacks the `codec` column.
/// Adding it with a constant default rewrites no row: old rows read as codec 0,
/// their values as given.
fn add_codec_column(conn: &Connection) -> rusqlite::Result<()> {
    let has: i64 = conn.query_row(
        "SELECT count(*) FROM pragma_table_info('kv') WHERE name = 'codec'",
        [],
        |r| r.get(0),
    )?;
    if has == 0 {
        conn.execute_batch("ALTER TABLE kv ADD COLUMN codec INTEGER NOT NULL DEFAULT 0")?;
    }
    Ok(())
}

/// Open a connection for reads.
pub(super) fn open_reader(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| classify(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| classify(path, e))?;
    conn.execute_batch("PRAGMA query_only = 1; PRAGMA cache_size = -8000;")
        .map_err(|e| classify(path, e))?;
    Ok(conn)
}

/// Open the connection the checkpointer thread uses.
pub(super) fn open_checkpointer(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| classify(path, e))?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(|e| classify(path, e))?;
    conn.execute_batch("PRAGMA synchronous = FULL;")
        .map_err(|e| classify(path, e))?;
    Ok(conn)
}

/// Returns whether a non-empty file exists; fails if it does not start like a
/// SQLite database, so that a damaged header is reported instead of the file
/// being treated as new.
fn check_header(path: &Path) -> Result<bool> {
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let len = f.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    let mut head = [0u8; 16];
    if len < 16 || f.read_exact(&mut head).is_err() || &head != SQLITE_MAGIC {
        return Err(corrupt(path, "missing SQLite header"));
    }
    if len < 512 {
        return Err(corrupt(path, format!("file is only {len} bytes")));
    }
    Ok(true)
}

/// Rebuild the in-memory index from the newest row of every key.
pub(super) fn load_state(conn: &Connection, path: &Path) -> Result<State> {
    let meta = |name: &str| -> Result<i64> {
        conn.query_row(
            "SELECT value FROM meta WHERE name = ?1",
            params![name],
            |r| r.get(0),
        )
        .map_err(|e| classify(path, e))
    };
    let mut rev = meta("rev")?;
    let compact_rev = meta("compact_rev")?;
    let mut index = BTreeMap::new();
    let mut expiries = BTreeSet::new();
    {
        // SQLite takes the bare columns from the row holding max(rev).
        let mut stmt = conn
            .prepare(
                "SELECT key, max(rev), create_rev, version, value IS NULL, expires_ms
                 FROM kv GROUP BY key",
            )
            .map_err(|e| classify(path, e))?;
        let mut rows = stmt.query([]).map_err(|e| classify(path, e))?;
        while let Some(row) = rows.next().map_err(|e| classify(path, e))? {
            let key: Vec<u8> = row.get(0)?;
            let mod_rev: i64 = row.get(1)?;
            rev = rev.max(mod_rev);
            let tombstone: bool = row.get(4)?;
            if tombstone {
                continue;
            }
            let live = Live {
                mod_rev,
                create_rev: row.get(2)?,
                version: row.get(3)?,
                expires_ms: row.get(5)?,
            };
            if let Some(at) = live.expires_ms {
                expiries.insert((at, key.clone()));
            }
            index.insert(key, live);
        }
    }
    Ok(State {
        index,
        expiries,
        rev,
        compact_rev,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_size(conn: &Connection) -> i64 {
        conn.query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn new_files_get_large_pages_and_old_files_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let fresh = dir.path().join("new.db");
        let conn = open_writer(&fresh).unwrap();
        assert_eq!(page_size(&conn), 8192);
        drop(conn);
        assert_eq!(page_size(&open_writer(&fresh).unwrap()), 8192);

        // A store made with 4 KiB pages opens as it is.
        let old = dir.path().join("old.db");
        {
            let c = Connection::open(&old).unwrap();
            c.execute_batch("PRAGMA page_size = 4096; PRAGMA journal_mode = WAL;")
                .unwrap();
            c.execute_batch(SCHEMA).unwrap();
        }
        let conn = open_writer(&old).unwrap();
        assert_eq!(page_size(&conn), 4096);
        assert!(load_state(&conn, &old).is_ok());
    }
}
