//! Helpers shared by several test files (`panics_chaos.rs`, `no_leaks_*.rs`,
//! `controls_env.rs`, `laziness_memory.rs`, `nested.rs`, ...): a seeded generator, a
//! quiet panic hook, a watchdog, readings of `/proc/self`, and re-running this test
//! binary as a child process (a fresh process for global state: environment, peak
//! memory).
//!
//! Each test file uses a subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::sync::Once;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Marsaglia's xorshift64*: deterministic, no dependency, good enough to pick items.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        // Zero is the one state xorshift never leaves.
        XorShift((seed ^ 0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// True about once in `n` calls.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.next_u64().is_multiple_of(n)
    }
}

/// Which of `n` items fail: about one in `one_in`, chosen by `seed`.
pub fn failing_set(n: usize, seed: u64, one_in: u64) -> Vec<bool> {
    let mut rng = XorShift::new(seed);
    (0..n).map(|_| rng.one_in(one_in)).collect()
}

/// The panic message the chaos tests use for item `i`.
pub fn chaos_message(i: usize) -> String {
    format!("chaos: item {i} failed")
}

/// Installs (once per process) a panic hook that stays silent for panics whose message
/// starts with `chaos:` (thousands of expected ones) and reports every other panic, such
/// as a failed assertion, the usual way.
pub fn quiet_chaos_panics() {
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
            if !msg.starts_with("chaos:") {
                default(info);
            }
        }));
    });
}

/// The text of a panic payload (`String` or `&str`), or "".
pub fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Runs `f` on its own thread and fails the test (rather than hanging) if it has not
/// finished within `secs`. A panic inside `f` is re-raised here.
pub fn watchdog<R: Send + 'static>(secs: u64, f: impl FnOnce() -> R + Send + 'static) -> R {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(());
        r
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => match handle.join() {
            Ok(Ok(r)) => r,
            Ok(Err(payload)) | Err(payload) => std::panic::resume_unwind(payload),
        },
        Err(_) => panic!("watchdog: no answer within {secs} s (deadlock or livelock)"),
    }
}

/// Waits until `done()` holds, polling, for at most `secs`; returns whether it held.
/// Used to let exiting threads finish exiting: never a timing assertion, only a bound
/// on how long to wait for something that must happen.
pub fn settle(secs: u64, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A numeric field of `/proc/self/status` (`Threads`, or `VmHWM`/`VmRSS` in kB).
#[cfg(target_os = "linux")]
pub fn status_field(key: &str) -> u64 {
    let text = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k == key).then(|| v.split_whitespace().next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no {key} in /proc/self/status"))
}

/// Threads of this process now.
#[cfg(target_os = "linux")]
pub fn thread_count() -> usize {
    status_field("Threads") as usize
}

/// Open file descriptors of this process now (the directory handle used to count them
/// is counted too, the same way every time).
#[cfg(target_os = "linux")]
pub fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
}

/// The environment variable that tells a re-run of this binary which child scenario
/// it is.
pub const CHILD: &str = "AMORSIZE_HARDENING_CHILD";

/// Whether this process is the child run for the test `name`.
pub fn is_child(name: &str) -> bool {
    std::env::var(CHILD).is_ok_and(|v| v == name)
}

/// What a child run produced.
#[derive(Debug)]
pub struct ChildOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the test `name` of this very test binary in a fresh process, with `env` set and
/// every inherited `AMORSIZE*` variable removed, and returns its output. Fails the test
/// if the child has not finished within `secs` (the child is killed).
pub fn run_child(name: &str, env: &[(&str, &str)], secs: u64) -> ChildOutput {
    let env: Vec<(&str, &std::ffi::OsStr)> = env.iter().map(|&(k, v)| (k, v.as_ref())).collect();
    run_child_os(name, &env, secs)
}

/// [`run_child`] with values that need not be Unicode.
pub fn run_child_os(name: &str, env: &[(&str, &std::ffi::OsStr)], secs: u64) -> ChildOutput {
    use std::io::Read;
    let exe = std::env::current_exe().expect("current_exe");
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars() {
        if k.starts_with("AMORSIZE") {
            cmd.env_remove(&k);
        }
    }
    cmd.env(CHILD, name);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn the test binary");
    // Read both pipes on their own threads, so a chatty child never blocks on a full
    // pipe while we wait for it.
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(secs);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("child {name} did not finish within {secs} s; killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    ChildOutput {
        success: status.success(),
        stdout: String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
    }
}

/// Burns about `rounds` multiply-adds of CPU.
pub fn spin(rounds: u64) -> u64 {
    let mut x = rounds;
    for i in 0..rounds {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
    }
    std::hint::black_box(x)
}
