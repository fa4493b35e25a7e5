//! The two threads that own a worker's pipes: the writer ([`write_loop`]) and the
//! reader ([`read_loop`]), which watches the worker's process and reaps it.
//!
//! Apart from [`super`] because this is the low-level part (`poll`, non-blocking
//! writes, pidfds, reaping) that runs on its own threads; the rest of the crate only
//! sees the [`Event`]s it sends and the frames queued for it.

use std::io::{BufReader, Read, Write};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::process::{Child, ChildStdin, ChildStdout};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, select};

use super::{Event, Exit};
use crate::process::frame;

/// After its output ends, a worker has this long to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// Without a pidfd, how often a reader waiting for output checks whether the worker
/// has exited; and, always, how often a writer blocked on a full pipe does. This is
/// how late a death is noticed when a process the worker started holds its pipes.
const EXIT_CHECK_PERIOD: Duration = Duration::from_millis(50);
/// Replies closer together than this are read in batches (see [`read_loop`]).
const COALESCE_GAP: Duration = Duration::from_micros(200);

pub(super) fn write_loop(mut stdin: ChildStdin, frames: &Receiver<Vec<u8>>, ended: &Receiver<()>) {
    // A write to a worker that died raises SIGPIPE on this thread; blocked here, it
    // cannot end the parent (should the program not ignore it, as Rust's `main`
    // does) and the write fails with EPIPE instead.
    // SAFETY: `set` is a valid, initialised signal set for the duration of the calls;
    // changing this thread's own mask affects no other thread.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGPIPE);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
    loop {
        // Ends when the `Worker` is dropped (no more frames: closing stdin ends the
        // worker) or when the process has ended (`ended` disconnects), even while the
        // `Worker` still waits in the pool or in a job: then nothing could read what
        // this thread writes, and it would keep the pipe and itself around.
        let bytes = select! {
            recv(frames) -> bytes => match bytes {
                Ok(bytes) => bytes,
                Err(_) => break,
            },
            recv(ended) -> _ => break,
        };
        if !write_watched(&mut stdin, &bytes, ended) {
            // The worker is gone; its reader thread reports how.
            break;
        }
    }
}

/// Writes all of `bytes` to the (non-blocking) pipe; `false` if the worker is gone.
///
/// A dead worker's pipe fails the write with EPIPE, unless a process the worker
/// started still holds its read end: then a full pipe never drains, so while waiting
/// for room this checks every [`EXIT_CHECK_PERIOD`] whether the reader thread saw the
/// worker end.
fn write_watched(stdin: &mut ChildStdin, mut bytes: &[u8], ended: &Receiver<()>) -> bool {
    while !bytes.is_empty() {
        match stdin.write(bytes) {
            Ok(0) => return false,
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if matches!(ended.try_recv(), Err(TryRecvError::Disconnected)) {
                    return false;
                }
                let mut p = [pollfd(stdin.as_raw_fd(), libc::POLLOUT)];
                if poll(&mut p, Some(EXIT_CHECK_PERIOD)).is_err() {
                    // Cannot wait for room (poll itself failed, which it does not in
                    // practice): pause rather than spin on the write.
                    std::thread::sleep(EXIT_CHECK_PERIOD);
                }
            }
            Err(_) => return false,
        }
    }
    true
}

/// A worker's output, read while watching its process: see [`Watched::read`].
pub(super) struct Watched<'a> {
    pub(super) pipe: ChildStdout,
    /// A pidfd of the worker, readable once it has exited; `None` where pidfds are not
    /// available (then `child` is asked every [`EXIT_CHECK_PERIOD`]).
    pub(super) pidfd: Option<OwnedFd>,
    pub(super) child: &'a Mutex<Child>,
    /// The worker has exited: everything it wrote is already in the pipe.
    pub(super) exited: bool,
}

