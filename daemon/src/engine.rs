//! `Engine`: the one entry point of skiff as a library.

use std::path::Path;

use skiff_image_store::auth::{self, Credentials};
use skiff_image_store::gc::{GcReport, RemoveAction};
use skiff_image_store::{Digest, ImageRecord, ImageStore, ProgressSink, PullOptions};

use crate::config::EngineConfig;
use crate::error::Result;

/// A skiff engine over one data root. Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct Engine {
    config: EngineConfig,
    images: ImageStore,
}

impl Engine {
    /// Opens the engine's stores (creating them on first use).
    pub fn open(config: EngineConfig) -> Result<Self> {
        let images = ImageStore::open(config.store_config())?;
        Ok(Engine { config, images })
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
        Ok(self.images.pull(reference, opts, progress).await?)
    }

    /// Removes an image (`rmi`).
    pub fn remove_image(&self, name: &str, force: bool) -> Result<Vec<RemoveAction>> {
        Ok(self
            .images
            .remove(name, force, &|id| self.image_in_use(id))?)
    }

    /// Removes dangling images (or all unused ones) and collects garbage.
    pub fn prune_images(&self, all: bool) -> Result<(Vec<RemoveAction>, GcReport)> {
        Ok(self.images.prune(all, &|id| self.image_in_use(id))?)
    }

    /// Whether a container uses image `id` (no containers exist yet).
    fn image_in_use(&self, _id: &Digest) -> bool {
        false
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
