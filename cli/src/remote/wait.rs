//! Waiting for a container's exit the way the docker CLI does: the wait request is
//! sent, and its 200 headers are received, before the container starts (or before an
//! attach begins), so skiffd has registered it and no exit can slip by. bollard sends
//! a request only when its stream is first polled and shows no headers, hence this
//! small raw request.

use std::path::Path;

use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde::Deserialize;

use super::attach::ExitWait;
use super::{RemoteError, Result};

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WaitError {
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WaitResponse {
    status_code: i64,
    error: Option<WaitError>,
}

/// Sends `POST /containers/{id}/wait?condition=...` on `socket` and returns once
/// skiffd has answered with its headers (the wait is registered); the task yields the
/// exit code when the condition is met.
pub async fn register(socket: &Path, id: &str, condition: &str) -> Result<ExitWait> {
    let conn_err = |why: String| RemoteError::Connection {
        socket: socket.display().to_string(),
        why,
    };
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .map_err(|e| conn_err(e.to_string()))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| conn_err(e.to_string()))?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!("wait connection: {e}");
        }
    });
    let req = hyper::Request::post(format!("/containers/{id}/wait?condition={condition}"))
        .header(hyper::header::HOST, "skiffd")
        .body(Empty::<Bytes>::new())
        .map_err(|e| conn_err(e.to_string()))?;
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| conn_err(e.to_string()))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
        return Err(RemoteError::Api {
            status: status.as_u16(),
            message,
        });
    }
    let socket = socket.display().to_string();
    Ok(tokio::spawn(async move {
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| RemoteError::Connection {
                socket: socket.clone(),
                why: format!("waiting for the exit: {e}"),
            })?
            .to_bytes();
        let w: WaitResponse =
            serde_json::from_slice(&body).map_err(|e| RemoteError::Connection {
                socket,
                why: format!("wait answer {:?}: {e}", String::from_utf8_lossy(&body)),
            })?;
        match w.error.and_then(|e| e.message).filter(|m| !m.is_empty()) {
            Some(message) => Err(RemoteError::Api {
                status: 500,
                message,
            }),
            None => Ok(w.status_code),
        }
    }))
}
