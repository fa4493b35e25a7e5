// #[auto_parallel(backend = "threads", max_workers = 4, chunk_size = 16, min_speedup = 1.5, log, progress)]
// fn index(lines: &str, seen: &AtomicUsize) -> u64 {
//     lines
//         .lines()
//         .enumerate()
//         .for_each(|(i, l)| {
//             seen.fetch_add(i + l.len(), Ordering::Relaxed);
//         });
//     let n = (0..1000u64).filter(|x| x % 3 == 0).map(expensive).sum::<u64>();
//     n
// }
//
// expands to:

fn index(lines: &str, seen: &AtomicUsize) -> u64 {
    (if ::amorsize::__private::SERIAL_BUILD {
        lines
            .lines()
            .enumerate()
            .for_each(|(i, l)| {
                seen.fetch_add(i + l.len(), Ordering::Relaxed);
            })
    } else {
        match ::amorsize::__private::Wrap::new(lines.lines().enumerate()) {
            __amorsize_source => {
                #[allow(unused_imports)]
                use ::amorsize::__private::{ViaAuto as _, ViaStd as _};
                static __AMORSIZE_CFG: ::amorsize::__private::Config = ::amorsize::__private::Config {
                    function: ::core::concat!(::core::module_path!(), "::", "index"),
                    backend: ::core::option::Option::Some(
                        ::amorsize::__private::Backend::Threads,
                    ),
                    max_workers: ::core::option::Option::Some(4),
                    chunk_size: ::core::option::Option::Some(16),
                    min_speedup: ::core::option::Option::Some(1.5),
                    log: true,
                    progress: true,
                };
                (&__amorsize_source)
                    .__amorsize_par(&__AMORSIZE_CFG)
                    .for_each(|(i, l)| {
                        seen.fetch_add(i + l.len(), Ordering::Relaxed);
                    })
            }
        }
    });
    let n = (if ::amorsize::__private::SERIAL_BUILD {
        (0..1000u64).filter(|x| x % 3 == 0).map(expensive).sum::<u64>()
    } else {
        match ::amorsize::__private::Wrap::new(0..1000u64) {
            __amorsize_source => {
                #[allow(unused_imports)]
                use ::amorsize::__private::{ViaAuto as _, ViaStd as _};
                static __AMORSIZE_CFG: ::amorsize::__private::Config = ::amorsize::__private::Config {
                    function: ::core::concat!(::core::module_path!(), "::", "index"),
                    backend: ::core::option::Option::Some(
                        ::amorsize::__private::Backend::Threads,
                    ),
                    max_workers: ::core::option::Option::Some(4),
                    chunk_size: ::core::option::Option::Some(16),
                    min_speedup: ::core::option::Option::Some(1.5),
                    log: true,
                    progress: true,
                };
                (&__amorsize_source)
                    .__amorsize_par(&__AMORSIZE_CFG)
                    .filter(|x| x % 3 == 0)
                    .map(expensive)
                    .sum::<u64>()
            }
        }
    });
    n
}
