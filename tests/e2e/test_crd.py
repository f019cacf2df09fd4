"""Issue #4 (CRD part) acceptance: CustomResourceDefinitions with the real
kubectl 1.37 and the official Python client.

Every kubectl call gets a fresh discovery cache (--cache-dir), since
discovery must change right after a CRD is established or deleted."""

import json
import os
import select
import subprocess
import tempfile
import time

import pytest
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from conftest import KUBECTL, REJECTED, Kubectl, Server

GROUP = "stable.example.com"
CRD_NAME = f"crontabs.{GROUP}"

SPEC_SCHEMA = """
            spec:
              type: object
              required: [cronSpec]
              properties:
                cronSpec:
                  type: string
                  pattern: '^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$'
                image:
                  type: string
                replicas:
                  type: integer
                  minimum: 0
                  maximum: 10
                  default: 1
                mode:
                  type: string
                  enum: [Fast, Slow]
                  default: Slow
                port:
                  x-kubernetes-int-or-string: true
                extra:
                  type: object
                  x-kubernetes-preserve-unknown-fields: true
            status:
              type: object
              properties:
                replicas:
                  type: integer
                labelSelector:
                  type: string
                phase:
                  type: string"""

VERSION_COMMON = f"""
      schema:
        openAPIV3Schema:
          type: object
          properties:{SPEC_SCHEMA}
      subresources:
        status: {{}}
        scale:
          specReplicasPath: .spec.replicas
          statusReplicasPath: .status.replicas
          labelSelectorPath: .status.labelSelector
      additionalPrinterColumns:
      - name: Spec
        type: string
        jsonPath: .spec.cronSpec
      - name: Replicas
        type: integer
        jsonPath: .spec.replicas
      - name: Mode
        type: string
        jsonPath: .spec.mode
      - name: Age
        type: date
        jsonPath: .metadata.creationTimestamp"""

CRD = f"""
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {CRD_NAME}
spec:
  group: {GROUP}
  scope: Namespaced
  names:
    plural: crontabs
    singular: crontab
    kind: CronTab
    shortNames: [ct]
    categories: [all]
  versions:
    - name: v1
      served: true
      storage: true{VERSION_COMMON}
    - name: v1beta1
      served: true
      storage: false
      deprecated: true{VERSION_COMMON}
"""

CLUSTER_CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.things.example.org
spec:
  group: things.example.org
  scope: Cluster
  names:
    plural: widgets
    kind: Widget
  versions:
    - name: v1alpha1
      served: true
      storage: true
      selectableFields:
      - jsonPath: .spec.color
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size:
                  type: integer
                color:
                  type: string
                  default: blue
"""


def cronjob(name, **spec):
    body = {"cronSpec": "* * * * */5", "image": "my-image"}
    body.update(spec)
    return f"""
apiVersion: {GROUP}/v1
kind: CronTab
metadata:
  name: {name}
  labels: {{app: cron}}
