//! Container commands through skiffd, in the order and shape the docker CLI uses them:
//! `run` attaches and waits before it starts, `--rm` is left to the daemon.

use std::collections::HashMap;
use std::io::Write;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters as q;
use futures_util::StreamExt;
use skiff_daemon::container::logs::parse_time;
use skiff_daemon::container::options::RestartPolicy;
use skiff_daemon::EngineError;

use super::attach::{pump, Ended, Pump, Resize, Streams};
use super::body::{create_body, Attached};
use super::{images, Remote, RemoteError, Result};
use crate::commands::attach::{detach_keys_or_default, DEFAULT_DETACH_KEYS};
use crate::commands::run::create_options;
use crate::format::print_table;
use crate::options::{
    AttachArgs, ExecArgs, KillArgs, LogsArgs, PsArgs, RmArgs, RunArgs, StartArgs, StopArgs,
};

fn code_of(exit: i64) -> u8 {
    u8::try_from(exit & 0xff).unwrap_or(255)
}

/// Creates, pulling the image first when skiffd does not have it (as docker does).
async fn create_container(
    r: &Remote,
    name: Option<&str>,
    body: ContainerCreateBody,
    quiet: bool,
) -> Result<String> {
    let options = || {
        let mut b = q::CreateContainerOptionsBuilder::new();
        if let Some(n) = name {
            b = b.name(n);
        }
        b.build()
    };
    match r
        .docker
        .create_container(Some(options()), body.clone())
        .await
    {
        Ok(c) => Ok(c.id),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            message,
        }) if message.contains("No such image") => {
            let image = body.image.clone().unwrap_or_default();
            if !quiet {
                let shown = skiff_image_store::ImageRef::parse(&image)
                    .ok()
                    .and_then(|r| r.familiar_tagged())
                    .unwrap_or_else(|| image.clone());
                eprintln!("Unable to find image '{shown}' locally");
            }
            images::pull_image(r, &image, None, quiet, true).await?;
            let c = r
                .docker
                .create_container(Some(options()), body)
                .await
                .map_err(|e| r.err(e))?;
            Ok(c.id)
        }
        Err(e) => Err(r.err(e)),
    }
}

/// The exit status after an attached session.
fn finish((ended, code): (Ended, Option<Result<i64>>)) -> Result<u8> {
    match (ended, code) {
        (Ended::Detached, _) => Ok(0),
        (Ended::Closed, Some(code)) => Ok(code_of(code?)),
        (Ended::Closed, None) => Ok(0),
    }
}

/// Waits for `condition` and yields the exit code.
fn wait_future(
    r: &Remote,
    id: &str,
    condition: &str,
) -> impl std::future::Future<Output = Result<i64>> + use<> {
    let o = q::WaitContainerOptionsBuilder::new()
        .condition(condition)
        .build();
    let mut stream = r.docker.wait_container(id, Some(o));
    let socket = r.socket.display().to_string();
    async move {
        match stream.next().await {
            Some(Ok(w)) => Ok(w.status_code),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            })) => Err(RemoteError::Api {
                status: status_code,
                message,
            }),
            Some(Err(e)) => Err(RemoteError::Connection {
                socket,
                why: e.to_string(),
            }),
            None => Err(RemoteError::Connection {
                socket,
                why: "wait ended without a status".into(),
            }),
        }
    }
}

async fn attach_streams(r: &Remote, id: &str, stdin: bool, logs: bool) -> Result<Streams> {
    let o = q::AttachContainerOptionsBuilder::new()
        .stream(true)
        .stdin(stdin)
        .stdout(true)
        .stderr(true)
        .logs(logs)
        .build();
    let a = r
        .docker
        .attach_container(id, Some(o))
        .await
        .map_err(|e| r.err(e))?;
    Ok(Streams {
        output: a.output,
        input: a.input,
    })
}

