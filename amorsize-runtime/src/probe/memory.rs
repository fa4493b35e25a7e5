//! Memory the job may use: the tightest cgroup limit (v1 or v2) over this process's group
//! and its ancestors, that group's usage, and `MemAvailable`.
//!
//! [`read`] is the only part that touches the file system, and it reads every file under
//! a root prefix (`/` for real; a fixture tree in tests). The parsing is in `cgroup.rs`.

use std::path::Path;

use super::cgroup::{self, Limit, Version};
use super::{Fallback, Memory};

/// What the model plans with when nothing about memory could be read (off Linux, or the
/// files are missing): 4 GiB, a size most machines that run parallel jobs have free, and
/// small enough that a per-worker memory estimate still caps absurd worker counts.
pub(super) const DEFAULT_USABLE_BYTES: u64 = 4 << 30;

/// What could be read, before deciding what is usable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Reading {
    /// Tightest limit of the group and its ancestors.
    pub(super) limit: Option<u64>,
    /// Usage of the group that sets that limit.
    pub(super) usage: Option<u64>,
    /// `MemAvailable`.
    pub(super) available: Option<u64>,
}

/// Reads this process's memory situation, with a [`Fallback`] when nothing usable was
/// found.
pub(super) fn detect() -> (Memory, Option<Fallback>) {
    #[cfg(target_os = "linux")]
    let (reading, why) = (
        read(Path::new("/")),
        "no cgroup memory limit and no MemAvailable",
    );
    #[cfg(not(target_os = "linux"))]
    let (reading, why) = (Reading::default(), "memory is only read on Linux");
    finish(reading, why)
}

/// Turns a reading into a [`Memory`]: usable = min(limit - usage, available), over what is
/// known. Usage counts page cache, which the kernel can reclaim, so this errs on the low
/// side under heavy file I/O; `MemAvailable` already discounts reclaimable cache.
pub(super) fn finish(reading: Reading, why: &str) -> (Memory, Option<Fallback>) {
    let headroom = reading
        .limit
        .map(|limit| limit.saturating_sub(reading.usage.unwrap_or(0)));
    let usable = match (headroom, reading.available) {
        (Some(h), Some(a)) => Some(h.min(a)),
        (h, a) => h.or(a),
    };
    let fallback = usable.is_none().then(|| Fallback {
        measurement: "memory",
        default: DEFAULT_USABLE_BYTES as f64,
        why: why.to_string(),
    });
    let memory = Memory {
        limit_bytes: reading.limit,
        usage_bytes: reading.usage,
        available_bytes: reading.available,
        usable_bytes: usable.unwrap_or(DEFAULT_USABLE_BYTES),
    };
    (memory, fallback)
}

/// Reads `proc/self/cgroup`, `proc/self/mountinfo`, `proc/meminfo` and the cgroup files
/// they lead to, all under `root`. Any file that is missing or unreadable makes its value
/// unknown.
pub(super) fn read(root: &Path) -> Reading {
    let available = read_to_string(root, "/proc/meminfo")
        .as_deref()
        .and_then(cgroup::parse_mem_available);
    let (limit, usage) = read_cgroup(root).unzip();
    Reading {
        limit,
        usage: usage.flatten(),
        available,
    }
}

/// The tightest limit over the group and its ancestors, with the usage of the group that
/// sets it. `None` when there is no limit or it cannot be found.
fn read_cgroup(root: &Path) -> Option<(u64, Option<u64>)> {
    let group = cgroup::locate_memory_group(
        &read_to_string(root, "/proc/self/cgroup")?,
        &read_to_string(root, "/proc/self/mountinfo")?,
    )?;
    let version = group.version;
    let dirs = group.dirs();

    let mut best: Option<(u64, Option<u64>)> = None;
    for dir in &dirs {
        let limit = read_to_string(root, &format!("{dir}/{}", version.limit_file()))
            .map_or(Limit::Unknown, |t| cgroup::parse_limit(&t));
        if let Limit::Bytes(bytes) = limit
            && best.is_none_or(|(b, _)| bytes < b)
        {
            let usage = read_to_string(root, &format!("{dir}/{}", version.usage_file()))
                .as_deref()
                .and_then(cgroup::parse_bytes);
            best = Some((bytes, usage));
        }
    }

    // v1 also reports the tightest limit of all ancestors, including those above the
    // mount root that a container cannot walk to. Their usage is not visible, so the
    // group's own stands in (a lower bound).
    if version == Version::V1
        && let Some(group_dir) = dirs.first()
        && let Some(stat) = read_to_string(root, &format!("{group_dir}/memory.stat"))
        && let Limit::Bytes(bytes) = cgroup::parse_hierarchical_limit(&stat)
        && best.is_none_or(|(b, _)| bytes < b)
    {
        let usage = read_to_string(root, &format!("{group_dir}/{}", version.usage_file()))
            .as_deref()
            .and_then(cgroup::parse_bytes);
        best = Some((bytes, usage));
    }
    best
}

