"""The Deployment controller, on hollow nodes so pods become Running and
Ready, driven by the real kubectl: rollout status, rolling updates within
maxSurge/maxUnavailable, history and undo, revisionHistoryLimit, pause and
resume, Recreate, progress deadlines, proportional scaling, adoption."""

import json
import time

import pytest

from conftest import hollow_cluster, wait_for

WAIT = 30
REVISION = "deployment.kubernetes.io/revision"


@pytest.fixture(scope="module")
def cluster():
    """A server of its own with three hollow nodes."""
    with hollow_cluster("deploy", 3, "hd") as (s, k):
        yield k


@pytest.fixture
def ns(cluster, request):
    name = "d-" + request.node.name.lower().replace("_", "-")[5:45].strip("-")
    cluster("create", "namespace", name)
    return name


def deployment(name, replicas, image="nginx:1.27", strategy=None, annotations=None, **spec):
    labels = {"app": name}
    template = {"metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": image}]}}
    if annotations:
        template["metadata"]["annotations"] = annotations
    body = {"replicas": replicas, "selector": {"matchLabels": labels}, "template": template, **spec}
    if strategy:
        body["strategy"] = strategy
    return json.dumps({"apiVersion": "apps/v1", "kind": "Deployment",
                       "metadata": {"name": name}, "spec": body})


def replicasets(k, ns, owner_uid=None):
    items = k.json("get", "rs", "-n", ns)["items"]
    if owner_uid:
        items = [r for r in items if any(o.get("controller") and o["uid"] == owner_uid
                                         for o in r["metadata"].get("ownerReferences", []))]
    return sorted(items, key=lambda r: int(r["metadata"].get("annotations", {}).get(REVISION, "0")))


def image_of(rs):
    return rs["spec"]["template"]["spec"]["containers"][0]["image"]


def condition(obj, type_):
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == type_), None)


def rollout(k, ns, name):
    """`kubectl rollout status`, which must succeed."""
    return k("rollout", "status", f"deployment/{name}", "-n", ns, f"--timeout={WAIT}s", timeout=WAIT + 10)


def events(k, ns, name, reason):
    items = k.json("get", "events", "-n", ns, "--field-selector",
                   f"involvedObject.name={name},reason={reason}")["items"]
    return [e["message"] for e in items]


def test_create_deployment_and_rollout_status(cluster, ns):
    k = cluster
    k("create", "deployment", "web", "--image=nginx:1.27", "--replicas=3", "-n", ns)
    out = rollout(k, ns, "web")
    assert 'deployment "web" successfully rolled out' in out
    d = k.json("get", "deployment", "web", "-n", ns)
    st = d["status"]
    assert st["observedGeneration"] == d["metadata"]["generation"]
    assert (st["replicas"], st["updatedReplicas"], st["readyReplicas"], st["availableReplicas"]) == (3, 3, 3, 3)
    assert st.get("unavailableReplicas", 0) == 0 and st["terminatingReplicas"] == 0
    assert d["metadata"]["annotations"][REVISION] == "1"
    [rs] = replicasets(k, ns, d["metadata"]["uid"])
    h = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{h}"
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": h}
    assert rs["spec"]["template"]["metadata"]["labels"] == {"app": "web", "pod-template-hash": h}
    assert rs["metadata"]["ownerReferences"] == [{
        "apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": d["metadata"]["uid"],
        "controller": True, "blockOwnerDeletion": True}]
    # Controllers write as kube-controller-manager (their User-Agent), as upstream's do.
    rs_full = k.json("get", "rs", rs["metadata"]["name"], "-n", ns, "--show-managed-fields")
    assert {e["manager"] for e in rs_full["metadata"]["managedFields"]} == {"kube-controller-manager"}
    ann = rs["metadata"]["annotations"]
    # 25% surge of 3 rounds up to 1.
    assert (ann[REVISION], ann["deployment.kubernetes.io/desired-replicas"],
            ann["deployment.kubernetes.io/max-replicas"]) == ("1", "3", "4")
    available = condition(d, "Available")
    assert (available["status"], available["reason"], available["message"]) == (
        "True", "MinimumReplicasAvailable", "Deployment has minimum availability.")
    progressing = condition(d, "Progressing")
    assert (progressing["status"], progressing["reason"], progressing["message"]) == (
        "True", "NewReplicaSetAvailable", f'ReplicaSet "web-{h}" has successfully progressed.')
    pods = k.json("get", "pods", "-n", ns, "-l", f"pod-template-hash={h}")["items"]
    assert len(pods) == 3
    assert wait_for("scaling event", lambda: events(k, ns, "web", "ScalingReplicaSet"), timeout=WAIT) == [
        f"Scaled up replica set web-{h} from 0 to 3"]
    row = k("get", "deployment", "web", "-n", ns, "--no-headers").split()
    assert row[1:4] == ["3/3", "3", "3"]


