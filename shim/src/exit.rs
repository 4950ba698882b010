//! Exit status bookkeeping: the status code of a wait status, and `<bundle>/exit.json`.

use std::io::Write;
use std::path::Path;
use std::time::SystemTime;

use nix::sys::wait::WaitStatus;

use crate::error::{Result, ShimError};
use crate::timefmt::rfc3339_nano;

/// Name of the file, in the bundle, that records the exit of the task's init process.
pub const EXIT_FILE: &str = "exit.json";

/// How and when the task's init process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The init process's pid (as seen from the shim).
    pub pid: u32,
    /// Exit code, or 128 + signal number when a signal killed it.
    pub status: u32,
    /// When the shim reaped it.
    pub at: SystemTime,
}

/// The containerd-style exit status of a wait status, if the process ended.
pub fn status_of(ws: WaitStatus) -> Option<(i32, u32)> {
    match ws {
        WaitStatus::Exited(pid, code) => Some((pid.as_raw(), code as u32)),
        WaitStatus::Signaled(pid, sig, _) => Some((pid.as_raw(), 128 + sig as u32)),
        _ => None,
    }
}

impl Exit {
    /// The JSON form: `{"pid":N,"exit_status":N,"exited_at":"RFC3339"}`.
    pub fn to_json(self) -> String {
        format!(
            "{{\"pid\":{},\"exit_status\":{},\"exited_at\":\"{}\"}}\n",
            self.pid,
            self.status,
            rfc3339_nano(self.at)
        )
    }

    /// Writes `<bundle>/exit.json` atomically (temp file, rename). Not synced: the bundle
    /// lives under the run root, which a host crash empties anyway; a killed shim or
    /// engine loses nothing the kernel has accepted.
    pub fn write(&self, bundle: &Path) -> Result<()> {
        let path = bundle.join(EXIT_FILE);
        let tmp = bundle.join(".exit.json.tmp");
        let res = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(self.to_json().as_bytes())?;
            std::fs::rename(&tmp, &path)
        })();
        res.map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            ShimError::io("writing", &path, e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    #[test]
    fn statuses() {
        let p = Pid::from_raw(5);
        assert_eq!(status_of(WaitStatus::Exited(p, 7)), Some((5, 7)));
        assert_eq!(
            status_of(WaitStatus::Signaled(p, Signal::SIGKILL, false)),
            Some((5, 137))
        );
        assert_eq!(status_of(WaitStatus::StillAlive), None);
    }

    #[test]
    fn json_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = Exit {
            pid: 42,
            status: 137,
            at: std::time::UNIX_EPOCH,
        };
        e.write(dir.path()).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join(EXIT_FILE)).unwrap())
                .unwrap();
        assert_eq!(v["pid"], 42);
        assert_eq!(v["exit_status"], 137);
        assert_eq!(v["exited_at"], "1970-01-01T00:00:00Z");
    }
}
