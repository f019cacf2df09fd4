"""The kubelet's bad-input and fault paths with real containerd, and the
scheduled-work acceptance test: each fault ends in upstream's status
reason and an event, never a stuck or crashing kubelet; pods leave nothing
behind; a Deployment spreads over the real node and hollow nodes."""

import json
import os
import re
import signal
import socket
import subprocess
import time
from datetime import datetime
from pathlib import Path

import pytest

from conftest import WHARF
from kubelet_node import IMAGE, bridge_name, ctr, http_get, kubelet_node, mirror_registry, terminate, wait_for

NODE = "e2e-faults"


@pytest.fixture(scope="module")
def node():
    with kubelet_node(NODE) as n:
        yield n


def _pod(k, name):
    return json.loads(k("get", "pod", name, "-o", "json"))


def _status(k, name):
    cs = _pod(k, name)["status"].get("containerStatuses") or [{}]
    return cs[0]


def _events(k, name):
    items = json.loads(k("get", "events", "--field-selector", f"involvedObject.name={name}",
                         "-o", "json"))["items"]
    return {e["reason"]: e["message"] for e in items}


def _event_list(k, name):
    """(type, reason, message) of every event about the object `name`."""
    items = json.loads(k("get", "events", "--field-selector", f"involvedObject.name={name}",
                         "-o", "json"))["items"]
    return [(e["type"], e["reason"], e["message"]) for e in items]


def _ready(k, name):
    node = json.loads(k("get", "node", name, "-o", "json"))
    return next(c for c in node["status"]["conditions"] if c["type"] == "Ready")


def _apply(k, name, container, **spec):
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                    {"name": "c", "image": IMAGE, "imagePullPolicy": "Never", **container}], **spec}}
    k("apply", "-f", "-", input=json.dumps(manifest))


def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_node_renews_its_lease_and_posts_status_only_on_change(node):
    """Upstream's kubelet renews its Lease every 10 s (the heartbeat), and
    computes the node status every 10 s (nodeStatusUpdateFrequency) but
    posts it only when it changed or every 5 min (nodeStatusReportFrequency):
    an unchanged Ready condition keeps its lastHeartbeatTime."""
    _, k, _ = node
    lease = lambda: json.loads(k("get", "lease", "-n", "kube-node-lease", NODE, "-o", "json"))["spec"]
    before, ready = lease(), _ready(k, NODE)
    assert before["holderIdentity"] == NODE and before["leaseDurationSeconds"] == 40, before
    after = wait_for("the lease to be renewed", lambda: (lambda l: l if l["renewTime"] != before["renewTime"]
                     else None)(lease()), timeout=12, every=0.5)
    # The next renewal, 10 s after the one seen first (not a burst of writes).
    t = lambda l: datetime.fromisoformat(l["renewTime"].replace("Z", "+00:00"))
    assert 9 <= (t(after) - t(before)).total_seconds() <= 12, (before, after)
    now = _ready(k, NODE)
    assert now["status"] == "True" and now["reason"] == "KubeletReady", now
    # The status was computed again with nothing changed: nothing posted.
    assert now["lastHeartbeatTime"] == ready["lastHeartbeatTime"], (ready, now)
    assert now["lastTransitionTime"] == ready["lastTransitionTime"], (ready, now)


