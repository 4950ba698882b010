//! `skiff run` end to end, daemonless, through the shim and libcontainer, with images
//! from a real registry: output, exit codes, options observed from inside the
//! container, cgroup limits, logs, lifecycle verbs, and cleanup.

mod common;

use std::time::{Duration, Instant};

use common::SkiffCli;
use skiff_tests::{fixtures, Registry};

fn setup() -> (Registry, SkiffCli) {
    let reg = Registry::start().unwrap();
    fixtures::push_busybox_as(&reg, "library/alpine", "latest").unwrap();
    let s = SkiffCli::new(Some(&reg));
    (reg, s)
}

fn out(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn run_echo_hello_pulls_prints_and_cleans_up() {
    let (_reg, s) = setup();
    let o = s.run(&["run", "--rm", "alpine", "echo", "hello"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(out(&o), "hello\n");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("Unable to find image 'alpine:latest' locally"),
        "{err}"
    );
    assert!(err.contains("Pull complete"), "{err}");
    assert_eq!(s.ok(&["ps", "-aq"]), "", "--rm removed the container");
    assert!(s.mounts().is_empty(), "no mount left: {:?}", s.mounts());
    assert_eq!(
        std::fs::read_dir(s.run_root.join("containers"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    let cg = std::path::Path::new("/sys/fs/cgroup/memory/skiff");
    if cg.exists() {
        // Other tests' containers may run meanwhile; none of ours (all removed) is left.
        let left: Vec<_> = std::fs::read_dir(cg)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        for id in s.ok(&["ps", "-aq", "--no-trunc"]).lines() {
            assert!(!left.iter().any(|l| l == id));
        }
    }
}

#[test]
fn exit_codes_follow_docker() {
    let (_reg, s) = setup();
    s.ok(&["pull", "-q", "alpine"]);
    let code = |args: &[&str]| s.run(args).status.code();
    assert_eq!(
        code(&["run", "--rm", "alpine", "sh", "-c", "exit 7"]),
        Some(7)
    );
    assert_eq!(code(&["run", "--rm", "alpine", "true"]), Some(0));
    assert_eq!(code(&["run", "--rm", "alpine", "false"]), Some(1));
    let nf = s.run(&["run", "--rm", "alpine", "no-such-command"]);
    assert_eq!(nf.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&nf.stderr).contains("executable file not found in $PATH"));
    assert_eq!(code(&["run", "--rm", "alpine", "/etc/passwd"]), Some(126));
    assert_eq!(code(&["run", "--rm", "no/such-image"]), Some(125));
    assert_eq!(
        code(&["run", "--rm", "-m", "garbage", "alpine", "true"]),
        Some(125)
    );
    assert_eq!(
        code(&[
            "run",
            "--rm",
            "alpine",
            "sh",
            "-c",
            "sleep 5 & kill -9 $!; wait $!"
        ]),
        Some(137)
    );
    assert_eq!(s.ok(&["ps", "-aq"]), "");
    assert!(s.mounts().is_empty());
}

#[test]
fn options_are_visible_inside_the_container() {
    let (_reg, s) = setup();
    s.ok(&["pull", "-q", "alpine"]);
    let host_dir = s.dir.path().join("shared");
    std::fs::create_dir_all(&host_dir).unwrap();
    // The container runs as uid 1000 and writes here.
    std::fs::set_permissions(
        &host_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    std::fs::write(host_dir.join("in.txt"), "from host\n").unwrap();
    let env_file = s.dir.path().join("env");
    std::fs::write(&env_file, "# comment\nFROM_FILE=yes\n").unwrap();
    let vol = format!("{}:/data", host_dir.display());
    let ro = format!("{}:/ro:ro", host_dir.display());
    let o = s.ok(&[
        "run", "--rm", "-e", "FOO=bar", "--env-file", env_file.to_str().unwrap(), "-w", "/tmp", "-u", "app",
        "--hostname", "box1", "-v", &vol, "-v", &ro, "--tmpfs", "/scratch", "alpine", "sh", "-c",
        "echo $FOO $FROM_FILE; pwd; id -u; id -g; hostname; cat /data/in.txt; echo out > /data/out.txt; \
         touch /ro/x 2>/dev/null || echo ro-denied; grep -c scratch /proc/mounts",
    ]);
    let lines: Vec<&str> = o.lines().collect();
    assert_eq!(
        lines,
        vec![
            "bar yes",
            "/tmp",
            "1000",
            "1000",
            "box1",
            "from host",
            "ro-denied",
            "1"
        ],
        "{o}"
    );
    assert_eq!(
        std::fs::read_to_string(host_dir.join("out.txt")).unwrap(),
        "out\n"
    );

    let ro_root = s.run(&["run", "--rm", "--read-only", "alpine", "touch", "/x"]);
    assert_ne!(ro_root.status.code(), Some(0));
    let ep = s.ok(&[
        "run",
        "--rm",
        "--entrypoint",
        "echo",
        "alpine",
        "via",
        "entrypoint",
    ]);
    assert_eq!(ep, "via entrypoint\n");
    let uid = s.ok(&[
        "run",
        "--rm",
        "-u",
        "1234:5678",
        "alpine",
        "sh",
        "-c",
        "id -u; id -g",
    ]);
    assert_eq!(uid, "1234\n5678\n");
}

#[test]
fn security_defaults_and_privileged() {
    let (_reg, s) = setup();
    s.ok(&["pull", "-q", "alpine"]);
    let o = s.ok(&[
        "run",
        "--rm",
        "alpine",
        "sh",
        "-c",
        "ls /dev | sort | tr '\\n' ' '; grep CapEff /proc/self/status",
    ]);
    for dev in ["null", "zero", "random", "urandom", "tty", "pts", "shm"] {
        assert!(
            o.split_whitespace().any(|d| d == dev),
            "/dev lacks {dev}: {o}"
        );
    }
    assert!(
        !o.contains(" sda") && !o.contains(" vda"),
        "no host disks: {o}"
    );
    assert!(
        o.contains("CapEff:\t00000000a80425fb"),
        "Docker's default capability set: {o}"
    );
    // Every container runs under the default seccomp filter: the first with a profile has
    // it compiled (and the engine keeps the program), the next ones load the kept program.
    for _ in 0..2 {
        let status = s.ok(&[
            "run",
            "--rm",
            "alpine",
            "grep",
            "Seccomp",
            "/proc/self/status",
        ]);
        assert!(status.contains("Seccomp:\t2"), "{status}");
        assert!(status.contains("Seccomp_filters:\t1"), "{status}");
    }
    let kept: Vec<_> = std::fs::read_dir(s.run_root.join("seccomp"))
        .expect("kept seccomp programs")
        .flatten()
        .collect();
    assert_eq!(
        kept.len(),
        1,
        "one program for the default profile: {kept:?}"
    );
    let unconfined = s.ok(&[
        "run",
        "--rm",
        "--security-opt",
        "seccomp=unconfined",
        "alpine",
        "grep",
        "Seccomp:",
        "/proc/self/status",
    ]);
    assert!(unconfined.contains("Seccomp:\t0"), "{unconfined}");
    // A kept program that does not match its profile (here: garbage) is never loaded:
    // the shim compiles the profile again.
    std::fs::write(
        kept[0].path(),
        b"skiff-seccomp-bpf v1 0000\n\0\0\0\0\0\0\0\0",
    )
    .unwrap();
    let status = s.ok(&[
        "run",
        "--rm",
        "alpine",
        "grep",
        "Seccomp:",
        "/proc/self/status",
    ]);
    assert!(status.contains("Seccomp:\t2"), "{status}");
    let replaced = std::fs::read(kept[0].path()).unwrap();
    assert!(
        replaced.len() > 1000,
        "the fresh program replaced the bad one"
    );
    // The default seccomp profile forbids mount and unshare; fork, pipes and shells work.
    let denied = s.run(&["run", "--rm", "alpine", "unshare", "-n", "true"]);
    assert_ne!(denied.status.code(), Some(0));
    assert_eq!(
        s.ok(&[
            "run",
            "--rm",
            "alpine",
            "sh",
            "-c",
            "echo a | cat; (echo sub)"
        ]),
        "a\nsub\n"
    );
    let cap = s.ok(&[
        "run",
        "--rm",
        "--cap-drop",
        "ALL",
        "--cap-add",
        "CHOWN",
        "alpine",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert!(cap.contains("0000000000000001"), "{cap}");
    let nnp = s.ok(&[
        "run",
        "--rm",
        "--security-opt",
        "no-new-privileges",
        "alpine",
        "grep",
        "NoNewPrivs",
        "/proc/self/status",
    ]);
    assert!(nnp.contains('1'), "{nnp}");
    let priv_ = s.ok(&[
        "run",
        "--rm",
        "--privileged",
        "alpine",
        "sh",
        "-c",
        "unshare -n true && echo ok",
    ]);
    assert_eq!(priv_, "ok\n");
    let none = s.ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "alpine",
        "ls",
        "/sys/class/net",
    ]);
    assert_eq!(none, "lo\n", "--network none has only loopback");
    let host = s.ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "alpine",
        "ls",
        "/sys/class/net",
    ]);
    assert!(
        host.lines().count() > 1,
        "host network sees the host's interfaces: {host}"
    );
}

#[test]
fn cgroup_limits_are_applied() {
    let (_reg, s) = setup();
    if !std::path::Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes").exists() {
        eprintln!("skipped: this host has no cgroup v1 memory controller (v2 limits are checked where v2 is mounted)");
        return;
    }
    s.ok(&["pull", "-q", "alpine"]);
    // Inside, each v1 hierarchy shows the container's own cgroup at /sys/fs/cgroup/<controller>.
    let script = "cd /sys/fs/cgroup; cat memory/memory.limit_in_bytes memory/memory.memsw.limit_in_bytes pids/pids.max \
                  cpu/cpu.cfs_quota_us cpu/cpu.shares cpuset/cpuset.cpus";
    let o = s.ok(&[
        "run",
        "--rm",
        "-m",
        "64m",
        "--memory-swap",
        "128m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        "--cpu-shares",
        "512",
        "--cpuset-cpus",
        "0",
        "alpine",
        "sh",
        "-c",
        script,
    ]);
    let v: Vec<&str> = o.lines().collect();
    assert_eq!(
        v,
        vec!["67108864", "134217728", "50", "50000", "512", "0"],
        "{o}"
    );
    // Over the memory limit, the kernel kills the process (137), as with docker.
    let oom = s.run(&[
        "run",
        "--rm",
        "-m",
        "16m",
        "--memory-swap",
        "16m",
        "alpine",
        "sh",
        "-c",
        "dd if=/dev/zero of=/dev/shm/f bs=1M count=64",
    ]);
    assert_eq!(
        oom.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&oom.stderr)
    );
}

#[test]
fn detached_lifecycle_logs_stop_pause_rm() {
    let (_reg, s) = setup();
    s.ok(&["pull", "-q", "alpine"]);
    let id = s.ok(&[
        "run", "-d", "--name", "ticker", "--label", "tier=test", "alpine", "sh", "-c",
        "trap 'echo bye; exit 0' TERM; i=0; while true; do echo tick $i; echo err $i >&2; i=$((i+1)); sleep 0.1; done",
    ]);
    let id = id.trim().to_string();
    assert_eq!(id.len(), 64);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.ok(&["logs", "ticker"]).contains("tick 3") {
        assert!(Instant::now() < deadline, "no output");
        std::thread::sleep(Duration::from_millis(100));
    }
    let ps = s.ok(&["ps"]);
    assert!(ps.contains("ticker") && ps.contains("Up "), "{ps}");
    assert_eq!(
        s.ok(&["ps", "-q", "--filter", "label=tier=test"]).trim(),
        &id[..12]
    );
    assert_eq!(s.ok(&["ps", "-q", "--filter", "name=nomatch"]), "");
    // The last 2 entries of the combined stream: one stdout line, one stderr line.
    let tail = s.run(&["logs", "--tail", "2", "ticker"]);
    assert_eq!(out(&tail).lines().count(), 1, "{}", out(&tail));
    assert_eq!(String::from_utf8_lossy(&tail.stderr).lines().count(), 1);
    let errs = s.run(&["logs", "ticker"]);
    assert!(
        String::from_utf8_lossy(&errs.stderr).contains("err 0"),
        "stderr goes to stderr"
    );
    let ts = s.ok(&["logs", "-t", "--tail", "4", "ticker"]);
    assert!(ts.starts_with("20") && ts.contains("Z tick"), "{ts}");
    assert!(s.ok(&["top", "ticker"]).contains("sleep"));
    // Conflicts: a running container is not removed without -f; names are unique.
    let rm = s.run(&["rm", "ticker"]);
    assert_eq!(rm.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&rm.stderr).contains("cannot remove a running container"));
    let dup = s.run(&["run", "-d", "--name", "ticker", "alpine", "true"]);
    assert_eq!(dup.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&dup.stderr).contains("is already in use"));

    s.ok(&["pause", "ticker"]);
    assert!(s.ok(&["ps"]).contains("(Paused)"));
    let frozen = s.ok(&["logs", "ticker"]).lines().count();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        s.ok(&["logs", "ticker"]).lines().count(),
        frozen,
        "no output while paused"
    );
    s.ok(&["unpause", "ticker"]);
    s.ok(&["stop", "-t", "5", "ticker"]);
    let inspect: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "ticker"])).unwrap();
    assert_eq!(inspect[0]["State"]["Status"], "exited");
    assert_eq!(inspect[0]["State"]["ExitCode"], 0, "the TERM trap ran");
    assert!(s.ok(&["logs", "--tail", "1", "ticker"]).contains("bye"));
    assert!(s.ok(&["ps", "-a"]).contains("Exited (0)"));
    s.ok(&["rename", "ticker", "ticker2"]);
    s.ok(&["start", "ticker2"]);
    assert!(s.ok(&["ps"]).contains("ticker2"));
    s.ok(&["kill", "ticker2"]);
    assert_eq!(s.ok(&["wait", "ticker2"]).trim(), "137");
    s.ok(&["rm", "ticker2"]);
    assert_eq!(s.ok(&["ps", "-aq"]), "");
    assert!(s.mounts().is_empty(), "{:?}", s.mounts());
    assert!(std::fs::read_dir(s.root.join("containers"))
        .unwrap()
        .all(|e| e.unwrap().file_name() == ".lock"));
}

