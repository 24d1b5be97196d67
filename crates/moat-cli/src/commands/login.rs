//! `moat login HOST`: check a username and password (or registry token) against a registry and
//! store them in the user's credential file (`$MOAT_CONFIG_DIR/credentials.toml`, else
//! `$XDG_CONFIG_HOME/moat/credentials.toml`), created with mode 0600. `--remove` forgets them.

use std::io::Read as _;
use std::process::ExitCode;

use anyhow::Context as _;
use moat_client::auth::{CredentialStore, Credentials};
use moat_client::package::Reference;
use moat_client::registry::{ClientOptions, RegistryClient};

use super::package::RegistryOpts;

#[derive(clap::Args)]
#[command(after_help = "\
The password (a Drawbridge token works too) is read from standard input, never from the \
command line, so it stays out of shell history and process listings.

Examples:
  echo \"$TOKEN\" | moat login registry.example:5000 --username alice --password-stdin
  moat login registry.example:5000 --remove")]
pub struct LoginArgs {
    /// The registry: HOST[:PORT].
    #[arg(value_name = "HOST")]
    host: String,
    /// User name at the registry.
    #[arg(long, short = 'u', env = "MOAT_REGISTRY_USERNAME")]
    username: Option<String>,
    /// Read the password or token from standard input (its first line).
    #[arg(long)]
    password_stdin: bool,
    /// Store the credentials without checking them against the registry first.
    #[arg(long)]
    no_verify: bool,
    /// Forget the stored credentials for HOST instead (log out).
    #[arg(long, conflicts_with_all = ["username", "password_stdin", "no_verify"])]
    remove: bool,
    #[command(flatten)]
    registry: RegistryOpts,
}

pub fn run(args: LoginArgs) -> anyhow::Result<ExitCode> {
    // Validate HOST with the same grammar as references, so what is stored is what push uses.
    let registry = format!("{}/x", args.host)
        .parse::<Reference>()
        .with_context(|| format!("registry {:?}", args.host))?
        .registry()
        .to_owned();
    let store = CredentialStore::default_location()?;
    if args.remove {
        if store.remove(&registry)? {
            eprintln!(
                "removed credentials for {registry} from {}",
                store.path().display()
            );
        } else {
            eprintln!("no credentials stored for {registry}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let username = args
        .username
        .context("--username (or MOAT_REGISTRY_USERNAME) is required")?;
    if !args.password_stdin {
        anyhow::bail!("pass the password or token on standard input with --password-stdin");
    }
    let mut input = String::new();
    std::io::stdin()
        .take(64 * 1024)
        .read_to_string(&mut input)
        .context("reading the password from standard input")?;
    let password = input.lines().next().unwrap_or_default().to_owned();
    if password.is_empty() {
        anyhow::bail!("the password read from standard input is empty");
    }
    let credentials = Credentials { username, password };
    if !args.no_verify {
        let mut options = ClientOptions::new(args.registry.tls()?);
        options.credentials = Some(credentials.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime
            .block_on(async {
                let client = RegistryClient::new(&registry, options)?;
                client.ping().await
            })
            .with_context(|| format!("logging in to {registry}"))?;
    }
    store.set(&registry, credentials)?;
    eprintln!(
        "login succeeded; credentials for {registry} stored in {}",
        store.path().display()
    );
    Ok(ExitCode::SUCCESS)
}
