//! `wait`: block until a container's task exits; returns its exit code.

use super::record::Status;
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::runtime::shim::ShimTask;

impl Engine {
    /// Waits for the container to stop and returns its exit code. With `--rm`
    /// (auto-remove) the container is removed afterwards.
    pub async fn wait_container(&self, name: &str) -> Result<i32> {
        let engine = self.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || engine.wait_blocking(&name))
            .await
            .map_err(|e| EngineError::Internal(format!("wait task failed: {e}")))?
    }

    /// Waits for the container to stop and returns its exit code, without removing it
    /// (for callers that still read its log, then remove it themselves).
    pub async fn wait_for_exit(&self, name: &str) -> Result<i32> {
        let engine = self.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || engine.wait_exit_blocking(&name, false))
            .await
            .map_err(|e| EngineError::Internal(format!("wait task failed: {e}")))?
    }

    pub(crate) fn wait_blocking(&self, name: &str) -> Result<i32> {
        self.wait_exit_blocking(name, true)
    }

    fn wait_exit_blocking(&self, name: &str, auto_remove: bool) -> Result<i32> {
        let rec = self.containers.find(name)?;
        let rec = if rec.state.status.has_task() {
            let exit = ShimTask::connect(&rec.state.shim_address, &rec.id).and_then(|t| t.wait());
            match exit {
                Ok(exit) => {
                    // Another process may have recorded it already; reload first.
                    let current = self.containers.find(&rec.id)?;
                    if current.state.started_at != rec.state.started_at {
                        // A new run started meanwhile (restart): the exit we saw is
                        // the old run's; the new one is not ours to record.
                        return Ok(exit.code);
                    }
                    if current.state.status == Status::Exited {
                        current
                    } else {
                        self.record_exit(current, exit, None)?
                    }
                }
                Err(_) => self.sync_state(self.containers.find(&rec.id)?)?,
            }
        } else {
            rec
        };
        let code = rec.state.exit_code;
        if auto_remove && rec.options.auto_remove && rec.state.status == Status::Exited {
            self.remove_blocking(&rec.id, false, true)?;
        }
        Ok(code)
    }
}
