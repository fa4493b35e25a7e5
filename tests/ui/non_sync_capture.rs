use std::cell::Cell;

use amorsize::auto_parallel;

#[auto_parallel]
fn total(v: &[u64]) -> u64 {
    let calls = Cell::new(0);
    let sum = v
        .iter()
        .map(|x| {
            calls.set(calls.get() + 1);
            x * 2
        })
        .sum::<u64>();
    sum + calls.get()
}

fn main() {
    assert_eq!(total(&[1, 2]), 8);
}
