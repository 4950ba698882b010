//! `user[:group]` resolution through the image's `/etc/passwd` and `/etc/group`, with
//! Docker's (runc's `GetExecUser`) semantics:
//! - a user *name* must be in `/etc/passwd`; a user *number* need not be (its group is
//!   then 0 unless one is given, its home `/`);
//! - an explicit group name must be in `/etc/group`; a group number need not be;
//! - without an explicit group, the supplementary groups are the groups of
//!   `/etc/group` that list the user's name;
//! - ids above 2^31-1 are refused.
//!
//! The files are read from the image's root view without ever leaving it: symlinks
//! along the path are resolved by hand, relative to that root, as if it were `/`.

use std::fs;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use super::error::SpecError;

/// The largest uid or gid Docker accepts.
const MAX_ID: u32 = i32::MAX as u32;
/// Symlinks followed at most while resolving a path inside the image (Linux's limit).
const MAX_SYMLINKS: u32 = 40;
/// `/etc/passwd` or `/etc/group` larger than this is refused.
const MAX_FILE_SIZE: u64 = 16 << 20;

/// A resolved user: ids, supplementary groups and home directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    /// The passwd entry's home directory, `/` when there is none.
    pub home: String,
}

/// Resolves `user[:group]` (names or numbers) through the image's `/etc/passwd` and
/// `/etc/group` into uid, gid and additional gids, with Docker's semantics: a name not
/// found is an error ([`SpecError::UserNotFound`], [`SpecError::GroupNotFound`]); a
/// number not found is fine, with gid 0 unless a group is given; the supplementary
/// groups are the groups listing the user's name (none when a group is given). An empty
/// `user` is root.
pub fn resolve_user(
    image_rootfs_view: &Path,
    user: &str,
) -> Result<(u32, u32, Vec<u32>), SpecError> {
    let resolved = resolve_user_full(image_rootfs_view, user)?;
    Ok((resolved.uid, resolved.gid, resolved.additional_gids))
}

/// [`resolve_user`], also giving the home directory (for `HOME`).
pub(crate) fn resolve_user_full(root: &Path, spec: &str) -> Result<ResolvedUser, SpecError> {
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((user, group)) => (user, Some(group).filter(|g| !g.is_empty())),
        None => (spec, None),
    };
    let uid_arg = parse_id(user_arg, "uid", spec)?;
    let gid_arg = group_arg
        .map(|g| parse_id(g, "gid", spec))
        .transpose()?
        .flatten();

    let passwd = read_image_file(root, "/etc/passwd")?.unwrap_or_default();
    let entry = parse_passwd(&passwd).into_iter().find(|e| {
        if user_arg.is_empty() {
            e.uid == 0
        } else if let Some(uid) = uid_arg {
            e.uid == uid
        } else {
            e.name == user_arg
        }
    });
    let (uid, mut gid, name, home) = match (entry, uid_arg) {
        (Some(e), _) => (e.uid, e.gid, Some(e.name), e.home),
        (None, Some(uid)) => (uid, 0, None, String::new()),
        (None, None) if user_arg.is_empty() => (0, 0, None, String::new()),
        (None, None) => {
            return Err(SpecError::UserNotFound {
                user: user_arg.to_string(),
            })
        }
    };

    let mut additional_gids = Vec::new();
    // Read /etc/group only when it can matter: an explicit group, or a named user.
    if group_arg.is_some() || name.is_some() {
        let group_file = read_image_file(root, "/etc/group")?.unwrap_or_default();
        let groups = parse_group(&group_file);
        match (group_arg, gid_arg) {
            (Some(_), Some(number)) => gid = number,
            (Some(group_name), None) => {
                gid = groups
                    .iter()
                    .find(|g| g.name == group_name)
                    .map(|g| g.gid)
                    .ok_or_else(|| SpecError::GroupNotFound {
                        group: group_name.to_string(),
                    })?;
            }
            (None, _) => {
                if let Some(name) = &name {
                    for g in &groups {
                        if g.gid != gid
                            && g.members.iter().any(|m| m == name)
                            && !additional_gids.contains(&g.gid)
                        {
                            additional_gids.push(g.gid);
                        }
                    }
                }
            }
        }
    }

    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home: if home.is_empty() {
            "/".to_string()
        } else {
            home
        },
    })
}

/// A number (`Some`) or a name (`None`); a number above 2^31-1 is an error.
fn parse_id(arg: &str, what: &str, spec: &str) -> Result<Option<u32>, SpecError> {
    if arg.is_empty() || !arg.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    match arg.parse::<u32>() {
        Ok(id) if id <= MAX_ID => Ok(Some(id)),
        _ => Err(SpecError::invalid(
            "--user",
            spec,
            format!("{what} {arg} is out of range (0-{MAX_ID})"),
        )),
    }
}

