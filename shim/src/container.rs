//! Glue to youki's libcontainer: building, starting, signalling, freezing and deleting the
//! task's container, plus the cgroup queries (pids, stats) through libcgroups.
//!
//! libcontainer keeps its state under `<bundle>/.libcontainer/<id>/` (inside the bundle the
//! caller gave, so `delete` finds it from the bundle alone and nothing lands beside other
//! bundles, where containerd would take it for a bundle of its own).

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::{Path, PathBuf};

use libcgroups::common::{create_cgroup_manager, AnyCgroupManager, CgroupConfig, CgroupManager};
use libcontainer::container::builder::ContainerBuilder;
use libcontainer::container::{Container, ContainerStatus};
use libcontainer::oci_spec::runtime::Spec;
use libcontainer::syscall::syscall::SyscallType;
use libcontainer::workload::default::DefaultExecutor;
use libcontainer::workload::{
    Executor, ExecutorError, ExecutorSetEnvsError, ExecutorValidationError,
};

use crate::error::{Result, ShimError};
use crate::stdio::ContainerStdio;

/// Directory (inside the bundle) that holds libcontainer's state.
pub const STATE_DIR: &str = ".libcontainer";

/// libcontainer's state root for a bundle.
pub fn state_root(bundle: &Path) -> PathBuf {
    bundle.join(STATE_DIR)
}

/// Runs the workload like [`DefaultExecutor`], after giving the container a clean signal
/// state: the shim ignores SIGPIPE (Rust's default) and a raw clone keeps that, and a
/// process image inherits ignored signals and the signal mask across exec.
#[derive(Clone)]
pub struct SkiffExecutor;

impl Executor for SkiffExecutor {
    fn exec(&self, spec: &Spec) -> std::result::Result<(), ExecutorError> {
        // SAFETY: plain signal-state syscalls in the (single-threaded) container init. The
        // raw rt_sigaction also reaches the signals glibc reserves (32, 33), which the shim
        // may have inherited as ignored; an all-zero kernel sigaction is SIG_DFL.
        unsafe {
            let dfl = [0u64; 4];
            for sig in 1..=64 {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    libc::syscall(
                        libc::SYS_rt_sigaction,
                        sig,
                        dfl.as_ptr(),
                        std::ptr::null_mut::<u64>(),
                        8usize,
                    );
                }
            }
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigprocmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
        }
        // A terminal gets its size here, on the slave, before the workload runs: the
        // shim sets it on the master only once libcontainer handed that over, which for
        // an exec can be after the process started (and read a 0x0 terminal).
        if let Some(p) = spec.process() {
            if let (true, Some(size)) = (p.terminal().unwrap_or(false), p.console_size()) {
                let _ = crate::stdio::set_winsize(
                    &std::io::stdin(),
                    size.width() as u32,
                    size.height() as u32,
                );
            }
        }
        DefaultExecutor {}.exec(spec)
    }

    /// Validates like [`DefaultExecutor`], but words the common failures as runc does
    /// (`exec: "cmd": executable file not found in $PATH`, `exec: "cmd": permission
    /// denied`), which Docker-style front ends recognise.
    fn validate(&self, spec: &Spec) -> std::result::Result<(), ExecutorValidationError> {
        DefaultExecutor {}.validate(spec).map_err(|e| {
            let arg0 = spec
                .process()
                .as_ref()
                .and_then(|p| p.args().as_ref())
                .and_then(|a| a.first().cloned())
                .unwrap_or_default();
            match &e {
                ExecutorValidationError::ArgValidationError(m) if m.contains("not found") => {
                    ExecutorValidationError::ArgValidationError(format!(
                        "exec: \"{arg0}\": executable file not found in $PATH"
                    ))
                }
                ExecutorValidationError::ArgValidationError(m)
                    if m.contains("correct permissions") =>
                {
                    ExecutorValidationError::ArgValidationError(format!(
                        "exec: \"{arg0}\": permission denied"
                    ))
                }
                _ => e,
            }
        })
    }

    fn setup_envs(
        &self,
        envs: HashMap<String, String>,
    ) -> std::result::Result<(), ExecutorSetEnvsError> {
        DefaultExecutor {}.setup_envs(envs)
    }
}

