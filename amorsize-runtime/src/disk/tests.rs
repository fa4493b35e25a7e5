//! Tests of the disk cache's storage, each in its own temporary directory (never the
//! user's cache), with the directory and the fingerprint passed explicitly: tests run
//! in parallel threads of one process, which share one environment.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use super::files::{self, MAX_ENTRIES, STALE_TEMP_AGE};
use super::problem::{About, Cause};
use super::settings::{self, DEFAULT_TTL, EnvValues, Location, Platform, Settings};
use super::store::now_unix;
use super::{Read, Store, clear_cache_in};

/// A fresh directory under the system's temporary directory, removed on drop.
pub(crate) struct TempDir(PathBuf);

impl TempDir {
    /// Creates `amorsize-disk-{name}-{pid}-{n}` under `std::env::temp_dir()`.
    pub(crate) fn new(name: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let path = std::env::temp_dir().join(format!(
            "amorsize-disk-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&path);
        fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The fingerprint hash of the "machine" the tests run on.
const FP: u64 = 0x00f1_e1d0;

/// A writable store of `dir` with the default time to live.
fn store(dir: &Path) -> Store {
    Store::in_dir(dir.to_owned(), DEFAULT_TTL, FP, true)
}

/// The names of the files in `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .map(|l| {
            l.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The problem of a read, or a panic naming what came instead.
fn problem_of<T: std::fmt::Debug>(read: Read<T>) -> super::Problem {
    match read {
        Read::Problem(p) => p,
        other => panic!("expected a problem, got {other:?}"),
    }
}

type Value = (String, Vec<f64>, Option<u32>);

fn value() -> Value {
    ("plan".to_owned(), vec![0.5, 1.5, 1e-9], Some(7))
}

#[test]
fn the_store_can_be_shared() {
    fn shared<T: Send + Sync>() {}
    shared::<Store>();
    let tmp = TempDir::new("shared");
    let s = store(tmp.path());
    s.warm();
    std::thread::scope(|scope| {
        for t in 0..4u64 {
            let s = &s;
            scope.spawn(move || {
                for i in 0..50 {
                    s.write("plan", t, &(t, i)).unwrap();
                    assert!(
                        matches!(s.read::<(u64, u64)>("plan", t), Read::Hit((tt, _)) if tt == t)
                    );
                }
            });
        }
    });
    assert_eq!(names(tmp.path()).len(), 4);
}

#[test]
fn round_trip() {
    let tmp = TempDir::new("round-trip");
    let dir = tmp.path().join("nested").join("cache");
    let s = store(&dir);
    assert_eq!(
        s.read::<Value>("plan", 1),
        Read::Miss,
        "missing directory: a miss"
    );
    s.write("plan", 1, &value()).unwrap();
    s.write("calib", 1, &42u64).unwrap();
    assert_eq!(s.read::<Value>("plan", 1), Read::Hit(value()));
    assert_eq!(s.read::<u64>("calib", 1), Read::Hit(42));
    assert_eq!(s.read::<Value>("plan", 2), Read::Miss);
    // Overwriting replaces.
    s.write("calib", 1, &43u64).unwrap();
    assert_eq!(s.read::<u64>("calib", 1), Read::Hit(43));
    // Another store (another process) of the same machine reads it too.
    assert_eq!(store(&dir).read::<u64>("calib", 1), Read::Hit(43));
    assert_eq!(
        names(&dir),
        ["calib-0000000000000001.bin", "plan-0000000000000001.bin"],
        "one file per entry, no temporary file left"
    );
    assert!(s.take_reports().is_empty());
    assert!(s.directory_problem().is_none());
}

#[test]
fn a_bad_kind_is_refused() {
    let tmp = TempDir::new("bad-kind");
    let s = store(tmp.path());
    for kind in ["", "Plan", "a-b", "../x", "x.y", &"k".repeat(33)] {
        assert_eq!(s.write(kind, 1, &1u8).unwrap_err().cause, Cause::BadKind);
        assert_eq!(problem_of(s.read::<u8>(kind, 1)).cause, Cause::BadKind);
    }
    assert!(names(tmp.path()).is_empty());
}

#[test]
fn corrupt_file_is_a_problem_and_rewritten() {
    let tmp = TempDir::new("corrupt");
    let s = store(tmp.path());
    s.write("plan", 0xab, &value()).unwrap();
    let path = tmp.path().join("plan-00000000000000ab.bin");
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    fs::write(&path, &bytes).unwrap();
    let p = problem_of(s.read::<Value>("plan", 0xab));
    assert_eq!(
        p.to_string(),
        "disk cache entry plan-00000000000000ab.bin: corrupt (checksum mismatch), \
         ignored and rewritten"
    );
    assert!(!p.is_global());
    s.write("plan", 0xab, &value()).unwrap();
    assert_eq!(s.read::<Value>("plan", 0xab), Read::Hit(value()));

    // Garbage that is not ours at all.
    fs::write(&path, "some text someone saved here\n").unwrap();
    let p = problem_of(s.read::<Value>("plan", 0xab));
    assert!(p.to_string().contains("bad magic"), "{p}");
    // An entry renamed to another key's name.
    s.write("plan", 0xcd, &value()).unwrap();
    fs::copy(tmp.path().join("plan-00000000000000cd.bin"), &path).unwrap();
    let p = problem_of(s.read::<Value>("plan", 0xab));
    assert!(p.to_string().contains("holds key 00000000000000cd"), "{p}");
    // A value of another type under the same name.
    s.write("plan", 0xab, &"a string").unwrap();
    let p = problem_of(s.read::<u32>("plan", 0xab));
    assert!(p.to_string().contains("corrupt"), "{p}");
}

#[test]
fn truncated_file_is_a_problem_and_rewritten() {
    let tmp = TempDir::new("truncated");
    let s = store(tmp.path());
    s.write("plan", 5, &value()).unwrap();
    let path = tmp.path().join("plan-0000000000000005.bin");
    let full = fs::read(&path).unwrap();
    let n = full.len();
    fs::write(&path, &full[..n - 3]).unwrap();
    let p = problem_of(s.read::<Value>("plan", 5));
    assert_eq!(
        p.to_string(),
        format!(
            "disk cache entry plan-0000000000000005.bin: truncated ({} of {n} bytes), \
             ignored and rewritten",
            n - 3
        )
    );
    fs::write(&path, &full[..12]).unwrap();
    let p = problem_of(s.read::<Value>("plan", 5));
    assert!(p.to_string().contains("truncated (12 bytes"), "{p}");
    fs::write(&path, b"").unwrap();
    let p = problem_of(s.read::<Value>("plan", 5));
    assert!(p.to_string().contains("truncated (0 bytes"), "{p}");
    s.write("plan", 5, &value()).unwrap();
    assert_eq!(s.read::<Value>("plan", 5), Read::Hit(value()));
}

#[test]
fn an_oversized_file_is_not_read() {
    let tmp = TempDir::new("oversized");
    let path = tmp.path().join("plan-0000000000000001.bin");
    let f = fs::File::create(&path).unwrap();
    f.set_len(1 << 30).unwrap(); // sparse: no disk used
    let p = problem_of(store(tmp.path()).read::<Value>("plan", 1));
    assert!(p.to_string().contains("larger than any entry"), "{p}");
}

#[test]
fn a_directory_that_is_a_file() {
    let tmp = TempDir::new("dir-is-file");
    let file = tmp.path().join("cache");
    fs::write(&file, "not a directory").unwrap();
    for dir in [file.clone(), file.join("below")] {
        let s = store(&dir);
        assert_eq!(s.read::<Value>("plan", 1), Read::Miss);
        let p = s.write("plan", 1, &value()).unwrap_err();
        assert!(p.is_global());
        assert_eq!(p.cause, Cause::NotADirectory);
        assert_eq!(
            p.to_string(),
            format!(
                "disk cache directory {}: exists but is not a directory; working without \
                 the disk cache",
                dir.display()
            )
        );
        assert!(s.write("plan", 2, &value()).is_err(), "every write says so");
        assert_eq!(s.take_reports(), [p], "reported once");
        assert!(s.take_reports().is_empty());
        assert!(s.directory_problem().is_some());
    }
    assert_eq!(fs::read_to_string(&file).unwrap(), "not a directory");
}

/// A read-only directory serves reads and refuses writes, reported once. Root ignores
/// permission bits, so as root (containers, CI) the permission part is skipped and
/// `/proc` (where not even root creates files) stands in.
#[cfg(unix)]
#[test]
fn a_read_only_directory() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = TempDir::new("read-only");
    let dir = tmp.path().join("cache");
    store(&dir).write("plan", 1, &value()).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o555)).unwrap();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let root = unsafe { libc::geteuid() } == 0;
    let s = store(&dir);
    assert_eq!(s.read::<Value>("plan", 1), Read::Hit(value()));
    if !root {
        let p = s.write("plan", 2, &value()).unwrap_err();
        assert!(p.is_global(), "{p}");
        assert!(p.to_string().contains("cannot create files in it"), "{p}");
        assert_eq!(s.read::<Value>("plan", 1), Read::Hit(value()));
        assert_eq!(s.take_reports(), [p]);
        assert!(s.take_reports().is_empty());
        assert_eq!(names(&dir), ["plan-0000000000000001.bin"]);
    }
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();

    if cfg!(target_os = "linux") {
        let s = store(Path::new("/proc"));
        assert_eq!(s.read::<Value>("plan", 1), Read::Miss);
        let p = s.write("plan", 1, &value()).unwrap_err();
        assert!(p.is_global(), "{p}");
        assert!(matches!(p.about, About::Directory(_)), "{p}");
        assert_eq!(s.take_reports(), [p]);
        assert!(s.take_reports().is_empty());
    }
}

#[test]
fn off_reads_writes_and_creates_nothing() {
    let tmp = TempDir::new("off");
    let dir = tmp.path().join("cache");
    for off in ["off", "OFF", "0", "false", "False", " no "] {
        let env = EnvValues {
            cache: Some(off.into()),
            cache_dir: Some(dir.clone().into()),
            ..EnvValues::default()
        };
        let settings = settings::resolve(&env, Platform::Unix);
        assert_eq!(settings.location, Location::Disabled, "{off}");
        assert!(settings.complaints.is_empty());
        let s = Store::with_settings(settings, FP, true);
        assert!(!s.enabled() && !s.writable());
        s.write("plan", 1, &value()).unwrap();
        assert_eq!(s.read::<Value>("plan", 1), Read::Miss);
        assert!(s.take_reports().is_empty());
    }
    assert!(!dir.exists(), "nothing created");
    assert!(names(tmp.path()).is_empty());
}

#[test]
fn workers_never_write() {
    let tmp = TempDir::new("worker");
    let dir = tmp.path().join("cache");
    let worker = Store::in_dir(dir.clone(), DEFAULT_TTL, FP, false);
    worker.write("plan", 1, &value()).unwrap();
    assert!(!dir.exists());
    store(&dir).write("plan", 1, &value()).unwrap();
    assert_eq!(
        worker.read::<Value>("plan", 1),
        Read::Hit(value()),
        "but read"
    );
    fs::write(dir.join("plan-0000000000000001.bin"), "junk").unwrap();
    let p = problem_of(worker.read::<Value>("plan", 1));
    assert!(p.to_string().ends_with(", ignored"), "not rewritten: {p}");
}

#[test]
fn a_changed_fingerprint_invalidates() {
    let tmp = TempDir::new("fingerprint");
    let here = store(tmp.path());
    let elsewhere = Store::in_dir(tmp.path().to_owned(), DEFAULT_TTL, FP + 1, true);
    here.write("calib", 9, &1u64).unwrap();
    let p = problem_of(elsewhere.read::<u64>("calib", 9));
    assert_eq!(p.cause, Cause::OtherMachine);
    assert_eq!(
        p.to_string(),
        "disk cache entry calib-0000000000000009.bin: measured on another machine or \
         amorsize version, ignored and rewritten"
    );
    elsewhere.write("calib", 9, &2u64).unwrap();
    assert_eq!(elsewhere.read::<u64>("calib", 9), Read::Hit(2));
    assert_eq!(
        problem_of(here.read::<u64>("calib", 9)).cause,
        Cause::OtherMachine
    );
}

/// What holds on any machine (a call site whose input ended inside its sample) is read
/// without the fingerprint; the rest of the entry's checks still apply.
#[test]
fn a_machine_free_entry_is_read_on_another_machine() {
    let tmp = TempDir::new("machine-free");
    let here = store(tmp.path());
    let elsewhere = Store::in_dir(tmp.path().to_owned(), DEFAULT_TTL, FP + 1, true);
    here.write("site", 3, &7u64).unwrap();
    assert_eq!(
        elsewhere.read_unless_machine_free::<u64>("site", 3, |&v| v == 7),
        Read::Hit(7)
    );
    assert_eq!(
        problem_of(elsewhere.read_unless_machine_free::<u64>("site", 3, |&v| v == 8)).cause,
        Cause::OtherMachine
    );
    std::fs::write(tmp.path().join(files::entry_name("site", 3)), b"garbage").unwrap();
    assert!(matches!(
        problem_of(elsewhere.read_unless_machine_free::<u64>("site", 3, |_| true)).cause,
        Cause::Invalid(_)
    ));
}

#[test]
fn entries_expire() {
    let tmp = TempDir::new("ttl");
    let s = Store::in_dir(tmp.path().to_owned(), Duration::from_secs(60), FP, true);
    let now = now_unix();
    s.write_created("plan", 1, &value(), now - 3600).unwrap();
    let p = problem_of(s.read::<Value>("plan", 1));
    assert!(
        matches!(p.cause, Cause::Expired { ttl_secs: 60, .. }),
        "{p}"
    );
    assert!(p.to_string().contains("s old, time to live 60 s)"), "{p}");
    s.write_created("plan", 1, &value(), now - 10).unwrap();
    assert_eq!(s.read::<Value>("plan", 1), Read::Hit(value()));
    s.write_created("plan", 1, &value(), now + 3600).unwrap();
    let p = problem_of(s.read::<Value>("plan", 1));
    assert!(matches!(p.cause, Cause::FromTheFuture { .. }), "{p}");
    // A time to live of 0 expires everything at once.
    s.write("plan", 2, &value()).unwrap();
    let zero = Store::in_dir(tmp.path().to_owned(), Duration::ZERO, FP, true);
    assert!(matches!(
        problem_of(zero.read::<Value>("plan", 2)).cause,
        Cause::Expired { .. }
    ));
    // and its first write prunes every entry.
    zero.write("plan", 3, &value()).unwrap();
    assert!(names(tmp.path()).is_empty());
}

#[test]
fn resolves_the_directory_and_settings() {
    let resolve = |env: EnvValues, platform| settings::resolve(&env, platform);
    let dir = |s: Settings| match s.location {
        Location::Dir(d) => d,
        other => panic!("{other:?}"),
    };
    let home = || Some("/home/u".into());
    let base = || EnvValues {
        home: home(),
        ..EnvValues::default()
    };
    assert_eq!(
        dir(resolve(base(), Platform::Unix)),
        Path::new("/home/u/.cache/amorsize")
    );
    assert_eq!(
        dir(resolve(base(), Platform::MacOs)),
        Path::new("/home/u/Library/Caches/amorsize")
    );
    let xdg = EnvValues {
        xdg_cache_home: Some("/xdg".into()),
        ..base()
    };
    assert_eq!(
        dir(resolve(xdg.clone(), Platform::Unix)),
        Path::new("/xdg/amorsize")
    );
    assert_eq!(
        dir(resolve(xdg.clone(), Platform::MacOs)),
        Path::new("/xdg/amorsize")
    );
    let relative_xdg = EnvValues {
        xdg_cache_home: Some("rel".into()),
        ..base()
    };
    assert_eq!(
        dir(resolve(relative_xdg, Platform::Unix)),
        Path::new("/home/u/.cache/amorsize"),
        "a relative XDG_CACHE_HOME is ignored"
    );
    let explicit = EnvValues {
        cache_dir: Some("/c".into()),
        cache: Some("on".into()),
        ..xdg.clone()
    };
    assert_eq!(dir(resolve(explicit, Platform::Unix)), Path::new("/c"));
    let empty = EnvValues {
        cache_dir: Some("".into()),
        cache: Some("".into()),
        ttl_secs: Some("".into()),
        ..xdg
    };
    let s = resolve(empty, Platform::Unix);
    assert_eq!((s.ttl, s.complaints.len()), (DEFAULT_TTL, 0));
    assert_eq!(
        dir(s),
        Path::new("/xdg/amorsize"),
        "empty values count as unset"
    );
    let windows = EnvValues {
        local_app_data: Some("C:\\Users\\u\\AppData\\Local".into()),
        ..EnvValues::default()
    };
    assert_eq!(
        dir(resolve(windows, Platform::Windows)),
        Path::new("C:\\Users\\u\\AppData\\Local").join("amorsize")
    );
    assert!(matches!(
        resolve(EnvValues::default(), Platform::Unix).location,
        Location::Nowhere(_)
    ));

    let ttl = EnvValues {
        ttl_secs: Some(" 3600 ".into()),
        ..base()
    };
    assert_eq!(resolve(ttl, Platform::Unix).ttl, Duration::from_secs(3600));
    let bad = EnvValues {
        ttl_secs: Some("1h".into()),
        cache: Some("maybe".into()),
        ..base()
    };
    let s = resolve(bad, Platform::Unix);
    assert_eq!(s.ttl, DEFAULT_TTL);
    assert!(
        matches!(s.location, Location::Dir(_)),
        "a bad value keeps the cache on"
    );
    assert_eq!(
        s.complaints,
        [
            "ignoring AMORSIZE_CACHE=\"maybe\": expected `off` or `on`",
            "ignoring AMORSIZE_CACHE_TTL_SECS=\"1h\": expected a whole number of seconds",
        ]
    );
    let s = Store::with_settings(s, FP, true);
    let reports = s.take_reports();
    assert_eq!(reports.len(), 2);
    assert!(
        reports[1]
            .to_string()
            .starts_with("disk cache: ignoring AMORSIZE_CACHE_TTL_SECS")
    );
    assert!(s.take_reports().is_empty(), "once");
}

#[test]
fn no_directory_at_all_is_reported_once() {
    let settings = settings::resolve(&EnvValues::default(), Platform::Unix);
    let s = Store::with_settings(settings, FP, true);
    assert!(!s.enabled());
    assert_eq!(s.read::<u8>("plan", 1), Read::Miss);
    let p = s.write("plan", 1, &1u8).unwrap_err();
    assert!(p.is_global());
    assert!(p.to_string().contains("HOME"), "{p}");
    assert_eq!(s.take_reports(), [p]);
    assert!(s.take_reports().is_empty());
}

/// Sets a file's modification time to `age` ago.
fn age_file(path: &Path, age: Duration) {
    let f = fs::File::options().write(true).open(path).unwrap();
    f.set_modified(SystemTime::now() - age).unwrap();
}

#[test]
fn pruning_removes_only_stale_files_of_ours() {
    let tmp = TempDir::new("prune");
    let dir = tmp.path();
    let s = store(dir);
    s.write("plan", 1, &1u8).unwrap(); // the first write prunes: nothing to do
    s.write("plan", 2, &2u8).unwrap();
    let temp_old = dir.join(files::temp_name("plan-0000000000000003.bin"));
    let temp_new = dir.join(files::temp_name("plan-0000000000000004.bin"));
    for (name, age) in [
        (
            "plan-0000000000000002.bin",
            DEFAULT_TTL + Duration::from_secs(60),
        ),
        ("notes.txt", DEFAULT_TTL * 10),
        ("plan-xyz.bin", DEFAULT_TTL * 10),
    ] {
        let path = dir.join(name);
        if !path.exists() {
            fs::write(&path, "x").unwrap();
        }
        age_file(&path, age);
    }
    fs::write(&temp_old, "x").unwrap();
    age_file(&temp_old, STALE_TEMP_AGE + Duration::from_secs(60));
    fs::write(&temp_new, "x").unwrap();
    let removed = files::prune(dir, DEFAULT_TTL, SystemTime::now(), MAX_ENTRIES);
    assert_eq!(removed, 2);
    let mut expected = vec![
        "notes.txt".to_owned(),
        "plan-0000000000000001.bin".to_owned(),
        "plan-xyz.bin".to_owned(),
        temp_new.file_name().unwrap().to_string_lossy().into_owned(),
    ];
    expected.sort();
    assert_eq!(names(dir), expected);
}

#[test]
fn pruning_caps_the_number_of_entries() {
    let tmp = TempDir::new("prune-cap");
    let dir = tmp.path();
    for i in 0..20u64 {
        let path = dir.join(files::entry_name("plan", i));
        fs::write(&path, "x").unwrap();
        age_file(&path, Duration::from_secs(1000 - i)); // higher i: newer
    }
    assert_eq!(files::prune(dir, DEFAULT_TTL, SystemTime::now(), 16), 8);
    let left = names(dir);
    assert_eq!(left.len(), 12);
    assert_eq!(left[0], files::entry_name("plan", 8), "the oldest went");
}

#[test]
fn writes_prune_now_and_then() {
    let tmp = TempDir::new("prune-on-write");
    let dir = tmp.path();
    let s = Store::in_dir(dir.to_owned(), Duration::from_secs(3600), FP, true);
    let stale = dir.join(files::entry_name("plan", 99));
    fs::write(&stale, "x").unwrap();
    age_file(&stale, Duration::from_secs(7200));
    s.write("plan", 1, &1u8).unwrap();
    assert!(!stale.exists(), "the first write of a process prunes");
}

#[test]
fn naming_scheme() {
    assert_eq!(files::entry_name("plan", 0xff), "plan-00000000000000ff.bin");
    assert!(files::is_entry_name("plan-00000000000000ff.bin"));
    assert!(files::is_entry_name("call_site2-0123456789abcdef.bin"));
    for not in [
        "plan-00000000000000FF.bin",
        "plan-0ff.bin",
        "plan-00000000000000ff.bin.bak",
        "-00000000000000ff.bin",
        "Plan-00000000000000ff.bin",
        "notes.txt",
    ] {
        assert!(!files::is_entry_name(not), "{not}");
    }
    let temp = files::temp_name("plan-00000000000000ff.bin");
    assert!(files::is_temp_name(&temp), "{temp}");
    assert!(!files::is_entry_name(&temp));
    assert_ne!(temp, files::temp_name("plan-00000000000000ff.bin"));
    assert!(!files::is_temp_name(".plan-00000000000000ff.bin.tmp"));
    assert!(!files::is_temp_name(".bashrc.1-2-3.tmp"));
}

#[test]
fn clearing_removes_only_our_files() {
    let tmp = TempDir::new("clear");
    let dir = tmp.path().join("cache");
    let s = store(&dir);
    s.write("plan", 1, &1u8).unwrap();
    s.write("calib", 2, &2u8).unwrap();
    fs::write(dir.join(files::temp_name("plan-0000000000000003.bin")), "x").unwrap();
    fs::write(dir.join("notes.txt"), "mine").unwrap();
    fs::create_dir(dir.join("plan-0000000000000004.bin")).unwrap();
    let env = EnvValues {
        cache_dir: Some(dir.clone().into()),
        // Clearing works with the cache off too.
        cache: Some("off".into()),
        ..EnvValues::default()
    };
    assert!(
        clear_cache_in(&env, Platform::Unix).is_err(),
        "a directory named like an entry cannot be removed as a file: an error"
    );
    assert_eq!(names(&dir), ["notes.txt", "plan-0000000000000004.bin"]);
    fs::remove_dir(dir.join("plan-0000000000000004.bin")).unwrap();
    s.write("plan", 1, &1u8).unwrap();
    assert_eq!(clear_cache_in(&env, Platform::Unix).unwrap(), 1);
    assert_eq!(names(&dir), ["notes.txt"]);
    assert_eq!(s.read::<u8>("plan", 1), Read::Miss);
    // The store writes again after the directory was emptied or removed.
    fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        clear_cache_in(&env, Platform::Unix).unwrap(),
        0,
        "missing: Ok(0)"
    );
    s.write("plan", 1, &1u8).unwrap();
    assert_eq!(s.read::<u8>("plan", 1), Read::Hit(1));
    assert_eq!(
        clear_cache_in(&EnvValues::default(), Platform::Unix).unwrap(),
        0
    );
}

