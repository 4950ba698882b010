//! The harness's error type: each variant says what failed and on what.

use std::io;
use std::process::Output;

/// Everything the harness can fail on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O operation failed; `context` names the operation and its path.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, e.g. "writing /tmp/x/config.yml".
        context: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// An external command ran but exited unsuccessfully.
    #[error("`{command}` failed with {status}: {stderr}")]
    Command {
        /// The command line, for the reader.
        command: String,
        /// Its exit status.
        status: String,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// The registry did not come up.
    #[error("registry on {addr} did not start: {reason}; log {log}:\n{log_tail}")]
    RegistryStart {
        /// The address it was started on.
        addr: String,
        /// Why the harness gave up.
        reason: String,
        /// Path of the registry's log file.
        log: String,
        /// The last lines of that log.
        log_tail: String,
    },
    /// Data read from outside (a registry answer, a file, a tool's output) was
    /// not what the harness expected.
    #[error("{0}")]
    Unexpected(String),
}

/// The harness's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Adds a context string to `io::Result`s.
pub(crate) trait IoContext<T> {
    /// Wraps an I/O error into [`Error::Io`] with the given context.
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io {
            context: context(),
            source,
        })
    }
}

/// Turns a finished command's output into `Ok(stdout)` or [`Error::Command`].
pub(crate) fn check_output(command: String, output: Output) -> Result<Vec<u8>> {
    if output.status.success() {
        Ok(output.stdout)
    } else {
        Err(Error::Command {
            command,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }
}
