//! Entry path safety: normalising layer paths and walking their parents under
//! the destination without ever following a symlink.

use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path, PathBuf};

use super::error::UnpackError;
use super::meta;

/// Mode of parent directories the layer does not list itself.
const IMPLICIT_DIR_MODE: u32 = 0o755;

/// The path of a layer entry as plain components relative to the destination
/// (`./` and `.` components dropped; empty for the root itself). Absolute
/// paths and `..` components are escapes.
pub(crate) fn normalise(raw: &Path) -> Result<PathBuf, UnpackError> {
    let mut rel = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::CurDir => {}
            Component::Normal(name) => rel.push(name),
            Component::ParentDir => {
                return Err(UnpackError::escape(raw, "path has a `..` component"))
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(UnpackError::escape(raw, "path is absolute"))
            }
        }
    }
    Ok(rel)
}

/// What is at a parent position of an entry.
enum Parent {
    /// A real directory.
    Dir,
    /// Nothing.
    Missing,
    /// Something that is neither a directory nor a symlink.
    NotDir,
}

/// The directories above `rel` (not `rel` itself), outermost first.
fn ancestors(rel: &Path) -> Vec<&Path> {
    let mut dirs: Vec<&Path> = rel
        .ancestors()
        .skip(1)
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    dirs.reverse();
    dirs
}

/// Looks at parent `prefix` of entry `raw` with lstat; a symlink is an escape.
fn inspect_parent(dest: &Path, prefix: &Path, raw: &Path) -> Result<Parent, UnpackError> {
    match fs::symlink_metadata(dest.join(prefix)) {
        Ok(m) if m.file_type().is_symlink() => Err(UnpackError::escape(
            raw,
            format!("write through symlink {prefix:?}"),
        )),
        Ok(m) if m.is_dir() => Ok(Parent::Dir),
        Ok(_) => Ok(Parent::NotDir),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Parent::Missing),
        Err(e) => Err(UnpackError::io("inspecting a parent directory of", raw, e)),
    }
}

/// Creates one implicit parent directory, mode 0755, owned by the caller.
fn create_implicit_dir(path: &Path) -> io::Result<()> {
    fs::DirBuilder::new().mode(IMPLICIT_DIR_MODE).create(path)?;
    meta::set_mode(path, IMPLICIT_DIR_MODE)
}

/// Makes sure every directory above `rel` exists under `dest` as a real
/// directory, creating missing ones. Returns the ones it created (relative).
pub(crate) fn ensure_parents(
    dest: &Path,
    rel: &Path,
    raw: &Path,
) -> Result<Vec<PathBuf>, UnpackError> {
    let mut created = Vec::new();
    for prefix in ancestors(rel) {
        match inspect_parent(dest, prefix, raw)? {
            Parent::Dir => {}
            Parent::Missing => {
                create_implicit_dir(&dest.join(prefix))
                    .map_err(|e| UnpackError::io("creating a parent directory of", raw, e))?;
                created.push(prefix.to_path_buf());
            }
            Parent::NotDir => {
                let err = io::Error::from_raw_os_error(libc::ENOTDIR);
                let op = format!("parent {prefix:?} is not a directory; unpacking");
                return Err(UnpackError::io(&op, raw, err));
            }
        }
    }
    Ok(created)
}

/// Whether every directory above `rel` exists under `dest` as a real
/// directory; never creates anything.
pub(crate) fn parents_exist(dest: &Path, rel: &Path, raw: &Path) -> Result<bool, UnpackError> {
    for prefix in ancestors(rel) {
        match inspect_parent(dest, prefix, raw)? {
            Parent::Dir => {}
            Parent::Missing | Parent::NotDir => return Ok(false),
        }
    }
    Ok(true)
}

/// Checks the target of hard link entry `raw`: it must normalise like any
/// entry path, be reached without symlinked parents, exist inside `dest`, and
/// not be a directory. Returns it relative to `dest`.
pub(crate) fn hard_link_target(
    dest: &Path,
    target: &Path,
    raw: &Path,
) -> Result<PathBuf, UnpackError> {
    let rel = normalise(target).map_err(|_| {
        UnpackError::escape(
            raw,
            format!("hard link target {target:?} leaves the destination"),
        )
    })?;
    let missing =
        || UnpackError::escape(raw, format!("hard link target {target:?} does not exist"));
    if rel.as_os_str().is_empty() || !parents_exist(dest, &rel, raw)? {
        return Err(missing());
    }
    match fs::symlink_metadata(dest.join(&rel)) {
        Ok(m) if m.is_dir() => Err(UnpackError::escape(
            raw,
            format!("hard link target {target:?} is a directory"),
        )),
        Ok(_) => Ok(rel),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(missing()),
        Err(e) => Err(UnpackError::io(
            "inspecting the hard link target of",
            raw,
            e,
        )),
    }
}
