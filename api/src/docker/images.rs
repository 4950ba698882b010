//! Image routes: list, pull (`POST /images/create`, streamed JSON progress as
//! `docker pull` renders it), inspect, remove, tag.

use std::collections::HashMap;
use std::sync::Arc;

use bollard_stubs::models::{ImageDeleteResponseItem, ImageSummary};
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use skiff_daemon::image_store::auth::Credentials;
use skiff_daemon::image_store::gc::{familiar, RemoveAction};
use skiff_daemon::image_store::{PullEvent, PullOptions};
use skiff_daemon::EngineError;
use tokio::sync::mpsc;

use super::attach::channel_response;
use super::{empty, image_extra, json, ApiError, DockerApi, Query, Response};

/// Routes under `/images/`; `rest` is the path after it (names may contain `/`).
pub async fn route(
    api: &DockerApi,
    method: &Method,
    rest: &[String],
    q: &Query,
) -> Result<Response, ApiError> {
    match (method, rest) {
        (&Method::GET, [json]) if json == "json" => list(api, q).await,
        (&Method::POST, [prune]) if prune == "prune" => image_extra::prune(api, q).await,
        (&Method::GET, [get]) if get == "get" => image_extra::save(api, q.all("names")).await,
        (&Method::GET, [name @ .., last]) if last == "get" && !name.is_empty() => {
            image_extra::save(api, vec![name.join("/")]).await
        }
        (&Method::GET, [name @ .., last]) if last == "history" && !name.is_empty() => {
            image_extra::history(api, &name.join("/")).await
        }
        (&Method::GET, [name @ .., last]) if last == "json" && !name.is_empty() => {
            inspect(api, &name.join("/")).await
        }
        (&Method::POST, [name @ .., last]) if last == "tag" && !name.is_empty() => {
            tag(api, &name.join("/"), q).await
        }
        (&Method::DELETE, name) if !name.is_empty() => remove(api, &name.join("/"), q).await,
        _ => Err(ApiError::not_found("page not found")),
    }
}

/// `GET /images/json?filters=`: `dangling` and `reference` filters.
async fn list(api: &DockerApi, q: &Query) -> Result<Response, ApiError> {
    let filters = q.filters()?;
    for (k, _) in &filters {
        if !matches!(k.as_str(), "dangling" | "reference") {
            return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
        }
    }
    let images = api.blocking(|e| e.list_images()).await?;
    let patterns: Vec<&str> = filters
        .iter()
        .filter(|(k, _)| k == "reference")
        .map(|(_, v)| v.as_str())
        .collect();
    let out: Vec<ImageSummary> = images
        .into_iter()
        .filter(|i| image_matches(&filters, &i.repo_tags))
        .map(|mut i| {
            // As dockerd does: a reference filter also narrows the tags shown.
            if !patterns.is_empty() {
                i.repo_tags
                    .retain(|t| patterns.iter().any(|p| reference_matches(p, t)));
                i.repo_digests
                    .retain(|d| patterns.iter().any(|p| reference_matches(p, d)));
            }
            i
        })
        .map(|i| ImageSummary {
            id: i.id,
            parent_id: String::new(),
            repo_tags: i.repo_tags,
            repo_digests: i.repo_digests,
            created: i.created,
            size: i64::try_from(i.size).unwrap_or(i64::MAX),
            shared_size: -1,
            labels: HashMap::new(),
            containers: -1,
            ..Default::default()
        })
        .collect();
    Ok(json(StatusCode::OK, &out))
}

/// Docker's image filters: `dangling=true|false`, `reference=NAME[:TAG]` (with `*`
/// wildcards in the name part). Filters of one key are alternatives.
fn image_matches(filters: &[(String, String)], tags: &[String]) -> bool {
    let group = |key: &str| -> Option<bool> {
        let vals: Vec<&String> = filters
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v)
            .collect();
        if vals.is_empty() {
            return None;
        }
        Some(vals.iter().any(|v| match key {
            "dangling" => (v.as_str() == "true" || v.as_str() == "1") == tags.is_empty(),
            _ => tags.iter().any(|t| reference_matches(v, t)),
        }))
    };
    group("dangling").unwrap_or(true) && group("reference").unwrap_or(true)
}

/// Splits `name:tag` (a `:` in a registry's host:port is not a tag).
fn split_tag(s: &str) -> Option<(&str, &str)> {
    s.rsplit_once(':').filter(|(_, t)| !t.contains('/'))
}

