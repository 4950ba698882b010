//! `login`: checking credentials against a registry the way `docker login` does
//! (`GET /v2/` with Basic auth, or the token endpoint its Bearer challenge names).

use crate::auth::Credentials;
use crate::error::{Result, StoreError};
use crate::store::ImageStore;

impl ImageStore {
    /// Verifies `creds` against `registry`; Ok means the registry accepted them.
    pub async fn check_login(&self, registry: &str, creds: &Credentials) -> Result<()> {
        let scheme = if self.config.is_insecure(registry) {
            "http"
        } else {
            "https"
        };
        let host = if registry == crate::reference::DOCKER_HUB {
            "registry-1.docker.io"
        } else {
            registry
        };
        let url = format!("{scheme}://{host}/v2/");
        let client = crate::registry::shared_client(scheme == "http");
        let refused = |why: String| StoreError::AuthRefused {
            registry: registry.to_string(),
            reference: "login".into(),
            why,
        };
        let res = client
            .get(&url)
            .basic_auth(&creds.username, Some(&creds.password))
            .send()
            .await
            .map_err(|e| self.login_unreachable(registry, e))?;
        if res.status().is_success() {
            return Ok(());
        }
        if res.status() != reqwest::StatusCode::UNAUTHORIZED {
            return Err(StoreError::Registry {
                reference: url,
                why: format!("unexpected status {}", res.status()),
            });
        }
        let challenge = res
            .headers()
            .get(reqwest::header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let Some(params) = challenge.strip_prefix("Bearer ") else {
            return Err(refused(
                "unauthorized: incorrect username or password".into(),
            ));
        };
        let (realm, service) = parse_bearer(params);
        let realm =
            realm.ok_or_else(|| refused("registry's Bearer challenge has no realm".into()))?;
        let mut req = client
            .get(&realm)
            .basic_auth(&creds.username, Some(&creds.password));
        if let Some(s) = service {
            req = req.query(&[("service", s), ("account", creds.username.clone())]);
        }
        let token = req
            .send()
            .await
            .map_err(|e| self.login_unreachable(registry, e))?;
        if token.status().is_success() {
            Ok(())
        } else {
            Err(refused(format!(
                "token endpoint answered {}",
                token.status()
            )))
        }
    }

    fn login_unreachable(&self, registry: &str, e: reqwest::Error) -> StoreError {
        StoreError::RegistryUnreachable {
            registry: registry.to_string(),
            reference: "login".into(),
            why: e.to_string(),
        }
    }
}

/// `realm="...",service="..."` from a Bearer challenge.
fn parse_bearer(params: &str) -> (Option<String>, Option<String>) {
    let mut realm = None;
    let mut service = None;
    for part in params.split(',') {
        if let Some((k, v)) = part.trim().split_once('=') {
            let v = v.trim_matches('"').to_string();
            match k {
                "realm" => realm = Some(v),
                "service" => service = Some(v),
                _ => {}
            }
        }
    }
    (realm, service)
}
