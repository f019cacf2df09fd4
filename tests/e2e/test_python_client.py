"""Issue #3 acceptance with the official Python client."""

import json
import ssl
import tempfile
import threading
import time
import urllib.request

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from conftest import Server


# Every namespace also has kube-root-ca.crt (the root CA publisher's): a
# field selector that leaves it out.
NOT_ROOT_CA = "metadata.name!=kube-root-ca.crt"


def cm(name, labels=None, data=None):
    return client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, labels=labels), data=data or {"k": "v"})


def test_list_and_watch_resume(core, namespace):
    core.create_namespaced_config_map(namespace, cm("a"))
    lst = core.list_namespaced_config_map(namespace, field_selector=NOT_ROOT_CA)
    rv = lst.metadata.resource_version
    assert [i.metadata.name for i in lst.items] == ["a"]
    core.create_namespaced_config_map(namespace, cm("b"))
    core.patch_namespaced_config_map("a", namespace, {"data": {"k": "changed"}})
    core.delete_namespaced_config_map("b", namespace)
    w = watch.Watch()
    events = []
    for ev in w.stream(core.list_namespaced_config_map, namespace, resource_version=rv, timeout_seconds=5,
                       field_selector=NOT_ROOT_CA):
        events.append((ev["type"], ev["object"].metadata.name))
        if len(events) == 3:
            w.stop()
    assert events == [("ADDED", "b"), ("MODIFIED", "a"), ("DELETED", "b")]


def test_stale_update_conflicts(core, namespace):
    core.create_namespaced_config_map(namespace, cm("c"))
    first = core.read_namespaced_config_map("c", namespace)
    first.data = {"k": "one"}
    core.replace_namespaced_config_map("c", namespace, first)
    first.data = {"k": "two"}
    with pytest.raises(ApiException) as e:
        core.replace_namespaced_config_map("c", namespace, first)
    assert e.value.status == 409
    assert json.loads(e.value.body)["reason"] == "Conflict"


def test_paging_consistent_while_writing(core, namespace):
    for i in range(1000):
        core.create_namespaced_config_map(namespace, cm(f"p{i:04d}", data={"i": str(i)}))
    stop = threading.Event()

    def churn():
        i = 0
        while not stop.is_set():
            core.create_namespaced_config_map(namespace, cm(f"z{i:05d}"))
            core.patch_namespaced_config_map(f"p{i % 1000:04d}", namespace, {"data": {"i": "changed"}})
            i += 1

    t = threading.Thread(target=churn)
    t.start()
    try:
        names, token, rvs = [], None, set()
        while True:
            page = core.list_namespaced_config_map(namespace, limit=100, _continue=token)
            rvs.add(page.metadata.resource_version)
            names += [i.metadata.name for i in page.items]
            # Every item is as it was at the list's revision, not later.
            assert all(int(i.metadata.resource_version) <= int(page.metadata.resource_version) for i in page.items)
            token = page.metadata._continue
            if not token:
                break
            time.sleep(0.05)
    finally:
        stop.set()
        t.join()
    assert [n for n in names if n.startswith("p")] == [f"p{i:04d}" for i in range(1000)]
    assert len(rvs) == 1


