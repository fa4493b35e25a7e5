//! The plan cache: one plan per call site, stage type, item type, input-size bucket,
//! thread context and pinned options. A warm serial call site costs one lookup and no
//! clock read.
//!
//! Behind it, what each call site measured: in this process for any input size
//! ([`site`]), and across runs of the same executable in the disk cache
//! ([`remembered`], [`remember`]), so a call whose per-item cost is known re-plans
//! without sampling again.

use std::any::TypeId;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use rustc_hash::FxHashMap;

use crate::context::Context;
use crate::disk::{self, Problem, Read, StableHasher};
use crate::options::Options;
use crate::plan::{Backend, Origin, Plan};
use crate::plumbing::CallSite;
use crate::probe::MachineProfile;
use crate::stats::SampleStats;

/// At this many uses of a cached plan, the call site is sampled and planned again, so
/// a plan that has gone far off (the work or the machine changed) is re-made; then at
/// every doubling of the count up to [`RECHECK_MAX`], then every `RECHECK_MAX` uses. A
/// call site in a hot loop of tiny jobs pays a fresh sample (and its timers) less and
/// less often; one that runs rarely is still re-checked within its first uses.
pub(crate) const RECHECK_FIRST: u32 = 64;

/// The longest interval, in uses, between two fresh samples of a cached plan.
pub(crate) const RECHECK_MAX: u32 = 4096;

/// Whether the `uses`-th use of a cached plan samples afresh.
fn recheck_due(uses: u32) -> bool {
    match uses {
        0..RECHECK_FIRST => false,
        RECHECK_FIRST..=RECHECK_MAX => uses.is_power_of_two(),
        _ => uses.is_multiple_of(RECHECK_MAX),
    }
}

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
    /// The key's disk entry holds what the plan was made from (so a re-check that
    /// finds the same need not write it again).
    pub on_disk: bool,
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
    /// A plan that is due for a re-check: sample again (the entry is what the fresh
    /// sample is compared with).
    Recheck(Arc<Entry>),
    /// Nothing for this key.
    Miss,
}

/// The cached plan for `key`, or why there is none to use.
pub(crate) fn get(key: &Key) -> Lookup {
    let Some(entry) = lookup(table(), key) else {
        return Lookup::Miss;
    };
    let uses = entry.uses.fetch_add(1, Ordering::Relaxed).wrapping_add(1);
    if recheck_due(uses) {
        Lookup::Recheck(entry)
    } else {
        Lookup::Hit(entry)
    }
}

/// Bumped by every [`put`]: a thread's [`MEMO`] is trusted only while it matches.
static GENERATION: AtomicU64 = AtomicU64::new(0);

/// A small serial plan a thread used (see [`small_serial`]): all a hot loop of tiny
/// jobs reads is this and [`GENERATION`], a cache line or two.
struct Quick {
    key: Key,
    generation: u64,
    /// The sample the call site's input ended in: calls of at most this many items.
    items: usize,
    /// The entry's use count when the memo was made, and the uses since.
    base: u32,
    since: u32,
    entry: Arc<Entry>,
}

impl Drop for Quick {
    /// Adds the uses counted here to the entry's count.
    fn drop(&mut self) {
        self.entry.uses.fetch_add(self.since, Ordering::Relaxed);
    }
}

/// How many small serial plans a thread remembers: a loop that alternates a few tiny
/// jobs (or a tiny job and a pinned one) keeps finding each of them.
const MEMO_SLOTS: usize = 4;

/// A thread's last few small serial plans, replaced in turn.
struct Memo {
    slots: [Option<Quick>; MEMO_SLOTS],
    next: usize,
}

thread_local! {
    /// The small serial plans this thread used last: a call site in a hot loop of tiny
    /// jobs finds its plan again without the table's lock, a reference count or the
    /// entry.
    static MEMO: RefCell<Memo> = const {
        RefCell::new(Memo {
            slots: [const { None }; MEMO_SLOTS],
            next: 0,
        })
    };
}

impl Memo {
    /// The slot remembering `key` (current or not), if any.
    fn slot(&mut self, key: &Key) -> Option<&mut Option<Quick>> {
        self.slots
            .iter_mut()
            .find(|slot| slot.as_ref().is_some_and(|q| q.key == *key))
    }

    /// Forgets what it remembered for `key` (its uses are added to the entry's count).
    fn forget(&mut self, key: &Key) {
        if let Some(slot) = self.slot(key) {
            *slot = None;
        }
    }

    /// Remembers a small serial plan in a free slot, or else in place of the oldest.
    fn remember(&mut self, quick: Quick) -> &mut Quick {
        let at = match self.slots.iter().position(Option::is_none) {
            Some(at) => at,
            None => {
                let at = self.next;
                self.next = (at + 1) % MEMO_SLOTS;
                at
            }
        };
        self.slots[at].insert(quick)
    }
}

