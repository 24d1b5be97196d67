//! The Steward's policy: which verified claims earn a certificate, for which workloads, and for
//! how long. Read from a TOML file whose unknown keys are errors (a misspelt rule must not
//! silently become "anything goes").
//!
//! moat-attest decides whether evidence is *genuine* (signatures, chains, dates, key binding);
//! this module decides whether genuine evidence is *acceptable* (measurements, TCB, debug,
//! platforms, workload names). Each refusal names the rule that failed (`snp.measurement`,
//! `tdx.tcb_status`, ...).
//!
//! Defaults are strict: SNP and TDX accepted, `nil` refused, no debug, no migration agent, TDX
//! TCB status `UpToDate` only, no advisories, no workload names (so nothing is certified until
//! the operator lists the workloads), certificates valid one hour.

use std::path::Path;
use std::time::Duration;

use moat_attest::{Claims, Platform, SnpTcb};
use serde::Deserialize;

use crate::error::{PolicyError, Rejection};

/// Default certificate lifetime.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// Longest certificate lifetime a policy may ask for: a certificate is the Keep's attestation
/// and must be renewed by attesting again.
pub const MAX_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
/// Default lifetime of a nonce from `GET /api/v1/nonce`.
pub const DEFAULT_NONCE_LIFETIME: Duration = Duration::from_secs(300);
/// Longest nonce lifetime (the replay cache keeps used nonces this long).
pub const MAX_NONCE_LIFETIME: Duration = Duration::from_secs(3600);

/// The whole policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// A name written into every attestation result (`accepted:<name>`).
    #[serde(default = "default_name")]
    pub name: String,
    /// Hardware platforms accepted (`snp`, `tdx`, `sgx`). `nil` may not be listed here: it is
    /// accepted only through `allow_insecure_nil`.
    #[serde(default = "default_platforms")]
    pub platforms: Vec<Platform>,
    /// Accept `nil` evidence (no hardware, nothing attested). Certificates issued for it say
    /// `attested: false`. For development only.
    #[serde(default)]
    pub allow_insecure_nil: bool,
    /// Require a nonce from this Steward in every request (freshness). Enarx's Keeps sent none.
    #[serde(default = "yes")]
    pub require_nonce: bool,
    /// How long a nonce stays valid, e.g. `"5m"`.
    #[serde(default, with = "opt_duration")]
    pub nonce_lifetime: Option<Duration>,
    /// Workload names (URI SANs) that may be certified; `*` matches within one path segment
    /// (no `/`), `**` matches anything.
    #[serde(default)]
    pub workloads: Vec<String>,
    /// Certify requests that name no workload (Enarx's CSRs name none). The certificate then
    /// carries no URI SAN, so Drawbridge releases nothing to it.
    #[serde(default)]
    pub allow_unnamed_workload: bool,
    /// DNS names and IP addresses a Keep may have in its certificate (so browsers and `curl`
    /// can check it against the address they dialled). Exact names, `*.example.com` (one more
    /// label), or `*` (any: only for a Steward whose CA nobody trusts for other names).
    /// Default: loopback only.
    #[serde(default = "default_server_names")]
    pub server_names: Vec<String>,
    /// Certificate lifetime, e.g. `"1h"`, `"30m"`, `"2d"` (at most 30 days).
    #[serde(default, with = "opt_duration")]
    pub certificate_lifetime: Option<Duration>,
    #[serde(default)]
    pub snp: SnpPolicy,
    #[serde(default)]
    pub tdx: TdxPolicy,
    #[serde(default)]
    pub sgx: SgxPolicy,
}

/// SEV-SNP rules.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnpPolicy {
    /// Allowed launch measurements (hex, 48 bytes). Absent: any measurement.
    pub measurements: Option<Vec<String>>,
    /// Minimum reported TCB, per component.
    pub min_tcb: Option<MinSnpTcb>,
    /// Accept guests whose policy allows debugging. Default false.
    #[serde(default)]
    pub allow_debug: bool,
    /// Accept guests that may have a migration agent. Default false.
    #[serde(default)]
    pub allow_migration_agent: bool,
    /// Lowest report version accepted (2, 3, ...). Default 2.
    pub min_report_version: Option<u32>,
    /// Highest VMPL the report may come from. Absent: any.
    pub max_vmpl: Option<u32>,
    /// Allowed ID key digests (hex). Absent: any.
    pub id_key_digests: Option<Vec<String>>,
    /// Allowed `host_data` values (hex). Absent: any.
    pub host_data: Option<Vec<String>>,
}