spec: {json.dumps(body)}
"""


@pytest.fixture
def k(kubectl):
    """kubectl with a fresh discovery cache for every call."""

    class Fresh:
        def run(self, *args, **kw):
            with tempfile.TemporaryDirectory(prefix="kcache-") as d:
                return kubectl.run(*args, "--cache-dir", d, **kw)

        def __call__(self, *args, **kw):
            return self.run(*args, **kw).stdout

        def json(self, *args):
            return json.loads(self(*args, "-o", "json"))

    return Fresh()


@pytest.fixture
def custom(api_client):
    return client.CustomObjectsApi(api_client)


def install(k, manifest, name):
    k("apply", "-f", "-", input=manifest)
    k("wait", "--for=condition=Established", f"crd/{name}", "--timeout=30s")


def uninstall(k, name):
    k.run("delete", "crd", name, "--ignore-not-found", "--timeout=60s", check=False)


def error_body(e):
    return json.loads(e.value.body)


def test_crd_established_with_status_and_discovery(k):
    install(k, CRD, CRD_NAME)
    try:
        crd = k.json("get", "crd", CRD_NAME)
        conds = {c["type"]: c for c in crd["status"]["conditions"]}
        assert conds["NamesAccepted"]["status"] == "True" and conds["NamesAccepted"]["reason"] == "NoConflicts"
        assert conds["Established"]["status"] == "True" and conds["Established"]["reason"] == "InitialNamesAccepted"
        assert crd["status"]["acceptedNames"]["kind"] == "CronTab"
        assert crd["status"]["acceptedNames"]["shortNames"] == ["ct"]
        assert crd["status"]["acceptedNames"]["listKind"] == "CronTabList"
        assert crd["status"]["storedVersions"] == ["v1"]
        assert crd["spec"]["conversion"] == {"strategy": "None"}
        assert crd["metadata"]["generation"] == 1

        rows = {l.split()[0]: l.split() for l in k("api-resources", "--api-group", GROUP).strip().split("\n")[1:]}
        assert rows["crontabs"] == ["crontabs", "ct", f"{GROUP}/v1", "true", "CronTab"]
        versions = k("api-versions").split()
        assert f"{GROUP}/v1" in versions and f"{GROUP}/v1beta1" in versions
        assert "crd" in k("api-resources", "--api-group", "apiextensions.k8s.io")
        assert CRD_NAME in k("get", "crds")
    finally:
        uninstall(k, CRD_NAME)
    assert f"{GROUP}/v1" not in k("api-versions").split()


def test_custom_resources_with_kubectl(k, namespace):
    install(k, CRD, CRD_NAME)
    try:
        k("apply", "-n", namespace, "-f", "-", input=cronjob("first"))
        cr = k.json("get", "crontab", "first", "-n", namespace)
        # Defaults from the schema, generation 1, the storage version served.
        assert cr["spec"]["replicas"] == 1 and cr["spec"]["mode"] == "Slow"
        assert cr["metadata"]["generation"] == 1
        assert cr["apiVersion"] == f"{GROUP}/v1"

        # Short name, printer columns, date column as age.
        table = k("get", "ct", "-n", namespace)
        header = table.split("\n")[0].split()
        assert header == ["NAME", "SPEC", "REPLICAS", "MODE", "AGE"], table
        row = table.split("\n")[1].split()
        assert row[0] == "first" and row[1:6] == ["*", "*", "*", "*", "*/5"] and row[6] == "1" and row[7] == "Slow"
        assert row[8].endswith("s")

        # Another (deprecated) version of the same object.
        p = k.run("get", f"crontabs.v1beta1.{GROUP}", "first", "-n", namespace, "-o", "json")
        v1beta1 = json.loads(p.stdout)
        assert v1beta1["apiVersion"] == f"{GROUP}/v1beta1"
        assert v1beta1["metadata"]["uid"] == cr["metadata"]["uid"]
        assert f"Warning: {GROUP}/v1beta1 CronTab is deprecated; use {GROUP}/v1 CronTab" in p.stderr, p.stderr

        # Apply again with a change; merge patch and JSON patch.
        k("apply", "-n", namespace, "-f", "-", input=cronjob("first", image="other"))
        assert k.json("get", "ct", "first", "-n", namespace)["spec"]["image"] == "other"
        k("patch", "ct", "first", "-n", namespace, "--type=merge", "-p", '{"spec":{"mode":"Fast"}}')
        k("patch", "ct", "first", "-n", namespace, "--type=json",
          "-p", '[{"op":"replace","path":"/spec/image","value":"third"}]')
        cr = k.json("get", "ct", "first", "-n", namespace)
        assert cr["spec"]["mode"] == "Fast" and cr["spec"]["image"] == "third"
        assert cr["metadata"]["generation"] == 4

        # Strategic merge patch is not supported for custom resources.
        p = k.run("patch", "ct", "first", "-n", namespace, "--type=strategic", "-p", '{"spec":{"mode":"Slow"}}',
                  check=False)
        assert p.returncode != 0, p.stdout
        assert f"application/strategic-merge-patch+json is not supported by {GROUP}/v1, Kind=CronTab" in p.stderr
        assert "accepted media types include: application/json-patch+json, application/merge-patch+json" in p.stderr

        # Scale subresource.
        k("scale", "crontab", "first", "-n", namespace, "--replicas=3")
        assert k.json("get", "ct", "first", "-n", namespace)["spec"]["replicas"] == 3
        # A JSON patch of it that cannot apply: upstream's generic 422.
        p = k.run("patch", "ct", "first", "-n", namespace, "--subresource=scale", "--type=json",
                  "-p", '[{"op":"test","path":"/spec/replicas","value":5}]', check=False)
        assert p.returncode != 0
        assert p.stderr.strip() == REJECTED, p.stderr
        assert k.json("get", "ct", "first", "-n", namespace)["spec"]["replicas"] == 3

        # Selectors.
        k("apply", "-n", namespace, "-f", "-", input=cronjob("second").replace("app: cron", "app: other"))
        names = k("get", "ct", "-n", namespace, "-l", "app=cron", "-o", "name").split()
        assert names == [f"crontab.{GROUP}/first"]
        names = k("get", "ct", "-n", namespace, "--field-selector", "metadata.name=second", "-o", "name").split()
        assert names == [f"crontab.{GROUP}/second"]

        # Category "all".
        out = k("get", "all", "-n", namespace, "-o", "name")
        assert f"crontab.{GROUP}/first" in out.split() and f"crontab.{GROUP}/second" in out.split()

        # Validation failures with upstream messages.
        p = k.run("apply", "-n", namespace, "-f", "-",
                  input=cronjob("bad", replicas="three", mode="Medium", cronSpec="never"), check=False)
        assert p.returncode != 0
        assert 'spec.replicas: Invalid value: "string": spec.replicas in body must be of type integer: "string"' in p.stderr
        assert 'spec.mode: Unsupported value: "Medium": supported values: "Fast", "Slow"' in p.stderr
        assert "spec.cronSpec in body should match" in p.stderr

        # Unknown fields: refused with kubectl's default strict validation, pruned when ignored.
        p = k.run("apply", "-n", namespace, "-f", "-", input=cronjob("unknown", color="red"), check=False)
        assert p.returncode != 0 and 'unknown field "spec.color"' in p.stderr, p.stderr
        k("apply", "--validate=false", "-n", namespace, "-f", "-", input=cronjob("unknown", color="red"))
        assert "color" not in k.json("get", "ct", "unknown", "-n", namespace)["spec"]

        k("delete", "ct", "unknown", "-n", namespace)
        assert k.run("get", "ct", "unknown", "-n", namespace, check=False).returncode != 0
    finally:
        uninstall(k, CRD_NAME)


def test_custom_resources_with_python_client(k, custom, namespace):
    install(k, CRD, CRD_NAME)
    try:
        body = {"apiVersion": f"{GROUP}/v1", "kind": "CronTab", "metadata": {"name": "py"},
                "spec": {"cronSpec": "*/5 * * * *", "port": "http", "extra": {"anything": [1, {"deep": True}]},
                         "notInSchema": 1},
                "status": {"phase": "ignored on create"}}
        created = custom.create_namespaced_custom_object(GROUP, "v1", namespace, "crontabs", body)
        # Pruned (the default fieldValidation warns and drops), defaulted,
        # status dropped (status subresource), preserved where the schema says so.
        assert "notInSchema" not in created["spec"]
        assert created["spec"]["replicas"] == 1 and created["spec"]["port"] == "http"
        assert created["spec"]["extra"] == {"anything": [1, {"deep": True}]}
        assert "status" not in created

        lst = custom.list_namespaced_custom_object(GROUP, "v1", namespace, "crontabs")
        assert lst["kind"] == "CronTabList" and [i["metadata"]["name"] for i in lst["items"]] == ["py"]
        rv = lst["metadata"]["resourceVersion"]

        # Validation: 422 with a cause per field.
        bad = dict(body, metadata={"name": "bad"}, spec={"replicas": 20, "port": True})
        with pytest.raises(ApiException) as e:
            custom.create_namespaced_custom_object(GROUP, "v1", namespace, "crontabs", bad)
        assert e.value.status == 422
        status = error_body(e)
        assert status["reason"] == "Invalid"
        causes = {(c["field"], c["reason"]) for c in status["details"]["causes"]}
        assert ("spec.cronSpec", "FieldValueRequired") in causes
        assert ("spec.replicas", "FieldValueInvalid") in causes
        assert ("spec.port", "FieldValueTypeInvalid") in causes
        assert status["details"]["kind"] == "CronTab" and status["details"]["group"] == GROUP
        assert status["message"].startswith('CronTab.stable.example.com "bad" is invalid: ')

        # Status subresource: the main resource ignores status, /status ignores the rest.
        custom.patch_namespaced_custom_object(GROUP, "v1", namespace, "crontabs", "py",
                                              {"status": {"phase": "nope"}})
        assert "status" not in custom.get_namespaced_custom_object(GROUP, "v1", namespace, "crontabs", "py")
        after = custom.patch_namespaced_custom_object_status(
            GROUP, "v1", namespace, "crontabs", "py",
            {"spec": {"image": "not-here"}, "status": {"phase": "Running", "replicas": 1, "labelSelector": "app=py"}})
        assert after["status"]["phase"] == "Running"
        assert "image" not in after["spec"]
        assert after["metadata"]["generation"] == 1
        with pytest.raises(ApiException) as e:
            custom.patch_namespaced_custom_object_status(GROUP, "v1", namespace, "crontabs", "py",
                                                         {"status": {"replicas": "many"}})
        assert e.value.status == 422
        assert 'replicas in body must be of type integer: "string"' in error_body(e)["message"]
        changed = custom.patch_namespaced_custom_object(GROUP, "v1", namespace, "crontabs", "py",
                                                        {"spec": {"image": "new"}})
        assert changed["metadata"]["generation"] == 2 and changed["status"]["phase"] == "Running"

        # Scale subresource.
        scale = custom.get_namespaced_custom_object_scale(GROUP, "v1", namespace, "crontabs", "py")
        assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 1
        assert scale["status"] == {"replicas": 1, "selector": "app=py"}
        scale = custom.patch_namespaced_custom_object_scale(GROUP, "v1", namespace, "crontabs", "py",
                                                            {"spec": {"replicas": 4}})
        assert scale["spec"]["replicas"] == 4
        with pytest.raises(ApiException) as e:
            custom.patch_namespaced_custom_object_scale(GROUP, "v1", namespace, "crontabs", "py",
                                                        {"spec": {"replicas": 11}})
        assert e.value.status == 422
        assert "spec.replicas in body should be less than or equal to 10" in error_body(e)["message"]

        # Watch from the list's resourceVersion sees what happened since.
        w = watch.Watch()
        events = []
        for ev in w.stream(custom.list_namespaced_custom_object, GROUP, "v1", namespace, "crontabs",
                           resource_version=rv, timeout_seconds=5):
            events.append((ev["type"], ev["object"]["metadata"]["name"], ev["object"]["apiVersion"]))
            if len(events) >= 4:
                w.stop()
        assert events[0][:2] == ("MODIFIED", "py") and all(e[2] == f"{GROUP}/v1" for e in events)

        # A watch on the other version speaks that version.
        custom.delete_namespaced_custom_object(GROUP, "v1", namespace, "crontabs", "py")
        w = watch.Watch()
        for ev in w.stream(custom.list_namespaced_custom_object, GROUP, "v1beta1", namespace, "crontabs",
                           resource_version=rv, timeout_seconds=5):
            if ev["type"] == "DELETED":
                assert ev["object"]["apiVersion"] == f"{GROUP}/v1beta1"
                w.stop()
        with pytest.raises(ApiException) as e:
            custom.get_namespaced_custom_object(GROUP, "v1", namespace, "crontabs", "py")
        assert e.value.status == 404
    finally:
        uninstall(k, CRD_NAME)


def test_deleting_the_crd_deletes_its_resources(k, custom, api_client, namespace):
    install(k, CRD, CRD_NAME)
    for name in ["one", "two"]:
        k("apply", "-n", namespace, "-f", "-", input=cronjob(name))
    w = watch.Watch()
    stream = w.stream(custom.list_namespaced_custom_object, GROUP, "v1", namespace, "crontabs", timeout_seconds=30)
    assert next(stream)["type"] == "ADDED"
    k("delete", "crd", CRD_NAME, "--timeout=60s")
    deleted = set()
    for ev in stream:
        if ev["type"] == "DELETED":
            deleted.add(ev["object"]["metadata"]["name"])
        if deleted == {"one", "two"}:
            w.stop()
    assert deleted == {"one", "two"}
    assert k.run("get", "crd", CRD_NAME, check=False).returncode != 0
    with pytest.raises(ApiException) as e:
        custom.get_namespaced_custom_object(GROUP, "v1", namespace, "crontabs", "one")
    assert e.value.status == 404
    # The resource path itself is gone.
    with pytest.raises(ApiException) as e:
        custom.list_namespaced_custom_object(GROUP, "v1", namespace, "crontabs")
    assert e.value.status == 404
    assert error_body(e)["message"] == "the server could not find the requested resource"
    # Re-creating it serves the resource again, empty.
    install(k, CRD, CRD_NAME)
    try:
        assert custom.list_namespaced_custom_object(GROUP, "v1", namespace, "crontabs")["items"] == []
    finally:
        uninstall(k, CRD_NAME)


def test_cluster_scoped_crd(k, custom, namespace):
    install(k, CLUSTER_CRD, "widgets.things.example.org")
    try:
        k("apply", "-f", "-", input="apiVersion: things.example.org/v1alpha1\nkind: Widget\n"
                                    "metadata: {name: w1}\nspec: {size: 3}\n")
        w = k.json("get", "widget", "w1")
        assert w["spec"] == {"size": 3, "color": "blue"} and "namespace" not in w["metadata"]
        table = k("get", "widgets")
        assert table.split("\n")[0].split() == ["NAME", "AGE"]
        created = custom.create_cluster_custom_object(
            "things.example.org", "v1alpha1", "widgets",
            {"apiVersion": "things.example.org/v1alpha1", "kind": "Widget", "metadata": {"name": "w2"}})
        assert created["metadata"]["name"] == "w2" and created["metadata"]["generation"] == 1
        names = [i["metadata"]["name"] for i in
                 custom.list_cluster_custom_object("things.example.org", "v1alpha1", "widgets")["items"]]
        assert names == ["w1", "w2"]
        # Selectable fields.
        custom.patch_cluster_custom_object("things.example.org", "v1alpha1", "widgets", "w2",
                                           {"spec": {"color": "red"}})
        assert k("get", "widgets", "--field-selector", "spec.color=red", "-o", "name").split() == \
            ["widget.things.example.org/w2"]
        assert k("get", "widgets", "--field-selector", "spec.color!=red", "-o", "name").split() == \
            ["widget.things.example.org/w1"]
        p = k.run("get", "widgets", "--field-selector", "spec.size=3", check=False)
        assert p.returncode != 0 and "field label not supported: spec.size" in p.stderr, p.stderr
        # No namespaced path for a cluster-scoped resource.
        with pytest.raises(ApiException) as e:
            custom.list_namespaced_custom_object("things.example.org", "v1alpha1", namespace, "widgets")
        assert e.value.status == 404
        rows = {l.split()[0]: l.split() for l in k("api-resources", "--api-group", "things.example.org").strip().split("\n")[1:]}
        assert rows["widgets"] == ["widgets", "things.example.org/v1alpha1", "false", "Widget"]
    finally:
        uninstall(k, "widgets.things.example.org")


def test_invalid_crds_are_refused(api_client):
    ext = client.ApiextensionsV1Api(api_client)
    crd = {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "bads.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "bads", "kind": "Bad"},
            "versions": [
                {"name": "v1", "served": True, "storage": True,
                 "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"properties": {}}}}}},
                {"name": "v2", "served": True, "storage": True,
                 "schema": {"openAPIV3Schema": {"type": "object"}}},
            ],
        },
    }
    with pytest.raises(ApiException) as e:
        ext.create_custom_resource_definition(crd)
    assert e.value.status == 422
    status = error_body(e)
    fields = {c["field"] for c in status["details"]["causes"]}
    assert "spec.versions" in fields
    assert "spec.versions[0].schema.openAPIV3Schema.properties[spec].type" in fields
    assert "must have exactly one version marked as storage version" in status["message"]
    crd["metadata"]["name"] = "wrong.example.com"
    with pytest.raises(ApiException) as e:
        ext.create_custom_resource_definition(crd)
    assert 'metadata.name: Invalid value: "wrong.example.com": must be spec.names.plural+"."+spec.group' \
        in error_body(e)["message"]


def test_name_conflicts_are_reported(k):
    install(k, CRD, CRD_NAME)
    clash = CRD.replace(f"name: {CRD_NAME}", f"name: crontabsagain.{GROUP}") \
        .replace("plural: crontabs", "plural: crontabsagain").replace("singular: crontab", "singular: crontabagain") \
        .replace("kind: CronTab", "kind: CronTabAgain")
    try:
        k("apply", "-f", "-", input=clash)
        deadline = time.time() + 20
        cond = {}
        while time.time() < deadline:
            crd = k.json("get", "crd", f"crontabsagain.{GROUP}")
            cond = {c["type"]: c for c in crd.get("status", {}).get("conditions", [])}
            if "NamesAccepted" in cond:
                break
            time.sleep(0.2)
        assert cond["NamesAccepted"]["status"] == "False"
        assert cond["NamesAccepted"]["reason"] == "ShortNamesConflict"
        assert cond["NamesAccepted"]["message"] == '"ct" is already in use'
        assert cond["Established"]["status"] == "False"
    finally:
        uninstall(k, f"crontabsagain.{GROUP}")
        uninstall(k, CRD_NAME)


def test_watch_custom_resources_with_kubectl(k, kubectl, server, namespace):
    install(k, CRD, CRD_NAME)
    try:
        env = dict(os.environ, KUBECONFIG=str(server.kubeconfig))
        with tempfile.TemporaryDirectory(prefix="kcache-") as cache:
            w = subprocess.Popen([KUBECTL, "get", "ct", "-n", namespace, "--watch", "-o", "name", "--cache-dir", cache],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            try:
                time.sleep(1.5)
                k("apply", "-n", namespace, "-f", "-", input=cronjob("watched"))
                deadline = time.time() + 20
                seen = ""
                while time.time() < deadline and "watched" not in seen:
                    r, _, _ = select.select([w.stdout], [], [], 0.5)
                    if r:
                        seen += w.stdout.readline()
                assert f"crontab.{GROUP}/watched" in seen, seen
            finally:
                w.kill()
                w.wait()
    finally:
        uninstall(k, CRD_NAME)


def test_custom_resources_survive_a_restart():
    with tempfile.TemporaryDirectory(prefix="wharf-crd-") as d:
        server = Server(d).start()
        try:
            kubectl = Kubectl(server.kubeconfig)
            with tempfile.TemporaryDirectory(prefix="kcache-") as cache:
                kubectl("apply", "-f", "-", "--cache-dir", cache, input=CRD)
                kubectl("wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=30s", "--cache-dir", cache)
                kubectl("apply", "-n", "default", "-f", "-", "--cache-dir", cache, input=cronjob("kept"))
            server.stop()
            server.start()
            with tempfile.TemporaryDirectory(prefix="kcache-") as cache:
                cr = json.loads(kubectl("get", "ct", "kept", "-n", "default", "-o", "json", "--cache-dir", cache))
                assert cr["spec"]["replicas"] == 1
                assert "crontabs" in kubectl("api-resources", "--api-group", GROUP, "--cache-dir", cache)
        finally:
            server.stop()


def test_schema_changes_take_effect_at_once(k, custom, namespace):
    install(k, CRD, CRD_NAME)
    try:
        k("apply", "-n", namespace, "-f", "-", input=cronjob("early", replicas=8))
        base = "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties"
        k("patch", "crd", CRD_NAME, "--type=json", "-p", json.dumps([
            {"op": "replace", "path": f"{base}/replicas/maximum", "value": 5},
            {"op": "add", "path": f"{base}/tag", "value": {"type": "string", "default": "stable"}},
        ]))
        assert k.json("get", "crd", CRD_NAME)["metadata"]["generation"] == 2
        # The new maximum applies to new objects right away...
        with pytest.raises(ApiException) as e:
            custom.create_namespaced_custom_object(GROUP, "v1", namespace, "crontabs", {
                "apiVersion": f"{GROUP}/v1", "kind": "CronTab", "metadata": {"name": "late"},
                "spec": {"cronSpec": "* * * * *", "replicas": 8}})
        assert e.value.status == 422
        assert "spec.replicas in body should be less than or equal to 5" in error_body(e)["message"]
        # ...while an update that leaves the old value alone is allowed
        # (ratcheting), and gets the new default.
        updated = custom.patch_namespaced_custom_object(GROUP, "v1", namespace, "crontabs", "early",
                                                        {"metadata": {"labels": {"touched": "yes"}}})
        assert updated["spec"]["replicas"] == 8 and updated["spec"]["tag"] == "stable"
        with pytest.raises(ApiException) as e:
            custom.patch_namespaced_custom_object(GROUP, "v1", namespace, "crontabs", "early",
                                                  {"spec": {"replicas": 9}})
        assert e.value.status == 422
    finally:
        uninstall(k, CRD_NAME)


def test_kubectl_explain_custom_resources(k):
    """Established CRDs are published in OpenAPI at once, and withdrawn with them."""
    install(k, CRD, CRD_NAME)
    try:
        out = k("explain", "crontabs")
        assert f"GROUP:      {GROUP}" in out and "KIND:       CronTab" in out and "VERSION:    v1" in out
        spec = k("explain", "crontabs.spec")
        assert "cronSpec" in spec and "replicas" in spec
        assert "cronSpec\t<string> -required-" in spec
        assert "FIELD: cronSpec <string>" in k("explain", "crontabs.spec.cronSpec")
        assert "ObjectMeta" in k("explain", "crontabs.metadata")
    finally:
        uninstall(k, CRD_NAME)
    assert k.run("explain", "crontabs", check=False).returncode != 0


def test_dynamic_client_discovers_and_watches_custom_resources(k, api_client, namespace):
    from kubernetes import dynamic
    install(k, CRD, CRD_NAME)
    try:
        dyn = dynamic.DynamicClient(api_client)
        crontabs = dyn.resources.get(api_version=f"{GROUP}/v1", kind="CronTab")
        assert crontabs.namespaced and crontabs.name == "crontabs"
        rv = crontabs.get(namespace=namespace).metadata.resourceVersion
        body = {"apiVersion": f"{GROUP}/v1", "kind": "CronTab", "metadata": {"name": "dyn"},
                "spec": {"cronSpec": "* * * * */5", "image": "x"}}
        crontabs.create(body=body, namespace=namespace)
        seen = []
        for ev in crontabs.watch(namespace=namespace, resource_version=rv, timeout=10):
            seen.append((ev["type"], ev["object"].metadata.name))
            if seen:
                break
        assert seen == [("ADDED", "dyn")]
        # The default (schema) values are there, as upstream defaults them.
        assert crontabs.get(namespace=namespace, name="dyn").spec.replicas == 1
    finally:
        uninstall(k, CRD_NAME)
