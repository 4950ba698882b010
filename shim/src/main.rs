//! `containerd-shim-skiff-v1`: skiff's containerd runtime v2 shim (DESIGN.md, "shim/").
//!
//! One shim process runs one task with youki's libcontainer, owns its stdio (json-file
//! logs), reaps it, and serves the containerd task API over ttrpc.
//!
//! # Command line (containerd's runtime v2 protocol)
//! ```text
//! containerd-shim-skiff-v1 -namespace NS -id ID -address ADDR [-publish-binary BIN] [-debug] start
//! containerd-shim-skiff-v1 -namespace NS -id ID -address ADDR delete
//! ```
//! - `start` (cwd = bundle): launches the long-running shim (new session, stdin/stdout on
//!   /dev/null, stderr appended to `<bundle>/shim.log`), prints its address
//!   (`unix:///...`, no newline) and writes it to `<bundle>/address`. If a shim already
//!   answers on that address, prints it instead. The socket is bound before the address is
//!   printed, so it can be dialled at once.
//! - `delete` (cwd = bundle): after a dead shim, kills what is left of the container,
//!   removes libcontainer's state and the cgroup, unmounts `<bundle>/rootfs`, removes a dead
//!   socket, and prints a protobuf `DeleteResponse` (status from `<bundle>/exit.json`, else
//!   137).
//! - `-v` prints the version; `-info` prints a protobuf `RuntimeInfo`.
//!
//! # Socket location
//! `SKIFF_SHIM_SOCKET_DIR=DIR`: `DIR/<first 16 hex of sha256("NS/ID")>.sock` (must stay
//! under 100 bytes). Unset: containerd's `/run/containerd/s/<sha256(ADDR/NS/ID)>`.
//! The socket is removed when the shim exits.
//!
//! # Task API
//! Served as `containerd.task.v3.Task` and `containerd.task.v2.Task` (same messages).
//! Create, Start, State, Wait, Kill, Delete, Pids, Pause, Resume, Connect, Shutdown and
//! Stats (`io.containerd.cgroups.v1.Metrics`) work; Exec, ResizePty, CloseIO, Checkpoint
//! and Update answer UNIMPLEMENTED, as does Create with `terminal=true`. Task events go to
//! containerd at `$TTRPC_ADDRESS` when that is set.
//!
//! # Stdio strings in CreateTaskRequest
//! `""` = /dev/null; an absolute path (or `file:///path`) = a FIFO (stdin: copied into a
//! pipe until EOF) or a file (appended); `jsonfile:///ABS/PATH?max-size=BYTES&max-file=N`
//! (stdout/stderr; both may name one file) = Docker json-file log lines, rotated to
//! PATH.1 .. PATH.(N-1), all written before the exit is reported.
//!
//! # Files in the bundle
//! `config.json` (OCI spec, read; `process.rlimits` above the shim's hard limits are
//! clamped and the file rewritten), `rootfs/` (request mounts land here), `address`,
//! `exit.json` (`{"pid":N,"exit_status":N,"exited_at":"RFC3339"}`, written atomically at
//! exit), `shim.log`, `.libcontainer/` (libcontainer state, removed by Delete).

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
