//! The default seccomp profile, with the semantics of Docker's: everything not listed
//! fails with `EPERM`; an allowlist of the ordinary syscalls; more syscalls allowed when
//! the container holds the capability that guards them (`--cap-add SYS_ADMIN` allows
//! `mount`, `SYS_PTRACE` allows `ptrace`, ...); `clone` allowed only without namespace
//! flags unless `CAP_SYS_ADMIN`, and `clone3` failing with `ENOSYS` (its flags live in
//! memory a filter cannot read) so that libc falls back to `clone`. Privileged
//! containers get no profile at all (see `build_spec`).
//!
//! Syscalls the kernel or libseccomp does not know are skipped by the runtime, so the
//! lists may name syscalls of newer kernels and of the 32-bit compat ABIs.

use std::collections::BTreeSet;

use oci_spec::runtime::{
    Arch, Capabilities, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompOperator, LinuxSyscall, LinuxSyscallBuilder,
};

use super::error::{build_err, SpecError};

/// Every `CLONE_NEW*` flag `clone` accepts: NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER,
/// NEWPID, NEWNET.
pub const CLONE_NAMESPACE_FLAGS: u64 =
    0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

/// `personality(2)` values allowed without a capability: `PER_LINUX`, `PER_LINUX32`,
/// `UNAME26`, `UNAME26|PER_LINUX32`, and `0xffffffff` (query the current persona).
pub const SAFE_PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Allowed for every container.
const ALLOWED: &[&str] = &[
    // files and directories
    "access",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "close",
    "close_range",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "flock",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futimesat",
    "getcwd",
    "getdents",
    "getdents64",
    "lchown",
    "lchown32",
    "link",
    "linkat",
    "_llseek",
    "lseek",
    "lstat",
    "lstat64",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "newfstatat",
    "open",
    "openat",
    "openat2",
    "pread64",
    "pipe",
    "pipe2",
    "preadv",
    "preadv2",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "rename",
    "renameat",
    "renameat2",
    "rmdir",
    "sendfile",
    "sendfile64",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "tee",
    "truncate",
    "truncate64",
    "umask",
    "unlink",
    "unlinkat",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vmsplice",
    "write",
    "writev",
    // extended attributes
    "fgetxattr",
    "flistxattr",
    "fremovexattr",
    "fsetxattr",
    "getxattr",
    "lgetxattr",
    "listxattr",
    "llistxattr",
    "lremovexattr",
    "lsetxattr",
    "removexattr",
    "setxattr",
    "setxattrat",
    "getxattrat",
    "listxattrat",
    "removexattrat",
    "file_getattr",
    "file_setattr",
    // file notification, polling and event fds
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "fanotify_mark",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "_newselect",
    "pause",
    "poll",
    "ppoll",
    "ppoll_time64",
    "pselect6",
    "pselect6_time64",
    "select",
    "signalfd",
    "signalfd4",
    // asynchronous I/O (io_uring stays blocked, as in Docker)
    "io_cancel",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "io_setup",
    "io_submit",
    "ioctl",
    "ioprio_get",
    "ioprio_set",
    // memory
    "brk",
    "cachestat",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mremap",
    "mseal",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "remap_file_pages",
    // processes, threads and signals
    "alarm",
    "capget",
    "capset",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "fork",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "getcpu",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "get_thread_area",
    "gettid",
    "getuid",
    "getuid32",
    "kill",
    "pidfd_open",
    "pidfd_send_signal",
    "prctl",
    "prlimit64",
    "process_mrelease",
    "restart_syscall",
    "rseq",
    "uretprobe",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "sigaltstack",
    "sigprocmask",
    "sigreturn",
    "tgkill",
    "tkill",
    "ugetrlimit",
    "vfork",
    "wait4",
    "waitid",
    "waitpid",
    // time and system information
    "adjtimex",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "getrandom",
    "gettimeofday",
    "nanosleep",
    "sysinfo",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "uname",
    // sockets
    "accept",
    "accept4",
    "bind",
    "connect",
    "getpeername",
    "getsockname",
    "getsockopt",
    "listen",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "send",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setsockopt",
    "shutdown",
    "socket",
    "socketcall",
    "socketpair",
    // System V and POSIX IPC (in the container's IPC namespace)
    "ipc",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    // Landlock sandboxing restricts the caller only
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
];

