//! Seccomp filters compiled once per profile, not once per container.
//!
//! libcontainer builds a container's seccomp filter with libseccomp inside the
//! container's init process, just before the workload starts. Generating the BPF
//! program there (`seccomp_load`) costs ~6 ms of CPU with Docker's default profile on
//! the reference host, a tenth of a whole `run`, and the program is the same for every
//! container with the same profile on the same kernel and libseccomp.
//!
//! So the create helper makes the program before libcontainer runs: from
//! `<bundle>/seccomp.bpf` when the engine left one there that was compiled for this very
//! profile (the engine keeps the programs its shims made, see
//! `skiff_daemon::container::seccomp_cache`), else by running libcontainer's own filter
//! construction in a capture mode that exports the program instead of loading it (and
//! writing it to the bundle for the engine to keep). The init then still builds its
//! libseccomp context exactly as before, but its `seccomp_load` loads the prepared
//! program, with the flags that context asks for, instead of generating it again.
//!
//! That last step replaces libseccomp's exported `seccomp_load` in this binary (symbol
//! interposition: the executable's definition wins over the shared library's); every call
//! outside the two modes above goes to libseccomp's own. This needs libseccomp linked as
//! a shared library, which is how libseccomp-sys links it by default.

use std::ffi::{c_int, c_void};
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use libcontainer::oci_spec::runtime::LinuxSeccomp;
use libseccomp_sys::scmp_filter_attr;
use sha2::{Digest as _, Sha256};

/// The file in the bundle that holds a compiled filter: a header line naming the key it
/// was compiled for, then the BPF program (8-byte instructions).
pub const BUNDLE_FILE: &str = "seccomp.bpf";

const HEADER: &str = "skiff-seccomp-bpf v1 ";

/// Set (to any value) by an engine that keeps the programs its shims leave in bundles;
/// without it (e.g. under containerd) a program is used when one is there, but none is
/// made ahead: compiling twice would only cost time.
pub const KEEP_ENV: &str = "SKIFF_SHIM_SECCOMP_KEEP";

/// The kernel's limit on a filter's length, in instructions.
const MAX_INSTRUCTIONS: usize = 4096;

/// The program the init's `seccomp_load` loads instead of generating one.
static PREPARED: OnceLock<Vec<u8>> = OnceLock::new();

/// While set, `seccomp_load` exports the program into [`CAPTURED`] and loads nothing.
static CAPTURE: AtomicBool = AtomicBool::new(false);
static CAPTURED: Mutex<Option<Vec<u8>>> = Mutex::new(None);

/// Makes the container's seccomp program ready before libcontainer builds the container
/// (the create helper, single-threaded, calls this). Without a profile, with a profile
/// that uses user notification (its listener needs libseccomp's own load), or when
/// anything fails, nothing is prepared and libseccomp does all the work as before.
pub fn prepare(bundle: &Path) {
    let Ok(config) = fs::read(bundle.join("config.json")) else {
        return;
    };
    let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&config) else {
        return;
    };
    let profile = &spec["linux"]["seccomp"];
    if profile.is_null() {
        return;
    }
    let Ok(seccomp) = serde_json::from_value::<LinuxSeccomp>(profile.clone()) else {
        return;
    };
    if libcontainer::seccomp::is_notify(&seccomp) {
        return;
    }
    let key = key(profile);
    let path = bundle.join(BUNDLE_FILE);
    if let Some(program) = fs::read(&path).ok().and_then(|b| parse(&b, &key)) {
        let _ = PREPARED.set(program);
        return;
    }
    if std::env::var_os(KEEP_ENV).is_none() {
        return;
    }
    let Some(program) = compile(&seccomp) else {
        return;
    };
    // For the engine to keep; the bundle is the engine's (root-only) directory.
    let tmp = bundle.join(format!("{BUNDLE_FILE}.tmp"));
    let mut bytes = format!("{HEADER}{key}\n").into_bytes();
    bytes.extend_from_slice(&program);
    if fs::write(&tmp, &bytes).is_ok() {
        let _ = fs::rename(&tmp, &path);
    }
    let _ = PREPARED.set(program);
}