fn rlimit_resource(name: &str) -> Option<libc::__rlimit_resource_t> {
    Some(match name {
        "RLIMIT_CPU" => libc::RLIMIT_CPU,
        "RLIMIT_FSIZE" => libc::RLIMIT_FSIZE,
        "RLIMIT_DATA" => libc::RLIMIT_DATA,
        "RLIMIT_STACK" => libc::RLIMIT_STACK,
        "RLIMIT_CORE" => libc::RLIMIT_CORE,
        "RLIMIT_RSS" => libc::RLIMIT_RSS,
        "RLIMIT_NPROC" => libc::RLIMIT_NPROC,
        "RLIMIT_NOFILE" => libc::RLIMIT_NOFILE,
        "RLIMIT_MEMLOCK" => libc::RLIMIT_MEMLOCK,
        "RLIMIT_AS" => libc::RLIMIT_AS,
        "RLIMIT_LOCKS" => libc::RLIMIT_LOCKS,
        "RLIMIT_SIGPENDING" => libc::RLIMIT_SIGPENDING,
        "RLIMIT_MSGQUEUE" => libc::RLIMIT_MSGQUEUE,
        "RLIMIT_NICE" => libc::RLIMIT_NICE,
        "RLIMIT_RTPRIO" => libc::RLIMIT_RTPRIO,
        "RLIMIT_RTTIME" => libc::RLIMIT_RTTIME,
        _ => return None,
    })
}

/// Clamps `process.rlimits` in `<bundle>/config.json` to the shim's own hard limits (which
/// it cannot raise without CAP_SYS_RESOURCE), rewriting the file atomically if anything
/// changed. Returns the names of the clamped limits.
pub fn clamp_rlimits(bundle: &Path) -> Result<Vec<String>> {
    let path = bundle.join("config.json");
    let spec_err = |why: String| ShimError::Spec {
        path: path.clone(),
        why,
    };
    let text = std::fs::read(&path).map_err(|e| ShimError::io("reading", &path, e))?;
    let mut spec: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| spec_err(e.to_string()))?;
    let clamped = match spec.get_mut("process") {
        Some(p) => clamp_process_rlimits(p),
        None => Vec::new(),
    };
    if !clamped.is_empty() {
        let out = serde_json::to_vec_pretty(&spec).map_err(|e| spec_err(e.to_string()))?;
        let tmp = bundle.join(".config.json.tmp");
        std::fs::write(&tmp, out)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| ShimError::io("rewriting", &path, e))?;
    }
    Ok(clamped)
}

/// Clamps the `rlimits` of an OCI `Process` (JSON) to the shim's own hard limits;
/// returns the names of the clamped limits.
pub fn clamp_process_rlimits(process: &mut serde_json::Value) -> Vec<String> {
    let mut clamped = Vec::new();
    if let Some(limits) = process.get_mut("rlimits").and_then(|v| v.as_array_mut()) {
        for l in limits {
            let Some(name) = l.get("type").and_then(|t| t.as_str()).map(str::to_string) else {
                continue;
            };
            let Some(res) = rlimit_resource(&name) else {
                continue;
            };
            let mut cur = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            // SAFETY: getrlimit writes into the struct we own.
            if unsafe { libc::getrlimit(res, &mut cur) } != 0 {
                continue;
            }
            let max = cur.rlim_max;
            let hard = l.get("hard").and_then(|v| v.as_u64()).unwrap_or(0);
            let soft = l.get("soft").and_then(|v| v.as_u64()).unwrap_or(0);
            if hard > max || soft > max {
                l["hard"] = hard.min(max).into();
                l["soft"] = soft.min(max).into();
                clamped.push(name);
            }
        }
    }
    clamped
}

/// The cgroups path the spec asks for (`linux.cgroupsPath`), if any.
pub fn spec_cgroups_path(bundle: &Path) -> Option<PathBuf> {
    let text = std::fs::read(bundle.join("config.json")).ok()?;
    let spec: serde_json::Value = serde_json::from_slice(&text).ok()?;
    spec.pointer("/linux/cgroupsPath")
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
}

