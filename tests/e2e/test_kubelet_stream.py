"""The kubelet API through the API server, with the real kubectl and the
Python client: `kubectl logs` (plain, -f, --tail, --previous, -c, the error
messages), `kubectl exec` (exit codes, stdin, a terminal), `kubectl cp` both
ways, `kubectl port-forward`, `kubectl attach` (also with a terminal and
its resizes); the kubelet port refuses anonymous requests; a refused
upgrade is answered and never piped.

The fixture is kubelet_node.py's: `wharf server` with its kubelet and own
containerd in a temporary data directory, a random pod CIDR, a free kubelet
port, a busybox image built locally; everything is removed at the end."""

import base64
import json
import os
import re
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

import images
from conftest import KUBECTL, WHARF, free_port
from kubelet_node import kubelet_node, wait_for

IMAGE = "localhost/e2e-stream:1"
NODE = "e2e-stream"
# kubectl cp runs tar in the container; exec -t is checked with tty.
EXTRA_APPLETS = ["tar", "tty", "mkdir", "seq", "stty"]


@pytest.fixture(scope="module")
def node():
    kport = free_port()
    with kubelet_node(NODE, extra_args=["--kubelet-port", str(kport)], import_image=False) as (s, k, d):
        archive = Path(d) / "busybox.tar"
        saved = images.APPLETS
        images.APPLETS = saved + EXTRA_APPLETS
        try:
            images.busybox_archive(archive, IMAGE, b"hello through port-forward\n")
        finally:
            images.APPLETS = saved
        subprocess.run([WHARF, "images", "import", "--data-dir", d, str(archive)], check=True,
                       capture_output=True, timeout=60)
        yield s, k, d, kport


def run_pod(k, name, containers, restart="Always", init=None, extra_spec=None, wait=True):
    spec = {
        "restartPolicy": restart,
        "terminationGracePeriodSeconds": 1,
        "containers": [dict({"image": IMAGE, "imagePullPolicy": "Never"}, **c) for c in containers],
    }
    if init:
        spec["initContainers"] = [dict({"image": IMAGE, "imagePullPolicy": "Never"}, **c) for c in init]
    spec.update(extra_spec or {})
    doc = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}
    k("apply", "-f", "-", input=json.dumps(doc))
    if wait:
        wait_for(f"pod {name} to run", lambda: k.run(
            "get", "pod", name, "-o", "jsonpath={.status.phase}", check=False).stdout == "Running",
            timeout=90)


def sh(name, script, **kw):
    return dict({"name": name, "command": ["sh", "-c", script]}, **kw)


def admin_tls(kubeconfig, d):
    """An SSL context with the admin client certificate of the kubeconfig."""
    kc = yaml.safe_load(Path(kubeconfig).read_text())
    user = kc["users"][0]["user"]
    cert, key = Path(d) / "admin.crt", Path(d) / "admin.key"
    cert.write_bytes(base64.b64decode(user["client-certificate-data"]))
    key.write_bytes(base64.b64decode(user["client-key-data"]))
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.load_cert_chain(str(cert), str(key))
    return ctx


@pytest.fixture(scope="module")
def pods(node):
    """The long-running pods most tests share."""
    _, k, _, _ = node
    # stdout and stderr are separate pipes: the pause orders them in the log.
    run_pod(k, "logger", [sh("main", "echo line 1; echo line 2; echo line 3; sleep 1; echo oops >&2; exec sleep 3600")])
    run_pod(k, "two", [sh("a", "echo from-a; exec sleep 3600"), sh("b", "echo from-b; exec sleep 3600")])
    run_pod(k, "web", [{"name": "web", "command": ["httpd", "-f", "-p", "8080", "-h", "/www"]}])
    # Running is posted once the process started, which may be before httpd listens.
    wait_for("httpd to listen", lambda: k.run(
        "exec", "web", "--", "wget", "-qO-", "http://127.0.0.1:8080/", check=False).returncode == 0,
        timeout=30)
    return k


def python_client(node):
    from kubernetes import client, config
    s, _, _, _ = node
    return client.CoreV1Api(config.new_client_from_config(str(s.kubeconfig)))


def test_node_reports_the_kubelet_port(node):
    _, k, _, kport = node
    port = k("get", "node", NODE, "-o", "jsonpath={.status.daemonEndpoints.kubeletEndpoint.Port}")
    assert port == str(kport)


