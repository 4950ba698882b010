//! `skiff attach`, and the attached part of `run` and `start -a`: the container's
//! output on ours, our stdin into the container's, the terminal in raw mode and
//! resized with ours, signals passed on, and docker's detach keys (ctrl-p,ctrl-q).

use std::io::{Read, Write};
use std::sync::atomic::Ordering;

use skiff_daemon::container::record::Status;
use skiff_daemon::{Engine, EngineError};
use tokio::signal::unix::{signal, SignalKind};

use crate::options::AttachArgs;

/// Docker's default detach sequence: ctrl-p, ctrl-q.
pub const DEFAULT_DETACH_KEYS: &[u8] = &[0x10, 0x11];

/// How an attached session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The container exited with this code.
    Exited(i32),
    /// The user typed the detach keys; the container goes on.
    Detached,
}

/// What to connect between the container and this process.
#[derive(Debug, Clone)]
pub struct Session {
    /// The container ID.
    pub id: String,
    /// Copy our stdin into the container's.
    pub stdin: bool,
    /// The container has a terminal.
    pub tty: bool,
    /// Pass SIGINT, SIGTERM and friends on to the container (non-TTY only).
    pub sig_proxy: bool,
    /// Typed on stdin with a TTY, detaches (empty: never).
    pub detach_keys: Vec<u8>,
    /// Only output logged at or after this time (None: all of it).
    pub since: Option<String>,
}

/// Parses docker's `--detach-keys` format: comma-separated `ctrl-<c>` or single
/// characters, e.g. `ctrl-p,ctrl-q` or `ctrl-a,d`. An empty string disables detaching.
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, EngineError> {
    let bad = || EngineError::InvalidInput(format!("invalid detach keys ({spec:?}) provided"));
    if spec.is_empty() {
        return Ok(Vec::new());
    }
    spec.split(',')
        .map(|k| {
            if let Some(c) = k.strip_prefix("ctrl-") {
                let b = match c.as_bytes() {
                    [b] if b.is_ascii_lowercase() => b - b'a' + 1,
                    [b'@'] => 0,
                    [b'['] => 27,
                    [b'\\'] => 28,
                    [b']'] => 29,
                    [b'^'] => 30,
                    [b'_'] => 31,
                    _ => return Err(bad()),
                };
                Ok(b)
            } else {
                match k.as_bytes() {
                    [b] if b.is_ascii_graphic() => Ok(*b),
                    _ => Err(bad()),
                }
            }
        })
        .collect()
}

/// Finds the detach sequence in a byte stream that arrives in chunks.
pub(crate) struct DetachScanner {
    keys: Vec<u8>,
    /// Bytes held back because they are a prefix of `keys`.
    held: Vec<u8>,
}

impl DetachScanner {
    /// A scanner for `keys` (empty: never matches).
    pub(crate) fn new(keys: Vec<u8>) -> Self {
        DetachScanner {
            keys,
            held: Vec::new(),
        }
    }

    /// Feeds one chunk; returns the bytes to pass on and whether the sequence was typed.
    pub(crate) fn feed(&mut self, chunk: &[u8]) -> (Vec<u8>, bool) {
        if self.keys.is_empty() {
            return (chunk.to_vec(), false);
        }
        let mut out = Vec::with_capacity(chunk.len());
        for &b in chunk {
            self.held.push(b);
            // Pass on held bytes until what is left could still start the sequence
            // (so overlapping prefixes like ctrl-a,ctrl-a,d are found too).
            while !self.keys.starts_with(&self.held) {
                out.push(self.held.remove(0));
            }
            if self.held == self.keys {
                self.held.clear();
                return (out, true);
            }
        }
        (out, false)
    }
}

/// Copies our stdin into the container's FIFO until EOF (which closes the container's
/// stdin) or until the detach keys are typed (reported on `detached`).
fn copy_stdin(fifo: std::path::PathBuf, keys: Vec<u8>, detached: tokio::sync::oneshot::Sender<()>) {
    std::thread::spawn(move || {
        let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&fifo) else {
            return;
        };
        let mut scanner = DetachScanner::new(keys);
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 4096];
        loop {
            let n = match stdin.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let (pass, detach) = scanner.feed(&buf[..n]);
            if !pass.is_empty() && f.write_all(&pass).is_err() {
                return;
            }
            if detach {
                let _ = detached.send(());
                // Keep the FIFO open: closing it would close the container's stdin.
                std::mem::forget(f);
                return;
            }
        }
    });
}

/// The detach keys a `--detach-keys` value gives (docker's default when unset).
pub fn detach_keys_or_default(spec: Option<&str>) -> Result<Vec<u8>, EngineError> {
    match spec {
        Some(k) => parse_detach_keys(k),
        None => Ok(DEFAULT_DETACH_KEYS.to_vec()),
    }
}

