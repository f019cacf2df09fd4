"""Issue #4's kubectl verbs and Python client helpers that ride on patch,
apply and discovery."""

import json
import textwrap

from kubernetes import client, dynamic, utils


def test_create_generators_expose_replace_and_get_all(kubectl, namespace):
    ns = ["-n", namespace]
    kubectl("create", "deployment", "web", "--image=nginx:1.27", "--replicas=2", *ns)
    kubectl("create", "job", "once", "--image=busybox", *ns, "--", "true")
    kubectl("create", "cronjob", "tick", "--image=busybox", "--schedule=*/5 * * * *", *ns, "--", "true")
    kubectl("create", "service", "clusterip", "plain", "--tcp=80:8080", *ns)
    kubectl("expose", "deployment", "web", "--port=80", "--target-port=8080", *ns)
    svc = kubectl.json("get", "service", "web", *ns)
    assert svc["spec"]["selector"] == {"app": "web"}
    assert svc["spec"]["ports"][0]["targetPort"] == 8080
    assert svc["spec"]["clusterIP"]
    out = kubectl("get", "all", *ns)
    for name in ("deployment.apps/web", "service/web", "service/plain", "job.batch/once", "cronjob.batch/tick"):
        assert name in out, out
    # replace: a full PUT of an edited object.
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "r", "namespace": namespace}, "data": {"a": "1"}}
    kubectl("create", "-f", "-", input=json.dumps(cm))
    cm["data"] = {"b": "2"}
    kubectl("replace", "-f", "-", input=json.dumps(cm))
    assert kubectl.json("get", "configmap", "r", *ns)["data"] == {"b": "2"}
    # label/annotate --overwrite.
    kubectl("label", "configmap", "r", "tier=one", *ns)
    kubectl("label", "--overwrite", "configmap", "r", "tier=two", *ns)
    kubectl("annotate", "--overwrite", "configmap", "r", "note=x", *ns)
    got = kubectl.json("get", "configmap", "r", *ns)["metadata"]
    assert got["labels"]["tier"] == "two" and got["annotations"]["note"] == "x"


def test_apply_prune_by_label(kubectl, namespace):
    def manifest(names):
        return "\n---\n".join(json.dumps({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": n, "namespace": namespace, "labels": {"set": "p"}},
            "data": {"k": n}}) for n in names)
    kubectl("apply", "-f", "-", "-l", "set=p", "--prune", input=manifest(["a", "b", "c"]))
    kubectl("apply", "-f", "-", "-l", "set=p", "--prune", input=manifest(["a", "c"]))
    names = {i["metadata"]["name"] for i in kubectl.json("get", "configmaps", "-n", namespace, "-l", "set=p")["items"]}
    assert names == {"a", "c"}


def test_python_create_from_yaml_and_dynamic_client(api_client, namespace, tmp_path):
    doc = tmp_path / "multi.yaml"
    doc.write_text(textwrap.dedent(f"""\
        apiVersion: v1
        kind: ConfigMap
        metadata: {{name: one, namespace: {namespace}}}
        data: {{a: "1"}}
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {{name: two, namespace: {namespace}}}
        spec:
          replicas: 1
          selector: {{matchLabels: {{app: two}}}}
          template:
            metadata: {{labels: {{app: two}}}}
            spec:
              containers: [{{name: c, image: nginx}}]
        ---
        apiVersion: v1
        kind: Service
        metadata: {{name: three, namespace: {namespace}}}
        spec:
          selector: {{app: two}}
          ports: [{{port: 80}}]
        """))
    created = utils.create_from_yaml(api_client, str(doc))
    assert len(created) == 3
    dyn = dynamic.DynamicClient(api_client)
    deployments = dyn.resources.get(api_version="apps/v1", kind="Deployment")
    got = deployments.get(namespace=namespace, name="two")
    assert got.spec.replicas == 1
    services = dyn.resources.get(api_version="v1", kind="Service")
    assert services.get(namespace=namespace, name="three").spec.clusterIP
    # The dynamic client's strategic (default) patch.
    deployments.patch(namespace=namespace, name="two", body={"spec": {"replicas": 3}},
                      content_type="application/strategic-merge-patch+json")
    assert deployments.get(namespace=namespace, name="two").spec.replicas == 3