def test_kubelet_port_refuses_anonymous_requests(node):
    s, _, d, kport = node
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"https://127.0.0.1:{kport}/containerLogs/default/logger/main",
                               context=ctx, timeout=10)
    assert e.value.code == 401
    # A certificate from the cluster CA is accepted (the pod does not exist: 404).
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"https://127.0.0.1:{kport}/containerLogs/default/nope/main",
                               context=admin_tls(s.kubeconfig, d), timeout=10)
    assert e.value.code == 404
    # A certificate from another CA proves nothing: it passes the handshake
    # (upstream's RequestClientCert) and gets 401, as without one.
    foreign = Path(d) / "foreign"
    foreign.mkdir(exist_ok=True)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(foreign / "key.pem"), "-out", str(foreign / "cert.pem"), "-days", "1",
                    "-subj", "/O=system:masters/CN=intruder"], check=True, capture_output=True)
    ctx.load_cert_chain(str(foreign / "cert.pem"), str(foreign / "key.pem"))
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(f"https://127.0.0.1:{kport}/containerLogs/default/logger/main",
                               context=ctx, timeout=10)
    assert e.value.code == 401


def test_logs_plain_tail_timestamps_limit(pods):
    k = pods
    wait_for("the logs", lambda: "oops" in k.run("logs", "logger", check=False).stdout, timeout=30)
    assert k("logs", "logger") == "line 1\nline 2\nline 3\noops\n"
    assert k("logs", "logger", "--tail=2") == "line 3\noops\n"
    assert k("logs", "logger", "--tail=0") == ""
    assert k("logs", "logger", "--limit-bytes=9") == "line 1\nli"
    stamped = k("logs", "logger", "--timestamps").splitlines()
    assert len(stamped) == 4
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line 1$", stamped[0]), stamped[0]
    assert k("logs", "logger", "--since=1h") == "line 1\nline 2\nline 3\noops\n"
    assert k("logs", "logger", "--since-time=2999-01-01T00:00:00Z") == ""


def test_logs_container_choice_and_errors(pods, node):
    k = pods
    assert k("logs", "two", "-c", "b") == "from-b\n"
    api = python_client(node)
    from kubernetes.client.rest import ApiException
    with pytest.raises(ApiException) as e:
        api.read_namespaced_pod_log("two", "default")
    assert e.value.status == 400
    assert json.loads(e.value.body)["message"] == \
        "a container name must be specified for pod two, choose one of: [a b]"
    with pytest.raises(ApiException) as e:
        api.read_namespaced_pod_log("two", "default", container="zz")
    assert json.loads(e.value.body)["message"] == "container zz is not valid for pod two"
    p = k.run("logs", "logger", "--previous", check=False)
    assert p.returncode != 0
    assert 'previous terminated container "main" in pod "logger" not found' in p.stderr
    assert k("logs", "logger", "--tail=-1") == "line 1\nline 2\nline 3\noops\n"
    with pytest.raises(ApiException) as e:
        api.read_namespaced_pod_log("logger", "default", limit_bytes=0)
    assert e.value.status == 422
    assert "limitBytes: Invalid value: 0: must be greater than 0" in json.loads(e.value.body)["message"]


def test_logs_of_a_container_not_started(node):
    _, k, _, _ = node
    # The init container never finishes: the app container waits.
    run_pod(k, "waiting", [sh("main", "echo never")], init=[sh("init", "exec sleep 3600")], wait=False)
    wait_for("the init container to run", lambda: k.run(
        "get", "pod", "waiting", "-o", "jsonpath={.status.initContainerStatuses[0].state.running}",
        check=False).stdout != "", timeout=60)
    reason = k("get", "pod", "waiting", "-o",
               "jsonpath={.status.containerStatuses[0].state.waiting.reason}")
    assert reason in ("PodInitializing", "ContainerCreating")
    p = k.run("logs", "waiting", "-c", "main", check=False)
    assert p.returncode != 0
    assert f'container "main" in pod "waiting" is waiting to start: {reason}' in p.stderr
    # The init container's log is there.
    assert k("logs", "waiting", "-c", "init") == ""


