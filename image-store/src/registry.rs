//! A client for the OCI distribution API, one per repository and endpoint (mirror or
//! registry): manifests by tag or digest, blobs streamed to the content store, and the
//! registry auth flows (Basic, and Bearer tokens from the realm a 401 names).
//!
//! skiff speaks the protocol itself over one process-wide `reqwest` client per scheme
//! instead of using `oci-client`: that crate builds two TLS clients (each loading the
//! system CA bundle, ~60 ms here) for every client it creates, even for plain-HTTP
//! registries, which cost ~120 ms on every pull. Plain-HTTP endpoints never load
//! certificates here, and HTTPS ones load them once per process.

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use reqwest::header::{HeaderMap, ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode};
use serde::Deserialize;

use crate::auth::Credentials;
use crate::config::Endpoint;
use crate::content::BlobWriter;
use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::manifest::ACCEPTED_MANIFESTS;
use crate::reference::{ImageRef, DOCKER_HUB};

/// Manifests larger than this are refused (Docker uses the same limit).
const MAX_MANIFEST_BYTES: usize = 4 << 20;

/// A client for one repository on one endpoint.
pub struct RepoClient {
    http: reqwest::Client,
    base: String,
    repository: String,
    creds: Option<Credentials>,
    authorization: Mutex<Option<String>>,
    endpoint: Endpoint,
    shown: String,
}

