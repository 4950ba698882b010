//! End-to-end tests of `containerd-shim-skiff-v1` (run as root): real shim processes, real
//! busybox containers through libcontainer, the ttrpc task API as containerd speaks it.
//! Every test cleans up in `Drop` (kill the shim by pid, unmount, remove cgroups), so a
//! failing assertion leaves nothing behind.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use containerd_shim::api::{
    CloseIORequest, ConnectRequest, CreateTaskRequest, DeleteRequest, DeleteResponse,
    ExecProcessRequest, KillRequest, PauseRequest, PidsRequest, ResizePtyRequest, ResumeRequest,
    ShutdownRequest, StartRequest, StateRequest, StateResponse, StatsRequest, WaitRequest,
};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::{Message, MessageField};
use containerd_shim::protos::shim::shim_ttrpc::TaskClient;
use containerd_shim::protos::ttrpc::{self, context};
use containerd_shim::protos::types::mount::Mount;
use containerd_shim::protos::types::task::Status;
use oci_spec::runtime::{LinuxBuilder, LinuxNamespaceType, ProcessBuilder, RootBuilder, Spec};

/// The shim under test; `SKIFF_SHIM_BIN` overrides it (e.g. with the release build).
fn shim_bin() -> String {
    std::env::var("SKIFF_SHIM_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_containerd-shim-skiff-v1").to_string())
}
const CG_PARENT: &str = "skiff-shim-test";

