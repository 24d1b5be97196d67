//! `moat run [--config FILE] MODULE.wasm [-- ARGS...]`: run a wasm32-wasip1 module in a Keep.
//!
//! The config (Moat.toml or Enarx.toml, else stdin/stdout/stderr only) plus the flags decide
//! what the workload gets; the Keep's TLS identity is a fresh self-signed certificate per run.
//! The workload's exit code becomes moat's; Moat's own failures use the codes in `exit.rs`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use moat_keep::CacheSetting;

use crate::exit;

#[derive(clap::Args)]
#[command(after_help = "\
Exit codes: the workload's own; 124 a limit stopped it; 125 Moat failed before it started; \
126 invalid module or missing imports; 134 it trapped.

Examples:
  moat run --config Enarx.toml main.wasm
  moat run --listen web=tls://127.0.0.1:8443 --dir ./data:/data:ro server.wasm
  moat run --connect api=tcp://localhost:8080 client.wasm -- --verbose")]
pub struct RunArgs {
    /// Moat.toml or Enarx.toml. Without one the workload gets stdin, stdout and stderr only.
    #[arg(long, short = 'c', env = "MOAT_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// The wasm32-wasip1 module to run.
    #[arg(value_name = "MODULE.wasm")]
    module: PathBuf,

    /// Arguments for the workload (after `main.wasm` and the config's `args`).
    #[arg(last = true, value_name = "ARGS")]
    args: Vec<String>,

    /// Set an environment variable of the workload (repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,

    /// Append an argument (repeatable; before any `-- ARGS`).
    #[arg(long = "arg", value_name = "ARG")]
    arg: Vec<String>,

    /// Pre-open a host directory (repeatable), read-only with `:ro`.
    #[arg(long = "dir", value_name = "HOST[:GUEST][:ro]")]
    dir: Vec<String>,

    /// Add a listening socket, or replace the config's socket of that name (repeatable).
    #[arg(long = "listen", value_name = "NAME=tls://ADDR:PORT")]
    listen: Vec<String>,

    /// Add an outgoing connection, or replace the config's of that name (repeatable).
    #[arg(long = "connect", value_name = "NAME=tcp://HOST:PORT")]
    connect: Vec<String>,

    /// Largest memory the workload may use, e.g. `256MiB`.
    #[arg(long, value_name = "SIZE", env = "MOAT_MAX_MEMORY")]
    max_memory: Option<String>,

    /// Stop the workload after this much wall-clock time, e.g. `30s`.
    #[arg(long = "wall-time", alias = "timeout", value_name = "DURATION")]
    wall_time: Option<String>,

    /// Stop the workload after this much time executing wasm, e.g. `5s`.
    #[arg(long = "cpu-time", alias = "max-cpu-time", value_name = "DURATION")]
    cpu_time: Option<String>,

    /// Connections open at once per listener; more wait in the OS backlog.
    #[arg(long, value_name = "N")]
    max_connections: Option<String>,

    /// Time a TLS client gets to finish its handshake, e.g. `10s`.
    #[arg(long, value_name = "DURATION")]
    handshake_timeout: Option<String>,

    /// Run N instances of a stateless workload on the same listeners, a thread each; each
    /// connection goes to one instance, and instances share no memory [default: 1].
    #[arg(long, value_name = "N", env = "MOAT_INSTANCES")]
    instances: Option<String>,

    /// Directory of the compile cache (default `$XDG_CACHE_HOME/moat/wasmtime`).
    #[arg(long, env = "MOAT_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,

    /// Compile the module without using or filling the cache.
    #[arg(long, env = "MOAT_NO_CACHE")]
    no_cache: bool,

    #[command(flatten)]
    attest: super::attest_args::AttestArgs,
}

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    match run_inner(args) {
        Ok(code) => Ok(code),
        // Moat's own failures: the message, then the exit code that says which kind it was.
        Err(Failure(code, err)) => {
            eprintln!("error: {err:#}");
            Ok(ExitCode::from(code))
        }
    }
}

/// An error with the exit code it should produce.
struct Failure(u8, anyhow::Error);

fn moat_error(err: impl Into<anyhow::Error>) -> Failure {
    Failure(exit::MOAT_ERROR, err.into())
}

fn run_inner(args: RunArgs) -> Result<ExitCode, Failure> {
    let mut config = match &args.config {
        Some(path) => moat_config::Config::load(path).map_err(moat_error)?,
        None => moat_config::Config::default(),
    };
    let overrides = moat_config::Overrides {
        env: args.env,
        args: args.arg.into_iter().chain(args.args).collect(),
        dirs: args.dir,
        listen: args.listen,
        connect: args.connect,
        max_memory: args.max_memory,
        wall_time: args.wall_time,
        cpu_time: args.cpu_time,
        max_connections_per_listener: args.max_connections,
        handshake_timeout: args.handshake_timeout,
        instances: args.instances,
    };
    config.apply(&overrides).map_err(moat_error)?;

    let module = std::fs::read(&args.module)
        .with_context(|| format!("cannot read the module {}", args.module.display()))
        .map_err(moat_error)?;

    // The one place the Keep's identity is made: Steward-certified when a Steward is
    // configured (attestation happens before the workload starts), else self-signed.
    let steward = args
        .attest
        .steward(config.steward.as_deref())
        .map_err(moat_error)?;
    let server_names = args
        .attest
        .server_names(moat_keep::workload::server_names(&config));
    let (identity, _renewal) = match steward {
        Some(mut steward) => {
            steward.server_names = server_names;
            let workload = moat_keep::attested::local_workload_name(&module);
            let identity: moat_tls::LiveIdentity =
                moat_keep::attested::attested_identity_blocking(&steward, &workload)
                    .map_err(moat_error)?
                    .into();
            // The Steward's certificate expires; the run may not.
            let renewal =
                moat_keep::attested::renew_in_background(steward, workload, identity.clone())
                    .map_err(moat_error)?;
            (identity, Some(renewal))
        }
        None => {
            let identity = moat_tls::Identity::self_signed(&server_names).map_err(|e| {
                moat_error(anyhow::anyhow!(
                    "cannot make the Keep's self-signed identity: {e}"
                ))
            })?;
            (identity.into(), None)
        }
    };
    let wasi = moat_keep::workload::wasi_spec(&config, &identity).map_err(moat_error)?;
    let cache = match (args.no_cache, args.cache_dir) {
        (true, _) => CacheSetting::Disabled,
        (false, Some(dir)) => CacheSetting::Dir(dir),
        (false, None) => CacheSetting::Default,
    };
    crate::keep_run::run_module(&module, wasi, &config, cache).map_err(|(code, err)| {
        Failure(
            code,
            anyhow::Error::new(err).context(args.module.display().to_string()),
        )
    })
}