def test_rolling_update_stays_within_surge_and_unavailability(cluster, ns):
    k = cluster
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": 1}}
    # minReadySeconds makes each step last, so the middle can be seen.
    k("create", "-n", ns, "-f", "-", input=deployment("roll", 6, strategy=strategy, minReadySeconds=1))
    rollout(k, ns, "roll")
    uid = k.json("get", "deployment", "roll", "-n", ns)["metadata"]["uid"]
    k("set", "image", "deployment/roll", "app=nginx:1.28", "-n", ns)
    both_seen = False
    deadline = time.time() + WAIT
    while time.time() < deadline:
        rss = replicasets(k, ns, uid)
        assert sum(r["spec"]["replicas"] for r in rss) <= 6 + 2, rss
        assert sum(r.get("status", {}).get("availableReplicas", 0) for r in rss) >= 6 - 1, rss
        if len(rss) == 2 and all(r["spec"]["replicas"] > 0 for r in rss):
            both_seen = True
        if len(rss) == 2 and rss[1]["status"].get("availableReplicas") == 6 and rss[0]["spec"]["replicas"] == 0 \
                and rss[0]["status"]["replicas"] == 0:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("rollout did not finish")
    assert both_seen, "never saw old and new ReplicaSets running side by side"
    rollout(k, ns, "roll")
    old, new = replicasets(k, ns, uid)
    assert (image_of(old), old["spec"]["replicas"]) == ("nginx:1.27", 0)
    assert (image_of(new), new["spec"]["replicas"], new["metadata"]["annotations"][REVISION]) == ("nginx:1.28", 6, "2")
    d = k.json("get", "deployment", "roll", "-n", ns)
    assert d["metadata"]["annotations"][REVISION] == "2"
    assert (d["status"]["updatedReplicas"], d["status"]["replicas"]) == (6, 6)
    scaled = events(k, ns, "roll", "ScalingReplicaSet")
    assert f"Scaled up replica set {new['metadata']['name']} from 0 to 2" in scaled
    assert any(m.startswith(f"Scaled down replica set {old['metadata']['name']} from 6 to ") for m in scaled)


def test_rollout_history_and_undo(cluster, ns):
    k = cluster
    k("create", "-n", ns, "-f", "-", input=deployment("hist", 2))
    rollout(k, ns, "hist")
    k("set", "image", "deployment/hist", "app=nginx:1.28", "-n", ns)
    rollout(k, ns, "hist")
    history = k("rollout", "history", "deployment/hist", "-n", ns)
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["1", "2"]
    assert "nginx:1.27" in k("rollout", "history", "deployment/hist", "-n", ns, "--revision=1")

    # Undo: back to revision 1's template, which becomes revision 3.
    out = k("rollout", "undo", "deployment/hist", "-n", ns)
    assert "rolled back" in out
    rollout(k, ns, "hist")
    d = k.json("get", "deployment", "hist", "-n", ns)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx:1.27"
    assert wait_for("revision 3", lambda: k.json("get", "deployment", "hist", "-n", ns)["metadata"]["annotations"]
                    [REVISION] == "3", timeout=WAIT)
    first, second = replicasets(k, ns, d["metadata"]["uid"])
    assert (image_of(second), second["metadata"]["annotations"][REVISION]) == ("nginx:1.27", "3")
    assert second["metadata"]["annotations"]["deployment.kubernetes.io/revision-history"] == "1"
    assert (image_of(first), first["spec"]["replicas"]) == ("nginx:1.28", 0)
    history = k("rollout", "history", "deployment/hist", "-n", ns)
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["2", "3"]

    # Undo to a given revision, and to the current one (a no-op).
    k("rollout", "undo", "deployment/hist", "-n", ns, "--to-revision=2")
    rollout(k, ns, "hist")
    assert wait_for("revision 4", lambda: (lambda rss: rss[-1] if image_of(rss[-1]) == "nginx:1.28"
                                           and rss[-1]["metadata"]["annotations"][REVISION] == "4" else None)(
        replicasets(k, ns, d["metadata"]["uid"])), timeout=WAIT)
    same = k("rollout", "undo", "deployment/hist", "-n", ns, "--to-revision=4")
    assert "skipped rollback" in same


