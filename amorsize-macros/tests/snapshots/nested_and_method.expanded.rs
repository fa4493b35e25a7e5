// #[auto_parallel]
// fn row_sums(&self) -> Vec<u64> {
//     self.rows.iter().map(|r| r.iter().map(|x| x * self.scale).sum::<u64>()).collect()
// }
//
// expands to:

fn row_sums(&self) -> Vec<u64> {
    (if ::amorsize::__private::SERIAL_BUILD {
        self.rows.iter().map(|r| r.iter().map(|x| x * self.scale).sum::<u64>()).collect()
    } else {
        match ::amorsize::__private::Wrap::new(self.rows.iter()) {
            __amorsize_source => {
                #[allow(unused_imports)]
                use ::amorsize::__private::{ViaAuto as _, ViaStd as _};
                static __AMORSIZE_CFG: ::amorsize::__private::Config = ::amorsize::__private::Config {
                    function: ::core::concat!(::core::module_path!(), "::", "row_sums"),
                    backend: ::core::option::Option::None,
                    max_workers: ::core::option::Option::None,
                    chunk_size: ::core::option::Option::None,
                    min_speedup: ::core::option::Option::None,
                    log: false,
                    progress: false,
                };
                (&__amorsize_source)
                    .__amorsize_par(&__AMORSIZE_CFG)
                    .map(|r| {
                        (match ::amorsize::__private::Wrap::new(r.iter()) {
                            __amorsize_source => {
                                #[allow(unused_imports)]
                                use ::amorsize::__private::{ViaAuto as _, ViaStd as _};
                                static __AMORSIZE_CFG: ::amorsize::__private::Config = ::amorsize::__private::Config {
                                    function: ::core::concat!(
                                        ::core::module_path!(), "::", "row_sums"
                                    ),
                                    backend: ::core::option::Option::None,
                                    max_workers: ::core::option::Option::None,
                                    chunk_size: ::core::option::Option::None,
                                    min_speedup: ::core::option::Option::None,
                                    log: false,
                                    progress: false,
                                };
                                (&__amorsize_source)
                                    .__amorsize_par(&__AMORSIZE_CFG)
                                    .map(|x| x * self.scale)
                                    .sum::<u64>()
                            }
                        })
                    })
                    .collect()
            }
        }
    })
}
