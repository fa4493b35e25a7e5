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
//!
//! Split in two parts besides this one: [`start`] starts a worker and waits for its
//! handshake; [`pipes`] holds the reader and writer threads that own its pipes and
//! reap it. This file keeps the types the rest of the crate sees.

use std::process::Child;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};

use super::frame::{self, FromWorker};
use super::registry::TaskEntry;

mod pipes;
mod start;

/// A worker that has not said `Hello` by then is given up on.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest the reader lets replies gather in the pipe (see
/// [`Worker::set_reply_pause`]).
pub(crate) const MAX_REPLY_PAUSE: Duration = Duration::from_micros(1000);

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
    /// [`read_loop`](pipes::read_loop)); 0: none.
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
    /// [`read_loop`](pipes::read_loop)); `Duration::ZERO` reads each as it comes.
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

#[cfg(test)]
mod tests {
    use super::*;

    use std::process::Command;
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
