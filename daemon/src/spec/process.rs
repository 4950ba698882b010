//! The container's first process: its arguments (entrypoint + command), environment
//! and working directory, merged from the image config and the user's options with
//! Docker's rules.

use super::defaults::DEFAULT_PATH;
use super::error::SpecError;
use super::image_config::ImageRuntimeConfig;
use super::mounts::INIT_PATH_IN_CONTAINER;
use crate::container::options::CreateOptions;

/// The process arguments: the entrypoint (`--entrypoint` replaces the image's, an empty
/// one clears it) followed by the command (the user's when given, else the image's
/// `Cmd` unless `--entrypoint` was given). With `--init`, prefixed by
/// `/sbin/skiff-init --`. An empty result is an error.
pub fn process_args(
    options: &CreateOptions,
    image: &ImageRuntimeConfig,
) -> Result<Vec<String>, SpecError> {
    let (entrypoint, image_cmd): (&[String], &[String]) = match &options.entrypoint {
        Some(entrypoint) => (entrypoint, &[]),
        None => (&image.entrypoint, &image.cmd),
    };
    let cmd = if options.cmd.is_empty() {
        image_cmd
    } else {
        &options.cmd[..]
    };
    let args: Vec<String> = entrypoint.iter().chain(cmd).cloned().collect();
    if args.is_empty() {
        return Err(SpecError::invalid(
            "command",
            "",
            "no command specified: the image has no Entrypoint or Cmd and none was given",
        ));
    }
    if let Some(bad) = args.iter().find(|a| a.contains('\0')) {
        return Err(SpecError::invalid("command", bad, "contains a NUL byte"));
    }
    if options.init {
        let mut with_init = vec![INIT_PATH_IN_CONTAINER.to_string(), "--".to_string()];
        with_init.extend(args);
        return Ok(with_init);
    }
    Ok(args)
}

