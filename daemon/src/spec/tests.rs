//! Tests of [`build_spec`] as a whole; each module tests its own rules too.

use std::path::{Path, PathBuf};

use oci_spec::runtime::{Capability, LinuxNamespaceType, MountBuilder, Spec};

use super::*;
use crate::container::options::{Resources, VolumeMount};
use crate::spec::user::tests::image_root;

const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

fn no_env(_: &str) -> Option<String> {
    None
}

fn image() -> ImageRuntimeConfig {
    ImageRuntimeConfig {
        cmd: vec!["/bin/sh".into()],
        env: vec!["PATH=/usr/bin:/bin".into()],
        ..Default::default()
    }
}

fn build(options: &CreateOptions) -> Result<Spec, SpecError> {
    build_with(options, &image())
}

fn build_with(options: &CreateOptions, image: &ImageRuntimeConfig) -> Result<Spec, SpecError> {
    let root = image_root();
    build_spec(&SpecInputs {
        id: ID,
        options,
        image,
        rootfs: Path::new("/run/skiff/bundles/x/rootfs"),
        image_rootfs_view: root.path(),
        cgroups_path: format!("/skiff/{ID}"),
        extra_mounts: vec![],
        volume_root: Path::new("/var/lib/skiff/volumes"),
        host_env: &no_env,
        init_path: None,
    })
}

fn namespace_types(spec: &Spec) -> Vec<LinuxNamespaceType> {
    spec.linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .as_ref()
        .unwrap()
        .iter()
        .map(|n| n.typ())
        .collect()
}

#[test]
fn defaults() {
    let spec = build(&CreateOptions::default()).unwrap();
    assert_eq!(spec.version(), "1.1.0");
    assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));
    let root = spec.root().as_ref().unwrap();
    assert_eq!(root.path(), &PathBuf::from("/run/skiff/bundles/x/rootfs"));
    assert_eq!(root.readonly(), Some(false));

    let process = spec.process().as_ref().unwrap();
    assert_eq!(process.args().as_ref().unwrap(), &["/bin/sh"]);
    assert_eq!(process.cwd(), &PathBuf::from("/"));
    assert_eq!(process.terminal(), Some(false));
    // Unset rather than false, so libcontainer loads seccomp before dropping capabilities.
    assert_eq!(process.no_new_privileges(), None);
    assert_eq!((process.user().uid(), process.user().gid()), (0, 0));
    let env = process.env().as_ref().unwrap();
    assert!(env.contains(&"PATH=/usr/bin:/bin".to_string()));
    assert!(env.contains(&"HOSTNAME=0123456789ab".to_string()));
    assert!(env.contains(&"HOME=/root".to_string()));
    let caps = process.capabilities().as_ref().unwrap();
    assert_eq!(caps.bounding().as_ref().unwrap().len(), 14);
    let nofile = &process.rlimits().as_ref().unwrap()[0];
    assert!(nofile.hard() <= rlimits::DEFAULT_NOFILE);

    let linux = spec.linux().as_ref().unwrap();
    assert_eq!(
        linux.cgroups_path().as_deref(),
        Some(Path::new(&format!("/skiff/{ID}")))
    );
    assert_eq!(
        linux.masked_paths().as_ref().unwrap().len(),
        defaults::MASKED_PATHS.len()
    );
    assert!(linux
        .readonly_paths()
        .as_ref()
        .unwrap()
        .contains(&"/proc/sys".to_string()));
    assert!(linux.seccomp().is_some());
    assert!(linux.devices().is_none());
    assert!(linux.sysctl().is_none());
    assert!(linux.uid_mappings().is_none());
    assert!(spec.annotations().is_none());
    assert!(spec.hooks().is_none());
    assert!(process.apparmor_profile().is_none());
    assert!(process.oom_score_adj().is_none());
    assert!(caps.ambient().is_none());
    assert!(caps.inheritable().is_none());
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap();
    assert!(!rules[0].allow());
    assert_eq!(
        namespace_types(&spec),
        [
            LinuxNamespaceType::Pid,
            LinuxNamespaceType::Mount,
            LinuxNamespaceType::Ipc,
            LinuxNamespaceType::Uts,
            LinuxNamespaceType::Network,
        ]
    );
    assert!(spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .any(|m| m.destination() == Path::new("/dev/shm")));
}

