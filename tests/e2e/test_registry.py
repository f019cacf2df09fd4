"""Image pulls from a real registry (Debian's docker-registry 2.8, with
htpasswd authentication, on a free loopback port), with images pushed by
skopeo. The node's registries file maps `docker.io` to that registry, as
an air-gapped machine would; a pod's imagePullSecrets authenticate pulls
by the registry's own address.

The registry is reachable under two names that containerd treats as two
hosts: `localhost:PORT` (the mirror, whose credentials the registries file
holds) and `127.0.0.1:PORT` (no configured credentials, so only a pull
secret gets in)."""

import base64
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from images import busybox_archive
from kubelet_node import ctr, kubelet_node, start_registry, stop_registry, wait_for

NODE = "e2e-registry"
USER, PASSWORD = "alice", "s3cret-e2e"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def registry():
    for tool in ("docker-registry", "skopeo", "htpasswd"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            pytest.fail(f"{tool} is not installed: run scripts/install-deps.sh")
    d = Path(tempfile.mkdtemp(prefix="wharf-registry-e2e-"))
    port = _free_port()
    htpasswd = subprocess.run(["htpasswd", "-Bbn", USER, PASSWORD], check=True,
                              capture_output=True, text=True).stdout
    (d / "htpasswd").write_text(htpasswd)
    proc = start_registry(d, port, f"""auth:
  htpasswd:
    realm: wharf-e2e
    path: {d}/htpasswd
""")
    try:
        archive = d / "busybox.tar"
        busybox_archive(archive, "localhost/e2e-busybox:1", b"pulled from the registry\n")
        for ref in ("library/busybox:latest", "private/busybox:v1"):
            subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", "--dest-creds", f"{USER}:{PASSWORD}",
                            f"docker-archive:{archive}", f"docker://127.0.0.1:{port}/{ref}"],
                           check=True, capture_output=True, timeout=120)
        yield port
    finally:
        stop_registry(proc, d)


@pytest.fixture(scope="module")
def node(registry):
    port = registry
    conf = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    conf.write(f"""mirrors:
  docker.io:
    endpoint:
      - "http://localhost:{port}"
configs:
  "localhost:{port}":
    auth:
      username: {USER}
      password: {PASSWORD}
""")
    conf.close()
    try:
        with kubelet_node(NODE, extra_args=["--private-registry", conf.name], import_image=False) as n:
            yield (*n, port)
    finally:
        os.unlink(conf.name)


def _pod(name, image, pull_secret=None):
    spec = {"containers": [{"name": "c", "image": image, "imagePullPolicy": "Always",
                            "command": ["sleep", "3600"]}],
            "terminationGracePeriodSeconds": 1}
    if pull_secret:
        spec["imagePullSecrets"] = [{"name": pull_secret}]
    return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})


def _waiting(k, name):
    p = json.loads(k("get", "pod", name, "-o", "json"))
    cs = (p["status"].get("containerStatuses") or [{}])[0]
    return cs.get("state", {}).get("waiting")


def _running(k, name):
    p = json.loads(k("get", "pod", name, "-o", "json"))
    return p if p["status"].get("phase") == "Running" else None


def _event_items(k, name):
    return json.loads(k("get", "events", "--field-selector", f"involvedObject.name={name}", "-o", "json"))["items"]


def _events(k, name):
    return {e["reason"]: e["message"] for e in _event_items(k, name)}


def test_docker_hub_names_are_pulled_through_the_mirror_with_its_credentials(node):
    _, k, d, port = node
    # `busybox` is docker.io/library/busybox:latest; no internet here, so
    # only the mirror can serve it, and only with the file's credentials.
    k("apply", "-f", "-", input=_pod("hub", "busybox"))
    wait_for("hub to run", lambda: _running(k, "hub"), timeout=90)
    assert "docker.io/library/busybox:latest" in ctr(d, "images", "ls", "-q").stdout
    ev = _events(k, "hub")
    assert ev.get("Pulled", "").startswith('Successfully pulled image "busybox"'), ev


def test_a_private_image_needs_its_pull_secret(node):
    _, k, d, port = node
    image = f"127.0.0.1:{port}/private/busybox:v1"
    # Without credentials the registry refuses: the pull fails and backs off.
    k("apply", "-f", "-", input=_pod("nosecret", image))
    w = wait_for("an image pull error", lambda: (lambda w: w if w and w.get("reason") in
                 ("ErrImagePull", "ImagePullBackOff") else None)(_waiting(k, "nosecret")), timeout=60)
    ev = wait_for("a Failed event", lambda: next((e["message"] for e in _event_items(k, "nosecret")
                  if e["reason"] == "Failed" and e["message"].startswith("Failed to pull")), None), timeout=30)
    assert f'Failed to pull image "{image}"' in ev and ("401" in ev or "authorization" in ev.lower()
                                                         or "unauthorized" in ev.lower()), ev
    # A secret that does not exist is reported, and the pull still fails.
    k("apply", "-f", "-", input=_pod("missing", image, pull_secret="nope"))
    msg = wait_for("FailedToRetrieveImagePullSecret",
                   lambda: _events(k, "missing").get("FailedToRetrieveImagePullSecret"), timeout=60)
    assert msg == "Unable to retrieve some image pull secrets (nope); attempting to pull the image may not succeed."
    # `kubectl create secret docker-registry` writes a dockerconfigjson
    # keyed by the registry's address: with it the pull succeeds.
    k("create", "secret", "docker-registry", "regcred", f"--docker-server=127.0.0.1:{port}",
      f"--docker-username={USER}", f"--docker-password={PASSWORD}")
    k("apply", "-f", "-", input=_pod("withsecret", image, pull_secret="regcred"))
    wait_for("withsecret to run", lambda: _running(k, "withsecret"), timeout=90)
    assert image in ctr(d, "images", "ls", "-q").stdout


def test_wrong_credentials_in_a_pull_secret_are_refused(node):
    _, k, _, port = node
    image = f"127.0.0.1:{port}/private/busybox:v1"
    auth = base64.b64encode(f"{USER}:wrong".encode()).decode()
    cfg = json.dumps({"auths": {f"127.0.0.1:{port}": {"auth": auth}}})
    k("apply", "-f", "-", input=json.dumps({
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "badcred"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(cfg.encode()).decode()}}))
    k("apply", "-f", "-", input=_pod("badsecret", image, pull_secret="badcred"))
    wait_for("an image pull error", lambda: (lambda w: w if w and w.get("reason") in
             ("ErrImagePull", "ImagePullBackOff") else None)(_waiting(k, "badsecret")), timeout=60)
    time.sleep(1)
    assert _running(k, "badsecret") is None
