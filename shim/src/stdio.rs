//! A process's stdio: turning the strings of a `CreateTaskRequest` or `ExecProcessRequest`
//! into file descriptors for the process (or, with a terminal, into copiers around the pty
//! master), plus the copier threads that feed json-file logs and read stdin FIFOs.
//!
//! Accepted forms, for each stream:
//! - `""`: `/dev/null`.
//! - an absolute path (or `file:///path`): a FIFO (opened `O_RDWR` so it never blocks, as
//!   containerd's shims do; for stdin the shim opens it read-only and non-blocking and
//!   copies it into a pipe (or the pty) until EOF or CloseIO) or a regular file (appended
//!   to, created if missing; stdin: read).
//! - `jsonfile:///ABS/PATH?max-size=BYTES&max-file=N` (stdout and stderr only): the shim
//!   reads pipes and writes Docker json-file entries; both streams may name one file.
//!
//! With a terminal, stderr is unused (the pty carries both); the pty master's output goes
//! to the stdout target (a json-file log gets it as stream `stdout`).

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::unistd::pipe2;

use crate::error::{Result, ShimError};
use crate::jsonfile::{copy_stream, LogConfig, LogFile, SharedLog};

/// Stack size of the copier threads (they only shuffle bytes).
const COPIER_STACK: usize = 64 * 1024;

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

impl ContainerStdio {
    /// `/dev/null` for all three (a terminal process gets the pty instead).
    pub fn null() -> Result<Self> {
        Ok(ContainerStdio {
            stdin: dev_null(false)?,
            stdout: dev_null(true)?,
            stderr: dev_null(true)?,
        })
    }
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

/// Stops a stdin copier (which then closes the process's side) when closed or dropped.
#[derive(Debug)]
struct StdinCopy {
    cancel: Option<OwnedFd>,
}

/// The shim's live handles on a process's stdio: the stdin copier (for CloseIO) and the
/// pty master (for ResizePty). Dropping it stops the stdin copier.
#[derive(Debug, Default)]
pub struct ProcIo {
    stdin: Option<StdinCopy>,
    pty: Option<File>,
}

impl ProcIo {
    /// Stops copying stdin: the copier closes its FIFO and its side of the process's stdin
    /// (a pipe, whose reader then sees EOF; with a pty the process sees nothing, as with
    /// containerd). A write already blocked on a full pipe ends when the process exits.
    pub fn close_stdin(&mut self) {
        if let Some(s) = self.stdin.as_mut() {
            s.cancel = None;
        }
    }

