//! Docker `json-file` log writer: one JSON object per line,
//! `{"log":"...","stream":"stdout","time":"<RFC3339Nano>"}`, with size-based rotation.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use crate::error::ShimError;
use crate::timefmt::rfc3339_nano;

/// Docker splits lines longer than this into several entries (only the last keeps `\n`).
pub const MAX_LINE: usize = 16 * 1024;

/// Where and how a json-file log is written, parsed from
/// `jsonfile:///ABS/PATH?max-size=BYTES&max-file=N`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// The live log file.
    pub path: PathBuf,
    /// Rotate once the file would grow beyond this many bytes (None: never).
    pub max_size: Option<u64>,
    /// Files kept in total, the live one included (1: truncate instead of rotating).
    pub max_file: u32,
}

impl LogConfig {
    /// Parses a `jsonfile://` URI; `max-size` accepts plain bytes or a k/m/g suffix.
    pub fn parse(uri: &str) -> Result<Self, ShimError> {
        let bad = |why: &str| ShimError::InvalidArgument(format!("stdio uri {uri:?}: {why}"));
        let rest = uri
            .strip_prefix("jsonfile://")
            .ok_or_else(|| bad("not a jsonfile:// uri"))?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, q),
            None => (rest, ""),
        };
        if !path.starts_with('/') {
            return Err(bad("the path must be absolute"));
        }
        let mut cfg = LogConfig {
            path: PathBuf::from(percent_decode(path).map_err(|e| bad(&e))?),
            max_size: None,
            max_file: 1,
        };
        for kv in query.split('&').filter(|s| !s.is_empty()) {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            match k {
                "max-size" => {
                    let n = parse_size(v).ok_or_else(|| bad("max-size is not a size"))?;
                    cfg.max_size = (n > 0).then_some(n);
                }
                "max-file" => {
                    let n: u32 = v.parse().map_err(|_| bad("max-file is not a number"))?;
                    if n == 0 {
                        return Err(bad("max-file must be at least 1"));
                    }
                    cfg.max_file = n;
                }
                _ => return Err(bad(&format!("unknown option {k:?}"))),
            }
        }
        Ok(cfg)
    }
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("truncated %-escape")?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| "bad %-escape")?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "path is not UTF-8".to_string())
}

fn parse_size(v: &str) -> Option<u64> {
    let v = v.trim();
    let lower = v.to_ascii_lowercase();
    let lower = lower.trim_end_matches('b');
    let (num, mult) = match lower.chars().last()? {
        'k' => (&lower[..lower.len() - 1], 1u64 << 10),
        'm' => (&lower[..lower.len() - 1], 1 << 20),
        'g' => (&lower[..lower.len() - 1], 1 << 30),
        _ => (lower, 1),
    };
    num.trim().parse::<u64>().ok()?.checked_mul(mult)
}

/// An open json-file log, shared by the stdout and stderr copiers when they name one file.
#[derive(Debug)]
pub struct LogFile {
    cfg: LogConfig,
    file: File,
    size: u64,
}

/// A log file shared between copier threads.
pub type SharedLog = Arc<Mutex<LogFile>>;

