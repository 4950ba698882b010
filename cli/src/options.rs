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
