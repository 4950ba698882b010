//! Advisory file locks (flock) that coordinate several skiff processes sharing one store:
//! daemonless CLIs run side by side, and a daemon may run beside them.

use std::fs::{File, OpenOptions};
use std::os::fd::AsRawFd;
use std::path::Path;

use crate::error::{Result, StoreError};

/// A held flock; released when dropped.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

/// Shared or exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockMode {
    /// Many holders at once.
    Shared,
    /// One holder.
    Exclusive,
}

impl FileLock {
    /// The locked file, for the small bookkeeping some locks keep in it.
    pub fn file(&self) -> &File {
        &self._file
    }

    /// Blocks until the lock on `path` (created if missing) is held.
    pub fn acquire(path: &Path, mode: LockMode) -> Result<FileLock> {
        Self::lock(path, mode, false).map(|l| l.expect("blocking lock always returns a lock"))
    }

    /// Takes the lock if it is free right now.
    pub fn try_acquire(path: &Path, mode: LockMode) -> Result<Option<FileLock>> {
        Self::lock(path, mode, true)
    }

    fn lock(path: &Path, mode: LockMode, nonblocking: bool) -> Result<Option<FileLock>> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(StoreError::io("opening lock", path))?;
        let mut op = match mode {
            LockMode::Shared => libc::LOCK_SH,
            LockMode::Exclusive => libc::LOCK_EX,
        };
        if nonblocking {
            op |= libc::LOCK_NB;
        }
        loop {
            // SAFETY: flock on a descriptor we own.
            let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
            if rc == 0 {
                return Ok(Some(FileLock { _file: file }));
            }
            let err = std::io::Error::last_os_error();
            match err.raw_os_error() {
                Some(libc::EINTR) => continue,
                Some(libc::EWOULDBLOCK) if nonblocking => return Ok(None),
                _ => return Err(StoreError::io("locking", path)(err)),
            }
        }
    }
}
