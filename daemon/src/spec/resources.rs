//! cgroup limits (`linux.resources`) from the user's [`Resources`], with Docker's
//! parsing and validation of `-m`, `--memory-swap`, `--cpus`, `--cpu-shares`,
//! `--cpuset-cpus` and `--pids-limit`.
//!
//! In [`Resources`] a value of 0 means "not set", as in the Docker API.

use oci_spec::runtime::{
    LinuxCpu, LinuxCpuBuilder, LinuxMemory, LinuxMemoryBuilder, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder,
};

use super::defaults::default_device_rules;
use super::error::{build_err, SpecError};
use crate::container::options::Resources;

/// Docker's minimum memory limit (`-m`): 6 MiB.
pub const MIN_MEMORY: i64 = 6 * 1024 * 1024;
/// The CFS period used for `--cpus`, in microseconds.
pub const CPU_PERIOD_US: u64 = 100_000;
/// The smallest `--cpus` in nano CPUs (0.01 CPU: a 1 ms quota per 100 ms period).
pub const MIN_NANO_CPUS: i64 = 10_000_000;
/// cgroup v1 `cpu.shares` bounds; Docker clamps to them.
const MIN_CPU_SHARES: u64 = 2;
const MAX_CPU_SHARES: u64 = 262_144;

/// Parses Docker's memory size strings (`"512m"`, `"1g"`, `"1.5GiB"`, `"100000"`: a
/// decimal number, an optional `b`/`k`/`m`/`g`/`t`/`p` binary unit, optional `i`/`b`)
/// into bytes. Errors on garbage, negative values and values below Docker's 6 MiB
/// minimum; `"0"` gives 0, which means no limit as in Docker.
pub fn parse_memory(s: &str) -> Result<i64, SpecError> {
    let invalid = |why: &str| SpecError::invalid("--memory", s, why);
    let bytes = parse_ram_size(s.trim()).ok_or_else(|| invalid("invalid size"))?;
    let bytes = i64::try_from(bytes).map_err(|_| invalid("too large"))?;
    if bytes != 0 && bytes < MIN_MEMORY {
        return Err(invalid("minimum memory limit allowed is 6MB"));
    }
    Ok(bytes)
}

/// go-units' `RAMInBytes` grammar, computed exactly (the fraction truncates to bytes).
fn parse_ram_size(s: &str) -> Option<u128> {
    let num_end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, suffix) = s.split_at(num_end);
    let (int_part, frac_part) = match number.split_once('.') {
        Some((i, f)) => (i, f),
        None => (number, ""),
    };
    if int_part.is_empty()
        || (number.contains('.') && frac_part.is_empty())
        || frac_part.contains('.')
    {
        return None;
    }
    let suffix = suffix
        .strip_prefix(' ')
        .unwrap_or(suffix)
        .to_ascii_lowercase();
    let mut rest = suffix.as_str();
    let unit: u128 = match rest.chars().next() {
        Some(c @ ('k' | 'm' | 'g' | 't' | 'p')) => {
            rest = &rest[1..];
            1u128 << (10 * (1 + "kmgtp".find(c)?))
        }
        _ => 1,
    };
    let rest = rest.strip_prefix('i').unwrap_or(rest);
    let rest = rest.strip_prefix('b').unwrap_or(rest);
    if !rest.is_empty() {
        return None;
    }
    let int: u128 = int_part.parse().ok()?;
    let mut total = int.checked_mul(unit)?;
    if !frac_part.is_empty() {
        let digits = &frac_part[..frac_part.len().min(30)];
        let frac: u128 = digits.parse().ok()?;
        total = total
            .checked_add(frac.checked_mul(unit)? / 10u128.checked_pow(digits.len() as u32)?)?;
    }
    Some(total)
}

