//! Files in and out of a container as tar streams (Docker's `/containers/{id}/archive`,
//! what `docker cp` uses): the stat of a path, a tarball of a path, and a tarball
//! extracted into a directory. Every path in the container is resolved with
//! `openat2(RESOLVE_IN_ROOT)` ([`super::copy`]), one level at a time while extracting,
//! so no symlink in the container leads outside its root. A running container is
//! frozen while its files are read or written (`Engine::with_rootfs`), so what was
//! resolved stays put; files are also opened, created and chmod-ed without following
//! a symlink in their last component.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

use super::copy::{copy_file_nofollow, resolve_in_root, DirInRoot};
use crate::engine::Engine;
use crate::error::{EngineError, Result};

/// Go's `os.ModeDir`, as Docker's path stat carries it.
pub const GO_MODE_DIR: u32 = 1 << 31;
/// Go's `os.ModeSymlink`.
pub const GO_MODE_SYMLINK: u32 = 1 << 27;

/// Docker's `PathStat` of a path in a container.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PathStat {
    /// Base name.
    pub name: String,
    /// Size in bytes.
    pub size: i64,
    /// Permission bits plus Go's type bits ([`GO_MODE_DIR`], [`GO_MODE_SYMLINK`]).
    pub mode: u32,
    /// Modification time, RFC 3339.
    pub mtime: String,
    /// Where a symlink points (in the container's terms).
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

fn base_name(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    match Path::new(trimmed).file_name() {
        Some(n) => n.to_string_lossy().into_owned(),
        None => "/".into(),
    }
}

fn stat_of(host: &Path, container_path: &str) -> std::io::Result<PathStat> {
    let m = fs::symlink_metadata(host)?;
    let mut mode = m.permissions().mode() & 0o7777;
    let mut link_target = String::new();
    if m.is_dir() {
        mode |= GO_MODE_DIR;
    } else if m.file_type().is_symlink() {
        mode |= GO_MODE_SYMLINK;
        link_target = fs::read_link(host)?.to_string_lossy().into_owned();
    }
    let mtime = chrono::DateTime::from_timestamp(m.mtime(), m.mtime_nsec() as u32)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
        .unwrap_or_default();
    Ok(PathStat {
        name: base_name(container_path),
        size: i64::try_from(m.len()).unwrap_or(i64::MAX),
        mode,
        mtime,
        link_target,
    })
}

fn not_found(path: &str, container: &str, e: std::io::Error) -> EngineError {
    EngineError::NotFound(format!(
        "Could not find the file {path} in container {container}: {e}"
    ))
}

impl Engine {
    /// The stat of `path` in the container (its last component is not followed).
    pub fn container_path_stat(&self, name: &str, path: &str) -> Result<PathStat> {
        let rec = self.container(name)?;
        self.with_rootfs(&rec, |root| {
            let host = resolve_in_root(root, path, false).map_err(|e| not_found(path, name, e))?;
            stat_of(&host, path).map_err(|e| not_found(path, name, e))
        })
    }

    /// Writes a tarball of `path` (a file, symlink or directory tree, under its base
    /// name) to `out`, after calling `stat` with its stat (so a caller can answer before
    /// the first byte). Symlinks inside are archived as links, never followed.
    pub fn archive_from_container(
        &self,
        name: &str,
        path: &str,
        stat: &mut dyn FnMut(&PathStat) -> bool,
        out: &mut dyn Write,
    ) -> Result<()> {
        let rec = self.container(name)?;
        self.with_rootfs(&rec, |root| {
            let host = resolve_in_root(root, path, false).map_err(|e| not_found(path, name, e))?;
            let st = stat_of(&host, path).map_err(|e| not_found(path, name, e))?;
            if !stat(&st) {
                return Ok(());
            }
            let entry = if st.name == "/" {
                ".".to_string()
            } else {
                st.name.clone()
            };
            let mut tar = tar::Builder::new(out);
            tar.follow_symlinks(false);
            let r = if st.mode & GO_MODE_DIR != 0 {
                tar.append_dir_all(&entry, &host)
            } else if fs::symlink_metadata(&host).is_ok_and(|m| m.is_file()) {
                // Opened without following a link; the header comes from the descriptor.
                open_nofollow(&host).and_then(|mut f| tar.append_file(&entry, &mut f))
            } else {
                tar.append_path_with_name(&host, &entry)
            };
            r.and_then(|_| tar.finish())
                .map_err(|e| EngineError::io("archiving", &host, e))
        })
    }