/// The `process` of the bundle's spec (JSON; Null if it has none).
pub fn spec_process(bundle: &Path) -> Result<serde_json::Value> {
    let path = bundle.join("config.json");
    let text = std::fs::read(&path).map_err(|e| ShimError::io("reading", &path, e))?;
    let mut spec: serde_json::Value =
        serde_json::from_slice(&text).map_err(|e| ShimError::Spec {
            path: path.clone(),
            why: e.to_string(),
        })?;
    Ok(spec
        .get_mut("process")
        .map(serde_json::Value::take)
        .unwrap_or_default())
}

/// `process.terminal` and `process.consoleSize` (width, height) of the bundle's spec.
pub fn spec_terminal(bundle: &Path) -> Result<(bool, Option<(u32, u32)>)> {
    let process = spec_process(bundle)?;
    let terminal = process
        .get("terminal")
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    Ok((terminal, console_size(process.get("consoleSize"))))
}

/// Width and height of an OCI `consoleSize` object.
pub fn console_size(v: Option<&serde_json::Value>) -> Option<(u32, u32)> {
    let v = v?;
    let get = |k: &str| v.get(k).and_then(|x| x.as_u64()).map(|x| x as u32);
    Some((get("width")?, get("height")?))
}

/// How long the create helper may take (image-sized rootfs setups included).
const HELPER_TIMEOUT_MS: i32 = 120_000;

/// The hidden action that runs the create helper (see [`create`]).
pub const HELPER_ACTION: &str = "create-helper";

/// Descriptors the helper receives: the container's stdin, stdout, stderr, and the pipe
/// for its error message.
const HELPER_FDS: [i32; 4] = [3, 4, 5, 6];

/// Waits until `pid` (a child) exits, up to `timeout_ms`; true if it did (or if the
/// kernel has no pidfds, in which case the caller simply blocks in waitpid).
fn wait_pid_exit(pid: i32, timeout_ms: i32) -> bool {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return true;
    }
    // SAFETY: the kernel just gave us this descriptor.
    let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) };
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: poll on one descriptor we own.
        match unsafe { libc::poll(&mut p, 1, timeout_ms) } {
            n if n > 0 => return true,
            0 => return false,
            _ if nix::Error::last() == nix::errno::Errno::EINTR => continue,
            _ => return true,
        }
    }
}

/// Environment variable naming the `process.json` of an exec (the helper then runs
/// libcontainer's tenant builder instead of creating the container).
const HELPER_PROCESS_ENV: &str = "SKIFF_HELPER_PROCESS";

/// Environment variable naming the console socket for a process with a terminal.
const HELPER_CONSOLE_ENV: &str = "SKIFF_HELPER_CONSOLE";

/// What the helper reports on success: the exec'd process's pid.
const HELPER_PID_PREFIX: &str = "pid=";

/// Creates the container (its init waits for `start`) in a freshly executed helper
/// process (`/proc/self/exe ... create-helper`, like `runc create`), then loads the result
/// from libcontainer's state. With `console`, the init gets a pty whose master libcontainer
/// sends to that socket ([`crate::console`]).
///
/// libcontainer clones with raw `clone3`, which skips glibc's fork handlers, and the shim
/// has threads (ttrpc, log copiers): a clone taken while another thread holds a lock in
/// libc (malloc, the dynamic loader) hangs in the child. Even a plain `fork()` only resets
/// the locks glibc knows about. A freshly executed helper is single-threaded and shares
/// nothing, which is how libcontainer itself is tested. The helper exits once the init is
/// ready; the init, orphaned, is reparented to the shim (a subreaper), which reaps it.
/// The caller holds the [`crate::reaper::ChildLock`], so the reaper cannot take the
/// helper's exit status.
pub fn create(
    id: &str,
    bundle: &Path,
    stdio: ContainerStdio,
    console: Option<&Path>,
) -> Result<Container> {
    let mut env = Vec::new();
    if let Some(c) = console {
        env.push((HELPER_CONSOLE_ENV, c));
    }
    run_helper(id, bundle, stdio, &env, "creating container")?;
    load(id, bundle)
}

