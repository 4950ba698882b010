//! Files in and out of a container as tar streams (Docker's `/containers/{id}/archive`,
//! what `docker cp` uses): the stat of a path, a tarball of a path, and a tarball
//! extracted into a directory. Every path in the container is resolved with
//! `openat2(RESOLVE_IN_ROOT)` ([`super::copy`]), one level at a time while extracting,
//! so no symlink in the container leads outside its root.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::copy::resolve_in_root;
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
                let target =
                    resolve_in_root(root, dir, true).map_err(|e| not_found(dir, name, e))?;
                if !target.is_dir() {
                    return Err(EngineError::InvalidInput(format!(
                        "extraction point is not a directory: {dir}"
                    )));
                }
                merge(root, &staging, dir, no_overwrite_dir_non_dir)
            })
        })();
        let _ = fs::remove_dir_all(&staging);
        result
    }
}

/// Copies the children of host directory `src` into container directory `dst_c`
/// (a path in the container), resolving each parent inside the root.
fn merge(root: &Path, src: &Path, dst_c: &str, no_overwrite: bool) -> Result<()> {
    let parent = resolve_in_root(root, dst_c, true)
        .map_err(|e| EngineError::io("resolving", Path::new(dst_c), e))?;
    for entry in fs::read_dir(src).map_err(|e| EngineError::io("reading", src, e))? {
        let entry = entry.map_err(|e| EngineError::io("reading", src, e))?;
        let from = entry.path();
        let leaf = entry.file_name();
        let to = parent.join(&leaf);
        let child_c = format!("{}/{}", dst_c.trim_end_matches('/'), leaf.to_string_lossy());
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
                    fs::remove_file(&to).map_err(|e| EngineError::io("replacing", &to, e))?;
                    fs::create_dir(&to).map_err(|e| EngineError::io("creating", &to, e))?;
                }
                None => fs::create_dir(&to).map_err(|e| EngineError::io("creating", &to, e))?,
            }
            merge(root, &from, &child_c, no_overwrite)?;
            copy_owner_and_mode(&meta, &to)?;
            continue;
        }
        if let Some(x) = &existing {
            let r = if x.is_dir() {
                fs::remove_dir_all(&to)
            } else {
                fs::remove_file(&to)
            };
            r.map_err(|e| EngineError::io("replacing", &to, e))?;
        }
        if meta.file_type().is_symlink() {
            let link = fs::read_link(&from).map_err(|e| EngineError::io("reading", &from, e))?;
            std::os::unix::fs::symlink(&link, &to)
                .map_err(|e| EngineError::io("creating", &to, e))?;
            let _ = std::os::unix::fs::lchown(&to, Some(meta.uid()), Some(meta.gid()));
        } else {
            // `to` does not exist now, so the copy creates a fresh file there.
            fs::copy(&from, &to).map_err(|e| EngineError::io("copying to", &to, e))?;
            copy_owner_and_mode(&meta, &to)?;
        }
    }
    Ok(())
}

fn copy_owner_and_mode(meta: &fs::Metadata, to: &Path) -> Result<()> {
    let _ = std::os::unix::fs::lchown(to, Some(meta.uid()), Some(meta.gid()));
    fs::set_permissions(
        to,
        fs::Permissions::from_mode(meta.permissions().mode() & 0o7777),
    )
    .map_err(|e| EngineError::io("setting the mode of", to, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_names() {
        assert_eq!(base_name("/etc/passwd"), "passwd");
        assert_eq!(base_name("/tmp/"), "tmp");
        assert_eq!(base_name("/"), "/");
    }
}
