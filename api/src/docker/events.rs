//! `GET /events?since=&until=&filters=`: the engine's event bus as Docker's stream of
//! `EventMessage` JSON objects, one per line. With `since`, kept events from then on
//! come first; with `until`, the stream ends at that time; otherwise it follows until
//! the client leaves.

use std::collections::HashMap;
use std::sync::Arc;

use bollard_stubs::models::{
    EventActor, EventMessage, EventMessageScopeEnum, EventMessageTypeEnum,
};
use hyper::body::Bytes;
use serde::Serialize;
use skiff_daemon::events::{now_nanos, Event, EventType, Next};
use tokio::sync::mpsc;

use super::attach::channel_response;
use super::{ApiError, DockerApi, Query, Response};

/// Parses Docker's event times: Unix seconds with an optional fraction
/// (`1700000000.5`, as the CLI sends them), or RFC 3339. Nanoseconds since the epoch.
pub fn parse_time(s: &str) -> Result<i64, ApiError> {
    let bad = || ApiError::bad_request(format!("invalid time value: {s:?}"));
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return t.timestamp_nanos_opt().ok_or_else(bad);
    }
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let secs: i64 = secs.parse().map_err(|_| bad())?;
    if frac.len() > 9 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let nanos: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    secs.checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(nanos))
        .ok_or_else(bad)
}

/// Which events a client asked for (`filters`): values of one key are alternatives,
/// different keys must all match.
#[derive(Debug, Default, Clone)]
pub struct EventFilter {
    by_key: HashMap<String, Vec<String>>,
}

const FILTER_KEYS: &[&str] = &[
    "container",
    "event",
    "image",
    "label",
    "type",
    "scope",
    "daemon",
    "network",
    "volume",
    "plugin",
    "node",
    "service",
    "secret",
    "config",
];

impl EventFilter {
    /// Builds a filter from the `filters` pairs (400 on an unknown key).
    pub fn new(pairs: Vec<(String, String)>) -> Result<Self, ApiError> {
        let mut by_key: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in pairs {
            if !FILTER_KEYS.contains(&k.as_str()) {
                return Err(ApiError::bad_request(format!("invalid filter '{k}'")));
            }
            by_key.entry(k).or_default().push(v);
        }
        Ok(EventFilter { by_key })
    }

    fn any(&self, key: &str, f: impl Fn(&str) -> bool) -> bool {
        self.by_key
            .get(key)
            .is_none_or(|vals| vals.iter().any(|v| f(v)))
    }

    /// Whether `e` passes.
    pub fn matches(&self, e: &Event) -> bool {
        let attr = |k: &str| e.attributes.get(k).map(String::as_str);
        let container = e.typ == EventType::Container;
        self.any("type", |v| v == e.typ.as_str())
            && self.any("event", |v| v == e.action || v == e.base_action())
            && self.any("scope", |v| v == "local")
            && self.any("container", |v| {
                container && (e.actor_id.starts_with(v) || attr("name") == Some(v))
            })
            && self.any("image", |v| {
                if container {
                    attr("image") == Some(v)
                } else {
                    e.actor_id == v || attr("name") == Some(v)
                }
            })
            && self.any("label", |v| match v.split_once('=') {
                Some((k, val)) => attr(k) == Some(val),
                None => attr(v).is_some(),
            })
            && [
                "daemon", "network", "volume", "plugin", "node", "service", "secret", "config",
            ]
            .iter()
            .all(|k| !self.by_key.contains_key(*k))
    }
}

/// An `EventMessage` with the fields older clients still read (`status`, `id`, `from`).
#[derive(Debug, Serialize)]
struct Message {
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    from: Option<String>,
    #[serde(flatten)]
    message: EventMessage,
}

/// One line of the stream.
pub fn encode(e: &Event) -> Bytes {
    let container = e.typ == EventType::Container;
    let msg = Message {
        status: container.then(|| e.action.clone()),
        id: container.then(|| e.actor_id.clone()),
        from: if container {
            e.attributes.get("image").cloned()
        } else {
            None
        },
        message: EventMessage {
            typ: Some(match e.typ {
                EventType::Container => EventMessageTypeEnum::CONTAINER,
                EventType::Image => EventMessageTypeEnum::IMAGE,
            }),
            action: Some(e.action.clone()),
            actor: Some(EventActor {
                id: Some(e.actor_id.clone()),
                attributes: Some(
                    e.attributes
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                ),
            }),
            scope: Some(EventMessageScopeEnum::LOCAL),
            time: Some(e.time_nano.div_euclid(1_000_000_000)),
            time_nano: Some(e.time_nano),
        },
    };
    let mut b = serde_json::to_vec(&msg).unwrap_or_default();
    b.push(b'\n');
    Bytes::from(b)
}

