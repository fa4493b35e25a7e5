//! The parent side of the worker processes: start, handshake, pipes, reaping, and the
//! pool of idle workers kept between jobs.
//!
//! Each worker has a writer thread (owns its stdin; sends whole batches of frames) and
//! a reader thread (owns its stdout; parses frames into [`Event`]s), so neither side of
//! the pipe can fill up and deadlock the other, whatever the item sizes. When the
//! worker's output ends, the reader thread reaps the process (killing it if it does
//! not exit promptly) and reports [`Event::Closed`] with its exit status: no zombies.
//!
//! Dropping a [`Worker`] closes its stdin, which ends the worker (EOF). Idle workers
//! wait in a process-wide pool for the next job; the pool retires one a little before
//! its own idle timeout ([`IDLE_TIMEOUT`]) would end it, so a job rarely meets a worker
//! that is just leaving (and one that is, says `Bye` without having read anything, so
//! its items are simply sent elsewhere).

use std::io::{BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, unbounded};

use super::frame::{self, FromWorker};
use super::registry::{self, TaskEntry};
use super::worker::Marker;
use super::{MARKER, is_worker};

/// A worker that has not said `Hello` by then is given up on.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A worker with nothing to do for this long exits by itself.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
/// After its output ends, a worker has this long to exit before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(2);
/// The argument a worker is started with. Workers ignore their arguments; should the
/// constructor not run, a test harness reads this as a filter that matches no test and
/// exits at once instead of running the suite again.
const WORKER_ARG: &str = "__amorsize_worker__";

/// The idle timeout given to new workers (adjustable for tests).
static IDLE: Mutex<Duration> = Mutex::new(IDLE_TIMEOUT);

/// Sets the idle timeout of workers started from now on, and how long the pool keeps
/// idle ones (slightly less).
pub(crate) fn set_idle_timeout(d: Duration) {
    *IDLE.lock().unwrap_or_else(PoisonError::into_inner) = d;
}

