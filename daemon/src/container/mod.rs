//! Containers: records and their persistence, and the engine's container verbs, one
//! file per verb (`create.rs`, `start.rs`, `stop.rs`, ...).

pub mod archive;
pub mod cgroup_warmup;
pub mod copy;
pub mod create;
pub mod exec;
pub mod exec_registry;
pub mod inspect;
pub mod kill;
pub mod list;
pub mod log_watch;
pub mod logs;
pub mod names;
pub mod network;
pub mod network_json;
pub mod options;
pub mod pause;
pub mod record;
pub mod remove;
pub mod seccomp_cache;
pub mod start;
pub mod stats;
pub mod store;
pub mod sync;
pub mod update;
pub mod wait;

/// A new random container ID (64 hex characters).
pub fn new_id() -> String {
    use std::io::Read;
    let mut buf = [0u8; 32];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .is_ok();
    if !ok {
        // Fall back to time and pid; uniqueness is still checked against the store.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        buf[..16].copy_from_slice(&t.to_le_bytes());
        buf[16..20].copy_from_slice(&std::process::id().to_le_bytes());
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Now, as RFC 3339 with nanoseconds (Docker's format).
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
}
