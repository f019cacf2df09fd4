//! kill -9 in the middle of concurrent writes loses no acknowledged write.
//!
//! A child `wharf debug store-load` writes from eight tasks and prints a line per
//! acknowledged write. We SIGKILL it at a random moment, at least 20 times. After
//! each kill we open the same file and check: every acknowledged write is in the
//! history with its value; the revision never went backwards; and a watch started
//! from before the crash sees every change since exactly once, in order.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use store::{EventKind, SqliteStore, Store, StoreOptions, WatchRequest, WatchResponse};
use test_support::ChildGuard;

const CYCLES: usize = 24;

#[derive(Debug, Clone, PartialEq)]
enum Ack {
    Put(String, String),
    Del(String),
}

fn parse(line: &str) -> Option<(i64, Ack)> {
    let mut it = line.split(' ');
    if it.next()? != "ACK" {
        return None;
    }
    let rev: i64 = it.next()?.parse().ok()?;
    let kind = it.next()?;
    let key = it.next()?.to_string();
    let value = it.next()?.to_string();
    match kind {
        "PUT" => Some((rev, Ack::Put(key, value))),
        "DEL" => Some((rev, Ack::Del(key))),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_nine_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let mut verified_upto = 0i64; // every revision <= this was checked
    let mut highest_seen = 0i64;
    let mut total_acks = 0usize;
    let seed = std::process::id() as u64;
    for cycle in 0..CYCLES {
        let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
            .args(["debug", "store-load", "--writers", "8", "--db"])
            .arg(&db)
            .env("WHARF_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn wharf debug store-load");
        let stdout = child.stdout.take().unwrap();
        let mut guard = ChildGuard::new("store-load", child);
        let (tx, rx) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        // Wait for the child to start, then let it write for 50–450 ms.
        let ready = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("child READY");
        assert!(ready.starts_with("READY"), "{ready}");
        let start_rev: i64 = ready[6..].parse().unwrap();
        assert!(
            start_rev >= highest_seen,
            "cycle {cycle}: revision went back from {highest_seen} to {start_rev}"
        );
        let jitter = seed.wrapping_add(cycle as u64).wrapping_mul(2654435761) % 400;
        let run_for = Duration::from_millis(50 + jitter);
        let deadline = Instant::now() + run_for;
        let mut acks: Vec<(i64, Ack)> = Vec::new();
        while Instant::now() < deadline {
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(5)) {
                acks.extend(parse(&l));
            }
        }
        guard.kill();
        reader.join().unwrap();
        // Lines fully printed before the kill are acknowledged writes too; a torn
        // last line does not parse.
        acks.extend(rx.try_iter().filter_map(|l| parse(&l)));
        assert!(
            !acks.is_empty(),
            "cycle {cycle}: the child acknowledged nothing in {run_for:?}"
        );
        total_acks += acks.len();

        let opts = StoreOptions {
            compaction_interval: None,
            ..Default::default()
        };
        let store = SqliteStore::open(&db, opts)
            .await
            .unwrap_or_else(|e| panic!("cycle {cycle}: reopen after kill -9: {e}"));
        let cur = store.current_revision().await.unwrap();
        let max_ack = acks.iter().map(|(r, _)| *r).max().unwrap();
        assert!(
            cur >= max_ack,
            "cycle {cycle}: revision {cur} is behind acknowledged {max_ack}"
        );
        assert!(cur >= highest_seen, "cycle {cycle}: revision went back");
        highest_seen = cur;

        // A watch resumed from before this crash sees every revision once, in order.
        let mut w = store
            .watch(WatchRequest::prefix("/load/", verified_upto + 1))
            .await
            .unwrap();
        let mut seen: HashMap<i64, Ack> = HashMap::new();
        let mut next = verified_upto + 1;
        while next <= cur {
            let resp = tokio::time::timeout(Duration::from_secs(30), w.next())
                .await
                .expect("watch replay in time")
                .expect("watch still open")
                .expect("watch item");
            let WatchResponse::Events(evs) = resp else {
                continue;
            };
            for e in evs {
                assert_eq!(
                    e.kv.mod_revision, next,
                    "cycle {cycle}: each revision once, in order"
                );
                let ack = match e.kind {
                    EventKind::Put => Ack::Put(
                        e.kv.key_str(),
                        String::from_utf8(e.kv.value.to_vec()).unwrap(),
                    ),
                    EventKind::Delete => Ack::Del(e.kv.key_str()),
                };
                seen.insert(next, ack);
                next += 1;
            }
        }
        for (rev, ack) in &acks {
            assert_eq!(
                seen.get(rev),
                Some(ack),
                "cycle {cycle}: acknowledged write at revision {rev} lost"
            );
        }
        drop(w);
        store.close().await;
        verified_upto = cur;
    }
    assert!(
        total_acks > CYCLES * 10,
        "too little load to mean anything: {total_acks} acks"
    );
    eprintln!("{CYCLES} kills, {total_acks} acknowledged writes, final revision {highest_seen}: none lost");
}
