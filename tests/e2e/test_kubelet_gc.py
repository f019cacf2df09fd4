"""Image garbage collection with real containerd: with the thresholds at
0 % (so any disk usage triggers it) and a short minimum age, an image no
container uses is removed, while the image a running pod uses and the
sandbox image stay."""

import json
import subprocess
from pathlib import Path

from conftest import WHARF
from images import busybox_archive
from kubelet_node import IMAGE, ctr, kubelet_node, wait_for

NODE = "e2e-gc"
UNUSED = "localhost/e2e-unused:1"


def test_unused_images_are_collected_and_used_ones_kept():
    args = ["--image-gc-high-threshold", "0", "--image-gc-low-threshold", "0",
            "--image-minimum-gc-age", "15s", "--image-gc-period", "2s"]
    with kubelet_node(NODE, extra_args=args) as (_, k, d):
        archive = Path(d) / "unused.tar"
        busybox_archive(archive, UNUSED, b"nobody runs me\n")
        subprocess.run([WHARF, "images", "import", "--data-dir", d, str(archive)], check=True,
                       capture_output=True, timeout=60)
        k("run", "keep", f"--image={IMAGE}", "--image-pull-policy=Never", "--", "sleep", "3600")
        wait_for("keep to run", lambda: json.loads(k("get", "pod", "keep", "-o", "json"))["status"]
                 .get("phase") == "Running", timeout=60)
        images = lambda: ctr(d, "images", "ls", "-q").stdout.split()
        assert UNUSED in images()
        wait_for("the unused image to be collected", lambda: UNUSED not in images(), timeout=60)
        left = images()
        assert IMAGE in left, left
        assert any("pause" in i for i in left), left
        wait_for("the collector's log line", lambda: "image garbage-collected" in
                 (Path(d) / "server.log").read_text(), timeout=10)
