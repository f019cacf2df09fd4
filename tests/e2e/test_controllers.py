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
