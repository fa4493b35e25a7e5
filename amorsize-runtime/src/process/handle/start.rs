//! Starting a worker ([`Worker::spawn`]) and checking its `Hello`
//! ([`Worker::handshake`]).
//!
//! Apart from [`super`] because this is the one place that creates processes, pipes
//! and the two pipe threads, and the only code that runs before a worker can be used;
//! everything after the handshake goes through the methods in [`super`].

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, unbounded};

use super::pipes::{Watched, read_loop, write_loop};
use super::{Event, HANDSHAKE_TIMEOUT, StartError, Worker, describe};
use crate::context::{WORKER_MARKER, is_worker_process};
use crate::process::child::Marker;
use crate::process::frame::{self, FromWorker};
use crate::process::registry;

/// The argument a worker is started with. Workers ignore their arguments; should the
/// constructor not run, a test harness reads this as a filter that matches no test and
/// exits at once instead of running the suite again.
const WORKER_ARG: &str = "__amorsize_worker__";

/// The source of [`Worker`] ids.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

impl Worker {
    /// Starts a worker that exits after `idle` without work; it still has to say
    /// `Hello` (see [`Worker::handshake`]). `on_exit` is called with the worker's
    /// [`id`](Worker::id) on its reader thread once the process has ended.
    pub(in crate::process) fn spawn(
        idle: Duration,
        on_exit: fn(u64),
    ) -> Result<Worker, StartError> {
        if is_worker_process() {
            return Err(StartError(
                "a worker process never starts workers itself".to_string(),
            ));
        }
        let exe = std::env::current_exe()
            .map_err(|e| StartError(format!("cannot find this executable: {e}")))?;
        let mut cmd = Command::new(&exe);
        cmd.arg(WORKER_ARG).env(WORKER_MARKER, Marker::value(idle));
        Worker::spawn_watched(cmd, true, on_exit)
    }

    /// Starts `cmd` as a worker, with piped stdin and stdout and a reader and a writer
    /// thread. `pidfd` false makes the reader use the portable way of noticing the
    /// worker's exit (as where pidfds are not available).
    pub(super) fn spawn_watched(
        mut cmd: Command,
        pidfd: bool,
        on_exit: fn(u64),
    ) -> Result<Worker, StartError> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| StartError(format!("cannot start {:?}: {e}", cmd.get_program())))?;
        let pid = child.id();
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(StartError("worker pipes missing".to_string()));
        };
        // Opened before anyone can reap the child (only its reader thread does), so
        // the pid still names this process, even if it already exited.
        let pidfd = if pidfd { open_pidfd(pid) } else { None };
        // The writer must not block for ever on a full pipe whose reader is a process
        // the dead worker started (see `write_watched`). If this fails, writes block,
        // which only loses that guarantee.
        let _ = set_nonblocking(stdin.as_raw_fd());
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let child = Arc::new(Mutex::new(child));
        let (frames_tx, frames_rx) = unbounded::<Vec<u8>>();
        let (events_tx, events_rx) = unbounded::<Event>();
        // Nothing is ever sent on it: the reader thread drops the sender once the
        // process has ended, which wakes the writer thread so it closes stdin and ends.
        let (ended_tx, ended_rx) = bounded::<()>(0);
        let writer = std::thread::Builder::new()
            .name(format!("amorsize-w{pid}-in"))
            .spawn(move || write_loop(stdin, &frames_rx, &ended_rx));
        let reply_pause = Arc::new(AtomicU64::new(0));
        let reader = {
            let child = Arc::clone(&child);
            let pause = Arc::clone(&reply_pause);
            std::thread::Builder::new()
                .name(format!("amorsize-w{pid}-out"))
                .spawn(move || {
                    let watched = Watched {
                        pipe: stdout,
                        pidfd,
                        child: &child,
                        exited: false,
                    };
                    read_loop(watched, (&events_tx, &pause), ended_tx);
                    on_exit(id);
                })
        };
        let worker = Worker {
            pid,
            id,
            frames: Some(frames_tx),
            events: events_rx,
            child,
            task: None,
            idle_since: Instant::now(),
            reply_pause,
        };
        match (writer, reader) {
            (Ok(_), Ok(_)) => Ok(worker),
            (w, r) => {
                worker.kill();
                if r.is_err() {
                    // No reader thread to reap it.
                    let _ = worker
                        .child
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .wait();
                }
                let e = w
                    .err()
                    .or(r.err())
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                Err(StartError(format!("cannot start a pipe thread: {e}")))
            }
        }
    }

    /// Waits for the worker's `Hello` and checks that it speaks this protocol and has
    /// this executable's task registry.
    pub(in crate::process) fn handshake(self, deadline: Instant) -> Result<Worker, StartError> {
        let fail = |w: Worker, why: String| {
            w.kill();
            Err(StartError(format!("worker {}: {why}", w.pid)))
        };
        match self.events.recv_deadline(deadline) {
            Ok(Event::Frame(FromWorker::Hello {
                magic,
                protocol,
                registry,
                ..
            })) => {
                if magic != frame::MAGIC || protocol != frame::PROTOCOL {
                    fail(
                        self,
                        format!("speaks protocol {protocol} (magic {magic:#x})"),
                    )
                } else if registry != registry::hash() {
                    fail(
                        self,
                        "its task registry differs from this process's (is the executable \
                         on disk a different build?)"
                            .to_string(),
                    )
                } else {
                    Ok(self)
                }
            }
            Ok(Event::Frame(other)) => fail(self, format!("sent {other:?} instead of a hello")),
            Ok(Event::Closed(exit)) => fail(
                self,
                format!(
                    "exited before the handshake ({}){}",
                    describe(&exit),
                    if exit.detail.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", exit.detail)
                    }
                ),
            ),
            Err(_) => fail(
                self,
                format!(
                    "no handshake within {HANDSHAKE_TIMEOUT:?} (does this program run \
                     amorsize's load-time constructor, or call amorsize::init() first \
                     thing in main?)"
                ),
            ),
        }
    }
}

/// A pidfd for process `pid` (close-on-exec, as `pidfd_open` makes it), or `None` if
/// the kernel has none (before Linux 5.3) or refuses one (seccomp filters).
#[cfg(target_os = "linux")]
fn open_pidfd(pid: u32) -> Option<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1; no
    // memory is passed.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

#[cfg(not(target_os = "linux"))]
fn open_pidfd(_pid: u32) -> Option<OwnedFd> {
    None
}

/// Sets `O_NONBLOCK` on `fd`, which this process owns.
fn set_nonblocking(fd: RawFd) -> std::io::Result<()> {
    // SAFETY: fcntl with F_GETFL / F_SETFL on an open descriptor passes no memory.
    let rc = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            flags
        } else {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK)
        }
    };
    if rc < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(())
    }
}