    /// Sets the pty's window size (`TIOCSWINSZ`); false if the process has no pty.
    pub fn resize(&self, width: u32, height: u32) -> Result<bool> {
        match &self.pty {
            Some(m) => set_winsize(m, width, height).map(|()| true),
            None => Ok(false),
        }
    }
}

/// Sets the window size of the pty whose master (or slave) is `tty`.
pub fn set_winsize(tty: &impl AsRawFd, width: u32, height: u32) -> Result<()> {
    let clamp = |v: u32| v.min(u32::from(u16::MAX)) as u16;
    let ws = libc::winsize {
        ws_row: clamp(height),
        ws_col: clamp(width),
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize struct we own.
    if unsafe { libc::ioctl(tty.as_raw_fd(), libc::TIOCSWINSZ, &ws) } != 0 {
        return Err(ShimError::sys(
            "setting the pty window size",
            nix::Error::last(),
        ));
    }
    Ok(())
}

fn dev_null(write: bool) -> Result<OwnedFd> {
    let p = Path::new("/dev/null");
    OpenOptions::new()
        .read(!write)
        .write(write)
        .custom_flags(libc::O_CLOEXEC)
        .open(p)
        .map(OwnedFd::from)
        .map_err(|e| ShimError::io("opening", p, e))
}

fn plain_path(s: &str) -> Option<PathBuf> {
    let s = strip_reopen(s).0;
    let p = s.strip_prefix("file://").unwrap_or(s);
    p.starts_with('/').then(|| PathBuf::from(p))
}

/// The query that asks the shim to keep a stdin FIFO usable after its writer closed
/// (`file:///path?reopen=true`): the FIFO is opened again and waits for the next writer,
/// so clients can attach, detach and attach again (Docker's `StdinOnce=false`). Without
/// it, EOF on the FIFO closes the process's stdin, as containerd's shims do.
const REOPEN_QUERY: &str = "?reopen=true";

/// Splits the reopen query off a `file://` stdin URI.
fn strip_reopen(uri: &str) -> (&str, bool) {
    match uri.strip_suffix(REOPEN_QUERY) {
        Some(rest) if rest.starts_with("file://") => (rest, true),
        _ => (uri, false),
    }
}

fn is_fifo(p: &Path) -> bool {
    std::fs::metadata(p)
        .map(|m| m.file_type().is_fifo())
        .unwrap_or(false)
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    pipe2(OFlag::O_CLOEXEC).map_err(|e| ShimError::sys("creating a pipe", e))
}

/// Checks the form of the three stdio strings without opening anything (for requests
/// that open them later, like ExecProcess).
pub fn validate(stdin: &str, stdout: &str, stderr: &str) -> Result<()> {
    if stdin.starts_with("jsonfile://") {
        return Err(ShimError::InvalidArgument(
            "stdin cannot be a jsonfile:// log".into(),
        ));
    }
    if !stdin.is_empty() && plain_path(stdin).is_none() {
        return Err(ShimError::InvalidArgument(format!(
            "stdin {stdin:?}: expected \"\" or an absolute path"
        )));
    }
    for (name, uri) in [("stdout", stdout), ("stderr", stderr)] {
        if uri.starts_with("jsonfile://") {
            LogConfig::parse(uri)?;
        } else if !uri.is_empty() && plain_path(uri).is_none() {
            return Err(bad_output(name, uri));
        }
    }
    Ok(())
}

fn bad_output(name: &str, uri: &str) -> ShimError {
    ShimError::InvalidArgument(format!(
        "{name} {uri:?}: expected \"\", an absolute path or jsonfile:///path"
    ))
}

/// Where an output stream goes.
enum Target {
    Null,
    Fd(OwnedFd),
    Log(SharedLog),
}

/// Opens the target of output stream `name` (json-file logs shared through `logs`).
fn open_target(name: &str, uri: &str, logs: &mut HashMap<PathBuf, SharedLog>) -> Result<Target> {
    if uri.is_empty() {
        return Ok(Target::Null);
    }
    if uri.starts_with("jsonfile://") {
        let cfg = LogConfig::parse(uri)?;
        let log = match logs.get(&cfg.path) {
            Some(l) => l.clone(),
            None => {
                let l: SharedLog = Arc::new(Mutex::new(LogFile::open(cfg.clone())?));
                logs.insert(cfg.path.clone(), l.clone());
                l
            }
        };
        return Ok(Target::Log(log));
    }
    let p = plain_path(uri).ok_or_else(|| bad_output(name, uri))?;
    let mut opts = OpenOptions::new();
    if is_fifo(&p) {
        opts.read(true).write(true);
    } else {
        opts.append(true).create(true);
    }
    opts.custom_flags(libc::O_CLOEXEC)
        .open(&p)
        .map(|f| Target::Fd(f.into()))
        .map_err(|e| ShimError::io(&format!("opening {name}"), &p, e))
}

fn spawn_copier(name: String, f: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(name.clone())
        .stack_size(COPIER_STACK)
        .spawn(f)
        .map(|_| ())
        .map_err(|e| ShimError::io("spawning a copier thread", Path::new(&name), e))
}

/// Copies `src` into the json-file log as `stream`, then reports on `done`.
fn spawn_log_copier(
    src: impl Read + Send + 'static,
    stream: &'static str,
    log: SharedLog,
    done: Sender<()>,
) -> Result<()> {
    spawn_copier(format!("log-{stream}"), move || {
        if let Err(e) = copy_stream(src, stream, &log) {
            eprintln!("skiff-shim: {stream} log copier: {e}");
        }
        let _ = done.send(());
    })
}

/// Opens the three streams of a process without a terminal. Copier threads start right
/// away; they only see data (and EOF) once the process holds the other pipe ends.
pub fn open(
    stdin: &str,
    stdout: &str,
    stderr: &str,
) -> Result<(ContainerStdio, OutputDone, ProcIo)> {
    let (done_tx, done_rx) = channel();
    let mut pending = 0;
    let mut logs: HashMap<PathBuf, SharedLog> = HashMap::new();

    let mut io = ProcIo::default();
    let stdin_fd = match open_stdin(stdin)? {
        None => dev_null(false)?,
        Some(src) if !is_fifo_fd(&src) => src.into(),
        Some(src) => {
            let (r, w) = pipe()?;
            let reopen = reopen_path(stdin);
            io.stdin = Some(spawn_stdin_copier(src, Box::new(File::from(w)), reopen)?);
            r
        }
    };

    let mut out_fds = Vec::with_capacity(2);
    for (name, uri) in [("stdout", stdout), ("stderr", stderr)] {
        let fd = match open_target(name, uri, &mut logs)? {
            Target::Null => dev_null(true)?,
            Target::Fd(fd) => fd,
            Target::Log(log) => {
                let (r, w) = pipe()?;
                spawn_log_copier(File::from(r), name, log, done_tx.clone())?;
                pending += 1;
                w
            }
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
        io,
    ))
}

fn is_fifo_fd(f: &File) -> bool {
    f.metadata()
        .map(|m| m.file_type().is_fifo())
        .unwrap_or(false)
}

/// The FIFO to open again after each writer with `?reopen=true`.
fn reopen_path(uri: &str) -> Option<PathBuf> {
    strip_reopen(uri)
        .1
        .then(|| plain_path(uri))
        .flatten()
        .filter(|p| is_fifo(p))
}

/// Opens stdin's source: None for `""`, else the file, or the FIFO opened read-only and
/// non-blocking (it waits for a writer in the copier's poll, not in open).
fn open_stdin(uri: &str) -> Result<Option<File>> {
    if uri.is_empty() {
        return Ok(None);
    }
    if uri.starts_with("jsonfile://") {
        return Err(ShimError::InvalidArgument(
            "stdin cannot be a jsonfile:// log".into(),
        ));
    }
    let p = plain_path(uri).ok_or_else(|| {
        ShimError::InvalidArgument(format!("stdin {uri:?}: expected \"\" or an absolute path"))
    })?;
    let flags = if is_fifo(&p) {
        libc::O_CLOEXEC | libc::O_NONBLOCK
    } else {
        libc::O_CLOEXEC
    };
    OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(&p)
        .map(Some)
        .map_err(|e| ShimError::io("opening stdin", &p, e))
}

/// Copies `src` (a FIFO opened non-blocking, or a file) into `dst` until EOF or until the
/// returned handle is closed; then drops `dst`.
///
/// A FIFO opened `O_RDONLY|O_NONBLOCK` reports no hang-up before its first writer came
/// and went, so poll waits for the client to open it, then for data or its close.
fn spawn_stdin_copier(
    src: File,
    dst: Box<dyn Write + Send>,
    reopen: Option<PathBuf>,
) -> Result<StdinCopy> {
    let (cancel_r, cancel_w) = pipe()?;
    // A writer's close: end, or wait for the next writer on a fresh descriptor.
    let next = move |src: &mut File| -> bool {
        let Some(p) = &reopen else { return false };
        match OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_CLOEXEC | libc::O_NONBLOCK)
            .open(p)
        {
            Ok(f) => {
                *src = f;
                true
            }
            Err(_) => false,
        }
    };
    spawn_copier("stdin".into(), move || {
        let mut src = src;
        let mut dst = dst;
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: src.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: cancel_r.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: poll on two descriptors we own, with a correctly sized array.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
            if n < 0 {
                if nix::Error::last() == nix::errno::Errno::EINTR {
                    continue;
                }
                break;
            }
            if fds[1].revents != 0 || fds[0].revents & libc::POLLNVAL != 0 {
                break; // CloseIO, or the process's IO was dropped.
            }
            if fds[0].revents == 0 {
                continue;
            }
            match src.read(&mut buf) {
                Ok(0) => {
                    if !next(&mut src) {
                        break;
                    }
                }
                Ok(n) => {
                    if dst.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock
                    ) => {}
                Err(_) => break,
            }
        }
        // Dropping `dst` closes the process's stdin (a pipe; a pty dup stays open elsewhere).
    })?;
    Ok(StdinCopy {
        cancel: Some(cancel_w),
    })
}

