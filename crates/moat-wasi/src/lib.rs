//! moat-wasi: see the crate description.
