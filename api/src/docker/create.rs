//! Docker's container config (`POST /containers/create` body: ContainerConfig with
//! HostConfig) into the engine's [`CreateOptions`]. Options skiff cannot honour are
//! refused with a clear message rather than dropped, except a few harmless ones that
//! come back as warnings.

use bollard_stubs::models::{ContainerCreateBody, HostConfig, MountType, RestartPolicyNameEnum};
use skiff_daemon::container::options::{
    CreateOptions, NetworkMode, Resources, RestartPolicy, SecurityOpts, TmpfsMount, VolumeMount,
};
use skiff_daemon::network::{ports, PortSpec};

use super::ApiError;

/// The engine's options for a create request, and warnings for the client.
pub fn create_options(
    name: Option<&str>,
    body: ContainerCreateBody,
) -> Result<(CreateOptions, Vec<String>), ApiError> {
    let mut warnings = Vec::new();
    let host = body.host_config.clone().unwrap_or_default();
    let security = security_opts(&host)?;
    let image = body
        .image
        .clone()
        .filter(|i| !i.is_empty())
        .ok_or_else(|| ApiError::bad_request("no image specified (Config.Image is empty)"))?;
    let restart = restart_policy(&host)?;
    let auto_remove = host.auto_remove.unwrap_or(false);
    if auto_remove && restart != RestartPolicy::No {
        return Err(ApiError::bad_request(
            "conflicting options: cannot specify both --restart and --rm",
        ));
    }
    refuse_unsupported(&host)?;
    ignored_warnings(&body, &host, &mut warnings);
    let mut volumes = Vec::new();
    for b in host.binds.iter().flatten() {
        volumes.push(parse_bind(b)?);
    }
    let mut tmpfs: Vec<TmpfsMount> = host
        .tmpfs
        .iter()
        .flatten()
        .map(|(dst, opts)| TmpfsMount {
            destination: dst.clone(),
            options: opts
                .split(',')
                .filter(|o| !o.is_empty())
                .map(str::to_string)
                .collect(),
        })
        .collect();
    tmpfs.sort_by(|a, b| a.destination.cmp(&b.destination));
    for m in host.mounts.iter().flatten() {
        mount(m, &mut volumes, &mut tmpfs)?;
    }
    // `Config.Volumes` (what `docker run -v /path` sends): an anonymous volume for each
    // path no bind or named volume covers.
    let mut anonymous: Vec<&String> = body.volumes.iter().flatten().collect();
    anonymous.sort();
    for dst in anonymous {
        if !dst.starts_with('/') {
            return Err(ApiError::bad_request(format!(
                "invalid volume specification: {dst:?} is not an absolute path"
            )));
        }
        if !volumes.iter().any(|v: &VolumeMount| v.destination == *dst) {
            volumes.push(VolumeMount {
                source: String::new(),
                destination: dst.clone(),
                readonly: false,
            });
        }
    }
    let entrypoint = body.entrypoint.clone().map(|e| {
        if e.len() == 1 && e[0].is_empty() {
            Vec::new()
        } else {
            e
        }
    });
    let non_empty = |s: &Option<String>| s.clone().filter(|v| !v.is_empty());
    let opts = CreateOptions {
        name: name
            .filter(|n| !n.is_empty())
            .map(|n| n.trim_start_matches('/').to_string()),
        image,
        entrypoint,
        cmd: body.cmd.clone().unwrap_or_default(),
        env: body.env.clone().unwrap_or_default(),
        working_dir: non_empty(&body.working_dir),
        user: non_empty(&body.user),
        hostname: non_empty(&body.hostname),
        stdin_open: body.open_stdin.unwrap_or(false),
        stdin_once: body.stdin_once.unwrap_or(false),
        tty: body.tty.unwrap_or(false),
        // Docker sends [height, width].
        console_size: match host.console_size.as_deref() {
            Some(&[rows, cols]) if rows > 0 && cols > 0 => {
                u32::try_from(cols).ok().zip(u32::try_from(rows).ok())
            }
            _ => None,
        },
        volumes,
        tmpfs,
        read_only: host.readonly_rootfs.unwrap_or(false),
        resources: resources(&host),
        cap_add: host.cap_add.clone().unwrap_or_default(),
        cap_drop: host.cap_drop.clone().unwrap_or_default(),
        privileged: host.privileged.unwrap_or(false),
        no_new_privileges: security.no_new_privileges,
        seccomp_unconfined: security.seccomp_unconfined,
        network: network_mode(host.network_mode.as_deref())?,
        publish: port_bindings(&host, &body)?,
        publish_all: host.publish_all_ports.unwrap_or(false),
        network_aliases: network_aliases(&body, host.network_mode.as_deref())?,
        restart,
        auto_remove,
        init: host.init.unwrap_or(false),
        labels: body
            .labels
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect(),
        runtime: non_empty(&host.runtime),
        stop_signal: non_empty(&body.stop_signal),
        cwd: None,
    };
    Ok((opts, warnings))
}

