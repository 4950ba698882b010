#!/usr/bin/env python3
"""Networking costs, side by side and interleaved:

1. Added start latency of bridge networking: `run --rm IMAGE true` with the default
   bridge minus the same with `--network none`, for skiff (daemonless) and podman
   (netavark), medians of --runs each.
2. Throughput of a published port: a 127.0.0.1 client streams --mib MiB into a busybox
   `nc` sink inside a container, through skiff's `-p` (kernel DNAT), through Debian's
   docker-proxy (the userland proxy dockerd starts per port, pointed at the same
   container), through podman's `-p`, and straight to the container's address.

Needs: a registry on 127.0.0.1 serving library/alpine (contrib/fixture-registry.sh
start), iproute2 and iptables; podman and docker-proxy are used when present. Only
127.0.0.1 and the benchmark's own containers are contacted. Run as root:

  contrib/bench/net_bench.py --skiff target/release/skiff --registry 127.0.0.1:5000 [--runs 20] [--mib 512] [--json f]
"""
import argparse
import json
import os
import shutil
import socket
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


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def stream(addr, mib):
    """Sends `mib` MiB to addr and waits for the sink to close; returns MiB/s."""
    chunk = b"\0" * (1 << 20)
    deadline = time.time() + 20
    while True:
        try:
            s = socket.create_connection(addr, timeout=5)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)
    t0 = time.perf_counter()
    for _ in range(mib):
        s.sendall(chunk)
    s.shutdown(socket.SHUT_WR)
    s.settimeout(60)
    while s.recv(65536):
        pass
    dt = time.perf_counter() - t0
    s.close()
    return mib / dt


