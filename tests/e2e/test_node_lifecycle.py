"""The node lifecycle controller, taint eviction and node IPAM, against hollow
nodes with shortened timings: silent nodes become Unknown, get the
unreachable taints, their pods are evicted after their tolerationSeconds and
replaced on live nodes; nodes get distinct podCIDRs from the cluster CIDR."""

import json
import time
from datetime import datetime

from conftest import hollow_cluster, wait_for

FAST = ["--node-monitor-period", "500ms", "--node-monitor-grace-period", "3s",
        "--node-eviction-rate", "100"]
UNRESPONSIVE = "hollow.wharf.dev/unresponsive"


def ts(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").timestamp()


def condition(node, t):
    return next((c for c in node["status"].get("conditions", []) if c["type"] == t), None)


def taints(node):
    return {(t["key"], t["effect"]): t for t in node["spec"].get("taints", [])}


def deployment(name, replicas, toleration_seconds):
    tol = [{"key": k, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": toleration_seconds}
           for k in ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")]
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"tolerations": tol,
                                       "containers": [{"name": "app", "image": "nginx:1.27"}]}}},
    })


def test_silent_nodes_are_tainted_and_their_pods_replaced_on_live_nodes():
    with hollow_cluster("nodelc", 4, "nl", "--renew-interval-seconds", "1", "--status-interval-seconds", "2",
                        server_args=FAST) as (s, k):
        k("create", "namespace", "lc")
        k("apply", "-n", "lc", "-f", "-", input=deployment("web", 8, 2))
        # A pod that tolerates unreachable for ever stays bound to its node.
        k("apply", "-n", "lc", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "stay"},
            "spec": {"nodeName": "nl-1",
                     "tolerations": [{"key": "node.kubernetes.io/unreachable", "operator": "Exists"}],
                     "containers": [{"name": "app", "image": "nginx:1.27"}]}}))
        k("rollout", "status", "-n", "lc", "deployment/web", "--timeout=60s")
        pods = k.json("get", "pods", "-n", "lc", "-l", "app=web")["items"]
        doomed = {p["metadata"]["name"] for p in pods if p["spec"]["nodeName"] in ("nl-0", "nl-1")}
        assert doomed, "the scheduler spread the pods over the nodes"

        for n in ("nl-0", "nl-1"):
            k("label", "node", n, f"{UNRESPONSIVE}=true")

        # Ready goes Unknown with upstream's reason, then the taints follow.
        def unknown():
            n = k.json("get", "node", "nl-0")
            r = condition(n, "Ready")
            return n if r["status"] == "Unknown" and taints(n).get(("node.kubernetes.io/unreachable", "NoExecute")) else None
        node = wait_for("nl-0 Unknown and tainted", unknown, timeout=30)
        ready = condition(node, "Ready")
        assert ready["reason"] == "NodeStatusUnknown"
        assert ready["message"] == "Kubelet stopped posting node status."
        assert all(condition(node, t)["status"] == "Unknown" for t in ("MemoryPressure", "DiskPressure", "PIDPressure"))
        t = taints(node)
        assert ("node.kubernetes.io/unreachable", "NoSchedule") in t
        added = ts(t[("node.kubernetes.io/unreachable", "NoExecute")]["timeAdded"])
        rows = {line.split()[0]: line.split()[1] for line in k("get", "nodes").splitlines()[1:]}
        assert rows["nl-0"] == "NotReady" and rows["nl-2"] == "Ready", rows
        # The live nodes stay untouched.
        assert condition(k.json("get", "node", "nl-2"), "Ready")["status"] == "True"
        assert not k.json("get", "node", "nl-2")["spec"].get("taints")
        wait_for("the NodeNotReady event", lambda: any(
            e["reason"] == "NodeNotReady" and e["involvedObject"]["name"] == "nl-0"
            for e in k.json("get", "events", "-n", "default")["items"]), timeout=20)

        # The pods on the silent nodes are evicted once their 2 s pass...
        def evicted():
            ps = {p["metadata"]["name"]: p for p in k.json("get", "pods", "-n", "lc")["items"]}
            gone = [ps.get(n) for n in doomed]
            return gone if all(p is None or p["metadata"].get("deletionTimestamp") for p in gone) else None
        gone = wait_for("evictions", evicted, timeout=30)
        for p in gone:
            if p is None:
                continue
            assert ts(p["metadata"]["deletionTimestamp"]) - p["metadata"].get("deletionGracePeriodSeconds", 0) >= added + 1
            dt = condition(p, "DisruptionTarget")
            assert dt and dt["reason"] == "DeletionByTaintManager", p["status"]
        # ...and replaced on the live nodes.
        def settled():
            ps = [p for p in k.json("get", "pods", "-n", "lc", "-l", "app=web")["items"]
                  if not p["metadata"].get("deletionTimestamp")]
            ok = len(ps) == 8 and all(p["status"].get("phase") == "Running" and p["spec"].get("nodeName") in ("nl-2", "nl-3")
                                     for p in ps)
            return ps if ok else None
        wait_for("8 pods Running on live nodes", settled, timeout=60)
        wait_for("the Deployment available", lambda: k.json("get", "deployment", "-n", "lc", "web")["status"].get("availableReplicas") == 8, timeout=30)
        stay = k.json("get", "pod", "-n", "lc", "stay")
        assert not stay["metadata"].get("deletionTimestamp"), "tolerated for ever"

        # nl-0 comes back: Ready again, taints removed.
        k("label", "node", "nl-0", f"{UNRESPONSIVE}-")
        def recovered():
            n = k.json("get", "node", "nl-0")
            return condition(n, "Ready")["status"] == "True" and not n["spec"].get("taints")
        wait_for("nl-0 Ready without taints", recovered, timeout=30)
        assert taints(k.json("get", "node", "nl-1")), "nl-1 is still silent"


