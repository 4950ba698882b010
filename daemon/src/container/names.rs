//! Container names: Docker's rules for user-given names, and generated ones
//! (`adjective_surname`) when none is given.

use crate::error::{EngineError, Result};

const ADJECTIVES: &[&str] = &[
    "agile", "bold", "brave", "calm", "clever", "crisp", "eager", "fair", "fleet", "gentle",
    "happy", "keen", "light", "lucid", "merry", "nimble", "quick", "quiet", "serene", "sharp",
    "steady", "swift", "tidy", "vivid",
];
const NOUNS: &[&str] = &[
    "albatross",
    "barque",
    "brig",
    "canoe",
    "clipper",
    "coracle",
    "cutter",
    "dinghy",
    "dory",
    "felucca",
    "galleon",
    "junk",
    "kayak",
    "ketch",
    "launch",
    "punt",
    "raft",
    "schooner",
    "sloop",
    "tender",
    "trawler",
    "wherry",
    "yawl",
    "yacht",
];

/// Checks a user-given name against Docker's rule `[a-zA-Z0-9][a-zA-Z0-9_.-]+`.
pub fn validate(name: &str) -> Result<()> {
    let b = name.as_bytes();
    let ok = b.len() >= 2
        && b.len() <= 253
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(EngineError::InvalidInput(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

/// A generated name; `seed` varies it (the caller retries on collisions).
pub fn generate(seed: &[u8], attempt: usize) -> String {
    let a = seed.first().copied().unwrap_or(0) as usize;
    let n = seed.get(1).copied().unwrap_or(0) as usize;
    let base = format!(
        "{}_{}",
        ADJECTIVES[a % ADJECTIVES.len()],
        NOUNS[n % NOUNS.len()]
    );
    if attempt == 0 {
        base
    } else {
        format!("{base}{attempt}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_like_docker() {
        assert!(validate("web-1").is_ok());
        assert!(validate("a.b_c").is_ok());
        for bad in ["", "a", "-x", "_x", "a b", "a/b"] {
            assert!(validate(bad).is_err(), "{bad}");
        }
        assert_eq!(generate(&[0, 0], 0), "agile_albatross");
        assert_eq!(generate(&[0, 0], 2), "agile_albatross2");
    }
}
