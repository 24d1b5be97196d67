//! moat-attest: see the crate description.
