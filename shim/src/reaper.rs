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

/// A pidfd for `pid` (a child the caller has not reaped yet, so the pid is still ours),
/// or None when the kernel has no pidfds.
pub fn pidfd_open(pid: u32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    // SAFETY: the kernel just gave us this descriptor.
    (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// Sends `sig` to a process: through its pidfd when there is one (immune to pid reuse),
/// else by pid.
pub fn send_signal(pidfd: Option<&std::os::fd::OwnedFd>, pid: u32, sig: i32) -> nix::Result<()> {
    use std::os::fd::AsRawFd;
    let rc = match pidfd {
        // SAFETY: pidfd_send_signal with a pidfd we own and no siginfo.
        Some(fd) => unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                fd.as_raw_fd(),
                sig,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        },
        // SAFETY: kill with a pid the caller has not reaped yet.
        None => libc::c_long::from(unsafe { libc::kill(pid as libc::pid_t, sig) }),
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(nix::Error::last())
    }
}