/// Reads `root` + `absolute`. Files under /proc and /sys are small; a cap keeps a
/// pathological file from costing more than a probe should.
fn read_to_string(root: &Path, absolute: &str) -> Option<String> {
    use std::io::Read;
    const CAP: u64 = 4 << 20;
    let file = std::fs::File::open(root.join(absolute.trim_start_matches('/'))).ok()?;
    let mut bytes = Vec::new();
    file.take(CAP).read_to_end(&mut bytes).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/cgroup")
            .join(name)
    }

    fn reading(name: &str) -> Reading {
        let root = fixture(name);
        assert!(root.is_dir(), "missing fixture {}", root.display());
        read(&root)
    }

    /// MemAvailable of every fixture's `proc/meminfo` except `malformed`: 8 GiB.
    const FIXTURE_AVAILABLE: Option<u64> = Some(8 * GIB);

    #[test]
    fn v1_limit_in_nested_group_with_unlimited_parent() {
        // A common VM layout: hybrid v1 + empty unified hierarchy.
        let r = reading("v1-nested");
        assert_eq!(r.limit, Some(2 * GIB));
        assert_eq!(r.usage, Some(512 * MIB));
        assert_eq!(r.available, FIXTURE_AVAILABLE);
        let (m, fallback) = finish(r, "");
        assert_eq!(m.usable_bytes, 2 * GIB - 512 * MIB);
        assert_eq!(fallback, None);
    }

    #[test]
    fn v1_limit_only_in_an_ancestor() {
        let r = reading("v1-ancestor");
        assert_eq!(r.limit, Some(GIB));
        // The ancestor's usage, not the nested group's.
        assert_eq!(r.usage, Some(256 * MIB));
        assert_eq!(finish(r, "").0.usable_bytes, 768 * MIB);
    }

    #[test]
    fn v1_tightest_of_several_limits_wins() {
        let r = reading("v1-tightest");
        assert_eq!((r.limit, r.usage), (Some(GIB), Some(300 * MIB)));
    }

    #[test]
    fn v1_hierarchical_limit_from_memory_stat() {
        // A container: the mount shows only its own group, whose limit file says
        // unlimited; memory.stat knows the limit of an invisible ancestor.
        let r = reading("v1-hierarchical");
        assert_eq!((r.limit, r.usage), (Some(768 * MIB), Some(100 * MIB)));
    }

    #[test]
    fn v2_max_means_no_limit() {
        let r = reading("v2-max");
        assert_eq!(r.limit, None);
        assert_eq!(r.usage, None);
        let (m, fallback) = finish(r, "");
        assert_eq!(m.usable_bytes, 8 * GIB);
        assert_eq!(fallback, None);
    }

    #[test]
    fn v2_nested_with_limit_in_an_ancestor() {
        let r = reading("v2-ancestor");
        assert_eq!((r.limit, r.usage), (Some(GIB), Some(400 * MIB)));
        assert_eq!(finish(r, "").0.usable_bytes, 624 * MIB);
    }

    #[test]
    fn unlimited_sentinels_everywhere() {
        // v1 `9223372036854771712`, `-1`, and values at 2^62 in every group and in
        // memory.stat.
        let r = reading("v1-unlimited");
        assert_eq!(r.limit, None);
        assert_eq!(finish(r, "").0.usable_bytes, 8 * GIB);
    }

    #[test]
    fn memory_controller_at_an_unusual_mount_point() {
        // Mounted at `/odd mounts/mem` (escaped as `\040` in mountinfo), with a root that
        // is not `/`, alongside hugetlb.
        let r = reading("v1-unusual-mount");
        assert_eq!((r.limit, r.usage), (Some(3 * GIB), Some(GIB)));
    }

    #[test]
    fn malformed_contents_are_unknown() {
        let r = reading("malformed");
        assert_eq!(r, Reading::default());
        let (m, fallback) = finish(r, "nothing readable");
        assert_eq!(m.usable_bytes, DEFAULT_USABLE_BYTES);
        assert_eq!(
            fallback.map(|f| (f.measurement, f.why)),
            Some(("memory", "nothing readable".to_string()))
        );
    }

    #[test]
    fn garbage_limit_file_is_skipped() {
        // The nested group's limit file is garbage; the parent's limit still counts.
        let r = reading("v1-garbage-limit");
        assert_eq!((r.limit, r.usage), (Some(GIB), None));
        // Unknown usage: the limit alone bounds it.
        assert_eq!(finish(r, "").0.usable_bytes, GIB);
    }

    #[test]
    fn missing_tree_is_unknown() {
        let r = read(&fixture("does-not-exist"));
        assert_eq!(r, Reading::default());
    }

    #[test]
    fn usage_above_limit_saturates() {
        let r = Reading {
            limit: Some(100),
            usage: Some(150),
            available: Some(1000),
        };
        assert_eq!(finish(r, "").0.usable_bytes, 0);
    }

    #[test]
    fn available_alone() {
        let r = Reading {
            limit: None,
            usage: Some(5),
            available: Some(1000),
        };
        let (m, f) = finish(r, "");
        assert_eq!((m.usable_bytes, f), (1000, None));
    }
}
