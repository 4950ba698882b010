//! An attached stream from skiffd (container attach or exec start): its output on our
//! stdout/stderr, our stdin into it (with docker's detach keys on a TTY), the terminal
//! in raw mode and resized with ours, and signals passed on to the container.

use std::io::{Read, Write};
use std::pin::Pin;
use std::sync::atomic::Ordering;

use bollard::container::LogOutput;
use futures_util::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::Remote;
use crate::commands::attach::DetachScanner;

/// The two halves of a hijacked connection.
pub struct Streams {
    /// What the container (or exec) writes.
    pub output: Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>,
    /// Where our stdin goes.
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
}

/// How a stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The other side closed it: the process is gone.
    Closed,
    /// The user typed the detach keys.
    Detached,
}

/// What to resize when our terminal changes.
#[derive(Clone)]
pub enum Resize {
    /// A container's terminal.
    Container(String),
    /// An exec's terminal.
    Exec(String),
}

/// Options of one attached session.
pub struct Pump {
    /// Copy our stdin.
    pub stdin: bool,
    /// The process has a terminal.
    pub tty: bool,
    /// Detach sequence (TTY only; empty: never).
    pub detach_keys: Vec<u8>,
    /// Pass signals on to this container (non-TTY only).
    pub sig_proxy: Option<String>,
    /// Terminal to keep our size.
    pub resize: Option<Resize>,
}

fn start_resizer(r: &Remote, what: Resize) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    let docker = r.docker.clone();
    let handle = tokio::runtime::Handle::current();
    crate::tty::follow_size(move |cols, rows| {
        let (w, h) = (
            i32::try_from(cols).unwrap_or(80),
            i32::try_from(rows).unwrap_or(24),
        );
        let docker = docker.clone();
        let what = what.clone();
        // follow_size calls this on its own thread, outside the runtime.
        let _ = handle.block_on(async move {
            match what {
                Resize::Container(id) => {
                    let o = bollard::query_parameters::ResizeContainerTTYOptionsBuilder::new()
                        .w(w)
                        .h(h)
                        .build();
                    docker.resize_container_tty(&id, o).await
                }
                Resize::Exec(id) => {
                    let o = bollard::query_parameters::ResizeExecOptionsBuilder::new()
                        .w(w)
                        .h(h)
                        .build();
                    docker.resize_exec(&id, o).await
                }
            }
        });
    })
}

/// Reads our stdin on a thread (it blocks), passing chunks on until EOF (`None`) or the
/// detach keys (reported on `detached`).
fn read_stdin(
    keys: Vec<u8>,
    chunks: tokio::sync::mpsc::Sender<Option<Vec<u8>>>,
    detached: tokio::sync::oneshot::Sender<()>,
) {
    std::thread::spawn(move || {
        let mut scanner = DetachScanner::new(keys);
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 4096];
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    let _ = chunks.blocking_send(None);
                    return;
                }
                Ok(n) => n,
            };
            let (pass, detach) = scanner.feed(&buf[..n]);
            if !pass.is_empty() && chunks.blocking_send(Some(pass)).is_err() {
                return;
            }
            if detach {
                let _ = detached.send(());
                return;
            }
        }
    });
}

/// The exit code of what is attached, from a wait already sent to skiffd.
pub type ExitWait = tokio::task::JoinHandle<super::Result<i64>>;

/// Connects `streams` to our stdio until the other side closes, the process exits (as
/// `exit` reports; the output then drains for a moment) or the user detaches.
pub async fn pump(
    r: &Remote,
    streams: Streams,
    p: Pump,
    mut exit: Option<ExitWait>,
) -> (Ended, Option<super::Result<i64>>) {
    let Streams { mut output, input } = streams;
    // Raw only when our keystrokes go to the container (as docker): otherwise ctrl-c
    // must still reach us.
    let raw = (p.tty && p.stdin).then(crate::tty::RawMode::enter);
    let resizer = match (&p.resize, p.tty) {
        (Some(what), true) => Some(start_resizer(r, what.clone())),
        _ => None,
    };
    let (detach_tx, mut detach_rx) = tokio::sync::oneshot::channel();
    if p.stdin {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Option<Vec<u8>>>(16);
        let keys = if p.tty {
            p.detach_keys.clone()
        } else {
            Vec::new()
        };
        read_stdin(keys, tx, detach_tx);
        let mut input = input;
        tokio::spawn(async move {
            while let Some(chunk) = rx.recv().await {
                match chunk {
                    Some(b) => {
                        if input.write_all(&b).await.is_err() || input.flush().await.is_err() {
                            return;
                        }
                    }
                    None => {
                        // Half-close: the container's stdin ends (with StdinOnce).
                        let _ = input.shutdown().await;
                        // Keep the write half alive until the output ends.
                        std::future::pending::<()>().await;
                    }
                }
            }
        });
    } else {
        drop(detach_tx);
        // Holding the write half open keeps the connection up; dropping it is fine too
        // because skiffd ignores input it was not asked to attach.
        drop(input);
    }
    let mut sig_rx = crate::commands::attach::proxy_signals(p.sig_proxy.is_some() && !p.tty);
    let mut detach_open = true;
    let mut code = None;
    let ended = loop {
        tokio::select! {
            c = async { exit.as_mut().expect("guarded").await }, if exit.is_some() && code.is_none() => {
                exit = None;
                code = Some(c.unwrap_or_else(|e| Err(super::RemoteError::Connection {
                    socket: r.socket.display().to_string(),
                    why: format!("waiting for the exit: {e}"),
                })));
                // What the process wrote last may still be on its way.
                drain(&mut output).await;
                break Ended::Closed;
            }
            item = output.next() => match item {
                Some(Ok(out)) => write_output(out),
                Some(Err(e)) => {
                    tracing::debug!("attached stream: {e}");
                    break Ended::Closed;
                }
                None => break Ended::Closed,
            },
            d = &mut detach_rx, if detach_open => {
                if d.is_ok() {
                    break Ended::Detached;
                }
                detach_open = false;
            }
            Some(name) = sig_rx.recv() => {
                if let Some(id) = &p.sig_proxy {
                    let o = bollard::query_parameters::KillContainerOptionsBuilder::new()
                        .signal(name)
                        .build();
                    let _ = r.docker.kill_container(id, Some(o)).await;
                }
            }
        }
    };
    if let Some(flag) = resizer {
        flag.store(true, Ordering::Release);
    }
    drop(raw);
    if ended == Ended::Detached {
        eprintln!("read escape sequence");
    }
    if let (None, Some(exit)) = (&code, exit) {
        if ended == Ended::Closed {
            code = Some(exit.await.unwrap_or_else(|e| {
                Err(super::RemoteError::Connection {
                    socket: r.socket.display().to_string(),
                    why: format!("waiting for the exit: {e}"),
                })
            }));
        }
    }
    (ended, code)
}

/// Writes out what arrives until the stream ends or is quiet for a moment.
async fn drain(
    output: &mut Pin<Box<dyn Stream<Item = Result<LogOutput, bollard::errors::Error>> + Send>>,
) {
    let quiet = std::time::Duration::from_millis(300);
    while let Ok(Some(Ok(out))) = tokio::time::timeout(quiet, output.next()).await {
        write_output(out);
    }
}

fn write_output(out: LogOutput) {
    match out {
        LogOutput::StdErr { message } => {
            let mut e = std::io::stderr().lock();
            let _ = e.write_all(&message).and_then(|_| e.flush());
        }
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(&message).and_then(|_| o.flush());
        }
        LogOutput::StdIn { .. } => {}
    }
}
