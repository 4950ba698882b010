//! `skiff stats`: CPU, memory, block I/O and PIDs of containers, like `docker stats`.

use std::time::{Duration, Instant};

use skiff_daemon::container::stats::Stats;
use skiff_daemon::{Engine, EngineError};

use crate::format::{human_size, print_table};

fn binary_size(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut i = 0;
    while v >= 1024.0 && i < UNITS.len() - 1 {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.2}{}", UNITS[i])
}

fn sample_all(engine: &Engine, names: &[(String, String)]) -> Vec<Stats> {
    names
        .iter()
        .map(|(id, _)| engine.container_stats(id).unwrap_or_default())
        .collect()
}

/// Prints usage once (`--no-stream`) or every second until interrupted.
pub fn stats(
    engine: &Engine,
    no_stream: bool,
    all: bool,
    containers: &[String],
) -> Result<u8, EngineError> {
    let targets: Vec<(String, String)> = if containers.is_empty() {
        engine
            .list_containers(all, &[])?
            .into_iter()
            .map(|c| (c.id.clone(), c.name.clone()))
            .collect()
    } else {
        containers
            .iter()
            .map(|n| engine.container(n).map(|c| (c.id.clone(), c.name.clone())))
            .collect::<Result<_, _>>()?
    };
    let mut before = sample_all(engine, &targets);
    let mut t0 = Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(if no_stream { 500 } else { 1000 }));
        let after = sample_all(engine, &targets);
        let wall = t0.elapsed().as_nanos().max(1) as f64;
        t0 = Instant::now();
        let mut rows = vec![[
            "CONTAINER ID",
            "NAME",
            "CPU %",
            "MEM USAGE / LIMIT",
            "MEM %",
            "NET I/O",
            "BLOCK I/O",
            "PIDS",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect::<Vec<_>>()];
        for (((id, name), a), b) in targets.iter().zip(&after).zip(&before) {
            let cpu = a.cpu_total_ns.saturating_sub(b.cpu_total_ns) as f64 / wall * 100.0;
            let mem_pct = if a.memory_limit > 0 {
                a.memory_usage as f64 / a.memory_limit as f64 * 100.0
            } else {
                0.0
            };
            rows.push(vec![
                id[..12].to_string(),
                name.clone(),
                format!("{cpu:.2}%"),
                format!(
                    "{} / {}",
                    binary_size(a.memory_usage),
                    binary_size(a.memory_limit)
                ),
                format!("{mem_pct:.2}%"),
                {
                    let rx: u64 = a.networks.values().map(|n| n.rx_bytes).sum();
                    let tx: u64 = a.networks.values().map(|n| n.tx_bytes).sum();
                    format!("{} / {}", human_size(rx), human_size(tx))
                },
                format!(
                    "{} / {}",
                    human_size(a.block_read),
                    human_size(a.block_write)
                ),
                a.pids.to_string(),
            ]);
        }
        if !no_stream {
            print!("\x1b[2J\x1b[H");
        }
        print_table(&rows);
        if no_stream {
            return Ok(0);
        }
        before = after;
    }
}