/// Docker's NetworkMode: `bridge` (also `default` or empty, what `docker run` sends),
/// `none`, `host`, `container:NAME`, or a user-defined network's name.
fn network_mode(mode: Option<&str>) -> Result<NetworkMode, ApiError> {
    let mode = mode.unwrap_or("");
    if mode == "container:" {
        return Err(ApiError::bad_request(
            "--network container: needs a container name or ID",
        ));
    }
    Ok(NetworkMode::parse(mode))
}

/// HostConfig.PortBindings (`-p`) as the engine's port requests; with
/// PublishAllPorts (`-P`), `--expose`d ports too (the image's are added by the engine).
fn port_bindings(host: &HostConfig, body: &ContainerCreateBody) -> Result<Vec<PortSpec>, ApiError> {
    let mut out = Vec::new();
    if host.publish_all_ports.unwrap_or(false) {
        for p in body.exposed_ports.iter().flatten() {
            // A port with its own binding (-p) is published by that binding only.
            if host
                .port_bindings
                .as_ref()
                .is_some_and(|b| b.contains_key(p))
            {
                continue;
            }
            let (container_port, proto) =
                ports::parse_container_port(p).map_err(|e| ApiError::bad_request(e.to_string()))?;
            out.push(PortSpec {
                host_ip: None,
                host_port: 0,
                container_port,
                proto,
            });
        }
    }
    let mut keys: Vec<_> = host.port_bindings.iter().flatten().collect();
    keys.sort_by(|a, b| a.0.cmp(b.0));
    for (container, bindings) in keys {
        let (container_port, proto) = ports::parse_container_port(container)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let bindings = bindings.clone().unwrap_or_default();
        let list = if bindings.is_empty() {
            vec![Default::default()]
        } else {
            bindings
        };
        for b in list {
            let b: bollard_stubs::models::PortBinding = b;
            let ip = b.host_ip.unwrap_or_default();
            let port = b.host_port.unwrap_or_default();
            let spec = format!("{ip}:{port}:{container_port}/{}", proto.as_str());
            let spec = if ip.is_empty() {
                format!("{port}:{container_port}/{}", proto.as_str())
            } else {
                spec
            };
            let spec = spec.trim_start_matches(':').to_string();
            out.push(
                ports::parse_publish(&spec).map_err(|e| ApiError::bad_request(e.to_string()))?,
            );
        }
    }
    Ok(out)
}

/// Aliases of the endpoint for the container's own network (NetworkingConfig); static
/// addresses and endpoints on other networks are refused.
fn network_aliases(
    body: &ContainerCreateBody,
    mode: Option<&str>,
) -> Result<Vec<String>, ApiError> {
    let Some(eps) = body
        .networking_config
        .as_ref()
        .and_then(|n| n.endpoints_config.as_ref())
    else {
        return Ok(Vec::new());
    };
    // The CLI names the default network `default` or `bridge`.
    let canonical = |m: &str| match m {
        "" | "default" => "bridge".to_string(),
        m => m.to_string(),
    };
    let mode = canonical(mode.unwrap_or(""));
    let mut aliases = Vec::new();
    for (name, ep) in eps {
        if canonical(name) != mode {
            return Err(ApiError::bad_request(format!(
                "skiff connects a new container to one network ({mode}); use `network connect` for {name}"
            )));
        }
        let ipam = ep.ipam_config.as_ref();
        if ipam.is_some_and(|i| {
            i.ipv4_address.as_deref().is_some_and(|a| !a.is_empty())
                || i.ipv6_address.as_deref().is_some_and(|a| !a.is_empty())
        }) {
            return Err(ApiError::bad_request(
                "static addresses (--ip) are not supported by skiff",
            ));
        }
        aliases.extend(ep.aliases.clone().unwrap_or_default());
    }
    Ok(aliases)
}