/// The environment: `PATH` (default when nobody sets one), `HOSTNAME`, `TERM=xterm`
/// with a TTY, then the image's `Env`, then the user's `-e` (a later entry replaces an
/// earlier one with the same key, in place), then `HOME` from the user's passwd entry
/// when nobody set it. A bare `-e KEY` takes `host_env(KEY)` or is dropped.
pub fn process_env(
    options: &CreateOptions,
    image: &ImageRuntimeConfig,
    hostname: &str,
    home: &str,
    host_env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, SpecError> {
    let mut env = EnvList::default();
    env.set(format!("PATH={DEFAULT_PATH}"));
    env.set(format!("HOSTNAME={hostname}"));
    if options.tty {
        env.set("TERM=xterm".to_string());
    }
    for entry in &image.env {
        // Image entries without '=' carry no value: ignore them.
        if entry.contains('=') {
            check_env("image Env", entry)?;
            env.set(entry.clone());
        }
    }
    for entry in &options.env {
        check_env("-e", entry)?;
        if entry.contains('=') {
            env.set(entry.clone());
        } else if let Some(value) = host_env(entry) {
            env.set(format!("{entry}={value}"));
        }
    }
    if !env.has("HOME") {
        env.set(format!("HOME={home}"));
    }
    Ok(env.0)
}

fn check_env(option: &str, entry: &str) -> Result<(), SpecError> {
    let key = entry.split('=').next().unwrap_or("");
    if key.is_empty() {
        return Err(SpecError::invalid(option, entry, "empty variable name"));
    }
    if entry.contains('\0') {
        return Err(SpecError::invalid(option, entry, "contains a NUL byte"));
    }
    Ok(())
}

/// `KEY=VALUE` entries, unique by key, in first-set order.
#[derive(Default)]
struct EnvList(Vec<String>);

impl EnvList {
    fn key(entry: &str) -> &str {
        entry.split('=').next().unwrap_or(entry)
    }

    fn set(&mut self, entry: String) {
        let key = Self::key(&entry).to_string();
        match self.0.iter_mut().find(|e| Self::key(e) == key) {
            Some(existing) => *existing = entry,
            None => self.0.push(entry),
        }
    }

    fn has(&self, key: &str) -> bool {
        self.0.iter().any(|e| Self::key(e) == key)
    }
}

/// The working directory: `-w`, else the image's `WorkingDir`, else `/`; it must be
/// absolute. Cleaned lexically.
pub fn process_cwd(
    options: &CreateOptions,
    image: &ImageRuntimeConfig,
) -> Result<String, SpecError> {
    let (option, dir) = match (&options.working_dir, &image.working_dir) {
        (Some(dir), _) if !dir.is_empty() => ("-w", dir.as_str()),
        (_, Some(dir)) if !dir.is_empty() => ("image WorkingDir", dir.as_str()),
        _ => return Ok("/".to_string()),
    };
    if !dir.starts_with('/') {
        return Err(SpecError::invalid(
            option,
            dir,
            "the working directory must be an absolute path",
        ));
    }
    if dir.contains('\0') {
        return Err(SpecError::invalid(option, dir, "contains a NUL byte"));
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in dir.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    fn image(entrypoint: &[&str], cmd: &[&str]) -> ImageRuntimeConfig {
        ImageRuntimeConfig {
            entrypoint: s(entrypoint),
            cmd: s(cmd),
            ..Default::default()
        }
    }

    fn opts(entrypoint: Option<&[&str]>, cmd: &[&str]) -> CreateOptions {
        CreateOptions {
            entrypoint: entrypoint.map(s),
            cmd: s(cmd),
            ..Default::default()
        }
    }

    #[test]
    fn args_combinations() {
        let img = image(&["/entry.sh"], &["serve", "--port", "80"]);
        // Image entrypoint + image cmd.
        assert_eq!(
            process_args(&opts(None, &[]), &img).unwrap(),
            s(&["/entry.sh", "serve", "--port", "80"])
        );
        // User cmd replaces image cmd, keeps entrypoint.
        assert_eq!(
            process_args(&opts(None, &["sh"]), &img).unwrap(),
            s(&["/entry.sh", "sh"])
        );
        // User entrypoint: the image cmd is dropped.
        assert_eq!(
            process_args(&opts(Some(&["/bin/ls"]), &[]), &img).unwrap(),
            s(&["/bin/ls"])
        );
        assert_eq!(
            process_args(&opts(Some(&["/bin/ls"]), &["-l"]), &img).unwrap(),
            s(&["/bin/ls", "-l"])
        );
        // Empty entrypoint clears the image's; the image cmd is dropped too.
        assert_eq!(
            process_args(&opts(Some(&[]), &["echo", "hi"]), &img).unwrap(),
            s(&["echo", "hi"])
        );
        let err = process_args(&opts(Some(&[]), &[]), &img).unwrap_err();
        assert!(err.to_string().contains("no command specified"), "{err}");
        // Image without entrypoint.
        assert_eq!(
            process_args(&opts(None, &[]), &image(&[], &["/bin/sh"])).unwrap(),
            s(&["/bin/sh"])
        );
        assert!(process_args(&opts(None, &[]), &image(&[], &[])).is_err());
    }

    #[test]
    fn args_with_init() {
        let mut o = opts(None, &["sleep", "1"]);
        o.init = true;
        assert_eq!(
            process_args(&o, &image(&[], &[])).unwrap(),
            s(&["/sbin/skiff-init", "--", "sleep", "1"])
        );
    }

    #[test]
    fn env_merge() {
        let img = ImageRuntimeConfig {
            env: s(&["PATH=/opt/bin:/bin", "LANG=C", "A=image", "NOVALUE"]),
            ..Default::default()
        };
        let o = CreateOptions {
            env: s(&[
                "A=user",
                "B=x=y",
                "FROM_HOST",
                "UNSET_ON_HOST",
                "LANG=C.UTF-8",
            ]),
            tty: true,
            ..Default::default()
        };
        let host = |k: &str| (k == "FROM_HOST").then(|| "host value".to_string());
        let env = process_env(&o, &img, "abc123", "/root", &host).unwrap();
        assert_eq!(
            env,
            s(&[
                "PATH=/opt/bin:/bin",
                "HOSTNAME=abc123",
                "TERM=xterm",
                "LANG=C.UTF-8",
                "A=user",
                "B=x=y",
                "FROM_HOST=host value",
                "HOME=/root",
            ])
        );
    }

    #[test]
    fn env_defaults() {
        let none = |_: &str| None;
        let env = process_env(
            &CreateOptions::default(),
            &ImageRuntimeConfig::default(),
            "h",
            "/",
            &none,
        )
        .unwrap();
        assert_eq!(
            env,
            s(&[&format!("PATH={DEFAULT_PATH}"), "HOSTNAME=h", "HOME=/"])
        );
        // The user may override HOSTNAME, TERM and HOME.
        let o = CreateOptions {
            env: s(&["HOSTNAME=mine", "HOME=/srv", "TERM=dumb"]),
            tty: true,
            ..Default::default()
        };
        let env = process_env(&o, &ImageRuntimeConfig::default(), "h", "/root", &none).unwrap();
        assert!(env.contains(&"HOSTNAME=mine".to_string()));
        assert!(env.contains(&"HOME=/srv".to_string()));
        assert!(env.contains(&"TERM=dumb".to_string()));
        assert!(!env.contains(&"HOME=/root".to_string()));
    }

    #[test]
    fn env_errors() {
        let none = |_: &str| None;
        for bad in ["=value", "", "A=\0"] {
            let o = CreateOptions {
                env: s(&[bad]),
                ..Default::default()
            };
            let err = process_env(&o, &ImageRuntimeConfig::default(), "h", "/", &none).unwrap_err();
            assert!(
                matches!(&err, SpecError::InvalidOption { option, .. } if option == "-e"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn cwd() {
        let img = ImageRuntimeConfig {
            working_dir: Some("/app".into()),
            ..Default::default()
        };
        assert_eq!(
            process_cwd(&CreateOptions::default(), &img).unwrap(),
            "/app"
        );
        assert_eq!(
            process_cwd(&CreateOptions::default(), &ImageRuntimeConfig::default()).unwrap(),
            "/"
        );
        let o = CreateOptions {
            working_dir: Some("/srv/./x/../y/".into()),
            ..Default::default()
        };
        assert_eq!(process_cwd(&o, &img).unwrap(), "/srv/y");
        let o = CreateOptions {
            working_dir: Some("relative".into()),
            ..Default::default()
        };
        let err = process_cwd(&o, &img).unwrap_err();
        assert!(matches!(&err, SpecError::InvalidOption { option, .. } if option == "-w"));
        let img = ImageRuntimeConfig {
            working_dir: Some("app".into()),
            ..Default::default()
        };
        assert!(process_cwd(&CreateOptions::default(), &img).is_err());
    }
}
