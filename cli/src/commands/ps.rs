//! `skiff ps`.

use skiff_daemon::container::list::Filter;
use skiff_daemon::container::record::{ContainerRecord, Status};
use skiff_daemon::{Engine, EngineError};

use crate::format::{ago, human_duration, print_table};
use crate::options::PsArgs;

/// The columns of `ps`, as docker prints them (daemonless and through skiffd).
pub const HEADER: [&str; 7] = [
    "CONTAINER ID",
    "IMAGE",
    "COMMAND",
    "CREATED",
    "STATUS",
    "PORTS",
    "NAMES",
];

fn unix(rfc: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc)
        .map(|t| t.timestamp())
        .unwrap_or(0)
}

/// Docker's STATUS column: `Up 5 seconds`, `Exited (0) 3 seconds ago`, `Created`.
pub fn status_text(c: &ContainerRecord) -> String {
    let now = chrono::Utc::now().timestamp();
    match c.state.status {
        Status::Running => format!("Up {}", human_duration(now - unix(&c.state.started_at))),
        Status::Paused => format!(
            "Up {} (Paused)",
            human_duration(now - unix(&c.state.started_at))
        ),
        Status::Restarting => format!(
            "Restarting ({}) {}",
            c.state.exit_code,
            ago(unix(&c.state.finished_at))
        ),
        Status::Exited => format!(
            "Exited ({}) {}",
            c.state.exit_code,
            ago(unix(&c.state.finished_at))
        ),
        Status::Created => "Created".into(),
        Status::Removing => "Removal In Progress".into(),
        Status::Dead => "Dead".into(),
    }
}

fn command_text(c: &ContainerRecord, no_trunc: bool) -> String {
    quoted_command(&c.command.join(" "), no_trunc)
}

/// Docker's COMMAND column: quoted, cut to 20 characters unless `no_trunc`.
pub fn quoted_command(cmd: &str, no_trunc: bool) -> String {
    if no_trunc || cmd.chars().count() <= 20 {
        format!("\"{cmd}\"")
    } else {
        format!("\"{}…\"", cmd.chars().take(19).collect::<String>())
    }
}

/// Lists containers like `docker ps`.
pub fn ps(engine: &Engine, a: &PsArgs) -> Result<u8, EngineError> {
    let filters = a
        .filter
        .iter()
        .map(|f| Filter::parse(f))
        .collect::<Result<Vec<_>, _>>()?;
    let mut list = engine.list_containers(a.all || a.latest, &filters)?;
    if a.latest {
        list.truncate(1);
    }
    if a.quiet {
        for c in &list {
            println!(
                "{}",
                if a.no_trunc {
                    c.id.as_str()
                } else {
                    c.short_id()
                }
            );
        }
        return Ok(0);
    }
    let mut rows = vec![HEADER.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    for c in &list {
        rows.push(vec![
            if a.no_trunc {
                c.id.clone()
            } else {
                c.short_id().to_string()
            },
            c.image_name.clone(),
            command_text(c, a.no_trunc),
            ago(unix(&c.created)),
            status_text(c),
            engine.ports_text(c),
            c.name.clone(),
        ]);
    }
    print_table(&rows);
    Ok(0)
}
