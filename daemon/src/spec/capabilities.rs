//! The container's capability set: Docker's defaults tweaked by `--cap-add` and
//! `--cap-drop` (moby's `TweakCapabilities`), or everything when privileged.
//!
//! Names are accepted with or without the `CAP_` prefix, in any case; `ALL` in
//! `--cap-add` means every capability except the dropped ones, `ALL` in `--cap-drop`
//! means only the added ones. An unknown name is an error even when privileged.

use oci_spec::runtime::{Capabilities, Capability, LinuxCapabilities, LinuxCapabilitiesBuilder};

use super::defaults::{ALL_CAPABILITIES, DEFAULT_CAPABILITIES};
use super::error::{build_err, SpecError};

/// A parsed `--cap-add` / `--cap-drop` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CapArg {
    All,
    One(Capability),
}

fn parse_cap(option: &str, name: &str) -> Result<CapArg, SpecError> {
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("CAP_").unwrap_or(&upper);
    if bare == "ALL" {
        return Ok(CapArg::All);
    }
    ALL_CAPABILITIES
        .iter()
        .find(|(n, _)| *n == bare)
        .map(|(_, c)| CapArg::One(*c))
        .ok_or_else(|| SpecError::invalid(option, name, "unknown capability"))
}

/// The effective capability set of a container.
pub fn capability_set(
    cap_add: &[String],
    cap_drop: &[String],
    privileged: bool,
) -> Result<Capabilities, SpecError> {
    let adds = cap_add
        .iter()
        .map(|n| parse_cap("--cap-add", n))
        .collect::<Result<Vec<_>, _>>()?;
    let drops = cap_drop
        .iter()
        .map(|n| parse_cap("--cap-drop", n))
        .collect::<Result<Vec<_>, _>>()?;
    let all = || ALL_CAPABILITIES.iter().map(|(_, c)| *c);
    if privileged {
        return Ok(all().collect());
    }
    let dropped = |c: &Capability| drops.contains(&CapArg::One(*c));
    let added = adds.iter().filter_map(|a| match a {
        CapArg::One(c) => Some(*c),
        CapArg::All => None,
    });
    let set: Capabilities = if adds.contains(&CapArg::All) {
        all().filter(|c| !dropped(c)).collect()
    } else if drops.contains(&CapArg::All) {
        added.collect()
    } else {
        DEFAULT_CAPABILITIES
            .iter()
            .copied()
            .filter(|c| !dropped(c))
            .chain(added)
            .collect()
    };
    Ok(set)
}

/// The process capabilities for a set: bounding, effective and permitted (not
/// inheritable or ambient, as Docker does for the container's first process).
///
/// Capabilities the host's bounding set lacks (here CAP_SYS_RESOURCE) cannot be given
/// to a container by anyone; they are left out rather than failing the start.
pub fn linux_capabilities(set: &Capabilities) -> Result<LinuxCapabilities, SpecError> {
    let bounding = host_bounding_set();
    let set: Capabilities = set
        .iter()
        .filter(|c| match (bounding, cap_bit(c)) {
            (Some(mask), Some(bit)) => mask & (1u64 << bit) != 0,
            _ => true,
        })
        .copied()
        .collect();
    let set = &set;
    let mut caps = LinuxCapabilitiesBuilder::default()
        .bounding(set.clone())
        .effective(set.clone())
        .permitted(set.clone())
        .build()
        .map_err(build_err("capabilities"))?;
    // oci-spec's builders start from the type's Default, which has a few of each.
    caps.set_inheritable(None);
    caps.set_ambient(None);
    Ok(caps)
}

/// The kernel's number of a capability (CAP_CHOWN = 0 ... CAP_CHECKPOINT_RESTORE = 40).
fn cap_bit(c: &Capability) -> Option<u32> {
    const NAMES: [&str; 41] = [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ];
    let name = serde_json::to_value(c).ok()?;
    let name = name.as_str()?.strip_prefix("CAP_")?;
    NAMES.iter().position(|n| *n == name).map(|p| p as u32)
}

/// The bounding set this process runs with (what any child can have at most).
fn host_bounding_set() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))?
        .trim();
    u64::from_str_radix(hex, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn defaults() {
        let set = capability_set(&[], &[], false).unwrap();
        assert_eq!(set.len(), 14);
        assert!(set.contains(&Capability::Chown));
        assert!(set.contains(&Capability::AuditWrite));
        assert!(!set.contains(&Capability::SysAdmin));
        assert!(!set.contains(&Capability::NetAdmin));
    }

    #[test]
    fn add_and_drop_with_any_spelling() {
        let set = capability_set(
            &s(&["NET_ADMIN", "cap_sys_ptrace", "Sys_Time"]),
            &s(&["CAP_CHOWN", "mknod"]),
            false,
        )
        .unwrap();
        assert!(set.contains(&Capability::NetAdmin));
        assert!(set.contains(&Capability::SysPtrace));
        assert!(set.contains(&Capability::SysTime));
        assert!(!set.contains(&Capability::Chown));
        assert!(!set.contains(&Capability::Mknod));
        assert_eq!(set.len(), 14 + 3 - 2);
    }

    #[test]
    fn all() {
        let set = capability_set(&s(&["ALL"]), &s(&["NET_RAW"]), false).unwrap();
        assert_eq!(set.len(), 40);
        assert!(!set.contains(&Capability::NetRaw));
        assert!(set.contains(&Capability::SysAdmin));

        let set = capability_set(&s(&["chown"]), &s(&["all"]), false).unwrap();
        assert_eq!(set.into_iter().collect::<Vec<_>>(), vec![Capability::Chown]);

        let set = capability_set(&[], &s(&["CAP_ALL"]), false).unwrap();
        assert!(set.is_empty());
    }

    #[test]
    fn unknown_names_are_errors() {
        let err = capability_set(&s(&["NET_ADMINN"]), &[], false).unwrap_err();
        assert!(
            matches!(&err, SpecError::InvalidOption { option, value, .. }
            if option == "--cap-add" && value == "NET_ADMINN")
        );
        assert!(err.to_string().contains("NET_ADMINN"));
        let err = capability_set(&[], &s(&["CAP_"]), false).unwrap_err();
        assert!(matches!(&err, SpecError::InvalidOption { option, .. } if option == "--cap-drop"));
        assert!(capability_set(&s(&["bogus"]), &[], true).is_err());
    }

    #[test]
    fn capabilities_outside_the_hosts_bounding_set_are_left_out() {
        let set = capability_set(&s(&["ALL"]), &[], false).unwrap();
        let caps = linux_capabilities(&set).unwrap();
        let bounding = host_bounding_set().unwrap();
        let granted = caps.bounding().clone().unwrap_or_default();
        assert!(granted
            .iter()
            .all(|c| bounding & (1 << cap_bit(c).unwrap()) != 0));
        assert_eq!(cap_bit(&Capability::Chown), Some(0));
        assert_eq!(cap_bit(&Capability::SysResource), Some(24));
    }

    #[test]
    fn privileged_gets_everything() {
        let set = capability_set(&[], &s(&["CHOWN"]), true).unwrap();
        assert_eq!(set.len(), ALL_CAPABILITIES.len());
        let caps = linux_capabilities(&set).unwrap();
        // Every capability this host's bounding set has (CAP_SYS_RESOURCE is missing here).
        let host = host_bounding_set()
            .map(|m| m.count_ones() as usize)
            .unwrap_or(41)
            .min(41);
        assert_eq!(caps.bounding().as_ref().map(|b| b.len()), Some(host));
        assert!(caps.ambient().is_none());
        assert!(caps.inheritable().is_none());
    }
}
