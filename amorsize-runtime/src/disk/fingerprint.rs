//! What makes a cached measurement valid: the machine it was made on, and for plans
//! the executable that made it.
//!
//! A measurement made elsewhere (another CPU, another CPU or memory budget, another
//! kernel, another amorsize) is worthless, and a cache directory can be shared (a home
//! directory on NFS, a container image's layer, a CI cache), so every entry carries the
//! [`Fingerprint`] hash of the machine that wrote it and is ignored anywhere else.
//!
//! The cgroup reading here is deliberately minimal: it reads the limits at the cgroup
//! mount root (`/sys/fs/cgroup/...`), which inside a container is the container's own
//! group, and does not walk `/proc/self/cgroup` and `/proc/self/mountinfo` to a nested
//! group the way `probe/cgroup.rs` does. The fingerprint only has to *change* when the
//! budget changes, and cheaply (it is computed on the first cache access of a process,
//! possibly on a caller's path); a nested limit that changes while everything else
//! stays the same is rare, and a plan read from disk is verified against the first
//! chunk anyway. The CPU quota is also already part of `available_parallelism`, which
//! reads the process's own cgroup on Linux.

use std::fmt;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::sync::OnceLock;
use std::time::UNIX_EPOCH;

use super::hash::StableHasher;

/// Memory limits at or above this are "no limit": cgroup v1 reports an unlimited group
/// as `9223372036854771712` (`i64::MAX` rounded down to a page).
const UNLIMITED_AT: u64 = 1 << 62;

/// The machine as far as cached measurements are concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fingerprint {
    /// The CPU model (Linux: the first `model name` of `/proc/cpuinfo`), or `unknown`.
    pub cpu_model: String,
    /// The CPUs this process may run on (Linux: its affinity mask; elsewhere
    /// `available_parallelism()`; 0: unknown). A CPU quota is in `cgroup_cpu`.
    pub cpu_budget: usize,
    /// cgroup CPU quota as (quota, period) in microseconds (v2 `cpu.max`, else v1
    /// `cpu.cfs_quota_us` and `cpu.cfs_period_us`); `None`: no limit or unreadable.
    pub cgroup_cpu: Option<(u64, u64)>,
    /// cgroup memory limit in bytes (v2 `memory.max`, v1 `memory.limit_in_bytes`);
    /// `None`: no limit or unreadable.
    pub cgroup_memory: Option<u64>,
    /// The kernel release (`6.1.0-18-amd64`), or `unknown`.
    pub kernel: String,
    /// The target (`x86_64-linux`): a home directory shared by an x86 and an ARM
    /// machine must not mix their entries, even where the CPU model is unknown.
    pub target: String,
    /// The amorsize-runtime version: a new version may measure or plan differently.
    pub version: &'static str,
}

impl Fingerprint {
    /// Reads this machine's fingerprint. Costs a few file reads (tens of
    /// microseconds); the store computes it once per process, on first use.
    pub(crate) fn current() -> Fingerprint {
        Fingerprint {
            cpu_model: cpu_model(),
            cpu_budget: cpu_budget(),
            cgroup_cpu: read_trimmed("/sys/fs/cgroup/cpu.max")
                .as_deref()
                .and_then(parse_cpu_max)
                .or_else(cgroup_v1_cpu),
            cgroup_memory: read_trimmed("/sys/fs/cgroup/memory.max")
                .or_else(|| read_trimmed("/sys/fs/cgroup/memory/memory.limit_in_bytes"))
                .as_deref()
                .and_then(parse_memory_limit),
            kernel: kernel_release(),
            target: format!("{}-{}", std::env::consts::ARCH, std::env::consts::OS),
            version: env!("CARGO_PKG_VERSION"),
        }
    }

