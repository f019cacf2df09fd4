"""What the session-15 re-audit of issue #6 found still untested on real
containerd: lifecycle hooks of every handler (httpGet, sleep, exec) and
their failures as upstream reports them; the probes' remaining timing
fields (initialDelaySeconds, a probe's own terminationGracePeriodSeconds, a
startup probe that never passes); the pod's conditions while an init
container runs; upgraded exec connections when the backend dies mid-stream
(CVE-2018-1002105's "every failure path", with the real kubelet and
containerd); the transports kubectl 1.37 settles on for attach and
port-forward, with curl through the latter.

Pods of one test run side by side to keep the wall time short; every test
deletes its pods, the module's node is removed at the end (kubelet_node)."""

import http.server
import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from conftest import KUBECTL, free_port
from kubelet_node import ctr, kubelet_node, wait_for
from kubelet_node import apply_pod as apply, busybox_sh as ctr_spec, pod_json as pod

NODE = "e2e-gaps"


@pytest.fixture(scope="module")
def node():
    with kubelet_node(NODE) as n:
        yield n


def status_of(k, name, container):
    cs = pod(k, name)["status"].get("containerStatuses") or []
    return next((c for c in cs if c["name"] == container), {})


def events(k, name):
    """(type, reason, message, fieldPath) of every event about pod `name`."""
    evs = json.loads(k("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json"))["items"]
    return [(e["type"], e["reason"], e["message"], e["involvedObject"].get("fieldPath")) for e in evs]


def event(k, name, reason, timeout=30, **want):
    """Wait for an event of `reason` (and the `want`ed type/message/fieldPath)."""
    seen = []
    keys = ("type", "reason", "message", "fieldPath")

    def match():
        seen[:] = events(k, name)
        return next((dict(zip(keys, e)) for e in seen if e[1] == reason
                     and all(dict(zip(keys, e))[f] == v for f, v in want.items())), None)
    try:
        return wait_for(f"a {reason} event of {name} with {want}", match, timeout=timeout)
    except AssertionError as e:
        raise AssertionError(f"{e}; events: {seen}") from None


def delete(k, *names):
    k("delete", "pod", *names, "--grace-period=1", "--wait=false")


def uptime():
    """The host's /proc/uptime, which containers share (no time namespace)."""
    return float(Path("/proc/uptime").read_text().split()[0])


def _secs(ts):
    from datetime import datetime, timezone
    return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


