"""The Python Docker SDK (docker-py) against skiffd: run by tests/tests/docker_python.rs
with the daemon's socket as the only argument. Prints OK when every check passed."""
import io
import sys
import tarfile
import time

import docker

sock = sys.argv[1]
c = docker.DockerClient(base_url=f"unix://{sock}", version="auto", timeout=120)
assert c.ping()
assert c.version()["ApiVersion"] == "1.47"
t0 = int(time.time()) - 1

img = c.images.pull("alpine", tag="latest")
assert "alpine:latest" in img.tags, img.tags

out = c.containers.run("alpine", ["sh", "-c", "echo hi; echo err >&2"], remove=True, stderr=True)
assert b"hi\n" in out and b"err\n" in out, out
try:
    c.containers.run("alpine", ["sh", "-c", "exit 3"], remove=True)
    raise AssertionError("a failing command raises ContainerError")
except docker.errors.ContainerError as e:
    assert e.exit_status == 3

ctr = c.containers.run("alpine", ["sleep", "60"], detach=True, name="py")
ctr.reload()
assert ctr.status == "running", ctr.status

r = ctr.exec_run(["sh", "-c", "echo out; exit 3"])
assert (r.exit_code, r.output) == (3, b"out\n"), r
r = ctr.exec_run(["sh", "-c", "echo a; echo b >&2"], demux=True)
assert r.output == (b"a\n", b"b\n"), r
r = ctr.exec_run("tty", tty=True)
assert r.output.startswith(b"/dev/pts/"), r
r = ctr.exec_run(["sh", "-c", "echo $X $(pwd)"], environment={"X": "42"}, workdir="/tmp")
assert r.output == b"42 /tmp\n", r

stats = ctr.stats(stream=False)
assert stats["memory_stats"]["usage"] > 0, stats
assert "system_cpu_usage" in stats["precpu_stats"], stats

buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    data = b"snake\n"
    info = tarfile.TarInfo("py.txt")
    info.size = len(data)
    t.addfile(info, io.BytesIO(data))
assert ctr.put_archive("/tmp", buf.getvalue())
bits, stat = ctr.get_archive("/tmp/py.txt")
assert stat["name"] == "py.txt" and stat["size"] == 6, stat
with tarfile.open(fileobj=io.BytesIO(b"".join(bits))) as t:
    assert t.extractfile("py.txt").read() == b"snake\n"

ctr.update(mem_limit="64m")
assert "Images" in c.df()
assert img.history()[0]["Id"].startswith("sha256:")

events = c.events(since=t0, until=int(time.time()) + 1, decode=True, filters={"container": "py"})
actions = [e["Action"] for e in events]
for want in ("create", "start", "exec_die", "update"):
    assert want in actions, (want, actions)

ctr.remove(force=True)
try:
    c.containers.get("py")
    raise AssertionError("removed")
except docker.errors.NotFound:
    pass
try:
    c.api.exec_create("nosuch", "true")
    raise AssertionError("no such container")
except docker.errors.NotFound:
    pass
print("OK")
