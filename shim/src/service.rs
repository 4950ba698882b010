//! The containerd task service (ttrpc `containerd.task.v3.Task`, also served under the
//! `containerd.task.v2.Task` name that containerd 1.6/1.7 call). One shim runs one task.

use std::io::Write;
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
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::protobuf::{EnumOrUnknown, MessageField};
use containerd_shim::protos::shim::shim_ttrpc::Task;
use containerd_shim::protos::ttrpc::{self, TtrpcContext};
use containerd_shim::protos::types::task::{ProcessInfo, Status};
use libcontainer::container::Container;
use libcontainer::signal::Signal;

use containerd_shim::protos::events::task::{
    TaskCreate, TaskDelete, TaskExit, TaskIO, TaskPaused, TaskResumed, TaskStart,
};
use containerd_shim::protos::topics::{
    TASK_CREATE_EVENT_TOPIC, TASK_DELETE_EVENT_TOPIC, TASK_EXIT_EVENT_TOPIC,
    TASK_PAUSED_EVENT_TOPIC, TASK_RESUMED_EVENT_TOPIC, TASK_START_EVENT_TOPIC,
};

use crate::container;
use crate::error::{Result, ShimError};
use crate::events::Events;
use crate::exit::Exit;
use crate::reaper::ChildLock;
use crate::rootfs::{self, RootfsMount};
use crate::stdio::{self, OutputDone};
use crate::timefmt::unix_parts;

/// How long an exit report waits for the log copiers to drain (a process outside the
/// container's pid namespace could keep a pipe open forever).
const OUTPUT_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Lifecycle of the task's init process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Created,
    Running,
    Paused,
    Stopped,
}

/// The one task this shim runs.
struct TaskState {
    id: String,
    bundle: PathBuf,
    stdin: String,
    stdout: String,
    stderr: String,
    terminal: bool,
    pid: u32,
    phase: Phase,
    exit: Option<Exit>,
    output: Option<OutputDone>,
    container: Container,
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

    /// Reaps exited children; records the exit of the task's init once its output is
    /// written. Called by the main loop on SIGCHLD.
    pub fn on_sigchld(&self) {
        for (pid, status) in crate::reaper::reap_all(&self.children) {
            let output = {
                let mut guard = self.lock_task();
                match guard.as_mut() {
                    Some(t) if t.pid == pid as u32 && t.exit.is_none() => t.output.take(),
                    _ => continue,
                }
            };
            if let Some(mut out) = output {
                if !out.wait(OUTPUT_DRAIN_TIMEOUT) {
                    eprintln!("skiff-shim: output of pid {pid} still open after exit");
                }
            }
            let mut guard = self.lock_task();
            if let Some(t) = guard.as_mut() {
                if t.pid == pid as u32 && t.exit.is_none() {
                    let exit = Exit {
                        pid: pid as u32,
                        status,
                        at: SystemTime::now(),
                    };
                    if let Err(e) = exit.write(&t.bundle) {
                        eprintln!("skiff-shim: {e}");
                    }
                    t.exit = Some(exit);
                    t.phase = Phase::Stopped;
                    self.exited.notify_all();
                    let event = TaskExit {
                        container_id: t.id.clone(),
                        id: t.id.clone(),
                        pid: exit.pid,
                        exit_status: exit.status,
                        exited_at: exit_time(Some(exit)),
                        ..Default::default()
                    };
                    drop(guard);
                    self.events.publish(TASK_EXIT_EVENT_TOPIC, Box::new(event));
                }
            }
        }
    }

    fn with_task<R>(&self, id: &str, f: impl FnOnce(&mut TaskState) -> Result<R>) -> Result<R> {
        let mut guard = self.lock_task();
        match guard.as_mut() {
            Some(t) if t.id == id => f(t),
            _ => Err(ShimError::NotFound(format!("task {id}"))),
        }
    }

