//! The long-running shim: serves the task API on its socket, reaps children on SIGCHLD in
//! the main thread, and exits on Shutdown (or SIGTERM/SIGINT once no task is left).

use std::collections::HashMap;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::time::Duration;

use containerd_shim::protos::shim::shim_ttrpc::{create_task, Task};
use containerd_shim::protos::ttrpc::{MethodHandler, Server};
use containerd_shim::Flags;
use signal_hook::consts::{SIGCHLD, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

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

/// Serves until Shutdown; returns when the process should exit.
pub fn run(flags: &Flags) -> Result<()> {
    crate::trim::limit_malloc_arenas();
    let listen = listener(flags)?;
    crate::reaper::set_subreaper()?;
    let mut signals = Signals::new([SIGCHLD, SIGTERM, SIGINT])
        .map_err(|e| ShimError::io("installing signal handlers", "signals".as_ref(), e))?;
    let shim = Shim::new(&flags.namespace);
    shim.set_shutdown_handle(signals.handle());

    let service: Arc<dyn Task + Send + Sync> = Arc::new(TaskService(shim.clone()));
    let mut server = Server::new()
        .set_thread_count_min(1)
        .set_thread_count_default(2)
        .set_thread_count_max(16)
        .add_listener(listen.into_raw_fd())
        .map_err(|e| ShimError::Ttrpc(format!("adding listener: {e}")))?
        .register_service(task_methods(&service));
    server
        .start()
        .map_err(|e| ShimError::Ttrpc(format!("starting server: {e}")))?;

    crate::trim::release_idle_memory();
    for sig in signals.forever() {
        match sig {
            SIGCHLD => shim.on_sigchld(),
            _ if !shim.has_task() => break,
            _ => eprintln!("skiff-shim: signal {sig} ignored while a task exists"),
        }
    }
    // Stop taking connections, and give the Shutdown reply a moment to leave.
    if !flags.socket.is_empty() {
        let _ = std::fs::remove_file(socket_path(&flags.socket));
    }
    std::thread::sleep(Duration::from_millis(20));
    Ok(())
}
