//! CPU clocks. Each read costs a system call (a few hundred nanoseconds where the vDSO
//! does not serve it), so sampling reads them only at batch boundaries once enough
//! work has run.

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

/// Time the calling thread has spent runnable but waiting for a CPU, in seconds (Linux
/// `schedstat`): on a busy machine a CPU-bound item's wall time includes it, and
/// without subtracting it that item would look like it waits for I/O.
pub(crate) fn thread_run_delay_secs() -> Option<f64> {
    #[cfg(target_os = "linux")]
    {
        let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
        parse_run_delay(&text)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// The second field of a `schedstat` line (nanoseconds waiting on a run queue).
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn parse_run_delay(text: &str) -> Option<f64> {
    let ns: u64 = text.split_whitespace().nth(1)?.parse().ok()?;
    Some(ns as f64 * 1e-9)
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
    fn run_delay_is_the_second_schedstat_field() {
        assert_eq!(parse_run_delay("398702 615066 5\n"), Some(615066e-9));
        assert_eq!(parse_run_delay("garbage"), None);
        assert_eq!(parse_run_delay(""), None);
        #[cfg(target_os = "linux")]
        assert!(thread_run_delay_secs().is_some_and(|d| d >= 0.0));
    }

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
