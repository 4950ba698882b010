//! `skiff run` and `skiff create`: command-line options into the engine's
//! `CreateOptions`, then create, start, stream the output and pass the exit code through.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use skiff_daemon::container::logs::LogOptions;
use skiff_daemon::container::options::{
    CreateOptions, NetworkMode, Resources, RestartPolicy, TmpfsMount, VolumeMount,
};
use skiff_daemon::spec::{parse_cpus, parse_memory};
use skiff_daemon::{Engine, EngineError};

use super::attach;
use crate::options::RunArgs;
use crate::progress;

fn invalid(msg: String) -> EngineError {
    EngineError::InvalidInput(msg)
}

fn parse_volume(v: &str) -> Result<VolumeMount, EngineError> {
    let parts: Vec<&str> = v.split(':').collect();
    let (source, destination, mode) = match parts.as_slice() {
        // `-v /path`: an anonymous volume (the engine names it).
        [d] if d.starts_with('/') => {
            return Ok(VolumeMount {
                source: String::new(),
                destination: d.to_string(),
                readonly: false,
            })
        }
        [s, d] => (*s, *d, ""),
        [s, d, m] => (*s, *d, *m),
        _ => return Err(invalid(format!("invalid volume specification: '{v}'"))),
    };
    let readonly = match mode {
        "" | "rw" => false,
        "ro" => true,
        other => return Err(invalid(format!("invalid mode: {other} in volume '{v}'"))),
    };
    if source.is_empty() || !destination.starts_with('/') {
        return Err(invalid(format!("invalid volume specification: '{v}'")));
    }
    Ok(VolumeMount {
        source: source.to_string(),
        destination: destination.to_string(),
        readonly,
    })
}

fn parse_restart(r: &str) -> Result<RestartPolicy, EngineError> {
    Ok(match r.split_once(':') {
        None if r == "no" || r.is_empty() => RestartPolicy::No,
        None if r == "always" => RestartPolicy::Always,
        None if r == "unless-stopped" => RestartPolicy::UnlessStopped,
        None if r == "on-failure" => RestartPolicy::OnFailure { max_retries: 0 },
        Some(("on-failure", n)) => RestartPolicy::OnFailure {
            max_retries: n.parse().map_err(|_| {
                invalid(format!(
                    "invalid restart policy: maximum retry count must be a number: {r}"
                ))
            })?,
        },
        _ => return Err(invalid(format!("invalid restart policy '{r}'"))),
    })
}

fn parse_network(n: &str) -> Result<NetworkMode, EngineError> {
    if n.starts_with("container:") && n.len() == "container:".len() {
        return Err(invalid(
            "--network container: needs a container name or ID".into(),
        ));
    }
    Ok(NetworkMode::parse(n))
}

/// `-p` specs, plus `--expose`d ports on random host ports with `-P`.
fn publish_specs(a: &RunArgs) -> Result<Vec<skiff_daemon::network::PortSpec>, EngineError> {
    use skiff_daemon::network::{ports, PortSpec};
    let mut out = Vec::new();
    for p in &a.publish {
        out.push(ports::parse_publish(p)?);
    }
    for e in &a.expose {
        let (container_port, proto) = ports::parse_container_port(e)?;
        if a.publish_all {
            out.push(PortSpec {
                host_ip: None,
                host_port: 0,
                container_port,
                proto,
            });
        }
    }
    Ok(out)
}

fn read_env_files(files: &[std::path::PathBuf]) -> Result<Vec<String>, EngineError> {
    let mut out = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(f).map_err(|e| EngineError::io("reading env file", f, e))?;
        for line in text.lines() {
            let line = line.trim_start();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            out.push(line.to_string());
        }
    }
    Ok(out)
}

/// Turns `run`/`create` flags into engine options, validating values up front
/// (`create_only` for `skiff create`, which attaches nothing).
pub fn create_options(a: &RunArgs, create_only: bool) -> Result<CreateOptions, EngineError> {
    let host_cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let mut env = read_env_files(&a.env_file)?;
    env.extend(a.env.iter().cloned());
    let mut labels = BTreeMap::new();
    for l in &a.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let security = skiff_daemon::container::options::SecurityOpts::parse(&a.security_opt)
        .map_err(|e| invalid(format!("invalid --security-opt: {e}")))?;
    let resources = Resources {
        memory: a
            .memory
            .as_deref()
            .map(parse_memory)
            .transpose()
            .map_err(|e| invalid(e.to_string()))?,
        memory_swap: match a.memory_swap.as_deref() {
            Some("-1") => Some(-1),
            Some(s) => Some(parse_memory(s).map_err(|e| invalid(e.to_string()))?),
            None => None,
        },
        nano_cpus: a
            .cpus
            .as_deref()
            .map(|c| parse_cpus(c, host_cpus))
            .transpose()
            .map_err(|e| invalid(e.to_string()))?,
        cpu_shares: a.cpu_shares,
        cpuset_cpus: a.cpuset_cpus.clone(),
        pids_limit: a.pids_limit,
    };
    Ok(CreateOptions {
        name: a.name.clone(),
        image: a.image.clone(),
        entrypoint: a.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                vec![]
            } else {
                vec![e.clone()]
            }
        }),
        cmd: a.command.clone(),
        env,
        working_dir: a.workdir.clone(),
        user: a.user.clone(),
        hostname: a.hostname.clone(),
        stdin_open: a.interactive,
        // `run -i` attached: our stdin's EOF is the container's (docker's StdinOnce).
        stdin_once: a.interactive && !a.detach && !create_only,
        tty: a.tty,
        console_size: if a.tty { crate::tty::size() } else { None },
        volumes: a
            .volume
            .iter()
            .map(|v| parse_volume(v))
            .collect::<Result<_, _>>()?,
        tmpfs: a
            .tmpfs
            .iter()
            .map(|t| {
                let (d, o) = t.split_once(':').unwrap_or((t.as_str(), ""));
                TmpfsMount {
                    destination: d.to_string(),
                    options: o
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect(),
                }
            })
            .collect(),
        read_only: a.read_only,
        resources,
        cap_add: a.cap_add.clone(),
        cap_drop: a.cap_drop.clone(),
        privileged: a.privileged,
        no_new_privileges: security.no_new_privileges,
        seccomp_unconfined: security.seccomp_unconfined,
        network: parse_network(&a.network)?,
        publish: publish_specs(a)?,
        publish_all: a.publish_all,
        network_aliases: a.network_alias.clone(),
        restart: parse_restart(&a.restart)?,
        auto_remove: a.rm,
        init: a.init,
        labels,
        runtime: a.runtime.clone(),
        stop_signal: a.stop_signal.clone(),
        cwd: std::env::current_dir().ok(),
    })
}

