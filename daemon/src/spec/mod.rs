//! OCI runtime-spec generation: the pure function every container start calls, turning
//! an image's runtime config and the user's [`CreateOptions`] into the `config.json` of
//! an OCI bundle, with Docker's semantics and defaults.
//!
//! Nothing here mounts, spawns or writes. The only side effects are reading the
//! image's `/etc/passwd` and `/etc/group` (without leaving the image's root view),
//! checking that bind-mount sources exist, and one `getrlimit`.
//!
//! One concern per module: [`image_config`] (the image's `config` object), [`process`]
//! (args, env, cwd), [`user`] (passwd/group lookup), [`capabilities`], [`defaults`]
//! (Docker's default capabilities, masked and read-only paths, mounts, device rules),
//! [`mounts`] (volumes, tmpfs, init, engine mounts), [`resources`] (cgroup limits),
//! [`seccomp`] (the default profile), [`rlimits`] and [`error`].

use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBuilder, LinuxNamespace, LinuxNamespaceBuilder, LinuxNamespaceType, Mount, ProcessBuilder,
    RootBuilder, Spec, SpecBuilder, UserBuilder, VERSION,
};

use crate::container::options::{CreateOptions, NetworkMode};

pub mod capabilities;
pub mod defaults;
pub mod error;
pub mod image_config;
pub mod mounts;
pub mod process;
pub mod resources;
pub mod rlimits;
pub mod seccomp;
pub mod user;

pub use error::SpecError;
pub use image_config::ImageRuntimeConfig;
pub use mounts::INIT_PATH_IN_CONTAINER;
pub use resources::{parse_cpus, parse_memory, validate_cpuset};
pub use user::resolve_user;

use error::build_err;

/// Longest hostname Linux accepts (`HOST_NAME_MAX`).
const MAX_HOSTNAME: usize = 64;

/// Everything [`build_spec`] needs besides the user's options.
pub struct SpecInputs<'a> {
    /// The full container id (64 hex digits); its first 12 characters are the default
    /// hostname.
    pub id: &'a str,
    /// What the user asked for.
    pub options: &'a CreateOptions,
    /// The image's runtime config.
    pub image: &'a ImageRuntimeConfig,
    /// Absolute path of the (mounted or to-be-mounted) rootfs in the bundle:
    /// `root.path`.
    pub rootfs: &'a Path,
    /// A directory where the image's files can be read (for `/etc/passwd` and
    /// `/etc/group`).
    pub image_rootfs_view: &'a Path,
    /// `linux.cgroupsPath`, e.g. `/skiff/<id>`. Always set: on cgroup v1 an unset path
    /// makes libcontainer create literal `/:youki:<id>` cgroups.
    pub cgroups_path: String,
    /// Bind mounts the engine prepared (`/etc/hosts`, `/etc/resolv.conf`,
    /// `/etc/hostname`); a user mount at the same destination replaces one.
    pub extra_mounts: Vec<Mount>,
    /// Where named volumes live: `-v NAME:/dst` mounts `<volume_root>/NAME/_data`
    /// (created by the engine; only referenced here).
    pub volume_root: &'a Path,
    /// The value of a bare `-e KEY` in the caller's environment (`None` drops it).
    pub host_env: &'a dyn Fn(&str) -> Option<String>,
    /// With `options.init`: the host path of the init binary, bind-mounted read-only at
    /// `/sbin/skiff-init`, which then runs as `/sbin/skiff-init -- <args>`.
    pub init_path: Option<&'a Path>,
}

