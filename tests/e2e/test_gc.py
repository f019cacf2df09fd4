"""The garbage collector, driven through the real kubectl: objects with
hand-made ownerReferences (ConfigMaps, a custom resource) so no other
controller is involved, then ReplicaSets and their pods.

Cascading deletion as `kubectl delete` asks for it: background (the
default), `--cascade=orphan` and `--cascade=foreground`. Pods are kept
unschedulable (a nodeSelector no node has), so the API server deletes them
at once, without a kubelet."""

import json
import tempfile
import time

import pytest

from conftest import Kubectl, wait_for

WAIT = 20
HOLD = "gc.wharf.test/hold"
GROUP = "gc.wharf.test"


def ref(owner, block=None, controller=None):
    r = {"apiVersion": owner["apiVersion"], "kind": owner["kind"],
         "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}
    if block is not None:
        r["blockOwnerDeletion"] = block
    if controller is not None:
        r["controller"] = controller
    return r


def configmap(k, ns, name, owners=(), finalizers=()):
    meta = {"name": name, "namespace": ns}
    if owners:
        meta["ownerReferences"] = list(owners)
    if finalizers:
        meta["finalizers"] = list(finalizers)
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}
    return json.loads(k("create", "-o", "json", "-f", "-", input=json.dumps(body)))


def get(k, kind, name, ns, *extra):
    p = k.run("get", kind, name, "-n", ns, "-o", "json", *extra, check=False)
    if p.returncode != 0:
        assert "NotFound" in p.stderr, p.stderr
        return None
    return json.loads(p.stdout)


def gone(k, kind, name, ns, *extra):
    return get(k, kind, name, ns, *extra) is None


