//! Moat.toml: parsing, validation, and the file/line/column every error points at.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match moat_config::Config::from_toml_str(text, std::path::Path::new("/nonexistent")) {
        Ok(config) => {
            let _ = config.fd_names();
            let _ = config.guest_args();
            let _ = config.guest_env();
        }
        // Rendering an error computes its line and column from byte offsets.
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