fn idle_timeout() -> Duration {
    *IDLE.lock().unwrap_or_else(PoisonError::into_inner)
}

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
    /// The worker's output ended and the process was reaped.
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
    frames: Option<Sender<Vec<u8>>>,
    events: Receiver<Event>,
    child: Arc<Mutex<Child>>,
    /// The task the worker was last told about (a `Task` frame is sent on change).
    task: Option<&'static TaskEntry>,
    idle_since: Instant,
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

    /// The worker's events (frames, then `Closed`).
    pub(crate) fn events(&self) -> &Receiver<Event> {
        &self.events
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
            frame::task(out, task.module(), task.name(), task.signature());
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

    /// Starts a worker; it still has to say `Hello` (see [`Worker::handshake`]).
    fn spawn() -> Result<Worker, StartError> {
        if is_worker() {
            return Err(StartError(
                "a worker process never starts workers itself".to_string(),
            ));
        }
        let exe = std::env::current_exe()
            .map_err(|e| StartError(format!("cannot find this executable: {e}")))?;
        let mut cmd = Command::new(&exe);
        cmd.arg(WORKER_ARG)
            .env(MARKER, Marker::value(idle_timeout()));
        Worker::spawn_command(cmd)
    }

    /// Starts `cmd` as a worker, with piped stdin and stdout and a reader and a writer
    /// thread.
    fn spawn_command(mut cmd: Command) -> Result<Worker, StartError> {
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
        let child = Arc::new(Mutex::new(child));
        let (frames_tx, frames_rx) = unbounded::<Vec<u8>>();
        let (events_tx, events_rx) = unbounded::<Event>();
        let writer = std::thread::Builder::new()
            .name(format!("amorsize-w{pid}-in"))
            .spawn(move || write_loop(stdin, &frames_rx));
        let reader = {
            let child = Arc::clone(&child);
            std::thread::Builder::new()
                .name(format!("amorsize-w{pid}-out"))
                .spawn(move || read_loop(stdout, &child, &events_tx))
        };
        let worker = Worker {
            pid,
            frames: Some(frames_tx),
            events: events_rx,
            child,
            task: None,
            idle_since: Instant::now(),
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
    fn handshake(self, deadline: Instant) -> Result<Worker, StartError> {
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

    /// Whether the worker can take work: alive, not leaving, not idle too long.
    fn fit(&self) -> bool {
        self.events.is_empty() && self.idle_since.elapsed() < retire_after()
    }
}

fn retire_after() -> Duration {
    let idle = idle_timeout();
    idle.saturating_sub((idle / 6).min(Duration::from_secs(5)))
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

fn write_loop(mut stdin: ChildStdin, frames: &Receiver<Vec<u8>>) {
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
    while let Ok(bytes) = frames.recv() {
        if stdin.write_all(&bytes).is_err() {
            // The worker is gone; its reader thread reports how.
            break;
        }
    }
}

fn read_loop(stdout: ChildStdout, child: &Mutex<Child>, events: &Sender<Event>) {
    let mut r = BufReader::with_capacity(1 << 16, stdout);
    let mut body = Vec::new();
    let detail = loop {
        match frame::read_frame(&mut r, &mut body) {
            Ok(true) => match frame::parse_from_worker(&body) {
                Ok(msg) => {
                    let _ = events.send(Event::Frame(msg));
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
    drop(r);
    let mut exit = reap(child);
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

/// Idle workers between jobs.
fn idle() -> &'static Mutex<Vec<Worker>> {
    static IDLE_WORKERS: Mutex<Vec<Worker>> = Mutex::new(Vec::new());
    &IDLE_WORKERS
}

/// Starts `n` workers at once and waits for their handshakes. Returns those that
/// started, or the first error if none did.
pub(crate) fn start(n: usize) -> Result<Vec<Worker>, StartError> {
    let mut spawned = Vec::with_capacity(n);
    let mut first_err = None;
    for _ in 0..n {
        match Worker::spawn() {
            Ok(w) => spawned.push(w),
            Err(e) => {
                first_err.get_or_insert(e);
                break;
            }
        }
    }
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let mut ok = Vec::with_capacity(spawned.len());
    for w in spawned {
        match w.handshake(deadline) {
            Ok(w) => ok.push(w),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    match (ok.is_empty(), first_err) {
        (true, Some(e)) => Err(e),
        (true, None) => Err(StartError("no worker requested".to_string())),
        (false, _) => Ok(ok),
    }
}

/// Starts one worker and times it: spawn to handshake.
pub(crate) fn start_timed() -> Result<(Worker, Duration), StartError> {
    let t = Instant::now();
    let w = Worker::spawn()?.handshake(Instant::now() + HANDSHAKE_TIMEOUT)?;
    Ok((w, t.elapsed()))
}

/// Up to `n` workers for a job: idle ones from the pool first, then new ones. Fails
/// only if not even one worker is available.
pub(crate) fn take(n: usize) -> Result<Vec<Worker>, StartError> {
    let n = n.max(1);
    let mut got = Vec::with_capacity(n);
    {
        let mut pool = idle().lock().unwrap_or_else(PoisonError::into_inner);
        // Drop the ones that left or idled too long (dropping closes their stdin).
        pool.retain(Worker::fit);
        while got.len() < n {
            match pool.pop() {
                Some(w) => got.push(w),
                None => break,
            }
        }
    }
    if got.len() < n {
        match start(n - got.len()) {
            Ok(more) => got.extend(more),
            Err(e) if got.is_empty() => return Err(e),
            Err(_) => {}
        }
    }
    Ok(got)
}

/// Returns a worker with no work outstanding to the pool.
pub(crate) fn give_back(mut w: Worker) {
    if w.events.is_empty() {
        w.idle_since = Instant::now();
        idle()
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(w);
    }
}

/// Process ids of the idle workers in the pool.
pub(crate) fn idle_pids() -> Vec<u32> {
    idle()
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .iter()
        .map(Worker::pid)
        .collect()
}

/// Ends every idle worker (for tests and orderly shutdown).
pub(crate) fn shutdown_idle() {
    let workers = std::mem::take(&mut *idle().lock().unwrap_or_else(PoisonError::into_inner));
    drop(workers);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Worker {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", script]);
        Worker::spawn_command(cmd).expect("sh starts")
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
        let mut ws = start(1).expect("a worker of this test binary starts");
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
