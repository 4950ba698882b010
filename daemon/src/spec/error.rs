//! The error type of spec generation. Every variant is the caller's fault (a bad
//! option, a user the image does not know, a malformed image config) except
//! [`SpecError::ReadImageFile`] and [`SpecError::Build`], so a front end maps the
//! rest to "invalid parameter" (HTTP 400) in one place via [`SpecError::is_invalid_input`].

use std::path::PathBuf;

/// Errors of OCI runtime-spec generation.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A user option (or an image setting) that cannot be used.
    #[error("invalid {option} {value:?}: {why}")]
    InvalidOption {
        /// The option, as the user knows it (`--memory`, `--cap-add`, `-v`, ...).
        option: String,
        /// The value given.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// A user name that is not in the image's `/etc/passwd`.
    #[error("unable to find user {user}: no matching entries in passwd file")]
    UserNotFound {
        /// The name asked for.
        user: String,
    },
    /// A group name that is not in the image's `/etc/group`.
    #[error("unable to find group {group}: no matching entries in group file")]
    GroupNotFound {
        /// The name asked for.
        group: String,
    },
    /// The image config JSON does not have the expected shape.
    #[error("invalid image config: {field}: {why}")]
    InvalidImageConfig {
        /// The field (`config.Env`, ...).
        field: String,
        /// What is wrong with it.
        why: String,
    },
    /// A file of the image (`/etc/passwd`, `/etc/group`) could not be read safely.
    #[error("reading {path} in the image: {why}")]
    ReadImageFile {
        /// The path inside the image.
        path: PathBuf,
        /// What failed.
        why: String,
    },
    /// An oci-spec builder refused a value (a bug in this module rather than bad input).
    #[error("building the runtime spec ({what}): {source}")]
    Build {
        /// The part being built.
        what: &'static str,
        /// The builder's error.
        source: oci_spec::OciSpecError,
    },
}

impl SpecError {
    /// Shorthand for [`SpecError::InvalidOption`].
    pub fn invalid(option: &str, value: impl Into<String>, why: impl Into<String>) -> Self {
        SpecError::InvalidOption {
            option: option.to_string(),
            value: value.into(),
            why: why.into(),
        }
    }

    /// True when the error is the caller's fault (bad option, unknown user or group,
    /// bad image config): front ends answer it as an invalid parameter (HTTP 400).
    pub fn is_invalid_input(&self) -> bool {
        !matches!(
            self,
            SpecError::ReadImageFile { .. } | SpecError::Build { .. }
        )
    }
}

/// Maps an oci-spec builder error into [`SpecError::Build`], naming the part.
pub(crate) fn build_err(what: &'static str) -> impl FnOnce(oci_spec::OciSpecError) -> SpecError {
    move |source| SpecError::Build { what, source }
}
