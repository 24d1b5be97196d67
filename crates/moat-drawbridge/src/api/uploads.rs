//! Blob uploads: start (`POST`, also monolithic with `?digest=` and cross-repository mount),
//! chunks (`PATCH` with `Content-Range`), status (`GET`), close (`PUT ?digest=`), cancel.
//!
//! Bytes go to a staged file under `uploads/<session id>`, hashed as they arrive. A chunk is
//! acknowledged (the session's size in the database moves) only after it was written and
//! fsynced; a crash mid-chunk leaves extra bytes past the acknowledged size, which the next
//! request truncates away. Closing checks the digest before [`BlobStore::commit`] and the
//! database record make the blob visible.
//!
//! [`BlobStore::commit`]: crate::storage::BlobStore::commit

use std::io::SeekFrom;
use std::path::{Path, PathBuf};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;
use tokio::io::{AsyncSeekExt, AsyncWriteExt, BufWriter};

use super::blobs::parse_digest;
use super::{Ctx, empty, range_header, refuse};
use crate::auth::{Action, random_bytes};
use crate::digest::{Algorithm, Digest, Hasher};
use crate::error::{ApiError, ErrorCode};
use crate::names::RepoName;
use crate::registry::Registry;

/// Session ids are 16 random bytes in hex: unguessable, and safe as a file name.
fn new_session_id() -> Result<String, ApiError> {
    random_bytes::<16>()
        .map(hex::encode)
        .map_err(|e| ApiError::internal(e.to_string()))
}

fn session_id_is_valid(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn upload_location(name: &RepoName, id: &str) -> String {
    format!("/v2/{name}/blobs/uploads/{id}")
}

fn blob_location(name: &RepoName, digest: &Digest) -> String {
    format!("/v2/{name}/blobs/{digest}")
}

fn io_failure(what: &str, path: &Path, err: std::io::Error) -> ApiError {
    tracing::error!(path = %path.display(), error = %err, "{what}");
    ApiError::internal(format!("{what} failed; nothing was stored"))
}

/// `POST /v2/<name>/blobs/uploads/`
pub async fn start(ctx: Ctx, name: RepoName, req: Request) -> Result<Response, ApiError> {
    let private = ctx.registry.config.new_repos_private;

    let idle = ctx.registry.config.body_idle_timeout;
    if let Some(mount) = ctx.query.get("mount") {
        let digest = match parse_digest(mount) {
            Ok(d) => d,
            Err(e) => return refuse(req, idle, e).await,
        };
        if let Some(from) = ctx.query.get("from") {
            let from = match RepoName::parse(from) {
                Ok(f) => f,
                Err(e) => return refuse(req, idle, ApiError::name_invalid(e.to_string())).await,
            };
            // Mounting reads `from`: only when the caller may read it; otherwise the spec's
            // fallback (a fresh upload) hides whether the blob exists there.
            if ctx.allow(&from, Action::Pull).await.is_ok() {
                let (repo, src, key) = (name.to_string(), from.to_string(), digest.to_string());
                let mounted = ctx
                    .registry
                    .meta
                    .run(move |db| db.blob_mount(&repo, private, &src, &key))
                    .await?;
                if mounted.is_some() {
                    return empty(
                        StatusCode::CREATED,
                        &[
                            ("location", blob_location(&name, &digest)),
                            ("docker-content-digest", digest.to_string()),
                        ],
                    );
                }
            }
        }
        return open_session(&ctx, &name).await;
    }

    if let Some(raw) = ctx.query.get("digest") {
        let digest = match parse_digest(raw) {
            Ok(d) => d,
            Err(e) => return refuse(req, idle, e).await,
        };
        return monolithic(&ctx, &name, digest, req).await;
    }
    open_session(&ctx, &name).await
}

async fn open_session(ctx: &Ctx, name: &RepoName) -> Result<Response, ApiError> {
    let id = new_session_id()?;
    let path = ctx.registry.upload_path(&id);
    tokio::fs::File::create(&path)
        .await
        .map_err(|e| io_failure("creating upload file", &path, e))?;
    let (repo, sid) = (name.to_string(), id.clone());
    let private = ctx.registry.config.new_repos_private;
    ctx.registry
        .meta
        .run(move |db| {
            db.repo_ensure(&repo, private)?;
            db.upload_create(&sid, &repo)
        })
        .await?;
    empty(
        StatusCode::ACCEPTED,
        &[
            ("location", upload_location(name, &id)),
            ("range", range_header(0)),
            ("docker-upload-uuid", id),
        ],
    )
}

/// `POST ?digest=` with the whole blob as the body.
async fn monolithic(
    ctx: &Ctx,
    name: &RepoName,
    digest: Digest,
    req: Request,
) -> Result<Response, ApiError> {
    let registry = &ctx.registry;
    let id = format!("mono-{}", new_session_id()?);
    let path = registry.upload_path(&id);
    let result = async {
        let file = tokio::fs::File::create(&path)
            .await
            .map_err(|e| io_failure("creating upload file", &path, e))?;
        let mut hasher = digest.algorithm().hasher();
        let limit = registry.config.max_blob_bytes;
        let (file, size) = write_body(
            file,
            &path,
            req,
            &mut hasher,
            limit,
            None,
            registry.config.body_idle_timeout,
        )
        .await?;
        drop(file);
        let actual = hasher.finish();
        if actual != digest {
            return Err(ApiError::digest_invalid(format!(
                "uploaded content has digest {actual}, not {digest}"
            )));
        }
        commit(registry, name, &path, &digest, size).await
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&path).await;
    }
    result?;
    empty(
        StatusCode::CREATED,
        &[
            ("location", blob_location(name, &digest)),
            ("docker-content-digest", digest.to_string()),
        ],
    )
}

