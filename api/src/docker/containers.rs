//! Container routes: create, start, wait, stop, kill, restart, pause, unpause, rename,
//! resize, top, inspect, list, remove, prune. Attach and logs are in [`super::attach`].

use std::collections::HashMap;
use std::time::Duration;

use bollard_stubs::models::{
    ContainerCreateBody, ContainerCreateResponse, ContainerPruneResponse, ContainerSummary,
    ContainerSummaryHostConfig, ContainerSummaryNetworkSettings, ContainerSummaryStateEnum,
    ContainerTopResponse, ContainerUpdateBody, ContainerUpdateResponse, ContainerWaitExitError,
    ContainerWaitResponse, RestartPolicyNameEnum,
};
use bollard_stubs::models::{PortSummary, PortSummaryTypeEnum};
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use skiff_daemon::container::list::Filter;
use skiff_daemon::container::options::Resources;
use skiff_daemon::container::record::{ContainerRecord, Status};
use skiff_daemon::network::{PortBinding, Proto};
use tokio::sync::{broadcast, mpsc};

use super::version::ApiVersion;
use super::watch::{self, run_ended, Event, EventKind};
use super::{
    archive, attach, create, empty, exec, json, read_json, stats, ApiError, DockerApi, Query,
    Request, Response,
};

/// Routes under `/containers/`.
pub async fn route(
    api: &DockerApi,
    req: Request,
    rest: &[String],
    q: &Query,
    version: ApiVersion,
) -> Result<Response, ApiError> {
    let method = req.method().clone();
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (&method, rest.as_slice()) {
        (&Method::GET, ["json"]) => list(api, q).await,
        (&Method::POST, ["create"]) => create(api, req, q).await,
        (&Method::POST, ["prune"]) => prune(api, q).await,
        (&Method::DELETE, [id]) => remove(api, id, q).await,
        (&Method::GET, [id, "json"]) => inspect(api, id).await,
        (&Method::GET, [id, "top"]) => top(api, id, q).await,
        (&Method::GET, [id, "logs"]) => attach::logs(api, id, q, version).await,
        (&Method::POST, [id, "attach"]) => attach::attach(api, req, id, q, version).await,
        (&Method::POST, [id, "start"]) => start(api, id).await,
        (&Method::POST, [id, "wait"]) => wait(api, id, q).await,
        (&Method::POST, [id, "stop"]) => stop(api, id, q).await,
        (&Method::POST, [id, "restart"]) => restart(api, id, q).await,
        (&Method::POST, [id, "kill"]) => kill(api, id, q).await,
        (&Method::POST, [id, "pause"]) => pause(api, id, true).await,
        (&Method::POST, [id, "unpause"]) => pause(api, id, false).await,
        (&Method::POST, [id, "rename"]) => rename(api, id, q).await,
        (&Method::POST, [id, "resize"]) => resize(api, id, q).await,
        (&Method::POST, [id, "exec"]) => exec::create(api, req, id).await,
        (&Method::GET, [id, "stats"]) => stats::stats(api, id, q).await,
        (&Method::POST, [id, "update"]) => update(api, req, id).await,
        (&Method::GET | &Method::HEAD, [id, "archive"]) => {
            archive::get(api, id, q, method == Method::HEAD).await
        }
        (&Method::PUT, [id, "archive"]) => archive::put(api, req, id, q).await,
        _ => Err(ApiError::not_found("page not found")),
    }
}

/// `POST /containers/create?name=`.
async fn create(api: &DockerApi, req: Request, q: &Query) -> Result<Response, ApiError> {
    let body: ContainerCreateBody = read_json(req).await?;
    let (opts, warnings) = create::create_options(q.non_empty("name"), body)?;
    // No pull here: Docker answers 404 for a missing image and the CLI pulls and retries.
    let rec = api.engine().create_container(opts, None).await?;
    Ok(json(
        StatusCode::CREATED,
        &ContainerCreateResponse {
            id: rec.id,
            warnings,
        },
    ))
}

/// `POST /containers/{id}/start`: 204, or 304 when it already runs.
async fn start(api: &DockerApi, id: &str) -> Result<Response, ApiError> {
    let rec = api.container(id).await?;
    if rec.state.status.has_task() {
        return Ok(empty(StatusCode::NOT_MODIFIED));
    }
    started(
        api,
        &rec,
        api.engine().start_container(&rec.id).await.map(|_| ()),
    )
    .await
    .map(|_| empty(StatusCode::NO_CONTENT))
}