fn restart_policy(host: &HostConfig) -> Result<RestartPolicy, ApiError> {
    let Some(p) = &host.restart_policy else {
        return Ok(RestartPolicy::No);
    };
    let retries = p.maximum_retry_count.unwrap_or(0);
    Ok(match p.name {
        None | Some(RestartPolicyNameEnum::EMPTY) | Some(RestartPolicyNameEnum::NO) => {
            RestartPolicy::No
        }
        Some(RestartPolicyNameEnum::ALWAYS) => RestartPolicy::Always,
        Some(RestartPolicyNameEnum::UNLESS_STOPPED) => RestartPolicy::UnlessStopped,
        Some(RestartPolicyNameEnum::ON_FAILURE) => RestartPolicy::OnFailure {
            max_retries: u32::try_from(retries).map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid restart policy: maximum retry count cannot be negative: {retries}"
                ))
            })?,
        },
    })
}

fn security_opts(host: &HostConfig) -> Result<SecurityOpts, ApiError> {
    SecurityOpts::parse(host.security_opt.as_deref().unwrap_or_default())
        .map_err(ApiError::bad_request)
}

fn resources(host: &HostConfig) -> Resources {
    let positive = |v: Option<i64>| v.filter(|n| *n > 0);
    let nano_cpus = positive(host.nano_cpus).or_else(|| {
        // `--cpu-quota`/`--cpu-period` say the same as `--cpus`.
        let quota = positive(host.cpu_quota)?;
        let period = positive(host.cpu_period).unwrap_or(100_000);
        Some(quota.saturating_mul(1_000_000_000) / period)
    });
    Resources {
        memory: positive(host.memory),
        memory_swap: host.memory_swap.filter(|n| *n != 0),
        nano_cpus,
        cpu_shares: positive(host.cpu_shares).map(|n| n as u64),
        cpuset_cpus: host.cpuset_cpus.clone().filter(|s| !s.is_empty()),
        pids_limit: host.pids_limit.filter(|n| *n != 0),
    }
}

/// Options that change what a container is and that skiff cannot do yet.
fn refuse_unsupported(host: &HostConfig) -> Result<(), ApiError> {
    if host.devices.as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(ApiError::bad_request(
            "--device is not available yet in skiff",
        ));
    }
    if host.volumes_from.as_ref().is_some_and(|v| !v.is_empty()) {
        return Err(ApiError::bad_request(
            "--volumes-from is not available yet in skiff",
        ));
    }
    if let Some(log) = &host.log_config {
        match log.typ.as_deref() {
            None | Some("") | Some("json-file") => {}
            Some(other) => {
                return Err(ApiError::bad_request(format!(
                    "logging driver {other:?} is not available in skiff (json-file only)"
                )))
            }
        }
    }
    for (what, mode) in [
        ("--pid", &host.pid_mode),
        ("--ipc", &host.ipc_mode),
        ("--uts", &host.uts_mode),
        ("--userns", &host.userns_mode),
    ] {
        if let Some(m) = mode.as_deref().filter(|m| !m.is_empty() && *m != "private") {
            return Err(ApiError::bad_request(format!(
                "{what}={m} is not available yet in skiff"
            )));
        }
    }
    Ok(())
}

/// Options accepted and not (yet) applied: the client shows these as warnings.
fn ignored_warnings(body: &ContainerCreateBody, host: &HostConfig, out: &mut Vec<String>) {
    let set = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
    let mut ignored = Vec::new();
    if set(&host.dns) || set(&host.dns_search) || set(&host.dns_options) {
        ignored.push("--dns");
    }
    if set(&host.extra_hosts) {
        ignored.push("--add-host");
    }
    if host.ulimits.as_ref().is_some_and(|u| !u.is_empty()) {
        ignored.push("--ulimit");
    }
    if host.sysctls.as_ref().is_some_and(|s| !s.is_empty()) {
        ignored.push("--sysctl");
    }
    if body.healthcheck.is_some() {
        ignored.push("--health-cmd");
    }
    if body.stop_timeout.is_some() {
        ignored.push("--stop-timeout");
    }
    if host.shm_size.is_some_and(|s| s > 0) {
        ignored.push("--shm-size");
    }
    for i in ignored {
        out.push(format!("skiff ignores {i} for now"));
    }
}

