//! The plan cache: one plan per call site, stage type, item type, input-size bucket,
//! thread context and pinned options. A warm serial call site costs one lookup and no
//! clock read.
//!
//! Behind it, what each call site measured: in this process for any input size
//! ([`site`]), and across runs of the same executable in the disk cache
//! ([`remembered`], [`remember`]), so a call whose per-item cost is known re-plans
//! without sampling again.

use std::any::TypeId;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use rustc_hash::FxHashMap;

use crate::context::Context;
use crate::disk::{self, Problem, Read, StableHasher};
use crate::options::Options;
use crate::plan::{Backend, Origin, Plan};
use crate::plumbing::CallSite;
use crate::probe::MachineProfile;
use crate::stats::SampleStats;

/// Every this many uses of a cached plan, the call site is sampled and planned again,
/// so a plan that has gone far off (the work or the machine changed) is re-made.
pub(crate) const RECHECK_EVERY: u32 = 64;

/// What identifies a decision that can be reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    file: usize,
    line: u32,
    column: u32,
    stage: TypeId,
    item: TypeId,
    bucket: u8,
    context: Context,
    backend: Option<Backend>,
    max_workers: Option<usize>,
    chunk_size: Option<usize>,
    min_speedup: u64,
}

impl Key {
    /// The key of a job. `typeid::of` works for non-`'static` types (closures that
    /// borrow): lifetimes do not change which plan fits.
    pub(crate) fn new<S, T>(
        site: &CallSite,
        len: Option<usize>,
        context: Context,
        options: &Options,
    ) -> Key {
        Key {
            file: site.location.file().as_ptr() as usize,
            line: site.location.line(),
            column: site.location.column(),
            stage: typeid::of::<S>(),
            item: typeid::of::<T>(),
            bucket: bucket(len),
            context,
            backend: options.backend,
            max_workers: options.max_workers,
            chunk_size: options.chunk_size,
            min_speedup: options.min_speedup.to_bits(),
        }
    }
}

impl Key {
    /// The same key for any input size: what identifies a call site's measurements.
    fn any_size(&self) -> Key {
        Key { bucket: 0, ..*self }
    }
}

/// Input sizes within a power of two share a plan; unknown lengths have their own.
fn bucket(len: Option<usize>) -> u8 {
    match len {
        Some(n) => (usize::BITS - n.leading_zeros()) as u8,
        None => u8::MAX,
    }
}

/// A cached plan and how often it was used.
#[derive(Debug)]
pub(crate) struct Entry {
    pub plan: Arc<Plan>,
    /// The machine as the model saw it (with any measured process costs), so that the
    /// plan can be re-made for another input length without measuring again; `None`
    /// for plans the model did not make.
    pub machine: Option<Arc<MachineProfile>>,
    uses: AtomicU32,
}

type Table = RwLock<FxHashMap<Key, Arc<Entry>>>;

fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(Default::default)
}

/// The latest sampled entry of each call site (keyed by [`Key::any_size`]), so a call
/// with an input of another size bucket re-plans from what the site measured instead of
/// sampling again.
fn sites() -> &'static Table {
    static SITES: OnceLock<Table> = OnceLock::new();
    SITES.get_or_init(Default::default)
}

/// What the plan cache has for a key.
pub(crate) enum Lookup {
    /// A plan to use.
    Hit(Arc<Entry>),
    /// A plan that is due for a re-check: sample again.
    Recheck,
    /// Nothing for this key.
    Miss,
}

/// The cached plan for `key`, or why there is none to use.
pub(crate) fn get(key: &Key) -> Lookup {
    let Some(entry) = table()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(key)
        .cloned()
    else {
        return Lookup::Miss;
    };
    let uses = entry.uses.fetch_add(1, Ordering::Relaxed) + 1;
    if uses % RECHECK_EVERY == 0 {
        Lookup::Recheck
    } else {
        Lookup::Hit(entry)
    }
}

/// The latest entry made from a sample at `key`'s call site, for any input size.
pub(crate) fn site(key: &Key) -> Option<Arc<Entry>> {
    sites()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(&key.any_size())
        .cloned()
}

