//! `start`, `stop`, `restart`, `kill`, `rm`, `wait`, `pause`, `unpause`, `top`,
//! `rename`, `inspect` and `container prune`: each acts on one or more containers and,
//! like docker, goes on after an error and exits 1 if any failed.

use skiff_daemon::{Engine, EngineError};

use crate::options::{KillArgs, RmArgs, StartArgs, StopArgs};

fn report<T>(name: &str, r: Result<T, EngineError>, code: &mut u8) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("Error response from skiff: {e}");
            let _ = name;
            *code = 1;
            None
        }
    }
}

/// Starts containers; with `-a`, attaches to the (single) container's output from
/// its start on and passes its exit code through.
pub async fn start(engine: &Engine, a: &StartArgs) -> Result<u8, EngineError> {
    if a.attach && a.containers.len() > 1 {
        return Err(EngineError::InvalidInput(
            "you cannot start and attach multiple containers at once".into(),
        ));
    }
    let mut code = 0;
    for c in &a.containers {
        let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        if report(c, engine.start_container(c).await, &mut code).is_none() {
            continue;
        }
        if !a.attach {
            println!("{c}");
            continue;
        }
        let rec = engine.container(c)?;
        let session = super::attach::Session {
            id: rec.id.clone(),
            stdin: a.interactive && rec.options.stdin_open,
            tty: rec.options.tty,
            sig_proxy: true,
            detach_keys: super::attach::DEFAULT_DETACH_KEYS.to_vec(),
            since: Some(since),
        };
        return match super::attach::attach_session(engine, &session).await? {
            super::attach::Outcome::Exited(exit) => Ok(u8::try_from(exit & 0xff).unwrap_or(255)),
            super::attach::Outcome::Detached => Ok(0),
        };
    }
    Ok(code)
}

/// Stops containers (or restarts them).
pub async fn stop(engine: &Engine, a: &StopArgs, restart: bool) -> Result<u8, EngineError> {
    let mut code = 0;
    for c in &a.containers {
        let r = if restart {
            engine.restart_container(c, a.time).await.map(|_| ())
        } else {
            engine.stop_container(c, a.time).await.map(|_| ())
        };
        if report(c, r, &mut code).is_some() {
            println!("{c}");
        }
    }
    Ok(code)
}

/// Sends a signal.
pub fn kill(engine: &Engine, a: &KillArgs) -> Result<u8, EngineError> {
    let mut code = 0;
    for c in &a.containers {
        if report(c, engine.kill_container(c, Some(&a.signal)), &mut code).is_some() {
            println!("{c}");
        }
    }
    Ok(code)
}

/// Removes containers.
pub async fn rm(engine: &Engine, a: &RmArgs) -> Result<u8, EngineError> {
    let mut code = 0;
    for c in &a.containers {
        let removed = engine
            .remove_container_and_volumes(c, a.force, a.volumes)
            .await;
        if report(c, removed, &mut code).is_some() {
            println!("{c}");
        }
    }
    Ok(code)
}

/// Prints each container's exit code when it stops.
pub async fn wait(engine: &Engine, containers: &[String]) -> Result<u8, EngineError> {
    let mut code = 0;
    for c in containers {
        if let Some(exit) = report(c, engine.wait_container(c).await, &mut code) {
            println!("{exit}");
        }
    }
    Ok(code)
}

/// Pauses or unpauses containers.
pub fn pause(engine: &Engine, containers: &[String], unpause: bool) -> Result<u8, EngineError> {
    let mut code = 0;
    for c in containers {
        let r = if unpause {
            engine.unpause_container(c)
        } else {
            engine.pause_container(c)
        };
        if report(c, r, &mut code).is_some() {
            println!("{c}");
        }
    }
    Ok(code)
}

/// Lists a container's processes.
pub fn top(engine: &Engine, container: &str) -> Result<u8, EngineError> {
    let procs = engine.top_container(container)?;
    let mut rows = vec![vec![
        "UID".to_string(),
        "PID".into(),
        "PPID".into(),
        "CMD".into(),
    ]];
    for p in procs {
        rows.push(vec![
            p.uid.to_string(),
            p.pid.to_string(),
            p.ppid.to_string(),
            p.cmd,
        ]);
    }
    crate::format::print_table(&rows);
    Ok(0)
}

/// Inspects containers, falling back to images (like `docker inspect`).
pub fn inspect(engine: &Engine, names: &[String], images_too: bool) -> Result<u8, EngineError> {
    let mut out = Vec::new();
    let mut code = 0;
    for n in names {
        match engine.inspect_container(n) {
            Ok(v) => out.push(v),
            Err(e) if images_too => match engine.inspect_image(n) {
                Ok(d) => out.push(serde_json::to_value(d).unwrap_or_default()),
                Err(_) => {
                    eprintln!("Error: No such object: {n}");
                    let _ = e;
                    code = 1;
                }
            },
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

/// Removes stopped containers.
pub fn prune(engine: &Engine) -> Result<u8, EngineError> {
    let removed = engine.prune_containers()?;
    if !removed.is_empty() {
        println!("Deleted Containers:");
        for id in &removed {
            println!("{id}");
        }
        println!();
    }
    println!("Total reclaimed space: 0B");
    Ok(0)
}
