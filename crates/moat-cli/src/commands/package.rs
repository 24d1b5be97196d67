//! `moat package push|pull|info`: publish a workload (module + config) to an OCI registry as one
//! Moat package, fetch it back with every digest checked, or show what a reference names.
//! Credentials come from `moat login`'s file; the registry's CA from `--registry-ca` /
//! `MOAT_REGISTRY_CA` (otherwise the platform's roots).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use moat_client::auth::CredentialStore;
use moat_client::package::{self, LocalPackage, PackageKind, Reference};
use moat_client::registry::{
    ClientIdentity, ClientOptions, RegistryClient, TlsOptions, TransferProgress,
};

#[derive(clap::Subcommand)]
pub enum PackageCommand {
    /// Push a module, or a directory holding main.wasm and Moat.toml/Enarx.toml, as a package.
    ///
    /// With a config (in the directory or by --config) the package is a Moat package: one
    /// manifest whose layers are the module and its config, so one digest covers both. A module
    /// without a config is pushed as a plain CNCF Wasm artifact. Prints the manifest digest.
    #[command(after_help = "\
Examples:
  moat package push ./echo registry.example:5000/demo/echo:v1
  moat package push main.wasm --config Moat.toml registry.example:5000/demo/echo:v1
  DIGEST=$(moat package push ./echo registry.example:5000/demo/echo:v1)")]
    Push(PushArgs),
    /// Pull a package into a directory (main.wasm and its config), checking every digest.
    Pull(PullArgs),
    /// Show what a reference names: digest, layout, layers.
    Info(InfoArgs),
    /// List a repository's tags (all pages, in the registry's lexical order).
    Tags(TagsArgs),
}

/// How to reach a registry: which CA to trust and what client certificate to present.
#[derive(clap::Args, Clone)]
pub struct RegistryOpts {
    /// PEM file of the CA certificate(s) to trust for the registry, instead of the platform's
    /// root store.
    #[arg(long = "registry-ca", env = "MOAT_REGISTRY_CA", value_name = "FILE")]
    pub registry_ca: Option<PathBuf>,
    /// PEM certificate chain to present to the registry (mTLS); needs --client-key.
    #[arg(
        long,
        env = "MOAT_REGISTRY_CLIENT_CERT",
        value_name = "FILE",
        requires = "client_key"
    )]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(
        long,
        env = "MOAT_REGISTRY_CLIENT_KEY",
        value_name = "FILE",
        requires = "client_cert"
    )]
    pub client_key: Option<PathBuf>,
}

impl RegistryOpts {
    /// The trust and identity settings these options name.
    pub fn tls(&self) -> anyhow::Result<TlsOptions> {
        let tls = match &self.registry_ca {
            Some(ca) => TlsOptions::with_ca_file(ca)?,
            None => TlsOptions::platform_roots(),
        };
        Ok(match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => {
                tls.client_identity(ClientIdentity::from_pem_files(cert, key)?)
            }
            _ => tls,
        })
    }
}

/// A client for `registry` with the stored credentials for it, if any.
pub fn registry_client(registry: &str, tls: TlsOptions) -> anyhow::Result<RegistryClient> {
    let store = CredentialStore::default_location()?;
    let credentials = store
        .get(registry)
        .with_context(|| format!("reading credentials for {registry}"))?;
    let mut options = ClientOptions::new(tls);
    options.credentials = credentials;
    Ok(RegistryClient::new(registry, options)?)
}

#[derive(clap::Args)]
pub struct PushArgs {
    /// A directory holding main.wasm and Moat.toml or Enarx.toml, or a module file.
    #[arg(value_name = "DIR|MODULE")]
    source: PathBuf,
    /// Where to push: HOST[:PORT]/REPO:TAG.
    #[arg(value_name = "HOST/REPO:TAG")]
    target: String,
    /// The config to package with a module (Moat.toml or Enarx.toml).
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryOpts,
}

