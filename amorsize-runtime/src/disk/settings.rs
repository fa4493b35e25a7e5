//! Where the disk cache lives, whether it is on, and how long entries stay valid, from
//! the environment.
//!
//! The decision is a pure function of the variables' values ([`resolve`]), so every
//! combination can be tested without touching the process environment (which tests
//! running in parallel threads share); [`from_env`] only reads the real values.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// Turns the disk cache off: `off`, `0`, `false` or `no` (any case).
pub(crate) const VAR_CACHE: &str = "AMORSIZE_CACHE";
/// The cache directory, used as given when set and non-empty.
pub(crate) const VAR_CACHE_DIR: &str = "AMORSIZE_CACHE_DIR";
/// How long an entry stays valid, in whole seconds.
pub(crate) const VAR_TTL: &str = "AMORSIZE_CACHE_TTL_SECS";

/// How long an entry stays valid unless `AMORSIZE_CACHE_TTL_SECS` says otherwise: a
/// week, as in Python amorsize. Machines change rarely; what a week bounds is the life
/// of entries nobody reads any more, and of plans made under unusual load.
pub(crate) const DEFAULT_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

/// The platform conventions for the default directory. A parameter rather than a
/// `cfg!` inside [`resolve`], so the macOS and Windows rules are tested on Linux too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Platform {
    /// XDG: `$XDG_CACHE_HOME/amorsize`, else `~/.cache/amorsize`.
    Unix,
    /// `$XDG_CACHE_HOME/amorsize` if set, else `~/Library/Caches/amorsize`.
    MacOs,
    /// `$XDG_CACHE_HOME/amorsize` if set, else `%LOCALAPPDATA%\amorsize`.
    Windows,
}

impl Platform {
    /// The platform this build runs on.
    pub(crate) const fn current() -> Platform {
        if cfg!(target_os = "macos") {
            Platform::MacOs
        } else if cfg!(windows) {
            Platform::Windows
        } else {
            Platform::Unix
        }
    }
}

/// The values of the variables that decide the settings; `None` means unset.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct EnvValues {
    /// `AMORSIZE_CACHE`.
    pub cache: Option<OsString>,
    /// `AMORSIZE_CACHE_DIR`.
    pub cache_dir: Option<OsString>,
    /// `AMORSIZE_CACHE_TTL_SECS`.
    pub ttl_secs: Option<OsString>,
    /// `XDG_CACHE_HOME`.
    pub xdg_cache_home: Option<OsString>,
    /// `HOME`.
    pub home: Option<OsString>,
    /// `LOCALAPPDATA` (Windows only).
    pub local_app_data: Option<OsString>,
}

impl EnvValues {
    /// Reads the variables from this process's environment.
    pub(crate) fn current() -> EnvValues {
        let get = std::env::var_os;
        EnvValues {
            cache: get(VAR_CACHE),
            cache_dir: get(VAR_CACHE_DIR),
            ttl_secs: get(VAR_TTL),
            xdg_cache_home: get("XDG_CACHE_HOME"),
            home: get("HOME"),
            local_app_data: get("LOCALAPPDATA"),
        }
    }
}

/// Where entries are read and written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Location {
    /// `AMORSIZE_CACHE=off`: nothing is read, written or created.
    Disabled,
    /// The cache directory (it may not exist yet: it is created on the first write).
    Dir(PathBuf),
    /// No directory could be derived (no `HOME`, say): the cache works as if empty,
    /// and says why once.
    Nowhere(&'static str),
}

/// Everything the store needs from the environment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Settings {
    /// Where entries live.
    pub location: Location,
    /// Entries older than this are expired.
    pub ttl: Duration,
    /// One message per variable whose value could not be understood and was ignored.
    pub complaints: Vec<String>,
}

/// Decides the settings from the variables' values. Pure: no file system, no
/// environment, no clock.
pub(crate) fn resolve(env: &EnvValues, platform: Platform) -> Settings {
    let mut complaints = Vec::new();
    let enabled = match env.cache.as_ref().map(|v| v.to_string_lossy()) {
        None => true,
        Some(v) => match v.trim().to_ascii_lowercase().as_str() {
            "off" | "0" | "false" | "no" => false,
            "" | "on" | "1" | "true" | "yes" | "auto" => true,
            _ => {
                complaints.push(format!(
                    "ignoring {VAR_CACHE}={v:?}: expected `off` or `on`"
                ));
                true
            }
        },
    };
    let ttl = match env.ttl_secs.as_ref().map(|v| v.to_string_lossy()) {
        None => DEFAULT_TTL,
        Some(v) if v.trim().is_empty() => DEFAULT_TTL,
        Some(v) => match v.trim().parse::<u64>() {
            Ok(secs) => Duration::from_secs(secs),
            Err(_) => {
                complaints.push(format!(
                    "ignoring {VAR_TTL}={v:?}: expected a whole number of seconds"
                ));
                DEFAULT_TTL
            }
        },
    };
    let location = if enabled {
        match cache_dir(env, platform) {
            Ok(dir) => Location::Dir(dir),
            Err(why) => Location::Nowhere(why),
        }
    } else {
        Location::Disabled
    };
    Settings {
        location,
        ttl,
        complaints,
    }
}

/// The cache directory the variables name, whether or not the cache is on (clearing
/// it must work with `AMORSIZE_CACHE=off` too), or why there is none.
pub(crate) fn cache_dir(env: &EnvValues, platform: Platform) -> Result<PathBuf, &'static str> {
    /// A variable's value if it is set and not empty.
    fn set(v: &Option<OsString>) -> Option<&OsString> {
        v.as_ref().filter(|v| !v.is_empty())
    }
    if let Some(dir) = set(&env.cache_dir) {
        // Used as given, relative or not: the user chose it.
        return Ok(PathBuf::from(dir));
    }
    // The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
    if let Some(xdg) = set(&env.xdg_cache_home).map(PathBuf::from)
        && xdg.is_absolute()
    {
        return Ok(xdg.join("amorsize"));
    }
    match platform {
        Platform::Unix => set(&env.home)
            .map(|home| PathBuf::from(home).join(".cache").join("amorsize"))
            .ok_or("no AMORSIZE_CACHE_DIR, XDG_CACHE_HOME or HOME to put it in"),
        Platform::MacOs => set(&env.home)
            .map(|home| {
                PathBuf::from(home)
                    .join("Library")
                    .join("Caches")
                    .join("amorsize")
            })
            .ok_or("no AMORSIZE_CACHE_DIR, XDG_CACHE_HOME or HOME to put it in"),
        Platform::Windows => set(&env.local_app_data)
            .map(|dir| PathBuf::from(dir).join("amorsize"))
            .ok_or("no AMORSIZE_CACHE_DIR, XDG_CACHE_HOME or LOCALAPPDATA to put it in"),
    }
}

/// The settings of this process's environment.
pub(crate) fn from_env() -> Settings {
    resolve(&EnvValues::current(), Platform::current())
}
