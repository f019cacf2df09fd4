//! The kubelet's runtime pieces against REAL containerd (Debian's): wharf's
//! containerd config and supervision, the locally built pause image, the
//! CNI bridge, and a pod sandbox with a busybox httpd reachable at its IP.
//! containerd runs in a temporary data directory and is stopped by PID;
//! the test's bridge has its own name and is deleted at the end.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use kubelet::containerd::{Containerd, Layout};
use kubelet::cri::grpc::GrpcRuntime;
use kubelet::cri::{api, labels, Runtime};
use kubelet::images::{self, Tar};

/// Deletes the test's bridge device (by its unique name) when dropped.
struct Bridge(String);

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.0])
            .status();
    }
}

fn busybox_image(dir: &Path) -> (std::path::PathBuf, String) {
    let mut layer = Tar::default();
    for d in ["bin/", "etc/", "www/", "tmp/", "proc/", "sys/", "dev/"] {
        layer.dir(d, 0o755);
    }
    layer.file(
        "bin/busybox",
        0o755,
        &std::fs::read(images::BUSYBOX).unwrap(),
    );
    for a in ["sh", "httpd", "sleep", "echo"] {
        layer.symlink(&format!("bin/{a}"), "busybox");
    }
    layer.file("www/index.html", 0o644, b"hello from a CRI pod\n");
    let a = images::docker_archive(
        "localhost/kubelet-test-busybox",
        &layer.finish(),
        &[],
        &["/bin/sh"],
        Some("1"),
    );
    let path = dir.join("busybox.tar");
    std::fs::write(&path, &a.tar).unwrap();
    (path, "localhost/kubelet-test-busybox:1".into())
}

fn http_get(ip: &str, port: u16) -> std::io::Result<String> {
    let mut s = std::net::TcpStream::connect_timeout(
        &format!("{ip}:{port}").parse().unwrap(),
        Duration::from_secs(2),
    )?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out)
}

