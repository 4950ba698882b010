//! `skiff` as a client of a running `skiffd`: when skiffd's Docker API socket answers
//! (`-H unix:///path`, or `<run-root>/docker.sock`), commands go through it, so the
//! daemon supervises what they start (restart policies, `--rm`, events). Commands the API
//! does not carry (image mount, save/load, login) run in-process on the same store,
//! which is safe: the store and container records are shared under file locks.

mod attach;
mod body;
mod containers;
mod images;
mod networks;
mod wait;

use std::path::PathBuf;
use std::time::Duration;

use bollard::Docker;
use skiff_daemon::EngineConfig;

use crate::options::{Command, ContainerCommand, Global, ImageCommand};

/// A connection to skiffd's Docker API.
pub struct Remote {
    docker: Docker,
    socket: PathBuf,
}

/// Why a command through skiffd failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// skiffd answered with an error.
    #[error("{message}")]
    Api {
        /// HTTP status.
        status: u16,
        /// skiffd's message.
        message: String,
    },
    /// The connection to skiffd failed.
    #[error("cannot talk to skiffd at {socket}: {why}")]
    Connection {
        /// The socket.
        socket: String,
        /// What failed.
        why: String,
    },
    /// The command line is wrong (checked before anything is sent).
    #[error(transparent)]
    Invalid(#[from] skiff_daemon::EngineError),
}

impl RemoteError {
    /// The exit status docker gives: 127 and 126 for a command that is missing or not
    /// executable in the container, else 125.
    pub fn exit_status(&self) -> u8 {
        match self {
            RemoteError::Api { message, .. } if message.contains("executable file not found") => {
                127
            }
            RemoteError::Api { message, .. }
                if message.contains("failed to create task")
                    && message.contains("permission denied") =>
            {
                126
            }
            RemoteError::Invalid(e) => e.exit_status(),
            _ => 125,
        }
    }
}

impl Remote {
    /// skiffd's data root, for commands that run in-process on its store.
    pub async fn data_root(&self) -> Result<PathBuf> {
        let info = self.docker.info().await.map_err(|e| self.err(e))?;
        info.docker_root_dir
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .ok_or_else(|| RemoteError::Connection {
                socket: self.socket.display().to_string(),
                why: "skiffd's /info gives no DockerRootDir".into(),
            })
    }

    fn err(&self, e: bollard::errors::Error) -> RemoteError {
        match e {
            bollard::errors::Error::DockerResponseServerError {
                status_code,
                message,
            } => RemoteError::Api {
                status: status_code,
                message,
            },
            // An error reported inside a streamed answer (pull progress).
            bollard::errors::Error::DockerStreamError { error } => RemoteError::Api {
                status: 500,
                message: error,
            },
            other => RemoteError::Connection {
                socket: self.socket.display().to_string(),
                why: other.to_string(),
            },
        }
    }
}

/// Result of a command run through skiffd.
pub type Result<T> = std::result::Result<T, RemoteError>;

/// Connects to skiffd if one serves this run root (or `--host`); `None` means the
/// command runs daemonless.
pub async fn connect(global: &Global, config: &EngineConfig) -> Result<Option<Remote>> {
    if global.daemonless {
        return Ok(None);
    }
    let (socket, explicit) = match &global.host {
        Some(h) => match h.strip_prefix("unix://") {
            Some(p) => (PathBuf::from(p), true),
            None if h.starts_with('/') => (PathBuf::from(h), true),
            None => {
                return Err(RemoteError::Invalid(
                    skiff_daemon::EngineError::InvalidInput(format!(
                        "--host {h:?}: only unix:///path sockets are supported"
                    )),
                ))
            }
        },
        None => (config.run_root.join("docker.sock"), false),
    };
    if !explicit && !socket.exists() {
        return Ok(None);
    }
    let unreachable = |why: String| RemoteError::Connection {
        socket: socket.display().to_string(),
        why,
    };
    let docker = Docker::connect_with_unix(
        &socket.display().to_string(),
        3600,
        bollard::API_DEFAULT_VERSION,
    )
    .map_err(|e| unreachable(e.to_string()))?;
    // A socket file can outlive its daemon (/run persists here): only a ping counts.
    match tokio::time::timeout(Duration::from_secs(2), docker.ping()).await {
        Ok(Ok(_)) => Ok(Some(Remote { docker, socket })),
        Ok(Err(e)) if explicit => Err(unreachable(e.to_string())),
        Err(_) if explicit => Err(unreachable("no answer to ping within 2 s".into())),
        _ => {
            tracing::debug!(socket = %socket.display(), "no skiffd answers; running daemonless");
            Ok(None)
        }
    }
}

/// Runs `command` through skiffd; `None` when the API does not carry it and the caller
/// should run it in-process.
pub async fn dispatch(r: &Remote, command: &Command) -> Option<Result<u8>> {
    Some(match command {
        Command::Run(a) => containers::run(r, a).await,
        Command::Create(a) => containers::create(r, a).await,
        Command::Start(a) => containers::start(r, a).await,
        Command::Stop(a) => containers::stop(r, a, false).await,
        Command::Restart(a) => containers::stop(r, a, true).await,
        Command::Kill(a) => containers::kill(r, a).await,
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => containers::rm(r, a).await,
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => containers::ps(r, a).await,
        Command::Logs(a) => containers::logs(r, a).await,
        Command::Wait { containers } => containers::wait(r, containers).await,
        Command::Pause { containers } => containers::pause(r, containers, false).await,
        Command::Unpause { containers } => containers::pause(r, containers, true).await,
        Command::Top { container } => containers::top(r, container).await,
        Command::Rename {
            container,
            new_name,
        } => containers::rename(r, container, new_name).await,
        Command::Attach(a) => containers::attach(r, a).await,
        Command::Exec(a) => containers::exec(r, a).await,
        Command::Inspect { names } => containers::inspect(r, names, true).await,
        Command::Container(ContainerCommand::Inspect { containers }) => {
            containers::inspect(r, containers, false).await
        }
        Command::Container(ContainerCommand::Prune { .. }) => containers::prune(r).await,
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => images::pull(r, a).await,
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => images::list(r, a).await,
        Command::Image(ImageCommand::Inspect { images }) => images::inspect(r, images).await,
        Command::Tag { source, target } | Command::Image(ImageCommand::Tag { source, target }) => {
            images::tag(r, source, target).await
        }
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => images::rmi(r, a).await,
        Command::Network(n) => networks::network(r, n).await,
        Command::Port { container, port } => networks::port(r, container, port.as_deref()).await,
        _ => return None,
    })
}

/// Prints an error the way docker does and gives its exit status.
pub fn report(e: &RemoteError) -> u8 {
    match e {
        RemoteError::Api { .. } => eprintln!("Error response from daemon: {e}"),
        RemoteError::Connection { .. } | RemoteError::Invalid(_) => eprintln!("skiff: {e}"),
    }
    e.exit_status()
}
