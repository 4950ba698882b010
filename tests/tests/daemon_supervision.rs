//! `skiffd` as supervisor: restart policies, and a `kill -9` of skiffd while containers
//! run: they keep running, stay manageable, exits during the outage are recorded, and
//! policies resume when skiffd comes back.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{SkiffCli, Skiffd};
use skiff_tests::{fixtures, Registry};

fn inspect(s: &SkiffCli, name: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["inspect", name])).unwrap();
    v[0].clone()
}

fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn setup() -> (Registry, SkiffCli) {
    let reg = Registry::start().unwrap();
    fixtures::push_busybox_as(&reg, "library/alpine", "latest").unwrap();
    let s = SkiffCli::new(Some(&reg));
    s.ok(&["pull", "-q", "alpine"]);
    (reg, s)
}

#[test]
fn restart_policies() {
    let (_reg, s) = setup();
    let _d = Skiffd::start(&s, None);
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
        "echo run; exit 3",
    ]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "fine",
        "--restart",
        "on-failure",
        "alpine",
        "true",
    ]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "always",
        "--restart",
        "always",
        "alpine",
        "sh",
        "-c",
        "echo up; sleep 0.2",
    ]);
    eventually(
        "on-failure:2 gives up after 2 restarts",
        Duration::from_secs(20),
        || {
            let i = inspect(&s, "flaky");
            i["RestartCount"] == 2 && i["State"]["Status"] == "exited"
        },
    );
    std::thread::sleep(Duration::from_millis(1500));
    let i = inspect(&s, "flaky");
    assert_eq!(i["RestartCount"], 2);
    assert_eq!(i["State"]["ExitCode"], 3);
    assert_eq!(s.ok(&["logs", "flaky"]).matches("run").count(), 3);
    assert_eq!(
        inspect(&s, "fine")["RestartCount"],
        0,
        "exit 0 is not a failure"
    );
    eventually("always restarts", Duration::from_secs(20), || {
        inspect(&s, "always")["RestartCount"].as_u64() >= Some(2)
    });
    // A user stop ends `always` restarts.
    s.ok(&["stop", "-t", "1", "always"]);
    let count = inspect(&s, "always")["RestartCount"].clone();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(inspect(&s, "always")["State"]["Status"], "exited");
    assert_eq!(inspect(&s, "always")["RestartCount"], count);
}

#[test]
fn containers_survive_skiffd_kill_9() {
    let (_reg, s) = setup();
    let d = Skiffd::start(&s, None);
    s.ok(&["run", "-d", "--name", "long", "alpine", "sleep", "300"]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "short",
        "alpine",
        "sh",
        "-c",
        "sleep 1; exit 5",
    ]);
    s.ok(&[
        "run",
        "-d",
        "--name",
        "retry",
        "--restart",
        "on-failure:1",
        "alpine",
        "sh",
        "-c",
        "sleep 1; echo attempt; exit 4",
    ]);
    std::thread::sleep(Duration::from_millis(600));
    d.kill9();
    let pid = inspect(&s, "long")["State"]["Pid"].as_u64().unwrap();
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "container outlives skiffd"
    );
    std::thread::sleep(Duration::from_millis(1500));
    // Exits during the outage are seen (the shim kept the status).
    let short = inspect(&s, "short");
    assert_eq!(short["State"]["Status"], "exited");
    assert_eq!(short["State"]["ExitCode"], 5);
    // Back up: the restart policy of what exited meanwhile resumes.
    let _d2 = Skiffd::start(&s, None);
    eventually(
        "retry restarted after skiffd came back",
        Duration::from_secs(20),
        || s.ok(&["logs", "retry"]).matches("attempt").count() == 2,
    );
    let long = inspect(&s, "long");
    assert_eq!(long["State"]["Status"], "running");
    assert_eq!(long["State"]["Pid"].as_u64(), Some(pid));
    s.ok(&["stop", "-t", "1", "long"]);
    assert_eq!(inspect(&s, "long")["State"]["Status"], "exited");
}
