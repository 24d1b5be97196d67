//! `moat steward ...`: run the attestation service, import TDX collateral, check a policy.
//!
//! `serve` prints exactly one line once it accepts connections, `listening on https://ADDR`
//! (stderr; with `--json` a JSON object on stdout instead, which also names the CA file), so
//! scripts and tests can start it on port 0 and read the port back.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use moat_steward::api::{ApiLimits, router};
use moat_steward::ca::{CA_CERT_FILE, CertificateAuthority};
use moat_steward::server::{ConnLimits, serve, tls_config_from_ca, tls_config_from_files};
use moat_steward::{Policy, StewardBuilder, collateral};

#[derive(clap::Subcommand)]
pub enum StewardCommand {
    /// Run the Steward: verify evidence-carrying CSRs and issue certificates over HTTPS.
    Serve(Box<ServeArgs>),
    /// Manage TDX/SGX (DCAP) collateral used for offline quote verification.
    #[command(subcommand)]
    Collateral(CollateralCommand),
    /// Check a policy file and show its warnings.
    #[command(subcommand)]
    Policy(PolicyCommand),
}

#[derive(clap::Subcommand)]
pub enum CollateralCommand {
    /// Check a collateral JSON document and store it in the state directory.
    Import {
        /// Collateral JSON (QuoteCollateralV3, as dcap-qvl and Intel PCCS tools write it).
        file: PathBuf,
        #[arg(long, env = "MOAT_STEWARD_STATE_DIR")]
        state_dir: Option<PathBuf>,
    },
}

#[derive(clap::Subcommand)]
pub enum PolicyCommand {
    /// Parse a policy (unknown keys are errors) and print its effective settings and warnings.
    Check {
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "MOAT_STEWARD_LISTEN", default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// State directory: the generated CA key and certificate, imported collateral. Created
    /// with mode 0700. Default: $XDG_STATE_HOME/moat/steward or ~/.local/state/moat/steward.
    #[arg(long, env = "MOAT_STEWARD_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Policy file (TOML). Without one the strict default applies: SNP and TDX only, no
    /// workloads listed, so nothing is certified.
    #[arg(long, env = "MOAT_STEWARD_POLICY")]
    policy: Option<PathBuf>,
    /// CA certificate (PEM), instead of the one generated in the state directory.
    #[arg(long, env = "MOAT_STEWARD_CA_CERT", requires = "ca_key")]
    ca_cert: Option<PathBuf>,
    /// CA private key (PEM), with --ca-cert.
    #[arg(long, env = "MOAT_STEWARD_CA_KEY", requires = "ca_cert")]
    ca_key: Option<PathBuf>,
    /// TLS certificate chain (PEM) for the HTTPS listener. Default: one the CA signs at start
    /// for --tls-name, localhost, 127.0.0.1 and ::1.
    #[arg(long, env = "MOAT_STEWARD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM), with --tls-cert.
    #[arg(long, env = "MOAT_STEWARD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Extra DNS names or IP addresses for the generated TLS certificate.
    #[arg(
        long = "tls-name",
        env = "MOAT_STEWARD_TLS_NAMES",
        value_delimiter = ','
    )]
    tls_names: Vec<String>,
    /// Most simultaneous connections.
    #[arg(long, env = "MOAT_STEWARD_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: usize,
    /// Print the listening line as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// TEST ONLY: verify evidence as of this time (Unix seconds or RFC 3339) instead of the
    /// clock, for recorded evidence whose CRLs or collateral have expired.
    #[arg(long, env = "MOAT_STEWARD_TEST_ONLY_VERIFY_AT")]
    test_only_verify_at: Option<String>,
    /// TEST ONLY: trust an extra AMD root (PEM file holding the ARK then the ASK), as generated
    /// by moat-attest's test root. Needs a build with the `test-roots` feature.
    #[arg(long, env = "MOAT_STEWARD_TEST_ONLY_AMD_ROOT")]
    test_only_amd_root: Option<PathBuf>,
}

