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
pub fn linux_capabilities(set: &Capabilities) -> Result<LinuxCapabilities, SpecError> {
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
    fn privileged_gets_everything() {
        let set = capability_set(&[], &s(&["CHOWN"]), true).unwrap();
        assert_eq!(set.len(), ALL_CAPABILITIES.len());
        let caps = linux_capabilities(&set).unwrap();
        assert_eq!(caps.bounding().as_ref().map(|b| b.len()), Some(41));
        assert!(caps.ambient().is_none());
        assert!(caps.inheritable().is_none());
    }
}