/// Whether a `reference` filter pattern matches `name:tag` or `name@digest`.
fn reference_matches(pattern: &str, tag: &str) -> bool {
    if let Some((name, digest)) = tag.split_once('@') {
        return match pattern.split_once('@') {
            Some((pn, pd)) => glob(pn, name) && pd == digest,
            // A pattern with a tag names no digest.
            None => split_tag(pattern).is_none() && glob(pattern, name),
        };
    }
    let (name, t) = tag.rsplit_once(':').unwrap_or((tag, "latest"));
    match split_tag(pattern) {
        Some((pn, pt)) => glob(pn, name) && glob(pt, t),
        None => glob(pattern, name),
    }
}

/// `*` matches any run of characters except `/`.
fn glob(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((head, tail)) => {
            let Some(rest) = s.strip_prefix(head) else {
                return false;
            };
            (0..=rest.len())
                .take_while(|i| !rest[..*i].contains('/'))
                .filter(|i| rest.is_char_boundary(*i))
                .any(|i| glob(tail, &rest[i..]))
        }
    }
}

/// `GET /images/{name}/json`.
async fn inspect(api: &DockerApi, name: &str) -> Result<Response, ApiError> {
    let name = name.to_string();
    let details = api.blocking(move |e| e.inspect_image(&name)).await?;
    Ok(json(StatusCode::OK, &details))
}

/// `DELETE /images/{name}?force=`.
async fn remove(api: &DockerApi, name: &str, q: &Query) -> Result<Response, ApiError> {
    let (name, force) = (name.to_string(), q.flag("force"));
    let actions = api.blocking(move |e| e.remove_image(&name, force)).await?;
    let out: Vec<ImageDeleteResponseItem> = actions
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
    Ok(json(StatusCode::OK, &out))
}

/// `POST /images/{name}/tag?repo=&tag=`.
async fn tag(api: &DockerApi, name: &str, q: &Query) -> Result<Response, ApiError> {
    let repo = q
        .non_empty("repo")
        .ok_or_else(|| ApiError::bad_request("repository name (repo) must be given"))?;
    let target = match q.non_empty("tag") {
        Some(t) => format!("{repo}:{t}"),
        None => repo.to_string(),
    };
    let source = name.to_string();
    api.blocking(move |e| e.tag_image(&source, &target).map(|_| ()))
        .await?;
    Ok(empty(StatusCode::CREATED))
}

/// The reference `POST /images/create` asks for: `fromImage` plus `tag` (a tag, or a
/// digest).
pub fn pull_reference(q: &Query) -> Result<String, ApiError> {
    if q.non_empty("fromSrc").is_some() {
        return Err(ApiError::not_implemented(
            "importing images (fromSrc) is not available in skiff's API yet",
        ));
    }
    let image = q
        .non_empty("fromImage")
        .ok_or_else(|| ApiError::bad_request("fromImage must be given"))?;
    Ok(match q.non_empty("tag") {
        Some(t) if t.contains(':') => format!("{image}@{t}"),
        Some(t) => {
            let last = image.rsplit('/').next().unwrap_or(image);
            if image.contains('@') || last.contains(':') {
                image.to_string()
            } else {
                format!("{image}:{t}")
            }
        }
        None => image.to_string(),
    })
}

/// One line of Docker's JSON progress stream.
fn line(v: Value) -> Bytes {
    let mut b = serde_json::to_vec(&v).unwrap_or_default();
    b.extend_from_slice(b"\r\n");
    Bytes::from(b)
}

