#!/usr/bin/env python3
"""skiff against its peers, side by side, on the same images from a loopback registry.

  sudo contrib/bench/bench.py [--quick] [--runs N] [--only run,ports,concurrent,pull,memory,footprint]
                              [--out DIR] [--bin DIR] [--no-build] [--no-install] [--keep]

Installs the peers from Debian's packages (docker.io, containerd, podman, runc, crun,
conmon), builds skiff (release), starts a docker-registry on 127.0.0.1 with generated
fixture images, and starts skiffd, dockerd (with its managed containerd) and a standalone
containerd, each with a private data root and socket under /var/tmp/skb-*; everything the
suite starts is stopped by PID and its directory removed at the end.

Sections (see contrib/bench/README.md for the exact commands):
  run         `run --rm IMAGE true`, every engine and bare crun/runc on a prepared bundle
  ports       the same with a published port on the bridge network (engines that have one)
  concurrent  50 detached `sleep` containers started concurrently, then all removed
  pull        pull + unpack of a 6-layer image: cold (empty store) and warm (5 layers shared)
  memory      idle daemon RSS after start and after 100 run/rm cycles, per-container
              shim RSS, peak CLI RSS during a pull (from the pull section)
  footprint   binary sizes as shipped

Every timing: medians and min-max over N runs after one warm-up, engines interleaved
(A B C A B C ...), each also as a ratio skiff/peer. Writes report.md, results.json and
ratios.svg (gnuplot) into --out (default contrib/bench/results/<full|quick>).
A peer that fails is reported as n/a with its error; a skiff failure makes the exit
status 1 (breakage), timings never do.
"""
import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402
import peers  # noqa: E402
import report  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SECTIONS = ["run", "ports", "concurrent", "pull", "memory", "footprint"]
MS = 1000.0


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Failed(Exception):
    pass


def run(argv, env=None, check=True, timeout=300, input=None):
    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, input=input)
    if check and p.returncode != 0:
        raise Failed(f"exit {p.returncode}: {' '.join(argv)}\n{(p.stderr or p.stdout).strip()[-1500:]}")
    return p


def timed(argv, env=None, timeout=300):
    t0 = time.perf_counter()
    run(argv, env=env, timeout=timeout)
    return time.perf_counter() - t0


def timed_rss(argv, env=None, timeout=300):
    """Wall time and the peak RSS (KiB) of the command, by GNU time."""
    t0 = time.perf_counter()
    p = run(["/usr/bin/time", "-f", "@@%M"] + argv, env=env, timeout=timeout)
    dt = time.perf_counter() - t0
    rss = [int(line[2:]) for line in p.stderr.splitlines() if line.startswith("@@")]
    return dt, (rss[-1] if rss else None)


def summary(samples, scale=MS):
    if not samples:
        return None
    v = [s * scale for s in samples]
    return {"median": round(statistics.median(v), 2), "min": round(min(v), 2), "max": round(max(v), 2),
            "n": len(v), "samples": [round(x, 2) for x in v]}


class Engine:
    """One way to run things: an argv builder per operation and an environment."""

    def __init__(self, name, kind, env=None, **ops):
        self.name, self.kind, self.env, self.ops = name, kind, env, ops
        self.error = None


