//! File metadata: what a tar entry says about owner, mode, time and xattrs,
//! and the calls that set them on a path without following symlinks.

use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use nix::sys::stat::{utimensat, UtimensatFlags};
use nix::sys::time::TimeSpec;

use super::error::UnpackError;
use super::xattr;

/// PAX record prefix of an extended attribute (`SCHILY.xattr.NAME`).
const PAX_XATTR: &str = "SCHILY.xattr.";

/// Owner, permissions, time and extended attributes of one tar entry,
/// with PAX records overriding the header fields.
#[derive(Debug, Clone)]
pub(crate) struct EntryMeta {
    /// Numeric owner.
    pub uid: u32,
    /// Numeric group.
    pub gid: u32,
    /// Permission bits including setuid, setgid and sticky.
    pub mode: u32,
    /// Modification time (also used as access time).
    pub mtime: TimeSpec,
    /// Extended attributes as (name, value).
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
}

impl EntryMeta {
    /// Reads the metadata of `entry`, whose path in the layer is `raw`.
    pub fn read<R: Read>(entry: &mut tar::Entry<'_, R>, raw: &Path) -> Result<Self, UnpackError> {
        let header = entry.header();
        let bad = |what: &str, e: io::Error| UnpackError::corrupt(format!("{what} of {raw:?}"), e);
        let mut meta = EntryMeta {
            uid: id_from(header.uid().map_err(|e| bad("uid", e))?, "uid", raw)?,
            gid: id_from(header.gid().map_err(|e| bad("gid", e))?, "gid", raw)?,
            mode: header.mode().map_err(|e| bad("mode", e))? & 0o7777,
            mtime: seconds(header.mtime().map_err(|e| bad("mtime", e))?),
            xattrs: Vec::new(),
        };
        let pax = entry.pax_extensions().map_err(|e| bad("PAX records", e))?;
        for record in pax.into_iter().flatten() {
            let record = record.map_err(|e| bad("PAX records", e))?;
            meta.apply_pax(record.key_bytes(), record.value_bytes(), raw)?;
        }
        Ok(meta)
    }

    /// Applies one PAX record (`uid`, `gid`, `mtime`, `SCHILY.xattr.*`).
    fn apply_pax(&mut self, key: &[u8], value: &[u8], raw: &Path) -> Result<(), UnpackError> {
        let text = || std::str::from_utf8(value).unwrap_or("");
        match key {
            b"uid" => self.uid = id_from(parse_decimal(text(), "uid", raw)?, "uid", raw)?,
            b"gid" => self.gid = id_from(parse_decimal(text(), "gid", raw)?, "gid", raw)?,
            b"mtime" => self.mtime = parse_pax_time(text(), raw)?,
            _ => {
                if let Some(name) = key.strip_prefix(PAX_XATTR.as_bytes()) {
                    self.xattrs.push((name.to_vec(), value.to_vec()));
                }
            }
        }
        Ok(())
    }
}

/// A user or group id that fits Linux's 32 bits.
fn id_from(id: u64, what: &str, raw: &Path) -> Result<u32, UnpackError> {
    u32::try_from(id)
        .map_err(|_| UnpackError::unsupported(raw, format!("{what} {id} is too large")))
}

/// A decimal PAX value.
fn parse_decimal(text: &str, what: &str, raw: &Path) -> Result<u64, UnpackError> {
    text.trim().parse().map_err(|_| {
        let msg = format!("PAX {what} {text:?} is not a number");
        UnpackError::corrupt(
            format!("{what} of {raw:?}"),
            io::Error::new(io::ErrorKind::InvalidData, msg),
        )
    })
}

/// A PAX time, `SECONDS[.FRACTION]`.
fn parse_pax_time(text: &str, raw: &Path) -> Result<TimeSpec, UnpackError> {
    let bad = || {
        let msg = format!("PAX mtime {text:?} is not a time");
        UnpackError::corrupt(
            format!("mtime of {raw:?}"),
            io::Error::new(io::ErrorKind::InvalidData, msg),
        )
    };
    let (secs, frac) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    if !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let digits: String = frac.chars().chain(std::iter::repeat('0')).take(9).collect();
    let nanos: i64 = digits.parse().map_err(|_| bad())?;
    Ok(TimeSpec::new(secs, if secs < 0 { 0 } else { nanos }))
}

/// A whole-second time.
pub(crate) fn seconds(secs: u64) -> TimeSpec {
    TimeSpec::new(i64::try_from(secs).unwrap_or(i64::MAX), 0)
}

/// Sets the numeric owner of `path` itself (a symlink is not followed).
pub(crate) fn set_owner(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
}

/// Sets the permission bits (incl. setuid, setgid, sticky) of `path`, which
/// must not be a symlink. Call after [`set_owner`]: chown clears setuid.
pub(crate) fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode & 0o7777))
}

/// Sets the access and modification times of `path` itself.
pub(crate) fn set_times(path: &Path, atime: TimeSpec, mtime: TimeSpec) -> io::Result<()> {
    utimensat(None, path, &atime, &mtime, UtimensatFlags::NoFollowSymlink).map_err(io::Error::from)
}

/// Whether a failure to set xattr `name` may be skipped with a warning: the
/// `security.*` and `user.*` namespaces may be refused by the filesystem, an
/// LSM or (for `user.*` on symlinks and devices) the kernel itself.
pub(crate) fn xattr_failure_is_tolerable(name: &[u8], err: &io::Error) -> bool {
    let refused = matches!(err.raw_os_error(), Some(libc::EPERM | libc::EOPNOTSUPP));
    refused && (name.starts_with(b"security.") || name.starts_with(b"user."))
}

/// Sets xattr `name` on `path`, tolerating a refusal when
/// [`xattr_failure_is_tolerable`] says so (with a warning).
pub(crate) fn set_xattr(path: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
    match xattr::lset(path, name, value) {
        Err(e) if xattr_failure_is_tolerable(name, &e) => {
            let name = String::from_utf8_lossy(name);
            tracing::warn!(path = %path.display(), %name, error = %e, "extended attribute not kept");
            Ok(())
        }
        other => other,
    }
}
