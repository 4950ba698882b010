//! Human-readable figures as Docker prints them (go-units): SI sizes and "ago" durations.

/// `5.59MB`, `716kB`, `1.2GB` — decimal units with 3 significant digits, like Docker.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    let mut v = bytes as f64;
    let mut i = 0;
    while v >= 1000.0 && i < UNITS.len() - 1 {
        v /= 1000.0;
        i += 1;
    }
    // Three significant digits, trailing zeros trimmed (Go's %.3g).
    let digits = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    let mut out = format!("{:.*}", digits, v);
    if out.contains('.') {
        out = out.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    format!("{out}{}", UNITS[i])
}

/// `Less than a second`, `About a minute`, `5 minutes`, `2 weeks`, ... (Docker's HumanDuration).
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86400);
    match () {
        _ if s < 1 => "Less than a second".into(),
        _ if s == 1 => "1 second".into(),
        _ if s < 60 => format!("{s} seconds"),
        _ if m == 1 => "About a minute".into(),
        _ if m < 60 => format!("{m} minutes"),
        _ if (s as f64 / 3600.0).round() == 1.0 => "About an hour".into(),
        _ if h < 48 => format!("{} hours", (s as f64 / 3600.0).round() as i64),
        _ if h < 24 * 7 * 2 => format!("{d} days"),
        _ if h < 24 * 30 * 2 => format!("{} weeks", d / 7),
        _ if h < 24 * 365 * 2 => format!("{} months", d / 30),
        _ => format!("{} years", d / 365),
    }
}

/// `2 weeks ago`, or `N/A` when the time is unknown.
pub fn ago(unix: i64) -> String {
    if unix <= 0 {
        return "N/A".into();
    }
    format!(
        "{} ago",
        human_duration(chrono::Utc::now().timestamp() - unix)
    )
}

/// Prints rows as aligned columns separated by three spaces (Docker's tabwriter style).
pub fn print_table(rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}   ", w = widths[i]));
            }
        }
        println!("{}", line.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(999), "999B");
        assert_eq!(human_size(5_590_000), "5.59MB");
        assert_eq!(human_size(716_000), "716kB");
        assert_eq!(human_size(12_345_678), "12.3MB");
        assert_eq!(human_size(1_000_000_000), "1GB");
    }

    #[test]
    fn durations_like_docker() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(600), "10 minutes");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(15 * 86400), "2 weeks");
    }
}
