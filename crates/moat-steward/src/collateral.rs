//! TDX/SGX (DCAP) collateral kept in the state directory: `moat steward collateral import FILE`
//! checks a collateral JSON document and stores it under `collateral/`; `moat steward serve`
//! loads every stored document into the verifier. Verification stays offline: the Steward never
//! calls Intel's services itself, and expired collateral fails verification with a named check
//! until fresh collateral is imported.

use std::path::{Path, PathBuf};

use moat_attest::Collateral;
use sha2::{Digest, Sha256};

use crate::ca::{ensure_private_dir, write_atomic};
use crate::error::ServeError;

/// Sub-directory of the state directory holding collateral documents.
pub const COLLATERAL_DIR: &str = "collateral";

/// What an import stored.
#[derive(Debug, Clone)]
pub struct Imported {
    pub path: PathBuf,
    /// TCB info `issueDate` and `nextUpdate`, when readable.
    pub window: Option<(String, String)>,
}

/// Checks `bytes` as collateral JSON and stores it (named by its digest, so importing the same
/// document twice is harmless).
pub fn import(state_dir: &Path, bytes: &[u8]) -> Result<Imported, ServeError> {
    let dir = state_dir.join(COLLATERAL_DIR);
    let collateral = Collateral::from_json(bytes).map_err(|e| ServeError::Collateral {
        path: dir.clone(),
        detail: e.to_string(),
    })?;
    ensure_private_dir(state_dir)?;
    ensure_private_dir(&dir)?;
    let digest = hex::encode(&Sha256::digest(bytes)[..8]);
    let path = dir.join(format!("{digest}.json"));
    write_atomic(&path, bytes, 0o644)?;
    Ok(Imported {
        path,
        window: collateral.tcb_info_window(),
    })
}

/// Loads every stored collateral document.
pub fn load_all(state_dir: &Path) -> Result<Vec<(PathBuf, Collateral)>, ServeError> {
    let dir = state_dir.join(COLLATERAL_DIR);
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ServeError::Io {
                what: dir.display().to_string(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let bytes = std::fs::read(&path).map_err(|source| ServeError::Io {
            what: path.display().to_string(),
            source,
        })?;
        let c = Collateral::from_json(&bytes).map_err(|e| ServeError::Collateral {
            path: path.clone(),
            detail: e.to_string(),
        })?;
        out.push((path, c));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}
