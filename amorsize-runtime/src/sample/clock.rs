//! CPU clocks. Each read costs about 250 ns here, so sampling reads them only at batch
//! boundaries once enough work has run.

/// CPU time consumed by the calling thread, in seconds, if the platform reports it.
pub(crate) fn thread_cpu_secs() -> Option<f64> {
    #[cfg(unix)]
    {
        read(libc::CLOCK_THREAD_CPUTIME_ID)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// CPU time consumed by the whole process (all threads), in seconds.
pub(crate) fn process_cpu_secs() -> Option<f64> {
    #[cfg(unix)]
    {
        read(libc::CLOCK_PROCESS_CPUTIME_ID)
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(unix)]
fn read(clock: libc::clockid_t) -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec that lives across the call, and
    // `clock` is one of the CPU-time clock ids libc defines for this platform.
    let rc = unsafe { libc::clock_gettime(clock, &mut ts) };
    (rc == 0).then_some(ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn thread_clock_advances_with_work() {
        let a = thread_cpu_secs().expect("thread CPU clock on unix");
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(std::hint::black_box(i));
        }
        std::hint::black_box(x);
        let b = thread_cpu_secs().expect("thread CPU clock on unix");
        assert!(b > a, "{b} should exceed {a}");
        let p = process_cpu_secs().expect("process CPU clock on unix");
        assert!(p >= b - 1e-3, "process CPU {p} includes this thread's {b}");
    }
}
