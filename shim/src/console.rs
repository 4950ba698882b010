//! The console socket through which libcontainer hands over a terminal process's pty
//! master (`terminal=true`), as runc's `--console-socket` does.
//!
//! The shim listens on a unix socket in the bundle, passes its path to the create helper
//! (`with_console_socket`), and, once the helper is done (the pty exists by then), accepts
//! the connection and receives the master as `SCM_RIGHTS`.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::error::{Result, ShimError};

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A listening console socket, removed when dropped.
#[derive(Debug)]
pub struct ConsoleSocket {
    listener: UnixListener,
    path: PathBuf,
}

impl ConsoleSocket {
    /// Listens on a fresh socket in `dir`. The bind goes through `/proc/self/fd`, so a
    /// deep `dir` does not hit the 108-byte socket path limit (libcontainer connects
    /// through a short symlink of its own).
    pub fn bind(dir: &Path) -> Result<Self> {
        let name = format!(
            ".console-{}-{}.sock",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let path = dir.join(&name);
        let d = std::fs::File::open(dir).map_err(|e| ShimError::io("opening", dir, e))?;
        let short = format!("/proc/self/fd/{}/{name}", d.as_raw_fd());
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&short)
            .map_err(|e| ShimError::io("binding the console socket", &path, e))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| ShimError::io("configuring the console socket", &path, e))?;
        Ok(ConsoleSocket { listener, path })
    }

    /// The socket's path, for libcontainer.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts libcontainer's connection and receives the pty master (within `timeout`).
    pub fn receive(&self, timeout: Duration) -> Result<OwnedFd> {
        let deadline = Instant::now() + timeout;
        let err = |what: &str, e: std::io::Error| ShimError::io(what, &self.path, e);
        wait_readable(self.listener.as_raw_fd(), deadline)
            .map_err(|e| err("waiting for the pty master on", e))?;
        let (conn, _) = self.listener.accept().map_err(|e| err("accepting on", e))?;
        conn.set_nonblocking(true)
            .map_err(|e| err("configuring the connection of", e))?;
        loop {
            wait_readable(conn.as_raw_fd(), deadline)
                .map_err(|e| err("waiting for the pty master on", e))?;
            match recv_fd(&conn) {
                Ok(Some(fd)) => return Ok(fd),
                Ok(None) => {
                    return Err(err(
                        "receiving the pty master on",
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            "the message carried no file descriptor",
                        ),
                    ))
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(err("receiving the pty master on", e)),
            }
        }
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn wait_readable(fd: i32, deadline: Instant) -> std::io::Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "libcontainer sent no pty master in time",
            ));
        }
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one descriptor the caller owns.
        match unsafe { libc::poll(&mut p, 1, left.as_millis().min(i32::MAX as u128) as i32) } {
            n if n > 0 => return Ok(()),
            0 => continue,
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// Receives one message and the first descriptor it carries (others are closed).
fn recv_fd(conn: &UnixStream) -> std::io::Result<Option<OwnedFd>> {
    let mut data = [0u8; 256];
    let mut iov = libc::iovec {
        iov_base: data.as_mut_ptr().cast(),
        iov_len: data.len(),
    };
    // Room for a few descriptors, aligned for cmsghdr.
    let mut cbuf = [0u64; 16];
    // SAFETY: a zeroed msghdr is valid; we point it at buffers that outlive the call.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&cbuf);
    // SAFETY: recvmsg into the buffers described by `msg`.
    let n = unsafe { libc::recvmsg(conn.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
    if n < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut first = None;
    // SAFETY: walking the control messages the kernel wrote into `cbuf`.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(c) as *const i32;
                let len = (*c).cmsg_len as usize - (data as usize - c as usize);
                for i in 0..len / std::mem::size_of::<i32>() {
                    let fd = OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i)));
                    if first.is_none() {
                        first = Some(fd);
                    }
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
    }
    if first.is_none() && n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "libcontainer closed the console socket without sending the pty master",
        ));
    }
    Ok(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `fd` over `s` as libcontainer does (`/dev/ptmx` as the payload).
    fn send_fd(s: &UnixStream, fd: i32) {
        let payload = b"/dev/ptmx";
        let mut iov = libc::iovec {
            iov_base: payload.as_ptr() as *mut _,
            iov_len: payload.len(),
        };
        let mut cbuf = [0u64; 8];
        // SAFETY: building a one-fd SCM_RIGHTS message in local buffers.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(4) as usize;
            let c = libc::CMSG_FIRSTHDR(&msg);
            (*c).cmsg_level = libc::SOL_SOCKET;
            (*c).cmsg_type = libc::SCM_RIGHTS;
            (*c).cmsg_len = libc::CMSG_LEN(4) as usize;
            std::ptr::write_unaligned(libc::CMSG_DATA(c) as *mut i32, fd);
            assert!(libc::sendmsg(s.as_raw_fd(), &msg, 0) > 0);
        }
    }

    #[test]
    fn receives_a_descriptor_through_a_long_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let deep = tmp.path().join("d".repeat(120));
        std::fs::create_dir(&deep).unwrap();
        let sock = ConsoleSocket::bind(&deep).unwrap();
        assert!(sock.path().exists());
        // Connect the way libcontainer does: through a short relative symlink.
        let link = tmp.path().join("l.sock");
        std::os::unix::fs::symlink(sock.path(), &link).unwrap();
        let c = UnixStream::connect(&link).unwrap();
        let f = std::fs::File::open("/dev/null").unwrap();
        send_fd(&c, f.as_raw_fd());
        drop(c);
        let got = sock.receive(Duration::from_secs(5)).unwrap();
        let target = std::fs::read_link(format!("/proc/self/fd/{}", got.as_raw_fd())).unwrap();
        assert_eq!(target, Path::new("/dev/null"));
        let path = sock.path().to_path_buf();
        drop(sock);
        assert!(!path.exists());
    }

    #[test]
    fn times_out_without_a_sender() {
        let tmp = tempfile::tempdir().unwrap();
        let sock = ConsoleSocket::bind(tmp.path()).unwrap();
        assert!(sock.receive(Duration::from_millis(100)).is_err());
    }
}
