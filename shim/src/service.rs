//! The containerd task service (ttrpc `containerd.task.v3.Task`, also served under the
//! `containerd.task.v2.Task` name that containerd 1.6/1.7 call). One shim runs one task,
//! and any number of exec processes in it (see the crate docs for the request fields).

use std::collections::HashMap;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use containerd_shim::api::{
    CheckpointTaskRequest, CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest,
    CreateTaskResponse, DeleteRequest, DeleteResponse, Empty, ExecProcessRequest, KillRequest,
    PauseRequest, PidsRequest, PidsResponse, ResizePtyRequest, ResumeRequest, ShutdownRequest,
    StartRequest, StartResponse, StateRequest, StateResponse, StatsRequest, StatsResponse,
    UpdateTaskRequest, WaitRequest, WaitResponse,
};
use containerd_shim::protos::protobuf::well_known_types::any::Any;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::protobuf::{EnumOrUnknown, MessageField};
use containerd_shim::protos::shim::shim_ttrpc::Task;
use containerd_shim::protos::ttrpc::{self, TtrpcContext};
use containerd_shim::protos::types::task::{ProcessInfo, Status};
use libcontainer::container::Container;
use libcontainer::signal::Signal;

use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExecAdded, TaskExecStarted, TaskExit, TaskIO, TaskPaused,
    TaskResumed, TaskStart,
};
use containerd_shim::protos::topics::{
    TASK_CREATE_EVENT_TOPIC, TASK_DELETE_EVENT_TOPIC, TASK_EXEC_ADDED_EVENT_TOPIC,
    TASK_EXEC_STARTED_EVENT_TOPIC, TASK_EXIT_EVENT_TOPIC, TASK_PAUSED_EVENT_TOPIC,
    TASK_RESUMED_EVENT_TOPIC, TASK_START_EVENT_TOPIC,
};

use crate::console::ConsoleSocket;
use crate::container;
use crate::error::{Result, ShimError};
use crate::events::Events;
use crate::exit::Exit;
use crate::reaper::ChildLock;
use crate::rootfs::{self, RootfsMount};
use crate::stdio::{self, ContainerStdio, OutputDone, ProcIo};
use crate::timefmt::unix_parts;

/// How long an exit report waits for the log copiers to drain (a process outside the
/// container's pid namespace could keep a pipe open forever).
const OUTPUT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the shim waits for libcontainer to send a pty master once the helper is done
/// (it was sent before the helper returned, so this only guards against surprises).
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a task's Delete waits for its exec processes' exits to be recorded.
const EXEC_EXIT_TIMEOUT: Duration = Duration::from_secs(5);

/// The `type_url` containerd gives the exec spec (`typeurl` of runtime-spec's `Process`).
pub const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/// The `type_url` of the `Pids` detail naming an exec process (as containerd's runc shim).
pub const PROCESS_DETAILS_TYPE_URL: &str = "containerd.runc.v1.ProcessDetails";

/// Lifecycle of a process (the task's init, or an exec; execs are never Paused).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Created,
    Running,
    Paused,
    Stopped,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Phase::Created => "created",
            Phase::Running => "running",
            Phase::Paused => "paused",
            Phase::Stopped => "stopped",
        }
    }

    fn status(self) -> Status {
        match self {
            Phase::Created => Status::CREATED,
            Phase::Running => Status::RUNNING,
            Phase::Paused => Status::PAUSED,
            Phase::Stopped => Status::STOPPED,
        }
    }
}

/// What the shim tracks of one process: the init or an exec.
struct ProcState {
    stdin: String,
    stdout: String,
    stderr: String,
    terminal: bool,
    /// 0 until started (execs).
    pid: u32,
    exit: Option<Exit>,
    output: Option<OutputDone>,
    io: ProcIo,
}

impl ProcState {
    fn new(stdin: &str, stdout: &str, stderr: &str, terminal: bool) -> Self {
        ProcState {
            stdin: stdin.to_string(),
            stdout: stdout.to_string(),
            stderr: stderr.to_string(),
            terminal,
            pid: 0,
            exit: None,
            output: None,
            io: ProcIo::default(),
        }
    }
}

/// An exec process (ExecProcess, then Start with its exec id).
struct ExecState {
    p: ProcState,
    /// Created, Running or Stopped.
    phase: Phase,
    /// The OCI `Process` JSON handed to libcontainer.
    process: Vec<u8>,
    /// Window size (width, height) to give the pty once it exists.
    size: Option<(u32, u32)>,
    /// Signals go through this once started, so they never reach a reused pid.
    pidfd: Option<OwnedFd>,
}

/// The one task this shim runs.
struct TaskState {
    id: String,
    bundle: PathBuf,
    phase: Phase,
    init: ProcState,
    execs: HashMap<String, ExecState>,
    container: Container,
}

impl TaskState {
    /// The init (`exec_id` "") or the exec `exec_id`.
    fn proc_mut(&mut self, exec_id: &str) -> Result<&mut ProcState> {
        if exec_id.is_empty() {
            return Ok(&mut self.init);
        }
        let id = &self.id;
        self.execs
            .get_mut(exec_id)
            .map(|e| &mut e.p)
            .ok_or_else(|| exec_not_found(id, exec_id))
    }

    fn exec_mut(&mut self, exec_id: &str) -> Result<&mut ExecState> {
        let id = &self.id;
        self.execs
            .get_mut(exec_id)
            .ok_or_else(|| exec_not_found(id, exec_id))
    }

