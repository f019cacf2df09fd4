"""The service proxy with real pods: `wharf server` runs its kubelet (own
containerd) and its proxy, which programs its own nft table (a unique name
per test server, deleted at the end). From the host: a Deployment of busybox
httpd pods exposed with `kubectl expose` answers on its ClusterIP and on a
NodePort of the node's address; scaled to 0 the ClusterIP refuses at once;
a LoadBalancer Service gets the node's address as ingress (ServiceLB) and
answers there.

The node's address is the host's first IPv4 address (not 127.0.0.1: like
kube-proxy's nftables mode, the proxy does not serve NodePorts on
localhost), so the server advertises it (and listens on every address, as
the kubeconfig names the advertised one)."""

import json
import random
import re
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import WHARF
from images import busybox_archive
from kubelet_node import kubelet_node, wait_for

IMAGE = "localhost/e2e-proxy:1"
NODE = "e2e-proxy"
BODY = "hello through the proxy"


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.read().decode()
    except Exception:
        return None


def connect_error(ip, port):
    """How a TCP connect ends: None if it connected, else the exception."""
    try:
        with socket.create_connection((ip, port), timeout=5):
            return None
    except OSError as e:
        return e


@pytest.fixture(scope="module")
def cluster():
    svc_cidr = f"10.{random.randint(100, 149)}.0.0/16"
    table = f"wharf-e2e-{random.randrange(1 << 32):08x}"
    args = ["--service-cidr", svc_cidr, "--disable-dns"]
    try:
        with kubelet_node(NODE, extra_args=args, proxy_table=table, import_image=False) as (s, k, d):
            archive = Path(d) / "busybox.tar"
            busybox_archive(archive, IMAGE, (BODY + "\n").encode())
            subprocess.run([WHARF, "images", "import", "--data-dir", d, str(archive)], check=True,
                           capture_output=True, timeout=60)
            yield k, s.ip, table, svc_cidr
            k.run("delete", "deployments,services", "--all", check=False, timeout=60)
    finally:
        assert table not in subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout


def all_endpoints(k, svc):
    slices = json.loads(k("get", "endpointslices", "-l", f"kubernetes.io/service-name={svc}", "-o", "json"))["items"]
    return [a for s in slices for e in (s.get("endpoints") or []) for a in e["addresses"]]


def ready_endpoints(k, svc):
    slices = json.loads(k("get", "endpointslices", "-l", f"kubernetes.io/service-name={svc}", "-o", "json"))["items"]
    return [a for s in slices for e in (s.get("endpoints") or [])
            if (e.get("conditions") or {}).get("ready") for a in e["addresses"]]


def test_cluster_ip_node_port_and_no_endpoints(cluster):
    k, ip, table, svc_cidr = cluster
    k("create", "deployment", "web", f"--image={IMAGE}", "--replicas=2", "--",
      "httpd", "-f", "-p", "8080", "-h", "/www")
    k("expose", "deployment", "web", "--port=80", "--target-port=8080", "--type=NodePort")
    svc = json.loads(k("get", "service", "web", "-o", "json"))
    cip = svc["spec"]["clusterIP"]
    node_port = svc["spec"]["ports"][0]["nodePort"]
    prefix = svc_cidr.split(".")[:2]
    assert cip.split(".")[:2] == prefix
    wait_for("two ready endpoints", lambda: len(ready_endpoints(k, "web")) == 2, timeout=90)

    body = wait_for("the ClusterIP to answer", lambda: get(f"http://{cip}/"), timeout=30)
    assert BODY in body
    assert BODY in wait_for("the NodePort to answer", lambda: get(f"http://{ip}:{node_port}/"), timeout=30)
    rules = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True).stdout
    assert f"{cip} . tcp . 80 : goto svc-default/web/tcp/80" in rules
    assert f"tcp . {node_port} : goto ext-default/web/tcp/80" in rules

    # Scaled to 0: refused at once (a reset from the proxy), not a timeout.
    # Terminating pods that still serve keep getting traffic while no pod
    # is ready (upstream's fallback; busybox httpd ignores SIGTERM), so
    # wait until they are gone.
    k("scale", "deployment", "web", "--replicas=0")
    wait_for("no endpoints", lambda: not all_endpoints(k, "web"), timeout=90)
    wait_for("the ClusterIP to refuse", lambda: connect_error(cip, 80), timeout=10)
    start = time.time()
    err = connect_error(cip, 80)
    assert isinstance(err, ConnectionRefusedError), err
    assert time.time() - start < 1
    assert isinstance(connect_error(ip, node_port), ConnectionRefusedError)


def test_load_balancer_gets_the_node_address(cluster):
    k, ip, table, _ = cluster
    k("create", "deployment", "lb", f"--image={IMAGE}", "--replicas=1", "--",
      "httpd", "-f", "-p", "8080", "-h", "/www")
    k("expose", "deployment", "lb", "--port=8089", "--target-port=8080", "--type=LoadBalancer")
    ingress = wait_for("the load balancer's address", lambda: json.loads(k(
        "get", "service", "lb", "-o", "json"))["status"].get("loadBalancer", {}).get("ingress"), timeout=30)
    assert ingress == [{"ip": ip, "ipMode": "VIP"}]
    assert ip in k("get", "service", "lb")  # EXTERNAL-IP column
    wait_for("a ready endpoint", lambda: ready_endpoints(k, "lb"), timeout=90)
    assert BODY in wait_for("the load balancer to answer", lambda: get(f"http://{ip}:8089/"), timeout=30)


