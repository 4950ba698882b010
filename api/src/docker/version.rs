//! API version negotiation: `/_ping` (the CLI reads `Api-Version` from it and then
//! prefixes every path with `/v{min(its, ours)}`), `/version`, and the `/v1.xx` prefix.

use bollard_stubs::models::{SystemVersion, SystemVersionComponents, SystemVersionPlatform};
use hyper::header::{HeaderName, HeaderValue, CACHE_CONTROL};
use hyper::{HeaderMap, Method, StatusCode};

use super::{json, with_type, ApiError, DockerApi, Response};

/// The newest API version served.
pub const API_VERSION: ApiVersion = ApiVersion(1, 47);

/// The oldest API version served.
pub const MIN_API_VERSION: ApiVersion = ApiVersion(1, 41);

/// An API version `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ApiVersion(pub u32, pub u32);

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.0, self.1)
    }
}

impl ApiVersion {
    /// Parses `1.47`.
    pub fn parse(s: &str) -> Option<ApiVersion> {
        let (a, b) = s.split_once('.')?;
        Some(ApiVersion(a.parse().ok()?, b.parse().ok()?))
    }
}

/// Splits `/v1.45/containers/json` into the version asked for (ours when none) and the
/// route; refuses versions outside what is served, as dockerd does.
pub fn split_path(path: &str) -> Result<(ApiVersion, &str), ApiError> {
    let Some(rest) = path.strip_prefix("/v") else {
        return Ok((API_VERSION, path));
    };
    let (ver, route) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let Some(v) = ApiVersion::parse(ver) else {
        // Not a version prefix (e.g. a route that starts with "v"): leave it alone.
        return Ok((API_VERSION, path));
    };
    if v > API_VERSION {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too new. Maximum supported API version is {API_VERSION}"
        )));
    }
    if v < MIN_API_VERSION {
        return Err(ApiError::bad_request(format!(
            "client version {v} is too old. Minimum supported API version is {MIN_API_VERSION}, please upgrade your client to a newer version"
        )));
    }
    Ok((v, route))
}

/// Headers dockerd puts on every response.
pub fn add_common_headers(h: &mut HeaderMap) {
    let pairs = [
        ("api-version", API_VERSION.to_string()),
        ("docker-experimental", "false".to_string()),
        ("ostype", "linux".to_string()),
        (
            "server",
            format!("skiff/{} (linux)", env!("CARGO_PKG_VERSION")),
        ),
    ];
    for (k, v) in pairs {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(HeaderName::from_static(k), v);
        }
    }
}

/// `GET|HEAD /_ping`: `OK`, and the headers the CLI negotiates with.
pub fn ping(method: &Method) -> Response {
    let body = if method == Method::HEAD { "" } else { "OK" };
    let mut r = with_type(StatusCode::OK, body.into(), "text/plain; charset=utf-8");
    r.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate"),
    );
    r.headers_mut()
        .insert("pragma", HeaderValue::from_static("no-cache"));
    r
}

/// `GET /version`.
pub fn version(api: &DockerApi) -> Response {
    json(StatusCode::OK, &system_version(api))
}

/// What `/version` reports.
pub fn system_version(api: &DockerApi) -> SystemVersion {
    let version = env!("CARGO_PKG_VERSION").to_string();
    let arch = api.engine().images().platform().architecture.clone();
    let kernel = super::system::kernel_version();
    let details = [
        ("ApiVersion", API_VERSION.to_string()),
        ("MinAPIVersion", MIN_API_VERSION.to_string()),
        ("Os", "linux".to_string()),
        ("Arch", arch.clone()),
        ("KernelVersion", kernel.clone()),
        ("Experimental", "false".to_string()),
        ("GitCommit", String::new()),
        ("GoVersion", "n/a (Rust)".to_string()),
        ("BuildTime", String::new()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    SystemVersion {
        platform: Some(SystemVersionPlatform {
            name: format!("skiff {version}"),
        }),
        components: Some(vec![SystemVersionComponents {
            name: "Engine".into(),
            version: version.clone(),
            details: Some(details),
        }]),
        version: Some(version),
        api_version: Some(API_VERSION.to_string()),
        min_api_version: Some(MIN_API_VERSION.to_string()),
        git_commit: Some(String::new()),
        go_version: Some("n/a (Rust)".into()),
        os: Some("linux".into()),
        arch: Some(arch),
        kernel_version: Some(kernel),
        experimental: Some(false),
        build_time: Some(String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_prefixes() {
        assert_eq!(
            split_path("/v1.45/containers/json").unwrap(),
            (ApiVersion(1, 45), "/containers/json")
        );
        assert_eq!(split_path("/_ping").unwrap(), (API_VERSION, "/_ping"));
        assert_eq!(split_path("/v1.47/_ping").unwrap().1, "/_ping");
        assert_eq!(split_path("/version").unwrap().1, "/version");
        let e = split_path("/v1.50/info").unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert!(e.message.contains("too new"), "{}", e.message);
        assert!(split_path("/v1.12/info")
            .unwrap_err()
            .message
            .contains("too old"));
        assert!(ApiVersion(1, 9) < ApiVersion(1, 41));
    }
}