pub fn run(cmd: StewardCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        StewardCommand::Serve(args) => serve_command(*args),
        StewardCommand::Collateral(CollateralCommand::Import { file, state_dir }) => {
            let state_dir = state_dir.unwrap_or_else(default_state_dir);
            let bytes =
                std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
            let imported = collateral::import(&state_dir, &bytes)?;
            match imported.window {
                Some((from, to)) => println!(
                    "stored {} (TCB info issued {from}, next update {to})",
                    imported.path.display()
                ),
                None => println!("stored {}", imported.path.display()),
            }
            Ok(ExitCode::SUCCESS)
        }
        StewardCommand::Policy(PolicyCommand::Check { file, json }) => {
            let policy = Policy::from_file(&file)?;
            let warnings = policy.warnings();
            if json {
                println!(
                    "{}",
                    serde_json::json!({
                        "valid": true,
                        "name": policy.name,
                        "platforms": policy.platforms,
                        "allow_insecure_nil": policy.allow_insecure_nil,
                        "require_nonce": policy.require_nonce,
                        "workloads": policy.workloads,
                        "certificate_lifetime_secs": policy.lifetime().as_secs(),
                        "nonce_lifetime_secs": policy.nonce_lifetime().as_secs(),
                        "warnings": warnings,
                    })
                );
            } else {
                println!(
                    "policy {:?}: valid; certificates last {}s",
                    policy.name,
                    policy.lifetime().as_secs()
                );
                for w in &warnings {
                    println!("warning: {w}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn default_state_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("XDG_STATE_HOME") {
        return PathBuf::from(d).join("moat/steward");
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".local/state/moat/steward")
}

fn serve_command(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let state_dir = args.state_dir.clone().unwrap_or_else(default_state_dir);
    let policy = match &args.policy {
        Some(p) => Policy::from_file(p)?,
        None => Policy::default(),
    };
    for w in policy.warnings() {
        tracing::warn!("policy: {w}");
    }
    let (ca, ca_path) = match (&args.ca_cert, &args.ca_key) {
        (Some(cert), Some(key)) => (CertificateAuthority::from_files(cert, key)?, cert.clone()),
        _ => {
            let (ca, generated) =
                CertificateAuthority::load_or_generate(&state_dir, "Moat Steward CA")?;
            if generated {
                tracing::info!("generated a new CA in {}", state_dir.display());
            }
            (ca, state_dir.join(CA_CERT_FILE))
        }
    };

    #[allow(unused_mut)]
    let mut verifier = moat_attest::Verifier::new();
    for (path, c) in collateral::load_all(&state_dir)? {
        tracing::info!("loaded collateral {}", path.display());
        verifier = verifier.with_collateral(c);
    }
    if let Some(root) = &args.test_only_amd_root {
        verifier = add_test_root(verifier, root)?;
    }
    let mut builder = StewardBuilder::new(ca, policy).verifier(verifier);
    if let Some(at) = &args.test_only_verify_at {
        let at = parse_time(at)?;
        tracing::warn!("TEST ONLY: verifying evidence as of {at:?}, not the clock");
        builder = builder.test_only_verify_at(at);
    }
    let steward = Arc::new(builder.build());

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let local = listener.local_addr()?;
        let tls = match (&args.tls_cert, &args.tls_key) {
            (Some(c), Some(k)) => {
                let (config, live) = tls_config_from_files(c, k)?;
                crate::tls_reload::reload_on_sighup("steward", c.clone(), k.clone(), live)?;
                config
            }
            _ => {
                let mut names = args.tls_names.clone();
                names.extend(["localhost".into(), "127.0.0.1".into(), "::1".into()]);
                if !local.ip().is_unspecified() {
                    names.push(local.ip().to_string());
                }
                names.sort();
                names.dedup();
                tls_config_from_ca(&steward, &names)?
            }
        };
        let url = match local {
            SocketAddr::V4(a) => format!("https://{a}"),
            SocketAddr::V6(a) => format!("https://[{}]:{}", a.ip(), a.port()),
        };
        if args.json {
            println!(
                "{}",
                serde_json::json!({"listening": url, "ca_cert": ca_path})
            );
        } else {
            eprintln!("listening on {url}");
        }
        let app = router(steward.clone(), ApiLimits::default());
        let limits = ConnLimits {
            max_connections: args.max_connections,
            ..ConnLimits::default()
        };
        serve(listener, tls, app, limits, steward, shutdown_signal()).await?;
        tracing::info!("shutting down");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Unix seconds or RFC 3339 (`2024-01-01T00:00:00Z`).
fn parse_time(s: &str) -> anyhow::Result<SystemTime> {
    if let Ok(secs) = s.parse::<u64>() {
        return Ok(UNIX_EPOCH + Duration::from_secs(secs));
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("{s:?} is neither Unix seconds nor RFC 3339"))?;
    let secs = u64::try_from(t.unix_timestamp()).context("time before 1970")?;
    Ok(UNIX_EPOCH + Duration::from_secs(secs))
}

fn add_test_root(
    verifier: moat_attest::Verifier,
    path: &Path,
) -> anyhow::Result<moat_attest::Verifier> {
    let pem = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let verifier = moat_steward::test_roots::trust_test_only_amd_root(verifier, &pem)?;
    tracing::warn!(
        "TEST ONLY: trusting the AMD root in {} (certificates will say test_only_root)",
        path.display()
    );
    Ok(verifier)
}
