//! Manifests (`GET`/`HEAD`/`PUT`/`DELETE /v2/<name>/manifests/<reference>`), tag listing and
//! referrers.
//!
//! A manifest is stored as the exact bytes pushed and served back unchanged; its digest is of
//! those bytes. On push it is parsed only to check it (size limit first, then JSON shape, media
//! type, referenced blobs present) and to index its `subject` for the referrers API.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use http_body_util::BodyExt;
use serde_json::{Value, json};

use super::blobs::parse_digest;
use super::{Ctx, DRAIN_LIMIT, empty, refuse};
use crate::digest::{Algorithm, Digest};
use crate::error::{ApiError, ErrorCode};
use crate::meta::ManifestRecord;
use crate::names::{Reference, RepoName};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const MANIFEST_TYPES: &[&str] = &[OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// Most tags returned by one listing page when the client asks for more (or for all).
pub const MAX_TAGS_PER_PAGE: u32 = 10_000;

fn parse_reference(raw: &str) -> Result<Reference, ApiError> {
    Reference::parse(raw).map_err(|e| match e {
        crate::names::NameError::Digest(d) => ApiError::digest_invalid(d.to_string()),
        other => ApiError::manifest_invalid(other.to_string()),
    })
}

async fn lookup(
    ctx: &Ctx,
    name: &RepoName,
    reference: &Reference,
) -> Result<Option<ManifestRecord>, ApiError> {
    let repo = name.to_string();
    let reference = reference.clone();
    Ok(ctx
        .registry
        .meta
        .run(move |db| match &reference {
            Reference::Tag(t) => db.manifest_by_tag(&repo, t.as_str()),
            Reference::Digest(d) => db.manifest_by_digest(&repo, &d.to_string()),
        })
        .await?)
}

pub async fn get(
    ctx: Ctx,
    name: RepoName,
    raw: &str,
    with_body: bool,
) -> Result<Response, ApiError> {
    // A pull of something that cannot name a manifest finds nothing: 404, as the spec's
    // endpoint table and the OCI conformance suite expect (pushes and deletes still say 400).
    let reference = Reference::parse(raw).map_err(|e| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::ManifestUnknown,
            format!("no manifest is named {raw:?}: {e}"),
        )
    })?;
    let record = lookup(&ctx, &name, &reference)
        .await?
        .ok_or_else(|| ApiError::manifest_unknown(&reference))?;
    let digest = match &reference {
        Reference::Digest(d) if d.algorithm() == Algorithm::Sha512 => record.sha512.clone(),
        _ => record.digest.clone(),
    };
    let builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, record.media_type.as_str())
        .header(header::CONTENT_LENGTH, record.bytes.len())
        .header("docker-content-digest", digest.as_str())
        .header(header::ETAG, format!("\"{digest}\""));
    let body = if with_body {
        Body::from(record.bytes)
    } else {
        Body::empty()
    };
    builder
        .body(body)
        .map_err(|e| ApiError::internal(format!("response: {e}")))
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::ManifestInvalid,
        format!("manifest exceeds this registry's limit of {max} bytes"),
    )
}

/// Read at most `max` bytes of body; more is refused without buffering it.
async fn read_limited(
    req: Request,
    max: usize,
    idle: std::time::Duration,
) -> Result<Vec<u8>, ApiError> {
    if let Some(len) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && len > max as u64
    {
        // Refused before reading; a body small enough is drained so the client reads the 413.
        if len <= DRAIN_LIMIT {
            return refuse(req, idle, too_large(max)).await;
        }
        return Err(too_large(max));
    }
    let mut body = req.into_body();
    let mut bytes = Vec::new();
    loop {
        let frame = tokio::time::timeout(idle, body.frame())
            .await
            .map_err(|_| ApiError::manifest_invalid("request body stalled"))?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| ApiError::manifest_invalid(format!("request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > max {
                super::drain(body, idle).await;
                return Err(too_large(max));
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

fn content_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// A descriptor's digest (and size) from a manifest, checked for shape.
fn descriptor(value: &Value, what: &str) -> Result<(Digest, Option<u64>), ApiError> {
    let digest = value
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| ApiError::manifest_invalid(format!("{what} has no digest")))?;
    let digest: Digest = digest
        .parse()
        .map_err(|e| ApiError::manifest_invalid(format!("{what}: {e}")))?;
    let size = match value.get("size") {
        None => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            ApiError::manifest_invalid(format!("{what} size is not a non-negative integer"))
        })?),
    };
    Ok((digest, size))
}

fn blob_missing(digest: &Digest) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::ManifestBlobUnknown,
        format!("manifest references {digest}, which this repository does not hold"),
    )
    .with_detail(json!({ "digest": digest.to_string() }))
}