/// `skiff create` through skiffd.
pub async fn create(r: &Remote, a: &RunArgs) -> Result<u8> {
    let opts = create_options(a, true)?;
    let body = create_body(&opts, Attached::default())?;
    let id = create_container(r, opts.name.as_deref(), body, a.quiet).await?;
    println!("{id}");
    Ok(0)
}

/// `skiff run` through skiffd: create, attach, wait, start; the exit code passes through.
pub async fn run(r: &Remote, a: &RunArgs) -> Result<u8> {
    let opts = create_options(a, false)?;
    if a.rm && !matches!(opts.restart, RestartPolicy::No) {
        return Err(EngineError::InvalidInput(
            "conflicting options: cannot specify both --restart and --rm".into(),
        )
        .into());
    }
    let keys = detach_keys_or_default(a.detach_keys.as_deref())?;
    let attached = Attached {
        stdin: a.interactive && !a.detach,
        output: !a.detach,
    };
    let body = create_body(&opts, attached)?;
    let id = create_container(r, opts.name.as_deref(), body, a.quiet).await?;
    if a.detach {
        r.docker
            .start_container(&id, None::<q::StartContainerOptions>)
            .await
            .map_err(|e| r.err(e))?;
        println!("{id}");
        return Ok(0);
    }
    let streams = attach_streams(r, &id, attached.stdin, false).await?;
    let wait =
        super::wait::register(&r.socket, &id, if a.rm { "removed" } else { "next-exit" }).await?;
    if let Err(e) = r
        .docker
        .start_container(&id, None::<q::StartContainerOptions>)
        .await
    {
        let e = r.err(e);
        if a.rm {
            let o = q::RemoveContainerOptionsBuilder::new()
                .force(true)
                .v(true)
                .build();
            let _ = r.docker.remove_container(&id, Some(o)).await;
        }
        return Err(e);
    }
    let ended = pump(
        r,
        streams,
        Pump {
            stdin: attached.stdin,
            tty: a.tty,
            detach_keys: keys,
            sig_proxy: a.sig_proxy.then(|| id.clone()),
            resize: Some(Resize::Container(id.clone())),
        },
        Some(wait),
    )
    .await;
    finish(ended)
}

/// `skiff start [-a] [-i]`.
pub async fn start(r: &Remote, a: &StartArgs) -> Result<u8> {
    if a.attach && a.containers.len() > 1 {
        return Err(EngineError::InvalidInput(
            "you cannot start and attach multiple containers at once".into(),
        )
        .into());
    }
    let mut code = 0;
    for c in &a.containers {
        if !a.attach {
            match r
                .docker
                .start_container(c, None::<q::StartContainerOptions>)
                .await
            {
                Ok(()) => println!("{c}"),
                Err(e) => code = super::report(&r.err(e)).min(1),
            }
            continue;
        }
        let info = r
            .docker
            .inspect_container(c, None::<q::InspectContainerOptions>)
            .await
            .map_err(|e| r.err(e))?;
        let cfg = info.config.unwrap_or_default();
        let tty = cfg.tty.unwrap_or(false);
        let stdin = a.interactive && cfg.open_stdin.unwrap_or(false);
        let id = info.id.unwrap_or_else(|| c.clone());
        let streams = attach_streams(r, &id, stdin, false).await?;
        let wait = super::wait::register(&r.socket, &id, "next-exit").await?;
        r.docker
            .start_container(&id, None::<q::StartContainerOptions>)
            .await
            .map_err(|e| r.err(e))?;
        let ended = pump(
            r,
            streams,
            Pump {
                stdin,
                tty,
                detach_keys: DEFAULT_DETACH_KEYS.to_vec(),
                sig_proxy: Some(id.clone()),
                resize: Some(Resize::Container(id.clone())),
            },
            Some(wait),
        )
        .await;
        return finish(ended);
    }
    Ok(code)
}