    /// Which live process has `pid`: Some("") for the init, Some(exec id) for an exec.
    fn waiting_for(&self, pid: u32) -> Option<String> {
        if self.init.pid == pid && self.init.exit.is_none() {
            return Some(String::new());
        }
        self.execs
            .iter()
            .find(|(_, e)| e.phase == Phase::Running && e.p.pid == pid && e.p.exit.is_none())
            .map(|(k, _)| k.clone())
    }
}

fn exec_not_found(id: &str, exec_id: &str) -> ShimError {
    ShimError::NotFound(format!("exec {exec_id} in task {id}"))
}

/// Shared state of the shim process: its task, and the signal that ends the process.
pub struct Shim {
    events: Events,
    children: ChildLock,
    task: Mutex<Option<TaskState>>,
    exited: Condvar,
    exit_wake: UnixStream,
    exit_now: AtomicBool,
}

/// What an exec's Start produced.
struct Started {
    pid: u32,
    pidfd: Option<OwnedFd>,
    output: OutputDone,
    io: ProcIo,
}

impl Shim {
    /// A shim with no task yet, for `namespace`; `exit_wake` wakes the main loop to exit.
    pub fn new(namespace: &str, exit_wake: UnixStream) -> Arc<Self> {
        Arc::new(Shim {
            events: Events::from_env(namespace),
            children: ChildLock::default(),
            task: Mutex::new(None),
            exited: Condvar::new(),
            exit_wake,
            exit_now: AtomicBool::new(false),
        })
    }

    /// Whether Shutdown asked the process to exit.
    pub fn exit_requested(&self) -> bool {
        self.exit_now.load(Ordering::SeqCst)
    }

    fn request_exit(&self) {
        self.exit_now.store(true, Ordering::SeqCst);
        let _ = (&self.exit_wake).write(&[1]);
    }

    /// Gives idle memory back ([`crate::trim`]); holds the child lock so it never runs in
    /// the middle of a create.
    pub fn trim_memory(&self) {
        let _children = self.children.lock();
        crate::trim::release_idle_memory();
    }

    fn lock_task(&self) -> MutexGuard<'_, Option<TaskState>> {
        self.task.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a task exists that has not been deleted.
    pub fn has_task(&self) -> bool {
        self.lock_task().is_some()
    }

    /// Reaps exited children; records the exit of the task's init or of an exec once its
    /// output is written. Called by the main loop on SIGCHLD. Other children (helpers'
    /// leftovers, processes reparented to the shim) are reaped and forgotten.
    pub fn on_sigchld(&self) {
        for (pid, status) in crate::reaper::reap_all(&self.children) {
            let pid = pid as u32;
            let (which, output) = {
                let mut guard = self.lock_task();
                let Some(t) = guard.as_mut() else { continue };
                let Some(which) = t.waiting_for(pid) else {
                    continue;
                };
                let output = t.proc_mut(&which).ok().and_then(|p| p.output.take());
                (which, output)
            };
            if let Some(mut out) = output {
                if !out.wait(OUTPUT_DRAIN_TIMEOUT) {
                    eprintln!("skiff-shim: output of pid {pid} still open after exit");
                }
            }
            self.record_exit(pid, status, &which);
        }
    }

    fn record_exit(&self, pid: u32, status: u32, which: &str) {
        let mut guard = self.lock_task();
        let Some(t) = guard.as_mut() else { return };
        if t.waiting_for(pid).as_deref() != Some(which) {
            return;
        }
        let exit = Exit {
            pid,
            status,
            at: SystemTime::now(),
        };
        if which.is_empty() {
            if let Err(e) = exit.write(&t.bundle) {
                eprintln!("skiff-shim: {e}");
            }
            t.init.exit = Some(exit);
            t.phase = Phase::Stopped;
        } else if let Some(e) = t.execs.get_mut(which) {
            e.p.exit = Some(exit);
            e.phase = Phase::Stopped;
            e.pidfd = None;
        }
        self.exited.notify_all();
        let event = TaskExit {
            container_id: t.id.clone(),
            id: if which.is_empty() {
                t.id.clone()
            } else {
                which.to_string()
            },
            pid,
            exit_status: status,
            exited_at: exit_time(Some(exit)),
            ..Default::default()
        };
        drop(guard);
        self.events.publish(TASK_EXIT_EVENT_TOPIC, Box::new(event));
    }

    fn with_task<R>(&self, id: &str, f: impl FnOnce(&mut TaskState) -> Result<R>) -> Result<R> {
        let mut guard = self.lock_task();
        match guard.as_mut() {
            Some(t) if t.id == id => f(t),
            _ => Err(ShimError::NotFound(format!("task {id}"))),
        }
    }

