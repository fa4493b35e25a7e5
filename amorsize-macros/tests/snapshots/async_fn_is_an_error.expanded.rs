// #[auto_parallel]
// async fn total(v: &[u64]) -> u64 {
//     v.iter().map(|x| x + 1).sum()
// }
//
// expands to:

::core::compile_error! {
    "`#[auto_parallel]` does not support `async fn` yet: move the pipelines into a plain function with `#[auto_parallel]` and call it from here (for example through `tokio::task::spawn_blocking`)"
}
async fn total(v: &[u64]) -> u64 {
    v.iter().map(|x| x + 1).sum()
}
