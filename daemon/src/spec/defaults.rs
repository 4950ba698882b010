//! Docker's defaults for a container: capabilities, masked and read-only paths, the
//! standard mounts and the device-cgroup rules.
//!
//! Device nodes: `linux.devices` stays empty. youki's libcontainer 0.7.0 creates
//! `/dev/null`, `/dev/zero`, `/dev/full`, `/dev/tty`, `/dev/urandom` and `/dev/random`
//! (mode 0666) itself (`rootfs::utils::default_devices`, merged with any
//! `linux.devices` in `RootFS::prepare_rootfs`), adds the `/dev/fd`, `/dev/std*`,
//! `/dev/kcore` and `/dev/ptmx -> pts/ptmx` symlinks, and libcgroups 0.7.0's devices
//! controller (v1, and v2 with `cgroupsv2_devices`) always appends allow rules for those
//! six devices plus `c *:* m`, `b *:* m`, `c 5:1`, `c 136:*`, `c 5:2` and `c 10:200`
//! (rwm) *after* the spec's rules. The rules below state Docker's full list anyway, so
//! the spec says what the container gets whichever runtime reads it.

use std::path::PathBuf;

use oci_spec::runtime::{
    Capability, LinuxDeviceCgroup, LinuxDeviceCgroupBuilder, LinuxDeviceType, Mount, MountBuilder,
};

use super::error::{build_err, SpecError};

/// `PATH` when neither the image nor the user sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Docker's default capability set (bounding, effective and permitted).
pub const DEFAULT_CAPABILITIES: [Capability; 14] = [
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Every capability by its name without the `CAP_` prefix (Linux 5.9+: 41 of them).
pub const ALL_CAPABILITIES: [(&str, Capability); 41] = [
    ("CHOWN", Capability::Chown),
    ("DAC_OVERRIDE", Capability::DacOverride),
    ("DAC_READ_SEARCH", Capability::DacReadSearch),
    ("FOWNER", Capability::Fowner),
    ("FSETID", Capability::Fsetid),
    ("KILL", Capability::Kill),
    ("SETGID", Capability::Setgid),
    ("SETUID", Capability::Setuid),
    ("SETPCAP", Capability::Setpcap),
    ("LINUX_IMMUTABLE", Capability::LinuxImmutable),
    ("NET_BIND_SERVICE", Capability::NetBindService),
    ("NET_BROADCAST", Capability::NetBroadcast),
    ("NET_ADMIN", Capability::NetAdmin),
    ("NET_RAW", Capability::NetRaw),
    ("IPC_LOCK", Capability::IpcLock),
    ("IPC_OWNER", Capability::IpcOwner),
    ("SYS_MODULE", Capability::SysModule),
    ("SYS_RAWIO", Capability::SysRawio),
    ("SYS_CHROOT", Capability::SysChroot),
    ("SYS_PTRACE", Capability::SysPtrace),
    ("SYS_PACCT", Capability::SysPacct),
    ("SYS_ADMIN", Capability::SysAdmin),
    ("SYS_BOOT", Capability::SysBoot),
    ("SYS_NICE", Capability::SysNice),
    ("SYS_RESOURCE", Capability::SysResource),
    ("SYS_TIME", Capability::SysTime),
    ("SYS_TTY_CONFIG", Capability::SysTtyConfig),
    ("MKNOD", Capability::Mknod),
    ("LEASE", Capability::Lease),
    ("AUDIT_WRITE", Capability::AuditWrite),
    ("AUDIT_CONTROL", Capability::AuditControl),
    ("SETFCAP", Capability::Setfcap),
    ("MAC_OVERRIDE", Capability::MacOverride),
    ("MAC_ADMIN", Capability::MacAdmin),
    ("SYSLOG", Capability::Syslog),
    ("WAKE_ALARM", Capability::WakeAlarm),
    ("BLOCK_SUSPEND", Capability::BlockSuspend),
    ("AUDIT_READ", Capability::AuditRead),
    ("PERFMON", Capability::Perfmon),
    ("BPF", Capability::Bpf),
    ("CHECKPOINT_RESTORE", Capability::CheckpointRestore),
];

/// Paths hidden from unprivileged containers (a bind of `/dev/null` or an empty tmpfs).
pub const MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

/// Paths made read-only in unprivileged containers.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// The standard mounts of every container, in mount order. `/sys` is read-only unless
/// `privileged`; `/sys/fs/cgroup` is always read-only (Docker's default).
pub fn default_mounts(privileged: bool) -> Result<Vec<Mount>, SpecError> {
    let sys_mode = if privileged { "rw" } else { "ro" };
    [
        ("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"][..]),
        (
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"][..],
        ),
        (
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ][..],
        ),
        (
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", sys_mode][..],
        ),
        (
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"][..],
        ),
        (
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"][..],
        ),
        (
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=67108864"][..],
        ),
    ]
    .into_iter()
    .map(|(destination, typ, source, options)| {
        MountBuilder::default()
            .destination(PathBuf::from(destination))
            .typ(typ)
            .source(PathBuf::from(source))
            .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
            .build()
            .map_err(build_err("default mounts"))
    })
    .collect()
}