SINK = "while true; do nc -l -p 5001 > /dev/null; done"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--skiff", required=True)
    ap.add_argument("--registry", default="127.0.0.1:5000")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--mib", type=int, default=512)
    ap.add_argument("--transfers", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="skiff-netbench-", dir="/var/tmp")
    skiff = [os.path.abspath(a.skiff), "--config", "/dev/null", "--data-root", os.path.join(work, "root"),
             "--run-root", os.path.join(work, "run"), "--registry-mirror", f"http://{a.registry}",
             "--bridge-name", "sknetbench0", "--bridge-subnet", "10.243.0.0/24", "--network-pool", "10.244.0.0/24"]
    sh(skiff + ["pull", "-q", "alpine"])
    image = f"{a.registry}/library/alpine:latest"
    engines = {
        "skiff none": skiff + ["run", "--rm", "--network", "none", "alpine", "true"],
        "skiff bridge": skiff + ["run", "--rm", "alpine", "true"],
    }
    pod = None
    if shutil.which("podman"):
        # Hard rlimits cannot be raised here, and crun 1.8 refuses hybrid cgroups: runc,
        # no default ulimits (see shared/notes/host.md).
        conf = os.path.join(work, "containers.conf")
        with open(conf, "w") as f:
            f.write('[containers]\ndefault_ulimits = []\n[engine]\nruntime = "runc"\n')
        os.environ["CONTAINERS_CONF"] = conf
        pod = ["podman", "--root", os.path.join(work, "podman"), "--runroot", os.path.join(work, "podman-run"),
               "--cgroup-manager", "cgroupfs", "--events-backend", "none"]
        sh(pod + ["pull", "-q", "--tls-verify=false", image])
        engines["podman none"] = pod + ["run", "--rm", "--network", "none", image, "true"]
        engines["podman bridge"] = pod + ["run", "--rm", "--network", "bridge", image, "true"]
    times = {n: [] for n in engines}
    for i in range(a.runs + 1):
        for n, cmd in engines.items():
            dt = timed(cmd)
            if i:
                times[n].append(dt)
    start = {n: round(statistics.median(v) * 1000, 1) for n, v in times.items()}
    added = {"skiff": round(start["skiff bridge"] - start["skiff none"], 1)}
    if pod:
        added["podman"] = round(start["podman bridge"] - start["podman none"], 1)

    # Throughput through published ports.
    paths = {}
    p_skiff = free_port()
    cid = sh(skiff + ["run", "-d", "-p", f"127.0.0.1:{p_skiff}:5001", "alpine", "sh", "-c", SINK]).stdout.strip()
    info = json.loads(sh(skiff + ["inspect", cid]).stdout)[0]
    ip = info["NetworkSettings"]["IPAddress"]
    paths["skiff -p (DNAT)"] = ("127.0.0.1", p_skiff)
    paths["container address (no NAT)"] = (ip, 5001)
    proxy = None
    if shutil.which("docker-proxy"):
        p_proxy = free_port()
        # dockerd hands docker-proxy a pipe as fd 3 to read "0\n" (ready) from; without
        # it the proxy stops at once.
        r, w = os.pipe()
        proxy = subprocess.Popen(["docker-proxy", "-proto", "tcp", "-host-ip", "127.0.0.1", "-host-port", str(p_proxy),
                                  "-container-ip", ip, "-container-port", "5001"],
                                 pass_fds=(3,), preexec_fn=lambda: os.dup2(w, 3), stderr=subprocess.DEVNULL)
        os.close(w)
        os.read(r, 16)
        os.close(r)
        paths["docker-proxy"] = ("127.0.0.1", p_proxy)
    pcid = None
    if pod:
        p_pod = free_port()
        pcid = sh(pod + ["run", "-d", "-p", f"127.0.0.1:{p_pod}:5001", image, "sh", "-c", SINK]).stdout.strip()
        paths["podman -p"] = ("127.0.0.1", p_pod)
    rates = {n: [] for n in paths}
    try:
        for _ in range(a.transfers):
            for n, addr in paths.items():
                # The sink restarts `nc -l` between connections; a proxy that accepted
                # during that gap resets: try again.
                for attempt in range(5):
                    try:
                        time.sleep(0.3)
                        rates[n].append(stream(addr, a.mib))
                        break
                    except (ConnectionResetError, BrokenPipeError) as e:
                        if attempt == 4:
                            raise SystemExit(f"{n} ({addr[0]}:{addr[1]}): {e}")
    finally:
        if proxy:
            proxy.kill()
            proxy.wait()
        sh(skiff + ["rm", "-f", cid])
        if pcid:
            sh(pod + ["rm", "-f", pcid])
    throughput = {n: round(statistics.median(v)) for n, v in rates.items()}

    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    print(f"start latency, run --rm true, {a.runs} runs each, interleaved (load average {load})")
    for n, ms in start.items():
        print(f"  {n:<16} median {ms:>7} ms")
    for n, ms in added.items():
        print(f"  added by bridge networking, {n}: {ms} ms")
    print(f"published port throughput, {a.mib} MiB from 127.0.0.1 into a busybox nc sink, median of {a.transfers}")
    for n, r in throughput.items():
        print(f"  {n:<28} {r:>6} MiB/s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runs": a.runs, "start_median_ms": start, "bridge_added_ms": added,
                       "throughput_mib_s": throughput, "mib": a.mib, "loadavg": load}, f, indent=2)
    # The benchmark's default bridge and its rules.
    subprocess.run(["ip", "link", "del", "sknetbench0"], capture_output=True)
    for table, chain, rule in [("nat", "PREROUTING", ["-m", "addrtype", "--dst-type", "LOCAL"]),
                               ("nat", "OUTPUT", ["-m", "addrtype", "--dst-type", "LOCAL"])]:
        subprocess.run(["iptables", "-w", "-t", table, "-D", chain] + rule +
                       ["-m", "comment", "--comment", "skiff:sknetbench0", "-j", "SKIFF-sknetbench0"], capture_output=True)
    for rule in [["-s", "10.243.0.0/24", "!", "-o", "sknetbench0"], ["-s", "127.0.0.0/8", "-o", "sknetbench0"]]:
        subprocess.run(["iptables", "-w", "-t", "nat", "-D", "POSTROUTING"] + rule +
                       ["-m", "comment", "--comment", "skiff:sknetbench0", "-j", "MASQUERADE"], capture_output=True)
    for d in ["-i", "-o"]:
        subprocess.run(["iptables", "-w", "-D", "FORWARD", d, "sknetbench0", "-m", "comment", "--comment",
                        "skiff:sknetbench0", "-j", "ACCEPT"], capture_output=True)
    subprocess.run(["iptables", "-w", "-t", "nat", "-X", "SKIFF-sknetbench0"], capture_output=True)
    subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
