"""Issue #4 (server-side apply): managedFields on every write, apply with
conflicts and force, with the real kubectl 1.37 and the Python client."""

import json
import re

DEPLOY = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {ns}
  labels: {{app: web}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: main
        image: busybox:1.36
        command: ["sleep", "3600"]
{extra}"""


def deploy(ns, replicas=2, extra=""):
    return DEPLOY.format(ns=ns, replicas=replicas, extra=extra)


def managed(kubectl, kind, name, ns):
    obj = kubectl.json("get", kind, name, "-n", ns, "--show-managed-fields")
    return obj, obj["metadata"].get("managedFields", [])


def entry(entries, manager, operation=None):
    found = [e for e in entries if e["manager"] == manager and (operation is None or e["operation"] == operation)]
    return found[0] if found else None


def test_apply_creates_then_removes_a_dropped_field(kubectl, namespace):
    cm = f"""
apiVersion: v1
kind: ConfigMap
metadata:
  name: settings
  namespace: {namespace}
  labels: {{app: web, tier: front}}
data:
  color: blue
  size: large
"""
    out = kubectl("apply", "--server-side", "-f", "-", input=cm)
    assert "configmap/settings serverside-applied" in out
    obj, entries = managed(kubectl, "configmap", "settings", namespace)
    assert obj["data"] == {"color": "blue", "size": "large"}
    e = entry(entries, "kubectl", "Apply")
    assert e is not None, entries
    assert e["apiVersion"] == "v1" and e["fieldsType"] == "FieldsV1" and e["time"].endswith("Z")
    assert e["fieldsV1"] == {
        "f:data": {"f:color": {}, "f:size": {}},
        "f:metadata": {"f:labels": {"f:app": {}, "f:tier": {}}},
    }
    # Re-applied without `size` and the `tier` label: both are gone.
    cm2 = cm.replace("  size: large\n", "").replace(", tier: front", "")
    kubectl("apply", "--server-side", "-f", "-", input=cm2)
    obj, entries = managed(kubectl, "configmap", "settings", namespace)
    assert obj["data"] == {"color": "blue"}
    assert obj["metadata"]["labels"] == {"app": "web"}
    assert entry(entries, "kubectl", "Apply")["fieldsV1"] == {
        "f:data": {"f:color": {}},
        "f:metadata": {"f:labels": {"f:app": {}}},
    }
    # Applying the same configuration again changes nothing.
    rv = obj["metadata"]["resourceVersion"]
    out = kubectl("apply", "--server-side", "-f", "-", input=cm2)
    assert "serverside-applied" in out
    assert kubectl.json("get", "configmap", "settings", "-n", namespace)["metadata"]["resourceVersion"] == rv


def test_two_managers_conflict_and_force(kubectl, namespace):
    kubectl("apply", "--server-side", "--field-manager=alice", "-f", "-", input=deploy(namespace, 2))
    p = kubectl.run("apply", "--server-side", "--field-manager=bob", "-f", "-", input=deploy(namespace, 3), check=False)
    assert p.returncode != 0
    assert 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas' in p.stderr, p.stderr
    assert "--force-conflicts" in p.stderr
    assert kubectl.json("get", "deployment", "web", "-n", namespace)["spec"]["replicas"] == 2
    # Same values elsewhere are shared, not conflicts; forced, bob takes the replicas.
    kubectl("apply", "--server-side", "--field-manager=bob", "--force-conflicts", "-f", "-", input=deploy(namespace, 3))
    obj, entries = managed(kubectl, "deployment", "web", namespace)
    assert obj["spec"]["replicas"] == 3
    alice, bob = entry(entries, "alice", "Apply"), entry(entries, "bob", "Apply")
    assert "f:replicas" in bob["fieldsV1"]["f:spec"]
    assert "f:replicas" not in alice["fieldsV1"]["f:spec"]
    assert "f:selector" in alice["fieldsV1"]["f:spec"] and "f:selector" in bob["fieldsV1"]["f:spec"]


def test_show_managed_fields_output(kubectl, namespace):
    kubectl("apply", "--server-side", "-f", "-", input=deploy(namespace))
    plain = kubectl("get", "deployment", "web", "-n", namespace, "-o", "yaml")
    assert "managedFields" not in plain
    shown = kubectl("get", "deployment", "web", "-n", namespace, "-o", "yaml", "--show-managed-fields")
    assert "managedFields:" in shown
    assert "manager: kubectl" in shown and "operation: Apply" in shown
    assert "fieldsType: FieldsV1" in shown
    assert "f:containers:" in shown and 'k:{"name":"main"}:' in shown
    # Deployment status is another endpoint's: the applier does not own it.
    _, entries = managed(kubectl, "deployment", "web", namespace)
    assert "f:status" not in json.dumps(entry(entries, "kubectl", "Apply")["fieldsV1"])


def test_scale_then_apply_conflicts(kubectl, namespace):
    kubectl("apply", "--server-side", "-f", "-", input=deploy(namespace, 2))
    kubectl("scale", "deployment/web", "-n", namespace, "--replicas=5")
    obj, entries = managed(kubectl, "deployment", "web", namespace)
    assert obj["spec"]["replicas"] == 5
    scaler = [e for e in entries if e.get("subresource") == "scale"]
    assert len(scaler) == 1 and scaler[0]["operation"] == "Update", entries
    assert scaler[0]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}
    assert "f:replicas" not in entry(entries, "kubectl", "Apply")["fieldsV1"]["f:spec"]
    p = kubectl.run("apply", "--server-side", "-f", "-", input=deploy(namespace, 2), check=False)
    assert p.returncode != 0
    assert re.search(r'conflict with "[^"]+" with subresource "scale" using apps/v1: \.spec\.replicas', p.stderr), p.stderr
    kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=deploy(namespace, 2))
    obj, entries = managed(kubectl, "deployment", "web", namespace)
    assert obj["spec"]["replicas"] == 2
    assert not [e for e in entries if e.get("subresource") == "scale"], entries


def test_updates_record_their_managers(kubectl, core, namespace):
    kubectl("create", "configmap", "plain", "-n", namespace, "--from-literal=a=1")
    _, entries = managed(kubectl, "configmap", "plain", namespace)
    create = entry(entries, "kubectl-create", "Update")
    assert create is not None, entries
    assert create["fieldsV1"] == {"f:data": {".": {}, "f:a": {}}}
    kubectl("label", "configmap", "plain", "-n", namespace, "team=blue")
    _, entries = managed(kubectl, "configmap", "plain", namespace)
    label = entry(entries, "kubectl-label", "Update")
    assert label["fieldsV1"] == {"f:metadata": {"f:labels": {".": {}, "f:team": {}}}}
    # A client without fieldManager is named after its User-Agent.
    cm = core.read_namespaced_config_map("plain", namespace)
    cm.data["b"] = "2"
    core.replace_namespaced_config_map("plain", namespace, cm)
    _, entries = managed(kubectl, "configmap", "plain", namespace)
    managers = {e["manager"] for e in entries}
    assert "OpenAPI-Generator" in managers, managers
    # Objects the server writes itself are the API server's.
    ns = kubectl.json("get", "namespace", "default", "--show-managed-fields")
    assert {e["manager"] for e in ns["metadata"]["managedFields"]} == {"kube-apiserver"}
    # An apply over fields another client set conflicts with that client.
    cfg = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "plain"}, "data": {"a": "9"}}
    p = kubectl.run("apply", "--server-side", "-n", namespace, "-f", "-", input=json.dumps(cfg), check=False)
    assert 'conflict with "kubectl-create" using v1: .data.a' in p.stderr, p.stderr


def test_status_writes_are_recorded_with_their_subresource(core, kubectl, namespace):
    # A ClusterIP Service: no controller writes its status, so the entry stays.
    kubectl("create", "service", "clusterip", "statusful", "--tcp=80:80", "-n", namespace)
    cond = {"type": "example.com/Checked", "status": "True", "reason": "Tested", "message": "ok",
            "lastTransitionTime": "2026-01-01T00:00:00Z"}
    core.patch_namespaced_service_status(
        "statusful", namespace, {"status": {"conditions": [cond]}}, field_manager="my-controller"
    )
    _, entries = managed(kubectl, "service", "statusful", namespace)
    status = entry(entries, "my-controller", "Update")
    assert status is not None and status["subresource"] == "status", entries
    assert set(status["fieldsV1"]["f:status"]) >= {"f:conditions"}


def test_client_side_apply_migrates_to_server_side(kubectl, namespace):
    kubectl("apply", "-f", "-", input=deploy(namespace, 2))
    _, entries = managed(kubectl, "deployment", "web", namespace)
    assert entry(entries, "kubectl-client-side-apply", "Update") is not None, entries
    # Same user, now server-side, changing a value it applied client-side:
    # no conflict, and kubectl moves the ownership over.
    kubectl("apply", "--server-side", "-f", "-", input=deploy(namespace, 4))
    obj, entries = managed(kubectl, "deployment", "web", namespace)
    assert obj["spec"]["replicas"] == 4
    assert entry(entries, "kubectl-client-side-apply") is None, entries
    assert entry(entries, "kubectl", "Apply") is not None
    last = json.loads(obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["spec"]["replicas"] == 4
    # From now on dropping a field removes it.
    with_label = deploy(namespace, 4).replace("labels: {app: web}\nspec:", "labels: {app: web, extra: x}\nspec:", 1)
    kubectl("apply", "--server-side", "-f", "-", input=with_label)
    assert kubectl.json("get", "deployment", "web", "-n", namespace)["metadata"]["labels"]["extra"] == "x"
    kubectl("apply", "--server-side", "-f", "-", input=deploy(namespace, 4))
    assert "extra" not in kubectl.json("get", "deployment", "web", "-n", namespace)["metadata"]["labels"]


def test_dry_run_apply(kubectl, namespace):
    out = kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=deploy(namespace))
    assert "(server dry run)" in out
    assert kubectl.run("get", "deployment", "web", "-n", namespace, check=False).returncode != 0
    kubectl("apply", "--server-side", "-f", "-", input=deploy(namespace, 2))
    kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", input=deploy(namespace, 7))
    assert kubectl.json("get", "deployment", "web", "-n", namespace)["spec"]["replicas"] == 2
    # A dry run still reports conflicts.
    p = kubectl.run("apply", "--server-side", "--dry-run=server", "--field-manager=other", "-f", "-", input=deploy(namespace, 7), check=False)
    assert "Apply failed with 1 conflict" in p.stderr


def _apply_raw(api_client, path, body, query, content_type="application/apply-patch+yaml"):
    from kubernetes.client.rest import ApiException
    try:
        data = api_client.call_api(
            *api_client.param_serialize(
                method="PATCH", resource_path=path, query_params=query,
                header_params={"Content-Type": content_type, "Accept": "application/json"},
                body=body, auth_settings=["BearerToken"],
            )
        )
        data.read()
        return data.status, json.loads(data.data)
    except ApiException as e:
        return e.status, json.loads(e.body)


def test_python_client_apply(api_client, core, namespace):
    from kubernetes import dynamic
    dyn = dynamic.DynamicClient(api_client)
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    body = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "py", "namespace": namespace}, "data": {"k": "v"}}
    created = dyn.server_side_apply(cms, body=body, field_manager="py-dyn")
    assert created.data.k == "v"
    mf = created.metadata.managedFields
    assert mf[0].manager == "py-dyn" and mf[0].operation == "Apply"
    # The typed API with the apply content type.
    core.patch_namespaced_config_map(
        "py", namespace,
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "py"}, "data": {"k": "w"}},
        field_manager="py-typed", force=True, _content_type="application/apply-patch+yaml",
    )
    assert core.read_namespaced_config_map("py", namespace).data == {"k": "w"}
    # YAML bodies, raw; a conflict is a 409 with upstream's causes.
    path = f"/api/v1/namespaces/{namespace}/configmaps/py"
    yaml_body = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: py\ndata:\n  k: x\n"
    code, status = _apply_raw(api_client, path, yaml_body, [("fieldManager", "py-raw")])
    assert code == 409 and status["reason"] == "Conflict", status
    assert status["message"] == 'Apply failed with 1 conflict: conflict with "py-typed": .data.k'
    assert status["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "py-typed"', "field": ".data.k"}
    ]
    code, obj = _apply_raw(api_client, path, yaml_body, [("fieldManager", "py-raw"), ("force", "true")])
    assert code == 200 and obj["data"] == {"k": "x"}
    # Apply to a missing object creates it: 201.
    code, obj = _apply_raw(api_client, f"/api/v1/namespaces/{namespace}/configmaps/fresh",
                           {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fresh"}, "data": {"a": "b"}},
                           [("fieldManager", "py-raw")])
    assert code == 201 and obj["data"] == {"a": "b"}, obj
    # Through the status subresource the applier is recorded with it.
    core.create_namespaced_pod(namespace, {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    cond = {"type": "Example", "status": "True"}
    code, obj = _apply_raw(api_client, f"/api/v1/namespaces/{namespace}/pods/p/status",
                           {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"conditions": [cond]}},
                           [("fieldManager", "py-status"), ("force", "true")])
    assert code == 200, obj
    mine = [e for e in obj["metadata"]["managedFields"] if e["manager"] == "py-status"]
    assert mine and mine[0]["operation"] == "Apply" and mine[0]["subresource"] == "status", obj["metadata"]["managedFields"]
    assert "f:status" in mine[0]["fieldsV1"]


ERROR_CASES = {
    "no-manager": (422, 'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'),
    "force-on-merge": (422, 'PatchOptions.meta.k8s.io "" is invalid: force: Forbidden: may not be specified for non-apply patch'),
    "unknown-field": (400, "failed to create typed patch object (/err; /v1, Kind=ConfigMap): .spec: field not declared in schema"),
    "managed-fields": (400, "metadata.managedFields must be nil"),
    "wrong-kind": (400, "invalid object type: /v1, Kind=Secret"),
    "name-mismatch": (400, "the name of the object (other) does not match the name on the URL (err)"),
    "bad-yaml": (400, "error decoding patch"),
    "repeated-key-strict": (400, 'error strict decoding patch: yaml: unmarshal errors:\n  key "a" already set in map'),
}


def test_apply_errors(api_client, core, namespace):
    core.create_namespaced_config_map(namespace, {"metadata": {"name": "err"}, "data": {"a": "b"}})
    path = f"/api/v1/namespaces/{namespace}/configmaps/err"
    cfg = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "err"}, "data": {"a": "c"}}
    for case, (want_code, want) in ERROR_CASES.items():
        query, body, ct = [("fieldManager", "m")], cfg, "application/apply-patch+yaml"
        if case == "no-manager":
            query = []
        elif case == "force-on-merge":
            query, ct = [("force", "true")], "application/merge-patch+json"
        elif case == "unknown-field":
            body = dict(cfg, spec={"x": 1})
        elif case == "managed-fields":
            body = dict(cfg, metadata={"name": "err", "managedFields": []})
        elif case == "wrong-kind":
            body = dict(cfg, kind="Secret")
        elif case == "name-mismatch":
            body = dict(cfg, metadata={"name": "other"})
        elif case == "bad-yaml":
            body = "data: [unclosed"
        elif case == "repeated-key-strict":
            query = [("fieldManager", "m"), ("fieldValidation", "Strict")]
            body = '{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "err"}, "data": {"a": "c", "a": "d"}}'
        code, status = _apply_raw(api_client, path, body, query, ct)
        assert code == want_code, (case, status)
        assert status["message"].startswith(want), (case, status)
        assert core.read_namespaced_config_map("err", namespace).data == {"a": "b"}, case


WIDGET_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.ssa.example.com
spec:
  group: ssa.example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              replicas: {type: integer}
              color: {type: string}
              ports:
                type: array
                x-kubernetes-list-type: map
                x-kubernetes-list-map-keys: [name]
                items:
                  type: object
                  required: [name]
                  properties:
                    name: {type: string}
                    port: {type: integer}
              tags:
                type: array
                x-kubernetes-list-type: set
                items: {type: string}
              extra:
                type: object
                x-kubernetes-preserve-unknown-fields: true
          status:
            type: object
            properties:
              replicas: {type: integer}
"""


def widget(ns, spec):
    return json.dumps({"apiVersion": "ssa.example.com/v1", "kind": "Widget",
                       "metadata": {"name": "w", "namespace": ns}, "spec": spec})


def test_custom_resources_apply_by_their_schema(kubectl, namespace, tmp_path):
    cache = str(tmp_path / "cache")

    def k(*args, **kw):
        return kubectl.run(*args, "--cache-dir", cache, **kw)

    k("apply", "--server-side", "-f", "-", input=WIDGET_CRD)
    k("wait", "--for=condition=Established", "crd/widgets.ssa.example.com", "--timeout=30s")
    try:
        alice = {"replicas": 1, "color": "red", "ports": [{"name": "a", "port": 80}, {"name": "b", "port": 81}],
                 "tags": ["x"], "extra": {"deep": {"k": "v"}}}
        k("apply", "--server-side", "--field-manager=alice", "-f", "-", input=widget(namespace, alice))
        # Another manager adds a list-map item and a set item: merged.
        k("apply", "--server-side", "--field-manager=bob", "-f", "-",
          input=widget(namespace, {"ports": [{"name": "c", "port": 82}], "tags": ["y"]}))
        obj = json.loads(k("get", "widget", "w", "-n", namespace, "-o", "json", "--show-managed-fields").stdout)
        assert [p["name"] for p in obj["spec"]["ports"]] == ["a", "b", "c"]
        assert sorted(obj["spec"]["tags"]) == ["x", "y"]
        entries = obj["metadata"]["managedFields"]
        a = entry(entries, "alice", "Apply")["fieldsV1"]
        assert set(a["f:spec"]["f:ports"]) == {'k:{"name":"a"}', 'k:{"name":"b"}'}
        # Keys of a free-form object are owned as map keys (with ".").
        assert a["f:spec"]["f:extra"] == {"f:deep": {".": {}, "f:k": {}}}
        # alice drops port b and the color: removed; bob's items stay.
        alice2 = {"replicas": 1, "ports": [{"name": "a", "port": 80}], "tags": ["x"]}
        k("apply", "--server-side", "--field-manager=alice", "-f", "-", input=widget(namespace, alice2))
        obj = json.loads(k("get", "widget", "w", "-n", namespace, "-o", "json", "--show-managed-fields").stdout)
        assert [p["name"] for p in obj["spec"]["ports"]] == ["a", "c"]
        assert "color" not in obj["spec"] and "extra" not in obj["spec"]
        # bob changing alice's replicas conflicts.
        p = k("apply", "--server-side", "--field-manager=bob", "-f", "-",
              input=widget(namespace, {"replicas": 5}), check=False)
        assert 'Apply failed with 1 conflict: conflict with "alice": .spec.replicas' in p.stderr, p.stderr
        # Unknown fields are refused by the CRD's schema.
        p = k("apply", "--server-side", "--field-manager=bob", "-f", "-",
              input=widget(namespace, {"colour": "x"}), check=False)
        assert ".spec.colour: field not declared in schema" in p.stderr, p.stderr
        # Scaling records the scaler with the scale subresource.
        k("scale", "widget/w", "-n", namespace, "--replicas=4")
        obj = json.loads(k("get", "widget", "w", "-n", namespace, "-o", "json", "--show-managed-fields").stdout)
        scaler = [e for e in obj["metadata"]["managedFields"] if e.get("subresource") == "scale"]
        assert obj["spec"]["replicas"] == 4
        assert len(scaler) == 1 and scaler[0]["fieldsV1"] == {"f:spec": {"f:replicas": {}}}, obj["metadata"]["managedFields"]
        assert "f:replicas" not in entry(obj["metadata"]["managedFields"], "alice", "Apply")["fieldsV1"]["f:spec"]
    finally:
        k("delete", "crd", "widgets.ssa.example.com", "--ignore-not-found", "--timeout=60s", check=False)
