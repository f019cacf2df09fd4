"""`wharf controller-manager` as a process of its own, killed and restarted
in the middle of a rollout; and the pod garbage collector."""

import json
import os
import signal
import subprocess
import tempfile
import threading
import time

from conftest import WHARF, Kubectl, Server, hollow_cluster, wait_for


SHORT_LEASE = ("--leader-elect-lease-duration", "2s", "--leader-elect-renew-deadline", "1500ms",
               "--leader-elect-retry-period", "500ms")


class ControllerManager:
    """A `wharf controller-manager` process; stopped by the PID we started."""

    def __init__(self, server, *args):
        self.server = server
        self.args = list(args)
        self.proc = None
        self.log = open(server.data_dir / "controller-manager.log", "ab")

    def start(self):
        self.proc = subprocess.Popen([WHARF, "controller-manager", "--kubeconfig", str(self.server.kubeconfig), *self.args],
                                     stdout=self.log, stderr=subprocess.STDOUT)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.log.close()


class PodWatch:
    """Every pod of a namespace ever seen (by UID), and the most pods of
    the selector alive (not terminating) at any one time, from a watch."""

    def __init__(self, api_client, namespace, selector):
        from kubernetes import client, watch
        self.core = client.CoreV1Api(api_client)
        self.w = watch.Watch()
        self.ns, self.selector = namespace, selector
        self.created = set()
        self.alive = {}
        self.max_alive = 0
        self.error = None
        self.stopped = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            self.follow()
        except Exception as e:  # the server stopping ends the stream too
            if not self.stopped:
                self.error = e

    def follow(self):
        for ev in self.w.stream(self.core.list_namespaced_pod, self.ns, label_selector=self.selector,
                                timeout_seconds=300):
            p = ev["object"]
            uid = p.metadata.uid
            self.created.add(uid)
            if ev["type"] == "DELETED" or p.metadata.deletion_timestamp:
                self.alive.pop(uid, None)
            else:
                self.alive[uid] = p.metadata.labels.get("pod-template-hash")
            self.max_alive = max(self.max_alive, len(self.alive))

    def stop(self):
        assert self.error is None, f"the pod watch broke: {self.error}"
        self.stopped = True
        self.w.stop()