#[derive(clap::Args)]
pub struct PullArgs {
    /// HOST[:PORT]/REPO[:TAG][@sha256:...].
    #[arg(value_name = "REF")]
    reference: String,
    /// Directory to write main.wasm and the config into (default: the repository's last
    /// component). Files are replaced atomically once their digests check out.
    #[arg(long, short = 'o', value_name = "DIR")]
    output: Option<PathBuf>,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryOpts,
}

#[derive(clap::Args)]
pub struct InfoArgs {
    /// HOST[:PORT]/REPO[:TAG][@sha256:...].
    #[arg(value_name = "REF")]
    reference: String,
    /// Print the result (with the manifest itself) as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryOpts,
}

#[derive(clap::Args)]
pub struct TagsArgs {
    /// HOST[:PORT]/REPO (a tag or digest, if given, is ignored).
    #[arg(value_name = "HOST/REPO")]
    repository: String,
    /// Print the tags as a JSON array.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    registry: RegistryOpts,
}

/// Most pages of tags fetched; a registry that keeps answering "next" is cut off here.
const MAX_TAG_PAGES: usize = 1000;

pub fn run(cmd: PackageCommand) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    match cmd {
        PackageCommand::Push(args) => runtime.block_on(push(args)),
        PackageCommand::Pull(args) => runtime.block_on(pull(args)),
        PackageCommand::Info(args) => runtime.block_on(info(args)),
        PackageCommand::Tags(args) => runtime.block_on(tags(args)),
    }
}

/// Blobs at least this large get a progress bar (on a terminal).
const PROGRESS_THRESHOLD: u64 = 4 << 20;

async fn push(args: PushArgs) -> anyhow::Result<ExitCode> {
    let reference: Reference = args
        .target
        .parse()
        .with_context(|| format!("push target {:?}", args.target))?;
    if reference.tag().is_none() && reference.digest().is_none() {
        anyhow::bail!("push target {reference} names no tag: write HOST/REPO:TAG");
    }
    let local = LocalPackage::from_path(&args.source, args.config.as_deref())?;
    validate_config_semantics(&args.source, args.config.as_deref(), &local)?;
    let built = local.build();
    let client = registry_client(reference.registry(), args.registry.tls()?)?;
    let progress = BarProgress::new(!args.json);
    let digest = built
        .push(&client, &reference, &progress)
        .await
        .with_context(|| format!("pushing to {reference}"))?;
    progress.finish();
    let pinned = reference.pinned(digest.clone());
    if args.json {
        let out = serde_json::json!({
            "reference": reference.to_string(),
            "pinned": pinned.to_string(),
            "digest": digest.to_string(),
            "kind": built.kind,
            "size": built.blob_bytes() + built.manifest_bytes.len() as u64,
            "workload": reference.workload_name(),
        });
        println!("{out}");
    } else {
        eprintln!(
            "pushed {} ({}, {} bytes) as {pinned}",
            args.source.display(),
            kind_name(built.kind),
            built.blob_bytes()
        );
        println!("{digest}");
    }
    Ok(ExitCode::SUCCESS)
}

/// A config that parses as TOML may still be meaningless to the Keep; check it the way `moat
/// run` will, with line and column in the error, before it is published.
fn validate_config_semantics(
    source: &Path,
    config: Option<&Path>,
    local: &LocalPackage,
) -> anyhow::Result<()> {
    let Some(file) = &local.config else {
        return Ok(());
    };
    let path = match config {
        Some(path) => path.to_owned(),
        None => source.join(file.name.file_name()),
    };
    moat_config::Config::load(&path).with_context(|| format!("checking {}", path.display()))?;
    Ok(())
}

