//! `exec`: run another process in a running container. Its stdio goes through FIFOs
//! the caller reads and writes (exec output is not part of the container's log, as in
//! Docker).

use std::fs;
use std::path::PathBuf;

use serde_json::Value;

use super::record::Status;
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::runtime::shim::{ShimTask, TaskIo};
use crate::runtime::TaskExit;
use crate::spec;

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct ExecOptions {
    /// Command and arguments.
    pub cmd: Vec<String>,
    /// Extra environment (`KEY=VALUE`).
    pub env: Vec<String>,
    /// Working directory (default: the container's).
    pub workdir: Option<String>,
    /// `user[:group]` (default: the container's user).
    pub user: Option<String>,
    /// Keep stdin open.
    pub stdin: bool,
    /// Allocate a terminal.
    pub tty: bool,
    /// Run with all capabilities.
    pub privileged: bool,
    /// Nobody reads the output (`exec -d`): stdio is /dev/null.
    pub detach: bool,
}

/// A prepared exec: its FIFOs and identity.
#[derive(Debug, Clone)]
pub struct ExecSession {
    /// The container ID.
    pub container: String,
    /// The exec ID.
    pub exec_id: String,
    /// FIFO to write the process's stdin to (with `stdin`).
    pub stdin: Option<PathBuf>,
    /// FIFO carrying its stdout.
    pub stdout: PathBuf,
    /// FIFO carrying its stderr (unused with a terminal: the terminal carries both).
    pub stderr: PathBuf,
    /// Whether the process has a terminal.
    pub tty: bool,
    dir: PathBuf,
    address: String,
}

impl Engine {
    /// Prepares an exec in a running container (nothing runs until [`Engine::exec_start`]).
    pub fn exec_create(&self, name: &str, opts: &ExecOptions) -> Result<ExecSession> {
        let rec = self.container(name)?;
        match rec.state.status {
            Status::Running => {}
            Status::Paused => {
                return Err(EngineError::Conflict(format!(
                    "Container {} is paused, unpause the container before exec",
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
        if opts.cmd.is_empty() {
            return Err(EngineError::InvalidInput("no command specified".into()));
        }
        let spec_path = self.container_dir(&rec.id).join("config.json");
        let spec: Value = serde_json::from_slice(
            &fs::read(&spec_path).map_err(|e| EngineError::io("reading", &spec_path, e))?,
        )
        .map_err(|e| EngineError::Internal(format!("container spec: {e}")))?;
        let mut process = spec["process"].clone();
        process["args"] = Value::from(opts.cmd.clone());
        process["terminal"] = Value::from(opts.tty);
        if opts.privileged {
            // Every capability the host can give, as `docker exec --privileged`.
            let all = spec::capabilities::capability_set(&[], &[], true)
                .and_then(|set| spec::capabilities::linux_capabilities(&set))
                .map_err(super::create::spec_err)?;
            process["capabilities"] = serde_json::to_value(all)
                .map_err(|e| EngineError::Internal(format!("exec capabilities: {e}")))?;
        }
        if let Some(w) = &opts.workdir {
            if !w.starts_with('/') {
                return Err(EngineError::InvalidInput(format!(
                    "the working directory '{w}' is invalid, it needs to be an absolute path"
                )));
            }
            process["cwd"] = Value::from(w.clone());
        }
        if let Some(u) = &opts.user {
            let view = self.container_dir(&rec.id).join("image-etc");
            let (uid, gid, extra) =
                spec::resolve_user(&view, u).map_err(super::create::spec_err)?;
            process["user"] = serde_json::json!({"uid": uid, "gid": gid, "additionalGids": extra});
        }
        if !opts.env.is_empty() {
            let mut env: Vec<String> = process["env"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            for e in &opts.env {
                let key = e.split('=').next().unwrap_or_default();
                env.retain(|x| x.split('=').next() != Some(key));
                env.push(e.clone());
            }
            process["env"] = Value::from(env);
        }
        let exec_id = super::new_id();
        let dir = rec.bundle.join(format!("exec-{exec_id}"));
        fs::create_dir_all(&dir).map_err(|e| EngineError::io("creating", &dir, e))?;
        let fifo = |n: &str| -> Result<PathBuf> {
            let p = dir.join(n);
            nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .map_err(|e| EngineError::io("creating FIFO", &p, e.into()))?;
            Ok(p)
        };
        let session = ExecSession {
            container: rec.id.clone(),
            stdin: if opts.stdin {
                Some(fifo("stdin")?)
            } else {
                None
            },
            stdout: fifo("stdout")?,
            stderr: fifo("stderr")?,
            tty: opts.tty,
            exec_id,
            dir,
            address: rec.state.shim_address.clone(),
        };
        let io = if opts.detach {
            TaskIo::default()
        } else {
            TaskIo {
                stdin: session
                    .stdin
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                stdout: session.stdout.display().to_string(),
                stderr: session.stderr.display().to_string(),
                terminal: opts.tty,
            }
        };
        let body =
            serde_json::to_vec(&process).map_err(|e| EngineError::Internal(e.to_string()))?;
        let created = ShimTask::connect(&session.address, &rec.id)
            .and_then(|t| t.exec(&session.exec_id, body, &io));
        if let Err(e) = created {
            let _ = fs::remove_dir_all(&session.dir);
            return Err(e);
        }
        Ok(session)
    }

    /// Starts a prepared exec; returns its PID.
    pub fn exec_start(&self, s: &ExecSession) -> Result<u32> {
        ShimTask::connect(&s.address, &s.container)?.start_exec(&s.exec_id)
    }

    /// Waits for an exec to exit; returns its exit code.
    pub fn exec_wait(&self, s: &ExecSession) -> Result<i32> {
        let exit: TaskExit = ShimTask::connect(&s.address, &s.container)?.wait_exec(&s.exec_id)?;
        Ok(exit.code)
    }

    /// Sets the terminal size of an exec started with `tty`.
    pub fn exec_resize(&self, s: &ExecSession, width: u32, height: u32) -> Result<()> {
        ShimTask::connect(&s.address, &s.container)?.resize_pty(&s.exec_id, width, height)
    }

    /// Forgets a finished exec and removes its FIFOs.
    pub fn exec_cleanup(&self, s: &ExecSession) {
        if let Ok(t) = ShimTask::connect(&s.address, &s.container) {
            let _ = t.delete_exec(&s.exec_id);
        }
        let _ = fs::remove_dir_all(&s.dir);
    }
}