/// Rename a verified staged file into the blob store and record it in `name`.
async fn commit(
    registry: &Registry,
    name: &RepoName,
    staged: &Path,
    digest: &Digest,
    size: u64,
) -> Result<(), ApiError> {
    let _gate = registry.blob_gate.lock().await;
    registry
        .blobs
        .commit(staged.to_path_buf(), digest.clone())
        .await?;
    let (repo, key) = (name.to_string(), digest.to_string());
    let private = registry.config.new_repos_private;
    registry
        .meta
        .run(move |db| db.blob_record(&repo, private, &key, size))
        .await?;
    Ok(())
}

/// `Content-Range: <start>-<end>` (inclusive). Also accepts the `bytes ` / `bytes=` prefix that
/// some clients send.
fn parse_content_range(headers: &HeaderMap) -> Result<Option<(u64, u64)>, ApiError> {
    let Some(value) = headers.get(header::CONTENT_RANGE) else {
        return Ok(None);
    };
    let bad = || ApiError::upload_invalid("Content-Range must be <start>-<end>");
    let text = value.to_str().map_err(|_| bad())?.trim();
    let text = text
        .strip_prefix("bytes=")
        .or_else(|| text.strip_prefix("bytes "))
        .unwrap_or(text);
    let text = text.split('/').next().unwrap_or(text);
    let (start, end) = text.split_once('-').ok_or_else(bad)?;
    let start: u64 = start.trim().parse().map_err(|_| bad())?;
    let end: u64 = end.trim().parse().map_err(|_| bad())?;
    if end < start {
        return Err(bad());
    }
    Ok(Some((start, end)))
}

/// Look up a session and check it belongs to `name`.
async fn session_size(ctx: &Ctx, name: &RepoName, id: &str) -> Result<u64, ApiError> {
    if !session_id_is_valid(id) {
        return Err(ApiError::upload_unknown());
    }
    let sid = id.to_owned();
    match ctx.registry.meta.run(move |db| db.upload_get(&sid)).await? {
        Some((repo, size)) if repo == name.as_str() => Ok(size),
        _ => Err(ApiError::upload_unknown()),
    }
}

