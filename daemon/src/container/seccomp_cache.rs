//! Compiled seccomp filters kept between containers.
//!
//! The shim compiles a container's seccomp profile into a BPF program before the
//! container's init runs and leaves it in the bundle (`seccomp.bpf`, see the shim's
//! `seccomp_cache` module); compiling is a tenth of a `run`. The engine keeps those
//! programs under `<run-root>/seccomp/`, one per profile, and puts the right one into
//! each new bundle, so only the first container with a profile pays for compiling it.
//! The shim checks that a program was compiled for its container's profile, kernel and
//! libseccomp before it uses one; a stale or foreign file is ignored and recompiled.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use skiff_image_store::Digest;

use crate::engine::Engine;

/// The file name the shim reads and writes in the bundle.
const BUNDLE_FILE: &str = "seccomp.bpf";

/// Enough for every profile a host uses (they differ by capability set and options);
/// beyond that new programs are simply not kept.
const MAX_KEPT: usize = 64;

impl Engine {
    fn seccomp_cache_dir(&self) -> PathBuf {
        self.config().run_root.join("seccomp")
    }

    /// Puts the kept program for the profile of `spec` (the bundle's config) into the
    /// bundle, if there is one; what [`Engine::keep_seccomp_program`] needs afterwards.
    pub(crate) fn seed_seccomp_program(
        &self,
        bundle: &Path,
        spec: &serde_json::Value,
    ) -> Option<KeptProgram> {
        let profile = &spec["linux"]["seccomp"];
        if profile.is_null() {
            return None;
        }
        let key = Digest::of(profile.to_string().as_bytes());
        let path = self.seccomp_cache_dir().join(format!("{}.bpf", key.hex()));
        let seeded = bundle.join(BUNDLE_FILE);
        let seeded_ino = match fs::copy(&path, &seeded) {
            Ok(_) => fs::metadata(&seeded).ok().map(|m| m.ino()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                tracing::debug!("seeding the seccomp program from {}: {e}", path.display());
                None
            }
        };
        Some(KeptProgram { path, seeded_ino })
    }

    /// Keeps the program the shim left in the bundle, unless the bundle still holds the
    /// seeded one (the shim writes a new file only when it compiled: nothing kept yet,
    /// or a kept program it could not use).
    pub(crate) fn keep_seccomp_program(&self, bundle: &Path, kept: &KeptProgram) {
        let made_path = bundle.join(BUNDLE_FILE);
        let Ok(meta) = fs::metadata(&made_path) else {
            return;
        };
        if kept.seeded_ino == Some(meta.ino()) {
            return;
        }
        let Ok(made) = fs::read(&made_path) else {
            return;
        };
        let dir = self.seccomp_cache_dir();
        if let Err(e) = fs::create_dir_all(&dir) {
            tracing::debug!("creating {}: {e}", dir.display());
            return;
        }
        let replacing = kept.path.exists();
        let count = fs::read_dir(&dir).map(|d| d.count()).unwrap_or(usize::MAX);
        if !replacing && count >= MAX_KEPT {
            return;
        }
        let tmp = dir.join(format!(".{}.tmp", crate::container::new_id()));
        let copied = fs::write(&tmp, &made).and_then(|_| fs::rename(&tmp, &kept.path));
        if let Err(e) = copied {
            let _ = fs::remove_file(&tmp);
            tracing::debug!(
                "keeping the seccomp program in {}: {e}",
                kept.path.display()
            );
        }
    }
}

/// A profile's kept program, as seeded into one bundle.
pub(crate) struct KeptProgram {
    /// Where the program of the profile is kept.
    path: PathBuf,
    /// The inode of the copy put into the bundle, if one was.
    seeded_ino: Option<u64>,
}
