//! Network routes: `GET /networks`, `GET /networks/{id}`, `POST /networks/create`,
//! `DELETE /networks/{id}`, `POST /networks/{id}/connect|disconnect`,
//! `POST /networks/prune`. Bodies are read leniently as JSON values: the CLI sends
//! only a few of the many NetworkCreateRequest fields.

use std::collections::BTreeMap;

use hyper::{Method, StatusCode};
use serde_json::{json, Value};
use skiff_daemon::network::CreateNetwork;

use super::{empty, json, read_json, ApiError, DockerApi, Query, Request, Response};

/// Routes under `/networks`.
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
        (&Method::POST, ["prune"]) => prune(api).await,
        (&Method::GET, [id]) => {
            let id = id.to_string();
            let v = api.blocking(move |e| e.network_inspect_json(&id)).await?;
            Ok(json(StatusCode::OK, &v))
        }
        (&Method::DELETE, [id]) => {
            let id = id.to_string();
            api.blocking(move |e| e.remove_network(&id)).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (&Method::POST, [id, "connect"]) => connect(api, req, id).await,
        (&Method::POST, [id, "disconnect"]) => disconnect(api, req, id).await,
        _ => Err(ApiError::not_found("page not found")),
    }
}

/// `GET /networks?filters=` (name, id, driver filters).
async fn list(api: &DockerApi, q: &Query) -> Result<Response, ApiError> {
    let filters = q.filters()?;
    let all = api.blocking(|e| e.networks_json()).await?;
    let keep = |n: &Value| {
        filters.iter().all(|(k, v)| {
            let field = |f: &str| n[f].as_str().unwrap_or_default().to_string();
            match k.as_str() {
                "name" => field("Name").contains(v.as_str()),
                "id" => field("Id").starts_with(v.as_str()),
                "driver" => field("Driver") == *v,
                "scope" => v == "local",
                "type" => match v.as_str() {
                    "builtin" => matches!(field("Name").as_str(), "bridge" | "host" | "none"),
                    "custom" => !matches!(field("Name").as_str(), "bridge" | "host" | "none"),
                    _ => false,
                },
                _ => true,
            }
        })
    };
    let out: Vec<Value> = all.into_iter().filter(keep).collect();
    Ok(json(StatusCode::OK, &out))
}

/// `POST /networks/create`.
async fn create(api: &DockerApi, req: Request) -> Result<Response, ApiError> {
    let body: Value = read_json(req).await?;
    let name = body["Name"]
        .as_str()
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::bad_request("network name is required (Name)"))?
        .to_string();
    match body["Driver"].as_str().unwrap_or("") {
        "" | "bridge" => {}
        other => {
            return Err(ApiError::bad_request(format!(
                "network driver {other:?} is not supported by skiff (only bridge)"
            )))
        }
    }
    if body["Internal"].as_bool().unwrap_or(false) {
        return Err(ApiError::bad_request(
            "internal networks are not supported by skiff",
        ));
    }
    if body["EnableIPv6"].as_bool().unwrap_or(false) {
        return Err(ApiError::bad_request(
            "IPv6 networks are not supported by skiff",
        ));
    }
    let configs = body["IPAM"]["Config"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if configs.len() > 1 {
        return Err(ApiError::bad_request(
            "skiff networks have one IPv4 subnet; pass at most one --subnet",
        ));
    }
    let field = |k: &str| {
        configs
            .first()
            .and_then(|c| c[k].as_str())
            .filter(|s| !s.is_empty())
            .map(str::to_string)
    };
    let labels: BTreeMap<String, String> = body["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default();
    let req = CreateNetwork {
        name,
        subnet: field("Subnet"),
        gateway: field("Gateway"),
        labels,
    };
    let net = api
        .blocking(move |e| Ok(e.networks().create(&req)?))
        .await?;
    Ok(json(
        StatusCode::CREATED,
        &json!({"Id": net.id, "Warning": ""}),
    ))
}

/// `POST /networks/{id}/connect` with `{"Container": ..., "EndpointConfig": {"Aliases": [...]}}`.
async fn connect(api: &DockerApi, req: Request, id: &str) -> Result<Response, ApiError> {
    let body: Value = read_json(req).await?;
    let container = body["Container"]
        .as_str()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("Container is required"))?
        .to_string();
    let ipam = &body["EndpointConfig"]["IPAMConfig"];
    if ["IPv4Address", "IPv6Address"]
        .iter()
        .any(|k| ipam[k].as_str().is_some_and(|v| !v.is_empty()))
    {
        return Err(ApiError::bad_request(
            "static addresses (--ip) are not supported by skiff",
        ));
    }
    let aliases: Vec<String> = body["EndpointConfig"]["Aliases"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let id = id.to_string();
    api.blocking(move |e| e.connect_container(&id, &container, &aliases))
        .await?;
    Ok(empty(StatusCode::OK))
}

/// `POST /networks/{id}/disconnect` with `{"Container": ..., "Force": bool}`.
async fn disconnect(api: &DockerApi, req: Request, id: &str) -> Result<Response, ApiError> {
    let body: Value = read_json(req).await?;
    let container = body["Container"]
        .as_str()
        .filter(|c| !c.is_empty())
        .ok_or_else(|| ApiError::bad_request("Container is required"))?
        .to_string();
    let id = id.to_string();
    api.blocking(move |e| e.disconnect_container(&id, &container))
        .await?;
    Ok(empty(StatusCode::OK))
}

/// `POST /networks/prune`.
async fn prune(api: &DockerApi) -> Result<Response, ApiError> {
    let removed = api.blocking(|e| Ok(e.networks().prune()?)).await?;
    Ok(json(StatusCode::OK, &json!({"NetworksDeleted": removed})))
}
