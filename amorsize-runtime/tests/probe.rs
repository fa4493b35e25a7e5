//! The machine profile on the machine running the tests: figures must be sane, never
//! exact (the machine is shared and timings vary). Parsing of cgroup files is tested
//! against fixture trees in the probe's unit tests (`tests/fixtures/cgroup/`).

use amorsize_runtime::MachineProfile;
use amorsize_runtime::probe::{self, Overheads};

/// The slowest any fixed cost may plausibly be; real values are microseconds.
const SANE_MAX_SECS: f64 = 50e-3;

/// Shows what was measured: `cargo test --test probe prints -- --nocapture`.
#[test]
fn prints_the_profile() {
    let m = MachineProfile::detect();
    eprintln!("{m:#?}");
    for f in &m.fallbacks {
        eprintln!("fallback: {f}");
    }
}

#[test]
fn cpu_figures_are_sane() {
    let m = probe::profile();
    let logical = num_cpus_online();
    assert!(m.cpu_budget >= 1, "{m:?}");
    assert!(m.cpu_budget <= m.logical_cores, "{m:?}");
    assert!(m.physical_cores >= 1, "{m:?}");
    assert!(m.physical_cores <= m.logical_cores, "{m:?}");
    assert!(m.rayon_threads >= 1, "{m:?}");
    if let Some(logical) = logical {
        assert_eq!(m.logical_cores, logical);
    }
    let budget = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(m.cpu_budget, budget);
}

#[test]
fn overheads_are_finite_positive_and_small() {
    let o = &probe::profile().overheads;
    let all = [
        ("thread_start", o.thread_start_secs),
        ("rayon_start", o.rayon_start_secs),
        ("chunk_handoff", o.chunk_handoff_secs),
        ("process_start", o.process_start_secs),
        ("process_chunk", o.process_chunk_secs),
    ];
    for (name, secs) in all {
        assert!(
            secs.is_finite() && secs > 0.0 && secs < SANE_MAX_SECS,
            "{name}: {secs}"
        );
    }
}

#[test]
fn fallbacks_use_the_documented_defaults() {
    let m = probe::profile();
    let d = Overheads::default();
    for f in &m.fallbacks {
        let expected = match f.measurement {
            "thread_start" => d.thread_start_secs,
            "rayon_start" => d.rayon_start_secs,
            "chunk_handoff" => d.chunk_handoff_secs,
            "process_start" => d.process_start_secs,
            "process_chunk" => d.process_chunk_secs,
            "memory" => m.memory.usable_bytes as f64,
            "cpu_budget" => m.cpu_budget as f64,
            other => panic!("unknown measurement {other}"),
        };
        assert_eq!(f.default, expected, "{f}");
        assert!(!f.why.is_empty(), "{f}");
        assert!(f.to_string().starts_with(f.measurement));
    }
}

#[test]
fn memory_is_sane() {
    let mem = &probe::profile().memory;
    assert!(mem.usable_bytes > 0, "{mem:?}");
    if let (Some(limit), Some(usage)) = (mem.limit_bytes, mem.usage_bytes) {
        assert!(mem.usable_bytes <= limit.saturating_sub(usage), "{mem:?}");
    }
    if let Some(available) = mem.available_bytes {
        assert!(mem.usable_bytes <= available, "{mem:?}");
    }
    if let Some(limit) = mem.limit_bytes {
        assert!(limit < 1 << 62, "an unlimited sentinel leaked: {mem:?}");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn memory_on_linux_is_read_not_defaulted() {
    let m = probe::profile();
    let mem = &m.memory;
    let total = meminfo_kib("MemTotal").map(|k| k * 1024);
    let Some(total) = total else {
        return; // no /proc: nothing to compare with
    };
    assert!(mem.usable_bytes <= total, "{mem:?} vs MemTotal {total}");
    assert!(mem.available_bytes.is_some_and(|a| a <= total), "{mem:?}");
    assert!(
        m.fallbacks.iter().all(|f| f.measurement != "memory"),
        "{:?}",
        m.fallbacks
    );
}

#[test]
fn profile_is_measured_once() {
    let a = probe::profile();
    let b = probe::profile();
    assert!(std::ptr::eq(a, b));
    // From another thread too: the cache is per process.
    let c = std::thread::spawn(|| probe::profile() as *const MachineProfile as usize)
        .join()
        .unwrap_or_default();
    assert_eq!(c, a as *const MachineProfile as usize);
}

#[test]
fn detect_is_a_copy_of_the_profile() {
    let m = MachineProfile::detect();
    assert_eq!(&m, probe::profile());
    // Inside another rayon pool, rayon_threads is that pool's size; the rest is cached.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(3)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let inside = pool.install(MachineProfile::detect);
    assert_eq!(inside.rayon_threads, 3);
    assert_eq!(inside.overheads, probe::profile().overheads);
}

/// Environment variable that turns [`first_use_child`] on in a child process.
const CHILD: &str = "AMORSIZE_PROBE_TEST_CHILD";

/// Runs [`first_use_child`] in a fresh process of this test binary (the profile is
/// global, so only a new process sees a first use), with `env`, and fails if it fails or
/// hangs (a deadlock between the probe and the rayon pool).
fn run_child(scenario: &str, env: &[(&str, &str)]) {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("{e}"));
    let mut cmd = Command::new(exe);
    cmd.args([
        "--exact",
        "first_use_child",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(CHILD, scenario)
    .stdout(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{e}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                assert!(status.success(), "{scenario}: child failed: {status}");
                return;
            }
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            other => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{scenario}: child hung or could not be waited for: {other:?}");
            }
        }
    }
}