/// Minimum SNP TCB component levels.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinSnpTcb {
    #[serde(default)]
    pub bootloader: u8,
    #[serde(default)]
    pub tee: u8,
    #[serde(default)]
    pub snp: u8,
    #[serde(default)]
    pub microcode: u8,
    #[serde(default)]
    pub fmc: Option<u8>,
}

/// One allowed TDX measurement set: MRTD and, optionally, RTMRs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TdxMeasurement {
    pub mrtd: String,
    pub rtmr0: Option<String>,
    pub rtmr1: Option<String>,
    pub rtmr2: Option<String>,
    pub rtmr3: Option<String>,
}

/// Intel TDX rules.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TdxPolicy {
    /// Allowed measurement sets. Absent: any.
    pub measurements: Option<Vec<TdxMeasurement>>,
    /// Accepted TCB statuses. Default `["UpToDate"]`.
    #[serde(default = "up_to_date")]
    pub tcb_statuses: Vec<String>,
    /// Advisories (`INTEL-SA-...`) that may apply. Default none.
    #[serde(default)]
    pub advisories: Vec<String>,
    #[serde(default)]
    pub allow_debug: bool,
    /// Accept migratable TDs. Default false.
    #[serde(default)]
    pub allow_migration_agent: bool,
}

impl Default for TdxPolicy {
    fn default() -> Self {
        TdxPolicy {
            measurements: None,
            tcb_statuses: up_to_date(),
            advisories: Vec::new(),
            allow_debug: false,
            allow_migration_agent: false,
        }
    }
}

/// Intel SGX rules (for Enarx's SGX requests).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SgxPolicy {
    pub mr_enclaves: Option<Vec<String>>,
    pub mr_signers: Option<Vec<String>>,
    #[serde(default = "up_to_date")]
    pub tcb_statuses: Vec<String>,
    #[serde(default)]
    pub advisories: Vec<String>,
}

impl Default for SgxPolicy {
    fn default() -> Self {
        SgxPolicy {
            mr_enclaves: None,
            mr_signers: None,
            tcb_statuses: up_to_date(),
            advisories: Vec::new(),
        }
    }
}

fn default_name() -> String {
    "default".into()
}
fn default_platforms() -> Vec<Platform> {
    vec![Platform::Snp, Platform::Tdx]
}
fn yes() -> bool {
    true
}
fn up_to_date() -> Vec<String> {
    vec!["UpToDate".into()]
}

impl Default for Policy {
    fn default() -> Self {
        toml::from_str("").expect("the empty policy parses")
    }
}

