//! A hung column (a deadlock in an executor) must not hang the benchmark. Every column
//! run holds a [`Guard`] with a deadline; past it, the watchdog thread prints what hung
//! and the report of the rows finished so far, and exits with status 3.

use std::sync::{Mutex, Once, PoisonError};
use std::time::{Duration, Instant};

struct Watch {
    what: String,
    start: Instant,
    limit: Duration,
}

static CURRENT: Mutex<Option<Watch>> = Mutex::new(None);
static PARTIAL: Mutex<String> = Mutex::new(String::new());

/// Exit status when a column hung.
pub const HUNG: i32 = 3;

/// Clears the watch when dropped.
#[derive(Debug)]
pub struct Guard(());

impl Drop for Guard {
    fn drop(&mut self) {
        *CURRENT.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

/// Watches the code that runs while the returned guard lives: past `limit_secs`, the
/// benchmark reports `what` as hung and exits.
pub fn guard(what: impl FnOnce() -> String, limit_secs: f64) -> Guard {
    start();
    *CURRENT.lock().unwrap_or_else(PoisonError::into_inner) = Some(Watch {
        what: what(),
        start: Instant::now(),
        limit: Duration::from_secs_f64(limit_secs),
    });
    Guard(())
}

/// Keeps the Markdown of the rows finished so far, printed if a later column hangs.
pub fn set_partial(markdown: String) {
    *PARTIAL.lock().unwrap_or_else(PoisonError::into_inner) = markdown;
}

fn start() {
    static START: Once = Once::new();
    START.call_once(|| {
        std::thread::Builder::new()
            .name("bench-watchdog".into())
            .spawn(watch)
            .expect("start the watchdog thread");
    });
}

fn watch() {
    loop {
        std::thread::sleep(Duration::from_millis(500));
        let hung = CURRENT
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .filter(|w| w.start.elapsed() > w.limit)
            .map(|w| (w.what.clone(), w.start.elapsed()));
        if let Some((what, after)) = hung {
            let partial = PARTIAL.lock().unwrap_or_else(PoisonError::into_inner);
            print!("{partial}");
            println!(
                "\n## Hung\n\n{what} did not finish within {:.0} s: the benchmark stopped \
                 here (rows above are complete).",
                after.as_secs_f64()
            );
            eprintln!(
                "bench: HUNG: {what} has run for {:.0} s; stopping",
                after.as_secs_f64()
            );
            std::process::exit(HUNG);
        }
    }
}
