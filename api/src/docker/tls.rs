//! The optional TCP listener of the Docker API. It exists only with TLS and verified
//! client certificates (dockerd's `--tlsverify`): a plain or unauthenticated TCP port
//! would hand root on the host to anyone who can reach it.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use super::DockerApi;

/// The files of a TLS listener (PEM): the CA that signs client certificates, and the
/// server's own certificate chain and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `--tlscacert`: clients must present a certificate signed by this CA.
    pub ca: PathBuf,
    /// `--tlscert`: the server's certificate chain.
    pub cert: PathBuf,
    /// `--tlskey`: the server's private key.
    pub key: PathBuf,
}

/// Why the TLS listener cannot start.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file is missing, unreadable or holds nothing usable.
    #[error("{what} {path}: {why}")]
    File {
        /// Which file.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// rustls refused the configuration (key not matching the certificate, ...).
    #[error("TLS configuration: {0}")]
    Config(String),
    /// The address cannot be bound.
    #[error("listening on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        #[source]
        source: io::Error,
    },
}

fn certs(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bad = |why: String| TlsError::File {
        what,
        path: path.to_path_buf(),
        why,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in it".into()));
    }
    Ok(certs)
}

/// Builds the acceptor: TLS 1.2+, client certificate required and checked against the CA.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in certs("--tlscacert", &files.ca)? {
        roots.add(c).map_err(|e| TlsError::File {
            what: "--tlscacert",
            path: files.ca.clone(),
            why: e.to_string(),
        })?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Config(e.to_string()))?;
    let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| TlsError::File {
        what: "--tlskey",
        path: files.key.clone(),
        why: e.to_string(),
    })?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs("--tlscert", &files.cert)?, key)
        .map_err(|e| TlsError::Config(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Binds the TCP address.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, TlsError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| TlsError::Bind { addr, source })
}

/// At most this many TLS handshakes in progress: strangers who connect and say nothing
/// cannot use up skiffd's descriptors (each one waits at most 10 s).
const MAX_PENDING_HANDSHAKES: usize = 64;

/// Serves the API over TLS on `listener` until the task is dropped. A failed handshake
/// (no client certificate, a wrong CA) ends only that connection.
pub async fn serve(api: DockerApi, listener: TcpListener, acceptor: TlsAcceptor) {
    let pending = Arc::new(tokio::sync::Semaphore::new(MAX_PENDING_HANDSHAKES));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "docker api (tls): accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = pending.clone().try_acquire_owned() else {
            tracing::info!(%peer, "docker api (tls): too many handshakes in progress; closing");
            drop(stream);
            continue;
        };
        let (api, acceptor) = (api.clone(), acceptor.clone());
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream));
            let handshake = handshake.await;
            drop(permit);
            match handshake {
                Ok(Ok(tls)) => super::server::serve_stream(api, tls).await,
                Ok(Err(e)) => {
                    tracing::info!(%peer, error = %e, "docker api (tls): handshake refused")
                }
                Err(_) => tracing::info!(%peer, "docker api (tls): handshake timed out"),
            }
        });
    }
}