def test_revision_history_limit_prunes_old_replicasets(cluster, ns):
    k = cluster
    k("create", "-n", ns, "-f", "-", input=deployment("pruned", 1, revisionHistoryLimit=1))
    rollout(k, ns, "pruned")
    uid = k.json("get", "deployment", "pruned", "-n", ns)["metadata"]["uid"]
    for tag in ("1.28", "1.29", "1.30"):
        k("set", "image", "deployment/pruned", f"app=nginx:{tag}", "-n", ns)
        rollout(k, ns, "pruned")
    rss = wait_for("one old revision kept", lambda: (lambda r: r if len(r) == 2 else None)(
        replicasets(k, ns, uid)), timeout=WAIT)
    assert [(image_of(r), r["metadata"]["annotations"][REVISION]) for r in rss] == [
        ("nginx:1.29", "3"), ("nginx:1.30", "4")]
    history = k("rollout", "history", "deployment/pruned", "-n", ns)
    assert [line.split()[0] for line in history.splitlines()[2:] if line.strip()] == ["3", "4"]


def test_pause_resume_and_restart(cluster, ns):
    k = cluster
    k("create", "-n", ns, "-f", "-", input=deployment("paused", 2))
    rollout(k, ns, "paused")
    uid = k.json("get", "deployment", "paused", "-n", ns)["metadata"]["uid"]
    k("rollout", "pause", "deployment/paused", "-n", ns)
    k("set", "image", "deployment/paused", "app=nginx:1.28", "-n", ns)
    d = wait_for("paused condition", lambda: (lambda d: d if d["status"].get("observedGeneration") ==
                                              d["metadata"]["generation"] and condition(d, "Progressing")["reason"]
                                              == "DeploymentPaused" else None)(
        k.json("get", "deployment", "paused", "-n", ns)), timeout=WAIT)
    c = condition(d, "Progressing")
    assert (c["status"], c["message"]) == ("Unknown", "Deployment is paused")
    # Scaling still works while paused; rolling out does not.
    k("scale", "deployment/paused", "--replicas=3", "-n", ns)
    wait_for("scaled while paused", lambda: [r["spec"]["replicas"] for r in replicasets(k, ns, uid)] == [3],
             timeout=WAIT)
    time.sleep(2)
    [rs] = replicasets(k, ns, uid)
    assert image_of(rs) == "nginx:1.27"

    k("rollout", "resume", "deployment/paused", "-n", ns)
    rollout(k, ns, "paused")
    old, new = replicasets(k, ns, uid)
    assert (image_of(new), new["spec"]["replicas"], old["spec"]["replicas"]) == ("nginx:1.28", 3, 0)

    # A restart is a new template: a new ReplicaSet with the same image.
    k("rollout", "restart", "deployment/paused", "-n", ns)
    rollout(k, ns, "paused")
    rss = replicasets(k, ns, uid)
    assert len(rss) == 3
    assert "kubectl.kubernetes.io/restartedAt" in rss[-1]["spec"]["template"]["metadata"]["annotations"]
    assert (image_of(rss[-1]), rss[-1]["spec"]["replicas"]) == ("nginx:1.28", 3)


