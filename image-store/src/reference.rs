//! Image references: parsing and normalisation as Docker does it
//! (`alpine` is `docker.io/library/alpine:latest`), and the short "familiar" form Docker prints.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::StoreError;

/// The registry that short names belong to.
pub const DOCKER_HUB: &str = "docker.io";

/// A normalised image reference: registry, repository, and a tag and/or digest.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ImageRef {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl ImageRef {
    /// Parses and normalises a reference as typed by a user, following Docker's grammar
    /// (`[domain[:port]/]path[:tag][@sha256:hex]`, lowercase paths, tags of at most 128
    /// characters, names of at most 255). Hand-written: compiling the grammar as a regex
    /// cost ~30 ms per process.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        let invalid = |why: &str| StoreError::InvalidReference {
            reference: s.chars().take(256).collect(),
            why: why.to_string(),
        };
        if s.is_empty() {
            return Err(invalid("empty reference"));
        }
        if s.contains("://") {
            return Err(invalid("a reference has no URL scheme"));
        }
        let (rest, digest) = match s.rsplit_once('@') {
            Some((r, d)) => (r, Some(d.parse::<Digest>().map_err(|e| invalid(e.why))?)),
            None => (s, None),
        };
        let last_slash = rest.rfind('/').map(|i| i + 1).unwrap_or(0);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        if let Some(t) = tag {
            if !valid_tag(t) {
                return Err(invalid("invalid tag format"));
            }
        }
        if name.len() > 255 {
            return Err(invalid(
                "repository name must not be more than 255 characters",
            ));
        }
        let (mut registry, mut repository) = match name.split_once('/') {
            Some((first, remainder))
                if first.contains(['.', ':'])
                    || first == "localhost"
                    || first.to_lowercase() != first =>
            {
                (first.to_string(), remainder.to_string())
            }
            _ => (DOCKER_HUB.to_string(), name.to_string()),
        };
        if !valid_domain(&registry) {
            return Err(invalid("invalid registry host"));
        }
        if repository.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(invalid("repository name must be lowercase"));
        }
        if !repository.split('/').all(valid_path_component) {
            return Err(invalid("invalid reference format"));
        }
        if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            registry = DOCKER_HUB.into();
        }
        if registry == DOCKER_HUB && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        // Docker checks the limit on the normalised name, so what parses prints back.
        if registry.len() + 1 + repository.len() > 255 {
            return Err(invalid(
                "repository name must not be more than 255 characters",
            ));
        }
        let tag = match (tag, &digest) {
            (Some(t), _) => Some(t.to_string()),
            (None, Some(_)) => None,
            (None, None) => Some("latest".to_string()),
        };
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }

    /// Builds a reference from its parts (used when reading back stored names).
    pub fn from_parts(
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Self {
        ImageRef {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.map(str::to_string),
            digest,
        }
    }

    /// The registry host (and port), e.g. `docker.io` or `127.0.0.1:5000`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path inside the registry, e.g. `library/alpine`.
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag, if the reference has one.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if the reference pins one.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// `registry/repository`, the fully qualified name without tag or digest.
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The name as Docker prints it: `alpine` for `docker.io/library/alpine`,
    /// `user/app` for `docker.io/user/app`, the full name elsewhere.
    pub fn familiar_name(&self) -> String {
        familiar_name(&self.registry, &self.repository)
    }

    /// `name:tag` as Docker prints it in RepoTags, when there is a tag.
    pub fn familiar_tagged(&self) -> Option<String> {
        self.tag
            .as_ref()
            .map(|t| format!("{}:{t}", self.familiar_name()))
    }

    /// The same reference with another tag and no digest.
    pub fn with_tag(&self, tag: &str) -> Self {
        ImageRef {
            tag: Some(tag.to_string()),
            digest: None,
            ..self.clone()
        }
    }

    /// The same repository pinned to `digest` (no tag).
    pub fn with_digest(&self, digest: Digest) -> Self {
        ImageRef {
            tag: None,
            digest: Some(digest),
            ..self.clone()
        }
    }
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`
fn valid_path_component(p: &str) -> bool {
    let b = p.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &p[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|c| c == b'-')) {
            return false;
        }
    }
    true
}

/// `host[:port]` where host is DNS labels or a bracketed IPv6 address.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        match rest.split_once(']') {
            Some((ip, tail)) => {
                if ip.parse::<std::net::Ipv6Addr>().is_err() {
                    return false;
                }
                (None, tail.strip_prefix(':'))
            }
            None => return false,
        }
    } else {
        match d.rsplit_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|c| c.is_ascii_digit()) || p.len() > 5 {
            return false;
        }
    }
    host.is_none_or(|h| {
        !h.is_empty()
            && h.split('.').all(|l| {
                let b = l.as_bytes();
                !b.is_empty()
                    && b[0].is_ascii_alphanumeric()
                    && b[b.len() - 1].is_ascii_alphanumeric()
                    && b.iter().all(|&c| c.is_ascii_alphanumeric() || c == b'-')
            })
    })
}

/// Docker's short form of `registry/repository`.
pub fn familiar_name(registry: &str, repository: &str) -> String {
    if registry == DOCKER_HUB {
        repository
            .strip_prefix("library/")
            .unwrap_or(repository)
            .to_string()
    } else {
        format!("{registry}/{repository}")
    }
}

impl FromStr for ImageRef {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        ImageRef::parse(s)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn normalises_short_names_like_docker() {
        let r = ImageRef::parse("alpine").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/alpine:latest");
        assert_eq!(r.familiar_name(), "alpine");
        assert_eq!(
            ImageRef::parse("user/app:1").unwrap().to_string(),
            "docker.io/user/app:1"
        );
        assert_eq!(
            ImageRef::parse("user/app:1").unwrap().familiar_name(),
            "user/app"
        );
        assert_eq!(
            ImageRef::parse("index.docker.io/library/busybox")
                .unwrap()
                .to_string(),
            "docker.io/library/busybox:latest"
        );
    }

    #[test]
    fn keeps_other_registries() {
        let r = ImageRef::parse("127.0.0.1:5000/test/multilayer:v2").unwrap();
        assert_eq!(r.registry(), "127.0.0.1:5000");
        assert_eq!(r.repository(), "test/multilayer");
        assert_eq!(r.tag(), Some("v2"));
        assert_eq!(r.familiar_name(), "127.0.0.1:5000/test/multilayer");
        let l = ImageRef::parse("localhost/foo").unwrap();
        assert_eq!(l.registry(), "localhost");
    }

    #[test]
    fn digests_without_implied_tag() {
        let r = ImageRef::parse(&format!("alpine@{D}")).unwrap();
        assert_eq!(r.tag(), None);
        assert_eq!(r.digest().unwrap().to_string(), D);
        assert_eq!(r.to_string(), format!("docker.io/library/alpine@{D}"));
        let both = ImageRef::parse(&format!("alpine:3@{D}")).unwrap();
        assert_eq!(both.tag(), Some("3"));
    }

    #[test]
    fn rejects_bad_references() {
        for ok in [
            "localhost:5000/a/b",
            "[::1]:5000/x",
            "a.b-c.d/e__f/g-h:v1.0-rc_1",
            "Registry.Example/x",
            "a---b/c",
        ] {
            assert!(ImageRef::parse(ok).is_ok(), "{ok:?} should parse");
        }
        for bad in [
            "a__/b",
            "-a/b",
            "a/b:-tag",
            "a/b:",
            "a//b",
            "a/.b",
            "reg:port/x",
            "[zz]:1/x",
            "x@sha256:zz",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} should be rejected");
        }
        for bad in [
            "",
            "user/Upper",
            "a b",
            "http://x/y",
            "alpine@sha256:123",
            ":tag",
            "alpine:",
        ] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }
}
