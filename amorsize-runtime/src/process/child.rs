//! The worker side: entered before `main` when the environment carries [`WORKER_MARKER`].
//!
//! A load-time constructor checks the marker first thing; if it is set, the process
//! becomes a worker and never returns into `main` or the test harness. [`crate::init`]
//! does the same for programs that want it explicit (or where constructors do not run).
//!
//! The worker moves its protocol off the standard descriptors: frames are read from a
//! private copy of fd 0 and written to a private copy of fd 1, then fd 0 is pointed at
//! `/dev/null` and fd 1 at stderr, so a task that prints or reads stdin cannot corrupt
//! the protocol. It then says `Hello`, and runs items one at a time, writing one reply
//! frame per item (in a single write, before the next item starts: a death loses only
//! the item in progress). It exits when its input ends (the parent is gone or retired
//! it), after an idle timeout (saying `Bye` first), or when a watchdog sees that the
//! parent process has gone.

use std::fs::File;
use std::io::{BufReader, Write};
use std::os::fd::{FromRawFd, RawFd};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use super::frame::{self, ToWorker};
use super::registry::{self, TaskEntry};
use crate::context::{WORKER_MARKER, enter_worker_process};
use crate::error::panic_text;

/// How often the watchdog checks that the parent is still there.
const WATCHDOG_PERIOD: Duration = Duration::from_millis(200);

/// The worker's parsed marker.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Marker {
    pub protocol: u32,
    pub parent: u32,
    pub idle_ms: u64,
}

impl Marker {
    /// The marker's value for a worker of this process.
    pub(crate) fn value(idle: Duration) -> String {
        format!(
            "{}:{}:{}",
            frame::PROTOCOL,
            std::process::id(),
            idle.as_millis()
        )
    }

    pub(crate) fn parse(s: &str) -> Option<Marker> {
        let mut it = s.split(':');
        let m = Marker {
            protocol: it.next()?.parse().ok()?,
            parent: it.next()?.parse().ok()?,
            idle_ms: it.next()?.parse().ok()?,
        };
        it.next().is_none().then_some(m)
    }
}

#[ctor::ctor(unsafe, priority = late)]
fn amorsize_worker_entry() {
    // SAFETY (of the constructor as a whole, `unsafe` in ctor's terms): it runs before
    // `main` on the only thread; it uses std only for the environment, file
    // descriptors, threads and process exit, which need no runtime set-up by `main`.
    enter_if_marked(true);
}

/// Becomes a worker and exits if the environment carries the marker; returns otherwise.
/// `from_ctor`: called from the load-time constructor (single-threaded).
pub(crate) fn enter_if_marked(from_ctor: bool) {
    let Some(value) = std::env::var_os(WORKER_MARKER) else {
        return;
    };
    enter_worker_process();
    if from_ctor {
        // SAFETY: load-time constructors run before `main` on the process's only
        // thread, so nothing reads the environment concurrently. Removing the marker
        // keeps processes that a task starts from becoming workers.
        unsafe { std::env::remove_var(WORKER_MARKER) };
    }
    let code = match value.to_str().and_then(Marker::parse) {
        Some(m) if m.protocol == frame::PROTOCOL => run(&m),
        _ => {
            eprintln!("amorsize: worker started with a marker it does not understand: {value:?}");
            3
        }
    };
    std::process::exit(code)
}

/// The worker: set up descriptors, say hello, serve items. Returns the exit code.
fn run(marker: &Marker) -> i32 {
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } as u32 != marker.parent {
        return 0; // The parent died before this worker got going.
    }
    // As under Rust's `main` (which a worker never reaches): a write to a closed pipe
    // is an error, not a fatal signal.
    // SAFETY: setting SIGPIPE's disposition to "ignore" installs no handler code.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let (input, output) = match private_descriptors() {
        Ok(fds) => fds,
        Err(e) => {
            eprintln!("amorsize: worker cannot set up its descriptors: {e}");
            return 4;
        }
    };
    let parent = marker.parent;
    // A worker busy in a task does not read its input, so EOF alone would not end it
    // when the parent dies; the watchdog does. (PR_SET_PDEATHSIG fires when the
    // spawning *thread* exits, which is not the parent exiting.)
    let _ = std::thread::Builder::new()
        .name("amorsize-watchdog".into())
        .spawn(move || {
            loop {
                std::thread::sleep(WATCHDOG_PERIOD);
                // SAFETY: getppid has no preconditions.
                if unsafe { libc::getppid() } as u32 != parent {
                    // SAFETY: `_exit` ends the process at once, skipping destructors
                    // and atexit handlers, which is what a worker without a parent needs.
                    unsafe { libc::_exit(0) }
                }
            }
        });
    // SAFETY: `private_descriptors` returned two fresh descriptors owned by nobody
    // else; each `File` takes sole ownership of one.
    let (input, output) = unsafe { (File::from_raw_fd(input), File::from_raw_fd(output)) };
    let idle = Duration::from_millis(marker.idle_ms.max(1));
    catch_unwind(AssertUnwindSafe(|| serve(input, output, idle))).unwrap_or(5)
}