/// Append a request body to the session's staged file at the acknowledged size. Returns the new
/// size and the running SHA-256 (rebuilt from the file if this process has not seen it).
async fn append_chunk(
    ctx: &Ctx,
    id: &str,
    acknowledged: u64,
    hasher_state: Option<(Hasher, u64)>,
    req: Request,
) -> Result<(u64, Hasher), ApiError> {
    let registry = &ctx.registry;
    let path = registry.upload_path(id);
    let range = match parse_content_range(req.headers()) {
        Ok(r) => r,
        Err(e) => return refuse(req, registry.config.body_idle_timeout, e).await,
    };
    let expected_len = match range {
        Some((start, end)) => {
            if start != acknowledged {
                let err = ApiError::range_not_satisfiable(
                    format!("chunk starts at {start}, the upload holds {acknowledged} bytes"),
                    acknowledged,
                );
                return refuse(req, registry.config.body_idle_timeout, err).await;
            }
            Some(end - start + 1)
        }
        None => None,
    };
    let mut file = tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .await
        .map_err(|e| io_failure("opening upload file", &path, e))?;
    // Bytes past the acknowledged size come from a chunk that was never acknowledged.
    file.set_len(acknowledged)
        .await
        .map_err(|e| io_failure("truncating upload file", &path, e))?;
    let mut hasher = match hasher_state {
        Some((hasher, at)) if at == acknowledged => hasher,
        _ => rehash(&path, acknowledged, Algorithm::Sha256).await?,
    };
    file.seek(SeekFrom::Start(acknowledged))
        .await
        .map_err(|e| io_failure("seeking upload file", &path, e))?;
    let remaining = registry.config.max_blob_bytes.saturating_sub(acknowledged);
    let limit = expected_len.map_or(remaining, |l| l.min(remaining));
    if expected_len.is_some_and(|l| l > remaining) {
        return Err(size_too_large(registry.config.max_blob_bytes));
    }
    let (_, written) = write_body(
        file,
        &path,
        req,
        &mut hasher,
        limit,
        expected_len,
        registry.config.body_idle_timeout,
    )
    .await?;
    Ok((acknowledged + written, hasher))
}

/// Hash the first `len` bytes of a staged file (after a restart, or for sha512 at close).
async fn rehash(path: &Path, len: u64, algorithm: Algorithm) -> Result<Hasher, ApiError> {
    let path: PathBuf = path.to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let file =
            std::fs::File::open(&path).map_err(|e| io_failure("reading upload file", &path, e))?;
        let mut reader = std::io::BufReader::with_capacity(1 << 20, file.take(len));
        let mut hasher = algorithm.hasher();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| io_failure("reading upload file", &path, e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(hasher)
    })
    .await
    .map_err(|e| ApiError::internal(format!("hash task: {e}")))?
}

fn size_too_large(max: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::SizeInvalid,
        format!("blob exceeds this registry's limit of {max} bytes"),
    )
}

/// Stream a request body into `file` while hashing it; at most `limit` bytes, exactly
/// `expected` if given; each frame must arrive within `idle`. The data is fsynced before this
/// returns, so the caller may acknowledge it.
async fn write_body(
    file: tokio::fs::File,
    path: &Path,
    req: Request,
    hasher: &mut Hasher,
    limit: u64,
    expected: Option<u64>,
    idle: Duration,
) -> Result<(tokio::fs::File, u64), ApiError> {
    let mut body = req.into_body();
    let mut out = BufWriter::with_capacity(1 << 20, file);
    let mut written: u64 = 0;
    loop {
        let frame = tokio::time::timeout(idle, body.frame())
            .await
            .map_err(|_| {
                ApiError::upload_invalid(format!(
                    "no data for {}s: upload abandoned",
                    idle.as_secs()
                ))
            })?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| ApiError::upload_invalid(format!("request body: {e}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        written += data.len() as u64;
        if written > limit {
            return Err(match expected {
                Some(_) => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::SizeInvalid,
                    "body is longer than its Content-Range",
                ),
                None => size_too_large(limit),
            });
        }
        hasher.update(&data);
        out.write_all(&data)
            .await
            .map_err(|e| io_failure("writing upload file", path, e))?;
    }
    if let Some(expected) = expected
        && written != expected
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::SizeInvalid,
            format!("body has {written} bytes, Content-Range says {expected}"),
        ));
    }
    out.flush()
        .await
        .map_err(|e| io_failure("writing upload file", path, e))?;
    let file = out.into_inner();
    file.sync_all()
        .await
        .map_err(|e| io_failure("syncing upload file", path, e))?;
    Ok((file, written))
}

