//! Mount descriptions for root filesystems, and the code that performs them.
//!
//! The store only describes mounts ([`Mount`]); whoever runs a container performs them
//! in its own mount namespace with [`Mount::mount`]. Overlay mounts use the legacy
//! mount(2) call while the option string fits in a page, and the new mount API
//! (`fsopen` + one `lowerdir+` per layer, Linux >= 6.8) beyond that, so images with
//! hundreds of layers still mount.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::error::{Result, StoreError};

/// How one piece of a root filesystem is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mount {
    /// An overlay of layer directories (top first), optionally with a writable upper.
    Overlay {
        /// Read-only layers, topmost first.
        lower: Vec<PathBuf>,
        /// Writable upper and work dirs (same filesystem), or None for a read-only view.
        upper: Option<(PathBuf, PathBuf)>,
    },
    /// A bind mount of a directory (a single-layer view, or a native snapshot).
    Bind {
        /// The directory to bind.
        source: PathBuf,
        /// Remount read-only.
        readonly: bool,
    },
}

/// The largest legacy mount data the kernel accepts (one page, less the NUL).
const LEGACY_MOUNT_DATA_MAX: usize = 4095;

impl Mount {
    /// The legacy option string of an overlay mount.
    pub fn overlay_options(lower: &[PathBuf], upper: Option<&(PathBuf, PathBuf)>) -> String {
        let lowers: Vec<String> = lower.iter().map(|p| p.display().to_string()).collect();
        let mut s = format!("lowerdir={}", lowers.join(":"));
        if let Some((u, w)) = upper {
            s.push_str(&format!(
                ",upperdir={},workdir={}",
                u.display(),
                w.display()
            ));
        }
        s
    }

    /// Performs the mount on `target` (an existing directory).
    pub fn mount(&self, target: &Path) -> Result<()> {
        let fail = |why: String| StoreError::Mount {
            target: target.to_path_buf(),
            why,
        };
        match self {
            Mount::Bind { source, readonly } => {
                mount(
                    Some(source),
                    target,
                    None::<&str>,
                    MsFlags::MS_BIND | MsFlags::MS_REC,
                    None::<&str>,
                )
                .map_err(|e| fail(format!("bind {}: {e}", source.display())))?;
                if *readonly {
                    let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
                    mount(None::<&str>, target, None::<&str>, flags, None::<&str>)
                        .map_err(|e| fail(format!("remount read-only: {e}")))?;
                }
                Ok(())
            }
            Mount::Overlay { lower, upper } => {
                if lower.is_empty() {
                    return Err(fail("overlay needs at least one lower layer".into()));
                }
                if let Some((u, w)) = upper {
                    for d in [u, w] {
                        std::fs::create_dir_all(d)
                            .map_err(|e| fail(format!("creating {}: {e}", d.display())))?;
                    }
                }
                let opts = Self::overlay_options(lower, upper.as_ref());
                if opts.len() <= LEGACY_MOUNT_DATA_MAX {
                    let flags = if upper.is_none() {
                        MsFlags::MS_RDONLY
                    } else {
                        MsFlags::empty()
                    };
                    mount(
                        Some("overlay"),
                        target,
                        Some("overlay"),
                        flags,
                        Some(opts.as_str()),
                    )
                    .map_err(|e| fail(format!("overlay ({} layers): {e}", lower.len())))
                } else {
                    mount_overlay_fsconfig(lower, upper.as_ref(), target).map_err(|e| {
                        fail(format!(
                            "overlay with {} layers (options {} bytes, needs Linux >= 6.8 for lowerdir+): {e}",
                            lower.len(),
                            opts.len()
                        ))
                    })
                }
            }
        }
    }
}

/// Unmounts `target` (lazily if busy); not mounted is fine.
pub fn unmount(target: &Path) -> Result<()> {
    match umount2(target, MntFlags::empty()) {
        Ok(()) => Ok(()),
        Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => Ok(()),
        Err(nix::errno::Errno::EBUSY) => {
            umount2(target, MntFlags::MNT_DETACH).map_err(|e| StoreError::Mount {
                target: target.to_path_buf(),
                why: format!("unmount: {e}"),
            })
        }
        Err(e) => Err(StoreError::Mount {
            target: target.to_path_buf(),
            why: format!("unmount: {e}"),
        }),
    }
}

const FSOPEN_CLOEXEC: libc::c_uint = 1;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 1;
const MOUNT_ATTR_RDONLY: libc::c_uint = 1;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 4;

fn cstr(s: &[u8]) -> std::io::Result<CString> {
    CString::new(s)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))
}

fn check(rc: libc::c_long) -> std::io::Result<libc::c_long> {
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn fsconfig_string(fd: &OwnedFd, key: &str, value: &[u8]) -> std::io::Result<()> {
    let k = cstr(key.as_bytes())?;
    let v = cstr(value)?;
    // SAFETY: valid fd and NUL-terminated strings that outlive the call.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fd.as_raw_fd(),
            FSCONFIG_SET_STRING,
            k.as_ptr(),
            v.as_ptr(),
            0,
        )
    })
    .map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("{key}={}: {e}", String::from_utf8_lossy(value)),
        )
    })?;
    Ok(())
}

fn mount_overlay_fsconfig(
    lower: &[PathBuf],
    upper: Option<&(PathBuf, PathBuf)>,
    target: &Path,
) -> std::io::Result<()> {
    let fstype = cstr(b"overlay")?;
    // SAFETY: fsopen with a valid string; the returned fd is owned below.
    let fs = check(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })?;
    // SAFETY: the kernel just gave us this descriptor.
    let fs = unsafe { OwnedFd::from_raw_fd(fs as i32) };
    for l in lower {
        fsconfig_string(&fs, "lowerdir+", l.as_os_str().as_bytes())?;
    }
    if let Some((u, w)) = upper {
        fsconfig_string(&fs, "upperdir", u.as_os_str().as_bytes())?;
        fsconfig_string(&fs, "workdir", w.as_os_str().as_bytes())?;
    }
    let null = std::ptr::null::<libc::c_char>();
    // SAFETY: valid fd, no strings.
    check(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            null,
            null,
            0,
        )
    })?;
    let attrs = if upper.is_none() {
        MOUNT_ATTR_RDONLY
    } else {
        0
    };
    // SAFETY: valid fd.
    let mnt =
        check(unsafe { libc::syscall(libc::SYS_fsmount, fs.as_raw_fd(), FSMOUNT_CLOEXEC, attrs) })?;
    // SAFETY: the kernel just gave us this descriptor.
    let mnt = unsafe { OwnedFd::from_raw_fd(mnt as i32) };
    let empty = cstr(b"")?;
    let tgt = cstr(target.as_os_str().as_bytes())?;
    // SAFETY: valid fds and strings.
    check(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mnt.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            tgt.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_are_top_first() {
        let s = Mount::overlay_options(
            &[PathBuf::from("/s/2/fs"), PathBuf::from("/s/1/fs")],
            Some(&(PathBuf::from("/c/u"), PathBuf::from("/c/w"))),
        );
        assert_eq!(s, "lowerdir=/s/2/fs:/s/1/fs,upperdir=/c/u,workdir=/c/w");
    }
}
