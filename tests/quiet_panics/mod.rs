//! Panics a test causes on purpose, silenced: their message and backtrace would fill
//! the test output with lines that read as failures. Called at the start of a task, so
//! it also takes effect in the worker processes that run it (they never run the test's
//! own set-up).

use std::sync::Once;

/// Installs (once per process) a panic hook that stays silent for panics whose message
/// is `expected`, and reports every other panic (a failed assertion) the usual way.
pub fn quiet_panics(expected: fn(&str) -> bool) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let msg = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !expected(msg) {
                default(info);
            }
        }));
    });
}
