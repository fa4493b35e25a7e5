//! Re-exports that macro-generated code calls. Not public API.
