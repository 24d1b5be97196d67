//! Reading and deleting blobs: `GET`/`HEAD`/`DELETE /v2/<name>/blobs/<digest>`.
//! A blob is visible in a repository only once the metadata store links it there.

use axum::body::Body;
use axum::http::{StatusCode, header};
use axum::response::Response;
use tokio_util::io::ReaderStream;

use super::{Ctx, empty};
use crate::digest::Digest;
use crate::error::ApiError;
use crate::meta::Unlinked;
use crate::names::RepoName;

pub fn parse_digest(raw: &str) -> Result<Digest, ApiError> {
    raw.parse::<Digest>()
        .map_err(|e| ApiError::digest_invalid(e.to_string()))
}

pub async fn get(
    ctx: Ctx,
    name: RepoName,
    raw: &str,
    with_body: bool,
) -> Result<Response, ApiError> {
    let digest = parse_digest(raw)?;
    let (repo, key) = (name.to_string(), digest.to_string());
    let size = ctx
        .registry
        .meta
        .run(move |db| db.blob_in_repo(&repo, &key))
        .await?
        .ok_or_else(|| ApiError::blob_unknown(&digest))?;
    let headers = [
        (header::CONTENT_LENGTH.as_str(), size.to_string()),
        (
            header::CONTENT_TYPE.as_str(),
            "application/octet-stream".to_owned(),
        ),
        ("docker-content-digest", digest.to_string()),
        (header::ETAG.as_str(), format!("\"{digest}\"")),
    ];
    if !with_body {
        return empty(StatusCode::OK, &headers);
    }
    let Some(blob) = ctx.registry.blobs.open(digest.clone()).await? else {
        tracing::error!(%digest, "blob recorded but missing from storage");
        return Err(ApiError::blob_unknown(&digest));
    };
    if blob.size != size {
        tracing::error!(%digest, recorded = size, stored = blob.size, "blob size differs from its record");
        return Err(ApiError::internal("stored blob is inconsistent"));
    }
    let mut builder = Response::builder().status(StatusCode::OK);
    for (name, value) in &headers {
        builder = builder.header(*name, value.as_str());
    }
    builder
        .body(Body::from_stream(ReaderStream::with_capacity(
            blob.reader,
            256 * 1024,
        )))
        .map_err(|e| ApiError::internal(format!("response: {e}")))
}

pub async fn delete(ctx: Ctx, name: RepoName, raw: &str) -> Result<Response, ApiError> {
    let digest = parse_digest(raw)?;
    let registry = ctx.registry.clone();
    let _gate = registry.blob_gate.lock().await;
    let (repo, key) = (name.to_string(), digest.to_string());
    let outcome = registry
        .meta
        .run(move |db| db.blob_unlink(&repo, &key))
        .await?;
    match outcome {
        Unlinked::NotLinked => Err(ApiError::blob_unknown(&digest)),
        Unlinked::StillUsed => empty(StatusCode::ACCEPTED, &[]),
        Unlinked::Orphaned => {
            // The record is gone first; a crash before this line leaves a file that the
            // start-up sweep removes, never a record without a file.
            registry.blobs.delete(digest).await?;
            empty(StatusCode::ACCEPTED, &[])
        }
    }
}
