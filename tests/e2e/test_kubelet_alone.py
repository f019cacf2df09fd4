"""`wharf kubelet` alone, against a `wharf server` that runs no agent of its
own: restarting the kubelet (its containerd stops with it) keeps the pods'
containers running, and the new kubelet adopts them from CRI state with
their containers, start times and restart counts unchanged. Then a
containerd the user runs (started by the test, with the configuration wharf
wrote) serves a kubelet given `--container-runtime-endpoint`: the kubelet
adopts the containers there too, runs new pods through it, and leaves it
running when it stops.

Everything the test starts is stopped by PID, and what the node left on the
host (shims of its containerd, its CNI bridge and masquerade table, mounts
under its data directory) is removed."""

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from conftest import WHARF, Kubectl, Server, free_port
from images import busybox_archive
from kubelet_node import (IMAGE, bridge_name, http_get, own_shims, pods_table, remove_idle_portmap_chains, terminate,
                          wait_for)

NODE = "e2e-kubelet-alone"



def test_restarting_the_kubelet_alone_adopts_its_containers_and_a_given_runtime_serves_it():
    d = Path(tempfile.mkdtemp(prefix="wharf-kubelet-alone-"))
    node_dir = d / "node"
    (d / "server").mkdir()
    s = Server(d / "server")
    port = free_port()
    kubelet = containerd = None
    sock = node_dir / "agent" / "containerd" / "containerd.sock"

    def start_kubelet(*extra):
        log = open(d / "kubelet.log", "ab")
        return subprocess.Popen(
            [WHARF, "kubelet", "--kubeconfig", s.kubeconfig, "--node-name", NODE,
             "--data-dir", str(node_dir), "--kubelet-port", str(port),
             "--private-registry", str(d / "no-registries.yaml"), *extra],
            stdout=log, stderr=subprocess.STDOUT)

    def stop(proc):
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)

    def ready(k):
        return k.run("get", "node", NODE, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}",
                     check=False).stdout == "True"
    try:
        s.start()
        k = Kubectl(s.kubeconfig)
        kubelet = start_kubelet()
        wait_for("the node to be Ready", lambda: ready(k), timeout=90)
        archive = d / "busybox.tar"
        busybox_archive(archive, IMAGE, b"served by an adopted container\n")
        subprocess.run([WHARF, "images", "import", "--data-dir", str(node_dir), str(archive)], check=True,
                       capture_output=True, timeout=60)
        # A web server that crashed once before it ran (its emptyDir outlives
        # the first container): restart count 1.
        k("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
            "spec": {"containers": [{
                "name": "c", "image": IMAGE, "imagePullPolicy": "Never",
                "command": ["sh", "-c", "[ -f /d/ran ] && exec httpd -f -p 8080 -h /www; touch /d/ran; exit 1"],
                "volumeMounts": [{"name": "d", "mountPath": "/d"}]}],
                "volumes": [{"name": "d", "emptyDir": {}}]},
        }))

        def running_again():
            st = json.loads(k("get", "pod", "web", "-o", "json"))["status"]
            cs = (st.get("containerStatuses") or [{}])[0]
            return st if cs.get("restartCount") == 1 and cs.get("ready") else None
        before = wait_for("web to run after one restart", running_again, timeout=60)
        ip = before["podIP"]
        assert "adopted" in (http_get(f"http://{ip}:8080/") or "")

        # The kubelet stops, and its containerd with it; the container runs
        # on under its shim.
        stop(kubelet)
        assert "adopted" in (http_get(f"http://{ip}:8080/") or ""), "the container stopped with the kubelet"
        kubelet = start_kubelet()
        wait_for("the node to be Ready again", lambda: ready(k), timeout=90)
        time.sleep(3)  # a few relists of the runtime
        after = json.loads(k("get", "pod", "web", "-o", "json"))["status"]
        b, a = before["containerStatuses"][0], after["containerStatuses"][0]
        assert a["containerID"] == b["containerID"]
        assert a["restartCount"] == b["restartCount"] == 1
        assert a["state"]["running"]["startedAt"] == b["state"]["running"]["startedAt"]
        assert a["lastState"] == b["lastState"]
        assert after["podIP"] == ip and after["phase"] == "Running"
        assert "adopted" in (http_get(f"http://{ip}:8080/") or "")

        # The user's own containerd, with the configuration wharf wrote
        # (its CNI directories, sandbox image and state are the node's).
        stop(kubelet)
        assert not sock.exists() or subprocess.run(["ctr", "--address", str(sock), "version"],
                                                   capture_output=True).returncode != 0
        containerd = subprocess.Popen(
            ["containerd", "--config", str(node_dir / "agent" / "containerd" / "config.toml")],
            stdout=open(d / "containerd.log", "ab"), stderr=subprocess.STDOUT)
        wait_for("containerd to answer", lambda: subprocess.run(
            ["ctr", "--address", str(sock), "version"], capture_output=True).returncode == 0, timeout=30)
        kubelet = start_kubelet("--container-runtime-endpoint", f"unix://{sock}")
        wait_for("the node to be Ready on the given runtime", lambda: ready(k), timeout=90)
        time.sleep(3)
        again = json.loads(k("get", "pod", "web", "-o", "json"))["status"]["containerStatuses"][0]
        assert again["containerID"] == b["containerID"] and again["restartCount"] == 1
        assert "adopted" in (http_get(f"http://{ip}:8080/") or "")
        k("run", "through-endpoint", f"--image={IMAGE}", "--image-pull-policy=Never", "--restart=Never",
          "--", "echo", "ran through the given runtime")
        wait_for("the new pod to succeed", lambda: json.loads(k("get", "pod", "through-endpoint", "-o", "json"))
                 ["status"].get("phase") == "Succeeded", timeout=60)
        assert k("logs", "through-endpoint") == "ran through the given runtime\n"
        k("delete", "pod", "web", "through-endpoint", "--grace-period=1", timeout=90)
        # A runtime wharf did not start is not wharf's to stop.
        stop(kubelet)
        assert containerd.poll() is None, "the kubelet stopped a containerd it did not start"
        assert subprocess.run(["ctr", "--address", str(sock), "version"], capture_output=True).returncode == 0
    finally:
        for proc, timeout in ((kubelet, 60), (containerd, 30)):
            if proc is not None:
                terminate(proc, timeout)
        s.stop()
        for pid in own_shims(sock):
            os.kill(pid, signal.SIGKILL)
        subprocess.run(["ip", "link", "del", bridge_name(node_dir)], capture_output=True)
        subprocess.run(["nft", "delete", "table", "ip", pods_table(node_dir)], capture_output=True)
        remove_idle_portmap_chains()
        for m in sorted((l.split()[1] for l in Path("/proc/self/mounts").read_text().splitlines()
                         if l.split()[1].startswith(str(d) + "/")), key=len, reverse=True):
            subprocess.run(["umount", "-l", m], capture_output=True)
        subprocess.run(["rm", "-rf", str(d)], capture_output=True)
