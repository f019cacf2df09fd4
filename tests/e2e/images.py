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


def oci_archive(path, tag, index_html=b"hello from wharf\n"):
    """Write the busybox image tagged `tag` to `path` as an OCI image layout
    archive (as `docker save` and BuildKit's OCI exporter write them), with
    the name in both annotations containerd and the OCI spec read."""
    blobs = {}

    def blob(data):
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": "sha256:" + digest, "size": len(data)}
    layer = _layer(index_html)
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
        "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **blob(layer)}],
    }).encode()
    index = {"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json", **blob(manifest),
        "annotations": {"io.containerd.image.name": tag, "org.opencontainers.image.ref.name": tag.rsplit(":", 1)[1]},
    }]}
    with tarfile.open(path, "w") as tf:
        tf.addfile(*_info("oci-layout", data=b'{"imageLayoutVersion":"1.0.0"}'))
        tf.addfile(*_info("index.json", data=json.dumps(index).encode()))
        tf.addfile(*_info("blobs", tarfile.DIRTYPE, 0o755))
        tf.addfile(*_info("blobs/sha256", tarfile.DIRTYPE, 0o755))
        for digest, data in blobs.items():
            tf.addfile(*_info("blobs/sha256/" + digest, data=data))
