//! Blob storage behind a trait, with the local file system as its one backend.
//!
//! Uploads are always staged on the local disk while they are hashed (object stores have no
//! rename, and a digest must be checked before anything is visible). Only a staged file whose
//! digest has been verified and which has been fsynced is handed to [`BlobStore::commit`]. The
//! file-system backend renames it into `blobs/<alg>/<hex>` and fsyncs the directory, so a crash
//! at any point leaves either no file or a complete one under the final name. Whether a blob is
//! *visible* is decided by the metadata store, which records it only after `commit` returned.

use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use futures::future::BoxFuture;
use tokio::io::AsyncRead;

use crate::digest::Digest;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("blocking storage task failed: {0}")]
    Task(String),
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StorageError + 'a {
    move |source| StorageError::Io {
        op,
        path: path.to_owned(),
        source,
    }
}

/// A blob opened for reading.
pub struct BlobReader {
    pub size: u64,
    pub reader: Pin<Box<dyn AsyncRead + Send>>,
}

/// Where verified blobs live. Methods return boxed futures so a backend may be remote.
pub trait BlobStore: Send + Sync + std::fmt::Debug + 'static {
    /// Make a verified, fsynced staged file the content of `digest`. Consumes the staged file.
    /// Committing a digest that already exists is not an error (the content is the same).
    fn commit(&self, staged: PathBuf, digest: Digest) -> BoxFuture<'_, Result<(), StorageError>>;

    /// Open a committed blob, or `None` if it is not there.
    fn open(&self, digest: Digest) -> BoxFuture<'_, Result<Option<BlobReader>, StorageError>>;

    /// Remove a committed blob; removing a missing one is not an error.
    fn delete(&self, digest: Digest) -> BoxFuture<'_, Result<(), StorageError>>;

    /// Every committed blob (for the start-up sweep of blobs the metadata never recorded).
    fn list(&self) -> BoxFuture<'_, Result<Vec<Digest>, StorageError>>;
}

/// Blobs as files under `<root>/<alg>/<hex>`.
#[derive(Debug)]
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let root = root.into();
        for alg in ["sha256", "sha512"] {
            let dir = root.join(alg);
            std::fs::create_dir_all(&dir).map_err(io_err("create", &dir))?;
        }
        Ok(FsBlobStore { root })
    }

    fn path_of(&self, digest: &Digest) -> PathBuf {
        self.root
            .join(digest.algorithm().as_str())
            .join(digest.hex())
    }
}

/// fsync a directory so a rename or unlink inside it survives a power cut.
pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync directory", dir))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StorageError> + Send + 'static,
) -> Result<T, StorageError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StorageError::Task(e.to_string()))?
}

impl BlobStore for FsBlobStore {
    fn commit(&self, staged: PathBuf, digest: Digest) -> BoxFuture<'_, Result<(), StorageError>> {
        let target = self.path_of(&digest);
        Box::pin(blocking(move || {
            // rename(2) replaces atomically; if two uploads of the same content race, the last
            // rename wins and both names held identical bytes, so readers never see a mix.
            std::fs::rename(&staged, &target).map_err(io_err("rename into place", &target))?;
            sync_dir(target.parent().expect("blob paths have a parent"))
        }))
    }

    fn open(&self, digest: Digest) -> BoxFuture<'_, Result<Option<BlobReader>, StorageError>> {
        let path = self.path_of(&digest);
        Box::pin(async move {
            let file = match tokio::fs::File::open(&path).await {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(io_err("open", &path)(e)),
            };
            let size = file.metadata().await.map_err(io_err("stat", &path))?.len();
            Ok(Some(BlobReader {
                size,
                reader: Box::pin(file),
            }))
        })
    }

    fn delete(&self, digest: Digest) -> BoxFuture<'_, Result<(), StorageError>> {
        let path = self.path_of(&digest);
        Box::pin(blocking(move || {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(io_err("remove", &path)(e)),
            }
            sync_dir(path.parent().expect("blob paths have a parent"))
        }))
    }

    fn list(&self) -> BoxFuture<'_, Result<Vec<Digest>, StorageError>> {
        let root = self.root.clone();
        Box::pin(blocking(move || {
            let mut found = Vec::new();
            for alg in ["sha256", "sha512"] {
                let dir = root.join(alg);
                for entry in std::fs::read_dir(&dir).map_err(io_err("list", &dir))? {
                    let entry = entry.map_err(io_err("list", &dir))?;
                    let name = entry.file_name();
                    match format!("{alg}:{}", name.to_string_lossy()).parse::<Digest>() {
                        Ok(digest) => found.push(digest),
                        // Not a blob name: left over from something else; not ours to judge.
                        Err(_) => {
                            tracing::warn!(path = %entry.path().display(), "stray file in blob store")
                        }
                    }
                }
            }
            Ok(found)
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::digest::Algorithm;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn commit_open_list_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path().join("blobs")).unwrap();
        let digest = Algorithm::Sha256.digest(b"content");
        assert!(store.open(digest.clone()).await.unwrap().is_none());

        for _ in 0..2 {
            // Committing the same content twice leaves one copy.
            let staged = dir.path().join("staged");
            std::fs::write(&staged, b"content").unwrap();
            store.commit(staged.clone(), digest.clone()).await.unwrap();
            assert!(!staged.exists());
        }
        let mut blob = store.open(digest.clone()).await.unwrap().unwrap();
        assert_eq!(blob.size, 7);
        let mut read = Vec::new();
        blob.reader.read_to_end(&mut read).await.unwrap();
        assert_eq!(read, b"content");
        assert_eq!(store.list().await.unwrap(), vec![digest.clone()]);

        store.delete(digest.clone()).await.unwrap();
        store.delete(digest.clone()).await.unwrap();
        assert!(store.open(digest).await.unwrap().is_none());
        assert!(store.list().await.unwrap().is_empty());
    }
}
