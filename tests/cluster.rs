//! The cluster backend end to end, on a real `nats-server -js` started by each test on
//! 127.0.0.1 and real worker processes (this test binary, started again with
//! `AMORSIZE_CLUSTER_WORKER`). The driver is a fresh child process of this binary too,
//! so that each test gets its own environment.
//!
//! Run with `cargo test --features cluster --test cluster --test cluster_foreign`
//! (`.ci/run` installs `nats-server` first).
#![cfg(all(unix, feature = "cluster"))]

mod support_cluster;
mod support_processes;

use std::io::Write;
use std::time::{Duration, Instant};

use amorsize::prelude::*;
use amorsize::{Error, ErrorKind};
use support_cluster::{Nats, Workers, sibling_test_binary};
use support_processes::{child_scenario, fresh_dir, run_child};

/// Some CPU per item, and a record of which process ran which item (in the
/// directory `CLUSTER_TEST_RUNS`, when set).
#[amorsize::task]
fn square(x: u64) -> u64 {
    if let Ok(dir) = std::env::var("CLUSTER_TEST_RUNS") {
        let path = std::path::Path::new(&dir).join(std::process::id().to_string());
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{x}");
        }
    }
    let mut h = x;
    for i in 0..2_000u64 {
        h = h.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
    }
    std::hint::black_box(h);
    x * x
}

/// Waits, then answers: a job that lasts long enough to kill things in.
#[amorsize::task]
fn slow_triple(x: u64) -> u64 {
    std::thread::sleep(Duration::from_millis(8));
    x * 3
}

/// An output bigger than a NATS message (1 MiB by default).
#[amorsize::task]
fn big_output(x: u64) -> Vec<u8> {
    vec![(x % 251) as u8; 1_500_000 + x as usize]
}

/// An input bigger than a NATS message.
#[amorsize::task]
fn big_input(v: Vec<u8>) -> u64 {
    v.iter().map(|&b| u64::from(b)).sum::<u64>() + v.len() as u64
}

/// Panics on one item.
#[amorsize::task]
fn picky(x: u64) -> u64 {
    assert!(x != 13, "thirteen is unlucky");
    x
}

const WORKER_ENV: &[(&str, &str)] = &[
    ("AMORSIZE_CLUSTER_ACK_WAIT", "1s"),
    ("AMORSIZE_CLUSTER_MAX_DELIVER", "5"),
];

/// The driver side of every test: a fresh process with `AMORSIZE_CLUSTER` set.
#[test]
fn child_driver() {
    let Some(scenario) = child_scenario() else {
        return;
    };
    let mut plan = None;
    let started = Instant::now();
    match scenario.as_str() {
        "square" | "no_workers" | "no_broker" | "password" | "foreign" => {
            let n = 3000u64;
            let v: Vec<u64> = (0..n)
                .par_auto()
                .backend(Backend::Cluster)
                .on_plan(|p| plan = Some(p.clone()))
                .map(square)
                .collect();
            assert_eq!(v, (0..n).map(|x| x * x).collect::<Vec<_>>());
        }
        "auto" => {
            let n = 3000u64;
            let v: Vec<u64> = (0..n)
                .par_auto()
                .on_plan(|p| plan = Some(p.clone()))
                .map(square)
                .collect();
            assert_eq!(v, (0..n).map(|x| x * x).collect::<Vec<_>>());
        }
        "slow" => {
            let n = 800u64;
            let v: Vec<u64> = (0..n)
                .par_auto()
                .backend(Backend::Cluster)
                .chunk_size(4)
                .on_plan(|p| plan = Some(p.clone()))
                .map(slow_triple)
                .collect();
            assert_eq!(v, (0..n).map(|x| x * 3).collect::<Vec<_>>());
        }
        "big" => {
            // Fully pinned: nothing is sampled, every item goes to the cluster.
            let outs: Vec<Vec<u8>> = (0..6u64)
                .par_auto()
                .backend(Backend::Cluster)
                .max_workers(2)
                .chunk_size(2)
                .on_plan(|p| plan = Some(p.clone()))
                .map(big_output)
                .collect();
            for (x, o) in outs.iter().enumerate() {
                assert_eq!(o.len(), 1_500_000 + x);
                assert!(o.iter().all(|&b| b == (x % 251) as u8));
            }
            let inputs: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 1_200_000]).collect();
            let sums: Vec<u64> = inputs
                .clone()
                .into_iter()
                .par_auto()
                .backend(Backend::Cluster)
                .max_workers(2)
                .chunk_size(1)
                .map(big_input)
                .collect();
            assert_eq!(
                sums,
                inputs
                    .iter()
                    .map(|v| big_input(v.clone()))
                    .collect::<Vec<_>>()
            );
        }
        "many_small" => {
            let n = 50_000u64;
            let v: Vec<u64> = (0..n)
                .par_auto()
                .backend(Backend::Cluster)
                .chunk_size(500)
                .on_plan(|p| plan = Some(p.clone()))
                .map(picky_free)
                .collect();
            assert_eq!(v, (0..n).collect::<Vec<_>>());
        }
        "panics" => {
            let v: Vec<Result<u64, Error>> = (0..40u64)
                .par_auto()
                .backend(Backend::Cluster)
                .chunk_size(5)
                .map(picky)
                .catch_unwind()
                .collect();
            for (x, r) in v.iter().enumerate() {
                match r {
                    Ok(y) => assert_eq!(*y, x as u64),
                    Err(e) => {
                        assert_eq!((x, e.index(), e.kind()), (13, 13, &ErrorKind::Panic));
                        assert!(e.to_string().contains("thirteen is unlucky"), "{e}");
                    }
                }
            }
            assert!(v[13].is_err());
        }
        "main_state" => {
            OFFSET.store(1_000, std::sync::atomic::Ordering::Relaxed);
            let v: Vec<u64> = (0..2000u64)
                .par_auto()
                .backend(Backend::Cluster)
                .on_plan(|p| plan = Some(p.clone()))
                .map(offset_by_main_state)
                .collect();
            assert_eq!(v, (0..2000u64).map(|x| x + 1_000).collect::<Vec<_>>());
        }
        other => panic!("unknown scenario {other}"),
    }
    if let Some(p) = plan {
        println!("PLAN-BACKEND: {}", p.backend);
        println!("PLAN-FULL: {p:#}");
    }
    println!("ELAPSED-MS: {}", started.elapsed().as_millis());
    println!("DRIVER-PID: {}", std::process::id());
    println!("child finished");
}

