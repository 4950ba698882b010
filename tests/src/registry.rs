//! A real OCI registry for tests: Debian's `docker-registry` (distribution 2.8)
//! listening on 127.0.0.1 only, with filesystem storage.

use std::fs;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::error::{Error, IoContext, Result};
use crate::http::{self, Response, MANIFEST_ACCEPT};
use crate::tools::{find_tool, run};

/// How long [`Registry::start`] waits for `GET /v2/` to answer.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How many free ports to try when the one picked was taken meanwhile.
const PORT_ATTEMPTS: usize = 5;
/// Timeout of one HTTP exchange with the registry.
const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start a [`Registry`]; `Default` is an anonymous registry on a free
/// port with storage in a fresh temporary directory, killed on drop.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Listen on `127.0.0.1:port`; `None` picks a free port.
    pub port: Option<u16>,
    /// Keep config, storage and log under this directory instead of a
    /// temporary one (which is removed on drop).
    pub dir: Option<PathBuf>,
    /// Require htpasswd basic auth with this user and password.
    pub basic_auth: Option<(String, String)>,
    /// Start the registry in its own session so that it outlives this process;
    /// drop then leaves it running (see [`Registry::detach`]).
    pub detached: bool,
}

/// Where the registry's files live.
#[derive(Debug)]
enum Root {
    Temp(TempDir),
    Fixed(PathBuf),
}

/// A running `docker-registry serve`, on 127.0.0.1 only.
///
/// Its directory holds `config.yml`, `registry.log` (all of the registry's
/// output), `storage/` (the filesystem driver's root) and, with auth,
/// `htpasswd`. Dropping it kills the registry and removes a temporary directory.
#[derive(Debug)]
pub struct Registry {
    root: Root,
    port: u16,
    child: Option<Child>,
    pid: u32,
    credentials: Option<(String, String)>,
}

impl Registry {
    /// Starts an anonymous registry on a free port, storage in a temporary dir.
    pub fn start() -> Result<Registry> {
        Registry::start_with(RegistryOptions::default())
    }

    /// Starts a registry that requires basic auth as `user` / `password`
    /// (htpasswd file with a bcrypt hash made by `htpasswd -Bbn`).
    pub fn start_with_basic_auth(user: &str, password: &str) -> Result<Registry> {
        Registry::start_with(RegistryOptions {
            basic_auth: Some((user.to_string(), password.to_string())),
            ..RegistryOptions::default()
        })
    }

