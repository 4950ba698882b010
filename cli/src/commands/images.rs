//! `skiff images`, `image inspect`, `image mount` / `umount`.

use std::path::Path;

use skiff_daemon::{Engine, EngineError};
use skiff_image_store::mount;
use skiff_image_store::ImageRef;

use crate::format::{ago, human_size, print_table};
use crate::options::ImagesArgs;

/// Lists images as `docker images` does.
pub fn list(engine: &Engine, a: &ImagesArgs) -> Result<u8, EngineError> {
    let images = engine.list_images()?;
    let filter = a.repository.as_deref().map(ImageRef::parse).transpose()?;
    let mut rows = vec![if a.digests {
        vec!["REPOSITORY", "TAG", "DIGEST", "IMAGE ID", "CREATED", "SIZE"]
    } else {
        vec!["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    }
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>()];
    let mut ids = Vec::new();
    for img in &images {
        let id = if a.no_trunc {
            img.id.clone()
        } else {
            img.id
                .trim_start_matches("sha256:")
                .chars()
                .take(12)
                .collect()
        };
        let names: Vec<(String, String)> = if img.repo_tags.is_empty() {
            let repo = img
                .repo_digests
                .first()
                .and_then(|d| d.split_once('@'))
                .map(|(n, _)| n.to_string())
                .unwrap_or_else(|| "<none>".into());
            vec![(repo, "<none>".into())]
        } else {
            img.repo_tags
                .iter()
                .map(|t| match t.rsplit_once(':') {
                    Some((n, tag)) if !tag.contains('/') => (n.to_string(), tag.to_string()),
                    _ => (t.clone(), "<none>".into()),
                })
                .collect()
        };
        for (repo, tag) in names {
            if let Some(f) = &filter {
                let full = ImageRef::parse(&repo).map(|r| r.name()).unwrap_or_default();
                if full != f.name()
                    || (f.tag().is_some()
                        && a.repository.as_deref().is_some_and(|r| r.contains(':'))
                        && f.tag() != Some(tag.as_str()))
                {
                    continue;
                }
            }
            if a.quiet {
                if !ids.contains(&id) {
                    ids.push(id.clone());
                }
                continue;
            }
            let mut row = vec![repo.clone(), tag];
            if a.digests {
                let digest = img
                    .repo_digests
                    .iter()
                    .find(|d| d.starts_with(&format!("{repo}@")))
                    .and_then(|d| d.split_once('@'))
                    .map(|(_, d)| d.to_string())
                    .unwrap_or_else(|| "<none>".into());
                row.push(digest);
            }
            row.extend([id.clone(), ago(img.created), human_size(img.size)]);
            rows.push(row);
        }
    }
    if a.quiet {
        for id in ids {
            println!("{id}");
        }
    } else {
        print_table(&rows);
    }
    Ok(0)
}

/// Prints a JSON array of image details, as `docker image inspect` does.
pub fn inspect(engine: &Engine, names: &[String]) -> Result<u8, EngineError> {
    let mut out = Vec::new();
    let mut code = 0;
    for n in names {
        match engine.inspect_image(n) {
            Ok(d) => out.push(d),
            Err(e) => {
                eprintln!("Error: {e}");
                code = 1;
            }
        }
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&out).unwrap_or_else(|_| "[]".into())
    );
    Ok(code)
}

/// Mounts an image's rootfs read-only at `target`.
pub fn mount(engine: &Engine, image: &str, target: &Path) -> Result<u8, EngineError> {
    let img = engine.images().resolve(image)?;
    engine.images().rootfs_view(&img)?.mount(target)?;
    println!("{}", target.display());
    Ok(0)
}

/// Unmounts what `image mount` mounted.
pub fn umount(target: &Path) -> Result<u8, EngineError> {
    mount::unmount(target)?;
    Ok(0)
}
