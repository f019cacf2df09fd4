"""The pod network inside `wharf server` (crates/network), on one real node:
it publishes its VTEP on its Node, sizes the VXLAN device and the pods'
MTU from the underlay, masquerades in its own nft table instead of the
bridge plugin, and routes a peer Node (created here with the annotations a
second node would publish) through the tunnel until the Node is deleted.
Without it (`--flannel-backend=none`) the kubelet masquerades in its own
table. Cross-node traffic itself is tested in the kernel
(crates/network/tests/vxlan.rs), the kubelet's table in
crates/kubelet/tests/masq.rs."""

import ipaddress
import json
import subprocess
from pathlib import Path

import pytest

from conftest import WHARF
from images import busybox_archive
from kubelet_node import IMAGE, kubelet_node, network_names, pods_table, wait_for

NODE = "e2e-net"
PEER = "e2e-net-peer"
PEER_MAC = "02:42:00:00:77:01"
PEER_IP = "192.0.2.77"


@pytest.fixture(scope="module")
def node():
    with kubelet_node(NODE, import_image=False) as (s, k, d):
        yield s, k, d


def ip_json(*args):
    out = subprocess.run(["ip", "-j", *args], capture_output=True, text=True, check=True).stdout
    return json.loads(out) if out.strip() else []


def test_without_the_pod_network_the_kubelet_masquerades():
    node = "e2e-nonet"
    # 198.51.100.0/24 (TEST-NET-2) leaves by the host's default route;
    # whether anything answers or not, conntrack shows the translation.
    outside = "198.51.100.7"
    with kubelet_node(node, extra_args=["--flannel-backend", "none"]) as (_, k, d):
        vxlan, net_table = network_names(d)
        cidr = k.json("get", "node", node)["spec"]["podCIDR"]
        conf = json.loads((Path(d) / "agent" / "cni" / "net.d" / "10-wharf.conflist").read_text())
        bridge = conf["plugins"][0]
        assert bridge["ipMasq"] is False and "mtu" not in bridge
        rules = subprocess.run(["nft", "list", "table", "ip", pods_table(d)], capture_output=True, text=True,
                               check=True).stdout
        assert f"ip saddr {cidr} ip daddr {cidr} return" in rules
        assert f"ip saddr {cidr} ip daddr 224.0.0.0/4 return" in rules
        assert f"ip saddr {cidr} masquerade fully-random" in rules
        assert subprocess.run(["nft", "list", "table", "ip", net_table], capture_output=True).returncode != 0
        assert vxlan not in [l["ifname"] for l in ip_json("link", "show", "type", "vxlan")]
        # A pod's connection to outside leaves with the node's address.
        k("run", "out", f"--image={IMAGE}", "--image-pull-policy=Never", "--restart=Never", "--",
          "wget", "-q", "-O-", f"http://{outside}/")
        pod_ip = wait_for("the pod's IP", lambda: k.json("get", "pod", "out")["status"].get("podIP"), timeout=60)
        assert ipaddress.ip_address(pod_ip) in ipaddress.ip_network(cidr)
        host_src = ip_json("route", "get", outside)[0]["prefsrc"]

        def translated():
            out = subprocess.run(["conntrack", "-L", "-p", "tcp", "-s", pod_ip, "-d", outside],
                                 capture_output=True, text=True).stdout
            for line in out.splitlines():
                dsts = [f[4:] for f in line.split() if f.startswith("dst=")]
                if len(dsts) == 2:
                    return dsts[1]
            return None
        assert wait_for("the connection's conntrack entry", translated, timeout=30) == host_src