    fn create(&self, req: &CreateTaskRequest) -> Result<CreateTaskResponse> {
        if !req.checkpoint.is_empty() {
            return Err(ShimError::Unimplemented("restore from checkpoint".into()));
        }
        if req.id.is_empty() || req.bundle.is_empty() {
            return Err(ShimError::InvalidArgument(
                "create needs an id and a bundle".into(),
            ));
        }
        let bundle = PathBuf::from(&req.bundle);
        if !bundle.is_absolute() {
            return Err(ShimError::InvalidArgument(format!(
                "bundle {:?} is not absolute",
                req.bundle
            )));
        }
        let _children = self.children.lock();
        if self.lock_task().is_some() {
            return Err(ShimError::AlreadyExists(format!(
                "this shim already runs a task (asked for {})",
                req.id
            )));
        }
        let (spec_terminal, console_size) = container::spec_terminal(&bundle)?;
        if spec_terminal != req.terminal {
            return Err(ShimError::InvalidArgument(format!(
                "terminal={} in the request but process.terminal={spec_terminal} in {}: \
                 they must agree",
                req.terminal,
                bundle.join("config.json").display()
            )));
        }
        let mounts: Vec<RootfsMount> = req
            .rootfs
            .iter()
            .map(|m| RootfsMount {
                kind: m.type_.clone(),
                source: m.source.clone(),
                options: m.options.clone(),
            })
            .collect();

        let _ = std::fs::remove_file(bundle.join(crate::exit::EXIT_FILE));
        rootfs::mount_all(&bundle, &mounts)
            .map_err(|e| ShimError::Mount(format!("create {}: mounting rootfs: {e}", req.id)))?;
        let undo = |e: ShimError| -> ShimError {
            if let Err(c) = container::destroy(&req.id, &bundle) {
                eprintln!("skiff-shim: cleanup after failed create: {c}");
            }
            if let Err(c) = rootfs::unmount_all(&bundle) {
                eprintln!("skiff-shim: cleanup after failed create: {c}");
            }
            e
        };
        let built = (|| {
            let clamped = container::clamp_rlimits(&bundle)?;
            if !clamped.is_empty() {
                eprintln!(
                    "skiff-shim: clamped rlimits {clamped:?} of {} to the shim's hard limits",
                    req.id
                );
            }
            if req.terminal {
                let pending = stdio::open_terminal(&req.stdin, &req.stdout)?;
                let console = ConsoleSocket::bind(&bundle)?;
                let c = container::create(
                    &req.id,
                    &bundle,
                    ContainerStdio::null()?,
                    Some(console.path()),
                )?;
                let master = console.receive(CONSOLE_TIMEOUT)?;
                if let Some((w, h)) = console_size {
                    stdio::set_winsize(&master, w, h)?;
                }
                let (output, io) = pending.attach(master)?;
                Ok::<_, ShimError>((c, output, io))
            } else {
                let (stdio, output, io) = stdio::open(&req.stdin, &req.stdout, &req.stderr)?;
                let c = container::create(&req.id, &bundle, stdio, None)?;
                Ok((c, output, io))
            }
        })();
        let (c, output, io) = built.map_err(undo)?;
        let pid = match c.pid() {
            Some(p) => p.as_raw() as u32,
            None => {
                return Err(undo(ShimError::Internal(
                    "libcontainer reported no init pid".into(),
                )))
            }
        };
        let mut init = ProcState::new(&req.stdin, &req.stdout, &req.stderr, req.terminal);
        init.pid = pid;
        init.output = Some(output);
        init.io = io;
        *self.lock_task() = Some(TaskState {
            id: req.id.clone(),
            bundle,
            phase: Phase::Created,
            init,
            execs: HashMap::new(),
            container: c,
        });
        self.events.publish(
            TASK_CREATE_EVENT_TOPIC,
            Box::new(TaskCreate {
                container_id: req.id.clone(),
                bundle: req.bundle.clone(),
                io: MessageField::some(TaskIO {
                    stdin: req.stdin.clone(),
                    stdout: req.stdout.clone(),
                    stderr: req.stderr.clone(),
                    terminal: req.terminal,
                    ..Default::default()
                }),
                pid,
                ..Default::default()
            }),
        );
        Ok(CreateTaskResponse {
            pid,
            ..Default::default()
        })
    }

    fn start(&self, req: &StartRequest) -> Result<StartResponse> {
        if !req.exec_id.is_empty() {
            return self.start_exec(&req.id, &req.exec_id);
        }
        let children = self.children.lock();
        let resp = self.with_task(&req.id, |t| {
            if t.phase != Phase::Created {
                return Err(ShimError::FailedPrecondition(format!(
                    "task {} is {}, not created",
                    t.id,
                    t.phase.name()
                )));
            }
            t.container
                .start()
                .map_err(|e| ShimError::container("starting container", e))?;
            t.phase = Phase::Running;
            Ok(StartResponse {
                pid: t.init.pid,
                ..Default::default()
            })
        })?;
        drop(children);
        self.events.publish(
            TASK_START_EVENT_TOPIC,
            Box::new(TaskStart {
                container_id: req.id.clone(),
                pid: resp.pid,
                ..Default::default()
            }),
        );
        Ok(resp)
    }

    /// ExecProcess: registers an exec process; Start with its exec id runs it.
    fn exec(&self, req: &ExecProcessRequest) -> Result<()> {
        validate_exec_id(&req.exec_id)?;
        let bundle = self.with_task(&req.id, |t| Ok(t.bundle.clone()))?;
        let spec = ExecSpec::parse(req, &container::spec_process(&bundle)?)?;
        stdio::validate(&req.stdin, &req.stdout, &req.stderr)?;
        self.with_task(&req.id, |t| {
            if matches!(t.phase, Phase::Paused | Phase::Stopped) {
                return Err(ShimError::FailedPrecondition(format!(
                    "cannot exec in task {}: it is {}",
                    t.id,
                    t.phase.name()
                )));
            }
            if t.execs.contains_key(&req.exec_id) {
                return Err(ShimError::AlreadyExists(format!(
                    "exec {} in task {}",
                    req.exec_id, t.id
                )));
            }
            t.execs.insert(
                req.exec_id.clone(),
                ExecState {
                    p: ProcState::new(&req.stdin, &req.stdout, &req.stderr, spec.terminal),
                    phase: Phase::Created,
                    process: spec.json,
                    size: spec.size,
                    pidfd: None,
                },
            );
            Ok(())
        })?;
        self.events.publish(
            TASK_EXEC_ADDED_EVENT_TOPIC,
            Box::new(TaskExecAdded {
                container_id: req.id.clone(),
                exec_id: req.exec_id.clone(),
                ..Default::default()
            }),
        );
        Ok(())
    }

