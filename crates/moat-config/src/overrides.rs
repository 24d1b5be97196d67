//! Command-line overrides.
#[derive(Clone, Debug, Default)]
pub struct Overrides {}
