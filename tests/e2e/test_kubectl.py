"""Issue #3 acceptance with the real kubectl 1.37."""

import base64
import json
import subprocess
import time

import yaml

from conftest import REJECTED, Kubectl, wait_for

MANIFEST = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: httpd
        image: busybox
        command: ["httpd", "-f", "-p", "8080"]
        ports:
        - containerPort: 8080
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  labels: {app: web}
data:
  color: blue
---
apiVersion: v1
kind: Secret
metadata:
  name: creds
stringData:
  password: hunter2
---
apiVersion: v1
kind: Pod
metadata:
  name: solo
  labels: {app: solo, tier: back}
spec:
  containers:
  - name: main
    image: busybox:1.36
    command: ["sleep", "3600"]
"""


def test_namespaces_create_and_delete(kubectl):
    kubectl("create", "namespace", "ns-life")
    assert "ns-life" in kubectl("get", "namespaces")
    out = kubectl("get", "namespace", "ns-life", "-o", "jsonpath={.status.phase}")
    assert out == "Active"
    kubectl("create", "configmap", "c1", "-n", "ns-life", "--from-literal=a=b")
    kubectl("delete", "namespace", "ns-life", timeout=60)
    p = kubectl.run("get", "namespace", "ns-life", check=False)
    assert p.returncode != 0 and "NotFound" in p.stderr
    # Deletion in the background, then kubectl waits for it to be gone.
    kubectl("create", "namespace", "ns-wait")
    kubectl("create", "configmap", "c1", "-n", "ns-wait", "--from-literal=a=b")
    kubectl("delete", "namespace", "ns-wait", "--wait=false")
    kubectl("wait", "--for=delete", "namespace/ns-wait", "--timeout=30s")
    assert kubectl.run("get", "namespace", "ns-wait", check=False).returncode != 0
    for ns in ["default", "kube-system", "kube-public", "kube-node-lease"]:
        assert kubectl("get", "namespace", ns, "-o", "name") == f"namespace/{ns}\n"


def test_create_multi_document_and_get_formats(kubectl, namespace):
    out = kubectl("create", "-n", namespace, "-f", "-", input=MANIFEST)
    for line in ["deployment.apps/web created", "service/web created", "configmap/settings created",
                 "secret/creds created", "pod/solo created"]:
        assert line in out, out
    # Defaults as upstream stores them.
    d = kubectl.json("get", "deployment", "web", "-n", namespace)
    assert d["spec"]["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert d["spec"]["revisionHistoryLimit"] == 10 and d["spec"]["progressDeadlineSeconds"] == 600
    assert d["metadata"]["generation"] == 1
    pod = kubectl.json("get", "pod", "solo", "-n", namespace)
    assert pod["spec"]["restartPolicy"] == "Always" and pod["spec"]["dnsPolicy"] == "ClusterFirst"
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "IfNotPresent"
    svc = kubectl.json("get", "service", "web", "-n", namespace)
    assert svc["spec"]["clusterIP"].startswith("10.43.")
    assert svc["spec"]["type"] == "ClusterIP" and svc["spec"]["sessionAffinity"] == "None"
    assert svc["spec"]["ports"][0]["protocol"] == "TCP"

    table = kubectl("get", "pods", "-n", namespace)
    assert table.split("\n")[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    wide = kubectl("get", "pods", "-n", namespace, "-o", "wide")
    assert wide.split("\n")[0].split() == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE", "READINESS", "GATES"]
    assert "solo" in wide
    y = kubectl("get", "configmap", "settings", "-n", namespace, "-o", "yaml")
    assert "color: blue" in y
    assert kubectl("get", "configmap", "settings", "-n", namespace, "-o", "jsonpath={.data.color}") == "blue"
    cc = kubectl("get", "pods", "-n", namespace, "-o", "custom-columns=NAME:.metadata.name,IMAGE:.spec.containers[0].image")
    assert "solo" in cc and "busybox:1.36" in cc
    labels = kubectl("get", "pods", "-n", namespace, "--show-labels")
    assert "app=solo,tier=back" in labels
    assert kubectl("get", "configmaps", "-n", namespace, "-l", "app=web", "-o", "name") == "configmap/settings\n"
    assert kubectl("get", "pods", "-n", namespace, "--field-selector", "metadata.name=solo", "-o", "name") == "pod/solo\n"
    assert kubectl("get", "pods", "-n", namespace, "--field-selector", "status.phase=Running", "-o", "name") == ""
    everywhere = kubectl("get", "configmaps", "-A")
    assert namespace in everywhere and "NAMESPACE" in everywhere.split("\n")[0]
    svcs = kubectl("get", "svc", "-n", namespace)
    assert svcs.split("\n")[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert "80/TCP" in svcs


def test_watch(kubectl, server, namespace):
    import os
    env = dict(os.environ, KUBECONFIG=str(server.kubeconfig))
    from conftest import KUBECTL
    # Not the kube-root-ca.crt every namespace has: only the new one is awaited.
    w = subprocess.Popen([KUBECTL, "get", "configmaps", "-n", namespace, "--watch", "-o", "name",
                          "--field-selector=metadata.name!=kube-root-ca.crt"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        time.sleep(1.5)
        kubectl("create", "configmap", "watched", "-n", namespace, "--from-literal=k=v")
        deadline = time.time() + 20
        seen = ""
        import select
        while time.time() < deadline and "configmap/watched" not in seen:
            r, _, _ = select.select([w.stdout], [], [], 0.5)
            if r:
                seen += w.stdout.readline()
        assert "configmap/watched" in seen, seen
    finally:
        w.kill()
        w.wait()


def test_describe_label_annotate_patch_delete(kubectl, namespace):
    kubectl("create", "-n", namespace, "-f", "-", input=MANIFEST)
    desc = kubectl("describe", "pod", "solo", "-n", namespace)
    assert "Name:" in desc and "solo" in desc and "busybox:1.36" in desc
    kubectl("label", "pod", "solo", "-n", namespace, "extra=yes")
    kubectl("annotate", "pod", "solo", "-n", namespace, "note=hello")
    pod = kubectl.json("get", "pod", "solo", "-n", namespace)
    assert pod["metadata"]["labels"]["extra"] == "yes"
    assert pod["metadata"]["annotations"]["note"] == "hello"
    kubectl("label", "pod", "solo", "-n", namespace, "extra-")
    assert "extra" not in kubectl.json("get", "pod", "solo", "-n", namespace)["metadata"]["labels"]
    kubectl("patch", "configmap", "settings", "-n", namespace, "--type=merge", "-p", '{"data":{"size":"L"}}')
    kubectl("patch", "configmap", "settings", "-n", namespace, "--type=json",
            "-p", '[{"op":"replace","path":"/data/color","value":"red"}]')
    cm = kubectl.json("get", "configmap", "settings", "-n", namespace)
    assert cm["data"] == {"color": "red", "size": "L"}
    # A JSON patch that cannot apply: upstream's 422 (which does not tell why),
    # and nothing changes. The same of a Deployment's scale subresource.
    p = kubectl.run("patch", "configmap", "settings", "-n", namespace, "--type=json",
                    "-p", '[{"op":"replace","path":"/data/size","value":"M"},{"op":"remove","path":"/data/nope"}]',
                    check=False)
    assert p.returncode != 0
    assert p.stderr.strip() == REJECTED, p.stderr
    assert kubectl.json("get", "configmap", "settings", "-n", namespace)["data"] == {"color": "red", "size": "L"}
    replicas = kubectl.json("get", "deployment", "web", "-n", namespace)["spec"]["replicas"]
    p = kubectl.run("patch", "deployment", "web", "-n", namespace, "--subresource=scale", "--type=json",
                    "-p", f'[{{"op":"test","path":"/spec/replicas","value":{replicas + 7}}}]', check=False)
    assert p.returncode != 0
    assert p.stderr.strip() == REJECTED, p.stderr
    kubectl("patch", "deployment", "web", "-n", namespace, "--subresource=scale", "--type=json",
            "-p", f'[{{"op":"test","path":"/spec/replicas","value":{replicas}}}]')
    kubectl("create", "configmap", "a1", "-n", namespace, "--from-literal=x=1")
    kubectl("label", "configmap", "a1", "-n", namespace, "group=g")
    kubectl("create", "configmap", "a2", "-n", namespace, "--from-literal=x=1")
    kubectl("label", "configmap", "a2", "-n", namespace, "group=g")
    assert "deleted" in kubectl("delete", "configmap", "-n", namespace, "-l", "group=g")
    assert kubectl("get", "configmaps", "-n", namespace, "-l", "group=g", "-o", "name") == ""
    assert 'configmap "settings" deleted' in kubectl("delete", "configmap", "settings", "-n", namespace)
    kubectl("delete", "pod", "solo", "-n", namespace, "--grace-period=0", "--force")
    assert kubectl.run("get", "pod", "solo", "-n", namespace, check=False).returncode != 0
    kubectl("delete", "all", "--all", "-n", namespace)
    # The Deployment's ReplicaSet and pods go by garbage collection, after
    # the delete returns (background propagation).
    wait_for("everything deleted",
             lambda: kubectl("get", "deployments,replicasets,services,pods", "-n", namespace, "-o", "name") == "",
             timeout=30)


def test_api_resources_and_versions(kubectl):
    out = kubectl("api-resources")
    rows = {line.split()[0]: line.split() for line in out.strip().split("\n")[1:]}
    assert rows["pods"][1] == "po" and rows["pods"][-2:] == ["true", "Pod"]
    assert rows["deployments"][1:] == ["deploy", "apps/v1", "true", "Deployment"]
    assert rows["nodes"][1:] == ["no", "v1", "false", "Node"]
    for name in ["configmaps", "endpoints", "events", "limitranges", "namespaces", "persistentvolumeclaims",
                 "persistentvolumes", "replicationcontrollers", "resourcequotas", "secrets", "serviceaccounts",
                 "services", "controllerrevisions", "daemonsets", "replicasets", "statefulsets", "cronjobs", "jobs",
                 "leases", "endpointslices", "ingressclasses", "ingresses", "networkpolicies", "poddisruptionbudgets",
                 "clusterrolebindings", "clusterroles", "rolebindings", "roles", "priorityclasses"]:
        assert name in rows, name
    wide = kubectl("api-resources", "-o", "wide")
    assert "create,delete,deletecollection,get,list,patch,update,watch" in wide.replace("[", "").replace("]", "").replace(" ", ",") or "deletecollection" in wide
    versions = kubectl("api-versions").split()
    for v in ["v1", "apps/v1", "batch/v1", "coordination.k8s.io/v1", "discovery.k8s.io/v1", "events.k8s.io/v1",
              "networking.k8s.io/v1", "policy/v1", "rbac.authorization.k8s.io/v1", "scheduling.k8s.io/v1"]:
        assert v in versions, v


def test_create_secret_configmap_and_whoami(kubectl, namespace):
    kubectl("create", "secret", "generic", "s1", "-n", namespace, "--from-literal=user=admin")
    s = kubectl.json("get", "secret", "s1", "-n", namespace)
    assert s["type"] == "Opaque" and s["data"]["user"] == "YWRtaW4="
    kubectl("create", "configmap", "c1", "-n", namespace, "--from-literal=a=1", "--from-literal=b=2")
    assert kubectl.json("get", "configmap", "c1", "-n", namespace)["data"] == {"a": "1", "b": "2"}
    who = kubectl("auth", "whoami")
    assert "system:admin" in who and "system:masters" in who


def test_errors_are_upstream_statuses(kubectl, namespace):
    p = kubectl.run("get", "pod", "missing", "-n", namespace, check=False)
    assert p.returncode != 0 and 'pods "missing" not found' in p.stderr
    kubectl("create", "configmap", "dup", "-n", namespace)
    p = kubectl.run("create", "configmap", "dup", "-n", namespace, check=False)
    assert 'configmaps "dup" already exists' in p.stderr
    bad = 'apiVersion: v1\nkind: Pod\nmetadata: {name: Bad_Name}\nspec: {containers: [{name: c}]}\n'
    p = kubectl.run("create", "-n", namespace, "-f", "-", input=bad, check=False)
    assert "is invalid" in p.stderr and "metadata.name" in p.stderr, p.stderr
    unknown = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: u1}\ndata: {a: b}\nbogus: 1\n'
    p = kubectl.run("create", "-n", namespace, "-f", "-", input=unknown, check=False)
    assert p.returncode != 0 and 'unknown field "bogus"' in p.stderr, p.stderr


def test_headless_service_without_ports_is_stored_as_sent(kubectl, namespace):
    svc = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "portless"},
           "spec": {"clusterIP": "None", "selector": {"app": "w"}}}
    kubectl("create", "-n", namespace, "-f", "-", input=json.dumps(svc))
    spec = kubectl.json("get", "service", "portless", "-n", namespace)["spec"]
    assert "ports" not in spec, spec
    assert spec["clusterIP"] == "None" and spec["type"] == "ClusterIP"


def test_pods_get_the_default_toleration_seconds(kubectl, namespace):
    """DefaultTolerationSeconds: 300 s on not-ready and unreachable nodes,
    unless the pod says otherwise."""
    def pod(name, tolerations=()):
        return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                           "spec": {"containers": [{"name": "c", "image": "nginx"}],
                                    "tolerations": list(tolerations)}})
    kubectl("create", "-n", namespace, "-f", "-", input=pod("plain"))
    own = {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 60}
    kubectl("create", "-n", namespace, "-f", "-", input=pod("own", [own]))
    tol = {p: kubectl.json("get", "pod", p, "-n", namespace)["spec"]["tolerations"] for p in ("plain", "own")}
    default = [{"key": f"node.kubernetes.io/{k}", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}
               for k in ("not-ready", "unreachable")]
    assert tol["plain"] == default
    assert tol["own"] == [own, default[1]]


def test_a_client_certificate_from_another_ca_is_unauthorized(kubectl, tmp_path):
    """As upstream (`tls.RequestClientCert`), a certificate from another CA
    passes the TLS handshake and proves nothing: kubectl gets 401 and says
    so, rather than failing in the handshake."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem"), "-days", "1",
                    "-subj", "/O=system:masters/CN=intruder"], check=True, capture_output=True)
    cfg = yaml.safe_load(open(kubectl.kubeconfig))
    user = cfg["users"][0]["user"]
    user["client-certificate-data"] = base64.b64encode((tmp_path / "cert.pem").read_bytes()).decode()
    user["client-key-data"] = base64.b64encode((tmp_path / "key.pem").read_bytes()).decode()
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(cfg))
    p = Kubectl(tmp_path / "kubeconfig").run("get", "namespaces", check=False)
    assert p.returncode != 0
    assert "error: You must be logged in to the server" in p.stderr, p.stderr
