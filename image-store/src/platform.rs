//! Platforms (`os/arch[/variant]`) and the choice of one entry of an image index.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::StoreError;

/// An OCI platform as written in image indexes and configs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    /// Operating system, e.g. `linux`.
    pub os: String,
    /// CPU architecture in Go's names, e.g. `amd64`, `arm64`.
    pub architecture: String,
    /// Variant, e.g. `v7` for arm, `v8` for arm64.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of the machine skiff runs on.
    pub fn host() -> Self {
        let architecture = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "arm" => "arm",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            other => other,
        }
        .to_string();
        let variant = match architecture.as_str() {
            "arm64" => Some("v8".to_string()),
            "arm" => Some("v7".to_string()),
            _ => None,
        };
        Platform {
            os: std::env::consts::OS.to_string(),
            architecture,
            variant,
        }
    }

    /// How well an index entry's platform fits this one: None if it cannot run here,
    /// higher is better (an exact variant beats a missing one).
    pub fn match_score(&self, candidate: &Platform) -> Option<u8> {
        if candidate.os != self.os || candidate.architecture != self.architecture {
            return None;
        }
        match (&self.variant, &candidate.variant) {
            (Some(want), Some(have)) if want == have => Some(3),
            (_, None) => Some(2),
            (None, Some(_)) => Some(1),
            // arm64 images are all v8; an arm/v6 image runs on arm/v7, not the reverse.
            (Some(want), Some(have))
                if self.architecture == "arm" && have.as_str() < want.as_str() =>
            {
                Some(1)
            }
            (Some(_), Some(_)) => None,
        }
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self, StoreError> {
        let bad = |why: &str| StoreError::InvalidReference {
            reference: s.to_string(),
            why: format!("invalid platform: {why}"),
        };
        let parts: Vec<&str> = s.split('/').collect();
        let ok =
            |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !(2..=3).contains(&parts.len()) || !parts.iter().all(|p| ok(p)) {
            return Err(bad("expected os/arch[/variant]"));
        }
        Ok(Platform {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Platform {
        s.parse().unwrap()
    }

    #[test]
    fn scores() {
        assert_eq!(p("linux/amd64").match_score(&p("linux/amd64")), Some(2));
        assert_eq!(p("linux/amd64").match_score(&p("linux/arm64")), None);
        assert_eq!(
            p("linux/arm64/v8").match_score(&p("linux/arm64/v8")),
            Some(3)
        );
        assert_eq!(p("linux/arm64/v8").match_score(&p("linux/arm64")), Some(2));
        assert_eq!(p("linux/arm/v7").match_score(&p("linux/arm/v6")), Some(1));
        assert_eq!(p("linux/arm/v6").match_score(&p("linux/arm/v7")), None);
        assert_eq!(p("linux/amd64").match_score(&p("windows/amd64")), None);
    }

    #[test]
    fn parses() {
        assert_eq!(p("linux/arm/v7").variant.as_deref(), Some("v7"));
        assert!("linux".parse::<Platform>().is_err());
        assert!("linux/amd64/v2/x".parse::<Platform>().is_err());
        assert!("linux/../x".parse::<Platform>().is_err());
    }
}
