"""Pods under crun: wharf's containerd gets a `crun` runtime when a crun
binary is found (as k3s adds the runtimes it detects), and
`--default-runtime crun` makes it the one pods without a RuntimeClass run
with. Limits, logs, exec and the OOM kill work as under runc.

crun refuses hybrid cgroups (v1 controllers plus a cgroup2 mount at
/sys/fs/cgroup/unified) once the v2 hierarchy holds any controller, as on
this project's machines (hugetlb). wharf then leaves crun out. The test
node therefore runs, on such a host, in a mount namespace of its own
without the cgroup2 mount, where crun sees the plain v1 layout.

A RuntimeClass picks another runtime for its pods: with crun the default,
a class whose handler is `runc` runs its pod under runc, and a class
whose handler the node's containerd lacks fails the sandbox as upstream's
do; on a node of its own with the default runc, a class whose handler is
`crun` runs its pod under crun."""

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from conftest import Server
from kubelet_node import IMAGE, check_memory_hog_is_oom_killed, kubelet_node, wait_for

NODE = "e2e-crun"


def hybrid_with_v2_controllers():
    mounts = {l.split()[1]: l.split()[2] for l in Path("/proc/self/mounts").read_text().splitlines()}
    if mounts.get("/sys/fs/cgroup") == "cgroup2" or mounts.get("/sys/fs/cgroup/unified") != "cgroup2":
        return False
    return Path("/sys/fs/cgroup/unified/cgroup.controllers").read_text().strip() != ""


def crun_prefix():
    if not hybrid_with_v2_controllers():
        return []
    return ["unshare", "-m", "--propagation", "private", "sh", "-c",
            'umount /sys/fs/cgroup/unified && exec "$0" "$@"']


@pytest.fixture(scope="module")
def node():
    if shutil.which("crun") is None:
        pytest.fail("crun is not installed: run scripts/install-deps.sh")
    with kubelet_node(NODE, extra_args=["--default-runtime", "crun"], prefix=crun_prefix()) as n:
        yield n


def pod(k, name):
    return json.loads(k("get", "pod", name, "-o", "json"))


def test_pod_runs_under_crun_with_its_limits(node):
    _, k, d = node
    manifest = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "limited"},
        "spec": {"containers": [{
            "name": "c", "image": IMAGE, "imagePullPolicy": "Never",
            "command": ["sh", "-c", "echo started; cat /sys/fs/cgroup/memory/memory.limit_in_bytes; "
                        "cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us; sleep 3600"],
            "resources": {"limits": {"memory": "64Mi", "cpu": "200m"}}}]},
    }
    k("apply", "-f", "-", input=json.dumps(manifest))
    p = wait_for("the pod to be Running", lambda: (lambda p: p if p["status"].get("phase") == "Running"
                 else None)(pod(k, "limited")), timeout=60)
    cid = p["status"]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
    # crun's state is under the crun runtime's root; runc never saw it.
    state = Path(d) / "agent" / "containerd"
    assert (state / "crun" / "k8s.io" / cid).is_dir(), list((state / "crun" / "k8s.io").iterdir())
    assert not (state / "runc" / "k8s.io" / cid).exists()
    logs = wait_for("the pod's output", lambda: (lambda o: o if o.count("\n") >= 3 else None)(
        k("logs", "limited")))
    assert logs.split() == ["started", str(64 << 20), "20000"], logs
    out = k("exec", "limited", "--", "sh", "-c", "echo exec in $(hostname)")
    assert out.strip() == "exec in limited"
    k("delete", "pod", "limited", "--grace-period=1", timeout=90)


def runtime_state(d, runtime, cid):
    """Whether `runtime` (its root under the node's containerd) holds the container."""
    return (Path(d) / "agent" / "containerd" / runtime / "k8s.io" / cid).is_dir()


