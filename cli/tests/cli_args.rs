//! Checks of the `skiff` binary that need no registry: help, version, argument errors
//! and Docker's exit status 125 for engine errors. (Building this test also makes cargo
//! build the `skiff` binary that the workspace integration tests in `tests/` run.)

use std::process::Command;

fn skiff(args: &[&str], data_root: &std::path::Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_skiff"))
        .args([
            "--data-root",
            data_root.to_str().unwrap_or_default(),
            "--config",
            "/dev/null",
        ])
        .args(args)
        .output()
        .expect("run skiff")
}

#[test]
fn version_and_help() {
    let dir = tempfile::tempdir().unwrap();
    let out = skiff(&["--version"], dir.path());
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("skiff "));
    let help = skiff(&["--help"], dir.path());
    let text = String::from_utf8_lossy(&help.stdout);
    for cmd in ["pull", "images", "rmi", "save", "load", "login"] {
        assert!(text.contains(cmd), "help lacks {cmd}: {text}");
    }
}

#[test]
fn bad_reference_is_exit_125_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let out = skiff(&["pull", "UPPER/Case"], dir.path());
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid reference format"), "{err}");
}

#[test]
fn unknown_image_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let out = skiff(&["image", "inspect", "nosuchimage"], dir.path());
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("No such image: nosuchimage"));
    let out = skiff(&["images"], dir.path());
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout)
        .starts_with("REPOSITORY   TAG   IMAGE ID   CREATED   SIZE"));
}
