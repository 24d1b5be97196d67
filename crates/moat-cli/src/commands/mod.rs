//! One module per `moat` command; each owns its arguments and its output.

pub mod attest_args;
pub mod config;
pub mod deploy;
pub mod drawbridge;
pub mod evidence;
pub mod login;
pub mod package;
pub mod platform;
pub mod run;
pub mod scan;
pub mod steward;
pub mod verify;
