//! `moat deploy REF`: the undifferentiated Keep. It starts with no workload and goes, in this
//! order and no other: parse REF; attest to the Steward, asking for a certificate that names the
//! workload; pull the package presenting that certificate; check every digest; run the workload
//! with that same certificate on its TLS sockets. Any failure before the run stops with exit code
//! 125 and a message naming the step; nothing has executed. (`docs/packages.md` has the forms of
//! REF and the guarantees.)

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use bytes::Bytes;
use moat_client::package::source::{DeploySource, local_workload_name};
use moat_client::package::{self, LocalPackage, Reference};
use moat_client::registry::{ClientIdentity, ClientOptions, RegistryClient};

use moat_keep::attested::StewardSettings;

use super::package::BarProgress;
use crate::exit::{self, ExitWith};

#[derive(clap::Args)]
#[command(after_help = "\
REF forms:
  HOST[:PORT]/REPO[:TAG][@sha256:HEX]            a package in a registry (also oci://...)
  https://HOST[:PORT]/v2/REPO/manifests/TAG|DIGEST  the same, as its manifest's URL
  file:///PATH                                   a module, or a directory with main.wasm and
                                                 Moat.toml or Enarx.toml

Exit codes: 125 when anything fails before the workload starts (nothing ran); otherwise as
`moat run`: the workload's own, 124 a limit stopped it, 126 invalid module, 134 it trapped.

Examples:
  moat deploy --steward https://steward.example:8443 --steward-ca steward-ca.pem \\
      registry.example:5000/demo/echo:v1
  moat deploy registry.example:5000/demo/echo@sha256:4f3c...
  moat deploy file:///srv/echo")]
pub struct DeployArgs {
    /// What to deploy (see the forms below).
    #[arg(value_name = "REF")]
    reference: String,
    #[command(flatten)]
    attest: super::attest_args::AttestArgs,
    /// PEM CA certificate(s) to trust for the registry instead of the platform's root store.
    #[arg(long = "registry-ca", env = "MOAT_REGISTRY_CA", value_name = "FILE")]
    registry_ca: Option<PathBuf>,
    /// Config for a Wasm artifact or a bare module (a Moat package carries its own).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory of the compile cache (default `$XDG_CACHE_HOME/moat/wasmtime`).
    #[arg(long, env = "MOAT_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
}

/// The steps before the run, named in error messages so an operator knows how far it got.
#[derive(Debug, Clone, Copy)]
enum Step {
    Parse,
    ReadLocal,
    Attest,
    Pull,
    Configure,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Parse => "deploy refused while reading REF",
            Step::ReadLocal => "deploy refused while reading the local workload",
            Step::Attest => "deploy refused at attestation (nothing was fetched or run)",
            Step::Pull => "deploy refused while pulling and checking the package (nothing was run)",
            Step::Configure => "deploy refused while preparing the workload (nothing was run)",
        })
    }
}

/// Attach the failing step and exit code 125 to an error from before the run.
fn before_run<T>(step: Step, result: anyhow::Result<T>) -> anyhow::Result<T> {
    result
        .context(ExitWith(exit::MOAT_ERROR))
        .with_context(|| step.to_string())
}

/// What the Keep will run, fully checked.
struct Workload {
    /// The certificate's workload name.
    name: String,
    module: Bytes,
    /// Config text and the directory relative paths in it resolve against.
    config: Option<(String, PathBuf)>,
    /// The manifest digest, for registry packages.
    digest: Option<String>,
}

pub fn run(args: DeployArgs) -> anyhow::Result<ExitCode> {
    let source: DeploySource = before_run(
        Step::Parse,
        args.reference
            .parse()
            .with_context(|| format!("REF {:?}", args.reference)),
    )?;

    // A local workload is read (not fetched) first: its digest is its name.
    let local = match &source {
        DeploySource::File(path) => Some(before_run(Step::ReadLocal, read_local(path, &args))?),
        DeploySource::Registry(_) => None,
    };
    let workload_name = match (&source, &local) {
        (DeploySource::Registry(reference), _) => reference.workload_name(),
        (DeploySource::File(_), Some(w)) => w.name.clone(),
        (DeploySource::File(_), None) => unreachable!("local workloads are read above"),
    };
    let steward = before_run(Step::Attest, steward_settings(&args, local.as_ref()))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("moat-deploy")
        .build()
        .context("starting the async runtime")?;

    // 1. Attest first.
    let identity = before_run(
        Step::Attest,
        runtime.block_on(attest(&steward, &workload_name)),
    )?;
    tracing::info!(workload = %workload_name, "attested; certificate obtained");

    // 2. Only then pull, presenting that certificate, checking every digest.
    let workload = match (source, local) {
        (_, Some(local)) => local,
        (DeploySource::Registry(reference), None) => before_run(
            Step::Pull,
            runtime.block_on(pull(&reference, &identity, &args)),
        )?,
        (DeploySource::File(_), None) => unreachable!("local workloads are read above"),
    };
    if let Some(digest) = &workload.digest {
        eprintln!("deploying {} ({digest})", workload.name);
    } else {
        eprintln!("deploying {}", workload.name);
    }

    // 3. Run with the same certificate, renewed before it expires.
    let config = before_run(Step::Configure, load_config(&workload))?;
    let identity = moat_tls::LiveIdentity::new(identity);
    let _renewal = before_run(
        Step::Attest,
        moat_keep::attested::renew_in_background(steward, workload_name.clone(), identity.clone())
            .map_err(Into::into),
    )?;
    run_workload(runtime, &workload, config, identity, &args)
}