/// The child side of [`run_child`]; does nothing in a normal test run.
#[test]
fn first_use_child() {
    let Ok(scenario) = std::env::var(CHILD) else {
        return;
    };
    match scenario.as_str() {
        // The first use is on the only worker of the rayon pool, which stays busy: the
        // profile comes back at once with the defaults (nothing is measured on the
        // caller's path), and the measurement, made on a thread of its own, finishes
        // once the pool is free (the rayon part times out into its default while the
        // pool's only worker is held).
        "only-worker-first" => {
            let (tx, rx) = std::sync::mpsc::channel();
            let (release, held) = std::sync::mpsc::channel::<()>();
            rayon::spawn(move || {
                let m = probe::profile();
                let _ = tx.send((m.rayon_threads, m.fallbacks.clone()));
                // Keep the only worker busy for a while, as a user's job would.
                let _ = held.recv_timeout(std::time::Duration::from_secs(2));
            });
            let (threads, fallbacks) = rx.recv().unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(threads, 1);
            assert!(
                fallbacks.iter().any(|f| f.why.contains("not measured yet")),
                "{fallbacks:?}"
            );
            drop(release);
            let start = std::time::Instant::now();
            let measured = loop {
                let m = probe::profile();
                if !m
                    .fallbacks
                    .iter()
                    .any(|f| f.why.contains("not measured yet"))
                {
                    break m;
                }
                assert!(start.elapsed().as_secs() < 30, "never measured: {m:?}");
                std::thread::sleep(std::time::Duration::from_millis(5));
            };
            assert!(measured.overheads.rayon_start_secs > 0.0);
        }
        // Rayon workers and plain threads all reach for the profile at once.
        "concurrent" => {
            let expected = std::thread::scope(|s| {
                let plain: Vec<_> = (0..3)
                    .map(|_| s.spawn(|| probe::profile().cpu_budget))
                    .collect();
                let (tx, rx) = std::sync::mpsc::channel();
                for _ in 0..4 {
                    let tx = tx.clone();
                    rayon::spawn(move || {
                        let _ = tx.send(probe::profile().cpu_budget);
                    });
                }
                drop(tx);
                let mut all: Vec<usize> = rx.iter().collect();
                all.extend(plain.into_iter().map(|h| h.join().unwrap_or_default()));
                assert_eq!(all.len(), 7);
                all
            });
            // Everyone got the same reading of the machine (the overheads may have
            // been measured meanwhile, in the background).
            let m = probe::profile().cpu_budget;
            assert!(expected.iter().all(|&b| b == m));
        }
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
fn first_use_on_the_only_rayon_worker_does_not_deadlock() {
    run_child(
        "only-worker-first",
        &[("RAYON_NUM_THREADS", "1"), ("AMORSIZE_CACHE", "off")],
    );
}

#[test]
fn first_use_from_many_threads_at_once() {
    run_child("concurrent", &[]);
}

/// Online CPUs as `/sys/devices/system/cpu/online` lists them (`0-3,8-11`), on Linux.
fn num_cpus_online() -> Option<usize> {
    let text = std::fs::read_to_string("/sys/devices/system/cpu/online").ok()?;
    text.trim().split(',').try_fold(0, |acc, range| {
        let (lo, hi) = range.split_once('-').unwrap_or((range, range));
        let (lo, hi): (usize, usize) = (lo.parse().ok()?, hi.parse().ok()?);
        Some(acc + hi.checked_sub(lo)? + 1)
    })
}

#[cfg(target_os = "linux")]
fn meminfo_kib(key: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}
