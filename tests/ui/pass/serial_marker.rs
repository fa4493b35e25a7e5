use std::cell::Cell;

use amorsize::auto_parallel;

#[auto_parallel]
fn total(v: &[u64]) -> u64 {
    // Statements that could not be rewritten (FnMut, non-Sync capture) stay as written.
    let mut calls = 0;
    #[amorsize::serial]
    let a: u64 = v
        .iter()
        .map(|x| {
            calls += 1;
            x * 2
        })
        .sum();
    let seen = Cell::new(0);
    #[amorsize::serial]
    v.iter().for_each(|x| seen.set(seen.get() + x));
    let b: u64 = v.iter().map(|x| x + 1).sum();
    #[amorsize::serial]
    v.iter().map(|x| x + calls + seen.get()).sum::<u64>() + a + b
}

fn main() {
    // calls = 2, seen = 3: (1 + 5) + (2 + 5), then a = 2 + 4, b = 2 + 3.
    assert_eq!(total(&[1, 2]), (1 + 5) + (2 + 5) + (2 + 4) + (2 + 3));
}