/// Starts an exec process (the OCI `Process` in the file `process`) in the running
/// container, through the helper and libcontainer's tenant builder (like `runc exec
/// --detach --process`). Returns its pid once it has executed its program. The process
/// is cloned as the helper's child and, when the helper exits, reparented to the shim,
/// which reaps it; the caller holds the [`crate::reaper::ChildLock`] until it has
/// recorded the pid.
pub fn exec(
    id: &str,
    bundle: &Path,
    stdio: ContainerStdio,
    process: &Path,
    console: Option<&Path>,
) -> Result<u32> {
    let mut env = vec![(HELPER_PROCESS_ENV, process)];
    if let Some(c) = console {
        env.push((HELPER_CONSOLE_ENV, c));
    }
    let report = run_helper(id, bundle, stdio, &env, "starting exec process")?;
    report
        .strip_prefix(HELPER_PID_PREFIX)
        .and_then(|p| p.trim().parse::<u32>().ok())
        .filter(|p| *p > 0)
        .ok_or_else(|| {
            ShimError::Helper(format!(
                "starting exec process: the helper reported {report:?} instead of a pid"
            ))
        })
}

/// Runs the helper with `stdio` and `env`; returns what it reported on success.
fn run_helper(
    id: &str,
    bundle: &Path,
    stdio: ContainerStdio,
    env: &[(&str, &Path)],
    what: &str,
) -> Result<String> {
    use std::io::Read;
    use std::os::unix::process::CommandExt;

    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| ShimError::sys("creating the helper's pipe", e))?;
    let sources = [
        stdio.stdin.as_raw_fd(),
        stdio.stdout.as_raw_fd(),
        stdio.stderr.as_raw_fd(),
        w.as_raw_fd(),
    ];
    let mut cmd = std::process::Command::new("/proc/self/exe");
    cmd.args(["-namespace", "helper", "-id", id, "-bundle"])
        .arg(bundle)
        .arg(HELPER_ACTION)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null());
    cmd.env_remove(HELPER_PROCESS_ENV)
        .env_remove(HELPER_CONSOLE_ENV);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // SAFETY: only async-signal-safe fcntl/dup2 between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            // Park every source above the targets first, so no dup2 clobbers a source.
            let mut parked = [0i32; 4];
            for (i, fd) in sources.iter().enumerate() {
                parked[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 16);
                if parked[i] < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            for (i, target) in HELPER_FDS.iter().enumerate() {
                if libc::dup2(parked[i], *target) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| ShimError::io("starting the create helper", Path::new("/proc/self/exe"), e))?;
    drop(w);
    drop(stdio);
    if !wait_pid_exit(child.id() as i32, HELPER_TIMEOUT_MS) {
        let _ = child.kill();
        let _ = child.wait();
        return Err(ShimError::Helper(format!(
            "{what}: the create helper did not finish within {} s",
            HELPER_TIMEOUT_MS / 1000
        )));
    }
    let status = child
        .wait()
        .map_err(|e| ShimError::io("waiting for the create helper", Path::new("helper"), e))?;
    // The container's processes inherited the write end until they exec, so read what is
    // there without waiting for EOF.
    let mut msg = String::new();
    let mut f = std::fs::File::from(r);
    // SAFETY: fcntl on the pipe we own.
    unsafe {
        let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
    let mut buf = [0u8; 4096];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        msg.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    if status.success() {
        Ok(msg)
    } else if !msg.is_empty() {
        Err(ShimError::Helper(msg))
    } else {
        Err(ShimError::Helper(format!(
            "{what}: the create helper ended with {status} before reporting"
        )))
    }
}

/// The create helper's `main`: builds the container (or, with `SKIFF_HELPER_PROCESS`,
/// starts an exec process in it) from fds 3-5 (its stdio) and reports on fd 6: an error
/// message, or `pid=N` for an exec. Returns the process exit code.
pub fn helper_main(id: &str, bundle: &Path) -> i32 {
    // The helper is single-threaded: changing its environment is safe. The container's
    // processes get the environment of their spec anyway.
    let process = std::env::var_os(HELPER_PROCESS_ENV).map(PathBuf::from);
    let console = std::env::var_os(HELPER_CONSOLE_ENV).map(PathBuf::from);
    // SAFETY: no other thread exists yet.
    unsafe {
        std::env::remove_var(HELPER_PROCESS_ENV);
        std::env::remove_var(HELPER_CONSOLE_ENV);
    }
    for fd in HELPER_FDS {
        // SAFETY: fcntl on descriptors the shim placed for us; CLOEXEC keeps them (and
        // their copies in the container's init) from reaching the container's program.
        unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFD);
            if fl < 0 || libc::fcntl(fd, libc::F_SETFD, fl | libc::FD_CLOEXEC) < 0 {
                eprintln!("create helper: fd {fd} is missing");
                return 2;
            }
        }
    }
    // SAFETY: the shim handed us these descriptors, and nothing else owns them.
    let (stdio, report) = unsafe {
        (
            ContainerStdio {
                stdin: std::os::fd::OwnedFd::from_raw_fd(HELPER_FDS[0]),
                stdout: std::os::fd::OwnedFd::from_raw_fd(HELPER_FDS[1]),
                stderr: std::os::fd::OwnedFd::from_raw_fd(HELPER_FDS[2]),
            },
            std::fs::File::from_raw_fd(HELPER_FDS[3]),
        )
    };
    let res = match &process {
        Some(p) => build_exec(id, bundle, stdio, p, console.as_deref())
            .map(|pid| format!("{HELPER_PID_PREFIX}{pid}")),
        None => {
            crate::seccomp_cache::prepare(bundle);
            build(id, bundle, stdio, console.as_deref()).map(|_| String::new())
        }
    };
    use std::io::Write;
    match res {
        Ok(msg) => {
            let _ = (&report).write_all(msg.as_bytes());
            0
        }
        Err(e) => {
            let msg = e.to_string();
            // Fits the pipe buffer, so the write never blocks (the shim reads after wait).
            let _ = (&report).write_all(&msg.as_bytes()[..msg.len().min(4096)]);
            1
        }
    }
}