    /// A hash that is the same for the same fingerprint in every process, build and
    /// version (see `hash.rs` for why not std's hashers).
    pub(crate) fn stable_hash(&self) -> u64 {
        let mut h = StableHasher::new();
        // A tag first, so that a change of the fields' meaning can be made to change
        // every hash.
        h.write_str("amorsize-fingerprint-2");
        h.write_str(&self.cpu_model);
        h.write_u64(self.cpu_budget as u64);
        match self.cgroup_cpu {
            None => h.write_opt_u64(None),
            Some((quota, period)) => {
                h.write_opt_u64(Some(quota));
                h.write_u64(period);
            }
        }
        h.write_opt_u64(self.cgroup_memory);
        h.write_str(&self.kernel);
        h.write_str(&self.target);
        h.write_str(self.version);
        h.finish()
    }
}

impl fmt::Display for Fingerprint {
    /// One line, for logs and explanations: `Intel(R) Xeon(R) ... x2 CPUs, cgroup cpu
    /// 150000/100000 us, cgroup memory 4.0 GiB, kernel 6.1.0, x86_64-linux, amorsize
    /// 0.1.0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} x{} CPUs", self.cpu_model, self.cpu_budget)?;
        match self.cgroup_cpu {
            Some((quota, period)) => write!(f, ", cgroup cpu {quota}/{period} us")?,
            None => f.write_str(", no cgroup cpu limit")?,
        }
        match self.cgroup_memory {
            Some(bytes) => write!(
                f,
                ", cgroup memory {:.1} GiB",
                bytes as f64 / (1u64 << 30) as f64
            )?,
            None => f.write_str(", no cgroup memory limit")?,
        }
        write!(
            f,
            ", kernel {}, {}, amorsize {}",
            self.kernel, self.target, self.version
        )
    }
}

/// A small file's contents (its first 128 bytes: every file read here is one short
/// line) without surrounding whitespace, or `None` if unreadable. Open, one read,
/// close: `fs::read_to_string` also asks for the size, which `/proc` and `/sys` do
/// not know, and this runs on a first call's path.
fn read_trimmed(path: &str) -> Option<String> {
    use std::io::Read;
    let mut buf = [0u8; 128];
    let n = std::fs::File::open(path).ok()?.read(&mut buf).ok()?;
    let text = std::str::from_utf8(&buf[..n]).ok()?;
    Some(text.trim().to_owned())
}

/// The CPUs in this process's affinity mask: one system call, where
/// `available_parallelism` also walks `/proc/self/cgroup` and the quota files (about
/// twenty, on a first call's path); the quota is read into `cgroup_cpu` instead.
#[cfg(target_os = "linux")]
fn cpu_budget() -> usize {
    // SAFETY: `cpu_set_t` is plain old data, for which all-zero bytes are valid.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: the kernel writes at most `size_of::<cpu_set_t>()` bytes into `set`,
    // which lives on our stack; pid 0 is the calling thread.
    let ok =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if ok != 0 {
        return std::thread::available_parallelism().map_or(0, |n| n.get());
    }
    // SAFETY: `set` was filled in by the kernel.
    usize::try_from(unsafe { libc::CPU_COUNT(&set) }).unwrap_or(0)
}

#[cfg(not(target_os = "linux"))]
fn cpu_budget() -> usize {
    std::thread::available_parallelism().map_or(0, |n| n.get())
}

/// cgroup v1's CPU quota at the mount root, as (quota, period) in microseconds; `None`
/// without a limit (`-1`) or without v1.
fn cgroup_v1_cpu() -> Option<(u64, u64)> {
    let quota = read_trimmed("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")?
        .parse::<u64>()
        .ok()?;
    let period = read_trimmed("/sys/fs/cgroup/cpu/cpu.cfs_period_us")?
        .parse::<u64>()
        .ok()?;
    Some((quota, period))
}

/// Parses cgroup v2 `cpu.max` (`"max 100000"` or `"150000 100000"`): `None` when
/// unlimited or not understood.
fn parse_cpu_max(s: &str) -> Option<(u64, u64)> {
    let mut fields = s.split_whitespace();
    let quota = fields.next()?.parse::<u64>().ok()?;
    let period = fields.next().map_or(Some(100_000), |p| p.parse().ok())?;
    Some((quota, period))
}

/// Parses a memory limit (`"max"` or bytes): `None` when unlimited or not understood.
fn parse_memory_limit(s: &str) -> Option<u64> {
    s.parse::<u64>().ok().filter(|&b| b < UNLIMITED_AT)
}