async fn pull(args: PullArgs) -> anyhow::Result<ExitCode> {
    let reference: Reference = args
        .reference
        .parse()
        .with_context(|| format!("reference {:?}", args.reference))?;
    let dir = args.output.unwrap_or_else(|| {
        PathBuf::from(
            reference
                .repository()
                .rsplit('/')
                .next()
                .unwrap_or("package"),
        )
    });
    let client = registry_client(reference.registry(), args.registry.tls()?)?;
    let progress = BarProgress::new(!args.json);
    let (remote, files) = package::pull_to_dir(&client, &reference, &dir, &progress)
        .await
        .with_context(|| format!("pulling {reference}"))?;
    progress.finish();
    if args.json {
        let out = serde_json::json!({
            "reference": reference.to_string(),
            "digest": remote.digest.to_string(),
            "kind": remote.kind,
            "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
        });
        println!("{out}");
    } else {
        eprintln!("pulled {reference} ({})", kind_name(remote.kind));
        for f in &files {
            eprintln!("  {}", f.display());
        }
        if remote.kind == PackageKind::WasmArtifact {
            eprintln!(
                "  (a Wasm artifact carries no config: supply one with --config when running it)"
            );
        }
        println!("{}", remote.digest);
    }
    Ok(ExitCode::SUCCESS)
}

async fn info(args: InfoArgs) -> anyhow::Result<ExitCode> {
    let reference: Reference = args
        .reference
        .parse()
        .with_context(|| format!("reference {:?}", args.reference))?;
    let client = registry_client(reference.registry(), args.registry.tls()?)?;
    let remote = package::inspect(&client, &reference)
        .await
        .with_context(|| format!("inspecting {reference}"))?;
    if args.json {
        let manifest: serde_json::Value = serde_json::from_slice(&remote.manifest_bytes)?;
        let out = serde_json::json!({
            "reference": reference.to_string(),
            "pinned": reference.pinned(remote.digest.clone()).to_string(),
            "digest": remote.digest.to_string(),
            "kind": remote.kind,
            "workload": reference.workload_name(),
            "module": remote.module,
            "config": remote.config,
            "manifest": manifest,
        });
        println!("{out}");
    } else {
        println!("reference: {reference}");
        println!("digest:    {}", remote.digest);
        println!("kind:      {}", kind_name(remote.kind));
        println!("workload:  {}", reference.workload_name());
        println!(
            "module:    {} ({} bytes)",
            remote.module.digest, remote.module.size
        );
        let config_label = match remote.kind {
            PackageKind::Moat => remote.config.title().unwrap_or("config").to_owned(),
            PackageKind::WasmArtifact => "wasm config".to_owned(),
        };
        println!(
            "config:    {} ({} bytes, {config_label})",
            remote.config.digest, remote.config.size
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn tags(args: TagsArgs) -> anyhow::Result<ExitCode> {
    let reference: Reference = args
        .repository
        .parse()
        .with_context(|| format!("repository {:?}", args.repository))?;
    let client = registry_client(reference.registry(), args.registry.tls()?)?;
    let mut all = Vec::new();
    let mut last: Option<String> = None;
    for _ in 0..MAX_TAG_PAGES {
        let page = client
            .tags(reference.repository(), None, last.as_deref())
            .await
            .with_context(|| format!("listing tags of {}", reference.repository()))?;
        all.extend(page.tags);
        match page.next_last {
            Some(next) if Some(&next) != last.as_ref() => last = Some(next),
            _ => break,
        }
    }
    if args.json {
        println!("{}", serde_json::json!(all));
    } else {
        for tag in all {
            println!("{tag}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn kind_name(kind: PackageKind) -> &'static str {
    match kind {
        PackageKind::Moat => "Moat package",
        PackageKind::WasmArtifact => "Wasm artifact",
    }
}

/// An indicatif bar for large transfers; silent for small blobs, off a terminal, or with --json.
pub struct BarProgress {
    bar: Option<indicatif::ProgressBar>,
}

impl BarProgress {
    pub fn new(enabled: bool) -> Self {
        let bar = enabled.then(|| {
            let bar = indicatif::ProgressBar::hidden();
            bar.set_style(
                indicatif::ProgressStyle::with_template(
                    "{bar:40} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
                )
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
            );
            bar
        });
        BarProgress { bar }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl TransferProgress for BarProgress {
    fn start(&self, total: u64, done: u64) {
        let Some(bar) = &self.bar else { return };
        if total >= PROGRESS_THRESHOLD {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
            bar.set_length(total);
            bar.set_position(done);
        } else {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }
}
