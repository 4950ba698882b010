//! The Docker Engine API on a Unix socket: what the stock `docker` CLI speaks.
//!
//! One module per resource, as moby groups its routers: [`system`] (`/info`),
//! [`version`] (`/_ping`, `/version`, version negotiation), [`images`], [`networks`], [`containers`]
//! (lifecycle verbs, `ps`, `inspect`, `wait`), [`attach`] (hijacked attach and `logs`
//! streams). [`create`] turns Docker's container config into the engine's
//! `CreateOptions`; [`watch`] follows container exits so `wait`, `attach` and `--rm`
//! work; [`error`] maps engine errors to HTTP statuses in one place; [`server`] accepts
//! connections and routes requests.
//!
//! Every handler translates to [`Engine`] calls and back. The only state kept here is
//! transient coordination (which containers a watcher follows, which have attached
//! clients); everything a client can see lives in the engine.

pub mod archive;
pub mod attach;
pub mod bridge;
pub mod containers;
pub mod create;
pub mod error;
pub mod events;
pub mod exec;
pub mod image_extra;
pub mod images;
pub mod networks;
pub mod server;
pub mod stats;
pub mod system;
pub mod tls;
pub mod version;
pub mod volumes;
pub mod watch;

use std::convert::Infallible;
use std::sync::Arc;

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::StatusCode;
use serde::Serialize;
use skiff_daemon::container::record::ContainerRecord;
use skiff_daemon::{Engine, EngineError};

pub use error::ApiError;
pub use server::{bind, serve};

/// The body of every response: buffered JSON, or a stream of frames.
pub type Body = UnsyncBoxBody<Bytes, Infallible>;

/// A response of the Docker API.
pub type Response = hyper::Response<Body>;

/// A request as it arrives.
pub type Request = hyper::Request<Incoming>;

/// The Docker API front end over one engine. Cheap to clone.
#[derive(Clone)]
pub struct DockerApi {
    engine: Engine,
    watch: Arc<watch::Watch>,
}

impl DockerApi {
    /// A front end for `engine`.
    pub fn new(engine: Engine) -> Self {
        DockerApi {
            engine,
            watch: Arc::new(watch::Watch::new()),
        }
    }

    /// Picks up what a previous daemon left: watchers for running `--rm` containers,
    /// removal of those that exited while no daemon ran.
    pub async fn restore_watchers(&self) {
        self.watch.restore(&self.engine).await;
    }

    /// The engine behind it.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Runs a blocking engine call on the blocking pool.
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Engine) -> Result<T, EngineError> + Send + 'static,
    {
        let engine = self.engine.clone();
        tokio::task::spawn_blocking(move || f(&engine))
            .await
            .map_err(|e| ApiError::internal(format!("engine task failed: {e}")))?
            .map_err(ApiError::from)
    }

    /// One container with its state brought up to date (404 if there is none).
    pub(crate) async fn container(&self, name: &str) -> Result<ContainerRecord, ApiError> {
        let name = name.to_string();
        self.blocking(move |e| e.container(&name)).await
    }
}

/// A buffered JSON response.
pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => with_type(status, Bytes::from(body), "application/json"),
        Err(e) => ApiError::internal(format!("encoding response: {e}")).into_response(),
    }
}

/// A response without a body.
pub fn empty(status: StatusCode) -> Response {
    let mut r = hyper::Response::new(Full::new(Bytes::new()).boxed_unsync());
    *r.status_mut() = status;
    r
}

/// A buffered response with a content type.
pub fn with_type(status: StatusCode, body: Bytes, content_type: &'static str) -> Response {
    let mut r = hyper::Response::new(Full::new(body).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

/// Reads a request body as JSON (400 on malformed input; an empty body is `T::default()`).
pub async fn read_json<T>(req: Request) -> Result<T, ApiError>
where
    T: serde::de::DeserializeOwned + Default,
{
    const LIMIT: usize = 16 << 20;
    let body = http_body_util::Limited::new(req.into_body(), LIMIT)
        .collect()
        .await
        .map_err(|e| ApiError::bad_request(format!("reading request body: {e}")))?
        .to_bytes();
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))
}