def test_an_image_missing_from_a_reachable_registry_backs_off_with_upstream_events(node):
    _, k, _ = node
    image = f"127.0.0.1:{mirror_registry()}/library/busybox:no-such-tag"
    _apply(k, "notag", {"image": image, "imagePullPolicy": "IfNotPresent"})
    seen = {}

    def backoff():
        w = _status(k, "notag").get("state", {}).get("waiting") or {}
        seen.setdefault(w.get("reason"), w.get("message"))
        return w.get("reason") == "ImagePullBackOff" and w

    w = wait_for("ImagePullBackOff", backoff, timeout=60, every=0.2)
    # Upstream shows the CRI's error as Go's gRPC prints it, here
    # containerd's "manifest unknown" (its resolver says "not found").
    err = (f'rpc error: code = NotFound desc = failed to pull and unpack image "{image}": '
           f'failed to resolve reference "{image}": {image}: not found')
    assert seen.get("ErrImagePull") == err, seen
    assert w["message"] == f'Back-off pulling image "{image}": ErrImagePull: {err}', w
    ev = wait_for("the pull events", lambda: (lambda e: e if ("Warning", "Failed", "Error: ImagePullBackOff") in e
                  else None)(_event_list(k, "notag")), timeout=30)
    # `kubectl describe` as upstream's: the image manager's events and the
    # container start's `Error: <reason>`.
    for e in [("Normal", "Pulling", f'Pulling image "{image}"'),
              ("Warning", "Failed", f'Failed to pull image "{image}": {err}'),
              ("Warning", "Failed", "Error: ErrImagePull"),
              ("Normal", "BackOff", f'Back-off pulling image "{image}"')]:
        assert e in ev, (e, ev)
    assert _pod(k, "notag")["status"]["phase"] == "Pending"
    k("delete", "pod", "notag", "--grace-period=1")


def test_missing_secret_and_config_map_keys_are_config_errors_with_events(node):
    _, k, _ = node
    k("create", "secret", "generic", "keys", "--from-literal=pw=hunter2")
    k("create", "configmap", "keys", "--from-literal=size=3")
    ref = lambda kind, name, key, **o: {"name": "V", "valueFrom": {kind: {"name": name, "key": key, **o}}}
    sleep = {"command": ["sleep", "3600"]}
    _apply(k, "nosecretkey", {**sleep, "env": [ref("secretKeyRef", "keys", "nope")]})
    _apply(k, "nocmkey", {**sleep, "env": [ref("configMapKeyRef", "keys", "nope")]})
    # Optional references to an absent key or Secret leave the variable out.
    _apply(k, "optional", {"command": ["sh", "-c", 'echo "[${A-unset}][${B-unset}]"; exec sleep 3600'],
                           "env": [{**ref("secretKeyRef", "keys", "nope", optional=True), "name": "A"},
                                   {**ref("secretKeyRef", "absent", "pw", optional=True), "name": "B"}]})
    cases = {"nosecretkey": "couldn't find key nope in Secret default/keys",
             "nocmkey": "couldn't find key nope in ConfigMap default/keys"}
    for name, msg in cases.items():
        w = wait_for(f"{name} to wait", lambda: (lambda s: s.get("state", {}).get("waiting"))(_status(k, name)),
                     timeout=30)
        assert w == {"reason": "CreateContainerConfigError", "message": msg}, w
        ev = wait_for(f"{name}'s event", lambda: [e for e in _event_list(k, name) if e[1] == "Failed"], timeout=20)
        assert ev[0] == ("Warning", "Failed", f"Error: {msg}"), ev
        assert _pod(k, name)["status"]["phase"] == "Pending"
    wait_for("the optional pod to run", lambda: _pod(k, "optional")["status"].get("phase") == "Running", timeout=30)
    wait_for("its output", lambda: k("logs", "optional").strip() == "[unset][unset]", timeout=10)
    # Once the key exists, the kubelet's next attempt starts the container.
    k("patch", "secret", "keys", "-p", json.dumps({"stringData": {"nope": "now"}}))
    wait_for("nosecretkey to run", lambda: _pod(k, "nosecretkey")["status"].get("phase") == "Running", timeout=30)
    k("delete", "pod", "nosecretkey", "nocmkey", "optional", "--grace-period=1")
    k("delete", "secret", "keys")
    k("delete", "configmap", "keys")


def test_a_registry_that_is_down_backs_off_with_upstream_reasons(node):
    _, k, _ = node
    image = f"127.0.0.1:{_closed_port()}/nothing/here:1"
    _apply(k, "down", {"image": image, "imagePullPolicy": "IfNotPresent"})
    seen = set()

    def backoff():
        w = _status(k, "down").get("state", {}).get("waiting") or {}
        seen.add(w.get("reason"))
        return w.get("reason") == "ImagePullBackOff" and w

    w = wait_for("ImagePullBackOff", backoff, timeout=60, every=0.2)
    # Upstream's message wraps the pull's error (the CRI's gRPC error).
    assert w["message"].startswith(f'Back-off pulling image "{image}": ErrImagePull: rpc error: code = '), w
    assert "ErrImagePull" in seen, seen
    ev = wait_for("the pull events", lambda: (lambda e: e if {"Failed", "BackOff"} <= {r for _, r, _ in e}
                  else None)(_event_list(k, "down")), timeout=30)
    assert ("Normal", "BackOff", f'Back-off pulling image "{image}"') in ev, ev
    pulls = [m for t, r, m in ev if r == "Failed" and m.startswith(f'Failed to pull image "{image}": rpc error: ')]
    assert pulls and "connection refused" in pulls[0], ev
    assert _pod(k, "down")["status"]["phase"] == "Pending"
    k("delete", "pod", "down", "--grace-period=1")


