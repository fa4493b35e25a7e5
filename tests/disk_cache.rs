//! The disk cache across runs, with real processes: a second run of the same
//! executable plans from what the first measured (no sample), a rebuilt executable or
//! an expired entry measures again, a damaged entry is reported and rewritten, and
//! `AMORSIZE_CACHE=off` writes nothing. Each scenario runs copies of this test binary
//! in a scratch cache directory, so the user's cache is never touched.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;

use amorsize::prelude::*;

/// Set in a child: the child runs one job and prints its plan.
const CHILD: &str = "AMORSIZE_TEST_DISK_CHILD";

/// The child's job: heavy enough items that a parallel plan pays, so the remembered
/// plan is checked on its first chunk.
fn job() -> String {
    let mut shown = String::new();
    let v: Vec<u64> = (0..4_000u64)
        .par_auto()
        .on_plan(|p| {
            shown = format!(
                "origin={:?} plan={}",
                p.origin,
                format!("{p:#}").replace('\n', " | ")
            )
        })
        .map(|x| (0..2_000u64).fold(x, |a, i| a.wrapping_mul(31).wrapping_add(i)))
        .collect();
    assert_eq!(v.len(), 4_000);
    shown
}

#[test]
fn disk_child() {
    match std::env::var(CHILD).as_deref() {
        Ok("tiny") => println!("origin={}", tiny_site_rewrites()),
        Ok(_) => println!("{}", job()),
        Err(_) => {}
    }
}

/// The identity of the one site entry in the cache directory (inode and modification
/// time), if there is one.
fn site_entry_identity() -> Option<(u64, i128)> {
    use std::os::unix::fs::MetadataExt;
    let dir = std::env::var_os("AMORSIZE_CACHE_DIR")?;
    let path = entries(Path::new(&dir)).into_iter().find(|p| {
        p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("site-"))
    })?;
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.ino(),
        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    ))
}

/// The child's tiny call site, called 300 times (re-checked at its 64th, 128th and
/// 256th uses): how many fresh samples it made, how many of them a busy machine
/// disturbed (they took far longer than 100 additions, or stopped before the input's
/// end: a preempted first item reads as a costly one), and how many times its disk
/// entry was written.
fn tiny_site_rewrites() -> String {
    let (mut fresh, mut disturbed) = (0, 0);
    let mut seen: Vec<(u64, i128)> = Vec::new();
    for _ in 0..300 {
        let mut origin = None;
        let mut ended = false;
        let v: Vec<u64> = (0..100u64)
            .collect::<Vec<_>>()
            .par_auto()
            .on_plan(|p| {
                origin = Some(p.origin);
                // 100 additions take 2-10 us; a sample that took 20 us was preempted.
                ended = matches!(
                    p.main_reason(),
                    Some(amorsize::Reason::InputEndedInSample { .. })
                ) && p.sample.sample_secs < 20e-6;
            })
            .map(|x| x + 1)
            .collect();
        assert_eq!(v, (1..=100).collect::<Vec<_>>());
        if origin == Some(amorsize::Origin::Fresh) {
            fresh += 1;
            disturbed += usize::from(!ended);
        }
        if let Some(id) = site_entry_identity()
            && !seen.contains(&id)
        {
            seen.push(id);
        }
    }
    format!("fresh={fresh} disturbed={disturbed} writes={}", seen.len())
}

/// Re-checks of a tiny call site that find what its disk entry keeps do not write it
/// again (before, every 64th call rewrote it).
#[test]
fn rechecks_that_agree_do_not_rewrite_the_entry() {
    let bin = Scratch::new("bin-tiny");
    let cache = Scratch::new("tiny");
    let exe = copy_of_me(&bin.0);
    let out = run(&exe, &cache.0, &[(CHILD, "tiny")]);
    let field = |name: &str| -> usize {
        out.split_whitespace()
            .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {out}"))
    };
    assert_eq!(field("origin=fresh"), 4, "{out}");
    // The first call writes it. A disturbed sample (seen: 2 items in 457 us) makes
    // another plan, which is written, then runs far off it and learns (written
    // again), and the next re-check that agrees with the first writes it back.
    assert!(field("writes") <= 1 + 3 * field("disturbed"), "{out}");
}

/// A scratch directory, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("amorsize-disk-test-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A copy of this test binary (so its identity can be changed without touching the
/// real one).
fn copy_of_me(dir: &Path) -> PathBuf {
    let me = std::env::current_exe().expect("current exe");
    let copy = dir.join("me");
    std::fs::copy(&me, &copy).expect("copy the test binary");
    copy
}

