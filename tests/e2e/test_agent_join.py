"""`wharf agent` joins a server with its token (issue #7, "Joining nodes").

The server runs on the host without an agent; the agent runs in a network
namespace the test creates (its own containerd, CNI bridge and nft table
there), linked to the host by a veth pair on a /30. The test deletes the
namespace and stops the agent and its shims by PID at the end."""

import base64
import contextlib
import json
import os
import random
import signal
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import WHARF, Kubectl, Server
from images import busybox_archive
from kubelet_node import own_shims, wait_for

IMAGE = "localhost/e2e-busybox:1"


def sh(*args, check=True):
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=60)


@contextlib.contextmanager
def netns_host():
    """A network namespace linked to the host: yields (name, host_ip, ns_ip)."""
    if subprocess.run(["which", "containerd"], capture_output=True).returncode != 0:
        pytest.fail("containerd is not installed: run scripts/install-deps.sh")
    tag = "%06x" % random.randrange(1 << 24)
    ns, host_if, ns_if = f"wharf-test-{tag}", f"wjh{tag}", f"wjn{tag}"
    base = 4 * random.randrange(1, 60)
    subnet = f"10.{random.randint(100, 199)}.{random.randint(0, 255)}"
    host_ip, ns_ip = f"{subnet}.{base + 1}", f"{subnet}.{base + 2}"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        sh("ip", "link", "set", ns_if, "netns", ns)
        sh("ip", "addr", "add", f"{host_ip}/30", "dev", host_if)
        sh("ip", "link", "set", host_if, "up")
        nsx = ("ip", "netns", "exec", ns)
        sh(*nsx, "ip", "addr", "add", f"{ns_ip}/30", "dev", ns_if)
        sh(*nsx, "ip", "link", "set", ns_if, "up")
        sh(*nsx, "ip", "link", "set", "lo", "up")
        sh(*nsx, "ip", "route", "add", "default", "via", host_ip)
        yield ns, host_ip, ns_ip
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


class JoinServer(Server):
    """A control-plane-only server reachable at `ip` (the host end of the veth)."""

    def __init__(self, data_dir, ip, extra_args=()):
        super().__init__(data_dir, extra_args=extra_args)
        self.ip = ip

    def start(self, timeout=60):
        args = [WHARF, "server", "--data-dir", str(self.data_dir), "--https-listen-port", str(self.port),
                "--bind-address", "0.0.0.0", "--advertise-address", self.ip, "--disable-agent",
                "--cluster-cidr", f"10.{random.randint(200, 249)}.0.0/16", *self.extra_args]
        env = dict(os.environ, WHARF_LOG=os.environ.get("WHARF_LOG", "info"))
        self.proc = subprocess.Popen(args, stdout=open(self.log, "ab"), stderr=subprocess.STDOUT, env=env)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"wharf server exited with {self.proc.returncode}:\n{self.log.read_text()[-4000:]}")
            if self.kubeconfig.exists() and self.ready() and (self.data_dir / "server" / "token").exists():
                return self
            time.sleep(0.1)
        raise RuntimeError(f"wharf server not ready in {timeout}s:\n{self.log.read_text()[-4000:]}")

    @property
    def url(self):
        return f"https://{self.ip}:{self.port}"

    def token(self):
        return (self.data_dir / "server" / "token").read_text().strip()


