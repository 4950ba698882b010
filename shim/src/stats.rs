//! Task stats: libcgroups' numbers as containerd's cgroups v1 `Metrics` protobuf
//! (`io.containerd.cgroups.v1.Metrics`, what containerd's runc shim returns on v1 hosts).

use containerd_shim::protos::cgroups::metrics::{
    BlkIOEntry, BlkIOStat, CPUStat, CPUUsage, HugetlbStat, MemoryEntry, MemoryStat, Metrics,
    PidsStat, Throttle,
};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::{Message, MessageField};
use libcgroups::common::{AnyCgroupManager, CgroupManager};
use libcgroups::stats::{BlkioDeviceStat, MemoryData, Stats};

use crate::error::{Result, ShimError};

/// The type URL containerd resolves the metrics with.
pub const METRICS_TYPE_URL: &str = "io.containerd.cgroups.v1.Metrics";

fn mem_entry(d: &MemoryData) -> MessageField<MemoryEntry> {
    MessageField::some(MemoryEntry {
        limit: d.limit,
        usage: d.usage,
        max: d.max_usage,
        failcnt: d.fail_count,
        ..Default::default()
    })
}

fn blkio(v: &[BlkioDeviceStat]) -> Vec<BlkIOEntry> {
    v.iter()
        .map(|e| BlkIOEntry {
            op: e.op_type.clone().unwrap_or_default(),
            major: e.major,
            minor: e.minor,
            value: e.value,
            ..Default::default()
        })
        .collect()
}

/// Converts libcgroups stats into containerd's v1 metrics message.
pub fn to_metrics(s: &Stats) -> Metrics {
    let m = &s.memory.stats;
    let g = |k: &str| m.get(k).copied().unwrap_or(0);
    Metrics {
        pids: MessageField::some(PidsStat {
            current: s.pids.current,
            limit: s.pids.limit,
            ..Default::default()
        }),
        cpu: MessageField::some(CPUStat {
            usage: MessageField::some(CPUUsage {
                total: s.cpu.usage.usage_total,
                kernel: s.cpu.usage.usage_kernel,
                user: s.cpu.usage.usage_user,
                per_cpu: s.cpu.usage.per_core_usage_total.clone(),
                ..Default::default()
            }),
            throttling: MessageField::some(Throttle {
                periods: s.cpu.throttling.periods,
                throttled_periods: s.cpu.throttling.throttled_periods,
                throttled_time: s.cpu.throttling.throttled_time,
                ..Default::default()
            }),
            ..Default::default()
        }),
        memory: MessageField::some(MemoryStat {
            cache: g("cache"),
            rss: g("rss"),
            rss_huge: g("rss_huge"),
            mapped_file: g("mapped_file"),
            dirty: g("dirty"),
            writeback: g("writeback"),
            pg_pg_in: g("pgpgin"),
            pg_pg_out: g("pgpgout"),
            pg_fault: g("pgfault"),
            pg_maj_fault: g("pgmajfault"),
            inactive_anon: g("inactive_anon"),
            active_anon: g("active_anon"),
            inactive_file: g("inactive_file"),
            active_file: g("active_file"),
            unevictable: g("unevictable"),
            hierarchical_memory_limit: g("hierarchical_memory_limit"),
            hierarchical_swap_limit: g("hierarchical_memsw_limit"),
            total_cache: g("total_cache"),
            total_rss: g("total_rss"),
            total_rss_huge: g("total_rss_huge"),
            total_mapped_file: g("total_mapped_file"),
            total_dirty: g("total_dirty"),
            total_writeback: g("total_writeback"),
            total_pg_pg_in: g("total_pgpgin"),
            total_pg_pg_out: g("total_pgpgout"),
            total_pg_fault: g("total_pgfault"),
            total_pg_maj_fault: g("total_pgmajfault"),
            total_inactive_anon: g("total_inactive_anon"),
            total_active_anon: g("total_active_anon"),
            total_inactive_file: g("total_inactive_file"),
            total_active_file: g("total_active_file"),
            total_unevictable: g("total_unevictable"),
            usage: mem_entry(&s.memory.memory),
            swap: mem_entry(&s.memory.memswap),
            kernel: mem_entry(&s.memory.kernel),
            kernel_tcp: mem_entry(&s.memory.kernel_tcp),
            ..Default::default()
        }),
        blkio: MessageField::some(BlkIOStat {
            io_service_bytes_recursive: blkio(&s.blkio.service_bytes),
            io_serviced_recursive: blkio(&s.blkio.serviced),
            io_queued_recursive: blkio(&s.blkio.queued),
            io_service_time_recursive: blkio(&s.blkio.service_time),
            io_wait_time_recursive: blkio(&s.blkio.wait_time),
            io_merged_recursive: blkio(&s.blkio.merged),
            io_time_recursive: blkio(&s.blkio.time),
            sectors_recursive: blkio(&s.blkio.sectors),
            ..Default::default()
        }),
        hugetlb: s
            .hugetlb
            .iter()
            .map(|(size, h)| HugetlbStat {
                usage: h.usage,
                max: h.max_usage,
                failcnt: h.fail_count,
                pagesize: size.clone(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Reads the cgroup's stats and packs them into an `Any`.
pub fn metrics_any(m: &AnyCgroupManager) -> Result<Any> {
    let stats = m
        .stats()
        .map_err(|e| ShimError::Internal(format!("reading cgroup stats: {e}")))?;
    let value = to_metrics(&stats)
        .write_to_bytes()
        .map_err(|e| ShimError::Internal(format!("encoding metrics: {e}")))?;
    Ok(Any {
        type_url: METRICS_TYPE_URL.to_string(),
        value,
        ..Default::default()
    })
}