class Suite:
    def __init__(self, a):
        self.a = a
        self.quick = a.quick
        self.runs = a.runs or (2 if a.quick else 10)
        self.results = {"meta": {}, "sections": {}, "errors": [], "skiff_failures": []}
        self.work = tempfile.mkdtemp(prefix="skb-", dir="/var/tmp")
        os.chmod(self.work, 0o755)
        self.logdir = os.path.join(self.work, "logs")
        os.makedirs(self.logdir)
        self.daemons = []
        self.cleanups = []
        self.bin = os.path.abspath(a.bin)
        self.skiff = os.path.join(self.bin, "skiff")
        self.skiffd_bin = os.path.join(self.bin, "skiffd")
        self.shim = os.path.join(self.bin, "containerd-shim-skiff-v1")
        self.docker = shutil.which("docker")
        self.docker_cfg = os.path.join(self.work, "docker-config")
        os.makedirs(self.docker_cfg)

    # -- helpers ---------------------------------------------------------------

    def fail(self, engine, section, err):
        msg = f"{section}: {engine.name}: {err}"
        log("FAILED " + msg)
        self.results["errors"].append(msg)
        if engine.kind == "skiff":
            self.results["skiff_failures"].append(msg)
        engine.error = str(err).splitlines()[0][:300]

    def docker_env(self, sock):
        return dict(os.environ, DOCKER_HOST=f"unix://{sock}", DOCKER_CONFIG=self.docker_cfg)

    # -- setup -----------------------------------------------------------------

    def setup(self):
        a = self.a
        if not a.no_install:
            peers.install(log)
        if not a.no_build:
            log("building skiff (release)")
            env = dict(os.environ)
            env.setdefault("CARGO_TARGET_DIR", "/var/tmp/skiff-target")
            subprocess.run(["cargo", "build", "--release", "-p", "skiff", "-p", "skiff-api",
                            "-p", "containerd-shim-skiff-v1"], cwd=REPO, check=True, env=env)
        for b in (self.skiff, self.skiffd_bin, self.shim):
            if not os.path.exists(b):
                raise SystemExit(f"missing {b}: build with cargo build --release or pass --bin DIR")
        self.record_machine()
        log(f"work directory {self.work}")
        self.registry = fixtures.Registry(self.work)
        self.cleanups.append(self.registry.stop)
        log(f"registry on {self.registry.addr}; building fixture images")
        self.images = fixtures.build_and_push(self.registry, self.work, quick=self.quick)
        self.results["meta"]["images"] = self.images
        self.img = self.images["bench/busybox"]["reference"]
        # Daemons, each with its own roots and socket.
        self.sd = peers.skiffd(self.skiffd_bin, os.path.join(self.work, "sd"), self.logdir)
        self.bridge = None
        if "ports" in self.sections:
            self.bridge = self.make_bridge()
        self.dd = peers.dockerd(os.path.join(self.work, "dd"), self.logdir, bridge=self.bridge)
        self.cd = peers.containerd(os.path.join(self.work, "cd"), self.logdir)
        idle = {}
        for d in (self.sd, self.dd, self.cd):
            try:
                d.start()
                self.daemons.append(d)
                log(f"{d.name} up in {d.startup_s * MS:.0f} ms (pid {d.pid})")
            except Exception as e:  # noqa: BLE001
                self.results["errors"].append(f"start {d.name}: {e}")
                log(f"FAILED to start {d.name}: {e}")
                if d is self.sd:
                    self.results["skiff_failures"].append(f"start skiffd: {e}")
        time.sleep(2)
        for d in self.daemons:
            idle[d.name] = self.daemon_rss(d)
        self.results["meta"]["idle_rss_after_start_kib"] = idle
        self.results["meta"]["daemon_startup_ms"] = {d.name: round(d.startup_s * MS, 1) for d in self.daemons}
        self.podman, self.podman_env = peers.podman_setup(os.path.join(self.work, "pm"))
        self.engines = self.make_engines()
        self.prepull()
        self.bundle = fixtures.make_bundle(self.work, "/skiff-bench-bare/b")
        self.spec_bundle = fixtures.make_skiff_spec_bundle(
            self.work, "/skiff-bench-bare/s", self.bundle,
            peers.skiff_argv(self.skiff, os.path.join(self.work, "sk")), self.img)

    def make_bridge(self):
        """A bridge the suite owns for dockerd's default network (dockerd changes no
        iptables rules: --iptables=false; published ports go through docker-proxy)."""
        name = f"skb{os.getpid() % 100000}d"
        try:
            run(["ip", "link", "add", name, "type", "bridge"])
            self.cleanups.append(lambda: run(["ip", "link", "del", name], check=False))
            run(["ip", "addr", "add", "10.213.77.1/24", "dev", name])
            run(["ip", "link", "set", name, "up"])
            return name
        except Failed as e:
            self.results["errors"].append(f"bridge for dockerd: {e}")
            return None

    def podman_netns(self):
        """A network namespace the suite owns, for podman's bridge network (netavark's
        bridge and iptables rules stay inside it)."""
        name = f"skb{os.getpid() % 100000}p"
        run(["ip", "netns", "add", name])
        self.cleanups.append(lambda: run(["ip", "netns", "del", name], check=False))
        run(["ip", "-n", name, "link", "set", "lo", "up"])
        return f"/run/netns/{name}"

    def daemon_rss(self, d):
        """RSS of a daemon; for dockerd also its managed containerd (a child)."""
        out = {"pid": d.pid, "rss_kib": peers.rss_kib(d.pid), "pss_kib": peers.pss_kib(d.pid)}
        if d.name == "dockerd":
            kids = [p for p in peers.children(d.pid) if peers.cmdline(p)[:1] == ["containerd"]]
            if kids:
                out["containerd_rss_kib"] = peers.rss_kib(kids[0])
                out["containerd_pss_kib"] = peers.pss_kib(kids[0])
                out["total_rss_kib"] = out["rss_kib"] + (out["containerd_rss_kib"] or 0)
        return out

    def record_machine(self):
        m = self.results["meta"]
        m["date_utc"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        m["mode"] = "quick" if self.quick else "full"
        m["runs"] = self.runs
        m["kernel"] = platform.release()
        m["machine"] = platform.machine()
        m["cpus"] = os.cpu_count()
        try:
            with open("/proc/cpuinfo") as f:
                m["cpu_model"] = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
            with open("/proc/meminfo") as f:
                m["mem_total_kib"] = int(f.readline().split()[1])
            with open("/etc/os-release") as f:
                m["os"] = next((line.split("=", 1)[1].strip().strip('"') for line in f if line.startswith("PRETTY_NAME")), "?")
        except OSError:
            pass
        m["loadavg_start"] = os.getloadavg()
        m["git_commit"] = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], check=False).stdout.strip()
        m["git_dirty"] = bool(run(["git", "-C", REPO, "status", "--porcelain", "--", "image-store", "daemon", "api",
                                   "shim", "cli"], check=False).stdout.strip())
        m["command"] = " ".join(sys.argv)
        m["versions"] = {
            "skiff": peers.version([self.skiff, "--version"]),
            "skiffd": peers.version([self.skiffd_bin, "--version"]),
            "docker CLI": peers.version([self.docker or "docker", "--version"]),
            "dockerd": peers.version(["dockerd", "--version"]),
            "containerd": peers.version(["containerd", "--version"]),
            "ctr": peers.version(["ctr", "--version"]),
            "podman": peers.version(["podman", "--version"]),
            "conmon": peers.version(["conmon", "--version"]),
            "runc": peers.version(["runc", "--version"]),
            "crun": peers.version(["crun", "--version"]),
            "docker-registry": peers.version(["docker-registry", "--version"]),
            "skopeo": peers.version(["skopeo", "--version"]),
        }

    # -- engines -----------------------------------------------------------------

    def make_engines(self):
        img = self.img
        sk = peers.skiff_argv(self.skiff, os.path.join(self.work, "sk"))
        dd_env = self.docker_env(self.dd.socket)
        sd_env = self.docker_env(self.sd.socket)
        pm, pm_env = self.podman, self.podman_env
        ctr = ["ctr", "--address", self.cd.socket, "--namespace", "bench"]
        dk = [self.docker]

        def docker_like(prefix, name, kind, env, rm_extra=()):
            return Engine(
                name, kind, env,
                run=lambda i: prefix + ["run", "--rm", "--network", "none", img, "true"],
                run_port=lambda i: prefix + ["run", "--rm", "-p", "127.0.0.1::80", img, "true"],
                start=lambda n: prefix + ["run", "-d", "--name", n, "--network", "none", img, "sleep", "600"],
                rm=lambda names: [prefix + ["rm", "-f", *rm_extra] + names],
                pull=lambda ref: prefix + ["pull", "-q", ref],
                rmi=lambda refs: prefix + ["rmi", "-f"] + refs,
            )

        e = {}
        e["skiff (daemonless)"] = docker_like(sk, "skiff (daemonless)", "skiff", None)
        # The skiff CLI as a client of skiffd, once it has a client mode.
        help_text = run([self.skiff, "--help"], check=False).stdout
        if "--host" in help_text:
            e["skiff → skiffd"] = docker_like([self.skiff, "--config", "/dev/null", "--host", f"unix://{self.sd.socket}"],
                                              "skiff → skiffd", "skiff", None)
        else:
            eng = Engine("skiff → skiffd", "skiff")
            eng.error = "n/a: the skiff CLI has no client mode (--host) in this build"
            e["skiff → skiffd"] = eng
        e["docker CLI → skiffd"] = docker_like(dk, "docker CLI → skiffd", "skiff", sd_env)
        e["docker CLI → dockerd"] = docker_like(dk, "docker CLI → dockerd", "peer", dd_env)
        pod = docker_like(pm, "podman", "peer", pm_env, rm_extra=("-t", "0"))
        pod.ops["run"] = lambda i: pm + ["run", "--rm", "--network", "none", img, "true"]
        pod.ops["start"] = lambda n: pm + ["run", "-d", "--name", n, "--network", "none", img, "sleep", "600"]
        pod.ops["pull"] = lambda ref: pm + ["pull", "-q", "--tls-verify=false", ref]
        e["podman"] = pod
        e["ctr → containerd"] = Engine(
            "ctr → containerd", "peer", None,
            run=lambda i: ctr + ["run", "--rm", img, f"r{os.getpid()}-{i}", "true"],
            start=lambda n: ctr + ["run", "-d", img, n, "sleep", "600"],
            rm=lambda names: [ctr + ["task", "rm", "-f", n] for n in names] + [ctr + ["container", "rm"] + names],
            pull=lambda ref: ctr + ["images", "pull", "--plain-http", ref],
            rmi=lambda refs: ctr + ["images", "rm", "--sync"] + refs,
        )
        crun_root = os.path.join(self.work, "crun")
        runc_root = os.path.join(self.work, "runc")
        # crun 1.8 refuses hybrid cgroups in the host mount namespace: it runs in a
        # private one with the cgroup2 mount hidden (shared/notes/host.md).
        # The floor: the spec skiff generates (seccomp, capabilities, masked paths...),
        # and for reference the minimal one `runc spec` writes (no seccomp filter).
        for label, bundle in (("skiff's spec", lambda: self.spec_bundle), ("minimal spec", lambda: self.bundle)):
            tag = "s" if label == "skiff's spec" else "m"
            e[f"crun run ({label})"] = Engine(
                f"crun run ({label})", "floor", None,
                run=lambda i, b=bundle, t=tag: [
                    "unshare", "-m", "sh", "-c", "umount /sys/fs/cgroup/unified 2>/dev/null; exec crun --root "
                    f"{crun_root} run --bundle {b()} c{t}{os.getpid()}-{i}"])
            e[f"runc run ({label})"] = Engine(
                f"runc run ({label})", "floor", None,
                run=lambda i, b=bundle, t=tag: ["runc", "--root", runc_root, "run", "--bundle", b(),
                                                f"r{t}{os.getpid()}-{i}"])
        # Daemons that did not start.
        up = {d.name for d in self.daemons}
        for name, need in (("docker CLI → skiffd", "skiffd"), ("skiff → skiffd", "skiffd"),
                           ("docker CLI → dockerd", "dockerd"), ("ctr → containerd", "containerd")):
            if need not in up and not e[name].error:
                e[name].error = f"n/a: {need} did not start"
        if not self.docker:
            for name in ("docker CLI → skiffd", "docker CLI → dockerd"):
                e[name].error = "n/a: no docker CLI"
        return e

    def prepull(self):
        """Puts the run image into every store (untimed) so `run` never pulls."""
        for eng in self.engines.values():
            if eng.error or "pull" not in eng.ops:
                continue
            try:
                run(eng.ops["pull"](self.img), env=eng.env)
            except (Failed, subprocess.TimeoutExpired) as err:
                self.fail(eng, "pre-pull", err)

    # -- sections ----------------------------------------------------------------

    def interleaved(self, section, engines, op, runs, warmup=1, per_run=None):
        """Times engines[*].ops[op](i) for warmup + runs rounds, interleaved; the start
        engine rotates each round so no engine always follows the same one."""
        samples = {e.name: [] for e in engines}
        for i in range(warmup + runs):
            k = i % len(engines) if engines else 0
            for eng in engines[k:] + engines[:k]:
                if eng.error:
                    continue
                try:
                    dt = timed(eng.ops[op](i), env=eng.env)
                except (Failed, subprocess.TimeoutExpired) as err:
                    self.fail(eng, section, err)
                    continue
                if i >= warmup:
                    samples[eng.name].append(dt)
            if per_run:
                per_run(i)
        return samples

    def section_run(self):
        order = ["skiff (daemonless)", "skiff → skiffd", "docker CLI → skiffd", "docker CLI → dockerd", "podman",
                 "ctr → containerd", "crun run (skiff's spec)", "runc run (skiff's spec)",
                 "crun run (minimal spec)", "runc run (minimal spec)"]
        engines = [self.engines[n] for n in order if not self.engines[n].error]
        log(f"run --rm true: {len(engines)} engines x {self.runs} runs")
        samples = self.interleaved("run", engines, "run", self.runs)
        out = {}
        for n in order:
            eng = self.engines[n]
            out[n] = {"kind": eng.kind, "command": " ".join(eng.ops["run"](0)) if "run" in eng.ops else None}
            out[n].update(summary(samples.get(n)) or {"na": eng.error or "n/a"})
        self.results["sections"]["run"] = out

    def section_ports(self):
        # Engines with a bridge network: skiff (when this build has -p), dockerd on the
        # suite's bridge, podman (netavark) inside a network namespace the suite owns.
        cands = ["skiff (daemonless)", "skiff → skiffd", "docker CLI → skiffd", "docker CLI → dockerd", "podman"]
        engines = []
        out = {}
        pm_ns = None
        for n in cands:
            base = self.engines[n]
            if base.error:
                out[n] = {"na": base.error}
                continue
            eng = Engine(n, base.kind, base.env, run=base.ops["run_port"])
            if n == "podman":
                try:
                    pm_ns = pm_ns or self.podman_netns()
                except Failed as err:
                    out[n] = {"na": f"n/a: could not create a network namespace: {err}"}
                    continue
                eng.ops["run"] = lambda i, ns=pm_ns: ["nsenter", f"--net={ns}"] + base.ops["run_port"](i)
            if n == "docker CLI → dockerd" and not self.bridge:
                out[n] = {"na": "n/a: no bridge for dockerd"}
                continue
            # Detect support: one try; a failure means "not supported by this build".
            try:
                run(eng.ops["run"](0), env=eng.env, timeout=120)
            except (Failed, subprocess.TimeoutExpired) as err:
                lines = [x for x in str(err).strip().splitlines()[1:] if x.strip()] or [str(err)]
                msg = next((x for x in lines if "rror" in x or "unknown" in x), lines[0]).strip()[:200]
                out[n] = {"na": f"n/a: not supported by this build ({msg})" if base.kind == "skiff"
                          else f"n/a: failed ({msg})"}
                if base.kind != "skiff":
                    self.results["errors"].append(f"ports: {n}: {err}")
                continue
            engines.append(eng)
        log(f"run --rm -p: {len(engines)} engines x {self.runs} runs")
        samples = self.interleaved("ports", engines, "run", self.runs, warmup=0)
        for eng in engines:
            out[eng.name] = {"kind": eng.kind, "command": " ".join(eng.ops["run"](0))}
            out[eng.name].update(summary(samples[eng.name]) or {"na": eng.error or "n/a"})
        self.results["sections"]["ports"] = out

    def section_concurrent(self):
        n_ct = self.a.concurrent
        order = ["skiff (daemonless)", "skiff → skiffd", "docker CLI → skiffd", "docker CLI → dockerd", "podman",
                 "ctr → containerd"]
        engines = [self.engines[n] for n in order if not self.engines[n].error]
        runs = self.a.concurrent_runs or self.runs
        starts = {e.name: [] for e in engines}
        removes = {e.name: [] for e in engines}
        log(f"{n_ct} concurrent starts: {len(engines)} engines x {runs} runs (+1 warm-up)")

        def parallel(cmds, env):
            procs, errs = [], []
            t0 = time.perf_counter()
            for c in cmds:
                procs.append((c, subprocess.Popen(c, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
            for c, p in procs:
                out, err = p.communicate(timeout=600)
                if p.returncode != 0:
                    errs.append(f"exit {p.returncode}: {' '.join(c)}: {err.strip()[-300:]}")
            return time.perf_counter() - t0, errs

        for i in range(runs + 1):
            k = i % len(engines)
            for eng in engines[k:] + engines[:k]:
                if eng.error:
                    continue
                names = [f"b{os.getpid()}-{i}-{j}" for j in range(n_ct)]
                t_start, errs = parallel([eng.ops["start"](n) for n in names], eng.env)
                # Removal: a first command per container (ctr: task rm) may run in
                # parallel; a last one takes all names.
                rm_cmds = eng.ops["rm"](names)
                t0 = time.perf_counter()
                if len(rm_cmds) > 1:
                    _, errs2 = parallel(rm_cmds[:-1], eng.env)
                t_rm0, errs3 = parallel(rm_cmds[-1:], eng.env)
                t_rm = time.perf_counter() - t0
                all_errs = errs + (errs3 if len(rm_cmds) == 1 else errs3)
                if all_errs:
                    self.fail(eng, "concurrent", f"{len(all_errs)} failures; first: {all_errs[0]}")
                    continue
                if i >= 1:
                    starts[eng.name].append(t_start)
                    removes[eng.name].append(t_rm)
        out = {}
        for n in order:
            eng = self.engines[n]
            if eng.error or not starts.get(n):
                out[n] = {"na": eng.error or "n/a"}
                continue
            s = summary(starts[n])
            r = summary(removes[n])
            out[n] = {"kind": eng.kind, "containers": n_ct, "start_ms": s, "remove_ms": r,
                      "containers_per_s": round(n_ct / (s["median"] / MS), 2),
                      "command": " ".join(eng.ops["start"]("NAME"))}
        self.results["sections"]["concurrent"] = out

    def section_pull(self):
        a_ref = self.images["bench/multilayer"]["reference"]
        b_ref = self.images["bench/multilayer-b"]["reference"]
        order = ["skiff (daemonless)", "skiff → skiffd", "docker CLI → skiffd", "docker CLI → dockerd", "podman",
                 "ctr → containerd"]
        # skiff daemonless pulls into a store of its own.
        pull_root = os.path.join(self.work, "skpull")
        skp = peers.skiff_argv(self.skiff, pull_root)
        engines = []
        for n in order:
            eng = self.engines[n]
            if eng.error:
                continue
            if n == "skiff (daemonless)":
                # Cold like the others: an initialised store that holds no image (rmi
                # collects the blobs and snapshots); the warm-up round initialises it.
                eng = Engine(n, "skiff", None, pull=lambda ref: skp + ["pull", "-q", ref],
                             rmi=lambda refs: skp + ["rmi", "-f"] + refs)
            engines.append(eng)
        cold = {e.name: [] for e in engines}
        warm = {e.name: [] for e in engines}
        rss_cold = {e.name: [] for e in engines}
        log(f"pull cold+warm: {len(engines)} engines x {self.runs} runs (+1 warm-up)")
        for i in range(self.runs + 1):
            k = i % len(engines)
            for eng in engines[k:] + engines[:k]:
                if eng.error:
                    continue
                try:
                    # Cold: neither image in the store.
                    run(eng.ops["rmi"]([a_ref, b_ref]), env=eng.env, check=False)
                    dt, rss = timed_rss(eng.ops["pull"](a_ref), env=eng.env)
                    # Warm: multilayer present, multilayer-b shares 5 of its 6 layers.
                    run(eng.ops["rmi"]([b_ref]), env=eng.env, check=False)
                    dt2, _ = timed_rss(eng.ops["pull"](b_ref), env=eng.env)
                except (Failed, subprocess.TimeoutExpired) as err:
                    self.fail(eng, "pull", err)
                    continue
                if i >= 1:
                    cold[eng.name].append(dt)
                    warm[eng.name].append(dt2)
                    rss_cold[eng.name].append(rss)
        out = {}
        for n in order:
            eng = next((e for e in engines if e.name == n), self.engines[n])
            if eng.error or not cold.get(n):
                out[n] = {"na": eng.error or "n/a"}
                continue
            out[n] = {"kind": eng.kind, "cold_ms": summary(cold[n]), "warm_ms": summary(warm[n]),
                      "cli_peak_rss_kib": max(r for r in rss_cold[n] if r is not None) if any(rss_cold[n]) else None,
                      "command": " ".join(eng.ops["pull"]("REF"))}
        out["_image"] = {"cold": self.images["bench/multilayer"], "warm": self.images["bench/multilayer-b"]}
        self.results["sections"]["pull"] = out

    def section_memory(self):
        m = {"idle_after_start": self.results["meta"].get("idle_rss_after_start_kib", {})}
        cycles = self.a.cycles or (10 if self.quick else 100)
        # Daemon RSS after N run/rm cycles through each daemon (interleaved).
        daemons = [("skiffd", self.engines["docker CLI → skiffd"], self.sd),
                   ("dockerd", self.engines["docker CLI → dockerd"], self.dd)]
        live = [(n, e, d) for n, e, d in daemons if not e.error and d.alive()]
        m["before_cycles"] = {n: self.daemon_rss(d) for n, e, d in live}
        log(f"memory: {cycles} run/rm cycles through {', '.join(n for n, _, _ in live)}")
        for i in range(cycles):
            for n, eng, d in live:
                if eng.error:
                    continue
                try:
                    run(eng.ops["run"](i), env=eng.env)
                except (Failed, subprocess.TimeoutExpired) as err:
                    self.fail(eng, "memory", err)
        time.sleep(2)
        m["cycles"] = cycles
        m["after_cycles"] = {n: self.daemon_rss(d) for n, e, d in live}
        # Per-container overhead: the process that stays with each container.
        per = {}
        probes = [("skiff (daemonless)", "containerd-shim-skiff-v1"), ("docker CLI → skiffd", "containerd-shim-skiff-v1"),
                  ("docker CLI → dockerd", "containerd-shim-runc-v2"), ("ctr → containerd", "containerd-shim-runc-v2"),
                  ("podman", "conmon")]
        started = []
        for n, binary in probes:
            eng = self.engines[n]
            if eng.error:
                per[n] = {"na": eng.error}
                continue
            name = f"m{os.getpid()}-{len(started)}"
            try:
                p = run(eng.ops["start"](name), env=eng.env)
                cid = (p.stdout.strip().splitlines() or [name])[-1] if n != "ctr → containerd" else name
                started.append((eng, name))
                per[n] = {"process": binary, "id": cid}
            except (Failed, subprocess.TimeoutExpired) as err:
                self.fail(eng, "memory", err)
                per[n] = {"na": str(err).splitlines()[0]}
        # skiff's shim gives memory back after 5 s idle: measure every shim as it stays.
        time.sleep(6)
        for n, info in per.items():
            if "na" in info:
                continue
            pids = peers.find_procs(info["process"], info["id"]) or peers.find_procs(info["process"], info["id"][:12])
            if not pids:
                info["na"] = "shim process not found"
                continue
            info["pid"] = pids[0]
            info["rss_kib"] = peers.rss_kib(pids[0])
            info["pss_kib"] = peers.pss_kib(pids[0])
        for eng, name in started:
            for c in eng.ops["rm"]([name]):
                run(c, env=eng.env, check=False)
        m["per_container"] = per
        pull = self.results["sections"].get("pull", {})
        m["cli_peak_rss_during_pull_kib"] = {n: v.get("cli_peak_rss_kib") for n, v in pull.items()
                                             if isinstance(v, dict) and "cli_peak_rss_kib" in v}
        self.results["sections"]["memory"] = m

    def section_footprint(self):
        def size(path):
            p = shutil.which(path) if not os.path.isabs(path) else path
            return os.path.getsize(p) if p and os.path.exists(p) else None

        def stripped(path):
            p = shutil.which(path) if not os.path.isabs(path) else path
            if not p:
                return None
            out = run(["file", "-L", p], check=False).stdout
            return "not stripped" not in out

        skiff_bins = {"skiffd": self.skiffd_bin, "skiff": self.skiff, "containerd-shim-skiff-v1": self.shim}
        peer_bins = ["dockerd", "docker-proxy", "containerd", "containerd-shim-runc-v2", "ctr", "runc", "crun",
                     "podman", "conmon"]
        out = {"skiff": {}, "peers": {}, "skiff_build": os.path.basename(self.bin.rstrip("/"))}
        for n, p in skiff_bins.items():
            out["skiff"][n] = {"bytes": size(p), "stripped": stripped(p)}
        for n in peer_bins:
            out["peers"][n] = {"bytes": size(n), "stripped": stripped(n), "path": shutil.which(n)}
        docker_cli = self.docker
        out["peers"]["docker CLI"] = {"bytes": size(docker_cli) if docker_cli else None, "stripped": stripped(docker_cli) if docker_cli else None, "path": docker_cli}
        out["skiff_install_bytes"] = sum(v["bytes"] or 0 for v in out["skiff"].values())
        self.results["sections"]["footprint"] = out

    # -- teardown ----------------------------------------------------------------

    def teardown(self):
        for d in reversed(self.daemons):
            try:
                d.stop()
            except Exception as e:  # noqa: BLE001
                log(f"stopping {d.name}: {e}")
        # Leftover skiff shims of this work directory (daemonless containers).
        for pid in peers.find_procs("containerd-shim-skiff-v1", self.work):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        for c in reversed(self.cleanups):
            try:
                c()
            except Exception as e:  # noqa: BLE001
                log(f"cleanup: {e}")
        peers.unmount_under(self.work)
        # The cgroup parents the suite gave dockerd and the bare bundles (empty by now;
        # rmdir removes only empty cgroups).
        peers.remove_cgroups(["skiff-bench-bare", "skiff-bench-docker"])
        if not self.a.keep:
            # Keep the daemon logs next to the report.
            logs_out = os.path.join(self.out, "logs")
            shutil.rmtree(logs_out, ignore_errors=True)
            if self.a.save_logs:
                shutil.copytree(self.logdir, logs_out)
            subprocess.run(["rm", "-rf", "--one-file-system", self.work])

    def main(self):
        self.sections = self.a.only.split(",") if self.a.only else SECTIONS
        for s in self.sections:
            if s not in SECTIONS:
                raise SystemExit(f"unknown section {s}; sections: {','.join(SECTIONS)}")
        self.out = os.path.abspath(self.a.out or os.path.join(REPO, "contrib", "bench", "results",
                                                               "quick" if self.quick else "full"))
        os.makedirs(self.out, exist_ok=True)
        t0 = time.time()
        try:
            self.setup()
            for s in SECTIONS:
                if s in self.sections:
                    try:
                        getattr(self, f"section_{s}")()
                    except Exception as e:  # noqa: BLE001
                        log(f"section {s} crashed: {e}")
                        self.results["errors"].append(f"section {s} crashed: {traceback.format_exc()}")
                        self.results["skiff_failures"].append(f"section {s} crashed: {e}")
        finally:
            self.results["meta"]["loadavg_end"] = os.getloadavg()
            self.results["meta"]["duration_s"] = round(time.time() - t0, 1)
            self.teardown()
        with open(os.path.join(self.out, "results.json"), "w") as f:
            json.dump(self.results, f, indent=2, ensure_ascii=False)
        report.write(self.results, self.out)
        log(f"wrote {self.out}/report.md, results.json, ratios.svg in {self.results['meta']['duration_s']} s")
        if self.results["skiff_failures"]:
            log("skiff failures:\n  " + "\n  ".join(self.results["skiff_failures"]))
            return 1
        return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke mode: 2 runs each, smaller image, 10 cycles")
    ap.add_argument("--runs", type=int, help="measured runs per figure (default 10, 2 with --quick)")
    ap.add_argument("--only", help="comma-separated sections: " + ",".join(SECTIONS))
    ap.add_argument("--out", help="output directory (default contrib/bench/results/full or quick)")
    ap.add_argument("--bin", default=os.path.join(os.environ.get("CARGO_TARGET_DIR", "/var/tmp/skiff-target"), "release"),
                    help="directory holding skiff, skiffd, containerd-shim-skiff-v1 (default $CARGO_TARGET_DIR/release)")
    ap.add_argument("--concurrent", type=int, default=50, help="containers per concurrent round (default 50)")
    ap.add_argument("--concurrent-runs", type=int, help="measured concurrent rounds (default --runs)")
    ap.add_argument("--cycles", type=int, help="run/rm cycles before the second daemon RSS (default 100, 10 quick)")
    ap.add_argument("--no-build", action="store_true", help="use the binaries in --bin as they are")
    ap.add_argument("--no-install", action="store_true", help="do not apt-get install missing peers")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (debugging)")
    ap.add_argument("--save-logs", action="store_true", help="copy the daemons' logs next to the report")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the engines mount overlays and create cgroups")
    sys.exit(Suite(a).main())


if __name__ == "__main__":
    main()
