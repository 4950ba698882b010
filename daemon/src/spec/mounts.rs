//! The container's mounts: the standard ones (see [`default_mounts`]), then the user's
//! volumes and tmpfs mounts, the init binary, and the engine's extra mounts
//! (`/etc/hosts`, `/etc/resolv.conf`, ...), parents before children.
//!
//! A user mount replaces a standard or engine mount at the same destination (so
//! `--tmpfs /dev/shm:size=1g` or `-v ./resolv.conf:/etc/resolv.conf` win, as in Docker).

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount, MountBuilder};

use super::defaults::default_mounts;
use super::error::{build_err, SpecError};
use crate::container::options::{CreateOptions, TmpfsMount, VolumeMount};

/// Where the init binary (`--init`) appears in the container.
pub const INIT_PATH_IN_CONTAINER: &str = "/sbin/skiff-init";

/// Default options of a `--tmpfs` mount (the user's options override them).
const TMPFS_DEFAULTS: [&str; 3] = ["nosuid", "nodev", "noexec"];

/// All mounts of a container, in mount order.
///
/// `volume_root` holds named volumes (`<volume_root>/<name>/_data`, created by the
/// engine); `init_path` is the host path of the init binary when `options.init`.
pub fn container_mounts(
    options: &CreateOptions,
    volume_root: &Path,
    extra_mounts: Vec<Mount>,
    init_path: Option<&Path>,
) -> Result<Vec<Mount>, SpecError> {
    let mut user: Vec<Mount> = Vec::new();
    let mut add_user = |option: &str, mount: Mount| -> Result<(), SpecError> {
        if user.iter().any(|m| m.destination() == mount.destination()) {
            return Err(SpecError::invalid(
                option,
                mount.destination().display().to_string(),
                "duplicate mount point",
            ));
        }
        user.push(mount);
        Ok(())
    };
    for volume in &options.volumes {
        add_user(
            "-v",
            volume_mount(volume, volume_root, options.cwd.as_deref())?,
        )?;
    }
    for tmpfs in &options.tmpfs {
        add_user("--tmpfs", tmpfs_mount(tmpfs)?)?;
    }
    if options.init {
        let init = init_path.ok_or_else(|| {
            SpecError::invalid(
                "--init",
                "true",
                "no init binary is configured on this host",
            )
        })?;
        add_user("--init", init_mount(init)?)?;
    }

    let taken = |m: &Mount| user.iter().any(|u| u.destination() == m.destination());
    let mut mounts: Vec<Mount> = default_mounts(options.privileged)?
        .into_iter()
        .filter(|m| !taken(m))
        .collect();
    let extra: Vec<Mount> = extra_mounts.into_iter().filter(|m| !taken(m)).collect();
    let mut tail: Vec<Mount> = user.into_iter().chain(extra).collect();
    // Parents before children; a stable sort keeps the order of equal depths.
    tail.sort_by_key(|m| m.destination().components().count());
    mounts.extend(tail);
    Ok(mounts)
}

/// `-v SRC:DST[:ro]`: a bind mount of an absolute (or, with `cwd`, relative) host path
/// that must exist, or a named volume when `SRC` has no `/`.
fn volume_mount(
    v: &VolumeMount,
    volume_root: &Path,
    cwd: Option<&Path>,
) -> Result<Mount, SpecError> {
    let destination = clean_destination("-v", &v.destination)?;
    let source = if v.source.contains('/') {
        let path = Path::new(&v.source);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            match cwd {
                Some(cwd) if cwd.is_absolute() => cwd.join(path),
                _ => {
                    return Err(SpecError::invalid(
                        "-v",
                        &v.source,
                        "bind source path must be absolute",
                    ))
                }
            }
        };
        // Follows symlinks: a dangling link is a missing source.
        if !path.exists() {
            return Err(SpecError::invalid(
                "-v",
                &v.source,
                format!("bind source path does not exist: {}", path.display()),
            ));
        }
        path
    } else {
        validate_volume_name(&v.source)?;
        volume_root.join(&v.source).join("_data")
    };
    let mut opts = vec!["rbind".to_string(), "rprivate".to_string()];
    opts.push(if v.readonly { "ro" } else { "rw" }.to_string());
    MountBuilder::default()
        .destination(destination)
        .typ("bind")
        .source(source)
        .options(opts)
        .build()
        .map_err(build_err("volume mount"))
}

