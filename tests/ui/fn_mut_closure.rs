use amorsize::auto_parallel;

#[auto_parallel]
fn total(v: &[u64]) -> u64 {
    let mut calls = 0;
    let sum = v
        .iter()
        .map(|x| {
            calls += 1;
            x * 2
        })
        .sum::<u64>();
    sum + calls
}

fn main() {
    assert_eq!(total(&[1, 2]), 8);
}