def unhold(k, kind, name, ns):
    k("patch", kind, name, "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')


def stays(what, check, seconds=2.0):
    """`check` holds for `seconds` (the collector had time to act)."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        assert check(), what
        time.sleep(0.2)


def test_background_deletion_collects_dependents(kubectl, namespace):
    owner = configmap(kubectl, namespace, "owner")
    for i in range(3):
        configmap(kubectl, namespace, f"dep-{i}", [ref(owner)])
    unrelated = configmap(kubectl, namespace, "unrelated")
    kubectl("delete", "configmap", "owner", "-n", namespace)
    for i in range(3):
        wait_for(f"dep-{i} collected", lambda: gone(kubectl, "configmap", f"dep-{i}", namespace), WAIT)
    assert get(kubectl, "configmap", "unrelated", namespace)["metadata"]["uid"] == unrelated["metadata"]["uid"]


def test_orphan_deletion_strips_the_owner_reference(kubectl, namespace):
    owner = configmap(kubectl, namespace, "owner")
    other = configmap(kubectl, namespace, "other")
    configmap(kubectl, namespace, "dep", [ref(owner, block=True, controller=True)])
    configmap(kubectl, namespace, "dep2", [ref(owner), ref(other)])
    kubectl("delete", "configmap", "owner", "-n", namespace, "--cascade=orphan", "--wait=false")
    wait_for("owner deleted", lambda: gone(kubectl, "configmap", "owner", namespace), WAIT)
    dep = get(kubectl, "configmap", "dep", namespace)
    assert "ownerReferences" not in dep["metadata"]
    dep2 = get(kubectl, "configmap", "dep2", namespace)
    assert [r["uid"] for r in dep2["metadata"]["ownerReferences"]] == [other["metadata"]["uid"]]
    stays("orphans stay", lambda: not gone(kubectl, "configmap", "dep", namespace))


def test_foreground_deletion_waits_for_blocking_dependents(kubectl, namespace):
    owner = configmap(kubectl, namespace, "owner")
    configmap(kubectl, namespace, "blocking", [ref(owner, block=True)], [HOLD])
    configmap(kubectl, namespace, "free", [ref(owner, block=False)], [HOLD])
    kubectl("delete", "configmap", "owner", "-n", namespace, "--cascade=foreground", "--wait=false")
    # The API server marks the owner; the collector deletes every dependent.
    for name in ("blocking", "free"):
        wait_for(f"{name} being deleted",
                 lambda: get(kubectl, "configmap", name, namespace)["metadata"].get("deletionTimestamp"), WAIT)
    o = get(kubectl, "configmap", "owner", namespace)
    assert o["metadata"]["deletionTimestamp"]
    assert o["metadata"]["finalizers"] == ["foregroundDeletion"]
    # A dependent that does not block is not waited for.
    unhold(kubectl, "configmap", "free", namespace)
    wait_for("free gone", lambda: gone(kubectl, "configmap", "free", namespace), WAIT)
    stays("owner waits for the blocking dependent",
          lambda: not gone(kubectl, "configmap", "owner", namespace))
    unhold(kubectl, "configmap", "blocking", namespace)
    wait_for("owner gone after its blocking dependent",
             lambda: gone(kubectl, "configmap", "owner", namespace), WAIT)


def test_losing_one_of_two_owners_removes_only_that_reference(kubectl, namespace):
    a = configmap(kubectl, namespace, "owner-a")
    b = configmap(kubectl, namespace, "owner-b")
    configmap(kubectl, namespace, "dep", [ref(a), ref(b, block=True)])
    kubectl("delete", "configmap", "owner-a", "-n", namespace)

    def only_b():
        refs = get(kubectl, "configmap", "dep", namespace)["metadata"].get("ownerReferences", [])
        return [r["uid"] for r in refs] == [b["metadata"]["uid"]] and refs[0]["blockOwnerDeletion"]
    wait_for("dangling reference removed", only_b, WAIT)
    stays("dep kept while owner-b exists", only_b)
    kubectl("delete", "configmap", "owner-b", "-n", namespace)
    wait_for("dep collected with its last owner", lambda: gone(kubectl, "configmap", "dep", namespace), WAIT)


def test_dependents_of_owners_that_never_existed_are_collected(kubectl, namespace):
    real = configmap(kubectl, namespace, "real")
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ghost", "uid": "2b1f8e0e-0000-4000-8000-000000000001"}}
    wrong_uid = {"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "real", "uid": "2b1f8e0e-0000-4000-8000-000000000002"}}
    configmap(kubectl, namespace, "of-ghost", [ref(ghost)])
    configmap(kubectl, namespace, "of-wrong-uid", [ref(wrong_uid)])
    configmap(kubectl, namespace, "of-real", [ref(real)])
    for name in ("of-ghost", "of-wrong-uid"):
        wait_for(f"{name} collected", lambda: gone(kubectl, "configmap", name, namespace), WAIT)
    assert not gone(kubectl, "configmap", "real", namespace)
    assert get(kubectl, "configmap", "of-real", namespace)["metadata"]["ownerReferences"][0]["uid"] == real["metadata"]["uid"]


def test_owner_in_another_namespace_is_absent(kubectl, namespace):
    other = namespace[:40] + "-other"
    kubectl("create", "namespace", other)
    try:
        owner = configmap(kubectl, other, "owner")
        configmap(kubectl, namespace, "dep", [ref(owner)])
        wait_for("cross-namespace dependent collected",
                 lambda: gone(kubectl, "configmap", "dep", namespace), WAIT)
        assert not gone(kubectl, "configmap", "owner", other)

        def warned():
            evs = kubectl.json("get", "events", "-n", namespace)["items"]
            return [e for e in evs if e["reason"] == "OwnerRefInvalidNamespace"]
        ev = wait_for("OwnerRefInvalidNamespace event", warned, WAIT)[0]
        assert ev["type"] == "Warning"
        assert ev["involvedObject"]["name"] == "dep"
        assert ev["source"]["component"] == "garbage-collector-controller"
        assert ev["message"] == (f"ownerRef [v1/ConfigMap, namespace: {namespace}, name: owner, "
                                 f"uid: {owner['metadata']['uid']}] does not exist in namespace \"{namespace}\"")
    finally:
        kubectl.run("delete", "namespace", other, "--wait=false", check=False)


CRD = f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.{GROUP}
spec:
  group: {GROUP}
  scope: Namespaced
  names: {{plural: gizmos, singular: gizmo, kind: Gizmo}}
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          x-kubernetes-preserve-unknown-fields: true
"""


class FreshDiscovery(Kubectl):
    """kubectl with a discovery cache of its own, which sees new kinds."""

    def __init__(self, kubeconfig, cache):
        super().__init__(kubeconfig)
        self.cache = cache

    def run(self, *args, **kw):
        return super().run(*args, "--cache-dir", self.cache, **kw)


@pytest.fixture(scope="module")
def gizmos(kubectl):
    """A custom resource kind; the kubectl wrapper gets a fresh discovery cache."""
    with tempfile.TemporaryDirectory(prefix="wharf-gc-cache-") as cache:
        k = FreshDiscovery(kubectl.kubeconfig, cache)
        k("apply", "-f", "-", input=CRD)
        k("wait", "--for=condition=Established", f"crd/gizmos.{GROUP}", "--timeout=30s")
        yield k
        kubectl.run("delete", "crd", f"gizmos.{GROUP}", "--wait=false", check=False)


def gizmo(k, ns, name, owners=()):
    meta = {"name": name, "namespace": ns}
    if owners:
        meta["ownerReferences"] = list(owners)
    body = {"apiVersion": f"{GROUP}/v1", "kind": "Gizmo", "metadata": meta, "spec": {"size": 1}}
    return json.loads(k("create", "-o", "json", "-f", "-", input=json.dumps(body)))


def test_custom_resources_as_owners_and_dependents(gizmos, namespace):
    k = gizmos
    owner = gizmo(k, namespace, "owner")
    configmap(k, namespace, "dep-of-gizmo", [ref(owner, block=True)])
    cm_owner = configmap(k, namespace, "cm-owner")
    gizmo(k, namespace, "gizmo-of-cm", [ref(cm_owner)])
    # Background: both directions.
    k("delete", "gizmo", "owner", "-n", namespace)
    wait_for("configmap owned by a gizmo collected",
             lambda: gone(k, "configmap", "dep-of-gizmo", namespace), WAIT)
    k("delete", "configmap", "cm-owner", "-n", namespace)
    wait_for("gizmo owned by a configmap collected",
             lambda: gone(k, "gizmo", "gizmo-of-cm", namespace), WAIT)
    # Orphan and foreground on a custom resource owner.
    kept = gizmo(k, namespace, "kept")
    configmap(k, namespace, "orphan", [ref(kept)])
    k("delete", "gizmo", "kept", "-n", namespace, "--cascade=orphan", "--wait=false")
    wait_for("gizmo gone", lambda: gone(k, "gizmo", "kept", namespace), WAIT)
    assert "ownerReferences" not in get(k, "configmap", "orphan", namespace)["metadata"]
    fg = gizmo(k, namespace, "fg")
    configmap(k, namespace, "held", [ref(fg, block=True)], [HOLD])
    k("delete", "gizmo", "fg", "-n", namespace, "--cascade=foreground", "--wait=false")
    wait_for("held being deleted",
             lambda: get(k, "configmap", "held", namespace)["metadata"].get("deletionTimestamp"), WAIT)
    assert get(k, "gizmo", "fg", namespace)["metadata"]["finalizers"] == ["foregroundDeletion"]
    unhold(k, "configmap", "held", namespace)
    wait_for("gizmo gone after its dependent", lambda: gone(k, "gizmo", "fg", namespace), WAIT)


def replicaset(name, replicas=2):
    labels = {"app": name}
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"nodeSelector": {"gc.wharf.test/none": "true"},
                                       "containers": [{"name": "app", "image": "nginx:1.27"}]}}},
    })