/// Set by the driver's test before its job; a worker never runs that code.
static OFFSET: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Reads state only the driver set: wrong on a worker, which never runs `main`.
#[amorsize::task]
fn offset_by_main_state(x: u64) -> u64 {
    let mut h = x;
    for i in 0..20_000u64 {
        h = h.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
    }
    std::hint::black_box(h);
    x + OFFSET.load(std::sync::atomic::Ordering::Relaxed)
}

/// Identity, for many small items (a task of its own: `picky` panics on 13).
#[amorsize::task]
fn picky_free(x: u64) -> u64 {
    x
}

fn driver(scenario: &str, env: &[(&str, &str)]) -> support_processes::ChildOutput {
    let exe = std::env::current_exe().expect("current_exe");
    let out = run_child(&exe, "child_driver", scenario, env, 240);
    assert!(
        out.success() && out.stdout.contains("child finished"),
        "the driver ({scenario}) failed:\n{}",
        out.dump()
    );
    out
}

fn line<'a>(out: &'a support_processes::ChildOutput, key: &str) -> &'a str {
    out.stdout
        .lines()
        .find_map(|l| l.split_once(key).map(|(_, v)| v.trim()))
        .unwrap_or("")
}

/// The driver child's process id, as it printed it.
fn driver_pid(out: &support_processes::ChildOutput) -> String {
    line(out, "DRIVER-PID:").to_string()
}

fn this_binary() -> std::path::PathBuf {
    std::env::current_exe().expect("current_exe")
}

