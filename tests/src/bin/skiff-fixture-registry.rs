//! `skiff-fixture-registry`: starts a loopback `docker-registry` on a given port
//! that keeps running after this program exits, pushes the fixture images into
//! it, writes the registry's pid to a file, and prints its address.
//!
//! Pushed: the busybox fixture as `library/alpine:latest` and
//! `library/busybox:latest` (so the registry can stand in for docker.io), and
//! the multilayer fixture as `test/multilayer:latest`.
//!
//! ```text
//! skiff-fixture-registry [--port 5000] [--dir /var/tmp/skiff-fixture-registry/PORT] [--pidfile FILE]
//! ```
//! Stop it by killing the pid in the pidfile (`contrib/fixture-registry.sh stop`).

use std::path::PathBuf;
use std::process::ExitCode;

use skiff_tests::{fixtures, Registry, RegistryOptions};

struct Args {
    port: u16,
    dir: Option<PathBuf>,
    pidfile: Option<PathBuf>,
}

/// Parent of the default storage directory, `BASE/PORT`.
const DEFAULT_BASE: &str = "/var/tmp/skiff-fixture-registry";

const USAGE: &str =
    "usage: skiff-fixture-registry [--port PORT] [--dir STORAGE_DIR] [--pidfile FILE]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 5000,
        dir: None,
        pidfile: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--port" => {
                let v = value()?;
                args.port = v.parse().map_err(|_| format!("bad port {v:?}\n{USAGE}"))?;
            }
            "--dir" => args.dir = Some(PathBuf::from(value()?)),
            "--pidfile" => args.pidfile = Some(PathBuf::from(value()?)),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    skiff_tests::require_root_tools();
    match serve(&args) {
        Ok(addr) => {
            println!("{addr}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("skiff-fixture-registry: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Starts the detached registry and pushes the fixtures; on failure the
/// registry is stopped again.
fn serve(args: &Args) -> Result<String, String> {
    let dir = args
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BASE).join(args.port.to_string()));
    let registry = Registry::start_with(RegistryOptions {
        port: Some(args.port),
        dir: Some(dir.clone()),
        basic_auth: None,
        detached: true,
    })
    .map_err(|e| e.to_string())?;
    let pushed = (|| -> skiff_tests::Result<()> {
        fixtures::push_busybox_as(&registry, "library/alpine", "latest")?;
        fixtures::push_busybox_as(&registry, "library/busybox", "latest")?;
        fixtures::push_multilayer_as(&registry, "test/multilayer", "latest")?;
        Ok(())
    })();
    if let Err(e) = pushed {
        stop(registry.pid());
        return Err(format!("pushing fixtures: {e}"));
    }
    let addr = registry.addr();
    let pid = registry.detach();
    if let Some(pidfile) = &args.pidfile {
        if let Err(e) = std::fs::write(pidfile, format!("{pid}\n")) {
            stop(pid);
            return Err(format!("writing {}: {e}", pidfile.display()));
        }
    }
    eprintln!(
        "skiff-fixture-registry: registry pid {pid} serves http://{addr}/ (storage {}, log {})",
        dir.join("storage").display(),
        dir.join("registry.log").display()
    );
    Ok(addr)
}

/// Kills the detached registry we started.
fn stop(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        // SAFETY: kill(2) on the pid of the child we spawned; no memory involved.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}
