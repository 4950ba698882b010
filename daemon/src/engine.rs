//! `Engine`: the one entry point of skiff as a library.

use std::path::{Path, PathBuf};

use skiff_image_store::auth::{self, Credentials};
use skiff_image_store::gc::{GcReport, RemoveAction};
use skiff_image_store::{Digest, ImageRecord, ImageStore, ProgressSink, PullOptions};

use crate::config::EngineConfig;
use crate::container::exec_registry::ExecRegistry;
use crate::container::store::ContainerStore;
use crate::error::Result;
use crate::events::EventBus;
use crate::network::Networks;
use crate::runtime::shim::ShimLauncher;

/// A skiff engine over one data root. Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct Engine {
    config: EngineConfig,
    images: ImageStore,
    pub(crate) containers: ContainerStore,
    pub(crate) shim: ShimLauncher,
    pub(crate) events: EventBus,
    pub(crate) execs: std::sync::Arc<ExecRegistry>,
    pub(crate) networks: Networks,
}

impl Engine {
    /// Opens the engine's stores (creating them on first use).
    pub fn open(config: EngineConfig) -> Result<Self> {
        let images = ImageStore::open(config.store_config())?;
        let containers = ContainerStore::open(&config.data_root.join("containers"))?;
        let shim = ShimLauncher {
            binary: config
                .shim_binary
                .clone()
                .unwrap_or_else(ShimLauncher::locate_binary),
            socket_dir: config.run_root.join("s"),
        };
        let networks = Networks::open(
            &config.data_root.join("networks"),
            &config.run_root.join("netns"),
            &config.bridge_name,
            &config.bridge_subnet,
            &config.network_pool,
            config.ip_forward,
        )?;
        Ok(Engine {
            config,
            images,
            containers,
            shim,
            events: EventBus::default(),
            execs: Default::default(),
            networks,
        })
    }

    /// Where container `id`'s persistent files live (record, log, writable layer).
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers.dir_of(id)
    }

    /// Where container `id`'s OCI bundle lives while it has a task.
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.config.run_root.join("containers").join(id)
    }

    /// The engine's networks (create, list, remove, prune; the default bridge).
    pub fn networks(&self) -> &Networks {
        &self.networks
    }

    /// The settings in force.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The image store.
    pub fn images(&self) -> &ImageStore {
        &self.images
    }

    /// Pulls an image.
    pub async fn pull_image(
        &self,
        reference: &str,
        opts: &PullOptions,
        progress: ProgressSink,
    ) -> Result<ImageRecord> {
        self.pull_image_as(reference, opts, None, progress).await
    }

    /// Pulls an image with credentials the caller gives for its registry (instead of
    /// the stored ones); they are not stored.
    pub async fn pull_image_as(
        &self,
        reference: &str,
        opts: &PullOptions,
        creds: Option<Credentials>,
        progress: ProgressSink,
    ) -> Result<ImageRecord> {
        let rec = self
            .images
            .pull_with_credentials(reference, opts, creds, progress)
            .await?;
        self.image_event("pull", reference, reference);
        Ok(rec)
    }

    /// Tags an image (`tag`), announcing `tag`.
    pub fn tag_image(&self, source: &str, target: &str) -> Result<ImageRecord> {
        let rec = self.images.tag(source, target)?;
        self.image_event("tag", &rec.id.to_string(), target);
        Ok(rec)
    }

    /// Removes an image (`rmi`).
    pub fn remove_image(&self, name: &str, force: bool) -> Result<Vec<RemoveAction>> {
        let id = self.images.resolve(name).map(|r| r.id.to_string()).ok();
        let actions = self
            .images
            .remove(name, force, &|id| self.image_in_use(id))?;
        self.image_removal_events(id.as_deref().unwrap_or(name), &actions);
        Ok(actions)
    }

    fn image_removal_events(&self, id: &str, actions: &[RemoveAction]) {
        for a in actions {
            match a {
                RemoveAction::Untagged(t) => self.image_event("untag", id, t),
                RemoveAction::Deleted(d) => {
                    let d = d.to_string();
                    self.image_event("delete", &d, &d)
                }
            }
        }
    }

    /// Removes dangling images (or all unused ones) and collects garbage.
    pub fn prune_images(&self, all: bool) -> Result<(Vec<RemoveAction>, GcReport)> {
        let (actions, report) = self.images.prune(all, &|id| self.image_in_use(id))?;
        self.image_removal_events("", &actions);
        Ok((actions, report))
    }

    /// Whether a container uses image `id`.
    fn image_in_use(&self, id: &Digest) -> bool {
        let id = id.to_string();
        self.containers
            .list()
            .map(|l| l.iter().any(|c| c.image_id == id))
            .unwrap_or(true)
    }

    /// Checks credentials against a registry and stores them for later pulls.
    pub async fn login(&self, registry: &str, creds: Credentials) -> Result<()> {
        self.images.check_login(registry, &creds).await?;
        auth::store(&self.auth_file(), registry, &creds)?;
        Ok(())
    }

    /// Forgets stored credentials; returns whether there were any.
    pub fn logout(&self, registry: &str) -> Result<bool> {
        Ok(auth::remove(&self.auth_file(), registry)?)
    }

    fn auth_file(&self) -> std::path::PathBuf {
        self.config
            .auth_file
            .clone()
            .unwrap_or_else(auth::default_auth_file)
    }

    /// The data root.
    pub fn data_root(&self) -> &Path {
        &self.config.data_root
    }
}