def test_error_reasons_and_codes(core, api_client, server, namespace):
    def status_of(fn):
        with pytest.raises(ApiException) as e:
            fn()
        body = json.loads(e.value.body) if e.value.body else {}
        return e.value.status, body.get("reason")

    assert status_of(lambda: core.read_namespaced_config_map("nope", namespace)) == (404, "NotFound")
    core.create_namespaced_config_map(namespace, cm("dup"))
    assert status_of(lambda: core.create_namespaced_config_map(namespace, cm("dup"))) == (409, "AlreadyExists")
    code, reason = status_of(lambda: core.create_namespaced_config_map(namespace, cm("Bad_Name")))
    assert (code, reason) == (422, "Invalid")
    assert status_of(lambda: core.list_namespaced_config_map(namespace, label_selector="a in b")) == (400, "BadRequest")

    base = f"https://127.0.0.1:{server.port}"
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def raw(method, path, body=None, headers=None, authed=True):
        h = dict(headers or {})
        if authed:
            c = api_client.configuration
            ctx2 = ssl.create_default_context(cafile=c.ssl_ca_cert)
            ctx2.check_hostname = False
            ctx2.load_cert_chain(c.cert_file, c.key_file)
            use = ctx2
        else:
            use = ctx
        req = urllib.request.Request(base + path, data=body, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, context=use, timeout=10) as r:
                return r.status, json.loads(r.read() or b"{}"), r.headers
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"{}"), e.headers

    code, body, _ = raw("GET", "/api/v1/namespaces", authed=False)
    assert (code, body["reason"]) == (401, "Unauthorized")
    code, body, _ = raw("POST", f"/api/v1/namespaces/{namespace}/configmaps/dup", b"{}", {"Content-Type": "application/json"})
    assert (code, body["reason"]) == (405, "MethodNotAllowed")
    code, body, _ = raw("GET", f"/api/v1/namespaces/{namespace}/configmaps", headers={"Accept": "text/html"})
    assert (code, body["reason"]) == (406, "NotAcceptable")
    code, body, _ = raw("POST", f"/api/v1/namespaces/{namespace}/configmaps", b"x", {"Content-Type": "text/plain"})
    assert (code, body["reason"]) == (415, "UnsupportedMediaType")
    big = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"}, "data": {"x": "y" * (4 << 20)}}).encode()
    code, body, _ = raw("POST", f"/api/v1/namespaces/{namespace}/configmaps", big, {"Content-Type": "application/json"})
    assert (code, body["reason"]) == (413, "RequestEntityTooLarge")
    deep = ("[" * 10000 + "]" * 10000).encode()
    code, body, _ = raw("POST", f"/api/v1/namespaces/{namespace}/configmaps", deep, {"Content-Type": "application/json"})
    assert (code, body["reason"]) == (400, "BadRequest")

    # 429: an eviction a PodDisruptionBudget forbids.
    policy = client.PolicyV1Api(api_client)
    pod = client.V1Pod(metadata=client.V1ObjectMeta(name="guarded", labels={"app": "guarded"}),
                       spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")]))
    core.create_namespaced_pod(namespace, pod)
    pdb = client.V1PodDisruptionBudget(metadata=client.V1ObjectMeta(name="pdb"),
                                       spec=client.V1PodDisruptionBudgetSpec(min_available=1, selector=client.V1LabelSelector(match_labels={"app": "guarded"})))
    policy.create_namespaced_pod_disruption_budget(namespace, pdb)
    ev = client.V1Eviction(metadata=client.V1ObjectMeta(name="guarded", namespace=namespace))
    with pytest.raises(ApiException) as e:
        core.create_namespaced_pod_eviction("guarded", namespace, ev)
    assert e.value.status == 429 and json.loads(e.value.body)["reason"] == "TooManyRequests"
    assert e.value.headers.get("Retry-After")

    # 403: no new content in a terminating namespace.
    core.create_namespaced_pod(namespace, client.V1Pod(metadata=client.V1ObjectMeta(name="keeper", finalizers=["example.com/hold"]),
                                                       spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox")])))
    core.delete_namespace(namespace)
    with pytest.raises(ApiException) as e:
        core.create_namespaced_config_map(namespace, cm("late"))
    st = json.loads(e.value.body)
    assert (e.value.status, st["reason"]) == (403, "Forbidden")
    assert st["message"] == (f'configmaps "late" is forbidden: unable to create new content in namespace '
                             f'{namespace} because it is being terminated')
    assert st["details"]["causes"] == [{"reason": "NamespaceTerminating", "field": "metadata.namespace",
                                        "message": f"namespace {namespace} is being terminated"}]
    core.patch_namespaced_pod("keeper", namespace, {"metadata": {"finalizers": None}})


def test_gone_after_compaction_then_relist():
    with tempfile.TemporaryDirectory(prefix="wharf-e2e-410-") as d:
        s = Server(d, extra_args=["--compaction-interval-seconds", "1"]).start()
        try:
            api = client.CoreV1Api(config.new_client_from_config(config_file=str(s.kubeconfig)))
            api.create_namespaced_config_map("default", cm("old"))
            old_rv = api.list_namespaced_config_map("default").metadata.resource_version
            for i in range(5):
                api.create_namespaced_config_map("default", cm(f"n{i}"))
            time.sleep(3)
            # A restart moves the watch cache's window past the old revision, so
            # the store answers; it has compacted that history away.
            s.stop()
            s.start()
            api = client.CoreV1Api(config.new_client_from_config(config_file=str(s.kubeconfig)))
            with pytest.raises(ApiException) as e:
                for _ in watch.Watch().stream(api.list_namespaced_config_map, "default", resource_version=old_rv, timeout_seconds=5):
                    pass
            assert e.value.status == 410
            with pytest.raises(ApiException) as e:
                api.list_namespaced_config_map("default", resource_version=old_rv, resource_version_match="Exact")
            assert e.value.status == 410
            # The client's answer to 410: relist, then watch from the new revision.
            fresh = api.list_namespaced_config_map("default")
            names = {i.metadata.name for i in fresh.items}
            assert {"old", "n0", "n4"} <= names
            api.create_namespaced_config_map("default", cm("after"))
            got = [ev["object"].metadata.name for ev in watch.Watch().stream(
                api.list_namespaced_config_map, "default", resource_version=fresh.metadata.resource_version, timeout_seconds=3)]
            assert got == ["after"]
        finally:
            s.stop()


def test_restart_keeps_objects_versions_ips_and_watches():
    with tempfile.TemporaryDirectory(prefix="wharf-e2e-restart-") as d:
        s = Server(d).start()
        try:
            api = client.CoreV1Api(config.new_client_from_config(config_file=str(s.kubeconfig)))
            svc = client.V1Service(metadata=client.V1ObjectMeta(name="keep"),
                                   spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)], selector={"a": "b"}))
            created = api.create_namespaced_service("default", svc)
            api.create_namespaced_config_map("default", cm("keep"))
            before = api.read_namespaced_config_map("keep", "default")
            rv = api.list_namespaced_config_map("default").metadata.resource_version
            s.stop()
            s.start()
            api = client.CoreV1Api(config.new_client_from_config(config_file=str(s.kubeconfig)))
            after = api.read_namespaced_config_map("keep", "default")
            assert after.metadata.resource_version == before.metadata.resource_version
            assert after.metadata.uid == before.metadata.uid
            assert api.read_namespaced_service("keep", "default").spec.cluster_ip == created.spec.cluster_ip
            api.create_namespaced_config_map("default", cm("new"))
            # Not the namespace's kube-root-ca.crt, which the root CA
            # publisher may create after `rv` was taken.
            got = [ev["object"].metadata.name for ev in watch.Watch().stream(
                api.list_namespaced_config_map, "default", resource_version=rv, timeout_seconds=3,
                field_selector=NOT_ROOT_CA)]
            assert got == ["new"]
            # No other service got the same address after the restart.
            other = api.create_namespaced_service("default", client.V1Service(
                metadata=client.V1ObjectMeta(name="other"), spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)])))
            assert other.spec.cluster_ip != created.spec.cluster_ip
        finally:
            s.stop()


