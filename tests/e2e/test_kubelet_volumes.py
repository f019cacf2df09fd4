"""Configuration into containers, with the kubelet on real containerd:
configMap, secret, downwardAPI and projected volumes (upstream's atomic
layout, updates reaching running pods), subPath with the symlink-escape
refusal (CVE-2017-1002101), and $(VAR) expansion with resourceFieldRef.

The fixture is kubelet_node.py's: `wharf server` with its kubelet in a
temporary data directory, a random pod CIDR, the busybox image imported
with `wharf images import`, and everything removed at the end. There is
no `kubectl exec` yet, so files inside containers are read through
`ctr tasks exec`."""

import json
import os
import random
import ssl
import urllib.request
from pathlib import Path

import pytest

from conftest import Kubectl
from kubelet_node import IMAGE, ctr, kubelet_node, wait_for

NODE = "e2e-kubelet-vol"


@pytest.fixture(scope="module")
def node():
    with kubelet_node(NODE) as (s, k, d):
        wait_for("the default service account", lambda: k.run(
            "get", "serviceaccount", "default", check=False).returncode == 0, timeout=30)
        yield s, k, d


def pod(k, name):
    return json.loads(k("get", "pod", name, "-o", "json"))


def apply(k, manifest):
    k("apply", "-f", "-", input=json.dumps(manifest))


def sleeper(name, volumes, mounts, **extra):
    c = {"name": "c", "image": IMAGE, "imagePullPolicy": "Never", "command": ["sleep", "3600"],
         "volumeMounts": mounts}
    c.update(extra.pop("container", {}))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, **extra.pop("metadata", {})},
            "spec": {"terminationGracePeriodSeconds": 1, "containers": [c], "volumes": volumes, **extra}}


def running(k, name, timeout=60):
    p = wait_for(f"{name} to run", lambda: (lambda p: p if p["status"].get("phase") == "Running"
                 and all(c.get("ready") for c in p["status"].get("containerStatuses", [])) else None)(pod(k, name)),
                 timeout=timeout)
    return p


def cid_of(p, container="c"):
    cs = next(c for c in p["status"]["containerStatuses"] if c["name"] == container)
    return cs["containerID"].removeprefix("containerd://")


def in_pod(node, p, *cmd, container="c"):
    """Run `cmd` in the pod's container; (exit code, stdout)."""
    _, _, d = node
    r = ctr(d, "tasks", "exec", "--exec-id", f"e2e-{random.randint(0, 1 << 30)}", cid_of(p, container), *cmd)
    return r.returncode, r.stdout


def event_messages(k, name, reason):
    evs = json.loads(k("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json"))["items"]
    return [e["message"] for e in evs if e["reason"] == reason]


def delete(k, *names):
    for n in names:
        k("delete", "pod", n, "--grace-period=1", "--wait=false", check=False)


def test_config_map_items_mode_and_update(node):
    _, k, d = node
    k("create", "configmap", "volcm", "--from-literal=a=one", "--from-literal=b=two")
    apply(k, sleeper("cmpod", [{"name": "cfg", "configMap": {"name": "volcm", "defaultMode": 0o440,
                                 "items": [{"key": "a", "path": "conf/a.txt", "mode": 0o400}, {"key": "b", "path": "b"}]}}],
                     [{"name": "cfg", "mountPath": "/cfg"}]))
    p = running(k, "cmpod")
    assert in_pod(node, p, "cat", "/cfg/conf/a.txt") == (0, "one")
    assert in_pod(node, p, "ls", "-lL", "/cfg/conf/a.txt")[1].startswith("-r-------- ")
    assert in_pod(node, p, "ls", "-lL", "/cfg/b")[1].startswith("-r--r----- ")
    # Upstream's atomic layout: ..data -> ..<timestamp>, b -> ..data/b.
    host = Path(d) / "agent" / "pods" / p["metadata"]["uid"] / "volumes" / "kubernetes.io~configmap" / "cfg"
    data = os.readlink(host / "..data")
    assert data.startswith("..20"), data
    assert os.readlink(host / "b") == "..data/b"
    assert os.readlink(host / "conf") == "..data/conf"
    # Read-only whatever the mount says.
    assert in_pod(node, p, "touch", "/cfg/new")[0] != 0
    # An update reaches the running container through the kubelet's resync.
    k("patch", "configmap", "volcm", "-p", json.dumps({"data": {"a": "uno"}}))
    wait_for("the file to change", lambda: in_pod(node, p, "cat", "/cfg/conf/a.txt")[1] == "uno", timeout=40)
    assert os.readlink(host / "..data") != data
    assert not (host / data).exists()
    delete(k, "cmpod")