/// The first `model name` of `/proc/cpuinfo`, read only as far as that line (the file
/// has a stanza per CPU). Elsewhere, and on CPUs that do not name themselves there
/// (some ARM kernels), `unknown`: the target and the CPU budget still tell machines
/// apart, and asking `sysctl` is not worth a process or an FFI surface here.
fn cpu_model() -> String {
    // The processor's own brand string: about a microsecond, where reading
    // /proc/cpuinfo (whose `model name` is the same string) takes about twenty, on
    // the first call's path.
    if let Some(model) = brand_string() {
        return model;
    }
    let from_proc = || -> Option<String> {
        let file = std::fs::File::open("/proc/cpuinfo").ok()?;
        BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                (key.trim() == "model name").then(|| value.trim().to_owned())
            })
    };
    if cfg!(target_os = "linux")
        && let Some(model) = from_proc().filter(|m| !m.is_empty())
    {
        return model;
    }
    "unknown".to_owned()
}

/// The kernel release: `uname(2)` (a system call, about a microsecond), else
/// `/proc/sys/kernel/osrelease` (the same string, a file read), else `unknown`.
fn kernel_release() -> String {
    if let Some(release) = uname_release() {
        return release;
    }
    read_trimmed("/proc/sys/kernel/osrelease")
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The CPUID brand string (leaves `0x8000_0002..=0x8000_0004`), trimmed, where the
/// processor has one.
#[cfg(target_arch = "x86_64")]
fn brand_string() -> Option<String> {
    use std::arch::x86_64::__cpuid;
    // SAFETY: CPUID is available on every x86_64 processor; the extended leaves are
    // read only after leaf 0x8000_0000 says they exist.
    #[allow(unused_unsafe)]
    let max_extended = unsafe { __cpuid(0x8000_0000) }.eax;
    if max_extended < 0x8000_0004 {
        return None;
    }
    let mut bytes = Vec::with_capacity(48);
    for leaf in 0x8000_0002u32..=0x8000_0004 {
        // SAFETY: as above; the leaf exists.
        #[allow(unused_unsafe)]
        let r = unsafe { __cpuid(leaf) };
        for word in [r.eax, r.ebx, r.ecx, r.edx] {
            bytes.extend_from_slice(&word.to_le_bytes());
        }
    }
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    let model = String::from_utf8_lossy(&bytes[..end]).trim().to_owned();
    (!model.is_empty()).then_some(model)
}

#[cfg(not(target_arch = "x86_64"))]
fn brand_string() -> Option<String> {
    None
}

/// `uname(2)`'s release field.
#[cfg(unix)]
fn uname_release() -> Option<String> {
    // SAFETY: `utsname` is plain old data, for which all-zero bytes are a valid value.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uname` only writes into the struct it is given, which lives on our stack.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return None;
    }
    let bytes: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    let release = String::from_utf8_lossy(&bytes).trim().to_owned();
    (!release.is_empty()).then_some(release)
}

/// No `uname` here.
#[cfg(not(unix))]
fn uname_release() -> Option<String> {
    None
}

/// A stable hash identifying the executable this process runs, for entries that are
/// only valid for the code that made them (plans: they depend on the closures' cost).
/// `None` if it cannot be told (no `current_exe`, a deleted or unreadable file): then
/// such entries must be neither read nor written.
///
/// It hashes the canonical path, size and modification time (to the nanosecond where
/// the file system keeps it). Every rebuild rewrites the file, so it changes both; a
/// copy or a `touch` changes it too, which only costs a cold cache. The ELF build id
/// would survive copies, but it is not always there (rustc does not ask the linker for
/// one; whether the C toolchain adds it depends on the distribution), reading it takes
/// unsafe `dl_iterate_phdr` code, and macOS (`LC_UUID`) and Windows (PDB GUID) would
/// each need a third and fourth way; path, size and mtime work everywhere from one
/// `stat`. Computed once per process: identity is what the process started as.
pub(crate) fn exe_identity() -> Option<u64> {
    static IDENTITY: OnceLock<Option<u64>> = OnceLock::new();
    *IDENTITY.get_or_init(|| {
        let exe = std::env::current_exe().ok()?;
        identity_of(&exe)
    })
}