#[derive(Debug)]
struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

#[derive(Debug)]
struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// `name:password:uid:gid:gecos:home:shell`; lines with a bad uid or gid are skipped.
fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            Some(PasswdEntry {
                name: fields.first()?.to_string(),
                uid: fields.get(2)?.parse().ok()?,
                gid: fields.get(3)?.parse().ok()?,
                home: fields.get(5).unwrap_or(&"").to_string(),
            })
        })
        .collect()
}

/// `name:password:gid:member,member`; lines with a bad gid are skipped.
fn parse_group(text: &str) -> Vec<GroupEntry> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            Some(GroupEntry {
                name: fields.first()?.to_string(),
                gid: fields.get(2)?.parse().ok()?,
                members: fields
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .map(str::trim)
                            .filter(|m| !m.is_empty())
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Reads a file of the image by its absolute path inside the image; `Ok(None)` when it
/// does not exist. Never leaves `root`.
pub(crate) fn read_image_file(root: &Path, path: &str) -> Result<Option<String>, SpecError> {
    let err = |why: String| SpecError::ReadImageFile {
        path: PathBuf::from(path),
        why,
    };
    let Some(host_path) = resolve_in_root(root, Path::new(path)).map_err(err)? else {
        return Ok(None);
    };
    let file = match fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&host_path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e.to_string())),
    };
    let meta = file.metadata().map_err(|e| err(e.to_string()))?;
    if !meta.is_file() {
        return Err(err("not a regular file".to_string()));
    }
    if meta.len() > MAX_FILE_SIZE {
        return Err(err(format!("larger than {MAX_FILE_SIZE} bytes")));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE)
        .read_to_end(&mut bytes)
        .map_err(|e| err(e.to_string()))?;
    Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
}

/// Resolves `path` as if `root` were `/`: `..` stops at the root, and symlinks
/// (absolute or relative) are followed inside the root. `Ok(None)` when a component
/// does not exist. The result's last component is not a symlink.
fn resolve_in_root(root: &Path, path: &Path) -> Result<Option<PathBuf>, String> {
    let mut pending: Vec<std::ffi::OsString> = Vec::new();
    push_components(&mut pending, path);
    let mut resolved = PathBuf::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&part);
        let host = root.join(&candidate);
        match fs::symlink_metadata(&host) {
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("{}: {e}", candidate.display())),
            Ok(meta) if meta.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return Err("too many levels of symbolic links".to_string());
                }
                let target =
                    fs::read_link(&host).map_err(|e| format!("{}: {e}", candidate.display()))?;
                if target.is_absolute() {
                    resolved = PathBuf::new();
                }
                push_components(&mut pending, &target);
            }
            Ok(_) => resolved = candidate,
        }
    }
    Ok(Some(root.join(resolved)))
}

