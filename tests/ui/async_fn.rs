use amorsize::auto_parallel;

#[auto_parallel]
async fn total(v: Vec<u64>) -> u64 {
    v.iter().map(|x| x * 2).sum()
}

fn main() {
    drop(total(vec![1, 2, 3]));
}
