//! `cp`: copying files between the host and a container's root filesystem. Paths in
//! the container are resolved with `openat2(RESOLVE_IN_ROOT)`, so `..` and symlinks
//! (absolute or relative) stay inside the container's root, as they would for a
//! process in it.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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

/// Copies a file, symlink or directory tree from `src` to `dst` (which must not exist).
fn copy_any(src: &Path, dst: &Path) -> std::io::Result<()> {
    let meta = fs::symlink_metadata(src)?;
    if meta.is_dir() {
        skiff_image_store::unpack::copy_tree(src, dst)
    } else if meta.file_type().is_symlink() {
        std::os::unix::fs::symlink(fs::read_link(src)?, dst)
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
    pub(crate) fn with_rootfs<T>(
        &self,
        rec: &ContainerRecord,
        f: impl FnOnce(&Path) -> Result<T>,
    ) -> Result<T> {
        let live = rec.bundle.join("rootfs");
        if rec.state.status.has_task() {
            return f(&live);
        }
        let img = self.images().resolve(&rec.image_id)?;
        let rw = self.container_dir(&rec.id).join("rw");
        let mount = self.images().rootfs_writable(&img, &rw)?;
        let tmp = self.container_dir(&rec.id).join("cp-mount");
        fs::create_dir_all(&tmp).map_err(|e| EngineError::io("creating", &tmp, e))?;
        mount.mount(&tmp)?;
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
            copy_any(&path, &target).map_err(|e| EngineError::io("copying to", &target, e))
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
            let (dir, leaf) = match resolve_in_root(root, dst, true) {
                Ok(p) if p.is_dir() => (p, src_name.clone()),
                _ => {
                    let parent = Path::new(dst)
                        .parent()
                        .map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    let p = resolve_in_root(root, &parent, true).map_err(|e| {
                        EngineError::NotFound(format!(
                            "Could not find the directory {parent} in container {name}: {e}"
                        ))
                    })?;
                    (p, base_name(dst)?)
                }
            };
            let target = dir.join(&leaf);
            if fs::symlink_metadata(&target)
                .map(|m| m.is_dir())
                .unwrap_or(false)
            {
                return Err(EngineError::Conflict(format!(
                    "cannot overwrite directory {dst} in container {name}"
                )));
            }
            let _ = fs::remove_file(&target);
            copy_any(src, &target).map_err(|e| EngineError::io("copying", src, e))
        })
    }
}
