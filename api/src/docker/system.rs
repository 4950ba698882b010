//! `GET /info`: what the engine holds and the host it runs on.

use std::collections::HashMap;

use bollard_stubs::models::{
    LocalNodeState, RegistryServiceConfig, Runtime, SwarmInfo, SystemInfo,
    SystemInfoCgroupDriverEnum, SystemInfoCgroupVersionEnum,
};
use hyper::StatusCode;
use skiff_daemon::container::record::Status;
use skiff_daemon::runtime::{DEFAULT_RUNTIME, RUNTIMES};

use super::{json, ApiError, DockerApi, Response};

/// The running kernel's release (`uname -r`).
pub fn kernel_version() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// `PRETTY_NAME` of /etc/os-release.
fn operating_system() -> String {
    std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "Linux".into())
}

/// `MemTotal` of /proc/meminfo, in bytes.
fn mem_total() -> i64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<i64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// `1` on cgroup v1 or hybrid hosts, `2` on unified ones.
fn cgroup_version() -> SystemInfoCgroupVersionEnum {
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        SystemInfoCgroupVersionEnum::_2
    } else {
        SystemInfoCgroupVersionEnum::_1
    }
}

/// `GET /info`.
pub async fn info(api: &DockerApi) -> Result<Response, ApiError> {
    let (containers, images) = api
        .blocking(|e| Ok((e.list_containers(true, &[])?, e.list_images()?)))
        .await?;
    let count =
        |f: &dyn Fn(Status) -> bool| containers.iter().filter(|c| f(c.state.status)).count() as i64;
    let engine = api.engine();
    let config = engine.config();
    let runtimes: HashMap<String, Runtime> = RUNTIMES
        .iter()
        .map(|r| {
            let rt = Runtime {
                path: Some("containerd-shim-skiff-v1".into()),
                ..Default::default()
            };
            (r.to_string(), rt)
        })
        .collect();
    let info = SystemInfo {
        id: Some(String::new()),
        containers: Some(containers.len() as i64),
        containers_running: Some(count(&|s| {
            matches!(s, Status::Running | Status::Restarting)
        })),
        containers_paused: Some(count(&|s| s == Status::Paused)),
        containers_stopped: Some(count(&|s| !s.has_task())),
        images: Some(images.len() as i64),
        driver: Some(engine.images().snapshotter().name().to_string()),
        driver_status: Some(Vec::new()),
        docker_root_dir: Some(config.data_root.display().to_string()),
        memory_limit: Some(true),
        swap_limit: Some(true),
        cpu_cfs_period: Some(true),
        cpu_cfs_quota: Some(true),
        cpu_shares: Some(true),
        cpu_set: Some(true),
        pids_limit: Some(true),
        oom_kill_disable: Some(false),
        ipv4_forwarding: Some(false),
        debug: Some(false),
        logging_driver: Some("json-file".into()),
        cgroup_driver: Some(SystemInfoCgroupDriverEnum::CGROUPFS),
        cgroup_version: Some(cgroup_version()),
        kernel_version: Some(kernel_version()),
        operating_system: Some(operating_system()),
        os_type: Some("linux".into()),
        architecture: Some(std::env::consts::ARCH.into()),
        ncpu: Some(
            std::thread::available_parallelism()
                .map(|n| n.get() as i64)
                .unwrap_or(1),
        ),
        mem_total: Some(mem_total()),
        index_server_address: Some("https://index.docker.io/v1/".into()),
        registry_config: Some(RegistryServiceConfig {
            mirrors: Some(config.registry_mirrors.clone()),
            insecure_registry_cidrs: Some(vec!["127.0.0.0/8".into(), "::1/128".into()]),
            ..Default::default()
        }),
        name: Some(hostname()),
        labels: Some(Vec::new()),
        experimental_build: Some(false),
        server_version: Some(env!("CARGO_PKG_VERSION").into()),
        runtimes: Some(runtimes),
        default_runtime: Some(DEFAULT_RUNTIME.into()),
        swarm: Some(SwarmInfo {
            local_node_state: Some(LocalNodeState::INACTIVE),
            ..Default::default()
        }),
        live_restore_enabled: Some(true),
        security_options: Some(vec!["name=seccomp,profile=builtin".into()]),
        warnings: Some(Vec::new()),
        ..Default::default()
    };
    Ok(json(StatusCode::OK, &info))
}

/// `GET /system/df`: images (with how many containers use each), containers and the
/// layers' total size, in the shape of API 1.47 (`LayersSize`, `Images`, `Containers`,
/// `Volumes`, `BuildCache`).
pub async fn disk_usage(api: &DockerApi) -> Result<Response, ApiError> {
    let images = api.blocking(|e| e.list_images()).await?;
    let recs = api
        .blocking(|e| {
            let recs = e.list_containers(true, &[])?;
            Ok(recs
                .into_iter()
                .map(|r| {
                    let rw = skiff_daemon::volume::dir_size(&e.container_dir(&r.id).join("rw"));
                    let rw = i64::try_from(rw).unwrap_or(i64::MAX);
                    (r, rw)
                })
                .collect::<Vec<_>>())
        })
        .await?;
    // Sizes walk the volumes' trees: on the blocking pool, like the rest of the I/O.
    let volumes: Vec<serde_json::Value> = api
        .blocking(|e| {
            Ok(e.list_volumes()?
                .iter()
                .map(|v| v.docker_json(Some(skiff_daemon::volume::dir_size(&v.mountpoint))))
                .collect())
        })
        .await?;
    let now = chrono::Utc::now();
    let layers_size: u64 = images.iter().map(|i| i.size).sum();
    let images: Vec<bollard_stubs::models::ImageSummary> = images
        .into_iter()
        .map(|i| {
            let used = recs.iter().filter(|(r, _)| r.image_id == i.id).count();
            let size = i64::try_from(i.size).unwrap_or(i64::MAX);
            bollard_stubs::models::ImageSummary {
                id: i.id,
                repo_tags: i.repo_tags,
                repo_digests: i.repo_digests,
                created: i.created,
                size,
                shared_size: 0,
                containers: i64::try_from(used).unwrap_or(i64::MAX),
                ..Default::default()
            }
        })
        .collect();
    let containers: Vec<_> = recs
        .iter()
        .map(|(r, rw)| {
            let mut s = super::containers::summary(r, now);
            s.size_rw = Some(*rw);
            s.size_root_fs = Some(0);
            s
        })
        .collect();
    let body = serde_json::json!({
        "LayersSize": layers_size,
        "Images": images,
        "Containers": containers,
        "Volumes": volumes,
        "BuildCache": [],
    });
    Ok(json(StatusCode::OK, &body))
}

/// The body of `POST /auth`.
#[derive(Debug, Default, serde::Deserialize)]
struct AuthBody {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    serveraddress: String,
}

/// `POST /auth`: checks credentials against the registry and keeps them for the
/// engine's later pulls (`docker login`).
pub async fn login(api: &DockerApi, req: super::Request) -> Result<Response, ApiError> {
    let body: AuthBody = super::read_json(req).await?;
    if body.username.is_empty() {
        return Err(ApiError::bad_request("username must be given"));
    }
    let registry = match body.serveraddress.as_str() {
        "" => "docker.io".to_string(),
        s => s
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .trim_end_matches("/v1")
            .to_string(),
    };
    let creds = skiff_daemon::image_store::auth::Credentials {
        username: body.username,
        password: body.password,
    };
    api.engine().login(&registry, creds).await?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"Status": "Login Succeeded", "IdentityToken": ""}),
    ))
}
