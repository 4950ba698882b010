//! `GET /containers/{id}/stats?stream=&one-shot=`: usage samples in Docker's cgroup-v1
//! shape (`cpu_stats.cpu_usage.total_usage` against `system_cpu_usage`, `memory_stats`,
//! `blkio_stats`, `pids_stats`), so `docker stats` computes CPU % and memory as it does
//! for dockerd. Streamed once a second; without `stream` one object whose `precpu_stats`
//! is a sample taken a second earlier (unless `one-shot`).

use std::time::Duration;

use hyper::body::Bytes;
use serde_json::{json, Value};
use skiff_daemon::container::stats::{Stats, NANOS_PER_TICK};
use tokio::sync::mpsc;

use super::attach::channel_response;
use super::{json, ApiError, DockerApi, Query, Response};

/// Host CPU time in nanoseconds (the `cpu` line of /proc/stat: user to steal) and the
/// number of online CPUs.
pub fn host_cpu() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let mut total = 0;
    let mut cpus = 0;
    for l in text.lines() {
        let mut f = l.split_whitespace();
        match f.next() {
            Some("cpu") => {
                total =
                    f.take(8).filter_map(|v| v.parse::<u64>().ok()).sum::<u64>() * NANOS_PER_TICK
            }
            Some(c) if c.starts_with("cpu") => cpus += 1,
            _ => {}
        }
    }
    (total, cpus.max(1))
}

/// One sample with the host's CPU time taken at the same moment.
#[derive(Debug, Clone, Default)]
pub struct Sample {
    /// The container's usage.
    pub stats: Stats,
    /// Host CPU nanoseconds.
    pub system_ns: u64,
    /// Online CPUs.
    pub cpus: u64,
    /// When (RFC 3339).
    pub read: String,
}

fn cpu_stats(s: &Sample) -> Value {
    json!({
        "cpu_usage": {
            "total_usage": s.stats.cpu_total_ns,
            "percpu_usage": if s.stats.per_cpu_ns.is_empty() { Value::Null } else { json!(s.stats.per_cpu_ns) },
            "usage_in_kernelmode": s.stats.kernel_ns,
            "usage_in_usermode": s.stats.user_ns,
        },
        "system_cpu_usage": s.system_ns,
        "online_cpus": s.cpus,
        "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0},
    })
}

/// Docker's stats object from the current sample and the one before it.
pub fn stats_json(id: &str, name: &str, now: &Sample, pre: Option<&Sample>) -> Value {
    let blk = |op: &str, v: u64| json!({"major": 0, "minor": 0, "op": op, "value": v});
    let mut v = json!({
        "id": id,
        "name": format!("/{name}"),
        "read": now.read,
        "preread": pre.map(|p| p.read.clone()).unwrap_or_else(|| "0001-01-01T00:00:00Z".into()),
        "pids_stats": {"current": now.stats.pids},
        "blkio_stats": {
            "io_service_bytes_recursive": [blk("Read", now.stats.block_read), blk("Write", now.stats.block_write)],
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": cpu_stats(now),
        "precpu_stats": pre.map(cpu_stats).unwrap_or_else(|| json!({"cpu_usage": {"total_usage": 0}, "throttling_data": {}})),
        "memory_stats": {
            "usage": now.stats.memory_usage,
            "limit": now.stats.memory_limit,
            "stats": {},
        },
    });
    // Docker leaves `networks` out where a container has no interface of its own.
    if !now.stats.networks.is_empty() {
        v["networks"] = json!(now.stats.networks);
    }
    v
}

async fn sample(api: &DockerApi, id: &str) -> Result<Sample, ApiError> {
    let id = id.to_string();
    let stats = api.blocking(move |e| e.container_stats(&id)).await?;
    let (system_ns, cpus) = host_cpu();
    Ok(Sample {
        stats,
        system_ns,
        cpus,
        read: skiff_daemon::container::now_rfc3339(),
    })
}

/// `GET /containers/{id}/stats`.
pub async fn stats(api: &DockerApi, id: &str, q: &Query) -> Result<Response, ApiError> {
    let rec = api.container(id).await?;
    let stream = q.get("stream").is_none() || q.flag("stream");
    let first = sample(api, &rec.id).await?;
    if !stream {
        let (now, pre) = if q.flag("one-shot") {
            (first, None)
        } else {
            tokio::time::sleep(Duration::from_secs(1)).await;
            (sample(api, &rec.id).await?, Some(first))
        };
        let v = stats_json(&rec.id, &rec.name, &now, pre.as_ref());
        return Ok(json(hyper::StatusCode::OK, &v));
    }
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    let api = api.clone();
    tokio::spawn(async move {
        let mut pre: Option<Sample> = None;
        let mut now = first;
        loop {
            let v = stats_json(&rec.id, &rec.name, &now, pre.as_ref());
            let mut line = serde_json::to_vec(&v).unwrap_or_default();
            line.push(b'\n');
            if tx.send(Bytes::from(line)).await.is_err() {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = tx.closed() => return,
            }
            match sample(&api, &rec.id).await {
                Ok(s) => pre = Some(std::mem::replace(&mut now, s)),
                // The container is gone: the stream ends.
                Err(_) => return,
            }
        }
    });
    Ok(channel_response(rx, "application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_cpu_counts_time_and_cpus() {
        let (ns, cpus) = host_cpu();
        assert!(ns > 0);
        assert!(cpus >= 1);
    }

    #[test]
    fn shape_is_dockers() {
        let s = Sample {
            stats: Stats {
                memory_usage: 10,
                memory_limit: 100,
                cpu_total_ns: 5,
                pids: 2,
                block_read: 1,
                block_write: 3,
                per_cpu_ns: vec![2, 3],
                user_ns: 4,
                kernel_ns: 1,
                networks: [(
                    "eth0".to_string(),
                    skiff_daemon::container::stats::NetStats {
                        rx_bytes: 7,
                        ..Default::default()
                    },
                )]
                .into(),
            },
            system_ns: 1000,
            cpus: 2,
            read: "now".into(),
        };
        let v = stats_json("abc", "web", &s, Some(&s));
        assert_eq!(v["name"], "/web");
        assert_eq!(v["cpu_stats"]["cpu_usage"]["total_usage"], 5);
        assert_eq!(v["cpu_stats"]["cpu_usage"]["percpu_usage"][1], 3);
        assert_eq!(v["cpu_stats"]["cpu_usage"]["usage_in_usermode"], 4);
        assert_eq!(v["networks"]["eth0"]["rx_bytes"], 7);
        assert_eq!(v["precpu_stats"]["system_cpu_usage"], 1000);
        assert_eq!(v["memory_stats"]["limit"], 100);
        assert_eq!(v["pids_stats"]["current"], 2);
        assert_eq!(
            v["blkio_stats"]["io_service_bytes_recursive"][1]["value"],
            3
        );
    }
}
