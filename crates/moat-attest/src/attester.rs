//! The Keep's side: collecting evidence from this machine, and saying which platform it is.
//!
//! Sources, in order of preference:
//! - **configfs-tsm** (Linux 6.7+, `Documentation/ABI/testing/configfs-tsm-report`): one
//!   interface for SNP and TDX. `mkdir <base>/<entry>`, read `provider`, optionally write
//!   `privlevel`, read `generation`, write 64 bytes to `inblob`, read `outblob` (report or
//!   quote) and `auxblob` (SNP: the host's certificate table), check `generation` advanced by
//!   exactly one (else another writer raced us), `rmdir`. The base path is configurable, so tests
//!   point it at a directory a fake provider fills in ([`crate::test_roots::FakeTsm`]).
//! - **`/dev/sev-guest`** (SNP fallback on older kernels) through the `sev` crate's
//!   `SNP_GET_EXT_REPORT` wrapper.
//! - **nil**: no hardware; evidence that says "unattested" and nothing more.
//!
//! Reads and waits are bounded: a configfs entry that never fills in is an error, not a hang.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::evidence::{Evidence, MAX_QUOTE_LEN, QuoteEvidence, SNP_REPORT_LEN, SnpEvidence};
use crate::{Error, Platform};

/// Where configfs-tsm lives on Linux.
pub const DEFAULT_TSM_BASE: &str = "/sys/kernel/config/tsm/report";
/// The SNP guest device.
pub const DEFAULT_SEV_GUEST: &str = "/dev/sev-guest";
/// The TDX guest device (local TDREPORT only; quotes need configfs-tsm).
pub const TDX_GUEST: &str = "/dev/tdx_guest";
/// How long to wait for a configfs-tsm entry to produce its blob. The kernel answers
/// synchronously; the wait matters only for providers that are not the kernel (tests).
const TSM_WAIT: Duration = Duration::from_secs(10);
/// Largest auxblob read (SNP certificate tables are a few KiB).
const MAX_AUXBLOB: usize = 64 * 1024;

/// Where to look for evidence sources.
#[derive(Clone, Debug)]
pub struct AttesterConfig {
    /// configfs-tsm report directory (`MOAT_TSM_PATH` in the CLI).
    pub tsm_base: PathBuf,
    /// The SNP guest device.
    pub sev_guest: PathBuf,
    /// SNP VMPL to request (`privlevel`), if not the default.
    pub vmpl: Option<u32>,
}

impl Default for AttesterConfig {
    fn default() -> Self {
        AttesterConfig {
            tsm_base: DEFAULT_TSM_BASE.into(),
            sev_guest: DEFAULT_SEV_GUEST.into(),
            vmpl: None,
        }
    }
}

/// A source of evidence on this machine.
#[derive(Clone, Debug)]
pub enum Attester {
    /// No hardware evidence.
    Nil,
    /// configfs-tsm with the given provider's platform.
    ConfigfsTsm {
        base: PathBuf,
        platform: Platform,
        vmpl: Option<u32>,
    },
    /// `/dev/sev-guest` ioctls.
    SevGuest { device: PathBuf, vmpl: Option<u32> },
}

impl Attester {
    /// The best hardware source available, or why there is none (the `platform info` report).
    pub fn detect(config: &AttesterConfig) -> Result<Attester, PlatformReport> {
        let report = PlatformReport::probe(config);
        match report.best.clone() {
            Some(a) => Ok(a),
            None => Err(report),
        }
    }