def test_recreate_waits_for_old_pods_to_be_gone(cluster, ns):
    k = cluster
    # The finalizer keeps old pods terminating until the test lets them go.
    body = json.loads(deployment("recreate", 3, strategy={"type": "Recreate"}))
    body["spec"]["template"]["metadata"]["finalizers"] = ["wharf.dev/hold"]
    k("create", "-n", ns, "-f", "-", input=json.dumps(body))
    rollout(k, ns, "recreate")
    uid = k.json("get", "deployment", "recreate", "-n", ns)["metadata"]["uid"]
    patch = [{"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "nginx:1.28"},
             {"op": "remove", "path": "/spec/template/metadata/finalizers"}]
    k("patch", "deployment", "recreate", "-n", ns, "--type=json", "-p", json.dumps(patch))

    def old_terminating():
        items = k.json("get", "pods", "-n", ns)["items"]
        dying = [p for p in items if p["metadata"].get("deletionTimestamp")]
        return items if len(dying) == 3 else None
    wait_for("old pods terminating", old_terminating, timeout=WAIT)
    time.sleep(2)
    # Scaled down, but no new ReplicaSet while old pods are still there.
    [old] = replicasets(k, ns, uid)
    assert (image_of(old), old["spec"]["replicas"], old["status"]["terminatingReplicas"]) == ("nginx:1.27", 0, 3)
    assert len(k.json("get", "pods", "-n", ns)["items"]) == 3

    for p in k.json("get", "pods", "-n", ns)["items"]:
        k("patch", "pod", p["metadata"]["name"], "-n", ns, "--type=json",
          "-p", '[{"op": "remove", "path": "/metadata/finalizers"}]')
    rollout(k, ns, "recreate")
    old, new = replicasets(k, ns, uid)
    assert (image_of(new), new["spec"]["replicas"], old["spec"]["replicas"]) == ("nginx:1.28", 3, 0)
    # The new pods were created after the old ones were gone.
    pods = k.json("get", "pods", "-n", ns)["items"]
    assert len(pods) == 3 and all(p["metadata"]["labels"]["pod-template-hash"] ==
                                  new["metadata"]["labels"]["pod-template-hash"] for p in pods)
    scaled = events(k, ns, "recreate", "ScalingReplicaSet")
    assert f"Scaled down replica set {old['metadata']['name']} from 3 to 0" in scaled
    assert f"Scaled up replica set {new['metadata']['name']} from 0 to 3" in scaled


def test_progress_deadline_exceeded(cluster, ns):
    k = cluster
    k("create", "-n", ns, "-f", "-", input=deployment("stuck", 2, annotations={"hollow.wharf.dev/ready": "false"},
                                                      progressDeadlineSeconds=5))
    p = k.run("rollout", "status", "deployment/stuck", "-n", ns, f"--timeout={WAIT}s", check=False, timeout=WAIT + 10)
    assert p.returncode != 0
    assert 'deployment "stuck" exceeded its progress deadline' in p.stderr
    d = k.json("get", "deployment", "stuck", "-n", ns)
    c = condition(d, "Progressing")
    [rs] = replicasets(k, ns, d["metadata"]["uid"])
    assert (c["status"], c["reason"], c["message"]) == (
        "False", "ProgressDeadlineExceeded", f'ReplicaSet "{rs["metadata"]["name"]}" has timed out progressing.')
    a = condition(d, "Available")
    assert (a["status"], a["reason"]) == ("False", "MinimumReplicasUnavailable")
    assert d["status"].get("availableReplicas", 0) == 0 and d["status"]["unavailableReplicas"] == 2


def test_scaling_mid_rollout_is_proportional(cluster, ns):
    k = cluster
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}
    k("create", "-n", ns, "-f", "-", input=deployment("prop", 10, strategy=strategy))
    rollout(k, ns, "prop")
    uid = k.json("get", "deployment", "prop", "-n", ns)["metadata"]["uid"]
    # A new template whose pods never become ready: the rollout stops with
    # 10 - 2 old pods and 3 + 2 new ones (13 in all).
    patch = {"spec": {"template": {"metadata": {"annotations": {"hollow.wharf.dev/ready": "false"}}}}}
    k("patch", "deployment", "prop", "-n", ns, "-p", json.dumps(patch))
    sizes = lambda: [r["spec"]["replicas"] for r in replicasets(k, ns, uid)]
    wait_for("stalled at 8 + 5", lambda: sizes() == [8, 5], timeout=WAIT)
    time.sleep(1)
    assert sizes() == [8, 5]
    # 20 replicas + 3 surge = 23, shared 8:5 -> 14 and 9 (not 18 and 5).
    k("scale", "deployment/prop", "--replicas=20", "-n", ns)
    wait_for("14 + 9", lambda: sizes() == [14, 9], timeout=WAIT)
    for r in replicasets(k, ns, uid):
        ann = r["metadata"]["annotations"]
        assert (ann["deployment.kubernetes.io/desired-replicas"], ann["deployment.kubernetes.io/max-replicas"]) == (
            "20", "23")
    # And down again: 5 + 3 = 8, shared 14:9 -> 5 and 3; then, with only
    # 3 pods needed available, the rollout goes on: 2 old pods go, 2 new come.
    k("scale", "deployment/prop", "--replicas=5", "-n", ns)
    wait_for("3 + 5", lambda: sizes() == [3, 5], timeout=WAIT)
    old, new = (r["metadata"]["name"] for r in replicasets(k, ns, uid))
    scaled = events(k, ns, "prop", "ScalingReplicaSet")
    assert f"Scaled down replica set {old} from 14 to 5" in scaled
    assert f"Scaled down replica set {new} from 9 to 3" in scaled


