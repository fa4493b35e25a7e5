//! Compile-time behaviour of `#[auto_parallel]`, `#[amorsize::serial]` and
//! `#[amorsize::task]`: the mistakes
//! in `tests/ui/*.rs` fail with the messages in their `.stderr` files, and the cases in
//! `tests/ui/pass/` compile and run.
//!
//! Compiler messages change between toolchains, so the `.stderr` files are checked
//! only on the toolchain they were made with (rustc 1.95); elsewhere this test says so
//! and passes. Regenerate them with `TRYBUILD=overwrite cargo test --test ui` and read
//! the diff.

const TOOLCHAIN: &str = "rustc 1.95.";

fn rustc_version() -> String {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    std::process::Command::new(rustc)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

#[test]
fn ui() {
    let version = rustc_version();
    if !version.starts_with(TOOLCHAIN) {
        eprintln!(
            "skipping the UI test: its .stderr files were made with {TOOLCHAIN}x, this is {}",
            version.trim()
        );
        return;
    }
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