class Agent:
    """`wharf agent` in the namespace, with its own data directory."""

    def __init__(self, ns, ns_ip, data_dir, node):
        self.ns, self.ns_ip, self.data_dir, self.node = ns, ns_ip, Path(data_dir), node
        self.proc = None
        self.log = self.data_dir / "agent.log"

    def args(self, server, token):
        # nsenter, not `ip netns exec`: that one also mounts a fresh /sys in
        # a new mount namespace, which hides the cgroup mounts runc needs.
        return ["nsenter", f"--net=/run/netns/{self.ns}", WHARF, "agent", "--server", server, "--token", token,
                "--data-dir", str(self.data_dir), "--node-name", self.node, "--node-ip", self.ns_ip]

    def run_once(self, server, token, timeout=60):
        """Run to completion (for refused joins): (exit code, output)."""
        p = subprocess.run(self.args(server, token), capture_output=True, text=True, timeout=timeout,
                           env=dict(os.environ, RUST_BACKTRACE="0"))
        return p.returncode, p.stdout + p.stderr

    def start(self, server, token):
        env = dict(os.environ, WHARF_LOG=os.environ.get("WHARF_LOG", "info"), RUST_BACKTRACE="0")
        self.proc = subprocess.Popen(self.args(server, token), stdout=open(self.log, "ab"),
                                     stderr=subprocess.STDOUT, env=env)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kubeconfig(self):
        return self.data_dir / "agent" / "kubelet.kubeconfig"

    def cert(self):
        """(subject, serial) of the node's client certificate, by openssl."""
        import yaml
        kc = yaml.safe_load(self.kubeconfig().read_text())
        pem = base64.b64decode(kc["users"][0]["user"]["client-certificate-data"])
        out = subprocess.run(["openssl", "x509", "-noout", "-subject", "-serial", "-nameopt", "RFC2253"],
                             input=pem, capture_output=True, check=True).stdout.decode()
        fields = dict(l.split("=", 1) for l in out.strip().splitlines())
        return fields["subject"], fields["serial"]

    def cleanup(self):
        self.stop()
        # The pods' shims outlive the agent by design; these are ours alone.
        for pid in own_shims(self.data_dir / "agent" / "containerd" / "containerd.sock"):
            os.kill(pid, signal.SIGKILL)


def node_ready(k, node):
    r = k.run("get", "node", node, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}", check=False)
    return r.stdout == "True"


@pytest.fixture
def cluster():
    """(server, kubectl, namespace name, ns_ip, tmp dir)."""
    d = tempfile.mkdtemp(prefix="wharf-join-")
    with netns_host() as (ns, host_ip, ns_ip):
        s = JoinServer(Path(d) / "server", host_ip, extra_args=["--cluster-signing-duration", "90s"])
        s.data_dir.mkdir()
        try:
            s.start()
            yield s, Kubectl(s.kubeconfig), ns, ns_ip, Path(d)
        finally:
            s.stop()
    subprocess.run(["rm", "-rf", d], capture_output=True)


def test_bad_tokens_are_refused(cluster):
    s, k, ns, ns_ip, d = cluster
    agent = Agent(ns, ns_ip, d / "agent", "refused")
    token = s.token()
    # The CA is public and its hash is the token's.
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    with urllib.request.urlopen(f"https://127.0.0.1:{s.port}/cacerts", context=ctx) as r:
        import hashlib
        assert token.startswith("K10" + hashlib.sha256(r.read()).hexdigest() + "::")
    # The token's credential may ask for certificates, and nothing else.
    def bearer_get(path):
        req = urllib.request.Request(f"https://127.0.0.1:{s.port}{path}",
                                     headers={"Authorization": "Bearer " + token.split("::")[1]})
        try:
            with urllib.request.urlopen(req, context=ctx) as r:
                return r.status, json.load(r)
        except urllib.error.HTTPError as e:
            return e.code, json.load(e)
    code, body = bearer_get("/apis/certificates.k8s.io/v1/certificatesigningrequests")
    assert code == 200 and body["kind"] == "CertificateSigningRequestList", body
    code, body = bearer_get("/api/v1/namespaces/kube-system/secrets")
    assert code == 403 and body["reason"] == "Forbidden", body
    assert 'User "system:bootstrap:' in body["message"], body
    # A wrong secret: the API server says 401, the agent says so and stops.
    wrong = token[:-1] + ("a" if token[-1] != "a" else "b")
    code, out = agent.run_once(s.url, wrong)
    assert code != 0 and "401 Unauthorized" in out and "check --token" in out, out
    # A tampered CA hash: refused before any credential is sent.
    tampered = token[:3] + ("0" if token[3] != "0" else "1") + token[4:]
    code, out = agent.run_once(s.url, tampered)
    assert code != 0 and "the server's CA does not match the token's hash" in out, out
    # Not a join token at all.
    code, out = agent.run_once(s.url, "letmein")
    assert code != 0 and "K10" in out, out
    assert not agent.kubeconfig().exists()
    assert k.json("get", "csr")["items"] == []
    # The token is stable across server restarts.
    s.stop()
    s.start()
    assert s.token() == token
    assert (s.data_dir / "server" / "token").stat().st_mode & 0o777 == 0o600
    assert (s.data_dir / "server" / "node-token").read_text().strip() == token
    # --token replaces it; the old one stops working.
    s.stop()
    s.extra_args += ["--token", "another passphrase"]
    s.start()
    new = s.token()
    old_id = token.split("::")[1].split(".")[0]
    assert new != token and new.split("::")[0] == token.split("::")[0]
    assert k.run("get", "secret", "-n", "kube-system", f"bootstrap-token-{old_id}", check=False).returncode != 0
    code, out = agent.run_once(s.url, token)
    assert code != 0 and "401 Unauthorized" in out, out