def test_a_command_not_in_the_image_is_a_start_error_then_crash_loop_back_off(node):
    _, k, _ = node
    _apply(k, "nocmd", {"command": ["/no/such/binary"]})

    def crashing():
        s = _status(k, "nocmd")
        last = (s.get("lastState") or {}).get("terminated") or {}
        waiting = (s.get("state") or {}).get("waiting") or {}
        return last.get("reason") == "StartError" and waiting.get("reason") == "CrashLoopBackOff" and s

    s = wait_for("StartError, then CrashLoopBackOff", crashing, timeout=60)
    last = s["lastState"]["terminated"]
    assert last["exitCode"] == 128 and "/no/such/binary" in last["message"], last
    assert "back-off" in s["state"]["waiting"]["message"], s
    ev = _events(k, "nocmd")
    assert "Failed" in ev and "BackOff" in ev, ev
    k("delete", "pod", "nocmd", "--grace-period=1")


def test_a_container_that_exits_at_once_is_restarted_with_back_off(node):
    _, k, _ = node
    _apply(k, "quick", {"command": ["sh", "-c", "exit 7"]})
    s = wait_for("a restart with lastState", lambda: (lambda s: s if s.get("restartCount", 0) >= 1
                 and (s.get("lastState") or {}).get("terminated") else None)(_status(k, "quick")), timeout=60)
    t = s["lastState"]["terminated"]
    assert t["exitCode"] == 7 and t["reason"] == "Error", t
    k("delete", "pod", "quick", "--grace-period=1")


def test_a_hanging_probe_times_out_and_restarts_the_container(node):
    _, k, _ = node
    _apply(k, "hang", {"command": ["sleep", "3600"],
                       "livenessProbe": {"exec": {"command": ["sleep", "60"]}, "timeoutSeconds": 1,
                                         "periodSeconds": 2, "failureThreshold": 1,
                                         "initialDelaySeconds": 1}})
    s = wait_for("the liveness restart", lambda: (lambda s: s if s.get("restartCount", 0) >= 1 else None)(
        _status(k, "hang")), timeout=60)
    ev = _events(k, "hang")
    assert "Unhealthy" in ev and ev["Unhealthy"].startswith("Liveness probe"), ev
    # The kubelet is still serving other pods.
    _apply(k, "after", {"command": ["sleep", "3600"]})
    wait_for("a pod after the hang", lambda: _pod(k, "after")["status"].get("phase") == "Running", timeout=60)
    k("delete", "pod", "hang", "after", "--grace-period=1")


def _host_state(d):
    """What pods leave on the host: veths on the node's bridge, host-local
    allocations, mounts under the data directory, pod and log directories."""
    br = bridge_name(d)
    veths = subprocess.run(["ip", "-o", "link", "show", "master", br], capture_output=True,
                           text=True).stdout.count("\n")
    ipam = Path(d) / "agent" / "cni" / "ipam"
    ips = sum(1 for p in ipam.rglob("*") if p.is_file() and re.fullmatch(r"[0-9.]+", p.name)) \
        if ipam.exists() else 0
    mounts = sum(1 for l in Path("/proc/self/mounts").read_text().splitlines()
                 if l.split()[1].startswith(d + "/"))
    pods = len(list((Path(d) / "agent" / "pods").glob("*"))) if (Path(d) / "agent" / "pods").exists() else 0
    logs = len(list((Path(d) / "agent" / "pod-logs").glob("*"))) \
        if (Path(d) / "agent" / "pod-logs").exists() else 0
    return {"veths": veths, "ips": ips, "mounts": mounts, "pod dirs": pods, "log dirs": logs}


