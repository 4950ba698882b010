//! Following container exits for the API: a watcher per started container waits for
//! its exit, tells waiting `wait` and `attach` requests, and removes `--rm` containers
//! (HostConfig.AutoRemove) once their attached clients have read all output.
//!
//! This is coordination only: exits and removals are recorded by the engine, and every
//! waiter re-reads the container's record, so a missed event costs latency, never a
//! wrong answer (waiters also poll, for containers started outside this API).

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use skiff_daemon::container::record::{ContainerRecord, Status};
use skiff_daemon::error::ErrorKind;
use skiff_daemon::{Engine, EngineError};
use tokio::sync::{broadcast, Notify};

/// What happened to a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// Its task started.
    Started,
    /// A start failed (it never ran).
    StartFailed,
    /// Its task exited (the record says how).
    Exited,
    /// It was removed.
    Removed,
}

/// An event about container `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Full container ID.
    pub id: String,
    /// What happened.
    pub kind: EventKind,
}

/// How long an auto-remove waits for attached clients to finish reading.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Exit watchers, attached clients and the event channel of one API server.
pub struct Watch {
    events: broadcast::Sender<Event>,
    watching: Mutex<HashSet<String>>,
    attached: Mutex<HashMap<String, usize>>,
    detached: Notify,
}

impl Default for Watch {
    fn default() -> Self {
        Self::new()
    }
}

impl Watch {
    /// An empty set of watchers.
    pub fn new() -> Self {
        Watch {
            events: broadcast::channel(256).0,
            watching: Mutex::default(),
            attached: Mutex::default(),
            detached: Notify::new(),
        }
    }

    /// Events from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Tells every subscriber.
    pub fn publish(&self, id: &str, kind: EventKind) {
        let _ = self.events.send(Event {
            id: id.to_string(),
            kind,
        });
    }

    /// Follows container `id`'s current run unless a watcher already does: waits for its
    /// exit, publishes it, and removes the container if it was created with AutoRemove.
    pub fn watch_exit(self: &Arc<Self>, engine: &Engine, id: &str) {
        {
            let Ok(mut w) = self.watching.lock() else {
                return;
            };
            if !w.insert(id.to_string()) {
                return;
            }
        }
        let (this, engine, id) = (self.clone(), engine.clone(), id.to_string());
        tokio::spawn(async move {
            if let Err(e) = engine.wait_for_exit(&id).await {
                tracing::debug!(container = %id, error = %e, "waiting for exit");
            }
            this.publish(&id, EventKind::Exited);
            let rec = {
                let (engine, id) = (engine.clone(), id.clone());
                tokio::task::spawn_blocking(move || engine.container(&id))
                    .await
                    .ok()
                    .and_then(Result::ok)
            };
            if let Ok(mut w) = this.watching.lock() {
                w.remove(&id);
            }
            if let Some(rec) = rec {
                if rec.options.auto_remove && rec.state.status == Status::Exited {
                    this.drained(&id).await;
                    this.auto_remove(&engine, &id).await;
                }
            }
        });
    }