impl Policy {
    /// Parses and validates a policy document.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let policy: Policy = toml::from_str(text).map_err(|e| PolicyError::Parse(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    /// Reads a policy file.
    pub fn from_file(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text)
    }

    fn validate(&self) -> Result<(), PolicyError> {
        let invalid = |m: String| Err(PolicyError::Invalid(m));
        if self.platforms.contains(&Platform::Nil) {
            return invalid(
                "`nil` cannot be listed in `platforms`; set `allow_insecure_nil = true` to \
                 accept unattested Keeps"
                    .into(),
            );
        }
        if let Some(l) = self.certificate_lifetime
            && (l > MAX_LIFETIME || l < Duration::from_secs(60))
        {
            return invalid(format!(
                "certificate_lifetime must be between 1m and {}d",
                MAX_LIFETIME.as_secs() / 86400
            ));
        }
        if let Some(l) = self.nonce_lifetime
            && (l > MAX_NONCE_LIFETIME || l < Duration::from_secs(10))
        {
            return invalid("nonce_lifetime must be between 10s and 1h".into());
        }
        for w in &self.workloads {
            if w.is_empty() || w.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return invalid(format!("workload pattern {w:?} is empty or has whitespace"));
            }
        }
        let hex_list = |what: &str, list: &Option<Vec<String>>, len: usize| {
            for m in list.iter().flatten() {
                check_hex(what, m, len)?;
            }
            Ok::<_, PolicyError>(())
        };
        hex_list("snp.measurements", &self.snp.measurements, 48)?;
        hex_list("snp.id_key_digests", &self.snp.id_key_digests, 48)?;
        hex_list("snp.host_data", &self.snp.host_data, 32)?;
        hex_list("sgx.mr_enclaves", &self.sgx.mr_enclaves, 32)?;
        hex_list("sgx.mr_signers", &self.sgx.mr_signers, 32)?;
        for m in self.tdx.measurements.iter().flatten() {
            check_hex("tdx.measurements.mrtd", &m.mrtd, 48)?;
            for r in [&m.rtmr0, &m.rtmr1, &m.rtmr2, &m.rtmr3]
                .into_iter()
                .flatten()
            {
                check_hex("tdx.measurements.rtmr", r, 48)?;
            }
        }
        Ok(())
    }

    /// Certificate lifetime in force.
    pub fn lifetime(&self) -> Duration {
        self.certificate_lifetime.unwrap_or(DEFAULT_LIFETIME)
    }

    /// Nonce lifetime in force.
    pub fn nonce_lifetime(&self) -> Duration {
        self.nonce_lifetime.unwrap_or(DEFAULT_NONCE_LIFETIME)
    }

    /// Whether evidence of this platform is accepted at all.
    pub fn accepts_platform(&self, platform: Platform) -> bool {
        match platform {
            Platform::Nil => self.allow_insecure_nil,
            p => self.platforms.contains(&p),
        }
    }

    /// True when some platform's verifier must accept debug guests (so that the policy, not
    /// the verifier, decides per platform).
    pub fn any_debug_allowed(&self) -> bool {
        self.snp.allow_debug || self.tdx.allow_debug
    }

    /// Warnings for a policy that is valid but loose (shown by `moat steward policy check` and
    /// logged at start).
    pub fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.allow_insecure_nil {
            w.push("allow_insecure_nil: unattested (nil) Keeps get certificates".into());
        }
        if self.platforms.contains(&Platform::Snp) && self.snp.measurements.is_none() {
            w.push("snp.measurements is absent: any SNP launch measurement is accepted".into());
        }
        if self.platforms.contains(&Platform::Tdx) && self.tdx.measurements.is_none() {
            w.push("tdx.measurements is absent: any TD measurement is accepted".into());
        }
        if self.workloads.is_empty() && !self.allow_unnamed_workload {
            w.push("workloads is empty: no certificate will be issued".into());
        }
        if !self.require_nonce {
            w.push("require_nonce = false: evidence freshness is not checked".into());
        }
        if self.snp.allow_debug || self.tdx.allow_debug {
            w.push("debug guests are accepted".into());
        }
        w
    }

    /// Checks verified claims against the platform rules.
    pub fn check_claims(&self, claims: &Claims) -> Result<(), Rejection> {
        if !self.accepts_platform(claims.platform) {
            return Err(Rejection::PlatformNotAccepted(claims.platform));
        }
        match claims.platform {
            Platform::Nil => {
                // moat-attest never marks nil attested; refuse anything that says otherwise.
                if claims.attested {
                    return refuse("nil.attested", "nil evidence claims to be attested".into());
                }
                Ok(())
            }
            Platform::Snp => self.check_snp(claims),
            Platform::Tdx => self.check_tdx(claims),
            Platform::Sgx => self.check_sgx(claims),
        }
    }

    fn check_snp(&self, claims: &Claims) -> Result<(), Rejection> {
        let p = &self.snp;
        let Some(snp) = &claims.snp else {
            return refuse("snp.claims", "no SNP claims".into());
        };
        require_attested(claims)?;
        if claims.debug && !p.allow_debug {
            return refuse("snp.debug", "the guest policy allows debugging".into());
        }
        if claims.migration_agent && !p.allow_migration_agent {
            return refuse(
                "snp.migration_agent",
                "the guest policy allows a migration agent".into(),
            );
        }
        let min_version = p.min_report_version.unwrap_or(2);
        if snp.report_version < min_version {
            return refuse(
                "snp.report_version",
                format!("report version {} < {min_version}", snp.report_version),
            );
        }
        if let Some(max) = p.max_vmpl
            && snp.vmpl > max
        {
            return refuse("snp.vmpl", format!("VMPL {} > {max}", snp.vmpl));
        }
        if let Some(list) = &p.measurements {
            in_list("snp.measurement", claims.measurement.as_deref(), list)?;
        }
        if let Some(list) = &p.id_key_digests {
            in_list("snp.id_key_digest", Some(&snp.id_key_digest), list)?;
        }
        if let Some(list) = &p.host_data {
            in_list("snp.host_data", Some(&snp.host_data), list)?;
        }
        if let Some(min) = &p.min_tcb {
            check_min_tcb(&snp.reported_tcb, min)?;
        }
        Ok(())
    }

    fn check_tdx(&self, claims: &Claims) -> Result<(), Rejection> {
        let p = &self.tdx;
        let Some(tdx) = &claims.tdx else {
            return refuse("tdx.claims", "no TDX claims".into());
        };
        require_attested(claims)?;
        if claims.debug && !p.allow_debug {
            return refuse("tdx.debug", "the TD has the DEBUG attribute".into());
        }
        if claims.migration_agent && !p.allow_migration_agent {
            return refuse("tdx.migration_agent", "the TD is migratable".into());
        }
        check_tcb_status("tdx", claims, &p.tcb_statuses, &p.advisories)?;
        if let Some(sets) = &p.measurements {
            let eq = |want: &Option<String>, got: &str| {
                want.as_ref().is_none_or(|w| w.eq_ignore_ascii_case(got))
            };
            let ok = sets.iter().any(|m| {
                m.mrtd.eq_ignore_ascii_case(&tdx.mrtd)
                    && eq(&m.rtmr0, &tdx.rtmrs[0])
                    && eq(&m.rtmr1, &tdx.rtmrs[1])
                    && eq(&m.rtmr2, &tdx.rtmrs[2])
                    && eq(&m.rtmr3, &tdx.rtmrs[3])
            });
            if !ok {
                return refuse(
                    "tdx.measurement",
                    format!(
                        "MRTD {} with its RTMRs is not in the allowed list",
                        tdx.mrtd
                    ),
                );
            }
        }
        Ok(())
    }

    fn check_sgx(&self, claims: &Claims) -> Result<(), Rejection> {
        let p = &self.sgx;
        let Some(sgx) = &claims.sgx else {
            return refuse("sgx.claims", "no SGX claims".into());
        };
        require_attested(claims)?;
        if claims.debug {
            return refuse("sgx.debug", "the enclave has the DEBUG attribute".into());
        }
        check_tcb_status("sgx", claims, &p.tcb_statuses, &p.advisories)?;
        if let Some(list) = &p.mr_enclaves {
            in_list("sgx.mr_enclave", Some(&sgx.mr_enclave), list)?;
        }
        if let Some(list) = &p.mr_signers {
            in_list("sgx.mr_signer", Some(&sgx.mr_signer), list)?;
        }
        Ok(())
    }

    /// Checks the DNS names and IP addresses a CSR asks for; returns them as they will be
    /// certified.
    pub fn check_server_names(
        &self,
        dns_names: &[String],
        ips: &[std::net::IpAddr],
    ) -> Result<Vec<String>, Rejection> {
        const MAX_NAMES: usize = 32;
        if dns_names.len() + ips.len() > MAX_NAMES {
            return Err(Rejection::Policy {
                check: "policy.server_name",
                detail: format!("more than {MAX_NAMES} names requested"),
            });
        }
        let requested = dns_names
            .iter()
            .map(|d| d.to_ascii_lowercase())
            .chain(ips.iter().map(|ip| ip.to_string()));
        let mut names = Vec::new();
        for name in requested {
            if !self
                .server_names
                .iter()
                .any(|p| server_name_match(p, &name))
            {
                return Err(Rejection::Policy {
                    check: "policy.server_name",
                    detail: format!(
                        "{} is not in the policy's server_names",
                        name.chars().take(256).collect::<String>()
                    ),
                });
            }
            if !names.contains(&name) {
                names.push(name);
            }
        }
        Ok(names)
    }

    /// Checks the workload names a CSR asks for; returns the one to certify.
    pub fn check_workload<'a>(&self, uris: &'a [String]) -> Result<Option<&'a str>, Rejection> {
        match uris {
            [] if self.allow_unnamed_workload => Ok(None),
            [] => Err(Rejection::WorkloadMissing),
            [one] => {
                if self.workloads.iter().any(|p| glob_match(p, one)) {
                    Ok(Some(one))
                } else {
                    Err(Rejection::WorkloadNotAllowed(
                        one.chars().take(256).collect(),
                    ))
                }
            }
            _ => Err(Rejection::WorkloadAmbiguous),
        }
    }
}

