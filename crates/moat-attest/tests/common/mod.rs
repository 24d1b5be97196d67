//! Shared test helpers: where the real vectors live (`MOAT_VECTORS`, else
//! `<repo>/../shared/vectors`), failing loudly when they are missing.

#![allow(dead_code)]

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn vectors_dir() -> PathBuf {
    // MOAT_VECTORS, else `<repo>/../shared/vectors`; from a git worktree checked out deeper
    // (e.g. `/work/wt/<name>`), the nearest ancestor holding `shared/vectors`.
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
        "attestation vectors not found at {} (set MOAT_VECTORS): these tests need real evidence",
        dir.display()
    );
    dir
}

pub fn vector(rel: &str) -> Vec<u8> {
    let path = vectors_dir().join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("vector {} missing: {e}", path.display()))
}

/// Seconds since the epoch for an RFC 3339-ish `YYYY-MM-DD` date at noon UTC.
pub fn date(y: i64, m: i64, d: i64) -> SystemTime {
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = if y2 >= 0 { y2 } else { y2 - 399 } / 400;
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    UNIX_EPOCH + Duration::from_secs((days * 86400 + 43200) as u64)
}
