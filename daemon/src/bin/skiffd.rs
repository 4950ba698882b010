//! `skiffd`: the skiff daemon. Today it supervises containers (restart policies,
//! exit recording, recovery after its own restart); the Docker, CRI and Garden front
//! ends from `skiff-api` join it with their issues. Containers live in their shims, so
//! stopping or killing skiffd never stops a container.

use std::path::PathBuf;
use std::time::Duration;

use skiff_daemon::config::DEFAULT_CONFIG_FILE;
use skiff_daemon::supervisor::Supervisor;
use skiff_daemon::{Engine, EngineConfig};

struct Args {
    config: Option<PathBuf>,
    data_root: Option<PathBuf>,
    run_root: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        config: None,
        data_root: None,
        run_root: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .map(PathBuf::from)
                .ok_or(format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--config" => a.config = Some(value()?),
            "--data-root" => a.data_root = Some(value()?),
            "--run-root" => a.run_root = Some(value()?),
            "--version" => {
                println!("skiffd {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0);
            }
            "--help" | "-h" => {
                println!("usage: skiffd [--config FILE] [--data-root DIR] [--run-root DIR]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok(a)
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SKIFF_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("skiffd: {e}");
            std::process::exit(2);
        }
    };
    let (path, required) = match &args.config {
        Some(p) => (p.clone(), true),
        None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
    };
    let mut config = match EngineConfig::load(&path, required) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("skiffd: {e}");
            std::process::exit(1);
        }
    };
    if let Some(d) = args.data_root {
        config.data_root = d;
    }
    if let Some(r) = args.run_root {
        config.run_root = r;
    }
    let engine = match Engine::open(config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("skiffd: {e}");
            std::process::exit(1);
        }
    };
    let sup = Supervisor::new(engine);
    if let Err(e) = sup.recover() {
        tracing::error!(error = %e, "recovery failed");
    }
    tracing::info!("skiffd supervising containers");
    loop {
        if let Err(e) = sup.scan() {
            tracing::warn!(error = %e, "scan failed");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}