fn refuse(check: &'static str, detail: String) -> Result<(), Rejection> {
    Err(Rejection::Policy { check, detail })
}

fn require_attested(claims: &Claims) -> Result<(), Rejection> {
    if claims.attested {
        Ok(())
    } else {
        refuse("attested", "the evidence is not attested".into())
    }
}

fn in_list(check: &'static str, got: Option<&str>, list: &[String]) -> Result<(), Rejection> {
    match got {
        Some(v) if list.iter().any(|m| m.eq_ignore_ascii_case(v)) => Ok(()),
        Some(v) => refuse(check, format!("{v} is not in the allowed list")),
        None => refuse(check, "no value to compare with the allowed list".into()),
    }
}

fn check_min_tcb(got: &SnpTcb, min: &MinSnpTcb) -> Result<(), Rejection> {
    let parts = [
        ("bootloader", got.bootloader, min.bootloader),
        ("tee", got.tee, min.tee),
        ("snp", got.snp, min.snp),
        ("microcode", got.microcode, min.microcode),
    ];
    for (name, have, want) in parts {
        if have < want {
            return refuse("snp.min_tcb", format!("{name} SPL {have} < {want}"));
        }
    }
    if let Some(want) = min.fmc {
        match got.fmc {
            Some(have) if have >= want => {}
            have => {
                return refuse("snp.min_tcb", format!("fmc SPL {have:?} < {want}"));
            }
        }
    }
    Ok(())
}

