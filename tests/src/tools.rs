//! The host tools the harness runs, and checks that they are installed.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{check_output, Error, IoContext, Result};

/// Path of Debian's static busybox, the source of every fixture rootfs.
pub const BUSYBOX: &str = "/bin/busybox";

/// Finds `binary` in `$PATH` (or takes it as is when it contains a `/`).
pub fn find_tool(binary: &str) -> Option<PathBuf> {
    if binary.contains('/') {
        let path = PathBuf::from(binary);
        return path.is_file().then_some(path);
    }
    let path = std::env::var_os("PATH")
        .unwrap_or_else(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
}

/// Panics, naming the Debian package to install, unless `binary` is installed.
pub fn require_tool(binary: &str, debian_package: &str) {
    if find_tool(binary).is_none() {
        panic!(
            "`{binary}` is not installed; these tests need it: apt-get install {debian_package}"
        );
    }
}

/// Panics with a clear message naming the missing Debian packages unless every
/// tool the harness needs is installed: `docker-registry` (docker-registry),
/// `skopeo` (skopeo), a *static* `/bin/busybox` (busybox-static) and
/// `htpasswd` (apache2-utils).
pub fn require_root_tools() {
    let mut missing = Vec::new();
    for (binary, package) in [
        ("docker-registry", "docker-registry"),
        ("skopeo", "skopeo"),
        ("htpasswd", "apache2-utils"),
    ] {
        if find_tool(binary).is_none() {
            missing.push(format!("`{binary}` (apt-get install {package})"));
        }
    }
    match is_static_elf(Path::new(BUSYBOX)) {
        Ok(true) => {}
        Ok(false) => missing.push(format!(
            "a static {BUSYBOX} (it is dynamically linked; apt-get install busybox-static)"
        )),
        Err(_) => missing.push(format!("{BUSYBOX} (apt-get install busybox-static)")),
    }
    if !missing.is_empty() {
        panic!(
            "the integration-test harness needs these host tools, which are missing: {}",
            missing.join(", ")
        );
    }
}

/// Tells whether the ELF file at `path` has no program interpreter, i.e. runs
/// in an empty rootfs.
pub fn is_static_elf(path: &Path) -> Result<bool> {
    let data = std::fs::read(path).ctx(|| format!("reading {}", path.display()))?;
    let bad = || Error::Unexpected(format!("{} is not a 64-bit ELF file", path.display()));
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 {
        return Err(bad());
    }
    let le = data[5] == 1;
    let u16_at = |at: usize| -> Option<u64> {
        let b: [u8; 2] = data.get(at..at + 2)?.try_into().ok()?;
        Some(u64::from(if le {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }))
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b: [u8; 4] = data.get(at..at + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let u64_at = |at: usize| -> Option<u64> {
        let b: [u8; 8] = data.get(at..at + 8)?.try_into().ok()?;
        Some(if le {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    };
    const PT_INTERP: u32 = 3;
    let phoff = u64_at(0x20).ok_or_else(bad)?;
    let phentsize = u16_at(0x36).ok_or_else(bad)?;
    let phnum = u16_at(0x38).ok_or_else(bad)?;
    for i in 0..phnum {
        let at = usize::try_from(phoff + i * phentsize).map_err(|_| bad())?;
        if u32_at(at).ok_or_else(bad)? == PT_INTERP {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Runs a command to completion with stdin closed; returns its stdout, or an
/// [`Error::Command`] carrying its stderr.
pub(crate) fn run(command: &mut Command) -> Result<Vec<u8>> {
    let line = format!("{command:?}");
    let output = command
        .stdin(Stdio::null())
        .output()
        .ctx(|| format!("running {line}"))?;
    check_output(line, output)
}
