//! `pause` / `unpause` (cgroup freezer), and `top` (the container's processes).

use super::record::Status;
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::runtime::shim::ShimTask;

/// One process of a container, for `top`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProcessInfo {
    /// Host PID.
    pub pid: u32,
    /// Parent PID.
    pub ppid: u32,
    /// Effective user ID.
    pub uid: u32,
    /// Command line.
    pub cmd: String,
}

impl Engine {
    /// Freezes every process of a running container.
    pub fn pause_container(&self, name: &str) -> Result<()> {
        let mut rec = self.sync_state(self.containers.find(name)?)?;
        match rec.state.status {
            Status::Running => {}
            Status::Paused => {
                return Err(EngineError::Conflict(format!(
                    "Container {} is already paused",
                    rec.id
                )))
            }
            _ => {
                return Err(EngineError::Conflict(format!(
                    "Container {} is not running",
                    rec.id
                )))
            }
        }
        ShimTask::connect(&rec.state.shim_address, &rec.id)?.pause()?;
        rec.state.status = Status::Paused;
        self.containers.save(&rec)?;
        self.container_event(&rec, "pause", &[]);
        Ok(())
    }

    /// Thaws a paused container.
    pub fn unpause_container(&self, name: &str) -> Result<()> {
        let mut rec = self.sync_state(self.containers.find(name)?)?;
        if rec.state.status != Status::Paused {
            return Err(EngineError::Conflict(format!(
                "Container {} is not paused",
                rec.id
            )));
        }
        ShimTask::connect(&rec.state.shim_address, &rec.id)?.resume()?;
        rec.state.status = Status::Running;
        self.containers.save(&rec)?;
        self.container_event(&rec, "unpause", &[]);
        Ok(())
    }

    /// Sets the terminal size of a container started with a TTY.
    pub fn resize_tty(&self, name: &str, width: u32, height: u32) -> Result<()> {
        let rec = self.container(name)?;
        if !rec.state.status.has_task() {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        ShimTask::connect(&rec.state.shim_address, &rec.id)?.resize_pty("", width, height)
    }

    /// The processes of a running container.
    pub fn top_container(&self, name: &str) -> Result<Vec<ProcessInfo>> {
        let rec = self.sync_state(self.containers.find(name)?)?;
        if !rec.state.status.has_task() {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        let pids = ShimTask::connect(&rec.state.shim_address, &rec.id)?.pids()?;
        Ok(pids.into_iter().map(process_info).collect())
    }
}

fn process_info(pid: u32) -> ProcessInfo {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    };
    let cmd = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            b.split(|c| *c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    ProcessInfo {
        pid,
        ppid: field("PPid:"),
        uid: field("Uid:"),
        cmd,
    }
}
