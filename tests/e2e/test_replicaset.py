"""The ReplicaSet and ReplicationController controllers, on hollow nodes so
pods get scheduled and become Running and Ready: replica counts, status,
scaling in upstream's deletion order, replacement, adoption and release."""

import json

import pytest

from conftest import hollow_cluster, wait_for

WAIT = 20


@pytest.fixture(scope="module")
def cluster():
    """A server of its own with three hollow nodes."""
    with hollow_cluster("rs", 3, "hrs") as (s, k):
        yield k


@pytest.fixture
def ns(cluster, request):
    name = "rs-" + request.node.name.lower().replace("_", "-")[5:45].strip("-")
    cluster("create", "namespace", name)
    return name


def replicaset(name, replicas, labels=None, min_ready=0, spec_extra=None):
    labels = labels or {"app": name}
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
        "spec": {"replicas": replicas, "minReadySeconds": min_ready,
                 "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}],
                                       **(spec_extra or {})}}},
    })


def pods(k, ns, active_only=True):
    items = k.json("get", "pods", "-n", ns)["items"]
    if active_only:
        items = [p for p in items if not p["metadata"].get("deletionTimestamp")
                 and p.get("status", {}).get("phase") not in ("Succeeded", "Failed")]
    return items


def controlled_by(k, ns, uid):
    return [p for p in pods(k, ns) if any(
        r.get("controller") and r["uid"] == uid for r in p["metadata"].get("ownerReferences", []))]


def ready(p):
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in p.get("status", {}).get("conditions", []))


def status_is(k, ns, kind, name, **want):
    """The object if its status has all of `want` (and the spec's generation
    was observed), else None."""
    o = k.json("get", kind, name, "-n", ns)
    st = o.get("status", {})
    if st.get("observedGeneration") != o["metadata"]["generation"]:
        return None
    return o if all(st.get(f, 0) == v for f, v in want.items()) else None


def events(k, ns, name, reason):
    items = k.json("get", "events", "-n", ns, "--field-selector",
                   f"involvedObject.name={name},reason={reason}")["items"]
    return [e["message"] for e in items]


def test_replicaset_reaches_ready_and_available(cluster, ns):
    k = cluster
    k("create", "-n", ns, "-f", "-", input=replicaset("web", 5, min_ready=2))
    rs = wait_for("5 ready and available", lambda: status_is(
        k, ns, "rs", "web", replicas=5, fullyLabeledReplicas=5, readyReplicas=5, availableReplicas=5),
        timeout=WAIT)
    uid = rs["metadata"]["uid"]
    owned = controlled_by(k, ns, uid)
    assert len(owned) == 5
    for p in owned:
        assert p["metadata"]["name"].startswith("web-")
        ref = p["metadata"]["ownerReferences"][0]
        assert ref == {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web", "uid": uid,
                       "controller": True, "blockOwnerDeletion": True}
        assert p["spec"]["nodeName"].startswith("hrs-")
    assert rs["status"].get("terminatingReplicas", 0) == 0
    created = events(k, ns, "web", "SuccessfulCreate")
    assert sorted(created) == sorted(f"Created pod: {p['metadata']['name']}" for p in owned)
    # kubectl's columns come from the status.
    row = k("get", "rs", "web", "-n", ns, "--no-headers").split()
    assert row[1:4] == ["5", "5", "5"]
    described = k("describe", "rs", "web", "-n", ns)
    assert "5 current / 5 desired" in described
    assert "5 Running / 0 Waiting / 0 Succeeded / 0 Failed" in described
    assert "SuccessfulCreate" in described and "replicaset-controller" in described


def test_available_waits_for_min_ready_seconds(cluster, ns):
    k = cluster
    k("create", "-n", ns, "-f", "-", input=replicaset("slow", 2, min_ready=3600))
    rs = wait_for("2 ready", lambda: status_is(k, ns, "rs", "slow", replicas=2, readyReplicas=2), timeout=WAIT)
    assert rs["status"].get("availableReplicas", 0) == 0
    # Lowered, the pods (ready for a few seconds by now) become available.
    k("patch", "rs", "slow", "-n", ns, "--type", "merge", "-p", '{"spec":{"minReadySeconds":1}}')
    wait_for("2 available", lambda: status_is(k, ns, "rs", "slow", availableReplicas=2), timeout=WAIT)


