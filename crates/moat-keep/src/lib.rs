//! moat-keep: see the crate description.
