//! Starting a shim and talking to it: the client side of containerd's runtime v2
//! protocol (`shim start`, then the Task service over ttrpc).

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use containerd_shim_protos::api;
use containerd_shim_protos::protobuf::MessageField;
use containerd_shim_protos::ttrpc;
use containerd_shim_protos::types::mount::Mount as ProtoMount;
use containerd_shim_protos::{Client, TaskClient};
use skiff_image_store::mount::Mount;

use super::{TaskExit, TaskStatus};
use crate::error::{EngineError, Result};

/// The containerd namespace skiff's own tasks live in.
pub const NAMESPACE: &str = "skiff";

/// The environment variable that tells a serving shim its listener is an inherited fd
/// (the shim's `launch::LISTEN_FD_ENV`).
const LISTEN_FD_ENV: &str = "SKIFF_SHIM_LISTEN_FD";

/// The shim's own log in the bundle (its stderr; the shim's `launch::LOG_FILE`).
const SHIM_LOG: &str = "shim.log";

/// Starts shims for containers.
#[derive(Debug, Clone)]
pub struct ShimLauncher {
    /// The shim binary.
    pub binary: PathBuf,
    /// Where shim sockets go.
    pub socket_dir: PathBuf,
}

/// A connection to one container's shim.
pub struct ShimTask {
    client: TaskClient,
    id: String,
    address: String,
}

/// Stdio of a new task, as containerd passes it: "" for none, a FIFO path, or
/// skiff's `jsonfile://` log URI.
#[derive(Debug, Clone, Default)]
pub struct TaskIo {
    /// Stdin FIFO path or "".
    pub stdin: String,
    /// Stdout destination.
    pub stdout: String,
    /// Stderr destination.
    pub stderr: String,
    /// Allocate a terminal.
    pub terminal: bool,
}

/// The `jsonfile://` URI the shim writes Docker json-file logs to.
pub fn jsonfile_uri(path: &Path, max_size: u64, max_files: u32) -> String {
    format!(
        "jsonfile://{}?max-size={max_size}&max-file={max_files}",
        path.display()
    )
}

impl ShimLauncher {
    /// Finds the shim binary: next to the running executable, else on PATH.
    pub fn locate_binary() -> PathBuf {
        const NAME: &str = "containerd-shim-skiff-v1";
        if let Ok(exe) = std::env::current_exe() {
            if let Some(dir) = exe.parent() {
                let cand = dir.join(NAME);
                if cand.exists() {
                    return cand;
                }
                // Test binaries live one level deeper (target/debug/deps).
                if let Some(cand) = dir.parent().map(|p| p.join(NAME)).filter(|c| c.exists()) {
                    return cand;
                }
            }
        }
        PathBuf::from(NAME)
    }