impl LogFile {
    /// Opens (creating or appending to) the log file, creating its directory.
    pub fn open(cfg: LogConfig) -> Result<Self, ShimError> {
        if let Some(dir) = cfg.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| ShimError::io("creating log dir", dir, e))?;
        }
        let file = open_append(&cfg.path)?;
        let size = file
            .metadata()
            .map_err(|e| ShimError::io("stat log file", &cfg.path, e))?
            .len();
        Ok(LogFile { cfg, file, size })
    }

    /// Appends one encoded entry, rotating first when it would overflow `max-size`.
    pub fn write_entry(&mut self, entry: &[u8]) -> Result<(), ShimError> {
        if let Some(max) = self.cfg.max_size {
            if self.size > 0 && self.size + entry.len() as u64 > max {
                self.rotate()?;
            }
        }
        self.file
            .write_all(entry)
            .map_err(|e| ShimError::io("writing log", &self.cfg.path, e))?;
        self.size += entry.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> Result<(), ShimError> {
        let path = &self.cfg.path;
        if self.cfg.max_file <= 1 {
            self.file
                .set_len(0)
                .map_err(|e| ShimError::io("truncating log", path, e))?;
            self.size = 0;
            return Ok(());
        }
        let numbered = |i: u32| {
            let mut s = path.clone().into_os_string();
            s.push(format!(".{i}"));
            PathBuf::from(s)
        };
        for i in (1..self.cfg.max_file - 1).rev() {
            let from = numbered(i);
            if from.exists() {
                std::fs::rename(&from, numbered(i + 1))
                    .map_err(|e| ShimError::io("rotating log", &from, e))?;
            }
        }
        std::fs::rename(path, numbered(1)).map_err(|e| ShimError::io("rotating log", path, e))?;
        self.file = open_append(path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> Result<File, ShimError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| ShimError::io("opening log file", path, e))
}

/// Encodes one Docker json-file entry (with its trailing newline).
pub fn encode_entry(log: &[u8], stream: &str, time: SystemTime) -> Vec<u8> {
    let text = String::from_utf8_lossy(log);
    let mut out = Vec::with_capacity(text.len() + 64);
    out.extend_from_slice(b"{\"log\":\"");
    escape_json(&text, &mut out);
    out.extend_from_slice(b"\",\"stream\":\"");
    escape_json(stream, &mut out);
    out.extend_from_slice(b"\",\"time\":\"");
    out.extend_from_slice(rfc3339_nano(time).as_bytes());
    out.extend_from_slice(b"\"}\n");
    out
}

/// Escapes like Go's encoding/json (which Docker uses): quotes, backslashes, control
/// characters, the HTML-sensitive `<`, `>`, `&`, and U+2028/U+2029.
fn escape_json(s: &str, out: &mut Vec<u8>) {
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if (c as u32) < 0x20 || matches!(c, '<' | '>' | '&' | '\u{2028}' | '\u{2029}') => {
                out.extend_from_slice(format!("\\u{:04x}", c as u32).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
    }
}

/// Reads `src` to EOF and writes each line (split at 16 KiB) as an entry of `stream`.
/// A last line without a newline is written as its own entry at EOF. Returns the first
/// write error, but keeps draining `src` so the container never blocks on a full pipe.
pub fn copy_stream(mut src: impl Read, stream: &str, log: &SharedLog) -> Result<(), ShimError> {
    let mut buf = vec![0u8; 32 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let mut first_err: Option<ShimError> = None;
    let emit = |chunk: &[u8], first_err: &mut Option<ShimError>| {
        if first_err.is_some() {
            return;
        }
        let entry = encode_entry(chunk, stream, SystemTime::now());
        let res = match log.lock() {
            Ok(mut l) => l.write_entry(&entry),
            Err(_) => Err(ShimError::Internal("log lock poisoned".into())),
        };
        if let Err(e) = res {
            *first_err = Some(e);
        }
    };
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                first_err.get_or_insert(ShimError::Io {
                    what: "reading container output".into(),
                    path: PathBuf::from(stream),
                    source: e,
                });
                break;
            }
        };
        pending.extend_from_slice(&buf[..n]);
        let mut start = 0;
        loop {
            let rest = &pending[start..];
            match rest.iter().position(|&b| b == b'\n') {
                Some(i) if i < MAX_LINE => {
                    emit(&rest[..=i], &mut first_err);
                    start += i + 1;
                }
                _ if rest.len() >= MAX_LINE => {
                    emit(&rest[..MAX_LINE], &mut first_err);
                    start += MAX_LINE;
                }
                _ => break,
            }
        }
        pending.drain(..start);
    }
    if !pending.is_empty() {
        emit(&pending, &mut first_err);
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_uri() {
        let c = LogConfig::parse("jsonfile:///var/log/c.log?max-size=10k&max-file=3").unwrap();
        assert_eq!(c.path, PathBuf::from("/var/log/c.log"));
        assert_eq!(c.max_size, Some(10240));
        assert_eq!(c.max_file, 3);
        assert!(LogConfig::parse("jsonfile://rel/x").is_err());
        assert!(LogConfig::parse("jsonfile:///x?max-file=0").is_err());
        assert!(LogConfig::parse("jsonfile:///x?bogus=1").is_err());
    }

    #[test]
    fn escapes_like_go() {
        let e = encode_entry(b"a\"b\\<\x01>\n", "stdout", std::time::UNIX_EPOCH);
        assert_eq!(
            String::from_utf8(e).unwrap(),
            "{\"log\":\"a\\\"b\\\\\\u003c\\u0001\\u003e\\n\",\"stream\":\"stdout\",\"time\":\"1970-01-01T00:00:00Z\"}\n"
        );
    }

    fn entries(path: &Path) -> Vec<serde_json::Value> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn splits_lines_and_flushes_partial() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let log = Arc::new(Mutex::new(
            LogFile::open(LogConfig {
                path: path.clone(),
                max_size: None,
                max_file: 1,
            })
            .unwrap(),
        ));
        let mut input = b"one\ntwo\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', MAX_LINE + 10));
        input.extend_from_slice(b"\ntail");
        copy_stream(&input[..], "stderr", &log).unwrap();
        let e = entries(&path);
        let logs: Vec<&str> = e.iter().map(|v| v["log"].as_str().unwrap()).collect();
        assert_eq!(logs[0], "one\n");
        assert_eq!(logs[1], "two\n");
        assert_eq!(logs[2].len(), MAX_LINE);
        assert_eq!(logs[3], "xxxxxxxxxx\n");
        assert_eq!(logs[4], "tail");
        assert!(e.iter().all(|v| v["stream"] == "stderr"));
    }

    #[test]
    fn rotates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.log");
        let log = Arc::new(Mutex::new(
            LogFile::open(LogConfig {
                path: path.clone(),
                max_size: Some(200),
                max_file: 3,
            })
            .unwrap(),
        ));
        let input: Vec<u8> = (0..20)
            .flat_map(|i| format!("line {i}\n").into_bytes())
            .collect();
        copy_stream(&input[..], "stdout", &log).unwrap();
        assert!(std::fs::metadata(&path).unwrap().len() <= 200);
        assert!(dir.path().join("c.log.1").exists());
        assert!(dir.path().join("c.log.2").exists());
        assert!(!dir.path().join("c.log.3").exists());
        let last = entries(&path);
        assert_eq!(last.last().unwrap()["log"], "line 19\n");
    }
}
