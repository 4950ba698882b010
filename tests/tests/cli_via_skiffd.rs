//! `skiff` as a client of a running skiffd: with skiffd serving `<run-root>/docker.sock`
//! the CLI's commands go through its Docker API (skiffd's log shows each request), the
//! daemon owns `--rm` and restart policies, terminals and attach work over the hijacked
//! connection, commands the API does not carry run on skiffd's store, `--daemonless`
//! bypasses it, and a dead skiffd's socket is not mistaken for a live one.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{SkiffCli, Skiffd};
use skiff_tests::{fixtures, Registry};

/// skiffd on the CLI instance's own run root, so the CLI finds its socket.
fn start_skiffd(s: &SkiffCli, reg: &Registry) -> Skiffd {
    Skiffd::start_on(s, Some(reg), s.run_root.join("docker.sock"), &[])
}

/// How many requests skiffd served whose path ends with `suffix`.
fn requests(d: &Skiffd, method: &str, suffix: &str) -> usize {
    d.log_text()
        .lines()
        .filter(|l| {
            // One "docker api method=..." line per request (errors add another line).
            l.contains(&format!("docker api method={method} "))
                && l.split_whitespace().any(|w| {
                    w.strip_prefix("path=")
                        .is_some_and(|p| p.split('?').next().unwrap_or(p).ends_with(suffix))
                })
        })
        .count()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).replace('\r', "")
}

/// A fresh instance whose registry is known only to skiffd (the CLI gets no mirror), so
/// a pull that works proves the request went through skiffd.
fn setup() -> (Registry, SkiffCli, Skiffd) {
    let reg = Registry::start().unwrap();
    fixtures::push_busybox_as(&reg, "library/alpine", "latest").unwrap();
    let s = SkiffCli::new(None);
    let d = start_skiffd(&s, &reg);
    (reg, s, d)
}

#[test]
fn run_and_container_verbs_go_through_skiffd() {
    let (_reg, s, d) = setup();
    let o = s.run(&[
        "run",
        "--rm",
        "alpine",
        "sh",
        "-c",
        "echo out; echo err >&2; exit 7",
    ]);
    assert_eq!(o.status.code(), Some(7), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), "out\n");
    let err = text(&o.stderr);
    assert!(
        err.contains("Unable to find image 'alpine:latest' locally"),
        "{err}"
    );
    assert!(err.contains("Pull complete"), "{err}");
    assert!(err.ends_with("err\n"), "{err}");
    // As docker: a create answered "No such image", the pull, the create again.
    assert_eq!(
        requests(&d, "POST", "/containers/create"),
        2,
        "{}",
        d.log_text()
    );
    assert_eq!(requests(&d, "POST", "/images/create"), 1);
    assert_eq!(requests(&d, "POST", "/attach"), 1);
    assert_eq!(requests(&d, "POST", "/start"), 1);
    // --rm is the daemon's job (AutoRemove): nothing is left.
    assert_eq!(s.ok(&["ps", "-aq"]), "");

    let nf = s.run(&["run", "--rm", "alpine", "no-such-command"]);
    assert_eq!(nf.status.code(), Some(127));
    assert!(text(&nf.stderr).starts_with("Error response from daemon:"));

    let id = s.ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "-e",
        "K=v",
        "alpine",
        "sh",
        "-c",
        "echo started $K; sleep 60",
    ]);
    assert_eq!(id.trim().len(), 64);
    let ps = s.ok(&["ps"]);
    assert!(ps.contains("web") && ps.contains("Up "), "{ps}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.ok(&["logs", "web"]).contains("started v") {
        assert!(Instant::now() < deadline, "no log line");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(s.ok(&["top", "web"]).contains("sleep 60"));
    s.ok(&["pause", "web"]);
    assert!(s.ok(&["ps"]).contains("(Paused)"));
    s.ok(&["unpause", "web"]);
    s.ok(&["rename", "web", "web2"]);
    let inspect: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "web2"])).unwrap();
    assert_eq!(inspect[0]["Name"], "/web2");
    assert_eq!(s.ok(&["stop", "-t", "1", "web2"]), "web2\n");
    assert_eq!(s.ok(&["wait", "web2"]), "137\n");
    assert_eq!(s.ok(&["rm", "web2"]), "web2\n");
    assert!(requests(&d, "POST", "/stop") >= 1 && requests(&d, "DELETE", "/web2") == 1);
    let gone = s.run(&["rm", "web2"]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(
        text(&gone.stderr).contains("No such container"),
        "{}",
        text(&gone.stderr)
    );

    // The daemon applies restart policies to what the CLI started.
    s.ok(&[
        "run",
        "-d",
        "--name",
        "flaky",
        "--restart",
        "on-failure:2",
        "alpine",
        "sh",
        "-c",
        "exit 3",
    ]);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", "flaky"])).unwrap();
        if v[0]["RestartCount"] == 2 && v[0]["State"]["Status"] == "exited" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "restarts: {}",
            v[0]["RestartCount"]
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    s.ok(&["rm", "flaky"]);

    // Images through the API.
    assert!(s.ok(&["images"]).contains("alpine"));
    s.ok(&["tag", "alpine", "mine:v1"]);
    assert!(s.ok(&["images"]).contains("mine"));
    assert!(s.ok(&["rmi", "mine:v1"]).contains("Untagged: mine:v1"));
    assert!(requests(&d, "GET", "/images/json") >= 2);
}