    /// Starts (or finds) the shim of container `id` for `bundle`; returns its address.
    ///
    /// Does what the shim's own `start` action does for containerd (bind the socket,
    /// launch the serving shim in a new session with the listener as fd 3), without
    /// running the shim binary twice: the serving shim is started directly, as a
    /// grandchild that the kernel reparents, so nothing here has to reap it later.
    pub fn spawn(&self, id: &str, bundle: &Path) -> Result<String> {
        std::fs::create_dir_all(&self.socket_dir)
            .map_err(|e| EngineError::io("creating", &self.socket_dir, e))?;
        let path = self.socket_path(id);
        let address = format!("unix://{}", path.display());
        if path.exists() {
            if UnixStream::connect(&path).is_ok() {
                return Ok(address);
            }
            std::fs::remove_file(&path)
                .map_err(|e| EngineError::io("removing stale shim socket", &path, e))?;
        }
        let listener =
            UnixListener::bind(&path).map_err(|e| EngineError::io("binding", &path, e))?;
        let log_path = bundle.join(SHIM_LOG);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| EngineError::io("opening", &log_path, e))?;
        let mut cmd = Command::new(&self.binary);
        cmd.args(["-namespace", NAMESPACE, "-id", id, "-address", "/dev/null"])
            .args(["-socket", &address])
            .current_dir(bundle)
            .env("SKIFF_SHIM_SOCKET_DIR", &self.socket_dir)
            .env(LISTEN_FD_ENV, "3")
            // The engine keeps the seccomp programs the shim compiles (the shim's
            // `seccomp_cache::KEEP_ENV`; see container::seccomp_cache).
            .env("SKIFF_SHIM_SECCOMP_KEEP", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let fd = listener.as_raw_fd();
        // SAFETY: between fork and exec only async-signal-safe calls: a raw clone (no
        // fork handlers run), _exit, setsid, dup2 and fcntl.
        unsafe {
            cmd.pre_exec(move || {
                // The child std forked exits at once; its child goes on to exec the shim
                // and is reparented when its parent is gone.
                let pid =
                    libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0, 0, 0, 0);
                if pid < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if pid > 0 {
                    libc::_exit(0);
                }
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if fd == 3 {
                    let flags = libc::fcntl(3, libc::F_GETFD);
                    if flags < 0 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                } else if libc::dup2(fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        // Returns once the shim has exec'd (or failed to: std reports the error).
        let spawned = cmd.spawn().and_then(|mut intermediate| intermediate.wait());
        if let Err(e) = spawned {
            let _ = std::fs::remove_file(&path);
            return Err(EngineError::Runtime {
                container: id.to_string(),
                why: format!("cannot run shim {}: {e}", self.binary.display()),
            });
        }
        Ok(address)
    }

    /// The socket of container `id`'s shim: what the shim's `start` would choose with
    /// `SKIFF_SHIM_SOCKET_DIR` (16 hex digits of sha256("<namespace>/<id>")).
    fn socket_path(&self, id: &str) -> PathBuf {
        let digest = skiff_image_store::Digest::of(format!("{NAMESPACE}/{id}").as_bytes());
        self.socket_dir
            .join(format!("{}.sock", &digest.hex()[..16]))
    }
}

fn ctx() -> ttrpc::context::Context {
    ttrpc::context::with_timeout(30 * 1_000_000_000)
}

fn proto_mounts(m: &Mount) -> Vec<ProtoMount> {
    match m {
        Mount::Overlay { lower, upper } => {
            let mut options = vec![format!(
                "lowerdir={}",
                lower
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(":")
            )];
            if let Some((u, w)) = upper {
                options.push(format!("upperdir={}", u.display()));
                options.push(format!("workdir={}", w.display()));
            }
            vec![ProtoMount {
                type_: "overlay".into(),
                source: "overlay".into(),
                options,
                ..Default::default()
            }]
        }
        Mount::Bind { source, readonly } => {
            let mut options = vec!["rbind".to_string()];
            options.push(if *readonly { "ro" } else { "rw" }.to_string());
            vec![ProtoMount {
                type_: "bind".into(),
                source: source.display().to_string(),
                options,
                ..Default::default()
            }]
        }
    }
}

fn exit_of(
    status: u32,
    at: &MessageField<containerd_shim_protos::protobuf::well_known_types::timestamp::Timestamp>,
) -> TaskExit {
    TaskExit {
        code: status as i32,
        at: at
            .as_ref()
            .map(|t| (t.seconds, t.nanos as u32))
            .unwrap_or((0, 0)),
    }
}

impl ShimTask {
    /// Connects to a shim at `address` (`unix:///...`).
    pub fn connect(address: &str, id: &str) -> Result<ShimTask> {
        let failed = |e: &dyn std::fmt::Display| EngineError::Runtime {
            container: id.to_string(),
            why: format!("cannot connect to shim at {address}: {e}"),
        };
        // Connected here rather than by ttrpc's `Client::connect`, which leaks the
        // socket's descriptor when the connect fails (a shim that just went away).
        let client = match address.strip_prefix("unix://") {
            Some(path) if !path.starts_with('@') => {
                let stream =
                    std::os::unix::net::UnixStream::connect(path).map_err(|e| failed(&e))?;
                Client::new(std::os::fd::IntoRawFd::into_raw_fd(stream)).map_err(|e| failed(&e))?
            }
            _ => Client::connect(address).map_err(|e| failed(&e))?,
        };
        Ok(ShimTask {
            client: TaskClient::new(client),
            id: id.to_string(),
            address: address.to_string(),
        })
    }

    /// The shim's address.
    pub fn address(&self) -> &str {
        &self.address
    }

    fn err(&self, what: &str, e: ttrpc::Error) -> EngineError {
        let msg = match &e {
            ttrpc::Error::RpcStatus(s) => s.message.clone(),
            other => other.to_string(),
        };
        if msg.contains("executable file not found")
            || msg.contains("no such file or directory") && what == "create"
        {
            let command = msg.split('"').nth(1).unwrap_or_default().to_string();
            return EngineError::CommandNotFound {
                container: self.id.clone(),
                command,
            };
        }
        if msg.contains("permission denied") && what == "create" {
            let command = msg.split('"').nth(1).unwrap_or_default().to_string();
            return EngineError::CommandNotExecutable {
                container: self.id.clone(),
                command,
            };
        }
        EngineError::Runtime {
            container: self.id.clone(),
            why: format!("{what}: {msg}"),
        }
    }

    /// Creates the task: mounts `rootfs` on the bundle's rootfs, prepares the process.
    pub fn create(&self, bundle: &Path, rootfs: &Mount, io: &TaskIo) -> Result<u32> {
        let req = api::CreateTaskRequest {
            id: self.id.clone(),
            bundle: bundle.display().to_string(),
            rootfs: proto_mounts(rootfs),
            terminal: io.terminal,
            stdin: io.stdin.clone(),
            stdout: io.stdout.clone(),
            stderr: io.stderr.clone(),
            ..Default::default()
        };
        let r = self
            .client
            .create(ctx(), &req)
            .map_err(|e| self.err("create", e))?;
        Ok(r.pid)
    }

    /// Starts the created task; returns its PID.
    pub fn start(&self) -> Result<u32> {
        let req = api::StartRequest {
            id: self.id.clone(),
            ..Default::default()
        };
        let r = self
            .client
            .start(ctx(), &req)
            .map_err(|e| self.err("start", e))?;
        Ok(r.pid)
    }

    /// Blocks until the task exits.
    pub fn wait(&self) -> Result<TaskExit> {
        let req = api::WaitRequest {
            id: self.id.clone(),
            ..Default::default()
        };
        let r = self
            .client
            .wait(ttrpc::context::Context::default(), &req)
            .map_err(|e| self.err("wait", e))?;
        Ok(exit_of(r.exit_status, &r.exited_at))
    }

    /// The task's status and PID.
    pub fn state(&self) -> Result<(TaskStatus, u32)> {
        let req = api::StateRequest {
            id: self.id.clone(),
            ..Default::default()
        };
        let r = self
            .client
            .state(ctx(), &req)
            .map_err(|e| self.err("state", e))?;
        use containerd_shim_protos::types::task::Status as S;
        let status = match r.status.enum_value_or_default() {
            S::CREATED => TaskStatus::Created,
            S::RUNNING => TaskStatus::Running,
            S::PAUSED | S::PAUSING => TaskStatus::Paused,
            S::STOPPED => TaskStatus::Stopped(exit_of(r.exit_status, &r.exited_at)),
            _ => TaskStatus::Unknown,
        };
        Ok((status, r.pid))
    }

    /// Sends a signal to the task's init (or every process with `all`).
    pub fn kill(&self, signal: u32, all: bool) -> Result<()> {
        let req = api::KillRequest {
            id: self.id.clone(),
            signal,
            all,
            ..Default::default()
        };
        self.client
            .kill(ctx(), &req)
            .map_err(|e| self.err("kill", e))?;
        Ok(())
    }

    /// Deletes the task (after it exited): unmounts and forgets it.
    pub fn delete(&self) -> Result<TaskExit> {
        let req = api::DeleteRequest {
            id: self.id.clone(),
            ..Default::default()
        };
        let r = self
            .client
            .delete(ctx(), &req)
            .map_err(|e| self.err("delete", e))?;
        Ok(exit_of(r.exit_status, &r.exited_at))
    }

    /// Asks the shim to exit.
    pub fn shutdown(&self) -> Result<()> {
        let req = api::ShutdownRequest {
            id: self.id.clone(),
            now: true,
            ..Default::default()
        };
        match self.client.shutdown(ctx(), &req) {
            Ok(_) => Ok(()),
            // The shim exits while answering; a closed connection means it is gone.
            Err(ttrpc::Error::Socket(_))
            | Err(ttrpc::Error::LocalClosed)
            | Err(ttrpc::Error::RemoteClosed) => Ok(()),
            Err(e) => Err(self.err("shutdown", e)),
        }
    }

    /// PIDs of every process in the container.
    pub fn pids(&self) -> Result<Vec<u32>> {
        let req = api::PidsRequest {
            id: self.id.clone(),
            ..Default::default()
        };
        let r = self
            .client
            .pids(ctx(), &req)
            .map_err(|e| self.err("pids", e))?;
        Ok(r.processes.iter().map(|p| p.pid).collect())
    }

    /// Prepares an extra process (`exec`) in the running container; `process` is the
    /// OCI runtime-spec Process as JSON.
    pub fn exec(&self, exec_id: &str, process: Vec<u8>, io: &TaskIo) -> Result<()> {
        let any = containerd_shim_protos::protobuf::well_known_types::any::Any {
            type_url: "types.containerd.io/opencontainers/runtime-spec/1/Process".into(),
            value: process,
            ..Default::default()
        };
        let req = api::ExecProcessRequest {
            id: self.id.clone(),
            exec_id: exec_id.to_string(),
            terminal: io.terminal,
            stdin: io.stdin.clone(),
            stdout: io.stdout.clone(),
            stderr: io.stderr.clone(),
            spec: MessageField::some(any),
            ..Default::default()
        };
        self.client
            .exec(ctx(), &req)
            .map_err(|e| self.err("create", e))?;
        Ok(())
    }

    /// Starts an exec process; returns its PID.
    pub fn start_exec(&self, exec_id: &str) -> Result<u32> {
        let req = api::StartRequest {
            id: self.id.clone(),
            exec_id: exec_id.to_string(),
            ..Default::default()
        };
        let r = self
            .client
            .start(ctx(), &req)
            .map_err(|e| self.err("create", e))?;
        Ok(r.pid)
    }

    /// Blocks until an exec process exits.
    pub fn wait_exec(&self, exec_id: &str) -> Result<TaskExit> {
        let req = api::WaitRequest {
            id: self.id.clone(),
            exec_id: exec_id.to_string(),
            ..Default::default()
        };
        let r = self
            .client
            .wait(ttrpc::context::Context::default(), &req)
            .map_err(|e| self.err("wait", e))?;
        Ok(exit_of(r.exit_status, &r.exited_at))
    }

    /// Forgets an exited exec process.
    pub fn delete_exec(&self, exec_id: &str) -> Result<()> {
        let req = api::DeleteRequest {
            id: self.id.clone(),
            exec_id: exec_id.to_string(),
            ..Default::default()
        };
        self.client
            .delete(ctx(), &req)
            .map_err(|e| self.err("delete", e))?;
        Ok(())
    }

    /// Sets the window size of the task's (empty `exec_id`) or an exec's terminal.
    pub fn resize_pty(&self, exec_id: &str, width: u32, height: u32) -> Result<()> {
        let req = api::ResizePtyRequest {
            id: self.id.clone(),
            exec_id: exec_id.to_string(),
            width,
            height,
            ..Default::default()
        };
        self.client
            .resize_pty(ctx(), &req)
            .map_err(|e| self.err("resize", e))?;
        Ok(())
    }

    /// Freezes the container.
    pub fn pause(&self) -> Result<()> {
        let req = api::PauseRequest {
            id: self.id.clone(),
            ..Default::default()
        };
        self.client
            .pause(ctx(), &req)
            .map_err(|e| self.err("pause", e))?;
        Ok(())
    }

    /// Thaws the container.
    pub fn resume(&self) -> Result<()> {
        let req = api::ResumeRequest {
            id: self.id.clone(),
            ..Default::default()
        };
        self.client
            .resume(ctx(), &req)
            .map_err(|e| self.err("resume", e))?;
        Ok(())
    }
}
