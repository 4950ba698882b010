//! `create`: resolve (or pull) the image, reserve a name, write the container's files
//! and its OCI spec. Nothing runs yet; a failed create leaves nothing behind.

use std::fs;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{Mount as SpecMount, MountBuilder};
use skiff_image_store::{ImageRecord, ProgressSink, PullOptions, StoreError};

use super::options::{CreateOptions, NetworkMode};
use super::record::{ContainerRecord, State};
use super::{names, new_id, now_rfc3339};
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::runtime::{DEFAULT_RUNTIME, RUNTIMES};
use crate::spec::{self, ImageRuntimeConfig, SpecInputs};

/// The cgroup (v1: in every hierarchy; v2: under the root) of a container.
pub fn cgroups_path(id: &str) -> String {
    format!("/skiff/{id}")
}

impl Engine {
    /// Finds the image, pulling it first when it is missing and `pull` gives a progress sink.
    pub async fn image_for_run(
        &self,
        name: &str,
        pull: Option<ProgressSink>,
    ) -> Result<ImageRecord> {
        match self.images().resolve(name) {
            Ok(img) => Ok(img),
            Err(StoreError::ImageNotFound(_)) if pull.is_some() => {
                let sink = pull.unwrap_or_else(skiff_image_store::progress::no_progress);
                Ok(self.pull_image(name, &PullOptions::default(), sink).await?)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Creates a container from `opts`; pulls a missing image when `pull` is given.
    pub async fn create_container(
        &self,
        opts: CreateOptions,
        pull: Option<ProgressSink>,
    ) -> Result<ContainerRecord> {
        let runtime = opts
            .runtime
            .clone()
            .unwrap_or_else(|| DEFAULT_RUNTIME.to_string());
        if !RUNTIMES.contains(&runtime.as_str()) {
            return Err(EngineError::InvalidInput(format!(
                "unknown or invalid runtime name: {runtime} (available: {})",
                RUNTIMES.join(", ")
            )));
        }
        self.check_network_options(&opts)?;
        if let Some(n) = &opts.name {
            names::validate(n)?;
        }
        let img = self.image_for_run(&opts.image, pull).await?;
        let engine = self.clone();
        tokio::task::spawn_blocking(move || engine.create_blocking(opts, img, runtime))
            .await
            .map_err(|e| EngineError::Internal(format!("create task failed: {e}")))?
    }

    fn create_blocking(
        &self,
        opts: CreateOptions,
        img: ImageRecord,
        runtime: String,
    ) -> Result<ContainerRecord> {
        let _lock = self.containers.lock()?;
        let existing = self.containers.list()?;
        let id = loop {
            let id = new_id();
            if !existing.iter().any(|c| c.id == id) {
                break id;
            }
        };
        let name = match &opts.name {
            Some(n) => {
                if let Some(c) = existing.iter().find(|c| &c.name == n) {
                    return Err(EngineError::Conflict(format!(
                        "Conflict. The container name \"/{n}\" is already in use by container \"{}\". You have to remove (or rename) that container to be able to reuse that name.",
                        c.id
                    )));
                }
                n.clone()
            }
            None => {
                let seed = id.as_bytes();
                (0..)
                    .map(|i| names::generate(&[seed[0] ^ seed[2], seed[1] ^ seed[3]], i))
                    .find(|n| !existing.iter().any(|c| &c.name == n))
                    .unwrap_or_else(|| id[..12].to_string())
            }
        };
        let dir = self.container_dir(&id);
        // `-v /path`: a new anonymous volume, named now so that every start mounts it.
        let mut opts = opts;
        let anonymous = self.create_anonymous_volumes(&mut opts.volumes)?;
        let result = self.write_container_files(&id, &name, &opts, &img, &runtime, &dir);
        match result {
            Ok(rec) => {
                self.container_event(&rec, "create", &[]);
                Ok(rec)
            }
            Err(e) => {
                let _ = fs::remove_dir_all(&dir);
                for v in &anonymous {
                    let _ = self.remove_volume(v, true);
                }
                Err(e)
            }
        }
    }

    fn write_container_files(
        &self,
        id: &str,
        name: &str,
        opts: &CreateOptions,
        img: &ImageRecord,
        runtime: &str,
        dir: &Path,
    ) -> Result<ContainerRecord> {
        fs::create_dir_all(dir).map_err(|e| EngineError::io("creating", dir, e))?;
        let config = self.images().config_json(img)?;
        let image_cfg = ImageRuntimeConfig::from_image_config(&config).map_err(spec_err)?;
        let view = dir.join("image-etc");
        self.copy_image_files(img, &view, &["etc/passwd", "etc/group"])?;
        let hostname = match (&opts.hostname, &opts.network) {
            (Some(h), _) => h.clone(),
            (None, NetworkMode::Host) => host_hostname(),
            (None, _) => id[..12].to_string(),
        };
        let mut effective = opts.clone();
        effective.hostname = Some(hostname.clone());
        let extra_mounts = self.write_network_files(dir, &hostname, &opts.network)?;
        let bundle = self.bundle_dir(id);
        let volume_root = self.config().data_root.join("volumes");
        for v in &opts.volumes {
            if !v.source.contains('/') {
                self.ensure_volume(&v.source)?;
            }
        }
        let init_path = if opts.init {
            Some(self.init_binary()?)
        } else {
            None
        };
        let inputs = SpecInputs {
            id,
            options: &effective,
            image: &image_cfg,
            rootfs: &bundle.join("rootfs"),
            image_rootfs_view: &view,
            cgroups_path: cgroups_path(id),
            extra_mounts,
            volume_root: &volume_root,
            host_env: &|k| std::env::var(k).ok(),
            init_path: init_path.as_deref(),
        };
        let spec = spec::build_spec(&inputs).map_err(spec_err)?;
        let command = spec
            .process()
            .as_ref()
            .and_then(|p| p.args().clone())
            .unwrap_or_default();
        let spec_path = dir.join("config.json");
        let body =
            serde_json::to_vec_pretty(&spec).map_err(|e| EngineError::Internal(e.to_string()))?;
        fs::write(&spec_path, body).map_err(|e| EngineError::io("writing", &spec_path, e))?;
        let rec = ContainerRecord {
            id: id.to_string(),
            name: name.to_string(),
            created: now_rfc3339(),
            image_name: opts.image.clone(),
            image_id: img.id.to_string(),
            top_layer: img
                .top_chain_id()
                .map(|c| c.to_string())
                .unwrap_or_default(),
            command,
            options: opts.clone(),
            state: State::default(),
            runtime: runtime.to_string(),
            log_path: dir.join(format!("{id}-json.log")),
            bundle,
        };
        let mut rec = rec;
        self.add_exposed_ports(&mut rec.options, &config);
        if rec.options.auto_remove {
            // Meant to vanish when it exits: after a host crash, losing it is what `--rm`
            // asked for, so its creation need not wait for the disk.
            self.containers.save_state(&rec)?;
        } else {
            self.containers.save(&rec)?;
        }
        self.join_network(&rec)?;
        Ok(rec)
    }

    /// Copies regular files of the image (like /etc/passwd) into `dest` for lookups.
    fn copy_image_files(&self, img: &ImageRecord, dest: &Path, files: &[&str]) -> Result<()> {
        let view = self.images().image_view(img)?;
        for f in files {
            let target = dest.join(f);
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(|e| EngineError::io("creating", parent, e))?;
            }
            if let Some(src) = view.find(f) {
                if fs::symlink_metadata(&src)
                    .map(|m| m.is_file())
                    .unwrap_or(false)
                {
                    fs::copy(&src, &target).map_err(|e| EngineError::io("copying", &src, e))?;
                }
            }
        }
        Ok(())
    }

    /// Writes /etc/hostname, /etc/hosts and /etc/resolv.conf for the container and
    /// returns the bind mounts that put them in place.
    fn write_network_files(
        &self,
        dir: &Path,
        hostname: &str,
        network: &NetworkMode,
    ) -> Result<Vec<SpecMount>> {
        let hosts = match network {
            NetworkMode::Host => fs::read_to_string("/etc/hosts").unwrap_or_default(),
            _ => format!(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\t{hostname}\n"
            ),
        };
        let host_resolv = fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let resolv = match network {
            NetworkMode::Host => host_resolv,
            // A loopback resolver of the host is unreachable from the container's own
            // network namespace (Docker drops those too).
            _ => host_resolv
                .lines()
                .filter(|l| {
                    !(l.starts_with("nameserver") && (l.contains(" 127.") || l.contains(" ::1")))
                })
                .map(|l| format!("{l}\n"))
                .collect(),
        };
        let files = [
            ("hostname", format!("{hostname}\n")),
            ("hosts", hosts),
            ("resolv.conf", resolv),
        ];
        let mut mounts = Vec::new();
        for (name, content) in files {
            let p = dir.join(name);
            fs::write(&p, content).map_err(|e| EngineError::io("writing", &p, e))?;
            mounts.push(bind_mount(&p, &format!("/etc/{name}"))?);
        }
        Ok(mounts)
    }

    /// The init binary `--init` runs as PID 1.
    fn init_binary(&self) -> Result<PathBuf> {
        if let Some(p) = &self.config().init_binary {
            return if p.is_file() {
                Ok(p.clone())
            } else {
                Err(EngineError::InvalidInput(format!(
                    "--init: the configured init-binary {} does not exist",
                    p.display()
                )))
            };
        }
        crate::config::DEFAULT_INIT_BINARIES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                EngineError::InvalidInput(format!(
                    "--init: no init binary on this host (looked for {}; install Debian's tini package or set init-binary)",
                    crate::config::DEFAULT_INIT_BINARIES.join(", ")
                ))
            })
    }
}

fn bind_mount(source: &Path, destination: &str) -> Result<SpecMount> {
    MountBuilder::default()
        .destination(destination)
        .typ("bind")
        .source(source)
        .options(vec!["rbind".to_string(), "rprivate".to_string()])
        .build()
        .map_err(|e| EngineError::Internal(format!("mount {destination}: {e}")))
}

fn host_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// Maps a spec error to the engine's classification.
pub(crate) fn spec_err(e: spec::SpecError) -> EngineError {
    if e.is_invalid_input() {
        EngineError::InvalidInput(e.to_string())
    } else {
        EngineError::Internal(e.to_string())
    }
}
