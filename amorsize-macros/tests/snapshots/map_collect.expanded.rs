// #[auto_parallel]
// pub fn lengths(words: &[String]) -> Vec<usize> {
//     words.iter().map(|w| w.len()).collect()
// }
//
// expands to:

pub fn lengths(words: &[String]) -> Vec<usize> {
    (if ::amorsize::__private::SERIAL_BUILD {
        words.iter().map(|w| w.len()).collect()
    } else {
        match ::amorsize::__private::Wrap::new(words.iter()) {
            __amorsize_source => {
                #[allow(unused_imports)]
                use ::amorsize::__private::{ViaAuto as _, ViaStd as _};
                static __AMORSIZE_CFG: ::amorsize::__private::Config = ::amorsize::__private::Config {
                    function: ::core::concat!(::core::module_path!(), "::", "lengths"),
                    backend: ::core::option::Option::None,
                    max_workers: ::core::option::Option::None,
                    chunk_size: ::core::option::Option::None,
                    min_speedup: ::core::option::Option::None,
                    log: false,
                    progress: false,
                };
                (&__amorsize_source)
                    .__amorsize_par(&__AMORSIZE_CFG)
                    .map(|w| w.len())
                    .collect()
            }
        }
    })
}
