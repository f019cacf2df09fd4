//! Hidden developer commands that the test suite drives as child processes.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Subcommand};
use store::{Precondition, SqliteStore, Store, StoreOptions, WriteOp, WriteOutcome};

#[derive(Args, Debug)]
pub struct DebugArgs {
    #[command(subcommand)]
    command: DebugCommand,
}

#[derive(Subcommand, Debug)]
enum DebugCommand {
    /// Write to an embedded store from many tasks until killed, printing one
    /// line per acknowledged write: `ACK <revision> PUT|DEL <key> <value>`.
    StoreLoad {
        /// The database file.
        #[arg(long)]
        db: PathBuf,
        /// Concurrent writer tasks.
        #[arg(long, default_value_t = 8)]
        writers: usize,
        /// Distinct keys per writer.
        #[arg(long, default_value_t = 20)]
        keys: usize,
    },
}

pub async fn run(args: DebugArgs) -> anyhow::Result<()> {
    match args.command {
        DebugCommand::StoreLoad { db, writers, keys } => store_load(db, writers, keys).await,
    }
}

/// Every writer owns its keys, so it knows each key's revision and can mix
/// guarded updates and deletes with creates. A line is printed only after the
/// store acknowledged the write, so the parent knows exactly what must survive.
async fn store_load(db: PathBuf, writers: usize, keys: usize) -> anyhow::Result<()> {
    let opts = StoreOptions {
        compaction_interval: None,
        ..StoreOptions::default()
    };
    let store = SqliteStore::open(&db, opts).await?;
    let tag = std::process::id();
    println!("READY {}", store.current_revision().await?);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut revs: Vec<Option<i64>> = {
                let mut v = Vec::with_capacity(keys);
                for k in 0..keys {
                    let (kv, _) = store.get(format!("/load/{w}/{k}").as_bytes()).await?;
                    v.push(kv.map(|kv| kv.mod_revision));
                }
                v
            };
            let mut seq: u64 = 0;
            loop {
                seq += 1;
                let k = (seq as usize) % keys;
                let key = format!("/load/{w}/{k}");
                let (cond, op, what) = match revs[k] {
                    Some(r) if seq.is_multiple_of(5) => (
                        Precondition::ModRevision(r),
                        WriteOp::Delete {
                            key: key.clone().into_bytes(),
                        },
                        None,
                    ),
                    cur => {
                        let value = format!("{tag}-{w}-{seq}");
                        let cond = cur.map_or(Precondition::Absent, Precondition::ModRevision);
                        let op = WriteOp::Put {
                            key: key.clone().into_bytes(),
                            value: Bytes::from(value.clone()),
                            ttl: None,
                        };
                        (cond, op, Some(value))
                    }
                };
                match store.write(cond, op).await? {
                    WriteOutcome::Committed { revision, .. } => {
                        revs[k] = what.as_ref().map(|_| revision);
                        let line = match &what {
                            Some(v) => format!("ACK {revision} PUT {key} {v}\n"),
                            None => format!("ACK {revision} DEL {key} -\n"),
                        };
                        let mut out = std::io::stdout().lock();
                        out.write_all(line.as_bytes())?;
                        out.flush()?;
                    }
                    WriteOutcome::Failed { current } => {
                        anyhow::bail!(
                            "writer {w} owns {key} but its precondition failed: {current:?}"
                        );
                    }
                }
            }
            #[allow(unreachable_code)]
            Ok::<(), anyhow::Error>(())
        }));
    }
    let (r, _, _) = futures::future::select_all(tasks).await;
    r??;
    tokio::time::sleep(Duration::from_millis(1)).await;
    Ok(())
}
