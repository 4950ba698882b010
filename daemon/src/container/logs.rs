//! `logs`: reading a container's json-file log (rotated files included), with
//! `--tail`, `--since`, `--until` and `--follow`.

use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::engine::Engine;
use crate::error::{EngineError, Result};

/// One log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// `stdout` or `stderr`.
    pub stream: String,
    /// The bytes, including the trailing newline when there was one.
    pub line: String,
    /// RFC 3339 with nanoseconds.
    pub time: String,
}

#[derive(Deserialize)]
struct RawEntry {
    log: String,
    stream: String,
    time: String,
}

/// What to read.
#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    /// Keep reading until the container stops.
    pub follow: bool,
    /// Only the last N entries.
    pub tail: Option<usize>,
    /// Only entries at or after this time (RFC 3339 or Unix seconds).
    pub since: Option<String>,
    /// Only entries before this time.
    pub until: Option<String>,
    /// Include stdout.
    pub stdout: bool,
    /// Include stderr.
    pub stderr: bool,
}

/// Parses `--since`/`--until` values: RFC 3339, Unix seconds (with fraction), or a
/// duration before now like `10m`, `1h30m`, `45s`.
pub fn parse_time(s: &str) -> Result<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    if let Ok(secs) = s.parse::<f64>() {
        let whole = secs.trunc() as i64;
        let nanos = ((secs - secs.trunc()) * 1e9) as u32;
        if let Some(t) = chrono::DateTime::from_timestamp(whole, nanos) {
            return Ok(t);
        }
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num
            .parse()
            .map_err(|_| EngineError::InvalidInput(format!("invalid time value {s:?}")))?;
        num.clear();
        total += n * match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            _ => {
                return Err(EngineError::InvalidInput(format!(
                    "invalid time value {s:?}"
                )))
            }
        };
    }
    if !num.is_empty() || s.is_empty() {
        return Err(EngineError::InvalidInput(format!(
            "invalid time value {s:?}"
        )));
    }
    Ok(chrono::Utc::now() - chrono::Duration::seconds(total as i64))
}

/// The log files of a container, oldest first.
fn log_files(path: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = (1..100)
        .map(|i| (i, PathBuf::from(format!("{}.{i}", path.display()))))
        .take_while(|(_, p)| p.exists())
        .collect();
    rotated.reverse();
    let mut out: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    out.push(path.to_path_buf());
    out
}

fn parse_line(line: &str) -> Option<LogEntry> {
    let raw: RawEntry = serde_json::from_str(line).ok()?;
    Some(LogEntry {
        stream: raw.stream,
        line: raw.log,
        time: raw.time,
    })
}

impl Engine {
    /// Streams log entries to `sink` until the log ends (or, with `follow`, until the
    /// container stops or `sink` returns false).
    /// `done`, when given, tells a follower that the container has stopped (the caller
    /// waited for it); otherwise the follower asks the container's shim now and then.
    pub fn read_logs(
        &self,
        name: &str,
        opts: &LogOptions,
        done: Option<&dyn Fn() -> bool>,
        sink: &mut dyn FnMut(&LogEntry) -> bool,
    ) -> Result<()> {
        let rec = self.containers.find(name)?;
        let since = opts.since.as_deref().map(parse_time).transpose()?;
        let until = opts.until.as_deref().map(parse_time).transpose()?;
        let wanted = |e: &LogEntry| {
            let stream_ok =
                (e.stream == "stdout" && opts.stdout) || (e.stream == "stderr" && opts.stderr);
            let t = chrono::DateTime::parse_from_rfc3339(&e.time).ok();
            let since_ok = match (since, t) {
                (Some(s), Some(t)) => t >= s,
                _ => true,
            };
            let until_ok = match (until, t) {
                (Some(u), Some(t)) => t < u,
                _ => true,
            };
            stream_ok && since_ok && until_ok
        };
        let mut entries: Vec<LogEntry> = Vec::new();
        let mut offset = 0u64;
        let files = log_files(&rec.log_path);
        let last = files.len() - 1;
        for (i, f) in files.iter().enumerate() {
            let Ok(file) = File::open(f) else { continue };
            let mut reader = BufReader::new(file);
            let mut buf = String::new();
            loop {
                buf.clear();
                let n = reader
                    .read_line(&mut buf)
                    .map_err(|e| EngineError::io("reading", f, e))?;
                if n == 0 || !buf.ends_with('\n') {
                    break;
                }
                if i == last {
                    offset += n as u64;
                }
                if let Some(e) = parse_line(buf.trim_end()) {
                    if wanted(&e) {
                        entries.push(e);
                    }
                }
            }
        }
        let skip = match opts.tail {
            Some(n) => entries.len().saturating_sub(n),
            None => 0,
        };
        for e in &entries[skip..] {
            if !sink(e) {
                return Ok(());
            }
        }
        if !opts.follow || until.is_some() {
            return Ok(());
        }
        self.follow_log(&rec.id, &rec.log_path, offset, &wanted, done, sink)
    }

    fn follow_log(
        &self,
        id: &str,
        path: &Path,
        mut offset: u64,
        wanted: &dyn Fn(&LogEntry) -> bool,
        done: Option<&dyn Fn() -> bool>,
        sink: &mut dyn FnMut(&LogEntry) -> bool,
    ) -> Result<()> {
        let mut idle = 0u32;
        let mut draining = false;
        let watch = super::log_watch::LogWatch::new(path);
        loop {
            let mut progressed = false;
            if let Ok(mut f) = File::open(path) {
                let len = f.metadata().map(|m| m.len()).unwrap_or(0);
                if len < offset {
                    offset = 0; // rotated
                }
                if f.seek(SeekFrom::Start(offset)).is_ok() {
                    let mut reader = BufReader::new(f);
                    let mut buf = String::new();
                    loop {
                        buf.clear();
                        let n = reader.read_line(&mut buf).unwrap_or(0);
                        if n == 0 || !buf.ends_with('\n') {
                            break;
                        }
                        offset += n as u64;
                        progressed = true;
                        if let Some(e) = parse_line(buf.trim_end()) {
                            if wanted(&e) && !sink(&e) {
                                return Ok(());
                            }
                        }
                    }
                }
            }
            if progressed {
                idle = 0;
                continue;
            }
            idle += 1;
            if draining {
                return Ok(());
            }
            if let Some(done) = done {
                // The caller knows when the task exited; the shim flushed the log
                // before reporting it, so one more read sees everything.
                draining = done();
                // Output wakes the follower at once; the timeout is for noticing the
                // exit, which comes soon after the shim's last write to the log.
                if !draining && watch.wait(Duration::from_millis(if idle < 50 { 2 } else { 20 })) {
                    idle = 0;
                }
                continue;
            }
            // Check the container now and then; the shim flushes the log before it
            // reports an exit, so one more read after a stop sees everything.
            if idle % 10 == 1 {
                let rec = self.containers.find(id)?;
                let rec = self.sync_state(rec)?;
                if !rec.state.status.has_task() {
                    if idle > 1 {
                        return Ok(());
                    }
                    continue;
                }
            }
            if watch.wait(Duration::from_millis(if idle < 20 { 5 } else { 50 })) {
                idle = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times() {
        assert!(parse_time("2024-01-02T03:04:05Z").is_ok());
        assert!(parse_time("1700000000.5").is_ok());
        let ten_min = parse_time("10m").unwrap();
        assert!(chrono::Utc::now() - ten_min >= chrono::Duration::minutes(10));
        assert!(parse_time("1h30m").is_ok());
        assert!(parse_time("abc").is_err());
        assert!(parse_time("").is_err());
    }
}
