//! The parent's handle on one worker process ([`Worker`]): start, handshake, pipes,
//! reaping.
//!
//! Each worker has a writer thread (owns its stdin; sends whole batches of frames) and
//! a reader thread (owns its stdout; parses frames into [`Event`]s), so neither side of
//! the pipe can fill up and deadlock the other, whatever the item sizes.
//!
//! The reader watches the worker's *process*, not only its pipe: a process the worker
//! started (a task may fork) inherits the pipe and can keep it open long after the
//! worker died, so end of file alone could come much later, or never. On Linux the
//! reader polls a pidfd next to the pipe; elsewhere (or on kernels without
//! `pidfd_open`) it polls the pipe with a timeout and asks `waitpid` in between. Once
//! the worker has exited, what it wrote is already in the pipe: the reader takes what
//! is ready, then treats the stream as ended. It then reaps the process (killing it if
//! it does not exit promptly), tells the writer thread to end (closing stdin) and
//! reports [`Event::Closed`] with the exit status: no zombies, no thread or
//! descriptor left behind.
//!
//! Dropping a [`Worker`] closes its stdin, which ends the worker (EOF). The pool that
//! keeps idle workers between jobs is [`super::idle`].

use std::io::{BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, TryRecvError, bounded, select, unbounded};

use super::child::Marker;
use super::frame::{self, FromWorker};
use super::registry::{self, TaskEntry};
use crate::context::{WORKER_MARKER, is_worker_process};

/// A worker that has not said `Hello` by then is given up on.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// After its output ends, a worker has this long to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// Without a pidfd, how often a reader waiting for output checks whether the worker
/// has exited; and, always, how often a writer blocked on a full pipe does. This is
/// how late a death is noticed when a process the worker started holds its pipes.
const EXIT_CHECK_PERIOD: Duration = Duration::from_millis(50);
/// The argument a worker is started with. Workers ignore their arguments; should the
/// constructor not run, a test harness reads this as a filter that matches no test and
/// exits at once instead of running the suite again.
const WORKER_ARG: &str = "__amorsize_worker__";

/// How a worker process ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Exit {
    /// Exit code, if it exited.
    pub code: Option<i32>,
    /// Signal, if it was killed by one.
    pub signal: Option<i32>,
    /// What the parent saw, e.g. a malformed frame.
    pub detail: String,
}

/// What a worker's reader thread reports.
#[derive(Debug)]
pub(crate) enum Event {
    /// A frame from the worker.
    Frame(FromWorker),
    /// The worker exited (or its output ended) and the process was reaped.
    Closed(Exit),
}

/// Why no worker could be started.
#[derive(Clone, Debug)]
pub(crate) struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One worker process, seen from the parent.
pub(crate) struct Worker {
    pid: u32,
    /// Unique for the life of this process (unlike the pid, which the system reuses):
    /// how the reader thread finds its worker in the idle pool.
    id: u64,
    frames: Option<Sender<Vec<u8>>>,
    events: Receiver<Event>,
    child: Arc<Mutex<Child>>,
    /// The task the worker was last told about (a `Task` frame is sent on change).
    task: Option<&'static TaskEntry>,
    /// When it last went back to the idle pool.
    pub(super) idle_since: Instant,
    /// How long its reader may let close replies gather, in nanoseconds (see
    /// [`read_loop`]); 0: none.
    reply_pause: Arc<AtomicU64>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker").field("pid", &self.pid).finish()
    }
}

impl Worker {
    /// The worker's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The worker's id, unique for the life of this process.
    pub(super) fn id(&self) -> u64 {
        self.id
    }

    /// Whether the worker has something to say while owing nothing: it left or died.
    pub(super) fn has_news(&self) -> bool {
        !self.events.is_empty()
    }

    /// The worker's events (frames, then `Closed`).
    pub(crate) fn events(&self) -> &Receiver<Event> {
        &self.events
    }

    /// Lets the reader gather replies that come close together for up to `pause` (see
    /// [`read_loop`]); `Duration::ZERO` reads each as it comes.
    pub(crate) fn set_reply_pause(&self, pause: Duration) {
        let nanos = u64::try_from(pause.as_nanos()).unwrap_or(u64::MAX);
        self.reply_pause.store(nanos, Ordering::Relaxed);
    }

    /// Queues bytes (whole frames) for the worker; `false` if its pipe is gone.
    pub(crate) fn send(&self, bytes: Vec<u8>) -> bool {
        self.frames
            .as_ref()
            .is_some_and(|tx| tx.send(bytes).is_ok())
    }