/// `PATCH /v2/<name>/blobs/uploads/<id>`
pub async fn patch(ctx: Ctx, name: RepoName, id: &str, req: Request) -> Result<Response, ApiError> {
    let acknowledged = match session_size(&ctx, &name, id).await {
        Ok(size) => size,
        Err(e) => return refuse(req, ctx.registry.config.body_idle_timeout, e).await,
    };
    let session = ctx.registry.session(id);
    let mut state = session.lock().await;
    // Re-read under the lock: another request may have moved the session meanwhile.
    let acknowledged = session_size(&ctx, &name, id).await.unwrap_or(acknowledged);
    let previous = state.hasher.take();
    let (size, hasher) = append_chunk(&ctx, id, acknowledged, previous, req).await?;
    let sid = id.to_owned();
    ctx.registry
        .meta
        .run(move |db| db.upload_set_size(&sid, size))
        .await?;
    state.hasher = Some((hasher, size));
    empty(
        StatusCode::ACCEPTED,
        &[
            ("location", upload_location(&name, id)),
            ("range", range_header(size)),
            ("docker-upload-uuid", id.to_owned()),
        ],
    )
}

/// `PUT /v2/<name>/blobs/uploads/<id>?digest=`: last chunk (optional) and close.
pub async fn put(ctx: Ctx, name: RepoName, id: &str, req: Request) -> Result<Response, ApiError> {
    let idle = ctx.registry.config.body_idle_timeout;
    let digest = match ctx.query.get("digest").map(|raw| parse_digest(raw)) {
        Some(Ok(digest)) => digest,
        Some(Err(e)) => return refuse(req, idle, e).await,
        None => {
            return refuse(
                req,
                idle,
                ApiError::digest_invalid("closing an upload needs ?digest="),
            )
            .await;
        }
    };
    if let Err(e) = session_size(&ctx, &name, id).await {
        return refuse(req, idle, e).await;
    }
    let session = ctx.registry.session(id);
    let mut state = session.lock().await;
    let acknowledged = session_size(&ctx, &name, id).await?;
    let previous = state.hasher.take();
    let (size, hasher) = append_chunk(&ctx, id, acknowledged, previous, req).await?;
    let path = ctx.registry.upload_path(id);
    let actual = match digest.algorithm() {
        Algorithm::Sha256 => hasher.finish(),
        other => rehash(&path, size, other).await?.finish(),
    };
    if actual != digest {
        // The session is spent: its bytes can never become this digest.
        ctx.registry.drop_upload(id).await?;
        return Err(ApiError::digest_invalid(format!(
            "uploaded content has digest {actual}, not {digest}"
        )));
    }
    commit(&ctx.registry, &name, &path, &digest, size).await?;
    ctx.registry.drop_upload(id).await?;
    drop(state);
    empty(
        StatusCode::CREATED,
        &[
            ("location", blob_location(&name, &digest)),
            ("docker-content-digest", digest.to_string()),
        ],
    )
}

/// `GET /v2/<name>/blobs/uploads/<id>`: how much the server holds.
pub async fn status(ctx: Ctx, name: RepoName, id: &str) -> Result<Response, ApiError> {
    let size = session_size(&ctx, &name, id).await?;
    empty(
        StatusCode::NO_CONTENT,
        &[
            ("location", upload_location(&name, id)),
            ("range", range_header(size)),
            ("docker-upload-uuid", id.to_owned()),
        ],
    )
}

/// `DELETE /v2/<name>/blobs/uploads/<id>`: cancel.
pub async fn cancel(ctx: Ctx, name: RepoName, id: &str) -> Result<Response, ApiError> {
    session_size(&ctx, &name, id).await?;
    let session = ctx.registry.session(id);
    let _state = session.lock().await;
    ctx.registry.drop_upload(id).await?;
    empty(StatusCode::NO_CONTENT, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn content_range_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(parse_content_range(&h).unwrap(), None);
        for (text, want) in [
            ("0-9", (0, 9)),
            ("bytes=10-19", (10, 19)),
            ("bytes 5-5/100", (5, 5)),
        ] {
            h.insert(header::CONTENT_RANGE, HeaderValue::from_static(text));
            assert_eq!(parse_content_range(&h).unwrap(), Some(want), "{text}");
        }
        for bad in ["", "9-0", "a-b", "10", "-5", "1-"] {
            h.insert(header::CONTENT_RANGE, HeaderValue::from_static(bad));
            assert!(parse_content_range(&h).is_err(), "{bad}");
        }
    }

    #[test]
    fn session_ids_are_checked_before_use_as_file_names() {
        assert!(session_id_is_valid(&new_session_id().unwrap()));
        for bad in [
            "",
            "../../etc/passwd",
            "ABCDEF0123456789ABCDEF0123456789",
            "mono-0",
        ] {
            assert!(!session_id_is_valid(bad));
        }
    }
}
