//! `update`: changing a container's resource limits. The new limits are kept in its
//! record and its spec (for later starts) and, while it runs, written straight to its
//! cgroup (v1 hierarchies, or the unified v2 tree).

use std::fs;
use std::path::{Path, PathBuf};

use super::create::cgroups_path;
use super::options::Resources;
use crate::engine::Engine;
use crate::error::{EngineError, Result};

/// CFS period used for `--cpus` (as Docker: 100 ms).
const CFS_PERIOD_US: i64 = 100_000;

/// The CFS quota for `n` nano-CPUs (`n` checked by [`validate`]).
fn cfs_quota(n: i64) -> i64 {
    n.saturating_mul(CFS_PERIOD_US) / 1_000_000_000
}

/// Refuses values the kernel would reject half-way through an update, before anything
/// is written.
fn validate(r: &Resources) -> Result<()> {
    let bad = |msg: String| Err(EngineError::InvalidInput(msg));
    if r.memory.is_some_and(|m| m > 0 && m < 6 * 1024 * 1024) {
        return bad("Minimum memory limit allowed is 6MB".into());
    }
    if let (Some(m), Some(s)) = (r.memory, r.memory_swap) {
        if m > 0 && s > 0 && s < m {
            return bad(
                "Minimum memoryswap limit should be larger than memory limit, see usage".into(),
            );
        }
    }
    if let Some(n) = r.nano_cpus {
        let host = std::thread::available_parallelism()
            .map(|c| c.get())
            .unwrap_or(1) as i64;
        if n != 0 && !(10_000_000..=host.saturating_mul(1_000_000_000)).contains(&n) {
            return bad(format!(
                "Range of CPUs is from 0.01 to {host}.00, as there are only {host} CPUs available"
            ));
        }
    }
    if let Some(c) = &r.cpuset_cpus {
        crate::spec::validate_cpuset("--cpuset-cpus", c)
            .map_err(|e| EngineError::InvalidInput(e.to_string()))?;
    }
    if r.cpu_shares.is_some_and(|s| s > 262_144) {
        return bad("cpu-shares must be at most 262144".into());
    }
    Ok(())
}

fn write_knob(dir: &Path, file: &str, value: &str) -> Result<()> {
    let p = dir.join(file);
    fs::write(&p, value)
        .map_err(|e| EngineError::Internal(format!("writing {value:?} to {}: {e}", p.display())))
}

/// Writes the limits that are set in `r` to the cgroup at `rel`.
fn apply_to_cgroup(rel: &str, r: &Resources) -> Result<()> {
    let rel = rel.trim_start_matches('/');
    let v1 = |ctl: &str| PathBuf::from("/sys/fs/cgroup").join(ctl).join(rel);
    let mem = v1("memory");
    if mem.exists() {
        if let Some(m) = r.memory {
            let swap = r.memory_swap.unwrap_or(0);
            let v = if m > 0 { m.to_string() } else { "-1".into() };
            // memsw must stay >= memory: raise it first when growing, after when shrinking.
            let memsw = mem.join("memory.memsw.limit_in_bytes").exists();
            let sw = if swap > 0 {
                swap.to_string()
            } else {
                "-1".into()
            };
            if memsw && write_knob(&mem, "memory.memsw.limit_in_bytes", &sw).is_ok() {
                write_knob(&mem, "memory.limit_in_bytes", &v)?;
            } else {
                write_knob(&mem, "memory.limit_in_bytes", &v)?;
                if memsw {
                    write_knob(&mem, "memory.memsw.limit_in_bytes", &sw)?;
                }
            }
        }
        if let Some(n) = r.nano_cpus {
            let quota = if n > 0 { cfs_quota(n) } else { -1 };
            write_knob(&v1("cpu"), "cpu.cfs_period_us", &CFS_PERIOD_US.to_string())?;
            write_knob(&v1("cpu"), "cpu.cfs_quota_us", &quota.to_string())?;
        }
        if let Some(s) = r.cpu_shares {
            write_knob(&v1("cpu"), "cpu.shares", &s.to_string())?;
        }
        if let Some(c) = &r.cpuset_cpus {
            write_knob(&v1("cpuset"), "cpuset.cpus", c)?;
        }
        if let Some(p) = r.pids_limit {
            let v = if p > 0 { p.to_string() } else { "max".into() };
            write_knob(&v1("pids"), "pids.max", &v)?;
        }
        return Ok(());
    }
    let dir = PathBuf::from("/sys/fs/cgroup").join(rel);
    if let Some(m) = r.memory {
        write_knob(
            &dir,
            "memory.max",
            &if m > 0 { m.to_string() } else { "max".into() },
        )?;
    }
    if let Some(n) = r.nano_cpus {
        let quota = if n > 0 {
            (cfs_quota(n)).to_string()
        } else {
            "max".into()
        };
        write_knob(&dir, "cpu.max", &format!("{quota} {CFS_PERIOD_US}"))?;
    }
    if let Some(s) = r.cpu_shares {
        // The conversion runc uses from shares (2..262144) to weight (1..10000).
        let w = 1 + ((s.clamp(2, 262_144) - 2) * 9999) / 262_142;
        write_knob(&dir, "cpu.weight", &w.to_string())?;
    }
    if let Some(c) = &r.cpuset_cpus {
        write_knob(&dir, "cpuset.cpus", c)?;
    }
    if let Some(p) = r.pids_limit {
        write_knob(
            &dir,
            "pids.max",
            &if p > 0 { p.to_string() } else { "max".into() },
        )?;
    }
    Ok(())
}

