//! Takes the kernel's cgroup migration lock early, so the container's own migration into
//! its cgroup does not wait for it.
//!
//! Moving a process into a cgroup (the runtime writes the container's first process to
//! `cgroup.procs`) takes a global per-CPU rwsem for writing, and the first writer after
//! a quiet spell waits for an RCU grace period: 7-20 ms on the reference host, the
//! biggest single cost of a `run` after the fork/exec chain itself (crun pays it too).
//! Writers that follow within about a grace period do not wait again. So when a start
//! begins, a short-lived thread rewrites its own thread ID into the cgroup it is already
//! in (a migration that moves nothing) and waits out the grace period in the background,
//! while the engine prepares the bundle and the shim; the runtime's real migration a
//! few milliseconds later then finds the lock warm.
//!
//! Best effort: any failure (no cgroup file, a cgroup v2 rule refusing the write) is
//! ignored, because the lock was taken before the write was vetted or it simply was not.

use std::fs;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long one warm-up keeps the lock warm enough for starts that follow it: each one
/// takes the lock for writing, which also holds up every fork on the host for a moment,
/// so a burst of starts shares one.
const SHARED_FOR: Duration = Duration::from_millis(10);

/// Starts the warm-up in the background, unless one started less than [`SHARED_FOR`]
/// ago; returns at once.
pub fn warm_up() {
    static LAST: Mutex<Option<Instant>> = Mutex::new(None);
    {
        let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_some_and(|t| t.elapsed() < SHARED_FOR) {
            return;
        }
        *last = Some(Instant::now());
    }
    let spawned = std::thread::Builder::new()
        .name("cgroup-warmup".into())
        .spawn(|| {
            if let Some((file, id)) = own_cgroup_file() {
                let _ = fs::write(file, id.to_string());
            }
        });
    if let Err(e) = spawned {
        tracing::debug!("cgroup warm-up thread: {e}");
    }
}

/// The file that moves this thread (cgroup v1: `tasks`, by thread ID) or this process
/// (cgroup v2: `cgroup.procs`, by process ID) into the cgroup it is already in.
fn own_cgroup_file() -> Option<(PathBuf, i64)> {
    let own = fs::read_to_string("/proc/self/cgroup").ok()?;
    let root = PathBuf::from("/sys/fs/cgroup");
    // cgroup v1: a hierarchy of one controller, mounted under its own name.
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if controllers.is_empty() || controllers.contains(',') || controllers.contains('=') {
            continue;
        }
        let dir = root.join(controllers);
        if dir.join("tasks").exists() {
            let file = dir.join(path.trim_start_matches('/')).join("tasks");
            // SAFETY: gettid has no preconditions.
            return Some((file, i64::from(unsafe { libc::gettid() })));
        }
    }
    // cgroup v2 only.
    let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    if !root.join("cgroup.controllers").exists() {
        return None;
    }
    let file = root.join(path.trim_start_matches('/')).join("cgroup.procs");
    Some((file, i64::from(std::process::id())))
}