#[test]
fn three_workers_run_every_item_once_in_order() {
    let nats = Nats::start("three");
    let runs = fresh_dir("cluster-three");
    let runs_env = runs.to_string_lossy().into_owned();
    let mut env = WORKER_ENV.to_vec();
    env.push(("CLUSTER_TEST_RUNS", &runs_env));
    let workers = Workers::start(&this_binary(), &nats.url(), 3, &env);
    workers.wait_serving(30);
    let out = driver(
        "square",
        &[
            ("AMORSIZE_CLUSTER", &nats.url()),
            ("CLUSTER_TEST_RUNS", &runs_env),
        ],
    );
    assert_eq!(line(&out, "PLAN-BACKEND:"), "cluster", "{}", out.dump());
    // Every item ran exactly once (no worker died), spread over the workers.
    let mut seen = Vec::new();
    let mut by_process = Vec::new();
    for entry in std::fs::read_dir(&runs).expect("runs").flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let items: Vec<u64> = text.lines().filter_map(|l| l.parse().ok()).collect();
        by_process.push((entry.file_name(), items.len(), items.first().copied()));
        seen.extend(items);
    }
    let processes = by_process.len();
    seen.sort_unstable();
    // The driver's sample ran the first items itself (recorded under its pid).
    let never: Vec<u64> = (0..3000)
        .filter(|x| seen.binary_search(x).is_err())
        .collect();
    assert!(never.is_empty(), "items never run: {never:?}");
    // Exactly once, but for the check before the cluster is trusted with the task: up
    // to three items the driver ran in its sample run once more on a worker (those
    // results are compared, never emitted).
    let mut twice: Vec<u64> = seen
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    twice.dedup();
    let driver_ran: Vec<u64> = std::fs::read_to_string(runs.join(driver_pid(&out)))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.parse().ok())
        .collect();
    assert!(
        twice.len() <= 3 && twice.iter().all(|x| driver_ran.contains(x)),
        "items ran twice beyond the check: {twice:?} ({by_process:?})"
    );
    assert_eq!(
        seen.len(),
        3000 + twice.len(),
        "an item ran more than twice: {by_process:?}"
    );
    assert!(processes >= 3, "only {processes} processes ran items");
    println!("{}", line(&out, "PLAN-FULL:"));
    assert!(
        line(&out, "PLAN-FULL:").contains("cluster"),
        "{}",
        out.dump()
    );
}

#[test]
fn the_model_considers_the_cluster_only_when_asked() {
    let nats = Nats::start("auto");
    let workers = Workers::start(&this_binary(), &nats.url(), 2, WORKER_ENV);
    workers.wait_serving(30);
    // Without AMORSIZE_CLUSTER the cluster is not a candidate, and says why.
    let out = driver("auto", &[("AMORSIZE_LOG", "full")]);
    assert!(
        out.stderr.contains("AMORSIZE_CLUSTER is not set"),
        "{}",
        out.dump()
    );
    // With it, the cluster is considered: its exclusion (if any) is no longer for the
    // unset variable, and the plan's cluster line or its reason shows it was weighed.
    let out = driver(
        "auto",
        &[("AMORSIZE_CLUSTER", &nats.url()), ("AMORSIZE_LOG", "full")],
    );
    assert!(
        !out.stderr.contains("AMORSIZE_CLUSTER is not set"),
        "{}",
        out.dump()
    );
    assert!(
        out.stderr.contains("worker slot(s) of this build answered")
            || out.stderr.contains("too short to send through a broker"),
        "{}",
        out.dump()
    );
}

#[test]
fn a_worker_killed_mid_job_loses_nothing() {
    let nats = Nats::start("kill");
    let mut workers = Workers::start(&this_binary(), &nats.url(), 3, WORKER_ENV);
    workers.wait_serving(30);
    let victim = workers.children[0].id();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(victim as i32, libc::SIGKILL) };
    });
    let out = driver("slow", &[("AMORSIZE_CLUSTER", &nats.url())]);
    killer.join().expect("killer");
    let _ = workers.children[0].wait();
    assert_eq!(line(&out, "PLAN-BACKEND:"), "cluster", "{}", out.dump());
    // The job was still running when the worker died (it started before the kill).
    let ms: u64 = line(&out, "ELAPSED-MS:").parse().unwrap_or(0);
    assert!(ms > 1500, "the job ended after {ms} ms, before the kill");
}

#[test]
fn a_broker_restarted_mid_job_and_the_job_completes() {
    let mut nats = Nats::start("restart");
    let workers = Workers::start(&this_binary(), &nats.url(), 2, WORKER_ENV);
    workers.wait_serving(30);
    let url = nats.url();
    let exe = this_binary();
    let job = std::thread::spawn(move || {
        run_child(
            &exe,
            "child_driver",
            "slow",
            &[("AMORSIZE_CLUSTER", &url)],
            240,
        )
    });
    std::thread::sleep(Duration::from_millis(1200));
    nats.restart(Duration::from_millis(500));
    let out = job.join().expect("the driver thread");
    let ms: u64 = line(&out, "ELAPSED-MS:").parse().unwrap_or(0);
    assert!(ms > 1700, "the job ended after {ms} ms, before the restart");
    assert!(
        out.success() && out.stdout.contains("child finished"),
        "the job did not survive the restart:\n{}\n--- workers\n{}",
        out.dump(),
        workers.log()
    );
    drop(workers);
}

