//! Another build for the cluster tests: a test binary with tasks of its own, so its
//! registry (and build hash) differs from `tests/cluster.rs`'s. `cluster.rs` starts
//! it as a cluster worker to check that a worker of another build is refused with a
//! message naming both builds. On its own it checks nothing more than that it runs.
#![cfg(all(unix, feature = "cluster"))]

/// A task only this build has.
#[amorsize::task]
fn only_in_the_foreign_build(x: u32) -> u32 {
    x.wrapping_add(1)
}

#[test]
fn the_foreign_build_has_its_own_task() {
    assert_eq!(only_in_the_foreign_build(1), 2);
}
