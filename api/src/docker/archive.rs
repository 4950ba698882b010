//! `HEAD`, `GET` and `PUT /containers/{id}/archive?path=`: what `docker cp` uses. The
//! stat of the path travels base64-encoded in `X-Docker-Container-Path-Stat`; the
//! content is a tar stream. Paths are resolved inside the container's root by the
//! engine ([`Engine::archive_from_container`], [`Engine::extract_to_container`]).
//!
//! [`Engine::archive_from_container`]: skiff_daemon::Engine::archive_from_container
//! [`Engine::extract_to_container`]: skiff_daemon::Engine::extract_to_container

use base64::Engine as _;
use hyper::body::Bytes;
use hyper::header::HeaderValue;
use hyper::StatusCode;
use skiff_daemon::container::archive::PathStat;
use tokio::sync::{mpsc, oneshot};

use super::attach::channel_response;
use super::bridge::{BodyReader, ChannelWriter};
use super::{empty, ApiError, DockerApi, Query, Request, Response};

/// The header carrying a path's stat.
pub const PATH_STAT_HEADER: &str = "X-Docker-Container-Path-Stat";

fn path_of(q: &Query) -> Result<String, ApiError> {
    q.non_empty("path")
        .map(str::to_string)
        .ok_or_else(|| ApiError::bad_request("path must be given"))
}

fn stat_header(st: &PathStat) -> Result<HeaderValue, ApiError> {
    let json = serde_json::to_vec(st).map_err(|e| ApiError::internal(e.to_string()))?;
    HeaderValue::from_str(&base64::engine::general_purpose::STANDARD.encode(json))
        .map_err(|e| ApiError::internal(e.to_string()))
}

/// `HEAD` (stat only) and `GET` (stat and tarball).
pub async fn get(api: &DockerApi, id: &str, q: &Query, head: bool) -> Result<Response, ApiError> {
    let path = path_of(q)?;
    let id = id.to_string();
    if head {
        let st = api
            .blocking(move |e| e.container_path_stat(&id, &path))
            .await?;
        let mut r = empty(StatusCode::OK);
        r.headers_mut().insert(PATH_STAT_HEADER, stat_header(&st)?);
        return Ok(r);
    }
    let (stat_tx, stat_rx) = oneshot::channel::<PathStat>();
    let (tx, rx) = mpsc::channel::<Bytes>(16);
    let engine = api.engine().clone();
    let job = tokio::task::spawn_blocking(move || {
        let mut stat_tx = Some(stat_tx);
        let mut on_stat = |st: &PathStat| match stat_tx.take() {
            Some(s) => s.send(st.clone()).is_ok(),
            None => false,
        };
        let mut out = std::io::BufWriter::with_capacity(128 * 1024, ChannelWriter(tx));
        engine.archive_from_container(&id, &path, &mut on_stat, &mut out)
    });
    match stat_rx.await {
        Ok(st) => {
            let mut r = channel_response(rx, "application/x-tar");
            r.headers_mut().insert(PATH_STAT_HEADER, stat_header(&st)?);
            Ok(r)
        }
        Err(_) => match job.await {
            Ok(Err(e)) => Err(e.into()),
            Ok(Ok(())) => Err(ApiError::internal("archive ended without a stat")),
            Err(e) => Err(ApiError::internal(format!("archive task failed: {e}"))),
        },
    }
}

/// `PUT`: extracts the tarball in the body into directory `path`.
pub async fn put(api: &DockerApi, req: Request, id: &str, q: &Query) -> Result<Response, ApiError> {
    let path = path_of(q)?;
    let no_overwrite = q.flag("noOverwriteDirNonDir");
    let keep_owner = q.flag("copyUIDGID");
    let id = id.to_string();
    // Check the target before reading a possibly large body.
    {
        let (id2, path2) = (id.clone(), path.clone());
        let st = api
            .blocking(move |e| e.container_path_stat(&id2, &path2))
            .await?;
        if st.mode & skiff_daemon::container::archive::GO_MODE_DIR == 0
            && st.mode & skiff_daemon::container::archive::GO_MODE_SYMLINK == 0
        {
            return Err(ApiError::bad_request(format!(
                "extraction point is not a directory: {path}"
            )));
        }
    }
    let mut reader = BodyReader::spawn(req);
    api.blocking(move |e| {
        e.extract_to_container(&id, &path, &mut reader, no_overwrite, keep_owner)
    })
    .await?;
    Ok(empty(StatusCode::OK))
}
