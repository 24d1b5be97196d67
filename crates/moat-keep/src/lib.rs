//! moat-keep: the Keep, which runs one `wasm32-wasip1` module.
//!
//! A run goes: module bytes → [`engine::KeepEngine`] (wasmtime with epoch interruption and a
//! compile cache keyed by module digest and engine configuration) → the WASI layer from
//! `moat-wasi` (fd table, capability sockets with host-side TLS) → `_start` under the
//! [`limits::Limits`] (memory, CPU and wall-clock budgets) → the workload's exit code.
//!
//! The Keep's TLS identity is an input of the run, not something this crate invents: callers
//! build the listener and connector configurations (`rustls::ServerConfig`/`ClientConfig`) from
//! whatever identity they hold (a self-signed one per run, or a Steward-issued chain) and pass
//! them in the socket specs; see [`run::RunSpec`]. [`workload`] builds those specs from a
//! `moat_config::Config` and a `moat_tls::Identity`; [`attested`] obtains the Keep's attested
//! identity (key, evidence, Steward certificate) when a Steward is configured.

pub mod attested;
pub mod engine;
mod instances;
pub mod limits;
pub mod run;
pub mod workload;

/// The WASI layer, re-exported so embedders name the same types.
pub use moat_wasi as wasi;

pub use engine::{CacheSetting, KeepEngine};
pub use limits::{LimitExceeded, Limits};
pub use run::{OnListening, RunOutcome, RunSpec, run, run_blocking};
pub use workload::WorkloadError;

/// Why a Keep could not run its workload to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum KeepError {
    /// The engine could not be configured (cache directory, compiler settings).
    #[error("cannot set up the wasm engine: {0}")]
    Engine(String),
    /// The bytes are not a valid wasm module (or not one this engine can compile).
    #[error("invalid wasm module: {0}")]
    InvalidModule(String),
    /// The module imports something Moat does not provide.
    #[error(
        "the module imports `{module}::{name}`, which Moat does not provide (Moat offers \
         `wasi_snapshot_preview1` only)"
    )]
    MissingImport { module: String, name: String },
    /// The module has no `_start` (it is a library/reactor, not a command).
    #[error("the module has no `_start` export (it must be a wasm32-wasip1 command)")]
    NoStart,
    /// The WASI layer could not be set up (bind failure, missing directory).
    #[error(transparent)]
    Wasi(#[from] moat_wasi::WasiError),
    /// The workload trapped.
    #[error("the workload trapped: {message}{}", backtrace.as_deref().map(|b| format!("\n{b}")).unwrap_or_default())]
    Trap {
        message: String,
        backtrace: Option<String>,
    },
    /// A limit stopped the workload.
    #[error(transparent)]
    Limit(#[from] LimitExceeded),
    /// The config could not be turned into sockets (TLS files, identity).
    #[error(transparent)]
    Workload(#[from] WorkloadError),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}
