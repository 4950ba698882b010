//! `skiffd`: the skiff daemon. It supervises containers (restart policies, exit
//! recording, recovery after its own restart) and serves the Docker Engine API on a Unix
//! socket; the CRI and Garden front ends join it with their issues. Containers live in
//! their shims, so stopping or killing skiffd never stops a container.
//!
//! It lives in `skiff-api` because it mounts the front ends, and `skiff-api` depends on
//! `skiff-daemon` (the engine), not the other way round.

use std::path::PathBuf;
use std::time::Duration;

use skiff_daemon::config::DEFAULT_CONFIG_FILE;
use skiff_daemon::supervisor::Supervisor;
use skiff_daemon::{Engine, EngineConfig};

use crate::docker::{self, DockerApi};

/// Command-line flags of skiffd.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Args {
    /// `--config FILE` (default /etc/skiff/config.toml, optional).
    pub config: Option<PathBuf>,
    /// `--data-root DIR`.
    pub data_root: Option<PathBuf>,
    /// `--run-root DIR`.
    pub run_root: Option<PathBuf>,
    /// `--docker-socket PATH` (default `<run root>/docker.sock`, i.e.
    /// /run/skiff/docker.sock).
    pub docker_socket: Option<PathBuf>,
}

const USAGE: &str =
    "usage: skiffd [--config FILE] [--data-root DIR] [--run-root DIR] [--docker-socket PATH]";

/// Parses flags (without the program name).
pub fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut a = Args::default();
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let (flag, inline) = match flag.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (flag, None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .ok_or(format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--config" => a.config = Some(value()?),
            "--data-root" => a.data_root = Some(value()?),
            "--run-root" => a.run_root = Some(value()?),
            "--docker-socket" => a.docker_socket = Some(value()?),
            "--version" => {
                println!("skiffd {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other}\n{USAGE}")),
        }
    }
    Ok(a)
}

fn fail(msg: impl std::fmt::Display, code: i32) -> ! {
    eprintln!("skiffd: {msg}");
    std::process::exit(code)
}

/// Runs skiffd with the process's arguments; returns only by exiting.
pub fn main() -> ! {
    skiff_daemon::limit_malloc_arenas();
    tracing_init();
    let args = parse_args(std::env::args().skip(1)).unwrap_or_else(|e| fail(e, 2));
    let (path, required) = match &args.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    };
    let mut config = EngineConfig::load(&path, required).unwrap_or_else(|e| fail(e, 1));
    if let Some(d) = args.data_root {
        config.data_root = d;
    }
    if let Some(r) = args.run_root {
        config.run_root = r;
    }
    let socket = args
        .docker_socket
        .unwrap_or_else(|| config.run_root.join("docker.sock"));
    let engine = Engine::open(config).unwrap_or_else(|e| fail(e, 1));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("skiffd")
        .build()
        .unwrap_or_else(|e| fail(format!("starting the async runtime: {e}"), 1));
    start_supervisor(engine.clone());
    runtime.block_on(async move {
        let listener = docker::bind(&socket)
            .unwrap_or_else(|e| fail(format!("docker api socket {}: {e}", socket.display()), 1));
        tracing::info!(socket = %socket.display(), "serving the Docker API");
        let api = DockerApi::new(engine);
        tokio::select! {
            r = docker::serve(api, listener) => {
                if let Err(e) = r {
                    tracing::error!(error = %e, "docker api server stopped");
                }
            }
            sig = shutdown_signal() => {
                tracing::info!(signal = sig, "shutting down; containers keep running");
            }
        }
        let _ = std::fs::remove_file(&socket);
    });
    std::process::exit(0)
}

fn tracing_init() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SKIFF_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// The supervisor on its own thread: recovery first, then a scan every half second.
fn start_supervisor(engine: Engine) {
    std::thread::Builder::new()
        .name("supervisor".into())
        .spawn(move || {
            let sup = Supervisor::new(engine);
            if let Err(e) = sup.recover() {
                tracing::error!(error = %e, "recovery failed");
            }
            tracing::info!("supervising containers");
            loop {
                if let Err(e) = sup.scan() {
                    tracing::warn!(error = %e, "scan failed");
                }
                std::thread::sleep(Duration::from_millis(500));
            }
        })
        .unwrap_or_else(|e| fail(format!("starting the supervisor: {e}"), 1));
}

/// Resolves on SIGTERM or SIGINT, with the signal's name.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Result<Args, String> {
        parse_args(a.iter().map(|s| s.to_string()))
    }

    #[test]
    fn flags() {
        let a = args(&["--data-root", "/d", "--docker-socket=/s.sock"]).unwrap();
        assert_eq!(a.data_root, Some(PathBuf::from("/d")));
        assert_eq!(a.docker_socket, Some(PathBuf::from("/s.sock")));
        assert!(args(&["--run-root"]).is_err());
        assert!(args(&["--bogus"]).is_err());
        assert!(args(&["--docker-socket="]).is_err());
    }
}
