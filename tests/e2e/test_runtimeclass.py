"""RuntimeClasses (node.k8s.io/v1) through the real kubectl and the Python
client: served like every built-in kind, validated as upstream, and the
RuntimeClass admission plugin on pod creation (missing class, overhead,
scheduling). Running pods with a class is in test_kubelet_crun.py."""

import json

import pytest
from conftest import create_pod_error as create_error, plain_pod as pod


def runtime_class(name, handler, **extra):
    return {"apiVersion": "node.k8s.io/v1", "kind": "RuntimeClass",
            "metadata": {"name": name}, "handler": handler, **extra}


@pytest.fixture
def classes(kubectl, namespace):
    """Names of RuntimeClasses made for one test (prefixed with its
    namespace), deleted afterwards."""
    made = []

    def name(n):
        made.append(f"{namespace}-{n}")
        return made[-1]
    yield name
    if made:
        kubectl.run("delete", "runtimeclass", *made, "--wait=false", check=False)


def test_served_like_a_built_in_kind(kubectl, classes):
    rc = classes("gvisor")
    out = kubectl("apply", "-f", "-", input=json.dumps(runtime_class(rc, "runsc")))
    assert out.strip() == f"runtimeclass.node.k8s.io/{rc} created"
    lines = kubectl("get", "runtimeclass", rc).splitlines()
    assert lines[0].split() == ["NAME", "HANDLER", "AGE"]
    assert lines[1].split()[:2] == [rc, "runsc"]
    got = kubectl.json("get", "runtimeclasses.node.k8s.io", rc)
    assert (got["apiVersion"], got["kind"], got["handler"]) == ("node.k8s.io/v1", "RuntimeClass", "runsc")
    assert "namespace" not in got["metadata"]
    resources = kubectl("api-resources", "--api-group", "node.k8s.io", "--no-headers").split()
    assert resources == ["runtimeclasses", "node.k8s.io/v1", "false", "RuntimeClass"], resources
    explained = kubectl("explain", "runtimeclass.handler")
    assert "DNS Label" in explained, explained
    # apply again with a label: a patch, not a handler change.
    out = kubectl("apply", "-f", "-", input=json.dumps(
        runtime_class(rc, "runsc", metadata={"name": rc, "labels": {"a": "b"}})))
    assert out.strip() == f"runtimeclass.node.k8s.io/{rc} configured"


def test_validation_as_upstream(kubectl, classes):
    bad = kubectl.run("apply", "-f", "-", check=False,
                      input=json.dumps(runtime_class(classes("bad"), "Run_SC")))
    assert bad.returncode != 0
    assert 'handler: Invalid value: "Run_SC": a lowercase RFC 1123 label must consist of' in bad.stderr, bad.stderr
    rc = classes("fixed")
    kubectl("create", "-f", "-", input=json.dumps(runtime_class(rc, "runc")))
    changed = kubectl.run("patch", "runtimeclass", rc, "--type=merge", "-p", '{"handler":"crun"}', check=False)
    assert changed.returncode != 0
    assert 'handler: Invalid value: "crun": field is immutable' in changed.stderr, changed.stderr
    dup = {"key": "k", "operator": "Exists", "effect": "NoSchedule"}
    bad = kubectl.run("create", "-f", "-", check=False, input=json.dumps(runtime_class(
        classes("dup"), "runc", overhead={"podFixed": {"cpu": "-1"}},
        scheduling={"tolerations": [dup, dup]})))
    assert bad.returncode != 0
    assert "overhead.limits[cpu]: Invalid value" in bad.stderr, bad.stderr
    assert "scheduling.tolerations[1]: Duplicate value" in bad.stderr, bad.stderr


def test_pod_admission(kubectl, core, namespace, classes):
    code, status = create_error(core, namespace, pod("lost", runtimeClassName="no-such-class"))
    assert (code, status["reason"]) == (403, "Forbidden")
    assert status["message"] == 'pods "lost" is forbidden: pod rejected: RuntimeClass "no-such-class" not found'
    # kubectl shows the same.
    out = kubectl.run("run", "lost", "-n", namespace, "--image=busybox",
                      "--overrides", json.dumps({"spec": {"runtimeClassName": "no-such-class"}}), check=False)
    assert out.returncode != 0
    assert 'pod rejected: RuntimeClass "no-such-class" not found' in out.stderr, out.stderr

    rc = classes("kata")
    kubectl("create", "-f", "-", input=json.dumps(runtime_class(
        rc, "kata", overhead={"podFixed": {"cpu": "250m", "memory": "0.5Gi"}},
        scheduling={"nodeSelector": {"runtime": "kata"},
                    "tolerations": [{"key": "runtime", "operator": "Equal", "value": "kata",
                                     "effect": "NoSchedule"}]})))
    p = core.create_namespaced_pod(namespace, pod("ok", runtimeClassName=rc, nodeSelector={"disk": "ssd"}))
    assert p.spec.overhead == {"cpu": "250m", "memory": "512Mi"}
    assert p.spec.node_selector == {"disk": "ssd", "runtime": "kata"}
    # After the DefaultTolerationSeconds ones, as upstream's plugin order has it.
    assert [(t.key, t.value, t.effect) for t in p.spec.tolerations] == [
        ("node.kubernetes.io/not-ready", None, "NoExecute"),
        ("node.kubernetes.io/unreachable", None, "NoExecute"),
        ("runtime", "kata", "NoSchedule")]

    code, status = create_error(core, namespace, pod("clash", runtimeClassName=rc, nodeSelector={"runtime": "gvisor"}))
    assert (code, status["reason"]) == (403, "Forbidden")
    assert status["message"] == ('pods "clash" is forbidden: conflict: runtimeClass.scheduling.nodeSelector[runtime] '
                                 '= kata; pod.spec.nodeSelector[runtime] = gvisor')
    code, status = create_error(core, namespace, pod("heavy", runtimeClassName=rc, overhead={"cpu": "1"}))
    assert code == 403
    assert status["message"] == ('pods "heavy" is forbidden: pod rejected: '
                                 "Pod's Overhead doesn't match RuntimeClass's defined Overhead")
    code, status = create_error(core, namespace, pod("classless", overhead={"cpu": "1"}))
    assert code == 403
    assert status["message"] == ('pods "classless" is forbidden: pod rejected: '
                                 "Pod Overhead set without corresponding RuntimeClass defined Overhead")
