//! The cluster backend on one machine: this example starts two cluster workers of
//! itself on a NATS JetStream server you started, lets `par_auto()` choose, prints the
//! plan, and with `--report` measures a chunk's overhead through the broker and a
//! lock-bound job on serial, rayon and the two workers, side by side.
//!
//! ```text
//! nats-server -js -a 127.0.0.1 -p 4222 -sd /tmp/amorsize-nats &
//! AMORSIZE_CLUSTER=nats://127.0.0.1:4222 cargo run --release --features cluster --example cluster
//! AMORSIZE_CLUSTER=nats://127.0.0.1:4222 cargo run --release --features cluster --example cluster -- --report
//! ```
//!
//! On a real cluster the workers are the same executable started on other machines
//! with `AMORSIZE_CLUSTER_WORKER=nats://HOST:PORT` (see `examples/cluster/` and the
//! README's "Beyond one machine").

use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use amorsize::prelude::*;

/// Work that holds one process-wide lock while it computes: threads queue on the
/// lock, processes on other machines (or here) each have their own.
#[amorsize::task]
fn locked_work(x: u64) -> u64 {
    static LOCK: Mutex<u64> = Mutex::new(0);
    let mut guard = LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let mut h = x;
    for i in 0..400_000u64 {
        h = h.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(i);
    }
    *guard = guard.wrapping_add(h);
    h
}

/// Almost nothing: what a chunk costs through the broker.
#[amorsize::task]
fn echo(x: u64) -> u64 {
    x
}

fn start_workers(url: &str, n: usize) -> Vec<Child> {
    let exe = std::env::current_exe().expect("the example's own path");
    (0..n)
        .map(|_| {
            Command::new(&exe)
                .env("AMORSIZE_CLUSTER_WORKER", url)
                .env("AMORSIZE_CLUSTER_IDLE", "60")
                .env_remove("AMORSIZE_CLUSTER")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .expect("start a cluster worker")
        })
        .collect()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn time(f: impl Fn() -> u64) -> f64 {
    median(
        (0..3)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(f());
                t.elapsed().as_secs_f64()
            })
            .collect(),
    )
}

fn main() {
    amorsize::init();
    let Ok(url) = std::env::var("AMORSIZE_CLUSTER") else {
        eprintln!(
            "set AMORSIZE_CLUSTER to a NATS server with JetStream, e.g.\n  nats-server -js -a \
             127.0.0.1 -p 4222 -sd /tmp/amorsize-nats &\n  AMORSIZE_CLUSTER=nats://127.0.0.1:4222 \
             cargo run --release --features cluster --example cluster"
        );
        std::process::exit(2);
    };
    let mut workers = start_workers(&url, 2);
    // Workers say hello on the broker when they are ready; give them a moment.
    std::thread::sleep(Duration::from_millis(800));

    let n = 2000u64;
    let mut plan = None;
    let sum: u64 = (0..n)
        .par_auto()
        .on_plan(|p| plan = Some(p.clone()))
        .map(locked_work)
        .sum();
    let serial: u64 = (0..n).map(locked_work).sum();
    assert_eq!(sum, serial, "the cluster's results equal serial code's");
    if let Some(p) = plan {
        println!("{p:#}");
    }

    if std::env::args().any(|a| a == "--report") {
        report(n);
    }
    for w in &mut workers {
        let _ = w.kill();
        let _ = w.wait();
    }
}

/// Overhead per chunk through the broker, and the lock-bound job three ways.
fn report(n: u64) {
    let chunks = 200u64;
    let per_chunk = time(|| {
        (0..chunks)
            .par_auto()
            .backend(Backend::Cluster)
            .max_workers(1)
            .chunk_size(1)
            .map(echo)
            .sum()
    }) / chunks as f64;
    println!(
        "overhead per chunk through the broker, one worker, one item a chunk: {:.0} us",
        per_chunk * 1e6
    );

    let serial = time(|| (0..n).map(locked_work).sum());
    let rayon = time(|| {
        use rayon::prelude::*;
        (0..n).into_par_iter().map(locked_work).sum()
    });
    let cluster = time(|| {
        (0..n)
            .par_auto()
            .backend(Backend::Cluster)
            .max_workers(2)
            .chunk_size(20)
            .map(locked_work)
            .sum()
    });
    let auto = time(|| (0..n).par_auto().map(locked_work).sum());
    println!("lock-bound, {n} items (median of 3):");
    println!("  serial            {:8.1} ms", serial * 1e3);
    println!(
        "  rayon             {:8.1} ms  ({:.2}x serial)",
        rayon * 1e3,
        serial / rayon
    );
    println!(
        "  cluster, 2 local  {:8.1} ms  ({:.2}x serial)",
        cluster * 1e3,
        serial / cluster
    );
    println!(
        "  par_auto          {:8.1} ms  ({:.2}x serial)",
        auto * 1e3,
        serial / auto
    );
}