def test_scale_down_deletes_unscheduled_and_not_ready_pods_first(cluster, ns):
    k = cluster
    k("create", "-n", ns, "-f", "-", input=replicaset("scaler", 3))
    rs = wait_for("3 ready", lambda: status_is(k, ns, "rs", "scaler", replicas=3, readyReplicas=3),
                  timeout=WAIT)
    uid = rs["metadata"]["uid"]
    first = sorted(p["metadata"]["name"] for p in controlled_by(k, ns, uid))
    # One running pod stops being ready (the hollow kubelet's test control).
    sick = first[1]
    k("annotate", "pod", sick, "-n", ns, "hollow.wharf.dev/ready=false")
    wait_for("readyReplicas 2", lambda: status_is(k, ns, "rs", "scaler", replicas=3, readyReplicas=2),
             timeout=WAIT)
    # New pods from here on fit no node.
    k("patch", "rs", "scaler", "-n", ns, "--type", "merge", "-p",
      json.dumps({"spec": {"template": {"spec": {"nodeSelector": {"wharf.dev/pool": "nowhere"}}}}}))
    k("scale", "rs", "scaler", "-n", ns, "--replicas=5")
    wait_for("5 replicas", lambda: status_is(k, ns, "rs", "scaler", replicas=5, readyReplicas=2),
             timeout=WAIT)
    unscheduled = sorted(p["metadata"]["name"] for p in controlled_by(k, ns, uid)
                         if not p["spec"].get("nodeName"))
    assert len(unscheduled) == 2
    # Down to 2: the two unscheduled go first, then the one not ready.
    k("scale", "rs", "scaler", "-n", ns, "--replicas=2")
    wait_for("2 replicas", lambda: status_is(k, ns, "rs", "scaler", replicas=2, readyReplicas=2),
             timeout=WAIT)
    left = sorted(p["metadata"]["name"] for p in controlled_by(k, ns, uid))
    assert left == [n for n in first if n != sick]
    deleted = events(k, ns, "scaler", "SuccessfulDelete")
    assert sorted(deleted) == sorted(f"Deleted pod: {n}" for n in unscheduled + [sick])
    # And up again.
    k("patch", "rs", "scaler", "-n", ns, "--type", "json", "-p",
      json.dumps([{"op": "remove", "path": "/spec/template/spec/nodeSelector"}]))
    k("scale", "rs", "scaler", "-n", ns, "--replicas=4")
    wait_for("4 ready", lambda: status_is(k, ns, "rs", "scaler", replicas=4, readyReplicas=4),
             timeout=WAIT)


def test_a_deleted_pod_is_replaced(cluster, ns):
    k = cluster
    k("create", "-n", ns, "-f", "-", input=replicaset("keeper", 2))
    rs = wait_for("2 ready", lambda: status_is(k, ns, "rs", "keeper", replicas=2, readyReplicas=2),
                  timeout=WAIT)
    uid = rs["metadata"]["uid"]
    before = {p["metadata"]["name"] for p in controlled_by(k, ns, uid)}
    victim = sorted(before)[0]
    k("delete", "pod", victim, "-n", ns, "--wait=false")
    after = wait_for("a replacement", lambda: (lambda now: now if len(now) == 2 and victim not in now else None)(
        {p["metadata"]["name"] for p in controlled_by(k, ns, uid)}), timeout=WAIT)
    assert len(after - before) == 1
    wait_for("2 ready again", lambda: status_is(k, ns, "rs", "keeper", replicas=2, readyReplicas=2),
             timeout=WAIT)


def bare_pod(name, labels, owner=None):
    meta = {"name": name, "labels": labels}
    if owner:
        meta["ownerReferences"] = [owner]
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                       "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}})