/// What a compiled program depends on: the profile, the kernel (libseccomp asks it which
/// actions and flags exist) and libseccomp's version.
fn key(profile: &serde_json::Value) -> String {
    let mut h = Sha256::new();
    h.update(HEADER.as_bytes());
    h.update(
        nix::sys::utsname::uname()
            .map(|u| u.release().to_string_lossy().into_owned())
            .unwrap_or_default()
            .as_bytes(),
    );
    // SAFETY: libseccomp returns a pointer to its static version record.
    let v = unsafe { libseccomp_sys::seccomp_version() };
    if !v.is_null() {
        // SAFETY: non-null, static, never written.
        let v = unsafe { &*v };
        h.update(format!("\0{}.{}.{}\0", v.major, v.minor, v.micro).as_bytes());
    }
    h.update(profile.to_string().as_bytes());
    h.finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
}

/// The program in a bundle file, if the file was written for `key` and is well formed.
fn parse(bytes: &[u8], key: &str) -> Option<Vec<u8>> {
    let newline = bytes.iter().position(|&b| b == b'\n')?;
    let header = std::str::from_utf8(&bytes[..newline]).ok()?;
    if header.strip_prefix(HEADER)? != key {
        return None;
    }
    let program = &bytes[newline + 1..];
    let ok = !program.is_empty()
        && program.len().is_multiple_of(8)
        && program.len() / 8 <= MAX_INSTRUCTIONS;
    ok.then(|| program.to_vec())
}

/// Runs libcontainer's filter construction with `seccomp_load` capturing the program.
fn compile(seccomp: &LinuxSeccomp) -> Option<Vec<u8>> {
    CAPTURE.store(true, Ordering::SeqCst);
    let built = libcontainer::seccomp::initialize_seccomp(seccomp);
    CAPTURE.store(false, Ordering::SeqCst);
    let program = CAPTURED.lock().unwrap_or_else(|e| e.into_inner()).take();
    match built {
        Ok(_) => program,
        Err(e) => {
            // libcontainer will fail the same way in the init, and report it there.
            eprintln!("compiling the seccomp filter ahead of the init: {e}");
            None
        }
    }
}

/// libseccomp's `seccomp_load(3)`, interposed (see the module documentation).
///
/// # Safety
/// `ctx` is a libseccomp filter context, as for libseccomp's own function.
#[no_mangle]
pub unsafe extern "C" fn seccomp_load(ctx: *const c_void) -> c_int {
    if CAPTURE.load(Ordering::SeqCst) {
        // SAFETY: the caller passes a valid context.
        return match unsafe { export(ctx) } {
            Ok(program) => {
                *CAPTURED.lock().unwrap_or_else(|e| e.into_inner()) = Some(program);
                0
            }
            Err(errno) => -errno,
        };
    }
    if let Some(program) = PREPARED.get() {
        // SAFETY: as above.
        return unsafe { load(ctx, program) };
    }
    // SAFETY: as above; the real function takes the same argument.
    unsafe { real_seccomp_load(ctx) }
}

/// libseccomp's own `seccomp_load`.
unsafe fn real_seccomp_load(ctx: *const c_void) -> c_int {
    type LoadFn = unsafe extern "C" fn(*const c_void) -> c_int;
    static REAL: OnceLock<usize> = OnceLock::new();
    let addr = *REAL.get_or_init(|| {
        // SAFETY: looks up the next definition of the symbol after this binary's.
        unsafe { libc::dlsym(libc::RTLD_NEXT, c"seccomp_load".as_ptr()) as usize }
    });
    if addr == 0 {
        return -libc::ENOSYS;
    }
    // SAFETY: the symbol is libseccomp's `int seccomp_load(const scmp_filter_ctx)`.
    let real: LoadFn = unsafe { std::mem::transmute::<usize, LoadFn>(addr) };
    // SAFETY: the caller passes a valid context.
    unsafe { real(ctx) }
}