/// Puts the set limits of `r` into an OCI spec's `linux.resources`.
fn apply_to_spec(spec: &mut serde_json::Value, r: &Resources) {
    let res = &mut spec["linux"]["resources"];
    if let Some(m) = r.memory {
        res["memory"]["limit"] = m.into();
    }
    if let Some(s) = r.memory_swap {
        res["memory"]["swap"] = s.into();
    }
    if let Some(n) = r.nano_cpus {
        res["cpu"]["period"] = CFS_PERIOD_US.into();
        res["cpu"]["quota"] = (cfs_quota(n)).into();
    }
    if let Some(s) = r.cpu_shares {
        res["cpu"]["shares"] = s.into();
    }
    if let Some(c) = &r.cpuset_cpus {
        res["cpu"]["cpus"] = c.clone().into();
    }
    if let Some(p) = r.pids_limit {
        res["pids"]["limit"] = p.into();
    }
}

impl Engine {
    /// Changes the limits set in `r` (the others stay): live on a running container,
    /// and for its later starts.
    pub fn update_container(&self, name: &str, r: &Resources) -> Result<()> {
        validate(r)?;
        let rec = self.container(name)?;
        // Not while a start or stop is under way.
        let _ops = self.containers.lock_ops(&rec.id)?;
        if rec.state.status.has_task() {
            apply_to_cgroup(&cgroups_path(&rec.id), r)?;
        }
        let spec_path = self.container_dir(&rec.id).join("config.json");
        if let Ok(bytes) = fs::read(&spec_path) {
            if let Ok(mut spec) = serde_json::from_slice::<serde_json::Value>(&bytes) {
                apply_to_spec(&mut spec, r);
                let tmp = spec_path.with_extension("json.tmp");
                let body = serde_json::to_vec_pretty(&spec)
                    .map_err(|e| EngineError::Internal(format!("encoding spec: {e}")))?;
                fs::write(&tmp, body).map_err(|e| EngineError::io("writing", &tmp, e))?;
                fs::rename(&tmp, &spec_path)
                    .map_err(|e| EngineError::io("replacing", &spec_path, e))?;
            }
        }
        // Only the limits change: the record is read again just before it is saved, so
        // an exit recorded meanwhile is kept.
        let mut rec = self.containers.find(&rec.id)?;
        let cur = &mut rec.options.resources;
        macro_rules! set {
            ($f:ident) => {
                if r.$f.is_some() {
                    cur.$f = r.$f.clone();
                }
            };
        }
        set!(memory);
        set!(memory_swap);
        set!(nano_cpus);
        set!(cpu_shares);
        set!(cpuset_cpus);
        set!(pids_limit);
        self.containers.save(&rec)?;
        self.container_event(&rec, "update", &[]);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_gets_only_the_set_limits() {
        let mut spec = serde_json::json!({"linux": {"resources": {"pids": {"limit": 5}}}});
        apply_to_spec(
            &mut spec,
            &Resources {
                memory: Some(64 << 20),
                nano_cpus: Some(1_500_000_000),
                ..Default::default()
            },
        );
        let res = &spec["linux"]["resources"];
        assert_eq!(res["memory"]["limit"], 64 << 20);
        assert_eq!(res["cpu"]["quota"], 150_000);
        assert_eq!(res["pids"]["limit"], 5);
    }
}
