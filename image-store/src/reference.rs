//! Image references: parsing and normalisation as Docker does it
//! (`alpine` is `docker.io/library/alpine:latest`), and the short "familiar" form Docker prints.

use std::fmt;
use std::str::FromStr;

use oci_spec::distribution::Reference;

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
    /// Parses and normalises a reference as typed by a user.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        let invalid = |why: String| StoreError::InvalidReference {
            reference: s.chars().take(256).collect(),
            why,
        };
        if s.is_empty() {
            return Err(invalid("empty reference".into()));
        }
        if s.contains("://") {
            return Err(invalid("a reference has no URL scheme".into()));
        }
        let r = Reference::try_from(s).map_err(|e| invalid(e.to_string()))?;
        let digest = match r.digest() {
            Some(d) => Some(
                d.parse::<Digest>()
                    .map_err(|e| invalid(e.why.to_string()))?,
            ),
            None => None,
        };
        let mut registry = r.registry().to_string();
        if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            registry = DOCKER_HUB.into();
        }
        let mut repository = r.repository().to_string();
        if registry == DOCKER_HUB && !repository.contains('/') {
            repository = format!("library/{repository}");
        }
        // A digest alone does not imply `latest`.
        let tag = match (r.tag(), &digest) {
            (Some(t), Some(_))
                if !s.contains(&format!(":{t}@")) && !s.ends_with(&format!(":{t}")) =>
            {
                None
            }
            (t, _) => t.map(str::to_string),
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

    /// The reference in the form the registry client library takes.
    pub fn to_oci(&self) -> Reference {
        match (&self.tag, &self.digest) {
            (Some(t), Some(d)) => Reference::with_tag_and_digest(
                self.registry.clone(),
                self.repository.clone(),
                t.clone(),
                d.to_string(),
            ),
            (_, Some(d)) => Reference::with_digest(
                self.registry.clone(),
                self.repository.clone(),
                d.to_string(),
            ),
            (t, None) => Reference::with_tag(
                self.registry.clone(),
                self.repository.clone(),
                t.clone().unwrap_or_else(|| "latest".into()),
            ),
        }
    }
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
