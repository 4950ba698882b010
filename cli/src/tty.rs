//! The local terminal for `run -t` / `exec -t`: raw mode while attached (restored on
//! drop), and its size, followed so the container's terminal can be resized.

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Raw mode on stdin while alive.
pub struct RawMode {
    saved: Option<libc::termios>,
}

impl RawMode {
    /// Puts stdin in raw mode if it is a terminal.
    pub fn enter() -> RawMode {
        let fd = std::io::stdin().as_raw_fd();
        // SAFETY: termios calls on our own stdin with a properly sized struct.
        unsafe {
            if libc::isatty(fd) != 1 {
                return RawMode { saved: None };
            }
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(fd, &mut t) != 0 {
                return RawMode { saved: None };
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(fd, libc::TCSANOW, &t);
            RawMode { saved: Some(saved) }
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(t) = self.saved {
            // SAFETY: restoring the attributes we read.
            unsafe { libc::tcsetattr(std::io::stdin().as_raw_fd(), libc::TCSANOW, &t) };
        }
    }
}

/// The size (columns, rows) of the terminal on stdout, if it is one.
pub fn size() -> Option<(u32, u32)> {
    // SAFETY: TIOCGWINSZ fills a winsize struct.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        if libc::ioctl(std::io::stdout().as_raw_fd(), libc::TIOCGWINSZ, &mut ws) == 0
            && ws.ws_col > 0
        {
            Some((u32::from(ws.ws_col), u32::from(ws.ws_row)))
        } else {
            None
        }
    }
}

/// Calls `resize(cols, rows)` now and whenever the local terminal changes size, until
/// the returned flag is set.
pub fn follow_size(resize: impl Fn(u32, u32) + Send + 'static) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        let mut last = None;
        while !flag.load(Ordering::Acquire) {
            let now = size();
            if now != last {
                if let Some((c, r)) = now {
                    resize(c, r);
                }
                last = now;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    stop
}