// ---- several processes at once --------------------------------------------------

/// Set in the child processes of `four_processes_write_the_same_key`: the directory
/// to write into, and the writer's number.
const WRITER_DIR: &str = "AMORSIZE_DISK_TEST_WRITER_DIR";
const WRITER_ID: &str = "AMORSIZE_DISK_TEST_WRITER_ID";
const WRITES: u32 = 200;
const KEY: u64 = 0x5eed;

/// A value that checks itself: any mix of two writes is detectably wrong.
type Stamp = (u32, u32, Vec<u64>);

fn stamp(writer: u32, round: u32) -> Stamp {
    let len = 20 + (round % 50) as usize;
    let base = u64::from(writer) << 40 | u64::from(round) << 20;
    (writer, round, (0..len as u64).map(|j| base + j).collect())
}

fn stamp_is_whole(s: &Stamp) -> bool {
    *s == stamp(s.0, s.1)
}

/// A writer process in `four_processes_write_the_same_key`; does nothing in a normal
/// test run.
#[test]
fn concurrent_writer_child() {
    let Some(dir) = std::env::var_os(WRITER_DIR) else {
        return;
    };
    let id: u32 = std::env::var(WRITER_ID).unwrap().parse().unwrap();
    let dir = PathBuf::from(dir);
    let s = store(&dir);
    for round in 0..WRITES {
        s.write("plan", KEY, &stamp(id, round)).unwrap();
        match s.read::<Stamp>("plan", KEY) {
            Read::Hit(v) => assert!(stamp_is_whole(&v), "torn value {v:?}"),
            other => panic!("writer {id} round {round}: {other:?}"),
        }
    }
    fs::write(dir.with_file_name(format!("done-{id}")), "").unwrap();
}

