//! The registry's state: configuration, metadata, blob store, live upload sessions; opening it
//! (with the start-up recovery sweep) and the periodic expiry of abandoned uploads.
//!
//! Recovery after a crash or `kill -9` relies on the order in which things are written:
//! upload bytes are acknowledged only after they are fsynced and recorded; a blob file is
//! renamed into place before its database record is committed; a blob record is removed before
//! its file. So at start-up every inconsistency is one of: a staged file with no session (an
//! interrupted monolithic upload: delete it), a session with no file (its blob was committed
//! just before the crash: drop the session), a blob file with no record (committed to disk but
//! never recorded, or its record was deleted: delete the file), a record with no file (cannot
//! happen by that order; forgotten with a warning should the disk have lost it).

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::digest::Hasher;
use crate::meta::{Db, MetaError, MetaStore, now_secs};
use crate::policy::ClaimsReader;
use crate::storage::{BlobStore, FsBlobStore, StorageError};

/// Manifests larger than this are refused with 413 before being buffered (the spec suggests
/// registries accept at least 4 MiB).
pub const DEFAULT_MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// Largest blob accepted in one upload.
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 16 * 1024 * 1024 * 1024;
/// An upload session untouched this long is deleted with its data.
pub const DEFAULT_UPLOAD_EXPIRY: Duration = Duration::from_secs(24 * 3600);
/// A request body that sends nothing for this long is abandoned (a stalled peer holds no slot).
pub const DEFAULT_BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Clone, Debug)]
pub struct RegistryConfig {
    pub data_dir: PathBuf,
    /// `host:port` as clients and certificates name this registry (`oci://host:port/repo`).
    pub public_authority: String,
    pub max_manifest_bytes: usize,
    pub max_blob_bytes: u64,
    pub upload_expiry: Duration,
    pub body_idle_timeout: Duration,
    /// Repositories created implicitly by a push are private (deny by default).
    pub new_repos_private: bool,
}

