//! The supervisor `skiffd` runs: it watches every container that has a task (whoever
//! started it: the daemon or a daemonless `skiff`), records exits, and applies restart
//! policies with Docker's semantics and back-off. Containers live in their shims, so a
//! killed and restarted `skiffd` simply watches them again.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::container::options::RestartPolicy;
use crate::container::record::{ContainerRecord, Status};
use crate::engine::Engine;
use crate::error::Result;
use crate::runtime::shim::ShimTask;

/// Watches containers and restarts them by policy.
pub struct Supervisor {
    engine: Engine,
    watched: Arc<Mutex<HashSet<String>>>,
    /// Exits (container ID, finished-at) already acted on, so an exit another process
    /// recorded first still gets its restart, once.
    handled: Mutex<HashSet<(String, String)>>,
}

/// Whether a container that just exited with `code` restarts under its policy.
/// `daemon_start` is true when skiffd itself is starting (Docker restarts `always`
/// containers then even if a user had stopped them).
pub fn should_restart(rec: &ContainerRecord, daemon_start: bool) -> bool {
    match rec.options.restart {
        RestartPolicy::No => false,
        RestartPolicy::Always => daemon_start || !rec.state.stopped_by_user,
        RestartPolicy::UnlessStopped => !rec.state.stopped_by_user,
        RestartPolicy::OnFailure { max_retries } => {
            !rec.state.stopped_by_user
                && rec.state.exit_code != 0
                && (max_retries == 0 || rec.state.restart_count < max_retries)
                && !daemon_start
        }
    }
}

impl Supervisor {
    /// A supervisor over `engine`.
    pub fn new(engine: Engine) -> Self {
        Supervisor {
            engine,
            watched: Arc::default(),
            handled: Mutex::default(),
        }
    }

    /// Startup: watch running containers again, restart those whose policy says so.
    pub fn recover(&self) -> Result<()> {
        for rec in self.engine.containers.list()? {
            let had_task = rec.state.status.has_task();
            let rec = self.engine.sync_state(rec)?;
            // An exit that happened while skiffd was down counts as just observed.
            let restart = if had_task {
                should_restart(&rec, false)
            } else {
                should_restart(&rec, true)
            };
            if rec.state.status.has_task() {
                self.watch(&rec.id);
            } else if rec.state.status == Status::Exited && restart {
                match self.engine.start_blocking(&rec.id) {
                    Ok(_) => self.watch(&rec.id),
                    Err(e) => {
                        tracing::warn!(container = %rec.id, error = %e, "restart at startup failed")
                    }
                }
            }
        }
        Ok(())
    }

    /// Picks up containers started since the last look (by daemonless CLIs too), and
    /// exits that another process recorded before this supervisor saw them.
    pub fn scan(&self) -> Result<()> {
        for rec in self.engine.containers.list()? {
            if rec.state.status.has_task() {
                if !self.is_watched(&rec.id) {
                    self.watch(&rec.id);
                }
            } else if rec.state.status == Status::Exited
                && should_restart(&rec, false)
                && !self.is_watched(&rec.id)
            {
                let key = (rec.id.clone(), rec.state.finished_at.clone());
                let fresh = self
                    .handled
                    .lock()
                    .map(|mut h| h.insert(key))
                    .unwrap_or(false);
                if fresh {
                    self.spawn(&rec.id, true);
                }
            }
        }
        Ok(())
    }

    fn is_watched(&self, id: &str) -> bool {
        self.watched.lock().map(|w| w.contains(id)).unwrap_or(true)
    }

    /// Starts a watcher thread for container `id` unless one runs.
    pub fn watch(&self, id: &str) {
        self.spawn(id, false);
    }

    fn spawn(&self, id: &str, exited: bool) {
        let Ok(mut w) = self.watched.lock() else {
            return;
        };
        if !w.insert(id.to_string()) {
            return;
        }
        drop(w);
        let (engine, watched, id) = (self.engine.clone(), self.watched.clone(), id.to_string());
        std::thread::spawn(move || {
            watch_loop(&engine, &id, exited);
            if let Ok(mut w) = watched.lock() {
                w.remove(&id);
            }
        });
    }
}