    /// A source for this platform: `nil` always works; `snp` prefers configfs-tsm and falls back
    /// to `/dev/sev-guest`; `tdx` needs configfs-tsm.
    pub fn for_platform(platform: Platform, config: &AttesterConfig) -> Result<Attester, Error> {
        if platform == Platform::Nil {
            return Ok(Attester::Nil);
        }
        let report = PlatformReport::probe(config);
        let tsm = report
            .sources
            .iter()
            .find(|s| s.name == "configfs-tsm" && s.available && s.platform == Some(platform));
        if tsm.is_some() {
            return Ok(Attester::ConfigfsTsm {
                base: config.tsm_base.clone(),
                platform,
                vmpl: config.vmpl,
            });
        }
        if platform == Platform::Snp
            && report
                .sources
                .iter()
                .any(|s| s.name == "sev-guest" && s.available)
        {
            return Ok(Attester::SevGuest {
                device: config.sev_guest.clone(),
                vmpl: config.vmpl,
            });
        }
        let reasons: Vec<String> = report
            .sources
            .iter()
            .filter(|s| !s.available)
            .filter_map(|s| s.reason.as_ref().map(|r| format!("{}: {r}", s.name)))
            .collect();
        Err(Error::Attester(format!(
            "this machine cannot produce {platform} evidence ({})",
            reasons.join("; ")
        )))
    }

    pub fn platform(&self) -> Platform {
        match self {
            Attester::Nil => Platform::Nil,
            Attester::ConfigfsTsm { platform, .. } => *platform,
            Attester::SevGuest { .. } => Platform::Snp,
        }
    }

    /// Collect evidence whose `report_data` is `report_data`.
    pub fn collect(&self, report_data: &[u8; 64]) -> Result<Evidence, Error> {
        match self {
            Attester::Nil => Ok(Evidence::nil(*report_data)),
            Attester::ConfigfsTsm {
                base,
                platform,
                vmpl,
            } => tsm_collect(base, *platform, *vmpl, report_data),
            Attester::SevGuest { device, vmpl } => sev_guest_collect(device, *vmpl, report_data),
        }
    }
}

fn io_err(what: &str, path: &Path, e: std::io::Error) -> Error {
    Error::Attester(format!("{what} {}: {e}", path.display()))
}

fn provider_platform(provider: &str) -> Option<Platform> {
    match provider.trim() {
        "sev_guest" => Some(Platform::Snp),
        "tdx_guest" => Some(Platform::Tdx),
        _ => None,
    }
}

/// Removes the configfs entry when dropped, so an error midway leaves nothing behind.
struct TsmEntry(PathBuf);

