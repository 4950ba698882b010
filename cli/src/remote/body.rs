//! `run`/`create` options as the Docker API's container-create body, the way the docker
//! CLI fills it in (bare `-e KEY` taken from our environment, bind sources made absolute,
//! `Attach*` and `StdinOnce` set for an attached run).

use bollard::models::ContainerCreateBody;
use serde_json::{json, Value};
use skiff_daemon::container::options::{CreateOptions, RestartPolicy};
use skiff_daemon::EngineError;

/// Which streams the client attaches to at `run`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Attached {
    /// Our stdin goes to the container.
    pub stdin: bool,
    /// We read its output.
    pub output: bool,
}

/// `-p` requests as HostConfig.PortBindings (`"80/tcp": [{HostIp, HostPort}]`).
fn port_bindings(opts: &CreateOptions) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for p in &opts.publish {
        let key = format!("{}/{}", p.container_port, p.proto.as_str());
        let binding = json!({
            "HostIp": p.host_ip.map(|ip| ip.to_string()).unwrap_or_default(),
            "HostPort": if p.host_port == 0 { String::new() } else { p.host_port.to_string() },
        });
        match out.get_mut(&key).and_then(Value::as_array_mut) {
            Some(list) => list.push(binding),
            None => {
                out.insert(key, json!([binding]));
            }
        }
    }
    out
}

fn restart_policy(r: &RestartPolicy) -> Value {
    match r {
        RestartPolicy::No => json!({"Name": "no"}),
        RestartPolicy::OnFailure { max_retries } => {
            json!({"Name": "on-failure", "MaximumRetryCount": max_retries})
        }
        RestartPolicy::Always => json!({"Name": "always"}),
        RestartPolicy::UnlessStopped => json!({"Name": "unless-stopped"}),
    }
}