    /// Extracts a tarball into directory `dir` of the container (which must exist).
    /// Existing directories are merged, existing files and links replaced; with
    /// `no_overwrite_dir_non_dir`, a directory never replaces a non-directory or back.
    /// Files belong to root unless `keep_owner` (`docker cp -a`) keeps the archive's
    /// owners.
    pub fn extract_to_container(
        &self,
        name: &str,
        dir: &str,
        input: &mut dyn Read,
        no_overwrite_dir_non_dir: bool,
        keep_owner: bool,
    ) -> Result<()> {
        let rec = self.container(name)?;
        let staging = self
            .container_dir(&rec.id)
            .join(format!("cp-in-{}", &super::new_id()[..12]));
        fs::create_dir_all(&staging).map_err(|e| EngineError::io("creating", &staging, e))?;
        let result = (|| {
            let mut ar = tar::Archive::new(input);
            ar.set_preserve_permissions(true);
            ar.set_preserve_ownerships(keep_owner);
            ar.set_unpack_xattrs(false);
            ar.unpack(&staging).map_err(|e| {
                // tar wraps the cause in its own error inside the io::Error.
                let mut msg = format!("extracting the archive: {e}");
                let mut cause = e.get_ref().and_then(|inner| inner.source());
                while let Some(c) = cause {
                    msg.push_str(&format!(": {c}"));
                    cause = c.source();
                }
                EngineError::InvalidInput(msg)
            })?;
            self.with_rootfs(&rec, |root| {
                let target = DirInRoot::open(root, dir).map_err(|e| {
                    if e.raw_os_error() == Some(libc::ENOTDIR) {
                        EngineError::InvalidInput(format!(
                            "extraction point is not a directory: {dir}"
                        ))
                    } else {
                        not_found(dir, name, e)
                    }
                })?;
                merge(&target, &staging, dir, no_overwrite_dir_non_dir)
            })
        })();
        let _ = fs::remove_dir_all(&staging);
        result
    }
}

/// Copies the children of host directory `src` into `parent`, the container's
/// directory `dst_c`, by descriptor: each directory is opened without following a
/// symlink and entered through its descriptor, each file created afresh (`O_EXCL`)
/// and given its owner and mode through its own descriptor.
fn merge(parent: &DirInRoot, src: &Path, dst_c: &str, no_overwrite: bool) -> Result<()> {
    for entry in fs::read_dir(src).map_err(|e| EngineError::io("reading", src, e))? {
        let entry = entry.map_err(|e| EngineError::io("reading", src, e))?;
        let from = entry.path();
        let leaf = entry.file_name();
        let to = parent.at(&leaf);
        let child_c = format!("{}/{}", dst_c.trim_end_matches('/'), leaf.to_string_lossy());
        // Messages name the path in the container, not the descriptor's.
        let shown = Path::new(&child_c);
        let meta = fs::symlink_metadata(&from).map_err(|e| EngineError::io("stat", &from, e))?;
        let existing = fs::symlink_metadata(&to).ok();
        if no_overwrite {
            if let Some(x) = &existing {
                if x.is_dir() != meta.is_dir() {
                    return Err(EngineError::Conflict(format!(
                        "cannot overwrite {} {child_c} with a {}",
                        if x.is_dir() {
                            "directory"
                        } else {
                            "non-directory"
                        },
                        if meta.is_dir() {
                            "directory"
                        } else {
                            "non-directory"
                        },
                    )));
                }
            }
        }
        if meta.is_dir() {
            match &existing {
                Some(x) if x.is_dir() => {}
                Some(_) => {
                    fs::remove_file(&to).map_err(|e| EngineError::io("replacing", shown, e))?;
                    fs::create_dir(&to).map_err(|e| EngineError::io("creating", shown, e))?;
                }
                None => fs::create_dir(&to).map_err(|e| EngineError::io("creating", shown, e))?,
            }
            let child = parent
                .child(&leaf)
                .map_err(|e| EngineError::io("opening", shown, e))?;
            merge(&child, &from, &child_c, no_overwrite)?;
            copy_owner_and_mode(&meta, &child.into_file(), shown)?;
            continue;
        }
        if let Some(x) = &existing {
            let r = if x.is_dir() {
                fs::remove_dir_all(&to)
            } else {
                fs::remove_file(&to)
            };
            r.map_err(|e| EngineError::io("replacing", shown, e))?;
        }
        if meta.file_type().is_symlink() {
            let link = fs::read_link(&from).map_err(|e| EngineError::io("reading", &from, e))?;
            std::os::unix::fs::symlink(&link, &to)
                .map_err(|e| EngineError::io("creating", shown, e))?;
            let _ = std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid()));
        } else {
            // `to` does not exist now: the copy creates a fresh file there (O_EXCL, so
            // never through a symlink).
            let file = copy_file_nofollow(&from, &to, false)
                .map_err(|e| EngineError::io("copying to", shown, e))?;
            copy_owner_and_mode(&meta, &file, shown)?;
        }
    }
    Ok(())
}