/// Docker's local volume names: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
fn validate_volume_name(name: &str) -> Result<(), SpecError> {
    if crate::volume::is_valid_name(name) {
        Ok(())
    } else {
        Err(SpecError::invalid(
            "-v",
            name,
            "invalid volume name: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed (at least 2 \
             characters); to mount a host directory, use an absolute path",
        ))
    }
}

/// `--tmpfs DST[:OPTS]`: `nosuid,nodev,noexec` unless the user says otherwise.
fn tmpfs_mount(t: &TmpfsMount) -> Result<Mount, SpecError> {
    let destination = clean_destination("--tmpfs", &t.destination)?;
    let mut opts: Vec<String> = TMPFS_DEFAULTS.iter().map(|s| s.to_string()).collect();
    for o in &t.options {
        if o.is_empty() || o.contains(',') || o.contains('\0') {
            return Err(SpecError::invalid(
                "--tmpfs",
                format!("{}:{}", t.destination, t.options.join(",")),
                format!("invalid tmpfs option {o:?}"),
            ));
        }
        // A flag replaces its opposite (exec cancels noexec, rw cancels ro, ...).
        let opposite = match o.as_str() {
            "ro" => Some("rw".to_string()),
            "rw" => Some("ro".to_string()),
            flag if flag.contains('=') => None,
            flag => Some(match flag.strip_prefix("no") {
                Some(positive) => positive.to_string(),
                None => format!("no{flag}"),
            }),
        };
        let key = o.split('=').next().unwrap_or(o);
        opts.retain(|existing| {
            Some(existing) != opposite.as_ref()
                && existing != o
                && !(o.contains('=') && existing.split('=').next() == Some(key))
        });
        opts.push(o.clone());
    }
    MountBuilder::default()
        .destination(destination)
        .typ("tmpfs")
        .source(PathBuf::from("tmpfs"))
        .options(opts)
        .build()
        .map_err(build_err("tmpfs mount"))
}

/// The init binary, read-only at [`INIT_PATH_IN_CONTAINER`].
fn init_mount(init: &Path) -> Result<Mount, SpecError> {
    if !init.is_absolute() {
        return Err(SpecError::invalid(
            "--init",
            init.display().to_string(),
            "the init binary path must be absolute",
        ));
    }
    MountBuilder::default()
        .destination(PathBuf::from(INIT_PATH_IN_CONTAINER))
        .typ("bind")
        .source(init.to_path_buf())
        .options(vec!["bind".to_string(), "ro".to_string()])
        .build()
        .map_err(build_err("init mount"))
}

