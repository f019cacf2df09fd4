"""Priority admission on pod creation: classes resolve to spec.priority and
spec.preemptionPolicy, and what upstream refuses is refused with its 403."""

from kubernetes import client
from conftest import create_pod_error as create_error, plain_pod as pod


def test_system_classes_exist(kubectl):
    out = kubectl.json("get", "priorityclasses")
    values = {pc["metadata"]["name"]: pc["value"] for pc in out["items"]}
    assert values["system-node-critical"] == 2000001000
    assert values["system-cluster-critical"] == 2000000000


def test_classes_resolve_and_mismatches_are_forbidden(api_client, core, namespace):
    sched = client.SchedulingV1Api(api_client)
    high = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
            "metadata": {"name": f"{namespace}-high"}, "value": 1000, "preemptionPolicy": "Never"}
    default = {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass",
               "metadata": {"name": f"{namespace}-default"}, "value": 7, "globalDefault": True}
    sched.create_priority_class(high)
    try:
        p = core.create_namespaced_pod(namespace, pod("hi", priorityClassName=f"{namespace}-high"))
        assert (p.spec.priority, p.spec.preemption_policy) == (1000, "Never")

        # Without a class and without a global default: 0.
        p = core.create_namespaced_pod(namespace, pod("plain"))
        assert (p.spec.priority, p.spec.preemption_policy) == (0, "PreemptLowerPriority")
        assert p.spec.priority_class_name is None

        code, status = create_error(core, namespace, pod("missing", priorityClassName="no-such-class"))
        assert (code, status["reason"]) == (403, "Forbidden")
        assert status["message"] == 'pods "missing" is forbidden: no PriorityClass with name no-such-class was found'

        code, status = create_error(core, namespace, pod("lying", priorityClassName=f"{namespace}-high", priority=5))
        assert (code, status["reason"]) == (403, "Forbidden")
        assert status["message"] == (
            'pods "lying" is forbidden: the integer value of priority (5) must not be provided in pod spec; '
            "priority admission controller computed 1000 from the given PriorityClass name")

        code, status = create_error(core, namespace, pod(
            "policy", priorityClassName=f"{namespace}-high", preemptionPolicy="PreemptLowerPriority"))
        assert code == 403
        assert "the string value of PreemptionPolicy (PreemptLowerPriority) must not be provided" in status["message"]

        # A global default class applies to pods without a class, and names itself.
        sched.create_priority_class(default)
        try:
            p = core.create_namespaced_pod(namespace, pod("defaulted"))
            assert (p.spec.priority, p.spec.priority_class_name) == (7, f"{namespace}-default")
        finally:
            sched.delete_priority_class(f"{namespace}-default")
    finally:
        sched.delete_priority_class(f"{namespace}-high")
