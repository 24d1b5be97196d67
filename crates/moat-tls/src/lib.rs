//! moat-tls: see the crate description.
