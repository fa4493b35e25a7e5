//! Helpers shared by the `processes_*` test files written for the process backend's
//! fixes: a watchdog that names what hung, panic payload text, process liveness from
//! `/proc`, scratch directories, and re-running a test binary (this one, or a copy of
//! it) as a child process with a scenario named in the environment.
//!
//! Each test file uses a subset, hence the `dead_code` allowance.
#![allow(dead_code)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Runs `f` on its own thread and fails the test, saying `what` did not finish, if it
/// takes longer than `secs` (a hang fails instead of blocking the suite). A panic in
/// `f` is re-raised here. On a timeout the thread is left behind, blocked; the test
/// binary ends it when it exits.
pub fn within<T: Send + 'static>(
    secs: u64,
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = std::thread::spawn(move || {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        let _ = tx.send(());
        r
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(()) => match handle.join() {
            Ok(Ok(v)) => v,
            Ok(Err(payload)) | Err(payload) => std::panic::resume_unwind(payload),
        },
        Err(_) => panic!("{what}: still running after {secs} s (a hang)"),
    }
}

/// The text of a panic payload (`String` or `&'static str`), or a note of its type.
pub fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).to_string()
    } else {
        "<a payload that is neither String nor &'static str>".to_string()
    }
}

/// Whether process `pid` is gone (or a zombie about to be reaped).
pub fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(s) => s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// The pids of `pids` still alive after waiting up to `secs` for all to be gone.
pub fn alive_after(pids: &[u32], secs: u64) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let alive: Vec<u32> = pids.iter().copied().filter(|&p| !gone(p)).collect();
        if alive.is_empty() || Instant::now() > deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A fresh empty directory under the system temp directory.
pub fn fresh_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let d = std::env::temp_dir().join(format!("amorsize-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&d).expect("create a temp dir");
    d
}

/// Records, in `dir`, that this process started item `x` (file `x`, holding the pid).
pub fn record_pid(dir: &str, x: u64) {
    let _ = std::fs::write(format!("{dir}/{x}"), std::process::id().to_string());
}

/// The pids recorded in `dir` by [`record_pid`], by item.
pub fn recorded_pids(dir: &Path) -> Vec<(u64, u32)> {
    let mut v: Vec<(u64, u32)> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| {
                let e = e.ok()?;
                let item = e.file_name().to_str()?.parse().ok()?;
                let pid = std::fs::read_to_string(e.path())
                    .ok()?
                    .trim()
                    .parse()
                    .ok()?;
                Some((item, pid))
            })
            .collect()
        })
        .unwrap_or_default();
    v.sort_unstable();
    v
}

/// The environment variable naming the child scenario a re-run of a test binary plays.
pub const CHILD: &str = "PROCESSES_TEST_CHILD";

/// The child scenario this process plays, if it is a child run.
pub fn child_scenario() -> Option<String> {
    std::env::var(CHILD).ok()
}

/// What a child run produced.
#[derive(Debug)]
pub struct ChildOutput {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ChildOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Status, stdout and stderr, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "status: {}\n--- stdout\n{}\n--- stderr\n{}",
            describe_status(&self.status),
            self.stdout,
            self.stderr
        )
    }
}

/// "exit code 0", "killed by signal 6 (SIGABRT)", ...
pub fn describe_status(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(6)) => "killed by signal 6 (SIGABRT)".to_string(),
        (None, Some(s)) => format!("killed by signal {s}"),
        (None, None) => format!("{status:?}"),
    }
}

/// Runs the test `name` of the test binary `exe` in a fresh process with `env` set
/// (every inherited `AMORSIZE*` variable removed) and [`CHILD`] set to `scenario`;
/// returns its output. Fails the test if it has not finished within `secs` (then it
/// is killed).
pub fn run_child(
    exe: &Path,
    name: &str,
    scenario: &str,
    env: &[(&str, &str)],
    secs: u64,
) -> ChildOutput {
    use std::io::Read;
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", name, "--nocapture", "--test-threads=1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("AMORSIZE") {
            cmd.env_remove(&k);
        }
    }
    cmd.env(CHILD, scenario);
    for (k, v) in env {
        cmd.env(k, v);
    }
    // A freshly written copy can be briefly "text file busy" while another thread's
    // fork still holds the descriptor it was written through: retry.
    let mut tries = 0;
    let mut child = loop {
        match cmd.spawn() {
            Ok(c) => break c,
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot start the test binary {exe:?}: {e}"),
        }
    };
    // Both pipes read on their own threads, so a chatty child never blocks.
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
            let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
            panic!(
                "child {name} ({scenario}) did not finish within {secs} s; killed\n\
                 --- stderr\n{stderr}"
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    ChildOutput {
        status,
        stdout: String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
    }
}

/// A copy of this test binary in a fresh directory, which a child run may delete
/// (as a package upgrade replaces an installed program). Returns the directory and
/// the copy.
pub fn copy_of_this_test_binary(tag: &str) -> (PathBuf, PathBuf) {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = fresh_dir(tag);
    let mut name = OsString::from("copy-");
    name.push(exe.file_name().expect("a file name"));
    let copy = dir.join(name);
    std::fs::copy(&exe, &copy).expect("copy the test binary");
    (dir, copy)
}

/// The CPU budget (`available_parallelism`), at least 1.
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
