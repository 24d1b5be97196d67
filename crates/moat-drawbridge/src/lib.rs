//! moat-drawbridge: see the crate description.