    /// Starts a registry as `options` say, and waits until `GET /v2/` answers
    /// 200 or 401. With no fixed port, a port taken between picking and
    /// binding is retried with another one.
    pub fn start_with(options: RegistryOptions) -> Result<Registry> {
        let binary = find_tool("docker-registry").ok_or_else(|| {
            Error::Unexpected(
                "docker-registry is not installed (apt-get install docker-registry)".into(),
            )
        })?;
        let mut root = match &options.dir {
            Some(dir) => {
                fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
                Root::Fixed(dir.clone())
            }
            None => Root::Temp(
                tempfile::Builder::new()
                    .prefix("skiff-registry-")
                    .tempdir()
                    .ctx(|| "creating a temporary directory for the registry".into())?,
            ),
        };
        let dir = match &root {
            Root::Temp(t) => t.path().to_path_buf(),
            Root::Fixed(p) => p.clone(),
        };
        let storage = dir.join("storage");
        fs::create_dir_all(&storage).ctx(|| format!("creating {}", storage.display()))?;
        let htpasswd = match &options.basic_auth {
            Some((user, password)) => Some(write_htpasswd(&dir, user, password)?),
            None => None,
        };

        let attempts = if options.port.is_some() {
            1
        } else {
            PORT_ATTEMPTS
        };
        let mut last_error = None;
        for _ in 0..attempts {
            let port = match options.port {
                Some(port) => port,
                None => free_port()?,
            };
            let config = dir.join("config.yml");
            let yaml = config_yaml(port, &storage, htpasswd.as_deref());
            fs::write(&config, yaml).ctx(|| format!("writing {}", config.display()))?;
            let log_path = dir.join("registry.log");
            let log = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log_path)
                .ctx(|| format!("opening {}", log_path.display()))?;
            let log_err = log
                .try_clone()
                .ctx(|| format!("opening {}", log_path.display()))?;
            let log_offset = log
                .metadata()
                .ctx(|| format!("reading {}", log_path.display()))?
                .len();
            let mut command = Command::new(&binary);
            command
                .arg("serve")
                .arg(&config)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err);
            if options.detached {
                // SAFETY: setsid is async-signal-safe and touches no memory of ours.
                unsafe {
                    command.pre_exec(|| {
                        if libc::setsid() < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
            }
            let child = command
                .spawn()
                .ctx(|| format!("starting {} serve {}", binary.display(), config.display()))?;
            let mut registry = Registry {
                pid: child.id(),
                child: Some(child),
                root,
                port,
                credentials: options.basic_auth.clone(),
            };
            match registry.wait_ready(log_offset) {
                Ok(()) => {
                    if options.detached {
                        registry.child = None;
                    }
                    return Ok(registry);
                }
                Err((e, exited)) => {
                    registry.kill();
                    if !exited {
                        return Err(e);
                    }
                    // It exited, most likely because the port was taken meanwhile: try
                    // another port, taking the directory back without removing it.
                    last_error = Some(e);
                    root = std::mem::replace(&mut registry.root, Root::Fixed(PathBuf::new()));
                }
            }
        }
        Err(last_error.unwrap_or_else(|| Error::Unexpected("registry did not start".into())))
    }

    /// Waits until this child has logged that it listens (from byte
    /// `log_offset` of the log on; so another process on the same port cannot
    /// pass for it) and `GET /v2/` answers 200 or 401; fails when the child
    /// exits (error flagged `true`) or the start timeout passes (`false`).
    fn wait_ready(&mut self, log_offset: u64) -> std::result::Result<(), (Error, bool)> {
        let started = Instant::now();
        let fail = |me: &Registry, reason: String| Error::RegistryStart {
            addr: me.addr(),
            reason,
            log: me.log_path().display().to_string(),
            log_tail: me.log_tail(20),
        };
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err((fail(self, format!("it exited with {status}")), true));
                }
            }
            if self.logged_listening(log_offset) {
                let probe = http::request(&self.addr(), "GET", "/v2/", &[], Duration::from_secs(2));
                if let Ok(r) = probe {
                    if r.status == 200 || r.status == 401 {
                        return Ok(());
                    }
                }
            }
            if started.elapsed() > START_TIMEOUT {
                let reason = format!("GET /v2/ did not answer 200 or 401 within {START_TIMEOUT:?}");
                return Err((fail(self, reason), false));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the log, from byte `offset` on, says the registry listens.
    fn logged_listening(&self, offset: u64) -> bool {
        let text = fs::read(self.log_path()).unwrap_or_default();
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(text.len());
        let needle = format!("listening on {}", self.addr());
        String::from_utf8_lossy(&text[start..]).contains(&needle)
    }

    /// The registry's address, "127.0.0.1:PORT", as used in image references.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The registry's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The directory holding config, log and storage.
    pub fn dir(&self) -> &Path {
        match &self.root {
            Root::Temp(t) => t.path(),
            Root::Fixed(p) => p,
        }
    }

    /// Root of the filesystem storage driver: blobs live under
    /// `docker/registry/v2/blobs/sha256/XX/HEX/data` in it.
    pub fn storage_dir(&self) -> PathBuf {
        self.dir().join("storage")
    }

    /// Path of the stored bytes of blob `digest` ("sha256:HEX").
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        let hex = digest
            .strip_prefix("sha256:")
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| Error::Unexpected(format!("not a sha256 digest: {digest:?}")))?;
        Ok(self
            .storage_dir()
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data"))
    }

