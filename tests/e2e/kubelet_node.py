"""A `wharf server` WITH its kubelet, for the tests that run real
containers: its own data directory, a random cluster CIDR, and a cleanup
that removes what the node made on the host (the server by PID, leftover
shims of this data directory's containerd, the CNI bridge, the pod
network's device and the nft tables by their unique names, idle portmap
chains, mounts under the data directory)."""

import atexit
import contextlib
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import WHARF, Kubectl, Server, free_port
from images import busybox_archive

IMAGE = "localhost/e2e-busybox:1"
# The same test image under its Docker Hub name, pulled through the node's
# registry mirror (see mirror_registry).
HUB_IMAGE = "busybox"
HUB_BODY = b"hello from a wharf pod\n"

_mirror = {}


def start_registry(d, port, extra_config=""):
    """Debian's docker-registry on 127.0.0.1:`port`, storing under `d`
    (`extra_config`: more of its YAML, e.g. an auth block); returns the
    process once it listens."""
    (d / "config.yml").write_text(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {d}/data
http:
  addr: 127.0.0.1:{port}
{extra_config}""")
    proc = subprocess.Popen(["docker-registry", "serve", str(d / "config.yml")],
                            stdout=open(d / "registry.log", "wb"), stderr=subprocess.STDOUT)

    def up():
        if proc.poll() is not None:
            pytest.fail((d / "registry.log").read_text())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            return False
    try:
        wait_for("the registry to listen", up, timeout=30, every=0.2)
    except BaseException:
        stop_registry(proc, d)
        raise
    return proc


def terminate(proc, timeout):
    """Stop a process this test started: SIGTERM, then SIGKILL if it is
    still there after `timeout` seconds."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def stop_registry(proc, d):
    """Stop a start_registry process by PID and remove its directory."""
    terminate(proc, 10)
    subprocess.run(["rm", "-rf", str(d)], capture_output=True)


def mirror_registry():
    """The port of one registry for the whole run (Debian's docker-registry,
    no auth, on a free loopback port) holding `library/busybox:latest`, the
    busybox test image. Every test node's registries file mirrors docker.io
    to it, so `docker.io/library/busybox` resolves there, as on an
    air-gapped machine. Stopped by PID at exit."""
    if "port" in _mirror:
        return _mirror["port"]
    for tool in ("docker-registry", "skopeo"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            pytest.fail(f"{tool} is not installed: run scripts/install-deps.sh")
    d = Path(tempfile.mkdtemp(prefix="wharf-mirror-e2e-"))
    port = free_port()
    proc = start_registry(d, port)

    def stop():
        stop_registry(proc, d)
    atexit.register(stop)
    archive = d / "busybox.tar"
    busybox_archive(archive, "localhost/e2e-busybox:1", HUB_BODY)
    subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", f"docker-archive:{archive}",
                    f"docker://127.0.0.1:{port}/library/busybox:latest"],
                   check=True, capture_output=True, timeout=120)
    _mirror["port"] = port
    return port


def bridge_name(data_dir):
    h = hashlib.sha256(os.path.realpath(data_dir).encode()).hexdigest()
    return "wh" + h[:8]


def network_names(data_dir):
    """The pod network's VXLAN device and nft table (crates/network: `wv`
    and `wharf-net-` + the bridge's hash)."""
    h = hashlib.sha256(os.path.realpath(data_dir).encode()).hexdigest()[:8]
    return "wv" + h, "wharf-net-" + h


def pods_table(data_dir):
    """The kubelet's own masquerade table when no pod network runs
    (crates/kubelet/src/masq.rs: `wharf-pods-` + the bridge's hash)."""
    return "wharf-pods-" + hashlib.sha256(os.path.realpath(data_dir).encode()).hexdigest()[:8]


def ctr(data_dir, *args):
    sock = Path(data_dir) / "agent" / "containerd" / "containerd.sock"
    return subprocess.run(["ctr", "--address", str(sock), "-n", "k8s.io", *args],
                          capture_output=True, text=True, timeout=30)