/// The Steward to attest to: `--steward` / `MOAT_STEWARD`, else (for local workloads) the
/// config's `steward`. Unlike `moat run`, a deploy without a Steward is refused: the whole point
/// of deploying is that the Keep proves itself before it gets the workload.
fn steward_settings(
    args: &DeployArgs,
    local: Option<&Workload>,
) -> anyhow::Result<StewardSettings> {
    let from_config = local
        .and_then(|w| w.config.as_ref())
        .and_then(|(text, dir)| moat_config::Config::from_toml_str(text, dir).ok())
        .and_then(|c| c.steward);
    let mut settings = args.attest.steward(from_config.as_deref())?.context(
        "no Steward named: deploy attests before it fetches anything, so give --steward URL \
         (or MOAT_STEWARD) and --steward-ca FILE (or MOAT_STEWARD_CA)",
    )?;
    if !settings.url.starts_with("https://") {
        anyhow::bail!("Steward URL {:?} is not https://", settings.url);
    }
    // The package's config is not known before the pull: ask for the loopback names.
    settings.server_names = args.attest.server_names(moat_keep::workload::server_names(
        &moat_config::Config::default(),
    ));
    Ok(settings)
}

fn read_local(path: &Path, args: &DeployArgs) -> anyhow::Result<Workload> {
    let local = LocalPackage::from_path(path, args.config.as_deref())
        .with_context(|| format!("reading {}", path.display()))?;
    let base_dir = if path.is_dir() {
        path.to_owned()
    } else {
        args.config
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("."))
    };
    Ok(Workload {
        name: local_workload_name(&local.module),
        config: local.config.map(|c| (c.text().to_owned(), base_dir)),
        module: local.module,
        digest: None,
    })
}

async fn pull(
    reference: &Reference,
    identity: &moat_tls::Identity,
    args: &DeployArgs,
) -> anyhow::Result<Workload> {
    let tls = match &args.registry_ca {
        Some(ca) => moat_client::registry::TlsOptions::with_ca_file(ca)?,
        None => moat_client::registry::TlsOptions::platform_roots(),
    }
    .client_identity(ClientIdentity::from(identity));
    // The Keep pulls with its certificate alone: the operator's stored credentials are not sent,
    // so what is released is what the attested Keep itself may receive.
    let client = RegistryClient::new(reference.registry(), ClientOptions::new(tls))?;
    let progress = BarProgress::new(true);
    let pulled = package::pull(&client, reference, &progress)
        .await
        .with_context(|| format!("pulling {reference}"))?;
    progress.finish();
    let config = match (pulled.config, &args.config) {
        (Some(_), Some(_)) => anyhow::bail!(
            "{reference} is a Moat package and carries its own config; --config applies only to \
             Wasm artifacts and local modules"
        ),
        (Some(config), None) => Some((config.text().to_owned(), std::env::current_dir()?)),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let dir = path.parent().map(Path::to_owned).unwrap_or_default();
            Some((text, dir))
        }
        (None, None) => None,
    };
    Ok(Workload {
        name: reference.workload_name(),
        module: pulled.module,
        config,
        digest: Some(pulled.remote.digest.to_string()),
    })
}

fn load_config(workload: &Workload) -> anyhow::Result<moat_config::Config> {
    match &workload.config {
        Some((text, dir)) => Ok(moat_config::Config::from_toml_str(text, dir)?),
        None => Ok(moat_config::Config::default()),
    }
}

/// The Keep's attestation step (`moat_keep::attested`): a fresh key, evidence binding it and
/// the Steward's nonce, a CSR naming the workload, and the chain the Steward issues for it.
async fn attest(steward: &StewardSettings, workload: &str) -> anyhow::Result<moat_tls::Identity> {
    moat_keep::attested::attested_identity(steward, workload)
        .await
        .with_context(|| format!("attesting to {} for {workload}", steward.url))
}

/// The run, with the attested identity on every TLS socket. The workload's exit code becomes
/// moat's; the Keep's own failures map as in `moat run`.
fn run_workload(
    runtime: tokio::runtime::Runtime,
    workload: &Workload,
    config: moat_config::Config,
    identity: moat_tls::LiveIdentity,
    args: &DeployArgs,
) -> anyhow::Result<ExitCode> {
    // The attest/pull runtime is done; the Keep runs the workload on its own runtime.
    drop(runtime);
    let wasi = before_run(
        Step::Configure,
        moat_keep::workload::wasi_spec(&config, &identity).map_err(Into::into),
    )?;
    let cache = match &args.cache_dir {
        Some(dir) => moat_keep::CacheSetting::Dir(dir.clone()),
        None => moat_keep::CacheSetting::Default,
    };
    crate::keep_run::run_module(&workload.module, wasi, &config, cache).map_err(|(code, err)| {
        anyhow::Error::new(err)
            .context(ExitWith(code))
            .context(format!("running {}", workload.name))
    })
}
