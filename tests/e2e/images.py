"""Container images for the tests, built locally from Debian's busybox-static
(no registry): a docker-archive tarball with one layer holding /bin/busybox,
a few applet symlinks, /etc/passwd and /www/index.html. Import it with
`wharf images import FILE`."""

import hashlib
import io
import json
import tarfile

APPLETS = "sh sleep httpd wget echo cat ls env id hostname ps kill true false test printf touch rm grep".split()


def _info(name, kind=tarfile.REGTYPE, mode=0o644, data=b"", link=""):
    t = tarfile.TarInfo(name)
    t.type, t.mode, t.mtime, t.linkname, t.size = kind, mode, 1700000000, link, len(data)
    return t, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def _layer(index_html):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for d in ["bin", "etc", "dev", "proc", "sys", "www", "root"]:
            tf.addfile(*_info(d, tarfile.DIRTYPE, 0o755))
        tf.addfile(*_info("tmp", tarfile.DIRTYPE, 0o1777))
        with open("/bin/busybox", "rb") as f:
            tf.addfile(*_info("bin/busybox", mode=0o755, data=f.read()))
        for a in APPLETS:
            tf.addfile(*_info("bin/" + a, tarfile.SYMTYPE, 0o777, link="busybox"))
        tf.addfile(*_info("etc/passwd", data=b"root:x:0:0:root:/root:/bin/sh\n"))
        tf.addfile(*_info("etc/group", data=b"root:x:0:\n"))
        tf.addfile(*_info("www/index.html", data=index_html))
    return b.getvalue()


def busybox_archive(path, tag, index_html=b"hello from wharf\n"):
    """Write a docker-archive of the busybox image tagged `tag` to `path`."""
    layer = _layer(index_html)
    diff = hashlib.sha256(layer).hexdigest()
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + diff]},
        "history": [{"created_by": "tests/e2e/images.py"}],
    }, sort_keys=True).encode()
    digest = hashlib.sha256(config).hexdigest()
    manifest = [{"Config": digest + ".json", "RepoTags": [tag], "Layers": [diff + "/layer.tar"]}]
    with tarfile.open(path, "w") as tf:
        tf.addfile(*_info(digest + ".json", data=config))
        tf.addfile(*_info(diff, tarfile.DIRTYPE, 0o755))
        tf.addfile(*_info(diff + "/layer.tar", data=layer))
        tf.addfile(*_info("manifest.json", data=json.dumps(manifest).encode()))
    return "sha256:" + digest