/// Docker's JSON progress lines for one pull event.
pub fn progress_lines(e: &PullEvent) -> Vec<Bytes> {
    let short = |d: &skiff_daemon::image_store::Digest| d.short().to_string();
    match e {
        PullEvent::Resolving { tag, repository } => vec![line(json!({
            "status": format!("Pulling from {repository}"),
            "id": tag,
        }))],
        PullEvent::Layers { layers } => layers
            .iter()
            .map(|(d, _)| {
                line(json!({"status": "Pulling fs layer", "progressDetail": {}, "id": short(d)}))
            })
            .collect(),
        PullEvent::AlreadyExists { layer } => vec![line(
            json!({"status": "Already exists", "progressDetail": {}, "id": short(layer)}),
        )],
        PullEvent::Downloading {
            layer,
            current,
            total,
        } => vec![line(json!({
            "status": "Downloading",
            "progressDetail": {"current": current, "total": total},
            "progress": progress_bar(*current, *total),
            "id": short(layer),
        }))],
        PullEvent::DownloadComplete { layer } => vec![line(
            json!({"status": "Download complete", "progressDetail": {}, "id": short(layer)}),
        )],
        // Docker shows extraction as a byte progress bar, which the CLI hides when its
        // output is not a terminal; skiff has no byte counts for it, so says nothing.
        PullEvent::Extracting { .. } => Vec::new(),
        PullEvent::PullComplete { layer } => vec![line(
            json!({"status": "Pull complete", "progressDetail": {}, "id": short(layer)}),
        )],
        PullEvent::Done {
            digest,
            updated,
            reference,
            ..
        } => {
            let shown = familiar(reference);
            let status = if *updated {
                format!("Status: Downloaded newer image for {shown}")
            } else {
                format!("Status: Image is up to date for {shown}")
            };
            vec![
                line(json!({"status": format!("Digest: {digest}")})),
                line(json!({ "status": status })),
            ]
        }
    }
}

/// An error line of the progress stream (the CLI prints it and exits 1).
pub fn error_line(message: &str) -> Bytes {
    line(json!({"errorDetail": {"message": message}, "error": message}))
}

/// `[=====>       ] 1.2MB/3.4MB` as jsonmessage renders it.
fn progress_bar(current: u64, total: u64) -> String {
    const WIDTH: u64 = 50;
    if total == 0 {
        return String::new();
    }
    let filled = (current.min(total) * WIDTH / total) as usize;
    let mut bar = "=".repeat(filled);
    if filled < WIDTH as usize {
        bar.push('>');
        bar.push_str(&" ".repeat(WIDTH as usize - filled - 1));
    }
    format!("[{bar}] {}/{}", size(current), size(total))
}

fn size(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    let n = format!("{v:.2}");
    let n = n.trim_end_matches('0').trim_end_matches('.');
    format!("{n}{}", UNITS[i])
}

enum PullMsg {
    Event(PullEvent),
    Done(Result<(), EngineError>),
}

/// The body of an `X-Registry-Auth` header.
#[derive(Debug, Default, serde::Deserialize)]
struct RegistryAuth {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    auth: String,
}

/// Credentials from an `X-Registry-Auth` header (base64url JSON, Docker's AuthConfig).
/// As in dockerd, a header that is missing, empty or unreadable means none.
pub fn registry_auth(header: Option<&[u8]>) -> Option<Credentials> {
    use base64::Engine as _;
    let raw = std::str::from_utf8(header?).ok()?.trim();
    let engines = [
        &base64::engine::general_purpose::URL_SAFE,
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        &base64::engine::general_purpose::STANDARD,
        &base64::engine::general_purpose::STANDARD_NO_PAD,
    ];
    let json = engines.iter().find_map(|e| e.decode(raw).ok())?;
    let a: RegistryAuth = serde_json::from_slice(&json).ok()?;
    if !a.username.is_empty() {
        return Some(Credentials {
            username: a.username,
            password: a.password,
        });
    }
    let pair = base64::engine::general_purpose::STANDARD
        .decode(a.auth.trim())
        .ok()?;
    let (user, pass) = std::str::from_utf8(&pair).ok()?.split_once(':')?;
    (!user.is_empty()).then(|| Credentials {
        username: user.to_string(),
        password: pass.to_string(),
    })
}

