//! `process.rlimits`: `RLIMIT_NOFILE` at 1048576 (what Docker containers get from
//! dockerd's own limit), clamped to the caller's hard limit: without
//! `CAP_SYS_RESOURCE` (missing on some hosts) a hard limit cannot be raised, and the
//! runtime would fail to apply it.

use oci_spec::runtime::{PosixRlimit, PosixRlimitBuilder, PosixRlimitType};

use super::error::{build_err, SpecError};

/// The open-files limit containers get when the caller's hard limit allows it.
pub const DEFAULT_NOFILE: u64 = 1_048_576;

/// The rlimits of a container's process, from the caller's current `RLIMIT_NOFILE`
/// hard limit (one `getrlimit` call).
pub fn default_rlimits() -> Result<Vec<PosixRlimit>, SpecError> {
    Ok(vec![nofile_rlimit(current_nofile_hard())?])
}

/// `RLIMIT_NOFILE` soft = hard = min([`DEFAULT_NOFILE`], `caller_hard`).
pub fn nofile_rlimit(caller_hard: u64) -> Result<PosixRlimit, SpecError> {
    let value = DEFAULT_NOFILE.min(caller_hard);
    PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .soft(value)
        .hard(value)
        .build()
        .map_err(build_err("rlimits"))
}

/// The calling process's `RLIMIT_NOFILE` hard limit (`RLIM_INFINITY` is `u64::MAX`);
/// [`DEFAULT_NOFILE`] if it cannot be read.
fn current_nofile_hard() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct we pass, which lives on our stack.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if rc == 0 {
        limit.rlim_max
    } else {
        DEFAULT_NOFILE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamped_to_the_callers_hard_limit() {
        let r = nofile_rlimit(20_000).unwrap();
        assert_eq!(r.typ(), PosixRlimitType::RlimitNofile);
        assert_eq!((r.soft(), r.hard()), (20_000, 20_000));
        let r = nofile_rlimit(u64::MAX).unwrap();
        assert_eq!((r.soft(), r.hard()), (DEFAULT_NOFILE, DEFAULT_NOFILE));
    }

    #[test]
    fn never_above_what_this_process_has() {
        let r = default_rlimits().unwrap();
        assert_eq!(r.len(), 1);
        assert!(r[0].hard() <= current_nofile_hard());
        assert!(r[0].hard() <= DEFAULT_NOFILE);
    }
}
