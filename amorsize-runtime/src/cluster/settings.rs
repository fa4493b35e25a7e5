//! The cluster's settings, all from the environment: where the broker is, the
//! credentials, how long to wait for workers, and the delivery rules of the work
//! consumer. Read where they are used (a driver's job, a worker's start), so a test or
//! a long-lived program can change them between jobs.

use std::path::PathBuf;
use std::time::Duration;

use super::address::Address;

/// The driver's broker address: makes the cluster a candidate.
pub(crate) const DRIVER_VAR: &str = "AMORSIZE_CLUSTER";
/// A worker's broker address: the process serves tasks instead of running `main`.
pub(crate) const WORKER_VAR: &str = "AMORSIZE_CLUSTER_WORKER";
/// A NATS credentials file (`.creds`) for either.
const CREDS_VAR: &str = "AMORSIZE_CLUSTER_CREDS";
/// How long a driver waits for workers to answer before it plans without them.
const WAIT_VAR: &str = "AMORSIZE_CLUSTER_WAIT";
/// How long a chunk may go without an acknowledgement before it is delivered again.
const ACK_WAIT_VAR: &str = "AMORSIZE_CLUSTER_ACK_WAIT";
/// How many times a chunk is delivered before its items fail.
const MAX_DELIVER_VAR: &str = "AMORSIZE_CLUSTER_MAX_DELIVER";
/// Chunks a worker runs at once.
const SLOTS_VAR: &str = "AMORSIZE_CLUSTER_WORKER_THREADS";
/// A worker with nothing to do for this long exits.
const IDLE_VAR: &str = "AMORSIZE_CLUSTER_IDLE";
/// How long a worker told to stop may finish its chunks before it releases them.
const GRACE_VAR: &str = "AMORSIZE_CLUSTER_GRACE";

/// What both sides need.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Settings {
    pub address: Address,
    pub creds: Option<PathBuf>,
    /// How long a driver collects answers from workers.
    pub wait: Duration,
    /// The work consumer's `ack_wait` (when this side creates it).
    pub ack_wait: Duration,
    /// The work consumer's `max_deliver` (when this side creates it).
    pub max_deliver: u32,
}

/// What only a worker needs.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct WorkerSettings {
    pub slots: usize,
    pub idle: Option<Duration>,
    pub grace: Duration,
}

impl Settings {
    /// The settings with the address in `var`; `None` when `var` is unset or empty,
    /// `Err` naming the variable when a value is malformed (never quoting a secret).
    pub(crate) fn from_env(var: &str) -> Option<Result<Settings, String>> {
        let raw = std::env::var(var).ok().filter(|v| !v.trim().is_empty())?;
        Some(Self::parse(var, &raw, &|name| std::env::var(name).ok()))
    }

    fn parse(
        var: &str,
        raw: &str,
        get: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, String> {
        let address = Address::parse(raw).map_err(|e| format!("{var}: {e}"))?;
        Ok(Settings {
            address,
            creds: get(CREDS_VAR).filter(|p| !p.is_empty()).map(PathBuf::from),
            wait: duration(get, WAIT_VAR, Duration::from_millis(300))?,
            ack_wait: duration(get, ACK_WAIT_VAR, Duration::from_secs(30))?
                .max(Duration::from_millis(500)),
            max_deliver: number(get, MAX_DELIVER_VAR, 5)?.clamp(1, 1000) as u32,
        })
    }
}

impl WorkerSettings {
    pub(crate) fn from_env() -> Result<WorkerSettings, String> {
        let get = |name: &str| std::env::var(name).ok();
        Ok(WorkerSettings {
            slots: number(&get, SLOTS_VAR, 1)?.clamp(1, 1024) as usize,
            idle: match get(IDLE_VAR).filter(|v| !v.trim().is_empty()) {
                Some(_) => Some(duration(&get, IDLE_VAR, Duration::ZERO)?),
                None => None,
            },
            grace: duration(&get, GRACE_VAR, Duration::from_secs(30))?,
        })
    }
}

/// A duration: `250ms`, `2s`, or a number of seconds (`1.5`).
fn duration(
    get: &dyn Fn(&str) -> Option<String>,
    var: &str,
    default: Duration,
) -> Result<Duration, String> {
    let Some(raw) = get(var).filter(|v| !v.trim().is_empty()) else {
        return Ok(default);
    };
    let v = raw.trim();
    let (number, scale) = if let Some(ms) = v.strip_suffix("ms") {
        (ms, 1e-3)
    } else if let Some(s) = v.strip_suffix('s') {
        (s, 1.0)
    } else {
        (v, 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x >= 0.0 && x * scale < 1e9 => {
            Ok(Duration::from_secs_f64(x * scale))
        }
        _ => Err(format!(
            "{var}={raw:?} is not a duration: write e.g. 500ms, 2s or 1.5 (seconds)"
        )),
    }
}

fn number(get: &dyn Fn(&str) -> Option<String>, var: &str, default: u64) -> Result<u64, String> {
    match get(var).filter(|v| !v.trim().is_empty()) {
        None => Ok(default),
        Some(raw) => raw
            .trim()
            .parse::<u64>()
            .map_err(|_| format!("{var}={raw:?} is not a whole number")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_with_defaults_and_units() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let s = Settings::parse(DRIVER_VAR, "nats://h:1", &env(&[])).unwrap();
        assert_eq!(s.wait, Duration::from_millis(300));
        assert_eq!(s.ack_wait, Duration::from_secs(30));
        assert_eq!(s.max_deliver, 5);
        let s = Settings::parse(
            DRIVER_VAR,
            "nats://h:1",
            &env(&[
                (WAIT_VAR, "2s"),
                (ACK_WAIT_VAR, "1500ms"),
                (MAX_DELIVER_VAR, "3"),
            ]),
        )
        .unwrap();
        assert_eq!(s.wait, Duration::from_secs(2));
        assert_eq!(s.ack_wait, Duration::from_millis(1500));
        assert_eq!(s.max_deliver, 3);
        let e = Settings::parse(DRIVER_VAR, "nats://h:1", &env(&[(WAIT_VAR, "soon")])).unwrap_err();
        assert!(e.contains(WAIT_VAR), "{e}");
        let e = Settings::parse(DRIVER_VAR, "http://u:hunter2@h:1", &env(&[])).unwrap_err();
        assert!(e.contains(DRIVER_VAR) && !e.contains("hunter2"), "{e}");
    }
}