def test_nodes_get_distinct_pod_cidrs_and_freed_ones_are_reused():
    with hollow_cluster("ipam", 2, "ip", server_args=["--cluster-cidr", "10.44.0.0/22"]) as (s, k):
        def cidrs():
            items = k.json("get", "nodes")["items"]
            got = {n["metadata"]["name"]: n["spec"].get("podCIDR") for n in items}
            return got if all(got.values()) else None
        got = wait_for("podCIDRs", cidrs)
        assert len(set(got.values())) == 2
        assert set(got.values()) <= {f"10.44.{i}.0/24" for i in range(4)}
        n = k.json("get", "node", "ip-0")
        assert n["spec"]["podCIDRs"] == [n["spec"]["podCIDR"]]

        def node(name):
            return json.dumps({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}})
        for name in ("extra-a", "extra-b"):
            k("create", "-f", "-", input=node(name))
        got = wait_for("four podCIDRs", lambda: (lambda g: g if len(g) == 4 and all(g.values()) else None)(
            {n["metadata"]["name"]: n["spec"].get("podCIDR") for n in k.json("get", "nodes")["items"]}))
        assert sorted(got.values()) == [f"10.44.{i}.0/24" for i in range(4)]

        # The range is exhausted: the next node gets an event, not a CIDR.
        k("create", "-f", "-", input=node("extra-c"))
        wait_for("CIDRNotAvailable", lambda: any(
            e["reason"] == "CIDRNotAvailable" and e["involvedObject"]["name"] == "extra-c"
            for e in k.json("get", "events", "-n", "default")["items"]))
        assert not k.json("get", "node", "extra-c").get("spec", {}).get("podCIDR")

        # A deleted node's CIDR goes to the waiting node.
        freed = got["extra-a"]
        k("delete", "node", "extra-a")
        wait_for("extra-c gets the freed CIDR",
                 lambda: k.json("get", "node", "extra-c").get("spec", {}).get("podCIDR") == freed)
        # The server's logs show no crash loop: the controller manager is alive.
        time.sleep(0.5)
        assert s.proc.poll() is None


def test_a_not_ready_node_gets_the_not_ready_taints_until_it_recovers():
    with hollow_cluster("notready", 2, "nr", "--renew-interval-seconds", "1", server_args=FAST) as (s, k):
        k("create", "namespace", "nr")
        k("apply", "-n", "nr", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "short"},
            "spec": {"nodeName": "nr-1",
                     "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists",
                                      "effect": "NoExecute", "tolerationSeconds": 1}],
                     "containers": [{"name": "app", "image": "nginx:1.27"}]}}))
        wait_for("short Running", lambda: k.json("get", "pod", "-n", "nr", "short").get("status", {}).get("phase") == "Running")
        k("label", "node", "nr-1", "hollow.wharf.dev/not-ready=true")

        def tainted():
            n = k.json("get", "node", "nr-1")
            t = taints(n)
            ok = (condition(n, "Ready")["status"] == "False"
                  and ("node.kubernetes.io/not-ready", "NoSchedule") in t
                  and ("node.kubernetes.io/not-ready", "NoExecute") in t)
            return n if ok else None
        n = wait_for("nr-1 tainted not-ready", tainted, timeout=20)
        assert condition(n, "Ready")["reason"] == "KubeletNotReady", "the kubelet's own condition stays"
        assert ("node.kubernetes.io/unreachable", "NoExecute") not in taints(n)
        # The Lease is still renewed, so the other conditions stay the kubelet's.
        assert condition(n, "MemoryPressure")["status"] == "False"
        wait_for("short evicted", lambda: (lambda p: p.get("metadata", {}).get("deletionTimestamp") or "NotFound" in p.get("err", ""))(
            (lambda r: json.loads(r.stdout) if r.returncode == 0 else {"err": r.stderr})(
                k.run("get", "pod", "-n", "nr", "short", "-o", "json", check=False))), timeout=20)
        assert not taints(k.json("get", "node", "nr-0"))

        k("label", "node", "nr-1", "hollow.wharf.dev/not-ready-")
        wait_for("nr-1 Ready without taints", lambda: (lambda n: condition(n, "Ready")["status"] == "True"
                                                         and not n["spec"].get("taints"))(k.json("get", "node", "nr-1")),
                 timeout=20)