/// Query parameters, decoded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Query(Vec<(String, String)>);

impl Query {
    /// Parses `a=1&b=x%20y`.
    pub fn parse(raw: Option<&str>) -> Query {
        let mut out = Vec::new();
        for pair in raw.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            out.push((form_decode(k), form_decode(v)));
        }
        Query(out)
    }

    /// The last value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every non-empty value of `key`, in order (`names=a&names=b`).
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, v)| k == key && !v.is_empty())
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A non-empty value of `key`.
    pub fn non_empty(&self, key: &str) -> Option<&str> {
        self.get(key).filter(|v| !v.is_empty())
    }

    /// Docker's boolean: absent, empty, `0`, `no`, `false` and `none` are false.
    pub fn flag(&self, key: &str) -> bool {
        match self.get(key) {
            None => false,
            Some(v) => !matches!(
                v.to_ascii_lowercase().as_str(),
                "" | "0" | "no" | "false" | "none"
            ),
        }
    }

    /// An integer parameter (400 when it is not one).
    pub fn int<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        match self.non_empty(key) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| {
                ApiError::bad_request(format!("invalid value for {key}: {v:?} is not a number"))
            }),
        }
    }

    /// The `filters` parameter as (key, value) pairs; both of Docker's JSON shapes
    /// (`{"k":["v"]}` and `{"k":{"v":true}}`) are accepted.
    pub fn filters(&self) -> Result<Vec<(String, String)>, ApiError> {
        let Some(raw) = self.non_empty("filters") else {
            return Ok(Vec::new());
        };
        let v: serde_json::Value = serde_json::from_str(raw)
            .map_err(|e| ApiError::bad_request(format!("invalid filters: {e}")))?;
        let obj = v
            .as_object()
            .ok_or_else(|| ApiError::bad_request("invalid filters: not a JSON object"))?;
        let mut out = Vec::new();
        for (k, vals) in obj {
            match vals {
                serde_json::Value::Array(a) => {
                    for x in a {
                        let s = x.as_str().ok_or_else(|| {
                            ApiError::bad_request(format!("invalid filters: {k}"))
                        })?;
                        out.push((k.clone(), s.to_string()));
                    }
                }
                serde_json::Value::Object(m) => {
                    for (val, on) in m {
                        if on.as_bool().unwrap_or(false) {
                            out.push((k.clone(), val.clone()));
                        }
                    }
                }
                _ => return Err(ApiError::bad_request(format!("invalid filters: {k}"))),
            }
        }
        Ok(out)
    }
}

/// Percent-decoding of a query component (`+` is a space).
pub fn form_decode(s: &str) -> String {
    percent_decode(&s.replace('+', " "))
}

/// Percent-decoding of a path segment or query component.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_decode_like_go() {
        let q = Query::parse(Some("fromImage=alpine&tag=latest&x=a%2Fb+c&stream=1&f=0"));
        assert_eq!(q.get("fromImage"), Some("alpine"));
        assert_eq!(q.get("x"), Some("a/b c"));
        assert!(q.flag("stream"));
        assert!(!q.flag("f"));
        assert!(!q.flag("missing"));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("a%3Ab"), "a:b");
    }

    #[test]
    fn filters_in_both_shapes() {
        let q = Query::parse(Some(
            "filters=%7B%22status%22%3A%5B%22running%22%5D%2C%22label%22%3A%7B%22a%3Db%22%3Atrue%7D%7D",
        ));
        let mut f = q.filters().unwrap();
        f.sort();
        assert_eq!(
            f,
            vec![
                ("label".to_string(), "a=b".to_string()),
                ("status".to_string(), "running".to_string())
            ]
        );
        assert!(Query::parse(Some("filters=nope")).filters().is_err());
        assert!(Query::parse(Some("t=abc")).int::<u64>("t").is_err());
    }
}
