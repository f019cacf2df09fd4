"""The scheduler places pending pods onto (hollow) nodes through pods/binding,
and explains why a pod fits nowhere, in upstream's words."""

import json
import time

import pytest

from conftest import hollow_cluster, wait_for



@pytest.fixture(scope="module")
def cluster():
    """A server of its own with three hollow nodes, so node counts are exact."""
    with hollow_cluster("sched", 3, "hs", "--cpu", "2", "--memory", "4Gi") as (s, k):
        k("label", "node", "hs-0", "disk=ssd")
        k("taint", "node", "hs-2", "dedicated=gpu:NoSchedule")
        yield k


def pod(name, **spec):
    body = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "nginx", **spec.pop("container", {})}], **spec}}
    return json.dumps(body)


def node_of(k, name):
    return k.json("get", "pod", name).get("spec", {}).get("nodeName")


def test_pods_are_bound_and_run(cluster):
    k = cluster
    k("create", "-f", "-", input=pod("plain"))
    wait_for("plain Running", lambda: k.json("get", "pod", "plain").get("status", {}).get("phase") == "Running")
    assert node_of(k, "plain") in ("hs-0", "hs-1")  # hs-2 is tainted
    events = k("get", "events", "--field-selector", "involvedObject.name=plain,reason=Scheduled")
    assert "Successfully assigned default/plain to hs-" in events


def test_selector_taints_and_tolerations(cluster):
    k = cluster
    k("create", "-f", "-", input=pod("ssd", nodeSelector={"disk": "ssd"}))
    k("create", "-f", "-", input=pod("gpu", nodeSelector={"kubernetes.io/hostname": "hs-2"},
                                     tolerations=[{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]))
    wait_for("ssd bound", lambda: node_of(k, "ssd"))
    wait_for("gpu bound", lambda: node_of(k, "gpu"))
    assert node_of(k, "ssd") == "hs-0"
    assert node_of(k, "gpu") == "hs-2"


def test_unschedulable_pods_say_why_and_are_retried_on_change(cluster):
    k = cluster
    k("create", "-f", "-", input=pod("huge", container={"resources": {"requests": {"cpu": "3"}}}))
    cond = wait_for("PodScheduled=False", lambda: next(
        (c for c in k.json("get", "pod", "huge").get("status", {}).get("conditions", []) if c["type"] == "PodScheduled"), None))
    assert cond["status"] == "False" and cond["reason"] == "Unschedulable"
    assert cond["message"] == ("0/3 nodes are available: 2 Insufficient cpu, "
                               "1 node(s) had untolerated taint {dedicated: gpu}.")
    assert "FailedScheduling" in k("get", "events", "--field-selector", "involvedObject.name=huge")
    # A pod that only fits on hs-1 once the selector's label appears there.
    k("create", "-f", "-", input=pod("waiting", nodeSelector={"pool": "late"}))
    time.sleep(1)
    assert node_of(k, "waiting") is None
    k("label", "node", "hs-1", "pool=late")
    wait_for("waiting bound after the label", lambda: node_of(k, "waiting") == "hs-1", timeout=20)
    assert node_of(k, "huge") is None


def test_pods_created_while_the_scheduler_is_down_are_bound_when_it_returns():
    """Pods wait unbound while no scheduler runs, and a scheduler that starts
    (or comes back) binds them within seconds: it lists what is pending."""
    import subprocess

    from conftest import WHARF
    with hollow_cluster("sched-down", 2, "sd", server_args=["--disable-scheduler"]) as (s, k):
        k("create", "deployment", "web", "--image=nginx:1.27", "--replicas=6")
        wait_for("6 pods created", lambda: len(k.json("get", "pods", "-l", "app=web")["items"]) == 6)
        time.sleep(2)
        pods = k.json("get", "pods", "-l", "app=web")["items"]
        assert all(not p["spec"].get("nodeName") for p in pods), "bound with no scheduler running"
        log = open(s.data_dir / "scheduler.log", "ab")
        sched = subprocess.Popen([WHARF, "scheduler", "--kubeconfig", str(s.kubeconfig)],
                                 stdout=log, stderr=subprocess.STDOUT)
        try:
            started = time.time()
            wait_for("all 6 bound", lambda: all(
                p["spec"].get("nodeName") for p in k.json("get", "pods", "-l", "app=web")["items"]), timeout=20)
            assert time.time() - started < 10
            k("rollout", "status", "deployment/web", "--timeout=30s", timeout=40)
        finally:
            sched.terminate()
            sched.wait(timeout=10)
            log.close()
