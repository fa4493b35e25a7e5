use amorsize::prelude::*;

fn double(x: &u64) -> u64 {
    x * 2
}

#[auto_parallel]
fn plain(v: &[u64]) -> u64 {
    v.iter().map(double).sum()
}

#[auto_parallel(serial)]
fn serial(v: &[u64]) -> u64 {
    v.iter().map(double).sum()
}

#[auto_parallel(backend = "rayon")]
fn rayon(v: &[u64]) -> u64 {
    v.iter().map(double).sum()
}

#[auto_parallel(backend = "threads", max_workers = 2, chunk_size = 16)]
fn threads(v: &[u64]) -> u64 {
    v.iter().map(double).sum()
}

#[auto_parallel(backend = "processes")]
fn processes(v: &[u64]) -> u64 {
    v.iter().map(double).sum()
}

#[auto_parallel(backend = "serial")]
fn backend_serial(v: &[u64]) -> u64 {
    v.iter().map(double).sum()
}

#[auto_parallel(max_workers = 3, chunk_size = 1, min_speedup = 2)]
fn numbers(v: &[u64]) -> u64 {
    v.iter().map(double).sum()
}

#[auto_parallel(min_speedup = 1.5, log, progress,)]
fn flags(v: &[u64]) -> u64 {
    v.iter().map(double).sum()
}

fn main() {
    let v: Vec<u64> = (0..100).collect();
    let want: u64 = v.iter().map(double).sum();
    for f in [plain, serial, rayon, threads, processes, backend_serial, numbers, flags] {
        assert_eq!(f(&v), want);
    }
}
