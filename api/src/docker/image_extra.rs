//! Image routes beyond the basics: `GET /images/{name}/history`, `POST /images/prune`,
//! `GET /images/get` and `/images/{name}/get` (save: one tarball that is both a
//! docker-archive and an OCI layout, from the image store's archive module) and
//! `POST /images/load`.

use bollard_stubs::models::{
    ImageDeleteResponseItem, ImageHistoryResponseItem, ImagePruneResponse,
};
use hyper::body::Bytes;
use hyper::StatusCode;
use skiff_daemon::image_store::gc::RemoveAction;
use tokio::sync::mpsc;

use super::attach::channel_response;
use super::bridge::{BodyReader, ChannelWriter};
use super::{json, ApiError, DockerApi, Query, Request, Response};

/// `GET /images/{name}/history`: the config's history, newest first, with the size of
/// each entry's layer (compressed, as stored).
pub async fn history(api: &DockerApi, name: &str) -> Result<Response, ApiError> {
    let name = name.to_string();
    let (img, config, tags) = api
        .blocking(move |e| {
            let img = e.images().resolve(&name)?;
            let config = e.images().config_json(&img)?;
            let tags = e.images().tags_of(&img.id)?;
            Ok((img, config, tags))
        })
        .await?;
    let entries = config["history"].as_array().cloned().unwrap_or_default();
    let mut layers = img.layers.iter();
    let mut out: Vec<ImageHistoryResponseItem> = entries
        .iter()
        .map(|h| {
            let empty = h["empty_layer"].as_bool().unwrap_or(false);
            let size = if empty {
                0
            } else {
                layers.next().map_or(0, |l| l.size)
            };
            ImageHistoryResponseItem {
                id: "<missing>".into(),
                created: h["created"]
                    .as_str()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map_or(0, |t| t.timestamp()),
                created_by: h["created_by"].as_str().unwrap_or_default().to_string(),
                tags: Vec::new(),
                size: i64::try_from(size).unwrap_or(i64::MAX),
                comment: h["comment"].as_str().unwrap_or_default().to_string(),
            }
        })
        .collect();
    if out.is_empty() {
        // No history in the config: one entry per layer.
        out = img
            .layers
            .iter()
            .map(|l| ImageHistoryResponseItem {
                id: "<missing>".into(),
                size: i64::try_from(l.size).unwrap_or(i64::MAX),
                ..Default::default()
            })
            .collect();
    }
    out.reverse();
    if let Some(top) = out.first_mut() {
        top.id = img.id.to_string();
        top.tags = tags;
    }
    Ok(json(StatusCode::OK, &out))
}

/// `POST /images/prune?filters={"dangling":["false"]}`: removes dangling images (all
/// unused ones with `dangling=false`) and collects garbage.
pub async fn prune(api: &DockerApi, q: &Query) -> Result<Response, ApiError> {
    let mut all = false;
    for (k, v) in q.filters()? {
        match (k.as_str(), v.as_str()) {
            ("dangling", "false" | "0") => all = true,
            ("dangling", "true" | "1") => {}
            _ => {
                return Err(ApiError::bad_request(format!(
                    "invalid filter '{k}={v}' (skiff prunes by dangling only)"
                )))
            }
        }
    }
    let (actions, report) = api.blocking(move |e| e.prune_images(all)).await?;
    let deleted: Vec<ImageDeleteResponseItem> = actions
        .into_iter()
        .map(|a| match a {
            RemoveAction::Untagged(t) => ImageDeleteResponseItem {
                untagged: Some(t),
                deleted: None,
            },
            RemoveAction::Deleted(d) => ImageDeleteResponseItem {
                untagged: None,
                deleted: Some(d.to_string()),
            },
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &ImagePruneResponse {
            images_deleted: Some(deleted),
            space_reclaimed: Some(i64::try_from(report.bytes_freed).unwrap_or(i64::MAX)),
        },
    ))
}

/// `GET /images/get?names=a&names=b` and `GET /images/{name}/get`: a tarball streamed
/// as it is written. Names are checked before the stream starts.
pub async fn save(api: &DockerApi, names: Vec<String>) -> Result<Response, ApiError> {
    if names.is_empty() {
        return Err(ApiError::bad_request("no image names given"));
    }
    {
        let names = names.clone();
        api.blocking(move |e| {
            for n in &names {
                e.images().resolve(n)?;
            }
            Ok(())
        })
        .await?;
    }
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let engine = api.engine().clone();
    tokio::task::spawn_blocking(move || {
        let out = std::io::BufWriter::with_capacity(256 * 1024, ChannelWriter(tx));
        if let Err(e) = engine.images().save(&names, out) {
            // The status line is gone already; the client sees a short tarball.
            tracing::warn!(error = %e, "image save failed mid-stream");
        }
    });
    Ok(channel_response(rx, "application/x-tar"))
}

/// `POST /images/load?quiet=`: loads a docker-archive or OCI layout tarball (plain,
/// gzip or zstd) from the body; answers Docker's JSON stream lines.
pub async fn load(api: &DockerApi, req: Request) -> Result<Response, ApiError> {
    let reader = BodyReader::spawn(req);
    let loaded = api.blocking(move |e| Ok(e.images().load(reader)?)).await?;
    let mut out = Vec::new();
    for img in loaded {
        if img.tags.is_empty() {
            api.engine()
                .image_event("load", &img.id.to_string(), &img.id.to_string());
            out.push(format!("Loaded image ID: {}\n", img.id));
        }
        for t in &img.tags {
            api.engine().image_event("load", &img.id.to_string(), t);
            out.push(format!("Loaded image: {t}\n"));
        }
    }
    let mut body = Vec::new();
    for line in out {
        body.extend_from_slice(
            &serde_json::to_vec(&serde_json::json!({ "stream": line })).unwrap_or_default(),
        );
        body.push(b'\n');
    }
    Ok(super::with_type(
        StatusCode::OK,
        Bytes::from(body),
        "application/json",
    ))
}
