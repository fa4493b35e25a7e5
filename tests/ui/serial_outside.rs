#[amorsize::serial]
fn total(v: &[u64]) -> u64 {
    v.iter().map(|x| x * 2).sum()
}

fn main() {
    assert_eq!(total(&[1, 2]), 6);
}
