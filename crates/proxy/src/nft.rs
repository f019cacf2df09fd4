//! The OS boundary: applying an nft script, which the kernel commits as
//! one transaction (all or nothing), so the table is never seen
//! half-written. Two real implementations: [`NftLib`] (libnftables with a
//! context kept open, what [`host`] gives when the library loads) and
//! [`NftCommand`] (`nft -f -` for every script, the fallback).

mod library;

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

pub use library::NftLib;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("running nft: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("nft rejected the ruleset: {0}")]
    Rejected(String),
    #[error("libnftables: {0}")]
    Library(String),
}

/// nft echoes the offending lines of a rejected script; the first few say
/// enough.
fn short_error(err: &str) -> String {
    let short: Vec<&str> = err.lines().take(12).collect();
    short.join("\n")
}

/// The applier for the host's network namespace, shared by the process:
/// libnftables when it loads, else the `nft` binary.
pub fn host() -> Arc<dyn Nft> {
    static HOST: OnceLock<Arc<dyn Nft>> = OnceLock::new();
    HOST.get_or_init(|| match NftLib::new(None) {
        Ok(lib) => Arc::new(lib),
        Err(e) => {
            tracing::warn!(error = %e, "applying nft scripts with the nft binary instead");
            Arc::new(NftCommand::default())
        }
    })
    .clone()
}

/// Applies nft scripts atomically.
pub trait Nft: Send + Sync {
    fn apply(&self, script: &str) -> Result<(), Error>;
}

/// The `nft` binary, optionally inside a network namespace (`ip netns exec`),
/// which the integration tests use.
#[derive(Clone, Debug, Default)]
pub struct NftCommand {
    pub netns: Option<String>,
}

impl Nft for NftCommand {
    fn apply(&self, script: &str) -> Result<(), Error> {
        let mut cmd = match &self.netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, "nft", "-f", "-"]);
                c
            }
            None => {
                let mut c = Command::new("nft");
                c.args(["-f", "-"]);
                c
            }
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let write = child
            .stdin
            .take()
            .expect("stdin is piped")
            .write_all(script.as_bytes());
        let out = child.wait_with_output()?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            return Err(Error::Rejected(short_error(&err)));
        }
        write?;
        Ok(())
    }
}

/// Delete a table (for shutdown and tests); a missing table is fine.
pub fn delete_table(nft: &dyn Nft, table: &str) -> Result<(), Error> {
    nft.apply(&format!("add table ip {table}\ndelete table ip {table}\n"))
}

/// A fake that records every script, for unit tests.
#[derive(Default)]
pub struct Recorder {
    pub scripts: Mutex<Vec<String>>,
    /// When set, every apply fails with this message.
    pub fail: Mutex<Option<String>>,
}

impl Nft for Recorder {
    fn apply(&self, script: &str) -> Result<(), Error> {
        if let Some(msg) = self.fail.lock().unwrap().clone() {
            return Err(Error::Rejected(msg));
        }
        self.scripts.lock().unwrap().push(script.to_string());
        Ok(())
    }
}