def test_agent_joins_runs_pods_rejoins_and_rotates(cluster):
    s, k, ns, ns_ip, d = cluster
    node = "joined-" + "%04x" % random.randrange(1 << 16)
    agent = Agent(ns, ns_ip, d / "agent", node)
    images = agent.data_dir / "agent" / "images"
    images.mkdir(parents=True)
    busybox_archive(images / "busybox.tar", IMAGE, b"hello from a joined node\n")
    try:
        agent.start(s.url, s.token())
        wait_for("the joined node to be Ready", lambda: node_ready(k, node), timeout=120)

        # Its identity came through an approved, issued CSR.
        kc = agent.kubeconfig()
        assert kc.stat().st_mode & 0o777 == 0o600
        subject, serial = agent.cert()
        assert subject == f"O=system:nodes,CN=system:node:{node}" or subject == f"CN=system:node:{node},O=system:nodes", subject
        csrs = k.json("get", "csr")["items"]
        assert len(csrs) == 1, csrs
        csr = csrs[0]
        assert csr["spec"]["signerName"] == "kubernetes.io/kube-apiserver-client-kubelet"
        assert csr["spec"]["username"].startswith("system:bootstrap:")
        assert "system:bootstrappers" in csr["spec"]["groups"]
        assert [c["type"] for c in csr["status"]["conditions"]] == ["Approved"]
        assert csr["status"]["conditions"][0]["reason"] == "AutoApproved"
        table = k("get", "csr")
        assert "Approved,Issued" in table and "kubernetes.io/kube-apiserver-client-kubelet" in table, table

        # The kubeconfig authenticates as the node itself.
        who = Kubectl(kc).json("auth", "whoami")["status"]["userInfo"]
        assert who["username"] == f"system:node:{node}", who
        assert "system:nodes" in who["groups"], who

        # The Node is the kubelet's own: it registered under system:node:<name>.
        n = k.json("get", "node", node, "--show-managed-fields")
        uid = n["metadata"]["uid"]
        managers = {m["manager"] for m in n["metadata"].get("managedFields", [])}
        assert any(m.startswith("kubelet") for m in managers), managers
        addrs = {a["type"]: a["address"] for a in n["status"]["addresses"]}
        assert addrs.get("InternalIP") == ns_ip, addrs

        # It runs a pod.
        k("run", "hello", f"--image={IMAGE}", "--image-pull-policy=Never", "--restart=Never",
          "--", "sh", "-c", "echo joined; sleep 3600")
        wait_for("the pod to run", lambda: k.run("get", "pod", "hello", "-o", "jsonpath={.status.phase}",
                                                 check=False).stdout == "Running", timeout=90)

        # A restart reuses the identity: no new CSR, same Node uid.
        agent.stop()
        agent.start(s.url, s.token())
        time.sleep(3)
        wait_for("the node to be Ready again", lambda: node_ready(k, node), timeout=90)
        assert k.json("get", "node", node)["metadata"]["uid"] == uid
        assert agent.cert()[1] == serial

        # With 90 s certificates the agent renews within 63-81 s of issue,
        # through a CSR of its own (self node client), and stays Ready.
        def rotated():
            try:
                return agent.cert()[1] != serial
            except Exception:
                return False
        wait_for("a certificate rotation", rotated, timeout=120, every=2)
        csrs = k.json("get", "csr")["items"]
        renewals = [c for c in csrs if c["spec"]["username"] == f"system:node:{node}"]
        assert renewals, [c["spec"]["username"] for c in csrs]
        assert "Auto approving self kubelet client certificate" in renewals[0]["status"]["conditions"][0]["message"]
        assert agent.cert()[0].count(f"system:node:{node}") == 1
        time.sleep(5)
        wait_for("the node to be Ready after the rotation", lambda: node_ready(k, node), timeout=60)
        assert k.json("get", "node", node)["metadata"]["uid"] == uid
        assert k.run("get", "pod", "hello", "-o", "jsonpath={.status.phase}").stdout == "Running"
    finally:
        # Shown by pytest only when the test failed.
        print(k.run("get", "pods", "-A", "-o", "wide", check=False).stdout)
        print(k.run("get", "events", "-A", check=False).stdout[-3000:])
        print(agent.log.read_text()[-6000:])
        k.run("delete", "pods", "--all", "--grace-period=1", "--wait=true", "--timeout=60s", check=False, timeout=90)
        agent.cleanup()