    fn create(&self, req: &CreateTaskRequest) -> Result<CreateTaskResponse> {
        if req.terminal {
            return Err(ShimError::Unimplemented(
                "terminal=true (a pty for the task) is not supported yet".into(),
            ));
        }
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
            let (stdio, output) = stdio::open(&req.stdin, &req.stdout, &req.stderr)?;
            let c = container::create(&req.id, &bundle, stdio)?;
            Ok::<_, ShimError>((c, output))
        })();
        let (c, output) = built.map_err(undo)?;
        let pid = match c.pid() {
            Some(p) => p.as_raw() as u32,
            None => {
                return Err(undo(ShimError::Internal(
                    "libcontainer reported no init pid".into(),
                )))
            }
        };
        *self.lock_task() = Some(TaskState {
            id: req.id.clone(),
            bundle,
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
            pid,
            phase: Phase::Created,
            exit: None,
            output: Some(output),
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
        no_exec(&req.exec_id)?;
        let children = self.children.lock();
        let resp = self.with_task(&req.id, |t| {
            if t.phase != Phase::Created {
                return Err(ShimError::FailedPrecondition(format!(
                    "task {} is {:?}, not created",
                    t.id, t.phase
                )));
            }
            t.container
                .start()
                .map_err(|e| ShimError::container("starting container", e))?;
            t.phase = Phase::Running;
            Ok(StartResponse {
                pid: t.pid,
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

    fn state(&self, req: &StateRequest) -> Result<StateResponse> {
        no_exec(&req.exec_id)?;
        self.with_task(&req.id, |t| {
            let status = match t.phase {
                Phase::Created => Status::CREATED,
                Phase::Running => Status::RUNNING,
                Phase::Paused => Status::PAUSED,
                Phase::Stopped => Status::STOPPED,
            };
            Ok(StateResponse {
                id: t.id.clone(),
                bundle: t.bundle.display().to_string(),
                pid: t.pid,
                status: EnumOrUnknown::new(status),
                stdin: t.stdin.clone(),
                stdout: t.stdout.clone(),
                stderr: t.stderr.clone(),
                terminal: t.terminal,
                exit_status: t.exit.map(|e| e.status).unwrap_or(0),
                exited_at: exit_time(t.exit),
                ..Default::default()
            })
        })
    }

    fn wait_exit(&self, id: &str, timeout: Option<Duration>) -> Result<Exit> {
        let deadline = timeout.map(|d| Instant::now() + d);
        let mut guard = self.lock_task();
        loop {
            match guard.as_ref() {
                Some(t) if t.id == id => {
                    if let Some(e) = t.exit {
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
                            "task {id} did not exit within {timeout:?}"
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
        no_exec(&req.exec_id)?;
        let sig = Signal::try_from(req.signal as i32)
            .map_err(|e| ShimError::InvalidArgument(format!("signal {}: {e}", req.signal)))?;
        self.with_task(&req.id, |t| {
            if t.exit.is_some() {
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

    fn pause(&self, id: &str, pause: bool) -> Result<()> {
        self.with_task(id, |t| {
            let (from, to) = if pause {
                (Phase::Running, Phase::Paused)
            } else {
                (Phase::Paused, Phase::Running)
            };
            if t.phase != from {
                return Err(ShimError::FailedPrecondition(format!(
                    "task {} is {:?}, not {from:?}",
                    t.id, t.phase
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

    fn pids(&self, id: &str) -> Result<PidsResponse> {
        self.with_task(id, |t| {
            let mut pids = container::pids(&t.container).unwrap_or_default();
            if pids.is_empty() && t.exit.is_none() {
                pids.push(t.pid);
            }
            Ok(PidsResponse {
                processes: pids
                    .into_iter()
                    .map(|pid| ProcessInfo {
                        pid,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            })
        })
    }

    fn delete(&self, req: &DeleteRequest) -> Result<DeleteResponse> {
        no_exec(&req.exec_id)?;
        let (phase, bundle) = self.with_task(&req.id, |t| Ok((t.phase, t.bundle.clone())))?;
        if matches!(phase, Phase::Running | Phase::Paused) {
            return Err(ShimError::FailedPrecondition(format!(
                "task {} is still running; kill it first",
                req.id
            )));
        }
        let mut errors = Vec::new();
        {
            let _children = self.children.lock();
            if let Err(e) = container::destroy(&req.id, &bundle) {
                errors.push(e.to_string());
            }
        }
        // A created task was just killed by destroy(); wait for the reaper to see it.
        let exit = self
            .wait_exit(&req.id, Some(Duration::from_secs(10)))
            .unwrap_or(Exit {
                pid: 0,
                status: 137,
                at: SystemTime::now(),
            });
        if let Err(e) = rootfs::unmount_all(&bundle) {
            errors.push(e.to_string());
        }
        *self.lock_task() = None;
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

fn no_exec(exec_id: &str) -> Result<()> {
    if exec_id.is_empty() {
        Ok(())
    } else {
        Err(ShimError::NotFound(format!(
            "exec {exec_id}: exec processes are not supported yet"
        )))
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
        no_exec(&req.exec_id)?;
        let exit = self.0.wait_exit(&req.id, None)?;
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
        let task_pid = self.0.with_task(&req.id, |t| Ok(t.pid)).unwrap_or_default();
        Ok(ConnectResponse {
            shim_pid: std::process::id(),
            task_pid,
            version: env!("CARGO_PKG_VERSION").to_string(),
            ..Default::default()
        })
    }

    fn exec(&self, _: &TtrpcContext, _: ExecProcessRequest) -> TResult<Empty> {
        Err(unimplemented("Exec (extra processes in the task)"))
    }

    fn resize_pty(&self, _: &TtrpcContext, _: ResizePtyRequest) -> TResult<Empty> {
        Err(unimplemented("ResizePty (terminal tasks)"))
    }

    fn close_io(&self, _: &TtrpcContext, _: CloseIORequest) -> TResult<Empty> {
        Err(unimplemented("CloseIO"))
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
