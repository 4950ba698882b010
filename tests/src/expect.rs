//! What a fixture's rootfs must look like once all its layers are applied, and
//! a checker for an unpacked (or overlay-mounted) rootfs.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::oci_layout::sha256_digest;

/// What must be found at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpectedKind {
    /// A regular file with exactly this content.
    File(Vec<u8>),
    /// A regular file whose content has this digest ("sha256:HEX"); used for
    /// large files such as busybox.
    FileDigest(String),
    /// A directory.
    Dir,
    /// A symlink with this target.
    Symlink(String),
    /// Nothing (deleted by a whiteout or an opaque directory).
    Absent,
}

/// One expectation about the rootfs: a path, what it is, and optionally its
/// permission bits (including setuid/setgid/sticky) and owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedPath {
    /// Absolute path inside the rootfs, e.g. "/data/keep.txt".
    pub path: String,
    /// What it must be.
    pub kind: ExpectedKind,
    /// `mode & 0o7777`, if checked.
    pub mode: Option<u32>,
    /// Owner (uid, gid), if checked.
    pub owner: Option<(u32, u32)>,
}

impl ExpectedPath {
    /// A regular file with `content`.
    pub fn file(path: &str, content: &[u8]) -> ExpectedPath {
        ExpectedPath::new(path, ExpectedKind::File(content.to_vec()))
    }

    /// A directory.
    pub fn dir(path: &str) -> ExpectedPath {
        ExpectedPath::new(path, ExpectedKind::Dir)
    }

    /// A symlink to `target`.
    pub fn symlink(path: &str, target: &str) -> ExpectedPath {
        ExpectedPath::new(path, ExpectedKind::Symlink(target.to_string()))
    }

    /// Nothing at `path`.
    pub fn absent(path: &str) -> ExpectedPath {
        ExpectedPath::new(path, ExpectedKind::Absent)
    }

    /// An expectation of `kind` at `path`, mode and owner unchecked.
    pub fn new(path: &str, kind: ExpectedKind) -> ExpectedPath {
        ExpectedPath {
            path: path.to_string(),
            kind,
            mode: None,
            owner: None,
        }
    }

    /// Also checks `mode & 0o7777`.
    pub fn mode(mut self, mode: u32) -> ExpectedPath {
        self.mode = Some(mode);
        self
    }

    /// Also checks the owner.
    pub fn owner(mut self, uid: u32, gid: u32) -> ExpectedPath {
        self.owner = Some((uid, gid));
        self
    }

    /// Checks this expectation against the rootfs at `root`; the error says
    /// what differs.
    pub fn check(&self, root: &Path) -> Result<(), String> {
        let rel = self.path.trim_start_matches('/');
        let full = root.join(rel);
        let what = &self.path;
        let meta = match fs::symlink_metadata(&full) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return if self.kind == ExpectedKind::Absent {
                    Ok(())
                } else {
                    Err(format!("{what}: missing, expected {:?}", self.kind_name()))
                };
            }
            Err(e) => return Err(format!("{what}: {e}")),
        };
        let ft = meta.file_type();
        match &self.kind {
            ExpectedKind::Absent => {
                return Err(format!("{what}: present ({ft:?}), expected absent"));
            }
            ExpectedKind::Dir if !ft.is_dir() => {
                return Err(format!("{what}: {ft:?}, expected a directory"));
            }
            ExpectedKind::Symlink(target) => {
                if !ft.is_symlink() {
                    return Err(format!("{what}: {ft:?}, expected a symlink"));
                }
                let actual = fs::read_link(&full).map_err(|e| format!("{what}: {e}"))?;
                if actual != Path::new(target) {
                    return Err(format!(
                        "{what}: symlink to {}, expected {target}",
                        actual.display()
                    ));
                }
            }
            ExpectedKind::File(_) | ExpectedKind::FileDigest(_) if !ft.is_file() => {
                return Err(format!("{what}: {ft:?}, expected a regular file"));
            }
            ExpectedKind::File(content) => {
                let actual = fs::read(&full).map_err(|e| format!("{what}: {e}"))?;
                if &actual != content {
                    return Err(format!(
                        "{what}: content {:?}, expected {:?}",
                        String::from_utf8_lossy(&actual[..actual.len().min(200)]),
                        String::from_utf8_lossy(content)
                    ));
                }
            }
            ExpectedKind::FileDigest(digest) => {
                let actual = fs::read(&full).map_err(|e| format!("{what}: {e}"))?;
                let actual = sha256_digest(&actual);
                if &actual != digest {
                    return Err(format!(
                        "{what}: content digest {actual}, expected {digest}"
                    ));
                }
            }
            ExpectedKind::Dir => {}
        }
        if let Some(mode) = self.mode {
            let actual = meta.mode() & 0o7777;
            if actual != mode {
                return Err(format!("{what}: mode {actual:04o}, expected {mode:04o}"));
            }
        }
        if let Some((uid, gid)) = self.owner {
            if (meta.uid(), meta.gid()) != (uid, gid) {
                return Err(format!(
                    "{what}: owner {}:{}, expected {uid}:{gid}",
                    meta.uid(),
                    meta.gid()
                ));
            }
        }
        Ok(())
    }

    fn kind_name(&self) -> &'static str {
        match self.kind {
            ExpectedKind::File(_) | ExpectedKind::FileDigest(_) => "file",
            ExpectedKind::Dir => "directory",
            ExpectedKind::Symlink(_) => "symlink",
            ExpectedKind::Absent => "nothing",
        }
    }
}

/// Checks every expectation and that no `.wh.*` name is visible anywhere under
/// `root` (symlinks are not followed). Returns all problems found.
pub fn verify_rootfs(root: &Path, expected: &[ExpectedPath]) -> Result<(), Vec<String>> {
    let mut problems: Vec<String> = expected
        .iter()
        .filter_map(|e| e.check(root).err())
        .collect();
    find_whiteout_names(root, root, &mut problems);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

fn find_whiteout_names(root: &Path, dir: &Path, problems: &mut Vec<String>) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            problems.push(format!("{}: {e}", dir.display()));
            return;
        }
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with(".wh.") {
            let rel = path.strip_prefix(root).unwrap_or(&path);
            problems.push(format!("/{}: a whiteout name is visible", rel.display()));
        }
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            find_whiteout_names(root, &path, problems);
        }
    }
}
