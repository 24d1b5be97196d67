//! moat-config: see the crate description.
