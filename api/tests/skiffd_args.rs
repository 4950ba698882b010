//! The `skiffd` binary's command line (building this test also makes cargo build the
//! `skiffd` binary that the workspace integration tests start).

use std::process::Command;

#[test]
fn version_and_bad_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_skiffd"))
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("skiffd "));
    let bad = Command::new(env!("CARGO_BIN_EXE_skiffd"))
        .arg("--nope")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown flag --nope"));
}
