//! The long-running shim: serves the task API on its socket, reaps children on SIGCHLD in
//! the main thread, and exits on Shutdown (or SIGTERM/SIGINT once no task is left).

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::Duration;

use containerd_shim::protos::shim::shim_ttrpc::{create_task, Task};
use containerd_shim::protos::ttrpc::{MethodHandler, Server};
use containerd_shim::Flags;
use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};

use crate::address::socket_path;
use crate::error::{Result, ShimError};
use crate::launch::LISTEN_FD_ENV;
use crate::service::{Shim, TaskService};

/// The ttrpc methods of the task service under both the v3 name (containerd 2.x, this
/// crate's client) and the v2 name (containerd 1.6/1.7); the messages are the same.
fn task_methods(
    service: &Arc<dyn Task + Send + Sync>,
) -> HashMap<String, Box<dyn MethodHandler + Send + Sync>> {
    let mut methods = create_task(service.clone());
    let v2: Vec<_> = create_task(service.clone())
        .into_iter()
        .filter_map(|(k, v)| {
            k.strip_prefix("/containerd.task.v3.Task/")
                .map(|m| (format!("/containerd.task.v2.Task/{m}"), v))
        })
        .collect();
    methods.extend(v2);
    methods
}

fn listener(flags: &Flags) -> Result<OwnedFd> {
    if let Ok(fd) = std::env::var(LISTEN_FD_ENV) {
        // SAFETY: removing our own variable before any thread starts.
        unsafe { std::env::remove_var(LISTEN_FD_ENV) };
        let fd: i32 = fd
            .parse()
            .map_err(|_| ShimError::InvalidArgument(format!("{LISTEN_FD_ENV}={fd:?}")))?;
        // Mark it close-on-exec so containers never inherit it.
        // SAFETY: fcntl on an fd number we were handed.
        unsafe {
            let f = libc::fcntl(fd, libc::F_GETFD);
            if f < 0 || libc::fcntl(fd, libc::F_SETFD, f | libc::FD_CLOEXEC) < 0 {
                return Err(ShimError::sys(
                    "inherited listener fd is unusable",
                    nix::Error::last(),
                ));
            }
            return Ok(OwnedFd::from_raw_fd(fd));
        }
    }
    if flags.socket.is_empty() {
        return Err(ShimError::InvalidArgument(
            "no -socket and no inherited listener".into(),
        ));
    }
    let path = socket_path(&flags.socket);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ShimError::io("creating", dir, e))?;
    }
    let l = UnixListener::bind(&path).map_err(|e| ShimError::io("binding", &path, e))?;
    Ok(l.into())
}

/// How often an idle shim checks whether its resident set grew.
const TRIM_CHECK_MS: i32 = 5_000;

/// Resident pages grown since the last trim that make the next check trim again.
const TRIM_SLACK_PAGES: u64 = 32;

fn resident_pages() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// Reads whatever is queued on a non-blocking wake-up socket; true if anything was.
fn drain(s: &mut UnixStream) -> bool {
    let mut buf = [0u8; 64];
    let mut any = false;
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        any = true;
    }
    any
}

fn wake_pair() -> Result<(UnixStream, UnixStream)> {
    let (r, w) = UnixStream::pair()
        .map_err(|e| ShimError::io("creating a wake-up socket", "socketpair".as_ref(), e))?;
    for s in [&r, &w] {
        s.set_nonblocking(true)
            .map_err(|e| ShimError::io("configuring a wake-up socket", "socketpair".as_ref(), e))?;
    }
    Ok((r, w))
}

/// Serves until Shutdown; returns when the process should exit.
pub fn run(flags: &Flags) -> Result<()> {
    crate::trim::limit_malloc_arenas();
    let listen = listener(flags)?;
    crate::reaper::set_subreaper()?;
    // SIGCHLD and the exit requests (SIGTERM, SIGINT, Shutdown) each wake the main thread
    // through a socket, so it can also wake up on a timer to trim its memory.
    let (mut chld_r, chld_w) = wake_pair()?;
    let (mut exit_r, exit_w) = wake_pair()?;
    let sig_err = |e| ShimError::io("installing signal handlers", "signals".as_ref(), e);
    signal_hook::low_level::pipe::register(SIGCHLD, chld_w).map_err(sig_err)?;
    for sig in [SIGTERM, SIGINT] {
        let w = exit_w.try_clone().map_err(sig_err)?;
        signal_hook::low_level::pipe::register(sig, w).map_err(sig_err)?;
    }
    let shim = Shim::new(&flags.namespace, exit_w);

    let service: Arc<dyn Task + Send + Sync> = Arc::new(TaskService(shim.clone()));
    let mut server = Server::new()
        .set_thread_count_min(1)
        .set_thread_count_default(2)
        .set_thread_count_max(16)
        .add_listener(listen.into_raw_fd())
        .map_err(|e| ShimError::Ttrpc(format!("adding listener: {e}")))?
        .register_service(task_methods(&service));
    // Before any request arrives (see Shim::trim_memory).
    crate::trim::release_idle_memory();
    server
        .start()
        .map_err(|e| ShimError::Ttrpc(format!("starting server: {e}")))?;
    let mut trimmed_at = resident_pages();
    loop {
        let mut fds = [
            libc::pollfd {
                fd: chld_r.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: exit_r.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: poll on two descriptors we own, with a correctly sized array.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, TRIM_CHECK_MS) };
        if n < 0 {
            continue; // EINTR
        }
        if n == 0 {
            // Idle: give back what the last burst of work faulted in.
            if resident_pages() > trimmed_at + TRIM_SLACK_PAGES {
                shim.trim_memory();
                trimmed_at = resident_pages();
            }
            continue;
        }
        if drain(&mut chld_r) {
            shim.on_sigchld();
        }
        if drain(&mut exit_r) {
            if shim.exit_requested() || !shim.has_task() {
                break;
            }
            eprintln!("skiff-shim: SIGTERM/SIGINT ignored while a task exists");
        }
    }
    // Stop taking connections, and give the Shutdown reply a moment to leave.
    if !flags.socket.is_empty() {
        let _ = std::fs::remove_file(socket_path(&flags.socket));
    }
    std::thread::sleep(Duration::from_millis(20));
    Ok(())
}
