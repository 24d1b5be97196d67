//! Moat packages in OCI registries.
//!
//! A **Moat package** is one OCI image manifest whose `artifactType` is
//! `application/vnd.moat.package.v1`, whose config is the OCI empty descriptor, and whose layers
//! are the module (`application/wasm`, titled `main.wasm`) then its config (`application/toml`,
//! titled `Moat.toml` or `Enarx.toml`). One manifest digest therefore covers both the code and
//! what it may touch. A plain **CNCF Wasm artifact** (config `application/vnd.wasm.config.v0+json`,
//! exactly one `application/wasm` layer) is also understood; its config must be supplied locally.
//!
//! Packages are built deterministically (no timestamps), so the same module and config always
//! give the same digest. Pulls verify the manifest against a pinned digest (or the digest the
//! registry announces) and every blob against its descriptor before handing anything out.

pub mod reference;
pub mod source;

use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::registry::manifest::{
    Descriptor, ImageManifest, ManifestError, OCI_EMPTY, OCI_EMPTY_BLOB, OCI_MANIFEST,
};
use crate::registry::{Digest, RegistryClient, RegistryError, TransferProgress};
pub use reference::{Reference, ReferenceError};

/// `artifactType` of a Moat package manifest.
pub const MOAT_PACKAGE_TYPE: &str = "application/vnd.moat.package.v1";
/// Media type of a module layer.
pub const WASM_LAYER: &str = "application/wasm";
/// Media type of a config layer.
pub const TOML_LAYER: &str = "application/toml";
/// Config media type of a CNCF Wasm artifact.
pub const WASM_CONFIG: &str = "application/vnd.wasm.config.v0+json";

/// Largest module accepted from disk or a registry.
pub const MAX_MODULE_BYTES: u64 = 512 << 20;
/// Largest config file accepted.
pub const MAX_CONFIG_BYTES: u64 = 1 << 20;
/// Largest CNCF Wasm config blob accepted.
const MAX_WASM_CONFIG_BYTES: u64 = 64 << 10;

/// The module's file name in a package directory (as Enarx named it).
pub const MODULE_FILE: &str = "main.wasm";

/// The two config file names a package may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ConfigName {
    #[serde(rename = "Moat.toml")]
    MoatToml,
    #[serde(rename = "Enarx.toml")]
    EnarxToml,
}

impl ConfigName {
    pub fn file_name(self) -> &'static str {
        match self {
            ConfigName::MoatToml => "Moat.toml",
            ConfigName::EnarxToml => "Enarx.toml",
        }
    }

    fn from_title(title: Option<&str>) -> Self {
        match title {
            Some("Enarx.toml") => ConfigName::EnarxToml,
            _ => ConfigName::MoatToml,
        }
    }
}

/// A workload's config file: its name and its bytes (checked to be UTF-8 TOML).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFile {
    pub name: ConfigName,
    pub bytes: Bytes,
}

impl ConfigFile {
    /// The config as text (checked to be UTF-8 when the file was accepted).
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.bytes).unwrap_or_default()
    }
}

/// Which OCI layout a package uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PackageKind {
    /// Moat's own: module + config under one manifest.
    Moat,
    /// The CNCF single-layer Wasm artifact: module only.
    WasmArtifact,
}

