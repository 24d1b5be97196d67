//! The Keep's run step, shared by `moat run` and `moat deploy` so both map outcomes the same
//! way: the workload's exit status becomes moat's (low byte, as shells do), the Keep's own
//! failures get the codes in `exit.rs`, and every listener is announced once bound (on stderr
//! too when the OS chose the port, or nobody could connect).

use std::process::ExitCode;

use moat_keep::wasi::{FdSpec, WasiSpec};
use moat_keep::{CacheSetting, KeepError, OnListening, RunSpec};

use crate::exit;

/// Run `config`'s instances of `module` under `wasi`. On failure, the exit code that says which
/// kind of failure it was, with the error.
pub fn run_module(
    module: &[u8],
    wasi: WasiSpec,
    config: &moat_config::Config,
    cache: CacheSetting,
) -> Result<ExitCode, (u8, KeepError)> {
    let on_listening = announce_listeners(&wasi);
    let spec = RunSpec {
        wasi,
        limits: moat_keep::workload::limits(config),
        cache,
        on_listening: Some(on_listening),
        instances: moat_keep::workload::instances(config),
    };
    match moat_keep::run_blocking(module, spec) {
        // WASI allows any u32 status; a process exit status is one byte.
        Ok(outcome) => Ok(ExitCode::from((outcome.exit_code & 0xff) as u8)),
        Err(err) => Err((exit_code(&err), err)),
    }
}

fn exit_code(err: &KeepError) -> u8 {
    match err {
        KeepError::InvalidModule(_) | KeepError::MissingImport { .. } | KeepError::NoStart => {
            exit::MODULE_INVALID
        }
        KeepError::Trap { .. } => exit::TRAP,
        KeepError::Limit(_) => exit::LIMIT_EXCEEDED,
        KeepError::Engine(_)
        | KeepError::Wasi(_)
        | KeepError::Workload(_)
        | KeepError::Runtime(_) => exit::MOAT_ERROR,
    }
}

fn announce_listeners(wasi: &WasiSpec) -> OnListening {
    let requested_ports: Vec<u16> = wasi
        .fds
        .iter()
        .filter_map(|fd| match fd {
            FdSpec::Listen { addr, .. } => Some(addr.port()),
            _ => None,
        })
        .collect();
    Box::new(move |listeners| {
        for (l, requested) in listeners.iter().zip(requested_ports) {
            let scheme = if l.tls { "tls" } else { "tcp" };
            tracing::info!(name = %l.name, fd = l.fd, "listening on {scheme}://{}", l.addr);
            if requested == 0 {
                eprintln!(
                    "moat: `{}` (fd {}) listening on {scheme}://{}",
                    l.name, l.fd, l.addr
                );
            }
        }
    })
}
