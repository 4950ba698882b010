//! Child reaping. The shim is a child subreaper; its main thread waits for signals and, on
//! SIGCHLD, reaps every exited child with `waitpid(-1, WNOHANG)`.
//!
//! libcontainer waits for its own intermediate process inside `build()`, and the container
//! init is a direct child of the shim. So reaping and every libcontainer call that forks
//! hold one lock ([`ChildLock`]): the reaper never steals the intermediate's status, and a
//! create never races an exit it has not recorded yet.

use std::sync::{Mutex, MutexGuard};

use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

use crate::error::{Result, ShimError};
use crate::exit::status_of;

/// Serializes reaping with libcontainer's forks and waits.
#[derive(Debug, Default)]
pub struct ChildLock(Mutex<()>);

impl ChildLock {
    /// Takes the lock (a poisoned lock is still a lock: the guarded data is `()`).
    pub fn lock(&self) -> MutexGuard<'_, ()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Makes the shim the subreaper of everything its containers leave behind.
pub fn set_subreaper() -> Result<()> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(ShimError::sys(
            "prctl(PR_SET_CHILD_SUBREAPER)",
            nix::Error::last(),
        ));
    }
    Ok(())
}

/// Reaps every exited child (holding `lock`), returning `(pid, exit status)` pairs.
pub fn reap_all(lock: &ChildLock) -> Vec<(i32, u32)> {
    let _guard = lock.lock();
    let mut out = Vec::new();
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(ws) => match status_of(ws) {
                Some(x) => out.push(x),
                None => {
                    if ws == nix::sys::wait::WaitStatus::StillAlive {
                        break;
                    }
                }
            },
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break, // ECHILD: nothing left.
        }
    }
    out
}