def test_orphans_are_adopted_and_other_controllers_pods_are_not(cluster, ns):
    k = cluster
    labels = {"app": "adopter"}
    # A matching orphan before the ReplicaSet exists.
    k("create", "-n", ns, "-f", "-", input=bare_pod("early", labels))
    # A matching pod that another controller owns.
    k("create", "configmap", "boss", "-n", ns)
    boss = k.json("get", "configmap", "boss", "-n", ns)["metadata"]["uid"]
    k("create", "-n", ns, "-f", "-", input=bare_pod("taken", labels, {
        "apiVersion": "v1", "kind": "ConfigMap", "name": "boss", "uid": boss, "controller": True}))
    k("create", "-n", ns, "-f", "-", input=replicaset("adopter", 2))
    rs = wait_for("2 ready", lambda: status_is(k, ns, "rs", "adopter", replicas=2, readyReplicas=2),
                  timeout=WAIT)
    uid = rs["metadata"]["uid"]
    owned = {p["metadata"]["name"] for p in controlled_by(k, ns, uid)}
    assert "early" in owned and "taken" not in owned and len(owned) == 2
    ref = k.json("get", "pod", "early", "-n", ns)["metadata"]["ownerReferences"]
    assert ref == [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "adopter", "uid": uid,
                    "controller": True, "blockOwnerDeletion": True}]
    assert k.json("get", "pod", "taken", "-n", ns)["metadata"]["ownerReferences"][0]["uid"] == boss
    # A late orphan is adopted too; the ReplicaSet then has one too many and
    # deletes the newest, not ready one (the orphan).
    k("create", "-n", ns, "-f", "-", input=bare_pod("late", labels))
    wait_for("late deleted", lambda: "Deleted pod: late" in events(k, ns, "adopter", "SuccessfulDelete"),
             timeout=WAIT)
    wait_for("back to 2", lambda: status_is(k, ns, "rs", "adopter", replicas=2, readyReplicas=2),
             timeout=WAIT)
    assert {p["metadata"]["name"] for p in controlled_by(k, ns, uid)} == owned


def test_a_relabelled_pod_is_released_and_replaced(cluster, ns):
    k = cluster
    k("create", "-n", ns, "-f", "-", input=replicaset("releaser", 2))
    rs = wait_for("2 ready", lambda: status_is(k, ns, "rs", "releaser", replicas=2, readyReplicas=2),
                  timeout=WAIT)
    uid = rs["metadata"]["uid"]
    pod = sorted(p["metadata"]["name"] for p in controlled_by(k, ns, uid))[0]
    k("label", "pod", pod, "-n", ns, "app=elsewhere", "--overwrite")
    wait_for("released", lambda: not k.json("get", "pod", pod, "-n", ns)["metadata"].get("ownerReferences"),
             timeout=WAIT)
    wait_for("replaced", lambda: len(controlled_by(k, ns, uid)) == 2
             and pod not in {p["metadata"]["name"] for p in controlled_by(k, ns, uid)}, timeout=WAIT)
    # The released pod keeps running on its own.
    assert k.json("get", "pod", pod, "-n", ns)["status"]["phase"] == "Running"
    # Labelled back, it is adopted again, and one of the three goes.
    k("label", "pod", pod, "-n", ns, "app=releaser", "--overwrite")
    wait_for("one deleted", lambda: events(k, ns, "releaser", "SuccessfulDelete"), timeout=WAIT)
    wait_for("back to 2", lambda: status_is(k, ns, "rs", "releaser", replicas=2, readyReplicas=2),
             timeout=WAIT)
    # No orphan is left: whichever pod went, the other was adopted.
    wait_for("2 pods in all", lambda: len(pods(k, ns)) == 2, timeout=WAIT)
    assert len(controlled_by(k, ns, uid)) == 2