def test_vtep_published_and_mtu_set(node):
    _, k, d = node
    vxlan, table = network_names(d)
    n = k.json("get", "node", NODE)
    ann = wait_for("the VTEP annotations", lambda: (lambda a: a if "network.wharf.dev/vtep-mac" in a else None)(
        k.json("get", "node", NODE)["metadata"].get("annotations", {})), timeout=30)
    assert ann["network.wharf.dev/backend-type"] == "vxlan"
    assert ann["network.wharf.dev/public-ip"] == "127.0.0.1"
    link = ip_json("-d", "link", "show", "dev", vxlan)[0]
    assert link["address"] == ann["network.wharf.dev/vtep-mac"]
    info = link["linkinfo"]["info_data"]
    assert (info["id"], info["port"], info["local"], info["link"]) == (1, 8472, "127.0.0.1", "lo")
    lo_mtu = ip_json("link", "show", "dev", "lo")[0]["mtu"]
    assert link["mtu"] == lo_mtu - 50
    # The VTEP address is the podCIDR's network address.
    cidr = ipaddress.ip_network(n["spec"]["podCIDR"])
    addrs = [a["local"] for a in ip_json("addr", "show", "dev", vxlan)[0]["addr_info"] if a["family"] == "inet"]
    assert addrs == [str(cidr.network_address)]
    # The bridge gets the same MTU, and masquerading moved to our table.
    conf = json.loads((Path(d) / "agent" / "cni" / "net.d" / "10-wharf.conflist").read_text())
    bridge = conf["plugins"][0]
    assert bridge["mtu"] == lo_mtu - 50
    assert bridge["ipMasq"] is False
    rules = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True, check=True).stdout
    cluster = str(ipaddress.ip_network(n["spec"]["podCIDR"]).supernet(new_prefix=16))
    assert f"ip saddr {cluster} masquerade fully-random" in rules
    assert f"ip saddr {cluster} ip daddr {cluster} return" in rules
    # The kubelet leaves masquerading to the network: no table of its own.
    assert subprocess.run(["nft", "list", "table", "ip", pods_table(d)], capture_output=True).returncode != 0


def test_pod_gets_the_network_mtu(node):
    _, k, d = node
    # Only this test runs a pod: the image is imported here.
    archive = Path(d) / "busybox.tar"
    busybox_archive(archive, IMAGE, b"hello\n")
    subprocess.run([WHARF, "images", "import", "--data-dir", d, str(archive)], check=True,
                   capture_output=True, timeout=60)
    k("run", "mtu", f"--image={IMAGE}", "--image-pull-policy=Never", "--restart=Never", "--",
      "cat", "/sys/class/net/eth0/mtu")
    wait_for("the pod to finish", lambda: k.json("get", "pod", "mtu")["status"].get("phase") == "Succeeded",
             timeout=60)
    lo_mtu = ip_json("link", "show", "dev", "lo")[0]["mtu"]
    assert k("logs", "mtu").strip() == str(lo_mtu - 50)


def routes_to(vxlan, dst):
    return [r for r in ip_json("route", "show", "proto", "87", "dev", vxlan) if r["dst"] == dst]


def fdb(vxlan):
    out = subprocess.run(["bridge", "-j", "fdb", "show", "dev", vxlan], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out) if out.strip() else []


def test_peer_node_is_routed_until_deleted(node):
    _, k, d = node
    vxlan, _ = network_names(d)
    own = ipaddress.ip_network(k.json("get", "node", NODE)["spec"]["podCIDR"])
    peer_cidr = ipaddress.ip_network(f"{own.network_address + 200 * 256}/24")
    k("create", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": PEER, "annotations": {
            "network.wharf.dev/backend-type": "vxlan",
            "network.wharf.dev/vtep-mac": PEER_MAC,
            "network.wharf.dev/public-ip": PEER_IP}},
        "spec": {"podCIDR": str(peer_cidr), "podCIDRs": [str(peer_cidr)]},
    }))
    try:
        vtep = str(peer_cidr.network_address)
        r = wait_for("the peer's route", lambda: routes_to(vxlan, str(peer_cidr)), timeout=30)
        assert r[0]["gateway"] == vtep and "onlink" in r[0]["flags"]
        neigh = [n for n in ip_json("neigh", "show", "dev", vxlan) if n["dst"] == vtep]
        assert neigh and neigh[0]["lladdr"] == PEER_MAC and "PERMANENT" in neigh[0]["state"]
        assert {"mac": PEER_MAC, "dst": PEER_IP} in [{"mac": f["mac"], "dst": f.get("dst")} for f in fdb(vxlan)]
    finally:
        k.run("delete", "node", PEER, check=False)
    wait_for("the peer's route to go", lambda: not routes_to(vxlan, str(peer_cidr)), timeout=30)
    assert not [f for f in fdb(vxlan) if f["mac"] == PEER_MAC]
    assert not [n for n in ip_json("neigh", "show", "dev", vxlan) if n["dst"] == str(peer_cidr.network_address)]