/// Bare `KEY` entries take our value, or are dropped when we have none (as docker).
fn resolve_env(env: &[String]) -> Vec<String> {
    env.iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e.clone())
            } else {
                std::env::var(e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect()
}

/// Builds the create body for `opts`.
pub fn create_body(
    opts: &CreateOptions,
    attached: Attached,
) -> Result<ContainerCreateBody, EngineError> {
    // Anonymous volumes (`-v /path`, no source) travel as `Config.Volumes`, as docker
    // sends them; everything else as `HostConfig.Binds`.
    let anonymous: serde_json::Map<String, Value> = opts
        .volumes
        .iter()
        .filter(|v| v.source.is_empty())
        .map(|v| (v.destination.clone(), json!({})))
        .collect();
    let binds: Vec<String> = opts
        .volumes
        .iter()
        .filter(|v| !v.source.is_empty())
        .map(|v| {
            let named = !v.source.contains('/');
            let source = match (&opts.cwd, named || v.source.starts_with('/')) {
                (Some(cwd), false) => cwd.join(&v.source).display().to_string(),
                _ => v.source.clone(),
            };
            format!(
                "{source}:{}{}",
                v.destination,
                if v.readonly { ":ro" } else { "" }
            )
        })
        .collect();
    let tmpfs: serde_json::Map<String, Value> = opts
        .tmpfs
        .iter()
        .map(|t| (t.destination.clone(), Value::from(t.options.join(","))))
        .collect();
    let r = &opts.resources;
    let mut host = json!({
        "Binds": binds,
        "Tmpfs": tmpfs,
        "ReadonlyRootfs": opts.read_only,
        "CapAdd": opts.cap_add,
        "CapDrop": opts.cap_drop,
        "Privileged": opts.privileged,
        "NetworkMode": opts.network.docker_name(),
        "PortBindings": port_bindings(opts),
        "PublishAllPorts": opts.publish_all,
        "RestartPolicy": restart_policy(&opts.restart),
        "AutoRemove": opts.auto_remove,
        "Init": opts.init,
    });
    let mut set = |k: &str, v: Value| {
        host[k] = v;
    };
    if let Some(m) = r.memory {
        set("Memory", json!(m));
    }
    if let Some(m) = r.memory_swap {
        set("MemorySwap", json!(m));
    }
    if let Some(c) = r.nano_cpus {
        set("NanoCpus", json!(c));
    }
    if let Some(c) = r.cpu_shares {
        set("CpuShares", json!(c));
    }
    if let Some(c) = &r.cpuset_cpus {
        set("CpusetCpus", json!(c));
    }
    if let Some(p) = r.pids_limit {
        set("PidsLimit", json!(p));
    }
    let mut security = Vec::new();
    if opts.no_new_privileges {
        security.push("no-new-privileges");
    }
    if opts.seccomp_unconfined {
        security.push("seccomp=unconfined");
    }
    if !security.is_empty() {
        set("SecurityOpt", json!(security));
    }
    if let Some(rt) = &opts.runtime {
        set("Runtime", json!(rt));
    }
    if let Some((cols, rows)) = opts.console_size {
        set("ConsoleSize", json!([rows, cols]));
    }
    let mut body = json!({
        "Image": opts.image,
        "Env": resolve_env(&opts.env),
        "Tty": opts.tty,
        "OpenStdin": opts.stdin_open,
        "StdinOnce": opts.stdin_once,
        "AttachStdin": attached.stdin,
        "AttachStdout": attached.output,
        "AttachStderr": attached.output,
        "Labels": opts.labels,
        "HostConfig": host,
    });
    if !opts.cmd.is_empty() {
        body["Cmd"] = json!(opts.cmd);
    }
    if !anonymous.is_empty() {
        body["Volumes"] = Value::Object(anonymous);
    }
    if !opts.network_aliases.is_empty() {
        body["NetworkingConfig"] = json!({"EndpointsConfig": {
            opts.network.docker_name(): {"Aliases": opts.network_aliases}
        }});
    }
    if let Some(e) = &opts.entrypoint {
        // An empty entrypoint clears the image's: docker sends [""].
        body["Entrypoint"] = if e.is_empty() { json!([""]) } else { json!(e) };
    }
    for (key, value) in [
        ("WorkingDir", &opts.working_dir),
        ("User", &opts.user),
        ("Hostname", &opts.hostname),
        ("StopSignal", &opts.stop_signal),
    ] {
        if let Some(v) = value {
            body[key] = json!(v);
        }
    }
    serde_json::from_value(body)
        .map_err(|e| EngineError::Internal(format!("building the create request: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use skiff_daemon::container::options::{Resources, VolumeMount};

    #[test]
    fn options_become_the_docker_body() {
        let opts = CreateOptions {
            image: "alpine".into(),
            cmd: vec!["echo".into(), "hi".into()],
            env: vec!["A=1".into(), "SKIFF_SURELY_UNSET_VAR".into()],
            volumes: vec![
                VolumeMount {
                    source: "rel/dir".into(),
                    destination: "/d".into(),
                    readonly: true,
                },
                VolumeMount {
                    source: String::new(),
                    destination: "/anon".into(),
                    readonly: false,
                },
            ],
            resources: Resources {
                memory: Some(64 << 20),
                ..Default::default()
            },
            restart: RestartPolicy::OnFailure { max_retries: 3 },
            entrypoint: Some(vec![]),
            console_size: Some((100, 40)),
            cwd: Some("/work".into()),
            ..Default::default()
        };
        let b = create_body(&opts, Attached::default()).unwrap();
        let v = serde_json::to_value(&b).unwrap();
        assert_eq!(v["Env"], json!(["A=1"]));
        assert_eq!(v["Cmd"], json!(["echo", "hi"]));
        assert_eq!(v["Entrypoint"], json!([""]));
        assert_eq!(v["HostConfig"]["Binds"], json!(["/work/rel/dir:/d:ro"]));
        assert_eq!(v["Volumes"], json!({"/anon": {}}));
        assert_eq!(v["HostConfig"]["Memory"], json!(64 << 20));
        assert_eq!(
            v["HostConfig"]["RestartPolicy"]["Name"],
            json!("on-failure")
        );
        assert_eq!(v["HostConfig"]["ConsoleSize"], json!([40, 100]));
    }
}
