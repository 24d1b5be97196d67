//! TEST-ONLY roots of trust: a fake AMD ARK → ASK → VCEK chain that signs synthetic SNP reports
//! with the real layout, and a fake configfs-tsm directory that serves them. Compiled only with
//! the `test-roots` feature; a verifier accepts the fake root only through
//! [`crate::Verifier::with_test_only_amd_root`], and every claim verified through it says
//! `test_only_root: true` with a trust root named `TEST-ONLY ...`.
//!
//! ```no_run
//! # use moat_attest::test_roots::{FakeAmd, ReportParams};
//! # use moat_attest::{Verifier, attester::{Attester, AttesterConfig}, Platform};
//! let amd = FakeAmd::new("ci");
//! let chip = amd.chip();
//! let tsm = chip.serve_tsm(ReportParams::default()).unwrap();
//! let config = AttesterConfig { tsm_base: tsm.path().into(), ..Default::default() };
//! let evidence = Attester::for_platform(Platform::Snp, &config).unwrap().collect(&[0; 64]).unwrap();
//! let claims = Verifier::new().with_test_only_amd_root(amd.root()).verify_evidence(&evidence).unwrap();
//! assert!(claims.test_only_root);
//! ```

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CustomExtension, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, PKCS_ECDSA_P384_SHA384,
};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair};

use crate::claims::SnpTcb;
use crate::evidence::{Evidence, SNP_REPORT_LEN, SnpEvidence};
use crate::roots::AmdRoot;

/// A fake AMD root of trust: ARK (self-signed) and ASK, both ECDSA P-384.
pub struct FakeAmd {
    name: String,
    ark_params: CertificateParams,
    ark_key: KeyPair,
    ask_params: CertificateParams,
    ask_key: KeyPair,
    ark_pem: String,
    ask_pem: String,
    ark_der: Vec<u8>,
    ask_der: Vec<u8>,
}

impl std::fmt::Debug for FakeAmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAmd").field("name", &self.name).finish()
    }
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "TEST-ONLY fake AMD");
    dn.push(DnType::CommonName, cn);
    p.distinguished_name = dn;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    p
}

fn der_uint(v: u8) -> Vec<u8> {
    if v >= 0x80 {
        vec![0x02, 0x02, 0x00, v]
    } else {
        vec![0x02, 0x01, v]
    }
}

impl FakeAmd {
    /// Generate a fresh fake ARK and ASK named after `name`.
    pub fn new(name: &str) -> Self {
        let ark_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).expect("P-384 keygen");
        let ark_params = ca_params(&format!("TEST-ONLY ARK-{name}"));
        let ark = ark_params.self_signed(&ark_key).expect("self-sign ARK");
        let ask_key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).expect("P-384 keygen");
        let ask_params = ca_params(&format!("TEST-ONLY SEV-{name}"));
        let ark_issuer = Issuer::from_params(&ark_params, &ark_key);
        let ask = ask_params
            .signed_by(&ask_key, &ark_issuer)
            .expect("sign ASK");
        FakeAmd {
            name: name.into(),
            ark_params,
            ark_key,
            ask_params,
            ask_key,
            ark_pem: ark.pem(),
            ask_pem: ask.pem(),
            ark_der: ark.der().to_vec(),
            ask_der: ask.der().to_vec(),
        }
    }

    /// The root to give [`crate::Verifier::with_test_only_amd_root`].
    pub fn root(&self) -> AmdRoot {
        AmdRoot::test_only(&self.name, self.ark_der.clone(), self.ask_der.clone())
            .expect("fake root is consistent")
    }

    /// A CRL signed by the fake ARK, current from `this_update` to `next_update` (y, m, d),
    /// listing the ASK when `revoke_ask`.
    pub fn crl(
        &self,
        revoke_ask: bool,
        this_update: (i32, u8, u8),
        next_update: (i32, u8, u8),
    ) -> Vec<u8> {
        use rcgen::{
            CertificateRevocationListParams, KeyIdMethod, RevokedCertParams, SerialNumber,
        };
        use x509_parser::prelude::FromDer;
        let (_, ask) = x509_parser::certificate::X509Certificate::from_der(&self.ask_der)
            .expect("fake ASK parses");
        let this = rcgen::date_time_ymd(this_update.0, this_update.1, this_update.2);
        let params = CertificateRevocationListParams {
            this_update: this,
            next_update: rcgen::date_time_ymd(next_update.0, next_update.1, next_update.2),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: if revoke_ask {
                vec![RevokedCertParams {
                    serial_number: SerialNumber::from_slice(ask.raw_serial()),
                    revocation_time: this,
                    reason_code: None,
                    invalidity_date: None,
                }]
            } else {
                vec![]
            },
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let issuer = Issuer::from_params(&self.ark_params, &self.ark_key);
        params.signed_by(&issuer).expect("sign CRL").der().to_vec()
    }

    /// PEM of the fake ARK and ASK (for a Steward's test-only configuration).
    pub fn ark_pem(&self) -> &str {
        &self.ark_pem
    }
    pub fn ask_pem(&self) -> &str {
        &self.ask_pem
    }

    /// A fake chip with a random chip ID and TCB 3.0.8.115 (Milan-like layout).
    pub fn chip(&self) -> FakeChip {
        let mut chip_id = [0u8; 64];
        ring::rand::SecureRandom::fill(&SystemRandom::new(), &mut chip_id).expect("random");
        let tcb = SnpTcb {
            bootloader: 3,
            tee: 0,
            snp: 8,
            microcode: 115,
            fmc: None,
        };
        self.chip_with(chip_id, tcb)
    }

    /// A fake chip whose VCEK certifies `tcb` and hwID `chip_id`.
    pub fn chip_with(&self, chip_id: [u8; 64], tcb: SnpTcb) -> FakeChip {
        let key = KeyPair::generate_for(&PKCS_ECDSA_P384_SHA384).expect("P-384 keygen");
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, "TEST-ONLY SEV-VCEK");
        p.distinguished_name = dn;
        let spl = |last: u64, v: u8| {
            CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 3704, 1, 3, last], der_uint(v))
        };
        p.custom_extensions = vec![
            spl(1, tcb.bootloader),
            spl(2, tcb.tee),
            spl(3, tcb.snp),
            spl(8, tcb.microcode),
            CustomExtension::from_oid_content(&[1, 3, 6, 1, 4, 1, 3704, 1, 4], chip_id.to_vec()),
        ];
        let issuer = Issuer::from_params(&self.ask_params, &self.ask_key);
        let vcek = p.signed_by(&key, &issuer).expect("sign VCEK");
        let signer = EcdsaKeyPair::from_pkcs8(
            &ECDSA_P384_SHA384_FIXED_SIGNING,
            &key.serialize_der(),
            &SystemRandom::new(),
        )
        .expect("P-384 PKCS#8");
        FakeChip {
            inner: Arc::new(ChipInner {
                signer,
                vcek_der: vcek.der().to_vec(),
                chip_id,
                tcb,
            }),
        }
    }
}