/// Creates the container in this process (the create helper; see [`create`]).
fn build(
    id: &str,
    bundle: &Path,
    stdio: ContainerStdio,
    console: Option<&Path>,
) -> Result<Container> {
    let root = state_root(bundle);
    std::fs::create_dir_all(&root).map_err(|e| ShimError::io("creating", &root, e))?;
    ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_executor(SkiffExecutor)
        .with_root_path(&root)
        .map_err(|e| ShimError::container("setting libcontainer state dir", e))?
        .validate_id()
        .map_err(|e| ShimError::container("validating container id", e))?
        .with_stdin(stdio.stdin)
        .with_stdout(stdio.stdout)
        .with_stderr(stdio.stderr)
        .with_console_socket(console)
        .as_init(bundle)
        .with_systemd(false)
        .with_detach(true)
        .build()
        .map_err(|e| ShimError::container("creating container (libcontainer build)", e))
}

/// Starts an exec process in this process (the helper; see [`exec`]).
fn build_exec(
    id: &str,
    bundle: &Path,
    stdio: ContainerStdio,
    process: &Path,
    console: Option<&Path>,
) -> Result<i32> {
    let root = state_root(bundle);
    ContainerBuilder::new(id.to_string(), SyscallType::default())
        .with_executor(SkiffExecutor)
        .with_root_path(&root)
        .map_err(|e| ShimError::container("setting libcontainer state dir", e))?
        .with_stdin(stdio.stdin)
        .with_stdout(stdio.stdout)
        .with_stderr(stdio.stderr)
        .with_console_socket(console)
        .as_tenant()
        .with_process(Some(process))
        .with_detach(true)
        .build()
        .map(|pid| pid.as_raw())
        .map_err(|e| ShimError::container("starting exec process (libcontainer tenant build)", e))
}

/// Loads the container's libcontainer state from the bundle.
pub fn load(id: &str, bundle: &Path) -> Result<Container> {
    let dir = state_root(bundle).join(id);
    Container::load(dir).map_err(|e| ShimError::container("loading container state", e))
}

/// The cgroup manager of a loaded container (cgroupfs driver).
pub fn cgroup_manager(c: &Container) -> Result<AnyCgroupManager> {
    let cfg = c
        .spec()
        .map_err(|e| ShimError::container("reading container config", e))?;
    create_cgroup_manager(CgroupConfig {
        cgroup_path: cfg.cgroup_path.clone(),
        systemd_cgroup: false,
        container_name: c.id().to_string(),
    })
    .map_err(|e| ShimError::Internal(format!("opening cgroup {:?}: {e}", cfg.cgroup_path)))
}

