//! `moat drawbridge ...`: run the registry and administer it (users, tokens, repositories,
//! release policies). The administrative commands open the same SQLite database as the server
//! (`<data-dir>/drawbridge.db`); they may run while the server does.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use moat_drawbridge::auth::{DEFAULT_SCOPE, Scope, generate_token, validate_user};
use moat_drawbridge::meta::Db;
use moat_drawbridge::names::RepoName;
use moat_drawbridge::policy::ReleasePolicy;
use moat_drawbridge::{Registry, RegistryConfig, server};
use serde_json::json;

#[derive(clap::Subcommand)]
pub enum DrawbridgeCommand {
    /// Run the registry (OCI Distribution API under /v2/).
    ///
    /// Prints one line `listening on https://HOST:PORT` to stderr (and, with --json, a JSON
    /// object to stdout) once it accepts connections.
    Serve(ServeArgs),
    /// Manage users (token holders).
    #[command(subcommand)]
    User(UserCommand),
    /// Create, list and revoke access tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Create repositories, set visibility and release policies.
    #[command(subcommand)]
    Repo(RepoCommand),
}

#[derive(clap::Args)]
pub struct DataDir {
    /// Where blobs and the metadata database live.
    #[arg(
        long,
        env = "MOAT_DRAWBRIDGE_DATA_DIR",
        default_value = "drawbridge-data"
    )]
    data_dir: PathBuf,
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0: the OS picks one; the chosen port is printed).
    #[arg(long, env = "MOAT_DRAWBRIDGE_LISTEN", default_value = "127.0.0.1:5000")]
    listen: SocketAddr,
    #[command(flatten)]
    data: DataDir,
    /// PEM certificate chain for HTTPS.
    #[arg(long, env = "MOAT_DRAWBRIDGE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for HTTPS.
    #[arg(long, env = "MOAT_DRAWBRIDGE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP instead of HTTPS (loopback addresses only; for local tools and the OCI
    /// conformance suite). Keep certificates cannot be presented over plain HTTP.
    #[arg(long, env = "MOAT_DRAWBRIDGE_INSECURE_PLAIN_HTTP", conflicts_with_all = ["tls_cert", "tls_key"])]
    insecure_plain_http: bool,
    /// The URL clients use to reach this registry (its host:port is the one Keep certificates
    /// must name: oci://HOST:PORT/REPO). Default: the listening address.
    #[arg(long, env = "MOAT_DRAWBRIDGE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Largest manifest accepted, in bytes.
    #[arg(long, env = "MOAT_DRAWBRIDGE_MAX_MANIFEST_BYTES", default_value_t = moat_drawbridge::registry::DEFAULT_MAX_MANIFEST_BYTES)]
    max_manifest_bytes: usize,
    /// Largest blob accepted, in bytes.
    #[arg(long, env = "MOAT_DRAWBRIDGE_MAX_BLOB_BYTES", default_value_t = moat_drawbridge::registry::DEFAULT_MAX_BLOB_BYTES)]
    max_blob_bytes: u64,
    /// Seconds an upload session may sit idle before it is deleted.
    #[arg(long, env = "MOAT_DRAWBRIDGE_UPLOAD_EXPIRY_SECS", default_value_t = moat_drawbridge::registry::DEFAULT_UPLOAD_EXPIRY.as_secs())]
    upload_expiry_secs: u64,
    /// Repositories created by a push are public (default: private).
    #[arg(long, env = "MOAT_DRAWBRIDGE_PUBLIC_BY_DEFAULT")]
    public_by_default: bool,
    /// Print the listening address as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand)]
pub enum UserCommand {
    /// Add a user (names: lower case letters, digits, `.`, `_`, `-`).
    Add {
        name: String,
        #[command(flatten)]
        data: DataDir,
    },
}