#[test]
fn a_worker_of_another_build_is_refused_with_both_builds_named() {
    let Some(foreign) = sibling_test_binary("cluster_foreign") else {
        panic!(
            "build the other test binary too: cargo test --features cluster --test cluster --test cluster_foreign"
        );
    };
    let nats = Nats::start("foreign");
    let workers = Workers::start(&foreign, &nats.url(), 1, WORKER_ENV);
    workers.wait_serving(30);
    let out = driver(
        "foreign",
        &[("AMORSIZE_CLUSTER", &nats.url()), ("AMORSIZE_LOG", "plan")],
    );
    // The job ran here, and the driver said why: a worker of another build.
    assert_ne!(line(&out, "PLAN-BACKEND:"), "cluster", "{}", out.dump());
    let full = line(&out, "PLAN-FULL:").to_string() + &out.stderr;
    assert!(full.contains("none of this build"), "{}", out.dump());
    assert!(
        full.contains("cluster_foreign"),
        "the worker's executable is named: {}",
        out.dump()
    );
    // The worker said it refused, naming both builds.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !workers.log().contains("refusing the jobs of build") {
        assert!(
            Instant::now() < deadline,
            "the worker did not say it refused:\n{}",
            workers.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        workers.log().contains("a different executable"),
        "{}",
        workers.log()
    );
}

#[test]
fn without_workers_or_broker_the_job_runs_here_within_the_waits() {
    let nats = Nats::start("none");
    let out = driver(
        "no_workers",
        &[
            ("AMORSIZE_CLUSTER", &nats.url()),
            ("AMORSIZE_CLUSTER_WAIT", "300ms"),
        ],
    );
    assert_ne!(line(&out, "PLAN-BACKEND:"), "cluster", "{}", out.dump());
    assert!(
        line(&out, "PLAN-FULL:").contains("no cluster worker answered"),
        "{}",
        out.dump()
    );
    let ms: u64 = line(&out, "ELAPSED-MS:").parse().unwrap_or(u64::MAX);
    assert!(ms < 10_000, "took {ms} ms");
    drop(nats);

    // A port nobody listens on: connection refused at once.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = format!("nats://127.0.0.1:{closed}");
    let out = driver("no_broker", &[("AMORSIZE_CLUSTER", &url)]);
    assert_ne!(line(&out, "PLAN-BACKEND:"), "cluster", "{}", out.dump());
    assert!(
        line(&out, "PLAN-FULL:").contains("broker"),
        "{}",
        out.dump()
    );
    let ms: u64 = line(&out, "ELAPSED-MS:").parse().unwrap_or(u64::MAX);
    assert!(ms < 10_000, "took {ms} ms");
}

#[test]
fn items_bigger_than_a_message_travel_whole() {
    let nats = Nats::start("big");
    let workers = Workers::start(&this_binary(), &nats.url(), 2, WORKER_ENV);
    workers.wait_serving(30);
    let out = driver("big", &[("AMORSIZE_CLUSTER", &nats.url())]);
    assert_eq!(
        line(&out, "PLAN-BACKEND:"),
        "cluster",
        "{}\n{}",
        out.dump(),
        workers.log()
    );
}

#[test]
fn many_small_items_and_panics_per_item() {
    let nats = Nats::start("small");
    let workers = Workers::start(&this_binary(), &nats.url(), 2, WORKER_ENV);
    workers.wait_serving(30);
    let out = driver("many_small", &[("AMORSIZE_CLUSTER", &nats.url())]);
    assert_eq!(line(&out, "PLAN-BACKEND:"), "cluster", "{}", out.dump());
    driver("panics", &[("AMORSIZE_CLUSTER", &nats.url())]);
}

#[test]
fn a_password_in_the_address_is_never_printed() {
    const SECRET: &str = "Zq7-never-print-me";
    let nats = Nats::start_with_password("password", "amorsize", SECRET);
    let workers = Workers::start(&this_binary(), &nats.url(), 1, WORKER_ENV);
    workers.wait_serving(30);
    let out = driver(
        "password",
        &[("AMORSIZE_CLUSTER", &nats.url()), ("AMORSIZE_LOG", "full")],
    );
    assert_eq!(line(&out, "PLAN-BACKEND:"), "cluster", "{}", out.dump());
    let wrong = nats.url().replace(SECRET, &format!("{SECRET}-wrong"));
    let failed = driver(
        "password",
        &[("AMORSIZE_CLUSTER", &wrong), ("AMORSIZE_LOG", "full")],
    );
    assert_ne!(
        line(&failed, "PLAN-BACKEND:"),
        "cluster",
        "{}",
        failed.dump()
    );
    for text in [
        out.stdout,
        out.stderr,
        failed.stdout,
        failed.stderr,
        workers.log(),
    ] {
        assert!(!text.contains(SECRET), "the password was printed:\n{text}");
    }
}

