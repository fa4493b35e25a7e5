//! Pure parsing of the Linux cgroup files that say where this process's memory group is
//! and what it may use.
//!
//! Everything here works on the *contents* of files (strings), never on the file system,
//! so it can be tested with any text; `memory.rs` does the reading. Garbage anywhere
//! makes a value unknown (`None`), never a panic: these files come from the kernel, but
//! also from container runtimes, and a probe must not be the thing that crashes.
//!
//! The route from this process to its limit:
//! 1. `/proc/self/cgroup` names the group, one line per hierarchy:
//!    `hierarchy-id:controllers:path` (v1: `4:memory:/a/b`; v2: `0::/a/b`).
//! 2. `/proc/self/mountinfo` says where that hierarchy is mounted and which part of it
//!    the mount shows (the `root` field: in a container it is often the container's own
//!    group, so the group path must be made relative to it).
//! 3. The group's directory is `mount point + (path - root)`. Its limit, and the limits
//!    of all its ancestors up to the mount point, bound what the process may use.

/// Limits at or above this are "no limit": v1 reports an unlimited group as
/// `9223372036854771712` (`i64::MAX` rounded down to a page), and nothing real is that big.
pub(super) const UNLIMITED_AT: u64 = 1 << 62;

/// Which cgroup interface the memory controller is found on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Version {
    /// Per-controller hierarchies: `memory.limit_in_bytes`, `memory.usage_in_bytes`.
    V1,
    /// The unified hierarchy: `memory.max`, `memory.current`.
    V2,
}

impl Version {
    /// The file holding the group's limit.
    pub(super) fn limit_file(self) -> &'static str {
        match self {
            Version::V1 => "memory.limit_in_bytes",
            Version::V2 => "memory.max",
        }
    }

    /// The file holding the group's current usage.
    pub(super) fn usage_file(self) -> &'static str {
        match self {
            Version::V1 => "memory.usage_in_bytes",
            Version::V2 => "memory.current",
        }
    }
}

/// Where this process's memory group lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct MemoryGroup {
    /// v1 or v2.
    pub(super) version: Version,
    /// Mount point of the hierarchy, absolute, as `mountinfo` shows it (unescaped).
    pub(super) mount_point: String,
    /// Path components of the group below the mount point (empty: the mount point itself).
    pub(super) components: Vec<String>,
}

impl MemoryGroup {
    /// The group's directory and each ancestor's, up to and including the mount point,
    /// innermost first. Absolute paths as seen by this process.
    pub(super) fn dirs(&self) -> Vec<String> {
        let base = self.mount_point.trim_end_matches('/');
        (0..=self.components.len())
            .rev()
            .map(|depth| {
                let mut dir = base.to_string();
                for c in &self.components[..depth] {
                    dir.push('/');
                    dir.push_str(c);
                }
                if dir.is_empty() {
                    dir.push('/');
                }
                dir
            })
            .collect()
    }
}

/// One line of `/proc/self/cgroup`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Membership<'a> {
    hierarchy_id: &'a str,
    controllers: &'a str,
    path: &'a str,
}

fn parse_proc_cgroup(text: &str) -> impl Iterator<Item = Membership<'_>> {
    text.lines().filter_map(|line| {
        // The path is last and may itself contain ':'.
        let mut parts = line.splitn(3, ':');
        let hierarchy_id = parts.next()?.trim();
        let controllers = parts.next()?.trim();
        let path = parts.next()?.trim();
        if hierarchy_id.is_empty() || !path.starts_with('/') {
            return None;
        }
        Some(Membership {
            hierarchy_id,
            controllers,
            path,
        })
    })
}

/// One line of `/proc/self/mountinfo`, the fields we need.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mount {
    root: String,
    mount_point: String,
    fstype: String,
    super_options: String,
}

