//! cgroup v2 (unified) hosts: limits written to the container's cgroup2 files and read
//! back inside the container, and `stats` reading them. Hosts in v1 or hybrid mode
//! (like the one this project is developed on: v1 controllers, an empty cgroup2 at
//! /sys/fs/cgroup/unified) cannot give a v2 cgroup any controller, so the test reports
//! itself skipped there, with the reason; the v1 path is covered by `container_run`.

mod common;

use common::SkiffCli;
use skiff_tests::{fixtures, Registry};

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Why this host cannot run the v2 test, if it cannot.
fn not_unified() -> Option<String> {
    // SAFETY: statfs fills the struct for a NUL-terminated path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statfs(c"/sys/fs/cgroup".as_ptr(), &mut st) };
    if rc != 0 {
        return Some("statfs(/sys/fs/cgroup) failed".into());
    }
    if st.f_type as i64 != CGROUP2_SUPER_MAGIC {
        return Some(format!(
            "/sys/fs/cgroup is not cgroup2 (f_type {:#x}): this host runs cgroup v1 or hybrid",
            st.f_type
        ));
    }
    let controllers =
        std::fs::read_to_string("/sys/fs/cgroup/cgroup.controllers").unwrap_or_default();
    for c in ["memory", "pids", "cpu"] {
        if !controllers.split_whitespace().any(|x| x == c) {
            return Some(format!("the unified hierarchy has no {c} controller"));
        }
    }
    None
}

#[test]
fn limits_and_stats_on_cgroup_v2() {
    if let Some(why) = not_unified() {
        eprintln!("skipped: limits_and_stats_on_cgroup_v2: {why}");
        return;
    }
    let reg = Registry::start().unwrap();
    fixtures::push_busybox_as(&reg, "library/alpine", "latest").unwrap();
    let s = SkiffCli::new(Some(&reg));
    let o = s.ok(&[
        "run",
        "--rm",
        "-m",
        "64m",
        "--pids-limit",
        "50",
        "--cpus",
        "0.5",
        "alpine",
        "sh",
        "-c",
        "cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max",
    ]);
    assert_eq!(o, "67108864\n50\n50000 100000\n");
    s.ok(&[
        "run", "-d", "--name", "v2", "-m", "32m", "alpine", "sleep", "30",
    ]);
    let stats = s.ok(&["stats", "--no-stream", "v2"]);
    assert!(stats.contains("32MiB"), "{stats}");
}