fn check_tcb_status(
    platform: &'static str,
    claims: &Claims,
    statuses: &[String],
    advisories: &[String],
) -> Result<(), Rejection> {
    let (status_check, advisory_check) = match platform {
        "tdx" => ("tdx.tcb_status", "tdx.advisories"),
        _ => ("sgx.tcb_status", "sgx.advisories"),
    };
    let status = claims.tcb_status.as_deref().unwrap_or("");
    if !statuses.iter().any(|s| s == status) {
        return refuse(
            status_check,
            format!("TCB status {status:?} is not one of {statuses:?}"),
        );
    }
    for a in &claims.advisories {
        if !advisories.iter().any(|x| x.eq_ignore_ascii_case(a)) {
            return refuse(advisory_check, format!("advisory {a} is not accepted"));
        }
    }
    Ok(())
}

fn check_hex(what: &str, value: &str, len: usize) -> Result<(), PolicyError> {
    match hex::decode(value) {
        Ok(b) if b.len() == len => Ok(()),
        _ => Err(PolicyError::Invalid(format!(
            "{what}: {value:?} is not {len} bytes of hex"
        ))),
    }
}

/// Matches `name` against `pattern`: `*` matches any run of characters other than `/`, `**`
/// any run at all. Everything else matches itself (case-sensitively).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    fn go(p: &[u8], n: &[u8]) -> bool {
        match p {
            [] => n.is_empty(),
            [b'*', b'*', rest @ ..] => (0..=n.len()).any(|i| go(rest, &n[i..])),
            [b'*', rest @ ..] => {
                for i in 0..=n.len() {
                    if go(rest, &n[i..]) {
                        return true;
                    }
                    if i < n.len() && n[i] == b'/' {
                        return false;
                    }
                }
                false
            }
            [c, rest @ ..] => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    // Bound the work: patterns and names are short, but a name comes from the network.
    name.len() <= 2048 && go(pattern.as_bytes(), name.as_bytes())
}

