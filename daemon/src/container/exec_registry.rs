//! Exec instances by ID, for front ends whose exec spans several requests (Docker's
//! `POST /containers/{id}/exec`, then `/exec/{id}/start`, `/resize`, `/json`): the engine
//! remembers each one from creation to its end, and a while after so its exit code can
//! still be read. Entries live in memory only, like dockerd's; they go with their
//! container, and finished ones beyond [`KEEP_FINISHED`] are forgotten oldest first.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use super::exec::{ExecOptions, ExecSession};
use crate::engine::Engine;
use crate::error::{EngineError, Result};

/// How many finished exec instances are kept for inspection.
pub const KEEP_FINISHED: usize = 256;

/// How many created-but-not-started exec instances a container may have: each holds
/// FIFOs and a registration in the shim, so a client that only ever creates must not
/// grow them without bound.
pub const MAX_UNSTARTED_PER_CONTAINER: usize = 1024;

/// Where an exec instance is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecState {
    /// Created, not started.
    Created,
    /// Start was asked for and is under way.
    Starting,
    /// Its process runs.
    Running {
        /// Host PID of the process.
        pid: u32,
    },
    /// It ended (or could not start) with this exit code.
    Exited {
        /// Exit code (126/127 when it could not be started, 128+signal when killed).
        code: i32,
    },
}

/// One exec instance as the engine knows it.
#[derive(Debug, Clone)]
pub struct ExecInstance {
    /// What it runs.
    pub options: ExecOptions,
    /// Its FIFOs and identity (the ID is `session.exec_id`, the container `session.container`).
    pub session: ExecSession,
    /// Where it is.
    pub state: ExecState,
}

/// The exec instances of one engine.
#[derive(Debug, Default)]
pub struct ExecRegistry {
    entries: Mutex<HashMap<String, ExecInstance>>,
    finished: Mutex<VecDeque<String>>,
}

impl ExecRegistry {
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<String, ExecInstance>) -> T) -> Result<T> {
        let mut m = self
            .entries
            .lock()
            .map_err(|_| EngineError::Internal("exec registry lock poisoned".into()))?;
        Ok(f(&mut m))
    }

    fn set_state(&self, id: &str, state: ExecState) {
        let _ = self.with(|m| {
            if let Some(e) = m.get_mut(id) {
                e.state = state;
            }
        });
        if matches!(state, ExecState::Exited { .. }) {
            let dropped: Vec<String> = match self.finished.lock() {
                Ok(mut f) => {
                    f.push_back(id.to_string());
                    let extra = f.len().saturating_sub(KEEP_FINISHED);
                    f.drain(..extra).collect()
                }
                Err(_) => Vec::new(),
            };
            let _ = self.with(|m| {
                for d in &dropped {
                    m.remove(d);
                }
            });
        }
    }

    /// Forgets every exec instance of container `id` (it was removed).
    pub fn forget_container(&self, id: &str) {
        let _ = self.with(|m| m.retain(|_, e| e.session.container != id));
    }
}

/// Docker's action detail of an exec: its command line.
fn command_line(opts: &ExecOptions) -> String {
    opts.cmd.join(" ")
}

impl Engine {
    /// Prepares an exec in a running container, remembers it, and announces
    /// `exec_create`; returns its ID.
    pub fn exec_create_tracked(&self, container: &str, opts: &ExecOptions) -> Result<String> {
        let target = self.container(container)?.id;
        let unstarted = self.execs.with(|m| {
            m.values()
                .filter(|e| e.session.container == target && e.state == ExecState::Created)
                .count()
        })?;
        if unstarted >= MAX_UNSTARTED_PER_CONTAINER {
            return Err(EngineError::Conflict(format!(
                "container {target} has {unstarted} exec instances that were created and never started; start or forget them first"
            )));
        }
        let session = self.exec_create(container, opts)?;
        let id = session.exec_id.clone();
        self.execs.with(|m| {
            m.insert(
                id.clone(),
                ExecInstance {
                    options: opts.clone(),
                    session: session.clone(),
                    state: ExecState::Created,
                },
            )
        })?;
        if let Ok(rec) = self.containers.find(&session.container) {
            self.container_event(
                &rec,
                &format!("exec_create: {}", command_line(opts)),
                &[("execID", id.clone())],
            );
        }
        Ok(id)
    }

    /// An exec instance by ID.
    pub fn exec_instance(&self, id: &str) -> Result<ExecInstance> {
        self.execs
            .with(|m| m.get(id).cloned())?
            .ok_or_else(|| EngineError::NotFound(format!("No such exec instance: {id}")))
    }

    /// Starts exec `id` (once; a second start is a conflict) and announces `exec_start`.
    /// A process that cannot be started is recorded as exited (127 not found, 126 not
    /// executable or otherwise failed) and announced as `exec_die`.
    pub fn exec_begin(&self, id: &str) -> Result<ExecInstance> {
        let inst = self.execs.with(|m| match m.get_mut(id) {
            None => Err(EngineError::NotFound(format!(
                "No such exec instance: {id}"
            ))),
            Some(e) if e.state != ExecState::Created => Err(EngineError::Conflict(format!(
                "Exec command {id} has already run"
            ))),
            Some(e) => {
                e.state = ExecState::Starting;
                Ok(e.clone())
            }
        })??;
        let rec = self.containers.find(&inst.session.container).ok();
        match self.exec_start(&inst.session) {
            Ok(pid) => {
                self.execs.set_state(id, ExecState::Running { pid });
                if let Some(rec) = &rec {
                    self.container_event(
                        rec,
                        &format!("exec_start: {}", command_line(&inst.options)),
                        &[("execID", id.to_string())],
                    );
                }
                self.exec_instance(id)
            }
            Err(e) => {
                // The shim keeps a process that failed to start as stopped with its code.
                let code = self
                    .exec_wait(&inst.session)
                    .ok()
                    .filter(|c| *c == 126 || *c == 127)
                    .unwrap_or(126);
                self.exec_ended(&inst, rec.as_ref(), code);
                Err(e)
            }
        }
    }

    /// Waits for a started exec to end, records its exit code, removes its FIFOs and
    /// announces `exec_die`. Blocks.
    pub fn exec_finish(&self, id: &str) -> Result<i32> {
        let inst = self.exec_instance(id)?;
        let code = match self.exec_wait(&inst.session) {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(exec = %id, error = %e, "waiting for exec");
                // The container (and with it the shim) went away.
                137
            }
        };
        let rec = self.containers.find(&inst.session.container).ok();
        self.exec_ended(&inst, rec.as_ref(), code);
        Ok(code)
    }

    fn exec_ended(
        &self,
        inst: &ExecInstance,
        rec: Option<&super::record::ContainerRecord>,
        code: i32,
    ) {
        let id = &inst.session.exec_id;
        self.exec_cleanup(&inst.session);
        self.execs.set_state(id, ExecState::Exited { code });
        if let Some(rec) = rec {
            self.container_event(
                rec,
                "exec_die",
                &[("execID", id.clone()), ("exitCode", code.to_string())],
            );
        }
    }

    /// Sets the terminal size of exec `id`.
    pub fn exec_resize_id(&self, id: &str, width: u32, height: u32) -> Result<()> {
        let inst = self.exec_instance(id)?;
        if !inst.options.tty {
            return Ok(());
        }
        match inst.state {
            ExecState::Exited { .. } => {
                Err(EngineError::Conflict(format!("Exec {id} is not running")))
            }
            _ => self.exec_resize(&inst.session, width, height),
        }
    }
}
