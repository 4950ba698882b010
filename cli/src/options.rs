//! Command-line options: global flags (every config key is a flag) and subcommands.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use skiff_daemon::config::DEFAULT_CONFIG_FILE;
use skiff_daemon::{EngineConfig, EngineError};
use skiff_image_store::SnapshotterChoice;

/// skiff: a lean container engine.
#[derive(Debug, Parser)]
#[command(name = "skiff", version, about, disable_help_subcommand = true)]
pub struct Cli {
    /// Global options.
    #[command(flatten)]
    pub global: Global,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes; each overrides the config file.
#[derive(Debug, Args)]
pub struct Global {
    /// Config file (TOML; every key is also a flag).
    #[arg(long, global = true, env = "SKIFF_CONFIG")]
    pub config: Option<PathBuf>,
    /// Root of persistent state (images, snapshots, containers).
    #[arg(long, global = true, env = "SKIFF_DATA_ROOT")]
    pub data_root: Option<PathBuf>,
    /// Root of runtime state (sockets, pids).
    #[arg(long, global = true, env = "SKIFF_RUN_ROOT")]
    pub run_root: Option<PathBuf>,
    /// A registry to reach over plain HTTP (repeatable).
    #[arg(
        long = "insecure-registry",
        global = true,
        value_name = "HOST[:PORT]|CIDR"
    )]
    pub insecure_registries: Vec<String>,
    /// A mirror tried before Docker Hub (repeatable).
    #[arg(long = "registry-mirror", global = true, value_name = "URL")]
    pub registry_mirrors: Vec<String>,
    /// Snapshotter for root filesystems.
    #[arg(long, global = true, value_enum)]
    pub snapshotter: Option<SnapshotterArg>,
    /// skiffd's Docker API socket to talk to (unix:///path). Default: skiffd's socket
    /// under the run root if one answers, else run daemonless.
    #[arg(short = 'H', long, global = true, env = "SKIFF_HOST")]
    pub host: Option<String>,
    /// Run in-process even when skiffd is running.
    #[arg(long, global = true, env = "SKIFF_DAEMONLESS")]
    pub daemonless: bool,
    /// The default bridge's interface name.
    #[arg(long, global = true, env = "SKIFF_BRIDGE_NAME")]
    pub bridge_name: Option<String>,
    /// The default bridge's subnet (CIDR).
    #[arg(long, global = true, env = "SKIFF_BRIDGE_SUBNET")]
    pub bridge_subnet: Option<String>,
    /// Where user networks without --subnet get a /24 from (CIDR).
    #[arg(long, global = true, env = "SKIFF_NETWORK_POOL")]
    pub network_pool: Option<String>,
    /// Turn on IPv4 forwarding when a bridge is set up (true or false).
    #[arg(long, global = true, value_name = "BOOL", env = "SKIFF_IP_FORWARD")]
    pub ip_forward: Option<bool>,
    /// Log level (error, warn, info, debug, trace).
    #[arg(long, global = true, default_value = "warn")]
    pub log_level: String,
}

/// `--snapshotter` values.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SnapshotterArg {
    /// overlayfs if it works here, else native.
    Auto,
    /// Kernel overlayfs.
    Overlayfs,
    /// Full copies.
    Native,
}