#[test]
fn round_trips_as_config_json() {
    let spec = build(&CreateOptions::default()).unwrap();
    let json = serde_json::to_string(&spec).unwrap();
    let back: Spec = serde_json::from_str(&json).unwrap();
    assert_eq!(back, spec);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(value["linux"]["cgroupsPath"], format!("/skiff/{ID}"));
    assert_eq!(value["process"]["user"]["uid"], 0);
}

#[test]
fn hostname_option() {
    let o = CreateOptions {
        hostname: Some("web-1.example".into()),
        ..Default::default()
    };
    let spec = build(&o).unwrap();
    assert_eq!(spec.hostname().as_deref(), Some("web-1.example"));
    assert!(spec
        .process()
        .as_ref()
        .unwrap()
        .env()
        .as_ref()
        .unwrap()
        .contains(&"HOSTNAME=web-1.example".to_string()));
    for bad in ["has space", "a/b", &"x".repeat(65)] {
        let o = CreateOptions {
            hostname: Some(bad.to_string()),
            ..Default::default()
        };
        let err = build(&o).unwrap_err();
        assert!(matches!(&err, SpecError::InvalidOption { option, .. } if option == "--hostname"));
    }
}

#[test]
fn network_modes() {
    let with = |network| {
        namespace_types(
            &build(&CreateOptions {
                network,
                ..Default::default()
            })
            .unwrap(),
        )
    };
    assert!(with(NetworkMode::None).contains(&LinuxNamespaceType::Network));
    assert!(with(NetworkMode::Bridge).contains(&LinuxNamespaceType::Network));
    assert!(!with(NetworkMode::Host).contains(&LinuxNamespaceType::Network));
    assert!(with(NetworkMode::Host).contains(&LinuxNamespaceType::Uts));

    let spec = build(&CreateOptions {
        network: NetworkMode::Container("other".into()),
        ..Default::default()
    })
    .unwrap();
    let ns = spec
        .linux()
        .as_ref()
        .unwrap()
        .namespaces()
        .as_ref()
        .unwrap();
    let net = ns
        .iter()
        .find(|n| n.typ() == LinuxNamespaceType::Network)
        .unwrap();
    assert!(net.path().is_none());
}

#[test]
fn user_from_image_and_option() {
    let img = ImageRuntimeConfig {
        user: Some("alice".into()),
        ..image()
    };
    let spec = build_with(&CreateOptions::default(), &img).unwrap();
    let process = spec.process().as_ref().unwrap();
    assert_eq!((process.user().uid(), process.user().gid()), (1000, 1000));
    assert_eq!(
        process.user().additional_gids().as_deref(),
        Some(&[10, 29][..])
    );
    assert!(process
        .env()
        .as_ref()
        .unwrap()
        .contains(&"HOME=/home/alice".to_string()));

    // -u wins over the image's User.
    let o = CreateOptions {
        user: Some("1001:50".into()),
        no_new_privileges: true,
        ..Default::default()
    };
    let spec = build_with(&o, &img).unwrap();
    let process = spec.process().as_ref().unwrap();
    assert_eq!((process.user().uid(), process.user().gid()), (1001, 50));
    assert!(process.user().additional_gids().is_none());
    assert_eq!(process.no_new_privileges(), Some(true));

    let o = CreateOptions {
        user: Some("nobody-here".into()),
        ..Default::default()
    };
    assert!(matches!(build(&o), Err(SpecError::UserNotFound { .. })));
}

#[test]
fn tty_sets_terminal_and_term() {
    let spec = build(&CreateOptions {
        tty: true,
        ..Default::default()
    })
    .unwrap();
    let process = spec.process().as_ref().unwrap();
    assert_eq!(process.terminal(), Some(true));
    assert!(process
        .env()
        .as_ref()
        .unwrap()
        .contains(&"TERM=xterm".to_string()));
}

#[test]
fn privileged() {
    let spec = build(&CreateOptions {
        privileged: true,
        ..Default::default()
    })
    .unwrap();
    let linux = spec.linux().as_ref().unwrap();
    assert!(linux.seccomp().is_none());
    assert!(linux.masked_paths().is_none());
    assert!(linux.readonly_paths().is_none());
    let rules = linux
        .resources()
        .as_ref()
        .unwrap()
        .devices()
        .as_ref()
        .unwrap();
    assert_eq!(rules.len(), 1);
    assert!(rules[0].allow());
    let caps = spec
        .process()
        .as_ref()
        .unwrap()
        .capabilities()
        .as_ref()
        .unwrap();
    assert!(caps
        .effective()
        .as_ref()
        .unwrap()
        .contains(&Capability::SysAdmin));
    let sys = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .find(|m| m.destination() == Path::new("/sys"))
        .unwrap();
    assert!(sys.options().as_ref().unwrap().contains(&"rw".to_string()));
}