    /// Appends a `Task` frame to `out` unless the worker already runs `task`.
    pub(crate) fn bind(&mut self, task: &'static TaskEntry, out: &mut Vec<u8>) {
        if !self.task.is_some_and(|t| std::ptr::eq(t, task)) {
            frame::task(out, task);
            self.task = Some(task);
        }
    }

    /// Kills the process (its reader thread then reaps it and reports `Closed`).
    pub(crate) fn kill(&self) {
        let _ = self
            .child
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .kill();
    }

    /// Starts a worker that exits after `idle` without work; it still has to say
    /// `Hello` (see [`Worker::handshake`]). `on_exit` is called with the worker's
    /// [`id`](Worker::id) on its reader thread once the process has ended.
    pub(super) fn spawn(idle: Duration, on_exit: fn(u64)) -> Result<Worker, StartError> {
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
    fn spawn_watched(
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
    pub(super) fn handshake(self, deadline: Instant) -> Result<Worker, StartError> {
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

impl Drop for Worker {
    fn drop(&mut self) {
        // Closing stdin ends the worker; its reader thread reaps it.
        self.frames = None;
    }
}

/// A short description of an exit status.
pub(crate) fn describe(exit: &Exit) -> String {
    match (exit.signal, exit.code) {
        (Some(s), _) => format!("signal {s}"),
        (None, Some(c)) => format!("exit code {c}"),
        (None, None) => "unknown status".to_string(),
    }
}

fn write_loop(mut stdin: ChildStdin, frames: &Receiver<Vec<u8>>, ended: &Receiver<()>) {
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
struct Watched<'a> {
    pipe: ChildStdout,
    /// A pidfd of the worker, readable once it has exited; `None` where pidfds are not
    /// available (then `child` is asked every [`EXIT_CHECK_PERIOD`]).
    pidfd: Option<OwnedFd>,
    child: &'a Mutex<Child>,
    /// The worker has exited: everything it wrote is already in the pipe.
    exited: bool,
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

/// Replies closer together than this are read in batches (see [`read_loop`]).
const COALESCE_GAP: Duration = Duration::from_micros(200);
/// The longest the reader lets replies gather in the pipe (see
/// [`Worker::set_reply_pause`]).
pub(crate) const MAX_REPLY_PAUSE: Duration = Duration::from_micros(1000);

/// Reads frames until the worker's output ends (or it breaks the protocol), reaps it,
/// ends its writer thread (dropping `ended`) and reports `Closed`.
fn read_loop(
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

/// The source of [`Worker`] ids.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Worker {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        Worker::spawn_watched(cmd, true, |_| {}).expect("sh starts")
    }

    fn closed(w: &Worker) -> Exit {
        loop {
            match w.events().recv_timeout(Duration::from_secs(10)) {
                Ok(Event::Closed(exit)) => return exit,
                Ok(Event::Frame(_)) => {}
                Err(e) => panic!("no Closed event: {e}"),
            }
        }
    }

    /// The pipe (`pipe:[inode]`) that descriptor `fd` of process `pid` is, if it is one.
    fn pipe_of(pid: &str, fd: u32) -> String {
        let link = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).expect("readlink");
        let link = link.to_string_lossy().into_owned();
        assert!(link.starts_with("pipe:"), "{link}");
        link
    }

    /// Whether this process has a descriptor for `pipe`.
    fn holds(pipe: &str) -> bool {
        std::fs::read_dir("/proc/self/fd")
            .expect("read /proc/self/fd")
            .flatten()
            .any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == pipe))
    }

    /// A worker whose own child keeps both its pipes open: its exit is noticed at once
    /// (with a pidfd and without), the frame it wrote first still arrives, and both
    /// threads let go of the pipes although the `Worker` is still held.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_exit_is_noticed_while_a_child_of_the_worker_holds_its_pipes() {
        for pidfd in [true, false] {
            let pidfile = std::env::temp_dir()
                .join(format!("amorsize-pool-test-{}-{pidfd}", std::process::id()));
            // A `Bye` frame, then a `sleep` in the background on the same stdin (a
            // background job's stdin is otherwise /dev/null) and stdout; the shell
            // exits with 3 while the writer is stuck on a full pipe.
            let script = format!(
                r"printf '\001\000\000\000\025'; exec 3<&0; sleep 20 <&3 & echo $! >'{}'; \
                  sleep 0.3; exit 3",
                pidfile.display()
            );
            let mut cmd = Command::new("sh");
            cmd.args(["-c", &script]);
            let w = Worker::spawn_watched(cmd, pidfd, |_| {}).expect("sh starts");
            // More than a pipe holds: the writer blocks, and nothing ever reads it.
            assert!(w.send(vec![0; 1 << 20]));
            let t = Instant::now();
            match w.events().recv_timeout(Duration::from_secs(5)) {
                Ok(Event::Frame(FromWorker::Bye)) => {}
                other => panic!("pidfd {pidfd}: {other:?}"),
            }
            let exit = closed(&w);
            assert_eq!(exit.code, Some(3), "pidfd {pidfd}: {exit:?}");
            assert!(exit.detail.is_empty(), "pidfd {pidfd}: {exit:?}");
            assert!(
                t.elapsed() < Duration::from_secs(3),
                "pidfd {pidfd}: took {:?}",
                t.elapsed()
            );
            let sleeper = std::fs::read_to_string(&pidfile).expect("pid file");
            let sleeper = sleeper.trim();
            let _ = std::fs::remove_file(&pidfile);
            let (stdin, stdout) = (pipe_of(sleeper, 0), pipe_of(sleeper, 1));
            let deadline = Instant::now() + Duration::from_secs(2);
            while holds(&stdin) || holds(&stdout) {
                assert!(
                    Instant::now() < deadline,
                    "pidfd {pidfd}: still holding stdin {} or stdout {}",
                    holds(&stdin),
                    holds(&stdout)
                );
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(!w.send(vec![0; 8]), "the writer thread has ended");
            drop(w);
            if let Ok(pid) = sleeper.parse::<libc::pid_t>() {
                // SAFETY: kill takes a pid and a signal; no memory is passed.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }

    #[test]
    fn garbage_from_a_worker_is_an_error_and_the_process_is_reaped() {
        // Not a frame: "hell" read as a length is far beyond the limit.
        let w = sh("echo hello; sleep 5");
        let exit = closed(&w);
        assert!(exit.detail.contains("bad frame length"), "{exit:?}");
        // Killed for breaking the protocol, then reaped.
        assert_eq!(exit.signal, Some(libc::SIGKILL), "{exit:?}");
        assert!(!std::path::Path::new(&format!("/proc/{}", w.pid())).exists());

        // A truncated frame: a length of 9, then 2 bytes and the end.
        let w = sh(r"printf '\011\000\000\000\021ab'");
        let exit = closed(&w);
        assert!(exit.detail.contains("truncated"), "{exit:?}");
        assert_eq!(exit.code, Some(0));

        // A well-formed frame with a bad body.
        let w = sh(r"printf '\003\000\000\000\021ab'; sleep 5");
        let exit = closed(&w);
        assert!(exit.detail.contains("malformed"), "{exit:?}");
    }

    #[test]
    fn a_handshake_that_never_comes_times_out_and_garbage_fails_it() {
        let w = sh("sleep 5");
        let t = Instant::now();
        let e = w
            .handshake(Instant::now() + Duration::from_millis(200))
            .expect_err("no hello");
        assert!(e.0.contains("no handshake"), "{e}");
        assert!(t.elapsed() < Duration::from_secs(3));
        let e = sh("echo not a worker")
            .handshake(Instant::now() + Duration::from_secs(5))
            .expect_err("garbage");
        // "not " read as a length is 544501614 bytes, which never arrive.
        assert!(e.0.contains("truncated"), "{e}");
    }

    #[test]
    fn a_real_worker_answers_and_rejects_garbage() {
        let mut ws = super::super::idle::start(1).expect("a worker of this test binary starts");
        let mut w = ws.pop().expect("one worker");
        let pid = w.pid();
        assert_ne!(pid, std::process::id());
        crate::process::costs::round_trip(&mut w, 7).expect("echo round trip");
        // A frame the worker cannot parse: it says why and exits.
        assert!(w.send(vec![1, 0, 0, 0, 99]));
        let mut fatal = None;
        let exit = loop {
            match w.events().recv_timeout(Duration::from_secs(10)) {
                Ok(Event::Frame(FromWorker::Fatal { message })) => fatal = Some(message),
                Ok(Event::Closed(exit)) => break exit,
                Ok(other) => panic!("unexpected {other:?}"),
                Err(e) => panic!("worker did not exit: {e}"),
            }
        };
        assert!(fatal.is_some_and(|m| m.contains("unknown tag")));
        assert_eq!(exit.code, Some(2));
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "reaped"
        );
    }
}
