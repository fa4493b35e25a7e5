//! Processes: items of megabytes with cheap work. The auto choice does not pay the
//! serialization tax for them; forced onto processes they complete (no pipe deadlock,
//! whatever the sizes in both directions).
#![cfg(unix)]

mod processes_util;

use amorsize::Backend;
use amorsize::prelude::*;
use processes_util::within;

/// 2 MiB of `u64` per item.
const WORDS: usize = 256 * 1024;

/// Cheap work on a big item, with a big output.
#[amorsize::task]
fn bump(mut v: Vec<u64>) -> Vec<u64> {
    for x in &mut v {
        *x += 1;
    }
    v
}

fn items(n: u64) -> impl Iterator<Item = Vec<u64>> {
    (0..n).map(|i| vec![i; WORDS])
}

#[test]
fn big_items_forced_onto_processes_complete() {
    within(120, || {
        let out: Vec<Vec<u64>> = items(12)
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(3)
            .map(bump)
            .collect();
        assert_eq!(out.len(), 12);
        for (i, v) in out.iter().enumerate() {
            assert_eq!(v.len(), WORDS);
            assert!(v.iter().all(|&x| x == i as u64 + 1), "item {i}");
        }
    });
}

#[test]
fn the_auto_choice_does_not_send_big_cheap_items_to_processes() {
    within(120, || {
        let mut plan = None;
        let out: Vec<Vec<u64>> = items(24)
            .par_auto()
            .on_plan(|p| plan = Some(p.clone()))
            .map(bump)
            .collect();
        assert_eq!(out.len(), 24);
        assert!(out[23].iter().all(|&x| x == 24));
        let plan = plan.expect("planned");
        assert_ne!(plan.backend, Backend::Processes, "{plan:#}");
        if plan.sample.items < 24 {
            // Sampled without ending the input: the wire costs were measured.
            assert!(plan.sample.in_bytes >= (WORDS * 8) as f64, "{plan:#}");
            assert!(plan.sample.out_bytes >= (WORDS * 8) as f64, "{plan:#}");
            assert!(plan.sample.encode_in_secs > 0.0 && plan.sample.decode_out_secs > 0.0);
        }
    });
}
