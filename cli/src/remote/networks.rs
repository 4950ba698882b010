//! `skiff network ...` and `skiff port` through skiffd, so its embedded DNS and
//! reconciler see every change as it happens.

use bollard::query_parameters as q;
use serde_json::json;

use super::{Remote, RemoteError, Result};
use crate::commands::network::NetworkCommand;

fn request<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| {
        RemoteError::Invalid(skiff_daemon::EngineError::Internal(format!(
            "building the request: {e}"
        )))
    })
}

/// Runs a `network` subcommand through skiffd.
pub async fn network(r: &Remote, cmd: &NetworkCommand) -> Result<u8> {
    match cmd {
        NetworkCommand::Create(a) => {
            let mut config = serde_json::Map::new();
            if let Some(s) = &a.subnet {
                config.insert("Subnet".into(), json!(s));
            }
            if let Some(g) = &a.gateway {
                config.insert("Gateway".into(), json!(g));
            }
            let labels: serde_json::Map<String, serde_json::Value> = a
                .label
                .iter()
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
                    (k.to_string(), json!(v))
                })
                .collect();
            let body = json!({
                "Name": a.name,
                "Driver": a.driver,
                "Labels": labels,
                "IPAM": {"Config": if config.is_empty() { json!([]) } else { json!([config]) }},
            });
            let created = r
                .docker
                .create_network(request(body)?)
                .await
                .map_err(|e| r.err(e))?;
            println!("{}", created.id);
            Ok(0)
        }
        NetworkCommand::Ls { quiet, no_trunc } => {
            let mut nets = r
                .docker
                .list_networks(None::<q::ListNetworksOptions>)
                .await
                .map_err(|e| r.err(e))?;
            nets.sort_by(|a, b| a.name.cmp(&b.name));
            if !quiet {
                println!("{:<14}{:<20}{:<10}SCOPE", "NETWORK ID", "NAME", "DRIVER");
            }
            for n in nets {
                let id = n.id.unwrap_or_default();
                let id = if *no_trunc {
                    id
                } else {
                    id.chars().take(12).collect()
                };
                if *quiet {
                    println!("{id}");
                } else {
                    println!(
                        "{:<14}{:<20}{:<10}{}",
                        id,
                        n.name.unwrap_or_default(),
                        n.driver.unwrap_or_default(),
                        n.scope.unwrap_or_else(|| "local".into())
                    );
                }
            }
            Ok(0)
        }
        NetworkCommand::Inspect { networks } => {
            let mut out = Vec::new();
            let mut code = 0;
            for n in networks {
                match r
                    .docker
                    .inspect_network(n, None::<q::InspectNetworkOptions>)
                    .await
                {
                    Ok(v) => out.push(serde_json::to_value(v).unwrap_or_default()),
                    Err(e) => {
                        eprintln!("Error: {}", r.err(e));
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
            for n in networks {
                match r.docker.remove_network(n).await {
                    Ok(()) => println!("{n}"),
                    Err(e) => {
                        super::report(&r.err(e));
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
            let body = json!({"Container": container, "EndpointConfig": {"Aliases": alias}});
            r.docker
                .connect_network(network, request(body)?)
                .await
                .map_err(|e| r.err(e))?;
            Ok(0)
        }
        NetworkCommand::Disconnect {
            force,
            network,
            container,
        } => {
            let body = json!({"Container": container, "Force": force});
            r.docker
                .disconnect_network(network, request(body)?)
                .await
                .map_err(|e| r.err(e))?;
            Ok(0)
        }
        NetworkCommand::Prune { .. } => {
            let p = r
                .docker
                .prune_networks(None::<q::PruneNetworksOptions>)
                .await
                .map_err(|e| r.err(e))?;
            let removed = p.networks_deleted.unwrap_or_default();
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

/// `skiff port CONTAINER [PRIVATE_PORT[/PROTO]]` through skiffd.
pub async fn port(r: &Remote, container: &str, filter: Option<&str>) -> Result<u8> {
    let info = r
        .docker
        .inspect_container(container, None::<q::InspectContainerOptions>)
        .await
        .map_err(|e| r.err(e))?;
    let ports = info
        .network_settings
        .and_then(|n| n.ports)
        .unwrap_or_default();
    let wanted = filter.map(|f| {
        if f.contains('/') {
            f.to_string()
        } else {
            format!("{f}/tcp")
        }
    });
    let mut keys: Vec<_> = ports.keys().cloned().collect();
    keys.sort();
    let mut found = false;
    for key in keys {
        let Some(Some(bindings)) = ports.get(&key) else {
            continue;
        };
        for b in bindings {
            let ip = b.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into());
            let port = b.host_port.clone().unwrap_or_default();
            match &wanted {
                Some(w) if *w == key => {
                    println!("{ip}:{port}");
                    found = true;
                }
                Some(_) => {}
                None => {
                    println!("{key} -> {ip}:{port}");
                    found = true;
                }
            }
        }
    }
    if let (Some(f), false) = (filter, found) {
        return Err(RemoteError::Api {
            status: 404,
            message: format!("No public port '{f}' published for {container}"),
        });
    }
    Ok(0)
}