impl Global {
    /// The engine settings: config file, then flags on top.
    pub fn engine_config(&self) -> Result<EngineConfig, EngineError> {
        let (path, required) = match &self.config {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        let mut c = EngineConfig::load(&path, required)?;
        if let Some(d) = &self.data_root {
            c.data_root = d.clone();
        }
        if let Some(r) = &self.run_root {
            c.run_root = r.clone();
        }
        if let Some(b) = &self.bridge_name {
            c.bridge_name = b.clone();
        }
        if let Some(s) = &self.bridge_subnet {
            c.bridge_subnet = s.clone();
        }
        if let Some(p) = &self.network_pool {
            c.network_pool = p.clone();
        }
        if let Some(f) = self.ip_forward {
            c.ip_forward = f;
        }
        c.insecure_registries
            .extend(self.insecure_registries.iter().cloned());
        c.registry_mirrors
            .extend(self.registry_mirrors.iter().cloned());
        if let Some(s) = self.snapshotter {
            c.snapshotter = match s {
                SnapshotterArg::Auto => SnapshotterChoice::Auto,
                SnapshotterArg::Overlayfs => SnapshotterChoice::Overlayfs,
                SnapshotterArg::Native => SnapshotterChoice::Native,
            };
        }
        Ok(c)
    }
}

/// Every command.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Download an image from a registry.
    Pull(PullArgs),
    /// List images.
    Images(ImagesArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag {
        /// Existing image.
        source: String,
        /// New name.
        target: String,
    },
    /// Remove one or more images.
    Rmi(RmiArgs),
    /// Save images to a tar archive (docker-archive and OCI layout in one).
    Save(SaveArgs),
    /// Load images from a tar archive or an OCI layout directory.
    Load(LoadArgs),
    /// Log in to a registry.
    Login(LoginArgs),
    /// Log out from a registry.
    Logout {
        /// Registry host (default Docker Hub).
        server: Option<String>,
    },
    /// Show system-wide information.
    Info,
    /// Create and run a new container from an image.
    Run(RunArgs),
    /// Create a new container.
    Create(RunArgs),
    /// Start one or more stopped containers.
    Start(StartArgs),
    /// Stop one or more running containers.
    Stop(StopArgs),
    /// Restart one or more containers.
    Restart(StopArgs),
    /// Kill one or more running containers.
    Kill(KillArgs),
    /// Remove one or more containers.
    Rm(RmArgs),
    /// List containers.
    Ps(PsArgs),
    /// Fetch the logs of a container.
    Logs(LogsArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait {
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Pause all processes within one or more containers.
    Pause {
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Unpause all processes within one or more containers.
    Unpause {
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Display the running processes of a container.
    Top {
        /// Container.
        container: String,
    },
    /// Rename a container.
    Rename {
        /// Container.
        container: String,
        /// New name.
        new_name: String,
    },
    /// Execute a command in a running container.
    Exec(ExecArgs),
    /// Attach local standard input, output, and error streams to a running container.
    Attach(AttachArgs),
    /// Copy files between a container and the local filesystem.
    Cp {
        /// CONTAINER:SRC_PATH or a local path.
        src: String,
        /// CONTAINER:DEST_PATH or a local path.
        dst: String,
    },
    /// Display a live stream of container resource usage.
    Stats {
        /// Print one sample and exit.
        #[arg(long)]
        no_stream: bool,
        /// Show all containers (default: running ones).
        #[arg(short, long)]
        all: bool,
        /// Containers (default: all running).
        containers: Vec<String>,
    },
    /// Return low-level information on containers or images.
    Inspect {
        /// Containers or images.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Manage containers.
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(crate::commands::network::NetworkCommand),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(crate::commands::volume::VolumeCommand),
    /// List port mappings of a container, or look up one.
    Port {
        /// Container.
        container: String,
        /// PRIVATE_PORT[/PROTO].
        port: Option<String>,
    },
}

/// `container` subcommands.
#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// List containers.
    #[command(alias = "list")]
    Ls(PsArgs),
    /// Display detailed information on containers.
    Inspect {
        /// Containers.
        #[arg(required = true)]
        containers: Vec<String>,
    },
    /// Remove all stopped containers.
    Prune {
        /// Do not prompt for confirmation (always the case here).
        #[arg(short, long)]
        force: bool,
    },
    /// Remove containers.
    Rm(RmArgs),
}

/// `run` / `create` options (Docker's names).
#[derive(Debug, Args)]
#[command(trailing_var_arg = true, disable_help_flag = true)]
pub struct RunArgs {
    /// Print help (`-h` is --hostname, as in docker).
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// Assign a name to the container.
    #[arg(long)]
    pub name: Option<String>,
    /// Run in the background and print the container ID.
    #[arg(short, long)]
    pub detach: bool,
    /// Remove the container when it exits.
    #[arg(long)]
    pub rm: bool,
    /// Keep STDIN open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables (KEY=VALUE, or KEY to pass the caller's).
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read environment variables from a file.
    #[arg(long = "env-file")]
    pub env_file: Vec<PathBuf>,
    /// Working directory inside the container.
    #[arg(short, long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image.
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name.
    #[arg(long, short = 'h')]
    pub hostname: Option<String>,
    /// Bind mount a volume (SRC:DST[:ro]).
    #[arg(short, long = "volume")]
    pub volume: Vec<String>,
    /// Mount a tmpfs directory (DST[:OPTIONS]).
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Mount the container's root filesystem as read only.
    #[arg(long)]
    pub read_only: bool,
    /// Memory limit (e.g. 64m).
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap; -1 for unlimited.
    #[arg(long)]
    pub memory_swap: Option<String>,
    /// Number of CPUs.
    #[arg(long)]
    pub cpus: Option<String>,
    /// CPU shares (relative weight).
    #[arg(short = 'c', long)]
    pub cpu_shares: Option<u64>,
    /// CPUs in which to allow execution (0-3, 0,1).
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    /// Tune container pids limit (-1 for unlimited).
    #[arg(long, allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
    /// Add Linux capabilities.
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities.
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container.
    #[arg(long)]
    pub privileged: bool,
    /// Security options (no-new-privileges).
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Connect a container to a network (bridge, none, host, container:NAME, or a
    /// user-defined network).
    #[arg(long, alias = "net", default_value = "bridge")]
    pub network: String,
    /// Publish a container's port to the host: [ip:][hostPort:]containerPort[/tcp|udp].
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish every exposed port to a random host port.
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port (published with -P): PORT[/tcp|udp].
    #[arg(long)]
    pub expose: Vec<String>,
    /// Add a network-scoped alias for the container.
    #[arg(long = "network-alias", alias = "net-alias")]
    pub network_alias: Vec<String>,
    /// Restart policy (no, on-failure[:N], always, unless-stopped).
    #[arg(long, default_value = "no")]
    pub restart: String,
    /// Run an init inside the container.
    #[arg(long)]
    pub init: bool,
    /// Set metadata on a container.
    #[arg(short, long = "label")]
    pub label: Vec<String>,
    /// Runtime to use for this container.
    #[arg(long)]
    pub runtime: Option<String>,
    /// Signal to stop the container.
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Suppress the pull output.
    #[arg(short, long)]
    pub quiet: bool,
    /// Proxy received signals to the container (non-TTY only).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// Key sequence for detaching a TTY container (default ctrl-p,ctrl-q).
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// The image.
    pub image: String,
    /// Command and arguments.
    #[arg(allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `exec` options.
#[derive(Debug, Args)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    /// Detached mode: run the command in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open.
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables.
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(short, long = "workdir")]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    pub user: Option<String>,
    /// Give extended privileges to the command.
    #[arg(long)]
    pub privileged: bool,
    /// The container.
    pub container: String,
    /// Command and arguments.
    #[arg(required = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

/// `attach` options.
#[derive(Debug, Args)]
pub struct AttachArgs {
    /// Do not attach STDIN.
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy received signals to the container (non-TTY only, as docker).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// Key sequence for detaching (default ctrl-p,ctrl-q).
    #[arg(long)]
    pub detach_keys: Option<String>,
    /// The container.
    pub container: String,
}

/// `start` options.
#[derive(Debug, Args)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals.
    #[arg(short, long)]
    pub attach: bool,
    /// Attach the container's STDIN.
    #[arg(short, long)]
    pub interactive: bool,
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `stop` / `restart` options.
#[derive(Debug, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container.
    #[arg(short = 't', long = "time", alias = "timeout")]
    pub time: Option<u64>,
    /// Signal to send.
    #[arg(short, long)]
    pub signal: Option<String>,
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `kill` options.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Signal to send.
    #[arg(short, long, default_value = "KILL")]
    pub signal: String,
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `rm` options.
#[derive(Debug, Args)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL).
    #[arg(short, long)]
    pub force: bool,
    /// Remove the anonymous volumes the containers created.
    #[arg(short, long)]
    pub volumes: bool,
    /// Containers.
    #[arg(required = true)]
    pub containers: Vec<String>,
}

/// `ps` options.
#[derive(Debug, Args)]
pub struct PsArgs {
    /// Show all containers (default shows just running).
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Filter output (id=, name=, status=, label=, exited=, ancestor=).
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Don't truncate output.
    #[arg(long)]
    pub no_trunc: bool,
    /// Show the latest created container.
    #[arg(short, long)]
    pub latest: bool,
}

/// `logs` options.
#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Follow log output.
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs ("all").
    #[arg(short = 'n', long, default_value = "all")]
    pub tail: String,
    /// Show logs since timestamp or relative (e.g. 42m).
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative.
    #[arg(long)]
    pub until: Option<String>,
    /// Show timestamps.
    #[arg(short, long)]
    pub timestamps: bool,
    /// Container.
    pub container: String,
}

/// `pull` options.
#[derive(Debug, Args)]
pub struct PullArgs {
    /// Image reference (NAME[:TAG|@DIGEST]).
    pub reference: String,
    /// Suppress progress output.
    #[arg(short, long)]
    pub quiet: bool,
    /// Platform to pull (os/arch[/variant]).
    #[arg(long)]
    pub platform: Option<String>,
}

/// `images` options.
#[derive(Debug, Args)]
pub struct ImagesArgs {
    /// Only show repositories matching this reference.
    pub repository: Option<String>,
    /// Only show image IDs.
    #[arg(short, long)]
    pub quiet: bool,
    /// Show digests.
    #[arg(long)]
    pub digests: bool,
    /// Don't truncate IDs.
    #[arg(long)]
    pub no_trunc: bool,
    /// Show all images (accepted for compatibility).
    #[arg(short, long)]
    pub all: bool,
}

/// `rmi` options.
#[derive(Debug, Args)]
pub struct RmiArgs {
    /// Images to remove.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Remove even if tagged in several repositories.
    #[arg(short, long)]
    pub force: bool,
}

/// `save` options.
#[derive(Debug, Args)]
pub struct SaveArgs {
    /// Images to save.
    #[arg(required = true)]
    pub images: Vec<String>,
    /// Write to this file instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// `load` options.
#[derive(Debug, Args)]
pub struct LoadArgs {
    /// Read from this tar file (or OCI layout directory) instead of stdin.
    #[arg(short, long)]
    pub input: Option<PathBuf>,
    /// Suppress the load output.
    #[arg(short, long)]
    pub quiet: bool,
}

/// `login` options.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Registry host (default Docker Hub).
    pub server: Option<String>,
    /// Username.
    #[arg(short, long)]
    pub username: Option<String>,
    /// Password (prefer --password-stdin).
    #[arg(short, long)]
    pub password: Option<String>,
    /// Read the password from stdin.
    #[arg(long)]
    pub password_stdin: bool,
}

/// `image` subcommands.
#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images.
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Download an image.
    Pull(PullArgs),
    /// Display detailed information on images.
    Inspect {
        /// Images.
        #[arg(required = true)]
        images: Vec<String>,
    },
    /// Remove images.
    Rm(RmiArgs),
    /// Remove unused images.
    Prune {
        /// Remove all images not used by containers, not just dangling ones.
        #[arg(short, long)]
        all: bool,
        /// Do not prompt for confirmation (always the case here).
        #[arg(short, long)]
        force: bool,
    },
    /// Tag an image.
    Tag {
        /// Existing image.
        source: String,
        /// New name.
        target: String,
    },
    /// Save images.
    Save(SaveArgs),
    /// Load images.
    Load(LoadArgs),
    /// Mount an image's root filesystem read-only on a directory.
    Mount {
        /// Image.
        image: String,
        /// Mount point (an existing directory).
        target: PathBuf,
    },
    /// Unmount what `image mount` mounted.
    Umount {
        /// Mount point.
        target: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_takes_the_command_after_the_image() {
        let cli = Cli::try_parse_from([
            "skiff",
            "run",
            "--rm",
            "-e",
            "A=1",
            "alpine",
            "sh",
            "-c",
            "echo -n hi",
        ])
        .unwrap();
        let Command::Run(a) = cli.command else {
            panic!()
        };
        assert!(a.rm);
        assert_eq!(a.image, "alpine");
        assert_eq!(a.command, vec!["sh", "-c", "echo -n hi"]);
    }
}
