use amorsize::auto_parallel;

#[auto_parallel(max_workers = 4, chunk_size = 8, max_workers = 8)]
fn total(v: &[u64]) -> u64 {
    v.iter().map(|x| x * 2).sum()
}

fn main() {
    assert_eq!(total(&[1, 2]), 6);
}