/// Allowed on the x86 family only.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
const ALLOWED_ARCH: &[&str] = &["arch_prctl", "modify_ldt"];
/// Allowed on the Arm family only (32-bit Arm entry points).
#[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
const ALLOWED_ARCH: &[&str] = &[
    "arm_fadvise64_64",
    "arm_sync_file_range",
    "breakpoint",
    "cacheflush",
    "set_tls",
    "sync_file_range2",
];
#[cfg(not(any(
    target_arch = "x86_64",
    target_arch = "x86",
    target_arch = "aarch64",
    target_arch = "arm"
)))]
const ALLOWED_ARCH: &[&str] = &[];

/// Syscalls allowed only to holders of a capability.
const BY_CAPABILITY: &[(Capability, &[&str])] = &[
    (
        Capability::SysAdmin,
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "name_to_handle_at",
            "open_tree",
            "perf_event_open",
            "pivot_root",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    (Capability::SysBoot, &["reboot"]),
    (Capability::SysChroot, &["chroot"]),
    (
        Capability::SysModule,
        &["delete_module", "finit_module", "init_module"],
    ),
    (Capability::SysPacct, &["acct"]),
    (
        Capability::SysPtrace,
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
    ),
    (Capability::SysRawio, &["ioperm", "iopl"]),
    (
        Capability::SysTime,
        &[
            "clock_adjtime",
            "clock_adjtime64",
            "clock_settime",
            "clock_settime64",
            "settimeofday",
            "stime",
        ],
    ),
    (Capability::SysTtyConfig, &["vhangup"]),
    (
        Capability::SysNice,
        &[
            "get_mempolicy",
            "mbind",
            "move_pages",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    (Capability::Syslog, &["syslog"]),
    (Capability::Bpf, &["bpf"]),
    (Capability::Perfmon, &["perf_event_open"]),
    (
        Capability::DacReadSearch,
        &["name_to_handle_at", "open_by_handle_at"],
    ),
];

/// The architectures a filter covers: the native one and its compat ABIs.
fn architectures() -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchNative]
    }
}

/// The default seccomp profile for a container holding `caps`.
pub fn default_profile(caps: &Capabilities) -> Result<LinuxSeccomp, SpecError> {
    let mut allowed: BTreeSet<&str> = ALLOWED.iter().chain(ALLOWED_ARCH).copied().collect();
    for (cap, names) in BY_CAPABILITY {
        if caps.contains(cap) {
            allowed.extend(names.iter().copied());
        }
    }
    let sys_admin = caps.contains(&Capability::SysAdmin);

    let mut rules = vec![syscall_rule(
        allowed.iter().copied(),
        LinuxSeccompAction::ScmpActAllow,
        None,
        None,
    )?];
    for value in SAFE_PERSONALITIES {
        rules.push(syscall_rule(
            ["personality"],
            LinuxSeccompAction::ScmpActAllow,
            None,
            Some((LinuxSeccompOperator::ScmpCmpEq, value, None)),
        )?);
    }
    if !sys_admin {
        // `clone` without any CLONE_NEW* flag: (flags & CLONE_NAMESPACE_FLAGS) == 0.
        //
        // The operands are written the way youki's libcontainer 0.7.0 reads them: it
        // builds SCMP_CMP_MASKED_EQ with `valueTwo` as the mask and `value` as the
        // datum. runc and crun read them the other way round (`value` the mask), which
        // is how Docker's profile writes this rule; under libcontainer that rule gets a
        // mask of 0: libseccomp 2.5.4 (Debian 12) then allows every clone, namespace
        // flags included (checked on this host), and libseccomp releases that rewrite a
        // zero mask into `flags == 0` would break fork() and threads. Under runc this
        // encoding means `flags == 0`. Re-check this if the runtime changes.
        rules.push(syscall_rule(
            ["clone"],
            LinuxSeccompAction::ScmpActAllow,
            None,
            Some((
                LinuxSeccompOperator::ScmpCmpMaskedEq,
                0,
                Some(CLONE_NAMESPACE_FLAGS),
            )),
        )?);
        rules.push(syscall_rule(
            ["clone3"],
            LinuxSeccompAction::ScmpActErrno,
            Some(libc::ENOSYS as u32),
            None,
        )?);
    }

    LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActErrno)
        .default_errno_ret(libc::EPERM as u32)
        .architectures(architectures())
        .syscalls(rules)
        .build()
        .map_err(build_err("seccomp profile"))
}