def _cgroups_of(ids):
    base = Path("/sys/fs/cgroup/memory")
    return [p for p in base.rglob("*") if p.is_dir() and p.name in ids] if base.exists() else []


def test_pod_create_delete_cycles_leave_nothing_behind(node):
    """A short version of the 1,000-cycle leak check (`wharf bench kubelet
    --cycles N` runs the long one): veths, IPs, mounts, pod and log
    directories and cgroups are counted before and after."""
    _, k, d = node
    k("delete", "pods", "--all", "--grace-period=1", "--wait=true", timeout=120)
    wait_for("no leftover sandboxes", lambda: ctr(d, "containers", "ls", "-q").stdout.strip() == "", timeout=60)
    before = _host_state(d)
    ids = set()
    for round_ in range(3):
        for i in range(5):
            _apply(k, f"cycle-{i}", {"command": ["sleep", "3600"]},
                   volumes=[{"name": "scratch", "emptyDir": {"medium": "Memory"}}])
        wait_for("the round's pods to run", lambda: all(
            _pod(k, f"cycle-{i}")["status"].get("phase") == "Running" for i in range(5)), timeout=90)
        ids |= set(ctr(d, "containers", "ls", "-q").stdout.split())
        k("delete", "pods", *[f"cycle-{i}" for i in range(5)], "--grace-period=1", "--wait=true", timeout=120)
    wait_for("the runtime to be empty", lambda: ctr(d, "containers", "ls", "-q").stdout.strip() == "", timeout=60)
    after = wait_for("the host state to return", lambda: (lambda s: s if s == before else None)(_host_state(d)),
                     timeout=30)
    assert after == before
    assert len(ids) >= 30, ids  # 15 sandboxes and 15 containers were seen
    assert _cgroups_of(ids) == []