/// Moves the protocol to private, close-on-exec descriptors; points fd 0 at
/// `/dev/null` and fd 1 at stderr. Returns `(input, output)`.
fn private_descriptors() -> std::io::Result<(RawFd, RawFd)> {
    fn check(rc: libc::c_int) -> std::io::Result<libc::c_int> {
        if rc < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(rc)
        }
    }
    // SAFETY: plain descriptor calls on descriptors this process owns (0, 1, 2 are
    // open: the parent set them up); the results are checked; the path is a valid
    // NUL-terminated string.
    unsafe {
        let input = check(libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3))?;
        let output = check(libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3))?;
        check(libc::dup2(2, 1))?;
        let null = check(libc::open(
            c"/dev/null".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        ))?;
        check(libc::dup2(null, 0))?;
        libc::close(null);
        Ok((input, output))
    }
}

/// Waits until `fd` is readable (`true`) or `timeout` passes (`false`).
fn readable(fd: RawFd, timeout: Duration) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = timeout.as_millis().min(i32::MAX as u128) as libc::c_int;
    loop {
        // SAFETY: `p` is one valid pollfd for the duration of the call.
        let rc = unsafe { libc::poll(&mut p, 1, ms) };
        if rc >= 0 {
            // Readable, hung up or in error: in each case the read tells.
            return rc > 0;
        }
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return true;
        }
    }
}

/// Serves frames until the input ends or the worker idles out.
fn serve(input: File, mut output: File, idle: Duration) -> i32 {
    use std::os::fd::AsRawFd;
    let fd = input.as_raw_fd();
    let mut input = BufReader::with_capacity(1 << 16, input);
    let mut body = Vec::new();
    let mut out = Vec::new();
    let mut result = Vec::new();
    let mut task: Option<&'static TaskEntry> = None;

    out.clear();
    frame::hello(&mut out, registry::hash(), std::process::id());
    if output.write_all(&out).is_err() {
        return 0;
    }
    loop {
        if input.buffer().is_empty() && !readable(fd, idle) {
            out.clear();
            frame::bye(&mut out);
            let _ = output.write_all(&out);
            return 0;
        }
        match frame::read_frame(&mut input, &mut body) {
            Ok(true) => {}
            Ok(false) => return 0,
            Err(e) => return fatal(&mut output, &format!("reading a frame: {e}")),
        }
        out.clear();
        match frame::parse_to_worker(&body) {
            Ok(ToWorker::Task {
                id,
                module,
                name,
                signature,
            }) => match registry::by_wire_id(id, module, name, signature) {
                Some(t) => {
                    task = Some(t);
                    continue;
                }
                None => {
                    return fatal(
                        &mut output,
                        &format!(
                            "no task {module}::{name}: {signature} at registry index {}",
                            id.0
                        ),
                    );
                }
            },
            Ok(ToWorker::Item { index, payload }) => {
                let Some(t) = task else {
                    return fatal(&mut output, "an item before any task");
                };
                result.clear();
                match catch_unwind(AssertUnwindSafe(|| t.run(payload, &mut result))) {
                    Ok(Ok(())) => {
                        if let Err(e) = frame::output(&mut out, index, &result) {
                            frame::failed(&mut out, index, &format!("output: {e}"));
                        }
                    }
                    Ok(Err(e)) => frame::failed(&mut out, index, &e.to_string()),
                    Err(payload) => {
                        let (message, kind) = panic_text(&*payload);
                        frame::panicked(&mut out, index, &message, kind)
                    }
                }
            }
            Ok(ToWorker::Ping { nonce }) => frame::pong(&mut out, nonce),
            Err(e) => return fatal(&mut output, &e.to_string()),
        }
        // One reply per item, in one write, before the next item starts.
        if output.write_all(&out).is_err() {
            return 0;
        }
    }
}

fn fatal(output: &mut File, message: &str) -> i32 {
    let mut out = Vec::new();
    frame::fatal(&mut out, message);
    let _ = output.write_all(&out);
    2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_parse() {
        let m = Marker::parse(&Marker::value(Duration::from_millis(1500))).unwrap();
        assert_eq!(m.protocol, frame::PROTOCOL);
        assert_eq!(m.parent, std::process::id());
        assert_eq!(m.idle_ms, 1500);
        for bad in ["", "1", "1:2", "1:2:x", "1:2:3:4", "a:b:c"] {
            assert_eq!(Marker::parse(bad), None, "{bad}");
        }
    }
}