def standalone_proxy(server):
    """`wharf proxy` alone (node n1) against `server`, with a table of its own:
    (table name, process, a function listing the table)."""
    table = f"wharf-e2e-{random.randrange(1 << 32):08x}"
    log = open(Path(server.data_dir) / f"{table}.log", "ab")
    p = subprocess.Popen([WHARF, "proxy", "--kubeconfig", str(server.kubeconfig), "--hostname-override", "n1",
                          "--cluster-cidr", "10.42.0.0/16", "--proxy-table-name", table],
                         stdout=log, stderr=subprocess.STDOUT)
    listing = lambda: subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True).stdout
    return table, p, listing


def test_standalone_proxy_follows_a_selectorless_service(server, kubectl, namespace):
    """`wharf proxy` alone against a server without agent: a Service with a
    hand-written EndpointSlice shows up in (and leaves) its own table."""
    table, p, listing = standalone_proxy(server)
    try:
        kubectl("create", "-n", namespace, "-f", "-", input=f"""
apiVersion: v1
kind: Service
metadata: {{name: manual}}
spec:
  ports: [{{port: 80, targetPort: 8080, protocol: UDP}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: manual-1
  labels: {{kubernetes.io/service-name: manual}}
addressType: IPv4
ports: [{{port: 8080, protocol: UDP}}]
endpoints: [{{addresses: [10.42.7.7], nodeName: n1, conditions: {{ready: true}}}}]
""")
        cip = kubectl("get", "service", "manual", "-n", namespace, "-o", "jsonpath={.spec.clusterIP}")
        wait_for("the service in the table", lambda: f"{cip} . udp . 80 : goto svc-{namespace}/manual/udp/80" in listing(),
                 timeout=30)
        assert f"dnat ip to numgen random mod 1 map @eps-{namespace}/manual/udp/80" in listing()
        assert "0 : 10.42.7.7 . 8080" in listing()
        kubectl("delete", "endpointslice", "manual-1", "-n", namespace)
        wait_for("the service rejected", lambda: f"{cip} . udp . 80 : goto reject-chain" in listing(), timeout=30)
        assert "10.42.7.7" not in listing()
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
        # It leaves its table on exit, as kube-proxy; --cleanup removes it.
        assert table in subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        subprocess.run([WHARF, "proxy", "--cleanup", "--proxy-table-name", table], check=True, capture_output=True)
        assert table not in subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout


def test_proxy_converges_within_a_second_after_an_endpoint_churn_storm(server, kubectl, api_client, namespace):
    """Issue 7: threads rewrite the EndpointSlices of ten Services as fast
    as the API takes it for a few seconds; one second after the last write
    the standalone proxy's table holds exactly each Service's last endpoints
    (Service i's endpoints are 10.42.i.x, so stale ones are seen)."""
    import threading
    from kubernetes import client

    table, p, listing = standalone_proxy(server)
    services = 10
    docs = []
    for i in range(services):
        docs.append(f"""apiVersion: v1
kind: Service
metadata: {{name: churn-{i}}}
spec:
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: churn-{i}
  labels: {{kubernetes.io/service-name: churn-{i}}}
addressType: IPv4
ports: [{{port: 8080, protocol: TCP}}]
endpoints: [{{addresses: [10.42.{i}.1], conditions: {{ready: true}}}}]
""")
    try:
        kubectl("create", "-n", namespace, "-f", "-", input="---\n".join(docs))
        wait_for("the services in the table", lambda: all(f"10.42.{i}.1 . 8080" in listing() for i in range(services)),
                 timeout=30)
        disc = client.DiscoveryV1Api(api_client)
        final = {}
        writes = [0]
        lock = threading.Lock()
        stop_at = time.time() + 4

        def churn(owned, seed):
            rnd = random.Random(seed)
            while time.time() < stop_at:
                for i in owned:
                    ips = sorted({f"10.42.{i}.{rnd.randint(1, 40)}" for _ in range(rnd.randint(0, 5))})
                    body = {"endpoints": [{"addresses": [a], "conditions": {"ready": True}} for a in ips]}
                    disc.patch_namespaced_endpoint_slice(f"churn-{i}", namespace, body)
                    with lock:
                        final[i] = ips
                        writes[0] += 1

        threads = [threading.Thread(target=churn, args=(range(t, services, 4), t)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stopped = time.time()
        assert writes[0] >= 100, f"only {writes[0]} writes: not a storm"

        def converged():
            text = listing()
            seen = {i: set() for i in range(services)}
            # The endpoints are the `index : ip . port` elements of the
            # services' endpoint maps.
            for addr in re.findall(r"(\d+\.\d+\.\d+\.\d+) \. 8080", text):
                o = addr.split(".")
                if addr.startswith("10.42.") and int(o[2]) < services:
                    seen[int(o[2])].add(addr)
            return all(seen[i] == set(final[i]) for i in range(services)) and text
        while not (text := converged()) and time.time() - stopped < 5:
            time.sleep(0.05)
        took = time.time() - stopped
        assert text, f"the table never matched the last endpoints after {writes[0]} writes"
        print(f"churn: {writes[0]} writes, converged {took:.3f} s after they stopped")
        assert took <= 1.0, f"converged {took:.2f} s after {writes[0]} writes stopped"
        # Services left without endpoints reject, the others do not.
        for i in range(services):
            cip = kubectl("get", "service", f"churn-{i}", "-n", namespace, "-o", "jsonpath={.spec.clusterIP}")
            rejected = f"{cip} . tcp . 80 : goto reject-chain" in text
            assert rejected == (not final[i]), (i, final[i])
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
        subprocess.run([WHARF, "proxy", "--cleanup", "--proxy-table-name", table], check=True, capture_output=True)