/// Everything that can be wrong with a package, local or remote.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PackageError {
    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{dir} holds no {MODULE_FILE}")]
    MissingModule { dir: PathBuf },
    #[error("{dir} holds both Moat.toml and Enarx.toml; keep one")]
    AmbiguousConfig { dir: PathBuf },
    #[error("{dir} already holds {existing}; --config cannot add a second config")]
    ConfigConflict {
        dir: PathBuf,
        existing: &'static str,
    },
    #[error("{what} is not a WebAssembly module: {reason}")]
    NotWasm { what: String, reason: String },
    #[error("{what} is not a valid config: {reason}")]
    BadConfig { what: String, reason: String },
    #[error("{what} is larger than the limit of {limit} bytes")]
    TooLarge { what: String, limit: u64 },
    #[error("{0}")]
    Manifest(#[from] ManifestError),
    #[error("{reference} is not a Moat package or a Wasm artifact: {reason}")]
    NotAPackage { reference: String, reason: String },
    #[error(
        "the package built from these files has digest {built}, but the reference pins {pinned}"
    )]
    PinMismatch { pinned: Digest, built: Digest },
    #[error(transparent)]
    Registry(#[from] RegistryError),
    #[error(transparent)]
    Reference(#[from] ReferenceError),
}

/// A module and its optional config, read from disk and checked.
#[derive(Debug, Clone)]
pub struct LocalPackage {
    pub module: Bytes,
    pub config: Option<ConfigFile>,
}

impl LocalPackage {
    /// Read a package from `path`: a directory holding `main.wasm` and `Moat.toml` or
    /// `Enarx.toml` (or neither, with `config` naming one), or a module file, with an optional
    /// `config` file.
    pub fn from_path(path: &Path, config: Option<&Path>) -> Result<Self, PackageError> {
        let meta = std::fs::metadata(path).map_err(|e| io("reading", path, e))?;
        let (module_path, dir_config) = if meta.is_dir() {
            let module = path.join(MODULE_FILE);
            if !module.is_file() {
                return Err(PackageError::MissingModule { dir: path.into() });
            }
            let moat = path.join(ConfigName::MoatToml.file_name());
            let enarx = path.join(ConfigName::EnarxToml.file_name());
            let found = match (moat.is_file(), enarx.is_file()) {
                (true, true) => return Err(PackageError::AmbiguousConfig { dir: path.into() }),
                (true, false) => Some((moat, ConfigName::MoatToml)),
                (false, true) => Some((enarx, ConfigName::EnarxToml)),
                (false, false) => None,
            };
            if let (Some((_, name)), Some(_)) = (&found, config) {
                return Err(PackageError::ConfigConflict {
                    dir: path.into(),
                    existing: name.file_name(),
                });
            }
            (module, found)
        } else {
            (path.to_owned(), None)
        };
        let module = read_limited(&module_path, MAX_MODULE_BYTES)?;
        check_module(&module, &module_path.display().to_string())?;
        let config = match (dir_config, config) {
            (Some((p, name)), _) => Some(read_config(&p, name)?),
            (None, Some(p)) => {
                let name = if p.file_name().is_some_and(|n| n == "Enarx.toml") {
                    ConfigName::EnarxToml
                } else {
                    ConfigName::MoatToml
                };
                Some(read_config(p, name)?)
            }
            (None, None) => None,
        };
        Ok(LocalPackage {
            module: Bytes::from(module),
            config,
        })
    }

    /// The OCI form: a Moat package when there is a config, else a CNCF Wasm artifact.
    pub fn build(&self) -> BuiltPackage {
        let module_desc = Descriptor::of(WASM_LAYER, &self.module).with_title(MODULE_FILE);
        let (kind, manifest, blobs) = match &self.config {
            Some(config) => {
                let config_desc =
                    Descriptor::of(TOML_LAYER, &config.bytes).with_title(config.name.file_name());
                let empty = Descriptor::of(OCI_EMPTY, OCI_EMPTY_BLOB);
                let manifest = ImageManifest {
                    schema_version: 2,
                    media_type: Some(OCI_MANIFEST.into()),
                    artifact_type: Some(MOAT_PACKAGE_TYPE.into()),
                    config: empty.clone(),
                    layers: vec![module_desc.clone(), config_desc.clone()],
                    subject: None,
                    annotations: Default::default(),
                };
                let blobs = vec![
                    (empty, Bytes::from_static(OCI_EMPTY_BLOB)),
                    (module_desc, self.module.clone()),
                    (config_desc, config.bytes.clone()),
                ];
                (PackageKind::Moat, manifest, blobs)
            }
            None => {
                let wasm_config = serde_json::json!({
                    "architecture": "wasm",
                    "os": "wasip1",
                    "layerDigests": [module_desc.digest.to_string()],
                });
                let wasm_config = Bytes::from(serde_json::to_vec(&wasm_config).unwrap_or_default());
                let config_desc = Descriptor::of(WASM_CONFIG, &wasm_config);
                let manifest = ImageManifest {
                    schema_version: 2,
                    media_type: Some(OCI_MANIFEST.into()),
                    artifact_type: None,
                    config: config_desc.clone(),
                    layers: vec![module_desc.clone()],
                    subject: None,
                    annotations: Default::default(),
                };
                let blobs = vec![
                    (config_desc, wasm_config),
                    (module_desc, self.module.clone()),
                ];
                (PackageKind::WasmArtifact, manifest, blobs)
            }
        };
        let manifest_bytes = Bytes::from(manifest.to_bytes());
        BuiltPackage {
            kind,
            digest: Digest::sha256_of(&manifest_bytes),
            manifest,
            manifest_bytes,
            blobs,
        }
    }
}

/// A package in its OCI form, ready to push.
#[derive(Debug, Clone)]
pub struct BuiltPackage {
    pub kind: PackageKind,
    pub manifest: ImageManifest,
    pub manifest_bytes: Bytes,
    pub digest: Digest,
    /// Every blob the manifest names (config first), with its bytes.
    pub blobs: Vec<(Descriptor, Bytes)>,
}

impl BuiltPackage {
    /// Total bytes of all blobs (what a progress bar counts).
    pub fn blob_bytes(&self) -> u64 {
        self.blobs.iter().map(|(d, _)| d.size).sum()
    }

    /// Push every blob, then the manifest under the reference's tag (or its digest, which must
    /// then equal this package's). Returns the manifest digest.
    pub async fn push(
        &self,
        client: &RegistryClient,
        reference: &Reference,
        progress: &dyn TransferProgress,
    ) -> Result<Digest, PackageError> {
        if let Some(pinned) = reference.digest()
            && *pinned != self.digest
        {
            return Err(PackageError::PinMismatch {
                pinned: pinned.clone(),
                built: self.digest.clone(),
            });
        }
        let repo = reference.repository();
        for (desc, bytes) in &self.blobs {
            client
                .push_blob(repo, &desc.digest, bytes, progress)
                .await?;
        }
        let tag = match (reference.tag(), reference.digest()) {
            (Some(tag), _) => tag.to_owned(),
            (None, Some(digest)) => digest.to_string(),
            (None, None) => reference.manifest_reference(),
        };
        let digest = client
            .push_manifest(repo, &tag, OCI_MANIFEST, self.manifest_bytes.clone())
            .await?;
        Ok(digest)
    }
}

/// What a registry holds under a reference, without the blobs.
#[derive(Debug, Clone)]
pub struct RemotePackage {
    pub digest: Digest,
    pub kind: PackageKind,
    pub manifest: ImageManifest,
    pub manifest_bytes: Bytes,
    pub module: Descriptor,
    /// The config layer (Moat packages) or the CNCF config blob (Wasm artifacts).
    pub config: Descriptor,
}

/// A package pulled and verified in full.
#[derive(Debug, Clone)]
pub struct PulledPackage {
    pub remote: RemotePackage,
    pub module: Bytes,
    /// The package's own config; `None` for a Wasm artifact.
    pub config: Option<ConfigFile>,
}

/// Fetch and classify the manifest a reference names (digest-checked by the client).
pub async fn inspect(
    client: &RegistryClient,
    reference: &Reference,
) -> Result<RemotePackage, PackageError> {
    let pulled = client
        .pull_manifest(
            reference.repository(),
            &reference.manifest_reference(),
            &[OCI_MANIFEST],
        )
        .await?;
    if let Some(mt) = &pulled.media_type
        && mt != OCI_MANIFEST
    {
        return Err(PackageError::NotAPackage {
            reference: reference.to_string(),
            reason: format!("the registry served a {mt:?}, not an OCI image manifest"),
        });
    }
    let manifest = ImageManifest::parse(&pulled.bytes)?;
    let (kind, module, config) =
        classify(&manifest).map_err(|reason| PackageError::NotAPackage {
            reference: reference.to_string(),
            reason,
        })?;
    Ok(RemotePackage {
        digest: pulled.digest,
        kind,
        module,
        config,
        manifest,
        manifest_bytes: pulled.bytes,
    })
}

/// Which layout a manifest follows, and its module and config descriptors.
pub fn classify(manifest: &ImageManifest) -> Result<(PackageKind, Descriptor, Descriptor), String> {
    let layer_types: Vec<&str> = manifest
        .layers
        .iter()
        .map(|l| l.media_type.as_str())
        .collect();
    if manifest.artifact_type.as_deref() == Some(MOAT_PACKAGE_TYPE) {
        if manifest.config.media_type != OCI_EMPTY {
            return Err(format!(
                "a Moat package's config must be {OCI_EMPTY}, not {:?}",
                manifest.config.media_type
            ));
        }
        if layer_types != [WASM_LAYER, TOML_LAYER] {
            return Err(format!(
                "a Moat package has exactly two layers, {WASM_LAYER} then {TOML_LAYER}; this one has {layer_types:?}"
            ));
        }
        return Ok((
            PackageKind::Moat,
            manifest.layers[0].clone(),
            manifest.layers[1].clone(),
        ));
    }
    if manifest.config.media_type == WASM_CONFIG {
        if layer_types != [WASM_LAYER] {
            return Err(format!(
                "a Wasm artifact has exactly one {WASM_LAYER} layer; this one has {layer_types:?}"
            ));
        }
        return Ok((
            PackageKind::WasmArtifact,
            manifest.layers[0].clone(),
            manifest.config.clone(),
        ));
    }
    Err(format!(
        "artifactType {:?} with config {:?} is neither {MOAT_PACKAGE_TYPE} nor a {WASM_CONFIG} artifact",
        manifest.artifact_type.as_deref().unwrap_or("(none)"),
        manifest.config.media_type
    ))
}

/// Pull a package in full into memory: manifest, module and config, every digest checked.
pub async fn pull(
    client: &RegistryClient,
    reference: &Reference,
    progress: &dyn TransferProgress,
) -> Result<PulledPackage, PackageError> {
    let remote = inspect(client, reference).await?;
    let repo = reference.repository();
    let (config, module) = match remote.kind {
        PackageKind::Moat => {
            let bytes =
                pull_small(client, repo, &remote.config, MAX_CONFIG_BYTES, "config").await?;
            let what = format!("config layer of {reference}");
            check_config(&bytes, &what)?;
            let name = ConfigName::from_title(remote.config.title());
            let module = client
                .pull_blob(repo, &remote.module, MAX_MODULE_BYTES, progress)
                .await
                .map_err(|e| too_large_module(e, reference))?;
            (Some(ConfigFile { name, bytes }), module)
        }
        PackageKind::WasmArtifact => {
            let bytes = pull_small(
                client,
                repo,
                &remote.config,
                MAX_WASM_CONFIG_BYTES,
                "Wasm config",
            )
            .await?;
            check_wasm_config(&bytes, reference)?;
            let module = client
                .pull_blob(repo, &remote.module, MAX_MODULE_BYTES, progress)
                .await
                .map_err(|e| too_large_module(e, reference))?;
            (None, module)
        }
    };
    check_module(&module, &format!("module layer of {reference}"))?;
    Ok(PulledPackage {
        remote,
        module,
        config,
    })
}

/// Pull a package into `dir` as `main.wasm` (and `Moat.toml` or `Enarx.toml`), each file
/// written under a temporary name and renamed only after its digest checked out.
pub async fn pull_to_dir(
    client: &RegistryClient,
    reference: &Reference,
    dir: &Path,
    progress: &dyn TransferProgress,
) -> Result<(RemotePackage, Vec<PathBuf>), PackageError> {
    let remote = inspect(client, reference).await?;
    if remote.module.size > MAX_MODULE_BYTES {
        return Err(PackageError::TooLarge {
            what: format!("module layer of {reference}"),
            limit: MAX_MODULE_BYTES,
        });
    }
    std::fs::create_dir_all(dir).map_err(|e| io("creating", dir, e))?;
    let repo = reference.repository();
    // Fetch and check the config first (it is small and held in memory), then stream the module
    // to its file, and write the config only once both checked out: a failure anywhere leaves
    // the directory as it was.
    let config = if remote.kind == PackageKind::Moat {
        let bytes = pull_small(client, repo, &remote.config, MAX_CONFIG_BYTES, "config").await?;
        check_config(&bytes, &format!("config layer of {reference}"))?;
        Some((ConfigName::from_title(remote.config.title()), bytes))
    } else {
        None
    };
    let module_path = dir.join(MODULE_FILE);
    client
        .pull_blob_to_file(repo, &remote.module, &module_path, progress)
        .await?;
    let mut written = vec![module_path];
    if let Some((name, bytes)) = config {
        let path = dir.join(name.file_name());
        write_atomically(&path, &bytes)?;
        written.push(path);
    }
    Ok((remote, written))
}

async fn pull_small(
    client: &RegistryClient,
    repo: &str,
    desc: &Descriptor,
    limit: u64,
    what: &str,
) -> Result<Bytes, PackageError> {
    if desc.size > limit {
        return Err(PackageError::TooLarge {
            what: format!("{what} blob {}", desc.digest),
            limit,
        });
    }
    Ok(client
        .pull_blob(repo, desc, limit, &crate::registry::NoProgress)
        .await?)
}

fn too_large_module(err: RegistryError, reference: &Reference) -> PackageError {
    match err {
        RegistryError::TooLarge { limit, .. } => PackageError::TooLarge {
            what: format!("module layer of {reference}"),
            limit,
        },
        other => PackageError::Registry(other),
    }
}

/// A core module header: `\0asm` then version 1. Components (and anything else) are refused.
pub fn check_module(bytes: &[u8], what: &str) -> Result<(), PackageError> {
    let not_wasm = |reason: &str| PackageError::NotWasm {
        what: what.to_owned(),
        reason: reason.to_owned(),
    };
    if bytes.len() < 8 {
        return Err(not_wasm("shorter than the 8-byte header"));
    }
    if &bytes[..4] != b"\0asm" {
        return Err(not_wasm("it does not start with the \\0asm magic"));
    }
    match bytes[4..8] {
        [1, 0, 0, 0] => Ok(()),
        [0x0d, 0, 1, 0] => Err(not_wasm(
            "it is a Wasm component; Moat runs core modules built for wasm32-wasip1",
        )),
        _ => Err(not_wasm("unknown binary format version")),
    }
}

/// A config must be UTF-8 TOML (the Keep validates its meaning before running anything).
pub fn check_config(bytes: &[u8], what: &str) -> Result<(), PackageError> {
    let bad = |reason: String| PackageError::BadConfig {
        what: what.to_owned(),
        reason,
    };
    let text = std::str::from_utf8(bytes).map_err(|e| bad(format!("not UTF-8: {e}")))?;
    text.parse::<toml::Table>()
        .map_err(|e| bad(e.to_string().trim_end().to_owned()))?;
    Ok(())
}

/// The CNCF config must say `architecture: wasm` and `os: wasip1`.
fn check_wasm_config(bytes: &[u8], reference: &Reference) -> Result<(), PackageError> {
    #[derive(serde::Deserialize)]
    struct WasmConfig {
        architecture: String,
        os: String,
    }
    let bad = |reason: String| PackageError::NotAPackage {
        reference: reference.to_string(),
        reason,
    };
    let config: WasmConfig = serde_json::from_slice(bytes)
        .map_err(|e| bad(format!("its {WASM_CONFIG} blob is not valid: {e}")))?;
    if config.architecture != "wasm" {
        return Err(bad(format!(
            "architecture is {:?}, not \"wasm\"",
            config.architecture
        )));
    }
    if config.os != "wasip1" {
        return Err(bad(format!(
            "os is {:?}; Moat runs wasip1 modules",
            config.os.chars().take(40).collect::<String>()
        )));
    }
    Ok(())
}

fn read_config(path: &Path, name: ConfigName) -> Result<ConfigFile, PackageError> {
    let bytes = read_limited(path, MAX_CONFIG_BYTES)?;
    check_config(&bytes, &path.display().to_string())?;
    Ok(ConfigFile {
        name,
        bytes: Bytes::from(bytes),
    })
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, PackageError> {
    use std::io::Read as _;
    let file = std::fs::File::open(path).map_err(|e| io("opening", path, e))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io("reading", path, e))?;
    if bytes.len() as u64 > limit {
        return Err(PackageError::TooLarge {
            what: path.display().to_string(),
            limit,
        });
    }
    Ok(bytes)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), PackageError> {
    use std::io::Write as _;
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".moat-download.")
        .tempfile_in(dir)
        .map_err(|e| io("creating a temporary file in", dir, e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| io("writing", tmp.path(), e))?;
    tmp.persist(path)
        .map_err(|e| io("renaming into", path, e.error))?;
    Ok(())
}

fn io(action: &'static str, path: &Path, source: std::io::Error) -> PackageError {
    PackageError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODULE: &[u8] = b"\0asm\x01\0\0\0";

    fn dir_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, bytes) in files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        dir
    }

    #[test]
    fn builds_a_moat_package_from_a_directory() {
        let dir = dir_with(&[("main.wasm", MODULE), ("Enarx.toml", b"args = [\"x\"]\n")]);
        let pkg = LocalPackage::from_path(dir.path(), None).unwrap();
        let built = pkg.build();
        assert_eq!(built.kind, PackageKind::Moat);
        assert_eq!(
            built.manifest.artifact_type.as_deref(),
            Some(MOAT_PACKAGE_TYPE)
        );
        assert_eq!(built.manifest.config.media_type, OCI_EMPTY);
        let (kind, module, config) = classify(&built.manifest).unwrap();
        assert_eq!(kind, PackageKind::Moat);
        assert_eq!(module.title(), Some("main.wasm"));
        assert_eq!(config.title(), Some("Enarx.toml"));
        assert_eq!(built.digest, Digest::sha256_of(&built.manifest_bytes));
        // Deterministic: the same files give the same digest.
        assert_eq!(
            LocalPackage::from_path(dir.path(), None)
                .unwrap()
                .build()
                .digest,
            built.digest
        );
        for (desc, bytes) in &built.blobs {
            assert!(desc.digest.matches(bytes));
            assert_eq!(desc.size, bytes.len() as u64);
        }
    }

    #[test]
    fn a_module_without_config_is_a_wasm_artifact() {
        let dir = dir_with(&[("app.wasm", MODULE), ("cfg.toml", b"")]);
        let built = LocalPackage::from_path(&dir.path().join("app.wasm"), None)
            .unwrap()
            .build();
        assert_eq!(built.kind, PackageKind::WasmArtifact);
        assert_eq!(
            classify(&built.manifest).unwrap().0,
            PackageKind::WasmArtifact
        );
        let with = LocalPackage::from_path(
            &dir.path().join("app.wasm"),
            Some(&dir.path().join("cfg.toml")),
        )
        .unwrap()
        .build();
        assert_eq!(with.kind, PackageKind::Moat);
        assert_eq!(with.manifest.layers[1].title(), Some("Moat.toml"));
    }

    #[test]
    fn refuses_bad_local_packages() {
        let empty = dir_with(&[]);
        assert!(matches!(
            LocalPackage::from_path(empty.path(), None),
            Err(PackageError::MissingModule { .. })
        ));
        assert!(matches!(
            LocalPackage::from_path(&empty.path().join("nope.wasm"), None),
            Err(PackageError::Io { .. })
        ));
        let both = dir_with(&[
            ("main.wasm", MODULE),
            ("Moat.toml", b""),
            ("Enarx.toml", b""),
        ]);
        assert!(matches!(
            LocalPackage::from_path(both.path(), None),
            Err(PackageError::AmbiguousConfig { .. })
        ));
        let has = dir_with(&[("main.wasm", MODULE), ("Moat.toml", b""), ("x.toml", b"")]);
        assert!(matches!(
            LocalPackage::from_path(has.path(), Some(&has.path().join("x.toml"))),
            Err(PackageError::ConfigConflict { .. })
        ));
        let modules: [&[u8]; 5] = [
            b"",
            b"\0asm\x01\0\0",
            b"\0ASM\x01\0\0\0",
            b"\0asm\x0d\0\x01\0",
            b"\0asm\x02\0\0\0",
        ];
        for module in modules {
            let d = dir_with(&[("main.wasm", module), ("Moat.toml", b"")]);
            assert!(
                matches!(
                    LocalPackage::from_path(d.path(), None),
                    Err(PackageError::NotWasm { .. })
                ),
                "{module:?} accepted"
            );
        }
        let configs: [&[u8]; 3] = [b"\xff\xfe", b"args = [", b"a = 1\na = 2\n"];
        for config in configs {
            let d = dir_with(&[("main.wasm", MODULE), ("Moat.toml", config)]);
            assert!(
                matches!(
                    LocalPackage::from_path(d.path(), None),
                    Err(PackageError::BadConfig { .. })
                ),
                "{config:?} accepted"
            );
        }
        let big = dir_with(&[("main.wasm", MODULE)]);
        std::fs::write(
            big.path().join("Moat.toml"),
            vec![b'#'; MAX_CONFIG_BYTES as usize + 1],
        )
        .unwrap();
        assert!(matches!(
            LocalPackage::from_path(big.path(), None),
            Err(PackageError::TooLarge { .. })
        ));
    }

    #[test]
    fn classify_refuses_other_layouts() {
        let dir = dir_with(&[("main.wasm", MODULE), ("Moat.toml", b"")]);
        let good = LocalPackage::from_path(dir.path(), None)
            .unwrap()
            .build()
            .manifest;
        let mut swapped = good.clone();
        swapped.layers.reverse();
        let mut extra = good.clone();
        extra.layers.push(extra.layers[0].clone());
        let mut one = good.clone();
        one.layers.pop();
        let mut wrong_config = good.clone();
        wrong_config.config.media_type = "application/vnd.oci.image.config.v1+json".into();
        let mut image = good.clone();
        image.artifact_type = None;
        for m in [swapped, extra, one, wrong_config, image] {
            assert!(classify(&m).is_err(), "{m:?} accepted");
        }
    }
}
