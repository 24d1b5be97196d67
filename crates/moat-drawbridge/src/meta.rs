//! Metadata in SQLite: repositories (visibility, release policy), which blobs each repository
//! holds, manifests (their exact bytes), tags, upload sessions, users and tokens.
//!
//! Every change that must be all-or-nothing (a manifest with its tag, a blob with its link, a
//! blob's last link with its record) is one transaction. The database runs in WAL mode with
//! `synchronous = FULL`, so a committed transaction survives `kill -9` and a power cut, and an
//! interrupted one leaves nothing. Foreign keys make a dangling tag impossible: deleting a
//! manifest deletes its tags in the same transaction.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, params};

#[derive(Debug, thiserror::Error)]
pub enum MetaError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("blocking database task failed: {0}")]
    Task(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS repositories (
    name TEXT PRIMARY KEY,
    private INTEGER NOT NULL,
    policy TEXT,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS blobs (
    digest TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS repo_blobs (
    repo TEXT NOT NULL REFERENCES repositories(name) ON DELETE CASCADE,
    digest TEXT NOT NULL REFERENCES blobs(digest),
    PRIMARY KEY (repo, digest)
);
CREATE INDEX IF NOT EXISTS repo_blobs_digest ON repo_blobs(digest);
CREATE TABLE IF NOT EXISTS manifests (
    repo TEXT NOT NULL REFERENCES repositories(name) ON DELETE CASCADE,
    digest TEXT NOT NULL,
    sha512 TEXT NOT NULL,
    media_type TEXT NOT NULL,
    artifact_type TEXT,
    subject TEXT,
    annotations TEXT,
    bytes BLOB NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (repo, digest)
);
CREATE INDEX IF NOT EXISTS manifests_sha512 ON manifests(repo, sha512);
CREATE INDEX IF NOT EXISTS manifests_subject ON manifests(repo, subject);
CREATE TABLE IF NOT EXISTS tags (
    repo TEXT NOT NULL,
    tag TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (repo, tag),
    FOREIGN KEY (repo, digest) REFERENCES manifests(repo, digest) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS uploads (
    id TEXT PRIMARY KEY,
    repo TEXT NOT NULL,
    size INTEGER NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    hash BLOB NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created INTEGER NOT NULL,
    revoked INTEGER
);
"#;

pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A repository's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RepoInfo {
    pub name: String,
    pub private: bool,
    /// The release policy as stored (normalised TOML), if any.
    pub policy: Option<String>,
}

/// A manifest as pushed, plus what the API needs to know about it without re-parsing.
#[derive(Clone, Debug)]
pub struct ManifestRecord {
    /// `sha256:...` of `bytes`: the key.
    pub digest: String,
    /// `sha512:...` of `bytes`, so a pull by either algorithm finds it.
    pub sha512: String,
    pub media_type: String,
    pub artifact_type: Option<String>,
    pub subject: Option<String>,
    /// The manifest's `annotations` object as JSON text, if any.
    pub annotations: Option<String>,
    pub bytes: Vec<u8>,
}

/// A token as stored: never the secret, only its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    pub id: String,
    pub user: String,
    pub scopes: String,
    pub created: i64,
    pub revoked: Option<i64>,
}

/// What removing a blob from a repository did.
#[derive(Debug, PartialEq, Eq)]
pub enum Unlinked {
    /// The repository did not hold it.
    NotLinked,
    /// Removed from this repository; others still hold it.
    StillUsed,
    /// That was the last link: the record is gone and the stored content may be deleted.
    Orphaned,
}

/// The database connection. One connection, used from blocking tasks through [`MetaStore`].
pub struct Db {
    conn: Connection,
}

impl Db {
    pub fn open(path: &Path) -> Result<Self, MetaError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Db { conn })
    }

    // ---- repositories ----

    pub fn repo_get(&self, name: &str) -> Result<Option<RepoInfo>, MetaError> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, private, policy FROM repositories WHERE name = ?1",
                params![name],
                |r| {
                    Ok(RepoInfo {
                        name: r.get(0)?,
                        private: r.get(1)?,
                        policy: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    /// Create the repository if it does not exist (with `private`), and return it.
    pub fn repo_ensure(&self, name: &str, private: bool) -> Result<RepoInfo, MetaError> {
        self.conn.execute(
            "INSERT OR IGNORE INTO repositories (name, private, created) VALUES (?1, ?2, ?3)",
            params![name, private, now_secs()],
        )?;
        self.repo_get(name)?
            .ok_or_else(|| MetaError::NotFound(format!("repository {name} vanished")))
    }

    /// Create or update a repository's visibility.
    pub fn repo_set_private(&self, name: &str, private: bool) -> Result<RepoInfo, MetaError> {
        self.conn.execute(
            "INSERT INTO repositories (name, private, created) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET private = excluded.private",
            params![name, private, now_secs()],
        )?;
        self.repo_ensure(name, private)
    }

    pub fn repo_set_policy(&self, name: &str, policy: Option<&str>) -> Result<(), MetaError> {
        let changed = self.conn.execute(
            "UPDATE repositories SET policy = ?2 WHERE name = ?1",
            params![name, policy],
        )?;
        if changed == 0 {
            return Err(MetaError::NotFound(format!(
                "repository {name} does not exist (create it first)"
            )));
        }
        Ok(())
    }

    pub fn repo_list(&self) -> Result<Vec<RepoInfo>, MetaError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, private, policy FROM repositories ORDER BY name")?;
        let rows = stmt.query_map([], |r| {
            Ok(RepoInfo {
                name: r.get(0)?,
                private: r.get(1)?,
                policy: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- blobs ----

    /// The size of a blob if `repo` holds it.
    pub fn blob_in_repo(&self, repo: &str, digest: &str) -> Result<Option<u64>, MetaError> {
        Ok(self
            .conn
            .query_row(
                "SELECT b.size FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest
                 WHERE rb.repo = ?1 AND rb.digest = ?2",
                params![repo, digest],
                |r| r.get::<_, i64>(0),
            )
            .optional()?
            .map(|s| s as u64))
    }

    /// Record a committed blob and link it into `repo` (creating the repository if needed).
    pub fn blob_record(
        &mut self,
        repo: &str,
        private_if_new: bool,
        digest: &str,
        size: u64,
    ) -> Result<(), MetaError> {
        let tx = self.conn.transaction()?;
        let now = now_secs();
        tx.execute(
            "INSERT OR IGNORE INTO repositories (name, private, created) VALUES (?1, ?2, ?3)",
            params![repo, private_if_new, now],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO blobs (digest, size, created) VALUES (?1, ?2, ?3)",
            params![digest, size as i64, now],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO repo_blobs (repo, digest) VALUES (?1, ?2)",
            params![repo, digest],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Cross-repository mount: link a blob that `from` holds into `repo`. Returns its size, or
    /// `None` if `from` does not hold it.
    pub fn blob_mount(
        &mut self,
        repo: &str,
        private_if_new: bool,
        from: &str,
        digest: &str,
    ) -> Result<Option<u64>, MetaError> {
        let tx = self.conn.transaction()?;
        let size: Option<i64> = tx
            .query_row(
                "SELECT b.size FROM repo_blobs rb JOIN blobs b ON b.digest = rb.digest
                 WHERE rb.repo = ?1 AND rb.digest = ?2",
                params![from, digest],
                |r| r.get(0),
            )
            .optional()?;
        let Some(size) = size else {
            return Ok(None);
        };
        tx.execute(
            "INSERT OR IGNORE INTO repositories (name, private, created) VALUES (?1, ?2, ?3)",
            params![repo, private_if_new, now_secs()],
        )?;
        tx.execute(
            "INSERT OR IGNORE INTO repo_blobs (repo, digest) VALUES (?1, ?2)",
            params![repo, digest],
        )?;
        tx.commit()?;
        Ok(Some(size as u64))
    }

    /// Remove a blob from a repository; drop its record when no repository holds it any more.
    pub fn blob_unlink(&mut self, repo: &str, digest: &str) -> Result<Unlinked, MetaError> {
        let tx = self.conn.transaction()?;
        let removed = tx.execute(
            "DELETE FROM repo_blobs WHERE repo = ?1 AND digest = ?2",
            params![repo, digest],
        )?;
        if removed == 0 {
            return Ok(Unlinked::NotLinked);
        }
        let others: i64 = tx.query_row(
            "SELECT COUNT(*) FROM repo_blobs WHERE digest = ?1",
            params![digest],
            |r| r.get(0),
        )?;
        let outcome = if others == 0 {
            tx.execute("DELETE FROM blobs WHERE digest = ?1", params![digest])?;
            Unlinked::Orphaned
        } else {
            Unlinked::StillUsed
        };
        tx.commit()?;
        Ok(outcome)
    }

    pub fn blob_digests(&self) -> Result<Vec<String>, MetaError> {
        let mut stmt = self.conn.prepare("SELECT digest FROM blobs")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forget a blob whose content is missing from storage (start-up consistency check).
    pub fn blob_forget(&mut self, digest: &str) -> Result<(), MetaError> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM repo_blobs WHERE digest = ?1", params![digest])?;
        tx.execute("DELETE FROM blobs WHERE digest = ?1", params![digest])?;
        tx.commit()?;
        Ok(())
    }

    // ---- manifests and tags ----

    /// Store a manifest (and point `tag` at it) in one transaction.
    pub fn manifest_put(
        &mut self,
        repo: &str,
        private_if_new: bool,
        record: &ManifestRecord,
        tag: Option<&str>,
    ) -> Result<(), MetaError> {
        let tx = self.conn.transaction()?;
        let now = now_secs();
        tx.execute(
            "INSERT OR IGNORE INTO repositories (name, private, created) VALUES (?1, ?2, ?3)",
            params![repo, private_if_new, now],
        )?;
        tx.execute(
            // An upsert, not INSERT OR REPLACE: REPLACE deletes the old row first, and the
            // cascade would take every tag of a re-pushed manifest with it.
            "INSERT INTO manifests
               (repo, digest, sha512, media_type, artifact_type, subject, annotations, bytes, created)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT(repo, digest) DO UPDATE SET media_type = excluded.media_type",
            params![
                repo,
                record.digest,
                record.sha512,
                record.media_type,
                record.artifact_type,
                record.subject,
                record.annotations,
                record.bytes,
                now
            ],
        )?;
        if let Some(tag) = tag {
            tx.execute(
                "INSERT INTO tags (repo, tag, digest) VALUES (?1, ?2, ?3)
                 ON CONFLICT(repo, tag) DO UPDATE SET digest = excluded.digest",
                params![repo, tag, record.digest],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    fn manifest_where(
        &self,
        repo: &str,
        clause: &str,
        key: &str,
    ) -> Result<Option<ManifestRecord>, MetaError> {
        let sql = format!(
            "SELECT digest, sha512, media_type, artifact_type, subject, annotations, bytes
             FROM manifests WHERE repo = ?1 AND {clause}"
        );
        Ok(self
            .conn
            .query_row(&sql, params![repo, key], |r| {
                Ok(ManifestRecord {
                    digest: r.get(0)?,
                    sha512: r.get(1)?,
                    media_type: r.get(2)?,
                    artifact_type: r.get(3)?,
                    subject: r.get(4)?,
                    annotations: r.get(5)?,
                    bytes: r.get(6)?,
                })
            })
            .optional()?)
    }

    /// A manifest by digest (either algorithm).
    pub fn manifest_by_digest(
        &self,
        repo: &str,
        digest: &str,
    ) -> Result<Option<ManifestRecord>, MetaError> {
        if digest.starts_with("sha512:") {
            self.manifest_where(repo, "sha512 = ?2", digest)
        } else {
            self.manifest_where(repo, "digest = ?2", digest)
        }
    }

    pub fn manifest_by_tag(
        &self,
        repo: &str,
        tag: &str,
    ) -> Result<Option<ManifestRecord>, MetaError> {
        self.manifest_where(
            repo,
            "digest = (SELECT digest FROM tags WHERE repo = ?1 AND tag = ?2)",
            tag,
        )
    }

    /// Delete a manifest and every tag pointing at it. False if there was none.
    pub fn manifest_delete(&mut self, repo: &str, digest: &str) -> Result<bool, MetaError> {
        let column = if digest.starts_with("sha512:") {
            "sha512"
        } else {
            "digest"
        };
        let tx = self.conn.transaction()?;
        let removed = tx.execute(
            &format!("DELETE FROM manifests WHERE repo = ?1 AND {column} = ?2"),
            params![repo, digest],
        )?;
        tx.commit()?;
        Ok(removed > 0)
    }

    /// Does `repo` hold this manifest (by sha256 or sha512 digest)?
    pub fn manifest_exists(&self, repo: &str, digest: &str) -> Result<bool, MetaError> {
        Ok(self.manifest_by_digest(repo, digest)?.is_some())
    }

    pub fn tag_delete(&mut self, repo: &str, tag: &str) -> Result<bool, MetaError> {
        Ok(self.conn.execute(
            "DELETE FROM tags WHERE repo = ?1 AND tag = ?2",
            params![repo, tag],
        )? > 0)
    }

    /// Tags in lexical (byte) order, after `last`, at most `n`.
    pub fn tags_list(
        &self,
        repo: &str,
        last: Option<&str>,
        n: Option<u32>,
    ) -> Result<Vec<String>, MetaError> {
        let mut stmt = self.conn.prepare(
            "SELECT tag FROM tags WHERE repo = ?1 AND tag > ?2 ORDER BY tag COLLATE BINARY LIMIT ?3",
        )?;
        let limit = n.map(i64::from).unwrap_or(-1);
        let rows = stmt.query_map(params![repo, last.unwrap_or(""), limit], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Manifests in `repo` whose `subject` is `digest`.
    pub fn referrers(&self, repo: &str, digest: &str) -> Result<Vec<ManifestRecord>, MetaError> {
        let mut stmt = self.conn.prepare(
            "SELECT digest, sha512, media_type, artifact_type, subject, annotations, bytes
             FROM manifests WHERE repo = ?1 AND subject = ?2 ORDER BY digest",
        )?;
        let rows = stmt.query_map(params![repo, digest], |r| {
            Ok(ManifestRecord {
                digest: r.get(0)?,
                sha512: r.get(1)?,
                media_type: r.get(2)?,
                artifact_type: r.get(3)?,
                subject: r.get(4)?,
                annotations: r.get(5)?,
                bytes: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- upload sessions ----

    pub fn upload_create(&self, id: &str, repo: &str) -> Result<(), MetaError> {
        let now = now_secs();
        self.conn.execute(
            "INSERT INTO uploads (id, repo, size, created, updated) VALUES (?1, ?2, 0, ?3, ?3)",
            params![id, repo, now],
        )?;
        Ok(())
    }

    /// `(repository, bytes acknowledged)` of a session.
    pub fn upload_get(&self, id: &str) -> Result<Option<(String, u64)>, MetaError> {
        Ok(self
            .conn
            .query_row(
                "SELECT repo, size FROM uploads WHERE id = ?1",
                params![id],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64)),
            )
            .optional()?)
    }

    pub fn upload_set_size(&self, id: &str, size: u64) -> Result<(), MetaError> {
        self.conn.execute(
            "UPDATE uploads SET size = ?2, updated = ?3 WHERE id = ?1",
            params![id, size as i64, now_secs()],
        )?;
        Ok(())
    }

    pub fn upload_delete(&self, id: &str) -> Result<bool, MetaError> {
        Ok(self
            .conn
            .execute("DELETE FROM uploads WHERE id = ?1", params![id])?
            > 0)
    }

    /// Sessions untouched since `before` (seconds since the epoch).
    pub fn uploads_idle_since(&self, before: i64) -> Result<Vec<String>, MetaError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM uploads WHERE updated < ?1")?;
        let rows = stmt.query_map(params![before], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn upload_ids(&self) -> Result<Vec<String>, MetaError> {
        let mut stmt = self.conn.prepare("SELECT id FROM uploads")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    // ---- users and tokens ----

    pub fn user_add(&self, name: &str) -> Result<(), MetaError> {
        let added = self.conn.execute(
            "INSERT OR IGNORE INTO users (name, created) VALUES (?1, ?2)",
            params![name, now_secs()],
        )?;
        if added == 0 {
            return Err(MetaError::Conflict(format!("user {name} already exists")));
        }
        Ok(())
    }

    pub fn user_exists(&self, name: &str) -> Result<bool, MetaError> {
        Ok(self
            .conn
            .query_row("SELECT 1 FROM users WHERE name = ?1", params![name], |_| {
                Ok(())
            })
            .optional()?
            .is_some())
    }

    pub fn token_insert(
        &self,
        id: &str,
        user: &str,
        hash: &[u8],
        scopes: &str,
    ) -> Result<(), MetaError> {
        if !self.user_exists(user)? {
            return Err(MetaError::NotFound(format!("user {user} does not exist")));
        }
        self.conn.execute(
            "INSERT INTO tokens (id, user, hash, scopes, created) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, user, hash, scopes, now_secs()],
        )?;
        Ok(())
    }

    /// The live (not revoked) token with this hash.
    pub fn token_by_hash(&self, hash: &[u8]) -> Result<Option<TokenRecord>, MetaError> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, user, scopes, created, revoked FROM tokens
                 WHERE hash = ?1 AND revoked IS NULL",
                params![hash],
                |r| {
                    Ok(TokenRecord {
                        id: r.get(0)?,
                        user: r.get(1)?,
                        scopes: r.get(2)?,
                        created: r.get(3)?,
                        revoked: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn token_revoke(&self, id: &str) -> Result<(), MetaError> {
        let changed = self.conn.execute(
            "UPDATE tokens SET revoked = ?2 WHERE id = ?1 AND revoked IS NULL",
            params![id, now_secs()],
        )?;
        if changed == 0 {
            return Err(MetaError::NotFound(format!("no live token with id {id}")));
        }
        Ok(())
    }

    pub fn token_list(&self) -> Result<Vec<TokenRecord>, MetaError> {
        let mut stmt = self.conn.prepare(
            "SELECT id, user, scopes, created, revoked FROM tokens ORDER BY created, id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(TokenRecord {
                id: r.get(0)?,
                user: r.get(1)?,
                scopes: r.get(2)?,
                created: r.get(3)?,
                revoked: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The database shared by request handlers; every call runs on a blocking thread.
#[derive(Clone)]
pub struct MetaStore {
    db: Arc<Mutex<Db>>,
}

impl std::fmt::Debug for MetaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetaStore")
    }
}

impl MetaStore {
    pub fn new(db: Db) -> Self {
        MetaStore {
            db: Arc::new(Mutex::new(db)),
        }
    }

    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Db) -> Result<T, MetaError> + Send + 'static,
    ) -> Result<T, MetaError> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || {
            // A panic while holding the lock cannot leave SQLite half-written (the transaction
            // rolls back when dropped), so a poisoned lock is safe to reuse.
            let mut guard = db.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| MetaError::Task(e.to_string()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(bytes: &[u8], subject: Option<&str>) -> ManifestRecord {
        use crate::digest::Algorithm;
        ManifestRecord {
            digest: Algorithm::Sha256.digest(bytes).to_string(),
            sha512: Algorithm::Sha512.digest(bytes).to_string(),
            media_type: "application/vnd.oci.image.manifest.v1+json".into(),
            artifact_type: None,
            subject: subject.map(str::to_owned),
            annotations: None,
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn deleting_a_manifest_removes_its_tags() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("m.db")).unwrap();
        let m = record(b"{}", None);
        db.manifest_put("r", true, &m, Some("a")).unwrap();
        db.manifest_put("r", true, &m, Some("b")).unwrap();
        // Pushing the same manifest again (by digest) keeps its tags.
        db.manifest_put("r", true, &m, None).unwrap();
        assert_eq!(db.tags_list("r", None, None).unwrap(), vec!["a", "b"]);
        assert!(db.manifest_by_tag("r", "a").unwrap().is_some());
        assert!(db.manifest_by_digest("r", &m.sha512).unwrap().is_some());
        assert!(db.manifest_delete("r", &m.digest).unwrap());
        assert!(db.tags_list("r", None, None).unwrap().is_empty());
        assert!(db.manifest_by_tag("r", "a").unwrap().is_none());
        assert!(!db.manifest_delete("r", &m.digest).unwrap());
    }

    #[test]
    fn tag_listing_pages_lexically() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("m.db")).unwrap();
        let m = record(b"{}", None);
        for tag in ["b", "a", "C", "c", "a1"] {
            db.manifest_put("r", true, &m, Some(tag)).unwrap();
        }
        assert_eq!(
            db.tags_list("r", None, None).unwrap(),
            ["C", "a", "a1", "b", "c"]
        );
        assert_eq!(db.tags_list("r", None, Some(2)).unwrap(), ["C", "a"]);
        assert_eq!(db.tags_list("r", Some("a"), Some(2)).unwrap(), ["a1", "b"]);
        assert!(db.tags_list("r", None, Some(0)).unwrap().is_empty());
    }

    #[test]
    fn last_unlink_orphans_the_blob() {
        let dir = tempfile::tempdir().unwrap();
        let mut db = Db::open(&dir.path().join("m.db")).unwrap();
        db.blob_record("a", true, "sha256:x", 3).unwrap();
        assert_eq!(db.blob_mount("b", true, "a", "sha256:x").unwrap(), Some(3));
        assert_eq!(db.blob_mount("b", true, "nope", "sha256:x").unwrap(), None);
        assert_eq!(
            db.blob_unlink("a", "sha256:x").unwrap(),
            Unlinked::StillUsed
        );
        assert_eq!(
            db.blob_unlink("a", "sha256:x").unwrap(),
            Unlinked::NotLinked
        );
        assert_eq!(db.blob_unlink("b", "sha256:x").unwrap(), Unlinked::Orphaned);
        assert!(db.blob_digests().unwrap().is_empty());
    }
}