struct ChipInner {
    signer: EcdsaKeyPair,
    vcek_der: Vec<u8>,
    chip_id: [u8; 64],
    tcb: SnpTcb,
}

/// A fake SNP chip: its VCEK and a signer for synthetic reports. Cheap to clone.
#[derive(Clone)]
pub struct FakeChip {
    inner: Arc<ChipInner>,
}

impl std::fmt::Debug for FakeChip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeChip").finish_non_exhaustive()
    }
}

/// The guest-chosen fields of a synthetic report.
#[derive(Clone, Debug)]
pub struct ReportParams {
    /// 2 or 3 (3 adds CPUID fields: family 0x19, model 0x01 = Milan).
    pub version: u32,
    /// Guest policy; default 0x30000 (SMT allowed, reserved bit 17 set, no debug, no MA).
    pub policy: u64,
    pub vmpl: u32,
    pub guest_svn: u32,
    pub measurement: [u8; 48],
    pub host_data: [u8; 32],
    pub report_data: [u8; 64],
    /// Override the reported TCB (default: the chip's VCEK TCB).
    pub reported_tcb: Option<SnpTcb>,
}

impl Default for ReportParams {
    fn default() -> Self {
        ReportParams {
            version: 2,
            policy: 0x30000,
            vmpl: 0,
            guest_svn: 0,
            measurement: [0x4d; 48],
            host_data: [0; 32],
            report_data: [0; 64],
            reported_tcb: None,
        }
    }
}

fn tcb_bytes(t: SnpTcb) -> [u8; 8] {
    [t.bootloader, t.tee, 0, 0, 0, 0, t.snp, t.microcode]
}

impl FakeChip {
    pub fn vcek_der(&self) -> &[u8] {
        &self.inner.vcek_der
    }

    pub fn chip_id(&self) -> [u8; 64] {
        self.inner.chip_id
    }

    /// A signed 1184-byte report with the SEV-SNP ABI layout.
    pub fn report(&self, p: &ReportParams) -> Vec<u8> {
        let mut r = vec![0u8; SNP_REPORT_LEN];
        let tcb = tcb_bytes(self.inner.tcb);
        let reported = p.reported_tcb.map(tcb_bytes).unwrap_or(tcb);
        r[0x00..0x04].copy_from_slice(&p.version.to_le_bytes());
        r[0x04..0x08].copy_from_slice(&p.guest_svn.to_le_bytes());
        r[0x08..0x10].copy_from_slice(&p.policy.to_le_bytes());
        r[0x30..0x34].copy_from_slice(&p.vmpl.to_le_bytes());
        r[0x34..0x38].copy_from_slice(&1u32.to_le_bytes()); // ECDSA P-384 with SHA-384
        r[0x38..0x40].copy_from_slice(&tcb); // current TCB
        r[0x40..0x48].copy_from_slice(&1u64.to_le_bytes()); // platform info: SMT enabled
        r[0x50..0x90].copy_from_slice(&p.report_data);
        r[0x90..0xc0].copy_from_slice(&p.measurement);
        r[0xc0..0xe0].copy_from_slice(&p.host_data);
        r[0x180..0x188].copy_from_slice(&reported);
        if p.version >= 3 {
            r[0x188] = 0x19; // family
            r[0x189] = 0x01; // model (Milan)
            r[0x18a] = 0x01; // stepping
        }
        r[0x1a0..0x1e0].copy_from_slice(&self.inner.chip_id);
        r[0x1e0..0x1e8].copy_from_slice(&tcb); // committed TCB
        r[0x1e8..0x1eb].copy_from_slice(&[8, 55, 1]); // current build, minor, major
        r[0x1ec..0x1ef].copy_from_slice(&[8, 55, 1]); // committed build, minor, major
        r[0x1f0..0x1f8].copy_from_slice(&tcb); // launch TCB
        self.sign(&mut r);
        r
    }