/// `SRC:DST[:OPTS]` of HostConfig.Binds: an absolute host path, or a volume name.
pub fn parse_bind(b: &str) -> Result<VolumeMount, ApiError> {
    let invalid = || ApiError::bad_request(format!("invalid volume specification: '{b}'"));
    let parts: Vec<&str> = b.split(':').collect();
    let (source, destination, opts) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => return Err(invalid()),
    };
    if source.is_empty() || !destination.starts_with('/') {
        return Err(invalid());
    }
    if source.contains('/') && !source.starts_with('/') {
        return Err(ApiError::bad_request(format!(
            "invalid mount config: mount path must be absolute: '{source}'"
        )));
    }
    let mut readonly = false;
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => readonly = true,
            "rw" => readonly = false,
            // SELinux relabelling and propagation modes: nothing to do here.
            "z" | "Z" | "private" | "rprivate" | "nocopy" => {}
            other => {
                return Err(ApiError::bad_request(format!(
                    "invalid mode: {other} in volume '{b}'"
                )))
            }
        }
    }
    Ok(VolumeMount {
        source: source.to_string(),
        destination: destination.to_string(),
        readonly,
    })
}

/// One entry of HostConfig.Mounts (`--mount`).
fn mount(
    m: &bollard_stubs::models::Mount,
    volumes: &mut Vec<VolumeMount>,
    tmpfs: &mut Vec<TmpfsMount>,
) -> Result<(), ApiError> {
    let target = m
        .target
        .clone()
        .filter(|t| t.starts_with('/'))
        .ok_or_else(|| {
            ApiError::bad_request("invalid mount config: Target must be an absolute path")
        })?;
    let source = m.source.clone().unwrap_or_default();
    let readonly = m.read_only.unwrap_or(false);
    match m.typ {
        Some(MountType::BIND) => {
            if !source.starts_with('/') {
                return Err(ApiError::bad_request(format!(
                    "invalid mount config for type \"bind\": mount path must be absolute: '{source}'"
                )));
            }
            volumes.push(VolumeMount {
                source,
                destination: target,
                readonly,
            });
        }
        Some(MountType::VOLUME) => {
            // No source: an anonymous volume (the engine names it).
            if source.contains('/') {
                return Err(ApiError::bad_request(format!(
                    "invalid mount config for type \"volume\": invalid volume name {source:?}"
                )));
            }
            volumes.push(VolumeMount {
                source,
                destination: target,
                readonly,
            });
        }
        Some(MountType::TMPFS) => {
            let mut options = Vec::new();
            if let Some(o) = &m.tmpfs_options {
                if let Some(size) = o.size_bytes.filter(|s| *s > 0) {
                    options.push(format!("size={size}"));
                }
                if let Some(mode) = o.mode.filter(|m| *m > 0) {
                    options.push(format!("mode={mode:o}"));
                }
            }
            if readonly {
                options.push("ro".into());
            }
            tmpfs.push(TmpfsMount {
                destination: target,
                options,
            });
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "mount type {other} is not available in skiff"
            )))
        }
        None => return Err(ApiError::bad_request("invalid mount config: no Type")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> ContainerCreateBody {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn docker_run_rm_body() {
        // What `docker run --rm alpine echo hello` sends (docker 28, trimmed).
        let b = body(
            r#"{"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,
            "AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,
            "Cmd":["echo","hello"],"Image":"alpine","Volumes":{},"WorkingDir":"","Entrypoint":null,
            "OnBuild":null,"Labels":{},"HostConfig":{"Binds":null,"ContainerIDFile":"",
            "LogConfig":{"Type":"","Config":{}},"NetworkMode":"bridge","PortBindings":{},
            "RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,
            "VolumeDriver":"","VolumesFrom":null,"ConsoleSize":[0,0],"CapAdd":null,"CapDrop":null,
            "CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,
            "GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"",
            "Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,
            "UTSMode":"","UsernsMode":"","ShmSize":0,"Isolation":"","CpuShares":0,"Memory":0,
            "NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"CpuPeriod":0,"CpuQuota":0,
            "CpusetCpus":"","CpusetMems":"","Devices":[],"MemorySwap":0,"PidsLimit":null,
            "Ulimits":[],"MaskedPaths":null,"ReadonlyPaths":null},
            "NetworkingConfig":{"EndpointsConfig":{}}}"#,
        );
        let (o, w) = create_options(Some("x1"), b).unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(o.name.as_deref(), Some("x1"));
        assert_eq!(o.image, "alpine");
        assert_eq!(o.cmd, ["echo", "hello"]);
        assert!(o.auto_remove);
        assert_eq!(o.network, NetworkMode::Bridge);
        assert_eq!(o.restart, RestartPolicy::No);
        assert_eq!(o.entrypoint, None);
        assert_eq!(o.user, None);
    }

    #[test]
    fn host_config_maps_to_options() {
        let b = body(
            r#"{"Image":"alpine","Entrypoint":[""],"User":"1000:1000","Labels":{"a":"b"},
            "HostConfig":{"Binds":["/tmp:/data:ro","vol:/v"],"Tmpfs":{"/run":"size=64m"},
            "Memory":33554432,"CpuQuota":50000,"CpuPeriod":100000,"PidsLimit":16,
            "NetworkMode":"host","RestartPolicy":{"Name":"on-failure","MaximumRetryCount":3},
            "SecurityOpt":["no-new-privileges"],"Runtime":"oci","CapAdd":["NET_ADMIN"],
            "Mounts":[{"Type":"tmpfs","Target":"/scratch","TmpfsOptions":{"SizeBytes":1024,"Mode":448}}]}}"#,
        );
        let (o, _) = create_options(None, b).unwrap();
        assert_eq!(o.entrypoint, Some(vec![]));
        assert_eq!(o.user.as_deref(), Some("1000:1000"));
        assert_eq!(o.volumes.len(), 2);
        assert!(o.volumes[0].readonly);
        assert_eq!(o.volumes[1].source, "vol");
        assert_eq!(o.tmpfs[0].options, ["size=64m"]);
        assert_eq!(o.tmpfs[1].options, ["size=1024", "mode=700"]);
        assert_eq!(o.resources.memory, Some(33554432));
        assert_eq!(o.resources.nano_cpus, Some(500_000_000));
        assert_eq!(o.resources.pids_limit, Some(16));
        assert_eq!(o.network, NetworkMode::Host);
        assert_eq!(o.restart, RestartPolicy::OnFailure { max_retries: 3 });
        assert!(o.no_new_privileges);
        assert_eq!(o.runtime.as_deref(), Some("oci"));
        assert_eq!(o.labels.get("a").map(String::as_str), Some("b"));
    }

    #[test]
    fn refuses_what_skiff_cannot_do() {
        let bad = [
            r#"{"Image":""}"#,
            r#"{"Image":"a","HostConfig":{"PortBindings":{"80/tcp":[{"HostPort":"x"}]}}}"#,
            r#"{"Image":"a","HostConfig":{"PortBindings":{"80/sctp":[{"HostPort":"80"}]}}}"#,
            r#"{"Image":"a","HostConfig":{"AutoRemove":true,"RestartPolicy":{"Name":"always"}}}"#,
            r#"{"Image":"a","HostConfig":{"Binds":["rel/path:/x"]}}"#,
            r#"{"Image":"a","HostConfig":{"Binds":["/x:/y:bogus"]}}"#,
            r#"{"Image":"a","HostConfig":{"SecurityOpt":["seccomp={}"]}}"#,
            r#"{"Image":"a","HostConfig":{"SecurityOpt":["apparmor=docker-default"]}}"#,
            r#"{"Image":"a","HostConfig":{"LogConfig":{"Type":"syslog"}}}"#,
            r#"{"Image":"a","Volumes":{"data":{}}}"#,
        ];
        for b in bad {
            let e = create_options(None, body(b)).unwrap_err();
            assert_eq!(e.status, hyper::StatusCode::BAD_REQUEST, "{b}: {e}");
        }
        // Anonymous volumes: an empty source, named by the engine; a bind for the same
        // path wins.
        let (o, _) = create_options(
            None,
            body(r#"{"Image":"a","Volumes":{"/data":{},"/bound":{}},"HostConfig":{"Binds":["/tmp:/bound"]}}"#),
        )
        .unwrap();
        assert_eq!(o.volumes.len(), 2, "{:?}", o.volumes);
        assert!(o
            .volumes
            .iter()
            .any(|v| v.destination == "/data" && v.source.is_empty()));
        assert!(o
            .volumes
            .iter()
            .any(|v| v.destination == "/bound" && v.source == "/tmp"));
        let (o, _) = create_options(
            None,
            body(r#"{"Image":"a","HostConfig":{"NetworkMode":"mynet","PortBindings":{"80/tcp":[{"HostIp":"127.0.0.1","HostPort":"8080"}],"53/udp":null}},"NetworkingConfig":{"EndpointsConfig":{"mynet":{"Aliases":["web"]}}}}"#),
        )
        .unwrap();
        assert_eq!(o.network, NetworkMode::Named("mynet".into()));
        assert_eq!(o.network_aliases, ["web"]);
        assert_eq!(o.publish.len(), 2);
        assert_eq!(o.publish[0].container_port, 53);
        assert_eq!(o.publish[0].host_port, 0);
        assert_eq!(o.publish[1].host_port, 8080);
        assert_eq!(o.publish[1].host_ip, Some(std::net::Ipv4Addr::LOCALHOST));
    }
}