/// `skiff create`: prints the new container's ID.
pub async fn create(engine: &Engine, a: &RunArgs) -> Result<u8, EngineError> {
    let opts = create_options(a, true)?;
    let rec = create_with_pull(engine, opts, a.quiet).await?;
    println!("{}", rec.id);
    Ok(0)
}

async fn create_with_pull(
    engine: &Engine,
    opts: CreateOptions,
    quiet: bool,
) -> Result<skiff_daemon::container::record::ContainerRecord, EngineError> {
    if engine.images().resolve(&opts.image).is_err() {
        let shown = skiff_image_store::ImageRef::parse(&opts.image)
            .ok()
            .and_then(|r| r.familiar_tagged())
            .unwrap_or_else(|| opts.image.clone());
        if !quiet {
            eprintln!("Unable to find image '{shown}' locally");
        }
    }
    engine
        .create_container(opts, Some(progress::sink_stderr(quiet)))
        .await
}

/// Prints a container's output as it is logged (from `since`, or all of it) until
/// `exited` is set, then drains it.
pub fn follow_output(
    engine: &Engine,
    id: &str,
    since: Option<String>,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let exited = Arc::new(AtomicBool::new(false));
    let (engine, id, flag) = (engine.clone(), id.to_string(), exited.clone());
    let handle = std::thread::spawn(move || {
        let opts = LogOptions {
            follow: true,
            stdout: true,
            stderr: true,
            since,
            ..Default::default()
        };
        let stdout = std::io::stdout();
        let stderr = std::io::stderr();
        let done = || flag.load(Ordering::Acquire);
        let _ = engine.read_logs(&id, &opts, Some(&done), &mut |e| {
            if e.stream == "stderr" {
                stderr.lock().write_all(e.line.as_bytes()).is_ok()
            } else {
                let mut out = stdout.lock();
                out.write_all(e.line.as_bytes())
                    .and_then(|_| out.flush())
                    .is_ok()
            }
        });
    });
    (exited, handle)
}

/// `skiff run`: create, start, and unless detached print the output and exit with the
/// container's exit code.
pub async fn run(engine: &Engine, a: &RunArgs) -> Result<u8, EngineError> {
    let opts = create_options(a, false)?;
    if a.detach && a.rm && !matches!(opts.restart, RestartPolicy::No) {
        return Err(invalid(
            "conflicting options: cannot specify both --restart and --rm".into(),
        ));
    }
    let detach_keys = attach::detach_keys_or_default(a.detach_keys.as_deref())?;
    let rec = create_with_pull(engine, opts, a.quiet).await?;
    tracing::debug!(container = %rec.id, "run: created");
    if let Err(e) = engine.start_container(&rec.id).await {
        if a.rm {
            let _ = engine
                .remove_container_and_volumes(&rec.id, true, true)
                .await;
        }
        return Err(e);
    }
    if a.detach {
        println!("{}", rec.id);
        return Ok(0);
    }
    tracing::debug!(container = %rec.id, "run: started");
    let session = attach::Session {
        id: rec.id.clone(),
        stdin: a.interactive,
        tty: a.tty,
        sig_proxy: a.sig_proxy,
        detach_keys,
        since: None,
    };
    let outcome = attach::attach_session(engine, &session).await;
    tracing::debug!(container = %rec.id, "run: exited or detached");
    let code = match outcome {
        Ok(attach::Outcome::Detached) => return Ok(0),
        Ok(attach::Outcome::Exited(code)) => Ok(code),
        Err(e) => Err(e),
    };
    if a.rm {
        engine
            .remove_container_and_volumes(&rec.id, true, true)
            .await?;
        tracing::debug!(container = %rec.id, "run: removed");
    }
    let code = code?;
    Ok(u8::try_from(code & 0xff).unwrap_or(255))
}