#[derive(clap::Subcommand)]
pub enum TokenCommand {
    /// Create a token for USER; the secret is printed once and stored only as a hash.
    Create {
        user: String,
        /// REPO_PATTERN:ACTIONS, repeatable; `*` matches any characters; actions pull, push,
        /// delete. Default: `*:pull,push`.
        #[arg(long = "scope")]
        scopes: Vec<String>,
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by its id (it stops working at once).
    Revoke {
        id: String,
        #[command(flatten)]
        data: DataDir,
    },
    /// List tokens (ids, users, scopes; never secrets).
    List {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Subcommand)]
pub enum RepoCommand {
    /// Create a repository (public unless --private), or change its visibility.
    Create {
        name: String,
        /// Only token holders with pull scope, and Keeps satisfying its release policy, may read.
        #[arg(long)]
        private: bool,
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        json: bool,
    },
    /// Set a repository's release policy from a TOML file (or remove it with --clear).
    ///
    /// trusted_ca_files = ["steward-ca.pem"]  (relative to the policy file),
    /// platforms = ["snp", "tdx"]  ("nil" only if listed),
    /// require_workload_name = true  (the certificate must name oci://HOST:PORT/REPO).
    Policy {
        name: String,
        /// The policy file.
        #[arg(required_unless_present = "clear")]
        file: Option<PathBuf>,
        /// Remove the policy: no Keep certificate is accepted any more.
        #[arg(long, conflicts_with = "file")]
        clear: bool,
        #[command(flatten)]
        data: DataDir,
    },
    /// List repositories.
    List {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cmd: DrawbridgeCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        DrawbridgeCommand::Serve(args) => serve(args),
        DrawbridgeCommand::User(UserCommand::Add { name, data }) => {
            validate_user(&name)?;
            open_db(&data.data_dir)?.user_add(&name)?;
            println!("added user {name}");
            Ok(ExitCode::SUCCESS)
        }
        DrawbridgeCommand::Token(cmd) => token(cmd),
        DrawbridgeCommand::Repo(cmd) => repo(cmd),
    }
}

fn open_db(data_dir: &Path) -> anyhow::Result<Db> {
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("creating data directory {}", data_dir.display()))?;
    let config = RegistryConfig::new(data_dir, "");
    Db::open(&config.db_path()).with_context(|| format!("opening {}", config.db_path().display()))
}

