"""Hollow nodes (`wharf hollow-nodes`): simulated kubelets that register
Nodes, renew Leases, take bound pods to Running and finish their deletion."""

import ipaddress
import json
import subprocess
import time

import pytest

from conftest import WHARF, wait_for


@pytest.fixture
def hollow(server, kubectl, request):
    """Start `wharf hollow-nodes` with a prefix of its own; stop it by PID,
    then delete its nodes, so the scheduler does not place other tests' pods
    on nodes nobody runs."""
    procs = []
    prefixes = set()

    def start(count, prefix, *extra):
        prefixes.add(prefix)
        log = open(server.data_dir / f"hollow-{prefix}.log", "w")
        p = subprocess.Popen(
            [WHARF, "hollow-nodes", "--count", str(count), "--prefix", prefix,
             "--kubeconfig", str(server.kubeconfig), *extra],
            stdout=log, stderr=subprocess.STDOUT)
        procs.append(p)
        return p

    yield start
    for p in procs:
        if p.poll() is None:
            p.terminate()
            p.wait(timeout=10)
    for prefix in prefixes:
        kubectl("delete", "nodes", "-l", f"hollow.wharf.dev/prefix={prefix}")



def pod_manifest(name, node, annotations=None, restart="Always", host_network=False):
    return json.dumps({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {"nodeName": node, "restartPolicy": restart, "hostNetwork": host_network,
                 "containers": [{"name": "app", "image": "nginx:1.27"}]},
    })


def test_nodes_register_renew_leases_and_run_pods(kubectl, namespace, hollow):
    hollow(3, "hn", "--renew-interval-seconds", "1")
    nodes = wait_for("3 ready hollow nodes", lambda: (lambda items: items if len(items) == 3 else None)(
        kubectl.json("get", "nodes", "-l", "hollow.wharf.dev/prefix=hn")["items"]))
    for n in nodes:
        ready = [c for c in n["status"]["conditions"] if c["type"] == "Ready"][0]
        assert ready["status"] == "True"
        assert n["status"]["allocatable"]["pods"] == "110"
        assert n["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.")
    # Leases are renewed.
    first = kubectl.json("get", "lease", "-n", "kube-node-lease", "hn-0")["spec"]["renewTime"]
    wait_for("a lease renewal", lambda: kubectl.json(
        "get", "lease", "-n", "kube-node-lease", "hn-0")["spec"]["renewTime"] != first, timeout=10)
    # `kubectl get nodes` shows them Ready.
    out = kubectl("get", "nodes", "-l", "hollow.wharf.dev/prefix=hn")
    assert out.count(" Ready ") == 3, out

    # A bound pod runs, gets an IP on its node's range, and is Ready.
    kubectl("apply", "-n", namespace, "-f", "-", input=pod_manifest("web", "hn-1"))
    pod = wait_for("web Running", lambda: (lambda p: p if p.get("status", {}).get("phase") == "Running" else None)(
        kubectl.json("get", "pod", "-n", namespace, "web")))
    assert pod["status"]["hostIP"] == "172.16.0.2"
    # The node's podCIDR comes from the node IPAM controller (10.42.0.0/16).
    node = kubectl.json("get", "node", "hn-1")
    cidr = ipaddress.ip_network(node["spec"]["podCIDR"])
    assert cidr.subnet_of(ipaddress.ip_network("10.42.0.0/16")), cidr
    assert ipaddress.ip_address(pod["status"]["podIP"]) in cidr, (pod["status"]["podIP"], cidr)
    assert pod["status"]["containerStatuses"][0]["ready"] is True
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "pod/web", "--timeout=20s")
    assert "1/1     Running" in kubectl("get", "pod", "-n", namespace, "web")

    # Readiness follows the control annotation.
    kubectl("annotate", "-n", namespace, "pod", "web", "hollow.wharf.dev/ready=false")
    kubectl("wait", "-n", namespace, "--for=condition=Ready=false", "pod/web", "--timeout=20s")

    # Failures: Never → Failed with the exit code; Always → CrashLoopBackOff.
    kubectl("apply", "-n", namespace, "-f", "-", input=pod_manifest(
        "job", "hn-2", {"hollow.wharf.dev/exit-code": "3"}, restart="Never"))
    kubectl("apply", "-n", namespace, "-f", "-", input=pod_manifest(
        "crash", "hn-2", {"hollow.wharf.dev/exit-code": "1"}))
    wait_for("job Failed", lambda: kubectl.json("get", "pod", "-n", namespace, "job").get("status", {}).get("phase") == "Failed")
    wait_for("crash looping", lambda: "CrashLoopBackOff" in kubectl("get", "pod", "-n", namespace, "crash"))

    # Deletion is finished by the node: `kubectl delete` returns once it is gone.
    kubectl("delete", "-n", namespace, "pod", "web", "--timeout=20s")
    assert kubectl.run("get", "pod", "-n", namespace, "web", check=False).returncode != 0


def test_unresponsive_nodes_stop_renewing_and_ignore_pods(kubectl, namespace, hollow):
    hollow(2, "hu", "--unresponsive", "1", "--renew-interval-seconds", "1")
    wait_for("2 hollow nodes", lambda: len(kubectl.json("get", "nodes", "-l", "hollow.wharf.dev/prefix=hu")["items"]) == 2)
    # hu-0 is hung from the start: its lease does not move, its pods stay Pending.
    t0 = kubectl.json("get", "lease", "-n", "kube-node-lease", "hu-0")["spec"]["renewTime"]
    kubectl("apply", "-n", namespace, "-f", "-", input=pod_manifest("stuck", "hu-0"))
    time.sleep(3)
    assert kubectl.json("get", "lease", "-n", "kube-node-lease", "hu-0")["spec"]["renewTime"] == t0
    assert kubectl.json("get", "pod", "-n", namespace, "stuck").get("status", {}).get("phase") in (None, "Pending")
    # The label hangs a live node at run time.
    t1 = kubectl.json("get", "lease", "-n", "kube-node-lease", "hu-1")["spec"]["renewTime"]
    wait_for("hu-1 renewing", lambda: kubectl.json("get", "lease", "-n", "kube-node-lease", "hu-1")["spec"]["renewTime"] != t1, timeout=10)
    kubectl("label", "node", "hu-1", "hollow.wharf.dev/unresponsive=true")
    time.sleep(1.5)
    t2 = kubectl.json("get", "lease", "-n", "kube-node-lease", "hu-1")["spec"]["renewTime"]
    time.sleep(3)
    assert kubectl.json("get", "lease", "-n", "kube-node-lease", "hu-1")["spec"]["renewTime"] == t2


def test_restart_keeps_pod_addresses(kubectl, namespace, hollow):
    p = hollow(1, "hr")
    kubectl("apply", "-n", namespace, "-f", "-", input=pod_manifest("keep", "hr-0"))
    ip = wait_for("an IP", lambda: kubectl.json("get", "pod", "-n", namespace, "keep").get("status", {}).get("podIP"))
    p.terminate()
    p.wait(timeout=10)
    hollow(1, "hr")
    kubectl("apply", "-n", namespace, "-f", "-", input=pod_manifest("second", "hr-0"))
    ip2 = wait_for("an IP", lambda: kubectl.json("get", "pod", "-n", namespace, "second").get("status", {}).get("podIP"))
    assert ip2 != ip
    assert kubectl.json("get", "pod", "-n", namespace, "keep")["status"]["podIP"] == ip
