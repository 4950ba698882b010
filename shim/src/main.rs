//! `containerd-shim-skiff-v1`: skiff's containerd runtime v2 shim (DESIGN.md, "shim/").
//!
//! One shim process runs one task with youki's libcontainer, owns its stdio (json-file
//! logs), reaps it, and serves the containerd task API over ttrpc.
//!
//! ```text
//! containerd-shim-skiff-v1 -namespace NS -id ID -address ADDR [-publish-binary BIN] [-debug] start
//! containerd-shim-skiff-v1 -namespace NS -id ID -address ADDR delete
//! ```
//! `start` (cwd = bundle) prints the shim's `unix://` address; `delete` (cwd = bundle)
//! cleans up after a dead shim and prints a protobuf `DeleteResponse`. Without an action
//! the binary is the long-running shim itself (started by `start`).

mod address;
mod cleanup;
mod container;
mod error;
mod events;
mod exit;
mod jsonfile;
mod launch;
mod reaper;
mod rootfs;
mod serve;
mod service;
mod stats;
mod stdio;
mod timefmt;
mod trim;

use std::io::Write;

use containerd_shim::protos::protobuf::Message;

/// The runtime name containerd knows this shim by.
const RUNTIME_NAME: &str = "io.containerd.skiff.v1";

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let flags = match containerd_shim::parse(&args) {
        Ok(f) => f,
        Err(e) => fail(&format!("bad arguments: {e}")),
    };
    if flags.version {
        println!(
            "{} {}\nRuntime: {RUNTIME_NAME}",
            env!("CARGO_PKG_NAME"),
            env!("CARGO_PKG_VERSION")
        );
        return;
    }
    if flags.info {
        let info = containerd_shim::protos::types::introspection::RuntimeInfo {
            name: RUNTIME_NAME.to_string(),
            ..Default::default()
        };
        match info.write_to_bytes() {
            Ok(b) => write_stdout(&b),
            Err(e) => fail(&format!("encoding runtime info: {e}")),
        }
        return;
    }
    if flags.action == container::HELPER_ACTION {
        let code = container::helper_main(&flags.id, std::path::Path::new(&flags.bundle));
        std::process::exit(code);
    }
    if flags.namespace.is_empty() {
        fail("-namespace is required");
    }
    match flags.action.as_str() {
        "start" => match launch::run(&flags) {
            Ok(addr) => write_stdout(addr.as_bytes()),
            Err(e) => fail(&format!("start: {e}")),
        },
        "delete" => match cleanup::run(&flags) {
            Ok(resp) => match resp.write_to_bytes() {
                Ok(b) => write_stdout(&b),
                Err(e) => fail(&format!("delete: encoding response: {e}")),
            },
            Err(e) => fail(&format!("delete: {e}")),
        },
        "" => {
            if let Err(e) = serve::run(&flags) {
                fail(&format!("serve: {e}"));
            }
            std::process::exit(0);
        }
        other => fail(&format!("unknown action {other:?}")),
    }
}

fn write_stdout(b: &[u8]) {
    let mut out = std::io::stdout().lock();
    if out.write_all(b).and_then(|()| out.flush()).is_err() {
        std::process::exit(1);
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("{RUNTIME_NAME}: {msg}");
    std::process::exit(1);
}
