//! Exec on the wire: `POST /containers/{id}/exec` (create), `POST /exec/{id}/start`
//! (a hijacked connection carrying the process's stdio: multiplexed frames without a
//! TTY, raw bytes with one; or detached), `POST /exec/{id}/resize` and
//! `GET /exec/{id}/json` (ExecInspect, where the client reads the exit code).
//!
//! The engine keeps the exec instances ([`Engine::exec_create_tracked`] and friends);
//! this module only moves bytes between the connection and the process's FIFOs. The
//! exit code is recorded before the stream ends, so a client that inspects the exec
//! right after its stream closed sees it.
//!
//! [`Engine::exec_create_tracked`]: skiff_daemon::Engine::exec_create_tracked

use std::time::Duration;

use bollard_stubs::models::{ExecConfig, ExecInspectResponse, ExecStartConfig, ProcessConfig};
use http_body_util::BodyExt;
use hyper::body::Bytes;
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, UPGRADE};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use skiff_daemon::container::exec::ExecOptions;
use skiff_daemon::container::exec_registry::{ExecInstance, ExecState};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::mpsc;

use super::attach::frame;
use super::version::ApiVersion;
use super::{empty, json, read_json, ApiError, DockerApi, Query, Request, Response};

/// How long output may still arrive after the process exited (a background child can
/// hold the stream open; the stream ends anyway after this).
const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(2);

/// The answer to an exec create: `{"Id": ...}`.
#[derive(Debug, Serialize)]
struct Created {
    #[serde(rename = "Id")]
    id: String,
}

/// `POST /containers/{id}/exec`.
pub async fn create(api: &DockerApi, req: Request, container: &str) -> Result<Response, ApiError> {
    let cfg: ExecConfig = read_json(req).await?;
    let opts = exec_options(cfg.clone())?;
    let size = console_size(cfg.console_size.as_deref())?;
    let container = container.to_string();
    let id = api
        .blocking(move |e| e.exec_create_tracked(&container, &opts))
        .await?;
    if let (Some((h, w)), true) = (size, cfg.tty.unwrap_or(false)) {
        let id = id.clone();
        // Kept by the shim until the terminal exists.
        let _ = api.blocking(move |e| e.exec_resize_id(&id, w, h)).await;
    }
    Ok(json(StatusCode::CREATED, &Created { id }))
}

/// The engine's exec options from Docker's ExecConfig.
pub fn exec_options(cfg: ExecConfig) -> Result<ExecOptions, ApiError> {
    let cmd = cfg.cmd.unwrap_or_default();
    if cmd.is_empty() {
        return Err(ApiError::bad_request("No exec command specified"));
    }
    let (stdin, stdout, stderr) = (
        cfg.attach_stdin.unwrap_or(false),
        cfg.attach_stdout.unwrap_or(false),
        cfg.attach_stderr.unwrap_or(false),
    );
    Ok(ExecOptions {
        cmd,
        env: cfg.env.unwrap_or_default(),
        workdir: cfg.working_dir.filter(|w| !w.is_empty()),
        user: cfg.user.filter(|u| !u.is_empty()),
        stdin,
        tty: cfg.tty.unwrap_or(false),
        privileged: cfg.privileged.unwrap_or(false),
        detach: !(stdin || stdout || stderr),
    })
}

/// Docker's `ConsoleSize` ([height, width]), checked.
fn console_size(v: Option<&[usize]>) -> Result<Option<(u32, u32)>, ApiError> {
    match v {
        None | Some([]) => Ok(None),
        Some([h, w]) => {
            let conv = |n: usize| {
                u32::try_from(n).map_err(|_| ApiError::bad_request("ConsoleSize is too large"))
            };
            Ok(Some((conv(*h)?, conv(*w)?)).filter(|(h, w)| *h > 0 && *w > 0))
        }
        Some(_) => Err(ApiError::bad_request(
            "ConsoleSize must have two values (height, width)",
        )),
    }
}

/// Routes under `/exec/`.
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
        (&Method::POST, [id, "start"]) => start(api, req, id, version).await,
        (&Method::POST, [id, "resize"]) => resize(api, id, q).await,
        (&Method::GET, [id, "json"]) => inspect(api, id).await,
        _ => Err(ApiError::not_found("page not found")),
    }
}

/// `GET /exec/{id}/json`.
async fn inspect(api: &DockerApi, id: &str) -> Result<Response, ApiError> {
    let id = id.to_string();
    let inst = api.blocking(move |e| e.exec_instance(&id)).await?;
    Ok(json(StatusCode::OK, &inspect_response(&inst)))
}