/// The identity of the executable at `path` (see [`exe_identity`]).
pub(crate) fn identity_of(path: &Path) -> Option<u64> {
    // On Linux `current_exe` reads `/proc/self/exe`, which the kernel keeps canonical;
    // elsewhere it may be the path the program was started by.
    #[cfg(not(target_os = "linux"))]
    let path = &path.canonicalize().ok()?;
    let meta = std::fs::metadata(path).ok()?;
    let mtime = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    let mut h = StableHasher::new();
    h.write_str("amorsize-exe-1");
    h.write_bytes_field(path.as_os_str().as_encoded_bytes());
    h.write_u64(meta.len());
    h.write_u64(mtime.as_secs());
    h.write_u64(u64::from(mtime.subsec_nanos()));
    Some(h.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cgroup_files() {
        assert_eq!(parse_cpu_max("max 100000"), None);
        assert_eq!(parse_cpu_max("150000 100000"), Some((150_000, 100_000)));
        assert_eq!(parse_cpu_max("150000"), Some((150_000, 100_000)));
        assert_eq!(parse_cpu_max("garbage"), None);
        assert_eq!(parse_memory_limit("max"), None);
        assert_eq!(parse_memory_limit("9223372036854771712"), None);
        assert_eq!(parse_memory_limit("4294967296"), Some(1 << 32));
    }

    /// The fast sources give what the files say, where both exist.
    #[test]
    fn fast_sources_agree_with_proc() {
        if let (Some(brand), Ok(info)) = (brand_string(), std::fs::read_to_string("/proc/cpuinfo"))
            && let Some(model) = info.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_owned())
            })
        {
            assert_eq!(brand, model);
        }
        if let (Some(uname), Some(file)) =
            (uname_release(), read_trimmed("/proc/sys/kernel/osrelease"))
        {
            assert_eq!(uname, file);
        }
    }

    #[test]
    fn hash_is_stable_and_sensitive() {
        let fp = Fingerprint {
            cpu_model: "Test CPU".to_owned(),
            cpu_budget: 2,
            cgroup_cpu: None,
            cgroup_memory: Some(1 << 32),
            kernel: "6.1.0".to_owned(),
            target: "x86_64-linux".to_owned(),
            version: "0.1.0",
        };
        // A fixed value: if this changes, every cache entry written before is orphaned
        // (which is safe, but must be deliberate: version 2 counts the CPU budget from
        // the affinity mask and reads a cgroup v1 quota).
        assert_eq!(fp.stable_hash(), fp.clone().stable_hash());
        assert_eq!(fp.stable_hash(), 0x8196_29c5_e949_b4b5);
        let mut other = fp.clone();
        other.cpu_budget = 4;
        assert_ne!(fp.stable_hash(), other.stable_hash());
        let mut other = fp.clone();
        other.cgroup_cpu = Some((200_000, 100_000));
        assert_ne!(fp.stable_hash(), other.stable_hash());
        assert!(fp.to_string().contains("Test CPU x2 CPUs"), "{fp}");
    }

    #[test]
    fn current_fingerprint_is_readable() {
        let fp = Fingerprint::current();
        assert_eq!(fp, Fingerprint::current());
        assert!(!fp.cpu_model.is_empty() && !fp.kernel.is_empty());
        assert!(fp.cpu_budget >= 1);
        assert_eq!(fp.version, env!("CARGO_PKG_VERSION"));
    }

    #[test]
    fn exe_identity_changes_with_the_file() {
        let id = exe_identity();
        assert!(id.is_some());
        assert_eq!(id, exe_identity());
        let dir = crate::disk::tests::TempDir::new("exe-identity");
        let file = dir.path().join("prog");
        std::fs::write(&file, b"one").unwrap();
        let a = identity_of(&file).unwrap();
        std::fs::write(&file, b"one plus").unwrap();
        let b = identity_of(&file).unwrap();
        assert_ne!(a, b, "a rebuilt (rewritten) executable is another one");
        assert_eq!(identity_of(&dir.path().join("missing")), None);
    }
}
