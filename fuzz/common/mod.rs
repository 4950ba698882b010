//! Shared by the fuzz targets that keep files for the life of the process.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

static PROCESS_DIR: OnceLock<PathBuf> = OnceLock::new();

extern "C" fn remove_process_dir() {
    if let Some(dir) = PROCESS_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// A directory under `$TMPDIR` that lives as long as the process: removed at exit
/// (libFuzzer ends a `-max_total_time` or `-runs` run with `exit()`), left behind
/// only when the process dies on a crash. Statics are never dropped, so a
/// `tempfile::TempDir` in one would leak.
pub fn process_dir(prefix: &str) -> &'static Path {
    PROCESS_DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("creating a temp dir")
            .keep();
        // SAFETY: registers a plain function with no arguments, as atexit expects.
        unsafe { libc::atexit(remove_process_dir) };
        dir
    })
}
