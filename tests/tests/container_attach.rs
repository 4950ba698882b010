//! Terminals, attach and init, daemonless: `run -t` sees the caller's terminal size from
//! its first instruction, `exec -t`, `attach` with docker's detach keys and a second
//! attach to the same stdin, signals passed on to the container, and `--init` as PID 1.

mod common;

use std::time::Duration;

use common::SkiffCli;
use skiff_tests::{fixtures, Registry};

fn setup() -> (Registry, SkiffCli) {
    let reg = Registry::start().unwrap();
    fixtures::push_busybox_as(&reg, "library/alpine", "latest").unwrap();
    let s = SkiffCli::new(Some(&reg));
    s.ok(&["pull", "-q", "alpine"]);
    (reg, s)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace('\r', "")
}

#[test]
fn run_t_and_exec_t_get_a_terminal_of_the_callers_size() {
    let (_reg, s) = setup();
    let o = s.in_pty(
        &[
            "run",
            "--rm",
            "-t",
            "alpine",
            "sh",
            "-c",
            "tty; stty size; exit 3",
        ],
        (91, 31),
        &[],
    );
    let t = text(&o.stdout);
    assert_eq!(o.status.code(), Some(3), "{t}");
    assert!(t.contains("/dev/pts/0"), "{t}");
    assert!(
        t.contains("31 91"),
        "the size is set before the process runs: {t}"
    );

    s.ok(&["run", "-d", "--name", "box", "alpine", "sleep", "60"]);
    let o = s.in_pty(
        &["exec", "-t", "box", "sh", "-c", "tty; stty size; exit 5"],
        (100, 40),
        &[],
    );
    let t = text(&o.stdout);
    assert_eq!(o.status.code(), Some(5), "{t}");
    assert!(t.contains("/dev/pts/"), "{t}");
    assert!(t.contains("40 100"), "{t}");
    // exec -it: input typed on the terminal reaches the process.
    let o = s.in_pty(
        &["exec", "-it", "box", "sh"],
        (80, 24),
        &[
            (Duration::from_millis(500), b"echo typed-$((6*7))\n"),
            (Duration::from_millis(300), b"exit 6\n"),
        ],
    );
    assert_eq!(o.status.code(), Some(6));
    assert!(text(&o.stdout).contains("typed-42"));
}

#[test]
fn attach_detaches_with_ctrl_p_ctrl_q_and_attaches_again() {
    let (_reg, s) = setup();
    s.ok(&["run", "-dit", "--name", "shell", "alpine", "sh"]);
    let o = s.in_pty(
        &["attach", "shell"],
        (80, 24),
        &[
            (Duration::from_millis(700), b"echo first-$((2*3))\n"),
            (Duration::from_millis(500), b"\x10\x11"),
        ],
    );
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).contains("first-6"), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("read escape sequence"));
    let ps = s.ok(&["ps", "--filter", "name=shell", "-q"]);
    assert!(!ps.trim().is_empty(), "still running after detaching");

    // The container's stdin survived the first client: a second attach drives it.
    let o = s.in_pty(
        &["attach", "shell"],
        (80, 24),
        &[
            (Duration::from_millis(700), b"echo second-$((3*3))\n"),
            (Duration::from_millis(300), b"exit 4\n"),
        ],
    );
    let t = text(&o.stdout);
    assert_eq!(o.status.code(), Some(4), "{t}");
    assert!(t.contains("second-9"), "{t}");
    assert!(!t.contains("first-6"), "attach shows only new output: {t}");

    let stopped = s.run(&["attach", "shell"]);
    assert_eq!(stopped.status.code(), Some(125));
    assert!(String::from_utf8_lossy(&stopped.stderr).contains("start it first"));
}

#[test]
fn attach_passes_signals_on_and_returns_the_exit_code() {
    let (_reg, s) = setup();
    s.ok(&[
        "run",
        "-d",
        "--name",
        "trapper",
        "alpine",
        "sh",
        "-c",
        "trap 'echo got-term; exit 9' TERM; echo ready; while true; do sleep 0.1; done",
    ]);
    let mut child = s
        .cmd(&["attach", "trapper"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    // SAFETY: a signal to the child this test started.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(9));
    assert_eq!(text(&o.stdout), "got-term\n", "only output after attaching");
}

#[test]
fn init_runs_as_pid_1_and_reaps() {
    let (_reg, s) = setup();
    let o = s.ok(&[
        "run",
        "--rm",
        "--init",
        "alpine",
        "sh",
        "-c",
        "tr '\\0' ' ' < /proc/1/cmdline; echo; echo self=$$",
    ]);
    assert!(o.starts_with("/sbin/skiff-init -- sh -c"), "{o}");
    assert!(o.contains("self=2"), "{o}");
    // The user's command is still checked: a missing one is 127, not the init's error.
    let nf = s.run(&["run", "--rm", "--init", "alpine", "no-such-command"]);
    assert_eq!(nf.status.code(), Some(127));
}

#[test]
fn exec_privileged_gets_every_capability_the_host_has() {
    let (_reg, s) = setup();
    s.ok(&["run", "-d", "--name", "caps", "alpine", "sleep", "60"]);
    let cap_eff = |args: &[&str]| -> String {
        s.ok(args)
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    let plain = cap_eff(&["exec", "caps", "grep", "CapEff", "/proc/self/status"]);
    assert_eq!(plain, "00000000a80425fb", "Docker's default set");
    let host_bounding = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:").map(|v| v.trim().to_string()))
        .unwrap();
    let privileged = cap_eff(&[
        "exec",
        "--privileged",
        "caps",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert_eq!(privileged, host_bounding);
}