def test_runtime_class_picks_the_runtime(node):
    _, k, d = node
    classes = [{"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass", "metadata": {"name": name},
                "handler": handler} for name, handler in [("e2e-runc", "runc"), ("e2e-missing", "nosuch")]]
    k("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": classes}))
    table = k("get", "runtimeclass", "e2e-runc", "e2e-missing").splitlines()
    assert [l.split()[:2] for l in table] == [["NAME", "HANDLER"], ["e2e-runc", "runc"], ["e2e-missing", "nosuch"]]
    for name, cls in [("classic", "e2e-runc"), ("stuck", "e2e-missing")]:
        k("run", name, f"--image={IMAGE}", "--image-pull-policy=Never",
          "--overrides", json.dumps({"spec": {"runtimeClassName": cls}}), "--", "sleep", "3600")
    p = wait_for("the runc pod to be Running", lambda: (lambda p: p if p["status"].get("phase") == "Running"
                 else None)(pod(k, "classic")), timeout=60)
    cid = p["status"]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
    assert runtime_state(d, "runc", cid) and not runtime_state(d, "crun", cid)

    def failures():
        evs = json.loads(k("get", "events", "--field-selector", "involvedObject.name=stuck", "-o", "json"))["items"]
        ev = next((e for e in evs if e["reason"] == "FailedCreatePodSandBox"), None)
        # Retried with back-off (5 s, then 10 s, ...): the event's count grows.
        return ev if ev and ev["count"] >= 2 else None
    ev = wait_for("FailedCreatePodSandBox twice", failures, timeout=60)
    assert ev["type"] == "Warning" and ev["source"]["component"] == "kubelet"
    assert ev["message"].startswith("Failed to create pod sandbox: "), ev["message"]
    assert 'no runtime for "nosuch" is configured' in ev["message"], ev["message"]
    # As upstream: the pod waits in ContainerCreating; the events say why.
    st = pod(k, "stuck")["status"]
    assert st["phase"] == "Pending"
    assert st["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating"
    k("delete", "pod", "classic", "stuck", "--grace-period=1", timeout=90)
    k("delete", "runtimeclass", "e2e-runc", "e2e-missing")


def test_runtime_class_crun_on_a_runc_node():
    if shutil.which("crun") is None:
        pytest.fail("crun is not installed: run scripts/install-deps.sh")
    with kubelet_node(NODE + "-rc", prefix=crun_prefix()) as (_, k, d):
        k("apply", "-f", "-", input=json.dumps({"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
                                               "metadata": {"name": "crun"}, "handler": "crun"}))
        k("run", "fast", f"--image={IMAGE}", "--image-pull-policy=Never",
          "--overrides", json.dumps({"spec": {"runtimeClassName": "crun"}}), "--", "sleep", "3600")
        k("run", "plain", f"--image={IMAGE}", "--image-pull-policy=Never", "--", "sleep", "3600")
        ids = {}
        for name in ["fast", "plain"]:
            p = wait_for(f"{name} to be Running", lambda: (lambda p: p if p["status"].get("phase") == "Running"
                         else None)(pod(k, name)), timeout=60)
            ids[name] = p["status"]["containerStatuses"][0]["containerID"].removeprefix("containerd://")
        assert runtime_state(d, "crun", ids["fast"]) and not runtime_state(d, "runc", ids["fast"])
        assert runtime_state(d, "runc", ids["plain"]) and not runtime_state(d, "crun", ids["plain"])


def test_memory_hog_is_oom_killed_under_crun(node):
    _, k, _ = node
    check_memory_hog_is_oom_killed(k)


def test_unknown_default_runtime_is_a_startup_error():
    d = tempfile.mkdtemp(prefix="wharf-e2e-runtime-")
    s = Server(d, agent=True, extra_args=["--default-runtime", "kata"])
    try:
        with pytest.raises(RuntimeError, match="exited with 1"):
            s.start(timeout=30)
        log = s.log.read_text()
        assert 'unknown --default-runtime "kata": this node\'s containerd has runc' in log, log
        # Nothing was started: no containerd directory.
        assert not (Path(d) / "agent" / "containerd").exists()
    finally:
        s.stop()
        shutil.rmtree(d, ignore_errors=True)