#[test]
fn four_processes_write_the_same_key() {
    if std::env::var_os(WRITER_DIR).is_some() {
        return; // a child runs only `concurrent_writer_child`, but never recurse
    }
    let tmp = TempDir::new("four-writers");
    let dir = tmp.path().join("cache");
    let test_name = format!(
        "{}::concurrent_writer_child",
        module_path!()
            .split_once("::")
            .map_or(module_path!(), |(_, m)| m)
    );
    let exe = std::env::current_exe().unwrap();
    let mut children: Vec<_> = (0..4)
        .map(|id| {
            Command::new(&exe)
                .args([
                    test_name.as_str(),
                    "--exact",
                    "--test-threads=1",
                    "--nocapture",
                ])
                .env(WRITER_DIR, &dir)
                .env(WRITER_ID, id.to_string())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Read all along while they write: a reader never sees a torn entry either.
    let reader = store(&dir);
    while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        match reader.read::<Stamp>("plan", KEY) {
            Read::Hit(v) => assert!(stamp_is_whole(&v), "torn value {v:?}"),
            Read::Miss => {}
            Read::Problem(p) => panic!("{p}"),
        }
    }
    for (id, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "writer {id}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            tmp.path().join(format!("done-{id}")).exists(),
            "writer {id} did not run: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    match reader.read::<Stamp>("plan", KEY) {
        Read::Hit(v) => assert!(stamp_is_whole(&v) && v.1 == WRITES - 1, "{v:?}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        names(&dir),
        ["plan-0000000000005eed.bin"],
        "no temporary file left"
    );
}
