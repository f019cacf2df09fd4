"""A real node's pressure conditions: the kubelet reads the host's
available memory, its data directory's filesystem and the process IDs,
compares them with its hard eviction thresholds (`--eviction-hard`, upstream's
flag), and reports MemoryPressure, DiskPressure and PIDPressure; the node
lifecycle controller then taints the node, and the scheduler keeps new pods
off it.

The thresholds are set from what the test reads on the host just before, a
margin above what is available, so that the real readings cross them."""

import json
import os
import tempfile

from kubelet_node import kubelet_node, wait_for

NODE = "e2e-pressure"
GIB = 1 << 30


def thresholds():
    # The node's data directory is made in the temporary directory.
    fs = os.statvfs(tempfile.gettempdir())
    with open("/proc/meminfo") as f:
        mem = {line.split(":")[0]: int(line.split()[1]) * 1024 for line in f}
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    return ",".join([
        f"memory.available<{mem['MemTotal'] + GIB}",
        f"nodefs.available<{fs.f_bavail * fs.f_frsize + 10 * GIB}",
        f"pid.available<{pid_max}",
    ])


def test_pressure_conditions_follow_the_host_and_taint_the_node():
    with kubelet_node(NODE, extra_args=["--eviction-hard", thresholds()], import_image=False) as (_, k, _):
        def node():
            return json.loads(k("get", "node", NODE, "-o", "json"))
        conds = wait_for("the pressure conditions", lambda: (lambda c: c if all(
            c.get(t, {}).get("status") == "True" for t in ("MemoryPressure", "DiskPressure", "PIDPressure"))
            else None)({c["type"]: c for c in node()["status"]["conditions"]}), timeout=30)
        assert (conds["MemoryPressure"]["reason"], conds["MemoryPressure"]["message"]) == (
            "KubeletHasInsufficientMemory", "kubelet has insufficient memory available")
        assert (conds["DiskPressure"]["reason"], conds["DiskPressure"]["message"]) == (
            "KubeletHasDiskPressure", "kubelet has disk pressure")
        assert (conds["PIDPressure"]["reason"], conds["PIDPressure"]["message"]) == (
            "KubeletHasInsufficientPID", "kubelet has insufficient PID available")
        # Pressure is not unreadiness.
        assert conds["Ready"]["status"] == "True"
        taints = wait_for("the pressure taints", lambda: (lambda t: t if {
            "node.kubernetes.io/memory-pressure", "node.kubernetes.io/disk-pressure",
            "node.kubernetes.io/pid-pressure"} <= {x["key"] for x in t} else None)(
            node()["spec"].get("taints", [])), timeout=30)
        assert all(t["effect"] == "NoSchedule" for t in taints), taints
        # A pod that tolerates none of them is not scheduled.
        k("run", "kept-off", "--image=localhost/none:1", "--image-pull-policy=Never")
        ev = wait_for("FailedScheduling", lambda: next((e for e in json.loads(k(
            "get", "events", "--field-selector", "involvedObject.name=kept-off", "-o", "json"))["items"]
            if e["reason"] == "FailedScheduling"), None), timeout=30)
        assert "node.kubernetes.io/" in ev["message"] and "pressure" in ev["message"], ev["message"]
        assert not json.loads(k("get", "pod", "kept-off", "-o", "json"))["spec"].get("nodeName")