/// Docker's ExecInspect of an exec instance.
pub fn inspect_response(inst: &ExecInstance) -> ExecInspectResponse {
    let o = &inst.options;
    let (running, pid, code) = match inst.state {
        ExecState::Created => (false, 0, None),
        ExecState::Starting => (true, 0, None),
        ExecState::Running { pid } => (true, pid, None),
        ExecState::Exited { code } => (false, 0, Some(i64::from(code))),
    };
    ExecInspectResponse {
        can_remove: Some(false),
        detach_keys: Some(String::new()),
        id: Some(inst.session.exec_id.clone()),
        running: Some(running),
        exit_code: code,
        process_config: Some(ProcessConfig {
            privileged: Some(o.privileged),
            user: Some(o.user.clone().unwrap_or_default()),
            tty: Some(o.tty),
            entrypoint: o.cmd.first().cloned(),
            arguments: Some(o.cmd.iter().skip(1).cloned().collect()),
        }),
        open_stdin: Some(o.stdin),
        open_stderr: Some(!o.detach),
        open_stdout: Some(!o.detach),
        container_id: Some(inst.session.container.clone()),
        pid: Some(i64::from(pid)),
    }
}

/// `POST /exec/{id}/resize?h=&w=`.
async fn resize(api: &DockerApi, id: &str, q: &Query) -> Result<Response, ApiError> {
    let (Some(h), Some(w)) = (q.int::<u32>("h")?, q.int::<u32>("w")?) else {
        return Err(ApiError::bad_request("h and w must be given"));
    };
    let id = id.to_string();
    api.blocking(move |e| e.exec_resize_id(&id, w, h)).await?;
    Ok(empty(StatusCode::OK))
}

/// `POST /exec/{id}/start` with `{"Detach": bool, "Tty": bool}`.
///
/// Detached: starts it and answers 200. Otherwise the connection is hijacked (`101
/// UPGRADED`) and carries the process's stdio until it ends; a process that cannot be
/// started gets its error written into the stream (the client then reads the exit code,
/// 126 or 127, from ExecInspect), as dockerd does.
async fn start(
    api: &DockerApi,
    mut req: Request,
    id: &str,
    version: ApiVersion,
) -> Result<Response, ApiError> {
    let on_upgrade = hyper::upgrade::on(&mut req);
    let upgrade_asked = req
        .headers()
        .get(UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"tcp"));
    let cfg: ExecStartConfig = read_json(req).await?;
    let inst = {
        let id = id.to_string();
        api.blocking(move |e| e.exec_instance(&id)).await?
    };
    if inst.state != ExecState::Created {
        return Err(ApiError::conflict(format!(
            "Exec command {id} has already run"
        )));
    }
    let rec = api.container(&inst.session.container).await?;
    if !rec.state.status.has_task() {
        return Err(ApiError::conflict(format!(
            "Container {} is not running",
            rec.id
        )));
    }
    if rec.state.status == skiff_daemon::container::record::Status::Paused {
        return Err(ApiError::conflict(format!(
            "Container {} is paused, unpause the container before exec",
            rec.id
        )));
    }
    if cfg.detach.unwrap_or(false) {
        let (api2, id2) = (api.clone(), id.to_string());
        api.blocking(move |e| e.exec_begin(&id2).map(|_| ()))
            .await?;
        let id2 = id.to_string();
        tokio::spawn(async move {
            run_session::<tokio::io::Empty>(&api2, inst, None, true).await;
            tracing::debug!(exec = %id2, "detached exec ended");
        });
        return Ok(empty(StatusCode::OK));
    }
    if !upgrade_asked {
        return Err(ApiError::bad_request(
            "exec start needs a connection upgrade (Connection: Upgrade, Upgrade: tcp), or Detach",
        ));
    }
    let tty = inst.options.tty;
    let api2 = api.clone();
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(u) => run_session(&api2, inst, Some(TokioIo::new(u)), false).await,
            // The client left before the upgrade: the exec stays created, as in dockerd.
            Err(e) => tracing::debug!(error = %e, "exec upgrade failed"),
        }
    });
    let content_type = if !tty && version >= ApiVersion(1, 42) {
        "application/vnd.docker.multiplexed-stream"
    } else {
        "application/vnd.docker.raw-stream"
    };
    let mut r = hyper::Response::new(http_body_util::Empty::new().boxed_unsync());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    r.extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(b"UPGRADED"));
    let h = r.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    Ok(r)
}

/// Output of the process: which stream, and the bytes.
type Chunk = (u8, Bytes);

/// Reads a FIFO until EOF (every writer closed) or until nobody listens.
fn spawn_reader(mut rx: pipe::Receiver, stream: u8, tx: mpsc::Sender<Chunk>) {
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            tokio::select! {
                n = rx.read(&mut buf) => match n {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if tx.send((stream, Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                            return;
                        }
                    }
                },
                _ = tx.closed() => return,
            }
        }
    });
}

