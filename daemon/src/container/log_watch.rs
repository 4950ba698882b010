//! Waiting for a container's log to change, woken by the kernel (inotify) instead of
//! finding out at the next poll: a follower sees new output at once, not up to a poll
//! interval later.

use std::os::fd::AsFd;
use std::path::Path;
use std::time::Duration;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};

/// Watches the directory that holds a log file (the log and its rotated files live
/// there). Without inotify (e.g. the per-user instance limit is reached) it degrades to
/// sleeping, which is what followers did before.
pub struct LogWatch {
    inotify: Option<Inotify>,
}

impl LogWatch {
    /// Starts watching the directory of `log`.
    pub fn new(log: &Path) -> LogWatch {
        let inotify = log.parent().and_then(|dir| {
            let i = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC).ok()?;
            let mask = AddWatchFlags::IN_MODIFY
                | AddWatchFlags::IN_CLOSE_WRITE
                | AddWatchFlags::IN_CREATE
                | AddWatchFlags::IN_MOVED_TO;
            i.add_watch(dir, mask).ok()?;
            Some(i)
        });
        LogWatch { inotify }
    }

    /// Waits until something in the directory changes or `timeout` passes; true if
    /// something changed.
    pub fn wait(&self, timeout: Duration) -> bool {
        let Some(i) = &self.inotify else {
            std::thread::sleep(timeout);
            return false;
        };
        let ms = u16::try_from(timeout.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(i.as_fd(), PollFlags::POLLIN)];
        if poll(&mut fds, PollTimeout::from(ms)).is_err() {
            // Interrupted: the caller simply looks again.
            return false;
        }
        let mut changed = false;
        while let Ok(events) = i.read_events() {
            if events.is_empty() {
                break;
            }
            changed = true;
        }
        changed
    }
}

impl Drop for LogWatch {
    fn drop(&mut self) {
        // Closing an inotify instance waits for an SRCU grace period (~8 ms measured
        // here), and a follower ends on the critical path of `run --rm` (the attach
        // stream, then the auto-remove, wait for it): close it on a thread of its own.
        if let Some(i) = self.inotify.take() {
            let _ = std::thread::Builder::new()
                .name("inotify-close".into())
                .spawn(move || drop(i));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Instant;

    #[test]
    fn wakes_on_a_write_and_times_out_without_one() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("c-json.log");
        let mut f = std::fs::File::create(&log).unwrap();
        let w = LogWatch::new(&log);
        // The create above happened before the watch: nothing pending.
        assert!(!w.wait(Duration::from_millis(1)));
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            f.write_all(b"line\n").unwrap();
        });
        let t = Instant::now();
        assert!(w.wait(Duration::from_secs(10)), "the write woke nobody");
        assert!(t.elapsed() < Duration::from_secs(5));
        writer.join().unwrap();
        // Rotation: a new file in the directory wakes the follower too.
        std::fs::rename(&log, dir.path().join("c-json.log.1")).unwrap();
        assert!(w.wait(Duration::from_secs(10)));
    }
}
