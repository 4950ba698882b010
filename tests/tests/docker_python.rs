//! The Python Docker SDK (`docker` from PyPI) against skiffd: `python/docker_sdk_check.py`
//! pulls, runs, execs (plain, demultiplexed, TTY), reads stats, copies archives both
//! ways, updates limits, reads df, history and events, and expects Docker's errors. The
//! SDK comes from the system's Python, or is installed with pip into a venv in the
//! test's directory.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{SkiffCli, Skiffd};
use skiff_tests::{fixtures, Registry};

/// A Python interpreter that can `import docker`.
fn python_with_sdk(dir: &Path) -> PathBuf {
    let system = PathBuf::from("python3");
    let has_sdk = |py: &Path| {
        Command::new(py)
            .args(["-c", "import docker"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if has_sdk(&system) {
        return system;
    }
    let venv = dir.join("venv");
    let ok = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "python3 -m venv failed (install python3-venv)");
    let py = venv.join("bin/python");
    let ok = Command::new(&py)
        .args(["-m", "pip", "install", "-q", "docker"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok && has_sdk(&py), "pip install docker failed");
    py
}

#[test]
fn python_sdk_drives_the_api() {
    let reg = Registry::start().unwrap();
    fixtures::push_busybox_as(&reg, "library/alpine", "latest").unwrap();
    let s = SkiffCli::new(Some(&reg));
    let dir = s.dir.path();
    let skiffd = Skiffd::start(&s, Some(&reg));
    let socket = skiffd.socket.clone();
    let py = python_with_sdk(dir);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/docker_sdk_check.py");
    let out = Command::new(&py)
        .arg(&script)
        .arg(&socket)
        .env("HOME", s.home())
        .output()
        .expect("run python");
    let log = skiffd.log_text();
    drop(skiffd);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.trim_end().ends_with("OK"),
        "python SDK check failed ({:?}):\n{text}\n{}\nskiffd log:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr),
        log
    );
}