/// One rule: `names` get `action`, optionally only when argument 0 compares true.
fn syscall_rule<'a>(
    names: impl IntoIterator<Item = &'a str>,
    action: LinuxSeccompAction,
    errno: Option<u32>,
    arg0: Option<(LinuxSeccompOperator, u64, Option<u64>)>,
) -> Result<LinuxSyscall, SpecError> {
    let mut b = LinuxSyscallBuilder::default()
        .names(names.into_iter().map(String::from).collect::<Vec<_>>())
        .action(action);
    if let Some(errno) = errno {
        b = b.errno_ret(errno);
    }
    if let Some((op, value, value_two)) = arg0 {
        let mut arg = LinuxSeccompArgBuilder::default()
            .index(0usize)
            .value(value)
            .op(op);
        if let Some(value_two) = value_two {
            arg = arg.value_two(value_two);
        }
        b = b.args(vec![arg.build().map_err(build_err("seccomp argument"))?]);
    }
    b.build().map_err(build_err("seccomp rule"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::capabilities::capability_set;

    fn profile(cap_add: &[&str]) -> LinuxSeccomp {
        let adds: Vec<String> = cap_add.iter().map(|s| s.to_string()).collect();
        default_profile(&capability_set(&adds, &[], false).unwrap()).unwrap()
    }

    /// Allowed whatever the arguments.
    fn allows(p: &LinuxSeccomp, name: &str) -> bool {
        p.syscalls().as_ref().unwrap().iter().any(|r| {
            r.action() == LinuxSeccompAction::ScmpActAllow
                && r.args().is_none()
                && r.names().iter().any(|n| n == name)
        })
    }

    fn rules_for<'a>(p: &'a LinuxSeccomp, name: &str) -> Vec<&'a LinuxSyscall> {
        p.syscalls()
            .as_ref()
            .unwrap()
            .iter()
            .filter(|r| r.names().iter().any(|n| n == name))
            .collect()
    }

    #[test]
    fn shape() {
        let p = profile(&[]);
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(libc::EPERM as u32));
        let arches = p.architectures().as_ref().unwrap();
        if cfg!(target_arch = "x86_64") {
            assert_eq!(
                arches,
                &[Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
            );
        }
        for name in [
            "read",
            "write",
            "openat",
            "execve",
            "futex",
            "socket",
            "exit_group",
            "chroot",
            "pipe2",
            "wait4",
            "mmap",
            "rt_sigaction",
            "getrandom",
            "epoll_wait",
        ] {
            assert!(allows(&p, name), "{name}");
        }
    }

    #[test]
    fn dangerous_syscalls_blocked_by_default() {
        let p = profile(&[]);
        for name in [
            "add_key",
            "bpf",
            "clock_adjtime",
            "clock_settime",
            "create_module",
            "delete_module",
            "finit_module",
            "get_kernel_syms",
            "get_mempolicy",
            "init_module",
            "ioperm",
            "iopl",
            "kcmp",
            "kexec_file_load",
            "kexec_load",
            "keyctl",
            "lookup_dcookie",
            "mbind",
            "mount",
            "move_pages",
            "name_to_handle_at",
            "nfsservctl",
            "open_by_handle_at",
            "perf_event_open",
            "personality",
            "pivot_root",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
            "query_module",
            "quotactl",
            "reboot",
            "request_key",
            "set_mempolicy",
            "setns",
            "settimeofday",
            "stime",
            "swapon",
            "swapoff",
            "sysfs",
            "_sysctl",
            "umount",
            "umount2",
            "unshare",
            "uselib",
            "userfaultfd",
            "ustat",
            "vm86",
            "vm86old",
            "clone",
            "clone3",
            "io_uring_setup",
        ] {
            assert!(
                !allows(&p, name),
                "{name} must not be allowed unconditionally"
            );
        }
    }

    #[test]
    fn capabilities_unlock_their_syscalls() {
        let p = profile(&["SYS_ADMIN"]);
        for name in [
            "mount",
            "umount2",
            "unshare",
            "setns",
            "clone",
            "clone3",
            "pivot_root",
        ] {
            assert!(allows(&p, name), "{name}");
        }
        // With CAP_SYS_ADMIN there is no conditional clone rule nor clone3 ENOSYS.
        assert_eq!(rules_for(&p, "clone").len(), 1);
        assert_eq!(rules_for(&p, "clone3").len(), 1);

        let p = profile(&["SYS_PTRACE", "SYS_TIME", "SYS_MODULE"]);
        for name in [
            "ptrace",
            "process_vm_readv",
            "clock_settime",
            "settimeofday",
            "init_module",
        ] {
            assert!(allows(&p, name), "{name}");
        }
        assert!(!allows(&p, "mount"));

        let p =
            default_profile(&capability_set(&[], &["SYS_CHROOT".into()], false).unwrap()).unwrap();
        assert!(!allows(&p, "chroot"));
    }

    #[test]
    fn clone_without_namespace_flags() {
        let p = profile(&[]);
        let clone = rules_for(&p, "clone");
        assert_eq!(clone.len(), 1);
        assert_eq!(clone[0].action(), LinuxSeccompAction::ScmpActAllow);
        let args = clone[0].args().as_ref().unwrap();
        assert_eq!(args.len(), 1);
        assert_eq!(args[0].index(), 0);
        assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpMaskedEq);
        assert_eq!(args[0].value(), 0);
        assert_eq!(args[0].value_two(), Some(CLONE_NAMESPACE_FLAGS));
        assert_eq!(CLONE_NAMESPACE_FLAGS, 2_114_060_288);

        let clone3 = rules_for(&p, "clone3");
        assert_eq!(clone3.len(), 1);
        assert_eq!(clone3[0].action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(clone3[0].errno_ret(), Some(libc::ENOSYS as u32));
    }

    #[test]
    fn personality_only_safe_values() {
        let p = profile(&[]);
        let rules = rules_for(&p, "personality");
        assert_eq!(rules.len(), SAFE_PERSONALITIES.len());
        for r in rules {
            let args = r.args().as_ref().unwrap();
            assert_eq!(args[0].op(), LinuxSeccompOperator::ScmpCmpEq);
            assert!(SAFE_PERSONALITIES.contains(&args[0].value()));
        }
    }

    #[test]
    fn each_name_once_in_the_allowlist() {
        let p = profile(&["ALL"]);
        let allow = &p.syscalls().as_ref().unwrap()[0];
        let names = allow.names();
        let unique: BTreeSet<&String> = names.iter().collect();
        assert_eq!(unique.len(), names.len());
        let raw: Vec<&&str> = ALLOWED.iter().collect();
        let raw_unique: BTreeSet<&&str> = ALLOWED.iter().collect();
        assert_eq!(raw.len(), raw_unique.len(), "duplicate in ALLOWED");
    }

    #[test]
    fn profile_serializes_like_docker_json() {
        let json = serde_json::to_value(profile(&[])).unwrap();
        assert_eq!(json["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(json["defaultErrnoRet"], 1);
        assert!(json["syscalls"][0]["names"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("read")));
    }
}