def test_secret_volume_on_tmpfs(node):
    _, k, _ = node
    k("create", "secret", "generic", "volsec", "--from-literal=password=s3cret")
    apply(k, sleeper("secpod", [{"name": "sec", "secret": {"secretName": "volsec"}}],
                     [{"name": "sec", "mountPath": "/sec"}]))
    p = running(k, "secpod")
    assert in_pod(node, p, "cat", "/sec/password") == (0, "s3cret")
    assert in_pod(node, p, "ls", "-lL", "/sec/password")[1].startswith("-rw-r--r-- ")
    mounts = in_pod(node, p, "cat", "/proc/mounts")[1]
    assert any(l.split()[1] == "/sec" and l.split()[2] == "tmpfs" and "ro" in l.split()[3].split(",")
               for l in mounts.splitlines()), mounts
    delete(k, "secpod")


def test_missing_config_map_waits_with_failed_mount_then_runs(node):
    _, k, _ = node
    apply(k, sleeper("waitcm", [{"name": "later", "configMap": {"name": "latercm"}}],
                     [{"name": "later", "mountPath": "/later"}]))
    msgs = wait_for("a FailedMount event", lambda: event_messages(k, "waitcm", "FailedMount"), timeout=30)
    assert msgs[0] == 'MountVolume.SetUp failed for volume "later" : configmap "latercm" not found'
    st = pod(k, "waitcm")["status"]
    assert st["phase"] == "Pending"
    assert st["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating"
    k("create", "configmap", "latercm", "--from-literal=k=v")
    p = running(k, "waitcm", timeout=60)
    assert in_pod(node, p, "cat", "/later/k") == (0, "v")
    delete(k, "waitcm")


def test_downward_api_labels_follow_the_pod(node):
    _, k, _ = node
    apply(k, sleeper("dapod", [{"name": "info", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "c", "resource": "limits.memory", "divisor": "1Mi"}}]}}],
        [{"name": "info", "mountPath": "/etc/podinfo"}],
        metadata={"labels": {"app": "web", "zone": "a"}, "annotations": {"note": 'say "hi"\nbye'}},
        container={"resources": {"limits": {"memory": "32Mi", "cpu": "100m"}}}))
    p = running(k, "dapod")
    assert in_pod(node, p, "cat", "/etc/podinfo/labels")[1] == 'app="web"\nzone="a"'
    notes = in_pod(node, p, "cat", "/etc/podinfo/annotations")[1]
    assert 'note="say \\"hi\\"\\nbye"' in notes.splitlines(), notes
    assert in_pod(node, p, "cat", "/etc/podinfo/name")[1] == "dapod"
    assert in_pod(node, p, "cat", "/etc/podinfo/mem")[1] == "32"
    k("label", "pod", "dapod", "tier=front")
    wait_for("the labels file to change", lambda: in_pod(node, p, "cat", "/etc/podinfo/labels")[1]
             == 'app="web"\ntier="front"\nzone="a"', timeout=40)
    delete(k, "dapod")


