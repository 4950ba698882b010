//! Keeping a record true to its task: asking the shim how the task is, recording an
//! exit, and tearing a finished task down (task, shim, mount, bundle).

use std::fs;

use super::now_rfc3339;
use super::record::{ContainerRecord, Status};
use crate::engine::Engine;
use crate::error::Result;
use crate::runtime::shim::ShimTask;
use crate::runtime::{TaskExit, TaskStatus};

/// What the shim left in the bundle when it recorded an exit.
#[derive(serde::Deserialize)]
struct ExitFile {
    exit_status: i32,
}

impl Engine {
    /// Brings a record up to date with its task; records an exit that happened while
    /// nobody watched (another process, or before a restart).
    pub fn sync_state(&self, mut rec: ContainerRecord) -> Result<ContainerRecord> {
        if !rec.state.status.has_task() {
            return Ok(rec);
        }
        match ShimTask::connect(&rec.state.shim_address, &rec.id).and_then(|t| t.state()) {
            Ok((TaskStatus::Running, pid)) => {
                if rec.state.status != Status::Running || rec.state.pid != pid {
                    rec.state.status = Status::Running;
                    rec.state.pid = pid;
                    self.containers.save_state(&rec)?;
                }
                Ok(rec)
            }
            Ok((TaskStatus::Paused, _)) => {
                if rec.state.status != Status::Paused {
                    rec.state.status = Status::Paused;
                    self.containers.save_state(&rec)?;
                }
                Ok(rec)
            }
            Ok((TaskStatus::Stopped(exit), _)) => self.record_exit(rec, exit, None),
            Ok((TaskStatus::Created | TaskStatus::Unknown, _)) => Ok(rec),
            Err(e) => {
                // Someone else may be recording the exit: it stops the shim and removes
                // the bundle (with the shim's exit.json) before it saves the record, so
                // a shim that is gone with no exit.json means "wait a moment" first, and
                // "shim lost" (255) only if nobody records anything.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
                let code = loop {
                    let current = self.containers.find(&rec.id)?;
                    if !current.state.status.has_task()
                        || current.state.started_at != rec.state.started_at
                    {
                        return Ok(current);
                    }
                    // The exit the shim wrote, if it lived to write one.
                    let code = fs::read(rec.bundle.join("exit.json"))
                        .ok()
                        .and_then(|b| serde_json::from_slice::<ExitFile>(&b).ok())
                        .map(|x| x.exit_status);
                    if code.is_some() || std::time::Instant::now() >= deadline {
                        break code;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                };
                let why = if code.is_none() {
                    Some(format!("shim lost: {e}"))
                } else {
                    None
                };
                let exit = TaskExit {
                    code: code.unwrap_or(255),
                    at: (chrono::Utc::now().timestamp(), 0),
                };
                self.record_exit(rec, exit, why)
            }
        }
    }

    /// Records that the task ended, and tears it down.
    pub(crate) fn record_exit(
        &self,
        mut rec: ContainerRecord,
        exit: TaskExit,
        error: Option<String>,
    ) -> Result<ContainerRecord> {
        let address = rec.state.shim_address.clone();
        self.teardown_task(&rec, &address);
        rec.state.status = Status::Exited;
        rec.state.exit_code = exit.code;
        rec.state.pid = 0;
        rec.state.shim_address.clear();
        rec.state.finished_at = match chrono::DateTime::from_timestamp(exit.at.0, exit.at.1) {
            Some(t) if exit.at.0 > 0 => t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
            _ => now_rfc3339(),
        };
        if let Some(e) = error {
            rec.state.error = e;
        }
        // The exit is recorded first: until then others see a running container whose
        // shim is gone, so the network is released after (even if the save fails).
        let saved = self.containers.save_state(&rec);
        self.release_network(&rec.id);
        saved?;
        // Exits race (a waiter, the supervisor, a state check): each records what it
        // saw (the last one wins, so a real exit code recorded after a "shim lost" guess
        // replaces it), but only the first announces `die` for this run.
        if self.events.claim_die(&rec.id, &rec.state.started_at) {
            self.container_event(&rec, "die", &[("exitCode", exit.code.to_string())]);
        }
        Ok(rec)
    }

    /// Deletes the task and stops its shim; unmounts and removes the bundle. Best
    /// effort: every step runs even when an earlier one failed.
    pub(crate) fn teardown_task(&self, rec: &ContainerRecord, address: &str) {
        let mut deleted = false;
        if !address.is_empty() {
            let t0 = std::time::Instant::now();
            if let Ok(task) = ShimTask::connect(address, &rec.id) {
                match task.delete() {
                    Ok(_) => deleted = true,
                    Err(e) => tracing::debug!(container = %rec.id, error = %e, "task delete"),
                }
                let _ = task.shutdown();
            }
            tracing::debug!(elapsed = ?t0.elapsed(), "teardown: task deleted, shim shut down");
        }
        let rootfs = rec.bundle.join("rootfs");
        let _ = skiff_image_store::mount::unmount(&rootfs);
        if let Err(e) = fs::remove_dir_all(&rec.bundle) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(container = %rec.id, error = %e, "removing bundle");
            }
        }
        // The shim's Delete removes the cgroup; clean up ourselves only when it could not.
        if !deleted {
            remove_cgroups(&rec.id);
        }
    }
}

/// Removes the container's cgroup directories if the runtime left any (v1: one per
/// hierarchy; v2: one). Only empty cgroups can be removed; that is the point.
fn remove_cgroups(id: &str) {
    let rel = super::create::cgroups_path(id);
    let Ok(entries) = fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    let mut dirs =
        vec![std::path::PathBuf::from("/sys/fs/cgroup").join(rel.trim_start_matches('/'))];
    for e in entries.flatten() {
        dirs.push(e.path().join(rel.trim_start_matches('/')));
    }
    for d in dirs {
        let _ = fs::remove_dir(&d);
    }
}