fn sandbox_config(uid: &str, log_dir: &Path) -> api::PodSandboxConfig {
    let mut lbl = std::collections::HashMap::new();
    lbl.insert(labels::POD_UID.to_string(), uid.to_string());
    lbl.insert(labels::POD_NAME.to_string(), "web".to_string());
    lbl.insert(labels::POD_NAMESPACE.to_string(), "default".to_string());
    lbl.insert(labels::MANAGED_BY.to_string(), "true".to_string());
    api::PodSandboxConfig {
        metadata: Some(api::PodSandboxMetadata {
            name: "web".into(),
            uid: uid.into(),
            namespace: "default".into(),
            attempt: 0,
        }),
        hostname: "web".into(),
        log_directory: log_dir.display().to_string(),
        labels: lbl,
        linux: Some(api::LinuxPodSandboxConfig::default()),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pod_sandbox_with_httpd_on_real_containerd() {
    let dir = tempfile::Builder::new()
        .prefix("wharf-kubelet-it-")
        .tempdir()
        .unwrap();
    let layout = Layout::new(dir.path());
    let pause = images::pause_archive(Path::new(images::BUSYBOX)).unwrap();
    let pause_name = images::pause_image_name(&pause);
    let containerd = Containerd::start(layout.clone(), &pause_name)
        .await
        .unwrap();
    let bridge = Bridge(kubelet::cni::bridge_name(dir.path()));
    let rt: Arc<dyn Runtime> = Arc::new(GrpcRuntime::connect(&containerd.endpoint()).unwrap());
    // The checks run in their own task so that a failed assertion still
    // reaches the cleanup below.
    let result = {
        let (rt, layout, data) = (rt.clone(), layout.clone(), dir.path().to_path_buf());
        tokio::spawn(async move { run(rt, &layout, &pause_name, &data).await }).await
    };
    // Whatever happened, leave no sandbox behind before stopping containerd.
    for s in rt.list_pod_sandbox().await.unwrap_or_default() {
        let _ = rt.stop_pod_sandbox(&s.id).await;
        let _ = rt.remove_pod_sandbox(&s.id).await;
    }
    containerd.stop().await;
    drop(bridge);
    match result {
        Ok(r) => r.unwrap(),
        Err(e) => std::panic::resume_unwind(e.into_panic()),
    }
}

async fn run(
    rt: Arc<dyn Runtime>,
    layout: &Layout,
    pause: &str,
    data: &Path,
) -> Result<(), String> {
    let v = rt.version().await.map_err(|e| e.to_string())?;
    assert_eq!(v.runtime_name, "containerd");
    // The pause image: imported once, found the second time.
    let name = images::ensure_pause(rt.as_ref(), &layout.socket(), &layout.dir.join("images"))
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(name, pause);
    assert!(rt.image_status(pause).await.unwrap().is_some());
    assert_eq!(
        images::ensure_pause(rt.as_ref(), &layout.socket(), &layout.dir)
            .await
            .unwrap(),
        pause
    );
    // A pod network with a /24 of its own.
    // 10.250-254: apart from the e2e tests' 10.200-249 ranges.
    let octet = 250 + (std::process::id() % 5);
    let cidr = format!("10.{octet}.7.0/24");
    kubelet::cni::write(
        &layout.cni_conf_dir,
        &kubelet::cni::bridge_name(data),
        &cidr,
        &layout.cni_ipam_dir,
        kubelet::cni::Options::default(),
    )
    .unwrap();
    let mut network_ready = false;
    for _ in 0..50 {
        let conds = rt.status().await.unwrap();
        if conds.iter().all(|c| c.status) && conds.len() >= 2 {
            network_ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(network_ready, "containerd never reported NetworkReady");
    let (archive, image) = busybox_image(data);
    images::import(&layout.socket(), &archive)
        .await
        .map_err(|e| e.to_string())?;
    assert!(rt.image_status(&image).await.unwrap().is_some());
    assert!(rt
        .image_status("localhost/absent:1")
        .await
        .unwrap()
        .is_none());

    let logs = data.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    let sc = sandbox_config("uid-1", &logs);
    // A RuntimeClass handler this containerd lacks fails in containerd,
    // with the message upstream's FailedCreatePodSandBox events carry.
    let e = rt
        .run_pod_sandbox(sandbox_config("uid-0", &logs), "nosuch")
        .await
        .expect_err("an unknown runtime handler");
    assert!(
        e.message
            .contains("no runtime for \"nosuch\" is configured"),
        "{e}"
    );
    // The handler `runc` names the runtime wharf always configures.
    let sandbox = rt
        .run_pod_sandbox(sc.clone(), "runc")
        .await
        .map_err(|e| e.to_string())?;
    let st = rt.pod_sandbox_status(&sandbox).await.unwrap();
    let ip = st.network.unwrap().ip;
    assert!(
        ip.starts_with(&format!("10.{octet}.7.")),
        "pod IP {ip} outside {cidr}"
    );
    let mut clbl = std::collections::HashMap::new();
    clbl.insert(labels::CONTAINER_NAME.to_string(), "web".to_string());
    let cc = api::ContainerConfig {
        metadata: Some(api::ContainerMetadata {
            name: "web".into(),
            attempt: 0,
        }),
        image: Some(api::ImageSpec {
            image: image.clone(),
            ..Default::default()
        }),
        args: vec![
            "httpd".into(),
            "-f".into(),
            "-p".into(),
            "8080".into(),
            "-h".into(),
            "/www".into(),
        ],
        labels: clbl,
        log_path: "web/0.log".into(),
        linux: Some(api::LinuxContainerConfig::default()),
        ..Default::default()
    };
    let id = rt
        .create_container(&sandbox, cc, sc.clone())
        .await
        .map_err(|e| e.to_string())?;
    rt.start_container(&id).await.map_err(|e| e.to_string())?;
    let cs = rt.container_status(&id).await.unwrap();
    assert_eq!(cs.state, api::ContainerState::ContainerRunning as i32);
    assert!(!cs.image_ref.is_empty());
    // The pod's IP answers from the host.
    let mut body = Err(std::io::Error::other("not tried"));
    for _ in 0..50 {
        body = http_get(&ip, 8080);
        if body.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let body = body.map_err(|e| format!("GET http://{ip}:8080/: {e}"))?;
    assert!(body.contains("hello from a CRI pod"), "{body}");
    // containerd's task events tell of the exit as it happens (the pod
    // loop relists on them: containerd 1.6 has no CRI container events).
    let mut exits = rt.exits().await.map_err(|e| e.to_string())?;
    // The subscription is made in the background: give it a moment.
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Stop with a timeout: SIGTERM (httpd exits, 143), else SIGKILL (137).
    let t = std::time::Instant::now();
    rt.stop_container(&id, 1).await.map_err(|e| e.to_string())?;
    assert!(t.elapsed() < Duration::from_secs(10));
    let ev = tokio::time::timeout(Duration::from_secs(2), futures::StreamExt::next(&mut exits))
        .await
        .map_err(|_| "no task event within 2 s of the exit".to_string())?;
    let ev = ev
        .ok_or("the event stream ended")?
        .map_err(|e| e.to_string())?;
    assert_eq!(
        (
            ev.topic.as_str(),
            ev.container_id.as_str(),
            ev.container_exited
        ),
        ("/tasks/exit", id.as_str(), true)
    );
    let cs = rt.container_status(&id).await.unwrap();
    assert_eq!(cs.state, api::ContainerState::ContainerExited as i32);
    assert!(
        [137, 143].contains(&cs.exit_code),
        "exit code {}",
        cs.exit_code
    );
    rt.stop_pod_sandbox(&sandbox)
        .await
        .map_err(|e| e.to_string())?;
    rt.remove_pod_sandbox(&sandbox)
        .await
        .map_err(|e| e.to_string())?;
    assert!(
        rt.list_pod_sandbox().await.unwrap().is_empty(),
        "a sandbox was left"
    );
    assert!(
        rt.list_containers().await.unwrap().is_empty(),
        "a container was left"
    );
    assert!(
        http_get(&ip, 8080).is_err(),
        "the pod's address still answers"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_is_restarted_when_it_dies() {
    let dir = tempfile::Builder::new()
        .prefix("wharf-kubelet-it-")
        .tempdir()
        .unwrap();
    let layout = Layout::new(dir.path());
    let containerd = Containerd::start(layout.clone(), "localhost/none:1")
        .await
        .unwrap();
    let first = containerd.pid();
    // A client connected before the crash reconnects to the new containerd.
    let rt = GrpcRuntime::connect(&containerd.endpoint()).unwrap();
    rt.version().await.unwrap();
    // SAFETY: the PID of the containerd this test started.
    unsafe { libc::kill(first, libc::SIGKILL) };
    let mut back = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if containerd.pid() != first && rt.version().await.is_ok() {
            back = true;
            break;
        }
    }
    let second = containerd.pid();
    containerd.stop().await;
    assert!(back, "containerd was not restarted");
    assert!(
        !Path::new(&format!("/proc/{second}")).exists()
            || std::fs::read_to_string(format!("/proc/{second}/stat"))
                .unwrap_or_default()
                .contains(") Z")
    );
}