def own_shims(sock):
    """PIDs of containerd shims serving this data directory's containerd."""
    pids = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            cmd = (p / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if cmd and cmd[0].endswith(b"containerd-shim-runc-v2") and str(sock).encode() in cmd:
            pids.append(int(p.name))
    return pids


def remove_idle_portmap_chains():
    """The portmap plugin leaves its shared chains (and the jumps to them) in
    the nat table after the last port mapping is gone. Remove them once no
    mapping of anyone's is left in CNI-HOSTPORT-DNAT."""
    ipt = lambda *a: subprocess.run(["iptables", "-t", "nat", *a], capture_output=True, text=True)
    dnat = ipt("-S", "CNI-HOSTPORT-DNAT")
    if dnat.returncode != 0 or any(l.startswith("-A") for l in dnat.stdout.splitlines()):
        return
    ipt("-D", "PREROUTING", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT")
    ipt("-D", "OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT")
    ipt("-D", "POSTROUTING", "-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j", "CNI-HOSTPORT-MASQ")
    for chain in ("CNI-HOSTPORT-DNAT", "CNI-HOSTPORT-MASQ", "CNI-HOSTPORT-SETMARK"):
        ipt("-F", chain)
        ipt("-X", chain)


def host_ip():
    """The host's first IPv4 address (a node address the proxy serves:
    like kube-proxy's nftables mode, it does not serve localhost)."""
    out = subprocess.run(["hostname", "-I"], capture_output=True, text=True).stdout.split()
    return next(a for a in out if "." in a)


class NodeServer(Server):
    """A server with its kubelet, proxy and DNS, whose node address is the
    host's address (it listens on every address; the kubeconfig names the
    advertised one)."""

    def __init__(self, data_dir, extra_args, ip):
        super().__init__(data_dir, agent=True, extra_args=extra_args)
        self.ip = ip

    def start(self, timeout=120):
        args = [WHARF, "server", "--data-dir", str(self.data_dir), "--https-listen-port", str(self.port),
                "--bind-address", "0.0.0.0", "--advertise-address", self.ip, *self.extra_args]
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


def http_get(url):
    """The body at `url` (e.g. a pod's web server), or None if it does not
    answer within 2 s."""
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.read().decode()
    except Exception:
        return None



def pod_json(k, name):
    """Pod `name` as kubectl returns it."""
    return json.loads(k("get", "pod", name, "-o", "json"))


def apply_pod(k, name, containers, init=(), volumes=(), restart="Always", grace=1, **spec):
    """Apply a Pod of these containers (and init containers and volumes)."""
    k("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"restartPolicy": restart, "terminationGracePeriodSeconds": grace,
                 "initContainers": list(init), "containers": list(containers), "volumes": list(volumes), **spec}}))


def busybox_sh(name, script, **kw):
    """A busybox container running `script` with sh."""
    return {"name": name, "image": IMAGE, "imagePullPolicy": "Never", "command": ["sh", "-c", script], **kw}

def wait_for(what, fn, timeout=60, every=0.5):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}; last: {last!r}")


def check_memory_hog_is_oom_killed(k):
    """A pod whose container outgrows its 16Mi memory limit fails with
    OOMKilled and exit code 137."""
    manifest = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hog"},
        "spec": {"restartPolicy": "Never", "containers": [{
            "name": "c", "image": IMAGE, "imagePullPolicy": "Never",
            "command": ["sh", "-c", "x=aaaaaaaaaaaaaaaa; while true; do x=$x$x; done"],
            "resources": {"limits": {"memory": "16Mi"}}}]},
    }
    k("apply", "-f", "-", input=json.dumps(manifest))

    def ended():
        p = json.loads(k("get", "pod", "hog", "-o", "json"))
        return p if p["status"].get("phase") in ("Succeeded", "Failed") else None

    p = wait_for("hog to end", ended, timeout=60)
    t = p["status"]["containerStatuses"][0]["state"]["terminated"]
    assert p["status"]["phase"] == "Failed"
    assert t["reason"] == "OOMKilled" and t["exitCode"] == 137, t
    k("delete", "pod", "hog", "--grace-period=1", timeout=90)


