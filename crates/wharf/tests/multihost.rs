//! One `wharf server` and two workers, each in its own network namespace
//! (test_support::multihost), with real containerd: nodes register, pods
//! spread, a node cut off loses its pods to the other and cleans up when it
//! returns, a SIGKILLed kubelet leaves its containers running and re-adopts
//! them, pods on different nodes reach each other over the pod network, a
//! Service answers from every node (ClusterIP, DNS name, NodePort,
//! LoadBalancer, headless), and no request fails while a Service's
//! Deployment scales and rolls across the nodes.
//!
//! Run with `cargo test -p wharf --test multihost` (as root; each test
//! builds and removes its own cluster, one cluster at a time).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use test_support::multihost::{Cluster, Options};

const IMAGE: &str = "localhost/mh-busybox:1";

/// Clusters run one at a time: three hosts with their containerds each are
/// a full load for a 2-core machine, and the node-loss timings need it.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    // A failed test poisons the lock; the next one still runs.
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}
const INDEX_HTML: &str = "hello from a multihost pod\n";

/// Node lifecycle timings short enough for a test. The kubelet renews its
/// Lease every 10 s, so the grace period must stay well above that, or a
/// slow renewal on a busy machine makes the healthy worker NotReady too.
const FAST_LIFECYCLE: &[&str] = &[
    "--node-monitor-period",
    "500ms",
    "--node-monitor-grace-period",
    "20s",
    "--node-eviction-rate",
    "100",
];

/// The busybox image (from Debian's busybox-static) as a docker-archive.
fn image_archive(dir: &std::path::Path) -> PathBuf {
    use kubelet::images::{docker_archive, Tar, BUSYBOX};
    let mut layer = Tar::default();
    for d in [
        "bin/", "etc/", "www/", "proc/", "sys/", "dev/", "root/", "data/",
    ] {
        layer.dir(d, 0o755);
    }
    layer.dir("tmp/", 0o1777);
    layer.file("bin/busybox", 0o755, &std::fs::read(BUSYBOX).unwrap());
    for a in [
        "sh", "sleep", "httpd", "wget", "echo", "cat", "hostname", "touch", "test", "[", "timeout",
        "mv",
    ] {
        layer.symlink(&format!("bin/{a}"), "busybox");
    }
    layer.file("etc/passwd", 0o644, b"root:x:0:0:root:/root:/bin/sh\n");
    layer.file("etc/group", 0o644, b"root:x:0:\n");
    layer.file("www/index.html", 0o644, INDEX_HTML.as_bytes());
    let (repo, tag) = IMAGE.rsplit_once(':').unwrap();
    let a = docker_archive(repo, &layer.finish(), &[], &["/bin/sh"], Some(tag));
    let path = dir.join("mh-busybox.tar");
    std::fs::write(&path, a.tar).unwrap();
    path
}

fn cluster(server_args: &[&str]) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Options::new(env!("CARGO_BIN_EXE_wharf"), 2);
    opts.server_args = server_args.iter().map(|s| s.to_string()).collect();
    opts.images = vec![image_archive(dir.path())];
    Cluster::start_with(opts).expect("the cluster starts")
}

/// Poll `f` every 500 ms until it returns `Some`, or panic after `timeout`
/// with the last value and the logs of every host.
fn wait_for<T>(
    c: &Cluster,
    what: &str,
    timeout: Duration,
    mut f: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => {
                let logs: Vec<String> = (0..3).map(|i| c.log_tail(i, 12)).collect();
                panic!(
                    "timed out after {timeout:?} waiting for {what}; last: {last}\n{}",
                    logs.join("\n")
                );
            }
            Err(_) => std::thread::sleep(Duration::from_millis(500)),
        }
    }
}

fn apply(c: &Cluster, obj: &Value) {
    c.kubectl_in(&["apply", "-f", "-"], Some(&obj.to_string()))
        .unwrap();
}

fn web_deployment(replicas: u32, toleration_seconds: Option<u32>) -> Value {
    let tolerations: Vec<Value> = toleration_seconds
        .map(|s| {
            ["node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready"]
                .iter()
                .map(|k| json!({"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": s}))
                .collect()
        })
        .unwrap_or_default();
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "tolerations": tolerations,
                    "topologySpreadConstraints": [{
                        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "DoNotSchedule",
                        // A cut-off node (tainted unreachable) does not count,
                        // so its pods can all come back on the other.
                        "nodeTaintsPolicy": "Honor",
                        "labelSelector": {"matchLabels": {"app": "web"}},
                    }],
                    "containers": [{
                        "name": "web", "image": IMAGE, "imagePullPolicy": "Never",
                        "command": ["httpd", "-f", "-p", "8080", "-h", "/www"],
                    }],
                },
            },
        },
    })
}