/// Pids of every process in the container's cgroup.
pub fn pids(c: &Container) -> Result<Vec<u32>> {
    let m = cgroup_manager(c)?;
    let pids = m
        .get_all_pids()
        .map_err(|e| ShimError::Internal(format!("listing cgroup pids: {e}")))?;
    Ok(pids.into_iter().map(|p| p.as_raw() as u32).collect())
}

/// Removes everything libcontainer created for the task: kills what is left, deletes the
/// cgroup and the state dir. Works from the bundle alone (no in-memory state needed),
/// and tolerates a container that never got far. Errors are collected, not short-cut.
pub fn destroy(id: &str, bundle: &Path) -> Result<()> {
    let mut errors = Vec::new();
    let root = state_root(bundle);
    match load(id, bundle) {
        Ok(mut c) => {
            if c.status() != ContainerStatus::Stopped {
                let _ = c.kill(nix::sys::signal::Signal::SIGKILL, true);
            }
            if let Err(e) = c.delete(true) {
                errors.push(format!("deleting container: {e}"));
            }
        }
        Err(_) if !root.join(id).exists() => {}
        Err(e) => errors.push(e.to_string()),
    }
    // The cgroup may exist without state (create failed early, or delete above failed).
    // Opening a cgroup manager parses the mount table; look for the directory first.
    if let Some(cg) = spec_cgroups_path(bundle).filter(|cg| cgroup_exists(cg)) {
        if let Err(e) = remove_cgroup(id, &cg) {
            errors.push(e.to_string());
        }
    }
    if root.exists() {
        if let Err(e) = std::fs::remove_dir_all(&root) {
            errors.push(format!("removing {}: {e}", root.display()));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ShimError::Internal(errors.join("; ")))
    }
}

/// Whether the cgroup at `path` (a cgroups path of the spec) has a directory in any
/// hierarchy: v1 controllers under `/sys/fs/cgroup/<controller>`, or v2 at the root.
fn cgroup_exists(path: &Path) -> bool {
    let rel = path.strip_prefix("/").unwrap_or(path);
    let root = Path::new("/sys/fs/cgroup");
    root.join(rel).is_dir()
        || std::fs::read_dir(root).is_ok_and(|d| d.flatten().any(|e| e.path().join(rel).is_dir()))
}

/// Kills whatever is left in the cgroup and removes it (in every hierarchy).
pub fn remove_cgroup(id: &str, path: &Path) -> Result<()> {
    let m = create_cgroup_manager(CgroupConfig {
        cgroup_path: path.to_path_buf(),
        systemd_cgroup: false,
        container_name: id.to_string(),
    })
    .map_err(|e| ShimError::Internal(format!("opening cgroup {}: {e}", path.display())))?;
    if let Ok(pids) = m.get_all_pids() {
        for p in pids {
            let _ = nix::sys::signal::kill(p, nix::sys::signal::Signal::SIGKILL);
        }
    }
    m.remove()
        .map_err(|e| ShimError::Internal(format!("removing cgroup {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clamps_rlimits_above_the_hard_limit() {
        let dir = tempfile::tempdir().unwrap();
        let spec = serde_json::json!({
            "ociVersion": "1.0.2",
            "process": {"rlimits": [
                {"type": "RLIMIT_NOFILE", "hard": u64::MAX, "soft": u64::MAX},
                {"type": "RLIMIT_CORE", "hard": 0, "soft": 0}
            ]}
        });
        std::fs::write(dir.path().join("config.json"), spec.to_string()).unwrap();
        let mut cur = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit into a local.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) }, 0);
        if cur.rlim_max == libc::RLIM_INFINITY {
            return; // nothing can be above an unlimited hard limit
        }
        let clamped = clamp_rlimits(dir.path()).unwrap();
        assert_eq!(clamped, vec!["RLIMIT_NOFILE".to_string()]);
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("config.json")).unwrap())
                .unwrap();
        assert_eq!(v["process"]["rlimits"][0]["hard"], cur.rlim_max);
        assert_eq!(v["process"]["rlimits"][1]["hard"], 0);
        // Nothing to clamp: the file is left alone.
        assert!(clamp_rlimits(dir.path()).unwrap().is_empty());
    }
}