/// After a start attempt: watch the run, or report the failure (and remove an
/// AutoRemove container that will never run, as dockerd does).
async fn started(
    api: &DockerApi,
    rec: &ContainerRecord,
    result: Result<(), skiff_daemon::EngineError>,
) -> Result<(), ApiError> {
    match result {
        Ok(()) => {
            api.watch.publish(&rec.id, EventKind::Started);
            api.watch.watch_exit(api.engine(), &rec.id);
            Ok(())
        }
        Err(e) => {
            api.watch.publish(&rec.id, EventKind::StartFailed);
            if rec.options.auto_remove
                && watch::remove_container(api.engine(), &rec.id, true, true)
                    .await
                    .is_ok()
            {
                api.watch.removed(api.engine(), &rec.id);
            }
            Err(e.into())
        }
    }
}

/// What `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    NotRunning,
    NextExit,
    Removed,
}

/// `POST /containers/{id}/wait?condition=not-running|next-exit|removed`.
///
/// The CLI calls it before `start` and goes on once the response headers arrive, so,
/// as dockerd does, the 200 goes out at once and the JSON result follows when the
/// condition is met. Waiting is defined on the record: `next-exit` ends when a run that
/// had not ended at the call has ended, `not-running` when no task exists, `removed`
/// when the record is gone. Exit events wake the waiter early; a poll catches containers
/// started by someone else. A client that leaves ends the wait.
async fn wait(api: &DockerApi, id: &str, q: &Query) -> Result<Response, ApiError> {
    let condition = match q.non_empty("condition") {
        None | Some("not-running") => Condition::NotRunning,
        Some("next-exit") => Condition::NextExit,
        Some("removed") => Condition::Removed,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid condition: {other:?}"
            )))
        }
    };
    let events = api.watch.subscribe();
    let first = api.container(id).await?;
    if first.state.status.has_task() {
        api.watch.watch_exit(api.engine(), &first.id);
    }
    let (tx, rx) = mpsc::channel::<Bytes>(1);
    let api = api.clone();
    tokio::spawn(async move {
        let result = tokio::select! {
            r = wait_for(&api, events, &first, condition) => r,
            _ = tx.closed() => {
                tracing::debug!(container = %first.id, "wait: client went away");
                return;
            }
        };
        let resp = match result {
            Ok(code) => ContainerWaitResponse {
                status_code: i64::from(code),
                error: None,
            },
            Err(e) => ContainerWaitResponse {
                status_code: -1,
                error: Some(ContainerWaitExitError {
                    message: Some(e.message),
                }),
            },
        };
        let mut body = serde_json::to_vec(&resp).unwrap_or_default();
        body.push(b'\n');
        let _ = tx.send(Bytes::from(body)).await;
    });
    Ok(attach::channel_response(rx, "application/json"))
}

/// Waits until `condition` holds for the container `first` describes; its exit code.
async fn wait_for(
    api: &DockerApi,
    mut events: broadcast::Receiver<Event>,
    first: &ContainerRecord,
    condition: Condition,
) -> Result<i32, ApiError> {
    let mut code = first.state.exit_code;
    loop {
        let now = match api.container(&first.id).await {
            Ok(r) => Some(r),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(e),
        };
        let done = match (&now, condition) {
            (None, _) => true,
            (Some(r), Condition::NotRunning) => !r.state.status.has_task(),
            (Some(r), Condition::NextExit) => run_ended(first, r),
            (Some(_), Condition::Removed) => false,
        };
        if let Some(r) = &now {
            code = r.state.exit_code;
        }
        if done {
            return Ok(code);
        }
        next_event(&mut events, &first.id, api.watch.poll_interval(&first.id)).await;
    }
}

