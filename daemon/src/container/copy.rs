//! `cp`: copying files between the host and a container's root filesystem. Paths in
//! the container are resolved with `openat2(RESOLVE_IN_ROOT)`, so `..` and symlinks
//! (absolute or relative) stay inside the container's root, as they would for a
//! process in it.
//!
//! A resolved path is then used as a host path, so a process in a running container
//! could swap a directory on it for a symlink to a host path between the check and
//! the use (CVE-2018-15664 in Docker). `Engine::with_rootfs` therefore freezes a
//! running container for the whole copy (as `podman cp` does), under the container's
//! operation lock. Writes into the container also go through a directory descriptor
//! (`DirInRoot`) rather than the name it was found under, and files are created and
//! opened without following a symlink in their last component.

use std::ffi::{CString, OsStr};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::record::ContainerRecord;
use crate::engine::Engine;
use crate::error::{EngineError, Result};

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_IN_ROOT: u64 = 0x10;

#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// Opens `rel` inside `root` as an O_PATH descriptor, resolving as if `root` were `/`.
fn open_in_root(root: &Path, rel: &str, follow_last: bool) -> std::io::Result<OwnedFd> {
    let root_fd = fs::File::open(root)?;
    let rel = rel.trim_start_matches('/');
    let rel = if rel.is_empty() { "." } else { rel };
    let c = CString::new(rel.as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let mut flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    if !follow_last {
        flags |= libc::O_NOFOLLOW as u64;
    }
    let how = OpenHow {
        flags,
        mode: 0,
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    // SAFETY: openat2 with a valid dirfd, NUL-terminated path and a correctly sized struct.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root_fd.as_raw_fd(),
            c.as_ptr(),
            &how as *const OpenHow,
            std::mem::size_of::<OpenHow>(),
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

/// The host path `rel` resolves to inside `root` (resolved by the kernel as if `root`
/// were `/`, then read back from the descriptor), checked to lie inside `root`.
pub(crate) fn resolve_in_root(
    root: &Path,
    rel: &str,
    follow_last: bool,
) -> std::io::Result<PathBuf> {
    let fd = open_in_root(root, rel, follow_last)?;
    let path = fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd()))?;
    let root = fs::canonicalize(root)?;
    if path.starts_with(&root) {
        Ok(path)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            "path escapes the container root",
        ))
    }
}

/// A directory of the container, held open by descriptor. Paths made by [`Self::at`]
/// walk from the directory itself (through `/proc/self/fd`), whatever its name or its
/// parents' names have become since it was opened, so only the one last component is
/// looked up again, and the calls made on it do not follow a symlink there.
pub(crate) struct DirInRoot {
    fd: OwnedFd,
}

impl DirInRoot {
    /// Opens directory `rel` of the container rooted at `root` (`ENOTDIR` if it is not
    /// one).
    pub(crate) fn open(root: &Path, rel: &str) -> io::Result<DirInRoot> {
        let fd = open_in_root(root, rel, true)?;
        if !fs::File::from(fd.try_clone()?).metadata()?.is_dir() {
            return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
        }
        Ok(DirInRoot { fd })
    }

    /// Opens subdirectory `leaf` (refusing a symlink), readable so that its owner and
    /// mode can be set through [`Self::into_file`].
    pub(crate) fn child(&self, leaf: &OsStr) -> io::Result<DirInRoot> {
        let f = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(self.at(leaf))?;
        Ok(DirInRoot { fd: f.into() })
    }

    /// Entry `leaf` (a single component) of this directory, as a path.
    pub(crate) fn at(&self, leaf: impl AsRef<OsStr>) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd())).join(leaf.as_ref())
    }

    /// The directory as a file (for `fchown` / `fchmod`).
    pub(crate) fn into_file(self) -> fs::File {
        self.fd.into()
    }
}

/// Copies regular file `src` to `dst` with `src`'s permission bits, never following a
/// symlink in the last component of `src`: one that became a link since it was checked
/// is refused (`ELOOP`). `dst` must not exist (nor be a symlink) unless `replace` (a
/// host path the user named, replaced as `cp` would). Returns `dst`, open for writing,
/// so the caller can set its owner through the descriptor.
pub(crate) fn copy_file_nofollow(src: &Path, dst: &Path, replace: bool) -> io::Result<fs::File> {
    let mut from = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(src)?;
    let meta = from.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", src.display()),
        ));
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true).mode(0o600).custom_flags(libc::O_CLOEXEC);
    if replace {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    let mut to = opts.open(dst)?;
    io::copy(&mut from, &mut to)?;
    to.set_permissions(fs::Permissions::from_mode(
        meta.permissions().mode() & 0o7777,
    ))?;
    Ok(to)
}

