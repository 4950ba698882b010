//! The runtime part of an image config: the `config` object of the image config JSON
//! (`User`, `Env`, `Entrypoint`, `Cmd`, `WorkingDir`, `StopSignal`).
//!
//! Parsed leniently, like Docker (Go's `encoding/json`): a missing or `null` field is
//! empty, keys match case-insensitively, and `Entrypoint`/`Cmd` may be a single string
//! (Docker's `StrSlice`). A field of the wrong type is an error.

use serde_json::{Map, Value};

use super::error::SpecError;

/// The runtime part of an image config (`ExposedPorts`, `Volumes`, `Labels` and the
/// rest are ignored here).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageRuntimeConfig {
    /// `User`: `user[:group]`, names or numbers; `None` when empty.
    pub user: Option<String>,
    /// `Env`: `KEY=VALUE` entries in image order.
    pub env: Vec<String>,
    /// `Entrypoint`.
    pub entrypoint: Vec<String>,
    /// `Cmd`.
    pub cmd: Vec<String>,
    /// `WorkingDir`; `None` when empty.
    pub working_dir: Option<String>,
    /// `StopSignal` (`SIGQUIT`, `9`, ...); `None` when empty.
    pub stop_signal: Option<String>,
}

impl ImageRuntimeConfig {
    /// Reads the runtime part from a full image config JSON (the document whose
    /// `config` object holds `Env`, `Cmd`, ...). A missing or `null` `config` gives an
    /// empty config; a top level that is not an object, or a field of the wrong type,
    /// is [`SpecError::InvalidImageConfig`].
    pub fn from_image_config(full_config_json: &Value) -> Result<Self, SpecError> {
        let top = full_config_json
            .as_object()
            .ok_or_else(|| bad("(top level)", "not a JSON object"))?;
        let config = match get_ci(top, "config") {
            None | Some(Value::Null) => return Ok(Self::default()),
            Some(Value::Object(config)) => config,
            Some(_) => return Err(bad("config", "not a JSON object")),
        };
        Ok(Self {
            user: non_empty(string_field(config, "User")?),
            env: string_list(config, "Env", false)?,
            entrypoint: string_list(config, "Entrypoint", true)?,
            cmd: string_list(config, "Cmd", true)?,
            working_dir: non_empty(string_field(config, "WorkingDir")?),
            stop_signal: non_empty(string_field(config, "StopSignal")?),
        })
    }
}

fn bad(field: &str, why: &str) -> SpecError {
    let field = if field.starts_with('(') || field == "config" {
        field.to_string()
    } else {
        format!("config.{field}")
    };
    SpecError::InvalidImageConfig {
        field,
        why: why.to_string(),
    }
}

/// Looks a key up the way Go's `encoding/json` does: an exact match first, then a
/// case-insensitive one.
fn get_ci<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.is_empty())
}

fn string_field(config: &Map<String, Value>, key: &str) -> Result<Option<String>, SpecError> {
    match get_ci(config, key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(key, "not a string")),
    }
}

/// A list of strings; with `allow_single`, a lone string is a one-element list.
fn string_list(
    config: &Map<String, Value>,
    key: &str,
    allow_single: bool,
) -> Result<Vec<String>, SpecError> {
    match get_ci(config, key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) if allow_single => Ok(vec![s.clone()]),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                _ => Err(bad(key, "not a list of strings")),
            })
            .collect(),
        Some(_) => Err(bad(key, "not a list of strings")),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn reads_all_fields() {
        let cfg = ImageRuntimeConfig::from_image_config(&json!({
            "architecture": "amd64",
            "config": {
                "User": "nginx:nginx",
                "Env": ["PATH=/bin", "A=b=c"],
                "Entrypoint": ["/docker-entrypoint.sh"],
                "Cmd": ["nginx", "-g", "daemon off;"],
                "WorkingDir": "/srv",
                "StopSignal": "SIGQUIT",
                "ExposedPorts": {"80/tcp": {}}
            }
        }))
        .unwrap();
        assert_eq!(cfg.user.as_deref(), Some("nginx:nginx"));
        assert_eq!(cfg.env, vec!["PATH=/bin", "A=b=c"]);
        assert_eq!(cfg.entrypoint, vec!["/docker-entrypoint.sh"]);
        assert_eq!(cfg.cmd, vec!["nginx", "-g", "daemon off;"]);
        assert_eq!(cfg.working_dir.as_deref(), Some("/srv"));
        assert_eq!(cfg.stop_signal.as_deref(), Some("SIGQUIT"));
    }

    #[test]
    fn missing_and_null_fields_are_empty() {
        let empty = ImageRuntimeConfig::default();
        assert_eq!(
            ImageRuntimeConfig::from_image_config(&json!({})).unwrap(),
            empty
        );
        assert_eq!(
            ImageRuntimeConfig::from_image_config(&json!({"config": null})).unwrap(),
            empty
        );
        let cfg = ImageRuntimeConfig::from_image_config(&json!({"config": {
            "User": "", "Env": null, "Entrypoint": null, "Cmd": null, "WorkingDir": ""
        }}))
        .unwrap();
        assert_eq!(cfg, empty);
    }

    #[test]
    fn single_string_command_and_case_insensitive_keys() {
        let cfg = ImageRuntimeConfig::from_image_config(
            &json!({"Config": {"cmd": "/bin/sh", "entrypoint": "/init"}}),
        )
        .unwrap();
        assert_eq!(cfg.cmd, vec!["/bin/sh"]);
        assert_eq!(cfg.entrypoint, vec!["/init"]);
    }

    #[test]
    fn wrong_types_are_errors() {
        for bad_json in [
            json!([]),
            json!({"config": []}),
            json!({"config": {"Env": "A=b"}}),
            json!({"config": {"Cmd": [1]}}),
            json!({"config": {"User": 0}}),
        ] {
            let err = ImageRuntimeConfig::from_image_config(&bad_json).unwrap_err();
            assert!(
                matches!(err, SpecError::InvalidImageConfig { .. }),
                "{bad_json}: {err}"
            );
        }
    }
}
