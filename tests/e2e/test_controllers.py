"""Controllers of the controller manager, driven through the real kubectl."""

import time

from conftest import wait_for



def test_every_namespace_has_a_default_service_account(kubectl, namespace):
    has = lambda ns: kubectl.run("get", "serviceaccount", "default", "-n", ns, check=False).returncode == 0
    wait_for("default in the new namespace", lambda: has(namespace))
    for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
        wait_for(f"default in {ns}", lambda: has(ns))
    # Deleted, it comes back (with a new uid).
    uid = kubectl.json("get", "serviceaccount", "default", "-n", namespace)["metadata"]["uid"]
    kubectl("delete", "serviceaccount", "default", "-n", namespace)
    wait_for("default recreated", lambda: has(namespace)
             and kubectl.json("get", "serviceaccount", "default", "-n", namespace)["metadata"]["uid"] != uid)
    # `kubectl create` of an extra account is untouched.
    kubectl("create", "serviceaccount", "builder", "-n", namespace)
    assert "builder" in kubectl("get", "serviceaccounts", "-n", namespace)


def test_a_deleting_namespace_says_what_holds_it(kubectl):
    ns = "ns-held"
    kubectl("create", "namespace", ns)
    kubectl("create", "configmap", "held", "-n", ns, "--from-literal=a=b")
    kubectl("patch", "configmap", "held", "-n", ns, "--type=merge",
            "-p", '{"metadata":{"finalizers":["example.com/hold"]}}')
    kubectl("create", "configmap", "free", "-n", ns)
    kubectl("delete", "namespace", ns, "--wait=false")

    def conditions():
        status = kubectl.json("get", "namespace", ns).get("status", {})
        return {c["type"]: c for c in status.get("conditions", [])}

    wait_for("conditions naming the configmap and its finalizer",
             lambda: conditions().get("NamespaceFinalizersRemaining", {}).get("status") == "True")
    c = conditions()
    assert c["NamespaceContentRemaining"]["reason"] == "SomeResourcesRemain"
    assert c["NamespaceContentRemaining"]["message"] == \
        "Some resources are remaining: configmaps. has 1 resource instances"
    assert c["NamespaceFinalizersRemaining"]["message"] == \
        "Some content in the namespace has finalizers remaining: example.com/hold in 1 resource instances"
    assert c["NamespaceDeletionDiscoveryFailure"]["status"] == "False"
    assert c["NamespaceDeletionDiscoveryFailure"]["reason"] == "ResourcesDiscovered"
    assert kubectl.json("get", "namespace", ns)["status"]["phase"] == "Terminating"
    # `kubectl describe` shows them too.
    assert "SomeFinalizersRemain" in kubectl("describe", "namespace", ns)

    kubectl("patch", "configmap", "held", "-n", ns, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    wait_for("the namespace gone",
             lambda: kubectl.run("get", "namespace", ns, check=False).returncode != 0, timeout=30)