def test_a_killed_controller_manager_finishes_the_rollout_without_extra_pods():
    replicas, surge = 10, 2
    with hollow_cluster("cm", 3, "cm", server_args=["--disable-controller-manager"]) as (s, k):
        from kubernetes import config
        # Upstream's leader election stays on; short timings, so that a
        # successor of a SIGKILLed leader takes over within a few seconds.
        cm = ControllerManager(s, *SHORT_LEASE)
        cm.start()
        try:
            k("create", "namespace", "roll")
            dep = {
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                # minReadySeconds stretches the rollout over the restarts.
                "spec": {"replicas": replicas, "minReadySeconds": 1, "selector": {"matchLabels": {"app": "web"}},
                         "strategy": {"type": "RollingUpdate",
                                      "rollingUpdate": {"maxSurge": surge, "maxUnavailable": 0}},
                         "template": {"metadata": {"labels": {"app": "web"}},
                                      "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}},
            }
            api = config.new_client_from_config(config_file=str(s.kubeconfig))
            watch = PodWatch(api, "roll", "app=web")
            time.sleep(0.5)
            k("apply", "-n", "roll", "-f", "-", input=json.dumps(dep))
            k("rollout", "status", "-n", "roll", "deployment/web", "--timeout=90s", timeout=100)
            # The watch may lag behind kubectl.
            wait_for("the watch to see the first pods", lambda: len(watch.created) >= replicas)
            time.sleep(0.5)
            assert len(watch.created) == replicas

            # Roll out a new template, killing the controller manager (SIGKILL)
            # and starting it again four times along the way.
            dep["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
            k("apply", "-n", "roll", "-f", "-", input=json.dumps(dep))
            for pause in (0.3, 1.0, 0.6, 1.5):
                time.sleep(pause)
                cm.kill()
                time.sleep(0.2)
                cm.start()
            mid = k.json("get", "deployment", "-n", "roll", "web")["status"]
            assert mid.get("updatedReplicas", 0) < replicas or mid.get("availableReplicas", 0) < replicas or \
                mid.get("replicas", 0) > replicas, f"the rollout was over before the last restart: {mid}"
            k("rollout", "status", "-n", "roll", "deployment/web", "--timeout=120s", timeout=130)

            d = k.json("get", "deployment", "-n", "roll", "web")
            assert d["status"]["replicas"] == replicas
            assert d["status"]["updatedReplicas"] == replicas
            assert d["status"]["availableReplicas"] == replicas
            pods = [p for p in k.json("get", "pods", "-n", "roll", "-l", "app=web")["items"]
                    if not p["metadata"].get("deletionTimestamp")]
            assert len(pods) == replicas
            new_hash = pods[0]["metadata"]["labels"]["pod-template-hash"]
            assert all(p["metadata"]["labels"]["pod-template-hash"] == new_hash for p in pods)
            assert all(p["spec"]["containers"][0]["image"] == "nginx:1.28" for p in pods)
            rss = k.json("get", "rs", "-n", "roll")["items"]
            assert sorted(r["spec"]["replicas"] for r in rss) == [0, replicas]
            # No pod was created twice: ten old and ten new in all, and never
            # more alive at once than maxSurge allows.
            wait_for("the watch to see the new pods", lambda: len(watch.created) >= 2 * replicas)
            time.sleep(1)
            watch.stop()
            assert len(watch.created) == 2 * replicas, len(watch.created)
            assert watch.max_alive <= replicas + surge, watch.max_alive
            lease = k.json("get", "lease", "-n", "kube-system", "kube-controller-manager")["spec"]
            assert lease["holderIdentity"] and lease["leaseTransitions"] >= 1, lease
        finally:
            cm.stop()


def test_pod_gc_deletes_the_oldest_terminated_pods_and_orphans():
    with tempfile.TemporaryDirectory(prefix="wharf-e2e-podgc-") as d:
        s = Server(d, extra_args=["--terminated-pod-gc-threshold", "2", "--pod-gc-period", "500ms",
                                  "--pod-gc-quarantine", "1s"]).start()
        try:
            k = Kubectl(s.kubeconfig)
            k("create", "namespace", "gc")

            def pod(name, node=None):
                spec = {"schedulerName": "nobody", "containers": [{"name": "app", "image": "nginx:1.27"}]}
                if node:
                    spec["nodeName"] = node
                return json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec})

            # Five pods a second apart, so their creation times order them.
            names = [f"done-{i}" for i in range(5)]
            for i, n in enumerate(names):
                if i:
                    time.sleep(1.05)
                k("create", "-n", "gc", "-f", "-", input=pod(n))
            k("create", "-n", "gc", "-f", "-", input=pod("pending"))
            # Finish them newest first, so the order of finishing is not
            # what decides.
            for i, n in reversed(list(enumerate(names))):
                phase = "Failed" if i % 2 else "Succeeded"
                k("patch", "-n", "gc", "pod", n, "--subresource=status", "--type=merge",
                  "-p", json.dumps({"status": {"phase": phase}}))
            left = wait_for("the three oldest terminated pods deleted", lambda: (lambda got: got if len(got) == 3 else None)(
                sorted(p["metadata"]["name"] for p in k.json("get", "pods", "-n", "gc")["items"])), timeout=20)
            assert left == ["done-3", "done-4", "pending"]
            time.sleep(1.5)
            assert len(k.json("get", "pods", "-n", "gc")["items"]) == 3, "the threshold holds"

            # A pod bound to a node that does not exist goes after the quarantine.
            k("create", "-n", "gc", "-f", "-", input=pod("orphan", node="ghost-node"))
            t0 = time.time()
            wait_for("the orphan deleted", lambda: "orphan" not in k("get", "pods", "-n", "gc", "-o", "name"), timeout=20)
            assert time.time() - t0 >= 0.5
            assert "pending" in k("get", "pods", "-n", "gc", "-o", "name")
        finally:
            s.stop()


def test_the_servers_components_hold_leases_that_a_restart_keeps():
    """`wharf server` runs its scheduler and controller manager under upstream's
    Leases, with an identity kept in its data directory: after a SIGKILL the
    restarted server renews its own Leases at once instead of waiting out
    the 15 s lease, and a second controller manager stays a standby."""
    with hollow_cluster("leases", 1, "ls") as (s, k):
        def holders():
            got = {}
            for name in ("kube-scheduler", "kube-controller-manager"):
                r = k.run("get", "lease", "-n", "kube-system", name, "-o", "json", check=False)
                if r.returncode == 0:
                    got[name] = json.loads(r.stdout)["spec"].get("holderIdentity")
            return got if len(got) == 2 and all(got.values()) else None
        before = wait_for("both leases held", holders)
        assert before["kube-scheduler"] == before["kube-controller-manager"]
        assert before["kube-scheduler"].rsplit("_", 1)[1] == (s.data_dir / "leader-identity").read_text().strip()

        # A standby controller manager does not act while the server holds the lease.
        standby = ControllerManager(s, *SHORT_LEASE)
        standby.start()
        try:
            s.stop(signal.SIGKILL)
            s.start()
            assert holders() == before
            # Pods are scheduled and a Deployment is served well within the 15 s
            # a new identity would have to wait.
            k("create", "namespace", "after")
            k("create", "deployment", "web", "-n", "after", "--image=nginx:1.27", "--replicas=2")
            k("rollout", "status", "-n", "after", "deployment/web", "--timeout=12s", timeout=20)
            assert holders() == before
        finally:
            standby.stop()
