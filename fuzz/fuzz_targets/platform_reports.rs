//! What a host hands a Keep, or a Keep hands the Steward, as raw platform bytes: an SNP report,
//! an SNP certificate table, a TDX (or SGX) quote.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = moat_attest::snp::parse_report(data);
    let _ = moat_attest::attester::vek_from_cert_table(data);
    if let Ok(quote) = moat_attest::quote::parse(data) {
        let _ = moat_attest::quote::report_data(&quote);
    }
});