#[test]
fn a_worker_stops_on_sigterm_and_after_its_idle_limit() {
    let nats = Nats::start("stop");
    let mut workers = Workers::start(&this_binary(), &nats.url(), 1, WORKER_ENV);
    workers.wait_serving(30);
    let pid = workers.children[0].id();
    // SAFETY: kill has no memory-safety preconditions.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = workers.children[0].try_wait().expect("wait") {
            break s;
        }
        assert!(Instant::now() < deadline, "the worker ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}\n{}", workers.log());

    let mut env = WORKER_ENV.to_vec();
    env.push(("AMORSIZE_CLUSTER_IDLE", "1"));
    let mut idle = Workers::start(&this_binary(), &nats.url(), 1, &env);
    idle.wait_serving(30);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(s) = idle.children[0].try_wait().expect("wait") {
            assert!(s.success(), "{s:?}");
            break;
        }
        assert!(Instant::now() < deadline, "the idle worker did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(idle.log().contains("idle for"), "{}", idle.log());
}

#[test]
fn a_task_that_reads_state_only_main_sets_is_not_trusted_to_the_cluster() {
    let nats = Nats::start("main-state");
    let workers = Workers::start(&this_binary(), &nats.url(), 2, WORKER_ENV);
    workers.wait_serving(30);
    let out = driver("main_state", &[("AMORSIZE_CLUSTER", &nats.url())]);
    // The results are right (the job ran here), and the plan says why.
    assert_ne!(line(&out, "PLAN-BACKEND:"), "cluster", "{}", out.dump());
    assert!(
        line(&out, "PLAN-FULL:").contains("worker results differ"),
        "{}",
        out.dump()
    );
}

/// The README's permission block as nats-server `users`, with a password per user.
fn readme_users() -> String {
    let readme = include_str!("../README.md");
    let start = readme
        .find("**Broker permissions**")
        .expect("the README's permissions");
    let block = &readme[start..];
    let block = &block[block.find("```text\n").expect("a text block") + 8..];
    let block = &block[..block.find("```").expect("the block's end")];
    let mut users = Vec::new();
    let mut current: Option<(String, Vec<String>)> = None;
    for line in block.lines() {
        if let Some(user) = line.strip_suffix(':').filter(|u| !u.starts_with(' ')) {
            users.extend(current.take());
            current = Some((user.to_string(), Vec::new()));
        } else if let Some((key, value)) = line.trim().split_once(':') {
            let value = value.trim();
            let value = if key == "allow_responses" {
                value.to_string()
            } else {
                let subjects: Vec<String> = value
                    .split(", ")
                    .map(|s| format!("{:?}", s.trim()))
                    .collect();
                format!("[{}]", subjects.join(", "))
            };
            if let Some((_, perms)) = current.as_mut() {
                perms.push(format!("{key}: {value}"));
            }
        }
    }
    users.extend(current);
    let users: Vec<String> = users
        .into_iter()
        .map(|(user, perms)| {
            format!(
                "  {{ user: {user}, password: {user}-pw, permissions: {{ {} }} }}",
                perms.join(", ")
            )
        })
        .collect();
    format!("users = [\n{}\n]", users.join("\n"))
}

#[test]
fn the_readme_permissions_are_enough() {
    let users = readme_users();
    assert!(
        users.contains("user: driver") && users.contains("user: worker"),
        "{users}"
    );
    let nats = Nats::start_with_users("permissions", &users);
    let url = |user: &str| format!("nats://{user}:{user}-pw@127.0.0.1:{}", nats.port);
    let workers = Workers::start(&this_binary(), &url("worker"), 2, WORKER_ENV);
    workers.wait_serving(30);
    for scenario in ["square", "big"] {
        let out = driver(scenario, &[("AMORSIZE_CLUSTER", &url("driver"))]);
        assert_eq!(
            line(&out, "PLAN-BACKEND:"),
            "cluster",
            "{}\n--- workers\n{}\n--- users\n{users}",
            out.dump(),
            workers.log()
        );
    }
}
