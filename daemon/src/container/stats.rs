//! `stats`: resource usage read from the container's cgroup (v1 controllers, or the
//! v2 unified files where the host has them).

use std::path::{Path, PathBuf};

use super::create::cgroups_path;
use super::record::Status;
use crate::engine::Engine;
use crate::error::{EngineError, Result};

/// One sample of a container's usage.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Memory in use, bytes (without page cache, as Docker shows it).
    pub memory_usage: u64,
    /// Memory limit, bytes (the host's memory when unlimited).
    pub memory_limit: u64,
    /// Total CPU time used, nanoseconds.
    pub cpu_total_ns: u64,
    /// Processes in the container.
    pub pids: u64,
    /// Bytes read from block devices.
    pub block_read: u64,
    /// Bytes written to block devices.
    pub block_write: u64,
}

fn read_u64(p: &Path) -> Option<u64> {
    std::fs::read_to_string(p)
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn stat_field(p: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(p)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|v| v.trim().parse().ok()))
}

fn host_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn blkio_v1(dir: &Path) -> (u64, u64) {
    let text =
        std::fs::read_to_string(dir.join("blkio.throttle.io_service_bytes")).unwrap_or_default();
    let mut r = 0;
    let mut w = 0;
    for l in text.lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.len() == 3 {
            let n: u64 = f[2].parse().unwrap_or(0);
            match f[1] {
                "Read" => r += n,
                "Write" => w += n,
                _ => {}
            }
        }
    }
    (r, w)
}

/// A sample of the cgroup at `rel` (e.g. `/skiff/<id>`).
pub fn sample(rel: &str) -> Stats {
    let rel = rel.trim_start_matches('/');
    let v1 = |ctl: &str| PathBuf::from("/sys/fs/cgroup").join(ctl).join(rel);
    let mem = v1("memory");
    if mem.exists() {
        let usage = read_u64(&mem.join("memory.usage_in_bytes")).unwrap_or(0);
        let cache = stat_field(&mem.join("memory.stat"), "total_inactive_file ").unwrap_or(0);
        let limit = read_u64(&mem.join("memory.limit_in_bytes")).unwrap_or(u64::MAX);
        let host = host_memory();
        let (block_read, block_write) = blkio_v1(&v1("blkio"));
        return Stats {
            memory_usage: usage.saturating_sub(cache),
            memory_limit: if host > 0 { limit.min(host) } else { limit },
            cpu_total_ns: read_u64(&v1("cpuacct").join("cpuacct.usage")).unwrap_or(0),
            pids: read_u64(&v1("pids").join("pids.current")).unwrap_or(0),
            block_read,
            block_write,
        };
    }
    // cgroup v2 (unified at /sys/fs/cgroup).
    let dir = PathBuf::from("/sys/fs/cgroup").join(rel);
    let limit = std::fs::read_to_string(dir.join("memory.max"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(host_memory);
    Stats {
        memory_usage: read_u64(&dir.join("memory.current"))
            .unwrap_or(0)
            .saturating_sub(stat_field(&dir.join("memory.stat"), "inactive_file ").unwrap_or(0)),
        memory_limit: limit,
        cpu_total_ns: stat_field(&dir.join("cpu.stat"), "usage_usec ").unwrap_or(0) * 1000,
        pids: read_u64(&dir.join("pids.current")).unwrap_or(0),
        block_read: 0,
        block_write: 0,
    }
}

impl Engine {
    /// A usage sample of a running container.
    pub fn container_stats(&self, name: &str) -> Result<Stats> {
        let rec = self.container(name)?;
        if !matches!(rec.state.status, Status::Running | Status::Paused) {
            return Ok(Stats::default());
        }
        let s = sample(&cgroups_path(&rec.id));
        if s == Stats::default() {
            return Err(EngineError::Internal(format!(
                "no cgroup found for container {}",
                rec.id
            )));
        }
        Ok(s)
    }
}
