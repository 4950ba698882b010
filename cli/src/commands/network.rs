//! `skiff network ...` and `skiff port`: networks as `docker network` shows them.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use skiff_daemon::network::{ports, CreateNetwork};
use skiff_daemon::{Engine, EngineError};

/// `network` subcommands.
#[derive(Debug, Subcommand)]
pub enum NetworkCommand {
    /// Create a network.
    Create(CreateArgs),
    /// List networks.
    #[command(alias = "list")]
    Ls {
        /// Only display network IDs.
        #[arg(short, long)]
        quiet: bool,
        /// Do not truncate the output.
        #[arg(long)]
        no_trunc: bool,
    },
    /// Display detailed information on one or more networks.
    Inspect {
        /// Networks.
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Remove one or more networks.
    #[command(alias = "remove")]
    Rm {
        /// Networks.
        #[arg(required = true)]
        networks: Vec<String>,
    },
    /// Connect a container to a network.
    Connect {
        /// Add a network-scoped alias for the container.
        #[arg(long)]
        alias: Vec<String>,
        /// Network.
        network: String,
        /// Container.
        container: String,
    },
    /// Disconnect a container from a network.
    Disconnect {
        /// Accepted for Docker compatibility.
        #[arg(short, long)]
        force: bool,
        /// Network.
        network: String,
        /// Container.
        container: String,
    },
    /// Remove all unused networks.
    Prune {
        /// Do not prompt for confirmation (always the case here).
        #[arg(short, long)]
        force: bool,
    },
}

/// `network create` options.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Subnet in CIDR format (default: a free /24 of the network pool).
    #[arg(long)]
    pub subnet: Option<String>,
    /// Gateway address (default: the subnet's first address).
    #[arg(long)]
    pub gateway: Option<String>,
    /// Driver (only `bridge`).
    #[arg(short, long, default_value = "bridge")]
    pub driver: String,
    /// Metadata, KEY=VALUE.
    #[arg(long)]
    pub label: Vec<String>,
    /// Name.
    pub name: String,
}

/// Runs a `network` subcommand.
pub fn run(engine: &Engine, cmd: NetworkCommand) -> Result<u8, EngineError> {
    match cmd {
        NetworkCommand::Create(a) => {
            if a.driver != "bridge" {
                return Err(EngineError::InvalidInput(format!(
                    "network driver {:?} is not supported (only bridge)",
                    a.driver
                )));
            }
            let labels: BTreeMap<String, String> = a
                .label
                .iter()
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
                    (k.to_string(), v.to_string())
                })
                .collect();
            let net = engine.networks().create(&CreateNetwork {
                name: a.name,
                subnet: a.subnet,
                gateway: a.gateway,
                labels,
            })?;
            println!("{}", net.id);
            Ok(0)
        }
        NetworkCommand::Ls { quiet, no_trunc } => {
            let nets = engine.networks_json()?;
            if !quiet {
                println!("{:<14}{:<20}{:<10}SCOPE", "NETWORK ID", "NAME", "DRIVER");
            }
            for n in nets {
                let id = n["Id"].as_str().unwrap_or_default();
                let id = if no_trunc {
                    id
                } else {
                    &id[..12.min(id.len())]
                };
                if quiet {
                    println!("{id}");
                } else {
                    println!(
                        "{:<14}{:<20}{:<10}local",
                        id,
                        n["Name"].as_str().unwrap_or_default(),
                        n["Driver"].as_str().unwrap_or_default()
                    );
                }
            }
            Ok(0)
        }
        NetworkCommand::Inspect { networks } => {
            let mut out = Vec::new();
            let mut code = 0;
            for n in &networks {
                match engine.network_inspect_json(n) {
                    Ok(v) => out.push(v),
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
        NetworkCommand::Rm { networks } => {
            let mut code = 0;
            for n in &networks {
                match engine.remove_network(n) {
                    Ok(_) => println!("{n}"),
                    Err(e) => {
                        eprintln!("Error response from skiff: {e}");
                        code = 1;
                    }
                }
            }
            Ok(code)
        }
        NetworkCommand::Connect {
            alias,
            network,
            container,
        } => {
            engine.connect_container(&network, &container, &alias)?;
            Ok(0)
        }
        NetworkCommand::Disconnect {
            network, container, ..
        } => {
            engine.disconnect_container(&network, &container)?;
            Ok(0)
        }
        NetworkCommand::Prune { .. } => {
            let removed = engine.networks().prune()?;
            if !removed.is_empty() {
                println!("Deleted Networks:");
                for n in removed {
                    println!("{n}");
                }
            }
            Ok(0)
        }
    }
}

/// `port CONTAINER [PRIVATE_PORT[/PROTO]]`.
pub fn port(engine: &Engine, container: &str, filter: Option<&str>) -> Result<u8, EngineError> {
    let bound = engine.container_ports(container)?;
    let wanted = filter.map(ports::parse_container_port).transpose()?;
    let mut found = false;
    for b in &bound {
        match wanted {
            Some((p, proto)) if (b.container_port, b.proto) == (p, proto) => {
                println!("{}:{}", b.host_ip, b.host_port);
                found = true;
            }
            Some(_) => {}
            None => {
                println!("{b}");
                found = true;
            }
        }
    }
    if let (Some(f), false) = (filter, found) {
        return Err(EngineError::NotFound(format!(
            "No public port '{f}' published for {container}"
        )));
    }
    Ok(0)
}