/// Opens `path` for reading without following a symlink in its last component.
fn open_nofollow(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
}

/// Gives `file` (open at `to`) the owner and permission bits in `meta`, through the
/// descriptor; the owner first, since chown clears set-id bits.
fn copy_owner_and_mode(meta: &fs::Metadata, file: &fs::File, to: &Path) -> Result<()> {
    let _ = std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid()));
    file.set_permissions(fs::Permissions::from_mode(
        meta.permissions().mode() & 0o7777,
    ))
    .map_err(|e| EngineError::io("setting the mode of", to, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory swapped for a symlink to a host path after it was resolved (what a
    /// process in a running container could do mid-copy, CVE-2018-15664) is still the
    /// one written to: the merge goes by descriptor, never by the name again.
    #[test]
    fn merge_writes_into_the_directory_it_opened_even_if_it_moves() {
        let t = tempfile::tempdir().unwrap();
        let (root, host, staging) = (
            t.path().join("root"),
            t.path().join("host"),
            t.path().join("in"),
        );
        fs::create_dir_all(root.join("d")).unwrap();
        fs::create_dir_all(host.join("sub")).unwrap();
        fs::create_dir_all(staging.join("sub")).unwrap();
        fs::write(staging.join("f"), "payload").unwrap();
        fs::write(staging.join("sub/g"), "payload").unwrap();
        fs::set_permissions(staging.join("f"), fs::Permissions::from_mode(0o4755)).unwrap();
        let dir = DirInRoot::open(&root, "/d").unwrap();
        fs::rename(root.join("d"), root.join("moved")).unwrap();
        std::os::unix::fs::symlink(&host, root.join("d")).unwrap();
        merge(&dir, &staging, "/d", false).unwrap();
        assert_eq!(
            fs::read_dir(&host).unwrap().count(),
            1,
            "only sub, as it was"
        );
        assert_eq!(fs::read_dir(host.join("sub")).unwrap().count(), 0);
        assert_eq!(fs::read_to_string(root.join("moved/f")).unwrap(), "payload");
        assert_eq!(
            fs::read_to_string(root.join("moved/sub/g")).unwrap(),
            "payload"
        );
        let mode = fs::metadata(root.join("moved/f"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o7777, 0o4755);
    }

    /// A leaf that is a symlink to a host file is replaced, not written through.
    #[test]
    fn merge_replaces_a_symlink_leaf_instead_of_following_it() {
        let t = tempfile::tempdir().unwrap();
        let (root, staging) = (t.path().join("root"), t.path().join("in"));
        let victim = t.path().join("victim");
        fs::write(&victim, "host").unwrap();
        fs::create_dir_all(root.join("d")).unwrap();
        fs::create_dir_all(staging.join("sub")).unwrap();
        fs::write(staging.join("f"), "payload").unwrap();
        std::os::unix::fs::symlink(&victim, root.join("d/f")).unwrap();
        std::os::unix::fs::symlink(t.path(), root.join("d/sub")).unwrap();
        let dir = DirInRoot::open(&root, "/d").unwrap();
        merge(&dir, &staging, "/d", false).unwrap();
        assert_eq!(fs::read_to_string(&victim).unwrap(), "host");
        assert_eq!(fs::read_to_string(root.join("d/f")).unwrap(), "payload");
        assert!(fs::symlink_metadata(root.join("d/sub")).unwrap().is_dir());
    }

    #[test]
    fn base_names() {
        assert_eq!(base_name("/etc/passwd"), "passwd");
        assert_eq!(base_name("/tmp/"), "tmp");
        assert_eq!(base_name("/"), "/");
    }
}
