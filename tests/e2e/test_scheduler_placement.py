"""The scheduler's placement rules that look at other pods (inter-pod
affinity and anti-affinity, topology spread), preemption by priority, and
leader election between two `wharf scheduler` processes, checked with the
real kubectl against `wharf server` and hollow nodes."""

import json
import os
import re
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import WHARF, Kubectl, Server, hollow_cluster, wait_for


@pytest.fixture(scope="module")
def cluster():
    """Three hollow nodes of 2 CPUs; hp-0 and hp-1 in zone a, hp-2 in zone b."""
    with hollow_cluster("placement", 3, "hp", "--cpu", "2", "--memory", "4Gi") as (s, k):
        for node, zone in (("hp-0", "a"), ("hp-1", "a"), ("hp-2", "b")):
            k("label", "node", node, f"topology.kubernetes.io/zone={zone}")
        yield k


def create(k, obj):
    k("create", "-f", "-", input=json.dumps(obj))


def namespace(k, name):
    create(k, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return name


def pod(name, ns, labels=None, cpu=None, **spec):
    container = {"name": "c", "image": "nginx"}
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu}}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": labels or {}},
            "spec": {"containers": [container], **spec}}


def pods(k, ns, selector):
    return k.json("get", "pods", "-n", ns, "-l", selector)["items"]


def node_of(k, ns, name):
    return k.json("get", "pod", "-n", ns, name).get("spec", {}).get("nodeName")


def unschedulable_message(k, ns, name):
    """The PodScheduled=False message, once there is one."""
    def get():
        conds = k.json("get", "pod", "-n", ns, name).get("status", {}).get("conditions", [])
        c = next((c for c in conds if c["type"] == "PodScheduled" and c["status"] == "False"), None)
        return c and c["message"]
    return wait_for(f"{name} unschedulable", get)


def term(app, key="kubernetes.io/hostname", **extra):
    return {"topologyKey": key, "labelSelector": {"matchLabels": {"app": app}}, **extra}