#[test]
fn twenty_containers_in_parallel() {
    let (_reg, s) = setup();
    s.ok(&["pull", "-q", "alpine"]);
    let children: Vec<_> = (0..20)
        .map(|i| {
            s.cmd(&["run", "--rm", "alpine", "sh", "-c", &format!("echo c{i}")])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let o = c.wait_with_output().unwrap();
        assert_eq!(
            o.status.code(),
            Some(0),
            "{i}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert_eq!(out(&o), format!("c{i}\n"));
    }
    assert_eq!(s.ok(&["ps", "-aq"]), "");
    assert!(s.mounts().is_empty());
}

#[test]
fn failed_start_leaks_nothing() {
    let (_reg, s) = setup();
    s.ok(&["pull", "-q", "alpine"]);
    let missing = s.run(&["run", "-d", "-v", "/no/such/dir:/x", "alpine", "true"]);
    assert_eq!(missing.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/no/such/dir"));
    let created = s.ok(&["create", "--name", "c1", "alpine", "no-such-cmd"]);
    assert_eq!(created.trim().len(), 64);
    let start = s.run(&["start", "c1"]);
    assert_eq!(start.status.code(), Some(1));
    assert!(s.mounts().is_empty(), "{:?}", s.mounts());
    assert_eq!(
        std::fs::read_dir(s.run_root.join("containers"))
            .map(|d| d.count())
            .unwrap_or(0),
        0
    );
    s.ok(&["container", "prune", "-f"]);
    assert_eq!(s.ok(&["ps", "-aq"]), "");
}

#[test]
fn stats_reads_the_cgroup() {
    let (_reg, s) = setup();
    s.ok(&["pull", "-q", "alpine"]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "busy",
        "-m",
        "64m",
        "alpine",
        "sh",
        "-c",
        "while true; do :; done",
    ]);
    let o = s.ok(&["stats", "--no-stream", "busy"]);
    let row = o.lines().nth(1).unwrap_or_default().to_string();
    assert!(row.contains("busy") && row.contains("/ 64.00MiB"), "{o}");
    let cpu: f64 = row
        .split_whitespace()
        .nth(2)
        .unwrap()
        .trim_end_matches('%')
        .parse()
        .unwrap();
    assert!(cpu > 1.0, "a busy loop uses CPU: {o}");
    assert_eq!(row.split_whitespace().last(), Some("1"), "one process: {o}");
    s.ok(&["rm", "-f", "busy"]);
}

#[test]
fn cp_in_and_out_stays_inside_the_container_root() {
    let (_reg, s) = setup();
    s.ok(&["pull", "-q", "alpine"]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "files",
        "alpine",
        "sh",
        "-c",
        "ln -s /etc /tmp/abs; ln -s ../../../../../etc /tmp/rel; echo inside > /root/f; sleep 60",
    ]);
    let host = s.dir.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    let h = |p: &str| host.join(p).to_string_lossy().into_owned();
    let eventually_f = Instant::now() + Duration::from_secs(5);
    while s.run(&["cp", "files:/root/f", &h("f")]).status.code() != Some(0) {
        assert!(Instant::now() < eventually_f);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(std::fs::read_to_string(host.join("f")).unwrap(), "inside\n");
    // Symlinks, absolute or relative, resolve inside the container.
    s.ok(&["cp", "files:/tmp/abs/passwd", &h("passwd")]);
    assert!(std::fs::read_to_string(host.join("passwd"))
        .unwrap()
        .contains("app:x:1000"));
    s.ok(&["cp", "files:/tmp/rel/group", &h("group")]);
    assert!(std::fs::read_to_string(host.join("group"))
        .unwrap()
        .starts_with("root:x:0:"));
    let marker = format!("skiff-cp-escape-{}", std::process::id());
    std::fs::write(host.join("in"), "from host\n").unwrap();
    s.ok(&["cp", &h("in"), &format!("files:/tmp/rel/../../../{marker}")]);
    assert!(
        !std::path::Path::new(&format!("/{marker}")).exists(),
        "nothing written outside the container"
    );
    assert_eq!(s.ok(&["run", "--rm", "alpine", "true"]), "");
    s.ok(&["cp", &format!("files:/{marker}"), &h("back")]);
    assert_eq!(
        std::fs::read_to_string(host.join("back")).unwrap(),
        "from host\n"
    );
    // A stopped container's files are reachable too.
    s.ok(&["stop", "-t", "0", "files"]);
    s.ok(&["cp", &h("in"), "files:/root/new"]);
    s.ok(&["cp", "files:/root", &h("rootdir")]);
    assert_eq!(
        std::fs::read_to_string(host.join("rootdir/new")).unwrap(),
        "from host\n"
    );
    assert_eq!(
        std::fs::read_to_string(host.join("rootdir/f")).unwrap(),
        "inside\n"
    );
    let missing = s.run(&["cp", "files:/no/such", &h("x")]);
    assert_eq!(missing.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("Could not find the file /no/such"));
    assert!(s.mounts().is_empty() || s.mounts().iter().all(|m| !m.contains("cp-mount")));
}

#[test]
fn cp_leaves_the_container_as_it_found_it() {
    let (_reg, s) = setup();
    s.ok(&["pull", "-q", "alpine"]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "held",
        "alpine",
        "sh",
        "-c",
        "echo x > /f; sleep 60",
    ]);
    let host = s.dir.path().join("host");
    std::fs::create_dir_all(&host).unwrap();
    let h = |p: &str| host.join(p).to_string_lossy().into_owned();
    let status = || {
        let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "held"])).unwrap();
        format!("{}\n", v[0]["State"]["Status"].as_str().unwrap())
    };
    let eventually_f = Instant::now() + Duration::from_secs(5);
    while s.run(&["cp", "held:/f", &h("f")]).status.code() != Some(0) {
        assert!(Instant::now() < eventually_f);
        std::thread::sleep(Duration::from_millis(50));
    }
    // Frozen for the copy only: running again after it, and after a failed one.
    assert_eq!(status(), "running\n");
    s.ok(&["cp", &h("f"), "held:/g"]);
    assert_eq!(status(), "running\n");
    assert_eq!(
        s.run(&["cp", "held:/no/such", &h("x")]).status.code(),
        Some(125)
    );
    assert_eq!(
        s.run(&["cp", &h("f"), "held:/no/such/x"]).status.code(),
        Some(125)
    );
    assert_eq!(status(), "running\n");
    assert_eq!(s.ok(&["exec", "held", "cat", "/g"]), "x\n");
    // A container the user paused stays paused.
    s.ok(&["pause", "held"]);
    s.ok(&["cp", "held:/g", &h("g")]);
    s.ok(&["cp", &h("f"), "held:/h"]);
    assert_eq!(
        s.run(&["cp", "held:/no/such", &h("x")]).status.code(),
        Some(125)
    );
    assert_eq!(status(), "paused\n");
    s.ok(&["unpause", "held"]);
    assert_eq!(s.ok(&["exec", "held", "cat", "/h"]), "x\n");
    // Copies into and out of a stopped container at once each mount its layers at
    // their own place, one at a time.
    s.ok(&["stop", "-t", "0", "held"]);
    let copies: Vec<_> = (0..4)
        .flat_map(|i| {
            [
                s.cmd(&["cp", &h("f"), &format!("held:/in{i}")]),
                s.cmd(&["cp", "held:/f", &h(&format!("out{i}"))]),
            ]
        })
        .map(|mut c| c.spawn().unwrap())
        .collect();
    for mut c in copies {
        assert!(c.wait().unwrap().success());
    }
    for i in 0..4 {
        s.ok(&["cp", &format!("held:/in{i}"), &h(&format!("back{i}"))]);
        assert_eq!(
            std::fs::read_to_string(host.join(format!("back{i}"))).unwrap(),
            "x\n"
        );
        assert_eq!(
            std::fs::read_to_string(host.join(format!("out{i}"))).unwrap(),
            "x\n"
        );
    }
    assert!(
        s.mounts().iter().all(|m| !m.contains("cp-mount")),
        "{:?}",
        s.mounts()
    );
    s.ok(&["rm", "held"]);
}

