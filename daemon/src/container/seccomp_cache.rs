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

    /// Puts the kept program for the bundle's profile into the bundle, if there is one.
    /// Returns the profile's cache file, for [`Engine::keep_seccomp_program`].
    pub(crate) fn seed_seccomp_program(&self, bundle: &Path) -> Option<PathBuf> {
        let config = fs::read(bundle.join("config.json")).ok()?;
        let spec: serde_json::Value = serde_json::from_slice(&config).ok()?;
        let profile = &spec["linux"]["seccomp"];
        if profile.is_null() {
            return None;
        }
        let key = Digest::of(profile.to_string().as_bytes());
        let kept = self.seccomp_cache_dir().join(format!("{}.bpf", key.hex()));
        if kept.exists() {
            if let Err(e) = fs::copy(&kept, bundle.join(BUNDLE_FILE)) {
                tracing::debug!("seeding the seccomp program from {}: {e}", kept.display());
            }
        }
        Some(kept)
    }

    /// Keeps the program the shim left in the bundle, unless it is the one kept already
    /// (the shim replaces a seeded program it could not use by a fresh one).
    pub(crate) fn keep_seccomp_program(&self, bundle: &Path, kept: &Path) {
        let Ok(made) = fs::read(bundle.join(BUNDLE_FILE)) else {
            return;
        };
        let replacing = match fs::read(kept) {
            Ok(old) if old == made => return,
            Ok(_) => true,
            Err(_) => false,
        };
        let dir = self.seccomp_cache_dir();
        if let Err(e) = fs::create_dir_all(&dir) {
            tracing::debug!("creating {}: {e}", dir.display());
            return;
        }
        let count = fs::read_dir(&dir).map(|d| d.count()).unwrap_or(usize::MAX);
        if !replacing && count >= MAX_KEPT {
            return;
        }
        let tmp = dir.join(format!(".{}.tmp", crate::container::new_id()));
        let copied = fs::write(&tmp, &made).and_then(|_| fs::rename(&tmp, kept));
        if let Err(e) = copied {
            let _ = fs::remove_file(&tmp);
            tracing::debug!("keeping the seccomp program in {}: {e}", kept.display());
        }
    }
}
