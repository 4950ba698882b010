//! `rm` and `container prune`: remove containers and everything they own.

use super::record::Status;
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::runtime::shim::ShimTask;

impl Engine {
    /// Removes a container; a running one only with `force` (it is killed first).
    pub async fn remove_container(&self, name: &str, force: bool) -> Result<String> {
        self.remove_container_and_volumes(name, force, false).await
    }

    /// Removes a container and, with `volumes` (`rm -v`, and what `--rm` does), the
    /// anonymous volumes it created that no other container uses.
    pub async fn remove_container_and_volumes(
        &self,
        name: &str,
        force: bool,
        volumes: bool,
    ) -> Result<String> {
        let engine = self.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || engine.remove_blocking(&name, force, volumes))
            .await
            .map_err(|e| EngineError::Internal(format!("remove task failed: {e}")))?
    }

    pub(crate) fn remove_blocking(&self, name: &str, force: bool, volumes: bool) -> Result<String> {
        let rec = self.sync_state(self.containers.find(name)?)?;
        if rec.state.status.has_task() {
            if !force {
                return Err(EngineError::Conflict(format!(
                    "You cannot remove a {} container {}. Stop the container before attempting removal or force remove",
                    rec.state.status.as_str(),
                    rec.id
                )));
            }
            if let Ok(task) = ShimTask::connect(&rec.state.shim_address, &rec.id) {
                let _ = task.resume();
                let _ = task.kill(9, true);
                let _ = task.wait();
            }
        }
        let mut rec = self.containers.find(&rec.id)?;
        let address = rec.state.shim_address.clone();
        rec.state.status = Status::Removing;
        self.containers.save_state(&rec)?;
        self.teardown_task(&rec, &address);
        let rw = self.container_dir(&rec.id).join("rw");
        let _ = skiff_image_store::mount::unmount(&rw.join("fs"));
        if let Err(e) = self.forget_network(&rec.id) {
            tracing::warn!(container = %rec.id, error = %e, "leaving networks");
        }
        self.containers.remove(&rec.id)?;
        if volumes {
            self.remove_anonymous_volumes(&rec);
        }
        self.execs.forget_container(&rec.id);
        self.events.forget_container(&rec.id);
        self.container_event(&rec, "destroy", &[]);
        Ok(rec.id)
    }

    /// Removes every stopped container; returns their IDs.
    pub fn prune_containers(&self) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for rec in self.containers.list()? {
            let rec = self.sync_state(rec)?;
            if matches!(
                rec.state.status,
                Status::Exited | Status::Created | Status::Dead
            ) {
                removed.push(self.remove_blocking(&rec.id, false, false)?);
            }
        }
        Ok(removed)
    }
}
