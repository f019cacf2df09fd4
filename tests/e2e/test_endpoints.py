"""The Endpoints and EndpointSlice controllers: services with a selector get
their pods' addresses (ready or not), named target ports resolved per pod,
headless services their pods' hostnames; services without a selector keep
what their users wrote."""

import json
import time

import pytest

from conftest import hollow_cluster, wait_for

WAIT = 20


@pytest.fixture(scope="module")
def cluster():
    """A server of its own with two hollow nodes, so pods run, get an IP and
    become Ready."""
    with hollow_cluster("ep", 2, "he") as (s, k):
        yield s, k


@pytest.fixture
def ns(cluster, request):
    _, k = cluster
    name = "ep-" + request.node.name.lower().replace("_", "-")[5:40].strip("-")
    k("create", "namespace", name)
    yield name
    k.run("delete", "namespace", name, "--wait=false", check=False)


def create(k, ns, obj):
    k("create", "-n", ns, "-f", "-", input=json.dumps(obj))


def pod(name, labels, ports=(), hostname=None, subdomain=None, ready=True):
    spec = {"containers": [{"name": "app", "image": "nginx",
                            "ports": [{"name": n, "containerPort": p} if n else {"containerPort": p}
                                      for n, p in ports]}]}
    if hostname:
        spec["hostname"] = hostname
    if subdomain:
        spec["subdomain"] = subdomain
    meta = {"name": name, "labels": labels}
    if not ready:
        meta["annotations"] = {"hollow.wharf.dev/ready": "false"}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}