def test_slow_watch_client_does_not_block_writers(core, api_client, namespace):
    """A watcher that never reads is cut off; writers and other watchers go on."""
    stalled = core.list_namespaced_config_map(namespace, watch=True, _preload_content=False, timeout_seconds=60)
    rv = core.list_namespaced_config_map(namespace).metadata.resource_version
    started = time.time()
    # 1,000 objects of 16 KB: more than the server buffers plus the kernel's
    # socket buffers hold for a client that reads nothing.
    for i in range(1000):
        core.create_namespaced_config_map(namespace, cm(f"s{i:04d}", data={"pad": "x" * 16000}))
    assert time.time() - started < 120
    # A healthy watcher from before the burst still sees every change once.
    names = []
    for ev in watch.Watch().stream(core.list_namespaced_config_map, namespace, resource_version=rv, timeout_seconds=10):
        # The namespace's kube-root-ca.crt may be published meanwhile.
        if ev["object"].metadata.name == "kube-root-ca.crt":
            continue
        names.append(ev["object"].metadata.name)
        if len(names) == 1000:
            break
    assert names == [f"s{i:04d}" for i in range(1000)]
    # The stalled one was closed by the server: its stream ends short of 1000 events.
    data = b""
    try:
        for chunk in stalled.stream(65536):
            data += chunk
    except Exception:
        pass
    assert data.count(b'"type":"ADDED"') < 1000
    stalled.release_conn()