    /// (Re-)sign a report in place: ECDSA P-384 over bytes 0..0x2A0, r and s little-endian.
    pub fn sign(&self, report: &mut [u8]) {
        let sig = self
            .inner
            .signer
            .sign(&SystemRandom::new(), &report[..0x2a0])
            .expect("ECDSA signing");
        let sig = sig.as_ref();
        report[0x2a0..0x4a0].fill(0);
        for i in 0..48 {
            report[0x2a0 + i] = sig[47 - i];
            report[0x2a0 + 72 + i] = sig[95 - i];
        }
    }

    /// SNP evidence for `p` with this chip's VCEK.
    pub fn evidence(&self, p: &ReportParams) -> Evidence {
        Evidence::Snp(SnpEvidence {
            report: self.report(p),
            vek: Some(self.inner.vcek_der.clone()),
            crls: Vec::new(),
        })
    }

    /// The SNP certificate table holding this chip's VCEK (what a host puts in `auxblob`).
    pub fn cert_table(&self) -> Vec<u8> {
        // VCEK GUID 63da758d-e664-4564-adc5-f4b93be8accd in RFC byte order, then a zero entry.
        let guid = hex::decode("63da758de6644564adc5f4b93be8accd").expect("hex");
        let mut t = Vec::new();
        t.extend_from_slice(&guid);
        t.extend_from_slice(&48u32.to_le_bytes());
        t.extend_from_slice(&(self.inner.vcek_der.len() as u32).to_le_bytes());
        t.extend_from_slice(&[0u8; 24]);
        t.extend_from_slice(&self.inner.vcek_der);
        t
    }

    /// Serve reports from a fake configfs-tsm directory (provider `sev_guest`). Point
    /// `AttesterConfig::tsm_base` (or `MOAT_TSM_PATH`) at [`FakeTsm::path`].
    pub fn serve_tsm(&self, template: ReportParams) -> std::io::Result<FakeTsm> {
        FakeTsm::start(self.clone(), template)
    }
}

/// A fake configfs-tsm report directory. A background thread plays the kernel: it fills every
/// new entry with `provider` and `generation`, and answers an `inblob` with a signed `outblob`,
/// an `auxblob` certificate table and the next `generation`. Stops when dropped.
pub struct FakeTsm {
    dir: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeTsm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeTsm")
            .field("path", &self.dir.path())
            .finish()
    }
}

fn put(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    // Write beside, then rename: readers never see a partial attribute.
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, dir.join(name))
}

impl FakeTsm {
    fn start(chip: FakeChip, template: ReportParams) -> std::io::Result<FakeTsm> {
        let dir = tempfile::Builder::new()
            .prefix("moat-fake-tsm-")
            .tempdir()?;
        let stop = Arc::new(AtomicBool::new(false));
        let base = dir.path().to_owned();
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("fake-configfs-tsm".into())
            .spawn(move || serve(base, chip, template, flag))?;
        Ok(FakeTsm {
            dir,
            stop,
            thread: Some(thread),
        })
    }

    /// The directory to use as the configfs-tsm report base.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for FakeTsm {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(base: PathBuf, chip: FakeChip, template: ReportParams, stop: Arc<AtomicBool>) {
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut served: HashSet<PathBuf> = HashSet::new();
    while !stop.load(Ordering::Relaxed) {
        let entries: Vec<PathBuf> = match std::fs::read_dir(&base) {
            Ok(rd) => rd
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| p.is_dir())
                .collect(),
            Err(_) => return,
        };
        seen.retain(|p| entries.contains(p));
        served.retain(|p| entries.contains(p));
        for entry in entries {
            if seen.insert(entry.clone()) {
                let _ = put(&entry, "generation", b"0\n")
                    .and_then(|_| put(&entry, "provider", b"sev_guest\n"));
                continue;
            }
            if served.contains(&entry) {
                continue;
            }
            let Ok(inblob) = std::fs::read(entry.join("inblob")) else {
                continue;
            };
            if inblob.len() != 64 {
                continue;
            }
            let mut p = template.clone();
            p.report_data.copy_from_slice(&inblob);
            let report = chip.report(&p);
            let ok = put(&entry, "outblob", &report)
                .and_then(|_| put(&entry, "auxblob", &chip.cert_table()))
                .and_then(|_| put(&entry, "generation", b"1\n"));
            if ok.is_ok() {
                served.insert(entry);
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
