// #[auto_parallel(backend = "gpu", workers = 4)]
// fn total(v: &[u64]) -> u64 {
//     #[amorsize::serial]
//     let s: u64 = v.iter().map(|x| x + 1).sum();
//     s
// }
//
// expands to:

::core::compile_error! {
    "unknown backend \"gpu\": expected \"rayon\", \"threads\", \"processes\", \"cluster\" or \"serial\""
}
::core::compile_error! {
    "unknown argument `workers`; the arguments of `#[auto_parallel]` are `serial`, `backend = \"rayon\" | \"threads\" | \"processes\" | \"cluster\" | \"serial\"`, `max_workers = N`, `chunk_size = N`, `min_speedup = F`, `log`, `progress`"
}
fn total(v: &[u64]) -> u64 {
    let s: u64 = v.iter().map(|x| x + 1).sum();
    s
}
