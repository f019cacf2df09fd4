//! `wharf server` as a user runs it: with the embedded store, with etcd, and
//! refusing a damaged database.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use test_support::etcd::EtcdCluster;
use test_support::ChildGuard;

fn start_server(data_dir: &Path, extra: &[&str]) -> (ChildGuard, String) {
    let port = test_support::free_port().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .arg("server")
        .arg("--data-dir")
        .arg(data_dir)
        .args([
            "--https-listen-port",
            &port,
            "--bind-address",
            "127.0.0.1",
            "--advertise-address",
            "127.0.0.1",
            "--disable-agent",
        ])
        .args(extra)
        .env("WHARF_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn wharf server");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("server printed its readiness");
    (ChildGuard::new("wharf server", child), line)
}

fn terminate(mut guard: ChildGuard) {
    let mut child = guard.child.take().unwrap();
    let ok = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(ok.success());
    let status = child.wait().unwrap();
    assert!(
        status.success(),
        "wharf server exits cleanly on SIGTERM: {status}"
    );
}

#[test]
fn server_with_embedded_store_starts_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let (guard, line) = start_server(dir.path(), &[]);
    assert!(line.contains("API server at https://127.0.0.1:"), "{line}");
    assert!(dir.path().join("db").join("state.db").exists());
    terminate(guard);
    // A second start reopens the same file.
    let (guard, line) = start_server(dir.path(), &[]);
    assert!(line.contains("API server at https://127.0.0.1:"), "{line}");
    terminate(guard);
}

#[test]
fn server_with_etcd_datastore() {
    let etcd = EtcdCluster::start(1).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ep = etcd.endpoints()[0].replace("http://", "etcd://");
    let (guard, line) = start_server(dir.path(), &["--datastore-endpoint", &ep]);
    assert!(
        line.contains("API server at") && line.contains("Etcd"),
        "{line}"
    );
    terminate(guard);
}

#[test]
fn server_refuses_a_damaged_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db").join("state.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    std::fs::write(&db, b"this is not a database, and it must not be emptied").unwrap();
    let port = test_support::free_port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_wharf"))
        .arg("server")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--https-listen-port", &port, "--bind-address", "127.0.0.1"])
        .arg("--disable-agent")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&db.display().to_string()) && err.contains("corrupt"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        b"this is not a database, and it must not be emptied"
    );
}
