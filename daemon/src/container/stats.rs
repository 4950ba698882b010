//! `stats`: resource usage read from the container's cgroup (v1 controllers, or the
//! v2 unified files where the host has them).

use std::collections::BTreeMap;
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
    /// CPU time per CPU, nanoseconds (cgroup v1's `cpuacct.usage_percpu`; empty on v2).
    pub per_cpu_ns: Vec<u64>,
    /// CPU time in user mode, nanoseconds.
    pub user_ns: u64,
    /// CPU time in kernel mode, nanoseconds.
    pub kernel_ns: u64,
    /// Traffic per interface of the container's network namespace (not `lo`; none for
    /// host networking, where the interfaces are the host's).
    pub networks: BTreeMap<String, NetStats>,
}

/// One interface's counters, as `/proc/net/dev` has them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct NetStats {
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets received.
    pub rx_packets: u64,
    /// Receive errors.
    pub rx_errors: u64,
    /// Received packets dropped.
    pub rx_dropped: u64,
    /// Bytes sent.
    pub tx_bytes: u64,
    /// Packets sent.
    pub tx_packets: u64,
    /// Send errors.
    pub tx_errors: u64,
    /// Sent packets dropped.
    pub tx_dropped: u64,
}

/// Nanoseconds per USER_HZ tick, the unit of `cpuacct.stat` and `/proc/stat` (100
/// ticks a second on Linux).
pub const NANOS_PER_TICK: u64 = 10_000_000;

/// The interfaces of `/proc/<pid>/net/dev` (the network namespace `pid` is in).
pub fn net_dev(text: &str) -> BTreeMap<String, NetStats> {
    let mut out = BTreeMap::new();
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        let v: Vec<u64> = counters
            .split_whitespace()
            .map(|n| n.parse().unwrap_or(0))
            .collect();
        if name.is_empty() || name == "lo" || v.len() < 12 {
            continue;
        }
        out.insert(
            name.to_string(),
            NetStats {
                rx_bytes: v[0],
                rx_packets: v[1],
                rx_errors: v[2],
                rx_dropped: v[3],
                tx_bytes: v[8],
                tx_packets: v[9],
                tx_errors: v[10],
                tx_dropped: v[11],
            },
        );
    }
    out
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
    field(&std::fs::read_to_string(p).ok()?, key)
}

/// The number after `key` in a `KEY VALUE` per line file read earlier.
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines()
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
        let cpuacct = v1("cpuacct");
        let per_cpu_ns = std::fs::read_to_string(cpuacct.join("cpuacct.usage_percpu"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|n| n.parse().ok())
            .collect();
        let cpu_stat = std::fs::read_to_string(cpuacct.join("cpuacct.stat")).unwrap_or_default();
        let ticks = |key| field(&cpu_stat, key).unwrap_or(0);
        return Stats {
            memory_usage: usage.saturating_sub(cache),
            memory_limit: if host > 0 { limit.min(host) } else { limit },
            cpu_total_ns: read_u64(&cpuacct.join("cpuacct.usage")).unwrap_or(0),
            pids: read_u64(&v1("pids").join("pids.current")).unwrap_or(0),
            block_read,
            block_write,
            per_cpu_ns,
            user_ns: ticks("user ") * NANOS_PER_TICK,
            kernel_ns: ticks("system ") * NANOS_PER_TICK,
            networks: BTreeMap::new(),
        };
    }
    // cgroup v2 (unified at /sys/fs/cgroup).
    let dir = PathBuf::from("/sys/fs/cgroup").join(rel);
    let limit = std::fs::read_to_string(dir.join("memory.max"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(host_memory);
    let cpu_stat = std::fs::read_to_string(dir.join("cpu.stat")).unwrap_or_default();
    let usec = |key| field(&cpu_stat, key).unwrap_or(0) * 1000;
    Stats {
        memory_usage: read_u64(&dir.join("memory.current"))
            .unwrap_or(0)
            .saturating_sub(stat_field(&dir.join("memory.stat"), "inactive_file ").unwrap_or(0)),
        memory_limit: limit,
        cpu_total_ns: usec("usage_usec "),
        pids: read_u64(&dir.join("pids.current")).unwrap_or(0),
        user_ns: usec("user_usec "),
        kernel_ns: usec("system_usec "),
        ..Stats::default()
    }
}

impl Engine {
    /// A usage sample of a running container.
    pub fn container_stats(&self, name: &str) -> Result<Stats> {
        let rec = self.container(name)?;
        if !matches!(rec.state.status, Status::Running | Status::Paused) {
            return Ok(Stats::default());
        }
        let mut s = sample(&cgroups_path(&rec.id));
        if s == Stats::default() {
            return Err(EngineError::Internal(format!(
                "no cgroup found for container {}",
                rec.id
            )));
        }
        if rec.state.pid > 0 && rec.options.network != super::options::NetworkMode::Host {
            let dev = std::fs::read_to_string(format!("/proc/{}/net/dev", rec.state.pid));
            s.networks = net_dev(&dev.unwrap_or_default());
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_net_dev_without_loopback() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0
  eth0:    1296      16    1    2    0     0          0         0      656       8    3    4    0     0       0          0
 bogus: 1 2
";
        let n = net_dev(text);
        assert_eq!(n.len(), 1, "{n:?}");
        let e = &n["eth0"];
        assert_eq!(
            (e.rx_bytes, e.rx_packets, e.rx_errors, e.rx_dropped),
            (1296, 16, 1, 2)
        );
        assert_eq!(
            (e.tx_bytes, e.tx_packets, e.tx_errors, e.tx_dropped),
            (656, 8, 3, 4)
        );
        assert!(net_dev("").is_empty());
    }
}