/// Parses `--cpus` (`"1.5"`, `".5"`, `"2"`) into nano CPUs. Rejects garbage (including
/// `NaN` and exponents), values <= 0, values below 0.01, more than 9 decimals, and more
/// than `host_cpus` CPUs.
pub fn parse_cpus(s: &str, host_cpus: usize) -> Result<i64, SpecError> {
    let invalid = |why: String| SpecError::invalid("--cpus", s, why);
    let t = s.trim();
    let (int_part, frac_part) = t.split_once('.').unwrap_or((t, ""));
    let digits_only = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty())
        || !digits_only(int_part)
        || !digits_only(frac_part)
    {
        return Err(invalid("not a decimal number".into()));
    }
    let frac = frac_part.trim_end_matches('0');
    if frac.len() > 9 {
        return Err(invalid("value is too precise (at most 9 decimals)".into()));
    }
    let int: i64 = if int_part.is_empty() {
        0
    } else {
        int_part
            .parse::<i64>()
            .map_err(|_| invalid("too large".into()))?
    };
    let frac_nanos: i64 = if frac.is_empty() {
        0
    } else {
        // `frac` is at most 9 digits, so this fits.
        format!("{frac:0<9}")
            .parse()
            .map_err(|_| invalid("not a decimal number".into()))?
    };
    let nanos = int
        .checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac_nanos))
        .ok_or_else(|| invalid("too large".into()))?;
    if nanos <= 0 {
        return Err(invalid("must be greater than 0".into()));
    }
    let max = i64::try_from(host_cpus)
        .ok()
        .and_then(|n| n.checked_mul(1_000_000_000))
        .unwrap_or(i64::MAX);
    if nanos < MIN_NANO_CPUS || nanos > max {
        return Err(invalid(format!(
            "range of CPUs is from 0.01 to {host_cpus}.00, as there are only {host_cpus} CPUs available"
        )));
    }
    Ok(nanos)
}

/// Validates a `--cpuset-cpus` / `--cpuset-mems` list: comma-separated numbers or
/// `N-M` ranges with `N <= M` (`"0-1,3"`), no blanks.
pub fn validate_cpuset(option: &str, s: &str) -> Result<(), SpecError> {
    let invalid = |why: &str| SpecError::invalid(option, s, why);
    if s.is_empty() {
        return Err(invalid("empty list"));
    }
    let number = |p: &str| -> Result<u32, SpecError> {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("expected numbers or ranges like 0-1,3"));
        }
        p.parse().map_err(|_| invalid("number too large"))
    };
    for part in s.split(',') {
        match part.split_once('-') {
            Some((lo, hi)) => {
                if number(lo)? > number(hi)? {
                    return Err(invalid("range start is greater than its end"));
                }
            }
            None => {
                number(part)?;
            }
        }
    }
    Ok(())
}

/// `linux.resources` for a container: the device-cgroup rules (see
/// [`default_device_rules`]) and the user's limits, validated.
pub fn linux_resources(res: &Resources, privileged: bool) -> Result<LinuxResources, SpecError> {
    let mut b = LinuxResourcesBuilder::default().devices(default_device_rules(privileged)?);
    if let Some(memory) = memory(res)? {
        b = b.memory(memory);
    }
    if let Some(cpu) = cpu(res)? {
        b = b.cpu(cpu);
    }
    if let Some(limit) = res.pids_limit.filter(|&l| l > 0) {
        b = b.pids(
            LinuxPidsBuilder::default()
                .limit(limit)
                .build()
                .map_err(build_err("pids"))?,
        );
    }
    b.build().map_err(build_err("resources"))
}

/// Docker's memory rules: a limit of 0 is none; swap (memory+swap) defaults to twice
/// the limit; -1 is unlimited swap; swap needs a limit and may not be below it.
fn memory(res: &Resources) -> Result<Option<LinuxMemory>, SpecError> {
    let mem = res.memory.unwrap_or(0);
    let swap = res.memory_swap.unwrap_or(0);
    if mem < 0 {
        return Err(SpecError::invalid(
            "--memory",
            mem.to_string(),
            "must not be negative",
        ));
    }
    if mem > 0 && mem < MIN_MEMORY {
        return Err(SpecError::invalid(
            "--memory",
            mem.to_string(),
            "minimum memory limit allowed is 6MB",
        ));
    }
    if swap < -1 {
        return Err(SpecError::invalid(
            "--memory-swap",
            swap.to_string(),
            "must be -1 (unlimited) or a size",
        ));
    }
    if swap > 0 && mem == 0 {
        return Err(SpecError::invalid(
            "--memory-swap",
            swap.to_string(),
            "you should always set the memory limit when using a memory-swap limit",
        ));
    }
    if swap > 0 && swap < mem {
        return Err(SpecError::invalid(
            "--memory-swap",
            swap.to_string(),
            format!("memory+swap limit must be larger than the memory limit ({mem})"),
        ));
    }
    let mut b = LinuxMemoryBuilder::default();
    let mut any = false;
    if mem > 0 {
        b = b.limit(mem);
        // Docker: with -m and no --memory-swap, swap may add as much again.
        b = b.swap(if swap == 0 {
            mem.saturating_mul(2)
        } else {
            swap
        });
        any = true;
    } else if swap == -1 {
        b = b.swap(-1);
        any = true;
    }
    if !any {
        return Ok(None);
    }
    b.build().map(Some).map_err(build_err("memory"))
}

