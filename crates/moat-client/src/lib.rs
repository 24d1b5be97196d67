//! moat-client: see the crate description.