/// Whether the cache holds, for `key`, a serial plan whose call site's input ended
/// inside a sample of at least `len` items: such a call runs plain serial code. Counted
/// as a use like [`get`]; `false` (and not counted) when there is none or when this use
/// is due for a re-check, so that [`get`] sees the re-check. The hook, if any, is
/// called with the plan.
pub(crate) fn small_serial<H: FnOnce(&Plan)>(key: &Key, len: usize, hook: &mut Option<H>) -> bool {
    let generation = GENERATION.load(Ordering::Acquire);
    MEMO.with(|cell| {
        // Borrowed already: this job was started by the hook of an outer one (below),
        // and takes the ordinary path.
        let Ok(mut memo) = cell.try_borrow_mut() else {
            return false;
        };
        let current = memo
            .slot(key)
            .and_then(|slot| slot.as_mut())
            .filter(|q| q.generation == generation);
        let q = match current {
            Some(q) => q,
            None => {
                // A memo of an older generation: its uses are counted before the entry's
                // count is read again.
                memo.forget(key);
                let Some(entry) = lookup(table(), key) else {
                    return false;
                };
                // Only small serial plans: any other plan is looked up by `get`.
                let Some(items) = entry.plan.ended_in_sample() else {
                    return false;
                };
                memo.remember(Quick {
                    key: *key,
                    generation,
                    items,
                    base: entry.uses.load(Ordering::Relaxed),
                    since: 0,
                    entry,
                })
            }
        };
        if len > q.items {
            return false;
        }
        let uses = q.base.wrapping_add(q.since).wrapping_add(1);
        if recheck_due(uses) {
            // Handed to `get`, which counts this use and so sees the re-check: the
            // entry's count is set to just below it (other threads' memos may have
            // moved it past; the count only schedules re-checks).
            q.entry.uses.store(uses.wrapping_sub(1), Ordering::Relaxed);
            q.since = 0;
            memo.forget(key);
            return false;
        }
        q.since += 1;
        drop(memo);
        if let Some(hook) = hook.take() {
            // Under a shared borrow: a job the hook starts takes the ordinary path
            // (above), and nothing is moved or reference-counted for the call.
            let memo = cell.borrow();
            if let Some(q) = memo.slots.iter().flatten().find(|q| q.key == *key) {
                hook(&q.entry.plan);
            }
        }
        true
    })
}

/// The latest entry made from a sample at `key`'s call site, for any input size.
pub(crate) fn site(key: &Key) -> Option<Arc<Entry>> {
    lookup(sites(), &key.any_size())
}

/// The entry `table` holds for `key`, if any.
fn lookup(table: &Table, key: &Key) -> Option<Arc<Entry>> {
    table
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(key)
        .cloned()
}

/// Stores the plan made for `key`; later hits see it as coming from the cache.
/// `on_disk`: the key's disk entry holds what the plan was made from.
pub(crate) fn put(key: Key, plan: &Plan, machine: Option<Arc<MachineProfile>>, on_disk: bool) {
    let mut plan = plan.clone();
    plan.origin = Origin::Cache;
    let sampled = plan.sample.items > 0;
    let mut table = table().write().unwrap_or_else(PoisonError::into_inner);
    // A plan that replaces another (re-made after a job that ran far off it) keeps the
    // count of uses, so the periodic fresh samples keep their schedule.
    let uses = table
        .get(&key)
        .map_or(0, |old| old.uses.load(Ordering::Relaxed));
    let entry = Arc::new(Entry {
        plan: Arc::new(plan),
        machine,
        on_disk,
        uses: AtomicU32::new(uses),
    });
    if sampled {
        sites()
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.any_size(), Arc::clone(&entry));
    }
    table.insert(key, entry);
    GENERATION.fetch_add(1, Ordering::Release);
}

/// Whether a re-check's fresh plan differs enough from the cached one it replaces to be
/// written to the disk cache again: another choice (backend or width), or a per-item
/// time more than 2x off (the same threshold at which a running job re-plans) on a
/// sample long enough to matter. A call site re-checked in a hot loop then does not
/// rewrite its file every time.
pub(crate) fn worth_rewriting(old: &Plan, new: &Plan) -> bool {
    let (a, b) = (old.sample.mean_item_secs, new.sample.mean_item_secs);
    // A sample whose items together took less than this cannot change a decision
    // whatever its per-item time (starting one thread costs more): 100 items of 1-3
    // ns, timed 2x apart from one re-check to the next, are not a change.
    const MATTERS_SECS: f64 = 20e-6;
    let items = old.sample.items.max(new.sample.items) as f64;
    let time_changed = a.max(b) * items >= MATTERS_SECS && !(a <= 2.0 * b && b <= 2.0 * a);
    old.backend != new.backend
        || old.workers != new.workers
        || old.main_reason().map(std::mem::discriminant)
            != new.main_reason().map(std::mem::discriminant)
        || time_changed
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

/// What an earlier run measured at this call site, if the disk cache has it, for a call
/// of `len` items; a damaged or stale entry is a [`Problem`] to report (it is
/// rewritten later). An input that ended inside the sample, read for a call no longer
/// than it, runs serially on any machine: it is not checked against this machine's
/// fingerprint.
pub(crate) fn remembered(disk_key: u64, len: Option<usize>) -> Result<Option<Remembered>, Problem> {
    let machine_free =
        |r: &Remembered| r.ended_in_sample && len.is_some_and(|n| n <= r.stats.items);
    match disk::store().read_unless_machine_free(SITE_KIND, disk_key, machine_free) {
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
    fn rechecks_thin_out_to_a_steady_interval() {
        let due: Vec<u32> = (1..=3 * RECHECK_MAX).filter(|&u| recheck_due(u)).collect();
        assert_eq!(due, [64, 128, 256, 512, 1024, 2048, 4096, 8192, 12288]);
        assert!(recheck_due(u32::MAX - u32::MAX % RECHECK_MAX));
    }

    #[test]
    fn buckets_group_powers_of_two() {
        assert_eq!(bucket(Some(0)), 0);
        assert_eq!(bucket(Some(1)), 1);
        assert_eq!(bucket(Some(1000)), bucket(Some(1023)));
        assert_ne!(bucket(Some(1000)), bucket(Some(1024)));
        assert_eq!(bucket(None), u8::MAX);
    }
}
