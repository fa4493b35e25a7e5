//! Processes: a worker that dies is noticed at once, even while a process it forked
//! keeps its pipes open (end of file on the pipe would come only when that process
//! ends, and never for a daemon).
#![cfg(target_os = "linux")]

mod processes_util;

use std::time::{Duration, Instant};

use amorsize::prelude::*;
use amorsize::{Backend, ErrorKind};
use processes_util::{fresh_dir, gone, within};

/// The item whose worker forks a long-lived child, then dies.
const FAILING: u64 = 13;
/// How long that child outlives its worker (unless the test process ends first).
const CHILD_SECS: u32 = 30;

/// `x * 2`; on item [`FAILING`], when run in a worker (not in the test process
/// `test_pid`), forks a child that inherits every descriptor (the protocol pipes
/// included: close-on-exec does not matter without an exec), writes both pids into
/// `dir`, and aborts the worker.
#[amorsize::task]
fn double_or_fork_and_die(input: (u64, u32, String)) -> u64 {
    let (x, test_pid, dir) = input;
    if x == FAILING && std::process::id() != test_pid {
        // SAFETY: fork has no preconditions; the child below calls only
        // async-signal-safe functions (nanosleep, kill, _exit), as a child of a
        // multi-threaded process must.
        let child = unsafe { libc::fork() };
        if child == 0 {
            let pause = libc::timespec {
                tv_sec: 0,
                tv_nsec: 100_000_000,
            };
            for _ in 0..CHILD_SECS * 10 {
                // SAFETY: `pause` is a valid timespec; the remainder may be null.
                unsafe { libc::nanosleep(&pause, std::ptr::null_mut()) };
                // Ends with the test process, should the test fail before killing it.
                // SAFETY: kill with signal 0 only checks that the process exists.
                if unsafe { libc::kill(test_pid as libc::pid_t, 0) } != 0 {
                    break;
                }
            }
            // SAFETY: ends the forked child at once, running nothing of the worker's.
            unsafe { libc::_exit(0) };
        }
        std::fs::write(format!("{dir}/child"), child.to_string()).expect("write pid");
        std::fs::write(format!("{dir}/worker"), std::process::id().to_string()).expect("write pid");
        std::process::abort();
    }
    x * 2
}

fn read_pid(dir: &std::path::Path, name: &str) -> u32 {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_else(|e| panic!("no {name} pid: {e}"))
        .trim()
        .parse()
        .expect("a pid")
}

#[test]
fn a_dead_worker_is_noticed_while_its_child_holds_the_pipes() {
    within(90, || {
        let dir = fresh_dir("watch-exit");
        let d = dir.to_string_lossy().into_owned();
        let me = std::process::id();
        let inputs: Vec<(u64, u32, String)> = (0..40).map(|x| (x, me, d.clone())).collect();
        let t = Instant::now();
        let r: Vec<Result<u64, amorsize::Error>> = inputs
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(4)
            .map(double_or_fork_and_die)
            .catch_unwind()
            .collect();
        let elapsed = t.elapsed();
        let child = read_pid(&dir, "child");
        let worker = read_pid(&dir, "worker");
        // The child must still be there, or this test did not show anything.
        let child_alive = !gone(child);
        // SAFETY: kill takes a pid and a signal; no memory is passed. The child is
        // reparented away from the dead worker, so it is not this process's to reap.
        unsafe { libc::kill(child as libc::pid_t, libc::SIGKILL) };
        let _ = std::fs::remove_dir_all(&dir);
        assert!(
            elapsed < Duration::from_secs(10),
            "the job took {elapsed:?}: the worker's death was noticed only when its \
             child closed the pipes"
        );
        assert!(child_alive, "the forked child {child} ended too early");

        assert_eq!(r.len(), 40);
        for (i, x) in r.iter().enumerate() {
            if i as u64 == FAILING {
                let e = x.as_ref().expect_err("the dying item fails");
                assert_eq!(e.index(), i);
                assert_eq!(
                    e.kind(),
                    &ErrorKind::WorkerDied {
                        code: None,
                        signal: Some(libc::SIGABRT)
                    },
                    "{e}"
                );
                let text = e.to_string();
                assert!(text.contains(&format!("pid {worker}")), "{text}");
                assert!(text.contains("worker process died"), "{text}");
            } else {
                assert_eq!(x, &Ok(i as u64 * 2), "item {i}");
            }
        }
    });
}