/// Check a parsed manifest and return what the index needs (media type, artifact type,
/// subject, annotations).
async fn check_manifest(
    ctx: &Ctx,
    name: &RepoName,
    header_type: Option<String>,
    doc: &Value,
) -> Result<(String, Option<String>, Option<String>, Option<String>), ApiError> {
    let obj = doc
        .as_object()
        .ok_or_else(|| ApiError::manifest_invalid("manifest is not a JSON object"))?;
    if obj.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
        return Err(ApiError::manifest_invalid("schemaVersion must be 2"));
    }
    let body_type = match obj.get("mediaType") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ApiError::manifest_invalid("mediaType is not a string")),
    };
    let media_type = match (header_type, body_type) {
        (Some(h), Some(b)) if h != b => {
            return Err(ApiError::manifest_invalid(format!(
                "Content-Type {h} differs from the manifest's mediaType {b}"
            )));
        }
        (Some(h), _) => h,
        (None, Some(b)) => b,
        (None, None) => {
            return Err(ApiError::manifest_invalid(
                "no Content-Type and no mediaType",
            ));
        }
    };
    if !MANIFEST_TYPES.contains(&media_type.as_str()) {
        return Err(ApiError::manifest_invalid(format!(
            "unsupported manifest media type {media_type}"
        )));
    }

    let mut artifact_type = match obj.get("artifactType") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(ApiError::manifest_invalid("artifactType is not a string")),
    };
    let subject = match obj.get("subject") {
        None | Some(Value::Null) => None,
        Some(s) => Some(descriptor(s, "subject")?.0.to_string()),
    };
    let annotations = match obj.get("annotations") {
        None | Some(Value::Null) => None,
        Some(a @ Value::Object(_)) => Some(a.to_string()),
        Some(_) => return Err(ApiError::manifest_invalid("annotations is not an object")),
    };

    let repo = name.to_string();
    let is_index = media_type == OCI_INDEX || media_type == DOCKER_LIST;
    let mut blobs = Vec::new();
    let mut children = Vec::new();
    if is_index {
        let list = obj
            .get("manifests")
            .and_then(Value::as_array)
            .ok_or_else(|| ApiError::manifest_invalid("index has no manifests array"))?;
        for (i, m) in list.iter().enumerate() {
            children.push(descriptor(m, &format!("manifests[{i}]"))?.0);
        }
    } else {
        let config = obj
            .get("config")
            .ok_or_else(|| ApiError::manifest_invalid("image manifest has no config"))?;
        let (config_digest, config_size) = descriptor(config, "config")?;
        if artifact_type.is_none() {
            artifact_type = config
                .get("mediaType")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        blobs.push((config_digest, config_size));
        let layers = obj
            .get("layers")
            .and_then(Value::as_array)
            .ok_or_else(|| ApiError::manifest_invalid("image manifest has no layers array"))?;
        for (i, layer) in layers.iter().enumerate() {
            let (digest, size) = descriptor(layer, &format!("layers[{i}]"))?;
            // Non-distributable layers live elsewhere (`urls`): not expected here.
            if layer.get("urls").is_none() {
                blobs.push((digest, size));
            }
        }
    }
    let missing = ctx
        .registry
        .meta
        .run(move |db| {
            for (digest, size) in &blobs {
                match db.blob_in_repo(&repo, &digest.to_string())? {
                    None => return Ok(Some((digest.clone(), None))),
                    Some(held) if size.is_some_and(|s| s != held) => {
                        return Ok(Some((digest.clone(), Some(held))));
                    }
                    Some(_) => {}
                }
            }
            for digest in &children {
                if !db.manifest_exists(&repo, &digest.to_string())? {
                    return Ok(Some((digest.clone(), None)));
                }
            }
            Ok(None)
        })
        .await?;
    match missing {
        Some((digest, None)) => Err(blob_missing(&digest)),
        Some((digest, Some(held))) => Err(ApiError::manifest_invalid(format!(
            "descriptor of {digest} gives a size other than the {held} bytes stored"
        ))),
        None => Ok((media_type, artifact_type, subject, annotations)),
    }
}

