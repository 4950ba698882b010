//! Serving the Docker API: the Unix socket, one hyper HTTP/1 connection per client
//! (with upgrades, for attach), and the router from paths to resource handlers.

use std::convert::Infallible;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Method;
use hyper_util::rt::TokioIo;
use tokio::net::UnixListener;

use super::{
    containers, events, exec, image_extra, images, networks, percent_decode, system, version,
    volumes,
};
use super::{ApiError, DockerApi, Query, Request, Response};

/// Binds the API socket at `path` with mode 0660, creating its directory. A stale
/// socket (nobody answers on it) is replaced; a live one is an error.
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is in use by another daemon", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
    Ok(listener)
}

/// Serves the API on `listener` until the task is dropped. A client that goes away
/// (even mid-stream) ends only its own connection.
pub async fn serve(api: DockerApi, listener: UnixListener) -> io::Result<()> {
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of descriptors or similar: back off instead of spinning.
                tracing::warn!(error = %e, "docker api: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        tokio::spawn(serve_stream(api.clone(), stream));
    }
}

/// Serves one client connection (a Unix socket, or a TLS stream) until it ends.
pub async fn serve_stream<S>(api: DockerApi, stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = service_fn(move |req| {
        let api = api.clone();
        async move { Ok::<_, Infallible>(handle(&api, req).await) }
    });
    if let Err(e) = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), svc)
        .with_upgrades()
        .await
    {
        tracing::debug!(error = %e, "docker api: connection ended");
    }
}

/// Answers one request: routes it, turns errors into Docker's JSON, adds the headers
/// dockerd puts on every response.
pub async fn handle(api: &DockerApi, req: Request) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    let mut resp = match route(api, req).await {
        Ok(r) => r,
        Err(e) => {
            tracing::debug!(%method, %path, status = %e.status, message = %e.message, "docker api error");
            e.into_response()
        }
    };
    tracing::debug!(%method, %path, status = %resp.status(), "docker api");
    version::add_common_headers(resp.headers_mut());
    resp
}

async fn route(api: &DockerApi, req: Request) -> Result<Response, ApiError> {
    let (ver, path) = version::split_path(req.uri().path())?;
    let q = Query::parse(req.uri().query());
    let segs: Vec<String> = path
        .trim_start_matches('/')
        .trim_end_matches('/')
        .split('/')
        .map(percent_decode)
        .collect();
    let method = req.method().clone();
    let first = segs.first().map(String::as_str).unwrap_or("");
    match (&method, first, segs.len()) {
        (&Method::GET | &Method::HEAD, "_ping", 1) => Ok(version::ping(&method)),
        (&Method::GET, "version", 1) => Ok(version::version(api)),
        (&Method::GET, "info", 1) => system::info(api).await,
        (&Method::POST, "images", 2) if segs[1] == "load" => image_extra::load(api, req).await,
        (&Method::POST, "images", 2) if segs[1] == "create" => {
            let creds =
                images::registry_auth(req.headers().get("X-Registry-Auth").map(|v| v.as_bytes()));
            images::pull(api, &q, creds).await
        }
        (&Method::GET, "system", 2) if segs[1] == "df" => system::disk_usage(api).await,
        (&Method::POST, "auth", 1) => system::login(api, req).await,
        (_, "images", n) if n > 1 => images::route(api, &method, &segs[1..], &q).await,
        (_, "containers", n) if n > 1 => containers::route(api, req, &segs[1..], &q, ver).await,
        (_, "exec", n) if n > 1 => exec::route(api, req, &segs[1..], &q, ver).await,
        (&Method::GET, "events", 1) => events::events(api, &q).await,
        (_, "networks", _) => networks::route(api, req, &segs[1..], &q).await,
        (_, "volumes", _) => volumes::route(api, req, &segs[1..], &q).await,
        _ => Err(ApiError::not_found("page not found")),
    }
}
