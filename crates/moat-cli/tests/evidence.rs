//! `moat evidence verify` and `moat platform info` as a user runs them: exit codes 0 (verified),
//! 1 (refused, check named), 2 (unreadable input), against the real vectors.

use std::path::PathBuf;
use std::process::{Command, Output};

fn vectors() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = match std::env::var_os("MOAT_VECTORS") {
        Some(v) => PathBuf::from(v),
        None => manifest
            .ancestors()
            .skip(2)
            .map(|a| a.join("shared/vectors"))
            .find(|d| d.is_dir())
            .unwrap_or_else(|| manifest.join("../../../shared/vectors")),
    };
    assert!(
        dir.join("README.md").is_file(),
        "attestation vectors not found at {} (set MOAT_VECTORS)",
        dir.display()
    );
    dir
}

fn moat(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(args)
        .env_remove("MOAT_VERIFY_AT")
        .env_remove("MOAT_COLLATERAL")
        .output()
        .expect("run moat")
}

fn v(rel: &str) -> String {
    vectors().join(rel).display().to_string()
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn raw_snp_report_with_its_vcek_verifies() {
    let out = moat(&[
        "evidence",
        "verify",
        &v("snp/virtee/report_milan.hex"),
        "--vek",
        &v("snp/virtee/vcek_milan.der"),
        "--at",
        "2026-06-01T00:00:00Z",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = json(&out);
    assert_eq!(j["verified"], true);
    assert_eq!(j["claims"]["platform"], "snp");
    assert_eq!(j["claims"]["attested"], true);
}

#[test]
fn debug_report_is_refused_with_the_check_named() {
    let out = moat(&[
        "evidence",
        "verify",
        &v("snp/go-sev-guest/attestation.bin"),
        "--vek",
        &v("snp/go-sev-guest/vcek.testcer"),
        "--at",
        "2026-06-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`debug`"), "{err}");
}

#[test]
fn enarx_csr_verifies_and_names_the_binding() {
    let out = moat(&[
        "evidence",
        "verify",
        &v("snp/enarx-steward/milan.signed.crl.csr"),
        "--at",
        "2023-01-15T00:00:00Z",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("csr (enarx)") && text.contains("checked"),
        "{text}"
    );
}

#[test]
fn tdx_quote_verifies_inside_its_collateral_window_only() {
    let quote = v("tdx/dcap-qvl/tdx_quote");
    let col = v("tdx/dcap-qvl/tdx_quote_collateral.json");
    let ok = moat(&[
        "evidence",
        "verify",
        &quote,
        "--collateral",
        &col,
        "--at",
        "2025-07-01T00:00:00Z",
        "--json",
    ]);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(json(&ok)["claims"]["tcb_status"], "UpToDate");
    let late = moat(&[
        "evidence",
        "verify",
        &quote,
        "--collateral",
        &col,
        "--at",
        "2025-09-01T00:00:00Z",
        "--json",
    ]);
    assert_eq!(late.status.code(), Some(1));
    assert_eq!(json(&late)["check"], "quote.collateral_expired");
    let none = moat(&["evidence", "verify", &quote, "--json"]);
    assert_eq!(none.status.code(), Some(1));
    assert_eq!(json(&none)["check"], "quote.collateral_missing");
}

#[test]
fn unreadable_input_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk");
    std::fs::write(&junk, b"\x01\x02 not evidence at all").unwrap();
    let out = moat(&["evidence", "verify", junk.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let missing = moat(&[
        "evidence",
        "verify",
        dir.path().join("nope").to_str().unwrap(),
    ]);
    assert_eq!(missing.status.code(), Some(2));
    let truncated = dir.path().join("short.csr");
    let csr = std::fs::read(v("snp/enarx-steward/milan.signed.crl.csr")).unwrap();
    std::fs::write(&truncated, &csr[..csr.len() / 2]).unwrap();
    let out = moat(&["evidence", "verify", truncated.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let bad_time = moat(&[
        "evidence",
        "verify",
        &v("snp/enarx-steward/milan.signed.crl.csr"),
        "--at",
        "yesterday",
    ]);
    assert_eq!(bad_time.status.code(), Some(2));
}

#[test]
fn platform_info_explains_a_machine_without_hardware() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(["platform", "info", "--json"])
        .env("MOAT_TSM_PATH", dir.path().join("no-tsm"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let j = json(&out);
    let sources = j["sources"].as_array().unwrap();
    let tsm = sources
        .iter()
        .find(|s| s["name"] == "configfs-tsm")
        .unwrap();
    assert_eq!(tsm["available"], false);
    assert!(tsm["reason"].as_str().unwrap().contains("does not exist"));
    assert!(
        j["can_produce"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "nil")
    );
    let text = moat(&["platform", "info"]);
    assert_eq!(text.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&text.stdout).contains("configfs-tsm"));
}

#[test]
fn platform_info_sees_snp_through_a_fake_configfs_tsm() {
    use moat_attest::test_roots::{FakeAmd, ReportParams};
    let amd = FakeAmd::new("cli");
    let tsm = amd.chip().serve_tsm(ReportParams::default()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_moat"))
        .args(["platform", "info", "--json"])
        .env("MOAT_TSM_PATH", tsm.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let j = json(&out);
    assert_eq!(j["platform"], "snp");
    assert!(
        j["can_produce"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "snp")
    );
    // The probe leaves no configfs entry behind.
    assert_eq!(std::fs::read_dir(tsm.path()).unwrap().count(), 0);
}

#[test]
fn evidence_file_from_the_fake_chain_needs_its_test_root() {
    use moat_attest::test_roots::{FakeAmd, ReportParams};
    let amd = FakeAmd::new("cli");
    let evidence = amd.chip().evidence(&ReportParams::default());
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evidence.json");
    std::fs::write(&path, evidence.to_cmw_json(None)).unwrap();
    // The CLI trusts AMD's roots only: the fake chain is refused at the chain check.
    let out = moat(&["evidence", "verify", path.to_str().unwrap(), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["check"], "snp.vek_chain");
}