def test_projected_volume_like_kube_api_access(node):
    _, k, _ = node
    k("create", "configmap", "projca", "--from-literal=ca.crt=PEM-DATA")
    k("create", "secret", "generic", "projsec", "--from-literal=user=alice")
    apply(k, sleeper("projpod", [{"name": "all", "projected": {"defaultMode": 0o444, "sources": [
        {"configMap": {"name": "projca", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"secret": {"name": "projsec"}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}],
        [{"name": "all", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}]))
    p = running(k, "projpod")
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert in_pod(node, p, "cat", f"{sa}/ca.crt")[1] == "PEM-DATA"
    assert in_pod(node, p, "cat", f"{sa}/user")[1] == "alice"
    assert in_pod(node, p, "cat", f"{sa}/namespace")[1] == "default"
    assert in_pod(node, p, "ls", "-lL", f"{sa}/namespace")[1].startswith("-r--r--r-- ")
    delete(k, "projpod")


def test_service_account_token_projection(node):
    """A bound token from the TokenRequest API, which authenticates as the
    pod's service account."""
    _, k, d = node
    # What admission's kube-api-access-* volume holds: token, CA bundle, namespace.
    wait_for("the root CA to be published", lambda: k.run("get", "configmap", "kube-root-ca.crt",
                                                           check=False).returncode == 0, timeout=30)
    apply(k, sleeper("tokpod", [{"name": "kube-api-access-e2e", "projected": {"defaultMode": 420, "sources": [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}}]}}],
        [{"name": "kube-api-access-e2e", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
        serviceAccountName="default"))
    p = running(k, "tokpod")
    # A kubeconfig without the admin's client certificate: only the token counts.
    cfg = json.loads(k("config", "view", "--raw", "--minify", "-o", "json"))
    for u in cfg["users"]:
        u["user"] = {}
    anon = Path(d) / "token-only.kubeconfig"
    anon.write_text(json.dumps(cfg))
    t = Kubectl(anon)
    code, token = in_pod(node, p, "cat", "/var/run/secrets/kubernetes.io/serviceaccount/token")
    assert code == 0 and token.count(".") == 2, token
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    ca = in_pod(node, p, "cat", f"{sa}/ca.crt")[1]
    assert ca == next(Path(d).rglob("tls/ca.crt")).read_text()
    assert in_pod(node, p, "cat", f"{sa}/namespace")[1] == "default"
    # An in-cluster client's view: the API with the mounted CA and token.
    ctx = ssl.create_default_context(cadata=ca)
    server = cfg["clusters"][0]["cluster"]["server"]
    req = urllib.request.Request(f"{server}/api/v1/namespaces/default/pods/tokpod",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
        assert json.loads(r.read())["metadata"]["name"] == "tokpod"
    assert t.run("get", "pods", check=False).returncode != 0, "no credentials, no access"
    who = json.loads(t("auth", "whoami", "--token", token, "-o", "json"))["status"]["userInfo"]
    assert who["username"] == "system:serviceaccount:default:default"
    assert "system:serviceaccounts:default" in who["groups"]
    assert who["extra"]["authentication.kubernetes.io/pod-name"] == ["tokpod"]
    assert who["extra"]["authentication.kubernetes.io/pod-uid"] == [p["metadata"]["uid"]]
    # kubectl's own TokenRequest client works too; a tampered token does not.
    t2 = k("create", "token", "default", "--duration=10m").strip()
    assert json.loads(t("auth", "whoami", "--token", t2, "-o", "json"))["status"]["userInfo"]["username"] == \
        "system:serviceaccount:default:default"
    bad = t.run("auth", "whoami", "--token", token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB"),
                check=False)
    assert bad.returncode != 0 and "Unauthorized" in bad.stderr, bad.stderr
    short = k.run("create", "token", "default", "--duration=1m", check=False)
    assert short.returncode != 0 and "may not specify a duration less than 10 minutes" in short.stderr, short.stderr
    # Deleting the pod invalidates the tokens bound to it, not the others.
    k("delete", "pod", "tokpod", "--grace-period=1", "--wait=true", timeout=90)
    gone = t.run("auth", "whoami", "--token", token, check=False)
    assert gone.returncode != 0 and "Unauthorized" in gone.stderr, gone.stderr
    assert t.run("auth", "whoami", "--token", t2, check=False).returncode == 0


def test_default_pod_has_service_account_files(node):
    """Admission adds kube-api-access-*; the kubelet mounts token, ca.crt and namespace."""
    _, k, d = node
    k("run", "plain", f"--image={IMAGE}", "--image-pull-policy=Never", "--", "sleep", "3600")
    p = running(k, "plain")
    vols = [v["name"] for v in p["spec"]["volumes"]]
    assert len(vols) == 1 and vols[0].startswith("kube-api-access-"), vols
    assert p["spec"]["serviceAccountName"] == "default"
    sa = "/var/run/secrets/kubernetes.io/serviceaccount"
    assert in_pod(node, p, "cat", f"{sa}/namespace", container="plain")[1] == "default"
    assert in_pod(node, p, "cat", f"{sa}/ca.crt", container="plain")[1] == next(Path(d).rglob("tls/ca.crt")).read_text()
    token = in_pod(node, p, "cat", f"{sa}/token", container="plain")[1]
    assert in_pod(node, p, "ls", sa, container="plain")[1].split() == ["ca.crt", "namespace", "token"]
    cfg = json.loads(k("config", "view", "--raw", "--minify", "-o", "json"))
    for u in cfg["users"]:
        u["user"] = {}
    anon = Path(d) / "token-only-plain.kubeconfig"
    anon.write_text(json.dumps(cfg))
    who = json.loads(Kubectl(anon)("auth", "whoami", "--token", token, "-o", "json"))["status"]["userInfo"]
    assert who["username"] == "system:serviceaccount:default:default"
    # Opting out leaves the pod without the volume.
    apply(k, sleeper("optout", [], [], automountServiceAccountToken=False))
    assert not pod(k, "optout")["spec"].get("volumes")
    assert "volumeMounts" not in pod(k, "optout")["spec"]["containers"][0] or not pod(k, "optout")["spec"]["containers"][0]["volumeMounts"]
    delete(k, "plain", "optout")


def test_sub_path_and_symlink_escape(node):
    _, k, d = node
    prepare = "mkdir -p /data/sub && echo in-sub > /data/sub/f && busybox ln -s /etc /data/escape"
    manifest = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "subpod"},
        "spec": {"terminationGracePeriodSeconds": 1, "volumes": [{"name": "data", "emptyDir": {}}],
                 "initContainers": [{"name": "init", "image": IMAGE, "imagePullPolicy": "Never",
                                     "command": ["sh", "-c", prepare],
                                     "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                 "containers": [
                     {"name": "c", "image": IMAGE, "imagePullPolicy": "Never", "command": ["sleep", "3600"],
                      "env": [{"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
                      "volumeMounts": [{"name": "data", "mountPath": "/mnt", "subPath": "sub"},
                                       {"name": "data", "mountPath": "/per-pod", "subPathExpr": "logs/$(POD)"}]},
                     {"name": "esc", "image": IMAGE, "imagePullPolicy": "Never", "command": ["sleep", "3600"],
                      "volumeMounts": [{"name": "data", "mountPath": "/host-etc", "subPath": "escape"}]}]},
    }
    apply(k, manifest)
    w = wait_for("the escape to be refused", lambda: (lambda cs: cs["state"].get("waiting") if cs and
                 cs["state"].get("waiting", {}).get("reason") == "CreateContainerConfigError" else None)(
        next((c for c in pod(k, "subpod")["status"].get("containerStatuses", []) if c["name"] == "esc"), None)),
        timeout=60)
    assert w["message"] == 'failed to prepare subPath for volumeMount "data" of container "esc"'
    p = wait_for("c to run", lambda: (lambda p: p if any(c["name"] == "c" and c.get("ready")
                 for c in p["status"].get("containerStatuses", [])) else None)(pod(k, "subpod")), timeout=60)
    assert in_pod(node, p, "cat", "/mnt/f") == (0, "in-sub\n")
    assert in_pod(node, p, "ls", "/mnt")[1].split() == ["f"]
    assert in_pod(node, p, "touch", "/per-pod/x")[0] == 0
    empty = Path(d) / "agent" / "pods" / p["metadata"]["uid"] / "volumes" / "kubernetes.io~empty-dir" / "data"
    assert (empty / "logs" / "subpod" / "x").exists()
    assert "CreateContainerConfigError" in pod(k, "subpod")["status"]["containerStatuses"][1]["state"]["waiting"]["reason"]
    delete(k, "subpod")


def test_env_expansion_and_resource_fields(node):
    """The script is a command element, so the kubelet expands it too:
    `$$(A)` in it is the literal `$(A)`."""
    _, k, d = node
    script = ('echo "$0|$1|$2|$A|$B|$C|$D|$MEM|$CPU|$CPUS|$IP|$IPS|$SA"; '
              'test "$B" = x-y && test "$C" = \'$$(A)\' && test "$D" = \'$(UNDEF)\' && test "$0" = x '
              '&& test "$1" = x-y && test "$2" = \'$(UNDEF)\' && test "$MEM" = 64 && test "$CPU" = 250 '
              '&& test "$CPUS" = 1 && test -n "$IP" && test "$IPS" = "$IP" && test "$SA" = default')
    manifest = {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "envx"},
        # Set explicitly: wharf has no ServiceAccount admission to default it.
        "spec": {"restartPolicy": "Never", "serviceAccountName": "default", "containers": [{
            "name": "c", "image": IMAGE, "imagePullPolicy": "Never",
            "command": ["sh", "-c", script, "$(A)"], "args": ["$(B)", "$(UNDEF)"],
            "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}},
            "env": [{"name": "A", "value": "x"}, {"name": "B", "value": "$(A)-y"}, {"name": "C", "value": "$$(A)"},
                    {"name": "D", "value": "$(UNDEF)"},
                    {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
                    {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
                    {"name": "CPUS", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
                    {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                    {"name": "IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
                    {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}}]}]},
    }
    apply(k, manifest)
    p = wait_for("envx to finish", lambda: (lambda p: p if p["status"].get("phase") in ("Succeeded", "Failed")
                 else None)(pod(k, "envx")), timeout=60)
    log = Path(d) / "agent" / "pod-logs" / f"default_envx_{p['metadata']['uid']}" / "c" / "0.log"
    assert p["status"]["phase"] == "Succeeded", log.read_text()
    delete(k, "envx")
