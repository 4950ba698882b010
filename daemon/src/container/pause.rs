//! `pause` / `unpause` (cgroup freezer), the freeze that holds a container still while
//! `cp` works in its root filesystem, and `top` (the container's processes).

use super::record::{ContainerRecord, Status};
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
        let found = self.containers.find(name)?;
        // Waits for a `cp` (which freezes the container itself) to finish.
        let _ops = self.containers.lock_ops(&found.id)?;
        let mut rec = self.sync_state(self.containers.find(&found.id)?)?;
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
        self.containers.save_state(&rec)?;
        self.container_event(&rec, "pause", &[]);
        Ok(())
    }

    /// Thaws a paused container.
    pub fn unpause_container(&self, name: &str) -> Result<()> {
        let found = self.containers.find(name)?;
        // Never thaws a container in the middle of a `cp`.
        let _ops = self.containers.lock_ops(&found.id)?;
        let mut rec = self.sync_state(self.containers.find(&found.id)?)?;
        if rec.state.status != Status::Paused {
            return Err(EngineError::Conflict(format!(
                "Container {} is not paused",
                rec.id
            )));
        }
        ShimTask::connect(&rec.state.shim_address, &rec.id)?.resume()?;
        rec.state.status = Status::Running;
        self.containers.save_state(&rec)?;
        self.container_event(&rec, "unpause", &[]);
        Ok(())
    }

    /// Freezes `rec` (a container with a task, synced, under its operation lock) until
    /// the returned guard is dropped, as `podman cp --pause` does: while `cp` checks a
    /// path in the container and then uses it, no process in the container can swap it
    /// for a symlink to a host path. A container the user paused stays paused; one
    /// without a task has no process to fear and is not touched.
    pub(crate) fn freeze_for_copy(&self, rec: &ContainerRecord) -> Result<CopyFreeze> {
        if !rec.state.status.has_task() || rec.state.status == Status::Paused {
            return Ok(CopyFreeze {
                task: None,
                id: rec.id.clone(),
            });
        }
        let task = ShimTask::connect(&rec.state.shim_address, &rec.id)?;
        task.pause().map_err(|e| {
            EngineError::Conflict(format!(
                "cannot freeze container {} for the copy: {e}",
                rec.id
            ))
        })?;
        Ok(CopyFreeze {
            task: Some(task),
            id: rec.id.clone(),
        })
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

/// A container frozen for a copy; thawed when dropped (on success, error, panic, or a
/// client that went away mid-stream).
pub(crate) struct CopyFreeze {
    task: Option<ShimTask>,
    id: String,
}

impl Drop for CopyFreeze {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            if let Err(e) = task.resume() {
                tracing::warn!(container = %self.id, error = %e, "thawing the container after a copy");
            }
        }
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