/// Starts the exec (unless `started`) and moves bytes between `client` (none for
/// a detached exec: output is read and dropped) and the process until it ends.
async fn run_session<S>(api: &DockerApi, inst: ExecInstance, client: Option<S>, started: bool)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let id = inst.session.exec_id.clone();
    let tty = inst.options.tty;
    let (out_tx, mut out_rx) = mpsc::channel::<Chunk>(64);
    // Read ends first, non-blocking: they keep buffered output alive however fast the
    // process is, and see EOF only once the process (and the shim) closed theirs.
    let mut readers = Vec::new();
    if !inst.options.detach {
        readers.push((inst.session.stdout.clone(), 1u8));
        if !tty {
            readers.push((inst.session.stderr.clone(), 2u8));
        }
    }
    let mut opened = Vec::new();
    for (path, stream) in readers {
        match pipe::OpenOptions::new().open_receiver(&path) {
            Ok(rx) => opened.push((rx, stream)),
            Err(e) => {
                tracing::debug!(exec = %id, error = %e, path = %path.display(), "opening exec output")
            }
        }
    }
    let mut client = client;
    if !started {
        let id2 = id.clone();
        if let Err(e) = api.blocking(move |e| e.exec_begin(&id2)).await {
            if let Some(c) = client.as_mut() {
                let msg = format!("OCI runtime exec failed: {}\r\n", e.message);
                let b = if tty {
                    Bytes::from(msg)
                } else {
                    frame("stdout", msg.as_bytes())
                };
                let _ = c.write_all(&b).await;
                let _ = c.shutdown().await;
            }
            return;
        }
    }
    for (rx, stream) in opened {
        spawn_reader(rx, stream, out_tx.clone());
    }
    drop(out_tx);
    let mut stdin = match (&inst.session.stdin, client.is_some()) {
        (Some(p), true) => pipe::OpenOptions::new().open_sender(p).ok(),
        _ => None,
    };
    let (exit_tx, mut exit_rx) = tokio::sync::oneshot::channel::<()>();
    {
        let (engine, id) = (api.engine().clone(), id.clone());
        tokio::task::spawn_blocking(move || {
            if let Err(e) = engine.exec_finish(&id) {
                tracing::debug!(exec = %id, error = %e, "exec finish");
            }
            let _ = exit_tx.send(());
        });
    }
    let mut buf = vec![0u8; 8192];
    let mut reading = client.is_some();
    let mut exited = false;
    let drain = tokio::time::sleep(Duration::from_secs(u64::MAX / 4));
    tokio::pin!(drain);
    loop {
        tokio::select! {
            chunk = out_rx.recv() => match chunk {
                Some((stream, data)) => {
                    if let Some(c) = client.as_mut() {
                        let b = if tty { data } else {
                            frame(if stream == 2 { "stderr" } else { "stdout" }, &data)
                        };
                        if c.write_all(&b).await.is_err() || c.flush().await.is_err() {
                            // The client left; the process goes on, its output is dropped.
                            client = None;
                            reading = false;
                            stdin = None;
                        }
                    }
                }
                None => {
                    if exited {
                        break;
                    }
                    // Output closed before the exit was recorded: wait for it.
                    let _ = (&mut exit_rx).await;
                    break;
                }
            },
            r = &mut exit_rx, if !exited => {
                let _ = r;
                exited = true;
                drain.as_mut().reset(tokio::time::Instant::now() + DRAIN_AFTER_EXIT);
            }
            _ = &mut drain, if exited => break,
            n = read_client(&mut client, &mut buf), if reading => match n {
                Ok(0) | Err(_) => {
                    // Half-close (or no stdin): the process's stdin ends.
                    reading = false;
                    stdin = None;
                }
                Ok(n) => {
                    if let Some(w) = stdin.as_mut() {
                        if w.write_all(&buf[..n]).await.is_err() {
                            stdin = None;
                        }
                    }
                }
            },
        }
    }
    drop(stdin);
    if let Some(mut c) = client {
        let _ = c.shutdown().await;
    }
}

async fn read_client<S: AsyncRead + Unpin>(
    client: &mut Option<S>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match client {
        Some(c) => c.read(buf).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_config_becomes_options() {
        let cfg: ExecConfig = serde_json::from_str(
            r#"{"AttachStdout":true,"AttachStderr":true,"Cmd":["sh","-c","id"],"User":"","WorkingDir":"/tmp","Env":["A=1"]}"#,
        )
        .unwrap();
        let o = exec_options(cfg).unwrap();
        assert_eq!(o.cmd, ["sh", "-c", "id"]);
        assert_eq!(o.workdir.as_deref(), Some("/tmp"));
        assert_eq!(o.user, None);
        assert!(!o.detach && !o.stdin && !o.tty);
        let detached: ExecConfig = serde_json::from_str(r#"{"Cmd":["true"]}"#).unwrap();
        assert!(exec_options(detached).unwrap().detach);
        assert!(exec_options(ExecConfig::default()).is_err());
    }

    #[test]
    fn console_size_is_height_then_width() {
        assert_eq!(console_size(Some(&[24, 80])).unwrap(), Some((24, 80)));
        assert_eq!(console_size(Some(&[0, 0])).unwrap(), None);
        assert_eq!(console_size(None).unwrap(), None);
        assert!(console_size(Some(&[1, 2, 3])).is_err());
    }
}