@contextlib.contextmanager
def kubelet_node(node, extra_args=(), before_start=None, import_image=True, proxy_table=None, prefix=()):
    """Yield (server, kubectl, data_dir) of a Ready node named `node`.
    `before_start(data_dir)` runs before the server starts; with
    `import_image`, the busybox test image is imported as IMAGE. Unless
    the caller passes its own `--private-registry`, the node mirrors
    docker.io to mirror_registry(), where HUB_IMAGE is. With
    `proxy_table`, the node is a NodeServer on the host's address running
    its proxy (with that nft table, removed at the end) and its DNS.
    `prefix`: a command the server runs under, which execs it."""
    if subprocess.run(["which", "containerd"], capture_output=True).returncode != 0:
        pytest.fail("containerd is not installed: run scripts/install-deps.sh")
    d = tempfile.mkdtemp(prefix=f"wharf-{node}-")
    cidr = f"10.{random.randint(200, 249)}.0.0/16"
    args = ["--cluster-cidr", cidr, "--node-name", node, *extra_args]
    if "--private-registry" not in args:
        conf = Path(d) / "registries.yaml"
        conf.write_text(f"""mirrors:
  docker.io:
    endpoint:
      - "http://127.0.0.1:{mirror_registry()}"
""")
        args += ["--private-registry", str(conf)]
    if "--kubelet-port" not in args:
        # Not the default 10250: concurrent test servers must not collide.
        args += ["--kubelet-port", str(free_port())]
    if proxy_table:
        s = NodeServer(d, [*args, "--proxy-table-name", proxy_table], host_ip())
    else:
        s = Server(d, agent=True, extra_args=args, prefix=prefix)
    sock = Path(d) / "agent" / "containerd" / "containerd.sock"
    try:
        if before_start:
            before_start(d)
        s.start(timeout=120)
        k = Kubectl(s.kubeconfig)
        wait_for("the node to be Ready", lambda: k.run(
            "get", "node", node, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
            check=False).stdout == "True", timeout=90)
        if import_image:
            # containerd runs once the node is Ready (the API answers before).
            archive = Path(d) / "busybox.tar"
            busybox_archive(archive, IMAGE, b"hello from a wharf pod\n")
            subprocess.run([WHARF, "images", "import", "--data-dir", d, str(archive)], check=True,
                           capture_output=True, timeout=60)
        yield s, k, d
    finally:
        try:
            k = Kubectl(s.kubeconfig)
            k.run("delete", "pods", "--all", "-A", "--grace-period=1", "--wait=true", "--timeout=60s",
                  check=False, timeout=90)
        except Exception:
            pass
        s.stop()
        for pid in own_shims(sock):
            os.kill(pid, signal.SIGKILL)
        subprocess.run(["ip", "link", "del", bridge_name(d)], capture_output=True)
        # The pod network leaves its device and table on exit (a restart
        # must not cut traffic); the test node removes them.
        vxlan, table = network_names(d)
        subprocess.run(["ip", "link", "del", vxlan], capture_output=True)
        subprocess.run(["nft", "delete", "table", "ip", table], capture_output=True)
        # So does the kubelet's own table (without the pod network).
        subprocess.run(["nft", "delete", "table", "ip", pods_table(d)], capture_output=True)
        remove_idle_portmap_chains()
        if proxy_table:
            # The proxy leaves its rules on exit (as kube-proxy); this removes them.
            subprocess.run([WHARF, "proxy", "--cleanup", "--proxy-table-name", proxy_table], capture_output=True)
        for m in sorted((l.split()[1] for l in Path("/proc/self/mounts").read_text().splitlines()
                         if l.split()[1].startswith(d + "/")), key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        if os.environ.get("WHARF_E2E_KEEP_LOG"):
            subprocess.run(["cp", str(Path(d) / "server.log"), os.environ["WHARF_E2E_KEEP_LOG"]])
        subprocess.run(["rm", "-rf", d], capture_output=True)
