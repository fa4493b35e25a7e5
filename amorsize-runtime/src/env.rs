//! The `AMORSIZE_*` environment variables, read once per process, in one place.
//!
//! Precedence, strongest first:
//! 1. `AMORSIZE=off` (or `0`, `false`, `serial`): every job runs serially, inline.
//! 2. Pins in code (`.backend()`, attribute arguments) beat `AMORSIZE_BACKEND`.
//! 3. `AMORSIZE_BACKEND=serial|rayon|threads|processes` pins the backend of unpinned jobs.
//! 4. `AMORSIZE_MAX_WORKERS=N` caps the workers of every plan, pinned or not.
//!
//! `AMORSIZE_LOG=plan` prints each decision in one line on stderr, `AMORSIZE_LOG=full`
//! the full breakdown. A value that cannot be understood is reported once on stderr
//! and ignored.

use std::sync::OnceLock;

use crate::plan::Backend;

/// How much to print about decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum LogLevel {
    Off,
    Plan,
    Full,
}

/// The environment as amorsize understood it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct EnvConfig {
    pub off: bool,
    pub backend: Option<Backend>,
    pub max_workers: Option<usize>,
    pub log: LogLevel,
    /// One message per variable that could not be understood.
    pub complaints: Vec<String>,
}

/// Parses the variables from a lookup function (the process environment, or a map in
/// tests). Never fails: what cannot be understood is ignored with a complaint.
pub(crate) fn parse(get: impl Fn(&str) -> Option<String>) -> EnvConfig {
    let mut complaints = Vec::new();
    let mut complain = |var: &str, value: &str, expected: &str| {
        complaints.push(format!(
            "amorsize: ignoring {var}={value:?}: expected {expected}"
        ))
    };

    let off = match get("AMORSIZE").as_deref().map(str::trim) {
        None | Some("") => false,
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "off" | "0" | "false" | "no" | "serial" => true,
            "on" | "1" | "true" | "yes" | "auto" => false,
            _ => {
                complain("AMORSIZE", v, "`off` or `on`");
                false
            }
        },
    };
    let backend = match get("AMORSIZE_BACKEND").as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) if v.eq_ignore_ascii_case("auto") => None,
        Some(v) => match v.parse::<Backend>() {
            Ok(b) => Some(b),
            Err(_) => {
                complain(
                    "AMORSIZE_BACKEND",
                    v,
                    "one of serial, rayon, threads, processes, auto",
                );
                None
            }
        },
    };
    let max_workers = match get("AMORSIZE_MAX_WORKERS").as_deref().map(str::trim) {
        None | Some("") => None,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                complain("AMORSIZE_MAX_WORKERS", v, "a whole number of at least 1");
                None
            }
        },
    };
    let log = match get("AMORSIZE_LOG").as_deref().map(str::trim) {
        None | Some("") => LogLevel::Off,
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "plan" | "1" | "on" => LogLevel::Plan,
            "full" | "2" => LogLevel::Full,
            "off" | "0" => LogLevel::Off,
            _ => {
                complain("AMORSIZE_LOG", v, "`plan`, `full` or `off`");
                LogLevel::Off
            }
        },
    };
    EnvConfig {
        off,
        backend,
        max_workers,
        log,
        complaints,
    }
}

/// The process environment, read and reported on first use.
pub(crate) fn config() -> &'static EnvConfig {
    static CONFIG: OnceLock<EnvConfig> = OnceLock::new();
    CONFIG.get_or_init(|| {
        // Lossy, so that a value that is not valid Unicode is reported, not dropped.
        let cfg = parse(|k| std::env::var_os(k).map(|v| v.to_string_lossy().into_owned()));
        for c in &cfg.complaints {
            eprintln!("{c}");
        }
        cfg
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn with(pairs: &[(&str, &str)]) -> EnvConfig {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse(|k| m.get(k).cloned())
    }

    #[test]
    fn empty_environment_changes_nothing() {
        let c = with(&[]);
        assert!(!c.off);
        assert_eq!(c.backend, None);
        assert_eq!(c.max_workers, None);
        assert_eq!(c.log, LogLevel::Off);
        assert!(c.complaints.is_empty());
    }

    #[test]
    fn valid_values_are_understood() {
        let c = with(&[
            ("AMORSIZE", "off"),
            ("AMORSIZE_BACKEND", "Threads"),
            ("AMORSIZE_MAX_WORKERS", "3"),
            ("AMORSIZE_LOG", "full"),
        ]);
        assert!(c.off);
        assert_eq!(c.backend, Some(Backend::Threads));
        assert_eq!(c.max_workers, Some(3));
        assert_eq!(c.log, LogLevel::Full);
        assert!(c.complaints.is_empty());
    }

    #[test]
    fn garbage_is_ignored_with_one_message_each() {
        let c = with(&[
            ("AMORSIZE", "maybe"),
            ("AMORSIZE_BACKEND", "gpu"),
            ("AMORSIZE_MAX_WORKERS", "0"),
            ("AMORSIZE_LOG", "loud"),
        ]);
        assert!(!c.off);
        assert_eq!(c.backend, None);
        assert_eq!(c.max_workers, None);
        assert_eq!(c.log, LogLevel::Off);
        assert_eq!(c.complaints.len(), 4);
        assert!(c.complaints[1].contains("AMORSIZE_BACKEND"));
        assert!(c.complaints[1].contains("\"gpu\""));
    }
}