fn token(cmd: TokenCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TokenCommand::Create {
            user,
            scopes,
            data,
            json,
        } => {
            let scopes = if scopes.is_empty() {
                vec![DEFAULT_SCOPE.to_owned()]
            } else {
                scopes
            };
            let parsed = scopes
                .iter()
                .map(|s| Scope::parse(s))
                .collect::<Result<Vec<_>, _>>()?;
            let stored: Vec<String> = parsed.iter().map(|s| s.to_string()).collect();
            let token = generate_token()?;
            open_db(&data.data_dir)?.token_insert(
                &token.id,
                &user,
                &token.hash,
                &stored.join(" "),
            )?;
            if json {
                println!(
                    "{}",
                    json!({ "id": token.id, "user": user, "token": token.secret, "scopes": stored })
                );
            } else {
                eprintln!(
                    "token {} for {user} (scopes: {}); shown once:",
                    token.id,
                    stored.join(" ")
                );
                println!("{}", token.secret);
            }
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::Revoke { id, data } => {
            open_db(&data.data_dir)?.token_revoke(&id)?;
            println!("revoked token {id}");
            Ok(ExitCode::SUCCESS)
        }
        TokenCommand::List { data, json } => {
            let tokens = open_db(&data.data_dir)?.token_list()?;
            if json {
                let list: Vec<_> = tokens
                    .iter()
                    .map(|t| {
                        json!({ "id": t.id, "user": t.user, "scopes": t.scopes, "created": t.created, "revoked": t.revoked })
                    })
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for t in tokens {
                    let state = if t.revoked.is_some() {
                        "revoked"
                    } else {
                        "live"
                    };
                    println!("{}\t{}\t{}\t{}", t.id, t.user, state, t.scopes);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn repo(cmd: RepoCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RepoCommand::Create {
            name,
            private,
            data,
            json,
        } => {
            let name = RepoName::parse(&name)?;
            let info = open_db(&data.data_dir)?.repo_set_private(name.as_str(), private)?;
            if json {
                println!("{}", json!({ "name": info.name, "private": info.private }));
            } else {
                let vis = if info.private { "private" } else { "public" };
                println!("repository {} is {vis}", info.name);
            }
            Ok(ExitCode::SUCCESS)
        }
        RepoCommand::Policy {
            name,
            file,
            clear,
            data,
        } => {
            let name = RepoName::parse(&name)?;
            let db = open_db(&data.data_dir)?;
            if clear {
                db.repo_set_policy(name.as_str(), None)?;
                println!("release policy of {name} removed");
                return Ok(ExitCode::SUCCESS);
            }
            let Some(file) = file else {
                bail!("give a policy file or --clear");
            };
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("reading {}", file.display()))?;
            let base = file.parent().unwrap_or(Path::new("."));
            let policy = ReleasePolicy::from_file_text(&text, base)
                .with_context(|| format!("in {}", file.display()))?;
            db.repo_set_policy(name.as_str(), Some(&policy.to_stored()))?;
            println!(
                "release policy of {name}: {} trusted CA(s), platforms {}, workload name {}",
                policy.trusted_ca_pem.len(),
                policy.platforms.join(", "),
                if policy.require_workload_name {
                    "required"
                } else {
                    "not required"
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        RepoCommand::List { data, json } => {
            let repos = open_db(&data.data_dir)?.repo_list()?;
            if json {
                let list: Vec<_> = repos
                    .iter()
                    .map(|r| json!({ "name": r.name, "private": r.private, "policy": r.policy.is_some() }))
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for r in repos {
                    let vis = if r.private { "private" } else { "public" };
                    let policy = if r.policy.is_some() { "policy" } else { "-" };
                    println!("{}\t{vis}\t{policy}", r.name);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `host:port` of a URL like `https://host:port/...`.
fn authority_of(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .context("--public-url must start with https:// or http://")?;
    let authority = rest.split('/').next().unwrap_or(rest);
    if authority.is_empty() {
        bail!("--public-url has no host");
    }
    Ok(authority.to_ascii_lowercase())
}

fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(cert), Some(key)) => {
                let (config, live) = server::tls_config_from_files(cert, key)?;
                crate::tls_reload::reload_on_sighup("drawbridge", cert.clone(), key.clone(), live)?;
                Some(config)
            }
            _ if args.insecure_plain_http => None,
            _ => bail!("give --tls-cert and --tls-key (or --insecure-plain-http on a loopback address)"),
        };
        let listener = server::bind(args.listen, tls.is_some()).await?;
        let local = listener.local_addr().context("reading the bound address")?;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let authority = match &args.public_url {
            Some(url) => authority_of(url)?,
            None => local.to_string(),
        };
        let mut config = RegistryConfig::new(&args.data.data_dir, authority.clone());
        config.max_manifest_bytes = args.max_manifest_bytes;
        config.max_blob_bytes = args.max_blob_bytes;
        config.upload_expiry = std::time::Duration::from_secs(args.upload_expiry_secs);
        config.new_repos_private = !args.public_by_default;
        let registry = Registry::open(config)
            .await
            .with_context(|| format!("opening registry data in {}", args.data.data_dir.display()))?;
        let url = format!("{scheme}://{local}");
        eprintln!("listening on {url}");
        if args.json {
            println!(
                "{}",
                json!({ "listening": url, "public_authority": authority, "data_dir": args.data.data_dir })
            );
        }
        tracing::info!(%url, %authority, "drawbridge serving");
        server::serve(listener, tls, registry, shutdown_signal()).await;
        Ok(ExitCode::SUCCESS)
    })
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutting down");
}
