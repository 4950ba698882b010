#!/usr/bin/env python3
"""Pull + unpack benchmark: skiff against skopeo copy + umoci unpack, side by side.

Runs each tool N times, interleaved (A B A B ...), each run from an empty store, and
prints medians, min-max, the ratio skiff/peer, and peak RSS of each. Needs a registry
on 127.0.0.1 serving the image (contrib/fixture-registry.sh start).

  contrib/bench/pull_bench.py --skiff target/release/skiff \
      --image 127.0.0.1:5000/test/multilayer:latest --runs 10 [--json out.json]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time


def timed(cmd, env=None):
    """Runs cmd under GNU time; returns (seconds, peak RSS KiB)."""
    t0 = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "%M"] + cmd, capture_output=True, text=True, env=env)
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{p.stderr}")
    rss = int(p.stderr.strip().splitlines()[-1])
    return dt, rss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skiff", required=True)
    ap.add_argument("--image", required=True)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--json")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="skiff-pullbench-", dir="/var/tmp")
    results = {"skiff": [], "skopeo+umoci": []}
    rss = {"skiff": [], "skopeo+umoci": []}
    try:
        for i in range(a.runs + 1):  # first round is a warm-up
            root = os.path.join(work, "skiff")
            shutil.rmtree(root, ignore_errors=True)
            dt, m = timed([a.skiff, "--config", "/dev/null", "--data-root", root, "pull", "-q", a.image])
            if i:
                results["skiff"].append(dt)
                rss["skiff"].append(m)
            oci = os.path.join(work, "oci")
            bundle = os.path.join(work, "bundle")
            shutil.rmtree(oci, ignore_errors=True)
            shutil.rmtree(bundle, ignore_errors=True)
            t1, m1 = timed(["skopeo", "--insecure-policy", "copy", "-q", "--src-tls-verify=false",
                            f"docker://{a.image}", f"oci:{oci}:latest"])
            t2, m2 = timed(["umoci", "unpack", "--image", f"{oci}:latest", bundle])
            if i:
                results["skopeo+umoci"].append(t1 + t2)
                rss["skopeo+umoci"].append(max(m1, m2))
    finally:
        # skiff's snapshots may hold overlay whiteout devices; plain rm works on them.
        shutil.rmtree(work, ignore_errors=True)
    out = {}
    for k, v in results.items():
        out[k] = {
            "median_ms": round(statistics.median(v) * 1000, 1),
            "min_ms": round(min(v) * 1000, 1),
            "max_ms": round(max(v) * 1000, 1),
            "peak_rss_kib": max(rss[k]),
        }
    ratio = out["skiff"]["median_ms"] / out["skopeo+umoci"]["median_ms"]
    print(f"image: {a.image}, runs: {a.runs} (interleaved, after 1 warm-up)")
    print(f"{'tool':<14} {'median ms':>10} {'min-max ms':>16} {'peak RSS':>10}")
    for k, v in out.items():
        print(f"{k:<14} {v['median_ms']:>10} {v['min_ms']:>7}-{v['max_ms']:<8} {v['peak_rss_kib'] / 1024:>8.1f}MiB")
    print(f"ratio skiff/(skopeo+umoci): {ratio:.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"image": a.image, "runs": a.runs, "results": out, "ratio": ratio}, f, indent=2)


if __name__ == "__main__":
    main()
