//! File descriptors do not leak: 1000 calls over every backend (automatic and pinned,
//! succeeding and failing, nested, through `optimize`) leave the process with as many
//! open descriptors as it had after the first round.
//!
//! The only test of its file, so no other test opens or closes descriptors meanwhile.
#![cfg(target_os = "linux")]

mod support;

use amorsize::Backend;
use amorsize::prelude::*;
use support::{chaos_message, fd_count, quiet_chaos_panics, watchdog};

const CALLS: usize = 1000;

/// Call number `i`: a different mix of backend, consumer and failure each time.
fn call(i: usize) {
    let n = 200 + (i % 11) * 50;
    let base = (0..n as u64).par_auto();
    let it = match i % 5 {
        0 => base,
        1 => base.backend(Backend::Serial),
        2 => base.backend(Backend::Rayon),
        3 => base.backend(Backend::Threads),
        _ => base.backend(Backend::Threads).max_workers(3).chunk_size(7),
    };
    match (i / 5) % 4 {
        0 => {
            let v: Vec<u64> = it.map(|x| x + 1).collect();
            assert_eq!(v.len(), n);
        }
        1 => {
            let errors = it
                .map(|x| {
                    if x % 61 == 5 {
                        panic!("{}", chaos_message(x as usize));
                    }
                    x
                })
                .catch_unwind()
                .filter(|r| r.is_err())
                .count();
            assert_eq!(errors, (0..n).filter(|x| x % 61 == 5).count());
        }
        2 => {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                it.map(|x| {
                    if x == 150 {
                        panic!("{}", chaos_message(x as usize));
                    }
                    x
                })
                .sum::<u64>()
            }));
            assert!(r.is_err());
        }
        _ => {
            let s: u64 = it
                .map(|x| (0..5u64).par_auto().map(|y| x * y).sum::<u64>())
                .sum();
            assert_eq!(s, (0..n as u64).map(|x| 10 * x).sum::<u64>());
        }
    }
    if i.is_multiple_of(50) {
        let job = amorsize::optimize(0..n as u64, |x| x * 2);
        let v: Vec<u64> = job.collect();
        assert_eq!(v.len(), n);
    }
}

#[test]
fn a_thousand_calls_leak_no_file_descriptor() {
    quiet_chaos_panics();
    watchdog(300, || {
        // First round: the probe, the pools and anything else opened once.
        for i in 0..20 {
            call(i);
        }
        let before = fd_count();
        for i in 0..CALLS {
            call(i);
        }
        let after = fd_count();
        eprintln!("open descriptors: {before} before, {after} after {CALLS} calls");
        assert!(
            after <= before,
            "{} descriptors leaked over {CALLS} calls",
            after - before
        );
    });
}
