//! The `delete` subcommand: clean up after a shim that is gone (cwd = bundle), and
//! describe the task's end as a containerd `DeleteResponse`.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use containerd_shim::api::DeleteResponse;
use containerd_shim::protos::protobuf::well_known_types::timestamp::Timestamp;
use containerd_shim::protos::protobuf::MessageField;
use containerd_shim::Flags;

use crate::address::{answers, socket_address, socket_path};
use crate::error::{Result, ShimError};
use crate::exit::EXIT_FILE;
use crate::timefmt::unix_parts;
use crate::{container, rootfs};

/// Exit status reported when the task's real one is unknown (as containerd's shims do).
const DEFAULT_EXIT_STATUS: u32 = 137;

/// Kills and deletes the libcontainer container (state and cgroup), unmounts
/// `<bundle>/rootfs`, removes a dead shim's socket, and returns what to print.
pub fn run(flags: &Flags) -> Result<DeleteResponse> {
    if flags.id.is_empty() {
        return Err(ShimError::InvalidArgument("-id is required".into()));
    }
    let bundle =
        std::env::current_dir().map_err(|e| ShimError::io("getting cwd", Path::new("."), e))?;
    let mut errors = Vec::new();
    if let Err(e) = container::destroy(&flags.id, &bundle) {
        errors.push(e.to_string());
    }
    if let Err(e) = rootfs::unmount_all(&bundle) {
        errors.push(e.to_string());
    }
    if let Ok(addr) = socket_address(&flags.address, &flags.namespace, &flags.id) {
        if !answers(&addr) {
            let _ = std::fs::remove_file(socket_path(&addr));
        }
    }
    if !errors.is_empty() {
        return Err(ShimError::Internal(errors.join("; ")));
    }
    let (pid, status, at) =
        read_exit(&bundle).unwrap_or((0, DEFAULT_EXIT_STATUS, SystemTime::now()));
    let (seconds, nanos) = unix_parts(at);
    Ok(DeleteResponse {
        pid,
        exit_status: status,
        exited_at: MessageField::some(Timestamp {
            seconds,
            nanos: nanos as i32,
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Reads `<bundle>/exit.json` if the shim wrote one.
fn read_exit(bundle: &Path) -> Option<(u32, u32, SystemTime)> {
    let text = std::fs::read(bundle.join(EXIT_FILE)).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&text).ok()?;
    let pid = u32::try_from(v.get("pid")?.as_u64()?).ok()?;
    let status = u32::try_from(v.get("exit_status")?.as_u64()?).ok()?;
    let at = v
        .get("exited_at")
        .and_then(|t| t.as_str())
        .and_then(parse_rfc3339)
        .unwrap_or_else(SystemTime::now);
    Some((pid, status, at))
}

/// Parses the UTC form written by [`crate::timefmt::rfc3339_nano`].
fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = match time.split_once('.') {
        Some((a, b)) => (a, b),
        None => (time, ""),
    };
    let mut t = hms.splitn(3, ':').map(|x| x.parse::<i64>().ok());
    let (h, mi, sec) = (t.next()??, t.next()??, t.next()??);
    let nanos: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").get(..9)?.parse().ok()?
    };
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + mi * 60 + sec;
    let secs = u64::try_from(secs).ok()?;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timefmt::rfc3339_nano;

    #[test]
    fn round_trip() {
        let t = UNIX_EPOCH + Duration::new(1_714_564_800, 123_400_000);
        assert_eq!(parse_rfc3339(&rfc3339_nano(t)), Some(t));
        let t = UNIX_EPOCH + Duration::new(951_782_400, 0);
        assert_eq!(parse_rfc3339(&rfc3339_nano(t)), Some(t));
    }
}
