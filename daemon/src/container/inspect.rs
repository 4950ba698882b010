//! `inspect`: a container as Docker's ContainerInspect shows it.

use serde_json::{json, Value};

use super::options::{NetworkMode, RestartPolicy};
use super::record::{ContainerRecord, Status};
use crate::engine::Engine;
use crate::error::Result;

fn network_mode(n: &NetworkMode) -> String {
    n.docker_name()
}

fn restart_policy(r: &RestartPolicy) -> Value {
    match r {
        RestartPolicy::No => json!({"Name": "no", "MaximumRetryCount": 0}),
        RestartPolicy::OnFailure { max_retries } => {
            json!({"Name": "on-failure", "MaximumRetryCount": max_retries})
        }
        RestartPolicy::Always => json!({"Name": "always", "MaximumRetryCount": 0}),
        RestartPolicy::UnlessStopped => json!({"Name": "unless-stopped", "MaximumRetryCount": 0}),
    }
}

impl Engine {
    /// Docker-shaped details of a container.
    pub fn inspect_container(&self, name: &str) -> Result<Value> {
        let c = self.container(name)?;
        Ok(self.inspect_json(&c))
    }

    fn inspect_json(&self, c: &ContainerRecord) -> Value {
        let dir = self.container_dir(&c.id);
        let spec: Value = std::fs::read(dir.join("config.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let o = &c.options;
        let s = &c.state;
        let binds: Vec<String> = o
            .volumes
            .iter()
            .map(|v| {
                format!(
                    "{}:{}{}",
                    v.source,
                    v.destination,
                    if v.readonly { ":ro" } else { "" }
                )
            })
            .collect();
        let mounts: Vec<Value> = o
            .volumes
            .iter()
            .map(|v| {
                let named = !v.source.contains('/');
                json!({
                    "Type": if named { "volume" } else { "bind" },
                    "Name": if named { v.source.clone() } else { String::new() },
                    "Source": if named {
                        self.config().data_root.join("volumes").join(&v.source).join("_data").display().to_string()
                    } else { v.source.clone() },
                    "Destination": v.destination,
                    "RW": !v.readonly,
                })
            })
            .collect();
        json!({
            "Id": c.id,
            "Created": c.created,
            "Path": c.command.first().cloned().unwrap_or_default(),
            "Args": c.command.iter().skip(1).collect::<Vec<_>>(),
            "State": {
                "Status": s.status.as_str(),
                "Running": matches!(s.status, Status::Running | Status::Paused),
                "Paused": s.status == Status::Paused,
                "Restarting": s.status == Status::Restarting,
                "OOMKilled": s.oom_killed,
                "Dead": s.status == Status::Dead,
                "Pid": s.pid,
                "ExitCode": s.exit_code,
                "Error": s.error,
                "StartedAt": if s.started_at.is_empty() { "0001-01-01T00:00:00Z" } else { &s.started_at },
                "FinishedAt": if s.finished_at.is_empty() { "0001-01-01T00:00:00Z" } else { &s.finished_at },
            },
            "Image": c.image_id,
            "ResolvConfPath": dir.join("resolv.conf"),
            "HostnamePath": dir.join("hostname"),
            "HostsPath": dir.join("hosts"),
            "LogPath": c.log_path,
            "Name": format!("/{}", c.name),
            "RestartCount": s.restart_count,
            "Driver": self.images().snapshotter().name(),
            "Platform": "linux",
            "HostConfig": {
                "Binds": binds,
                "NetworkMode": network_mode(&o.network),
                "PortBindings": crate::container::network_json::port_bindings_json(&o.publish),
                "PublishAllPorts": o.publish_all,
                "RestartPolicy": restart_policy(&o.restart),
                "AutoRemove": o.auto_remove,
                "Runtime": c.runtime,
                "Memory": o.resources.memory.unwrap_or(0),
                "MemorySwap": o.resources.memory_swap.unwrap_or(0),
                "NanoCpus": o.resources.nano_cpus.unwrap_or(0),
                "CpuShares": o.resources.cpu_shares.unwrap_or(0),
                "CpusetCpus": o.resources.cpuset_cpus.clone().unwrap_or_default(),
                "PidsLimit": o.resources.pids_limit,
                "Privileged": o.privileged,
                "SecurityOpt": security_opt(o),
                "ReadonlyRootfs": o.read_only,
                "CapAdd": o.cap_add,
                "CapDrop": o.cap_drop,
                "Init": o.init,
                "LogConfig": {"Type": "json-file", "Config": {}},
            },
            "GraphDriver": {
                "Name": self.images().snapshotter().name(),
                "Data": {"UpperDir": dir.join("rw/upper"), "WorkDir": dir.join("rw/work"), "MergedDir": c.bundle.join("rootfs")},
            },
            "Mounts": mounts,
            "Config": {
                "Hostname": spec["hostname"],
                "User": o.user.clone().unwrap_or_default(),
                "Tty": o.tty,
                "OpenStdin": o.stdin_open,
                "Env": spec["process"]["env"],
                "Cmd": if o.cmd.is_empty() { Value::Null } else { json!(o.cmd) },
                "Entrypoint": o.entrypoint.clone().map(|e| json!(e)).unwrap_or(Value::Null),
                "Image": c.image_name,
                "WorkingDir": spec["process"]["cwd"],
                "Labels": o.labels,
                "StopSignal": o.stop_signal.clone().unwrap_or_else(|| "SIGTERM".into()),
            },
            "NetworkSettings": self.network_settings_json(c),
        })
    }
}

/// `HostConfig.SecurityOpt` as Docker shows it: the options the user gave.
fn security_opt(o: &super::options::CreateOptions) -> Option<Vec<&'static str>> {
    let mut v = Vec::new();
    if o.no_new_privileges {
        v.push("no-new-privileges");
    }
    if o.seccomp_unconfined {
        v.push("seccomp=unconfined");
    }
    (!v.is_empty()).then_some(v)
}