def service(name, selector, ports, **spec):
    s = {"ports": ports, **spec}
    if selector is not None:
        s["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"team": "a"}}, "spec": s}


def running_ip(k, ns, name):
    """The pod's IP once it runs (ready or not)."""
    def ip():
        p = k.json("get", "pod", "-n", ns, name)
        st = p.get("status", {})
        return st.get("podIP") if st.get("phase") == "Running" else None
    return wait_for(f"{name} running", ip, timeout=WAIT)


def endpoints(k, ns, name):
    r = k.run("get", "endpoints", "-n", ns, name, "-o", "json", check=False)
    return json.loads(r.stdout) if r.returncode == 0 else None


def slices(k, ns, svc):
    return k.json("get", "endpointslices", "-n", ns, "-l", f"kubernetes.io/service-name={svc}")["items"]


def addresses(ep, key="addresses"):
    """(ip, port numbers) per address across subsets."""
    out = {}
    for ss in ep.get("subsets") or []:
        for a in ss.get(key) or []:
            out.setdefault(a["ip"], set()).update(p["port"] for p in ss.get("ports") or [])
    return out


def slice_endpoints(items):
    """ip -> (ready, serving, terminating, ports) over the given slices."""
    out = {}
    for s in items:
        ports = sorted(p["port"] for p in s.get("ports") or [])
        for e in s.get("endpoints") or []:
            c = e["conditions"]
            for ip in e["addresses"]:
                out[ip] = (c.get("ready"), c.get("serving"), c.get("terminating"), ports)
    return out


def test_service_gets_endpoints_and_an_endpointslice(cluster, ns):
    s, k = cluster
    create(k, ns, pod("web-a", {"app": "web"}, [("http", 8080)]))
    create(k, ns, pod("web-b", {"app": "web"}, [("http", 8080)]))
    create(k, ns, pod("other", {"app": "other"}, [("http", 8080)]))
    create(k, ns, service("web", {"app": "web"}, [
        {"name": "http", "port": 80, "targetPort": "http"},
        {"name": "admin", "port": 81, "targetPort": 9000, "appProtocol": "http"}]))
    ip_a, ip_b = running_ip(k, ns, "web-a"), running_ip(k, ns, "web-b")
    want = {ip_a: {8080, 9000}, ip_b: {8080, 9000}}
    ep = wait_for("endpoints of web", lambda: (lambda e: e if e and addresses(e) == want else None)(
        endpoints(k, ns, "web")), timeout=WAIT)
    assert len(ep["subsets"]) == 1
    ports = {p["name"]: p for p in ep["subsets"][0]["ports"]}
    assert ports["http"] == {"name": "http", "port": 8080, "protocol": "TCP"}
    assert ports["admin"] == {"name": "admin", "port": 9000, "protocol": "TCP", "appProtocol": "http"}
    a = next(a for a in ep["subsets"][0]["addresses"] if a["ip"] == ip_a)
    assert a["nodeName"].startswith("he-")
    pod_a = k.json("get", "pod", "-n", ns, "web-a")
    assert a["targetRef"] == {"kind": "Pod", "namespace": ns, "name": "web-a", "uid": pod_a["metadata"]["uid"]}
    assert ep["metadata"]["labels"] == {"team": "a", "endpoints.kubernetes.io/managed-by": "endpoint-controller"}
    assert "endpoints.kubernetes.io/last-change-trigger-time" in ep["metadata"]["annotations"]
    table = k("get", "endpoints", "-n", ns, "web")
    assert f"{ip_a}:" in table and f"{ip_b}:" in table, table

    items = wait_for("the slice of web", lambda: (lambda it: it if len(slice_endpoints(it)) == 2 else None)(
        slices(k, ns, "web")), timeout=WAIT)
    assert len(items) == 1
    sl = items[0]
    assert sl["addressType"] == "IPv4"
    assert sl["metadata"]["name"].startswith("web-")
    assert sl["metadata"]["labels"] == {"team": "a", "kubernetes.io/service-name": "web",
                                        "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    svc = k.json("get", "service", "-n", ns, "web")
    assert sl["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                                  "uid": svc["metadata"]["uid"], "controller": True,
                                                  "blockOwnerDeletion": True}]
    assert sorted((p["name"], p["port"], p["protocol"], p.get("appProtocol")) for p in sl["ports"]) == [
        ("admin", 9000, "TCP", "http"), ("http", 8080, "TCP", None)]
    assert slice_endpoints(items) == {ip_a: (True, True, False, [8080, 9000]), ip_b: (True, True, False, [8080, 9000])}
    e = next(e for e in sl["endpoints"] if e["addresses"] == [ip_a])
    assert e["targetRef"]["name"] == "web-a" and e["nodeName"] == pod_a["spec"]["nodeName"]
    assert "web-" in k("get", "endpointslices", "-n", ns)

    # The official client reads both (it insists on the required fields).
    from kubernetes import client, config
    api = config.new_client_from_config(config_file=str(s.kubeconfig))
    got = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(ns, label_selector="kubernetes.io/service-name=web")
    assert got.items[0].address_type == "IPv4" and len(got.items[0].endpoints) == 2
    assert client.CoreV1Api(api).read_namespaced_endpoints("web", ns).subsets[0].ports

    # A pod change that moves no endpoint rewrites nothing.
    ep_rv = endpoints(k, ns, "web")["metadata"]["resourceVersion"]
    sl_rv = slices(k, ns, "web")[0]["metadata"]["resourceVersion"]
    k("label", "-n", ns, "pod", "web-a", "extra=1")
    time.sleep(2)
    assert endpoints(k, ns, "web")["metadata"]["resourceVersion"] == ep_rv
    assert slices(k, ns, "web")[0]["metadata"]["resourceVersion"] == sl_rv

    # Deleting a pod removes its address, from both.
    k("delete", "pod", "-n", ns, "web-b", "--wait=false")
    wait_for("web-b gone from endpoints", lambda: addresses(endpoints(k, ns, "web")) == {ip_a: {8080, 9000}},
             timeout=WAIT)
    wait_for("web-b gone from the slice", lambda: set(slice_endpoints(slices(k, ns, "web"))) == {ip_a},
             timeout=WAIT)
    # The slice was updated in place, not replaced.
    assert [x["metadata"]["name"] for x in slices(k, ns, "web")] == [sl["metadata"]["name"]]

    # Deleting the service removes its Endpoints and slices.
    k("delete", "service", "-n", ns, "web")
    wait_for("endpoints deleted", lambda: endpoints(k, ns, "web") is None, timeout=WAIT)
    wait_for("slices deleted", lambda: slices(k, ns, "web") == [], timeout=WAIT)


def test_not_ready_pods_and_publish_not_ready_addresses(cluster, ns):
    _, k = cluster
    create(k, ns, pod("up", {"app": "db"}, [("pg", 5432)]))
    create(k, ns, pod("down", {"app": "db"}, [("pg", 5432)], ready=False))
    ports = [{"name": "pg", "port": 5432, "targetPort": "pg"}]
    create(k, ns, service("db", {"app": "db"}, ports))
    create(k, ns, service("db-all", {"app": "db"}, ports, publishNotReadyAddresses=True))
    up, down = running_ip(k, ns, "up"), running_ip(k, ns, "down")

    ep = wait_for("db endpoints", lambda: (lambda e: e if e and addresses(e, "notReadyAddresses") else None)(
        endpoints(k, ns, "db")), timeout=WAIT)
    assert addresses(ep) == {up: {5432}}
    assert addresses(ep, "notReadyAddresses") == {down: {5432}}
    wait_for("db slice conditions", lambda: slice_endpoints(slices(k, ns, "db")) == {
        up: (True, True, False, [5432]), down: (False, False, False, [5432])}, timeout=WAIT)

    # Published regardless of readiness: ready in both, serving says the truth.
    wait_for("db-all endpoints", lambda: addresses(endpoints(k, ns, "db-all") or {}) == {up: {5432}, down: {5432}},
             timeout=WAIT)
    assert "notReadyAddresses" not in endpoints(k, ns, "db-all")["subsets"][0]
    wait_for("db-all slice conditions", lambda: slice_endpoints(slices(k, ns, "db-all")) == {
        up: (True, True, False, [5432]), down: (True, False, False, [5432])}, timeout=WAIT)

    # The pod becomes ready: it moves over.
    k("annotate", "-n", ns, "pod", "down", "hollow.wharf.dev/ready=true", "--overwrite")
    wait_for("down ready in endpoints", lambda: addresses(endpoints(k, ns, "db")) == {up: {5432}, down: {5432}},
             timeout=WAIT)
    wait_for("down ready in the slice", lambda: slice_endpoints(slices(k, ns, "db"))[down] == (True, True, False, [5432]),
             timeout=WAIT)


def test_terminating_pods_leave_endpoints_but_stay_in_slices(cluster, ns):
    _, k = cluster
    held = pod("held", {"app": "t"}, [("http", 80)])
    held["metadata"]["finalizers"] = ["example.com/hold"]
    create(k, ns, held)
    create(k, ns, service("t", {"app": "t"}, [{"name": "http", "port": 80, "targetPort": "http"}]))
    ip = running_ip(k, ns, "held")
    wait_for("held ready in the slice", lambda: slice_endpoints(slices(k, ns, "t")).get(ip) == (True, True, False, [80]),
             timeout=WAIT)
    # Deleted, but kept by its finalizer: terminating, still serving.
    k("delete", "pod", "-n", ns, "held", "--wait=false")
    wait_for("held terminating in the slice",
             lambda: slice_endpoints(slices(k, ns, "t")).get(ip) == (False, True, True, [80]), timeout=WAIT)
    wait_for("held gone from endpoints", lambda: not (endpoints(k, ns, "t") or {}).get("subsets"), timeout=WAIT)
    k("patch", "-n", ns, "pod", "held", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    wait_for("held gone from the slice", lambda: not slice_endpoints(slices(k, ns, "t")), timeout=WAIT)


def test_named_target_port_is_resolved_per_pod(cluster, ns):
    _, k = cluster
    create(k, ns, pod("v1", {"app": "api"}, [("web", 8080)]))
    create(k, ns, pod("v2", {"app": "api"}, [("web", 8081)]))
    create(k, ns, pod("bare", {"app": "api"}, [(None, 7000)]))
    create(k, ns, service("api", {"app": "api"}, [{"name": "web", "port": 80, "targetPort": "web"}]))
    v1, v2, bare = (running_ip(k, ns, n) for n in ("v1", "v2", "bare"))
    ep = wait_for("api endpoints", lambda: (lambda e: e if e and addresses(e) == {v1: {8080}, v2: {8081}} else None)(
        endpoints(k, ns, "api")), timeout=WAIT)
    # One subset per port number; the pod without the name is not listed.
    assert sorted(ss["ports"][0]["port"] for ss in ep["subsets"]) == [8080, 8081]
    # Slices group pods by resolved ports; the pod without it gets a portless slice.
    got = wait_for("api slices", lambda: (lambda it: it if len(slice_endpoints(it)) == 3 else None)(
        slices(k, ns, "api")), timeout=WAIT)
    assert slice_endpoints(got) == {v1: (True, True, False, [8080]), v2: (True, True, False, [8081]),
                                    bare: (True, True, False, [])}
    assert len(got) == 3


def test_headless_service_publishes_hostnames(cluster, ns):
    _, k = cluster
    create(k, ns, pod("db-0", {"app": "pg"}, [("pg", 5432)], hostname="db-0", subdomain="pg"))
    create(k, ns, pod("db-x", {"app": "pg"}, [("pg", 5432)], hostname="db-x", subdomain="elsewhere"))
    create(k, ns, service("pg", {"app": "pg"}, [{"name": "pg", "port": 5432}], clusterIP="None"))
    ip0, ipx = running_ip(k, ns, "db-0"), running_ip(k, ns, "db-x")
    ep = wait_for("pg endpoints", lambda: (lambda e: e if e and len(addresses(e)) == 2 else None)(
        endpoints(k, ns, "pg")), timeout=WAIT)
    by_ip = {a["ip"]: a for ss in ep["subsets"] for a in ss["addresses"]}
    assert by_ip[ip0]["hostname"] == "db-0"
    assert "hostname" not in by_ip[ipx]
    assert ep["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    items = wait_for("pg slice", lambda: (lambda it: it if len(slice_endpoints(it)) == 2 else None)(
        slices(k, ns, "pg")), timeout=WAIT)
    assert items[0]["metadata"]["labels"]["service.kubernetes.io/headless"] == ""
    hosts = {e["addresses"][0]: e.get("hostname") for s in items for e in s["endpoints"]}
    assert hosts == {ip0: "db-0", ipx: None}


def test_services_without_selector_are_left_to_their_users(cluster, ns):
    _, k = cluster
    create(k, ns, service("ext", None, [{"name": "pg", "port": 5432}]))
    create(k, ns, {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "ext"},
                   "subsets": [{"addresses": [{"ip": "192.0.2.10"}], "ports": [{"name": "pg", "port": 5432}]}]})
    create(k, ns, service("cname", {"app": "x"}, [], type="ExternalName", externalName="db.example.com"))
    before = endpoints(k, ns, "ext")
    # Give the controllers time to (not) act, proven by a managed service
    # in the same namespace being handled meanwhile.
    create(k, ns, service("probe", {"app": "none"}, [{"name": "p", "port": 1}]))
    wait_for("probe endpoints", lambda: endpoints(k, ns, "probe") is not None, timeout=WAIT)
    wait_for("probe slice", lambda: slices(k, ns, "probe"), timeout=WAIT)
    time.sleep(1)
    after = endpoints(k, ns, "ext")
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert after["subsets"] == before["subsets"]
    assert slices(k, ns, "ext") == []
    assert endpoints(k, ns, "cname") is None and slices(k, ns, "cname") == []
    # A service with no pods has an empty Endpoints and a placeholder slice.
    assert not endpoints(k, ns, "probe").get("subsets")
    [placeholder] = slices(k, ns, "probe")
    assert not placeholder.get("endpoints") and not placeholder.get("ports")

    # Left over from services deleted while the controllers were away: what
    # they manage goes, what users wrote stays.
    create(k, ns, {"apiVersion": "v1", "kind": "Endpoints", "metadata": {
        "name": "gone", "labels": {"endpoints.kubernetes.io/managed-by": "endpoint-controller"}}})
    create(k, ns, {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
                   "metadata": {"name": "gone-abc", "labels": {
                       "kubernetes.io/service-name": "gone",
                       "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}},
                   "endpoints": []})
    create(k, ns, {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "mine"},
                   "subsets": [{"addresses": [{"ip": "192.0.2.11"}]}]})
    wait_for("leftover endpoints deleted", lambda: endpoints(k, ns, "gone") is None, timeout=WAIT)
    wait_for("leftover slice deleted", lambda: slices(k, ns, "gone") == [], timeout=WAIT)
    assert endpoints(k, ns, "mine")["subsets"][0]["addresses"] == [{"ip": "192.0.2.11"}]

    # The API server's own `kubernetes` service keeps its endpoints.
    kep = k.json("get", "endpoints", "-n", "default", "kubernetes")
    assert kep["subsets"][0]["addresses"] == [{"ip": "127.0.0.1"}]
    assert "endpoints.kubernetes.io/managed-by" not in kep["metadata"].get("labels", {})
    assert [s["metadata"]["name"] for s in slices(k, "default", "kubernetes")] == ["kubernetes"]
