"""Cluster DNS with real pods: `wharf server` runs its kubelet, proxy and
DNS; the `kube-dns` Service (ClusterIP = --cluster-dns, inside a random
service CIDR) forwards to the DNS listener on the node's address. Pods get
the cluster resolv.conf and find Services by short and full names; a
headless Service answers with its ready pods; names outside the cluster
are forwarded to the host's resolvers. Queries are also sent straight to the
listener from the host, with a DNS client written here."""

import json
import random
import socket
import struct
import subprocess
from pathlib import Path

import pytest

from kubelet_node import IMAGE, host_ip, kubelet_node, wait_for

NODE = "e2e-dns"


@pytest.fixture(scope="module")
def cluster():
    svc_net = random.randint(100, 149)
    svc_cidr = f"10.{svc_net}.0.0/16"
    dns_ip = f"10.{svc_net}.0.10"
    table = f"wharf-e2e-{random.randrange(1 << 32):08x}"
    args = ["--service-cidr", svc_cidr, "--cluster-dns", dns_ip, "--dns-listen", f"{host_ip()}:0"]
    with kubelet_node(NODE, extra_args=args, proxy_table=table) as (s, k, d):
        yield s, k, dns_ip, d, table


def dns_port(k):
    s = json.loads(k("get", "endpointslices", "-n", "kube-system", "-l",
                     "kubernetes.io/service-name=kube-dns", "-o", "json"))["items"]
    return (s[0]["endpoints"][0]["addresses"][0], s[0]["ports"][0]["port"]) if s else None


def query(server, name, qtype=1):
    """One UDP query; returns (rcode, answers as (type, data))."""
    q = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
    q += b"".join(bytes([len(p)]) + p.encode() for p in name.rstrip(".").split(".")) + b"\0"
    q += struct.pack(">HH", qtype, 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(5)
        s.sendto(q, server)
        resp, _ = s.recvfrom(4096)
    _, flags, qd, an, _, _ = struct.unpack(">HHHHHH", resp[:12])
    pos = 12

    def skip_name(p):
        while True:
            n = resp[p]
            if n == 0:
                return p + 1
            if n & 0xC0 == 0xC0:
                return p + 2
            p += n + 1

    for _ in range(qd):
        pos = skip_name(pos) + 4
    out = []
    for _ in range(an):
        pos = skip_name(pos)
        t, _, _, ln = struct.unpack(">HHIH", resp[pos:pos + 10])
        data = resp[pos + 10:pos + 10 + ln]
        pos += 10 + ln
        if t == 1:
            out.append(("A", socket.inet_ntoa(data)))
        elif t == 33:
            out.append(("SRV", struct.unpack(">HHH", data[:6])[2]))
        else:
            out.append((t, data))
    return flags & 0xF, out


def run_pod(k, d, name, cmd):
    k("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                 "containers": [{"name": "c", "image": IMAGE, "imagePullPolicy": "Never",
                                 "command": ["sh", "-c", cmd]}]}}))
    wait_for(f"{name} to finish", lambda: json.loads(k("get", "pod", name, "-o", "json"))["status"]
             .get("phase") in ("Succeeded", "Failed"), timeout=90)
    phase = json.loads(k("get", "pod", name, "-o", "json"))["status"]["phase"]
    # The container's output, from its CRI log file on the node.
    logs = sorted(Path(d).glob(f"agent/pod-logs/default_{name}_*/c/*.log"))
    lines = logs[-1].read_text().splitlines() if logs else []
    return phase, "\n".join(l.split(" ", 3)[3] for l in lines if l.count(" ") >= 3)


def test_services_resolve_from_the_host_and_from_pods(cluster):
    _, k, dns_ip, d, table = cluster
    k("create", "deployment", "web", f"--image={IMAGE}", "--replicas=2", "--",
      "httpd", "-f", "-p", "8080", "-h", "/www")
    k("expose", "deployment", "web", "--port=80", "--target-port=8080", "--name=web")
    k("expose", "deployment", "web", "--port=8080", "--cluster-ip=None", "--name=web-headless")
    cip = json.loads(k("get", "service", "web", "-o", "json"))["spec"]["clusterIP"]
    server = wait_for("the kube-dns endpoint", lambda: dns_port(k), timeout=30)
    svc = json.loads(k("get", "service", "kube-dns", "-n", "kube-system", "-o", "json"))
    assert svc["spec"]["clusterIP"] == dns_ip

    # From the host, straight to the listener.
    rcode, ans = wait_for("web's A record", lambda: (lambda r: r if r[1] else None)(
        query(server, "web.default.svc.cluster.local")), timeout=20)
    assert rcode == 0 and ans == [("A", cip)], ans
    assert query(server, "nope.default.svc.cluster.local")[0] == 3  # NXDOMAIN
    # The ClusterIP's reverse name points at the Service (PTR, type 12).
    rev = ".".join(reversed(cip.split("."))) + ".in-addr.arpa"
    rcode, ptr = query(server, rev, qtype=12)
    assert rcode == 0 and len(ptr) == 1 and ptr[0][0] == 12, ptr
    assert b"\x03web\x07default\x03svc\x07cluster\x05local\x00" in ptr[0][1], ptr
    pods = wait_for("two ready pods", lambda: (lambda ips: ips if len(ips) == 2 else None)(sorted(
        p["status"]["podIP"] for p in json.loads(k("get", "pods", "-l", "app=web", "-o", "json"))["items"]
        if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", [])))),
        timeout=90)
    _, headless = wait_for("the headless records", lambda: (lambda r: r if len(r[1]) == 2 else None)(
        query(server, "web-headless.default.svc.cluster.local")), timeout=20)
    assert sorted(a for _, a in headless) == pods
    dashed = pods[0].replace(".", "-")
    assert query(server, f"{dashed}.default.pod.cluster.local")[1] == [("A", pods[0])]

    # From a pod, through the kube-dns Service VIP and the search path,
    # once the proxy has programmed the VIPs (a UDP flow that started
    # before its DNAT rule would keep its un-NATed conntrack entry).
    nft = lambda: subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True).stdout
    wait_for("the proxy's rules for kube-dns and web", lambda: f"{dns_ip} . udp . 53" in nft()
             and f"{cip} . tcp . 80" in nft(), timeout=30)
    phase, out = run_pod(k, d, "client", (
        "cat /etc/resolv.conf; /bin/busybox nslookup web-headless.default.svc.cluster.local 2>&1; "
        "wget -qO- http://web 2>&1"))
    assert f"nameserver {dns_ip}" in out, out
    assert "search default.svc.cluster.local svc.cluster.local cluster.local" in out, out
    assert "options ndots:5" in out, out
    for ip in pods:
        assert ip in out, out
    assert "hello from a wharf pod" in out, out
    assert phase == "Succeeded", out