fn pod_on(name: &str, node: &str, command: &[&str]) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {
            "nodeName": node,
            "terminationGracePeriodSeconds": 1,
            "volumes": [{"name": "data", "emptyDir": {}}],
            "containers": [{
                "name": "c", "image": IMAGE, "imagePullPolicy": "Never",
                "command": command,
                "volumeMounts": [{"name": "data", "mountPath": "/data"}],
            }],
        },
    })
}

fn pods(c: &Cluster, selector: &str) -> Vec<Value> {
    c.kubectl_json(&["get", "pods", "-l", selector])
        .map(|v| v["items"].as_array().cloned().unwrap_or_default())
        .unwrap_or_default()
}

fn name(p: &Value) -> String {
    p["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn node_of(p: &Value) -> String {
    p["spec"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn running(p: &Value) -> bool {
    p["status"]["phase"] == "Running" && p["metadata"]["deletionTimestamp"].is_null()
}

fn ready_status(node: &Value) -> String {
    node["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .and_then(|c| c["status"].as_str())
        .unwrap_or("none")
        .to_string()
}

fn ipv4_in(ip: &str, cidr: &str) -> bool {
    let (net, len) = cidr.split_once('/').unwrap();
    let len: u32 = len.parse().unwrap();
    let a = u32::from(ip.parse::<std::net::Ipv4Addr>().unwrap());
    let n = u32::from(net.parse::<std::net::Ipv4Addr>().unwrap());
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    a & mask == n & mask
}

/// The running web pods, once there are `n` of them, not terminating, all
/// Running and the Deployment reports them available.
fn web_settled(c: &Cluster, n: usize) -> Result<Vec<Value>, String> {
    let ps: Vec<Value> = pods(c, "app=web")
        .into_iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .collect();
    let d = c
        .kubectl_json(&["get", "deployment", "web"])
        .map_err(|e| e.to_string())?;
    if ps.len() == n && ps.iter().all(running) && d["status"]["availableReplicas"] == n {
        Ok(ps)
    } else {
        Err(format!(
            "{:?}",
            ps.iter()
                .map(|p| (name(p), node_of(p), p["status"]["phase"].clone()))
                .collect::<Vec<_>>()
        ))
    }
}

#[test]
fn workers_register_ready_and_a_deployment_spreads_over_them() {
    let _one = one_at_a_time();
    let c = cluster(&[]);
    let nodes = c.kubectl_json(&["get", "nodes"]).unwrap();
    let items = nodes["items"].as_array().unwrap();
    let mut names: Vec<&str> = items
        .iter()
        .map(|n| n["metadata"]["name"].as_str().unwrap())
        .collect();
    names.sort();
    // The server runs no kubelet: only the workers are nodes.
    assert_eq!(names, ["worker-1", "worker-2"]);
    let mut cidrs = Vec::new();
    for n in items {
        let nm = n["metadata"]["name"].as_str().unwrap();
        assert_eq!(ready_status(n), "True", "{nm}");
        let host = c.host(c.host_of(nm).unwrap());
        let internal = n["status"]["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["type"] == "InternalIP")
            .unwrap()["address"]
            .clone();
        assert_eq!(
            internal,
            host.ip.to_string(),
            "{nm} reports its host's address"
        );
        cidrs.push(n["spec"]["podCIDR"].as_str().unwrap().to_string());
    }
    assert_ne!(cidrs[0], cidrs[1], "distinct podCIDRs");

    apply(&c, &web_deployment(4, None));
    let ps = wait_for(&c, "4 web pods available", Duration::from_secs(60), || {
        web_settled(&c, 4)
    });
    for w in ["worker-1", "worker-2"] {
        let on: Vec<&Value> = ps.iter().filter(|p| node_of(p) == w).collect();
        assert_eq!(on.len(), 2, "maxSkew 1 puts two on {w}");
        let node = c.kubectl_json(&["get", "node", w]).unwrap();
        let cidr = node["spec"]["podCIDR"].as_str().unwrap();
        for p in on {
            let ip = p["status"]["podIP"].as_str().unwrap();
            assert!(ipv4_in(ip, cidr), "{ip} of {} in {w}'s {cidr}", name(p));
            // The API server reaches each worker's kubelet across the bridge.
            let out = c
                .kubectl(&["exec", &name(p), "--", "cat", "/www/index.html"])
                .unwrap();
            assert_eq!(out, INDEX_HTML);
        }
    }
}

#[test]
fn the_server_host_can_be_a_node_too() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Options::new(env!("CARGO_BIN_EXE_wharf"), 1);
    opts.server_is_node = true;
    opts.images = vec![image_archive(dir.path())];
    let c = Cluster::start_with(opts).expect("the cluster starts");
    let mut ready = c.ready_nodes().unwrap();
    ready.sort();
    assert_eq!(ready, ["server", "worker-1"]);
    // The server's own kubelet runs pods from the imported image.
    apply(&c, &pod_on("on-server", "server", &["sleep", "3600"]));
    wait_for(
        &c,
        "a pod running on the server",
        Duration::from_secs(60),
        || {
            let p = c
                .kubectl_json(&["get", "pod", "on-server"])
                .map_err(|e| e.to_string())?;
            if running(&p) {
                Ok(())
            } else {
                Err(format!("{}", p["status"]))
            }
        },
    );
}

#[test]
fn a_cut_off_worker_loses_its_pods_to_the_other_and_cleans_up_when_back() {
    let _one = one_at_a_time();
    let mut c = cluster(FAST_LIFECYCLE);
    apply(&c, &web_deployment(4, Some(1)));
    let ps = wait_for(&c, "4 web pods available", Duration::from_secs(60), || {
        web_settled(&c, 4)
    });
    let victims: Vec<(String, String)> = ps
        .iter()
        .filter(|p| node_of(p) == "worker-1")
        .map(|p| (name(p), p["metadata"]["uid"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(victims.len(), 2, "spread over both workers");
    let ready_since = |c: &Cluster, n: &str| -> Value {
        let node = c.kubectl_json(&["get", "node", n]).unwrap();
        node["status"]["conditions"]
            .as_array()
            .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
            .map(|c| c["lastTransitionTime"].clone())
            .unwrap_or_default()
    };
    // Service traffic through the surviving worker's NodePort, before the
    // cut and after its pods came back there.
    apply(
        &c,
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                "spec": {"type": "NodePort", "selector": {"app": "web"},
                         "ports": [{"port": 80, "targetPort": 8080}]}}),
    );
    let node_port = c
        .kubectl(&[
            "get",
            "service",
            "web",
            "-o",
            "jsonpath={.spec.ports[0].nodePort}",
        ])
        .unwrap();
    let via_w2 = format!("{}:{node_port}", c.host(c.host_of("worker-2").unwrap()).ip);
    let body = wait_for(
        &c,
        "the Service via worker-2",
        Duration::from_secs(30),
        || http_get(&via_w2, Duration::from_secs(3)),
    );
    assert_eq!(body, INDEX_HTML);
    let w2_ready_since = ready_since(&c, "worker-2");
    let cut_at = Instant::now();
    c.cut(1).unwrap();

    wait_for(&c, "worker-1 NotReady", Duration::from_secs(50), || {
        let n = c
            .kubectl_json(&["get", "node", "worker-1"])
            .map_err(|e| e.to_string())?;
        match ready_status(&n).as_str() {
            "Unknown" => Ok(()),
            s => Err(s.to_string()),
        }
    });
    let not_ready_after = cut_at.elapsed();
    let ps = wait_for(
        &c,
        "4 web pods available on worker-2",
        Duration::from_secs(60),
        || {
            let ps = web_settled(&c, 4)?;
            if ps.iter().all(|p| node_of(p) == "worker-2") {
                Ok(ps)
            } else {
                Err("some still on worker-1".into())
            }
        },
    );
    let names: Vec<String> = ps.iter().map(name).collect();
    for (v, _) in &victims {
        assert!(!names.contains(v), "{v} was replaced");
    }
    // With worker-1 still cut off, the Service answers every request: its
    // endpoints are the replacements on worker-2 (the rules follow within a
    // few seconds of their readiness).
    wait_for(
        &c,
        "the Service to drop worker-1's endpoints",
        Duration::from_secs(30),
        || {
            for i in 0..20 {
                match http_get(&via_w2, Duration::from_secs(2)) {
                    Ok(b) if b == INDEX_HTML => {}
                    other => return Err(format!("request {i}: {other:?}")),
                }
            }
            Ok(())
        },
    );
    // worker-2 stays Ready throughout.
    let w2 = c.kubectl_json(&["get", "node", "worker-2"]).unwrap();
    assert_eq!(ready_status(&w2), "True");

    c.restore(1).unwrap();
    wait_for(
        &c,
        "worker-1 Ready without taints",
        Duration::from_secs(40),
        || {
            let n = c
                .kubectl_json(&["get", "node", "worker-1"])
                .map_err(|e| e.to_string())?;
            let taints = n["spec"]["taints"].as_array().map_or(0, Vec::len);
            if ready_status(&n) == "True" && taints == 0 {
                Ok(())
            } else {
                Err(format!("{} {:?}", ready_status(&n), n["spec"]["taints"]))
            }
        },
    );
    // Its stale pods: finished by its kubelet and gone from the API...
    wait_for(&c, "the stale pods gone", Duration::from_secs(40), || {
        let left: Vec<String> = pods(&c, "app=web")
            .iter()
            .map(name)
            .filter(|n| victims.iter().any(|(v, _)| v == n))
            .collect();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}"))
        }
    });
    // ...and from its containerd: no container of theirs is left.
    wait_for(
        &c,
        "worker-1's containers removed",
        Duration::from_secs(30),
        || {
            let out = c.ctr(1, &["containers", "ls"]).map_err(|e| e.to_string())?;
            let rows = out.lines().skip(1).filter(|l| !l.trim().is_empty()).count();
            if rows == 0 {
                Ok(())
            } else {
                Err(out)
            }
        },
    );
    // The replacements are undisturbed.
    let after = web_settled(&c, 4).unwrap();
    let mut a: Vec<String> = after.iter().map(name).collect();
    let mut b = names.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b);
    // worker-2 never left Ready.
    let w2 = c.kubectl_json(&["get", "node", "worker-2"]).unwrap();
    assert_eq!(ready_status(&w2), "True");
    assert_eq!(ready_since(&c, "worker-2"), w2_ready_since);
    eprintln!("worker-1 went NotReady {not_ready_after:?} after the cut");
}

/// The task PID of a container ID in worker `i`'s containerd.
fn task_pid(c: &Cluster, i: usize, id: &str) -> Option<u32> {
    let out = c.ctr(i, &["tasks", "ls"]).ok()?;
    out.lines().find_map(|l| {
        let w: Vec<&str> = l.split_whitespace().collect();
        (w.first() == Some(&id) && w.get(2) == Some(&"RUNNING"))
            .then(|| w.get(1)?.parse().ok())
            .flatten()
    })
}

#[test]
fn a_killed_worker_leaves_its_containers_running_and_readopts_them() {
    let _one = one_at_a_time();
    let mut c = cluster(&[]);
    // Exits once (restartCount 1), then sleeps: a count to keep.
    let script = "if [ -e /data/ran ]; then exec sleep 3600; fi; touch /data/ran; exit 1";
    apply(&c, &pod_on("keeper", "worker-1", &["sh", "-c", script]));
    let status = |c: &Cluster| -> Result<(String, i64), String> {
        let p = c
            .kubectl_json(&["get", "pod", "keeper"])
            .map_err(|e| e.to_string())?;
        let cs = &p["status"]["containerStatuses"][0];
        if p["status"]["phase"] == "Running"
            && cs["state"]["running"].is_object()
            && cs["ready"] == true
        {
            Ok((
                cs["containerID"].as_str().unwrap_or_default().to_string(),
                cs["restartCount"].as_i64().unwrap_or(-1),
            ))
        } else {
            Err(format!("{}", p["status"]))
        }
    };
    let (id, restarts) = wait_for(
        &c,
        "keeper running after one restart",
        Duration::from_secs(60),
        || {
            status(&c).and_then(|s| {
                if s.1 >= 1 {
                    Ok(s)
                } else {
                    Err(format!("{s:?}"))
                }
            })
        },
    );
    assert_eq!(restarts, 1);
    let cid = id
        .strip_prefix("containerd://")
        .expect("a containerd ID")
        .to_string();
    let pid = task_pid(&c, 1, &cid).expect("the container's task runs");
    let containers_before = c.ctr(1, &["containers", "ls", "-q"]).unwrap();

    // The worker's own processes (the kubelet, or the agent), not what
    // they started: containerd and the shims stay, as after a crash.
    let worker_pids: Vec<u32> = c.host_mut(1).pids().iter().map(|p| p.1).collect();
    assert!(!worker_pids.is_empty());
    c.kill_worker(1);
    assert!(c.host_mut(1).pids().is_empty());
    for p in worker_pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{p}")).exists(),
            "{p} is gone"
        );
    }
    std::thread::sleep(Duration::from_secs(2));
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).expect("the container still runs");
    assert!(
        String::from_utf8_lossy(&cmd).contains("sleep"),
        "{}",
        String::from_utf8_lossy(&cmd)
    );

    c.start_worker(1).unwrap();
    // The new kubelet serves the pod (exec goes through its new containerd).
    let out = wait_for(&c, "exec into keeper", Duration::from_secs(60), || {
        c.kubectl(&["exec", "keeper", "--", "cat", "/proc/1/cmdline"])
            .map_err(|e| e.to_string())
    });
    assert!(out.contains("sleep"), "{out}");
    // Give it a few sync rounds to (wrongly) restart anything.
    std::thread::sleep(Duration::from_secs(6));
    let (id2, restarts2) = status(&c).unwrap();
    assert_eq!(id2, id, "the same container");
    assert_eq!(restarts2, 1, "the same restart count");
    assert_eq!(task_pid(&c, 1, &cid), Some(pid), "the same process");
    assert_eq!(
        c.ctr(1, &["containers", "ls", "-q"]).unwrap(),
        containers_before,
        "no container created or removed"
    );
    c.check_running(1).unwrap();
}

