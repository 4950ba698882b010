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
    /// `--docker-socket-group NAME|GID`: the group that may use the socket (mode 0660;
    /// default root's group only).
    pub docker_socket_group: Option<String>,
    /// `--tls-listen ADDR:PORT`: also serve the API on TCP, only with TLS and verified
    /// client certificates (all three of `--tlscacert`, `--tlscert`, `--tlskey`).
    pub tls_listen: Option<std::net::SocketAddr>,
    /// `--tlscacert`, `--tlscert`, `--tlskey` (PEM files).
    pub tls_ca: Option<PathBuf>,
    /// Server certificate chain.
    pub tls_cert: Option<PathBuf>,
    /// Server key.
    pub tls_key: Option<PathBuf>,
    /// `--bridge-name NAME`: the default bridge's interface.
    pub bridge_name: Option<String>,
    /// `--bridge-subnet CIDR`: the default bridge's subnet.
    pub bridge_subnet: Option<String>,
    /// `--network-pool CIDR`: where user networks get subnets from.
    pub network_pool: Option<String>,
    /// `--ip-forward BOOL`: turn on IPv4 forwarding for bridges.
    pub ip_forward: Option<bool>,
    /// `--dns-upstream HOST:PORT` (repeatable): where the embedded DNS forwards.
    pub dns_upstreams: Vec<String>,
}

const USAGE: &str =
    "usage: skiffd [--config FILE] [--data-root DIR] [--run-root DIR] [--docker-socket PATH]
              [--docker-socket-group NAME|GID]
              [--tls-listen ADDR:PORT --tlscacert CA.pem --tlscert CERT.pem --tlskey KEY.pem]
              [--bridge-name NAME] [--bridge-subnet CIDR] [--network-pool CIDR]
              [--ip-forward BOOL] [--dns-upstream HOST:PORT]...";

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
            "--docker-socket-group" => a.docker_socket_group = Some(value()?.display().to_string()),
            "--tls-listen" => {
                let v = value()?.display().to_string();
                a.tls_listen = Some(
                    v.parse()
                        .map_err(|e| format!("--tls-listen {v:?}: expected ADDR:PORT ({e})"))?,
                )
            }
            "--tlscacert" => a.tls_ca = Some(value()?),
            "--tlscert" => a.tls_cert = Some(value()?),
            "--tlskey" => a.tls_key = Some(value()?),
            "--bridge-name" => a.bridge_name = Some(value()?.display().to_string()),
            "--bridge-subnet" => a.bridge_subnet = Some(value()?.display().to_string()),
            "--network-pool" => a.network_pool = Some(value()?.display().to_string()),
            "--dns-upstream" => a.dns_upstreams.push(value()?.display().to_string()),
            "--ip-forward" => {
                let v = value()?.display().to_string();
                a.ip_forward = Some(
                    v.parse()
                        .map_err(|_| format!("--ip-forward takes true or false, not {v}"))?,
                )
            }
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
    if a.tls_listen.is_some() && (a.tls_ca.is_none() || a.tls_cert.is_none() || a.tls_key.is_none())
    {
        return Err(
            "--tls-listen needs --tlscacert, --tlscert and --tlskey: the TCP listener only serves clients with a certificate signed by the CA"
                .into(),
        );
    }
    if a.tls_listen.is_none() && (a.tls_ca.is_some() || a.tls_cert.is_some() || a.tls_key.is_some())
    {
        return Err("--tlscacert/--tlscert/--tlskey are for --tls-listen, which is missing".into());
    }
    Ok(a)
}

