"""The peer engines and skiff, each with its own private data root and socket.

Everything lives under the suite's work directory (short path: unix socket paths
are limited to 108 bytes). Daemons are started here with `start_new_session` and
stopped here by PID (SIGTERM, then SIGKILL after a grace time); nothing else is
ever signalled. Peers come from Debian's packages (`install()` runs apt-get; the
host's policy-rc.d keeps the packages' own services from starting).
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import time

PACKAGES = ["docker.io", "containerd", "runc", "crun", "podman", "conmon", "skopeo",
            "docker-registry", "busybox-static", "gnuplot-nox", "iproute2", "util-linux"]
PEER_BINARIES = {"dockerd": "docker.io", "containerd": "containerd", "ctr": "containerd",
                 "containerd-shim-runc-v2": "containerd", "runc": "runc", "crun": "crun",
                 "podman": "podman", "conmon": "conmon", "skopeo": "skopeo",
                 "docker-registry": "docker-registry", "gnuplot": "gnuplot-nox"}


def install(log):
    """apt-get installs the peers that are missing (Debian 12 packages)."""
    missing = sorted({pkg for b, pkg in PEER_BINARIES.items() if not shutil.which(b)})
    if not missing:
        return
    log(f"installing Debian packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    subprocess.run(sudo + ["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(sudo + ["apt-get", "install", "-y", "-q", "--no-install-recommends"] + missing,
                   check=True, env=env, stdout=subprocess.DEVNULL)


def rss_kib(pid, field="VmRSS"):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def children(pid):
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(p))
    return out


def find_procs(binary_suffix, needle):
    """PIDs whose argv[0] ends with binary_suffix and whose command line contains needle."""
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        argv = cmdline(p)
        if argv and argv[0].endswith(binary_suffix) and any(needle in a for a in argv):
            out.append(int(p))
    return out


def wait_socket(path, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        if os.path.exists(path):
            s = socket.socket(socket.AF_UNIX)
            try:
                s.connect(path)
                return True
            except OSError:
                pass
            finally:
                s.close()
        time.sleep(0.05)
    return False


class Daemon:
    """A daemon started by the suite; stopped by its PID only."""

    def __init__(self, name, argv, socket_path, logdir, env=None):
        self.name, self.argv, self.socket = name, argv, socket_path
        self.log_path = os.path.join(logdir, f"{name}.log")
        self.env = env
        self.proc = None

    def start(self, timeout=60):
        if self.socket and os.path.exists(self.socket):
            os.unlink(self.socket)
        self.log = open(self.log_path, "a")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env=self.env)
        if not wait_socket(self.socket, self.proc, timeout):
            tail = open(self.log_path).read()[-2000:]
            self.stop()
            raise RuntimeError(f"{self.name} did not come up; log {self.log_path}:\n{tail}")
        self.startup_s = time.perf_counter() - t0
        return self

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, grace=20):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.proc = None


def skiff_argv(skiff, root):
    return [skiff, "--config", "/dev/null", "--data-root", os.path.join(root, "data"),
            "--run-root", os.path.join(root, "run")]


def skiffd(skiffd_bin, root, logdir):
    os.makedirs(root, exist_ok=True)
    cfg = os.path.join(root, "config.toml")
    with open(cfg, "w") as f:
        f.write("")
    sock = os.path.join(root, "docker.sock")
    argv = [skiffd_bin, "--config", cfg, "--data-root", os.path.join(root, "data"),
            "--run-root", os.path.join(root, "run"), "--docker-socket", sock]
    return Daemon("skiffd", argv, sock, logdir, env=dict(os.environ, SKIFF_LOG="warn"))


def dockerd(root, logdir, bridge=None):
    """Debian's dockerd (20.10) with its own containerd (managed, a child of dockerd)
    and private roots. No iptables changes on the host; the default bridge is one the
    suite created (or none)."""
    os.makedirs(root, exist_ok=True)
    cfg = os.path.join(root, "daemon.json")
    with open(cfg, "w") as f:
        json.dump({}, f)
    sock = os.path.join(root, "docker.sock")
    argv = ["dockerd", "--config-file", cfg, "--data-root", os.path.join(root, "data"),
            "--exec-root", os.path.join(root, "exec"), "--pidfile", os.path.join(root, "dockerd.pid"),
            "-H", f"unix://{sock}", "--storage-driver", "overlay2", "--iptables=false",
            "--ip-masq=false", "--ip-forward=false", "--cgroup-parent", "/skiff-bench-docker",
            "--log-level", "warn", "--bridge", bridge or "none"]
    return Daemon("dockerd", argv, sock, logdir)


def containerd(root, logdir):
    """Debian's containerd 1.6 with a private root, state and sockets, no CRI plugin."""
    os.makedirs(root, exist_ok=True)
    sock = os.path.join(root, "containerd.sock")
    cfg = os.path.join(root, "config.toml")
    with open(cfg, "w") as f:
        f.write(f"""version = 2
root = "{root}/root"
state = "{root}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{sock}"
[ttrpc]
  address = "{sock}.ttrpc"
[debug]
  address = ""
  level = "warn"
[metrics]
  address = ""
""")
    return Daemon("containerd", ["containerd", "--config", cfg], sock, logdir)


def podman_setup(root):
    """containers.conf and registries.conf for a private podman; returns (argv prefix, env)."""
    os.makedirs(root, exist_ok=True)
    conf = os.path.join(root, "containers.conf")
    with open(conf, "w") as f:
        # runc: Debian's crun refuses hybrid cgroups in the host mount namespace.
        # Pinned ulimits: podman's defaults cannot be raised here (no CAP_SYS_RESOURCE).
        f.write(f"""[containers]
default_ulimits = []
log_driver = "k8s-file"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "none"
tmp_dir = "{root}/tmp"
volume_path = "{root}/volumes"
[network]
network_config_dir = "{root}/net"
""")
    reg = os.path.join(root, "registries.conf")
    with open(reg, "w") as f:
        f.write('unqualified-search-registries = []\n')
    env = dict(os.environ, CONTAINERS_CONF=conf, CONTAINERS_REGISTRIES_CONF=reg)
    argv = ["podman", "--root", os.path.join(root, "storage"), "--runroot", os.path.join(root, "run"),
            "--tmpdir", os.path.join(root, "tmp"), "--network-config-dir", os.path.join(root, "net"),
            "--storage-driver", "overlay", "--cgroup-manager", "cgroupfs", "--events-backend", "none",
            "--runtime", "runc"]
    return argv, env


def unmount_under(prefix):
    """Lazily unmounts every mount point under prefix (deepest first)."""
    try:
        out = subprocess.run(["findmnt", "-rn", "-o", "TARGET"], capture_output=True, text=True).stdout
    except OSError:
        return
    targets = [t.replace("\\x20", " ") for t in out.split() if t.startswith(prefix.rstrip("/") + "/")]
    for t in sorted(targets, key=len, reverse=True):
        subprocess.run(["umount", "-l", t], capture_output=True)


def remove_cgroups(names):
    """rmdir /sys/fs/cgroup/<hierarchy>/<name> and the empty cgroups below it."""
    base = "/sys/fs/cgroup"
    roots = [os.path.join(base, h) for h in os.listdir(base)] + [base]
    for root in roots:
        for name in names:
            top = os.path.join(root, name)
            if not os.path.isdir(top):
                continue
            for d, _subdirs, _files in sorted(os.walk(top), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(d)
                except OSError:
                    pass


def version(argv):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=20)
        return (p.stdout or p.stderr).strip().splitlines()[0]
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return "n/a"
