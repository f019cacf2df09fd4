"""Events: they expire after --event-ttl, as upstream's do, and updates renew them."""

import json
import tempfile
import time

from kubernetes import client, config

from conftest import Server


def event(name, message):
    return client.CoreV1Event(
        metadata=client.V1ObjectMeta(name=name),
        involved_object=client.V1ObjectReference(kind="Pod", name="p", namespace="default"),
        reason="Testing",
        message=message,
        type="Normal",
    )


def names(api):
    return {e.metadata.name for e in api.list_namespaced_event("default").items}


def test_events_expire_after_their_ttl_and_updates_renew_it():
    with tempfile.TemporaryDirectory(prefix="wharf-e2e-events-") as d:
        s = Server(d, extra_args=["--event-ttl-seconds", "3"]).start()
        try:
            api = client.CoreV1Api(config.new_client_from_config(config_file=str(s.kubeconfig)))
            api.create_namespaced_event("default", event("short", "once"))
            api.create_namespaced_event("default", event("renewed", "first"))
            api.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="stays")))
            # Renew one event every second for longer than the TTL.
            for i in range(5):
                time.sleep(1)
                api.patch_namespaced_event("renewed", "default", {"message": f"again {i}"})
            assert "short" not in names(api)
            assert "renewed" in names(api)
            # Without writes, it goes too; other kinds never expire.
            deadline = time.time() + 10
            while "renewed" in names(api) and time.time() < deadline:
                time.sleep(0.5)
            assert "renewed" not in names(api)
            assert api.read_namespaced_config_map("stays", "default").metadata.name == "stays"
        finally:
            s.stop()


def test_events_k8s_io_and_core_events_are_one_resource(api_client, namespace):
    """As upstream, an Event written through either API is read through both."""
    core = client.CoreV1Api(api_client)
    ev1 = client.EventsV1Api(api_client)
    core.create_namespaced_event(namespace, client.CoreV1Event(
        metadata=client.V1ObjectMeta(name="from-core"),
        involved_object=client.V1ObjectReference(kind="Pod", name="p", namespace=namespace),
        reason="Started", message="started by core", type="Normal",
        source=client.V1EventSource(component="kubelet", host="n1"), count=2))
    body = {
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "from-v1"},
        "eventTime": "2026-11-28T00:00:00.000000Z",
        "reportingController": "wharf.dev/e2e", "reportingInstance": "e2e-1",
        "action": "Testing", "reason": "Tested", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "p", "namespace": namespace},
        "note": "written through events.k8s.io",
    }
    created = ev1.create_namespaced_event(namespace, body)
    assert created.note == "written through events.k8s.io"
    # Through core/v1: both, the events.k8s.io one with its fields mapped.
    seen = {e.metadata.name: e for e in core.list_namespaced_event(namespace).items}
    assert set(seen) == {"from-core", "from-v1"}
    assert seen["from-v1"].message == "written through events.k8s.io"
    assert seen["from-v1"].involved_object.name == "p"
    assert seen["from-v1"].reporting_component == "wharf.dev/e2e"
    # Through events.k8s.io/v1 (raw, since the client model insists on eventTime).
    params = api_client.param_serialize("GET", f"/apis/events.k8s.io/v1/namespaces/{namespace}/events",
                                        auth_settings=["BearerToken"])
    resp = api_client.call_api(*params)
    resp.read()
    raw = json.loads(resp.data)
    by_name = {i["metadata"]["name"]: i for i in raw["items"]}
    assert by_name["from-core"]["note"] == "started by core"
    assert by_name["from-core"]["deprecatedSource"] == {"component": "kubelet", "host": "n1"}
    assert by_name["from-core"]["deprecatedCount"] == 2
    assert by_name["from-v1"]["regarding"]["name"] == "p"
    assert by_name["from-v1"]["apiVersion"] == "events.k8s.io/v1"
    # One resourceVersion, one object: an update through one API shows in the other.
    core.patch_namespaced_event("from-v1", namespace, {"message": "patched through core"})
    assert ev1.read_namespaced_event("from-v1", namespace).note == "patched through core"
    ev1.delete_namespaced_event("from-core", namespace)
    assert {e.metadata.name for e in core.list_namespaced_event(namespace).items} == {"from-v1"}
