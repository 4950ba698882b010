//! A container's output on the wire: `POST /containers/{id}/attach` (a hijacked
//! connection, answered `101 UPGRADED`) and `GET /containers/{id}/logs`, both read from
//! the container's json-file log. Without a TTY the streams are multiplexed in Docker's
//! frames: an 8-byte header {stream (1 stdout, 2 stderr), 0, 0, 0, big-endian u32
//! length} before each chunk.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::{Bytes, Frame};
use hyper::header::{HeaderValue, CONNECTION, CONTENT_TYPE, UPGRADE};
use hyper::StatusCode;
use skiff_daemon::container::logs::{LogEntry, LogOptions};
use skiff_daemon::container::record::{ContainerRecord, Status};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{broadcast, mpsc};

use super::bridge::{peer_gone, Hijacked};
use super::version::ApiVersion;
use super::watch::{Event, RunEnd};
use super::{ApiError, DockerApi, Query, Request, Response};

/// Content type of a multiplexed stream (API 1.42 and later).
const MULTIPLEXED: &str = "application/vnd.docker.multiplexed-stream";
/// Content type of a raw stream (TTY, or older API versions).
const RAW: &str = "application/vnd.docker.raw-stream";

/// One chunk of output in Docker's stream framing.
pub fn frame(stream: &str, data: &[u8]) -> Bytes {
    let kind = if stream == "stderr" { 2u8 } else { 1u8 };
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    let mut b = Vec::with_capacity(8 + data.len());
    b.extend_from_slice(&[kind, 0, 0, 0]);
    b.extend_from_slice(&len.to_be_bytes());
    b.extend_from_slice(&data[..len as usize]);
    Bytes::from(b)
}

/// How a container's output goes on the wire.
#[derive(Debug, Clone, Copy)]
struct Framing {
    multiplexed: bool,
    timestamps: bool,
}

impl Framing {
    fn for_container(rec: &ContainerRecord, timestamps: bool) -> Self {
        Framing {
            multiplexed: !rec.options.tty,
            timestamps,
        }
    }

    fn content_type(self, version: ApiVersion) -> &'static str {
        if self.multiplexed && version >= ApiVersion(1, 42) {
            MULTIPLEXED
        } else {
            RAW
        }
    }

    fn encode(self, e: &LogEntry) -> Bytes {
        let data = if self.timestamps {
            format!("{} {}", e.time, e.line)
        } else {
            e.line.clone()
        };
        if self.multiplexed {
            frame(&e.stream, data.as_bytes())
        } else {
            Bytes::from(data)
        }
    }
}

