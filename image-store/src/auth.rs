//! Registry credentials: skiff's own auth file (written by `login`, mode 0600) and an
//! existing Docker `config.json`, both in Docker's `{"auths": {host: {"auth": b64}}}` format.

use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::{Result, StoreError};
use crate::reference::DOCKER_HUB;

/// A username and password (or identity token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, ****)", self.username)
    }
}

#[derive(Default, Serialize, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

#[derive(Default, Serialize, Deserialize)]
struct AuthEntry {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    #[serde(flatten)]
    other: BTreeMap<String, serde_json::Value>,
}

/// The default location of skiff's own auth file.
pub fn default_auth_file() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CONFIG_HOME") {
        return PathBuf::from(x).join("skiff/auth.json");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".config/skiff/auth.json")
}

/// Docker's config.json, honouring `DOCKER_CONFIG`.
pub fn docker_config_file() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG") {
        return PathBuf::from(d).join("config.json");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".docker/config.json")
}

/// The keys a registry may be stored under (Docker Hub has historical spellings).
fn keys_for(registry: &str) -> Vec<String> {
    let mut keys = vec![
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
    ];
    if registry == DOCKER_HUB {
        keys.extend(
            [
                "https://index.docker.io/v1/",
                "index.docker.io",
                "registry-1.docker.io",
            ]
            .iter()
            .map(|s| s.to_string()),
        );
    }
    keys
}

fn read_file(path: &Path) -> Result<Option<AuthFile>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(StoreError::io("reading credentials", path)(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| StoreError::Config {
            path: path.to_path_buf(),
            why: e.to_string(),
        })
}

fn decode(entry: &AuthEntry, path: &Path) -> Result<Option<Credentials>> {
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Ok(Some(Credentials {
            username: u.clone(),
            password: p.clone(),
        }));
    }
    let Some(b64) = entry.auth.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let bad = |why: &str| StoreError::Config {
        path: path.to_path_buf(),
        why: format!("invalid auth entry: {why}"),
    };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|_| bad("not base64"))?;
    let text = String::from_utf8(raw).map_err(|_| bad("not UTF-8"))?;
    let (u, p) = text
        .split_once(':')
        .ok_or_else(|| bad("expected user:password"))?;
    Ok(Some(Credentials {
        username: u.to_string(),
        password: p.to_string(),
    }))
}

/// Finds credentials for `registry` in skiff's auth file, then in Docker's config.json.
pub fn lookup(auth_file: &Path, registry: &str) -> Result<Option<Credentials>> {
    for path in [auth_file.to_path_buf(), docker_config_file()] {
        let Some(file) = read_file(&path)? else {
            continue;
        };
        for key in keys_for(registry) {
            if let Some(entry) = file.auths.get(&key) {
                if let Some(c) = decode(entry, &path)? {
                    return Ok(Some(c));
                }
            }
        }
    }
    Ok(None)
}

/// Stores credentials for `registry` in `auth_file` (created 0600, written atomically).
pub fn store(auth_file: &Path, registry: &str, creds: &Credentials) -> Result<()> {
    let mut file = read_file(auth_file)?.unwrap_or_default();
    let auth = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{}", creds.username, creds.password));
    file.auths.insert(
        registry.to_string(),
        AuthEntry {
            auth: Some(auth),
            ..Default::default()
        },
    );
    write_file(auth_file, &file)
}

/// Removes credentials for `registry`; returns whether there were any.
pub fn remove(auth_file: &Path, registry: &str) -> Result<bool> {
    let Some(mut file) = read_file(auth_file)? else {
        return Ok(false);
    };
    let mut found = false;
    for key in keys_for(registry) {
        found |= file.auths.remove(&key).is_some();
    }
    if found {
        write_file(auth_file, &file)?;
    }
    Ok(found)
}

fn write_file(path: &Path, file: &AuthFile) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(StoreError::io("creating", dir))?;
    let tmp = path.with_extension("json.tmp");
    let body = serde_json::to_vec_pretty(file).map_err(|e| StoreError::Config {
        path: path.to_path_buf(),
        why: e.to_string(),
    })?;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(StoreError::io("writing", &tmp))?;
    f.write_all(&body)
        .and_then(|_| f.sync_all())
        .map_err(StoreError::io("writing", &tmp))?;
    std::fs::rename(&tmp, path).map_err(StoreError::io("renaming", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn store_lookup_remove() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("sub/auth.json");
        let c = Credentials {
            username: "u".into(),
            password: "p:w".into(),
        };
        store(&f, "127.0.0.1:5999", &c).unwrap();
        assert_eq!(
            std::fs::metadata(&f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(lookup(&f, "127.0.0.1:5999").unwrap(), Some(c));
        assert!(remove(&f, "127.0.0.1:5999").unwrap());
        assert_eq!(lookup(&f, "127.0.0.1:5999").unwrap(), None);
    }

    #[test]
    fn bad_file_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("auth.json");
        std::fs::write(&f, r#"{"auths": {"r": {"auth": "!!!"}}}"#).unwrap();
        let e = lookup(&f, "r").unwrap_err().to_string();
        assert!(e.contains("not base64"), "{e}");
    }
}
