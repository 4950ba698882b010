//! Extended attributes of a path itself (the `l*xattr` calls: symlinks are
//! never followed).

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A C string of `bytes`, or `InvalidInput` if they hold a NUL.
fn c_string(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL byte in name"))
}

/// Sets attribute `name` of `path` (not following a symlink) to `value`.
pub(crate) fn lset(path: &Path, name: &[u8], value: &[u8]) -> io::Result<()> {
    let path = c_string(path.as_os_str().as_bytes())?;
    let name = c_string(name)?;
    // SAFETY: both strings are NUL-terminated and `value` is valid for its length.
    let rc = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Calls `fill(buffer)` (a size query when the buffer is empty) until the
/// buffer is large enough for the answer, and returns the filled part.
fn read_sized(mut fill: impl FnMut(&mut [u8]) -> isize) -> io::Result<Vec<u8>> {
    loop {
        let size = fill(&mut []);
        if size < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut buf = vec![0u8; size.unsigned_abs()];
        let n = fill(&mut buf);
        if n >= 0 {
            buf.truncate(n.unsigned_abs());
            return Ok(buf);
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ERANGE) {
            return Err(err);
        }
    }
}

/// The value of attribute `name` of `path` (not following a symlink).
pub(crate) fn lget(path: &Path, name: &[u8]) -> io::Result<Vec<u8>> {
    let path = c_string(path.as_os_str().as_bytes())?;
    let name = c_string(name)?;
    read_sized(|buf| {
        // SAFETY: both strings are NUL-terminated; `buf` is valid for its length.
        unsafe {
            libc::lgetxattr(
                path.as_ptr(),
                name.as_ptr(),
                buf.as_mut_ptr().cast(),
                buf.len(),
            )
        }
    })
}

/// The names of all attributes of `path` (not following a symlink).
pub(crate) fn llist(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    let path = c_string(path.as_os_str().as_bytes())?;
    let list = read_sized(|buf| {
        // SAFETY: `path` is NUL-terminated; `buf` is valid for its length.
        unsafe { libc::llistxattr(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }
    })?;
    Ok(list
        .split(|b| *b == 0)
        .filter(|name| !name.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}