/// Gives the socket to `group` (a name from /etc/group, or a number), keeping 0660.
fn chgrp_socket(socket: &std::path::Path, group: &str) -> Result<(), String> {
    let gid = match group.parse::<u32>() {
        Ok(n) => nix::unistd::Gid::from_raw(n),
        Err(_) => {
            nix::unistd::Group::from_name(group)
                .map_err(|e| format!("looking up group {group}: {e}"))?
                .ok_or_else(|| format!("no group named {group}"))?
                .gid
        }
    };
    nix::unistd::chown(socket, None, Some(gid))
        .map_err(|e| format!("giving {} to group {group}: {e}", socket.display()))
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
    if let Some(b) = args.bridge_name {
        config.bridge_name = b;
    }
    if let Some(s) = args.bridge_subnet {
        config.bridge_subnet = s;
    }
    if let Some(p) = args.network_pool {
        config.network_pool = p;
    }
    if let Some(f) = args.ip_forward {
        config.ip_forward = f;
    }
    config.dns_upstreams.extend(args.dns_upstreams);
    let dns_upstreams: Vec<std::net::SocketAddr> = config
        .dns_upstreams
        .iter()
        .map(|u| {
            u.parse()
                .unwrap_or_else(|_| fail(format!("dns upstream {u:?} is not an IP:PORT"), 2))
        })
        .collect();
    let socket = args
        .docker_socket
        .unwrap_or_else(|| config.run_root.join("docker.sock"));
    let run_root = config.run_root.clone();
    let engine = Engine::open(config).unwrap_or_else(|e| fail(e, 1));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("skiffd")
        .build()
        .unwrap_or_else(|e| fail(format!("starting the async runtime: {e}"), 1));
    start_supervisor(engine.clone());
    let dns = runtime.spawn(skiff_daemon::network::dns::run(
        engine.networks().clone(),
        engine.config().run_root.clone(),
        dns_upstreams,
    ));
    runtime.block_on(async move {
        let listener = docker::bind(&socket)
            .unwrap_or_else(|e| fail(format!("docker api socket {}: {e}", socket.display()), 1));
        if let Some(g) = &args.docker_socket_group {
            chgrp_socket(&socket, g).unwrap_or_else(|e| fail(e, 1));
        }
        tracing::info!(socket = %socket.display(), "serving the Docker API");
        let api = DockerApi::new(engine);
        if let (Some(addr), Some(ca), Some(cert), Some(key)) =
            (args.tls_listen, args.tls_ca, args.tls_cert, args.tls_key)
        {
            let files = docker::tls::TlsFiles { ca, cert, key };
            let acceptor = docker::tls::acceptor(&files).unwrap_or_else(|e| fail(e, 1));
            let listener = docker::tls::bind(addr).await.unwrap_or_else(|e| fail(e, 1));
            tracing::info!(%addr, "serving the Docker API over TLS (client certificates required)");
            tokio::spawn(docker::tls::serve(api.clone(), listener, acceptor));
        }
        {
            let api = api.clone();
            tokio::spawn(async move { api.restore_watchers().await });
        }
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
    dns.abort();
    let _ = std::fs::remove_file(skiff_daemon::network::dns::marker_path(&run_root));
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
            let sup = Supervisor::new(engine.clone());
            if let Err(e) = sup.recover() {
                tracing::error!(error = %e, "recovery failed");
            }
            if let Err(e) = engine.reconcile_networks() {
                tracing::error!(error = %e, "network reconciliation failed");
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
        let t = args(&[
            "--tls-listen",
            "127.0.0.1:2376",
            "--tlscacert",
            "/ca",
            "--tlscert=/c",
            "--tlskey",
            "/k",
        ])
        .unwrap();
        assert_eq!(t.tls_listen, Some("127.0.0.1:2376".parse().unwrap()));
        assert!(
            args(&["--tls-listen", "127.0.0.1:2376"]).is_err(),
            "no TCP without TLS"
        );
        assert!(args(&["--tls-listen", "localhost"]).is_err());
        assert!(args(&["--tlscert", "/c"]).is_err());
        let a = args(&["--bridge-name", "br0", "--ip-forward=false"]).unwrap();
        assert_eq!(a.bridge_name.as_deref(), Some("br0"));
        assert_eq!(a.ip_forward, Some(false));
        assert!(args(&["--ip-forward", "maybe"]).is_err());
    }
}
