#!/usr/bin/env python3
"""Two builds of skiff against each other (before/after a change), interleaved A B A B:
daemonless `run --rm --network none IMAGE true`, and cold and warm pulls of the
suite's 6-layer image, each build with its own data root, same registry.

  sudo contrib/bench/ab.py --a /path/to/old/release --b /path/to/new/release [--runs 20] [--quick]

Prints medians, min-max and the ratio b/a per figure (below 1: b is faster).
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fixtures  # noqa: E402


def timed(argv):
    t0 = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{p.stderr}")
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", required=True, help="directory with skiff and containerd-shim-skiff-v1 (before)")
    ap.add_argument("--b", required=True, help="the same, after")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="a smaller pull image")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="skb-ab-", dir="/var/tmp")
    reg = fixtures.Registry(work)
    try:
        imgs = fixtures.build_and_push(reg, work, quick=a.quick)
        img, ml, mlb = (imgs[k]["reference"] for k in ("bench/busybox", "bench/multilayer", "bench/multilayer-b"))
        sk = {}
        for name, d in (("a", a.a), ("b", a.b)):
            sk[name] = [os.path.join(os.path.abspath(d), "skiff"), "--config", "/dev/null",
                        "--data-root", f"{work}/{name}/data", "--run-root", f"{work}/{name}/run"]
            subprocess.run(sk[name] + ["pull", "-q", img], check=True, capture_output=True)
        res = {k: {"a": [], "b": []} for k in ("run --rm true", "pull cold", "pull warm")}
        for i in range(a.runs + 1):
            for name in (("a", "b") if i % 2 else ("b", "a")):
                s = sk[name]
                t = timed(s + ["run", "--rm", "--network", "none", img, "true"])
                subprocess.run(s + ["rmi", "-f", ml, mlb], capture_output=True)
                c = timed(s + ["pull", "-q", ml])
                subprocess.run(s + ["rmi", "-f", mlb], capture_output=True)
                w = timed(s + ["pull", "-q", mlb])
                if i:
                    res["run --rm true"][name].append(t)
                    res["pull cold"][name].append(c)
                    res["pull warm"][name].append(w)
        print(f"{a.runs} runs each, interleaved, after a warm-up; load average {os.getloadavg()[0]:.2f}")
        print(f"{'figure':<16} {'a median':>10} {'a min-max':>17} {'b median':>10} {'b min-max':>17} {'b/a':>6}")
        for k, v in res.items():
            ma, mb = statistics.median(v["a"]) * 1000, statistics.median(v["b"]) * 1000
            ra = f"{min(v['a']) * 1000:.0f}-{max(v['a']) * 1000:.0f}"
            rb = f"{min(v['b']) * 1000:.0f}-{max(v['b']) * 1000:.0f}"
            print(f"{k:<16} {ma:>8.1f}ms {ra:>17} {mb:>8.1f}ms {rb:>17} {mb / ma:>6.2f}")
    finally:
        reg.stop()
        subprocess.run(["rm", "-rf", "--one-file-system", work])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