/// A destination inside the container: absolute, cleaned lexically (`.`, `..`, double
/// slashes), and not `/` itself.
pub(crate) fn clean_destination(option: &str, dest: &str) -> Result<PathBuf, SpecError> {
    if !dest.starts_with('/') {
        return Err(SpecError::invalid(
            option,
            dest,
            "destination must be an absolute path",
        ));
    }
    if dest.contains('\0') {
        return Err(SpecError::invalid(
            option,
            dest,
            "destination contains a NUL byte",
        ));
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in dest.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err(SpecError::invalid(option, dest, "destination can't be '/'"));
    }
    Ok(PathBuf::from(format!("/{}", parts.join("/"))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dests(mounts: &[Mount]) -> Vec<String> {
        mounts
            .iter()
            .map(|m| m.destination().display().to_string())
            .collect()
    }

    fn find<'a>(mounts: &'a [Mount], dest: &str) -> &'a Mount {
        mounts
            .iter()
            .find(|m| m.destination() == Path::new(dest))
            .unwrap_or_else(|| panic!("no mount at {dest}"))
    }

    fn vol(source: &str, destination: &str, readonly: bool) -> VolumeMount {
        VolumeMount {
            source: source.into(),
            destination: destination.into(),
            readonly,
        }
    }

    #[test]
    fn defaults_only() {
        let mounts =
            container_mounts(&CreateOptions::default(), Path::new("/v"), vec![], None).unwrap();
        assert_eq!(
            dests(&mounts),
            [
                "/proc",
                "/dev",
                "/dev/pts",
                "/sys",
                "/sys/fs/cgroup",
                "/dev/mqueue",
                "/dev/shm"
            ]
        );
    }

    #[test]
    fn binds_and_named_volumes() {
        let host = tempfile::tempdir().unwrap();
        let src = host.path().display().to_string();
        let opts = CreateOptions {
            volumes: vec![vol(&src, "/data/sub/", true), vol("cache", "/data", false)],
            ..Default::default()
        };
        let mounts =
            container_mounts(&opts, Path::new("/var/lib/skiff/volumes"), vec![], None).unwrap();
        let bind = find(&mounts, "/data/sub");
        assert_eq!(bind.typ().as_deref(), Some("bind"));
        assert_eq!(bind.source().as_deref(), Some(host.path()));
        assert!(bind.options().as_ref().unwrap().contains(&"ro".to_string()));
        assert!(bind
            .options()
            .as_ref()
            .unwrap()
            .contains(&"rbind".to_string()));
        let named = find(&mounts, "/data");
        assert_eq!(
            named.source().as_deref(),
            Some(Path::new("/var/lib/skiff/volumes/cache/_data"))
        );
        assert!(named
            .options()
            .as_ref()
            .unwrap()
            .contains(&"rw".to_string()));
        // The parent is mounted before the child, although given after it.
        let d = dests(&mounts);
        let pos = |x: &str| d.iter().position(|y| y == x).unwrap();
        assert!(pos("/data") < pos("/data/sub"));
    }

    #[test]
    fn relative_bind_sources_use_cwd() {
        let host = tempfile::tempdir().unwrap();
        std::fs::create_dir(host.path().join("conf")).unwrap();
        let opts = CreateOptions {
            volumes: vec![vol("./conf", "/conf", false)],
            cwd: Some(host.path().to_path_buf()),
            ..Default::default()
        };
        let mounts = container_mounts(&opts, Path::new("/v"), vec![], None).unwrap();
        assert_eq!(
            find(&mounts, "/conf").source().as_deref(),
            Some(host.path().join("./conf").as_path())
        );
        let opts = CreateOptions {
            volumes: vec![vol("./conf", "/conf", false)],
            ..Default::default()
        };
        assert!(container_mounts(&opts, Path::new("/v"), vec![], None).is_err());
    }

    #[test]
    fn volume_errors() {
        let host = tempfile::tempdir().unwrap();
        let src = host.path().display().to_string();
        let missing = host.path().join("missing").display().to_string();
        let cases = [
            (
                vol(&missing, "/x", false),
                "bind source path does not exist",
            ),
            (vol(&src, "relative", false), "absolute"),
            (vol(&src, "/", false), "can't be '/'"),
            (vol(&src, "/a/..", false), "can't be '/'"),
            (vol("x", "/x", false), "invalid volume name"),
            (vol("-bad", "/x", false), "invalid volume name"),
            (vol("bad name", "/x", false), "invalid volume name"),
        ];
        for (v, why) in cases {
            let opts = CreateOptions {
                volumes: vec![v.clone()],
                ..Default::default()
            };
            let err = container_mounts(&opts, Path::new("/v"), vec![], None).unwrap_err();
            assert!(
                matches!(&err, SpecError::InvalidOption { option, .. } if option == "-v"),
                "{v:?}: {err}"
            );
            assert!(err.to_string().contains(why), "{v:?}: {err}");
        }
        let opts = CreateOptions {
            volumes: vec![vol(&src, "/x", false), vol("named", "/x/", false)],
            ..Default::default()
        };
        let err = container_mounts(&opts, Path::new("/v"), vec![], None).unwrap_err();
        assert!(err.to_string().contains("duplicate mount point"), "{err}");
    }

    #[test]
    fn tmpfs_options_and_override_of_defaults() {
        let opts = CreateOptions {
            tmpfs: vec![
                TmpfsMount {
                    destination: "/run".into(),
                    options: vec!["size=64m".into(), "exec".into()],
                },
                TmpfsMount {
                    destination: "/dev/shm".into(),
                    options: vec!["size=1g".into()],
                },
            ],
            ..Default::default()
        };
        let mounts = container_mounts(&opts, Path::new("/v"), vec![], None).unwrap();
        let run = find(&mounts, "/run");
        assert_eq!(run.typ().as_deref(), Some("tmpfs"));
        assert_eq!(
            run.options().as_ref().unwrap(),
            &["nosuid", "nodev", "size=64m", "exec"]
        );
        let shm: Vec<&Mount> = mounts
            .iter()
            .filter(|m| m.destination() == Path::new("/dev/shm"))
            .collect();
        assert_eq!(shm.len(), 1);
        assert!(shm[0]
            .options()
            .as_ref()
            .unwrap()
            .contains(&"size=1g".to_string()));

        let bad = CreateOptions {
            tmpfs: vec![TmpfsMount {
                destination: "tmp".into(),
                options: vec![],
            }],
            ..Default::default()
        };
        let err = container_mounts(&bad, Path::new("/v"), vec![], None).unwrap_err();
        assert!(matches!(&err, SpecError::InvalidOption { option, .. } if option == "--tmpfs"));
    }

    #[test]
    fn extra_mounts_and_init() {
        let host = tempfile::tempdir().unwrap();
        let hosts = MountBuilder::default()
            .destination(PathBuf::from("/etc/hosts"))
            .typ("bind")
            .source(host.path().join("hosts"))
            .options(vec!["rbind".to_string(), "rprivate".to_string()])
            .build()
            .unwrap();
        let resolv = MountBuilder::default()
            .destination(PathBuf::from("/etc/resolv.conf"))
            .typ("bind")
            .source(PathBuf::from("/engine/resolv.conf"))
            .build()
            .unwrap();
        let opts = CreateOptions {
            volumes: vec![vol(
                &host.path().display().to_string(),
                "/etc/resolv.conf",
                true,
            )],
            init: true,
            ..Default::default()
        };
        let mounts = container_mounts(
            &opts,
            Path::new("/v"),
            vec![hosts.clone(), resolv],
            Some(Path::new("/usr/libexec/skiff/init")),
        )
        .unwrap();
        assert_eq!(find(&mounts, "/etc/hosts"), &hosts);
        // The user's resolv.conf wins over the engine's.
        assert_eq!(
            find(&mounts, "/etc/resolv.conf").source().as_deref(),
            Some(host.path())
        );
        let init = find(&mounts, INIT_PATH_IN_CONTAINER);
        assert_eq!(
            init.source().as_deref(),
            Some(Path::new("/usr/libexec/skiff/init"))
        );
        assert!(init.options().as_ref().unwrap().contains(&"ro".to_string()));

        let err = container_mounts(&opts, Path::new("/v"), vec![], None).unwrap_err();
        assert!(matches!(&err, SpecError::InvalidOption { option, .. } if option == "--init"));
    }

    #[test]
    fn destinations_are_cleaned() {
        assert_eq!(
            clean_destination("-v", "/a//b/./c/../d/").unwrap(),
            PathBuf::from("/a/b/d")
        );
        assert!(clean_destination("-v", "/..").is_err());
        assert!(clean_destination("-v", "a/b").is_err());
        assert!(clean_destination("-v", "").is_err());
    }
}
