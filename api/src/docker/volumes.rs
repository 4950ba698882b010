//! Volume routes: `GET /volumes`, `POST /volumes/create`, `GET /volumes/{name}`,
//! `DELETE /volumes/{name}`, `POST /volumes/prune` (Docker's local driver).

use std::collections::BTreeMap;

use hyper::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use skiff_daemon::volume::{CreateVolume, Volume};

use super::{empty, json, read_json, ApiError, DockerApi, Query, Request, Response};

/// Routes under `/volumes`.
pub async fn route(
    api: &DockerApi,
    req: Request,
    rest: &[String],
    q: &Query,
) -> Result<Response, ApiError> {
    let method = req.method().clone();
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    match (&method, rest.as_slice()) {
        (&Method::GET, []) => list(api, q).await,
        (&Method::POST, ["create"]) => create(api, req).await,
        (&Method::POST, ["prune"]) => prune(api, q).await,
        (&Method::GET, [name]) => {
            let name = name.to_string();
            let v = api.blocking(move |e| e.volume(&name)).await?;
            Ok(json(StatusCode::OK, &v.docker_json(None)))
        }
        (&Method::DELETE, [name]) => {
            let name = name.to_string();
            let force = q.flag("force");
            api.blocking(move |e| e.remove_volume(&name, force)).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        _ => Err(ApiError::not_found("page not found")),
    }
}

/// Whether `v` matches Docker's `label` filter values (`key` or `key=value`).
fn has_labels(v: &Volume, wanted: &[String]) -> bool {
    wanted.iter().all(|w| match w.split_once('=') {
        Some((k, val)) => v.record.labels.get(k).is_some_and(|have| have == val),
        None => v.record.labels.contains_key(w.as_str()),
    })
}

/// `GET /volumes?filters=` (name, label, dangling, driver).
async fn list(api: &DockerApi, q: &Query) -> Result<Response, ApiError> {
    let filters = q.filters()?;
    let all = api.blocking(|e| e.list_volumes()).await?;
    let labels: Vec<String> = filters
        .iter()
        .filter(|(k, _)| k == "label")
        .map(|(_, v)| v.clone())
        .collect();
    let keep = |v: &Volume| {
        has_labels(v, &labels)
            && filters.iter().all(|(k, val)| match k.as_str() {
                "name" => v.record.name.contains(val.as_str()),
                "driver" => val == "local",
                "dangling" => {
                    let dangling = matches!(val.as_str(), "true" | "1");
                    v.users.is_empty() == dangling
                }
                _ => true,
            })
    };
    let out: Vec<Value> = all
        .iter()
        .filter(|v| keep(v))
        .map(|v| v.docker_json(None))
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({"Volumes": out, "Warnings": []}),
    ))
}

/// The fields of Docker's VolumeCreateOptions skiff reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    driver: Option<String>,
    #[serde(default)]
    driver_opts: Option<BTreeMap<String, String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

/// The engine's request for a create body; a bad name is refused here already (the
/// engine checks the driver and everything else).
pub fn create_request(body: CreateBody) -> Result<CreateVolume, ApiError> {
    let create = CreateVolume {
        name: body.name,
        driver: body.driver,
        driver_opts: body.driver_opts.unwrap_or_default(),
        labels: body.labels.unwrap_or_default(),
    };
    if let Some(n) = create.name.as_deref().filter(|n| !n.is_empty()) {
        skiff_daemon::volume::validate_name(n).map_err(|e| ApiError::bad_request(e.to_string()))?;
    }
    Ok(create)
}

/// `POST /volumes/create`.
async fn create(api: &DockerApi, req: Request) -> Result<Response, ApiError> {
    let body: CreateBody = read_json(req).await?;
    let create = create_request(body)?;
    let v = api.blocking(move |e| e.create_volume(&create)).await?;
    Ok(json(StatusCode::CREATED, &v.docker_json(None)))
}

/// `POST /volumes/prune?filters=` (`all`, `label`, `label!`).
async fn prune(api: &DockerApi, q: &Query) -> Result<Response, ApiError> {
    let filters = q.filters()?;
    let all = filters
        .iter()
        .any(|(k, v)| k == "all" && matches!(v.as_str(), "true" | "1"));
    let with: Vec<String> = filters
        .iter()
        .filter(|(k, _)| k == "label")
        .map(|(_, v)| v.clone())
        .collect();
    let without: Vec<String> = filters
        .iter()
        .filter(|(k, _)| k == "label!")
        .map(|(_, v)| v.clone())
        .collect();
    let (removed, freed) = api
        .blocking(move |e| {
            e.prune_volumes(all, &|v| {
                !has_labels(v, &with)
                    || (!without.is_empty()
                        && without
                            .iter()
                            .any(|w| has_labels(v, std::slice::from_ref(w))))
            })
        })
        .await?;
    Ok(json(
        StatusCode::OK,
        &json!({"VolumesDeleted": removed, "SpaceReclaimed": freed}),
    ))
}