/// Needs the cross-node pod network (crate `network`): until it runs in
/// the workers, a pod IP of another node is not routed and this fails.
#[test]
fn pods_on_different_nodes_reach_each_other() {
    let _one = one_at_a_time();
    let c = cluster(&[]);
    let httpd = ["httpd", "-f", "-p", "8080", "-h", "/www"];
    apply(&c, &pod_on("a", "worker-1", &httpd));
    apply(&c, &pod_on("b", "worker-2", &httpd));
    let ip = |n: &str| -> Result<String, String> {
        let p = c
            .kubectl_json(&["get", "pod", n])
            .map_err(|e| e.to_string())?;
        match p["status"]["podIP"].as_str() {
            Some(ip) if p["status"]["phase"] == "Running" => Ok(ip.to_string()),
            _ => Err(format!("{}", p["status"])),
        }
    };
    let a = wait_for(&c, "pod a running", Duration::from_secs(60), || ip("a"));
    let b = wait_for(&c, "pod b running", Duration::from_secs(60), || ip("b"));
    for (from, to) in [("b", &a), ("a", &b)] {
        let url = format!("http://{to}:8080/");
        let out = wait_for(
            &c,
            &format!("{from} to reach {url}"),
            Duration::from_secs(20),
            || {
                // Each try is bounded: a SYN to an unrouted IP would
                // otherwise wait out TCP's retries.
                c.kubectl(&["exec", from, "--", "timeout", "3", "wget", "-qO-", &url])
                    .map_err(|e| e.to_string())
            },
        );
        assert_eq!(out, INDEX_HTML);
    }
}