/// `GET /events`.
pub async fn events(api: &DockerApi, q: &Query) -> Result<Response, ApiError> {
    let since = q.non_empty("since").map(parse_time).transpose()?;
    let until = q.non_empty("until").map(parse_time).transpose()?;
    let filter = Arc::new(EventFilter::new(q.filters()?)?);
    let (past, mut sub) = api.engine().events().subscribe_since(since);
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    tokio::spawn(async move {
        let within = |e: &Event| until.is_none_or(|u| e.time_nano <= u);
        for e in past {
            if !within(&e) {
                return;
            }
            if filter.matches(&e) && tx.send(encode(&e)).await.is_err() {
                return;
            }
        }
        let end = until.map(|u| {
            let left = u.saturating_sub(now_nanos()).max(0) as u64;
            tokio::time::Instant::now() + std::time::Duration::from_nanos(left)
        });
        loop {
            tokio::select! {
                n = sub.next() => match n {
                    Some(Next::Event(e)) => {
                        if !within(&e) {
                            return;
                        }
                        if filter.matches(&e) && tx.send(encode(&e)).await.is_err() {
                            return;
                        }
                    }
                    Some(Next::Lagged(n)) => {
                        tracing::warn!(lost = n, "events: a slow client missed events");
                    }
                    None => return,
                },
                _ = tx.closed() => return,
                _ = sleep_until(end) => return,
            }
        }
    });
    Ok(channel_response(rx, "application/json"))
}

async fn sleep_until(end: Option<tokio::time::Instant>) {
    match end {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ev(typ: EventType, action: &str, id: &str, attrs: &[(&str, &str)]) -> Event {
        let attributes: BTreeMap<String, String> = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Event::now(typ, action, id, attributes)
    }

    fn filter(pairs: &[(&str, &str)]) -> EventFilter {
        EventFilter::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn times_parse_like_the_cli_sends_them() {
        assert_eq!(parse_time("10").unwrap(), 10_000_000_000);
        assert_eq!(parse_time("10.5").unwrap(), 10_500_000_000);
        assert_eq!(parse_time("1.000000001").unwrap(), 1_000_000_001);
        assert_eq!(parse_time("1970-01-01T00:00:02Z").unwrap(), 2_000_000_000);
        assert!(parse_time("soon").is_err());
        assert!(parse_time("1.x").is_err());
    }

    #[test]
    fn filters_match_dockers_way() {
        let start = ev(
            EventType::Container,
            "start",
            "abcdef",
            &[("name", "web"), ("image", "alpine"), ("tier", "front")],
        );
        let exec = ev(EventType::Container, "exec_start: sh -c ls", "abcdef", &[]);
        let pull = ev(
            EventType::Image,
            "pull",
            "alpine:latest",
            &[("name", "alpine:latest")],
        );
        assert!(filter(&[]).matches(&start));
        assert!(filter(&[("container", "web")]).matches(&start));
        assert!(filter(&[("container", "abc")]).matches(&start));
        assert!(!filter(&[("container", "web")]).matches(&pull));
        assert!(filter(&[("event", "start"), ("event", "die")]).matches(&start));
        assert!(filter(&[("event", "exec_start")]).matches(&exec));
        assert!(!filter(&[("event", "die")]).matches(&start));
        assert!(filter(&[("type", "image")]).matches(&pull));
        assert!(!filter(&[("type", "image")]).matches(&start));
        assert!(filter(&[("label", "tier=front")]).matches(&start));
        assert!(filter(&[("label", "tier")]).matches(&start));
        assert!(!filter(&[("label", "tier=back")]).matches(&start));
        assert!(filter(&[("image", "alpine")]).matches(&start));
        assert!(!filter(&[("type", "network")]).matches(&start));
        assert!(EventFilter::new(vec![("bogus".into(), "x".into())]).is_err());
    }

    #[test]
    fn messages_have_dockers_shape() {
        let e = ev(EventType::Container, "die", "abc", &[("exitCode", "3")]);
        let v: serde_json::Value = serde_json::from_slice(&encode(&e)).unwrap();
        assert_eq!(v["Type"], "container");
        assert_eq!(v["Action"], "die");
        assert_eq!(v["status"], "die");
        assert_eq!(v["Actor"]["ID"], "abc");
        assert_eq!(v["Actor"]["Attributes"]["exitCode"], "3");
        assert_eq!(v["scope"], "local");
        assert_eq!(v["time"].as_i64().unwrap(), e.time_nano / 1_000_000_000);
    }
}
