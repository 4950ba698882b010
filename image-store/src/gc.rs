//! Removing images, pruning, and garbage collection of blobs and snapshots that no
//! image references any more.

use std::collections::HashSet;

use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::image::ImageRecord;
use crate::reference::ImageRef;
use crate::store::ImageStore;

/// One line of `rmi` output, as Docker prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoveAction {
    /// A tag (or repo digest) was removed: `Untagged: alpine:latest`.
    Untagged(String),
    /// An image or layer was deleted: `Deleted: sha256:...`.
    Deleted(Digest),
}

/// What garbage collection freed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Blobs deleted.
    pub blobs_removed: usize,
    /// Snapshots deleted (including orphaned directories).
    pub snapshots_removed: usize,
    /// Bytes of blobs and unpacked layers freed (approximate for snapshots).
    pub bytes_freed: u64,
}

impl ImageStore {
    /// Removes an image by reference or ID, as `docker rmi` does: a tag of an image with
    /// other tags is only untagged; the last tag (or `force`) deletes the image.
    /// `in_use` says whether a container uses an image (those need `force`).
    pub fn remove(
        &self,
        name: &str,
        force: bool,
        in_use: &dyn Fn(&Digest) -> bool,
    ) -> Result<Vec<RemoveAction>> {
        let img = self.resolve(name)?;
        let tags = self.tags_of(&img.id)?;
        let by_tag = ImageRef::parse(name)
            .ok()
            .filter(|r| r.digest().is_none())
            .map(|r| r.with_tag(r.tag().unwrap_or("latest")).to_string())
            .filter(|t| tags.contains(t));
        let mut actions = Vec::new();
        let conflict = |why: String| StoreError::Conflict {
            image: name.to_string(),
            why,
        };
        if let Some(tag) = &by_tag {
            if tags.len() > 1 || (!force && in_use(&img.id) && tags.len() == 1) {
                if tags.len() == 1 {
                    // Last tag of an image a container uses: Docker untags and keeps the image.
                }
                self.meta.write(|w| w.remove_tag(tag))?;
                actions.push(RemoveAction::Untagged(familiar(tag)));
                return Ok(actions);
            }
        } else if !force {
            if tags.len() > 1 {
                return Err(conflict(format!(
                    "image is referenced in multiple repositories ({}); use a name or force",
                    tags.iter()
                        .map(|t| familiar(t))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            if in_use(&img.id) {
                return Err(conflict(format!(
                    "image is being used by a container ({})",
                    img.id.short()
                )));
            }
        } else if in_use(&img.id) {
            return Err(conflict(format!(
                "image is being used by a running or stopped container ({}); remove the container first",
                img.id.short()
            )));
        }
        self.meta.write(|w| {
            for t in &tags {
                w.remove_tag(t)?;
            }
            w.remove_image(&img.id)
        })?;
        actions.extend(tags.iter().map(|t| RemoveAction::Untagged(familiar(t))));
        actions.extend(
            img.repo_digests
                .iter()
                .map(|d| RemoveAction::Untagged(familiar(d))),
        );
        actions.push(RemoveAction::Deleted(img.id.clone()));
        let removed_layers = self.layers_freed_by(&img)?;
        self.gc(&[])?;
        actions.extend(removed_layers.into_iter().map(RemoveAction::Deleted));
        Ok(actions)
    }

    /// Chain IDs of `img` that no other image uses (shown as deleted layers).
    fn layers_freed_by(&self, img: &ImageRecord) -> Result<Vec<Digest>> {
        let others: HashSet<Digest> = self
            .meta
            .read(|r| r.images())?
            .into_iter()
            .flat_map(|i| i.layers.into_iter().map(|l| l.chain_id))
            .collect();
        Ok(img
            .layers
            .iter()
            .rev()
            .map(|l| l.chain_id.clone())
            .filter(|c| !others.contains(c))
            .collect())
    }

    /// Removes dangling (untagged) images, or with `all` every image no container uses.
    pub fn prune(
        &self,
        all: bool,
        in_use: &dyn Fn(&Digest) -> bool,
    ) -> Result<(Vec<RemoveAction>, GcReport)> {
        let mut actions = Vec::new();
        for (img, tags) in self.list()? {
            if in_use(&img.id) || (!all && !tags.is_empty()) {
                continue;
            }
            self.meta.write(|w| {
                for t in &tags {
                    w.remove_tag(t)?;
                }
                w.remove_image(&img.id)
            })?;
            actions.extend(tags.iter().map(|t| RemoveAction::Untagged(familiar(t))));
            actions.push(RemoveAction::Deleted(img.id.clone()));
        }
        let report = self.gc(&[])?;
        Ok((actions, report))
    }

    /// Deletes every blob and snapshot that no image (and no chain in `keep`) references,
    /// orphaned snapshot directories, and partial downloads of killed pulls.
    pub fn gc(&self, keep: &[Digest]) -> Result<GcReport> {
        let _lock = self.exclusive_for_gc()?;
        let mut report = GcReport::default();
        let images = self.meta.read(|r| r.images())?;
        let keep_blobs: HashSet<&Digest> = images.iter().flat_map(|i| i.blobs()).collect();
        let mut keep_chains: HashSet<Digest> = images
            .iter()
            .flat_map(|i| i.layers.iter().map(|l| l.chain_id.clone()))
            .collect();
        keep_chains.extend(keep.iter().cloned());

        let snapshots = self.meta.read(|r| r.snapshots())?;
        let mut kept_ids = HashSet::new();
        for (chain, rec) in &snapshots {
            if keep_chains.contains(chain) {
                kept_ids.insert(rec.id);
                continue;
            }
            self.snapshots.remove(chain, rec)?;
            report.snapshots_removed += 1;
            report.bytes_freed += rec.size;
        }
        for id in self.snapshots.dirs_on_disk()? {
            if !kept_ids.contains(&id)
                && !snapshots
                    .iter()
                    .any(|(c, r)| r.id == id && keep_chains.contains(c))
            {
                let d = self.snapshots.snapshot_dir(id);
                if std::fs::remove_dir_all(&d).is_ok() && !snapshots.iter().any(|(_, r)| r.id == id)
                {
                    report.snapshots_removed += 1;
                }
            }
        }
        for blob in self.content.list()? {
            if !keep_blobs.contains(&blob) {
                report.bytes_freed += self.content.size(&blob).unwrap_or(0);
                self.content.delete(&blob)?;
                report.blobs_removed += 1;
            }
        }
        self.content.clean_stale_ingests()?;
        Ok(report)
    }
}

/// Docker's short form of a stored `registry/repo:tag` or `registry/repo@digest`.
pub fn familiar(full: &str) -> String {
    match ImageRef::parse(full) {
        Ok(r) => {
            let name = r.familiar_name();
            match (r.tag(), r.digest()) {
                (_, Some(d)) => format!("{name}@{d}"),
                (Some(t), None) => format!("{name}:{t}"),
                (None, None) => name,
            }
        }
        Err(_) => full.to_string(),
    }
}