#[test]
fn terminals_attach_and_stdin_through_skiffd() {
    let (_reg, s, d) = setup();
    s.ok(&["pull", "-q", "alpine"]);
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
    assert!(t.contains("31 91"), "{t}");

    let mut child = s
        .cmd(&["run", "--rm", "-i", "alpine", "tr", "a-z", "A-Z"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"piped\n").unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(text(&o.stdout), "PIPED\n");

    s.ok(&["run", "-dit", "--name", "shell", "alpine", "sh"]);
    let o = s.in_pty(
        &["attach", "shell"],
        (80, 24),
        &[
            (Duration::from_millis(700), b"echo first-$((2*3))\n"),
            (Duration::from_millis(500), b"\x10\x11"),
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("first-6"));
    let o = s.in_pty(
        &["attach", "shell"],
        (80, 24),
        &[
            (Duration::from_millis(700), b"echo second-$((3*3))\n"),
            (Duration::from_millis(300), b"exit 4\n"),
        ],
    );
    assert_eq!(o.status.code(), Some(4), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("second-9"));
    assert!(requests(&d, "POST", "/attach") >= 3);
}

#[test]
fn fallbacks_daemonless_and_a_dead_daemon() {
    let (_reg, s, d) = setup();
    s.ok(&["pull", "-q", "alpine"]);
    // `save` has no API form here: it runs on skiffd's store (the CLI has no mirror and
    // pulled nothing itself, so the image can only come from there).
    let tar = s.dir.path().join("alpine.tar");
    s.ok(&["save", "-o", tar.to_str().unwrap(), "alpine"]);
    assert!(std::fs::metadata(&tar).unwrap().len() > 100_000);

    // --daemonless works on the CLI's own data root and never asks skiffd.
    let before = requests(&d, "GET", "/containers/json");
    s.ok(&["--daemonless", "ps", "-a"]);
    assert_eq!(requests(&d, "GET", "/containers/json"), before);

    // An explicit socket that nobody serves is an error, not a silent fallback.
    let bad = s.run(&["-H", "unix:///nonexistent/skiff.sock", "ps"]);
    assert_eq!(bad.status.code(), Some(125));
    assert!(
        text(&bad.stderr).contains("cannot talk to skiffd"),
        "{}",
        text(&bad.stderr)
    );

    // A dead skiffd's socket file stays behind (/run persists here): the CLI notices and
    // runs daemonless on the same store.
    drop(d);
    assert!(s.run_root.join("docker.sock").exists());
    let o = s.ok(&["run", "--rm", "alpine", "echo", "daemonless-again"]);
    assert_eq!(o, "daemonless-again\n");
}
