"""Issue #4 (OpenAPI): /openapi/v2 and /openapi/v3 with full schemas.

kubectl 1.37 reads the v3 documents for `explain`, client-side apply and
field validation, and the v2 document (protobuf) for
`explain --output=plaintext-openapiv2`.
"""

import http.client
import json
import ssl

import pytest


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("kubectl-cache"))


@pytest.fixture(scope="module")
def explain(kubectl, cache_dir):
    def run(*args):
        return kubectl("explain", f"--cache-dir={cache_dir}", *args)
    return run


@pytest.fixture(scope="module")
def raw(server, api_client):
    """GET a path with the admin client certificate, without following redirects."""
    c = api_client.configuration
    ctx = ssl.create_default_context(cafile=c.ssl_ca_cert)
    ctx.check_hostname = False
    ctx.load_cert_chain(c.cert_file, c.key_file)

    def get(path, headers=None):
        conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=30)
        try:
            conn.request("GET", path, headers=headers or {})
            r = conn.getresponse()
            return r.status, r.read(), r.headers
        finally:
            conn.close()
    return get


def test_explain_kind(explain):
    out = explain("pods")
    assert "KIND:       Pod" in out
    assert "VERSION:    v1" in out
    assert "Pod is a collection of containers that can run on a host." in out
    assert "spec\t<PodSpec>" in out
    assert "apiVersion\t<string>" in out
    # Upstream never marks metadata required.
    assert "metadata\t<ObjectMeta> -required-" not in out
    assert "metadata\t<ObjectMeta>" in out


def test_explain_nested_list_field(explain):
    out = explain("pods.spec.containers.ports")
    assert "FIELD: ports <[]ContainerPort>" in out
    assert "containerPort\t<integer> -required-" in out
    assert "Number of port to expose on the pod's IP address." in out
    assert "protocol\t<string>" in out


def test_explain_recursive(explain):
    out = explain("deployment.spec.strategy", "--recursive")
    assert "GROUP:      apps" in out
    assert "KIND:       Deployment" in out
    assert "FIELD: strategy <DeploymentStrategy>" in out
    assert "rollingUpdate\t<RollingUpdateDeployment>" in out
    assert "maxSurge\t<IntOrString>" in out
    assert "maxUnavailable\t<IntOrString>" in out
    assert "type\t<string>" in out


def test_explain_deployment_rolling_update(explain):
    # The issue's own command: a field three levels down, with its docs.
    out = explain("deployment.spec.strategy.rollingUpdate")
    assert "GROUP:      apps" in out
    assert "KIND:       Deployment" in out
    assert "VERSION:    v1" in out
    assert "FIELD: rollingUpdate <RollingUpdateDeployment>" in out
    assert "Rolling update config params. Present only if DeploymentStrategyType" in out
    assert "maxSurge\t<IntOrString>" in out
    assert "maxUnavailable\t<IntOrString>" in out
    assert "The maximum number of pods that can be scheduled above the desired" in out


def test_explain_with_api_version_and_short_name(explain):
    out = explain("svc", "--api-version=v1")
    assert "KIND:       Service" in out
    assert "Service is a named abstraction of software service" in out
    out = explain("svc.spec.ports.targetPort")
    assert "FIELD: targetPort <IntOrString>" in out


def test_explain_deep_path_through_templates(explain):
    out = explain("cronjobs.spec.jobTemplate.spec.template.spec")
    assert "GROUP:      batch" in out
    assert "KIND:       CronJob" in out
    assert "FIELD: spec <PodSpec>" in out
    assert "containers\t<[]Container> -required-" in out
    assert "restartPolicy\t<string>" in out


def test_explain_groups_with_dots_and_maps(explain):
    out = explain("clusterroles.rules")
    assert "GROUP:      rbac.authorization.k8s.io" in out
    assert "verbs\t<[]string> -required-" in out
    out = explain("configmaps.data")
    assert "FIELD: data <map[string]string>" in out


def test_explain_every_served_resource(kubectl, explain):
    rows = [line.split() for line in kubectl("api-resources", "--no-headers").splitlines()]
    assert len(rows) > 30
    for row in rows:
        # NAME [SHORTNAMES] APIVERSION NAMESPACED KIND
        i = next(i for i, t in enumerate(row) if t in ("true", "false"))
        name, api_version, kind = row[0], row[i - 1], row[i + 1]
        out = explain(name, f"--api-version={api_version}")
        assert f"KIND:       {kind}" in out, (name, api_version)
        assert "FIELDS:" in out and "metadata\t<ObjectMeta>" in out, (name, api_version)
        if "/" in api_version:
            assert f"GROUP:      {api_version.split('/')[0]}" in out
    out = explain("pods", "--recursive")
    assert "      containerPort\t<integer> -required-" in out


def test_explain_unknown_field_fails(kubectl, cache_dir):
    p = kubectl.run("explain", f"--cache-dir={cache_dir}", "pods.spec.nosuchfield", check=False)
    assert p.returncode != 0
    assert 'field "nosuchfield" does not exist' in p.stderr