impl RegistryConfig {
    pub fn new(data_dir: impl Into<PathBuf>, public_authority: impl Into<String>) -> Self {
        RegistryConfig {
            data_dir: data_dir.into(),
            public_authority: public_authority.into(),
            max_manifest_bytes: DEFAULT_MAX_MANIFEST_BYTES,
            max_blob_bytes: DEFAULT_MAX_BLOB_BYTES,
            upload_expiry: DEFAULT_UPLOAD_EXPIRY,
            body_idle_timeout: DEFAULT_BODY_IDLE_TIMEOUT,
            new_repos_private: true,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("drawbridge.db")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Meta(#[from] MetaError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// The running hash of a chunked upload, kept between requests so each byte is hashed once.
/// After a restart it is rebuilt from the staged file.
#[derive(Default)]
pub struct SessionState {
    pub hasher: Option<(Hasher, u64)>,
}

pub struct Registry {
    pub config: RegistryConfig,
    pub meta: MetaStore,
    pub blobs: Arc<dyn BlobStore>,
    /// Where uploads are written while they are hashed (same file system as the blob store).
    pub staging: PathBuf,
    pub sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<SessionState>>>>,
    /// Serialises "rename blob file + record it" against "drop record + delete file", so a
    /// delete racing a re-upload of the same content cannot remove a file that is recorded.
    pub blob_gate: tokio::sync::Mutex<()>,
    pub read_claims: ClaimsReader,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Registry {
    /// Open (or create) the registry under `config.data_dir` and repair what a crash left.
    pub async fn open(config: RegistryConfig) -> Result<Arc<Self>, OpenError> {
        let staging = config.data_dir.join("uploads");
        for dir in [&config.data_dir, &staging] {
            std::fs::create_dir_all(dir).map_err(|source| OpenError::DataDir {
                path: dir.clone(),
                source,
            })?;
        }
        let db = Db::open(&config.db_path())?;
        let blobs = Arc::new(FsBlobStore::open(config.data_dir.join("blobs"))?);
        let registry = Arc::new(Registry {
            meta: MetaStore::new(db),
            blobs,
            staging,
            sessions: Mutex::new(HashMap::new()),
            blob_gate: tokio::sync::Mutex::new(()),
            read_claims: crate::policy::attest_claims,
            config,
        });
        registry.recover().await?;
        Ok(registry)
    }

    /// Replace the attestation-claims reader (tests of the release rules).
    pub fn with_claims_reader(self: Arc<Self>, reader: ClaimsReader) -> Arc<Self> {
        match Arc::try_unwrap(self) {
            Ok(mut registry) => {
                registry.read_claims = reader;
                Arc::new(registry)
            }
            Err(shared) => shared,
        }
    }

    /// The staged file of an upload session.
    pub fn upload_path(&self, id: &str) -> PathBuf {
        self.staging.join(id)
    }

    /// The per-session lock (created on first use).
    pub fn session(&self, id: &str) -> Arc<tokio::sync::Mutex<SessionState>> {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        map.entry(id.to_owned()).or_default().clone()
    }

    pub fn forget_session(&self, id: &str) {
        let mut map = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(id);
    }

    async fn recover(&self) -> Result<(), OpenError> {
        let expired_before = now_secs() - self.config.upload_expiry.as_secs() as i64;
        let expired = self
            .meta
            .run(move |db| db.uploads_idle_since(expired_before))
            .await?;
        for id in expired {
            self.drop_upload(&id).await?;
        }

        // Staged files and sessions must match one to one.
        let sessions: HashSet<String> = self
            .meta
            .run(|db| db.upload_ids())
            .await?
            .into_iter()
            .collect();
        let mut staged = HashSet::new();
        let entries = std::fs::read_dir(&self.staging).map_err(|source| OpenError::DataDir {
            path: self.staging.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if sessions.contains(&name) {
                staged.insert(name);
            } else {
                tracing::info!(file = %entry.path().display(), "removing staged upload with no session");
                let _ = std::fs::remove_file(entry.path());
            }
        }
        for id in sessions.difference(&staged) {
            let id = id.clone();
            tracing::info!(upload = %id, "dropping upload session whose data is gone");
            self.meta.run(move |db| db.upload_delete(&id)).await?;
        }

        // Blob files and records must match too.
        let recorded: HashSet<String> = self
            .meta
            .run(|db| db.blob_digests())
            .await?
            .into_iter()
            .collect();
        let stored = self.blobs.list().await?;
        let stored_names: HashSet<String> = stored.iter().map(|d| d.to_string()).collect();
        for digest in stored {
            if !recorded.contains(&digest.to_string()) {
                tracing::info!(%digest, "removing blob file that was never recorded");
                self.blobs.delete(digest).await?;
            }
        }
        for digest in recorded.difference(&stored_names) {
            tracing::warn!(%digest, "blob recorded but its file is missing; forgetting it");
            let digest = digest.clone();
            self.meta.run(move |db| db.blob_forget(&digest)).await?;
        }
        Ok(())
    }

    /// Delete an upload session and its staged data.
    pub async fn drop_upload(&self, id: &str) -> Result<(), MetaError> {
        let owned = id.to_owned();
        self.meta.run(move |db| db.upload_delete(&owned)).await?;
        let _ = tokio::fs::remove_file(self.upload_path(id)).await;
        self.forget_session(id);
        Ok(())
    }

    /// Expire idle upload sessions now (the server also runs this periodically).
    pub async fn expire_uploads(&self) -> Result<usize, MetaError> {
        let before = now_secs() - self.config.upload_expiry.as_secs() as i64;
        let expired = self
            .meta
            .run(move |db| db.uploads_idle_since(before))
            .await?;
        let count = expired.len();
        for id in expired {
            // Hold the session lock so an upload in progress is not pulled from under itself.
            let session = self.session(&id);
            let _guard = session.lock().await;
            self.drop_upload(&id).await?;
            tracing::info!(upload = %id, "expired idle upload session");
        }
        Ok(count)
    }
}
