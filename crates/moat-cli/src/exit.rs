//! Exit codes. `moat run` passes the workload's own exit status through, so Moat's own failures
//! use codes a workload rarely picks, in the convention of `docker run` and `timeout`.

use std::process::ExitCode;

/// Generic failure of a non-run command (also: a `verify` whose claims do not match).
pub const FAILURE: u8 = 1;
/// Input that cannot be read at all (a file that is not evidence, a CSR or a time), as clap's
/// usage errors also exit 2.
pub const BAD_INPUT: u8 = 2;
/// Moat itself failed before the workload started (config, files, attestation, registry).
pub const MOAT_ERROR: u8 = 125;
/// The module cannot run: invalid wasm, or imports Moat does not provide.
pub const MODULE_INVALID: u8 = 126;
/// A limit (time, memory, connections) stopped the workload.
pub const LIMIT_EXCEEDED: u8 = 124;
/// The workload trapped.
pub const TRAP: u8 = 134;

/// Map an error to an exit code: an [`ExitWith`] anywhere in the chain decides, else [`FAILURE`].
pub fn code_for(err: &anyhow::Error) -> ExitCode {
    // anyhow downcasts through nested `.context(..)` layers to the context type itself.
    err.downcast_ref::<ExitWith>()
        .map(|e| ExitCode::from(e.0))
        .unwrap_or(ExitCode::from(FAILURE))
}

/// Attach to an error (as context) to choose the exit code it produces.
#[derive(Debug)]
pub struct ExitWith(pub u8);

impl std::fmt::Display for ExitWith {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit code {}", self.0)
    }
}

impl std::error::Error for ExitWith {}
