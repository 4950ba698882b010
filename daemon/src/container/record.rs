//! A container as the engine persists it: identity, what it was created from, and its
//! state. The state machine (which transitions are allowed) lives here too.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::options::CreateOptions;

/// Lifecycle status, with Docker's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, never started (or its task was deleted before start).
    Created,
    /// Its process runs.
    Running,
    /// Frozen.
    Paused,
    /// Being restarted by its restart policy.
    Restarting,
    /// Being removed.
    Removing,
    /// Its process ended.
    Exited,
    /// Could not be cleaned up.
    Dead,
}

impl Status {
    /// Docker's name of the status.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Restarting => "restarting",
            Status::Removing => "removing",
            Status::Exited => "exited",
            Status::Dead => "dead",
        }
    }

    /// Whether a task (shim + process) exists for the container.
    pub fn has_task(self) -> bool {
        matches!(self, Status::Running | Status::Paused | Status::Restarting)
    }
}

/// Mutable runtime state of a container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Current status.
    pub status: Status,
    /// PID of the container's init on the host (0 when not running).
    pub pid: u32,
    /// Exit code of the last run (Docker semantics: 128+signal when killed).
    pub exit_code: i32,
    /// Why skiff failed to start it, if it did.
    pub error: String,
    /// When it last started (RFC 3339), empty if never.
    pub started_at: String,
    /// When it last finished (RFC 3339), empty if never.
    pub finished_at: String,
    /// Whether the kernel's OOM killer ended the last run.
    pub oom_killed: bool,
    /// Restarts done by the restart policy.
    pub restart_count: u32,
    /// The user stopped it (for `unless-stopped` and `on-failure`).
    pub stopped_by_user: bool,
    /// ttrpc address of its shim while a task exists.
    pub shim_address: String,
}

impl Default for State {
    fn default() -> Self {
        State {
            status: Status::Created,
            pid: 0,
            exit_code: 0,
            error: String::new(),
            started_at: String::new(),
            finished_at: String::new(),
            oom_killed: false,
            restart_count: 0,
            stopped_by_user: false,
            shim_address: String::new(),
        }
    }
}

/// A container record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// 64 hex characters.
    pub id: String,
    /// Unique name (without Docker's leading slash).
    pub name: String,
    /// Creation time (RFC 3339).
    pub created: String,
    /// The image as the user named it.
    pub image_name: String,
    /// The image's ID.
    pub image_id: String,
    /// Chain ID of the image's top layer (its rootfs), kept so GC spares it.
    pub top_layer: String,
    /// The effective command (entrypoint + cmd), for `ps`.
    pub command: Vec<String>,
    /// What the user asked for.
    pub options: CreateOptions,
    /// Runtime state.
    pub state: State,
    /// The backend that runs it (`oci`).
    pub runtime: String,
    /// Json-file log of its output.
    pub log_path: PathBuf,
    /// Its OCI bundle (under the run root).
    pub bundle: PathBuf,
}

impl ContainerRecord {
    /// The first 12 characters of the ID, as Docker shows it.
    pub fn short_id(&self) -> &str {
        &self.id[..12.min(self.id.len())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_match_docker() {
        assert_eq!(
            serde_json::to_string(&Status::Exited).unwrap(),
            "\"exited\""
        );
        assert_eq!(Status::Running.as_str(), "running");
        assert!(Status::Paused.has_task());
        assert!(!Status::Exited.has_task());
    }
}