def test_replicasets_are_adopted_and_released_by_selector(cluster, ns):
    k = cluster
    # An orphan ReplicaSet the Deployment's selector matches, with another
    # template: adopted as an old revision and scaled down.
    orphan = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": "orphan", "labels": {"app": "adopt"}},
              "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "adopt"}},
                       "template": {"metadata": {"labels": {"app": "adopt"}},
                                    "spec": {"containers": [{"name": "app", "image": "nginx:1.20"}]}}}}
    k("create", "-n", ns, "-f", "-", input=json.dumps(orphan))
    k("create", "-n", ns, "-f", "-", input=deployment("adopt", 2))
    rollout(k, ns, "adopt")
    uid = k.json("get", "deployment", "adopt", "-n", ns)["metadata"]["uid"]
    adopted = wait_for("adopted and scaled down", lambda: (lambda r: r if r["spec"]["replicas"] == 0 else None)(
        k.json("get", "rs", "orphan", "-n", ns)), timeout=WAIT)
    [ref] = adopted["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["uid"], ref["controller"]) == ("Deployment", uid, True)
    assert len(replicasets(k, ns, uid)) == 2
    # Relabelled out of the selector: released.
    k("label", "rs", "orphan", "app=elsewhere", "--overwrite", "-n", ns)
    wait_for("released", lambda: not k.json("get", "rs", "orphan", "-n", ns)["metadata"].get("ownerReferences"),
             timeout=WAIT)
    assert len(replicasets(k, ns, uid)) == 1


def test_a_broken_image_is_refused_and_a_stuck_rollout_stays_quiet(cluster, ns):
    k = cluster
    k("create", "-n", ns, "-f", "-", input=deployment("brk", 2))
    rollout(k, ns, "brk")
    gen = k.json("get", "deployment", "brk", "-n", ns)["metadata"]["generation"]
    # An emptied image is refused by validation, and nothing changes.
    p = k.run("set", "image", "deployment/brk", "app=", "-n", ns, check=False)
    assert p.returncode != 0
    assert "spec.template.spec.containers[0].image: Required value" in p.stderr
    assert k.json("get", "deployment", "brk", "-n", ns)["metadata"]["generation"] == gen
    # An image whose pods never become ready: the rollout stops at maxSurge
    # (1 new pod, 2 old ones kept, maxUnavailable 0) and then nothing churns.
    k("patch", "deployment", "brk", "-n", ns, "--type=merge", "-p", json.dumps({"spec": {"template": {
        "metadata": {"annotations": {"hollow.wharf.dev/ready": "false"}},
        "spec": {"containers": [{"name": "app", "image": "registry.invalid/broken:1"}]}}}}))

    def snapshot():
        pods = k.json("get", "pods", "-n", ns)["items"]
        rss = k.json("get", "rs", "-n", ns)["items"]
        return (sorted((p["metadata"]["name"], p["metadata"]["resourceVersion"]) for p in pods),
                sorted((r["metadata"]["name"], r["metadata"]["resourceVersion"]) for r in rss))

    wait_for("the new pod stuck unready", lambda: len(snapshot()[0]) == 3, timeout=WAIT)
    time.sleep(2)
    before = snapshot()
    time.sleep(3)
    assert snapshot() == before, "pods and ReplicaSets keep their versions while the rollout is stuck"
    d = k.json("get", "deployment", "brk", "-n", ns)
    assert (d["status"]["updatedReplicas"], d["status"]["availableReplicas"]) == (1, 2)
