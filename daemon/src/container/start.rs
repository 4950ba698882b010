//! `start`: put the OCI bundle in place, start the container's shim, create and start
//! the task. A failed start leaves no shim, mount or bundle behind.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use super::now_rfc3339;
use super::record::{ContainerRecord, Status};
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::runtime::shim::{jsonfile_uri, ShimTask, TaskIo};

impl Engine {
    /// The FIFO feeding a running `-i` container's stdin (write to it; closing it is EOF).
    pub fn stdin_fifo(&self, rec: &ContainerRecord) -> Option<std::path::PathBuf> {
        let p = rec.bundle.join("stdin");
        (rec.options.stdin_open && p.exists()).then_some(p)
    }

    /// Starts a created or exited container.
    pub async fn start_container(&self, name: &str) -> Result<ContainerRecord> {
        let engine = self.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || engine.start_blocking(&name))
            .await
            .map_err(|e| EngineError::Internal(format!("start task failed: {e}")))?
    }

    pub(crate) fn start_blocking(&self, name: &str) -> Result<ContainerRecord> {
        let found = self.containers.find(name)?;
        let _ops = self.containers.lock_ops(&found.id)?;
        self.start_locked(&found.id)
    }

    /// A restart by the restart policy: under the operation lock, so a user's stop
    /// either comes first (and cancels it) or waits and stops what it started. Returns
    /// `None` when it was cancelled.
    pub(crate) fn restart_by_policy(&self, id: &str) -> Result<Option<ContainerRecord>> {
        let _ops = self.containers.lock_ops(id)?;
        let mut rec = self.containers.find(id)?;
        if rec.state.status != Status::Exited || rec.state.stopped_by_user {
            return Ok(None);
        }
        rec.state.restart_count += 1;
        self.containers.save_state(&rec)?;
        self.start_locked(id).map(Some)
    }

    fn start_locked(&self, id: &str) -> Result<ContainerRecord> {
        let mut rec = self.sync_state(self.containers.find(id)?)?;
        match rec.state.status {
            Status::Running | Status::Restarting => return Ok(rec),
            Status::Paused => {
                return Err(EngineError::Conflict(format!(
                    "cannot start a paused container {}, try unpause instead",
                    rec.id
                )))
            }
            Status::Removing | Status::Dead => {
                return Err(EngineError::Conflict(format!(
                    "container {} is marked for removal and cannot be started",
                    rec.id
                )))
            }
            Status::Created | Status::Exited => {}
        }
        super::cgroup_warmup::warm_up();
        match self.launch(&rec) {
            Ok((address, pid)) => {
                rec.state.status = Status::Running;
                rec.state.pid = pid;
                rec.state.shim_address = address;
                rec.state.started_at = now_rfc3339();
                rec.state.exit_code = 0;
                rec.state.error.clear();
                rec.state.oom_killed = false;
                rec.state.stopped_by_user = false;
                self.containers.save_state(&rec)?;
                self.container_event(&rec, "start", &[]);
                Ok(rec)
            }
            Err(e) => {
                rec.state.error = e.to_string();
                rec.state.exit_code = i32::from(e.exit_status());
                self.containers.save_state(&rec)?;
                Err(e)
            }
        }
    }

    /// Bundle, checks, shim, task create and start; cleans up on any failure.
    fn launch(&self, rec: &ContainerRecord) -> Result<(String, u32)> {
        let result = self.launch_steps(rec);
        if result.is_err() {
            // The shim's teardown ran already if it started; this removes what was
            // prepared before it.
            let _ = skiff_image_store::mount::unmount(&rec.bundle.join("rootfs"));
            let _ = fs::remove_dir_all(&rec.bundle);
            self.release_network(&rec.id);
        }
        result
    }

    fn launch_steps(&self, rec: &ContainerRecord) -> Result<(String, u32)> {
        let bundle = &rec.bundle;
        let rootfs = bundle.join("rootfs");
        fs::create_dir_all(&rootfs).map_err(|e| EngineError::io("creating", &rootfs, e))?;
        let spec_src = self.container_dir(&rec.id).join("config.json");
        fs::copy(&spec_src, bundle.join("config.json"))
            .map_err(|e| EngineError::io("copying", &spec_src, e))?;
        // Read once: the command check and the seccomp program both look at it.
        let spec: serde_json::Value = fs::read(bundle.join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let img = self.images().resolve(&rec.image_id)?;
        self.check_command(rec, &img, &spec)?;
        let rw = self.container_dir(&rec.id).join("rw");
        let mount = self.images().rootfs_writable(&img, &rw)?;
        let stdin = if rec.options.stdin_open {
            let fifo = rec.bundle.join("stdin");
            nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
                .map_err(|e| EngineError::io("creating stdin FIFO", &fifo, e.into()))?;
            if rec.options.stdin_once {
                fifo.display().to_string()
            } else {
                // The shim opens the FIFO again after each writer: attach, detach, attach.
                format!("file://{}?reopen=true", fifo.display())
            }
        } else {
            String::new()
        };
        let io = TaskIo {
            stdin,
            stdout: jsonfile_uri(
                &rec.log_path,
                self.config().log_max_size,
                self.config().log_max_files,
            ),
            stderr: jsonfile_uri(
                &rec.log_path,
                self.config().log_max_size,
                self.config().log_max_files,
            ),
            terminal: rec.options.tty,
        };
        self.setup_network(rec)?;
        let seccomp_kept = self.seed_seccomp_program(bundle, &spec);
        tracing::debug!(container = %rec.id, "start: bundle ready");
        let address = self.shim.spawn(&rec.id, bundle)?;
        tracing::debug!(container = %rec.id, "start: shim spawned");
        let result = ShimTask::connect(&address, &rec.id).and_then(|task| {
            task.create(bundle, &mount, &io)?;
            tracing::debug!(container = %rec.id, "start: task created");
            if let Some(kept) = &seccomp_kept {
                self.keep_seccomp_program(bundle, kept);
            }
            if let (true, Some((cols, rows))) = (rec.options.tty, rec.options.console_size) {
                if let Err(e) = task.resize_pty("", cols, rows) {
                    tracing::debug!(container = %rec.id, "initial terminal size: {e}");
                }
            }
            match task.start() {
                Ok(pid) => Ok(pid),
                Err(e) => {
                    let _ = task.delete();
                    Err(e)
                }
            }
        });
        match result {
            Ok(pid) => Ok((address, pid)),
            Err(e) => {
                self.teardown_task(rec, &address);
                Err(e)
            }
        }
    }

    /// Docker's 127/126 checks: the command must exist in the image and be executable.
    fn check_command(
        &self,
        rec: &ContainerRecord,
        img: &skiff_image_store::ImageRecord,
        spec: &serde_json::Value,
    ) -> Result<()> {
        // With `--init` the command runs under the init: check the user's command.
        let user_command = match rec.command.as_slice() {
            [init, sep, rest @ ..]
                if rec.options.init
                    && init == crate::spec::INIT_PATH_IN_CONTAINER
                    && sep == "--" =>
            {
                rest
            }
            all => all,
        };
        let Some(cmd) = user_command.first() else {
            return Err(EngineError::InvalidInput("no command specified".into()));
        };
        let path_env = spec["process"]["env"]
            .as_array()
            .and_then(|env| {
                env.iter()
                    .filter_map(|e| e.as_str())
                    .find_map(|e| e.strip_prefix("PATH="))
            })
            .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .to_string();
        let covered_by_volume = |p: &str| {
            rec.options
                .volumes
                .iter()
                .any(|v| p.starts_with(&v.destination))
        };
        let candidates: Vec<String> = if cmd.contains('/') {
            let cwd = spec["process"]["cwd"].as_str().unwrap_or("/");
            vec![if cmd.starts_with('/') {
                cmd.clone()
            } else {
                format!("{cwd}/{cmd}")
            }]
        } else {
            path_env
                .split(':')
                .filter(|d| !d.is_empty())
                .map(|d| format!("{d}/{cmd}"))
                .collect()
        };
        if candidates.iter().any(|c| covered_by_volume(c)) {
            return Ok(());
        }
        let mut found_not_exec = false;
        let view = self.images().image_view(img)?;
        for c in &candidates {
            if let Some(p) = view.find(c) {
                let meta = fs::symlink_metadata(&p).map_err(|e| EngineError::io("stat", &p, e))?;
                if meta.file_type().is_symlink()
                    || (meta.is_file() && meta.permissions().mode() & 0o111 != 0)
                {
                    return Ok(());
                }
                found_not_exec = true;
            }
        }
        if found_not_exec {
            Err(EngineError::CommandNotExecutable {
                container: rec.id.clone(),
                command: cmd.clone(),
            })
        } else {
            Err(EngineError::CommandNotFound {
                container: rec.id.clone(),
                command: cmd.clone(),
            })
        }
    }
}
