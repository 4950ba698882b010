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
//! Create, Start, State, Wait, Kill, Delete, Pids, Pause, Resume, Connect, Shutdown,
//! Stats (`io.containerd.cgroups.v1.Metrics`), Exec, ResizePty and CloseIO work;
//! Checkpoint and Update answer UNIMPLEMENTED. Task events (create, start, exec-added,
//! exec-started, exit, paused, resumed, delete) go to containerd at `$TTRPC_ADDRESS` when
//! that is set.
//!
//! # Exec processes
//! `ExecProcess{id, exec_id, spec, stdin, stdout, stderr, terminal}` registers a process;
//! `Start{id, exec_id}` runs it (libcontainer's tenant builder in the create helper, like
//! `runc exec --detach --process`) and returns its pid. `spec` is a protobuf Any whose
//! `type_url` is `types.containerd.io/opencontainers/runtime-spec/1/Process` (empty, or
//! anything ending in `Process`, is accepted too) and whose `value` is the JSON of an OCI
//! runtime-spec `Process`: `args` (non-empty), `cwd` (absolute) and `user` (`uid`, `gid`,
//! `additionalGids`) are required; `env` is the whole environment (it needs `PATH` for a
//! bare command name); `capabilities`, `noNewPrivileges`, `rlimits` (clamped to the shim's
//! hard limits), `apparmorProfile`, `consoleSize` and `terminal` are honoured. The process
//! gets a terminal when either `terminal` field is true. exec ids are 1-128 of
//! `[A-Za-z0-9_.-]`; a duplicate is ALREADY_EXISTS. Exec into a paused or stopped task is
//! FAILED_PRECONDITION (at ExecProcess, and at Start, which also needs the task running).
//! A program that cannot be run fails Start with runc's wording (`exec: "x": executable
//! file not found in $PATH`) and leaves the exec stopped with status 127 (126 for
//! permission denied, 255 otherwise). State, Wait, Kill (through a pidfd), CloseIO,
//! ResizePty and Delete take the exec id; an exec's exit (code, or 128+signal) is kept
//! until `Delete{exec_id}`, which refuses a running exec. Pids lists exec processes with
//! `info` = `containerd.runc.v1.ProcessDetails{exec_id}`. A task's Delete kills exec
//! processes still running (the kernel already has, for a task with its own pid namespace).
//!
//! # Terminals
//! `terminal=true` in CreateTaskRequest (which must match `process.terminal` in
//! config.json) or ExecProcessRequest gives the process a pty: libcontainer sends the
//! master over a console socket in the bundle (`.console-*.sock`, removed right after).
//! The master's output goes to the stdout target (FIFO, file or `jsonfile://` as stream
//! `stdout`; stderr is unused); a stdin FIFO is copied into the master. ResizePty sets the
//! window size (`TIOCSWINSZ`; width = columns, height = rows; before an exec's Start it is
//! kept for when the pty appears; on a process without a pty it does nothing, as in
//! containerd). `process.consoleSize` is applied when the pty arrives.
//!
//! # Stdio strings in CreateTaskRequest and ExecProcessRequest
//! `""` = /dev/null; an absolute path (or `file:///path`) = a FIFO (stdout/stderr opened
//! `O_RDWR`; stdin opened read-only, non-blocking, and copied into a pipe until the writer
//! closes it or `CloseIO{stdin: true}`) or a file (stdout/stderr appended, stdin read);
//! `jsonfile:///ABS/PATH?max-size=BYTES&max-file=N` (stdout/stderr; both may name one
//! file) = Docker json-file log lines, rotated to PATH.1 .. PATH.(N-1), all written before
//! the exit is reported. An exec's stdio is opened at its Start.
//!
//! # Files in the bundle
//! `config.json` (OCI spec, read; `process.rlimits` above the shim's hard limits are
//! clamped and the file rewritten), `rootfs/` (request mounts land here), `address`,
//! `exit.json` (`{"pid":N,"exit_status":N,"exited_at":"RFC3339"}`, written atomically at
//! exit), `shim.log`, `.libcontainer/` (libcontainer state, and an exec's
//! `exec-<exec id>.json` while it starts; removed by Delete), `.console-*.sock` (while a
//! terminal process is created).

mod address;
mod cleanup;
mod console;
mod container;
mod error;
mod events;
mod exit;
mod jsonfile;
mod launch;
mod reaper;
mod rootfs;
mod seccomp_cache;
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