    /// The file the registry logs into.
    pub fn log_path(&self) -> PathBuf {
        self.dir().join("registry.log")
    }

    /// The last `lines` lines of the registry's log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(self.log_path()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The user and password it requires, if started with basic auth.
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// `GET path` with the registry's credentials (if any).
    pub fn get(&self, path: &str) -> Result<Response> {
        self.get_with_headers(path, &[])
    }

    /// `GET path` with the registry's credentials (if any) and `extra` headers.
    pub fn get_with_headers(&self, path: &str, extra: &[(&str, &str)]) -> Result<Response> {
        let auth = self.credentials().map(|(u, p)| http::basic_auth(u, p));
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth));
        }
        http::request(&self.addr(), "GET", path, &headers, HTTP_TIMEOUT)
    }

    /// `GET path` without credentials.
    pub fn get_anonymous(&self, path: &str) -> Result<Response> {
        http::request(&self.addr(), "GET", path, &[], HTTP_TIMEOUT)
    }

    /// Fetches manifest `reference` (tag or digest) of `repository`, sending the
    /// full Accept list so OCI indexes and Docker manifests come back as stored.
    pub fn get_manifest(&self, repository: &str, reference: &str) -> Result<Response> {
        self.get_with_headers(
            &format!("/v2/{repository}/manifests/{reference}"),
            &[("Accept", MANIFEST_ACCEPT)],
        )
    }

    /// Fetches blob `digest` of `repository`.
    pub fn get_blob(&self, repository: &str, digest: &str) -> Result<Response> {
        self.get(&format!("/v2/{repository}/blobs/{digest}"))
    }

    /// Leaves the registry running after this value is dropped (and, for a
    /// temporary directory, keeps the directory); returns its pid. Only a
    /// registry started with `detached: true` survives the exit of this process
    /// as well.
    pub fn detach(mut self) -> u32 {
        self.child = None;
        if let Root::Temp(t) = std::mem::replace(&mut self.root, Root::Fixed(PathBuf::new())) {
            self.root = Root::Fixed(t.keep());
        }
        self.pid
    }

    /// Kills and reaps the child, if this value still owns it.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Picks a port that is free right now by binding 127.0.0.1:0 and releasing it.
fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .ctx(|| "binding 127.0.0.1:0 to find a free port".into())?;
    let port = listener
        .local_addr()
        .ctx(|| "reading the address of 127.0.0.1:0".into())?
        .port();
    Ok(port)
}

/// Writes `dir/htpasswd` with a bcrypt entry for `user`.
fn write_htpasswd(dir: &Path, user: &str, password: &str) -> Result<PathBuf> {
    let line = run(Command::new("htpasswd").args(["-Bbn", user, password]))?;
    let path = dir.join("htpasswd");
    fs::write(&path, line).ctx(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Quotes a string for YAML (double-quoted style).
fn yaml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The registry's configuration: loopback only, filesystem storage with delete
/// enabled, no blob descriptor cache (so damaged blobs are served as stored),
/// no upload purging, the access log on (one line per request, in
/// `registry.log`, which tests may count), optional htpasswd auth.
fn config_yaml(port: u16, storage: &Path, htpasswd: Option<&Path>) -> String {
    let mut yaml = format!(
        "version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: {storage}
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: {addr}
  secret: skiff-test-registry
  headers:
    X-Content-Type-Options: [nosniff]
",
        storage = yaml_str(&storage.to_string_lossy()),
        addr = yaml_str(&format!("127.0.0.1:{port}")),
    );
    if let Some(htpasswd) = htpasswd {
        yaml.push_str(&format!(
            "auth:
  htpasswd:
    realm: skiff-test-registry
    path: {}
",
            yaml_str(&htpasswd.to_string_lossy())
        ));
    }
    yaml
}