/// With `enabled`, catches the signals docker's `--sig-proxy` passes on (INT, TERM,
/// HUP, QUIT, USR1, USR2) and yields their names, for the caller to send to the
/// container; otherwise yields nothing and leaves the signals' default action.
pub fn proxy_signals(enabled: bool) -> tokio::sync::mpsc::UnboundedReceiver<&'static str> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    if !enabled {
        return rx;
    }
    for (kind, name) in [
        (SignalKind::interrupt(), "SIGINT"),
        (SignalKind::terminate(), "SIGTERM"),
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::quit(), "SIGQUIT"),
        (SignalKind::user_defined1(), "SIGUSR1"),
        (SignalKind::user_defined2(), "SIGUSR2"),
    ] {
        if let Ok(mut sig) = signal(kind) {
            let tx = tx.clone();
            tokio::spawn(async move {
                while sig.recv().await.is_some() {
                    if tx.send(name).is_err() {
                        break;
                    }
                }
            });
        }
    }
    rx
}

/// Runs an attached session until the container exits or the user detaches.
pub async fn attach_session(engine: &Engine, s: &Session) -> Result<Outcome, EngineError> {
    let (exited, follower) = super::run::follow_output(engine, &s.id, s.since.clone());
    // Raw only when our keystrokes go to the container (as docker): otherwise ctrl-c
    // must still reach us.
    let _raw = (s.tty && s.stdin).then(crate::tty::RawMode::enter);
    let resizer = s.tty.then(|| {
        let (engine, id) = (engine.clone(), s.id.clone());
        crate::tty::follow_size(move |c, r| {
            let _ = engine.resize_tty(&id, c, r);
        })
    });
    let (detach_tx, mut detach_rx) = tokio::sync::oneshot::channel();
    let fifo = if s.stdin {
        engine
            .container(&s.id)
            .ok()
            .and_then(|r| engine.stdin_fifo(&r))
    } else {
        None
    };
    match fifo {
        Some(fifo) => {
            let keys = if s.tty {
                s.detach_keys.clone()
            } else {
                Vec::new()
            };
            copy_stdin(fifo, keys, detach_tx);
        }
        None => drop(detach_tx),
    }
    let mut sig_rx = proxy_signals(s.sig_proxy && !s.tty);
    let wait = engine.wait_for_exit(&s.id);
    tokio::pin!(wait);
    let mut detach_open = true;
    let outcome = loop {
        tokio::select! {
            code = &mut wait => break code.map(Outcome::Exited),
            r = &mut detach_rx, if detach_open => {
                if r.is_ok() {
                    break Ok(Outcome::Detached);
                }
                detach_open = false;
            }
            Some(name) = sig_rx.recv() => {
                if let Err(e) = engine.kill_container(&s.id, Some(name)) {
                    tracing::debug!(container = %s.id, "passing {name} on: {e}");
                }
            }
        }
    };
    if let Some(r) = resizer {
        r.store(true, Ordering::Release);
    }
    exited.store(true, Ordering::Release);
    let _ = follower.join();
    if matches!(outcome, Ok(Outcome::Detached)) {
        drop(_raw);
        eprintln!("read escape sequence");
    }
    outcome
}

/// `skiff attach`: exits with the container's code, or 0 after detaching.
pub async fn attach(engine: &Engine, a: &AttachArgs) -> Result<u8, EngineError> {
    let rec = engine.container(&a.container)?;
    match rec.state.status {
        Status::Running => {}
        Status::Paused => {
            return Err(EngineError::Conflict(format!(
                "You cannot attach to a paused container, unpause it first ({})",
                rec.id
            )))
        }
        _ => {
            return Err(EngineError::Conflict(format!(
                "You cannot attach to a stopped container, start it first ({})",
                rec.id
            )))
        }
    }
    let session = Session {
        id: rec.id.clone(),
        stdin: !a.no_stdin && rec.options.stdin_open,
        tty: rec.options.tty,
        sig_proxy: a.sig_proxy,
        detach_keys: detach_keys_or_default(a.detach_keys.as_deref())?,
        since: Some(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)),
    };
    match attach_session(engine, &session).await? {
        Outcome::Exited(code) => Ok(u8::try_from(code & 0xff).unwrap_or(255)),
        Outcome::Detached => Ok(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse_like_docker() {
        assert_eq!(
            parse_detach_keys("ctrl-p,ctrl-q").unwrap(),
            vec![0x10, 0x11]
        );
        assert_eq!(parse_detach_keys("ctrl-a,d").unwrap(), vec![1, b'd']);
        assert_eq!(parse_detach_keys("").unwrap(), Vec::<u8>::new());
        assert!(parse_detach_keys("ctrl-").is_err());
        assert!(parse_detach_keys("ctrl-pq").is_err());
        assert!(parse_detach_keys("ab").is_err());
    }

    #[test]
    fn scanner_passes_other_bytes_and_finds_split_sequences() {
        let mut s = DetachScanner::new(vec![0x10, 0x11]);
        assert_eq!(s.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(s.feed(b"c"), (b"\x10c".to_vec(), false));
        assert_eq!(s.feed(b"\x10\x10"), (b"\x10".to_vec(), false));
        assert_eq!(s.feed(b"\x11rest"), (Vec::new(), true));
        let mut none = DetachScanner::new(vec![]);
        assert_eq!(none.feed(b"\x10\x11"), (b"\x10\x11".to_vec(), false));
        // Overlapping prefixes: ctrl-a,ctrl-a,d typed after one extra ctrl-a.
        let mut overlap = DetachScanner::new(vec![1, 1, b'd']);
        assert_eq!(overlap.feed(b"\x01\x01\x01d"), (b"\x01".to_vec(), true));
    }
}
