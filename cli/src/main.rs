//! `skiff`: a docker/ctr-style command-line client. Daemonless: it embeds the engine
//! and works directly on the data root.

mod commands;
mod format;
mod options;
mod progress;
mod remote;
mod tty;

use std::process::ExitCode;

use clap::Parser;

use crate::options::Cli;

/// Docker's exit status when the engine itself fails.
const EXIT_ENGINE_ERROR: u8 = 125;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.global.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("skiff: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ENGINE_ERROR);
        }
    };
    let result = runtime.block_on(commands::run(cli));
    // Blocking waiters (a container's exit after `attach` detached) must not hold the
    // process open.
    runtime.shutdown_background();
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("Error response from skiff: {e}");
            ExitCode::from(e.exit_status())
        }
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SKIFF_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!("{level},hyper=warn,reqwest=warn,h2=warn"))
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