def test_logs_follow(node):
    _, k, _, _ = node
    run_pod(k, "ticker", [sh("main", "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.3; done")])
    env = dict(os.environ, KUBECONFIG=k.kubeconfig)
    p = subprocess.Popen([KUBECTL, "logs", "-f", "ticker"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        lines = [p.stdout.readline() for _ in range(6)]
    finally:
        p.kill()
        p.wait()
    assert [l.strip() for l in lines] == [f"tick {i}" for i in range(1, 7)]
    # Following a container that exits ends when it does.
    run_pod(k, "brief", [sh("main", "sleep 2; echo bye")], restart="Never", wait=False)
    wait_for("brief to start", lambda: k.run(
        "get", "pod", "brief", "-o", "jsonpath={.status.containerStatuses[0].state.running}",
        check=False).stdout != "", timeout=60)
    p = k.run("logs", "-f", "brief", timeout=30)
    assert p.stdout == "bye\n"


def test_logs_previous_after_a_restart(node):
    _, k, _, _ = node
    run_pod(k, "restarter", [sh("main", "echo run at $(cat /proc/uptime); sleep 1; exit 1")], wait=False)
    wait_for("a restart", lambda: int(k.run(
        "get", "pod", "restarter", "-o", "jsonpath={.status.containerStatuses[0].restartCount}",
        check=False).stdout or 0) >= 1, timeout=90)
    prev = k("logs", "restarter", "--previous")
    assert prev.startswith("run at ")


def test_exec_output_exit_code_and_stdin(pods):
    k = pods
    assert k("exec", "logger", "--", "echo", "hi there") == "hi there\n"
    p = k.run("exec", "logger", "--", "sh", "-c", "echo out; echo err >&2; exit 3", check=False)
    assert p.returncode == 3
    assert p.stdout == "out\n"
    assert "err" in p.stderr
    assert k("exec", "-i", "logger", "--", "cat", input="from stdin\n") == "from stdin\n"
    assert k("exec", "two", "-c", "b", "--", "printf", "b") == "b"
    p = k.run("exec", "logger", "--", "/no/such/binary", check=False)
    assert p.returncode != 0
    # kubectl 1.37 speaks WebSocket first and falls back to SPDY silently:
    # it must have settled on v5.channel.k8s.io.
    p = k.run("exec", "-v=9", "logger", "--", "true")
    assert 'Subprotocol negotiated" protocol="v5.channel.k8s.io"' in p.stderr, p.stderr[-3000:]
    assert "fallback" not in p.stderr.lower(), p.stderr[-3000:]


def test_exec_idle_connection_survives(pods):
    """No data for 20 s: the WebSocket heartbeats keep the session alive."""
    k = pods
    out = k("exec", "-i", "logger", "--", "sh", "-c", "sleep 20; echo late", input="", timeout=90)
    assert out == "late\n"


def test_python_client_exec_with_stdin(pods, node):
    from kubernetes.stream import stream
    api = python_client(node)
    ws = stream(api.connect_get_namespaced_pod_exec, "logger", "default",
                command=["sh", "-c", "read l; echo got $l; echo bad >&2; exit 5"], stderr=True,
                stdin=True, stdout=True, tty=False, _preload_content=False)
    ws.write_stdin("hello\n")
    ws.run_forever(timeout=30)
    assert ws.read_stdout() == "got hello\n"
    assert ws.read_stderr() == "bad\n"
    assert ws.returncode == 5


def test_exec_with_a_terminal(pods):
    k = pods
    # A pseudo-terminal for kubectl, so that -t gives the container one.
    p = subprocess.run(
        ["script", "-qec", f"{KUBECTL} exec -it logger -- sh -c 'tty; echo done'", "/dev/null"],
        capture_output=True, text=True, timeout=60, env=dict(os.environ, KUBECONFIG=k.kubeconfig),
        stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "/dev/pts/" in p.stdout
    assert "done" in p.stdout


def test_exec_terminal_size_follows_kubectls(pods):
    """The resize channel: the container's terminal gets kubectl's size. The
    size arrives asynchronously (as upstream's), hence the pause."""
    k = pods
    p = subprocess.run(
        ["script", "-qec", f"stty rows 41 cols 103; {KUBECTL} exec -it logger -- sh -c 'sleep 1; stty size'", "/dev/null"],
        capture_output=True, text=True, timeout=60, env=dict(os.environ, KUBECONFIG=k.kubeconfig),
        stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "41 103" in p.stdout, p.stdout


def test_exec_over_spdy(pods):
    """kubectl with WebSockets off upgrades to SPDY (v4.channel.k8s.io)."""
    k = pods
    env = dict(os.environ, KUBECONFIG=k.kubeconfig, KUBECTL_REMOTE_COMMAND_WEBSOCKETS="false")
    p = subprocess.run([KUBECTL, "-v=8", "exec", "-i", "logger", "--", "sh", "-c", "cat; exit 4"],
                       input="over spdy\n", capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 4, p.stderr
    assert p.stdout == "over spdy\n"
    assert "X-Stream-Protocol-Version: v4.channel.k8s.io" in p.stderr, p.stderr[-3000:]
    assert "Sec-Websocket-Protocol" not in p.stderr.title()


def test_cp_both_ways(pods, tmp_path):
    k = pods
    src = tmp_path / "up.txt"
    content = "".join(f"line {i}\n" for i in range(2000))
    src.write_text(content)
    k("cp", str(src), "logger:/tmp/up.txt")
    assert k("exec", "logger", "--", "cat", "/tmp/up.txt") == content
    dst = tmp_path / "down.txt"
    k("cp", "logger:/tmp/up.txt", str(dst))
    assert dst.read_text() == content


def test_python_client_exec(pods, node):
    from kubernetes.stream import stream
    api = python_client(node)
    out = stream(api.connect_get_namespaced_pod_exec, "logger", "default",
                 command=["sh", "-c", "echo from python"], stderr=True, stdin=False,
                 stdout=True, tty=False)
    assert out == "from python\n"


def test_port_forward(pods):
    k = pods
    local = free_port()
    env = dict(os.environ, KUBECONFIG=k.kubeconfig)
    p = subprocess.Popen([KUBECTL, "port-forward", "pod/web", f"{local}:8080"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = p.stdout.readline()
        assert "Forwarding from" in line, line + p.stderr.read()
        for _ in range(3):
            with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10) as r:
                assert r.read() == b"hello through port-forward\n"
    except Exception:
        p.kill()
        print("kubectl port-forward stderr:", p.stderr.read())
        raise
    finally:
        p.kill()
        p.wait()


def test_port_forward_over_spdy(pods):
    """kubectl with WebSockets off upgrades to SPDY/3.1 directly."""
    k = pods
    local = free_port()
    env = dict(os.environ, KUBECONFIG=k.kubeconfig, KUBECTL_PORT_FORWARD_WEBSOCKETS="false")
    p = subprocess.Popen([KUBECTL, "-v=8", "port-forward", "pod/web", f"{local}:8080"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert "Forwarding from" in p.stdout.readline()
        with urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10) as r:
            assert r.read() == b"hello through port-forward\n"
    finally:
        p.kill()
        p.wait()
    err = p.stderr.read()
    assert "X-Stream-Protocol-Version: portforward.k8s.io" in err, err[-3000:]
    assert "SPDY/3.1+portforward.k8s.io" not in err


def test_port_forward_to_a_closed_port(pods):
    """The kubelet cannot connect: kubectl gets the error on the error stream."""
    k = pods
    local = free_port()
    env = dict(os.environ, KUBECONFIG=k.kubeconfig)
    p = subprocess.Popen([KUBECTL, "port-forward", "pod/web", f"{local}:9999"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert "Forwarding from" in p.stdout.readline()
        with pytest.raises(Exception):
            urllib.request.urlopen(f"http://127.0.0.1:{local}/", timeout=10).read()
        time.sleep(1)
    finally:
        p.kill()
        p.wait()
    err = p.stderr.read()
    assert "error forwarding port 9999 to pod web_default" in err, err
    assert "connect" in err.lower() or "refused" in err.lower(), err


def test_attach(node):
    _, k, _, _ = node
    run_pod(k, "chatty", [sh("main", "i=0; while true; do i=$((i+1)); echo chat $i; sleep 0.3; done")])
    env = dict(os.environ, KUBECONFIG=k.kubeconfig)
    p = subprocess.Popen([KUBECTL, "attach", "chatty"], stdout=subprocess.PIPE, text=True, env=env)
    try:
        lines = [p.stdout.readline() for _ in range(3)]
    finally:
        p.kill()
        p.wait()
    assert all(l.startswith("chat ") for l in lines), lines
    # Attach with stdin to a container that reads it.
    run_pod(k, "reader", [sh("main", "while read l; do echo got $l; done", stdin=True)])
    p = subprocess.Popen([KUBECTL, "attach", "-i", "reader"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True, env=env)
    try:
        p.stdin.write("ping\n")
        p.stdin.flush()
        assert p.stdout.readline() == "got ping\n"
    finally:
        p.kill()
        p.wait()


def read_until(fd, pattern, timeout=30):
    """Reads the pty master `fd` until `pattern` (a regex) matches what was
    read; returns all of it."""
    import select
    out = b""
    until = time.monotonic() + timeout
    while time.monotonic() < until:
        m = re.search(pattern, out.decode(errors="replace"))
        if m:
            return out.decode(errors="replace")
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    raise AssertionError(f"{pattern!r} not seen in {out!r}")


def set_winsize(fd, rows, cols):
    import fcntl
    import struct
    import termios
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def test_attach_with_a_terminal_and_resizes(node):
    """`kubectl attach -it` to a shell running under a terminal: a typed
    command runs and its output comes back; the container's terminal takes
    kubectl's size on attach (the resize channel) and follows a resize of
    kubectl's terminal while attached."""
    import pty
    _, k, _, _ = node
    run_pod(k, "shell", [{"name": "main", "command": ["sh"], "tty": True, "stdin": True}])
    master, slave = pty.openpty()
    set_winsize(slave, 37, 91)
    p = subprocess.Popen([KUBECTL, "attach", "-it", "shell"], stdin=slave, stdout=slave, stderr=slave,
                         env=dict(os.environ, KUBECONFIG=k.kubeconfig), start_new_session=True)
    os.close(slave)
    try:
        # The size arrives asynchronously (as upstream's), hence the pause.
        os.write(master, b"sleep 1; stty size; echo $((6*7))-done\n")
        out = read_until(master, r"\d+ \d+\s+42-done")
        assert re.search(r"(?m)^37 91\s*$", out), out
        # kubectl follows its terminal's SIGWINCH with a resize message.
        set_winsize(master, 29, 77)
        p.send_signal(__import__("signal").SIGWINCH)
        os.write(master, b"sleep 1; stty size; echo $((5*5))-again\n")
        out = read_until(master, r"\d+ \d+\s+25-again")
        assert re.search(r"(?m)^29 77\s*$", out), out
        assert p.poll() is None, "kubectl attach ended early"
    finally:
        p.kill()
        p.wait()
        os.close(master)


def test_refused_upgrade_is_answered_not_piped(pods, node):
    """CVE-2018-1002105: the kubelet refuses the exec (its container does not
    run); the API server answers with the error and keeps the client's
    connection an HTTP connection, never a pipe to the kubelet."""
    s, k, d, _ = node
    wait_for("the init container to run", lambda: k.run(
        "get", "pod", "waiting", "-o", "jsonpath={.status.initContainerStatuses[0].state.running}",
        check=False).stdout != "", timeout=60)
    port = s.port
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    conn = admin_tls(s.kubeconfig, d).wrap_socket(raw)
    key = base64.b64encode(os.urandom(16)).decode()
    req = (f"GET /api/v1/namespaces/default/pods/waiting/exec?command=true&container=main&stdout=1 HTTP/1.1\r\n"
           f"Host: 127.0.0.1:{port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
           f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: {key}\r\n"
           f"Sec-WebSocket-Protocol: v5.channel.k8s.io\r\n\r\n")
    conn.sendall(req.encode())
    head, body = read_response(conn)
    assert not head.startswith("HTTP/1.1 101"), head
    status = json.loads(body)
    assert status["kind"] == "Status" and status["code"] == 404, status
    assert 'container not found ("main")' in status["message"]
    # The same connection still speaks HTTP to the API server.
    conn.sendall(f"GET /version HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    head, body = read_response(conn)
    assert head.startswith("HTTP/1.1 200"), head
    assert "gitVersion" in json.loads(body)
    conn.close()


def read_response(conn):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(4096)
        assert chunk, f"connection closed after {buf!r}"
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    head = head.decode()
    m = re.search(r"(?im)^content-length:\s*(\d+)", head)
    if m:
        n = int(m.group(1))
        while len(rest) < n:
            rest += conn.recv(4096)
        return head, rest[:n].decode()
    # Chunked.
    body = b""
    while True:
        while b"\r\n" not in rest:
            rest += conn.recv(4096)
        size_line, rest = rest.split(b"\r\n", 1)
        size = int(size_line, 16)
        while len(rest) < size + 2:
            rest += conn.recv(4096)
        body += rest[:size]
        rest = rest[size + 2:]
        if size == 0:
            return head, body.decode()


def test_pod_log_dir_removed_with_the_pod(node):
    _, k, d, _ = node
    run_pod(k, "shortlived", [sh("main", "echo x; exec sleep 3600")])
    uid = k("get", "pod", "shortlived", "-o", "jsonpath={.metadata.uid}")
    logs = Path(d) / "agent" / "pod-logs"
    assert any(p.name.endswith("_" + uid) for p in logs.iterdir())
    k("delete", "pod", "shortlived", "--wait=true", "--timeout=60s", timeout=90)
    wait_for("the log directory to go", lambda: not any(
        p.name.endswith("_" + uid) for p in logs.iterdir()), timeout=30)