/// Pushes the normal and `..` components of `path` so that popping yields them in order.
fn push_components(pending: &mut Vec<std::ffi::OsString>, path: &Path) {
    let parts: Vec<std::ffi::OsString> = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(p) => Some(p.to_os_string()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    pending.extend(parts.into_iter().rev());
}

#[cfg(test)]
pub(crate) mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    /// A temporary image root with `etc/passwd` and `etc/group`.
    pub(crate) fn image_root() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir_all(dir.path().join("etc")).unwrap();
        fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n\
             daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
             # a comment\n\
             \n\
             broken:x:notanumber:0::/:/bin/sh\n\
             alice:x:1000:1000:Alice:/home/alice:/bin/sh\n\
             bob:x:1001:1001::/home/bob:/bin/sh\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\n\
             daemon:x:1:\n\
             wheel:x:10:alice,bob\n\
             audio:x:29:alice\n\
             alice:x:1000:alice\n\
             bob:x:1001:\n\
             staff:x:50:\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn by_name() {
        let root = image_root();
        assert_eq!(
            resolve_user(root.path(), "alice").unwrap(),
            (1000, 1000, vec![10, 29])
        );
        assert_eq!(
            resolve_user(root.path(), "bob").unwrap(),
            (1001, 1001, vec![10])
        );
        let full = resolve_user_full(root.path(), "alice").unwrap();
        assert_eq!(full.home, "/home/alice");
    }

    #[test]
    fn root_by_default() {
        let root = image_root();
        assert_eq!(resolve_user(root.path(), "").unwrap(), (0, 0, vec![]));
        assert_eq!(resolve_user(root.path(), "root").unwrap(), (0, 0, vec![]));
        assert_eq!(resolve_user_full(root.path(), "").unwrap().home, "/root");
    }

    #[test]
    fn by_uid() {
        let root = image_root();
        // Known uid: its passwd gid and groups.
        assert_eq!(
            resolve_user(root.path(), "1000").unwrap(),
            (1000, 1000, vec![10, 29])
        );
        // Unknown uid: fine, gid 0, home /.
        assert_eq!(
            resolve_user(root.path(), "4242").unwrap(),
            (4242, 0, vec![])
        );
        assert_eq!(resolve_user_full(root.path(), "4242").unwrap().home, "/");
    }

    #[test]
    fn name_and_group() {
        let root = image_root();
        assert_eq!(
            resolve_user(root.path(), "alice:staff").unwrap(),
            (1000, 50, vec![])
        );
        assert_eq!(
            resolve_user(root.path(), "alice:777").unwrap(),
            (1000, 777, vec![])
        );
        assert_eq!(
            resolve_user(root.path(), "1234:5678").unwrap(),
            (1234, 5678, vec![])
        );
        assert_eq!(
            resolve_user(root.path(), "1234:wheel").unwrap(),
            (1234, 10, vec![])
        );
        assert_eq!(
            resolve_user(root.path(), ":wheel").unwrap(),
            (0, 10, vec![])
        );
    }

    #[test]
    fn unknown_names_are_errors() {
        let root = image_root();
        assert!(matches!(
            resolve_user(root.path(), "mallory"),
            Err(SpecError::UserNotFound { user }) if user == "mallory"
        ));
        assert!(matches!(
            resolve_user(root.path(), "alice:nogroup"),
            Err(SpecError::GroupNotFound { group }) if group == "nogroup"
        ));
        let err = resolve_user(root.path(), "mallory").unwrap_err();
        assert!(err.to_string().contains("mallory"));
        assert!(err.is_invalid_input());
    }

    #[test]
    fn out_of_range_ids() {
        let root = image_root();
        for spec in ["2147483648", "99999999999", "1:2147483648"] {
            assert!(
                matches!(
                    resolve_user(root.path(), spec),
                    Err(SpecError::InvalidOption { .. })
                ),
                "{spec}"
            );
        }
        assert_eq!(
            resolve_user(root.path(), "2147483647").unwrap(),
            (2147483647, 0, vec![])
        );
    }

    #[test]
    fn no_passwd_file() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(resolve_user(dir.path(), "").unwrap(), (0, 0, vec![]));
        assert_eq!(resolve_user(dir.path(), "33:33").unwrap(), (33, 33, vec![]));
        assert!(matches!(
            resolve_user(dir.path(), "www-data"),
            Err(SpecError::UserNotFound { .. })
        ));
    }

    #[test]
    fn symlinks_stay_inside_the_root() {
        // The image's /etc/passwd points at an absolute path: it must be read from the
        // image, not from the host.
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc")).unwrap();
        fs::create_dir_all(root.path().join("data")).unwrap();
        fs::write(
            root.path().join("data/passwd"),
            "carol:x:3000:3000::/home/carol:/bin/sh\n",
        )
        .unwrap();
        symlink("/data/passwd", root.path().join("etc/passwd")).unwrap();
        assert_eq!(
            resolve_user(root.path(), "carol").unwrap(),
            (3000, 3000, vec![])
        );

        // An escape through .. is clamped at the root.
        fs::remove_file(root.path().join("etc/passwd")).unwrap();
        symlink(
            "../../../../../../etc/shadow-nope",
            root.path().join("etc/passwd"),
        )
        .unwrap();
        assert!(matches!(
            resolve_user(root.path(), "carol"),
            Err(SpecError::UserNotFound { .. })
        ));
        assert_eq!(resolve_user(root.path(), "7").unwrap(), (7, 0, vec![]));

        // A symlinked directory, and a loop.
        fs::remove_file(root.path().join("etc/passwd")).unwrap();
        fs::create_dir_all(root.path().join("real")).unwrap();
        fs::write(
            root.path().join("real/passwd"),
            "dave:x:4000:4000::/:/bin/sh\n",
        )
        .unwrap();
        fs::remove_dir(root.path().join("etc")).unwrap();
        symlink("real", root.path().join("etc")).unwrap();
        assert_eq!(
            resolve_user(root.path(), "dave").unwrap(),
            (4000, 4000, vec![])
        );
        fs::remove_file(root.path().join("real/passwd")).unwrap();
        symlink("/etc/passwd", root.path().join("real/passwd")).unwrap();
        assert!(matches!(
            resolve_user(root.path(), "dave"),
            Err(SpecError::ReadImageFile { .. })
        ));
    }

    #[test]
    fn passwd_must_be_a_file() {
        let root = tempfile::tempdir().unwrap();
        fs::create_dir_all(root.path().join("etc/passwd")).unwrap();
        assert!(matches!(
            resolve_user(root.path(), "x"),
            Err(SpecError::ReadImageFile { .. })
        ));
    }
}
