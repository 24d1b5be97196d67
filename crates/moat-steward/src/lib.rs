//! moat-steward: see the crate description.
