//! Processes: a parent killed with SIGKILL leaves no worker behind, neither idle ones
//! (they read EOF) nor one busy in a task (its watchdog sees the parent gone).
#![cfg(target_os = "linux")]

mod processes_util;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use amorsize::Backend;
use amorsize::prelude::*;
use processes_util::{all_gone_within, fresh_dir, within};

const SCENARIO: &str = "AMORSIZE_TEST_PARENT_SCENARIO";

#[amorsize::task]
fn pid_of_worker(x: u64) -> u32 {
    let _ = x;
    std::process::id()
}

/// Writes the worker's pid into `dir`, then sleeps far longer than the test.
#[amorsize::task]
fn sleep_forever(dir: String) -> u32 {
    let pid = std::process::id();
    let _ = std::fs::write(format!("{dir}/{pid}"), b"");
    std::thread::sleep(Duration::from_secs(120));
    pid
}

/// The parent of the scenario, run in a child process of the test (see below): three
/// idle workers, then one of them busy in `sleep_forever`.
#[test]
fn parent_scenario() {
    let Ok(dir) = std::env::var(SCENARIO) else {
        return; // Only runs as the child of `killed_parent_leaves_no_worker`.
    };
    let _: Vec<u32> = (0..9u64)
        .par_auto()
        .backend(Backend::Processes)
        .max_workers(3)
        .chunk_size(1)
        .map(pid_of_worker)
        .collect();
    let d = dir.clone();
    std::thread::spawn(move || {
        let _: Vec<u32> = vec![d]
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(1)
            .chunk_size(1)
            .map(sleep_forever)
            .collect();
    });
    let busy = loop {
        if let Some(Ok(e)) = std::fs::read_dir(&dir).ok().and_then(|mut r| r.next()) {
            break e.file_name().to_string_lossy().into_owned();
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let idle: Vec<String> = amorsize::__private::idle_worker_pids()
        .iter()
        .map(u32::to_string)
        .collect();
    println!("AMORSIZE-PIDS {busy} {}", idle.join(" "));
    std::thread::sleep(Duration::from_secs(120));
}

#[test]
fn killed_parent_leaves_no_worker() {
    within(30, || {
        let dir = fresh_dir("killed");
        let exe = std::env::current_exe().expect("test executable");
        let mut child = Command::new(exe)
            .args([
                "--exact",
                "parent_scenario",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(SCENARIO, &dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the scenario");
        let stdout = child.stdout.take().expect("piped");
        let mut pids: Vec<u32> = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("scenario output");
            // The harness prints `test parent_scenario ... ` first, on the same line.
            if let Some((_, rest)) = line.split_once("AMORSIZE-PIDS ") {
                pids = rest
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect();
                break;
            }
        }
        assert!(pids.len() >= 2, "one busy and some idle workers: {pids:?}");
        assert!(!pids.contains(&child.id()));
        child.kill().expect("SIGKILL the parent");
        child.wait().expect("reap the parent");
        assert!(
            all_gone_within(&pids, 5),
            "workers outlived their parent: {:?}",
            pids.iter()
                .filter(|&&p| !processes_util::gone(p))
                .collect::<Vec<_>>()
        );
        let _ = std::fs::remove_dir_all(&dir);
    });
}
