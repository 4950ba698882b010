//! Running the host's networking tools (`ip`, `iptables-restore`) with a batch of
//! commands on stdin, their failure turned into a [`NetworkError::Tool`].

use std::io::Write;
use std::process::{Command, Stdio};

use super::error::NetworkError;

/// Runs `cmd` with `input` on its stdin; on failure, the error names `tool`, what was
/// being done, and the tool's stderr.
pub fn run_with_input(
    mut cmd: Command,
    input: &str,
    tool: &'static str,
    doing: &str,
) -> Result<(), NetworkError> {
    let tool_err = |why: String| NetworkError::Tool {
        tool,
        doing: doing.to_string(),
        why,
    };
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| tool_err(format!("cannot run {tool}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(input.as_bytes())
            .map_err(|e| tool_err(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| tool_err(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(tool_err(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}
