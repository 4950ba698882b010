#!/usr/bin/env python3
"""`run --rm IMAGE true` latency: skiff (daemonless) against bare runc and crun on an
equivalent prepared bundle and against podman, side by side, interleaved; plus the
idle RSS of one skiff shim against podman's conmon.

Needs: a registry on 127.0.0.1 serving library/alpine (contrib/fixture-registry.sh
start), Debian's runc, crun and (optionally) podman. Run as root:

  contrib/bench/run_bench.py --skiff target/release/skiff --registry 127.0.0.1:5000 --runs 20 [--json f]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


def timed(cmd):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"failed ({p.returncode}): {' '.join(cmd)}\n{p.stdout}\n{p.stderr}")
    return dt


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def make_bundle(work, skiff_cmd):
    """An OCI bundle equivalent to the image skiff runs: the same rootfs, `true`."""
    bundle = os.path.join(work, "bundle")
    rootfs = os.path.join(bundle, "rootfs")
    os.makedirs(rootfs)
    mnt = os.path.join(work, "view")
    os.makedirs(mnt)
    sh(skiff_cmd + ["image", "mount", "alpine", mnt])
    try:
        sh(["cp", "-a", mnt + "/.", rootfs])
    finally:
        sh(skiff_cmd + ["image", "umount", mnt])
    sh(["runc", "spec"], cwd=bundle)
    cfg_path = os.path.join(bundle, "config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["process"]["args"] = ["/bin/true"]
    cfg["process"]["terminal"] = False
    cfg["root"]["readonly"] = False
    cfg["linux"]["cgroupsPath"] = "/skiff-bench/bare"
    # Hard rlimits cannot be raised on this host (no CAP_SYS_RESOURCE).
    cfg["process"].pop("rlimits", None)
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    return bundle


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skiff", required=True)
    ap.add_argument("--registry", default="127.0.0.1:5000")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--json")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="skiff-runbench-", dir="/var/tmp")
    skiff = [os.path.abspath(a.skiff), "--config", "/dev/null", "--data-root", os.path.join(work, "root"),
             "--run-root", os.path.join(work, "run"), "--registry-mirror", f"http://{a.registry}"]
    sh(skiff + ["pull", "-q", "alpine"])
    bundle = make_bundle(work, skiff)
    engines = {
        "skiff (daemonless)": lambda i: skiff + ["run", "--rm", "alpine", "true"],
        "runc run (bare bundle)": lambda i: ["runc", "--root", os.path.join(work, "runc"), "run", "--bundle", bundle, f"r{i}"],
        # crun 1.8 refuses hybrid cgroups in the host mount namespace: run it in a private
        # one with the cgroup2 mount hidden (see shared/notes/host.md).
        "crun run (bare bundle)": lambda i: ["unshare", "-m", "sh", "-c",
                                             f"umount /sys/fs/cgroup/unified 2>/dev/null; exec crun --root {work}/crun run --bundle {bundle} c{i}"],
    }
    if shutil.which("podman"):
        pod = ["podman", "--root", os.path.join(work, "podman"), "--runroot", os.path.join(work, "podman-run"),
               "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
        sh(pod + ["pull", "-q", "--tls-verify=false", f"{a.registry}/library/alpine:latest"])
        engines["podman run --rm"] = lambda i: pod + ["run", "--rm", "--network", "none", "--ulimit", "host",
                                                       f"{a.registry}/library/alpine:latest", "true"]
    names = [n for n in engines if shutil.which(engines[n](0)[0]) or os.path.exists(engines[n](0)[0])]
    times = {n: [] for n in names}
    for i in range(a.runs + 1):
        for n in names:
            dt = timed(engines[n](i))
            if i:
                times[n].append(dt)
    # Idle shim RSS.
    cid = sh(skiff + ["run", "-d", "alpine", "sleep", "60"]).stdout.strip()
    # The shim gives back memory after 5 s idle; measure an idle shim as it stays.
    time.sleep(6)
    shim_rss = None
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
            if cmd and cmd[0].endswith(b"containerd-shim-skiff-v1") and cid.encode() in b" ".join(cmd):
                shim_rss = rss_kib(int(pid))
        except OSError:
            pass
    sh(skiff + ["rm", "-f", cid])
    results = {}
    base = statistics.median(times["skiff (daemonless)"])
    for n in names:
        v = times[n]
        results[n] = {"median_ms": round(statistics.median(v) * 1000, 1), "min_ms": round(min(v) * 1000, 1),
                      "max_ms": round(max(v) * 1000, 1), "ratio_skiff_over_this": round(base / statistics.median(v), 2)}
    print(f"run --rm true, {a.runs} runs each, interleaved after a warm-up")
    print(f"{'engine':<26} {'median ms':>10} {'min-max ms':>16} {'skiff/this':>11}")
    for n, r in results.items():
        print(f"{n:<26} {r['median_ms']:>10} {r['min_ms']:>7}-{r['max_ms']:<8} {r['ratio_skiff_over_this']:>11}")
    print(f"idle skiff shim RSS: {shim_rss} KiB")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runs": a.runs, "results": results, "shim_rss_kib": shim_rss}, f, indent=2)
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
