//! Named network namespaces, as `ip netns` keeps them: a new namespace bind-mounted on
//! a file (`<run root>/netns/<container id>`), so it lives independently of any process
//! and its path can go into an OCI spec, be shared by a pod, or be entered by tools.

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};

use super::error::NetworkError;

/// Whether `path` holds a mounted namespace.
pub fn is_namespace(path: &Path) -> bool {
    nix::sys::statfs::statfs(path)
        .map(|s| s.filesystem_type() == nix::sys::statfs::NSFS_MAGIC)
        .unwrap_or(false)
}

/// Creates a new network namespace pinned at `path` (a no-op when one is there).
pub fn create(path: &Path) -> Result<(), NetworkError> {
    if is_namespace(path) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|e| NetworkError::io("creating", dir, e))?;
    }
    fs::File::create(path).map_err(|e| NetworkError::io("creating", path, e))?;
    let target = path.to_path_buf();
    // unshare changes only the calling thread's namespace: do it on a thread of its own
    // that ends right after, so no thread of the engine ever runs in the new namespace.
    let result = std::thread::spawn(move || -> Result<(), NetworkError> {
        unshare(CloneFlags::CLONE_NEWNET)
            .map_err(|e| NetworkError::io("creating a network namespace for", &target, e.into()))?;
        mount(
            Some("/proc/thread-self/ns/net"),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|e| NetworkError::io("pinning the network namespace at", &target, e.into()))
    })
    .join()
    .unwrap_or_else(|_| {
        Err(NetworkError::io(
            "creating a network namespace for",
            path,
            std::io::Error::other("namespace thread panicked"),
        ))
    });
    if result.is_err() {
        let _ = fs::remove_file(path);
    }
    result
}

/// Unpins and deletes a namespace file; the namespace itself (and the container ends
/// of its veth pairs) goes away with its last user. A missing file is fine.
pub fn remove(path: &Path) -> Result<(), NetworkError> {
    if is_namespace(path) {
        umount2(path, MntFlags::MNT_DETACH)
            .map_err(|e| NetworkError::io("unmounting network namespace", path, e.into()))?;
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(NetworkError::io("removing", path, e)),
    }
}

/// A command that runs inside the network namespace at `ns` (it enters the namespace
/// between fork and exec, so nothing of the caller changes).
pub fn command_in(ns: &Path, program: &str) -> Result<(Command, fs::File), NetworkError> {
    let file = fs::File::open(ns).map_err(|e| NetworkError::io("opening", ns, e))?;
    let fd = file.as_raw_fd();
    let mut cmd = Command::new(program);
    // SAFETY: setns is async-signal-safe; the descriptor stays open in the parent (the
    // file is returned to the caller) until the child has been spawned.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok((cmd, file))
}

/// Points the network namespace of the OCI spec at `config` to `ns`, or removes the
/// network namespace entry (the host's) when `ns` is `None`.
pub fn set_spec_namespace(config: &Path, ns: Option<&Path>) -> Result<(), NetworkError> {
    let state = |why: String| NetworkError::State {
        path: config.to_path_buf(),
        why,
    };
    let body = fs::read(config).map_err(|e| NetworkError::io("reading", config, e))?;
    let mut spec: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| state(e.to_string()))?;
    let list = spec["linux"]["namespaces"]
        .as_array_mut()
        .ok_or_else(|| state("no linux.namespaces".into()))?;
    list.retain(|n| n["type"] != "network");
    if let Some(ns) = ns {
        list.push(serde_json::json!({"type": "network", "path": ns}));
    }
    let out = serde_json::to_vec_pretty(&spec).map_err(|e| state(e.to_string()))?;
    fs::write(config, out).map_err(|e| NetworkError::io("writing", config, e))
}
