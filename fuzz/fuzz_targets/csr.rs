//! A PKCS#10 request as a Keep sends it to the Steward (DER, read by moat-attest's own DER code).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = moat_attest::csr::parse(data);
});