impl Drop for TsmEntry {
    fn drop(&mut self) {
        // configfs removes the attribute files with the directory; a plain directory (tests)
        // needs them removed first.
        if std::fs::remove_dir(&self.0).is_err() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

fn new_entry(base: &Path) -> Result<TsmEntry, Error> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let name = format!(
        "moat-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let path = base.join(name);
    std::fs::create_dir(&path).map_err(|e| io_err("cannot create configfs-tsm entry", &path, e))?;
    Ok(TsmEntry(path))
}

/// Wait (bounded) for an attribute to exist and be non-empty, then read it.
fn wait_read(path: &Path, limit: usize, deadline: Instant) -> Result<Vec<u8>, Error> {
    loop {
        match read_limited(path, limit) {
            Ok(bytes) if !bytes.is_empty() => return Ok(bytes),
            Ok(_) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("cannot read", path, e)),
        }
        if Instant::now() >= deadline {
            return Err(Error::Attester(format!(
                "{} stayed empty for {TSM_WAIT:?}",
                path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn read_limited(path: &Path, limit: usize) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut out = Vec::new();
    std::fs::File::open(path)?
        .take(limit as u64 + 1)
        .read_to_end(&mut out)?;
    if out.len() > limit {
        return Err(std::io::Error::new(
            ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(out)
}

fn read_generation(path: &Path, deadline: Instant) -> Result<u64, Error> {
    let raw = wait_read(path, 32, deadline)?;
    String::from_utf8_lossy(&raw)
        .trim()
        .parse()
        .map_err(|_| Error::Attester(format!("{} is not a number", path.display())))
}

fn tsm_collect(
    base: &Path,
    platform: Platform,
    vmpl: Option<u32>,
    report_data: &[u8; 64],
) -> Result<Evidence, Error> {
    let entry = new_entry(base)?;
    let dir = &entry.0;
    let deadline = Instant::now() + TSM_WAIT;
    let provider = wait_read(&dir.join("provider"), 64, deadline)?;
    let provider = String::from_utf8_lossy(&provider).trim().to_owned();
    if provider_platform(&provider) != Some(platform) {
        return Err(Error::Attester(format!(
            "configfs-tsm provider is `{provider}`, not the {platform} provider"
        )));
    }
    if let (Some(level), Platform::Snp) = (vmpl, platform) {
        let p = dir.join("privlevel");
        std::fs::write(&p, level.to_string()).map_err(|e| io_err("cannot write", &p, e))?;
    }
    let generation = dir.join("generation");
    let before = read_generation(&generation, deadline)?;
    let inblob = dir.join("inblob");
    std::fs::write(&inblob, report_data).map_err(|e| io_err("cannot write", &inblob, e))?;
    // The kernel bumps `generation` on every inblob write; a fake provider bumps it once the
    // outblob is ready. Either way, exactly one more than before means nobody else wrote.
    let mut after = read_generation(&generation, deadline)?;
    while after == before && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
        after = read_generation(&generation, deadline)?;
    }
    let limit = if platform == Platform::Snp {
        SNP_REPORT_LEN
    } else {
        MAX_QUOTE_LEN
    };
    let outblob = wait_read(&dir.join("outblob"), limit, deadline)?;
    let final_generation = read_generation(&generation, deadline)?;
    if after != before + 1 || final_generation != after {
        return Err(Error::Attester(format!(
            "configfs-tsm entry {} was written concurrently (generation {before} -> {after} -> {final_generation})",
            dir.display()
        )));
    }
    let evidence = match platform {
        Platform::Snp => {
            let aux = match read_limited(&dir.join("auxblob"), MAX_AUXBLOB) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
                Err(e) => return Err(io_err("cannot read", &dir.join("auxblob"), e)),
            };
            Evidence::Snp(SnpEvidence {
                report: outblob,
                vek: vek_from_cert_table(&aux)?,
                crls: Vec::new(),
            })
        }
        Platform::Tdx => Evidence::Tdx(QuoteEvidence { quote: outblob }),
        other => {
            return Err(Error::Attester(format!(
                "configfs-tsm does not produce {other} evidence"
            )));
        }
    };
    drop(entry);
    evidence.check_structure()?;
    Ok(evidence)
}

/// GUIDs of the SNP certificate table (GHCB spec), as RFC 4122 strings.
const GUID_VCEK: &str = "63da758d-e664-4564-adc5-f4b93be8accd";
const GUID_VLEK: &str = "a8074bc2-a25a-483e-aae6-39c045a0b8a1";

fn guid_forms(s: &str) -> ([u8; 16], [u8; 16]) {
    let hexs: String = s.chars().filter(|c| *c != '-').collect();
    let rfc: [u8; 16] = hex::decode(hexs)
        .expect("constant GUID")
        .try_into()
        .expect("16 bytes");
    let mut mixed = rfc;
    mixed[0..4].reverse();
    mixed[4..6].reverse();
    mixed[6..8].reverse();
    (rfc, mixed)
}

/// Find the VCEK (or VLEK) in an SNP certificate table: entries of
/// `{ guid[16], offset u32, length u32 }` ending with an all-zero entry; offsets are from the
/// table start. Hosts write GUIDs in either byte order, so both are accepted.
pub fn vek_from_cert_table(table: &[u8]) -> Result<Option<Vec<u8>>, Error> {
    const WHAT: &str = "SNP certificate table";
    let (vcek_a, vcek_b) = guid_forms(GUID_VCEK);
    let (vlek_a, vlek_b) = guid_forms(GUID_VLEK);
    let mut found = None;
    for (i, entry) in table.chunks(24).enumerate() {
        if entry.len() < 24 {
            return Err(Error::malformed(WHAT, "truncated entry"));
        }
        let guid: [u8; 16] = entry[..16].try_into().expect("16 bytes");
        if guid == [0; 16] {
            return Ok(found);
        }
        if i > 64 {
            return Err(Error::malformed(WHAT, "too many entries"));
        }
        let offset = u32::from_le_bytes(entry[16..20].try_into().expect("4")) as usize;
        let len = u32::from_le_bytes(entry[20..24].try_into().expect("4")) as usize;
        let data = offset
            .checked_add(len)
            .and_then(|end| table.get(offset..end))
            .ok_or_else(|| Error::malformed(WHAT, "entry points outside the table"))?;
        if guid == vcek_a || guid == vcek_b || guid == vlek_a || guid == vlek_b {
            found = Some(data.to_vec());
        }
    }
    if table.is_empty() {
        Ok(None)
    } else {
        Err(Error::malformed(WHAT, "no terminating entry"))
    }
}

#[cfg(target_os = "linux")]
fn sev_guest_collect(
    device: &Path,
    vmpl: Option<u32>,
    report_data: &[u8; 64],
) -> Result<Evidence, Error> {
    if device != Path::new(DEFAULT_SEV_GUEST) {
        return Err(Error::Attester(format!(
            "the sev crate opens {DEFAULT_SEV_GUEST} only, not {}",
            device.display()
        )));
    }
    let mut fw =
        sev::firmware::guest::Firmware::open().map_err(|e| io_err("cannot open", device, e))?;
    let (report, certs) = fw
        .get_ext_report(None, Some(*report_data), Some(vmpl.unwrap_or(0)))
        .map_err(|e| Error::Attester(format!("SNP_GET_EXT_REPORT failed: {e}")))?;
    use sev::firmware::host::CertType;
    let vek = certs
        .unwrap_or_default()
        .into_iter()
        .find_map(|c| matches!(c.cert_type, CertType::VCEK | CertType::VLEK).then_some(c.data));
    let evidence = Evidence::Snp(SnpEvidence {
        report,
        vek,
        crls: Vec::new(),
    });
    evidence.check_structure()?;
    Ok(evidence)
}

#[cfg(not(target_os = "linux"))]
fn sev_guest_collect(_: &Path, _: Option<u32>, _: &[u8; 64]) -> Result<Evidence, Error> {
    Err(Error::Attester(
        "/dev/sev-guest exists only on Linux".into(),
    ))
}

/// One evidence source and whether it works here.
#[derive(Clone, Debug, Serialize)]
pub struct SourceStatus {
    /// `configfs-tsm`, `sev-guest`, `tdx-guest`, `nil`.
    pub name: String,
    pub path: Option<String>,
    pub available: bool,
    /// The platform this source produces evidence for, when known.
    pub platform: Option<Platform>,
    /// Why it is unavailable (or a note when it is).
    pub reason: Option<String>,
}

/// What `moat platform info` prints.
#[derive(Clone, Debug, Serialize)]
pub struct PlatformReport {
    /// The platform this machine can attest as (`nil` when no hardware source works).
    pub platform: Platform,
    /// Platforms whose evidence this machine can produce.
    pub can_produce: Vec<Platform>,
    pub kernel: Option<String>,
    pub sources: Vec<SourceStatus>,
    #[serde(skip)]
    pub best: Option<Attester>,
}

fn kernel_release() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .map(|s| s.trim().to_owned())
}

fn probe_tsm(base: &Path, kernel: Option<&str>) -> SourceStatus {
    let mut s = SourceStatus {
        name: "configfs-tsm".into(),
        path: Some(base.display().to_string()),
        available: false,
        platform: None,
        reason: None,
    };
    if !base.is_dir() {
        let tsm_parent = base.parent();
        let configfs_root = tsm_parent.and_then(Path::parent);
        s.reason = Some(match configfs_root {
            Some(root) if base.starts_with(DEFAULT_TSM_BASE) && !root.join("tsm").exists() => {
                if root
                    .read_dir()
                    .map(|mut d| d.next().is_none())
                    .unwrap_or(true)
                {
                    format!("configfs is not mounted at {}", root.display())
                } else {
                    format!(
                        "no configfs-tsm: the kernel ({}) is older than 6.7 or built without CONFIG_TSM_REPORTS",
                        kernel.unwrap_or("unknown")
                    )
                }
            }
            _ => format!("{} does not exist", base.display()),
        });
        return s;
    }
    match new_entry(base) {
        Err(Error::Attester(msg)) if msg.contains("ermission denied") => {
            s.reason = Some(format!(
                "no permission to create entries in {} (run as root or grant write access)",
                base.display()
            ));
        }
        Err(e) => s.reason = Some(e.to_string()),
        Ok(entry) => {
            let deadline = Instant::now() + Duration::from_millis(500);
            match wait_read(&entry.0.join("provider"), 64, deadline) {
                Ok(p) => {
                    let provider = String::from_utf8_lossy(&p).trim().to_owned();
                    match provider_platform(&provider) {
                        Some(platform) => {
                            s.available = true;
                            s.platform = Some(platform);
                            s.reason = Some(format!("provider {provider}"));
                        }
                        None => {
                            s.reason = Some(format!("provider `{provider}` is not supported"))
                        }
                    }
                }
                Err(_) => {
                    s.reason = Some(
                        "no TSM provider: this is not an SNP or TDX guest (or its driver is not loaded)"
                            .into(),
                    )
                }
            }
        }
    }
    s
}

fn probe_device(name: &str, path: &Path, platform: Platform) -> SourceStatus {
    let mut s = SourceStatus {
        name: name.into(),
        path: Some(path.display().to_string()),
        available: false,
        platform: Some(platform),
        reason: None,
    };
    match std::fs::OpenOptions::new().read(true).open(path) {
        Ok(_) if platform == Platform::Tdx => {
            s.reason = Some("gives only a local TDREPORT; TDX quotes need configfs-tsm".into());
        }
        Ok(_) => s.available = true,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            s.reason = Some(format!(
                "no device {} (not a {platform} guest)",
                path.display()
            ));
        }
        Err(e) if e.kind() == ErrorKind::PermissionDenied => {
            s.reason = Some(format!("no permission to open {}", path.display()));
        }
        Err(e) => s.reason = Some(format!("cannot open {}: {e}", path.display())),
    }
    s
}

impl PlatformReport {
    /// Look at every source on this machine (creates and removes one configfs-tsm entry).
    pub fn probe(config: &AttesterConfig) -> PlatformReport {
        let kernel = kernel_release();
        let tsm = probe_tsm(&config.tsm_base, kernel.as_deref());
        let sev = probe_device("sev-guest", &config.sev_guest, Platform::Snp);
        let tdx = probe_device("tdx-guest", Path::new(TDX_GUEST), Platform::Tdx);
        let nil = SourceStatus {
            name: "nil".into(),
            path: None,
            available: true,
            platform: Some(Platform::Nil),
            reason: Some("unattested: proves nothing about this machine".into()),
        };
        let best = if tsm.available {
            Some(Attester::ConfigfsTsm {
                base: config.tsm_base.clone(),
                platform: tsm.platform.expect("available implies a platform"),
                vmpl: config.vmpl,
            })
        } else if sev.available {
            Some(Attester::SevGuest {
                device: config.sev_guest.clone(),
                vmpl: config.vmpl,
            })
        } else {
            None
        };
        let platform = best.as_ref().map_or(Platform::Nil, Attester::platform);
        let mut can_produce = vec![];
        if platform != Platform::Nil {
            can_produce.push(platform);
        }
        can_produce.push(Platform::Nil);
        PlatformReport {
            platform,
            can_produce,
            kernel,
            sources: vec![tsm, sev, tdx, nil],
            best,
        }
    }
}