    /// Start of an exec: runs it through the helper (libcontainer's tenant builder). Holds
    /// the child lock from the checks until the pid is recorded, so the reaper can only
    /// see the process's exit once it knows the pid belongs to this exec.
    fn start_exec(&self, id: &str, exec_id: &str) -> Result<StartResponse> {
        let children = self.children.lock();
        let (bundle, process, p, size) = self.with_task(id, |t| {
            if t.phase != Phase::Running {
                return Err(ShimError::FailedPrecondition(format!(
                    "cannot start exec {exec_id} in task {id}: the task is {}, not running",
                    t.phase.name()
                )));
            }
            let bundle = t.bundle.clone();
            let e = t.exec_mut(exec_id)?;
            if e.phase != Phase::Created {
                return Err(ShimError::FailedPrecondition(format!(
                    "exec {exec_id} in task {id} was already started"
                )));
            }
            let p = ProcState::new(&e.p.stdin, &e.p.stdout, &e.p.stderr, e.p.terminal);
            Ok((bundle, e.process.clone(), p, e.size))
        })?;
        let res = run_exec(id, exec_id, &bundle, &process, &p, size);
        let mut guard = self.lock_task();
        let e = guard
            .as_mut()
            .filter(|t| t.id == id)
            .and_then(|t| t.execs.get_mut(exec_id));
        let Some(e) = e else {
            // Cannot happen: Delete takes the child lock. Do not leave a stray process.
            if let Ok(s) = &res {
                let _ = crate::reaper::send_signal(s.pidfd.as_ref(), s.pid, libc::SIGKILL);
            }
            return Err(exec_not_found(id, exec_id));
        };
        match res {
            Ok(s) => {
                e.phase = Phase::Running;
                e.p.pid = s.pid;
                e.p.output = Some(s.output);
                e.p.io = s.io;
                e.pidfd = s.pidfd;
                drop(guard);
                drop(children);
                self.events.publish(
                    TASK_EXEC_STARTED_EVENT_TOPIC,
                    Box::new(TaskExecStarted {
                        container_id: id.to_string(),
                        exec_id: exec_id.to_string(),
                        pid: s.pid,
                        ..Default::default()
                    }),
                );
                Ok(StartResponse {
                    pid: s.pid,
                    ..Default::default()
                })
            }
            Err(err) => {
                // It never ran: stopped, so Wait returns, with a shell-like status.
                e.phase = Phase::Stopped;
                e.p.exit = Some(Exit {
                    pid: 0,
                    status: failed_start_status(&err.to_string()),
                    at: SystemTime::now(),
                });
                self.exited.notify_all();
                Err(err)
            }
        }
    }

    fn state(&self, req: &StateRequest) -> Result<StateResponse> {
        self.with_task(&req.id, |t| {
            let (phase, p) = if req.exec_id.is_empty() {
                (t.phase, &t.init)
            } else {
                let e = t
                    .execs
                    .get(&req.exec_id)
                    .ok_or_else(|| exec_not_found(&t.id, &req.exec_id))?;
                // Every process of a paused task is paused.
                let phase = if t.phase == Phase::Paused && e.phase == Phase::Running {
                    Phase::Paused
                } else {
                    e.phase
                };
                (phase, &e.p)
            };
            Ok(StateResponse {
                id: if req.exec_id.is_empty() {
                    t.id.clone()
                } else {
                    req.exec_id.clone()
                },
                exec_id: req.exec_id.clone(),
                bundle: t.bundle.display().to_string(),
                pid: p.pid,
                status: EnumOrUnknown::new(phase.status()),
                stdin: p.stdin.clone(),
                stdout: p.stdout.clone(),
                stderr: p.stderr.clone(),
                terminal: p.terminal,
                exit_status: p.exit.map(|e| e.status).unwrap_or(0),
                exited_at: exit_time(p.exit),
                ..Default::default()
            })
        })
    }

