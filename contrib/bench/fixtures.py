"""Benchmark fixtures: a loopback docker-registry and the images the suite measures.

Images are built here, deterministically (fixed mtimes, seeded random data, gzip
without timestamps), as OCI layouts, and pushed with `skopeo copy`:

  bench/busybox:latest       1 layer: Debian's busybox-static and its applet links
                             (the image every `run` figure uses)
  bench/multilayer:latest    6 layers, ~30 MiB compressed: a busybox base and five
                             layers of incompressible seeded random data
  bench/multilayer-b:latest  the same first 5 layers plus another top layer, so a
                             pull of it after multilayer only fetches one layer
                             (the "warm" pull: layers shared)

The registry listens on 127.0.0.1 only, on a free port, with storage under the
suite's work directory; it is stopped by PID.
"""
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.request

MTIME = 1_700_000_000
BUSYBOX = "/bin/busybox"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Registry:
    """Debian's docker-registry on 127.0.0.1:<free port>, storage in `dir`."""

    def __init__(self, workdir):
        self.dir = os.path.join(workdir, "registry")
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.addr = f"127.0.0.1:{self.port}"
        cfg = os.path.join(self.dir, "config.yml")
        with open(cfg, "w") as f:
            f.write(f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {self.dir}/storage
  delete:
    enabled: true
http:
  addr: {self.addr}
""")
        self.log = open(os.path.join(self.dir, "registry.log"), "w")
        self.proc = subprocess.Popen(["docker-registry", "serve", cfg], stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                urllib.request.urlopen(f"http://{self.addr}/v2/", timeout=1).read()
                return
            except Exception:
                if self.proc.poll() is not None:
                    raise SystemExit(f"docker-registry exited; see {self.dir}/registry.log")
                time.sleep(0.1)
        raise SystemExit("docker-registry did not answer within 20 s")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


# ---------------------------------------------------------------------------
# Deterministic image building

class Tar:
    def __init__(self):
        self.buf = io.BytesIO()
        self.tar = tarfile.open(fileobj=self.buf, mode="w", format=tarfile.PAX_FORMAT)

    def _info(self, name, kind, mode):
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.mode = mode
        ti.mtime = MTIME
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        return ti

    def dir(self, name, mode=0o755):
        self.tar.addfile(self._info(name, tarfile.DIRTYPE, mode))

    def file(self, name, data, mode=0o644):
        ti = self._info(name, tarfile.REGTYPE, mode)
        ti.size = len(data)
        self.tar.addfile(ti, io.BytesIO(data))

    def symlink(self, name, target):
        ti = self._info(name, tarfile.SYMTYPE, 0o777)
        ti.linkname = target
        self.tar.addfile(ti)

    def bytes(self):
        self.tar.close()
        return self.buf.getvalue()


def busybox_applets():
    out = subprocess.run([BUSYBOX, "--list-full"], capture_output=True, text=True, check=True).stdout
    return sorted(set(line.strip() for line in out.splitlines() if line.strip()))


def busybox_layer(extra=None):
    """The busybox rootfs as a tar: /bin/busybox, applet links, /etc basics."""
    t = Tar()
    for d in ["bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "tmp", "root", "proc", "sys", "dev", "var"]:
        t.dir(d, 0o1777 if d == "tmp" else 0o755)
    with open(BUSYBOX, "rb") as f:
        t.file("bin/busybox", f.read(), 0o755)
    for applet in busybox_applets():
        rel = applet.lstrip("/")
        if rel == "bin/busybox":
            continue
        t.symlink(rel, "/bin/busybox")
    t.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    t.file("etc/group", b"root:x:0:\nnobody:x:65534:\n")
    if extra:
        t.file(extra[0], extra[1])
    return t.bytes()


def random_layer(seed, size, files=4):
    """A layer of `files` files of seeded random (incompressible) data, `size` bytes in all."""
    rng = random.Random(seed)
    t = Tar()
    t.dir(f"data{seed}")
    for i in range(files):
        t.file(f"data{seed}/blob{i}", rng.randbytes(size // files))
    return t.bytes()


def gz(data):
    # mtime=0 and no file name: same input, same bytes.
    return gzip.compress(data, compresslevel=6, mtime=0)


def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def write_layout(path, layers, cmd):
    """Writes an OCI image layout holding one image built from `layers` (tar bytes)."""
    blobs = os.path.join(path, "blobs", "sha256")
    os.makedirs(blobs, exist_ok=True)

    def put(data):
        d = sha(data)
        with open(os.path.join(blobs, d[7:]), "wb") as f:
            f.write(data)
        return d

    descs, diff_ids = [], []
    for tar in layers:
        z = gz(tar)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": put(z), "size": len(z)})
        diff_ids.append(sha(tar))
    config = json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": cmd},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "skiff bench fixture"} for _ in layers],
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": put(config), "size": len(config)},
        "layers": descs,
    }, sort_keys=True).encode()
    mdigest = put(manifest)
    with open(os.path.join(path, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(path, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": mdigest, "size": len(manifest),
            "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, f)
    return {"digest": mdigest, "layers": len(layers), "compressed_bytes": sum(d["size"] for d in descs),
            "uncompressed_bytes": sum(len(t) for t in layers)}


def build_and_push(registry, workdir, quick=False):
    """Builds the fixture images and pushes them; returns {name: facts}."""
    layouts = os.path.join(workdir, "layouts")
    shutil.rmtree(layouts, ignore_errors=True)
    # Five random layers of 6 MiB (30 MiB in all) in the full run; the same shape,
    # smaller (5 x 2 MiB), with --quick.
    size = (2 if quick else 6) * 1024 * 1024
    base = busybox_layer()
    ml_base = busybox_layer(extra=("etc/bench-multilayer", b"multilayer base\n"))
    shared = [ml_base] + [random_layer(s, size) for s in range(1, 5)]
    images = {
        "bench/busybox": [base],
        "bench/multilayer": shared + [random_layer(5, size)],
        "bench/multilayer-b": shared + [random_layer(6, size)],
    }
    facts = {}
    for name, layers in images.items():
        path = os.path.join(layouts, name.replace("/", "-"))
        f = write_layout(path, layers, ["sh"])
        subprocess.run(["skopeo", "--insecure-policy", "copy", "-q", "--preserve-digests", "--dest-tls-verify=false",
                        f"oci:{path}:latest", f"docker://{registry.addr}/{name}:latest"],
                       check=True, capture_output=True, text=True)
        f["reference"] = f"{registry.addr}/{name}:latest"
        facts[name] = f
    return facts


def make_bundle(workdir, cgroup):
    """A prepared OCI bundle for bare runc/crun: the busybox rootfs, `/bin/true`."""
    bundle = os.path.join(workdir, "bundle")
    rootfs = os.path.join(bundle, "rootfs")
    shutil.rmtree(bundle, ignore_errors=True)
    os.makedirs(rootfs)
    with tarfile.open(fileobj=io.BytesIO(busybox_layer())) as t:
        t.extractall(rootfs)
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    cfg_path = os.path.join(bundle, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["process"]["args"] = ["/bin/true"]
    cfg["process"]["terminal"] = False
    cfg["root"]["readonly"] = False
    cfg["linux"]["cgroupsPath"] = cgroup
    # Hard rlimits cannot be raised on this host (no CAP_SYS_RESOURCE).
    cfg["process"].pop("rlimits", None)
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    return bundle


def make_skiff_spec_bundle(workdir, cgroup, minimal_bundle, skiff_cmd, image):
    """The floor's equivalent bundle: the OCI spec skiff itself generates for
    `run --network none IMAGE true` (Docker's default seccomp profile and capabilities,
    masked and read-only paths, /dev, /etc/hosts and friends), taken from a container
    that skiff creates and removes again, on a copy of the minimal bundle's rootfs."""
    bundle = os.path.join(workdir, "bundle-skiff-spec")
    shutil.rmtree(bundle, ignore_errors=True)
    os.makedirs(bundle)
    shutil.copytree(os.path.join(minimal_bundle, "rootfs"), os.path.join(bundle, "rootfs"), symlinks=True)
    cid = subprocess.run(skiff_cmd + ["create", "--network", "none", image, "true"],
                         check=True, capture_output=True, text=True).stdout.strip()
    try:
        data_root = skiff_cmd[skiff_cmd.index("--data-root") + 1]
        with open(os.path.join(data_root, "containers", cid, "config.json")) as f:
            cfg = json.load(f)
        # Files skiff bind-mounts from its own directories (hosts, resolv.conf, hostname)
        # go with the bundle: the container is removed below.
        files = os.path.join(bundle, "files")
        os.makedirs(files)
        for m in cfg.get("mounts", []):
            src = m.get("source", "")
            if m.get("type") in (None, "bind") and os.path.isfile(src):
                dst = os.path.join(files, os.path.basename(m["destination"]))
                shutil.copy(src, dst)
                m["source"] = dst
        cfg["root"] = {"path": "rootfs", "readonly": False}
        cfg["process"]["args"] = ["/bin/true"]
        cfg["process"]["terminal"] = False
        # Hard rlimits cannot be raised on this host (no CAP_SYS_RESOURCE).
        cfg["process"].pop("rlimits", None)
        cfg["linux"]["cgroupsPath"] = cgroup
        cfg.pop("hooks", None)
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(cfg, f)
    finally:
        subprocess.run(skiff_cmd + ["rm", "-f", cid], check=False, capture_output=True)
    return bundle