/// Parses `"90s"`, `"5m"`, `"1h"`, `"2d"` or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let mult = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        _ => return Err(format!("bad duration unit in {s:?} (use s, m, h or d)")),
    };
    n.checked_mul(mult)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("duration {s:?} is too large"))
}

mod opt_duration {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Text(String),
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Secs(s) => Ok(Some(Duration::from_secs(s))),
            Raw::Text(t) => super::parse_duration(&t)
                .map(Some)
                .map_err(serde::de::Error::custom),
        }
    }
}

fn default_server_names() -> Vec<String> {
    ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec()
}

/// `pattern` is an exact name (case-insensitive; IP addresses in their usual text form),
/// `*.suffix` (exactly one more DNS label), or `*`.
fn server_name_match(pattern: &str, name: &str) -> bool {
    if pattern == "*" {
        return true;
    }
    if let Some(suffix) = pattern.strip_prefix("*.") {
        return name
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest.eq_ignore_ascii_case(suffix));
    }
    match (
        pattern.parse::<std::net::IpAddr>(),
        name.parse::<std::net::IpAddr>(),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => pattern.eq_ignore_ascii_case(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_strict() {
        let p = Policy::default();
        assert!(!p.accepts_platform(Platform::Nil));
        assert!(p.accepts_platform(Platform::Snp));
        assert!(p.require_nonce);
        assert_eq!(p.lifetime(), DEFAULT_LIFETIME);
        assert!(!p.snp.allow_debug && !p.snp.allow_migration_agent);
        assert_eq!(p.tdx.tcb_statuses, vec!["UpToDate"]);
        assert!(matches!(
            p.check_workload(&["moat:local:00".into()]),
            Err(Rejection::WorkloadNotAllowed(_))
        ));
        assert!(matches!(
            p.check_workload(&[]),
            Err(Rejection::WorkloadMissing)
        ));
    }

    #[test]
    fn unknown_keys_are_errors() {
        assert!(Policy::from_toml("allow_nil = true").is_err());
        assert!(Policy::from_toml("[snp]\nallow_debugging = true").is_err());
    }

    #[test]
    fn nil_must_be_explicit() {
        assert!(Policy::from_toml("platforms = [\"nil\"]").is_err());
        let p = Policy::from_toml("allow_insecure_nil = true").unwrap();
        assert!(p.accepts_platform(Platform::Nil));
    }

    #[test]
    fn lifetimes_are_bounded() {
        assert!(Policy::from_toml("certificate_lifetime = \"31d\"").is_err());
        assert!(Policy::from_toml("certificate_lifetime = \"10s\"").is_err());
        let p = Policy::from_toml("certificate_lifetime = \"2h\"").unwrap();
        assert_eq!(p.lifetime(), Duration::from_secs(7200));
        let p = Policy::from_toml("certificate_lifetime = 600").unwrap();
        assert_eq!(p.lifetime(), Duration::from_secs(600));
    }

    #[test]
    fn bad_hex_is_an_error() {
        assert!(Policy::from_toml("[snp]\nmeasurements = [\"abc\"]").is_err());
    }

    #[test]
    fn globs() {
        assert!(glob_match(
            "oci://127.0.0.1:*/demo/*",
            "oci://127.0.0.1:5000/demo/app"
        ));
        assert!(!glob_match(
            "oci://127.0.0.1:*/demo/*",
            "oci://127.0.0.1:5000/x/demo/app"
        ));
        assert!(!glob_match(
            "oci://127.0.0.1:*/demo/*",
            "oci://127.0.0.1:5000/demo/app/more"
        ));
        assert!(glob_match("oci://**", "oci://h/a/b/c"));
        assert!(glob_match("moat:local:*", "moat:local:abcd"));
        assert!(!glob_match("moat:local:*", "moat:local:ab/cd"));
        assert!(!glob_match("exact", "exact2"));
        assert!(glob_match("exact", "exact"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert!(parse_duration("5y").is_err());
        assert!(parse_duration("h").is_err());
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
