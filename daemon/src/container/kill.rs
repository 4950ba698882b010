//! `kill`, `stop` and `restart`: signals to a container's task.

use std::time::{Duration, Instant};

use super::record::{ContainerRecord, Status};
use crate::engine::Engine;
use crate::error::{EngineError, Result};
use crate::runtime::shim::ShimTask;
use crate::runtime::TaskStatus;

/// Parses `KILL`, `SIGKILL`, `sigkill` or `9` into a signal number.
pub fn parse_signal(s: &str) -> Result<u32> {
    let t = s.trim();
    if let Ok(n) = t.parse::<u32>() {
        if (1..=64).contains(&n) {
            return Ok(n);
        }
    }
    let upper = t.to_ascii_uppercase();
    let name = upper.strip_prefix("SIG").unwrap_or(&upper);
    let n = match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "TRAP" => 5,
        "ABRT" | "IOT" => 6,
        "BUS" => 7,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        "STKFLT" => 16,
        "CHLD" => 17,
        "CONT" => 18,
        "STOP" => 19,
        "TSTP" => 20,
        "TTIN" => 21,
        "TTOU" => 22,
        "URG" => 23,
        "XCPU" => 24,
        "XFSZ" => 25,
        "VTALRM" => 26,
        "PROF" => 27,
        "WINCH" => 28,
        "IO" | "POLL" => 29,
        "PWR" => 30,
        "SYS" => 31,
        _ => return Err(EngineError::InvalidInput(format!("Invalid signal: {s}"))),
    };
    Ok(n)
}

impl Engine {
    fn running_task(&self, name: &str) -> Result<(ContainerRecord, ShimTask)> {
        let rec = self.sync_state(self.containers.find(name)?)?;
        if !rec.state.status.has_task() {
            return Err(EngineError::Conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        let task = ShimTask::connect(&rec.state.shim_address, &rec.id)?;
        Ok((rec, task))
    }

    /// Sends a signal (default SIGKILL) to the container's init.
    pub fn kill_container(&self, name: &str, signal: Option<&str>) -> Result<()> {
        let sig = parse_signal(signal.unwrap_or("KILL"))?;
        let (mut rec, task) = self.running_task(name)?;
        task.kill(sig, false)?;
        self.container_event(&rec, "kill", &[("signal", sig.to_string())]);
        if sig == 9 || sig == 15 {
            rec.state.stopped_by_user = true;
            self.containers.save_state(&rec)?;
        }
        Ok(())
    }

    /// Stops a container: its stop signal, then SIGKILL after `timeout` seconds.
    pub async fn stop_container(
        &self,
        name: &str,
        timeout: Option<u64>,
    ) -> Result<ContainerRecord> {
        let engine = self.clone();
        let name = name.to_string();
        tokio::task::spawn_blocking(move || engine.stop_blocking(&name, timeout))
            .await
            .map_err(|e| EngineError::Internal(format!("stop task failed: {e}")))?
    }

    pub(crate) fn stop_blocking(
        &self,
        name: &str,
        timeout: Option<u64>,
    ) -> Result<ContainerRecord> {
        let found = self.containers.find(name)?;
        // Waits for a start in progress (a policy restart), then stops what it started.
        let _ops = self.containers.lock_ops(&found.id)?;
        let mut rec = self.sync_state(self.containers.find(&found.id)?)?;
        // Marked even when it is not running: a stop cancels a pending policy restart.
        rec.state.stopped_by_user = true;
        self.containers.save_state(&rec)?;
        if !rec.state.status.has_task() {
            return Ok(rec);
        }
        let task = ShimTask::connect(&rec.state.shim_address, &rec.id)?;
        if rec.state.status == Status::Paused {
            let _ = task.resume();
        }
        let sig = parse_signal(rec.options.stop_signal.as_deref().unwrap_or("TERM"))?;
        let deadline = Instant::now() + Duration::from_secs(timeout.unwrap_or(10));
        self.container_event(&rec, "kill", &[("signal", sig.to_string())]);
        let _ = task.kill(sig, false);
        loop {
            if let Ok((TaskStatus::Stopped(_), _)) = task.state() {
                break;
            }
            if Instant::now() >= deadline {
                let _ = task.kill(9, true);
                let _ = task.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let rec = self.sync_state(self.containers.find(&rec.id)?)?;
        self.container_event(&rec, "stop", &[]);
        Ok(rec)
    }

    /// Stops (if running) and starts a container again.
    pub async fn restart_container(
        &self,
        name: &str,
        timeout: Option<u64>,
    ) -> Result<ContainerRecord> {
        self.stop_container(name, timeout).await?;
        self.start_container(name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("sigterm").unwrap(), 15);
        assert_eq!(parse_signal("SIGUSR1").unwrap(), 10);
        assert_eq!(parse_signal("2").unwrap(), 2);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("99").is_err());
    }
}