/// Parses `/proc/self/mountinfo`: `id parent major:minor root mount-point options
/// [optional fields...] - fstype source super-options` (proc(5)).
fn parse_mountinfo(text: &str) -> impl Iterator<Item = Mount> + '_ {
    text.lines().filter_map(|line| {
        let fields: Vec<&str> = line.split_ascii_whitespace().collect();
        let sep = fields.iter().position(|f| *f == "-")?;
        if sep < 6 {
            return None;
        }
        let root = unescape(fields[3]);
        let mount_point = unescape(fields[4]);
        let fstype = (*fields.get(sep + 1)?).to_string();
        let super_options = fields.get(sep + 3).copied().unwrap_or("").to_string();
        if !root.starts_with('/') || !mount_point.starts_with('/') {
            return None;
        }
        Some(Mount {
            root,
            mount_point,
            fstype,
            super_options,
        })
    })
}

/// Undoes mountinfo's octal escapes (`\040` for a space, `\011`, `\012`, `\134`).
/// A malformed escape is kept as written.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let value = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(byte) = u8::try_from(value) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Finds this process's memory group from the contents of `/proc/self/cgroup` and
/// `/proc/self/mountinfo`.
///
/// A v1 memory hierarchy wins over v2: on a hybrid system (v1 controllers plus an empty
/// unified hierarchy, a common layout on virtual machines) the memory controller is on
/// v1.
/// `None` when neither can be resolved.
pub(super) fn locate_memory_group(proc_cgroup: &str, mountinfo: &str) -> Option<MemoryGroup> {
    let mounts: Vec<Mount> = parse_mountinfo(mountinfo).collect();

    let v1 = parse_proc_cgroup(proc_cgroup)
        .find(|m| m.hierarchy_id != "0" && m.controllers.split(',').any(|c| c == "memory"));
    if let Some(member) = v1 {
        let candidates = mounts
            .iter()
            .filter(|m| m.fstype == "cgroup" && m.super_options.split(',').any(|o| o == "memory"));
        if let Some(group) = resolve(Version::V1, member.path, candidates) {
            return Some(group);
        }
    }

    let v2 = parse_proc_cgroup(proc_cgroup)
        .find(|m| m.hierarchy_id == "0" && m.controllers.is_empty())?;
    let candidates = mounts.iter().filter(|m| m.fstype == "cgroup2");
    resolve(Version::V2, v2.path, candidates)
}

/// Picks the mount that shows `path` (its root is `path` or an ancestor of it; the first
/// such mount wins) and makes the path relative to it. A path that no mount's root
/// contains (cgroup namespaces can show `/..`) resolves to the first mount's point, which
/// is then the best directory this process can see.
fn resolve<'m>(
    version: Version,
    path: &str,
    mut mounts: impl Iterator<Item = &'m Mount>,
) -> Option<MemoryGroup> {
    let path_parts: Vec<&str> = split_path(path);
    let mut first = None;
    for mount in mounts.by_ref() {
        let root_parts = split_path(&mount.root);
        if path_parts.starts_with(&root_parts) {
            let rest = &path_parts[root_parts.len()..];
            let components = if rest.contains(&"..") {
                Vec::new()
            } else {
                rest.iter().map(|c| (*c).to_string()).collect()
            };
            return Some(MemoryGroup {
                version,
                mount_point: mount.mount_point.clone(),
                components,
            });
        }
        first.get_or_insert(mount);
    }
    first.map(|mount| MemoryGroup {
        version,
        mount_point: mount.mount_point.clone(),
        components: Vec::new(),
    })
}

fn split_path(path: &str) -> Vec<&str> {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect()
}

/// What a limit file says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Limit {
    /// A real limit, in bytes.
    Bytes(u64),
    /// No limit (`max`, or a sentinel at or above [`UNLIMITED_AT`]).
    Unlimited,
    /// Missing or unreadable.
    Unknown,
}

/// Parses `memory.limit_in_bytes` (v1) or `memory.max` (v2).
pub(super) fn parse_limit(text: &str) -> Limit {
    let text = text.trim();
    if text == "max" {
        return Limit::Unlimited;
    }
    match text.parse::<u64>() {
        Ok(v) if v >= UNLIMITED_AT => Limit::Unlimited,
        Ok(v) => Limit::Bytes(v),
        // v1 allows writing -1 for "no limit"; some kernels echo it back.
        Err(_) if text == "-1" => Limit::Unlimited,
        Err(_) => Limit::Unknown,
    }
}

