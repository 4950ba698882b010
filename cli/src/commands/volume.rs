//! `skiff volume ...`: named volumes as `docker volume` shows them. Volumes are files in
//! the data root, so these run in-process also when a skiffd serves the same root.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use skiff_daemon::volume::CreateVolume;
use skiff_daemon::{Engine, EngineError};

/// `volume` subcommands.
#[derive(Debug, Subcommand)]
pub enum VolumeCommand {
    /// Create a volume.
    Create(CreateArgs),
    /// List volumes.
    #[command(alias = "list")]
    Ls {
        /// Only display volume names.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Display detailed information on one or more volumes.
    Inspect {
        /// Volumes.
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove one or more volumes (never one a container uses).
    #[command(alias = "remove")]
    Rm {
        /// Do not fail on volumes that do not exist.
        #[arg(short, long)]
        force: bool,
        /// Volumes.
        #[arg(required = true)]
        volumes: Vec<String>,
    },
    /// Remove unused anonymous volumes, or with --all every unused volume.
    Prune {
        /// Remove every unused volume, named ones too.
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation (always the case here).
        #[arg(short, long)]
        force: bool,
    },
}

/// `volume create` options.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Driver (only `local`).
    #[arg(short, long, default_value = "local")]
    pub driver: String,
    /// Driver options (not supported by skiff's local driver).
    #[arg(short = 'o', long = "opt")]
    pub opt: Vec<String>,
    /// Metadata, KEY=VALUE.
    #[arg(long)]
    pub label: Vec<String>,
    /// Name (random when absent).
    pub name: Option<String>,
}

fn pairs(items: &[String]) -> BTreeMap<String, String> {
    items
        .iter()
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Runs a `volume` subcommand.
pub fn run(engine: &Engine, cmd: VolumeCommand) -> Result<u8, EngineError> {
    match cmd {
        VolumeCommand::Create(a) => {
            let v = engine.create_volume(&CreateVolume {
                name: a.name,
                driver: Some(a.driver),
                driver_opts: pairs(&a.opt),
                labels: pairs(&a.label),
            })?;
            println!("{}", v.record.name);
            Ok(0)
        }
        VolumeCommand::Ls { quiet } => {
            let vols = engine.list_volumes()?;
            if !quiet {
                println!("{:<10}VOLUME NAME", "DRIVER");
            }
            for v in vols {
                if quiet {
                    println!("{}", v.record.name);
                } else {
                    println!("{:<10}{}", "local", v.record.name);
                }
            }
            Ok(0)
        }
        VolumeCommand::Inspect { volumes } => {
            let mut out = Vec::new();
            let mut code = 0;
            for n in &volumes {
                match engine.volume(n) {
                    Ok(v) => out.push(v.docker_json(None)),
                    Err(e) => {
                        eprintln!("Error: {e}");
                        code = 1;
                    }
                }
            }
            println!(
                "{}",
                serde_json::to_string_pretty(&out).unwrap_or_else(|_| "[]".into())
            );
            Ok(code)
        }
        VolumeCommand::Rm { force, volumes } => {
            let mut code = 0;
            for n in &volumes {
                match engine.remove_volume(n, force) {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error response from skiff: {e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        VolumeCommand::Prune { all, .. } => {
            let (removed, freed) = engine.prune_volumes(all, &|_| false)?;
            if !removed.is_empty() {
                println!("Deleted Volumes:");
                for n in &removed {
                    println!("{n}");
                }
                println!();
            }
            println!(
                "Total reclaimed space: {}",
                crate::format::human_size(freed)
            );
            Ok(0)
        }
    }
}
