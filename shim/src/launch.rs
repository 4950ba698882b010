//! The `start` subcommand: launch the long-running shim (detached, in its own session),
//! print its address, and exit.
//!
//! The parent binds the listening socket and hands it to the child as fd 3 (as containerd's
//! Go shims do), so the address answers as soon as it is printed.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};

use containerd_shim::Flags;

use crate::address::{answers, socket_address, socket_path};
use crate::error::{Result, ShimError};

/// Environment variable telling the serving shim which fd is its inherited listener.
pub const LISTEN_FD_ENV: &str = "SKIFF_SHIM_LISTEN_FD";

/// The shim's own log, in the bundle (its stderr).
pub const LOG_FILE: &str = "shim.log";

/// Runs `start`; returns the address to print.
pub fn run(flags: &Flags) -> Result<String> {
    if flags.id.is_empty() {
        return Err(ShimError::InvalidArgument("-id is required".into()));
    }
    let bundle =
        std::env::current_dir().map_err(|e| ShimError::io("getting cwd", Path::new("."), e))?;
    let address = socket_address(&flags.address, &flags.namespace, &flags.id)?;
    let path = socket_path(&address);
    if path.exists() {
        if answers(&address) {
            write_address(&bundle, &address)?;
            return Ok(address);
        }
        std::fs::remove_file(&path)
            .map_err(|e| ShimError::io("removing stale socket", &path, e))?;
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| ShimError::io("creating", dir, e))?;
    }
    let listener = UnixListener::bind(&path).map_err(|e| ShimError::io("binding", &path, e))?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(bundle.join(LOG_FILE))
        .map_err(|e| ShimError::io("opening", &bundle.join(LOG_FILE), e))?;
    let exe = std::env::current_exe()
        .map_err(|e| ShimError::io("finding own binary", Path::new("/proc/self/exe"), e))?;

    let mut cmd = Command::new(exe);
    cmd.current_dir(&bundle)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .env(LISTEN_FD_ENV, "3")
        .args(["-namespace", &flags.namespace, "-id", &flags.id])
        .args(["-address", &flags.address])
        .args(["-publish-binary", &flags.publish_binary]);
    if flags.debug {
        cmd.arg("-debug");
    }
    cmd.args(["-socket", &address]);
    let fd = listener.as_raw_fd();
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::setsid() < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if fd == 3 {
                let flags = libc::fcntl(3, libc::F_GETFD);
                if flags < 0 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            } else if libc::dup2(fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    if let Err(e) = cmd.spawn() {
        let _ = std::fs::remove_file(&path);
        return Err(ShimError::io("spawning the shim", &path, e));
    }
    write_address(&bundle, &address)?;
    Ok(address)
}

/// Writes `<bundle>/address` atomically.
pub fn write_address(bundle: &Path, address: &str) -> Result<()> {
    let path = bundle.join("address");
    let tmp = bundle.join(".address.tmp");
    (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(address.as_bytes())?;
        std::fs::rename(&tmp, &path)
    })()
    .map_err(|e| ShimError::io("writing", &path, e))
}
