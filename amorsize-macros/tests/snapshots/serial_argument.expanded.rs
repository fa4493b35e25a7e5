// #[auto_parallel(serial)]
// fn total(v: &[u64]) -> u64 {
//     #[amorsize::serial]
//     let s: u64 = v.iter().map(|x| x + 1).sum();
//     s + v.iter().map(|x| x * 2).sum::<u64>()
// }
//
// expands to:

fn total(v: &[u64]) -> u64 {
    let s: u64 = v.iter().map(|x| x + 1).sum();
    s + v.iter().map(|x| x * 2).sum::<u64>()
}