/// `skiff attach` through skiffd.
pub async fn attach(r: &Remote, a: &AttachArgs) -> Result<u8> {
    let info = r
        .docker
        .inspect_container(&a.container, None::<q::InspectContainerOptions>)
        .await
        .map_err(|e| r.err(e))?;
    let state = info.state.unwrap_or_default();
    if state.paused == Some(true) {
        return Err(EngineError::Conflict(
            "You cannot attach to a paused container, unpause it first".into(),
        )
        .into());
    }
    if state.running != Some(true) {
        return Err(EngineError::Conflict(
            "You cannot attach to a stopped container, start it first".into(),
        )
        .into());
    }
    let cfg = info.config.unwrap_or_default();
    let tty = cfg.tty.unwrap_or(false);
    let stdin = !a.no_stdin && cfg.open_stdin.unwrap_or(false);
    let id = info.id.unwrap_or_else(|| a.container.clone());
    let keys = detach_keys_or_default(a.detach_keys.as_deref())?;
    let streams = attach_streams(r, &id, stdin, false).await?;
    // Registered before the stream is pumped: an exit in between is not missed.
    let wait = super::wait::register(&r.socket, &id, "not-running").await?;
    let ended = pump(
        r,
        streams,
        Pump {
            stdin,
            tty,
            detach_keys: keys,
            sig_proxy: a.sig_proxy.then(|| id.clone()),
            resize: Some(Resize::Container(id.clone())),
        },
        Some(wait),
    )
    .await;
    finish(ended)
}