    /// Waits for the exit of the init (`exec_id` "") or of an exec.
    fn wait_exit(&self, id: &str, exec_id: &str, timeout: Option<Duration>) -> Result<Exit> {
        let deadline = timeout.map(|d| Instant::now() + d);
        let mut guard = self.lock_task();
        loop {
            match guard.as_mut() {
                Some(t) if t.id == id => {
                    if let Some(e) = t.proc_mut(exec_id)?.exit {
                        return Ok(e);
                    }
                }
                _ => return Err(ShimError::NotFound(format!("task {id}"))),
            }
            guard = match deadline {
                None => self.exited.wait(guard).unwrap_or_else(|p| p.into_inner()),
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(ShimError::Internal(format!(
                            "task {id} {exec_id} did not exit within {timeout:?}"
                        )));
                    }
                    self.exited
                        .wait_timeout(guard, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }

    fn kill(&self, req: &KillRequest) -> Result<()> {
        if !req.exec_id.is_empty() {
            return self.kill_exec(req);
        }
        let sig = Signal::try_from(req.signal as i32)
            .map_err(|e| ShimError::InvalidArgument(format!("signal {}: {e}", req.signal)))?;
        self.with_task(&req.id, |t| {
            if t.init.exit.is_some() {
                return Err(ShimError::NotFound(format!(
                    "task {}: process already finished",
                    t.id
                )));
            }
            t.container
                .kill(sig, req.all)
                .map_err(|e| ShimError::container("signalling container", e))?;
            // libcontainer marks the container stopped after any signal; our phase only
            // changes when the reaper sees the exit.
            Ok(())
        })
    }

    fn kill_exec(&self, req: &KillRequest) -> Result<()> {
        if req.signal == 0 || req.signal > 64 {
            return Err(ShimError::InvalidArgument(format!(
                "signal {}: not a signal number",
                req.signal
            )));
        }
        self.with_task(&req.id, |t| {
            let id = t.id.clone();
            let e = t.exec_mut(&req.exec_id)?;
            match e.phase {
                Phase::Created => Err(ShimError::FailedPrecondition(format!(
                    "exec {} in task {id} has not been started",
                    req.exec_id
                ))),
                Phase::Stopped => Err(ShimError::NotFound(format!(
                    "exec {} in task {id}: process already finished",
                    req.exec_id
                ))),
                _ => crate::reaper::send_signal(e.pidfd.as_ref(), e.p.pid, req.signal as i32)
                    .map_err(|err| match err {
                        nix::errno::Errno::ESRCH => ShimError::NotFound(format!(
                            "exec {} in task {id}: process already finished",
                            req.exec_id
                        )),
                        err => ShimError::sys("signalling exec process", err),
                    }),
            }
        })
    }

    fn pause(&self, id: &str, pause: bool) -> Result<()> {
        self.with_task(id, |t| {
            let (from, to) = if pause {
                (Phase::Running, Phase::Paused)
            } else {
                (Phase::Paused, Phase::Running)
            };
            if t.phase != from {
                return Err(ShimError::FailedPrecondition(format!(
                    "task {} is {}, not {}",
                    t.id,
                    t.phase.name(),
                    from.name()
                )));
            }
            // libcontainer checks its own status, which kill() may have set to stopped.
            t.container
                .refresh_status()
                .map_err(|e| ShimError::container("reading container status", e))?;
            if pause {
                t.container
                    .pause()
                    .map_err(|e| ShimError::container("pausing (freezer)", e))?;
            } else {
                t.container
                    .set_status(libcontainer::container::ContainerStatus::Paused);
                t.container
                    .resume()
                    .map_err(|e| ShimError::container("resuming (freezer)", e))?;
            }
            t.phase = to;
            Ok(())
        })?;
        if pause {
            self.events.publish(
                TASK_PAUSED_EVENT_TOPIC,
                Box::new(TaskPaused {
                    container_id: id.to_string(),
                    ..Default::default()
                }),
            );
        } else {
            self.events.publish(
                TASK_RESUMED_EVENT_TOPIC,
                Box::new(TaskResumed {
                    container_id: id.to_string(),
                    ..Default::default()
                }),
            );
        }
        Ok(())
    }

    /// Every process in the task's cgroup; exec processes carry their exec id in `info`.
    fn pids(&self, id: &str) -> Result<PidsResponse> {
        self.with_task(id, |t| {
            let mut pids = container::pids(&t.container).unwrap_or_default();
            if pids.is_empty() && t.init.exit.is_none() {
                pids.push(t.init.pid);
            }
            let execs: HashMap<u32, &str> = t
                .execs
                .iter()
                .filter(|(_, e)| e.phase == Phase::Running)
                .map(|(k, e)| (e.p.pid, k.as_str()))
                .collect();
            Ok(PidsResponse {
                processes: pids
                    .into_iter()
                    .map(|pid| ProcessInfo {
                        pid,
                        info: match execs.get(&pid) {
                            Some(exec_id) => MessageField::some(process_details(exec_id)),
                            None => MessageField::none(),
                        },
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
        })
    }

    fn delete(&self, req: &DeleteRequest) -> Result<DeleteResponse> {
        if !req.exec_id.is_empty() {
            return self.delete_exec(&req.id, &req.exec_id);
        }
        let (phase, bundle) = self.with_task(&req.id, |t| Ok((t.phase, t.bundle.clone())))?;
        if matches!(phase, Phase::Running | Phase::Paused) {
            return Err(ShimError::FailedPrecondition(format!(
                "task {} is still running; kill it first",
                req.id
            )));
        }
        let mut errors = Vec::new();
        let running_execs;
        {
            let _children = self.children.lock();
            // Exec processes die with the container: the kernel kills what is left in a pid
            // namespace when its init exits, and destroy() kills the cgroup. Kill them
            // directly too, for a task sharing the host's pid namespace.
            running_execs = self.with_task(&req.id, |t| {
                Ok(t.execs
                    .iter()
                    .filter(|(_, e)| e.phase == Phase::Running)
                    .map(|(k, e)| {
                        let _ =
                            crate::reaper::send_signal(e.pidfd.as_ref(), e.p.pid, libc::SIGKILL);
                        k.clone()
                    })
                    .collect::<Vec<_>>())
            })?;
            if let Err(e) = container::destroy(&req.id, &bundle) {
                errors.push(e.to_string());
            }
        }
        // A created task was just killed by destroy(); wait for the reaper to see it.
        let exit = self
            .wait_exit(&req.id, "", Some(Duration::from_secs(10)))
            .unwrap_or(Exit {
                pid: 0,
                status: 137,
                at: SystemTime::now(),
            });
        let deadline = Instant::now() + EXEC_EXIT_TIMEOUT;
        for exec_id in running_execs {
            let left = deadline.saturating_duration_since(Instant::now());
            if self
                .wait_exit(&req.id, &exec_id, Some(left.max(Duration::from_millis(1))))
                .is_err()
            {
                eprintln!("skiff-shim: exec {exec_id} of {} did not exit", req.id);
            }
        }
        if let Err(e) = rootfs::unmount_all(&bundle) {
            errors.push(e.to_string());
        }
        *self.lock_task() = None;
        self.exited.notify_all();
        if !errors.is_empty() {
            return Err(ShimError::Internal(format!(
                "delete {}: {}",
                req.id,
                errors.join("; ")
            )));
        }
        self.events.publish(
            TASK_DELETE_EVENT_TOPIC,
            Box::new(TaskDelete {
                container_id: req.id.clone(),
                id: req.id.clone(),
                pid: exit.pid,
                exit_status: exit.status,
                exited_at: exit_time(Some(exit)),
                ..Default::default()
            }),
        );
        Ok(DeleteResponse {
            pid: exit.pid,
            exit_status: exit.status,
            exited_at: exit_time(Some(exit)),
            ..Default::default()
        })
    }

    /// Forgets a created or finished exec (its stdin copier stops, its pty closes).
    fn delete_exec(&self, id: &str, exec_id: &str) -> Result<DeleteResponse> {
        // A Start in progress holds the child lock until it recorded the pid.
        let _children = self.children.lock();
        let resp = self.with_task(id, |t| {
            let e = t.exec_mut(exec_id)?;
            if e.phase == Phase::Running {
                return Err(ShimError::FailedPrecondition(format!(
                    "exec {exec_id} in task {id} is still running; kill it first"
                )));
            }
            let e = t
                .execs
                .remove(exec_id)
                .ok_or_else(|| exec_not_found(id, exec_id))?;
            Ok(DeleteResponse {
                pid: e.p.pid,
                exit_status: e.p.exit.map(|x| x.status).unwrap_or(0),
                exited_at: exit_time(e.p.exit),
                ..Default::default()
            })
        })?;
        self.exited.notify_all();
        Ok(resp)
    }

    fn resize_pty(&self, req: &ResizePtyRequest) -> Result<()> {
        self.with_task(&req.id, |t| {
            if !req.exec_id.is_empty() {
                let e = t.exec_mut(&req.exec_id)?;
                if e.phase == Phase::Created && e.p.terminal {
                    // Applied when the pty appears at Start.
                    e.size = Some((req.width, req.height));
                    return Ok(());
                }
            }
            // A process without a pty: nothing to resize (containerd's shims ignore it too).
            t.proc_mut(&req.exec_id)?.io.resize(req.width, req.height)?;
            Ok(())
        })
    }

    fn close_io(&self, req: &CloseIORequest) -> Result<()> {
        self.with_task(&req.id, |t| {
            let p = t.proc_mut(&req.exec_id)?;
            if req.stdin {
                p.io.close_stdin();
            }
            Ok(())
        })
    }

    fn stats(&self, id: &str) -> Result<StatsResponse> {
        self.with_task(id, |t| {
            let m = container::cgroup_manager(&t.container)?;
            let any = crate::stats::metrics_any(&m)?;
            Ok(StatsResponse {
                stats: MessageField::some(any),
                ..Default::default()
            })
        })
    }
}

/// Opens the exec's stdio, writes its `process.json` and runs it through the helper.
fn run_exec(
    id: &str,
    exec_id: &str,
    bundle: &std::path::Path,
    process: &[u8],
    p: &ProcState,
    size: Option<(u32, u32)>,
) -> Result<Started> {
    struct RemoveOnDrop(PathBuf);
    impl Drop for RemoveOnDrop {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
    let file = RemoveOnDrop(container::state_root(bundle).join(format!("exec-{exec_id}.json")));
    // A size asked for before start goes into the process spec, so the terminal has it
    // before the process runs (see SkiffExecutor).
    let patched;
    let process = match (size, p.terminal) {
        (Some((w, h)), true) => match serde_json::from_slice::<serde_json::Value>(process) {
            Ok(mut v) => {
                v["consoleSize"] = serde_json::json!({"height": h, "width": w});
                patched = serde_json::to_vec(&v).unwrap_or_else(|_| process.to_vec());
                &patched[..]
            }
            Err(_) => process,
        },
        _ => process,
    };
    std::fs::write(&file.0, process).map_err(|e| ShimError::io("writing", &file.0, e))?;
    if p.terminal {
        let pending = stdio::open_terminal(&p.stdin, &p.stdout)?;
        let console = ConsoleSocket::bind(bundle)?;
        let pid = container::exec(
            id,
            bundle,
            ContainerStdio::null()?,
            &file.0,
            Some(console.path()),
        )?;
        let pidfd = crate::reaper::pidfd_open(pid);
        let attached = console.receive(CONSOLE_TIMEOUT).and_then(|master| {
            if let Some((w, h)) = size {
                stdio::set_winsize(&master, w, h)?;
            }
            pending.attach(master)
        });
        match attached {
            Ok((output, io)) => Ok(Started {
                pid,
                pidfd,
                output,
                io,
            }),
            Err(e) => {
                let _ = crate::reaper::send_signal(pidfd.as_ref(), pid, libc::SIGKILL);
                Err(e)
            }
        }
    } else {
        let (stdio, output, io) = stdio::open(&p.stdin, &p.stdout, &p.stderr)?;
        let pid = container::exec(id, bundle, stdio, &file.0, None)?;
        Ok(Started {
            pid,
            pidfd: crate::reaper::pidfd_open(pid),
            output,
            io,
        })
    }
}

/// The exit status recorded for an exec that failed to start, as a shell would give it.
fn failed_start_status(msg: &str) -> u32 {
    if msg.contains("executable file not found") || msg.contains("no such file") {
        127
    } else if msg.contains("permission denied") {
        126
    } else {
        255
    }
}

/// Exec ids name files and appear in messages: 1-128 of `[A-Za-z0-9_.-]`, as containerd's
/// identifiers (which are stricter).
fn validate_exec_id(exec_id: &str) -> Result<()> {
    let ok = !exec_id.is_empty()
        && exec_id.len() <= 128
        && exec_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ShimError::InvalidArgument(format!(
            "exec id {exec_id:?}: expected 1-128 of [A-Za-z0-9_.-]"
        )))
    }
}

/// Keys of an exec's `Process` that default to the task's own process when absent.
const INHERITED_PROCESS_KEYS: [&str; 3] = ["capabilities", "noNewPrivileges", "apparmorProfile"];

/// The parsed `spec` of an ExecProcessRequest.
#[derive(Debug)]
struct ExecSpec {
    /// The `Process` JSON for libcontainer (with `terminal` settled).
    json: Vec<u8>,
    terminal: bool,
    /// `consoleSize` (width, height).
    size: Option<(u32, u32)>,
}

impl ExecSpec {
    /// Reads the OCI `Process` (JSON in a protobuf Any) of an exec request. The process
    /// gets a terminal if either the request or the spec asks for one. Security settings
    /// it leaves out come from the task's own process (`init`), as with runc; libcontainer
    /// would otherwise run it with every capability of the shim.
    fn parse(req: &ExecProcessRequest, init: &serde_json::Value) -> Result<Self> {
        let bad = |why: String| ShimError::InvalidArgument(format!("exec {}: {why}", req.exec_id));
        let any = req.spec.as_ref().ok_or_else(|| {
            bad(format!(
                "spec is missing: it must be an Any with type_url {PROCESS_TYPE_URL:?} and the \
                 JSON of an OCI runtime-spec Process as its value"
            ))
        })?;
        if !any.type_url.is_empty() && !any.type_url.ends_with("Process") {
            return Err(bad(format!(
                "spec type_url {:?}: expected {PROCESS_TYPE_URL:?} (an OCI Process as JSON)",
                any.type_url
            )));
        }
        let mut v: serde_json::Value = serde_json::from_slice(&any.value)
            .map_err(|e| bad(format!("spec value is not JSON: {e}")))?;
        let p: libcontainer::oci_spec::runtime::Process = serde_json::from_value(v.clone())
            .map_err(|e| {
                bad(format!(
                    "spec value is not an OCI runtime-spec Process: {e}"
                ))
            })?;
        if p.args().as_ref().is_none_or(|a| a.is_empty()) {
            return Err(bad("the process has no args".into()));
        }
        if !p.cwd().is_absolute() {
            return Err(bad(format!(
                "cwd {:?} must be an absolute path",
                p.cwd().display()
            )));
        }
        for key in INHERITED_PROCESS_KEYS {
            if v.get(key).is_none_or(|x| x.is_null()) {
                if let Some(x) = init.get(key).filter(|x| !x.is_null()) {
                    v[key] = x.clone();
                }
            }
        }
        let terminal = req.terminal || p.terminal() == Some(true);
        v["terminal"] = terminal.into();
        let clamped = container::clamp_process_rlimits(&mut v);
        if !clamped.is_empty() {
            eprintln!(
                "skiff-shim: clamped rlimits {clamped:?} of exec {} to the shim's hard limits",
                req.exec_id
            );
        }
        let size = container::console_size(v.get("consoleSize"));
        let json = serde_json::to_vec(&v).map_err(|e| bad(e.to_string()))?;
        Ok(ExecSpec {
            json,
            terminal,
            size,
        })
    }
}

/// containerd's `ProcessDetails{exec_id}` (protobuf: field 1, string) in an Any.
fn process_details(exec_id: &str) -> Any {
    let mut value = vec![0x0a];
    let mut n = exec_id.len();
    while n >= 0x80 {
        value.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    value.push(n as u8);
    value.extend_from_slice(exec_id.as_bytes());
    Any {
        type_url: PROCESS_DETAILS_TYPE_URL.to_string(),
        value,
        ..Default::default()
    }
}

fn exit_time(e: Option<Exit>) -> MessageField<Timestamp> {
    match e {
        Some(e) => {
            let (seconds, nanos) = unix_parts(e.at);
            MessageField::some(Timestamp {
                seconds,
                nanos: nanos as i32,
                ..Default::default()
            })
        }
        None => MessageField::none(),
    }
}

fn unimplemented(what: &str) -> ttrpc::Error {
    ShimError::Unimplemented(format!("{what} is not supported by this shim yet")).into()
}

/// The ttrpc face of [`Shim`].
pub struct TaskService(pub Arc<Shim>);

type TResult<T> = ttrpc::Result<T>;

impl Task for TaskService {
    fn state(&self, _: &TtrpcContext, req: StateRequest) -> TResult<StateResponse> {
        Ok(self.0.state(&req)?)
    }

    fn create(&self, _: &TtrpcContext, req: CreateTaskRequest) -> TResult<CreateTaskResponse> {
        Ok(self.0.create(&req)?)
    }

    fn start(&self, _: &TtrpcContext, req: StartRequest) -> TResult<StartResponse> {
        Ok(self.0.start(&req)?)
    }

    fn delete(&self, _: &TtrpcContext, req: DeleteRequest) -> TResult<DeleteResponse> {
        Ok(self.0.delete(&req)?)
    }

    fn pids(&self, _: &TtrpcContext, req: PidsRequest) -> TResult<PidsResponse> {
        Ok(self.0.pids(&req.id)?)
    }

    fn pause(&self, _: &TtrpcContext, req: PauseRequest) -> TResult<Empty> {
        self.0.pause(&req.id, true)?;
        Ok(Empty::new())
    }

    fn resume(&self, _: &TtrpcContext, req: ResumeRequest) -> TResult<Empty> {
        self.0.pause(&req.id, false)?;
        Ok(Empty::new())
    }

    fn kill(&self, _: &TtrpcContext, req: KillRequest) -> TResult<Empty> {
        self.0.kill(&req)?;
        Ok(Empty::new())
    }

    fn wait(&self, _: &TtrpcContext, req: WaitRequest) -> TResult<WaitResponse> {
        let exit = self.0.wait_exit(&req.id, &req.exec_id, None)?;
        Ok(WaitResponse {
            exit_status: exit.status,
            exited_at: exit_time(Some(exit)),
            ..Default::default()
        })
    }

    fn stats(&self, _: &TtrpcContext, req: StatsRequest) -> TResult<StatsResponse> {
        Ok(self.0.stats(&req.id)?)
    }

    fn connect(&self, _: &TtrpcContext, req: ConnectRequest) -> TResult<ConnectResponse> {
        let task_pid = self
            .0
            .with_task(&req.id, |t| Ok(t.init.pid))
            .unwrap_or_default();
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    fn exec(&self, _: &TtrpcContext, req: ExecProcessRequest) -> TResult<Empty> {
        self.0.exec(&req)?;
        Ok(Empty::new())
    }

    fn resize_pty(&self, _: &TtrpcContext, req: ResizePtyRequest) -> TResult<Empty> {
        self.0.resize_pty(&req)?;
        Ok(Empty::new())
    }

    fn close_io(&self, _: &TtrpcContext, req: CloseIORequest) -> TResult<Empty> {
        self.0.close_io(&req)?;
        Ok(Empty::new())
    }

    fn checkpoint(&self, _: &TtrpcContext, _: CheckpointTaskRequest) -> TResult<Empty> {
        Err(unimplemented("Checkpoint"))
    }

    fn update(&self, _: &TtrpcContext, _: UpdateTaskRequest) -> TResult<Empty> {
        Err(unimplemented(
            "Update (changing resources of a running task)",
        ))
    }

    fn shutdown(&self, _: &TtrpcContext, req: ShutdownRequest) -> TResult<Empty> {
        if req.now || !self.0.has_task() {
            self.0.request_exit();
        }
        Ok(Empty::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(type_url: &str, json: &str, terminal: bool) -> ExecProcessRequest {
        ExecProcessRequest {
            id: "t".into(),
            exec_id: "e1".into(),
            terminal,
            spec: MessageField::some(Any {
                type_url: type_url.into(),
                value: json.as_bytes().to_vec(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn parses_exec_specs() {
        let init = serde_json::json!({
            "noNewPrivileges": true,
            "capabilities": {"bounding": ["CAP_KILL", "CAP_CHOWN"], "effective": ["CAP_KILL"]},
        });
        let ok = r#"{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0},"consoleSize":{"height":40,"width":100}}"#;
        let s = ExecSpec::parse(&req(PROCESS_TYPE_URL, ok, true), &init).unwrap();
        assert!(s.terminal);
        assert_eq!(s.size, Some((100, 40)));
        let v: serde_json::Value = serde_json::from_slice(&s.json).unwrap();
        assert_eq!(v["terminal"], true);
        assert_eq!(v["capabilities"], init["capabilities"]);
        assert_eq!(v["noNewPrivileges"], true);
        assert!(v.get("apparmorProfile").is_none());
        assert!(
            !ExecSpec::parse(&req("", ok, false), &init)
                .unwrap()
                .terminal
        );
        // The exec's own settings win.
        let own = r#"{"args":["sh"],"cwd":"/","user":{"uid":0,"gid":0},"noNewPrivileges":false,"capabilities":{"bounding":["CAP_KILL"]}}"#;
        let s = ExecSpec::parse(&req(PROCESS_TYPE_URL, own, false), &init).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&s.json).unwrap();
        assert_eq!(v["noNewPrivileges"], false);
        assert_eq!(
            v["capabilities"]["bounding"],
            serde_json::json!(["CAP_KILL"])
        );
        for (url, json) in [
            ("types.containerd.io/opencontainers/runtime-spec/1/Spec", ok),
            (PROCESS_TYPE_URL, "{"),
            (
                PROCESS_TYPE_URL,
                r#"{"args":["sh"],"user":{"uid":0,"gid":0}}"#,
            ),
            (PROCESS_TYPE_URL, r#"{"args":[],"cwd":"/","user":{}}"#),
            (PROCESS_TYPE_URL, r#"{"args":["sh"],"cwd":"rel","user":{}}"#),
        ] {
            let e = ExecSpec::parse(&req(url, json, false), &init).unwrap_err();
            assert!(matches!(e, ShimError::InvalidArgument(_)), "{e}");
        }
        let mut r = req(PROCESS_TYPE_URL, ok, false);
        r.spec = MessageField::none();
        assert!(ExecSpec::parse(&r, &serde_json::Value::Null).is_err());
    }

    #[test]
    fn exec_ids_and_details() {
        assert!(validate_exec_id("abc-1.2_3").is_ok());
        for bad in ["", "a/b", "a b", &"x".repeat(129)] {
            assert!(validate_exec_id(bad).is_err(), "{bad}");
        }
        let d = process_details("e1");
        assert_eq!(d.type_url, PROCESS_DETAILS_TYPE_URL);
        assert_eq!(d.value, b"\x0a\x02e1");
        assert_eq!(
            &process_details(&"y".repeat(128)).value[..3],
            &[0x0a, 0x80, 0x01]
        );
    }
}
