// #[auto_parallel]
// fn mixed(v: &mut Vec<u64>) -> usize {
//     #[amorsize::serial]
//     let a: u64 = v.iter().map(|x| x * 2).sum();
//     let b = v.iter().map(|x| x + 1).take(3).count();
//     v.iter_mut().for_each(|x| *x += 1);
//     for x in v.iter() {
//         drop(x);
//     }
//     let c: u64 = v.iter().copied().sum();
//     fn helper(v: &[u64]) -> usize {
//         v.iter().filter(|x| **x > 1).count()
//     }
//     let d = v.iter().filter(|x| **x > a).count();
//     b + c as usize + helper(v) + d
// }
//
// expands to:

fn mixed(v: &mut Vec<u64>) -> usize {
    let a: u64 = v.iter().map(|x| x * 2).sum();
    let b = v.iter().map(|x| x + 1).take(3).count();
    v.iter_mut().for_each(|x| *x += 1);
    for x in v.iter() {
        drop(x);
    }
    let c: u64 = v.iter().copied().sum();
    fn helper(v: &[u64]) -> usize {
        v.iter().filter(|x| **x > 1).count()
    }
    let d = (if ::amorsize::__private::SERIAL_BUILD {
        v.iter().filter(|x| **x > a).count()
    } else {
        match ::amorsize::__private::Wrap::new(v.iter()) {
            __amorsize_source => {
                #[allow(unused_imports)]
                use ::amorsize::__private::{ViaAuto as _, ViaStd as _};
                static __AMORSIZE_CFG: ::amorsize::__private::Config = ::amorsize::__private::Config {
                    function: ::core::concat!(::core::module_path!(), "::", "mixed"),
                    backend: ::core::option::Option::None,
                    max_workers: ::core::option::Option::None,
                    chunk_size: ::core::option::Option::None,
                    min_speedup: ::core::option::Option::None,
                    log: false,
                    progress: false,
                };
                (&__amorsize_source)
                    .__amorsize_par(&__AMORSIZE_CFG)
                    .filter(|x| **x > a)
                    .count()
            }
        }
    });
    b + c as usize + helper(v) + d
}