/// Parses a file holding one byte count (`memory.usage_in_bytes`, `memory.current`).
pub(super) fn parse_bytes(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// The `hierarchical_memory_limit` line of a v1 `memory.stat`: the tightest limit of the
/// group and every ancestor, including those above the mount root that a container
/// cannot see.
pub(super) fn parse_hierarchical_limit(memory_stat: &str) -> Limit {
    memory_stat
        .lines()
        .find_map(|line| {
            let mut it = line.split_ascii_whitespace();
            (it.next() == Some("hierarchical_memory_limit")).then(|| it.next())
        })
        .flatten()
        .map_or(Limit::Unknown, parse_limit)
}

/// `MemAvailable` from `/proc/meminfo`, in bytes (the file says kB, meaning KiB).
pub(super) fn parse_mem_available(meminfo: &str) -> Option<u64> {
    meminfo_field(meminfo, "MemAvailable")
}

/// One `Key:   value kB` field of `/proc/meminfo`, in bytes.
pub(super) fn meminfo_field(meminfo: &str, key: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let (k, rest) = line.split_once(':')?;
        if k.trim() != key {
            return None;
        }
        let mut it = rest.split_ascii_whitespace();
        let value: u64 = it.next()?.parse().ok()?;
        match it.next() {
            Some("kB") => value.checked_mul(1024),
            None => Some(value),
            Some(_) => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const THIS_MACHINE_CGROUP: &str = "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/abc\n\
        1:cpu:/\n0::/\n";
    const THIS_MACHINE_MOUNTINFO: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

    #[test]
    fn hybrid_prefers_v1_memory() {
        let g = locate_memory_group(THIS_MACHINE_CGROUP, THIS_MACHINE_MOUNTINFO);
        assert_eq!(
            g,
            Some(MemoryGroup {
                version: Version::V1,
                mount_point: "/sys/fs/cgroup/memory".into(),
                components: vec!["process_api".into(), "abc".into()],
            })
        );
        let dirs = g.map(|g| g.dirs()).unwrap_or_default();
        assert_eq!(
            dirs,
            [
                "/sys/fs/cgroup/memory/process_api/abc",
                "/sys/fs/cgroup/memory/process_api",
                "/sys/fs/cgroup/memory",
            ]
        );
    }

    #[test]
    fn pure_v2() {
        let g = locate_memory_group(
            "0::/user.slice/app.scope\n",
            "30 1 0:26 / /sys/fs/cgroup rw,nosuid shared:4 - cgroup2 cgroup2 rw,nsdelegate\n",
        );
        assert_eq!(
            g,
            Some(MemoryGroup {
                version: Version::V2,
                mount_point: "/sys/fs/cgroup".into(),
                components: vec!["user.slice".into(), "app.scope".into()],
            })
        );
    }

    #[test]
    fn mount_root_is_stripped() {
        // A container without a cgroup namespace: the mount shows only its own group.
        let g = locate_memory_group(
            "5:memory,hugetlb:/docker/abc/inner\n",
            "40 30 0:40 /docker/abc /sys/fs/cgroup/memory ro - cgroup cgroup rw,hugetlb,memory\n",
        );
        assert_eq!(g.map(|g| g.components), Some(vec!["inner".to_string()]));
    }

    #[test]
    fn root_outside_any_mount_uses_the_mount_point() {
        let g = locate_memory_group(
            "0::/../../elsewhere\n",
            "40 30 0:40 /mine /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n",
        );
        assert_eq!(
            g.map(|g| g.dirs()),
            Some(vec!["/sys/fs/cgroup".to_string()])
        );
    }

    #[test]
    fn escaped_mount_point() {
        let g = locate_memory_group(
            "4:memory:/g\n",
            "35 31 0:32 / /odd\\040mounts/mem rw shared:9 master:2 - cgroup none rw,memory\n",
        );
        assert_eq!(
            g.map(|g| g.dirs()[0].clone()),
            Some("/odd mounts/mem/g".into())
        );
    }

    #[test]
    fn unescape_edge_cases() {
        assert_eq!(unescape("a\\040b"), "a b");
        assert_eq!(unescape("\\134"), "\\");
        assert_eq!(unescape("end\\04"), "end\\04");
        assert_eq!(unescape("\\"), "\\");
        assert_eq!(unescape("\\999"), "\\999");
        assert_eq!(unescape("\\777"), "\\777"); // 511 does not fit a byte
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit("9223372036854771712\n"), Limit::Unlimited);
        assert_eq!(parse_limit("max\n"), Limit::Unlimited);
        assert_eq!(parse_limit("4611686018427387904"), Limit::Unlimited); // exactly 2^62
        assert_eq!(
            parse_limit("4611686018427387903"),
            Limit::Bytes((1 << 62) - 1)
        );
        assert_eq!(parse_limit("-1"), Limit::Unlimited);
        assert_eq!(parse_limit("2147483648\n"), Limit::Bytes(2 << 30));
        assert_eq!(parse_limit(""), Limit::Unknown);
        assert_eq!(parse_limit("lots"), Limit::Unknown);
        assert_eq!(parse_limit("99999999999999999999999"), Limit::Unknown);
        assert_eq!(parse_bytes(" 123\n"), Some(123));
        assert_eq!(parse_bytes("-5"), None);
    }

    #[test]
    fn memory_stat_and_meminfo() {
        let stat = "cache 1\nhierarchical_memory_limit 805306368\ntotal_cache 2\n";
        assert_eq!(parse_hierarchical_limit(stat), Limit::Bytes(805306368));
        assert_eq!(
            parse_hierarchical_limit("hierarchical_memory_limit 9223372036854771712"),
            Limit::Unlimited
        );
        assert_eq!(
            parse_hierarchical_limit("hierarchical_memory_limit"),
            Limit::Unknown
        );
        let meminfo = "MemTotal:       24684096 kB\nMemAvailable:   24377012 kB\n";
        assert_eq!(parse_mem_available(meminfo), Some(24377012 * 1024));
        assert_eq!(meminfo_field(meminfo, "MemTotal"), Some(24684096 * 1024));
        assert_eq!(parse_mem_available("MemAvailable: many kB"), None);
        assert_eq!(parse_mem_available("MemAvailable: 5 MB"), None);
        assert_eq!(
            parse_mem_available("MemAvailable: 99999999999999999999 kB"),
            None
        );
    }

    #[test]
    fn garbage_is_unknown() {
        for junk in ["", "\n\n", ":::", "x", "4:memory:relative", "- - - - - - -"] {
            assert_eq!(locate_memory_group(junk, THIS_MACHINE_MOUNTINFO), None);
            assert_eq!(locate_memory_group(THIS_MACHINE_CGROUP, junk), None);
        }
        // A line cut short before the fstype.
        assert_eq!(
            locate_memory_group("4:memory:/a\n", "35 31 0:32 / /m rw -\n"),
            None
        );
    }

    mod prop {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn never_panics(a in ".{0,200}", b in ".{0,300}") {
                let _ = locate_memory_group(&a, &b);
                let _ = parse_limit(&a);
                let _ = parse_bytes(&a);
                let _ = parse_hierarchical_limit(&b);
                let _ = parse_mem_available(&b);
                let _ = unescape(&a);
            }

            #[test]
            fn never_panics_on_near_miss_lines(
                id in "[0-9]{0,2}",
                ctl in "(memory|cpu|)(,[a-z]{0,6})?",
                path in "/?[a-z./\\\\]{0,12}",
                root in "/?[a-z./]{0,8}",
                mp in "/?[a-z\\\\0-9 ]{0,12}",
                tail in "( - cgroup2?( [a-z]*( [a-z,]*)?)?)?",
            ) {
                let cg = format!("{id}:{ctl}:{path}\n");
                let mi = format!("1 2 0:3 {root} {mp} rw{tail}\n");
                if let Some(g) = locate_memory_group(&cg, &mi) {
                    prop_assert!(!g.dirs().is_empty());
                }
            }
        }
    }
}