/// A response body fed from a channel; it ends when every sender is gone. Dropping it
/// (the client went away) closes the channel, which tells the producer to stop.
pub struct ChannelBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// A 200 response streaming what arrives on `rx`.
pub fn channel_response(rx: mpsc::Receiver<Bytes>, content_type: &'static str) -> Response {
    let mut r = hyper::Response::new(ChannelBody(rx).boxed_unsync());
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Follows `rec`'s log on a blocking thread, sending encoded chunks to `tx` until the
/// log ends (with `follow`: until the run ends or the receiver is dropped).
fn spawn_follower(
    api: &DockerApi,
    rec: &ContainerRecord,
    events: broadcast::Receiver<Event>,
    opts: LogOptions,
    framing: Framing,
    tx: mpsc::Sender<Bytes>,
) -> tokio::task::JoinHandle<()> {
    let engine = api.engine().clone();
    let id = rec.id.clone();
    let end = opts.follow.then(|| {
        let gone = tx.clone();
        RunEnd::new(
            api.watch.clone(),
            events,
            engine.clone(),
            rec.clone(),
            Box::new(move || gone.is_closed()),
        )
    });
    tokio::task::spawn_blocking(move || {
        let done = || end.as_ref().is_none_or(RunEnd::ended);
        let result = engine.read_logs(&id, &opts, Some(&done), &mut |e| {
            tx.blocking_send(framing.encode(e)).is_ok()
        });
        if let Err(e) = result {
            tracing::debug!(container = %id, error = %e, "following log");
        }
    })
}

/// Feeds what an attached client sends to the container's stdin FIFO (`-i`), which
/// appears when the container starts: bytes that come earlier wait. The client's EOF
/// closes the container's stdin (Docker's StdinOnce, which `docker run -i` sets).
/// Ends when the input is delivered, or when `over` is set (the attach ended).
fn spawn_stdin(
    api: &DockerApi,
    rec: &ContainerRecord,
    input: std::sync::mpsc::Receiver<Bytes>,
    over: Arc<AtomicBool>,
) {
    let (engine, rec) = (api.engine().clone(), rec.clone());
    std::thread::spawn(move || {
        use std::io::Write;
        use std::sync::mpsc::RecvTimeoutError;
        let mut pending: Vec<Bytes> = Vec::new();
        let mut fifo: Option<std::fs::File> = None;
        let mut closed = false;
        loop {
            match input.recv_timeout(Duration::from_millis(20)) {
                Ok(b) => pending.push(b),
                Err(RecvTimeoutError::Disconnected) => closed = true,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if fifo.is_none() {
                fifo = engine
                    .stdin_fifo(&rec)
                    .and_then(|p| std::fs::OpenOptions::new().write(true).open(p).ok());
            }
            if let Some(f) = fifo.as_mut() {
                for b in pending.drain(..) {
                    if f.write_all(&b).is_err() {
                        return;
                    }
                }
                if closed {
                    return; // dropping the FIFO is EOF for the container
                }
            }
            if over.load(Ordering::Acquire) {
                return;
            }
        }
    });
}

/// `POST /containers/{id}/attach?stream=&stdout=&stderr=&logs=&stdin=`.
///
/// The docker CLI attaches before it starts the container, so the follower waits for
/// the log to appear and ends when that run exits (or fails to start, or the container
/// is removed). With `stdin=1` on a container created with OpenStdin (`-i`), what the
/// client sends goes to the container's stdin; otherwise it is read and dropped.
pub async fn attach(
    api: &DockerApi,
    mut req: Request,
    id: &str,
    q: &Query,
    version: ApiVersion,
) -> Result<Response, ApiError> {
    // Subscribe before reading the record so no exit between the two is missed.
    let events = api.watch.subscribe();
    let rec = api.container(id).await?;
    match rec.state.status {
        Status::Paused => {
            return Err(ApiError::conflict(format!(
                "container {id} is paused, unpause the container before attach"
            )))
        }
        Status::Restarting => {
            return Err(ApiError::conflict(format!(
                "container {id} is restarting, wait until the container is running"
            )))
        }
        _ => {}
    }
    let upgrade_asked = req
        .headers()
        .get(UPGRADE)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"tcp"));
    if !upgrade_asked {
        return Err(ApiError::bad_request(
            "attach needs a connection upgrade (Connection: Upgrade, Upgrade: tcp)",
        ));
    }
    let (stdout, stderr) = (q.flag("stdout"), q.flag("stderr"));
    let opts = LogOptions {
        follow: q.flag("stream"),
        // Without logs=1 only output from now on.
        tail: if q.flag("logs") { None } else { Some(0) },
        stdout,
        stderr,
        ..Default::default()
    };
    let stdin = q.flag("stdin");
    let framing = Framing::for_container(&rec, false);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let api2 = api.clone();
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                tracing::debug!(error = %e, "attach upgrade failed");
                return;
            }
        };
        let guard = api2.watch.attach(&rec.id);
        let (tx, mut rx) = mpsc::channel::<Bytes>(64);
        let follower = if stdout || stderr {
            Some(spawn_follower(&api2, &rec, events, opts, framing, tx))
        } else {
            drop(tx);
            None
        };
        let over = Arc::new(AtomicBool::new(false));
        let mut stdin_tx = (stdin && rec.options.stdin_open).then(|| {
            let (tx, rx) = std::sync::mpsc::channel();
            spawn_stdin(&api2, &rec, rx, over.clone());
            tx
        });
        let hijacked = Hijacked::new(upgraded);
        let fd = hijacked.fd;
        if let (Some(tx), false) = (&stdin_tx, hijacked.early.is_empty()) {
            let _ = tx.send(hijacked.early.clone());
        }
        let (mut rd, mut wr) = tokio::io::split(hijacked.io);
        let mut buf = vec![0u8; 8192];
        let mut reading = true;
        // Once the client stopped sending, check now and then that it is still there:
        // with nothing to write (a container that does not run), a client that left
        // would otherwise go unnoticed.
        let mut check = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = check.tick(), if !reading => {
                    if peer_gone(fd) {
                        break;
                    }
                }
                chunk = rx.recv() => match chunk {
                    Some(b) => {
                        if wr.write_all(&b).await.is_err() || wr.flush().await.is_err() {
                            break;
                        }
                    }
                    None => break,
                },
                n = rd.read(&mut buf), if reading => match n {
                    // The CLI half-closes at once when it sends no stdin, so EOF only
                    // ends reading; a client that left shows as a failed write.
                    Ok(0) | Err(_) => {
                        reading = false;
                        stdin_tx = None;
                    }
                    Ok(n) => {
                        if let Some(tx) = &stdin_tx {
                            let _ = tx.send(Bytes::copy_from_slice(&buf[..n]));
                        }
                    }
                },
            }
        }
        let _ = wr.shutdown().await;
        over.store(true, Ordering::Release);
        drop(stdin_tx);
        drop(rx);
        if let Some(f) = follower {
            let _ = f.await;
        }
        drop(guard);
    });
    let mut r = hyper::Response::new(http_body_util::Empty::new().boxed_unsync());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    r.extensions_mut()
        .insert(hyper::ext::ReasonPhrase::from_static(b"UPGRADED"));
    let h = r.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("tcp"));
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(framing.content_type(version)),
    );
    Ok(r)
}