pub(crate) fn shared_client(plain_http: bool) -> reqwest::Client {
    static HTTP: OnceLock<reqwest::Client> = OnceLock::new();
    static HTTPS: OnceLock<reqwest::Client> = OnceLock::new();
    let build = |plain: bool| {
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!("skiff/", env!("CARGO_PKG_VERSION")));
        if plain {
            // Never used for TLS: skip loading the system CA bundle.
            b = b.tls_certs_only(Vec::<reqwest::Certificate>::new());
        }
        b.build().unwrap_or_else(|e| {
            tracing::warn!(error = %e, "building the HTTP client failed; using defaults");
            reqwest::Client::new()
        })
    };
    if plain_http {
        HTTP.get_or_init(|| build(true)).clone()
    } else {
        HTTPS.get_or_init(|| build(false)).clone()
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct TokenBody {
    #[serde(default)]
    token: String,
    #[serde(default)]
    access_token: String,
}

/// `key="value"` parameters of a WWW-Authenticate challenge.
fn challenge_param(challenge: &str, key: &str) -> Option<String> {
    let mut rest = challenge;
    while let Some(pos) = rest.find(key) {
        let after = &rest[pos + key.len()..];
        let before_ok = pos == 0 || matches!(rest.as_bytes()[pos - 1], b' ' | b',');
        if before_ok {
            if let Some(v) = after.strip_prefix("=\"") {
                return v.split('"').next().map(str::to_string);
            }
        }
        rest = after;
    }
    None
}

impl RepoClient {
    /// A client for `image`'s repository at `endpoint`.
    pub fn new(endpoint: &Endpoint, image: &ImageRef, creds: Option<Credentials>) -> Self {
        let host = if endpoint.host == DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            endpoint.host.as_str()
        };
        let scheme = if endpoint.plain_http { "http" } else { "https" };
        RepoClient {
            http: shared_client(endpoint.plain_http),
            base: format!("{scheme}://{host}/v2/{}", image.repository()),
            repository: image.repository().to_string(),
            creds,
            authorization: Mutex::new(None),
            endpoint: endpoint.clone(),
            shown: image.to_string(),
        }
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn unreachable(&self, e: reqwest::Error) -> StoreError {
        StoreError::RegistryUnreachable {
            registry: self.endpoint.host.clone(),
            reference: self.shown.clone(),
            why: error_chain(&e),
        }
    }

    fn auth_refused(&self, why: String) -> StoreError {
        StoreError::AuthRefused {
            registry: self.endpoint.host.clone(),
            reference: self.shown.clone(),
            why,
        }
    }

    /// GETs `url`, answering one auth challenge if the registry asks.
    async fn get(&self, url: &str, accept: Option<String>) -> Result<Response> {
        for attempt in 0..2 {
            let mut req = self.http.get(url);
            if let Some(a) = &accept {
                req = req.header(ACCEPT, a);
            }
            let auth = self.authorization.lock().ok().and_then(|g| g.clone());
            if let Some(a) = auth {
                req = req.header(AUTHORIZATION, a);
            }
            let res = req.send().await.map_err(|e| self.unreachable(e))?;
            if res.status() != StatusCode::UNAUTHORIZED || attempt == 1 {
                return Ok(res);
            }
            let challenge = res
                .headers()
                .get(WWW_AUTHENTICATE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            self.authenticate(&challenge).await?;
        }
        Err(self.auth_refused("unauthorized".into()))
    }

    /// Answers a 401 challenge: Basic with stored credentials, or a Bearer token.
    async fn authenticate(&self, challenge: &str) -> Result<()> {
        let value = if challenge.len() >= 6 && challenge[..6].eq_ignore_ascii_case("basic ")
            || challenge.is_empty()
        {
            let c = self
                .creds
                .as_ref()
                .ok_or_else(|| self.auth_refused("credentials required (skiff login)".into()))?;
            basic_header(c)
        } else if challenge.len() >= 7 && challenge[..7].eq_ignore_ascii_case("bearer ") {
            format!("Bearer {}", self.fetch_token(challenge).await?)
        } else {
            return Err(self.auth_refused(format!("unsupported auth challenge {challenge:?}")));
        };
        if let Ok(mut g) = self.authorization.lock() {
            *g = Some(value);
        }
        Ok(())
    }

    async fn fetch_token(&self, challenge: &str) -> Result<String> {
        let realm = challenge_param(challenge, "realm")
            .ok_or_else(|| self.auth_refused("Bearer challenge without realm".into()))?;
        let mut query = vec![(
            "scope".to_string(),
            format!("repository:{}:pull", self.repository),
        )];
        if let Some(s) = challenge_param(challenge, "service") {
            query.push(("service".into(), s));
        }
        let mut req = self.http.get(&realm).query(&query);
        if let Some(c) = &self.creds {
            req = req.header(AUTHORIZATION, basic_header(c));
        }
        let res = req.send().await.map_err(|e| self.unreachable(e))?;
        if !res.status().is_success() {
            let status = res.status();
            return Err(self.auth_refused(format!("token endpoint {realm} answered {status}")));
        }
        let body: TokenBody = res.json().await.map_err(|e| {
            self.auth_refused(format!("token endpoint {realm}: invalid answer: {e}"))
        })?;
        let token = if body.token.is_empty() {
            body.access_token
        } else {
            body.token
        };
        if token.is_empty() {
            return Err(self.auth_refused(format!("token endpoint {realm} gave no token")));
        }
        Ok(token)
    }

    /// Turns a non-success response into the right error.
    async fn status_error(&self, res: Response, what: &str) -> StoreError {
        let status = res.status();
        let body = res.bytes().await.unwrap_or_default();
        let parsed: Option<ErrorBody> = serde_json::from_slice(&body).ok();
        let text = parsed
            .as_ref()
            .map(|b| {
                b.errors
                    .iter()
                    .map(|e| format!("{}: {}", e.code, e.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| {
                String::from_utf8_lossy(&body[..body.len().min(300)])
                    .trim()
                    .to_string()
            });
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                self.auth_refused(if self.creds.is_some() {
                    format!("the credentials were refused ({status}): {text}")
                } else {
                    format!("credentials required (skiff login): {text}")
                })
            }
            StatusCode::NOT_FOUND => StoreError::ManifestNotFound {
                reference: self.shown.clone(),
                why: format!(
                    "{what}: {}",
                    if text.is_empty() {
                        "not found".into()
                    } else {
                        text
                    }
                ),
            },
            _ => StoreError::Registry {
                reference: self.shown.clone(),
                why: format!("{what}: HTTP {status}: {text}"),
            },
        }
    }

    /// Fetches a manifest or index by tag or digest; returns its bytes, digest and
    /// the Content-Type the registry gave.
    pub async fn manifest(&self, reference: &str) -> Result<(Vec<u8>, Digest, Option<String>)> {
        let url = format!("{}/manifests/{reference}", self.base);
        let res = self.get(&url, Some(ACCEPTED_MANIFESTS.join(", "))).await?;
        if !res.status().is_success() {
            return Err(self
                .status_error(res, &format!("manifest {reference}"))
                .await);
        }
        let content_type = header(res.headers(), CONTENT_TYPE.as_str());
        let declared = header(res.headers(), "docker-content-digest");
        if res
            .content_length()
            .is_some_and(|n| n as usize > MAX_MANIFEST_BYTES)
        {
            return Err(self.too_big(reference));
        }
        let mut res = res;
        let mut bytes = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| self.unreachable(e))? {
            bytes.extend_from_slice(&chunk);
            if bytes.len() > MAX_MANIFEST_BYTES {
                return Err(self.too_big(reference));
            }
        }
        let actual = Digest::of(&bytes);
        if reference.starts_with("sha256:") && actual.to_string() != reference {
            return Err(StoreError::DigestMismatch {
                what: "manifest",
                expected: reference.parse()?,
                why: format!(
                    "registry {} served content with digest {actual}",
                    self.endpoint.host
                ),
            });
        }
        if let Some(d) = declared.filter(|d| d.starts_with("sha256:")) {
            if d != actual.to_string() {
                return Err(StoreError::DigestMismatch {
                    what: "manifest",
                    expected: d.parse()?,
                    why: format!("content has digest {actual}"),
                });
            }
        }
        Ok((bytes, actual, content_type))
    }

    fn too_big(&self, reference: &str) -> StoreError {
        StoreError::UnsupportedManifest {
            reference: self.shown.clone(),
            why: format!("manifest {reference} is larger than {MAX_MANIFEST_BYTES} bytes"),
        }
    }

    /// Streams blob `digest` (declared `size` bytes) into `writer`, reporting progress.
    pub async fn blob(
        &self,
        digest: &Digest,
        size: u64,
        writer: &mut BlobWriter,
        mut on_bytes: impl FnMut(u64),
    ) -> Result<()> {
        let url = format!("{}/blobs/{digest}", self.base);
        let mut res = self.get(&url, None).await?;
        if !res.status().is_success() {
            return Err(self.status_error(res, &format!("blob {digest}")).await);
        }
        loop {
            let chunk = match res.chunk().await {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => {
                    return Err(StoreError::RegistryUnreachable {
                        registry: self.endpoint.host.clone(),
                        reference: self.shown.clone(),
                        why: format!("download of {digest} interrupted: {}", error_chain(&e)),
                    })
                }
            };
            if writer.written() + chunk.len() as u64 > size {
                return Err(StoreError::DigestMismatch {
                    what: "blob",
                    expected: digest.clone(),
                    why: format!("registry sent more than the {size} bytes the manifest declares"),
                });
            }
            writer.write_all(&chunk)?;
            on_bytes(writer.written());
        }
        Ok(())
    }
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.split(';').next().unwrap_or(s).trim().to_string())
}

fn basic_header(c: &Credentials) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", c.username, c.password))
    )
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_challenges() {
        let c = r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a:pull""#;
        assert_eq!(
            challenge_param(c, "realm").as_deref(),
            Some("https://auth.example/token")
        );
        assert_eq!(
            challenge_param(c, "service").as_deref(),
            Some("registry.example")
        );
        assert_eq!(challenge_param(r#"Basic realm="x""#, "service"), None);
    }
}
