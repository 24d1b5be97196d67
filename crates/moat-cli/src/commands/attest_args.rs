//! The attestation flags `moat run` and `moat deploy` share: which Steward, which CA to trust
//! for it, which evidence to produce, and which names to ask for. One definition, so the two
//! commands cannot drift apart in names, environment variables or defaults.

use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct AttestArgs {
    /// The Steward to attest to (https URL; overrides the config's `steward`). Without one,
    /// `moat run` presents a fresh self-signed certificate.
    #[arg(long, env = "MOAT_STEWARD", value_name = "URL")]
    pub steward: Option<String>,

    /// PEM file of the Steward's CA certificate: the only root trusted for the Steward.
    #[arg(long, env = "MOAT_STEWARD_CA", value_name = "FILE")]
    pub steward_ca: Option<PathBuf>,

    /// Which evidence the Keep produces: snp, tdx, or nil (no hardware: the certificate says
    /// "not attested", and only a Steward policy allowing nil certifies it). Default: the best
    /// hardware source this machine has; without one attestation stops (never a silent nil).
    #[arg(long, env = "MOAT_PLATFORM", value_name = "PLATFORM")]
    pub platform: Option<moat_attest::Platform>,

    /// configfs-tsm report directory the evidence comes from (tests point it at a fake one).
    #[arg(long, env = "MOAT_TSM_PATH", value_name = "DIR")]
    pub tsm_path: Option<PathBuf>,

    /// Another DNS name or IP address for the Keep's certificate (repeatable; `localhost` and
    /// the loopback addresses are always included). A Steward certifies only what its policy's
    /// `server_names` allows.
    #[arg(
        long = "server-name",
        env = "MOAT_SERVER_NAMES",
        value_delimiter = ',',
        value_name = "NAME"
    )]
    pub server_names: Vec<String>,
}

impl AttestArgs {
    /// Where and how to attest, if a Steward is named (here or by `config_url`).
    pub fn steward(
        &self,
        config_url: Option<&str>,
    ) -> Result<Option<moat_keep::attested::StewardSettings>, moat_keep::attested::AttestedError>
    {
        moat_keep::attested::StewardSettings::resolve(
            config_url,
            self.steward.as_deref(),
            self.steward_ca.as_deref(),
            self.platform,
            self.tsm_path.as_deref(),
        )
    }

    /// `base` plus the `--server-name`s, each once.
    pub fn server_names(&self, mut base: Vec<String>) -> Vec<String> {
        for name in &self.server_names {
            if !base.contains(name) {
                base.push(name.clone());
            }
        }
        base
    }
}