pub async fn put(ctx: Ctx, name: RepoName, raw: &str, req: Request) -> Result<Response, ApiError> {
    let idle = ctx.registry.config.body_idle_timeout;
    let reference = match parse_reference(raw) {
        Ok(r) => r,
        Err(e) => return refuse(req, idle, e).await,
    };
    let header_type = content_type(req.headers());
    let max = ctx.registry.config.max_manifest_bytes;
    let bytes = read_limited(req, max, ctx.registry.config.body_idle_timeout).await?;
    let doc: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::manifest_invalid(format!("manifest is not JSON: {e}")))?;

    let sha256 = Algorithm::Sha256.digest(&bytes);
    let sha512 = Algorithm::Sha512.digest(&bytes);
    let (tag, answered_digest) = match &reference {
        Reference::Tag(t) => (Some(t.to_string()), sha256.clone()),
        Reference::Digest(d) => {
            let actual = if d.algorithm() == Algorithm::Sha512 {
                &sha512
            } else {
                &sha256
            };
            if actual != d {
                return Err(ApiError::digest_invalid(format!(
                    "manifest has digest {actual}, not {d}"
                )));
            }
            (None, d.clone())
        }
    };
    let (media_type, artifact_type, subject, annotations) =
        check_manifest(&ctx, &name, header_type, &doc).await?;
    let record = ManifestRecord {
        digest: sha256.to_string(),
        sha512: sha512.to_string(),
        media_type,
        artifact_type,
        subject: subject.clone(),
        annotations,
        bytes,
    };
    let repo = name.to_string();
    let private = ctx.registry.config.new_repos_private;
    ctx.registry
        .meta
        .run(move |db| db.manifest_put(&repo, private, &record, tag.as_deref()))
        .await?;
    let mut headers = vec![
        (
            "location",
            format!("/v2/{name}/manifests/{answered_digest}"),
        ),
        ("docker-content-digest", answered_digest.to_string()),
    ];
    if let Some(subject) = subject {
        headers.push(("oci-subject", subject));
    }
    empty(StatusCode::CREATED, &headers)
}

pub async fn delete(ctx: Ctx, name: RepoName, raw: &str) -> Result<Response, ApiError> {
    let reference = parse_reference(raw)?;
    let repo = name.to_string();
    let key = reference.clone();
    let removed = ctx
        .registry
        .meta
        .run(move |db| match &key {
            Reference::Tag(t) => db.tag_delete(&repo, t.as_str()),
            Reference::Digest(d) => db.manifest_delete(&repo, &d.to_string()),
        })
        .await?;
    if removed {
        empty(StatusCode::ACCEPTED, &[])
    } else {
        Err(ApiError::manifest_unknown(&reference))
    }
}

/// `GET /v2/<name>/tags/list?n=&last=`
pub async fn tags(ctx: Ctx, name: RepoName) -> Result<Response, ApiError> {
    let n = match ctx.query.get("n") {
        None => None,
        Some(v) => Some(v.parse::<u32>().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::SizeInvalid,
                "n must be a non-negative integer",
            )
        })?),
    };
    let last = ctx.query.get("last").cloned();
    let page = n.unwrap_or(MAX_TAGS_PER_PAGE).min(MAX_TAGS_PER_PAGE);
    let repo = name.to_string();
    let found = ctx
        .registry
        .meta
        .run(move |db| {
            if db.repo_get(&repo)?.is_none() {
                return Ok(None);
            }
            // One more than asked for tells whether a next page exists.
            db.tags_list(&repo, last.as_deref(), Some(page.saturating_add(1)))
                .map(Some)
        })
        .await?;
    let Some(mut tags) = found else {
        return Err(ApiError::name_unknown(&name));
    };
    let more = tags.len() > page as usize;
    tags.truncate(page as usize);
    let body = json!({ "name": name.to_string(), "tags": tags }).to_string();
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json");
    if more && let Some(last) = tags.last() {
        builder = builder.header(
            header::LINK,
            format!("</v2/{name}/tags/list?n={page}&last={last}>; rel=\"next\""),
        );
    }
    builder
        .body(Body::from(body))
        .map_err(|e| ApiError::internal(format!("response: {e}")))
}

/// `GET /v2/<name>/referrers/<digest>?artifactType=`: always 200 with an image index.
pub async fn referrers(ctx: Ctx, name: RepoName, raw: &str) -> Result<Response, ApiError> {
    let digest = parse_digest(raw)?;
    let filter = ctx.query.get("artifactType").cloned();
    let (repo, key) = (name.to_string(), digest.to_string());
    let rows = ctx
        .registry
        .meta
        .run(move |db| db.referrers(&repo, &key))
        .await?;
    let manifests: Vec<Value> = rows
        .into_iter()
        .filter(|r| {
            filter
                .as_ref()
                .is_none_or(|f| r.artifact_type.as_deref() == Some(f.as_str()))
        })
        .map(|r| {
            let mut d = json!({
                "mediaType": r.media_type,
                "digest": r.digest,
                "size": r.bytes.len(),
            });
            if let Some(t) = r.artifact_type {
                d["artifactType"] = Value::String(t);
            }
            if let Some(a) = r
                .annotations
                .and_then(|a| serde_json::from_str::<Value>(&a).ok())
            {
                d["annotations"] = a;
            }
            d
        })
        .collect();
    let body = json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": manifests,
    })
    .to_string();
    let mut builder = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, OCI_INDEX);
    if filter.is_some() {
        builder = builder.header("oci-filters-applied", "artifactType");
    }
    builder
        .body(Body::from(body))
        .map_err(|e| ApiError::internal(format!("response: {e}")))
}
