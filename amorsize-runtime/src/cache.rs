//! The plan cache: one plan per call site, stage type, item type, input-size bucket,
//! thread context and pinned options. A warm serial call site costs one lookup and no
//! clock read.

use std::any::TypeId;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use rustc_hash::FxHashMap;

use crate::context::Context;
use crate::options::Options;
use crate::plan::{Backend, Plan};
use crate::plumbing::CallSite;
use crate::probe::MachineProfile;

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

fn table() -> &'static RwLock<FxHashMap<Key, Arc<Entry>>> {
    static TABLE: OnceLock<RwLock<FxHashMap<Key, Arc<Entry>>>> = OnceLock::new();
    TABLE.get_or_init(Default::default)
}

/// The cached plan for `key`, unless there is none or it is due for a re-check.
pub(crate) fn get(key: &Key) -> Option<Arc<Entry>> {
    let entry = table()
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(key)
        .cloned()?;
    let uses = entry.uses.fetch_add(1, Ordering::Relaxed) + 1;
    (uses % RECHECK_EVERY != 0).then_some(entry)
}

/// Stores the plan made for `key`.
pub(crate) fn put(key: Key, plan: Arc<Plan>, machine: Option<Arc<MachineProfile>>) {
    let entry = Arc::new(Entry {
        plan,
        machine,
        uses: AtomicU32::new(0),
    });
    table()
        .write()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(key, entry);
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