def make_csr(cn, org):
    """(key PEM, CSR PEM) from openssl, an EC P-256 key."""
    with tempfile.TemporaryDirectory() as t:
        key, csr = Path(t) / "k.pem", Path(t) / "r.pem"
        sh("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
           "-keyout", str(key), "-out", str(csr), "-subj", f"/O={org}/CN={cn}")
        return key.read_text(), csr.read_text()


def csr_yaml(name, request_pem, signer, usages, extra=""):
    usages_yaml = "".join(f"\n  - {u}" for u in usages)
    return (f"apiVersion: certificates.k8s.io/v1\nkind: CertificateSigningRequest\nmetadata:\n  name: {name}\n"
            f"spec:\n  request: {base64.b64encode(request_pem.encode()).decode()}\n  signerName: {signer}\n"
            f"  usages:{usages_yaml}\n{extra}")


def test_kubectl_certificate_approve_and_deny(kubectl, server, api_client):
    """A user's CSR: kubectl lists it, `kubectl certificate approve` gets it
    signed by the cluster CA (the certificate then authenticates), `deny`
    leaves it unsigned; bad requests are refused with upstream's reasons."""
    tag = "%06x" % random.randrange(1 << 24)
    key, req = make_csr(f"alice-{tag}", "devs")
    name = f"alice-{tag}"
    kubectl("create", "-f", "-", input=csr_yaml(name, req, "kubernetes.io/kube-apiserver-client",
                                                ["client auth", "digital signature"], "  expirationSeconds: 3600\n"))
    csr = kubectl.json("get", "csr", name)
    # The requester is whoever created it, whatever the body said.
    assert csr["spec"]["username"] == "system:admin"
    assert "system:masters" in csr["spec"]["groups"]
    row = kubectl("get", "csr", name, "--no-headers")
    assert "Pending" in row and "system:admin" in row and "60m" in row, row
    kubectl("certificate", "approve", name)
    issued = wait_for("the certificate", lambda: kubectl.json("get", "csr", name)["status"].get("certificate"), timeout=30)
    # The approval is recorded under its own subresource, as upstream's.
    managed = kubectl.json("get", "csr", name, "--show-managed-fields")["metadata"]["managedFields"]
    approvals = [m for m in managed if "f:conditions" in m.get("fieldsV1", {}).get("f:status", {})
                 and m["manager"] != "kube-controller-manager"]
    assert [m.get("subresource") for m in approvals] == ["approval"], managed
    assert "Approved,Issued" in kubectl("get", "csr", name, "--no-headers")
    cert = base64.b64decode(issued).decode()
    # It authenticates as alice in devs.
    import yaml
    kc = yaml.safe_load(Path(server.kubeconfig).read_text())
    kc["users"][0]["user"] = {"client-certificate-data": base64.b64encode(cert.encode()).decode(),
                              "client-key-data": base64.b64encode(key.encode()).decode()}
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
        f.write(yaml.safe_dump(kc))
        f.flush()
        who = Kubectl(f.name).json("auth", "whoami")
    assert who["status"]["userInfo"]["username"] == f"alice-{tag}"
    assert "devs" in who["status"]["userInfo"]["groups"]
    # The official Python client reads it too.
    from kubernetes import client
    got = client.CertificatesV1Api(api_client).read_certificate_signing_request(name)
    assert got.spec.signer_name == "kubernetes.io/kube-apiserver-client"
    assert [c.type for c in got.status.conditions] == ["Approved"]
    assert base64.b64decode(got.status.certificate).decode() == cert

    # Denied: no certificate, and the decision cannot be reversed.
    _, req2 = make_csr(f"bob-{tag}", "devs")
    kubectl("create", "-f", "-", input=csr_yaml(f"bob-{tag}", req2, "kubernetes.io/kube-apiserver-client",
                                                ["client auth"]))
    kubectl("certificate", "deny", f"bob-{tag}")
    time.sleep(2)
    bob = kubectl.json("get", "csr", f"bob-{tag}")
    assert [c["type"] for c in bob["status"]["conditions"]] == ["Denied"]
    assert not bob["status"].get("certificate")
    # kubectl refuses on its own; the API server refuses too.
    r = kubectl.run("certificate", "approve", f"bob-{tag}", check=False)
    assert r.returncode != 0 and "already Denied" in r.stderr, r.stderr
    bob["status"]["conditions"].append({"type": "Approved", "status": "True", "reason": "Sneaky"})
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(bob, f)
        f.flush()
        r = kubectl.run("replace", "--raw", f"/apis/certificates.k8s.io/v1/certificatesigningrequests/bob-{tag}/approval",
                        "-f", f.name, check=False)
    assert r.returncode != 0 and "mutually exclusive" in r.stderr, r.stderr

    # A server-side apply that creates one records the requester too.
    _, req3 = make_csr(f"carol-{tag}", "devs")
    kubectl("apply", "--server-side", "-f", "-", input=csr_yaml(
        f"carol-{tag}", req3, "kubernetes.io/kube-apiserver-client", ["client auth"],
        "  username: system:node:forged\n  groups: [system:bootstrappers]\n"))
    carol = kubectl.json("get", "csr", f"carol-{tag}")["spec"]
    assert carol["username"] == "system:admin" and "system:bootstrappers" not in carol["groups"], carol

    # PATCH on the approval subresource (the Python client's
    # patch_..._approval): only the conditions are taken; a spec change in
    # the same patch is ignored, as upstream's approval strategy does.
    certs = client.CertificatesV1Api(api_client)
    patched = certs.patch_certificate_signing_request_approval(f"carol-{tag}", {
        "spec": {"expirationSeconds": 7200},
        "status": {"conditions": [{"type": "Approved", "status": "True", "reason": "ByPatch",
                                   "message": "patched"}]}})
    assert [(c.type, c.reason) for c in patched.status.conditions] == [("Approved", "ByPatch")]
    assert patched.spec.expiration_seconds != 7200
    by_patch = [m for m in kubectl.json("get", "csr", f"carol-{tag}", "--show-managed-fields")["metadata"]["managedFields"]
                if m["operation"] == "Update" and "f:status" in m.get("fieldsV1", {})
                and m["manager"] != "kube-controller-manager"]
    assert [m.get("subresource") for m in by_patch] == ["approval"], by_patch
    wait_for("carol's certificate", lambda: kubectl.json("get", "csr", f"carol-{tag}")["status"].get("certificate"),
             timeout=30)

    # A request that is not a CSR and a too short duration: 422 with upstream's fields.
    r = kubectl.run("create", "-f", "-", check=False, input=csr_yaml(
        f"bad-{tag}", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "kubernetes.io/kube-apiserver-client", ["client auth"], "  expirationSeconds: 60\n"))
    assert r.returncode != 0, r.stdout
    assert "spec.request" in r.stderr and "spec.expirationSeconds" in r.stderr and "Invalid" in r.stderr, r.stderr
