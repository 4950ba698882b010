//! The task's stdio: turning the strings of a `CreateTaskRequest` into file descriptors for
//! the container, plus the copier threads that feed json-file logs and stdin FIFOs.
//!
//! Accepted forms, for each stream:
//! - `""`: `/dev/null`.
//! - an absolute path (or `file:///path`): a FIFO (opened `O_RDWR` so it never blocks, as
//!   containerd's shims do; for stdin the shim opens it read-only in a thread and copies it
//!   into a pipe, closed on EOF) or a regular file (appended to, created if missing).
//! - `jsonfile:///ABS/PATH?max-size=BYTES&max-file=N` (stdout and stderr only): the shim
//!   reads pipes and writes Docker json-file entries; both streams may name one file.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use crate::error::{Result, ShimError};
use crate::jsonfile::{copy_stream, LogConfig, LogFile, SharedLog};

/// The three descriptors handed to libcontainer.
#[derive(Debug)]
pub struct ContainerStdio {
    /// The container's fd 0.
    pub stdin: OwnedFd,
    /// The container's fd 1.
    pub stdout: OwnedFd,
    /// The container's fd 2.
    pub stderr: OwnedFd,
}

/// Tracks the output copiers, so the exit is reported only once all output is written.
#[derive(Debug)]
pub struct OutputDone {
    pending: usize,
    rx: Receiver<()>,
}

impl OutputDone {
    /// Waits until every output copier reached EOF, or `timeout` passed (a process outside
    /// the container may hold a pipe open). Returns whether all finished.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.pending > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(()) => self.pending -= 1,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => self.pending = 0,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => return false,
            }
        }
        true
    }
}

fn dev_null(write: bool) -> Result<OwnedFd> {
    let p = Path::new("/dev/null");
    OpenOptions::new()
        .read(!write)
        .write(write)
        .open(p)
        .map(OwnedFd::from)
        .map_err(|e| ShimError::io("opening", p, e))
}

fn plain_path(s: &str) -> Option<PathBuf> {
    let p = s.strip_prefix("file://").unwrap_or(s);
    p.starts_with('/').then(|| PathBuf::from(p))
}

fn is_fifo(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.file_type().is_fifo())
        .unwrap_or(false)
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    pipe2(OFlag::O_CLOEXEC).map_err(|e| ShimError::sys("creating a pipe", e))
}

/// Opens the three streams. Copier threads start right away; they only see data (and EOF)
/// once the container holds the other pipe ends.
pub fn open(stdin: &str, stdout: &str, stderr: &str) -> Result<(ContainerStdio, OutputDone)> {
    let (done_tx, done_rx) = channel();
    let mut pending = 0;
    let mut logs: HashMap<PathBuf, SharedLog> = HashMap::new();

    let stdin_fd = open_stdin(stdin)?;

    let mut out_fds = Vec::with_capacity(2);
    for (name, uri) in [("stdout", stdout), ("stderr", stderr)] {
        let fd = if uri.is_empty() {
            dev_null(true)?
        } else if uri.starts_with("jsonfile://") {
            let cfg = LogConfig::parse(uri)?;
            let log = match logs.get(&cfg.path) {
                Some(l) => l.clone(),
                None => {
                    let l: SharedLog = Arc::new(Mutex::new(LogFile::open(cfg.clone())?));
                    logs.insert(cfg.path.clone(), l.clone());
                    l
                }
            };
            let (r, w) = pipe()?;
            let tx = done_tx.clone();
            std::thread::Builder::new()
                .name(format!("log-{name}"))
                .stack_size(64 * 1024)
                .spawn(move || {
                    if let Err(e) = copy_stream(File::from(r), name, &log) {
                        eprintln!("skiff-shim: {name} log copier: {e}");
                    }
                    let _ = tx.send(());
                })
                .map_err(|e| ShimError::io("spawning log copier", Path::new(name), e))?;
            pending += 1;
            w
        } else if let Some(p) = plain_path(uri) {
            let mut opts = OpenOptions::new();
            if is_fifo(&p) {
                opts.read(true).write(true);
            } else {
                opts.append(true).create(true);
            }
            opts.custom_flags(libc::O_CLOEXEC)
                .open(&p)
                .map(OwnedFd::from)
                .map_err(|e| ShimError::io(&format!("opening {name}"), &p, e))?
        } else {
            return Err(ShimError::InvalidArgument(format!(
                "{name} {uri:?}: expected \"\", an absolute path or jsonfile:///path"
            )));
        };
        out_fds.push(fd);
    }
    let stderr_fd = out_fds
        .pop()
        .ok_or_else(|| ShimError::Internal("stderr".into()))?;
    let stdout_fd = out_fds
        .pop()
        .ok_or_else(|| ShimError::Internal("stdout".into()))?;
    Ok((
        ContainerStdio {
            stdin: stdin_fd,
            stdout: stdout_fd,
            stderr: stderr_fd,
        },
        OutputDone {
            pending,
            rx: done_rx,
        },
    ))
}

fn open_stdin(uri: &str) -> Result<OwnedFd> {
    if uri.is_empty() {
        return dev_null(false);
    }
    if uri.starts_with("jsonfile://") {
        return Err(ShimError::InvalidArgument(
            "stdin cannot be a jsonfile:// log".into(),
        ));
    }
    let p = plain_path(uri).ok_or_else(|| {
        ShimError::InvalidArgument(format!("stdin {uri:?}: expected \"\" or an absolute path"))
    })?;
    if !is_fifo(&p) {
        return File::open(&p)
            .map(OwnedFd::from)
            .map_err(|e| ShimError::io("opening stdin", &p, e));
    }
    let (r, w) = pipe()?;
    std::thread::Builder::new()
        .name("stdin".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            // Blocks until the client opens the FIFO for writing.
            let mut src = match File::open(&p) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("skiff-shim: opening stdin {}: {e}", p.display());
                    return;
                }
            };
            let mut dst = File::from(w);
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match src.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if dst.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            // Dropping `dst` closes the container's stdin.
        })
        .map_err(|e| ShimError::io("spawning stdin copier", Path::new("stdin"), e))?;
    Ok(r)
}