/// The cgroup parent of one task: its own, so that one test removing its parent never
/// races another test creating a cgroup below a shared one.
fn cgroup_parent(id: &str) -> String {
    format!("{CG_PARENT}-{id}")
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Skips (passes) when not root: containers need root here.
macro_rules! require_root {
    () => {
        if !is_root() {
            eprintln!("skipped: needs root");
            return;
        }
    };
}

/// How the rootfs reaches `<bundle>/rootfs`.
enum Rootfs {
    /// busybox copied straight into `<bundle>/rootfs`; no mounts in the request.
    InBundle,
    /// busybox in `<tmp>/image`, overlaid (with upper/work in `<tmp>`) by the shim.
    Overlay,
    /// busybox in `<tmp>/image`, bind-mounted by the shim.
    Bind,
}

struct Fixture {
    tmp: tempfile::TempDir,
    id: String,
    bundle: PathBuf,
    sock_dir: PathBuf,
    shim_pid: Option<i32>,
    client: Option<TaskClient>,
    address: String,
}

fn make_busybox(dir: &Path) {
    std::fs::create_dir_all(dir.join("bin")).unwrap();
    std::fs::copy("/bin/busybox", dir.join("bin/busybox")).unwrap();
    for name in [
        "sh", "echo", "true", "sleep", "cat", "id", "pwd", "tty", "stty",
    ] {
        symlink("busybox", dir.join("bin").join(name)).unwrap();
    }
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
}

fn ctx() -> context::Context {
    context::with_timeout(Duration::from_secs(30).as_nanos() as i64)
}

impl Fixture {
    fn new(name: &str, args: &[&str], rootfs: Rootfs) -> (Fixture, Vec<Mount>) {
        let tmp = tempfile::Builder::new().prefix("shim").tempdir().unwrap();
        let id = format!("{name}-{}", std::process::id());
        let bundle = tmp.path().join("bundle");
        let root = bundle.join("rootfs");
        std::fs::create_dir_all(&root).unwrap();
        let mut mounts = Vec::new();
        match rootfs {
            Rootfs::InBundle => make_busybox(&root),
            Rootfs::Overlay | Rootfs::Bind => {
                let image = tmp.path().join("image");
                make_busybox(&image);
                let mut m = Mount::new();
                if matches!(rootfs, Rootfs::Overlay) {
                    m.type_ = "overlay".into();
                    m.source = "overlay".into();
                    m.options = vec![
                        format!("lowerdir={}", image.display()),
                        format!("upperdir={}", tmp.path().join("upper").display()),
                        format!("workdir={}", tmp.path().join("work").display()),
                    ];
                } else {
                    m.type_ = "bind".into();
                    m.source = image.display().to_string();
                    m.options = vec!["rbind".into()];
                }
                mounts.push(m);
            }
        }
        write_spec(&bundle, &id, args);
        let sock_dir = tmp.path().join("s");
        let f = Fixture {
            tmp,
            id,
            bundle,
            sock_dir,
            shim_pid: None,
            client: None,
            address: String::new(),
        };
        (f, mounts)
    }

    fn shim_cmd(&self, action: &str) -> Command {
        let mut c = Command::new(shim_bin());
        c.current_dir(&self.bundle)
            .env("SKIFF_SHIM_SOCKET_DIR", &self.sock_dir)
            .args(["-namespace", "skiff-test", "-id", &self.id])
            .args(["-address", "/run/skiff-test/none.sock", action]);
        c
    }

    /// Runs `start`, connects, and learns the shim's pid.
    fn start_shim(&mut self) {
        let out = self.shim_cmd("start").output().unwrap();
        assert!(
            out.status.success(),
            "start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let address = String::from_utf8(out.stdout).unwrap().trim().to_string();
        assert!(address.starts_with("unix:///"), "address {address:?}");
        assert!(address.len() < 100 + 7);
        assert_eq!(
            std::fs::read_to_string(self.bundle.join("address")).unwrap(),
            address
        );
        let client = TaskClient::new(ttrpc::Client::connect(&address).unwrap());
        let resp = client
            .connect(
                ctx(),
                &ConnectRequest {
                    id: self.id.clone(),
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(resp.shim_pid > 0);
        self.shim_pid = Some(resp.shim_pid as i32);
        self.client = Some(client);
        self.address = address;
    }

    fn client(&self) -> &TaskClient {
        self.client.as_ref().unwrap()
    }

    fn log_uri(&self) -> String {
        format!(
            "jsonfile://{}?max-size=1048576&max-file=2",
            self.log_path().display()
        )
    }

    fn log_path(&self) -> PathBuf {
        self.tmp.path().join("logs/c.log")
    }

    fn create(&self, mounts: Vec<Mount>) -> ttrpc::Result<u32> {
        let req = CreateTaskRequest {
            id: self.id.clone(),
            bundle: self.bundle.display().to_string(),
            rootfs: mounts,
            stdout: self.log_uri(),
            stderr: self.log_uri(),
            ..Default::default()
        };
        self.client().create(ctx(), &req).map(|r| r.pid)
    }

    fn start(&self) -> u32 {
        self.client()
            .start(
                ctx(),
                &StartRequest {
                    id: self.id.clone(),
                    ..Default::default()
                },
            )
            .unwrap()
            .pid
    }

    fn wait(&self) -> u32 {
        let r = self
            .client()
            .wait(
                ctx(),
                &WaitRequest {
                    id: self.id.clone(),
                    ..Default::default()
                },
            )
            .unwrap();
        assert!(r.exited_at.seconds > 0);
        r.exit_status
    }

    fn state(&self) -> Status {
        self.client()
            .state(
                ctx(),
                &StateRequest {
                    id: self.id.clone(),
                    ..Default::default()
                },
            )
            .unwrap()
            .status
            .enum_value_or_default()
    }

    fn delete(&self) -> DeleteResponse {
        self.client()
            .delete(
                ctx(),
                &DeleteRequest {
                    id: self.id.clone(),
                    ..Default::default()
                },
            )
            .unwrap()
    }

    fn shutdown(&mut self) {
        self.client()
            .shutdown(
                ctx(),
                &ShutdownRequest {
                    id: self.id.clone(),
                    ..Default::default()
                },
            )
            .unwrap();
        let pid = self.shim_pid.unwrap();
        assert!(
            wait_gone(pid, Duration::from_secs(5)),
            "shim {pid} still alive after shutdown"
        );
        self.shim_pid = None;
        assert!(
            !socket_file(&self.address).exists(),
            "socket left behind after shutdown"
        );
    }

    /// ExecProcess with `process` (the JSON of an OCI Process) as containerd sends it.
    fn exec(
        &self,
        exec_id: &str,
        process: serde_json::Value,
        stdio: [&str; 3],
        terminal: bool,
    ) -> ttrpc::Result<()> {
        self.client()
            .exec(
                ctx(),
                &ExecProcessRequest {
                    id: self.id.clone(),
                    exec_id: exec_id.to_string(),
                    terminal,
                    stdin: stdio[0].to_string(),
                    stdout: stdio[1].to_string(),
                    stderr: stdio[2].to_string(),
                    spec: MessageField::some(Any {
                        type_url: PROCESS_TYPE_URL.to_string(),
                        value: serde_json::to_vec(&process).unwrap(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            )
            .map(|_| ())
    }

    fn start_exec(&self, exec_id: &str) -> ttrpc::Result<u32> {
        self.client()
            .start(
                ctx(),
                &StartRequest {
                    id: self.id.clone(),
                    exec_id: exec_id.to_string(),
                    ..Default::default()
                },
            )
            .map(|r| r.pid)
    }

    fn wait_exec(&self, exec_id: &str) -> u32 {
        self.client()
            .wait(
                ctx(),
                &WaitRequest {
                    id: self.id.clone(),
                    exec_id: exec_id.to_string(),
                    ..Default::default()
                },
            )
            .unwrap()
            .exit_status
    }

    fn state_exec(&self, exec_id: &str) -> ttrpc::Result<StateResponse> {
        self.client().state(
            ctx(),
            &StateRequest {
                id: self.id.clone(),
                exec_id: exec_id.to_string(),
                ..Default::default()
            },
        )
    }

    fn delete_exec(&self, exec_id: &str) -> ttrpc::Result<DeleteResponse> {
        self.client().delete(
            ctx(),
            &DeleteRequest {
                id: self.id.clone(),
                exec_id: exec_id.to_string(),
                ..Default::default()
            },
        )
    }

    fn kill_exec(&self, exec_id: &str, signal: u32) -> ttrpc::Result<()> {
        self.client()
            .kill(
                ctx(),
                &KillRequest {
                    id: self.id.clone(),
                    exec_id: exec_id.to_string(),
                    signal,
                    ..Default::default()
                },
            )
            .map(|_| ())
    }

    fn kill(&self, signal: u32) {
        self.client()
            .kill(
                ctx(),
                &KillRequest {
                    id: self.id.clone(),
                    signal,
                    ..Default::default()
                },
            )
            .unwrap();
    }

    fn resize(&self, exec_id: &str, width: u32, height: u32) {
        self.client()
            .resize_pty(
                ctx(),
                &ResizePtyRequest {
                    id: self.id.clone(),
                    exec_id: exec_id.to_string(),
                    width,
                    height,
                    ..Default::default()
                },
            )
            .unwrap();
    }

    fn pids(&self) -> Vec<(u32, String)> {
        self.client()
            .pids(
                ctx(),
                &PidsRequest {
                    id: self.id.clone(),
                    ..Default::default()
                },
            )
            .unwrap()
            .processes
            .into_iter()
            .map(|p| (p.pid, p.info.type_url.clone()))
            .collect()
    }

    /// A FIFO in the test's temp dir.
    fn fifo(&self, name: &str) -> PathBuf {
        let p = self.tmp.path().join(name);
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        p
    }

    /// A State call for a task that may not exist (just a round trip).
    fn state_or_none(&self) {
        let _ = self.client().state(
            ctx(),
            &StateRequest {
                id: self.id.clone(),
                ..Default::default()
            },
        );
    }

    fn log_entries(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn cgroup_dir(&self, controller: &str) -> PathBuf {
        Path::new("/sys/fs/cgroup")
            .join(controller)
            .join(cgroup_parent(&self.id))
            .join(&self.id)
    }

    /// Nothing of the task is left: no rootfs mount, no libcontainer state, no cgroup.
    fn assert_clean(&self) {
        let root = self.bundle.join("rootfs");
        assert!(!is_mountpoint(&root), "rootfs still mounted");
        assert!(
            !self.bundle.join(".libcontainer").exists(),
            "libcontainer state left"
        );
        for c in ["memory", "pids", "cpu", "freezer"] {
            assert!(!self.cgroup_dir(c).exists(), "cgroup {c} left");
        }
        let consoles: Vec<_> = std::fs::read_dir(&self.bundle)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(".console-"))
            .collect();
        assert!(consoles.is_empty(), "console sockets left: {consoles:?}");
    }
}

/// containerd's type URL for the exec spec (runtime-spec `Process`, as JSON).
const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/// An OCI Process running `args` as root in `/`, with `PATH=/bin`; `extra` overrides keys.
fn process(args: &[&str], extra: serde_json::Value) -> serde_json::Value {
    let mut p = serde_json::json!({
        "args": args,
        "env": ["PATH=/bin"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
    });
    if let serde_json::Value::Object(m) = extra {
        for (k, v) in m {
            p[k] = v;
        }
    }
    p
}

fn rpc_error(e: ttrpc::Error) -> (ttrpc::Code, String) {
    match e {
        ttrpc::Error::RpcStatus(s) => (s.code(), s.message().to_string()),
        other => panic!("not an RPC status: {other:?}"),
    }
}

/// Opens a FIFO for reading without blocking (so the shim's writes are kept).
fn fifo_reader(p: &Path) -> std::fs::File {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(p)
        .unwrap()
}

/// Reads what is buffered in a non-blocking reader.
fn read_available(f: &mut std::fs::File) -> String {
    use std::io::Read;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = f.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn socket_file(address: &str) -> PathBuf {
    PathBuf::from(address.trim_start_matches("unix://"))
}

fn write_spec(bundle: &Path, id: &str, args: &[&str]) {
    write_spec_with(bundle, id, args, false, true);
}

/// A spec running `args`, with a terminal or not, in its own pid namespace or the host's.
fn write_spec_with(bundle: &Path, id: &str, args: &[&str], terminal: bool, pid_ns: bool) {
    let mut spec = Spec::default();
    let process = ProcessBuilder::default()
        .args(args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .terminal(false)
        .env(vec!["PATH=/bin".to_string()])
        .cwd("/")
        .build()
        .unwrap();
    let mut p = spec.process().clone().unwrap();
    p.set_args(process.args().clone())
        .set_terminal(Some(terminal))
        .set_env(process.env().clone());
    spec.set_process(Some(p));
    spec.set_root(Some(
        RootBuilder::default()
            .path(bundle.join("rootfs"))
            .readonly(false)
            .build()
            .unwrap(),
    ));
    let mut linux = spec
        .linux()
        .clone()
        .unwrap_or_else(|| LinuxBuilder::default().build().unwrap());
    linux.set_cgroups_path(Some(PathBuf::from(format!("/{}/{id}", cgroup_parent(id)))));
    if !pid_ns {
        let ns = linux
            .namespaces()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|n| n.typ() != LinuxNamespaceType::Pid)
            .collect();
        linux.set_namespaces(Some(ns));
    }
    spec.set_linux(Some(linux));
    spec.save(bundle.join("config.json")).unwrap();
}

fn is_mountpoint(p: &Path) -> bool {
    let want = p.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(want.as_str()))
}

/// Whether `pid` is gone (or a zombie) within `timeout`.
fn wait_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, r)| r.trim_start().chars().next());
        if stat.is_empty() || state == Some('Z') {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Pids of shim processes (and their forked helpers, which share the command line)
/// started for task `id`.
fn shim_processes(id: &str) -> Vec<i32> {
    let needle = format!("-id\0{id}\0");
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .filter(|pid| {
                    let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                    let cmd = String::from_utf8_lossy(&cmd);
                    cmd.contains("containerd-shim-skiff-v1") && cmd.contains(&needle)
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(pid) = self.shim_pid {
            // SAFETY: kill with a pid we learned from the shim itself.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            wait_gone(pid, Duration::from_secs(2));
        }
        for pid in shim_processes(&self.id) {
            // SAFETY: a leftover process of this test's shim.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        // Kill and remove whatever is left in the test cgroups.
        if let Ok(dirs) = std::fs::read_dir("/sys/fs/cgroup") {
            for d in dirs.flatten() {
                let cg = d.path().join(cgroup_parent(&self.id)).join(&self.id);
                if let Ok(procs) = std::fs::read_to_string(cg.join("cgroup.procs")) {
                    for p in procs.lines().filter_map(|l| l.parse::<i32>().ok()) {
                        // SAFETY: kill a leftover process of this test's cgroup.
                        unsafe { libc::kill(p, libc::SIGKILL) };
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(50));
        if let Ok(dirs) = std::fs::read_dir("/sys/fs/cgroup") {
            for d in dirs.flatten() {
                let parent = d.path().join(cgroup_parent(&self.id));
                let _ = std::fs::remove_dir(parent.join(&self.id));
                let _ = std::fs::remove_dir(parent);
            }
        }
        let root = self.bundle.join("rootfs");
        for _ in 0..4 {
            if !is_mountpoint(&root) {
                break;
            }
            let c = std::ffi::CString::new(root.display().to_string()).unwrap();
            // SAFETY: unmount of our own test mount.
            unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH) };
        }
    }
}

#[test]
fn echo_hello_logs_to_jsonfile_and_cleans_up() {
    require_root!();
    let (mut f, mounts) = Fixture::new("echo", &["/bin/echo", "hello"], Rootfs::Overlay);
    f.start_shim();
    let pid = f.create(mounts).unwrap();
    assert!(pid > 0);
    assert!(is_mountpoint(&f.bundle.join("rootfs")));
    assert_eq!(f.state(), Status::CREATED);
    assert_eq!(f.start(), pid);
    assert_eq!(f.wait(), 0);
    assert_eq!(f.state(), Status::STOPPED);
    // The log is complete once the exit is reported.
    let e = f.log_entries();
    assert_eq!(e.len(), 1, "entries: {e:?}");
    assert_eq!(e[0]["log"], "hello\n");
    assert_eq!(e[0]["stream"], "stdout");
    assert!(e[0]["time"].as_str().unwrap().ends_with('Z'));
    let exit: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f.bundle.join("exit.json")).unwrap())
            .unwrap();
    assert_eq!(exit["exit_status"], 0);
    assert_eq!(exit["pid"], pid);
    let d = f.delete();
    assert_eq!(d.exit_status, 0);
    assert_eq!(d.pid, pid);
    f.assert_clean();
    // The task is gone.
    assert!(f
        .client()
        .state(
            ctx(),
            &StateRequest {
                id: f.id.clone(),
                ..Default::default()
            }
        )
        .is_err());
    f.shutdown();
}

#[test]
fn exit_code_and_stderr() {
    require_root!();
    let (mut f, mounts) = Fixture::new(
        "exit7",
        &["/bin/sh", "-c", "echo out; echo err >&2; exit 7"],
        Rootfs::Bind,
    );
    f.start_shim();
    f.create(mounts).unwrap();
    f.start();
    assert_eq!(f.wait(), 7);
    let e = f.log_entries();
    assert!(
        e.iter()
            .any(|v| v["log"] == "err\n" && v["stream"] == "stderr"),
        "{e:?}"
    );
    assert!(
        e.iter()
            .any(|v| v["log"] == "out\n" && v["stream"] == "stdout"),
        "{e:?}"
    );
    assert_eq!(f.delete().exit_status, 7);
    f.assert_clean();
    f.shutdown();
}

#[test]
fn kill_pause_resume_pids_stats() {
    require_root!();
    let (mut f, mounts) = Fixture::new("sleep", &["/bin/sleep", "100"], Rootfs::InBundle);
    f.start_shim();
    let pid = f.create(mounts).unwrap();
    f.start();
    assert_eq!(f.state(), Status::RUNNING);
    // The container gets a clean signal state (the shim itself ignores SIGPIPE).
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    for field in ["SigIgn:", "SigBlk:"] {
        let line = status.lines().find(|l| l.starts_with(field)).unwrap();
        assert!(line.ends_with("0000000000000000"), "{line}");
    }
    let pids = f
        .client()
        .pids(
            ctx(),
            &PidsRequest {
                id: f.id.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    assert!(
        pids.processes.iter().any(|p| p.pid == pid),
        "{:?}",
        pids.processes
    );
    let stats = f
        .client()
        .stats(
            ctx(),
            &StatsRequest {
                id: f.id.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(stats.stats.type_url, "io.containerd.cgroups.v1.Metrics");
    let m =
        containerd_shim::protos::cgroups::metrics::Metrics::parse_from_bytes(&stats.stats.value)
            .unwrap();
    assert!(m.pids.current >= 1);

    f.client()
        .pause(
            ctx(),
            &PauseRequest {
                id: f.id.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(f.state(), Status::PAUSED);
    let freezer = f.cgroup_dir("freezer").join("freezer.state");
    assert_eq!(std::fs::read_to_string(&freezer).unwrap().trim(), "FROZEN");
    f.client()
        .resume(
            ctx(),
            &ResumeRequest {
                id: f.id.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(f.state(), Status::RUNNING);

    // Delete of a running task is refused.
    assert!(f
        .client()
        .delete(
            ctx(),
            &DeleteRequest {
                id: f.id.clone(),
                ..Default::default()
            }
        )
        .is_err());

    f.client()
        .kill(
            ctx(),
            &KillRequest {
                id: f.id.clone(),
                signal: 9,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(f.wait(), 137);
    let d = f.delete();
    assert_eq!(d.exit_status, 137);
    assert_eq!(d.pid, pid);
    f.assert_clean();
    f.shutdown();
}

#[test]
fn bad_rootfs_mount_fails_cleanly() {
    require_root!();
    let (mut f, _) = Fixture::new("badroot", &["/bin/true"], Rootfs::Overlay);
    f.start_shim();
    let mut m = Mount::new();
    m.type_ = "overlay".into();
    m.source = "overlay".into();
    m.options = vec![
        format!("lowerdir={}", f.tmp.path().join("missing").display()),
        format!("upperdir={}", f.tmp.path().join("upper").display()),
        format!("workdir={}", f.tmp.path().join("work").display()),
    ];
    let err = f.create(vec![m]).unwrap_err();
    let msg = format!("{err:?}");
    assert!(msg.contains("rootfs"), "{msg}");
    f.assert_clean();
    // A broken spec (no such binary) fails at create or start, and also cleans up.
    let (g, mounts) = Fixture::new("badroot2", &["/bin/true"], Rootfs::Bind);
    std::fs::write(g.bundle.join("config.json"), b"{not json").unwrap();
    let err = f
        .client()
        .create(
            ctx(),
            &CreateTaskRequest {
                id: g.id.clone(),
                bundle: g.bundle.display().to_string(),
                rootfs: mounts,
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(format!("{err:?}").contains("spec"), "{err:?}");
    g.assert_clean();
    f.shutdown();
}

#[test]
fn libcontainer_failures_are_reported_and_cleaned() {
    require_root!();
    // The binary does not exist in the rootfs: the container's init fails before start.
    let (mut f, mounts) = Fixture::new("nobin", &["/bin/nope"], Rootfs::Overlay);
    f.start_shim();
    let err = f.create(mounts).unwrap_err();
    let msg = match err {
        ttrpc::Error::RpcStatus(s) => s.message,
        other => panic!("{other:?}"),
    };
    assert!(msg.contains("creating container"), "{msg}");
    // Worded as runc does, for front ends that map it to "command not found".
    assert!(
        msg.contains(r#"exec: "/bin/nope": executable file not found in $PATH"#),
        "{msg}"
    );
    f.assert_clean();
    // The root path is missing: libcontainer fails before cloning anything.
    let (g, _) = Fixture::new("noroot", &["/bin/true"], Rootfs::InBundle);
    std::fs::remove_dir_all(g.bundle.join("rootfs")).unwrap();
    let err = f
        .client()
        .create(
            ctx(),
            &CreateTaskRequest {
                id: g.id.clone(),
                bundle: g.bundle.display().to_string(),
                ..Default::default()
            },
        )
        .unwrap_err();
    assert!(format!("{err:?}").contains("creating container"), "{err:?}");
    g.assert_clean();
    // The shim still works afterwards.
    let (h, _) = Fixture::new("after", &["/bin/true"], Rootfs::InBundle);
    let c = f.client();
    c.create(
        ctx(),
        &CreateTaskRequest {
            id: h.id.clone(),
            bundle: h.bundle.display().to_string(),
            ..Default::default()
        },
    )
    .unwrap();
    c.start(
        ctx(),
        &StartRequest {
            id: h.id.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    let w = c
        .wait(
            ctx(),
            &WaitRequest {
                id: h.id.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(w.exit_status, 0);
    c.delete(
        ctx(),
        &DeleteRequest {
            id: h.id.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    h.assert_clean();
    f.shutdown();
}

#[test]
fn stdin_fifo_and_plain_file_stdout() {
    require_root!();
    let (mut f, mounts) = Fixture::new("stdin", &["/bin/cat"], Rootfs::InBundle);
    f.start_shim();
    let fifo = f.tmp.path().join("stdin.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let out = f.tmp.path().join("out.txt");
    f.client()
        .create(
            ctx(),
            &CreateTaskRequest {
                id: f.id.clone(),
                bundle: f.bundle.display().to_string(),
                rootfs: mounts,
                stdin: fifo.display().to_string(),
                stdout: out.display().to_string(),
                stderr: String::new(),
                ..Default::default()
            },
        )
        .unwrap();
    f.start();
    {
        use std::io::Write;
        let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
        w.write_all(b"from stdin\n").unwrap();
    } // EOF: cat exits.
    assert_eq!(f.wait(), 0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "from stdin\n");
    assert_eq!(f.delete().exit_status, 0);
    f.assert_clean();
    f.shutdown();
}

#[test]
fn start_is_idempotent_and_delete_action_cleans_after_a_dead_shim() {
    require_root!();
    let (mut f, mounts) = Fixture::new("dead", &["/bin/sleep", "100"], Rootfs::Bind);
    f.start_shim();
    // A second start finds the running shim.
    let out = f.shim_cmd("start").output().unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), f.address);
    let pid = f.create(mounts).unwrap();
    f.start();
    // The shim dies hard; its container keeps running.
    let shim = f.shim_pid.take().unwrap();
    // SAFETY: kill the shim we started.
    unsafe { libc::kill(shim, libc::SIGKILL) };
    assert!(wait_gone(shim, Duration::from_secs(5)));
    let out = f.shim_cmd("delete").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let resp = DeleteResponse::parse_from_bytes(&out.stdout).unwrap();
    assert_eq!(resp.exit_status, 137);
    assert!(wait_gone(pid as i32, Duration::from_secs(5)));
    f.assert_clean();
    assert!(!socket_file(&f.address).exists());
}

#[test]
fn exec_output_status_env_cwd_user() {
    require_root!();
    let (mut f, mounts) = Fixture::new("exec", &["/bin/sleep", "100"], Rootfs::Overlay);
    f.start_shim();
    let init = f.create(mounts).unwrap();
    // Registered before the task starts, started once it runs.
    let out = f.tmp.path().join("exec1.txt");
    // rlimits above the shim's own hard limits are clamped (as for the task's spec).
    f.exec(
        "e1",
        process(
            &["echo", "hi"],
            serde_json::json!({"rlimits": [
                {"type": "RLIMIT_NOFILE", "hard": u64::MAX, "soft": u64::MAX}
            ]}),
        ),
        ["", out.to_str().unwrap(), ""],
        false,
    )
    .unwrap();
    assert_eq!(
        f.state_exec("e1").unwrap().status.enum_value_or_default(),
        Status::CREATED
    );
    let (code, msg) = rpc_error(f.start_exec("e1").unwrap_err());
    assert_eq!(code, ttrpc::Code::FAILED_PRECONDITION, "{msg}");
    f.start();
    let pid = f.start_exec("e1").unwrap();
    assert!(pid > 0 && pid != init);
    assert_eq!(f.wait_exec("e1"), 0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "hi\n");
    let st = f.state_exec("e1").unwrap();
    assert_eq!(st.status.enum_value_or_default(), Status::STOPPED);
    assert_eq!(
        (st.pid, st.exit_status, st.exec_id.as_str()),
        (pid, 0, "e1")
    );
    assert!(st.exited_at.seconds > 0);
    // The task itself is untouched.
    assert_eq!(f.state(), Status::RUNNING);
    let d = f.delete_exec("e1").unwrap();
    assert_eq!((d.pid, d.exit_status), (pid, 0));
    let (code, _) = rpc_error(f.state_exec("e1").unwrap_err());
    assert_eq!(code, ttrpc::Code::NOT_FOUND);

    // Exit status; stdin and stdout FIFOs (stdin copied until the writer closes it).
    let stdin = f.fifo("e2.in");
    let stdout = f.fifo("e2.out");
    let mut reader = fifo_reader(&stdout);
    f.exec(
        "e2",
        process(&["sh", "-c", "cat; exit 5"], serde_json::json!({})),
        [stdin.to_str().unwrap(), stdout.to_str().unwrap(), ""],
        false,
    )
    .unwrap();
    f.start_exec("e2").unwrap();
    {
        use std::io::Write;
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(&stdin)
            .unwrap();
        w.write_all(b"from stdin\n").unwrap();
    }
    assert_eq!(f.wait_exec("e2"), 5);
    assert_eq!(read_available(&mut reader), "from stdin\n");
    assert_eq!(f.delete_exec("e2").unwrap().exit_status, 5);

    // Environment, working directory, user and groups; output to a json-file log.
    let log = f.tmp.path().join("logs/exec3.log");
    f.exec(
        "e3",
        process(
            &[
                "sh",
                "-c",
                "echo $FOO; pwd; id -u; id -g; id -G; echo oops >&2",
            ],
            serde_json::json!({
                "env": ["PATH=/bin", "FOO=bar"],
                "cwd": "/tmp",
                "user": {"uid": 1000, "gid": 1000, "additionalGids": [5]},
            }),
        ),
        [
            "",
            &format!("jsonfile://{}", log.display()),
            &format!("jsonfile://{}", log.display()),
        ],
        false,
    )
    .unwrap();
    f.start_exec("e3").unwrap();
    assert_eq!(f.wait_exec("e3"), 0);
    let entries: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let stdout: Vec<&str> = entries
        .iter()
        .filter(|e| e["stream"] == "stdout")
        .map(|e| e["log"].as_str().unwrap())
        .collect();
    assert_eq!(
        stdout,
        ["bar\n", "/tmp\n", "1000\n", "1000\n", "1000 5\n"],
        "{entries:?}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["stream"] == "stderr" && e["log"] == "oops\n"),
        "{entries:?}"
    );

    // Without capabilities of its own, an exec gets the task's (not all of the shim's).
    let out = f.tmp.path().join("caps.txt");
    f.exec(
        "caps",
        process(&["cat", "/proc/self/status"], serde_json::json!({})),
        ["", out.to_str().unwrap(), ""],
        false,
    )
    .unwrap();
    f.start_exec("caps").unwrap();
    assert_eq!(f.wait_exec("caps"), 0);
    let caps = |status: &str| -> Vec<String> {
        status
            .lines()
            .filter(|l| l.starts_with("CapEff:") || l.starts_with("CapBnd:"))
            .map(str::to_string)
            .collect()
    };
    let init_status = std::fs::read_to_string(format!("/proc/{init}/status")).unwrap();
    let exec_caps = caps(&std::fs::read_to_string(&out).unwrap());
    assert_eq!(exec_caps, caps(&init_status));
    let own = caps(&std::fs::read_to_string("/proc/self/status").unwrap());
    assert_ne!(
        exec_caps, own,
        "the spec's capabilities are fewer than root's"
    );

    // CloseIO ends stdin even while the client keeps its end of the FIFO open.
    let stdin = f.fifo("e4.in");
    let out = f.tmp.path().join("exec4.txt");
    f.exec(
        "e4",
        process(&["cat"], serde_json::json!({})),
        [stdin.to_str().unwrap(), out.to_str().unwrap(), ""],
        false,
    )
    .unwrap();
    f.start_exec("e4").unwrap();
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .open(&stdin)
        .unwrap();
    {
        use std::io::Write;
        w.write_all(b"x\n").unwrap();
    }
    // Let the copier pass the line on before stdin closes.
    let deadline = Instant::now() + Duration::from_secs(5);
    while std::fs::read_to_string(&out).unwrap_or_default().is_empty() && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    f.client()
        .close_io(
            ctx(),
            &CloseIORequest {
                id: f.id.clone(),
                exec_id: "e4".into(),
                stdin: true,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(f.wait_exec("e4"), 0);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "x\n");
    drop(w);

    f.kill(9);
    assert_eq!(f.wait(), 137);
    f.delete();
    f.assert_clean();
    f.shutdown();
}

#[test]
fn exec_errors() {
    require_root!();
    let (mut f, mounts) = Fixture::new("execerr", &["/bin/sleep", "100"], Rootfs::Bind);
    f.start_shim();
    f.create(mounts).unwrap();
    f.start();
    // A missing binary fails at Start, worded as runc does.
    for (exec_id, bin) in [("nope1", "/bin/nope"), ("nope2", "nope")] {
        f.exec(
            exec_id,
            process(&[bin], serde_json::json!({})),
            ["", "", ""],
            false,
        )
        .unwrap();
        let (_, msg) = rpc_error(f.start_exec(exec_id).unwrap_err());
        let want = format!("exec: \"{bin}\": executable file not found in $PATH");
        assert!(msg.contains(&want), "{msg}");
        // It is stopped with a shell's "not found" status, and can be deleted.
        assert_eq!(f.wait_exec(exec_id), 127);
        let st = f.state_exec(exec_id).unwrap();
        assert_eq!(st.status.enum_value_or_default(), Status::STOPPED);
        assert_eq!(f.delete_exec(exec_id).unwrap().exit_status, 127);
    }
    // Duplicate exec ids.
    let p = process(&["true"], serde_json::json!({}));
    f.exec("dup", p.clone(), ["", "", ""], false).unwrap();
    let (code, msg) = rpc_error(f.exec("dup", p.clone(), ["", "", ""], false).unwrap_err());
    assert_eq!(code, ttrpc::Code::ALREADY_EXISTS, "{msg}");
    f.delete_exec("dup").unwrap();
    // Unusable requests.
    let (code, msg) = rpc_error(
        f.exec(
            "bad",
            serde_json::json!({"args": ["true"], "user": {"uid": 0, "gid": 0}}),
            ["", "", ""],
            false,
        )
        .unwrap_err(),
    );
    assert_eq!(code, ttrpc::Code::INVALID_ARGUMENT, "{msg}");
    assert!(msg.contains("cwd"), "{msg}");
    let (code, _) = rpc_error(f.exec("a/b", p.clone(), ["", "", ""], false).unwrap_err());
    assert_eq!(code, ttrpc::Code::INVALID_ARGUMENT);
    let (code, _) = rpc_error(
        f.exec("bad", p.clone(), ["rel", "", ""], false)
            .unwrap_err(),
    );
    assert_eq!(code, ttrpc::Code::INVALID_ARGUMENT);
    let (code, _) = rpc_error(f.start_exec("ghost").unwrap_err());
    assert_eq!(code, ttrpc::Code::NOT_FOUND);
    // A paused task takes no exec.
    f.client()
        .pause(
            ctx(),
            &PauseRequest {
                id: f.id.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    let (code, msg) = rpc_error(f.exec("p", p.clone(), ["", "", ""], false).unwrap_err());
    assert_eq!(code, ttrpc::Code::FAILED_PRECONDITION, "{msg}");
    assert!(msg.contains("paused"), "{msg}");
    f.client()
        .resume(
            ctx(),
            &ResumeRequest {
                id: f.id.clone(),
                ..Default::default()
            },
        )
        .unwrap();
    // Registered while running, started after the task stopped: refused; and a stopped
    // task takes no new exec.
    f.exec("late", p.clone(), ["", "", ""], false).unwrap();
    f.kill(9);
    assert_eq!(f.wait(), 137);
    let (code, msg) = rpc_error(f.start_exec("late").unwrap_err());
    assert_eq!(code, ttrpc::Code::FAILED_PRECONDITION, "{msg}");
    let (code, msg) = rpc_error(f.exec("s", p, ["", "", ""], false).unwrap_err());
    assert_eq!(code, ttrpc::Code::FAILED_PRECONDITION, "{msg}");
    assert!(msg.contains("stopped"), "{msg}");
    f.delete();
    f.assert_clean();
    f.shutdown();
}

#[test]
fn exec_kill_pids_and_task_delete() {
    require_root!();
    // The host's pid namespace: killing the init does not take the exec with it, so the
    // task's Delete has to.
    let (mut f, mounts) = Fixture::new("execkill", &["/bin/sleep", "100"], Rootfs::InBundle);
    write_spec_with(&f.bundle, &f.id, &["/bin/sleep", "100"], false, false);
    f.start_shim();
    let init = f.create(mounts).unwrap();
    f.start();
    let sleep = process(&["sleep", "100"], serde_json::json!({}));
    f.exec("k", sleep.clone(), ["", "", ""], false).unwrap();
    let pid = f.start_exec("k").unwrap();
    let pids = f.pids();
    assert!(pids.iter().any(|(p, _)| *p == init), "{pids:?}");
    assert!(
        pids.iter()
            .any(|(p, info)| *p == pid && info == "containerd.runc.v1.ProcessDetails"),
        "{pids:?}"
    );
    // A running exec cannot be deleted; SIGKILL ends it with 137.
    let (code, _) = rpc_error(f.delete_exec("k").unwrap_err());
    assert_eq!(code, ttrpc::Code::FAILED_PRECONDITION);
    f.kill_exec("k", 9).unwrap();
    assert_eq!(f.wait_exec("k"), 137);
    let (code, _) = rpc_error(f.kill_exec("k", 9).unwrap_err());
    assert_eq!(code, ttrpc::Code::NOT_FOUND);
    assert_eq!(f.delete_exec("k").unwrap().exit_status, 137);
    assert!(wait_gone(pid as i32, Duration::from_secs(5)));

    // An exec still running when the task is deleted does not survive it.
    f.exec("left", sleep, ["", "", ""], false).unwrap();
    let left = f.start_exec("left").unwrap();
    f.kill(9);
    assert_eq!(f.wait(), 137);
    assert_eq!(
        f.state_exec("left").unwrap().status.enum_value_or_default(),
        Status::RUNNING
    );
    f.delete();
    assert!(
        wait_gone(left as i32, Duration::from_secs(5)),
        "exec {left} outlived its task"
    );
    f.assert_clean();
    f.shutdown();
}

#[test]
fn exec_dies_with_its_task() {
    require_root!();
    // Its own pid namespace (the default): the exec ends with the init.
    let (mut f, mounts) = Fixture::new("execns", &["/bin/sleep", "100"], Rootfs::InBundle);
    f.start_shim();
    f.create(mounts).unwrap();
    f.start();
    f.exec(
        "x",
        process(&["sleep", "100"], serde_json::json!({})),
        ["", "", ""],
        false,
    )
    .unwrap();
    let pid = f.start_exec("x").unwrap();
    f.kill(9);
    assert_eq!(f.wait(), 137);
    assert_eq!(f.wait_exec("x"), 137);
    f.delete();
    assert!(wait_gone(pid as i32, Duration::from_secs(5)));
    f.assert_clean();
    f.shutdown();
}

#[test]
fn terminal_task_and_exec() {
    require_root!();
    let args = ["/bin/sh", "-c", "tty; stty size"];
    let (mut f, mounts) = Fixture::new("tty", &args, Rootfs::InBundle);
    write_spec_with(&f.bundle, &f.id, &args, true, true);
    f.start_shim();
    // The request and the spec must agree about the terminal.
    let (code, msg) = rpc_error(f.create(mounts.clone()).unwrap_err());
    assert_eq!(code, ttrpc::Code::INVALID_ARGUMENT, "{msg}");
    f.assert_clean();
    let out = f.tmp.path().join("tty.txt");
    let create = |f: &Fixture, mounts: Vec<Mount>, stdout: &Path| {
        f.client()
            .create(
                ctx(),
                &CreateTaskRequest {
                    id: f.id.clone(),
                    bundle: f.bundle.display().to_string(),
                    rootfs: mounts,
                    terminal: true,
                    stdout: stdout.display().to_string(),
                    ..Default::default()
                },
            )
            .unwrap();
    };
    create(&f, mounts, &out);
    // Sized before it runs, so `stty size` sees it.
    f.resize("", 100, 40);
    f.start();
    assert_eq!(f.wait(), 0);
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(lines[0].starts_with("/dev/pts/"), "{text:?}");
    assert_eq!(lines[1], "40 100", "{text:?}");
    assert!(f.state_exec("").unwrap().terminal);
    f.delete();
    f.assert_clean();

    // A terminal exec (in a task without one): stdin through the pty, output to a log.
    write_spec(&f.bundle, &f.id, &["/bin/sleep", "100"]);
    f.create(vec![]).unwrap();
    f.start();
    let stdin = f.fifo("tty.in");
    let log = f.tmp.path().join("logs/tty.log");
    f.exec(
        "t",
        process(
            &["sh", "-c", "read line; tty; stty size; echo \"got $line\""],
            serde_json::json!({}),
        ),
        [
            stdin.to_str().unwrap(),
            &format!("jsonfile://{}", log.display()),
            "",
        ],
        true,
    )
    .unwrap();
    assert!(f.state_exec("t").unwrap().terminal);
    f.start_exec("t").unwrap();
    f.resize("t", 100, 40);
    {
        use std::io::Write;
        let mut w = std::fs::OpenOptions::new()
            .write(true)
            .open(&stdin)
            .unwrap();
        w.write_all(b"go\n").unwrap();
    }
    assert_eq!(f.wait_exec("t"), 0);
    let text: String = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            assert_eq!(v["stream"], "stdout");
            v["log"].as_str().unwrap().to_string()
        })
        .collect();
    let lines: Vec<&str> = text.lines().map(|l| l.trim_end_matches('\r')).collect();
    // The pty echoes the input line first.
    assert_eq!(lines[0], "go", "{text:?}");
    assert!(lines[1].starts_with("/dev/pts/"), "{text:?}");
    assert_eq!(lines[2], "40 100", "{text:?}");
    assert_eq!(lines[3], "got go", "{text:?}");
    f.delete_exec("t").unwrap();
    f.kill(9);
    assert_eq!(f.wait(), 137);
    f.delete();
    f.assert_clean();
    f.shutdown();
}

/// Idle RSS and create→start→exit latency of `/bin/true`; run with
/// `cargo build --release -p containerd-shim-skiff-v1 && SKIFF_SHIM_BIN=target/release/containerd-shim-skiff-v1
/// cargo test -p containerd-shim-skiff-v1 --test shim -- --ignored --nocapture measure`.
#[test]
#[ignore]
fn measure() {
    require_root!();
    let (mut f, _) = Fixture::new("measure", &["/bin/true"], Rootfs::InBundle);
    f.start_shim();
    let pid = f.shim_pid.unwrap();
    let rss = |pid: i32| {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
                .unwrap_or_default()
        };
        format!(
            "VmRSS {} (anon {}, file {}), threads {}",
            field("VmRSS:"),
            field("RssAnon:"),
            field("RssFile:"),
            field("Threads:")
        )
    };
    let reconnect = |f: &mut Fixture| {
        f.client = Some(TaskClient::new(ttrpc::Client::connect(&f.address).unwrap()));
    };
    f.client = None;
    // The shim trims its memory after 5 s without work.
    std::thread::sleep(Duration::from_millis(5_500));
    println!("idle shim, no client: {}", rss(pid));
    reconnect(&mut f);
    f.state_or_none();
    println!("idle shim, client connected: {}", rss(pid));
    let mut times = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        f.create(vec![]).unwrap();
        f.start();
        assert_eq!(f.wait(), 0);
        times.push(t.elapsed());
        f.delete();
    }
    println!("after 10 tasks, client connected: {}", rss(pid));
    f.client = None;
    std::thread::sleep(Duration::from_millis(5_500));
    println!("after 10 tasks, no client, idle: {}", rss(pid));
    reconnect(&mut f);
    // A shim idling beside its running container, client still connected.
    write_spec(&f.bundle, &f.id, &["/bin/sleep", "60"]);
    f.create(vec![]).unwrap();
    f.start();
    std::thread::sleep(Duration::from_millis(5_500));
    println!(
        "beside a running container, client connected, idle: {}",
        rss(pid)
    );
    let mut exec_times = Vec::new();
    for i in 0..10 {
        let exec_id = format!("m{i}");
        let t = Instant::now();
        f.exec(
            &exec_id,
            process(&["true"], serde_json::json!({})),
            ["", "", ""],
            false,
        )
        .unwrap();
        f.start_exec(&exec_id).unwrap();
        assert_eq!(f.wait_exec(&exec_id), 0);
        exec_times.push(t.elapsed());
        f.delete_exec(&exec_id).unwrap();
    }
    f.exec(
        "tty",
        process(&["sleep", "60"], serde_json::json!({})),
        ["", "", ""],
        true,
    )
    .unwrap();
    f.start_exec("tty").unwrap();
    std::thread::sleep(Duration::from_millis(5_500));
    println!(
        "after 10 execs, beside a running container and a terminal exec, idle: {}",
        rss(pid)
    );
    f.client()
        .kill(
            ctx(),
            &KillRequest {
                id: f.id.clone(),
                signal: 9,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(f.wait(), 137);
    f.delete();
    times.sort();
    println!(
        "create->start->exit of /bin/true: median {:?}, min {:?}, max {:?}",
        times[5], times[0], times[9]
    );
    exec_times.sort();
    println!(
        "exec->start->exit of true: median {:?}, min {:?}, max {:?}",
        exec_times[5], exec_times[0], exec_times[9]
    );
    f.shutdown();
}

/// Many create/start/wait/delete cycles while a second client hammers State: the shim
/// must never hang in libcontainer's clone (a raw clone3 from a multi-threaded process
/// can inherit a lock another thread holds; the shim creates from an exec'd helper).
/// `SKIFF_SHIM_STRESS=N` sets the number of cycles (default 100).
#[test]
fn stress_create_under_concurrent_requests() {
    require_root!();
    let (mut f, _) = Fixture::new("stress", &["/bin/true"], Rootfs::InBundle);
    f.start_shim();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hammer = {
        let stop = stop.clone();
        let address = f.address.clone();
        let id = f.id.clone();
        std::thread::spawn(move || {
            let c = TaskClient::new(ttrpc::Client::connect(&address).unwrap());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = c.state(
                    ctx(),
                    &StateRequest {
                        id: id.clone(),
                        ..Default::default()
                    },
                );
            }
        })
    };
    let cycles: usize = std::env::var("SKIFF_SHIM_STRESS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    for _ in 0..cycles {
        f.create(vec![]).unwrap();
        f.start();
        assert_eq!(f.wait(), 0);
        f.delete();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    hammer.join().unwrap();
    f.shutdown();
}