    /// After a restart of the daemon: follows the running AutoRemove (`--rm`)
    /// containers again, and removes those that exited while nobody watched.
    pub async fn restore(self: &Arc<Self>, engine: &Engine) {
        let recs = {
            let engine = engine.clone();
            tokio::task::spawn_blocking(move || engine.list_containers(true, &[])).await
        };
        let recs = match recs {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "restoring auto-remove watchers");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "restoring auto-remove watchers");
                return;
            }
        };
        for r in recs.into_iter().filter(|r| r.options.auto_remove) {
            if r.state.status.has_task() {
                tracing::debug!(container = %r.id, "following an auto-remove container again");
                self.watch_exit(engine, &r.id);
            } else if r.state.status == Status::Exited {
                tracing::debug!(container = %r.id, "removing an auto-remove container that exited meanwhile");
                self.auto_remove(engine, &r.id).await;
            }
        }
    }

    /// Removes an exited AutoRemove container.
    async fn auto_remove(self: &Arc<Self>, engine: &Engine, id: &str) {
        match remove_container(engine, id, true, true).await {
            Ok(_) => self.removed(engine, id),
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(container = %id, error = %e, "auto-remove failed"),
        }
    }

    /// After a removal: tells waiters, and removes the container again should its record
    /// come back.
    ///
    /// That works around an engine race: skiffd's supervisor (and any `wait`) record an
    /// exit concurrently with a removal, and a record saved during or after it re-creates
    /// the container's directory, so a record-only container reappears (or the removal
    /// fails with "Directory not empty"). Until the engine guards against that, removal
    /// is checked a few times over the next seconds.
    pub fn removed(self: &Arc<Self>, engine: &Engine, id: &str) {
        self.publish(id, EventKind::Removed);
        let (this, engine, id) = (self.clone(), engine.clone(), id.to_string());
        tokio::spawn(async move {
            for delay_ms in [200u64, 1000, 3000] {
                tokio::time::sleep(Duration::from_millis(delay_ms)).await;
                let (e2, id2) = (engine.clone(), id.clone());
                let back = tokio::task::spawn_blocking(move || e2.container(&id2).is_ok())
                    .await
                    .unwrap_or(false);
                if back {
                    tracing::debug!(container = %id, "removed container came back; removing again");
                    if remove_container(&engine, &id, true, true).await.is_ok() {
                        this.publish(&id, EventKind::Removed);
                    }
                }
            }
        });
    }

    /// Whether a watcher follows container `id`'s current run.
    pub fn is_watching(&self, id: &str) -> bool {
        self.watching
            .lock()
            .map(|w| w.contains(id))
            .unwrap_or(false)
    }

    /// How often a waiter re-reads container `id`'s state besides events: rarely while a
    /// watcher follows it (its exit event comes), often otherwise (someone else started
    /// it).
    ///
    /// Re-reading less also narrows an engine race: a state check that reads a record
    /// as running, while the exit is being recorded and the shim torn down, finds the
    /// shim gone and records exit code 255 ("shim lost") over the real one.
    pub fn poll_interval(&self, id: &str) -> Duration {
        if self.is_watching(id) {
            Duration::from_secs(10)
        } else {
            Duration::from_secs(1)
        }
    }

    /// Marks a client as reading container `id`'s output until the guard drops.
    pub fn attach(self: &Arc<Self>, id: &str) -> AttachGuard {
        if let Ok(mut a) = self.attached.lock() {
            *a.entry(id.to_string()).or_default() += 1;
        }
        AttachGuard {
            watch: self.clone(),
            id: id.to_string(),
        }
    }

    fn attached_count(&self, id: &str) -> usize {
        self.attached
            .lock()
            .map(|a| a.get(id).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Waits until no client reads container `id`'s output (or the drain timeout).
    async fn drained(&self, id: &str) {
        let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
        loop {
            let notified = self.detached.notified();
            if self.attached_count(id) == 0 {
                return;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                tracing::warn!(container = %id, "attached client still reading; removing anyway");
                return;
            }
        }
    }
}

/// An attached client; dropping it lets a pending auto-remove go ahead.
pub struct AttachGuard {
    watch: Arc<Watch>,
    id: String,
}

impl Drop for AttachGuard {
    fn drop(&mut self) {
        if let Ok(mut a) = self.watch.attached.lock() {
            if let Some(n) = a.get_mut(&self.id) {
                *n -= 1;
                if *n == 0 {
                    a.remove(&self.id);
                }
            }
        }
        self.watch.detached.notify_waiters();
    }
}

/// Removes a container like [`Engine::remove_container`], retrying a removal that the
/// engine race described at [`Watch::removed`] made fail with "Directory not empty".
pub async fn remove_container(
    engine: &Engine,
    id: &str,
    force: bool,
    volumes: bool,
) -> Result<String, EngineError> {
    let mut attempt = 0;
    loop {
        match engine
            .remove_container_and_volumes(id, force, volumes)
            .await
        {
            Err(EngineError::Io { source, .. })
                if source.kind() == std::io::ErrorKind::DirectoryNotEmpty && attempt < 4 =>
            {
                attempt += 1;
                tracing::debug!(container = %id, attempt, "removal raced with a record save; again");
                tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
            }
            other => return other,
        }
    }
}

/// Whether a container's run that was current at `since` has ended.
pub fn run_ended(since: &ContainerRecord, now: &ContainerRecord) -> bool {
    !now.state.status.has_task() && now.state.finished_at != since.state.finished_at
}

/// Tells a log follower (a blocking thread) when the run it follows has ended: on an
/// exit, failed start or removal event, when the client went away, or, checked now and
/// then ([`Watch::poll_interval`]), when the record says so.
pub struct RunEnd {
    watch: Arc<Watch>,
    events: RefCell<broadcast::Receiver<Event>>,
    engine: Engine,
    since: ContainerRecord,
    last_check: Cell<Instant>,
    client_gone: Box<dyn Fn() -> bool + Send>,
}

impl RunEnd {
    /// Follows the run of `since` (a record read after `events` subscribed).
    pub fn new(
        watch: Arc<Watch>,
        events: broadcast::Receiver<Event>,
        engine: Engine,
        since: ContainerRecord,
        client_gone: Box<dyn Fn() -> bool + Send>,
    ) -> Self {
        RunEnd {
            watch,
            events: RefCell::new(events),
            engine,
            since,
            last_check: Cell::new(Instant::now()),
            client_gone,
        }
    }

    /// Whether to stop following.
    pub fn ended(&self) -> bool {
        if (self.client_gone)() {
            return true;
        }
        let mut check_now = false;
        {
            let mut rx = self.events.borrow_mut();
            loop {
                match rx.try_recv() {
                    Ok(ev) if ev.id == self.since.id => {
                        if matches!(
                            ev.kind,
                            EventKind::Exited | EventKind::StartFailed | EventKind::Removed
                        ) {
                            return true;
                        }
                    }
                    Ok(_) => {}
                    Err(broadcast::error::TryRecvError::Lagged(_)) => check_now = true,
                    Err(_) => break,
                }
            }
        }
        let interval = self.watch.poll_interval(&self.since.id);
        if check_now || self.last_check.get().elapsed() >= interval {
            self.last_check.set(Instant::now());
            return match self.engine.container(&self.since.id) {
                Ok(now) => run_ended(&self.since, &now),
                Err(_) => true,
            };
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn guards_count_attached_clients() {
        let w = Arc::new(Watch::new());
        let g1 = w.attach("a");
        let g2 = w.attach("a");
        assert_eq!(w.attached_count("a"), 2);
        drop(g1);
        assert_eq!(w.attached_count("a"), 1);
        let w2 = w.clone();
        let t = tokio::spawn(async move { w2.drained("a").await });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!t.is_finished());
        drop(g2);
        tokio::time::timeout(Duration::from_secs(2), t)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(w.attached_count("a"), 0);
    }
}
