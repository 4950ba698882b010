//! `skiff logs`.

use std::io::Write;

use skiff_daemon::container::logs::LogOptions;
use skiff_daemon::{Engine, EngineError};

use crate::options::LogsArgs;

/// Prints a container's log; stdout entries to stdout, stderr entries to stderr.
pub fn logs(engine: &Engine, a: &LogsArgs) -> Result<u8, EngineError> {
    let tail = match a.tail.as_str() {
        "all" | "" => None,
        n => Some(
            n.parse::<usize>()
                .map_err(|_| EngineError::InvalidInput(format!("invalid value for --tail: {n}")))?,
        ),
    };
    let opts = LogOptions {
        follow: a.follow,
        tail,
        since: a.since.clone(),
        until: a.until.clone(),
        stdout: true,
        stderr: true,
    };
    let stdout = std::io::stdout();
    let stderr = std::io::stderr();
    engine.read_logs(&a.container, &opts, None, &mut |e| {
        let text = if a.timestamps {
            format!("{} {}", e.time, e.line)
        } else {
            e.line.clone()
        };
        if e.stream == "stderr" {
            stderr.lock().write_all(text.as_bytes()).is_ok()
        } else {
            let mut o = stdout.lock();
            o.write_all(text.as_bytes()).and_then(|_| o.flush()).is_ok()
        }
    })?;
    Ok(0)
}