/// Runs the child job in `exe` with the cache in `cache` and extra variables; returns
/// the line it printed.
fn run(exe: &Path, cache: &Path, env: &[(&str, &str)]) -> String {
    let mut cmd = Command::new(exe);
    cmd.args(["--exact", "disk_child", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .env("AMORSIZE_CACHE_DIR", cache)
        .env_remove("AMORSIZE_CACHE")
        .env_remove("AMORSIZE_CACHE_TTL_SECS");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = output_of(&mut cmd);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The harness prints "test disk_child ... " on the same line first.
    stdout
        .lines()
        .find_map(|l| l.find("origin=").map(|at| l[at..].to_string()))
        .unwrap_or_else(|| panic!("no plan printed: {stdout}"))
}

/// Runs `cmd` to its end. A copy just written can fail to start with "text file
/// busy" while another test's thread forks with the copy's write handle briefly
/// inherited (before that child's exec closes it): that is retried.
fn output_of(cmd: &mut Command) -> std::process::Output {
    for _ in 0..100 {
        match cmd.output() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            r => return r.expect("run the child"),
        }
    }
    panic!("the copied test binary stayed busy")
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default()
}

#[test]
fn a_second_run_plans_from_the_first_runs_measurements() {
    let bin = Scratch::new("bin");
    let cache = Scratch::new("second");
    let exe = copy_of_me(&bin.0);
    let first = run(&exe, &cache.0, &[]);
    assert!(first.starts_with("origin=Fresh"), "{first}");
    let second = run(&exe, &cache.0, &[]);
    assert!(second.starts_with("origin=Disk"), "{second}");
    assert!(second.contains("(from the disk cache)"), "{second}");
}

#[test]
fn a_rebuilt_executable_measures_again() {
    let bin = Scratch::new("rebuilt-bin");
    let cache = Scratch::new("rebuilt");
    let exe = copy_of_me(&bin.0);
    assert!(run(&exe, &cache.0, &[]).starts_with("origin=Fresh"));
    // A rebuild gives a new file: here one byte longer (an ELF file runs the same with
    // a byte appended), so the test does not depend on the file system's timestamp
    // granularity.
    let exe = copy_of_me(&bin.0);
    let mut bytes = std::fs::read(&exe).expect("read the copy");
    bytes.push(0);
    std::fs::write(&exe, bytes).expect("rewrite the copy");
    let again = run(&exe, &cache.0, &[]);
    assert!(again.starts_with("origin=Fresh"), "{again}");
}

#[test]
fn expired_entries_are_not_used() {
    let bin = Scratch::new("ttl-bin");
    let cache = Scratch::new("ttl");
    let exe = copy_of_me(&bin.0);
    let ttl = [("AMORSIZE_CACHE_TTL_SECS", "0")];
    assert!(run(&exe, &cache.0, &ttl).starts_with("origin=Fresh"));
    let again = run(&exe, &cache.0, &ttl);
    assert!(again.starts_with("origin=Fresh"), "{again}");
}

#[test]
fn a_damaged_entry_is_reported_and_rewritten() {
    let bin = Scratch::new("damaged-bin");
    let cache = Scratch::new("damaged");
    let exe = copy_of_me(&bin.0);
    assert!(run(&exe, &cache.0, &[]).starts_with("origin=Fresh"));
    let sites: Vec<PathBuf> = entries(&cache.0)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("site-"))
        })
        .collect();
    assert!(!sites.is_empty(), "{:?}", entries(&cache.0));
    for p in &sites {
        let bytes = std::fs::read(p).expect("read entry");
        std::fs::write(p, &bytes[..bytes.len() / 2]).expect("truncate entry");
    }
    let damaged = run(&exe, &cache.0, &[]);
    assert!(damaged.starts_with("origin=Fresh"), "{damaged}");
    assert!(
        damaged.contains("disk cache:") && damaged.contains("truncated"),
        "{damaged}"
    );
    let repaired = run(&exe, &cache.0, &[]);
    assert!(repaired.starts_with("origin=Disk"), "{repaired}");
}

#[test]
fn off_writes_nothing() {
    let bin = Scratch::new("off-bin");
    let cache = Scratch::new("off");
    let exe = copy_of_me(&bin.0);
    let off = [("AMORSIZE_CACHE", "off")];
    assert!(run(&exe, &cache.0, &off).starts_with("origin=Fresh"));
    assert!(run(&exe, &cache.0, &off).starts_with("origin=Fresh"));
    assert_eq!(entries(&cache.0), Vec::<PathBuf>::new());
}

#[test]
fn clear_cache_empties_the_directory() {
    let bin = Scratch::new("clear-bin");
    let cache = Scratch::new("clear");
    let exe = copy_of_me(&bin.0);
    run(&exe, &cache.0, &[]);
    assert!(!entries(&cache.0).is_empty());
    let out = output_of(
        Command::new(&exe)
            .args(["--exact", "clear_child", "--nocapture", "--test-threads=1"])
            .env(CHILD, "1")
            .env("AMORSIZE_CACHE_DIR", &cache.0),
    );
    assert!(out.status.success());
    assert_eq!(entries(&cache.0), Vec::<PathBuf>::new());
    assert!(run(&exe, &cache.0, &[]).starts_with("origin=Fresh"));
}

#[test]
fn clear_child() {
    if std::env::var_os(CHILD).is_some() {
        let removed = amorsize::clear_cache().expect("clear");
        assert!(removed > 0);
    }
}
