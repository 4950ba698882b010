//! Image commands through skiffd: pull (docker's progress lines), images, inspect, tag,
//! rmi.

use std::collections::HashMap;

use bollard::query_parameters as q;
use futures_util::StreamExt;

use super::{Remote, RemoteError, Result};
use crate::format::{ago, human_size, print_table};
use crate::options::{ImagesArgs, PullArgs, RmiArgs};

/// Pulls `image`, printing docker's per-layer status lines (to stderr when `to_stderr`,
/// as `run` does). Repeated progress updates of a layer are shown once per status.
pub async fn pull_image(
    r: &Remote,
    image: &str,
    platform: Option<&str>,
    quiet: bool,
    to_stderr: bool,
) -> Result<()> {
    let mut b = q::CreateImageOptionsBuilder::new().from_image(image);
    if let Some(p) = platform {
        b = b.platform(p);
    }
    let mut stream = r.docker.create_image(Some(b.build()), None, None);
    let mut last: HashMap<String, String> = HashMap::new();
    let say = |line: String| {
        if quiet {
            return;
        }
        if to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    };
    while let Some(item) = stream.next().await {
        let info = item.map_err(|e| r.err(e))?;
        if let Some(detail) = info.error_detail.and_then(|d| d.message) {
            return Err(RemoteError::Api {
                status: 500,
                message: detail,
            });
        }
        let status = info.status.unwrap_or_default();
        match info.id {
            Some(id) if !id.is_empty() => {
                if last.get(&id) != Some(&status) {
                    last.insert(id.clone(), status.clone());
                    say(format!("{id}: {status}"));
                }
            }
            _ => say(status),
        }
    }
    Ok(())
}

/// `skiff pull` through skiffd; prints the reference pulled, as docker does.
pub async fn pull(r: &Remote, a: &PullArgs) -> Result<u8> {
    pull_image(r, &a.reference, a.platform.as_deref(), a.quiet, false).await?;
    if a.quiet {
        let name = skiff_image_store::ImageRef::parse(&a.reference)
            .map(|r| r.to_string())
            .unwrap_or_else(|_| a.reference.clone());
        println!("{name}");
    }
    Ok(0)
}

/// `skiff images` through skiffd.
pub async fn list(r: &Remote, a: &ImagesArgs) -> Result<u8> {
    let mut filters: HashMap<String, Vec<String>> = HashMap::new();
    if let Some(repo) = &a.repository {
        filters.insert("reference".into(), vec![repo.clone()]);
    }
    let o = q::ListImagesOptionsBuilder::new()
        .all(a.all)
        .digests(a.digests)
        .filters(&filters)
        .build();
    let list = r.docker.list_images(Some(o)).await.map_err(|e| r.err(e))?;
    let short = |id: &str| -> String {
        let hex = id.strip_prefix("sha256:").unwrap_or(id);
        if a.no_trunc {
            id.to_string()
        } else {
            hex.chars().take(12).collect()
        }
    };
    if a.quiet {
        for i in &list {
            println!("{}", short(&i.id));
        }
        return Ok(0);
    }
    let mut header = vec!["REPOSITORY", "TAG"];
    if a.digests {
        header.push("DIGEST");
    }
    header.extend(["IMAGE ID", "CREATED", "SIZE"]);
    let mut rows = vec![header.iter().map(|s| s.to_string()).collect::<Vec<_>>()];
    for i in &list {
        let tags = if i.repo_tags.is_empty() {
            vec!["<none>:<none>".to_string()]
        } else {
            i.repo_tags.clone()
        };
        for t in tags {
            let (repo, tag) = t.rsplit_once(':').unwrap_or((t.as_str(), "<none>"));
            let mut row = vec![repo.to_string(), tag.to_string()];
            if a.digests {
                row.push(
                    i.repo_digests
                        .iter()
                        .find(|d| d.starts_with(&format!("{repo}@")))
                        .and_then(|d| d.split_once('@'))
                        .map(|(_, d)| d.to_string())
                        .unwrap_or_else(|| "<none>".into()),
                );
            }
            row.extend([
                short(&i.id),
                ago(i.created),
                human_size(u64::try_from(i.size).unwrap_or(0)),
            ]);
            rows.push(row);
        }
    }
    print_table(&rows);
    Ok(0)
}

/// `skiff image inspect` through skiffd.
pub async fn inspect(r: &Remote, images: &[String]) -> Result<u8> {
    let mut out = Vec::new();
    let mut code = 0;
    for i in images {
        match r.docker.inspect_image(i).await {
            Ok(v) => out.push(serde_json::to_value(v).unwrap_or_default()),
            Err(e) => {
                eprintln!("Error: {}", r.err(e));
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

/// `skiff tag` through skiffd.
pub async fn tag(r: &Remote, source: &str, target: &str) -> Result<u8> {
    let parsed = skiff_image_store::ImageRef::parse(target)
        .map_err(|e| RemoteError::Invalid(skiff_daemon::EngineError::Image(e)))?;
    let full = parsed.to_string();
    let (repo, tag) = match full.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo.to_string(), tag.to_string()),
        _ => (full.clone(), "latest".to_string()),
    };
    let o = q::TagImageOptionsBuilder::new()
        .repo(&repo)
        .tag(&tag)
        .build();
    r.docker
        .tag_image(source, Some(o))
        .await
        .map_err(|e| r.err(e))?;
    Ok(0)
}

/// `skiff rmi [-f]` through skiffd.
pub async fn rmi(r: &Remote, a: &RmiArgs) -> Result<u8> {
    let mut code = 0;
    for i in &a.images {
        let o = q::RemoveImageOptionsBuilder::new().force(a.force).build();
        match r.docker.remove_image(i, Some(o), None).await {
            Ok(items) => {
                for it in items {
                    if let Some(u) = it.untagged {
                        println!("Untagged: {u}");
                    }
                    if let Some(d) = it.deleted {
                        println!("Deleted: {d}");
                    }
                }
            }
            Err(e) => {
                super::report(&r.err(e));
                code = 1;
            }
        }
    }
    Ok(code)
}