#[test]
fn cap_add_reaches_seccomp() {
    let spec = build(&CreateOptions {
        cap_add: vec!["sys_admin".into()],
        ..Default::default()
    })
    .unwrap();
    let seccomp = spec.linux().as_ref().unwrap().seccomp().as_ref().unwrap();
    let allow = &seccomp.syscalls().as_ref().unwrap()[0];
    assert!(allow.names().contains(&"mount".to_string()));

    let err = build(&CreateOptions {
        cap_drop: vec!["NOPE".into()],
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.to_string().contains("NOPE"), "{err}");
}

#[test]
fn read_only_root() {
    let spec = build(&CreateOptions {
        read_only: true,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(spec.root().as_ref().unwrap().readonly(), Some(true));
}

#[test]
fn resources_and_errors_propagate() {
    let spec = build(&CreateOptions {
        resources: Resources {
            memory: Some(64 << 20),
            pids_limit: Some(64),
            nano_cpus: Some(500_000_000),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap();
    let res = spec.linux().as_ref().unwrap().resources().as_ref().unwrap();
    assert_eq!(res.memory().unwrap().limit(), Some(64 << 20));
    assert_eq!(res.pids().unwrap().limit(), 64);
    assert_eq!(res.cpu().as_ref().unwrap().quota(), Some(50_000));

    let err = build(&CreateOptions {
        resources: Resources {
            memory: Some(1 << 20),
            ..Default::default()
        },
        ..Default::default()
    })
    .unwrap_err();
    assert!(err.is_invalid_input());
}

#[test]
fn mounts_init_and_extra() {
    let root = image_root();
    let host_dir = tempfile::tempdir().unwrap();
    let hosts = MountBuilder::default()
        .destination(PathBuf::from("/etc/hosts"))
        .typ("bind")
        .source(PathBuf::from("/run/skiff/x/hosts"))
        .options(vec!["rbind".to_string(), "ro".to_string()])
        .build()
        .unwrap();
    let options = CreateOptions {
        init: true,
        cmd: vec!["sleep".into(), "5".into()],
        volumes: vec![VolumeMount {
            source: host_dir.path().display().to_string(),
            destination: "/data".into(),
            readonly: false,
        }],
        ..Default::default()
    };
    let img = image();
    let spec = build_spec(&SpecInputs {
        id: ID,
        options: &options,
        image: &img,
        rootfs: Path::new("/rootfs"),
        image_rootfs_view: root.path(),
        cgroups_path: "/skiff/x".into(),
        extra_mounts: vec![hosts],
        volume_root: Path::new("/volumes"),
        host_env: &no_env,
        init_path: Some(Path::new("/usr/lib/skiff/skiff-init")),
    })
    .unwrap();
    assert_eq!(
        spec.process().as_ref().unwrap().args().as_ref().unwrap(),
        &["/sbin/skiff-init", "--", "sleep", "5"]
    );
    let dests: Vec<&Path> = spec
        .mounts()
        .as_ref()
        .unwrap()
        .iter()
        .map(|m| m.destination().as_path())
        .collect();
    for d in ["/proc", "/data", "/etc/hosts", "/sbin/skiff-init"] {
        assert!(dests.contains(&Path::new(d)), "{d} in {dests:?}");
    }
}

#[test]
fn bad_inputs() {
    let o = CreateOptions::default();
    let root = image_root();
    let img = image();
    let inputs = |id: &'static str, cgroups_path: &str| SpecInputs {
        id,
        options: &o,
        image: &img,
        rootfs: Path::new("/rootfs"),
        image_rootfs_view: root.path(),
        cgroups_path: cgroups_path.to_string(),
        extra_mounts: vec![],
        volume_root: Path::new("/volumes"),
        host_env: &no_env,
        init_path: None,
    };
    assert!(build_spec(&inputs("", "/skiff/x")).is_err());
    assert!(build_spec(&inputs(ID, "")).is_err());
    assert!(build_spec(&inputs(ID, ":youki:x")).is_err());
    // A short id is its own hostname.
    let spec = build_spec(&inputs("abc", "/skiff/abc")).unwrap();
    assert_eq!(spec.hostname().as_deref(), Some("abc"));

    let err = build_with(&CreateOptions::default(), &ImageRuntimeConfig::default()).unwrap_err();
    assert!(err.to_string().contains("no command specified"), "{err}");
}