def test_required_anti_affinity_spreads_a_deployment_one_per_node(cluster):
    k = cluster
    ns = namespace(k, "anti")
    labels = {"app": "anti"}
    create(k, {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "anti", "namespace": ns},
               "spec": {"replicas": 3, "selector": {"matchLabels": labels},
                        "template": {"metadata": {"labels": labels}, "spec": {
                            "containers": [{"name": "c", "image": "nginx"}],
                            "affinity": {"podAntiAffinity": {
                                "requiredDuringSchedulingIgnoredDuringExecution": [term("anti")]}}}}}})
    bound = wait_for("3 replicas bound", lambda: (lambda ps: len(ps) == 3 and all(p["spec"].get("nodeName") for p in ps) and ps)(
        pods(k, ns, "app=anti")))
    assert sorted(p["spec"]["nodeName"] for p in bound) == ["hp-0", "hp-1", "hp-2"]
    k("scale", "deployment", "anti", "-n", ns, "--replicas=4")
    pending = wait_for("a 4th replica", lambda: next(
        (p for p in pods(k, ns, "app=anti") if not p["spec"].get("nodeName")), None))
    name = pending["metadata"]["name"]
    msg = unschedulable_message(k, ns, name)
    # Each node holds a replica whose anti-affinity selects the new one.
    assert msg.startswith("0/3 nodes are available: 3 node(s) didn't satisfy existing pods anti-affinity rules."), msg
    events = k("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name},reason=FailedScheduling")
    assert "didn't satisfy existing pods anti-affinity rules" in events
    # A pod of another app whose own anti-affinity rejects every node.
    create(k, pod("loner", ns, {"app": "loner"}, affinity={"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [term("anti", "topology.kubernetes.io/zone")]}}))
    msg = unschedulable_message(k, ns, "loner")
    assert msg.startswith("0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules."), msg
    k("delete", "namespace", ns, "--wait=false")


def test_required_affinity_colocates_and_lets_a_group_start(cluster):
    k = cluster
    ns = namespace(k, "aff")
    # Nothing selects app=db yet: a pod that needs one stays pending.
    create(k, pod("follower", ns, {"app": "web"}, affinity={"podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [term("db")]}}))
    msg = unschedulable_message(k, ns, "follower")
    assert msg.startswith("0/3 nodes are available: 3 node(s) didn't match pod affinity rules."), msg
    # The first pod of a group that selects itself may go anywhere...
    create(k, pod("db-0", ns, {"app": "db"}, affinity={"podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [term("db", "topology.kubernetes.io/zone")]}}))
    first = wait_for("db-0 bound", lambda: node_of(k, ns, "db-0"))
    zone = "b" if first == "hp-2" else "a"
    # ...and the rest of the group follows it into its zone.
    create(k, pod("db-1", ns, {"app": "db"}, affinity={"podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [term("db", "topology.kubernetes.io/zone")]}}))
    second = wait_for("db-1 bound", lambda: node_of(k, ns, "db-1"))
    assert ("b" if second == "hp-2" else "a") == zone
    # The waiting pod is retried once a match exists, onto db-0's node.
    assert wait_for("follower bound", lambda: node_of(k, ns, "follower"), timeout=40) in (first, second)
    # Terms only look at other namespaces when told to.
    other = namespace(k, "aff-other")
    create(k, pod("outsider", other, affinity={"podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [term("db")]}}))
    create(k, pod("invited", other, affinity={"podAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [term("db", namespaces=[ns])]}}))
    assert wait_for("invited bound", lambda: node_of(k, other, "invited")) in (first, second)
    assert "didn't match pod affinity rules" in unschedulable_message(k, other, "outsider")
    for n in (ns, other):
        k("delete", "namespace", n, "--wait=false")


def test_topology_spread_keeps_zones_within_max_skew(cluster):
    k = cluster
    ns = namespace(k, "spread")
    constraint = {"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone", "whenUnsatisfiable": "DoNotSchedule",
                  "labelSelector": {"matchLabels": {"app": "sp"}}, "nodeAffinityPolicy": "Ignore"}
    for i in range(4):
        create(k, pod(f"sp-{i}", ns, {"app": "sp"}, topologySpreadConstraints=[constraint]))
        wait_for(f"sp-{i} bound", lambda: node_of(k, ns, f"sp-{i}"))
    zones = sorted("b" if node_of(k, ns, f"sp-{i}") == "hp-2" else "a" for i in range(4))
    assert zones == ["a", "a", "b", "b"]
    # Zone b may get one more than zone a (skew 1), not two.
    pin = {"kubernetes.io/hostname": "hp-2"}
    create(k, pod("sp-b1", ns, {"app": "sp"}, nodeSelector=pin, topologySpreadConstraints=[constraint]))
    assert wait_for("sp-b1 bound", lambda: node_of(k, ns, "sp-b1")) == "hp-2"
    create(k, pod("sp-b2", ns, {"app": "sp"}, nodeSelector=pin, topologySpreadConstraints=[constraint]))
    msg = unschedulable_message(k, ns, "sp-b2")
    assert msg.startswith("0/3 nodes are available: 2 node(s) didn't match Pod's node affinity/selector, "
                          "1 node(s) didn't match pod topology spread constraints."), msg
    # ScheduleAnyway never keeps a pod out.
    soft = dict(constraint, whenUnsatisfiable="ScheduleAnyway")
    create(k, pod("sp-soft", ns, {"app": "sp"}, nodeSelector=pin, topologySpreadConstraints=[soft]))
    assert wait_for("sp-soft bound", lambda: node_of(k, ns, "sp-soft")) == "hp-2"
    k("delete", "namespace", ns, "--wait=false")


def test_a_high_priority_pod_preempts_a_low_priority_one(cluster):
    k = cluster
    ns = namespace(k, "prio")
    for name, value, policy in (("low", 10, None), ("high", 1000, None), ("high-polite", 1000, "Never")):
        pc = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": value}
        if policy:
            pc["preemptionPolicy"] = policy
        create(k, pc)
    # Fill every node: 1.5 of its 2 CPUs each.
    for i in range(3):
        create(k, pod(f"low-{i}", ns, cpu="1500m", priorityClassName="low"))
    for i in range(3):
        wait_for(f"low-{i} bound", lambda: node_of(k, ns, f"low-{i}"))
    # preemptionPolicy Never: waits instead of evicting.
    create(k, pod("polite", ns, cpu="1500m", priorityClassName="high-polite"))
    assert "3 Insufficient cpu" in unschedulable_message(k, ns, "polite")
    assert len(pods(k, ns, "!nothing")) == 4
    k("delete", "pod", "-n", ns, "polite")
    create(k, pod("vip", ns, cpu="1500m", priorityClassName="high"))
    node = wait_for("vip bound", lambda: node_of(k, ns, "vip"), timeout=40)
    left = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods(k, ns, "!nothing") if p["metadata"]["name"] != "vip"}
    assert len(left) == 2 and node not in left.values(), left
    events = k.json("get", "events", "-n", ns, "--field-selector", "reason=Preempted")["items"]
    assert len(events) == 1
    vip_uid = k.json("get", "pod", "-n", ns, "vip")["metadata"]["uid"]
    assert events[0]["message"] == f"Preempted by pod {vip_uid} on node {node}"
    assert events[0]["involvedObject"]["name"] not in left
    k("delete", "namespace", ns, "--wait=false")
    k("delete", "priorityclass", "low", "high", "high-polite")


def test_preemption_spares_pods_a_disruption_budget_protects(cluster):
    """Of two nodes whose pods could make room, preemption picks the one whose
    victim no PodDisruptionBudget protects, even though the protected pod
    has the lower priority (without budgets, it would be the victim)."""
    k = cluster
    ns = namespace(k, "pdb")
    for name, value in (("pdb-lowest", 5), ("pdb-low", 10), ("pdb-high", 1000)):
        create(k, {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
                   "metadata": {"name": name}, "value": value})
    # Fill every node: the protected pod, the unprotected one, and a third
    # (high priority, so never a victim) on the last node.
    create(k, pod("db", ns, labels={"app": "db"}, cpu="1500m", priorityClassName="pdb-lowest"))
    create(k, pod("web", ns, cpu="1500m", priorityClassName="pdb-low"))
    create(k, pod("keeper", ns, cpu="1500m", priorityClassName="pdb-high"))
    for name in ("db", "web", "keeper"):
        wait_for(f"{name} bound", lambda: node_of(k, ns, name))
    # No disruption controller computes the status yet: disruptionsAllowed
    # is 0, so evicting db would break the budget.
    create(k, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "db", "namespace": ns},
               "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "db"}}}})
    time.sleep(1)
    web_node = node_of(k, ns, "web")
    create(k, pod("vip", ns, cpu="1500m", priorityClassName="pdb-high"))
    node = wait_for("vip bound", lambda: node_of(k, ns, "vip"), timeout=40)
    assert node == web_node
    left = {p["metadata"]["name"] for p in pods(k, ns, "!nothing")}
    assert left == {"db", "keeper", "vip"}, left
    k("delete", "namespace", ns, "--wait=false")
    k("delete", "priorityclass", "pdb-lowest", "pdb-low", "pdb-high")


class Scheduler:
    """A `wharf scheduler` process this test started, with its own log."""

    def __init__(self, kubeconfig, log_path):
        self.log_path = log_path
        env = dict(os.environ, WHARF_LOG="info")
        self.proc = subprocess.Popen([WHARF, "scheduler", "--kubeconfig", str(kubeconfig)],
                                     stdout=open(log_path, "wb"), stderr=subprocess.STDOUT, env=env)

    def identity(self):
        text = re.sub(r"\x1b\[[0-9;]*m", "", open(self.log_path).read())
        m = re.search(r"campaigning for the leader lease.*identity=(\S+)", text)
        return m and m.group(1).strip('"')

    def log(self):
        return open(self.log_path).read()

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def test_leader_election_lets_exactly_one_scheduler_bind_and_fails_over():
    with tempfile.TemporaryDirectory(prefix="wharf-e2e-leader-") as d:
        s = Server(d, extra_args=["--disable-scheduler"]).start()
        k = Kubectl(s.kubeconfig)
        hollow = subprocess.Popen([WHARF, "hollow-nodes", "--count", "2", "--prefix", "hl",
                                   "--kubeconfig", str(s.kubeconfig)],
                                  stdout=open(f"{d}/hollow.log", "w"), stderr=subprocess.STDOUT)
        scheds = [Scheduler(s.kubeconfig, f"{d}/sched-{i}.log") for i in range(2)]
        try:
            wait_for("2 nodes", lambda: len(k.json("get", "nodes")["items"]) == 2)
            ids = [wait_for(f"scheduler {i} identity", sch.identity) for i, sch in enumerate(scheds)]
            assert ids[0] != ids[1]

            def holder():
                p = k.run("get", "lease", "-n", "kube-system", "kube-scheduler", "-o", "json", check=False)
                return p.returncode == 0 and json.loads(p.stdout)["spec"].get("holderIdentity")
            lease_holder = wait_for("a lease holder", holder)
            assert lease_holder in ids
            lease = k.json("get", "lease", "-n", "kube-system", "kube-scheduler")["spec"]
            assert lease["leaseDurationSeconds"] == 15
            leader = ids.index(lease_holder)
            assert re.fullmatch(r".+_[0-9a-f-]{36}", lease_holder)
            create(k, pod("first", "default"))
            assert wait_for("first bound", lambda: node_of(k, "default", "first"))
            follower_log = scheds[1 - leader].log()
            assert "became the leader" not in follower_log
            # Only the leader binds: exactly one Scheduled event.
            events = k.json("get", "events", "--field-selector", "involvedObject.name=first,reason=Scheduled")["items"]
            assert len(events) == 1
            # Kill the leader outright: the follower takes over once the
            # lease expires, and binds new pods.
            scheds[leader].stop(signal.SIGKILL)
            wait_for("the follower holds the lease", lambda: holder() == ids[1 - leader], timeout=45)
            create(k, pod("second", "default"))
            assert wait_for("second bound", lambda: node_of(k, "default", "second"), timeout=20)
            # A clean stop releases the lease at once (no holder, 1 s).
            scheds[1 - leader].stop()
            spec = k.json("get", "lease", "-n", "kube-system", "kube-scheduler")["spec"]
            assert not spec.get("holderIdentity") and spec["leaseDurationSeconds"] == 1, spec
        finally:
            for sch in scheds:
                sch.stop()
            hollow.terminate()
            hollow.wait(timeout=10)
            s.stop()


def test_preemption_evicts_the_pod_an_anti_affinity_rejects(cluster):
    k = cluster
    ns = namespace(k, "prio-anti")
    for name, value in (("aa-low", 10), ("aa-high", 1000)):
        create(k, {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": name}, "value": value})
    # One low-priority cache pod per node (their own anti-affinity spreads them).
    for i in range(3):
        create(k, pod(f"cache-{i}", ns, {"app": "cache"}, priorityClassName="aa-low", affinity={"podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [term("cache")]}}))
    for i in range(3):
        wait_for(f"cache-{i} bound", lambda: node_of(k, ns, f"cache-{i}"))
    # Resources fit everywhere; only anti-affinity rejects every node, and
    # evicting the cache pod on one node resolves it.
    create(k, pod("loner", ns, {"app": "loner"}, priorityClassName="aa-high", affinity={"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [term("cache")]}}))
    node = wait_for("loner bound", lambda: node_of(k, ns, "loner"), timeout=40)
    left = {p["metadata"]["name"]: p["spec"]["nodeName"] for p in pods(k, ns, "app=cache")}
    assert len(left) == 2 and node not in left.values(), left
    [event] = k.json("get", "events", "-n", ns, "--field-selector", "reason=Preempted")["items"]
    assert event["involvedObject"]["name"] not in left
    k("delete", "namespace", ns, "--wait=false")
    k("delete", "priorityclass", "aa-low", "aa-high")