/// `POST /images/create?fromImage=&tag=`: pulls (with the `X-Registry-Auth`
/// credentials if the client sent some), streaming progress. A failure before any
/// progress is an ordinary error response; a later one is an error line.
pub async fn pull(
    api: &DockerApi,
    q: &Query,
    creds: Option<Credentials>,
) -> Result<Response, ApiError> {
    let reference = pull_reference(q)?;
    let (tx, mut rx) = mpsc::unbounded_channel::<PullMsg>();
    {
        let engine = api.engine().clone();
        let events = tx.clone();
        let sink: skiff_daemon::image_store::ProgressSink = Arc::new(move |e| {
            let _ = events.send(PullMsg::Event(e));
        });
        tokio::spawn(async move {
            let result = engine
                .pull_image_as(&reference, &PullOptions::default(), creds, sink)
                .await
                .map(|_| ());
            let _ = tx.send(PullMsg::Done(result));
        });
    }
    let first = match rx.recv().await {
        Some(PullMsg::Done(Err(e))) => return Err(e.into()),
        Some(m) => m,
        None => return Err(ApiError::internal("pull ended without a result")),
    };
    let (out, body_rx) = mpsc::channel::<Bytes>(64);
    tokio::spawn(async move {
        let mut next = Some(first);
        while let Some(m) = next.take() {
            let lines = match m {
                PullMsg::Event(e) => progress_lines(&e),
                PullMsg::Done(Ok(())) => break,
                PullMsg::Done(Err(e)) => vec![error_line(&e.to_string())],
            };
            for l in lines {
                // A client that went away does not stop the pull; it just is not told.
                let _ = out.send(l).await;
            }
            next = rx.recv().await;
        }
    });
    Ok(channel_response(body_rx, "application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_daemon::image_store::Digest;

    #[test]
    fn registry_auth_headers_decode() {
        use base64::Engine as _;
        let enc = |s: &str| base64::engine::general_purpose::URL_SAFE.encode(s);
        let c = registry_auth(Some(enc(r#"{"username":"u","password":"p"}"#).as_bytes())).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
        let c = registry_auth(Some(enc(r#"{"auth":"dTpwOnE="}"#).as_bytes())).unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p:q"));
        assert!(
            registry_auth(Some(b"e30=")).is_none(),
            "{{}} is no credentials"
        );
        assert!(registry_auth(Some(b"!!")).is_none());
        assert!(registry_auth(None).is_none());
    }

    #[test]
    fn pull_references() {
        let q = |s: &str| Query::parse(Some(s));
        assert_eq!(
            pull_reference(&q("fromImage=alpine&tag=latest")).unwrap(),
            "alpine:latest"
        );
        assert_eq!(
            pull_reference(&q("fromImage=docker.io%2Flibrary%2Falpine&tag=3.20")).unwrap(),
            "docker.io/library/alpine:3.20"
        );
        assert_eq!(
            pull_reference(&q("fromImage=127.0.0.1:5000/x&tag=v1")).unwrap(),
            "127.0.0.1:5000/x:v1"
        );
        assert_eq!(
            pull_reference(&q("fromImage=alpine:3&tag=latest")).unwrap(),
            "alpine:3"
        );
        assert_eq!(
            pull_reference(&q("fromImage=alpine&tag=sha256:abc")).unwrap(),
            "alpine@sha256:abc"
        );
        assert!(pull_reference(&q("tag=x")).is_err());
        assert_eq!(
            pull_reference(&q("fromSrc=-")).unwrap_err().status,
            StatusCode::NOT_IMPLEMENTED
        );
    }

    #[test]
    fn progress_is_docker_json() {
        let d = Digest::of(b"layer");
        let l = progress_lines(&PullEvent::Resolving {
            tag: "latest".into(),
            repository: "library/alpine".into(),
        });
        assert_eq!(
            &l[0][..],
            &b"{\"id\":\"latest\",\"status\":\"Pulling from library/alpine\"}\r\n"[..]
        );
        let l = progress_lines(&PullEvent::Downloading {
            layer: d.clone(),
            current: 500,
            total: 1000,
        });
        let v: Value = serde_json::from_slice(&l[0]).unwrap();
        assert_eq!(v["progressDetail"]["current"], 500);
        assert_eq!(v["id"], d.short());
        assert!(v["progress"].as_str().unwrap().ends_with("500B/1kB"));
        let v: Value = serde_json::from_slice(&error_line("boom")).unwrap();
        assert_eq!(v["errorDetail"]["message"], "boom");
    }

    #[test]
    fn image_filters() {
        let tags = vec!["alpine:latest".to_string(), "me/app:v1".to_string()];
        let f = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
        assert!(image_matches(&f("reference", "alpine"), &tags));
        assert!(image_matches(&f("reference", "me/*"), &tags));
        assert!(image_matches(&f("reference", "me/app:v1"), &tags));
        assert!(!image_matches(&f("reference", "me/app:v2"), &tags));
        assert!(!image_matches(
            &f("reference", "*"),
            &["me/app:v1".to_string()]
        ));
        assert!(reference_matches("alpine", "alpine@sha256:abc"));
        assert!(!reference_matches("alpine:latest", "alpine@sha256:abc"));
        assert!(reference_matches("alpine@sha256:abc", "alpine@sha256:abc"));
        assert!(!reference_matches("me/*", "alpine@sha256:abc"));
        assert!(image_matches(&f("dangling", "true"), &[]));
        assert!(!image_matches(&f("dangling", "true"), &tags));
    }
}