fn cpu(res: &Resources) -> Result<Option<LinuxCpu>, SpecError> {
    let mut b = LinuxCpuBuilder::default();
    let mut any = false;
    match res.nano_cpus.unwrap_or(0) {
        0 => {}
        n if n < MIN_NANO_CPUS => {
            return Err(SpecError::invalid(
                "--cpus",
                format!("{}", n as f64 / 1e9),
                "must be at least 0.01",
            ))
        }
        n => {
            // quota = nano * period / 1e9, with period 100000us.
            b = b
                .period(CPU_PERIOD_US)
                .quota(n / (1_000_000_000 / CPU_PERIOD_US as i64));
            any = true;
        }
    }
    if let Some(shares) = res.cpu_shares.filter(|&s| s > 0) {
        b = b.shares(shares.clamp(MIN_CPU_SHARES, MAX_CPU_SHARES));
        any = true;
    }
    if let Some(cpus) = res.cpuset_cpus.as_deref().filter(|c| !c.is_empty()) {
        validate_cpuset("--cpuset-cpus", cpus)?;
        b = b.cpus(cpus.to_string());
        any = true;
    }
    if !any {
        return Ok(None);
    }
    b.build().map(Some).map_err(build_err("cpu"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: i64 = 1024 * 1024;

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("512m").unwrap(), 512 * MIB);
        assert_eq!(parse_memory("512M").unwrap(), 512 * MIB);
        assert_eq!(parse_memory("1g").unwrap(), 1024 * MIB);
        assert_eq!(parse_memory("1GiB").unwrap(), 1024 * MIB);
        assert_eq!(parse_memory("1gb").unwrap(), 1024 * MIB);
        assert_eq!(parse_memory("1.5g").unwrap(), 1536 * MIB);
        assert_eq!(parse_memory("10000000").unwrap(), 10_000_000);
        assert_eq!(parse_memory("10000000b").unwrap(), 10_000_000);
        assert_eq!(parse_memory("6m").unwrap(), 6 * MIB);
        assert_eq!(parse_memory("8192k").unwrap(), 8 * MIB);
        assert_eq!(parse_memory("1t").unwrap(), 1024 * 1024 * MIB);
        assert_eq!(parse_memory("0").unwrap(), 0);
    }

    #[test]
    fn memory_errors() {
        for bad in [
            "",
            "abc",
            "-1",
            "-512m",
            "1x",
            "1..5g",
            "1.g",
            ".5g",
            "1 g b",
            "m",
            "12mm",
            "1e9",
            "99999999999999999999p",
        ] {
            let err = parse_memory(bad).unwrap_err();
            assert!(
                matches!(&err, SpecError::InvalidOption { option, value, .. } if option == "--memory" && value == bad),
                "{bad}: {err}"
            );
        }
        let err = parse_memory("4m").unwrap_err();
        assert!(err.to_string().contains("6MB"), "{err}");
        assert!(parse_memory("100000").is_err());
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus("1.5", 2).unwrap(), 1_500_000_000);
        assert_eq!(parse_cpus("2", 2).unwrap(), 2_000_000_000);
        assert_eq!(parse_cpus(".5", 2).unwrap(), 500_000_000);
        assert_eq!(parse_cpus("0.01", 1).unwrap(), 10_000_000);
        assert_eq!(parse_cpus("1.000000000000", 1).unwrap(), 1_000_000_000);
        assert_eq!(parse_cpus("0.123456789", 1).unwrap(), 123_456_789);
    }

    #[test]
    fn cpus_errors() {
        for bad in [
            "0",
            "0.0",
            "-1",
            "NaN",
            "nan",
            "inf",
            "",
            ".",
            "1e3",
            "1.5.1",
            "abc",
            "0.001",
            "0.1234567891",
            "3",
            "2.000000001",
            "99999999999999999999",
        ] {
            let err = parse_cpus(bad, 2).unwrap_err();
            assert!(
                matches!(&err, SpecError::InvalidOption { option, value, .. } if option == "--cpus" && value == bad),
                "{bad}: {err}"
            );
        }
        assert!(parse_cpus("3", 2)
            .unwrap_err()
            .to_string()
            .contains("only 2 CPUs"));
    }

    #[test]
    fn cpusets() {
        for good in ["0", "0-1", "0-1,3", "0,2,4-7", "1-1"] {
            validate_cpuset("--cpuset-cpus", good).unwrap();
        }
        for bad in [
            "", "a", "0-", "-1", "1,", ",1", "3-1", "0 - 1", "0-1-2", "1;2",
        ] {
            assert!(validate_cpuset("--cpuset-cpus", bad).is_err(), "{bad}");
        }
    }

    fn res(f: impl FnOnce(&mut Resources)) -> Resources {
        let mut r = Resources::default();
        f(&mut r);
        r
    }

    #[test]
    fn memory_and_swap() {
        let r = linux_resources(&res(|r| r.memory = Some(64 * MIB)), false).unwrap();
        let m = r.memory().unwrap();
        assert_eq!(m.limit(), Some(64 * MIB));
        assert_eq!(m.swap(), Some(128 * MIB));

        let r = linux_resources(
            &res(|r| {
                r.memory = Some(64 * MIB);
                r.memory_swap = Some(-1)
            }),
            false,
        )
        .unwrap();
        assert_eq!(r.memory().unwrap().swap(), Some(-1));

        let r = linux_resources(
            &res(|r| {
                r.memory = Some(64 * MIB);
                r.memory_swap = Some(64 * MIB)
            }),
            false,
        )
        .unwrap();
        assert_eq!(r.memory().unwrap().swap(), Some(64 * MIB));

        // Nothing set: no memory section; a 0 is "not set".
        assert!(linux_resources(&Resources::default(), false)
            .unwrap()
            .memory()
            .is_none());
        assert!(linux_resources(&res(|r| r.memory = Some(0)), false)
            .unwrap()
            .memory()
            .is_none());
    }

    #[test]
    fn memory_and_swap_errors() {
        let cases: [(Option<i64>, Option<i64>, &str); 5] = [
            (Some(64 * MIB), Some(32 * MIB), "--memory-swap"),
            (None, Some(64 * MIB), "--memory-swap"),
            (Some(64 * MIB), Some(-2), "--memory-swap"),
            (Some(MIB), None, "--memory"),
            (Some(-5), None, "--memory"),
        ];
        for (memory, swap, opt) in cases {
            let err = linux_resources(
                &res(|r| {
                    r.memory = memory;
                    r.memory_swap = swap
                }),
                false,
            )
            .unwrap_err();
            assert!(
                matches!(&err, SpecError::InvalidOption { option, .. } if option == opt),
                "{memory:?} {swap:?}: {err}"
            );
        }
    }

    #[test]
    fn cpu_limits() {
        let r = linux_resources(
            &res(|r| {
                r.nano_cpus = Some(1_500_000_000);
                r.cpu_shares = Some(512);
                r.cpuset_cpus = Some("0-1".into())
            }),
            false,
        )
        .unwrap();
        let cpu = r.cpu().as_ref().unwrap();
        assert_eq!(cpu.period(), Some(100_000));
        assert_eq!(cpu.quota(), Some(150_000));
        assert_eq!(cpu.shares(), Some(512));
        assert_eq!(cpu.cpus().as_deref(), Some("0-1"));

        let r = linux_resources(&res(|r| r.cpu_shares = Some(1)), false).unwrap();
        assert_eq!(r.cpu().as_ref().unwrap().shares(), Some(2));
        assert!(linux_resources(&Resources::default(), false)
            .unwrap()
            .cpu()
            .is_none());
        assert!(linux_resources(&res(|r| r.nano_cpus = Some(1000)), false).is_err());
        let err = linux_resources(&res(|r| r.cpuset_cpus = Some("1-0".into())), false).unwrap_err();
        assert!(
            matches!(&err, SpecError::InvalidOption { option, .. } if option == "--cpuset-cpus")
        );
    }

    #[test]
    fn pids() {
        let r = linux_resources(&res(|r| r.pids_limit = Some(100)), false).unwrap();
        assert_eq!(r.pids().unwrap().limit(), 100);
        for unlimited in [Some(0), Some(-1), None] {
            let r = linux_resources(&res(|r| r.pids_limit = unlimited), false).unwrap();
            assert!(r.pids().is_none());
        }
    }
}