/// Copies a file, symlink or directory tree from `src` to `dst` (which must not exist
/// unless `replace`, for a file).
fn copy_any(src: &Path, dst: &Path, replace: bool) -> io::Result<()> {
    let meta = fs::symlink_metadata(src)?;
    if meta.is_dir() {
        skiff_image_store::unpack::copy_tree(src, dst)
    } else if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(src)?, dst)
    } else if meta.is_file() {
        copy_file_nofollow(src, dst, replace).map(|_| ())
    } else {
        fs::copy(src, dst).map(|_| ())
    }
}

fn base_name(p: &str) -> Result<String> {
    Path::new(p.trim_end_matches('/'))
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| EngineError::InvalidInput(format!("cannot copy {p:?}: no file name")))
}

impl Engine {
    /// Runs `f` with the container's root filesystem reachable at a host path: the
    /// running container's own mount, or a temporary mount of its layers when stopped.
    ///
    /// All of it runs under the container's operation lock, so no start, stop, pause,
    /// unpause or other copy interleaves (a stopped container's layers are never
    /// mounted twice, nor while it starts). A running container is frozen until `f`
    /// returns, or unwinds: nothing in it can move a path `f` has resolved.
    pub(crate) fn with_rootfs<T>(
        &self,
        rec: &ContainerRecord,
        f: impl FnOnce(&Path) -> Result<T>,
    ) -> Result<T> {
        let _ops = self.containers.lock_ops(&rec.id)?;
        let rec = self.sync_state(self.containers.find(&rec.id)?)?;
        if rec.state.status.has_task() {
            // Dropped (thawed) before the lock is.
            let _frozen = self.freeze_for_copy(&rec)?;
            return f(&rec.bundle.join("rootfs"));
        }
        let img = self.images().resolve(&rec.image_id)?;
        let rw = self.container_dir(&rec.id).join("rw");
        let mount = self.images().rootfs_writable(&img, &rw)?;
        let tmp = self
            .container_dir(&rec.id)
            .join(format!("cp-mount-{}", &super::new_id()[..12]));
        fs::create_dir_all(&tmp).map_err(|e| EngineError::io("creating", &tmp, e))?;
        if let Err(e) = mount.mount(&tmp) {
            let _ = fs::remove_dir(&tmp);
            return Err(e.into());
        }
        let out = f(&tmp);
        let _ = skiff_image_store::mount::unmount(&tmp);
        let _ = fs::remove_dir(&tmp);
        out
    }

    /// `cp CONTAINER:SRC DST`: copies out of the container. A DST that is an existing
    /// directory receives SRC under its own name.
    pub fn copy_from_container(&self, name: &str, src: &str, dst: &Path) -> Result<()> {
        let rec = self.container(name)?;
        let target = if dst.is_dir() {
            dst.join(base_name(src)?)
        } else {
            dst.to_path_buf()
        };
        self.with_rootfs(&rec, |root| {
            let path = resolve_in_root(root, src, false).map_err(|e| {
                EngineError::NotFound(format!(
                    "Could not find the file {src} in container {name}: {e}"
                ))
            })?;
            copy_any(&path, &target, true).map_err(|e| EngineError::io("copying to", &target, e))
        })
    }

    /// `cp SRC CONTAINER:DST`: copies into the container. A DST that is an existing
    /// directory in the container receives SRC under its own name.
    pub fn copy_to_container(&self, name: &str, src: &Path, dst: &str) -> Result<()> {
        let rec = self.container(name)?;
        if fs::symlink_metadata(src).is_err() {
            return Err(EngineError::InvalidInput(format!(
                "no such file or directory: {}",
                src.display()
            )));
        }
        let src_name = base_name(&src.to_string_lossy())?;
        self.with_rootfs(&rec, |root| {
            let (dir, leaf) = match DirInRoot::open(root, dst) {
                Ok(d) => (d, src_name.clone()),
                Err(_) => {
                    let parent = Path::new(dst)
                        .parent()
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let d = DirInRoot::open(root, &parent).map_err(|e| {
                        EngineError::NotFound(format!(
                            "Could not find the directory {parent} in container {name}: {e}"
                        ))
                    })?;
                    (d, base_name(dst)?)
                }
            };
            let target = dir.at(&leaf);
            if fs::symlink_metadata(&target)
                .map(|m| m.is_dir())
                .unwrap_or(false)
            {
                return Err(EngineError::Conflict(format!(
                    "cannot overwrite directory {dst} in container {name}"
                )));
            }
            let _ = fs::remove_file(&target);
            copy_any(src, &target, false).map_err(|e| EngineError::io("copying", src, e))
        })
    }
}
