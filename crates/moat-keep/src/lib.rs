//! moat-keep: see the crate description.
//!
//! - [`attested`]: the Keep's attested identity (key, evidence, Steward certificate).

pub mod attested;
