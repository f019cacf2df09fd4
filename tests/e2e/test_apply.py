"""Strategic merge patch with the real kubectl: client-side `apply` (three-way
patches with `$setElementOrder`, `$retainKeys`, deletions), `patch`, `edit`,
`set image`, `label`, `rollout restart` and `diff`. Expected objects are what
upstream's API server produces for the same requests."""

import json
import os
import stat
import sys
import textwrap

DEPLOYMENT_V1 = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web, tier: front}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 80
        env:
        - {name: A, value: "1"}
        - {name: B, value: "2"}
      - name: sidecar
        image: busybox
"""

# v1 with: env B removed, port 443 added, strategy Recreate, label `tier` dropped.
DEPLOYMENT_V2 = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  strategy:
    type: Recreate
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.25
        ports:
        - containerPort: 80
        - containerPort: 443
        env:
        - {name: A, value: "1"}
      - name: sidecar
        image: busybox
"""


def apply(kubectl, ns, manifest):
    return kubectl("apply", "-n", ns, "-f", "-", input=manifest)


def last_applied(obj):
    return json.loads(obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])


def container(obj, name):
    return next(c for c in obj["spec"]["template"]["spec"]["containers"] if c["name"] == name)


def test_reapply_removes_what_the_manifest_dropped(kubectl, namespace):
    assert "deployment.apps/web created" in apply(kubectl, namespace, DEPLOYMENT_V1)
    d = kubectl.json("get", "deployment", "web", "-n", namespace)
    assert d["spec"]["strategy"]["type"] == "RollingUpdate"
    assert d["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": "25%"}
    # Someone else labels the object: apply must keep it.
    kubectl("label", "deployment", "web", "-n", namespace, "owner=ops")

    assert "deployment.apps/web configured" in apply(kubectl, namespace, DEPLOYMENT_V2)
    d = kubectl.json("get", "deployment", "web", "-n", namespace)
    assert d["metadata"]["labels"] == {"app": "web", "owner": "ops"}
    # retainKeys: switching to Recreate drops the defaulted rollingUpdate.
    assert d["spec"]["strategy"] == {"type": "Recreate"}
    web = container(d, "web")
    assert web["env"] == [{"name": "A", "value": "1"}]
    assert web["ports"] == [
        {"containerPort": 80, "protocol": "TCP"},
        {"containerPort": 443, "protocol": "TCP"},
    ]
    assert [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["web", "sidecar"]
    assert last_applied(d)["spec"]["strategy"] == {"type": "Recreate"}
    assert d["metadata"]["generation"] == 2

    # Re-applying the same manifest changes nothing. (The Deployment
    # controller may write status meanwhile, so compare what apply owns.)
    assert "deployment.apps/web unchanged" in apply(kubectl, namespace, DEPLOYMENT_V2)
    again = kubectl.json("get", "deployment", "web", "-n", namespace)
    assert again["metadata"]["generation"] == 2
    assert (again["spec"], again["metadata"]["labels"], last_applied(again)) == (
        d["spec"], d["metadata"]["labels"], last_applied(d))

    # Back to v1: the env var, the label and RollingUpdate return; 443 goes.
    apply(kubectl, namespace, DEPLOYMENT_V1)
    d = kubectl.json("get", "deployment", "web", "-n", namespace)
    assert d["metadata"]["labels"] == {"app": "web", "tier": "front", "owner": "ops"}
    web = container(d, "web")
    assert web["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]
    assert web["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert d["spec"]["strategy"]["type"] == "RollingUpdate"


def test_apply_keeps_containers_added_by_others_in_place(kubectl, namespace):
    apply(kubectl, namespace, DEPLOYMENT_V1)
    # Another client inserts a container between the two.
    patch = {"spec": {"template": {"spec": {
        "$setElementOrder/containers": [{"name": "web"}, {"name": "injected"}, {"name": "sidecar"}],
        "containers": [{"name": "injected", "image": "envoy"}]}}}}
    kubectl("patch", "deployment", "web", "-n", namespace, "-p", json.dumps(patch))
    d = kubectl.json("get", "deployment", "web", "-n", namespace)
    assert [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["web", "injected", "sidecar"]
    # The manifest changes the sidecar's image; the injected container stays put.
    apply(kubectl, namespace, DEPLOYMENT_V1.replace("image: busybox", "image: busybox:1.36"))
    d = kubectl.json("get", "deployment", "web", "-n", namespace)
    containers = d["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["web", "injected", "sidecar"]
    assert containers[2]["image"] == "busybox:1.36"


def test_patch_default_strategic_delete_directive(kubectl, namespace):
    apply(kubectl, namespace, DEPLOYMENT_V1)
    out = kubectl("patch", "deployment", "web", "-n", namespace, "-p",
                  '{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}')
    assert "deployment.apps/web patched" in out
    d = kubectl.json("get", "deployment", "web", "-n", namespace)
    assert [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["web"]
    # A new container is merged in by name, ahead of the existing ones.
    kubectl("patch", "deployment", "web", "-n", namespace, "-p",
            '{"spec":{"template":{"spec":{"containers":[{"name":"log","image":"busybox"}]}}}}')
    d = kubectl.json("get", "deployment", "web", "-n", namespace)
    assert [c["name"] for c in d["spec"]["template"]["spec"]["containers"]] == ["log", "web"]
    # Finalizers merge as a set and leave by $deleteFromPrimitiveList.
    kubectl("patch", "deployment", "web", "-n", namespace, "-p",
            '{"metadata":{"finalizers":["example.com/a","example.com/b"]}}')
    kubectl("patch", "deployment", "web", "-n", namespace, "-p",
            '{"metadata":{"$deleteFromPrimitiveList/finalizers":["example.com/a"]}}')
    d = kubectl.json("get", "deployment", "web", "-n", namespace)
    assert d["metadata"]["finalizers"] == ["example.com/b"]
    kubectl("patch", "deployment", "web", "-n", namespace, "-p", '{"metadata":{"finalizers":null}}')
    assert "finalizers" not in kubectl.json("get", "deployment", "web", "-n", namespace)["metadata"]


def test_patch_errors_are_upstreams(kubectl, namespace):
    apply(kubectl, namespace, DEPLOYMENT_V1)
    p = kubectl.run("patch", "deployment", "web", "-n", namespace, "-p",
                    '{"spec":{"template":{"spec":{"containers":[{"image":"nginx"}]}}}}', check=False)
    assert p.returncode != 0
    assert "Error from server: map: map[image:nginx] does not contain declared merge key: name" in p.stderr
    p = kubectl.run("patch", "deployment", "web", "-n", namespace, "-p",
                    '{"metadata":{"labels":{"$patch":"bogus"}}}', check=False)
    assert "unknown patch type: bogus in map: map[$patch:bogus]" in p.stderr
    p = kubectl.run("patch", "deployment", "web", "-n", namespace, "-p",
                    '{"spec":{"strategy":{"$retainKeys":"type"}}}', check=False)
    assert "(BadRequest)" in p.stderr and "invalid patch format of retainKeys" in p.stderr
    # Nothing was changed by the failed patches.
    assert kubectl.json("get", "deployment", "web", "-n", namespace)["spec"]["replicas"] == 2


def test_json_patches_that_would_blow_up_are_refused_at_once(namespace, api_client):
    # CVE-2019-1002100: too many operations (413), or copies that double
    # the object again and again (422), are refused
    # before they cost the server anything, and the object stays as it was.
    # (The Python client sends a list body as application/json-patch+json.)
    import time
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    core = client.CoreV1Api(api_client)
    core.create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="grow"), data={"k": "v"}))

    def refused(ops):
        started = time.monotonic()
        try:
            core.patch_namespaced_config_map("grow", namespace, ops)
        except ApiException as e:
            return e.status, json.loads(e.body), time.monotonic() - started
        raise AssertionError("patch accepted")

    code, st, _ = refused([{"op": "test", "path": "/kind", "value": "ConfigMap"}] * 10001)
    assert (code, st["reason"]) == (413, "RequestEntityTooLarge")
    assert st["message"] == ("Request entity too large: The allowed maximum operations "
                             "in a JSON patch is 10000, got 10001")
    # 40 copies of /data into itself would make it 2^40 times its size.
    doubling = [{"op": "add", "path": "/data/big", "value": "x" * 1000}]
    doubling += [{"op": "copy", "from": "/data", "path": f"/data/c{i}"} for i in range(40)]
    code, st, took = refused(doubling)
    # Upstream's generic 422, which does not say why (its log does).
    assert (code, st["reason"], st["details"]) == (422, "Invalid", {}), st
    assert st["message"] == "the server rejected our request due to an error in our request"
    assert took < 5, took
    assert core.read_namespaced_config_map("grow", namespace).data == {"k": "v"}
    # Copies under the limit apply.
    core.patch_namespaced_config_map("grow", namespace, [{"op": "copy", "from": "/data/k", "path": "/data/k2"}])
    assert core.read_namespaced_config_map("grow", namespace).data == {"k": "v", "k2": "v"}


def test_unknown_fields_in_a_patch(kubectl, namespace, api_client):
    from kubernetes import client
    from kubernetes.client.rest import ApiException
    apply(kubectl, namespace, DEPLOYMENT_V1)
    # kubectl patch sends no fieldValidation: the server's default warns.
    p = kubectl.run("patch", "deployment", "web", "-n", namespace, "-p",
                    '{"spec":{"replicas":1,"bogusField":1}}')
    assert 'Warning: unknown field "spec.bogusField"' in p.stderr
    d = kubectl.json("get", "deployment", "web", "-n", namespace)
    assert d["spec"]["replicas"] == 1 and "bogusField" not in d["spec"]
    # Strict refuses the patch with a 422 naming it.
    apps = client.AppsV1Api(api_client)
    try:
        apps.patch_namespaced_deployment("web", namespace, {"spec": {"replicas": 3, "bogusField": 1}},
                                         field_validation="Strict")
        raise AssertionError("strict patch accepted")
    except ApiException as e:
        assert e.status == 422
        body = json.loads(e.body)
        assert body["reason"] == "Invalid"
        assert 'strict decoding error: unknown field "spec.bogusField"' in body["message"]
    assert kubectl.json("get", "deployment", "web", "-n", namespace)["spec"]["replicas"] == 1


def test_set_image_env_resources_and_rollout_restart(kubectl, namespace):
    apply(kubectl, namespace, DEPLOYMENT_V1)
    kubectl("set", "image", "deployment/web", "-n", namespace, "web=nginx:1.26")
    kubectl("set", "env", "deployment/web", "-n", namespace, "-c", "web", "C=3", "A-")
    kubectl("set", "resources", "deployment/web", "-n", namespace, "-c", "sidecar", "--limits=cpu=200m")
    d = kubectl.json("get", "deployment", "web", "-n", namespace)
    web = container(d, "web")
    assert web["image"] == "nginx:1.26"
    assert web["env"] == [{"name": "B", "value": "2"}, {"name": "C", "value": "3"}]
    assert container(d, "sidecar")["resources"] == {"limits": {"cpu": "200m"}}
    assert container(d, "sidecar")["image"] == "busybox"

    kubectl("rollout", "restart", "deployment/web", "-n", namespace)
    d = kubectl.json("get", "deployment", "web", "-n", namespace)
    assert "kubectl.kubernetes.io/restartedAt" in d["spec"]["template"]["metadata"]["annotations"]
    assert container(d, "web")["image"] == "nginx:1.26"


def test_edit_with_an_editor_script(kubectl, namespace, tmp_path):
    apply(kubectl, namespace, DEPLOYMENT_V1)
    editor = tmp_path / "editor.py"
    editor.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys
        path = sys.argv[-1]
        text = open(path).read()
        text = text.replace("replicas: 2", "replicas: 3", 1)
        text = text.replace("image: busybox", "image: busybox:edited", 1)
        open(path, "w").write(text)
        """))
    editor.chmod(editor.stat().st_mode | stat.S_IEXEC)
    old = os.environ.get("KUBE_EDITOR")
    os.environ["KUBE_EDITOR"] = str(editor)
    try:
        out = kubectl("edit", "deployment", "web", "-n", namespace)
    finally:
        if old is None:
            del os.environ["KUBE_EDITOR"]
        else:
            os.environ["KUBE_EDITOR"] = old
    assert "deployment.apps/web edited" in out
    d = kubectl.json("get", "deployment", "web", "-n", namespace)
    assert d["spec"]["replicas"] == 3
    assert container(d, "sidecar")["image"] == "busybox:edited"
    assert container(d, "web")["image"] == "nginx:1.25"


def test_diff_exit_codes(kubectl, namespace):
    apply(kubectl, namespace, DEPLOYMENT_V1)
    same = kubectl.run("diff", "-n", namespace, "-f", "-", input=DEPLOYMENT_V1, check=False)
    assert same.returncode == 0, same.stderr
    assert same.stdout == ""
    changed = kubectl.run("diff", "-n", namespace, "-f", "-", input=DEPLOYMENT_V2, check=False)
    assert changed.returncode == 1, changed.stderr
    # Exactly the changed lines, in order: v2's changes and the generation
    # the dry run bumps. kubectl leaves the last-applied annotation out of
    # the patch it sends for a diff, and hides managedFields, as upstream.
    lines = [l for l in changed.stdout.splitlines()
             if l[:1] in "+-" and not l.startswith(("+++ ", "--- "))]
    assert lines == [
        "-  generation: 1",
        "+  generation: 2",
        "-    tier: front",
        "-    rollingUpdate:",
        "-      maxSurge: 25%",
        "-      maxUnavailable: 25%",
        "-    type: RollingUpdate",
        "+    type: Recreate",
        "-        - name: B",
        "-          value: \"2\"",
        "+        - containerPort: 443",
        "+          protocol: TCP",
    ], changed.stdout
    # diff runs the patch as a dry run: the live object is unchanged.
    d = kubectl.json("get", "deployment", "web", "-n", namespace)
    assert d["spec"]["strategy"]["type"] == "RollingUpdate"
    assert d["metadata"]["generation"] == 1


SERVICE_V1 = """
apiVersion: v1
kind: Service
metadata:
  name: front
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: https, port: 443, targetPort: 8443}
"""

SERVICE_V2 = """
apiVersion: v1
kind: Service
metadata:
  name: front
spec:
  selector: {app: web, tier: front}
  ports:
  - {name: https, port: 443, targetPort: 9443}
"""

CONFIGMAP_V1 = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data: {color: blue, size: large}
"""

CONFIGMAP_V2 = """
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
data: {color: green, shape: round}
"""


def test_apply_service_and_configmap(kubectl, namespace):
    apply(kubectl, namespace, SERVICE_V1 + "---" + CONFIGMAP_V1)
    svc = kubectl.json("get", "service", "front", "-n", namespace)
    ip = svc["spec"]["clusterIP"]
    # Other clients add data and an annotation the manifest does not mention.
    kubectl("patch", "configmap", "settings", "-n", namespace, "-p", '{"data":{"extra":"kept"}}')
    kubectl("annotate", "configmap", "settings", "-n", namespace, "note=kept")

    out = apply(kubectl, namespace, SERVICE_V2 + "---" + CONFIGMAP_V2)
    assert "service/front configured" in out and "configmap/settings configured" in out
    svc = kubectl.json("get", "service", "front", "-n", namespace)
    assert svc["spec"]["clusterIP"] == ip
    assert svc["spec"]["selector"] == {"app": "web", "tier": "front"}
    assert svc["spec"]["ports"] == [
        {"name": "https", "port": 443, "protocol": "TCP", "targetPort": 9443},
    ]
    cm = kubectl.json("get", "configmap", "settings", "-n", namespace)
    assert cm["data"] == {"color": "green", "shape": "round", "extra": "kept"}
    assert cm["metadata"]["annotations"]["note"] == "kept"
    assert last_applied(cm)["data"] == {"color": "green", "shape": "round"}