/// Docker's device-cgroup rules: everything allowed when `privileged`; otherwise deny
/// all, then allow `mknod` of any device and read/write of the standard devices
/// (null, zero, full, random, urandom, tty, console, ptmx, pty slaves, tun).
pub fn default_device_rules(privileged: bool) -> Result<Vec<LinuxDeviceCgroup>, SpecError> {
    let rule = |allow: bool,
                typ: Option<LinuxDeviceType>,
                major: Option<i64>,
                minor: Option<i64>,
                access: &str| {
        let mut b = LinuxDeviceCgroupBuilder::default()
            .allow(allow)
            .access(access.to_string());
        if let Some(typ) = typ {
            b = b.typ(typ);
        }
        if let Some(major) = major {
            b = b.major(major);
        }
        if let Some(minor) = minor {
            b = b.minor(minor);
        }
        b.build().map_err(build_err("device cgroup rules"))
    };
    if privileged {
        return Ok(vec![rule(
            true,
            Some(LinuxDeviceType::A),
            None,
            None,
            "rwm",
        )?]);
    }
    let c = Some(LinuxDeviceType::C);
    Ok(vec![
        rule(false, Some(LinuxDeviceType::A), None, None, "rwm")?,
        rule(true, c, None, None, "m")?,
        rule(true, Some(LinuxDeviceType::B), None, None, "m")?,
        rule(true, c, Some(1), Some(3), "rwm")?,
        rule(true, c, Some(1), Some(5), "rwm")?,
        rule(true, c, Some(1), Some(7), "rwm")?,
        rule(true, c, Some(1), Some(8), "rwm")?,
        rule(true, c, Some(1), Some(9), "rwm")?,
        rule(true, c, Some(5), Some(0), "rwm")?,
        rule(true, c, Some(5), Some(1), "rwm")?,
        rule(true, c, Some(5), Some(2), "rwm")?,
        rule(true, c, Some(136), None, "rwm")?,
        rule(true, c, Some(10), Some(200), "rwm")?,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_match_oci_spec() {
        for (name, cap) in ALL_CAPABILITIES {
            assert_eq!(cap.to_string(), name);
        }
        for cap in DEFAULT_CAPABILITIES {
            assert!(ALL_CAPABILITIES.iter().any(|(_, c)| *c == cap));
        }
    }

    #[test]
    fn device_rules_as_cgroup_lines() {
        let lines: Vec<String> = default_device_rules(false)
            .unwrap()
            .iter()
            .map(|r| format!("{} {r}", if r.allow() { "allow" } else { "deny" }))
            .collect();
        assert_eq!(lines[0], "deny a *:* rwm");
        assert!(lines.contains(&"allow c *:* m".to_string()));
        assert!(lines.contains(&"allow b *:* m".to_string()));
        assert!(lines.contains(&"allow c 136:* rwm".to_string()));
        assert!(lines.contains(&"allow c 10:200 rwm".to_string()));
        let privileged = default_device_rules(true).unwrap();
        assert_eq!(privileged.len(), 1);
        assert_eq!(privileged[0].to_string(), "a *:* rwm");
        assert!(privileged[0].allow());
    }

    #[test]
    fn sys_is_read_only_unless_privileged() {
        let opts = |privileged| {
            default_mounts(privileged)
                .unwrap()
                .into_iter()
                .find(|m| m.destination() == &PathBuf::from("/sys"))
                .and_then(|m| m.options().clone())
                .unwrap()
        };
        assert!(opts(false).contains(&"ro".to_string()));
        assert!(opts(true).contains(&"rw".to_string()));
    }
}