def test_a_deployment_runs_on_the_real_node_alongside_hollow_nodes(node):
    s, k, d = node
    log = open(Path(d) / "hollow.log", "w")
    hollow = subprocess.Popen([WHARF, "hollow-nodes", "--count", "2", "--prefix", "e2e-hollow",
                               "--kubeconfig", str(s.kubeconfig)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for("the hollow nodes", lambda: k.run("get", "nodes", "-o", "name", check=False).stdout.count(
            "e2e-hollow") == 2, timeout=60)
        # Spread evenly by host name, so the real node gets its share.
        k("apply", "-f", "-", input=json.dumps({
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "mixed"},
            "spec": {"replicas": 6, "selector": {"matchLabels": {"app": "mixed"}}, "template": {
                "metadata": {"labels": {"app": "mixed"}},
                "spec": {"terminationGracePeriodSeconds": 1,
                         "topologySpreadConstraints": [{
                             "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                             "whenUnsatisfiable": "DoNotSchedule",
                             "labelSelector": {"matchLabels": {"app": "mixed"}}}],
                         "containers": [{"name": "c", "image": IMAGE, "imagePullPolicy": "Never",
                                         "command": ["sleep", "3600"]}]}}}}))

        def placed():
            pods = json.loads(k("get", "pods", "-l", "app=mixed", "-o", "json"))["items"]
            running = [p for p in pods if p["status"].get("phase") == "Running"
                       and p["metadata"].get("deletionTimestamp") is None]
            return len(running) == 6 and running

        pods = wait_for("six running replicas", placed, timeout=120)
        per_node = {}
        for p in pods:
            per_node[p["spec"]["nodeName"]] = per_node.get(p["spec"]["nodeName"], 0) + 1
        assert per_node == {NODE: 2, "e2e-hollow-0": 2, "e2e-hollow-1": 2}, per_node
        real = [p for p in pods if p["spec"]["nodeName"] == NODE]
        listed = ctr(d, "containers", "ls", "-q").stdout
        for p in real:
            cid = p["status"]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
            assert cid in listed, (cid, listed)
        k("delete", "deployment", "mixed")
        # While the hollow nodes still run to confirm their pods' deletion
        # (else the pods wait on nodes that are gone).
        wait_for("the replicas to go", lambda: k("get", "pods", "-l", "app=mixed", "-o", "name").strip() == "",
                 timeout=60)
    finally:
        terminate(hollow, 15)
        k.run("delete", "nodes", "e2e-hollow-0", "e2e-hollow-1", check=False)



def test_killed_containerd_is_restarted_and_its_pods_recovered(node):
    """SIGKILL of wharf's own containerd: the containers run on under their
    shims, wharf starts a new containerd, and the kubelet picks its pods up
    again: same containers, same restart counts, still serving; a
    container that exits afterwards is restarted by its policy; the node is
    Ready and new pods run."""
    _, k, d = node
    manifest = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "survivor"},
                "spec": {"terminationGracePeriodSeconds": 1, "containers": [
                    {"name": "web", "image": IMAGE, "imagePullPolicy": "Never",
                     "command": ["httpd", "-f", "-p", "8080", "-h", "/www"]},
                    {"name": "waiter", "image": IMAGE, "imagePullPolicy": "Never",
                     "command": ["sh", "-c", "while [ ! -f /tmp/die ]; do sleep 0.2; done; exit 3"]}]}}
    k("apply", "-f", "-", input=json.dumps(manifest))
    p = wait_for("survivor to be ready", lambda: (lambda p: p if all(
        c.get("ready") for c in p["status"].get("containerStatuses", [{}])) else None)(_pod(k, "survivor")),
        timeout=60)
    before = {c["name"]: c for c in p["status"]["containerStatuses"]}
    ip = p["status"]["podIP"]
    pid_file = Path(d) / "agent" / "containerd" / "containerd.pid"
    old = int(pid_file.read_text())
    os.kill(old, signal.SIGKILL)
    killed = time.time()
    # The containers do not depend on containerd.
    assert "hello from a wharf pod" in (http_get(f"http://{ip}:8080/") or "")
    new = wait_for("a new containerd", lambda: (lambda p: p if p and p != old else None)(
        int(pid_file.read_text() or 0)), timeout=30, every=0.2)
    assert Path(f"/proc/{new}").exists()
    wait_for("the runtime to answer", lambda: ctr(d, "version").returncode == 0, timeout=30, every=0.2)
    wait_for("the node to be Ready", lambda: _ready(k, NODE)["status"] == "True", timeout=30)
    time.sleep(2)  # relists against the new containerd
    after = _pod(k, "survivor")["status"]
    assert after["phase"] == "Running" and after["podIP"] == ip, after
    for c in after["containerStatuses"]:
        b = before[c["name"]]
        assert c["containerID"] == b["containerID"], (b, c)
        assert c["restartCount"] == b["restartCount"] == 0, (b, c)
        assert c["state"]["running"]["startedAt"] == b["state"]["running"]["startedAt"], (b, c)
        assert c["ready"], c
    assert "hello from a wharf pod" in (http_get(f"http://{ip}:8080/") or "")
    # The new containerd runs exec, sees the exit and restarts the container.
    k("exec", "survivor", "-c", "waiter", "--", "touch", "/tmp/die")
    w = wait_for("waiter to be restarted", lambda: next(
        (c for c in _pod(k, "survivor")["status"]["containerStatuses"]
         if c["name"] == "waiter" and c["restartCount"] == 1 and "running" in c["state"]), None), timeout=30)
    assert w["lastState"]["terminated"]["exitCode"] == 3, w
    assert w["lastState"]["terminated"]["containerID"] == before["waiter"]["containerID"], w
    web = next(c for c in _pod(k, "survivor")["status"]["containerStatuses"] if c["name"] == "web")
    assert web["containerID"] == before["web"]["containerID"] and web["restartCount"] == 0, web
    # Nothing was stopped or recreated: no Killing, no new sandbox.
    reasons = [r for _, r, _ in _event_list(k, "survivor")]
    assert "Killing" not in reasons and "SandboxChanged" not in reasons, reasons
    _apply(k, "newborn", {"command": ["sleep", "3600"]})
    wait_for("a new pod to run", lambda: _pod(k, "newborn")["status"].get("phase") == "Running", timeout=60)
    assert time.time() - killed < 90
    k("delete", "pod", "survivor", "newborn", "--grace-period=1")