/// Waits for the end of a run of `id` (exit, failed start, removal), at most `max`.
/// Starts do not wake the waiter: reading a container's state while it may be exiting
/// is what the engine race described at [`watch::Watch::poll_interval`] needs.
async fn next_event(events: &mut broadcast::Receiver<Event>, id: &str, max: Duration) {
    let _ = tokio::time::timeout(max, async {
        loop {
            match events.recv().await {
                Ok(e) if e.id == id && e.kind != EventKind::Started => return,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => return,
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    })
    .await;
}

/// `POST /containers/{id}/stop?t=&signal=`: 204, or 304 when it was not running.
async fn stop(api: &DockerApi, id: &str, q: &Query) -> Result<Response, ApiError> {
    let timeout = q.int::<i64>("t")?.map(|t| t.max(0) as u64);
    let rec = api.container(id).await?;
    if !rec.state.status.has_task() {
        return Ok(empty(StatusCode::NOT_MODIFIED));
    }
    if let Some(sig) = q.non_empty("signal").map(str::to_string) {
        // A custom stop signal first; the usual stop follows after the timeout.
        let cid = rec.id.clone();
        api.blocking(move |e| e.kill_container(&cid, Some(&sig)))
            .await?;
    }
    api.engine().stop_container(&rec.id, timeout).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/restart?t=`.
async fn restart(api: &DockerApi, id: &str, q: &Query) -> Result<Response, ApiError> {
    let timeout = q.int::<i64>("t")?.map(|t| t.max(0) as u64);
    let rec = api.container(id).await?;
    api.engine().stop_container(&rec.id, timeout).await?;
    started(
        api,
        &rec,
        api.engine().start_container(&rec.id).await.map(|_| ()),
    )
    .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/kill?signal=`.
async fn kill(api: &DockerApi, id: &str, q: &Query) -> Result<Response, ApiError> {
    let (id, sig) = (id.to_string(), q.non_empty("signal").map(str::to_string));
    api.blocking(move |e| e.kill_container(&id, sig.as_deref()))
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/pause` and `/unpause`.
async fn pause(api: &DockerApi, id: &str, freeze: bool) -> Result<Response, ApiError> {
    let id = id.to_string();
    api.blocking(move |e| {
        if freeze {
            e.pause_container(&id)
        } else {
            e.unpause_container(&id)
        }
    })
    .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/rename?name=`.
async fn rename(api: &DockerApi, id: &str, q: &Query) -> Result<Response, ApiError> {
    let new = q
        .non_empty("name")
        .ok_or_else(|| ApiError::bad_request("new name (name) must be given"))?
        .trim_start_matches('/')
        .to_string();
    let id = id.to_string();
    api.blocking(move |e| e.rename_container(&id, &new)).await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/{id}/resize?h=&w=`: the size of a `-t` container's terminal.
async fn resize(api: &DockerApi, id: &str, q: &Query) -> Result<Response, ApiError> {
    let (Some(h), Some(w)) = (q.int::<u32>("h")?, q.int::<u32>("w")?) else {
        return Err(ApiError::bad_request("h and w must be given"));
    };
    let id = id.to_string();
    api.blocking(move |e| e.resize_tty(&id, w, h)).await?;
    Ok(empty(StatusCode::OK))
}

/// `POST /containers/{id}/update`: new resource limits (zero means "unchanged", as the
/// CLI sends every field).
async fn update(api: &DockerApi, req: Request, id: &str) -> Result<Response, ApiError> {
    let body: ContainerUpdateBody = read_json(req).await?;
    if body.restart_policy.as_ref().is_some_and(|p| {
        p.name
            .is_some_and(|n| !matches!(n, RestartPolicyNameEnum::EMPTY | RestartPolicyNameEnum::NO))
    }) {
        return Err(ApiError::bad_request(
            "changing the restart policy is not supported by skiff yet",
        ));
    }
    let nonzero = |v: Option<i64>| v.filter(|n| *n != 0);
    let res = Resources {
        memory: nonzero(body.memory),
        memory_swap: nonzero(body.memory_swap),
        nano_cpus: nonzero(body.nano_cpus),
        cpu_shares: nonzero(body.cpu_shares)
            .map(|s| {
                u64::try_from(s)
                    .map_err(|_| ApiError::bad_request("CpuShares must not be negative"))
            })
            .transpose()?,
        cpuset_cpus: body.cpuset_cpus.filter(|c| !c.is_empty()),
        pids_limit: nonzero(body.pids_limit),
    };
    let id = id.to_string();
    api.blocking(move |e| e.update_container(&id, &res)).await?;
    Ok(json(
        StatusCode::OK,
        &ContainerUpdateResponse {
            warnings: Some(Vec::new()),
        },
    ))
}

/// `GET /containers/{id}/top`: the container's processes.
async fn top(api: &DockerApi, id: &str, q: &Query) -> Result<Response, ApiError> {
    if let Some(args) = q.non_empty("ps_args").filter(|a| *a != "-ef") {
        return Err(ApiError::bad_request(format!(
            "ps_args {args:?} are not supported by skiff (it lists PID, PPID, UID and command)"
        )));
    }
    let id = id.to_string();
    let procs = api.blocking(move |e| e.top_container(&id)).await?;
    let resp = ContainerTopResponse {
        titles: Some(["UID", "PID", "PPID", "CMD"].map(String::from).to_vec()),
        processes: Some(
            procs
                .into_iter()
                .map(|p| {
                    vec![
                        p.uid.to_string(),
                        p.pid.to_string(),
                        p.ppid.to_string(),
                        p.cmd,
                    ]
                })
                .collect(),
        ),
    };
    Ok(json(StatusCode::OK, &resp))
}

/// `GET /containers/{id}/json`.
async fn inspect(api: &DockerApi, id: &str) -> Result<Response, ApiError> {
    let id = id.to_string();
    let v = api.blocking(move |e| e.inspect_container(&id)).await?;
    Ok(json(StatusCode::OK, &v))
}

/// `DELETE /containers/{id}?force=&v=`.
async fn remove(api: &DockerApi, id: &str, q: &Query) -> Result<Response, ApiError> {
    if q.flag("link") {
        return Err(ApiError::bad_request("links are not available in skiff"));
    }
    let removed = watch::remove_container(api.engine(), id, q.flag("force"), q.flag("v")).await?;
    api.watch.removed(api.engine(), &removed);
    Ok(empty(StatusCode::NO_CONTENT))
}

/// `POST /containers/prune`.
async fn prune(api: &DockerApi, q: &Query) -> Result<Response, ApiError> {
    if !q.filters()?.is_empty() {
        return Err(ApiError::bad_request(
            "prune filters are not supported by skiff yet",
        ));
    }
    let removed = api.blocking(|e| e.prune_containers()).await?;
    for id in &removed {
        api.watch.removed(api.engine(), id);
    }
    let resp = ContainerPruneResponse {
        containers_deleted: Some(removed),
        space_reclaimed: Some(0),
    };
    Ok(json(StatusCode::OK, &resp))
}

/// `GET /containers/json?all=&filters=`.
async fn list(api: &DockerApi, q: &Query) -> Result<Response, ApiError> {
    let mut filters = Vec::new();
    for (k, v) in q.filters()? {
        filters.push(Filter::parse(&format!("{k}={v}"))?);
    }
    let limit = q.int::<i64>("limit")?.filter(|n| *n > 0);
    let all = q.flag("all") || limit.is_some();
    let mut recs = api
        .blocking(move |e| {
            let recs = e.list_containers(all, &filters)?;
            let ports: Vec<Vec<PortBinding>> = recs
                .iter()
                .map(|r| e.container_ports(&r.id).unwrap_or_default())
                .collect();
            Ok(recs.into_iter().zip(ports).collect::<Vec<_>>())
        })
        .await?;
    if let Some(n) = limit {
        recs.truncate(n as usize);
    }
    let now = chrono::Utc::now();
    let out: Vec<ContainerSummary> = recs
        .iter()
        .map(|(r, ports)| ContainerSummary {
            ports: Some(port_summaries(ports)),
            ..summary(r, now)
        })
        .collect();
    Ok(json(StatusCode::OK, &out))
}

fn unix(rfc3339: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// Docker's PortSummary list of published ports.
fn port_summaries(ports: &[PortBinding]) -> Vec<PortSummary> {
    ports
        .iter()
        .map(|b| PortSummary {
            ip: Some(b.host_ip.to_string()),
            private_port: b.container_port,
            public_port: Some(b.host_port),
            typ: Some(match b.proto {
                Proto::Tcp => PortSummaryTypeEnum::TCP,
                Proto::Udp => PortSummaryTypeEnum::UDP,
            }),
        })
        .collect()
}

/// Docker's ContainerSummary of a record.
pub fn summary(r: &ContainerRecord, now: chrono::DateTime<chrono::Utc>) -> ContainerSummary {
    let state = match r.state.status {
        Status::Created => ContainerSummaryStateEnum::CREATED,
        Status::Running => ContainerSummaryStateEnum::RUNNING,
        Status::Paused => ContainerSummaryStateEnum::PAUSED,
        Status::Restarting => ContainerSummaryStateEnum::RESTARTING,
        Status::Removing => ContainerSummaryStateEnum::REMOVING,
        Status::Exited => ContainerSummaryStateEnum::EXITED,
        Status::Dead => ContainerSummaryStateEnum::DEAD,
    };
    let network = r.options.network.docker_name();
    ContainerSummary {
        id: Some(r.id.clone()),
        names: Some(vec![format!("/{}", r.name)]),
        image: Some(r.image_name.clone()),
        image_id: Some(r.image_id.clone()),
        command: Some(r.command.join(" ")),
        created: Some(unix(&r.created).map(|t| t.timestamp()).unwrap_or(0)),
        ports: Some(Vec::new()),
        labels: Some(
            r.options
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<HashMap<_, _>>(),
        ),
        state: Some(state),
        status: Some(status_text(r, now)),
        host_config: Some(ContainerSummaryHostConfig {
            network_mode: Some(network),
            ..Default::default()
        }),
        network_settings: Some(ContainerSummaryNetworkSettings {
            networks: Some(HashMap::new()),
        }),
        mounts: Some(Vec::new()),
        ..Default::default()
    }
}

/// `Up 3 seconds`, `Exited (0) 2 minutes ago`, `Created`, ... as `docker ps` shows.
pub fn status_text(r: &ContainerRecord, now: chrono::DateTime<chrono::Utc>) -> String {
    let since = |t: &str| {
        unix(t)
            .map(|t| human_duration((now - t).num_seconds()))
            .unwrap_or_else(|| "Less than a second".into())
    };
    let s = &r.state;
    match s.status {
        Status::Created => "Created".into(),
        Status::Running => format!("Up {}", since(&s.started_at)),
        Status::Paused => format!("Up {} (Paused)", since(&s.started_at)),
        Status::Restarting => format!("Restarting ({}) {} ago", s.exit_code, since(&s.finished_at)),
        Status::Removing => "Removal In Progress".into(),
        Status::Exited if s.finished_at.is_empty() => format!("Exited ({})", s.exit_code),
        Status::Exited => format!("Exited ({}) {} ago", s.exit_code, since(&s.finished_at)),
        Status::Dead => "Dead".into(),
    }
}

/// Docker's HumanDuration (go-units).
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, d) = (s / 60, s / 86400);
    let hours = (s as f64 / 3600.0).round() as i64;
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".into(),
        _ if m < 60 => format!("{m} minutes"),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{d} days"),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", d / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", d / 30),
        _ => format!("{} years", d / 365),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_daemon::container::options::CreateOptions;
    use skiff_daemon::container::record::State;

    fn rec(status: Status, started: &str, finished: &str, code: i32) -> ContainerRecord {
        ContainerRecord {
            id: "a".repeat(64),
            name: "web".into(),
            created: "2024-01-01T00:00:00Z".into(),
            image_name: "alpine".into(),
            image_id: "sha256:abc".into(),
            top_layer: String::new(),
            command: vec!["sleep".into(), "30".into()],
            options: CreateOptions::default(),
            state: State {
                status,
                started_at: started.into(),
                finished_at: finished.into(),
                exit_code: code,
                ..Default::default()
            },
            runtime: "oci".into(),
            log_path: Default::default(),
            bundle: Default::default(),
        }
    }

    #[test]
    fn status_like_docker_ps() {
        let now = unix("2024-01-01T00:10:00Z").unwrap();
        let r = rec(Status::Running, "2024-01-01T00:09:57Z", "", 0);
        assert_eq!(status_text(&r, now), "Up 3 seconds");
        let r = rec(
            Status::Exited,
            "2024-01-01T00:00:01Z",
            "2024-01-01T00:08:00Z",
            3,
        );
        assert_eq!(status_text(&r, now), "Exited (3) 2 minutes ago");
        assert_eq!(
            status_text(&rec(Status::Created, "", "", 0), now),
            "Created"
        );
        let r = rec(Status::Paused, "2024-01-01T00:09:00Z", "", 0);
        assert_eq!(status_text(&r, now), "Up About a minute (Paused)");
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(3600 * 30), "30 hours");
        assert_eq!(human_duration(86400 * 20), "2 weeks");
    }

    #[test]
    fn summary_shape() {
        let now = unix("2024-01-01T00:10:00Z").unwrap();
        let s = summary(&rec(Status::Running, "2024-01-01T00:09:57Z", "", 0), now);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["Names"][0], "/web");
        assert_eq!(v["Command"], "sleep 30");
        assert_eq!(v["Created"], 1704067200);
        assert_eq!(v["State"], "running");
        assert_eq!(v["Ports"], serde_json::json!([]));
        assert_eq!(v["HostConfig"]["NetworkMode"], "none");
    }
}
