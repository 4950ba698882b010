//! Talking to a registry: one client per endpoint (mirror or registry), manifests by
//! reference, blobs streamed to the content store. Errors from the wire are mapped to
//! store errors that say which reference and registry they concern.

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::Client;
use oci_spec::distribution::Reference;

use crate::auth::Credentials;
use crate::config::Endpoint;
use crate::content::BlobWriter;
use crate::digest::Digest;
use crate::error::{Result, StoreError};
use crate::manifest::ACCEPTED_MANIFESTS;
use crate::reference::ImageRef;

/// A client for one repository on one endpoint.
pub struct RepoClient {
    client: Client,
    auth: RegistryAuth,
    endpoint: Endpoint,
    repository: String,
    shown: String,
}

impl RepoClient {
    /// A client for `image`'s repository at `endpoint`.
    pub fn new(endpoint: &Endpoint, image: &ImageRef, creds: Option<Credentials>) -> Self {
        let protocol = if endpoint.plain_http {
            ClientProtocol::HttpsExcept(vec![endpoint.host.clone()])
        } else {
            ClientProtocol::Https
        };
        let client = Client::new(ClientConfig {
            protocol,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            user_agent: concat!("skiff/", env!("CARGO_PKG_VERSION")),
            ..Default::default()
        });
        RepoClient {
            client,
            auth: match creds {
                Some(c) => RegistryAuth::Basic(c.username, c.password),
                None => RegistryAuth::Anonymous,
            },
            endpoint: endpoint.clone(),
            repository: image.repository().to_string(),
            shown: image.to_string(),
        }
    }

    /// The endpoint this client talks to.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn host(&self) -> String {
        // oci-client maps docker.io to its real API host itself.
        self.endpoint.host.clone()
    }

    fn reference(&self, reference: &str) -> Reference {
        if reference.starts_with("sha256:") {
            Reference::with_digest(self.host(), self.repository.clone(), reference.to_string())
        } else {
            Reference::with_tag(self.host(), self.repository.clone(), reference.to_string())
        }
    }

    /// Fetches a manifest or index by tag or digest; returns its bytes and digest.
    pub async fn manifest(&self, reference: &str) -> Result<(Vec<u8>, Digest)> {
        let r = self.reference(reference);
        let (bytes, digest) = self
            .client
            .pull_manifest_raw(&r, &self.auth, ACCEPTED_MANIFESTS)
            .await
            .map_err(|e| self.map_err(e, "manifest"))?;
        let actual = Digest::of(&bytes);
        if digest != actual.to_string() && digest.starts_with("sha256:") {
            return Err(StoreError::DigestMismatch {
                what: "manifest",
                expected: digest.parse()?,
                why: format!("content has digest {actual}"),
            });
        }
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
        Ok((bytes.to_vec(), actual))
    }

    /// Streams blob `digest` into `writer`, reporting bytes as they arrive.
    pub async fn blob(
        &self,
        digest: &Digest,
        size: u64,
        writer: &mut BlobWriter,
        mut on_bytes: impl FnMut(u64),
    ) -> Result<()> {
        let r = self.reference(&digest.to_string());
        let desc = OciDescriptor {
            digest: digest.to_string(),
            size: size as i64,
            ..Default::default()
        };
        let mut stream = self
            .client
            .pull_blob_stream(&r, &desc)
            .await
            .map_err(|e| self.map_err(e, "blob"))?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.stream_err(digest, e))?;
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

    fn stream_err(&self, digest: &Digest, e: std::io::Error) -> StoreError {
        let text = e.to_string();
        if text.to_lowercase().contains("digest") {
            StoreError::DigestMismatch {
                what: "blob",
                expected: digest.clone(),
                why: text,
            }
        } else {
            StoreError::RegistryUnreachable {
                registry: self.endpoint.host.clone(),
                reference: self.shown.clone(),
                why: format!("download of {digest} interrupted: {text}"),
            }
        }
    }

    fn map_err(&self, e: OciDistributionError, what: &str) -> StoreError {
        let registry = self.endpoint.host.clone();
        let reference = self.shown.clone();
        let auth = |why: String| StoreError::AuthRefused {
            registry: registry.clone(),
            reference: reference.clone(),
            why,
        };
        match e {
            OciDistributionError::AuthenticationFailure(m) => auth(m),
            OciDistributionError::UnauthorizedError { .. } => auth(match self.auth {
                RegistryAuth::Anonymous => "credentials required (skiff login)".into(),
                _ => "unauthorized: the credentials were refused".into(),
            }),
            OciDistributionError::ImageManifestNotFoundError(m) => {
                StoreError::ManifestNotFound { reference, why: m }
            }
            OciDistributionError::RegistryError { envelope, .. } => {
                let codes: Vec<&OciErrorCode> = envelope.errors.iter().map(|e| &e.code).collect();
                let text = envelope
                    .errors
                    .iter()
                    .map(|e| e.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ");
                if codes
                    .iter()
                    .any(|c| matches!(c, OciErrorCode::Unauthorized | OciErrorCode::Denied))
                {
                    auth(text)
                } else if codes.iter().any(|c| {
                    matches!(
                        c,
                        OciErrorCode::ManifestUnknown
                            | OciErrorCode::NameUnknown
                            | OciErrorCode::NotFound
                            | OciErrorCode::BlobUnknown
                    )
                }) {
                    StoreError::ManifestNotFound {
                        reference,
                        why: format!("{what}: {text}"),
                    }
                } else {
                    StoreError::Registry {
                        reference,
                        why: text,
                    }
                }
            }
            OciDistributionError::ServerError { code, message, .. } => match code {
                401 | 403 => auth(message),
                404 => StoreError::ManifestNotFound {
                    reference,
                    why: format!("{what} not found"),
                },
                _ => StoreError::Registry {
                    reference,
                    why: format!(
                        "HTTP {code}: {}",
                        message.chars().take(300).collect::<String>()
                    ),
                },
            },
            OciDistributionError::RequestError(e) if e.is_connect() || e.is_timeout() => {
                StoreError::RegistryUnreachable {
                    registry,
                    reference,
                    why: error_chain(&e),
                }
            }
            OciDistributionError::DigestError(d) => StoreError::Registry {
                reference,
                why: format!("{what} digest: {d}"),
            },
            other => StoreError::Registry {
                reference,
                why: error_chain(&other),
            },
        }
    }
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