/// Reads a pty master, taking EIO (every slave closed: the process is gone) as EOF.
struct PtyReader(File);

impl Read for PtyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.0.read(buf) {
            Err(e) if e.raw_os_error() == Some(libc::EIO) => Ok(0),
            r => r,
        }
    }
}

/// A pty master shared with the stdin copier.
struct MasterWriter(File);

impl Write for MasterWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The stdio of a terminal process, opened before the process exists; [`Self::attach`]
/// connects it to the pty master once libcontainer sent it.
pub struct PendingTerminal {
    stdin: Option<File>,
    reopen: Option<PathBuf>,
    stdout: Target,
}

/// Opens stdin and stdout for a process with a terminal (stderr is not used).
pub fn open_terminal(stdin: &str, stdout: &str) -> Result<PendingTerminal> {
    let reopen = reopen_path(stdin);
    let stdin = open_stdin(stdin)?;
    let stdout = open_target("stdout", stdout, &mut HashMap::new())?;
    Ok(PendingTerminal {
        stdin,
        reopen,
        stdout,
    })
}

impl PendingTerminal {
    /// Starts copying the pty's output to stdout and stdin into the pty.
    pub fn attach(self, master: OwnedFd) -> Result<(OutputDone, ProcIo)> {
        let master = File::from(master);
        let dup = |m: &File| {
            m.try_clone()
                .map_err(|e| ShimError::io("duplicating", Path::new("the pty master"), e))
        };
        let (done_tx, done_rx) = channel();
        let reader = PtyReader(dup(&master)?);
        match self.stdout {
            Target::Log(log) => spawn_log_copier(reader, "stdout", log, done_tx)?,
            Target::Null => spawn_copier("pty-out".into(), move || {
                let _ = io::copy(&mut { reader }, &mut io::sink());
                let _ = done_tx.send(());
            })?,
            Target::Fd(fd) => spawn_copier("pty-out".into(), move || {
                let mut out = File::from(fd);
                if let Err(e) = io::copy(&mut { reader }, &mut out) {
                    eprintln!("skiff-shim: copying the pty's output: {e}");
                }
                let _ = done_tx.send(());
            })?,
        }
        let mut io = ProcIo {
            stdin: None,
            pty: Some(dup(&master)?),
        };
        if let Some(src) = self.stdin {
            io.stdin = Some(spawn_stdin_copier(
                src,
                Box::new(MasterWriter(master)),
                self.reopen,
            )?);
        }
        Ok((
            OutputDone {
                pending: 1,
                rx: done_rx,
            },
            io,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mkfifo(p: &Path) {
        nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    }

    fn read_all(fd: OwnedFd) -> String {
        let mut s = String::new();
        File::from(fd).read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn stdin_fifo_waits_for_a_writer_and_ends_at_its_close() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("in");
        mkfifo(&fifo);
        let (stdio, _out, _io) = open(fifo.to_str().unwrap(), "", "").unwrap();
        // No writer yet: nothing, and no EOF either.
        std::thread::sleep(Duration::from_millis(100));
        {
            let mut w = OpenOptions::new().write(true).open(&fifo).unwrap();
            w.write_all(b"abc").unwrap();
        }
        assert_eq!(read_all(stdio.stdin), "abc");
    }

    #[test]
    fn close_stdin_gives_eof_without_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("in");
        mkfifo(&fifo);
        let (stdio, _out, mut io) = open(fifo.to_str().unwrap(), "", "").unwrap();
        io.close_stdin();
        assert_eq!(read_all(stdio.stdin), "");
        // Also with a writer that keeps the FIFO open.
        let (stdio, _out, io) = open(fifo.to_str().unwrap(), "", "").unwrap();
        let mut w = OpenOptions::new().write(true).open(&fifo).unwrap();
        w.write_all(b"x").unwrap();
        let mut r = File::from(stdio.stdin);
        let mut b = [0u8; 1];
        r.read_exact(&mut b).unwrap();
        drop(io);
        let mut rest = String::new();
        r.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "");
    }

    #[test]
    fn validates_forms() {
        assert!(validate("", "", "").is_ok());
        assert!(validate("/a", "file:///b", "jsonfile:///c?max-file=2").is_ok());
        assert!(validate("jsonfile:///a", "", "").is_err());
        assert!(validate("rel", "", "").is_err());
        assert!(validate("", "tcp://x", "").is_err());
        assert!(validate("", "", "jsonfile:///x?max-file=0").is_err());
    }

    #[test]
    fn pty_output_reaches_the_stdout_file_and_stdin_the_pty() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let pending = open_terminal("", out.to_str().unwrap()).unwrap();
        let pty = nix::pty::openpty(None, None).unwrap();
        let (mut done, io) = pending.attach(pty.master).unwrap();
        assert!(io.resize(100, 40).unwrap());
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ into a local.
        assert_eq!(
            unsafe { libc::ioctl(pty.slave.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) },
            0
        );
        assert_eq!((ws.ws_row, ws.ws_col), (40, 100));
        File::from(pty.slave).write_all(b"hi\n").unwrap();
        assert!(done.wait(Duration::from_secs(5)));
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "hi\r\n");
    }
}
