//! Procedural macros of amorsize. Use them through the `amorsize` facade crate.