/// `skiff exec` through skiffd.
pub async fn exec(r: &Remote, a: &ExecArgs) -> Result<u8> {
    let config = bollard::models::ExecConfig {
        attach_stdin: Some(a.interactive && !a.detach),
        attach_stdout: Some(!a.detach),
        attach_stderr: Some(!a.detach),
        tty: Some(a.tty),
        env: (!a.env.is_empty()).then(|| a.env.clone()),
        cmd: Some(a.command.clone()),
        privileged: Some(a.privileged),
        user: a.user.clone(),
        working_dir: a.workdir.clone(),
        console_size: if a.tty {
            crate::tty::size().map(|(c, rows)| vec![rows as usize, c as usize])
        } else {
            None
        },
        ..Default::default()
    };
    let created = r
        .docker
        .create_exec(&a.container, config)
        .await
        .map_err(|e| r.err(e))?;
    let start = bollard::exec::StartExecOptions {
        detach: a.detach,
        tty: a.tty,
        ..Default::default()
    };
    match r
        .docker
        .start_exec(&created.id, Some(start))
        .await
        .map_err(|e| r.err(e))?
    {
        bollard::exec::StartExecResults::Detached => return Ok(0),
        bollard::exec::StartExecResults::Attached { output, input } => {
            pump(
                r,
                Streams { output, input },
                Pump {
                    stdin: a.interactive,
                    tty: a.tty,
                    detach_keys: DEFAULT_DETACH_KEYS.to_vec(),
                    sig_proxy: None,
                    resize: Some(Resize::Exec(created.id.clone())),
                },
                None,
            )
            .await;
        }
    }
    // The stream ends when the process does; its exit code follows shortly after.
    for _ in 0..100 {
        let info = r
            .docker
            .inspect_exec(&created.id)
            .await
            .map_err(|e| r.err(e))?;
        if info.running != Some(true) {
            if let Some(code) = info.exit_code {
                return Ok(code_of(code));
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Err(RemoteError::Connection {
        socket: r.socket.display().to_string(),
        why: format!(
            "the output of exec {} ended but it did not exit",
            created.id
        ),
    })
}

/// Runs `op` on each container, printing its name on success and docker's message on
/// failure; exits 1 if any failed.
async fn each<F, Fut>(r: &Remote, containers: &[String], op: F) -> Result<u8>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = std::result::Result<(), bollard::errors::Error>>,
{
    let mut code = 0;
    for c in containers {
        match op(c.clone()).await {
            Ok(()) => println!("{c}"),
            Err(e) => {
                super::report(&r.err(e));
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `stop` and `restart`.
pub async fn stop(r: &Remote, a: &StopArgs, restart: bool) -> Result<u8> {
    let t = a.time.map(|t| i32::try_from(t).unwrap_or(i32::MAX));
    each(r, &a.containers, |c| async move {
        if restart {
            let mut b = q::RestartContainerOptionsBuilder::new();
            if let Some(t) = t {
                b = b.t(t);
            }
            r.docker.restart_container(&c, Some(b.build())).await
        } else {
            let mut b = q::StopContainerOptionsBuilder::new();
            if let Some(t) = t {
                b = b.t(t);
            }
            r.docker.stop_container(&c, Some(b.build())).await
        }
    })
    .await
}

/// `kill [-s]`.
pub async fn kill(r: &Remote, a: &KillArgs) -> Result<u8> {
    each(r, &a.containers, |c| async move {
        let o = q::KillContainerOptionsBuilder::new()
            .signal(&a.signal)
            .build();
        r.docker.kill_container(&c, Some(o)).await
    })
    .await
}

/// `rm [-f] [-v]`.
pub async fn rm(r: &Remote, a: &RmArgs) -> Result<u8> {
    each(r, &a.containers, |c| async move {
        let o = q::RemoveContainerOptionsBuilder::new()
            .force(a.force)
            .v(a.volumes)
            .build();
        r.docker.remove_container(&c, Some(o)).await
    })
    .await
}

/// `pause` / `unpause`.
pub async fn pause(r: &Remote, containers: &[String], unpause: bool) -> Result<u8> {
    each(r, containers, |c| async move {
        if unpause {
            r.docker.unpause_container(&c).await
        } else {
            r.docker.pause_container(&c).await
        }
    })
    .await
}

/// `rename`.
pub async fn rename(r: &Remote, container: &str, new_name: &str) -> Result<u8> {
    let o = q::RenameContainerOptionsBuilder::new()
        .name(new_name)
        .build();
    r.docker
        .rename_container(container, o)
        .await
        .map_err(|e| r.err(e))?;
    Ok(0)
}

/// `wait`: prints each exit code.
pub async fn wait(r: &Remote, containers: &[String]) -> Result<u8> {
    let mut code = 0;
    for c in containers {
        match wait_future(r, c, "not-running").await {
            Ok(exit) => println!("{exit}"),
            Err(e) => {
                super::report(&e);
                code = 1;
            }
        }
    }
    Ok(code)
}

/// `top`.
pub async fn top(r: &Remote, container: &str) -> Result<u8> {
    let t = r
        .docker
        .top_processes(container, None::<q::TopOptions>)
        .await
        .map_err(|e| r.err(e))?;
    let mut rows = vec![t.titles.unwrap_or_default()];
    rows.extend(t.processes.unwrap_or_default());
    print_table(&rows);
    Ok(0)
}

/// `inspect` (`any`: images too, as `docker inspect`).
pub async fn inspect(r: &Remote, names: &[String], any: bool) -> Result<u8> {
    let mut out = Vec::new();
    let mut code = 0;
    for n in names {
        let c = r
            .docker
            .inspect_container(n, None::<q::InspectContainerOptions>)
            .await;
        match c {
            Ok(c) => out.push(serde_json::to_value(c).unwrap_or_default()),
            Err(e) => {
                if any {
                    if let Ok(i) = r.docker.inspect_image(n).await {
                        out.push(serde_json::to_value(i).unwrap_or_default());
                        continue;
                    }
                }
                let e = r.err(e);
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

/// `container prune`.
pub async fn prune(r: &Remote) -> Result<u8> {
    let p = r
        .docker
        .prune_containers(None::<q::PruneContainersOptions>)
        .await
        .map_err(|e| r.err(e))?;
    let deleted = p.containers_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for d in deleted {
            println!("{d}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        crate::format::human_size(u64::try_from(p.space_reclaimed.unwrap_or(0)).unwrap_or(0))
    );
    Ok(0)
}

/// `ps [-a] [-q] [--filter] [--no-trunc] [-l]`.
pub async fn ps(r: &Remote, a: &PsArgs) -> Result<u8> {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    for f in &a.filter {
        let (k, v) = f.split_once('=').ok_or_else(|| {
            RemoteError::Invalid(EngineError::InvalidInput(format!(
                "bad format of filter (expected name=value): {f}"
            )))
        })?;
        filters
            .entry(k.to_string())
            .or_default()
            .push(v.to_string());
    }
    let mut b = q::ListContainersOptionsBuilder::new()
        .all(a.all || a.latest)
        .filters(&filters);
    if a.latest {
        b = b.limit(1);
    }
    let list = r
        .docker
        .list_containers(Some(b.build()))
        .await
        .map_err(|e| r.err(e))?;
    let short = |id: &str| -> String {
        if a.no_trunc {
            id.to_string()
        } else {
            id.chars().take(12).collect()
        }
    };
    if a.quiet {
        for c in &list {
            println!("{}", short(c.id.as_deref().unwrap_or_default()));
        }
        return Ok(0);
    }
    let mut rows = vec![crate::commands::ps::HEADER
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()];
    for c in &list {
        let cmd = crate::commands::ps::quoted_command(
            c.command.as_deref().unwrap_or_default(),
            a.no_trunc,
        );
        let ports = c
            .ports
            .iter()
            .flatten()
            .map(|p| match (p.ip.as_deref(), p.public_port) {
                (Some(ip), Some(pp)) => format!(
                    "{ip}:{pp}->{}/{}",
                    p.private_port,
                    p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into())
                ),
                _ => format!(
                    "{}/{}",
                    p.private_port,
                    p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into())
                ),
            })
            .collect::<Vec<_>>()
            .join(", ");
        rows.push(vec![
            short(c.id.as_deref().unwrap_or_default()),
            c.image.clone().unwrap_or_default(),
            cmd,
            crate::format::ago(c.created.unwrap_or(0)),
            c.status.clone().unwrap_or_default(),
            ports,
            c.names
                .iter()
                .flatten()
                .map(|n| n.trim_start_matches('/').to_string())
                .collect::<Vec<_>>()
                .join(","),
        ]);
    }
    print_table(&rows);
    Ok(0)
}

/// `logs [-f] [--tail] [--since] [--until] [-t]`.
pub async fn logs(r: &Remote, a: &LogsArgs) -> Result<u8> {
    let to_unix = |s: &Option<String>| -> Result<Option<i32>> {
        s.as_deref()
            .map(|t| parse_time(t).map(|t| i32::try_from(t.timestamp()).unwrap_or(i32::MAX)))
            .transpose()
            .map_err(RemoteError::from)
    };
    let mut b = q::LogsOptionsBuilder::new()
        .follow(a.follow)
        .stdout(true)
        .stderr(true)
        .timestamps(a.timestamps)
        .tail(&a.tail);
    if let Some(s) = to_unix(&a.since)? {
        b = b.since(s);
    }
    if let Some(u) = to_unix(&a.until)? {
        b = b.until(u);
    }
    let mut stream = r.docker.logs(&a.container, Some(b.build()));
    while let Some(item) = stream.next().await {
        match item.map_err(|e| r.err(e))? {
            bollard::container::LogOutput::StdErr { message } => {
                let _ = std::io::stderr().lock().write_all(&message);
            }
            bollard::container::LogOutput::StdOut { message }
            | bollard::container::LogOutput::Console { message } => {
                let mut o = std::io::stdout().lock();
                let _ = o.write_all(&message).and_then(|_| o.flush());
            }
            bollard::container::LogOutput::StdIn { .. } => {}
        }
    }
    Ok(0)
}
