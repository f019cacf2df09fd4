"""Events: they expire after --event-ttl, as upstream's do, and updates renew them."""

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
