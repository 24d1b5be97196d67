//! Evidence as the Steward receives it: a CMW JSON document wrapping a platform's report or quote.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok((evidence, nonce)) = moat_attest::Evidence::from_cmw_json(data) {
        let _ = evidence.check_structure();
        let _ = evidence.report_data();
        // Whatever parsed must encode again without panicking.
        let _ = evidence.to_cmw_json(nonce.as_deref());
    }
});