/// Stores the plan made for `key`; later hits see it as coming from the cache.
pub(crate) fn put(key: Key, plan: &Plan, machine: Option<Arc<MachineProfile>>) {
    let mut plan = plan.clone();
    plan.origin = Origin::Cache;
    let sampled = plan.sample.items > 0;
    let mut table = table().write().unwrap_or_else(PoisonError::into_inner);
    // A plan that replaces another (re-made after a job that ran far off it) keeps the
    // count of uses, so the periodic fresh sample still comes every RECHECK_EVERY uses.
    let uses = table
        .get(&key)
        .map_or(0, |old| old.uses.load(Ordering::Relaxed));
    let entry = Arc::new(Entry {
        plan: Arc::new(plan),
        machine,
        uses: AtomicU32::new(uses),
    });
    if sampled {
        sites()
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.any_size(), Arc::clone(&entry));
    }
    table.insert(key, entry);
}

/// The disk cache's kind for what a call site measured.
const SITE_KIND: &str = "site";

/// What a call site measured, as the disk cache keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Remembered {
    pub stats: SampleStats,
    /// The input ended inside the sample: a call of no more items runs serially
    /// without consulting the model (nor measuring the machine).
    pub ended_in_sample: bool,
}

/// The disk cache's key for `key`: the executable (so a rebuilt program measures
/// again), the call site, the stage's and the items' type names, the size bucket, the
/// context and the options. `None` when the cache is off, or the executable cannot be
/// identified (deleted, say): nothing is kept then.
pub(crate) fn disk_key<S, T>(site: &CallSite, key: &Key) -> Option<u64> {
    if !disk::store().enabled() {
        return None;
    }
    let exe = disk::exe_identity()?;
    let mut h = StableHasher::new();
    h.write_u64(exe);
    h.write_str(site.location.file());
    h.write_u64(u64::from(site.location.line()));
    h.write_u64(u64::from(site.location.column()));
    h.write_str(std::any::type_name::<S>());
    h.write_str(std::any::type_name::<T>());
    h.write_u64(u64::from(key.bucket));
    h.write_u64(key.context as u64);
    h.write_str(key.backend.map_or("", Backend::name));
    h.write_opt_u64(key.max_workers.map(|n| n as u64));
    h.write_opt_u64(key.chunk_size.map(|n| n as u64));
    h.write_u64(key.min_speedup);
    Some(h.finish())
}

/// What an earlier run measured at this call site, if the disk cache has it; a
/// damaged or stale entry is a [`Problem`] to report (it is rewritten later).
pub(crate) fn remembered(disk_key: u64) -> Result<Option<Remembered>, Problem> {
    match disk::store().read::<Remembered>(SITE_KIND, disk_key) {
        Read::Hit(r) => Ok(Some(r)),
        Read::Miss => Ok(None),
        Read::Problem(p) => Err(p),
    }
}

/// Keeps what this call site measured for later runs. Returns what went wrong, for the
/// plan's reasons: a directory that cannot be written is named once per process, not
/// on every job.
pub(crate) fn remember(disk_key: u64, stats: &SampleStats, ended_in_sample: bool) -> Vec<Problem> {
    let stats = SampleStats {
        remaining_items: None,
        ..stats.clone()
    };
    let mut problems = disk::store().take_reports();
    let entry = Remembered {
        stats,
        ended_in_sample,
    };
    if let Err(p) = disk::store().write(SITE_KIND, disk_key, &entry)
        && !p.is_global()
    {
        problems.push(p);
    }
    problems.extend(disk::store().take_reports());
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_group_powers_of_two() {
        assert_eq!(bucket(Some(0)), 0);
        assert_eq!(bucket(Some(1)), 1);
        assert_eq!(bucket(Some(1000)), bucket(Some(1023)));
        assert_ne!(bucket(Some(1000)), bucket(Some(1024)));
        assert_eq!(bucket(None), u8::MAX);
    }
}