/// `GET /containers/{id}/logs?stdout=&stderr=&follow=&tail=&timestamps=&since=&until=`.
pub async fn logs(
    api: &DockerApi,
    id: &str,
    q: &Query,
    version: ApiVersion,
) -> Result<Response, ApiError> {
    let (stdout, stderr) = (q.flag("stdout"), q.flag("stderr"));
    if !stdout && !stderr {
        return Err(ApiError::bad_request(
            "Bad parameters: you must choose at least one stream",
        ));
    }
    let tail = match q.non_empty("tail") {
        None | Some("all") => None,
        Some(n) => match n.parse::<i64>() {
            Ok(n) if n < 0 => None,
            Ok(n) => Some(n as usize),
            Err(_) => {
                return Err(ApiError::bad_request(format!(
                    "invalid value for tail: {n:?}"
                )))
            }
        },
    };
    let time = |k: &str| q.non_empty(k).filter(|v| *v != "0").map(str::to_string);
    let since = time("since");
    let until = time("until");
    for t in since.iter().chain(until.iter()) {
        skiff_daemon::container::logs::parse_time(t).map_err(ApiError::from)?;
    }
    let events = api.watch.subscribe();
    let rec = api.container(id).await?;
    // Docker follows only a container that runs; a stopped one gives what it logged.
    let follow = q.flag("follow") && rec.state.status.has_task();
    let opts = LogOptions {
        follow,
        tail,
        since,
        until,
        stdout,
        stderr,
    };
    let framing = Framing::for_container(&rec, q.flag("timestamps"));
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    spawn_follower(api, &rec, events, opts, framing, tx);
    Ok(channel_response(rx, framing.content_type(version)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_have_dockers_header() {
        let f = frame("stdout", b"hello\n");
        assert_eq!(&f[..8], &[1, 0, 0, 0, 0, 0, 0, 6]);
        assert_eq!(&f[8..], b"hello\n");
        let f = frame("stderr", &[b'x'; 300]);
        assert_eq!(&f[..8], &[2, 0, 0, 0, 0, 0, 1, 44]);
        assert_eq!(f.len(), 308);
    }

    #[test]
    fn timestamps_prefix_lines() {
        let e = LogEntry {
            stream: "stdout".into(),
            line: "hi\n".into(),
            time: "2024-01-01T00:00:00.000000001Z".into(),
        };
        let f = Framing {
            multiplexed: false,
            timestamps: true,
        };
        assert_eq!(&f.encode(&e)[..], b"2024-01-01T00:00:00.000000001Z hi\n");
        assert_eq!(f.content_type(ApiVersion(1, 47)), RAW);
        let m = Framing {
            multiplexed: true,
            timestamps: false,
        };
        assert_eq!(m.content_type(ApiVersion(1, 47)), MULTIPLEXED);
        assert_eq!(m.content_type(ApiVersion(1, 41)), RAW);
    }
}