impl Read for Watched<'_> {
    /// Reads from the pipe as soon as it has data (or end of file); returns end of file
    /// once the worker has exited and the pipe has nothing more ready, even if a
    /// process the worker started keeps the pipe open (and silent).
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let pipe = self.pipe.as_raw_fd();
        loop {
            if self.exited {
                // All the worker wrote is in the pipe already: take what is ready
                // (data, end of file or an error, which the read reports) and call
                // anything else the end, rather than wait for an end of file that
                // comes only when every process the worker started has let go.
                let mut p = [pollfd(pipe, libc::POLLIN)];
                poll(&mut p, Some(Duration::ZERO))?;
                return if p[0].revents != 0 {
                    self.pipe.read(buf)
                } else {
                    Ok(0)
                };
            }
            if let Some(pidfd) = self.pidfd.as_ref().map(AsRawFd::as_raw_fd) {
                let mut p = [pollfd(pipe, libc::POLLIN), pollfd(pidfd, libc::POLLIN)];
                poll(&mut p, None)?;
                if p[0].revents != 0 {
                    // Readable, hung up or in error: the read tells which.
                    return self.pipe.read(buf);
                }
                if p[1].revents & libc::POLLIN != 0 {
                    // Exited. The pipe is checked again above: the worker may have
                    // written its last frame between the two checks.
                    self.exited = true;
                } else if p[1].revents != 0 {
                    // The pidfd is unusable (it should not be): watch the portable
                    // way from now on.
                    self.pidfd = None;
                }
                continue;
            }
            let mut p = [pollfd(pipe, libc::POLLIN)];
            poll(&mut p, Some(EXIT_CHECK_PERIOD))?;
            if p[0].revents != 0 {
                return self.pipe.read(buf);
            }
            // Reaps the worker if it exited (the status stays in `Child` for `reap`).
            // An error means it cannot be waited for (SIGCHLD ignored: the system
            // reaped it), and then it is gone.
            let status = self
                .child
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .try_wait();
            if !matches!(status, Ok(None)) {
                self.exited = true;
            }
        }
    }
}

fn pollfd(fd: RawFd, events: libc::c_short) -> libc::pollfd {
    libc::pollfd {
        fd,
        events,
        revents: 0,
    }
}

/// Waits until one of `fds` is ready or `timeout` passes (`None`: no timeout).
fn poll(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> std::io::Result<()> {
    let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as libc::c_int);
    loop {
        // SAFETY: `fds` is a valid, exclusively borrowed slice of `fds.len()` pollfds
        // for the duration of the call.
        let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
        if rc >= 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Reads frames until the worker's output ends (or it breaks the protocol), reaps it,
/// ends its writer thread (dropping `ended`) and reports `Closed`.
pub(super) fn read_loop(
    watched: Watched<'_>,
    (events, pause): (&Sender<Event>, &AtomicU64),
    ended: Sender<()>,
) {
    let child = watched.child;
    let mut r = BufReader::with_capacity(1 << 16, watched);
    let mut body = Vec::new();
    let mut last_frame: Option<Instant> = None;
    let detail = loop {
        match frame::read_frame(&mut r, &mut body) {
            Ok(true) => match frame::parse_from_worker(&body) {
                Ok(msg) => {
                    let _ = events.send(Event::Frame(msg));
                    let now = Instant::now();
                    // Frames close together (a reply per item of ~100 us): read them a
                    // few at a time. Each wake-up of this thread and of the caller it
                    // sends to costs CPU the workers need; one per item took 15-20 %
                    // of two CPUs from lock-bound work. The replies wait in the pipe,
                    // written as each item ends, so a worker that dies meanwhile loses
                    // none of them. The executor sets how long (a fraction of a chunk,
                    // and of the item timeout), so that no worker waits for work.
                    let pause = Duration::from_nanos(pause.load(Ordering::Relaxed));
                    if !pause.is_zero()
                        && r.buffer().is_empty()
                        && last_frame.is_some_and(|t| now - t < COALESCE_GAP)
                    {
                        std::thread::sleep(pause);
                    }
                    last_frame = Some(now);
                }
                Err(e) => break e.to_string(),
            },
            Ok(false) => break String::new(),
            Err(e) => break e.to_string(),
        }
    };
    if !detail.is_empty() {
        // A worker that breaks the protocol cannot be trusted with more items.
        let _ = child.lock().unwrap_or_else(PoisonError::into_inner).kill();
    }
    // Closes the pipe and the pidfd.
    drop(r);
    let mut exit = reap(child);
    drop(ended);
    exit.detail = detail;
    let _ = events.send(Event::Closed(exit));
}

/// Waits for the child to exit (killing it after [`EXIT_GRACE`]) and returns its status.
fn reap(child: &Mutex<Child>) -> Exit {
    let deadline = Instant::now() + EXIT_GRACE;
    let mut pause = Duration::from_micros(200);
    let status = loop {
        let mut c = child.lock().unwrap_or_else(PoisonError::into_inner);
        match c.try_wait() {
            Ok(Some(s)) => break Some(s),
            Ok(None) if Instant::now() < deadline => {}
            Ok(None) => {
                let _ = c.kill();
                break c.wait().ok();
            }
            Err(_) => break None,
        }
        drop(c);
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    };
    use std::os::unix::process::ExitStatusExt;
    Exit {
        code: status.and_then(|s| s.code()),
        signal: status.and_then(|s| s.signal()),
        detail: String::new(),
    }
}