def test_replication_controller(cluster, ns):
    k = cluster
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "legacy"},
          "spec": {"replicas": 3, "selector": {"app": "legacy"},
                   "template": {"metadata": {"labels": {"app": "legacy"}},
                                "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}}
    k("create", "-n", ns, "-f", "-", input=json.dumps(rc))
    o = wait_for("3 ready", lambda: status_is(k, ns, "rc", "legacy", replicas=3, readyReplicas=3,
                                                availableReplicas=3, fullyLabeledReplicas=3), timeout=WAIT)
    uid = o["metadata"]["uid"]
    owned = controlled_by(k, ns, uid)
    assert len(owned) == 3
    assert owned[0]["metadata"]["ownerReferences"][0]["apiVersion"] == "v1"
    assert owned[0]["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController"
    assert "terminatingReplicas" not in o["status"]
    k("scale", "rc", "legacy", "-n", ns, "--replicas=1")
    wait_for("1 replica", lambda: status_is(k, ns, "rc", "legacy", replicas=1, readyReplicas=1), timeout=WAIT)
    assert len(controlled_by(k, ns, uid)) == 1
    ev = k.json("get", "events", "-n", ns, "--field-selector", "involvedObject.kind=ReplicationController")["items"]
    assert {e["source"]["component"] for e in ev} == {"replication-controller"}
    assert {e["reason"] for e in ev} == {"SuccessfulCreate", "SuccessfulDelete"}


def test_create_failures_set_replica_failure(cluster, ns):
    """The API server refuses every pod of this template (Priority admission
    forbids a priority without its class), though the template is valid."""
    k = cluster
    k("create", "-n", ns, "-f", "-", input=replicaset("refused", 3, spec_extra={"priority": 5}))
    cond = wait_for("ReplicaFailure", lambda: next(
        (c for c in k.json("get", "rs", "refused", "-n", ns).get("status", {}).get("conditions", [])
         if c["type"] == "ReplicaFailure"), None), timeout=WAIT)
    assert cond["status"] == "True" and cond["reason"] == "FailedCreate"
    assert "the integer value of priority (5) must not be provided" in cond["message"]
    failed = wait_for("FailedCreate event", lambda: events(k, ns, "refused", "FailedCreate"), timeout=WAIT)
    assert "Error creating: " + cond["message"] in failed
    assert pods(k, ns) == []
    # With a template the server accepts, pods come and the condition goes.
    k("patch", "rs", "refused", "-n", ns, "--type", "json", "-p",
      json.dumps([{"op": "remove", "path": "/spec/template/spec/priority"}]))
    wait_for("3 replicas, no failure", lambda: (lambda o: o and not o["status"].get("conditions"))(
        status_is(k, ns, "rs", "refused", replicas=3)), timeout=WAIT)


def test_a_replicaset_being_deleted_stops_managing_its_pods(cluster, ns):
    """`kubectl delete --cascade=orphan` of a ReplicaSet a finalizer of ours
    holds: the garbage collector releases its pods and the ReplicaSet stays
    terminating; meanwhile it must neither replace nor adopt pods. The
    cascades themselves are tested in test_gc.py."""
    k = cluster
    k("create", "-n", ns, "-f", "-", input=replicaset("leaving", 2))
    rs = wait_for("2 ready", lambda: status_is(k, ns, "rs", "leaving", replicas=2, readyReplicas=2),
                  timeout=WAIT)
    uid = rs["metadata"]["uid"]
    k("patch", "rs", "leaving", "-n", ns, "--type", "merge", "-p", '{"metadata":{"finalizers":["e2e.wharf.dev/hold"]}}')
    k("delete", "rs", "leaving", "-n", ns, "--cascade=orphan", "--wait=false")
    wait_for("pods released", lambda: not controlled_by(k, ns, uid) and len(pods(k, ns)) == 2, timeout=WAIT)
    assert k.json("get", "rs", "leaving", "-n", ns)["metadata"]["finalizers"] == ["e2e.wharf.dev/hold"]
    victim = sorted(p["metadata"]["name"] for p in pods(k, ns))[0]
    k("delete", "pod", victim, "-n", ns)
    k("create", "-n", ns, "-f", "-", input=bare_pod("stray", {"app": "leaving"}))
    wait_for("status shows no replica", lambda: status_is(k, ns, "rs", "leaving", replicas=0), timeout=WAIT)
    assert len(pods(k, ns)) == 2
    assert not controlled_by(k, ns, uid)
    assert not k.json("get", "pod", "stray", "-n", ns)["metadata"].get("ownerReferences")
    k("patch", "rs", "leaving", "-n", ns, "--type", "merge", "-p", '{"metadata":{"finalizers":null}}')
    wait_for("gone", lambda: k.run("get", "rs", "leaving", "-n", ns, check=False).returncode != 0, timeout=WAIT)
