#!/usr/bin/env python3
"""The Docker Engine API side by side: the stock docker CLI against skiffd and against
Debian's dockerd (with the containerd it starts itself), in one run.

Measures
  * the median wall time of `docker run --rm IMAGE true` through each daemon, the two
    interleaved run by run so load on the machine hits both alike;
  * the idle resident memory of skiffd against dockerd + its containerd, read from
    /proc/PID/status (VmRSS) a few seconds after the last run.

Both daemons get private roots and sockets under a fresh work directory; dockerd runs
with --bridge none and --iptables=false so it leaves the host's network alone. Every
process this script starts is stopped by its PID at the end (also on failure), and the
work directory is removed.

Needs: root; a registry on 127.0.0.1 serving library/alpine (contrib/fixture-registry.sh
start); skiffd and containerd-shim-skiff-v1 side by side (a release build); Debian's
docker.io (dockerd, containerd); the stock docker CLI.

  contrib/bench/docker_api_bench.py --skiffd /var/tmp/skiff-target/release/skiffd \\
      --registry 127.0.0.1:5000 --runs 20 [--docker /usr/local/bin/docker] [--json out.json]
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import tempfile
import time


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def children(pid):
    """PIDs whose parent is `pid`."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # comm may contain spaces; the fields after the closing paren are fixed.
        rest = stat[stat.rfind(")") + 2:].split()
        if int(rest[1]) == pid:
            out.append(int(d))
    return out


def comm(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def stop(proc, name, timeout=20):
    """SIGTERM to one process we started, SIGKILL if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        print(f"{name} (pid {proc.pid}) did not stop; killing it")
        proc.kill()
        proc.wait()


def wait_for(cmd, env, what, timeout=60):
    deadline = time.time() + timeout
    while True:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if p.returncode == 0:
            return
        if time.time() > deadline:
            raise SystemExit(f"{what} did not come up: {p.stderr}")
        time.sleep(0.2)


def timed(cmd, env):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    return dt


def unmount_under(path):
    """Unmounts whatever a daemon left mounted below `path` (deepest first)."""
    with open("/proc/self/mounts") as f:
        mounts = [line.split()[1] for line in f]
    for m in sorted((m for m in mounts if m.startswith(path + "/")), key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skiffd", required=True, help="skiffd binary (the shim must sit next to it)")
    ap.add_argument("--docker", default="/usr/local/bin/docker", help="the docker CLI")
    ap.add_argument("--dockerd", default="/usr/sbin/dockerd")
    ap.add_argument("--registry", default="127.0.0.1:5000")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--idle-wait", type=float, default=5.0, help="seconds before reading RSS")
    ap.add_argument("--json")
    a = ap.parse_args()

    image = f"{a.registry}/library/alpine:latest"
    work = tempfile.mkdtemp(prefix="skiff-apibench-", dir="/var/tmp")
    cli_config = os.path.join(work, "docker-config")
    os.makedirs(cli_config)
    skiff_sock = os.path.join(work, "skiff.sock")
    docker_sock = os.path.join(work, "docker.sock")
    env_base = dict(os.environ, DOCKER_CONFIG=cli_config)
    env_base.pop("DOCKER_API_VERSION", None)
    env_base.pop("DOCKER_CONTEXT", None)
    env_skiff = dict(env_base, DOCKER_HOST=f"unix://{skiff_sock}")
    env_docker = dict(env_base, DOCKER_HOST=f"unix://{docker_sock}")
    skiffd = dockerd = None
    try:
        cfg = os.path.join(work, "skiffd.toml")
        with open(cfg, "w") as f:
            f.write("")
        skiffd = subprocess.Popen(
            [os.path.abspath(a.skiffd), "--config", cfg,
             "--data-root", os.path.join(work, "skiff-root"),
             "--run-root", os.path.join(work, "skiff-run"),
             "--docker-socket", skiff_sock],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(work, "skiffd.log"), "w"))
        dockerd = subprocess.Popen(
            [a.dockerd,
             "--data-root", os.path.join(work, "docker-root"),
             "--exec-root", os.path.join(work, "docker-exec"),
             "--pidfile", os.path.join(work, "dockerd.pid"),
             "-H", f"unix://{docker_sock}",
             "--bridge", "none", "--iptables=false", "--ip-masq=false",
             "--storage-driver", "overlay2", "--log-level", "warn"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(work, "dockerd.log"), "w"))
        wait_for([a.docker, "version"], env_skiff, "skiffd")
        wait_for([a.docker, "version"], env_docker, "dockerd")
        for env in (env_skiff, env_docker):
            subprocess.run([a.docker, "pull", "-q", image], env=env, check=True,
                           capture_output=True)
        run = [a.docker, "run", "--rm", "--network", "none", image, "true"]
        for _ in range(2):  # warm caches on both sides
            timed(run, env_skiff)
            timed(run, env_docker)
        times = {"skiffd": [], "dockerd": []}
        for i in range(a.runs):
            # Alternate who goes first, so neither always runs right after the other.
            order = [("skiffd", env_skiff), ("dockerd", env_docker)]
            if i % 2:
                order.reverse()
            for name, env in order:
                times[name].append(timed(run, env))

        time.sleep(a.idle_wait)
        containerd = [c for c in children(dockerd.pid) if comm(c).startswith("containerd")]
        rss = {
            "skiffd": rss_kib(skiffd.pid),
            "dockerd": rss_kib(dockerd.pid),
            "containerd": sum(rss_kib(c) for c in containerd),
        }
        med = {k: statistics.median(v) * 1000 for k, v in times.items()}
        with open("/proc/loadavg") as f:
            load = f.read().split()[:3]
        result = {
            "runs": a.runs,
            "image": image,
            "load_average_at_end": load,
            "run_rm_true_median_ms": med,
            "run_rm_true_min_ms": {k: min(v) * 1000 for k, v in times.items()},
            "run_ratio_dockerd_over_skiffd": med["dockerd"] / med["skiffd"],
            "idle_rss_kib": rss,
            "idle_rss_ratio_dockerd_containerd_over_skiffd":
                (rss["dockerd"] + rss["containerd"]) / max(rss["skiffd"], 1),
        }
        print(f"docker run --rm {image} true, {a.runs} runs each, interleaved (load {' '.join(load)}):")
        for k in ("skiffd", "dockerd"):
            print(f"  {k:8} median {med[k]:7.1f} ms   min {result['run_rm_true_min_ms'][k]:7.1f} ms")
        print(f"  dockerd / skiffd: {result['run_ratio_dockerd_over_skiffd']:.2f}x")
        print(f"idle RSS: skiffd {rss['skiffd'] / 1024:.1f} MiB; dockerd {rss['dockerd'] / 1024:.1f} MiB"
              f" + containerd {rss['containerd'] / 1024:.1f} MiB"
              f" ({result['idle_rss_ratio_dockerd_containerd_over_skiffd']:.1f}x)")
        if a.json:
            with open(a.json, "w") as f:
                json.dump(result, f, indent=2)
    finally:
        stop(skiffd, "skiffd")
        stop(dockerd, "dockerd", timeout=30)
        unmount_under(work)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
