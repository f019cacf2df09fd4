//! Helpers for tests that start real daemons.
//!
//! Every daemon gets its own data directory and free loopback ports, and is
//! stopped by the PID this process started, never by name.

pub mod etcd;
pub mod multihost;

pub use multihost::unmount_under;

use std::net::TcpListener;
use std::process::Child;

/// A free TCP port on 127.0.0.1. The port is released before returning, so a
/// daemon can bind it; the tiny race with other processes is acceptable in tests.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}

/// `len` bytes with no repeats a compressor could use (xorshift64 from
/// `seed`, which must not be 0), the same for the same arguments.
pub fn incompressible(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A child process that is killed (SIGKILL, by its PID) and reaped on drop.
pub struct ChildGuard {
    /// The process; `None` once it has been stopped.
    pub child: Option<Child>,
    /// A name for messages.
    pub name: String,
}

impl ChildGuard {
    /// Guard `child`.
    pub fn new(name: impl Into<String>, child: Child) -> Self {
        ChildGuard {
            child: Some(child),
            name: name.into(),
        }
    }

    /// The PID, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// SIGKILL the process and wait for it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}