def pods_of(k, ns, app):
    return k.json("get", "pods", "-n", ns, "-l", f"app={app}")["items"]


def test_replicaset_cascades(kubectl, namespace):
    for name in ("bg", "orphan", "fg"):
        kubectl("create", "-n", namespace, "-f", "-", input=replicaset(name))
    for name in ("bg", "orphan", "fg"):
        wait_for(f"{name} pods", lambda: len(pods_of(kubectl, namespace, name)) == 2, WAIT)

    # Background (kubectl's default): the pods follow the ReplicaSet.
    kubectl("delete", "rs", "bg", "-n", namespace)
    wait_for("bg pods collected", lambda: not pods_of(kubectl, namespace, "bg"), WAIT)

    # Orphan: the pods stay, released.
    kubectl("delete", "rs", "orphan", "-n", namespace, "--cascade=orphan")
    wait_for("orphan rs gone", lambda: gone(kubectl, "rs", "orphan", namespace), WAIT)
    left = pods_of(kubectl, namespace, "orphan")
    assert len(left) == 2
    assert all("ownerReferences" not in p["metadata"] for p in left)

    # Foreground: the ReplicaSet goes only after its pods; one is held.
    held = pods_of(kubectl, namespace, "fg")[0]["metadata"]["name"]
    kubectl("patch", "pod", held, "-n", namespace, "--type=merge", "-p",
            json.dumps({"metadata": {"finalizers": [HOLD]}}))
    kubectl("delete", "rs", "fg", "-n", namespace, "--cascade=foreground", "--wait=false")
    wait_for("the other fg pod deleted", lambda: len(pods_of(kubectl, namespace, "fg")) == 1, WAIT)
    wait_for("held pod being deleted",
             lambda: get(kubectl, "pod", held, namespace)["metadata"].get("deletionTimestamp"), WAIT)
    rs = get(kubectl, "rs", "fg", namespace)
    assert rs["metadata"]["deletionTimestamp"] and "foregroundDeletion" in rs["metadata"]["finalizers"]
    stays("rs waits for its pod", lambda: not gone(kubectl, "rs", "fg", namespace))
    # No replacement is made for a ReplicaSet being deleted.
    assert len(pods_of(kubectl, namespace, "fg")) == 1
    unhold(kubectl, "pod", held, namespace)
    wait_for("fg rs gone after its pods", lambda: gone(kubectl, "rs", "fg", namespace), WAIT)
    assert not pods_of(kubectl, namespace, "fg")
    # The orphans were not adopted by anything nor collected.
    assert len(pods_of(kubectl, namespace, "orphan")) == 2


def test_replication_controllers_orphan_by_default_in_core_v1(kubectl, core, namespace):
    """Upstream keeps core/v1's old default for ReplicationControllers: a
    DELETE without a policy orphans the pods (kubectl always sends one)."""
    labels = {"app": "legacy"}
    rc = {"apiVersion": "v1", "kind": "ReplicationController", "metadata": {"name": "legacy"},
          "spec": {"replicas": 2, "selector": labels,
                   "template": {"metadata": {"labels": labels},
                                "spec": {"nodeSelector": {"gc.wharf.test/none": "true"},
                                         "containers": [{"name": "app", "image": "nginx:1.27"}]}}}}
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(rc))
    wait_for("2 pods", lambda: len(pods_of(kubectl, namespace, "legacy")) == 2)
    core.delete_namespaced_replication_controller("legacy", namespace)  # no body, no policy
    wait_for("rc gone", lambda: gone(kubectl, "rc", "legacy", namespace))
    pods = wait_for("pods orphaned", lambda: (lambda ps: ps if len(ps) == 2 and all(
        not p["metadata"].get("ownerReferences") for p in ps) else None)(pods_of(kubectl, namespace, "legacy")))
    assert all(not p["metadata"].get("deletionTimestamp") for p in pods)