/// A plain HTTP GET from the test process (the root namespace reaches every
/// host through the test bridge), bounded by `timeout`.
fn http_get(addr: &str, timeout: Duration) -> Result<String, String> {
    use std::io::{Read, Write};
    let sock: std::net::SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let mut s = std::net::TcpStream::connect_timeout(&sock, timeout).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    write!(s, "GET / HTTP/1.0\r\nHost: {addr}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut out = String::new();
    s.read_to_string(&mut out).map_err(|e| e.to_string())?;
    out.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .ok_or_else(|| format!("no HTTP response: {out:?}"))
}

/// Issue 7's acceptance over real agents (the server is a node too, for the
/// cluster DNS): a Service answers by ClusterIP and by DNS name from a pod
/// on either worker, its NodePort answers on every node's address,
/// ServiceLB puts every node's address in a LoadBalancer's status, and a
/// headless Service's name resolves to every ready pod's IP.
#[test]
fn services_answer_from_every_node_by_cluster_ip_dns_and_node_port() {
    let _one = one_at_a_time();
    let dir = tempfile::tempdir().unwrap();
    let mut opts = Options::new(env!("CARGO_BIN_EXE_wharf"), 2);
    opts.server_is_node = true;
    opts.images = vec![image_archive(dir.path())];
    let c = Cluster::start_with(opts).expect("the cluster starts");
    let httpd = ["httpd", "-f", "-p", "8080", "-h", "/www"];
    for (name, node) in [("web-1", "worker-1"), ("web-2", "worker-2")] {
        let mut p = pod_on(name, node, &httpd);
        p["metadata"]["labels"] = json!({"app": "web"});
        p["spec"]["containers"][0]["readinessProbe"] =
            json!({"httpGet": {"port": 8080}, "periodSeconds": 1});
        apply(&c, &p);
    }
    for (name, node) in [("client-1", "worker-1"), ("client-2", "worker-2")] {
        apply(&c, &pod_on(name, node, &["sleep", "3600"]));
    }
    for svc in [
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
               "spec": {"type": "NodePort", "selector": {"app": "web"},
                        "ports": [{"port": 80, "targetPort": 8080}]}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web-headless"},
               "spec": {"clusterIP": "None", "selector": {"app": "web"},
                        "ports": [{"port": 8080}]}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "lb"},
               "spec": {"type": "LoadBalancer", "selector": {"app": "web"},
                        "ports": [{"port": 8088, "targetPort": 8080}]}}),
    ] {
        apply(&c, &svc);
    }
    let ready_ips = || -> Result<Vec<String>, String> {
        let ps = pods(&c, "app=web");
        let ips: Vec<String> = ps
            .iter()
            .filter(|p| {
                p["status"]["conditions"].as_array().is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
            .filter_map(|p| p["status"]["podIP"].as_str().map(String::from))
            .collect();
        if ips.len() == 2 {
            Ok(ips)
        } else {
            Err(format!("{} ready web pods", ips.len()))
        }
    };
    let web_ips = wait_for(
        &c,
        "both web pods ready",
        Duration::from_secs(90),
        ready_ips,
    );
    for client in ["client-1", "client-2"] {
        wait_for(
            &c,
            &format!("{client} running"),
            Duration::from_secs(60),
            || {
                let p = c
                    .kubectl_json(&["get", "pod", client])
                    .map_err(|e| e.to_string())?;
                running(&p)
                    .then_some(())
                    .ok_or_else(|| format!("{}", p["status"]))
            },
        );
    }
    let svc = c.kubectl_json(&["get", "service", "web"]).unwrap();
    let cluster_ip = svc["spec"]["clusterIP"].as_str().unwrap().to_string();
    let node_port = svc["spec"]["ports"][0]["nodePort"].as_u64().unwrap();

    // From a pod on either worker: by ClusterIP and by DNS name (the
    // server's DNS behind kube-dns's ClusterIP, across the overlay).
    for client in ["client-1", "client-2"] {
        for url in [
            format!("http://{cluster_ip}/"),
            "http://web.default.svc.cluster.local/".to_string(),
        ] {
            let out = wait_for(
                &c,
                &format!("{client} to get {url}"),
                Duration::from_secs(30),
                || {
                    c.kubectl(&["exec", client, "--", "timeout", "5", "wget", "-qO-", &url])
                        .map_err(|e| e.to_string())
                },
            );
            assert_eq!(out, INDEX_HTML, "{client} {url}");
        }
    }

    // The NodePort on every node's address, from outside the cluster.
    for i in 0..3 {
        let addr = format!("{}:{node_port}", c.host(i).ip);
        let out = wait_for(
            &c,
            &format!("NodePort {addr}"),
            Duration::from_secs(30),
            || http_get(&addr, Duration::from_secs(3)),
        );
        assert_eq!(out, INDEX_HTML, "{addr}");
    }

    // ServiceLB: every node's address is an ingress point, and answers.
    let want: std::collections::BTreeSet<String> =
        (0..3).map(|i| c.host(i).ip.to_string()).collect();
    let got = wait_for(
        &c,
        "the LoadBalancer's ingress",
        Duration::from_secs(30),
        || {
            let lb = c
                .kubectl_json(&["get", "service", "lb"])
                .map_err(|e| e.to_string())?;
            let got: std::collections::BTreeSet<String> = lb["status"]["loadBalancer"]["ingress"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|i| i["ip"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            if got == want {
                Ok(got)
            } else {
                Err(format!("{got:?}"))
            }
        },
    );
    let first = got.iter().next().unwrap();
    let out = wait_for(
        &c,
        "the LoadBalancer to answer",
        Duration::from_secs(30),
        || http_get(&format!("{first}:8088"), Duration::from_secs(3)),
    );
    assert_eq!(out, INDEX_HTML);

    // The headless Service's name gives every ready pod IP.
    let answer = wait_for(
        &c,
        "the headless name to resolve to both pods",
        Duration::from_secs(30),
        || {
            let out = c
                .kubectl(&[
                    "exec",
                    "client-2",
                    "--",
                    "/bin/busybox",
                    "nslookup",
                    "web-headless.default.svc.cluster.local",
                ])
                .map_err(|e| e.to_string())?;
            if web_ips.iter().all(|ip| out.contains(ip.as_str())) {
                Ok(out)
            } else {
                Err(out)
            }
        },
    );
    assert!(
        !answer.contains(&cluster_ip),
        "a headless name has no VIP: {answer}"
    );

    // The per-node path: every node runs a DNS server, whose kube-dns
    // endpoint is hinted for its own node (`trafficDistribution:
    // PreferSameNode`), so each node's proxy sends its pods' queries for
    // 10.43.0.10 to its own node's server only.
    let dns = c
        .kubectl_json(&["get", "service", "kube-dns", "-n", "kube-system"])
        .unwrap();
    assert_eq!(dns["spec"]["trafficDistribution"], "PreferSameNode");
    let all_ips: Vec<String> = (0..3).map(|i| c.host(i).ip.to_string()).collect();
    for i in 0..3 {
        let host = c.host(i);
        let node = host.node_name.clone().expect("every host is a node");
        let ip = host.ip.to_string();
        wait_for(
            &c,
            &format!("{node}'s proxy to send kube-dns to its own DNS server"),
            Duration::from_secs(30),
            || {
                let out = c
                    .exec_in(i, "nft", &["-j", "list", "ruleset"])
                    .map_err(|e| e.to_string())?;
                let v: serde_json::Value =
                    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
                let elems = v["nftables"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|o| o["map"]["name"] == "eps-kube-system/kube-dns/udp/53")
                    .map(|o| o["map"]["elem"].to_string())
                    .ok_or("no kube-dns map")?;
                let others = all_ips.iter().filter(|o| **o != ip);
                if elems.contains(&format!("\"{ip}\""))
                    && others.clone().all(|o| !elems.contains(&format!("\"{o}\"")))
                {
                    Ok(())
                } else {
                    Err(elems)
                }
            },
        );
    }
    let slices = c
        .kubectl_json(&[
            "get",
            "endpointslices",
            "-n",
            "kube-system",
            "-l",
            "kubernetes.io/service-name=kube-dns",
        ])
        .unwrap();
    let mut hinted: Vec<(String, String)> = slices["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["endpoints"].as_array().cloned().unwrap_or_default())
        .map(|e| {
            (
                e["nodeName"].as_str().unwrap_or("").to_string(),
                e["hints"]["forNodes"][0]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    hinted.sort();
    let mut want: Vec<(String, String)> = (0..3)
        .map(|i| {
            let n = c.host(i).node_name.clone().unwrap();
            (n.clone(), n)
        })
        .collect();
    want.sort();
    assert_eq!(
        hinted, want,
        "one kube-dns endpoint per node, hinted for it"
    );
}

/// Issue 7: a client on one worker requests a Service's ClusterIP ten times
/// a second while its Deployment scales from 1 to 10 across both workers,
/// rolls out a new template (readiness-gated, maxUnavailable 0, a preStop
/// pause so a terminating pod serves until the rules drop it), and scales
/// back to 1. Not one request may fail.
#[test]
fn no_request_fails_while_a_service_scales_and_rolls_across_nodes() {
    let _one = one_at_a_time();
    let c = cluster(&[]);
    let mut d = web_deployment(1, None);
    let spec = &mut d["spec"];
    spec["strategy"] = json!({"type": "RollingUpdate",
                              "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 2}});
    spec["template"]["spec"]["terminationGracePeriodSeconds"] = json!(10);
    spec["template"]["spec"]["containers"][0]["readinessProbe"] =
        json!({"httpGet": {"port": 8080}, "periodSeconds": 1});
    spec["template"]["spec"]["containers"][0]["lifecycle"] =
        json!({"preStop": {"exec": {"command": ["sleep", "3"]}}});
    apply(&c, &d);
    apply(
        &c,
        &json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
    );
    let vip = c
        .kubectl(&["get", "service", "web", "-o", "jsonpath={.spec.clusterIP}"])
        .unwrap();
    // (`timeout`, not wget's own -T: Debian 12's busybox 1.35 wget
    // segfaults with -T. The count is renamed into place, so that a reader
    // never sees the file truncated and not yet written.)
    let script = format!(
        "ok=0; bad=0; while [ ! -e /data/stop ]; do \
         if timeout 3 wget -qO- http://{vip}/ >/dev/null 2>&1; then ok=$((ok+1)); else bad=$((bad+1)); fi; \
         echo \"$ok $bad\" > /data/count.new; mv /data/count.new /data/count; sleep 0.1; done; \
         echo done >> /data/count; sleep 3600"
    );
    apply(&c, &pod_on("client", "worker-1", &["sh", "-c", &script]));
    let count = || -> Result<(u64, u64), String> {
        let out = c
            .kubectl(&["exec", "client", "--", "cat", "/data/count"])
            .map_err(|e| e.to_string())?;
        let mut it = out.split_whitespace().map(|n| n.parse::<u64>());
        match (it.next(), it.next()) {
            (Some(Ok(ok)), Some(Ok(bad))) => Ok((ok, bad)),
            _ => Err(format!("count file: {out:?}")),
        }
    };
    // The loop starts once the first pod answers (the count says so).
    wait_for(
        &c,
        "the client's first success",
        Duration::from_secs(90),
        || {
            count().and_then(|(ok, _)| {
                if ok > 0 {
                    return Ok(());
                }
                // Why not: one request by hand, and where the pods are.
                let url = format!("http://{vip}/");
                let by_hand =
                    c.kubectl(&["exec", "client", "--", "timeout", "3", "wget", "-O-", &url]);
                let web: Vec<_> = pods(&c, "app=web")
                    .iter()
                    .map(|p| {
                        (
                            node_of(p),
                            p["status"]["phase"].clone(),
                            p["status"]["podIP"].clone(),
                        )
                    })
                    .collect();
                Err(format!(
                    "no success yet; by hand: {by_hand:?}; web pods: {web:?}"
                ))
            })
        },
    );
    let (_, bad_at_start) = count().unwrap();
    let wait_rollout = |replicas: u64, what: &str| {
        wait_for(&c, what, Duration::from_secs(120), || {
            let d = c
                .kubectl_json(&["get", "deployment", "web"])
                .map_err(|e| e.to_string())?;
            let st = &d["status"];
            let n = |k: &str| st[k].as_u64().unwrap_or(0);
            if st["observedGeneration"] == d["metadata"]["generation"]
                && n("updatedReplicas") == replicas
                && n("availableReplicas") == replicas
                && n("replicas") == replicas
            {
                Ok(())
            } else {
                Err(format!("{st}"))
            }
        })
    };
    c.kubectl(&["scale", "deployment", "web", "--replicas", "10"])
        .unwrap();
    wait_rollout(10, "10 available replicas");
    let nodes: std::collections::BTreeSet<String> =
        pods(&c, "app=web").iter().map(node_of).collect();
    assert_eq!(
        nodes.len(),
        2,
        "the replicas spread over both workers: {nodes:?}"
    );
    c.kubectl(&["set", "env", "deployment/web", "ROLL=2"])
        .unwrap();
    wait_rollout(10, "the rolling update");
    c.kubectl(&["scale", "deployment", "web", "--replicas", "1"])
        .unwrap();
    wait_rollout(1, "1 replica");
    // Let the scale-down's terminations finish under the client's eyes.
    std::thread::sleep(Duration::from_secs(5));
    c.kubectl(&["exec", "client", "--", "touch", "/data/stop"])
        .unwrap();
    wait_for(
        &c,
        "the client loop to stop",
        Duration::from_secs(10),
        || {
            c.kubectl(&["exec", "client", "--", "cat", "/data/count"])
                .map_err(|e| e.to_string())
                .and_then(|out| {
                    if out.contains("done") {
                        Ok(())
                    } else {
                        Err(out)
                    }
                })
        },
    );
    let (ok, bad) = count().unwrap();
    eprintln!(
        "the client: {ok} requests answered, {bad} failed ({bad_at_start} before the first answer)"
    );
    assert!(ok > 50, "the client made only {ok} requests");
    assert_eq!(
        bad - bad_at_start,
        0,
        "{bad} of {} requests failed",
        ok + bad
    );
}
