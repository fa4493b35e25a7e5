//! Processes: an item whose input cannot be encoded (in the parent) or whose output
//! cannot be encoded (in the worker) fails with a serialization error naming it; the
//! other items are unaffected.
#![cfg(unix)]

mod processes_util;

use amorsize::prelude::*;
use amorsize::{Backend, ErrorKind};
use processes_util::within;
use serde::{Deserialize, Serialize, Serializer};

/// Refuses to be encoded when it holds 3.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
struct Picky(u64);

impl Serialize for Picky {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 == 3 {
            Err(serde::ser::Error::custom("3 is not welcome"))
        } else {
            s.serialize_u64(self.0)
        }
    }
}

#[amorsize::task]
fn echo_picky(p: Picky) -> Picky {
    p
}

/// Its output for 5 cannot be encoded (in the worker).
#[amorsize::task]
fn to_picky(x: u64) -> Picky {
    Picky(if x == 5 { 3 } else { 10 * x })
}

#[test]
fn serialization_failures_name_their_item() {
    within(60, || {
        let r: Vec<Result<Picky, amorsize::Error>> = (0..10u64)
            .map(Picky)
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(2)
            .map(echo_picky)
            .catch_unwind()
            .collect();
        for (i, x) in r.iter().enumerate() {
            if i == 3 {
                let e = x.as_ref().expect_err("input 3 cannot be encoded");
                assert_eq!((e.index(), e.kind()), (3, &ErrorKind::Serialize));
                assert!(e.to_string().contains("item 3"), "{e}");
                assert!(e.message().contains("3 is not welcome"), "{e}");
            } else {
                assert_eq!(x, &Ok(Picky(i as u64)));
            }
        }

        let r: Vec<Result<Picky, amorsize::Error>> = (0..10u64)
            .par_auto()
            .backend(Backend::Processes)
            .max_workers(2)
            .chunk_size(3)
            .map(to_picky)
            .catch_unwind()
            .collect();
        for (i, x) in r.iter().enumerate() {
            if i == 5 {
                let e = x.as_ref().expect_err("output of 5 cannot be encoded");
                assert_eq!((e.index(), e.kind()), (5, &ErrorKind::Serialize));
                assert!(e.message().contains("output"), "{e}");
            } else {
                assert_eq!(x, &Ok(Picky(10 * i as u64)));
            }
        }

        // Without catch_unwind, the failure propagates, naming the item.
        let r = std::panic::catch_unwind(|| {
            (0..10u64)
                .map(Picky)
                .par_auto()
                .backend(Backend::Processes)
                .max_workers(2)
                .chunk_size(2)
                .map(echo_picky)
                .collect::<Vec<Picky>>()
        });
        let payload = r.expect_err("propagates");
        let msg = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(
            msg.contains("item 3") && msg.contains("serialization"),
            "{msg}"
        );
    });
}