/// Builds the OCI runtime spec for a container.
///
/// Namespaces: pid, mount, ipc, uts and network, except that the network namespace is
/// left out with [`NetworkMode::Host`]. With [`NetworkMode::Container`] the network
/// namespace entry has no path yet: the engine sets it to the other container's
/// `/proc/<pid>/ns/net` before starting. No cgroup namespace.
///
/// Privileged containers get every capability, no masked or read-only paths, no
/// seccomp profile, a read-write `/sys` and access to every device in the device
/// cgroup (the device nodes themselves are not added here).
pub fn build_spec(inputs: &SpecInputs) -> Result<Spec, SpecError> {
    let options = inputs.options;
    let image = inputs.image;

    if inputs.id.is_empty() {
        return Err(SpecError::invalid("container id", "", "must not be empty"));
    }
    if !inputs.cgroups_path.starts_with('/') {
        return Err(SpecError::invalid(
            "cgroups path",
            &inputs.cgroups_path,
            "must be an absolute path",
        ));
    }

    let args = process::process_args(options, image)?;
    let caps =
        capabilities::capability_set(&options.cap_add, &options.cap_drop, options.privileged)?;
    let user_spec = options
        .user
        .as_deref()
        .filter(|u| !u.is_empty())
        .or(image.user.as_deref())
        .unwrap_or("");
    let user = user::resolve_user_full(inputs.image_rootfs_view, user_spec)?;
    let hostname = hostname(options, inputs.id)?;
    let env = process::process_env(options, image, &hostname, &user.home, inputs.host_env)?;
    let cwd = process::process_cwd(options, image)?;
    let mounts = mounts::container_mounts(
        options,
        inputs.volume_root,
        inputs.extra_mounts.clone(),
        inputs.init_path,
    )?;
    let resources = resources::linux_resources(&options.resources, options.privileged)?;

    let mut user_builder = UserBuilder::default().uid(user.uid).gid(user.gid);
    if !user.additional_gids.is_empty() {
        user_builder = user_builder.additional_gids(user.additional_gids.clone());
    }
    let process = ProcessBuilder::default()
        .terminal(options.tty)
        .user(user_builder.build().map_err(build_err("user"))?)
        .args(args)
        .env(env)
        .cwd(PathBuf::from(cwd))
        .capabilities(capabilities::linux_capabilities(&caps)?)
        .rlimits(rlimits::default_rlimits()?)
        .build()
        .map_err(build_err("process"))?;
    // Unset (not false) unless asked for: libcontainer then loads the seccomp filter
    // while the init still has CAP_SYS_ADMIN, as runc does; with an explicit false it
    // loads it after dropping capabilities and the kernel refuses.
    let mut process = process;
    process.set_no_new_privileges(options.no_new_privileges.then_some(true));

    let root = RootBuilder::default()
        .path(inputs.rootfs.to_path_buf())
        .readonly(options.read_only)
        .build()
        .map_err(build_err("root"))?;

    // oci-spec's builders start from each type's Default (which has masked paths,
    // annotations, a `sh` process, ...): every field that matters is set explicitly.
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces(&options.network)?)
        .resources(resources)
        .cgroups_path(PathBuf::from(&inputs.cgroups_path))
        .build()
        .map_err(build_err("linux"))?;
    linux.set_devices(None);
    if options.privileged {
        linux.set_masked_paths(None);
        linux.set_readonly_paths(None);
        linux.set_seccomp(None);
    } else {
        linux.set_masked_paths(Some(to_strings(&defaults::MASKED_PATHS)));
        linux.set_readonly_paths(Some(to_strings(&defaults::READONLY_PATHS)));
        if !options.seccomp_unconfined {
            linux.set_seccomp(Some(seccomp::default_profile(&caps)?));
        }
    }

    let mut spec = SpecBuilder::default()
        .version(VERSION)
        .hostname(hostname)
        .root(root)
        .mounts(mounts)
        .process(process)
        .linux(linux)
        .build()
        .map_err(build_err("spec"))?;
    spec.set_annotations(None);
    Ok(spec)
}

fn to_strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// `--hostname`, or the first 12 characters of the id; at most 64 characters of
/// letters, digits, `-`, `.` and `_`.
fn hostname(options: &CreateOptions, id: &str) -> Result<String, SpecError> {
    let Some(name) = options.hostname.as_deref().filter(|h| !h.is_empty()) else {
        return Ok(id.get(..12).unwrap_or(id).to_string());
    };
    if name.len() > MAX_HOSTNAME {
        return Err(SpecError::invalid(
            "--hostname",
            name,
            format!("longer than {MAX_HOSTNAME} characters"),
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
    {
        return Err(SpecError::invalid(
            "--hostname",
            name,
            "only letters, digits, '-', '.' and '_' are allowed",
        ));
    }
    Ok(name.to_string())
}

/// pid, mount, ipc, uts, and network unless the host's is used.
fn namespaces(network: &NetworkMode) -> Result<Vec<LinuxNamespace>, SpecError> {
    let mut types = vec![
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
    ];
    match network {
        NetworkMode::Host => {}
        // Container(_), Bridge, Named(_): the engine fills in the namespace path at start.
        NetworkMode::None
        | NetworkMode::Bridge
        | NetworkMode::Container(_)
        | NetworkMode::Named(_) => types.push(LinuxNamespaceType::Network),
    }
    types
        .into_iter()
        .map(|typ| {
            LinuxNamespaceBuilder::default()
                .typ(typ)
                .build()
                .map_err(build_err("namespaces"))
        })
        .collect()
}

#[cfg(test)]
mod tests;