#[test]
fn stdin_is_piped_with_i() {
    let (_reg, s) = setup();
    s.ok(&["pull", "-q", "alpine"]);
    let mut child = s
        .cmd(&[
            "run",
            "--rm",
            "-i",
            "alpine",
            "sh",
            "-c",
            "tr a-z A-Z; echo eof-seen",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"hello\nworld\n")
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(out(&o), "HELLO\nWORLD\neof-seen\n");
    // Without -i the container's stdin is empty.
    let mut child = s
        .cmd(&["run", "--rm", "alpine", "sh", "-c", "cat; echo nothing"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"ignored\n").unwrap();
    assert_eq!(out(&child.wait_with_output().unwrap()), "nothing\n");
}

#[test]
fn exec_runs_in_the_container() {
    let (_reg, s) = setup();
    s.ok(&["pull", "-q", "alpine"]);
    s.ok(&[
        "run", "-d", "--name", "host1", "-e", "BASE=1", "alpine", "sleep", "60",
    ]);
    assert_eq!(s.ok(&["exec", "host1", "hostname"]).trim().len(), 12);
    assert_eq!(
        s.run(&["exec", "host1", "sh", "-c", "exit 5"])
            .status
            .code(),
        Some(5)
    );
    let o = s.ok(&[
        "exec",
        "-u",
        "app",
        "-w",
        "/tmp",
        "-e",
        "FOO=bar",
        "host1",
        "sh",
        "-c",
        "id -u; pwd; echo $FOO $BASE",
    ]);
    assert_eq!(o, "1000\n/tmp\nbar 1\n");
    let mut child = s
        .cmd(&["exec", "-i", "host1", "tr", "a-z", "A-Z"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"piped\n").unwrap();
    assert_eq!(out(&child.wait_with_output().unwrap()), "PIPED\n");
    let nf = s.run(&["exec", "host1", "no-such"]);
    assert_eq!(nf.status.code(), Some(127));
    // The exec is in the container's pid namespace: it sees the container's init as 1.
    assert!(s
        .ok(&["exec", "host1", "ps"])
        .lines()
        .any(|l| l.trim_start().starts_with("1 ") && l.contains("sleep")));
    s.ok(&["stop", "-t", "0", "host1"]);
    let stopped = s.run(&["exec", "host1", "true"]);
    assert_eq!(stopped.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&stopped.stderr).contains("is not running"));
}