class HookServer:
    """An HTTP server on the host's loopback for httpGet hooks (the kubelet
    runs them from the host): records each request's path and User-Agent,
    answers 500 to /poststart (upstream's hook fails only when no answer
    comes, whatever the status), and on /prestop writes `out`/prestop-seen
    before it answers."""

    def __init__(self, out):
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, self.headers.get("User-Agent", "")))
                if self.path == "/prestop":
                    (out / "prestop-seen").write_text("x")
                self.send_response(500 if self.path == "/poststart" else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


# A PID-1 shell that exits on SIGTERM after running `on_term`.
def polite(on_term=""):
    return f"trap '{on_term} exit 0' TERM; while true; do sleep 0.2; done"


def test_lifecycle_hooks_of_every_handler_and_their_failures(node):
    _, k, d = node
    out = Path(d) / "hooks-out"
    out.mkdir()
    closed = free_port()
    with HookServer(out) as srv:
        at_out = [{"name": "out", "mountPath": "/out"}]
        host_out = [{"name": "out", "hostPath": {"path": str(out)}}]
        get = lambda path, port=srv.port: {"httpGet": {"host": "127.0.0.1", "port": port, "path": path}}
        # httpGet hooks: postStart (answered 500, which is no failure) and a
        # preStop that must be done before SIGTERM; a sleep preStop.
        apply(k, "hooked", [
            ctr_spec("web", polite("[ -f /out/prestop-seen ] && echo after > /out/web-term || echo before > /out/web-term;"),
                     lifecycle={"postStart": get("/poststart"), "preStop": get("/prestop")}, volumeMounts=at_out),
            ctr_spec("sleeper", polite("cat /proc/uptime > /out/sleeper-term;"),
                     lifecycle={"preStop": {"sleep": {"seconds": 2}}}, volumeMounts=at_out)],
            volumes=host_out, grace=20)
        # A failing exec postStart: the container is killed (its preStop
        # first, as upstream's killContainer) and restarted; the event does
        # not carry the hook's output (it may hold secrets).
        apply(k, "badstart", [ctr_spec("c", "exec sleep 3600", lifecycle={
            "postStart": {"exec": {"command": ["sh", "-c", "echo hook-output-secret; exit 1"]}},
            "preStop": {"exec": {"command": ["sh", "-c", "echo pre >> /out/badstart-prestop"]}}},
            volumeMounts=at_out)], volumes=host_out)
        # Failing preStop hooks: exec exits 3, httpGet finds no listener.
        apply(k, "badstop", [
            ctr_spec("c", polite(), lifecycle={"preStop": {"exec": {"command": ["sh", "-c", "echo nope >&2; exit 3"]}}}),
            ctr_spec("h", polite(), lifecycle={"preStop": get("/gone", closed)})], grace=10)

        for name in ("hooked", "badstop"):
            wait_for(f"{name} to be ready", lambda: (lambda cs: cs and all(c.get("ready") for c in cs))(
                pod(k, name)["status"].get("containerStatuses")), timeout=60)
        web = status_of(k, "hooked", "web")
        assert web["restartCount"] == 0, web
        assert [p for p, _ in srv.requests] == ["/poststart"], srv.requests
        assert srv.requests[0][1].startswith("kube-lifecycle/"), srv.requests
        assert not [e for e in events(k, "hooked") if e[1] == "FailedPostStartHook"], events(k, "hooked")

        badstart = wait_for("badstart to be restarted", lambda: (lambda c: c if c.get("restartCount", 0) >= 1
                            and c.get("lastState", {}).get("terminated") else None)(status_of(k, "badstart", "c")),
                            timeout=60)
        event(k, "badstart", "FailedPostStartHook", type="Warning", message="PostStartHook failed",
              fieldPath="spec.containers{c}")
        event(k, "badstart", "Killing", type="Normal", message="FailedPostStartHook", fieldPath="spec.containers{c}")
        assert not [e for e in events(k, "badstart") if "hook-output-secret" in e[2]], events(k, "badstart")
        assert badstart["lastState"]["terminated"]["exitCode"] in (137, 143), badstart
        assert (out / "badstart-prestop").read_text().startswith("pre\n")

        uid = pod(k, "badstop")["metadata"]["uid"]
        t0 = uptime()
        k("delete", "pod", "hooked", "--wait=false")
        k("delete", "pod", "badstop", "--wait=false")
        # The shell creates each file before it writes to it: wait for the line.
        written = lambda name: (out / name).exists() and (out / name).read_text().endswith("\n")
        wait_for("hooked's containers to stop", lambda: written("web-term") and written("sleeper-term"), timeout=30)
        assert [p for p, _ in srv.requests] == ["/poststart", "/prestop"], srv.requests
        assert srv.requests[1][1].startswith("kube-lifecycle/"), srv.requests
        assert (out / "web-term").read_text().strip() == "after"
        # SIGTERM came after the 2 s sleep, not at once (nor after the 20 s).
        slept = float((out / "sleeper-term").read_text().split()[0]) - t0
        assert 1.9 <= slept < 15, slept
        who = f"badstop_default({uid})"
        event(k, "badstop", "FailedPreStopHook", type="Warning", fieldPath="spec.containers{c}", message=(
            f'Exec lifecycle hook ([sh -c echo nope >&2; exit 3]) for Container "c" in Pod "{who}" failed - error: '
            "command 'sh -c echo nope >&2; exit 3' exited with 3: nope\n, message: \"nope\\n\""))
        event(k, "badstop", "FailedPreStopHook", type="Warning", fieldPath="spec.containers{h}", message=(
            f'HTTP lifecycle hook (/gone) for Container "h" in Pod "{who}" failed - error: '
            f'Get "http://127.0.0.1:{closed}/gone": dial tcp 127.0.0.1:{closed}: connect: connection refused'))
        delete(k, "badstart")
        for name in ("hooked", "badstop"):
            wait_for(f"{name} to be gone", lambda: k.run("get", "pod", name, check=False).returncode != 0, timeout=30)


def test_probe_timing_fields(node):
    _, k, _ = node
    every = {"periodSeconds": 1, "failureThreshold": 1}
    # initialDelaySeconds: the first readiness probe (which passes) 5 s in.
    apply(k, "delayed", [ctr_spec("c", "exec sleep 3600", readinessProbe={
        "exec": {"command": ["true"]}, "initialDelaySeconds": 5, **every})])
    # The liveness probe's own grace period (2 s), not the pod's (60 s),
    # for the kill after it fails: SIGTERM (noted), then SIGKILL.
    apply(k, "probegrace", [ctr_spec("c", "trap 'echo got TERM' TERM; while true; do sleep 0.2; done", livenessProbe={
        "exec": {"command": ["false"]}, "initialDelaySeconds": 1, "terminationGracePeriodSeconds": 2, **every})],
        grace=60)
    # A startup probe that never passes: the container is restarted.
    apply(k, "nostart", [ctr_spec("c", "exec sleep 3600", startupProbe={
        "exec": {"command": ["false"]}, "periodSeconds": 1, "failureThreshold": 2})])

    c = wait_for("delayed to be ready", lambda: (lambda c: c if c.get("ready") else None)(status_of(k, "delayed", "c")),
                 timeout=60)
    p = pod(k, "delayed")
    ready_at = next(x for x in p["status"]["conditions"] if x["type"] == "ContainersReady")["lastTransitionTime"]
    # Whole seconds both: 5 s apart at least, so 4 after rounding down.
    waited = _secs(ready_at) - _secs(c["state"]["running"]["startedAt"])
    assert 4 <= waited <= 15, (ready_at, c)

    g = wait_for("probegrace to be restarted", lambda: (lambda c: c if c.get("restartCount", 0) >= 1 else None)(
        status_of(k, "probegrace", "c")), timeout=40)
    last = g["lastState"]["terminated"]
    assert last["exitCode"] == 137, last
    lived = _secs(last["finishedAt"]) - _secs(last["startedAt"])
    # 1 s delay, a failed probe, 2 s grace: a few seconds, not 60.
    assert 2 <= lived <= 20, last
    assert "got TERM" in k("logs", "probegrace", "--previous")
    event(k, "probegrace", "Killing", message="Container c failed liveness probe, will be restarted")

    n = wait_for("nostart to be restarted", lambda: (lambda c: c if c.get("restartCount", 0) >= 1 else None)(
        status_of(k, "nostart", "c")), timeout=40)
    assert n["started"] is False and n["ready"] is False, n
    event(k, "nostart", "Unhealthy", type="Warning", message="Startup probe failed: ")
    event(k, "nostart", "Killing", message="Container c failed startup probe, will be restarted")
    delete(k, "delayed", "probegrace", "nostart")


def test_conditions_while_an_init_container_runs_and_the_pod_ip_in_env(node):
    _, k, _ = node
    at_d = [{"name": "d", "mountPath": "/d"}]
    apply(k, "initwait", [ctr_spec("app", 'echo "ip=$MYIP"; exec sleep 3600', env=[
        {"name": "MYIP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}])],
        init=[ctr_spec("init", "while [ ! -f /d/go ]; do sleep 0.2; done", volumeMounts=at_d)],
        volumes=[{"name": "d", "emptyDir": {}}])
    ic = wait_for("the init container to run", lambda: next(
        (c for c in pod(k, "initwait")["status"].get("initContainerStatuses", []) if "running" in c["state"]), None),
        timeout=60)
    st = pod(k, "initwait")["status"]
    assert st["phase"] == "Pending", st
    conds = {c["type"]: c for c in st["conditions"]}
    assert conds["PodScheduled"]["status"] == "True"
    assert (conds["Initialized"]["status"], conds["Initialized"]["reason"], conds["Initialized"]["message"]) == (
        "False", "ContainersNotInitialized", "containers with incomplete status: [init]"), conds
    for t in ("ContainersReady", "Ready"):
        assert (conds[t]["status"], conds[t]["reason"], conds[t]["message"]) == (
            "False", "ContainersNotReady", "containers with unready status: [app]"), conds
    assert st["containerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}, st
    # A running init container is started but not ready (upstream's
    # prober manager: ready once it exited 0).
    assert ic["ready"] is False and ic["started"] is True, ic
    k("exec", "initwait", "-c", "init", "--", "touch", "/d/go")
    p = wait_for("initwait to be Ready", lambda: (lambda p: p if {c["type"]: c["status"] for c in p["status"][
        "conditions"]}.get("Ready") == "True" else None)(pod(k, "initwait")), timeout=60)
    conds = {c["type"]: c["status"] for c in p["status"]["conditions"]}
    assert {t: conds[t] for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")} == {
        "PodScheduled": "True", "Initialized": "True", "ContainersReady": "True", "Ready": "True"}, conds
    ic = p["status"]["initContainerStatuses"][0]
    assert ic["state"]["terminated"]["reason"] == "Completed" and ic["ready"] is True and ic["started"] is False, ic
    wait_for("the app's output", lambda: k("logs", "initwait", "-c", "app").strip() == f"ip={p['status']['podIP']}",
             timeout=20)
    delete(k, "initwait")


def _popen_exec(k, name):
    env = dict(os.environ, KUBECONFIG=k.kubeconfig)
    p = subprocess.Popen([KUBECTL, "exec", "-i", name, "--", "cat"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env, text=True)
    p.stdin.write("ping\n")
    p.stdin.flush()
    line = []
    reader = threading.Thread(target=lambda: line.append(p.stdout.readline()), daemon=True)
    reader.start()
    reader.join(30)
    if line != ["ping\n"]:
        p.kill()
        raise AssertionError(f"no echo through exec: {line}; {p.stderr.read() if p.poll() is not None else ''}")
    return p


def _ended(p, timeout):
    try:
        p.wait(timeout=timeout)
        return p.returncode
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        raise AssertionError("kubectl exec still runs after its backend died") from None


def test_exec_ends_when_its_backend_dies_mid_stream(node):
    """CVE-2018-1002105's other side: an upgraded exec whose far end dies
    (the container is killed; containerd, whose streaming server the
    kubelet bridges to, is killed) must end for kubectl too, not hang."""
    _, k, d = node
    apply(k, "streamer", [ctr_spec("c", "exec sleep 3600")])
    c = wait_for("streamer to run", lambda: (lambda c: c if c.get("ready") else None)(status_of(k, "streamer", "c")),
                 timeout=60)
    p = _popen_exec(k, "streamer")
    assert ctr(d, "tasks", "kill", "-s", "SIGKILL", c["containerID"].removeprefix("containerd://")).returncode == 0
    assert _ended(p, 20) != 0
    wait_for("streamer to run again", lambda: (lambda c: c.get("restartCount") == 1 and c.get("ready"))(
        status_of(k, "streamer", "c")), timeout=60)

    p = _popen_exec(k, "streamer")
    pid_file = Path(d) / "agent" / "containerd" / "containerd.pid"
    old = int(pid_file.read_text())
    os.kill(old, signal.SIGKILL)
    _ended(p, 20)
    # Once wharf runs a new containerd, exec works again.
    wait_for("a new containerd", lambda: (lambda n: n and n != old)(int(pid_file.read_text() or 0)), timeout=30)
    wait_for("exec to work again", lambda: k.run("exec", "streamer", "--", "echo", "back", check=False).stdout == "back\n",
             timeout=60)
    delete(k, "streamer")


def test_attach_and_port_forward_use_websockets_and_curl_gets_through(node):
    """kubectl 1.37 tries WebSocket first and falls back to SPDY silently:
    attach must settle on v5.channel.k8s.io and port-forward on its
    WebSocket tunnel; curl goes through the forwarded port."""
    _, k, _ = node
    apply(k, "talker", [ctr_spec("c", "while read l; do echo got $l; done", stdin=True),
                        ctr_spec("web", "exec httpd -f -p 8080 -h /www")])
    wait_for("talker to be ready", lambda: (lambda cs: cs and all(c.get("ready") for c in cs))(
        pod(k, "talker")["status"].get("containerStatuses")), timeout=60)
    env = dict(os.environ, KUBECONFIG=k.kubeconfig)
    p = subprocess.Popen([KUBECTL, "attach", "-v=9", "-i", "talker", "-c", "c"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        p.stdin.write("ping\n")
        p.stdin.flush()
        assert p.stdout.readline() == "got ping\n"
    finally:
        p.kill()
        p.wait()
    err = p.stderr.read()
    assert 'Subprotocol negotiated" protocol="v5.channel.k8s.io"' in err, err[-3000:]
    assert "fallback" not in err.lower(), err[-3000:]

    local = free_port()
    p = subprocess.Popen([KUBECTL, "port-forward", "-v=6", "pod/talker", f"{local}:8080"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert "Forwarding from" in p.stdout.readline()
        for _ in range(2):
            c = subprocess.run(["curl", "-sS", "--max-time", "10", f"http://127.0.0.1:{local}/"],
                               capture_output=True, text=True, timeout=20)
            assert c.returncode == 0 and c.stdout == "hello from a wharf pod\n", c
    finally:
        p.kill()
        p.wait()
    err = p.stderr.read()
    assert "fallback" not in err.lower(), err[-3000:]
    # client-go's tunneling dialer: SPDY inside a WebSocket.
    assert '"Negotiation complete" protocol="portforward.k8s.io"' in err, err[-3000:]
    delete(k, "talker")


def test_without_cap_sys_resource_containerd_restricts_oom_score_adj():
    """A host where wharf lacks CAP_SYS_RESOURCE (as k3s rootless): its
    containerd config sets restrict_oom_score_adj, without which runc could
    not give a Guaranteed pod upstream's -997 (nor its sandbox -998), as no
    process without the capability may lower its oom_score_adj. The pod runs,
    its value clamped to containerd's own."""
    prefix = ["setpriv", "--inh-caps=-sys_resource", "--bounding-set=-sys_resource"]
    with kubelet_node("e2e-gaps-nocap", prefix=prefix) as (s, k, d):
        caps = int(re.search(r"CapEff:\s*([0-9a-f]+)", Path(f"/proc/{s.proc.pid}/status").read_text()).group(1), 16)
        assert not caps & (1 << 24), hex(caps)
        config = (Path(d) / "agent" / "containerd" / "config.toml").read_text()
        assert "restrict_oom_score_adj = true" in config, config
        floor = int(Path(f"/proc/{int((Path(d) / 'agent' / 'containerd' / 'containerd.pid').read_text())}"
                         "/oom_score_adj").read_text())
        assert floor > -997, floor
        apply(k, "guaranteed", [ctr_spec("c", "cat /proc/1/oom_score_adj; exec sleep 3600", resources={
            "limits": {"memory": "32Mi", "cpu": "50m"}})])
        p = wait_for("the Guaranteed pod to run", lambda: (lambda p: p if p["status"].get("phase") == "Running"
                     else None)(pod(k, "guaranteed")), timeout=60)
        assert p["status"]["qosClass"] == "Guaranteed"
        wait_for("its oom_score_adj", lambda: k("logs", "guaranteed").strip() == str(max(-997, floor)), timeout=20)
        delete(k, "guaranteed")