/// The context's program, as `seccomp_export_bpf(3)` writes it.
unsafe fn export(ctx: *const c_void) -> Result<Vec<u8>, c_int> {
    // SAFETY: a new anonymous file that this function owns.
    let fd = unsafe { libc::memfd_create(c"skiff-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EIO));
    }
    // SAFETY: fd was just created and is owned here alone.
    let mut file = unsafe { fs::File::from_raw_fd(fd) };
    // SAFETY: the caller passes a valid context; fd is open for writing.
    let rc = unsafe { libseccomp_sys::seccomp_export_bpf(ctx, file.as_raw_fd()) };
    if rc < 0 {
        return Err(-rc);
    }
    let mut program = Vec::new();
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.read_to_end(&mut program))
        .map_err(|e| e.raw_os_error().unwrap_or(libc::EIO))?;
    let _ = file.flush();
    if program.is_empty() || program.len() % 8 != 0 || program.len() / 8 > MAX_INSTRUCTIONS {
        return Err(libc::EINVAL);
    }
    Ok(program)
}

/// Loads `program` into this thread the way libseccomp's `seccomp_load` would load the
/// context's: no-new-privileges first if the context asks for it, then the filter with
/// the context's flags.
unsafe fn load(ctx: *const c_void, program: &[u8]) -> c_int {
    let attr = |a: scmp_filter_attr| {
        let mut v: u32 = 0;
        // SAFETY: the caller passes a valid context; v is a valid out pointer.
        let rc = unsafe { libseccomp_sys::seccomp_attr_get(ctx, a, &mut v) };
        rc == 0 && v != 0
    };
    if attr(scmp_filter_attr::SCMP_FLTATR_CTL_NNP) {
        // SAFETY: sets a process attribute, nothing else.
        if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } < 0 {
            return -errno();
        }
    }
    let mut flags: libc::c_ulong = 0;
    if attr(scmp_filter_attr::SCMP_FLTATR_CTL_TSYNC) {
        flags |= libc::SECCOMP_FILTER_FLAG_TSYNC;
    }
    if attr(scmp_filter_attr::SCMP_FLTATR_CTL_LOG) {
        flags |= libc::SECCOMP_FILTER_FLAG_LOG;
    }
    if attr(scmp_filter_attr::SCMP_FLTATR_CTL_SSB) {
        flags |= libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW;
    }
    let prog = libc::sock_fprog {
        len: (program.len() / 8) as libc::c_ushort,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prog points at a well-formed program (checked when it was made or read)
    // that outlives the call; the kernel copies it.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            flags,
            &prog as *const libc::sock_fprog,
        )
    };
    match rc {
        0 => 0,
        // With TSYNC, a positive result names a thread that could not be synchronised.
        r if r > 0 => -libc::ESRCH,
        _ => -errno(),
    }
}

fn errno() -> c_int {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundle_files_for_another_key_or_malformed_are_ignored() {
        let program = vec![0u8; 16];
        let mut file = format!("{HEADER}abc\n").into_bytes();
        file.extend_from_slice(&program);
        assert_eq!(parse(&file, "abc"), Some(program));
        assert_eq!(parse(&file, "abd"), None);
        let mut odd = format!("{HEADER}abc\n").into_bytes();
        odd.extend_from_slice(&[0u8; 12]);
        assert_eq!(parse(&odd, "abc"), None);
        assert_eq!(parse(format!("{HEADER}abc\n").as_bytes(), "abc"), None);
        assert_eq!(parse(b"garbage", "abc"), None);
        let mut huge = format!("{HEADER}abc\n").into_bytes();
        huge.extend_from_slice(&vec![0u8; 8 * (MAX_INSTRUCTIONS + 1)]);
        assert_eq!(parse(&huge, "abc"), None);
    }

    #[test]
    fn the_key_follows_the_profile() {
        let a = serde_json::json!({"defaultAction": "SCMP_ACT_ERRNO"});
        let b = serde_json::json!({"defaultAction": "SCMP_ACT_ALLOW"});
        assert_eq!(key(&a), key(&a));
        assert_ne!(key(&a), key(&b));
    }
}