/// Waits for the container's task to exit and restarts it by policy, again and again.
/// With `exited`, the container has already exited (recorded by someone else): go
/// straight to the restart decision.
fn watch_loop(engine: &Engine, id: &str, mut exited: bool) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let Ok(rec) = engine.containers.find(id) else {
            return;
        };
        if exited {
            exited = false;
            if rec.state.status.has_task() {
                continue;
            }
            if !should_restart(&rec, false)
                || !restart_after(engine, id, &mut backoff, Duration::ZERO)
            {
                return;
            }
            continue;
        }
        if !rec.state.status.has_task() {
            return;
        }
        let started = Instant::now();
        let exit = ShimTask::connect(&rec.state.shim_address, id).and_then(|t| t.wait());
        let Ok(current) = engine.containers.find(id) else {
            return;
        };
        let rec = match exit {
            // Recorded only against the run that was waited on: a restart meanwhile has
            // a new run (and shim) that this exit must not tear down.
            Ok(_) if current.state.started_at != rec.state.started_at => current,
            Ok(exit) if current.state.status != Status::Exited => {
                match engine.record_exit(current, exit, None) {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(container = %id, error = %e, "recording exit");
                        return;
                    }
                }
            }
            Ok(_) => current,
            Err(_) => match engine.sync_state(current) {
                Ok(r) => r,
                Err(_) => return,
            },
        };
        if rec.state.status.has_task() {
            continue;
        }
        if !should_restart(&rec, false)
            || !restart_after(engine, id, &mut backoff, started.elapsed())
        {
            return;
        }
    }
}

/// Sleeps the back-off, then restarts the container unless a user stopped it meanwhile.
/// Returns whether it was restarted.
fn restart_after(engine: &Engine, id: &str, backoff: &mut Duration, ran_for: Duration) -> bool {
    if ran_for > Duration::from_secs(10) {
        *backoff = Duration::from_millis(100);
    }
    std::thread::sleep(*backoff);
    *backoff = (*backoff * 2).min(Duration::from_secs(60));
    let Ok(again) = engine.containers.find(id) else {
        return false;
    };
    if again.state.status != Status::Exited
        || again.state.stopped_by_user
        || !should_restart(&again, false)
    {
        return false;
    }
    match engine.restart_by_policy(id) {
        Ok(started) => started.is_some(),
        Err(e) => {
            tracing::warn!(container = %id, error = %e, "restart failed");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::options::CreateOptions;
    use crate::container::record::State;

    fn rec(policy: RestartPolicy, code: i32, by_user: bool, count: u32) -> ContainerRecord {
        ContainerRecord {
            id: "x".repeat(64),
            name: "n".into(),
            created: String::new(),
            image_name: String::new(),
            image_id: String::new(),
            top_layer: String::new(),
            command: vec![],
            options: CreateOptions {
                restart: policy,
                ..Default::default()
            },
            state: State {
                status: Status::Exited,
                exit_code: code,
                stopped_by_user: by_user,
                restart_count: count,
                ..Default::default()
            },
            runtime: "oci".into(),
            log_path: Default::default(),
            bundle: Default::default(),
        }
    }

    #[test]
    fn restart_policies_follow_docker() {
        assert!(!should_restart(&rec(RestartPolicy::No, 1, false, 0), false));
        assert!(should_restart(
            &rec(RestartPolicy::Always, 0, false, 0),
            false
        ));
        assert!(!should_restart(
            &rec(RestartPolicy::Always, 0, true, 0),
            false
        ));
        assert!(should_restart(
            &rec(RestartPolicy::Always, 0, true, 0),
            true
        ));
        assert!(!should_restart(
            &rec(RestartPolicy::UnlessStopped, 0, true, 0),
            true
        ));
        assert!(should_restart(
            &rec(RestartPolicy::UnlessStopped, 3, false, 0),
            false
        ));
        let of = |n| RestartPolicy::OnFailure { max_retries: n };
        assert!(!should_restart(&rec(of(3), 0, false, 0), false));
        assert!(should_restart(&rec(of(3), 1, false, 2), false));
        assert!(!should_restart(&rec(of(3), 1, false, 3), false));
        assert!(should_restart(&rec(of(0), 1, false, 99), false));
    }
}
