//! The OS boundary: applying an nft script. The real implementation pipes it
//! to `nft -f -`, which the kernel commits as one transaction (all or
//! nothing), so the table is never seen half-written.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("running nft: {0}")]
    Spawn(#[from] std::io::Error),
    #[error("nft rejected the ruleset: {0}")]
    Rejected(String),
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
            // nft echoes the offending lines; the first few say enough.
            let short: Vec<&str> = err.lines().take(12).collect();
            return Err(Error::Rejected(short.join("\n")));
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