def test_explain_openapiv2(explain):
    # kubectl reads /openapi/v2 as protobuf for this output.
    out = explain("pods.spec.containers", "--output=plaintext-openapiv2")
    assert "KIND:     Pod" in out
    assert "RESOURCE: containers <[]Object>" in out
    assert "image\t<string>" in out
    out = explain("deployments", "--output=plaintext-openapiv2")
    assert "Deployment enables declarative updates for Pods and ReplicaSets." in out


def test_client_side_apply_uses_the_schemas(kubectl, namespace, cache_dir):
    """kubectl apply reads the kind's v3 document and computes a strategic
    merge patch from it, without falling back or warning."""
    def manifest(image):
        return f"""
apiVersion: apps/v1
kind: Deployment
metadata: {{name: web, namespace: {namespace}}}
spec:
  replicas: 1
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      containers:
      - name: a
        image: {image}
        ports: [{{containerPort: 80}}]
"""
    kubectl("apply", f"--cache-dir={cache_dir}", "-f", "-", input=manifest("busybox:1"))
    p = kubectl.run("apply", f"--cache-dir={cache_dir}", "-v=8", "-f", "-", input=manifest("busybox:2"))
    log = p.stderr
    assert "/openapi/v3/apis/apps/v1?hash=" in log
    assert "error calculating patch" not in log and "warning" not in log.lower()
    assert "Content-Type: application/strategic-merge-patch+json" in log
    # The patch names the container by its merge key.
    assert '$setElementOrder/containers' in log
    d = kubectl.json("get", "deployment", "web", "-n", namespace)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:2"


def test_v3_index_and_documents(raw):
    code, body, headers = raw("/openapi/v3")
    assert code == 200
    assert headers["Content-Type"] == "application/json"
    index = json.loads(body)["paths"]
    assert set(index) >= {"api/v1", "apis/apps/v1", "apis/batch/v1", "apis/rbac.authorization.k8s.io/v1"}
    url = index["apis/apps/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/apps/v1?hash=")

    code, body, headers = raw(url, {"Accept": "application/json"})
    assert code == 200
    assert headers["Cache-Control"] == "public, immutable"
    assert headers["Expires"].endswith("GMT")
    doc = json.loads(body)
    assert doc["openapi"].startswith("3.")
    schemas = doc["components"]["schemas"]
    dep = schemas["io.k8s.api.apps.v1.Deployment"]
    assert dep["x-kubernetes-group-version-kind"] == [{"group": "apps", "version": "v1", "kind": "Deployment"}]
    assert schemas["io.k8s.api.apps.v1.DeploymentList"]["properties"]["items"]["items"]["$ref"] == \
        "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    create = doc["paths"]["/apis/apps/v1/namespaces/{namespace}/deployments"]["post"]
    assert create["x-kubernetes-action"] == "post"
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"] == \
        "#/components/schemas/io.k8s.api.apps.v1.Deployment"
    assert set(create["responses"]) == {"200", "201", "202", "401"}
    # Every reference resolves inside the document.
    text = body.decode()
    for part in text.split('"$ref":"#/components/schemas/')[1:]:
        assert part.split('"', 1)[0] in schemas

    # Revalidation and outdated hashes.
    etag = headers["ETag"]
    code, body, _ = raw(url, {"If-None-Match": etag})
    assert (code, body) == (304, b"")
    code, _, headers = raw("/openapi/v3/apis/apps/v1?hash=DEADBEEF")
    assert code == 301
    assert headers["Location"] == url
    code, body, _ = raw("/openapi/v3/apis/nope/v1")
    assert code == 404
    assert json.loads(body)["reason"] == "NotFound"


def test_v2_json_and_protobuf(raw):
    code, body, headers = raw("/openapi/v2", {"Accept": "application/json"})
    assert code == 200
    assert headers["Content-Type"] == "application/json"
    doc = json.loads(body)
    assert doc["swagger"] == "2.0"
    defs = doc["definitions"]
    pod = defs["io.k8s.api.core.v1.Pod"]
    assert pod["properties"]["spec"]["$ref"] == "#/definitions/io.k8s.api.core.v1.PodSpec"
    assert "#/components/" not in body.decode()
    for part in body.decode().split('"$ref":"#/definitions/')[1:]:
        assert part.split('"', 1)[0] in defs
    read = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["get"]
    assert read["operationId"] == "readCoreV1NamespacedPod"
    assert read["responses"]["200"]["schema"]["$ref"] == "#/definitions/io.k8s.api.core.v1.Pod"

    code, pb, headers = raw("/openapi/v2", {"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"})
    assert code == 200
    assert headers["Content-Type"] == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    assert pb[:5] == b"\x0a\x032.0"  # field 1 (swagger) = "2.0"
    code, body, _ = raw("/openapi/v2", {"Accept": "text/html"})
    assert code == 406


def test_openapi_needs_authentication(server):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=10)
    conn.request("GET", "/openapi/v3")
    assert conn.getresponse().status == 401
    conn.close()
