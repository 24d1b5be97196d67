//! An OCI Distribution client (spec v1.1) on hyper 1 + rustls (ring), written for Moat because a
//! Keep must pull over mTLS with its attested certificate, which general OCI clients cannot do.
//!
//! What it does: Basic and Bearer auth with the token-challenge flow; blob pushes (one PUT for
//! small blobs, chunked PATCHes for large ones that resume from the registry's upload status
//! after an error); cross-repository mounts; manifest push and pull; tag listing; and blob pulls
//! that hash while streaming (sha256 and sha512) and keep nothing whose digest or size is wrong
//! (files are written to a temporary name and renamed only after the check).
//!
//! Every request has a connect timeout, a timeout for the answer's headers and an idle timeout
//! between body frames, and every body read into memory has a size limit, so a stalled or hostile
//! registry cannot hang or exhaust the caller.

pub mod digest;
mod error;
pub mod manifest;
pub mod tls;

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{
    ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderValue, LINK,
    LOCATION, RANGE, WWW_AUTHENTICATE,
};
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncWriteExt as _;

use crate::auth::{Challenge, Credentials, parse_challenge};
pub use digest::{Algorithm, Digest, DigestError, DigestHasher};
use error::OciErrorBody;
pub use error::{OciError, RegistryError};
pub use manifest::Descriptor;
pub use tls::{ClientIdentity, TlsOptions};

type Connector = hyper_rustls::HttpsConnector<HttpConnector>;

/// Timeouts for each request.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// TCP connect and TLS handshake.
    pub connect: Duration,
    /// From sending a request to receiving the answer's headers (covers uploading its body).
    pub response: Duration,
    /// Longest pause between two body frames while reading an answer.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(15),
            response: Duration::from_secs(120),
            idle: Duration::from_secs(60),
        }
    }
}

/// How a [`RegistryClient`] behaves; the defaults suit both the CLI and a Keep.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    pub tls: TlsOptions,
    pub credentials: Option<Credentials>,
    pub timeouts: Timeouts,
    /// Blobs up to this size go up in one PUT; larger ones in chunks of `chunk_size`.
    pub monolithic_limit: u64,
    pub chunk_size: usize,
    /// How often one upload may fail and resume before the client gives up.
    pub upload_attempts: u32,
    /// The largest manifest accepted (the spec suggests registries accept at least 4 MiB).
    pub max_manifest_bytes: usize,
}

impl ClientOptions {
    pub fn new(tls: TlsOptions) -> Self {
        ClientOptions {
            tls,
            credentials: None,
            timeouts: Timeouts::default(),
            monolithic_limit: 8 << 20,
            chunk_size: 8 << 20,
            upload_attempts: 5,
            max_manifest_bytes: 4 << 20,
        }
    }
}

/// The largest error body read from a registry (errors are small JSON documents).
const MAX_ERROR_BODY: usize = 64 * 1024;
/// The largest tag list page accepted.
const MAX_TAG_PAGE: usize = 8 << 20;
/// The largest token-service answer accepted.
const MAX_TOKEN_BODY: usize = 64 * 1024;
/// How many redirects a blob download follows (registries may redirect to a blob store).
const MAX_REDIRECTS: usize = 3;

/// What [`RegistryClient::push_blob`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlobPush {
    /// The registry already had the blob in this repository.
    AlreadyPresent,
    Uploaded,
}

/// A manifest as the registry served it, byte for byte, with its verified digest.
#[derive(Debug, Clone)]
pub struct PulledManifest {
    pub digest: Digest,
    pub media_type: Option<String>,
    pub bytes: Bytes,
}

/// One page of `GET /v2/<name>/tags/list`.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
pub struct TagPage {
    pub name: String,
    #[serde(default, deserialize_with = "null_as_empty")]
    pub tags: Vec<String>,
    /// The `last` value for the next page, from the `Link` header, when there is one.
    #[serde(skip)]
    pub next_last: Option<String>,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    use serde::Deserialize as _;
    Ok(Option::<Vec<String>>::deserialize(d)?.unwrap_or_default())
}

/// Told about the bytes of a transfer as they move (the CLI draws a progress bar with it).
pub trait TransferProgress: Send + Sync {
    /// A transfer of `total` bytes starts (or restarts after an error at `done` bytes).
    fn start(&self, _total: u64, _done: u64) {}
    /// `bytes` more were transferred.
    fn advance(&self, _bytes: u64) {}
}

/// A [`TransferProgress`] that ignores everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;
impl TransferProgress for NoProgress {}

/// The current authorization for this registry, learned from its challenges.
#[derive(Debug, Clone)]
enum AuthState {
    Anonymous,
    Basic,
    Bearer { token: String },
}

/// A request that can be sent again (after an auth challenge) without rebuilding it.
struct Spec<'a> {
    method: Method,
    url: String,
    headers: Vec<(http::HeaderName, HeaderValue)>,
    body: Bytes,
    operation: &'a str,
}

impl<'a> Spec<'a> {
    fn new(method: Method, url: String, operation: &'a str) -> Self {
        Spec {
            method,
            url,
            headers: Vec::new(),
            body: Bytes::new(),
            operation,
        }
    }

    fn header(mut self, name: http::HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.push((name, value));
        }
        self
    }

    fn body(mut self, body: Bytes) -> Self {
        self.body = body;
        self
    }
}

/// A client for one registry (`HOST[:PORT]`), over HTTPS only.
pub struct RegistryClient {
    registry: String,
    base: String,
    http: HttpClient<Connector, Full<Bytes>>,
    options: ClientOptions,
    auth: Mutex<AuthState>,
}

impl std::fmt::Debug for RegistryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryClient")
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

impl RegistryClient {
    /// A client for `registry` (`HOST[:PORT]`, as in a reference). Must be called inside a
    /// tokio runtime.
    pub fn new(registry: &str, options: ClientOptions) -> Result<Self, RegistryError> {
        let tls = options.tls.client_config()?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(options.timeouts.connect));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .wrap_connector(http);
        let client = HttpClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .build(connector);
        Ok(RegistryClient {
            registry: registry.to_owned(),
            base: format!("https://{registry}"),
            http: client,
            options,
            auth: Mutex::new(AuthState::Anonymous),
        })
    }

    /// The registry this client talks to (`HOST[:PORT]`).
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// `GET /v2/`: whether the registry speaks the API and accepts this client (after any auth
    /// challenge). Used by `moat login` to check credentials.
    pub async fn ping(&self) -> Result<(), RegistryError> {
        let op = "GET /v2/";
        let resp = self
            .send(Spec::new(Method::GET, format!("{}/v2/", self.base), op))
            .await?;
        self.expect(resp, &[StatusCode::OK], op).await?;
        Ok(())
    }

    /// `HEAD` a blob: its size when the repository has it, `None` when it does not.
    pub async fn blob_size(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> Result<Option<u64>, RegistryError> {
        let op = format!("HEAD blob {digest} in {repo}");
        let url = format!("{}/v2/{repo}/blobs/{digest}", self.base);
        let resp = self.send(Spec::new(Method::HEAD, url, &op)).await?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let resp = self.expect(resp, &[StatusCode::OK], &op).await?;
        Ok(Some(content_length(resp.headers()).unwrap_or(0)))
    }

    /// Upload `data` as blob `digest` into `repo`, unless the repository already has it.
    pub async fn push_blob(
        &self,
        repo: &str,
        digest: &Digest,
        data: &Bytes,
        progress: &dyn TransferProgress,
    ) -> Result<BlobPush, RegistryError> {
        let actual = Digest::compute(digest.algorithm(), data);
        if actual != *digest {
            return Err(RegistryError::DigestMismatch {
                what: "blob to push".into(),
                expected: digest.clone(),
                actual,
            });
        }
        if self.blob_size(repo, digest).await? == Some(data.len() as u64) {
            progress.start(data.len() as u64, data.len() as u64);
            return Ok(BlobPush::AlreadyPresent);
        }
        if data.len() as u64 <= self.options.monolithic_limit {
            self.push_monolithic(repo, digest, data, progress).await?;
        } else {
            self.push_chunked(repo, digest, data, progress).await?;
        }
        Ok(BlobPush::Uploaded)
    }

    /// Ask the registry to link blob `digest` from repository `from` into `repo` without
    /// uploading it. `Ok(false)` when the registry declined (the caller then uploads).
    pub async fn mount_blob(
        &self,
        repo: &str,
        digest: &Digest,
        from: &str,
    ) -> Result<bool, RegistryError> {
        let op = format!("mount {digest} from {from} into {repo}");
        let url = format!(
            "{}/v2/{repo}/blobs/uploads/?mount={digest}&from={}",
            self.base,
            percent_encoding::utf8_percent_encode(from, QUERY)
        );
        let resp = self.send(Spec::new(Method::POST, url, &op)).await?;
        let resp = self
            .expect(resp, &[StatusCode::CREATED, StatusCode::ACCEPTED], &op)
            .await?;
        if resp.status() == StatusCode::CREATED {
            return Ok(true);
        }
        // The registry opened an upload session instead; close it so it does not linger.
        if let Ok(location) = self.location(resp.headers(), &op) {
            let cancel = Spec::new(Method::DELETE, location, &op);
            if let Ok(resp) = self.send(cancel).await {
                drop(resp);
            }
        }
        Ok(false)
    }

    /// Start an upload session; returns its absolute URL.
    async fn start_upload(&self, repo: &str, op: &str) -> Result<String, RegistryError> {
        let url = format!("{}/v2/{repo}/blobs/uploads/", self.base);
        let resp = self
            .send(Spec::new(Method::POST, url, op).header(CONTENT_LENGTH, "0"))
            .await?;
        let resp = self.expect(resp, &[StatusCode::ACCEPTED], op).await?;
        self.location(resp.headers(), op)
    }

    async fn push_monolithic(
        &self,
        repo: &str,
        digest: &Digest,
        data: &Bytes,
        progress: &dyn TransferProgress,
    ) -> Result<(), RegistryError> {
        let op = format!("upload of {digest} to {repo}");
        let mut attempt = 0;
        loop {
            attempt += 1;
            progress.start(data.len() as u64, 0);
            let result = async {
                let location = self.start_upload(repo, &op).await?;
                let url = with_query(&location, "digest", &digest.to_string());
                let spec = Spec::new(Method::PUT, url, &op)
                    .header(CONTENT_TYPE, "application/octet-stream")
                    .body(data.clone());
                let resp = self.send(spec).await?;
                self.expect(resp, &[StatusCode::CREATED], &op).await?;
                Ok::<_, RegistryError>(())
            }
            .await;
            match result {
                Ok(()) => {
                    progress.advance(data.len() as u64);
                    return Ok(());
                }
                Err(e) if e.is_transient() && attempt < self.options.upload_attempts => {
                    tracing::warn!(error = %e, attempt, "upload failed; retrying");
                }
                Err(e) if attempt > 1 => {
                    return Err(RegistryError::UploadGaveUp {
                        digest: digest.clone(),
                        attempts: attempt,
                        last: Box::new(e),
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn push_chunked(
        &self,
        repo: &str,
        digest: &Digest,
        data: &Bytes,
        progress: &dyn TransferProgress,
    ) -> Result<(), RegistryError> {
        let op = format!("chunked upload of {digest} to {repo}");
        let total = data.len() as u64;
        let mut location = self.start_upload(repo, &op).await?;
        let mut offset: u64 = 0;
        let mut failures = 0;
        progress.start(total, 0);
        while offset < total {
            let end = (offset + self.options.chunk_size as u64).min(total);
            let chunk = data.slice(offset as usize..end as usize);
            let spec = Spec::new(Method::PATCH, location.clone(), &op)
                .header(CONTENT_TYPE, "application/octet-stream")
                .header(CONTENT_RANGE, &format!("{offset}-{}", end - 1))
                .body(chunk);
            let result = async {
                let resp = self.send(spec).await?;
                let resp = self.expect(resp, &[StatusCode::ACCEPTED], &op).await?;
                let next = self.location(resp.headers(), &op)?;
                let confirmed = upload_range_end(resp.headers()).unwrap_or(end);
                Ok::<_, RegistryError>((next, confirmed))
            }
            .await;
            match result {
                Ok((next, confirmed)) if confirmed == end => {
                    location = next;
                    progress.advance(end - offset);
                    offset = end;
                }
                Ok((next, confirmed)) => {
                    // The registry kept a different amount than sent: continue from what it has.
                    location = next;
                    offset = self.check_resume_point(confirmed, total, &op)?;
                    progress.start(total, offset);
                }
                Err(e) if e.is_transient() && failures + 1 < self.options.upload_attempts => {
                    failures += 1;
                    tracing::warn!(error = %e, offset, "chunk upload failed; asking the registry where to resume");
                    let (next, confirmed) = self.upload_status(&location, &op).await?;
                    location = next;
                    offset = self.check_resume_point(confirmed, total, &op)?;
                    progress.start(total, offset);
                }
                Err(e) => {
                    return Err(RegistryError::UploadGaveUp {
                        digest: digest.clone(),
                        attempts: failures + 1,
                        last: Box::new(e),
                    });
                }
            }
        }
        let url = with_query(&location, "digest", &digest.to_string());
        let spec = Spec::new(Method::PUT, url, &op).header(CONTENT_LENGTH, "0");
        let resp = self.send(spec).await?;
        self.expect(resp, &[StatusCode::CREATED], &op).await?;
        Ok(())
    }

    fn check_resume_point(
        &self,
        confirmed: u64,
        total: u64,
        op: &str,
    ) -> Result<u64, RegistryError> {
        if confirmed > total {
            return Err(self.protocol(
                op,
                format!("upload status claims {confirmed} of {total} bytes"),
            ));
        }
        Ok(confirmed)
    }

    /// `GET` an upload session: its (possibly new) URL and how many bytes the registry holds.
    async fn upload_status(
        &self,
        location: &str,
        op: &str,
    ) -> Result<(String, u64), RegistryError> {
        let resp = self
            .send(Spec::new(Method::GET, location.to_owned(), op))
            .await?;
        let resp = self.expect(resp, &[StatusCode::NO_CONTENT], op).await?;
        let next = self
            .location(resp.headers(), op)
            .unwrap_or_else(|_| location.to_owned());
        Ok((next, upload_range_end(resp.headers()).unwrap_or(0)))
    }

    /// `PUT` a manifest under a tag or digest; returns the digest of the bytes sent.
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<Digest, RegistryError> {
        let op = format!("push manifest {repo}:{reference}");
        let digest = Digest::sha256_of(&bytes);
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base);
        let spec = Spec::new(Method::PUT, url, &op)
            .header(CONTENT_TYPE, media_type)
            .body(bytes);
        let resp = self.send(spec).await?;
        let resp = self.expect(resp, &[StatusCode::CREATED], &op).await?;
        if let Some(echoed) = header_digest(resp.headers())
            && echoed.algorithm() == digest.algorithm()
            && echoed != digest
        {
            return Err(self.protocol(
                &op,
                format!("stored the manifest as {echoed}, but its bytes hash to {digest}"),
            ));
        }
        Ok(digest)
    }

    /// `GET` a manifest by tag or digest. The bytes are checked against the digest asked for
    /// (or, for a tag, against the digest the registry announces in `Docker-Content-Digest`).
    pub async fn pull_manifest(
        &self,
        repo: &str,
        reference: &str,
        accept: &[&str],
    ) -> Result<PulledManifest, RegistryError> {
        let op = format!("pull manifest {repo}:{reference}");
        let url = format!("{}/v2/{repo}/manifests/{reference}", self.base);
        let spec = Spec::new(Method::GET, url, &op).header(ACCEPT, &accept.join(", "));
        let resp = self.send(spec).await?;
        let resp = self.expect(resp, &[StatusCode::OK], &op).await?;
        let media_type = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or(v).trim().to_owned());
        let announced = header_digest(resp.headers());
        let limit = self.options.max_manifest_bytes;
        if content_length(resp.headers()).is_some_and(|n| n > limit as u64) {
            return Err(RegistryError::TooLarge {
                what: format!("manifest {repo}:{reference}"),
                limit: limit as u64,
            });
        }
        let bytes = self
            .read_limited(
                resp.into_body(),
                limit,
                &format!("manifest {repo}:{reference}"),
                &op,
            )
            .await?;
        let pinned = match reference.parse::<Digest>() {
            Ok(pinned) => Some(pinned),
            Err(_) if reference.contains(':') => {
                return Err(RegistryError::InvalidDigest(
                    reference.parse::<Digest>().unwrap_err(),
                ));
            }
            Err(_) => None,
        };
        for expected in pinned.iter().chain(announced.iter()) {
            let actual = Digest::compute(expected.algorithm(), &bytes);
            if actual != *expected {
                return Err(RegistryError::DigestMismatch {
                    what: format!("manifest {repo}:{reference}"),
                    expected: expected.clone(),
                    actual,
                });
            }
        }
        let digest = pinned.unwrap_or_else(|| Digest::sha256_of(&bytes));
        Ok(PulledManifest {
            digest,
            media_type,
            bytes,
        })
    }

    /// Download a blob into memory, verifying its size and digest; at most `limit` bytes.
    pub async fn pull_blob(
        &self,
        repo: &str,
        descriptor: &Descriptor,
        limit: u64,
        progress: &dyn TransferProgress,
    ) -> Result<Bytes, RegistryError> {
        if descriptor.size > limit {
            return Err(RegistryError::TooLarge {
                what: format!("blob {}", descriptor.digest),
                limit,
            });
        }
        let mut buf = BytesMut::with_capacity(descriptor.size as usize);
        self.stream_blob(repo, descriptor, progress, |chunk| {
            buf.extend_from_slice(chunk);
            async { Ok(()) }
        })
        .await?;
        Ok(buf.freeze())
    }

    /// Download a blob to `dest`, verifying its size and digest while streaming. The bytes go to
    /// a temporary file beside `dest` that is fsynced and renamed only once they check out; on
    /// any error nothing is left behind.
    pub async fn pull_blob_to_file(
        &self,
        repo: &str,
        descriptor: &Descriptor,
        dest: &Path,
        progress: &dyn TransferProgress,
    ) -> Result<(), RegistryError> {
        let dir = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let io = |action, path: &Path, source| RegistryError::Io {
            action,
            path: path.to_owned(),
            source,
        };
        let tmp = tempfile::Builder::new()
            .prefix(".moat-download.")
            .tempfile_in(dir)
            .map_err(|e| io("creating a temporary file in", dir, e))?;
        let std_file = tmp
            .as_file()
            .try_clone()
            .map_err(|e| io("opening", tmp.path(), e))?;
        let file = tokio::sync::Mutex::new(tokio::fs::File::from_std(std_file));
        let tmp_path = tmp.path().to_owned();
        self.stream_blob(repo, descriptor, progress, |chunk| {
            let chunk = Bytes::copy_from_slice(chunk);
            let file = &file;
            let tmp_path = &tmp_path;
            async move {
                file.lock()
                    .await
                    .write_all(&chunk)
                    .await
                    .map_err(|e| io("writing", tmp_path, e))
            }
        })
        .await?;
        let mut file = file.into_inner();
        file.flush()
            .await
            .map_err(|e| io("writing", &tmp_path, e))?;
        file.sync_all()
            .await
            .map_err(|e| io("syncing", &tmp_path, e))?;
        drop(file);
        tmp.persist(dest)
            .map_err(|e| io("renaming into", dest, e.error))?;
        Ok(())
    }

    /// GET a blob (following redirects) and feed its body to `sink` frame by frame, hashing as
    /// it goes; fails on a size or digest mismatch after (or, for size, as soon as) it shows.
    async fn stream_blob<F, Fut>(
        &self,
        repo: &str,
        descriptor: &Descriptor,
        progress: &dyn TransferProgress,
        mut sink: F,
    ) -> Result<(), RegistryError>
    where
        F: FnMut(&[u8]) -> Fut,
        Fut: Future<Output = Result<(), RegistryError>>,
    {
        let digest = &descriptor.digest;
        let what = format!("blob {digest} in {repo}");
        let op = format!("pull {what}");
        let mut url = format!("{}/v2/{repo}/blobs/{digest}", self.base);
        let mut redirects = 0;
        let resp = loop {
            let resp = self.send(Spec::new(Method::GET, url.clone(), &op)).await?;
            if resp.status().is_redirection() && redirects < MAX_REDIRECTS {
                redirects += 1;
                url = self.location(resp.headers(), &op)?;
                continue;
            }
            break self.expect(resp, &[StatusCode::OK], &op).await?;
        };
        let expected_size = descriptor.size;
        if let Some(announced) = content_length(resp.headers())
            && announced != expected_size
        {
            return Err(RegistryError::SizeMismatch {
                what,
                expected: expected_size,
                actual: announced,
            });
        }
        progress.start(expected_size, 0);
        let mut hasher = DigestHasher::new(digest.algorithm());
        let mut received: u64 = 0;
        let mut body = resp.into_body();
        while let Some(frame) = self.next_frame(&mut body, &op).await? {
            let Ok(data) = frame.into_data() else {
                continue;
            };
            received += data.len() as u64;
            if received > expected_size {
                return Err(RegistryError::SizeMismatch {
                    what,
                    expected: expected_size,
                    actual: received,
                });
            }
            hasher.update(&data);
            sink(&data).await?;
            progress.advance(data.len() as u64);
        }
        if received != expected_size {
            return Err(RegistryError::SizeMismatch {
                what,
                expected: expected_size,
                actual: received,
            });
        }
        let actual = hasher.finish();
        if actual != *digest {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: digest.clone(),
                actual,
            });
        }
        Ok(())
    }

    /// One page of the repository's tags (`n` at most, after `last`).
    pub async fn tags(
        &self,
        repo: &str,
        n: Option<u32>,
        last: Option<&str>,
    ) -> Result<TagPage, RegistryError> {
        let op = format!("list tags of {repo}");
        let mut url = format!("{}/v2/{repo}/tags/list", self.base);
        if let Some(n) = n {
            url = with_query(&url, "n", &n.to_string());
        }
        if let Some(last) = last {
            url = with_query(&url, "last", last);
        }
        let resp = self.send(Spec::new(Method::GET, url, &op)).await?;
        let resp = self.expect(resp, &[StatusCode::OK], &op).await?;
        let next_last = resp
            .headers()
            .get(LINK)
            .and_then(|v| v.to_str().ok())
            .and_then(link_next_last);
        let bytes = self
            .read_limited(resp.into_body(), MAX_TAG_PAGE, "tag list", &op)
            .await?;
        let mut page: TagPage = serde_json::from_slice(&bytes)
            .map_err(|e| self.protocol(&op, format!("tag list is not valid JSON: {e}")))?;
        page.next_last = next_last;
        Ok(page)
    }

    /// Send a request, answering one auth challenge (Basic, or the Bearer token flow) if the
    /// registry sends one. The answer is returned whatever its status, except 401s.
    async fn send(&self, spec: Spec<'_>) -> Result<Response<Incoming>, RegistryError> {
        let resp = self.send_once(&spec).await?;
        if resp.status() != StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenges: Vec<Challenge> = resp
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| parse_challenge(v).ok())
            .collect();
        // Prefer the token flow when offered; it is what scoped registries expect.
        let challenge = challenges
            .iter()
            .find(|c| matches!(c, Challenge::Bearer { .. }))
            .or_else(|| challenges.first())
            .cloned();
        let Some(challenge) = challenge else {
            return Err(self.unauthorized(resp, spec.operation).await);
        };
        let new_state = match challenge {
            Challenge::Basic { .. } => {
                if self.options.credentials.is_none() {
                    return Err(self.unauthorized(resp, spec.operation).await);
                }
                AuthState::Basic
            }
            Challenge::Bearer {
                realm,
                service,
                scope,
            } => {
                let token = self
                    .fetch_token(&realm, service.as_deref(), scope.as_deref())
                    .await?;
                AuthState::Bearer { token }
            }
        };
        let previous = self.auth_state();
        if same_auth(&previous, &new_state) {
            // Re-sending what was just refused cannot help.
            return Err(self.unauthorized(resp, spec.operation).await);
        }
        drop(resp);
        *self.auth.lock().unwrap_or_else(|p| p.into_inner()) = new_state;
        let resp = self.send_once(&spec).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            return Err(self.unauthorized(resp, spec.operation).await);
        }
        Ok(resp)
    }

    fn auth_state(&self) -> AuthState {
        self.auth.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    async fn send_once(&self, spec: &Spec<'_>) -> Result<Response<Incoming>, RegistryError> {
        let mut builder = Request::builder()
            .method(spec.method.clone())
            .uri(&spec.url);
        for (name, value) in &spec.headers {
            builder = builder.header(name, value);
        }
        // Credentials go only to this registry's own origin, never to a redirect target.
        if self.same_origin(&spec.url) {
            match self.auth_state() {
                AuthState::Anonymous => {}
                AuthState::Basic => {
                    if let Some(creds) = &self.options.credentials {
                        builder = builder.header(AUTHORIZATION, creds.basic_header());
                    }
                }
                AuthState::Bearer { token } => {
                    builder = builder.header(AUTHORIZATION, format!("Bearer {token}"));
                }
            }
        }
        let has_length = spec.headers.iter().any(|(n, _)| n == CONTENT_LENGTH);
        if !has_length
            && (!spec.body.is_empty() || spec.method == Method::PUT || spec.method == Method::PATCH)
        {
            builder = builder.header(CONTENT_LENGTH, spec.body.len());
        }
        let request = builder
            .body(Full::new(spec.body.clone()))
            .map_err(|e| self.protocol(spec.operation, format!("cannot build request: {e}")))?;
        match tokio::time::timeout(self.options.timeouts.response, self.http.request(request)).await
        {
            Err(_) => Err(RegistryError::Timeout {
                registry: self.registry.clone(),
                operation: spec.operation.to_owned(),
                seconds: self.options.timeouts.response.as_secs(),
            }),
            Ok(Err(e)) => Err(RegistryError::Connect {
                registry: self.registry.clone(),
                reason: error_chain(&e),
            }),
            Ok(Ok(resp)) => Ok(resp),
        }
    }

    /// The token flow: `GET realm?service=..&scope=..`, with Basic credentials when we have
    /// them, answered by `{"token": ..}` or `{"access_token": ..}`.
    async fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<String, RegistryError> {
        let fail = |reason: String| RegistryError::TokenService {
            realm: realm.chars().take(200).collect(),
            reason,
        };
        if !realm.starts_with("https://") {
            return Err(fail(
                "realm is not an https:// URL; credentials are never sent in clear".into(),
            ));
        }
        let mut url = realm.to_owned();
        if let Some(service) = service {
            url = with_query(&url, "service", service);
        }
        // A challenge may ask for several scopes at once (a mount needs the source repository
        // too), space-separated; token services expect each as its own `scope` parameter.
        for scope in scope.into_iter().flat_map(str::split_whitespace) {
            url = with_query(&url, "scope", scope);
        }
        let mut builder = Request::builder().method(Method::GET).uri(&url);
        if let Some(creds) = &self.options.credentials {
            builder = builder.header(AUTHORIZATION, creds.basic_header());
        }
        let request = builder
            .body(Full::new(Bytes::new()))
            .map_err(|e| fail(format!("bad realm URL: {e}")))?;
        let resp =
            match tokio::time::timeout(self.options.timeouts.response, self.http.request(request))
                .await
            {
                Err(_) => return Err(fail("timed out".into())),
                Ok(Err(e)) => return Err(fail(error_chain(&e))),
                Ok(Ok(resp)) => resp,
            };
        let status = resp.status();
        let body = self
            .read_limited(
                resp.into_body(),
                MAX_TOKEN_BODY,
                "token answer",
                "token request",
            )
            .await?;
        if !status.is_success() {
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                let errors = serde_json::from_slice::<OciErrorBody>(&body)
                    .map(|b| b.errors)
                    .unwrap_or_default();
                return Err(RegistryError::Unauthorized {
                    registry: self.registry.clone(),
                    operation: "token request".into(),
                    status,
                    errors,
                    had_credentials: self.options.credentials.is_some(),
                });
            }
            return Err(fail(format!("answered {status}")));
        }
        #[derive(serde::Deserialize)]
        struct TokenAnswer {
            token: Option<String>,
            access_token: Option<String>,
        }
        let answer: TokenAnswer =
            serde_json::from_slice(&body).map_err(|e| fail(format!("answer is not JSON: {e}")))?;
        let token = answer
            .token
            .or(answer.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| fail("answer has no token".into()))?;
        if HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
            return Err(fail(
                "token contains characters not allowed in a header".into(),
            ));
        }
        Ok(token)
    }

    /// Check the status; anything else becomes a typed error carrying the registry's OCI errors.
    async fn expect(
        &self,
        resp: Response<Incoming>,
        ok: &[StatusCode],
        operation: &str,
    ) -> Result<Response<Incoming>, RegistryError> {
        let status = resp.status();
        if ok.contains(&status) {
            return Ok(resp);
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(self.unauthorized(resp, operation).await);
        }
        let errors = self.read_errors(resp, operation).await;
        Err(RegistryError::Registry {
            registry: self.registry.clone(),
            operation: operation.to_owned(),
            status,
            errors,
        })
    }

    async fn unauthorized(&self, resp: Response<Incoming>, operation: &str) -> RegistryError {
        let status = resp.status();
        let errors = self.read_errors(resp, operation).await;
        RegistryError::Unauthorized {
            registry: self.registry.clone(),
            operation: operation.to_owned(),
            status,
            errors,
            had_credentials: self.options.credentials.is_some()
                || matches!(self.auth_state(), AuthState::Bearer { .. }),
        }
    }

    async fn read_errors(&self, resp: Response<Incoming>, operation: &str) -> Vec<OciError> {
        match self
            .read_limited(resp.into_body(), MAX_ERROR_BODY, "error body", operation)
            .await
        {
            Ok(body) => serde_json::from_slice::<OciErrorBody>(&body)
                .map(|b| b.errors)
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    async fn next_frame(
        &self,
        body: &mut Incoming,
        operation: &str,
    ) -> Result<Option<hyper::body::Frame<Bytes>>, RegistryError> {
        match tokio::time::timeout(self.options.timeouts.idle, body.frame()).await {
            Err(_) => Err(RegistryError::Timeout {
                registry: self.registry.clone(),
                operation: operation.to_owned(),
                seconds: self.options.timeouts.idle.as_secs(),
            }),
            Ok(None) => Ok(None),
            Ok(Some(Err(e))) => Err(RegistryError::Connect {
                registry: self.registry.clone(),
                reason: format!("connection broke while reading: {}", error_chain(&e)),
            }),
            Ok(Some(Ok(frame))) => Ok(Some(frame)),
        }
    }

    async fn read_limited(
        &self,
        mut body: Incoming,
        limit: usize,
        what: &str,
        operation: &str,
    ) -> Result<Bytes, RegistryError> {
        let mut buf = BytesMut::new();
        while let Some(frame) = self.next_frame(&mut body, operation).await? {
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > limit {
                    return Err(RegistryError::TooLarge {
                        what: what.to_owned(),
                        limit: limit as u64,
                    });
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(buf.freeze())
    }

    /// The absolute URL in a `Location` header (relative ones resolve against the registry).
    fn location(&self, headers: &HeaderMap, operation: &str) -> Result<String, RegistryError> {
        let value = headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| self.protocol(operation, "answer has no Location header".into()))?;
        if value.starts_with("https://") {
            Ok(value.to_owned())
        } else if value.starts_with('/') {
            Ok(format!("{}{value}", self.base))
        } else {
            Err(self.protocol(
                operation,
                format!(
                    "Location {:?} is neither https:// nor a path",
                    truncate(value)
                ),
            ))
        }
    }

    fn same_origin(&self, url: &str) -> bool {
        url.strip_prefix(&self.base)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    fn protocol(&self, operation: &str, reason: String) -> RegistryError {
        RegistryError::Protocol {
            registry: self.registry.clone(),
            operation: operation.to_owned(),
            reason,
        }
    }
}

fn same_auth(a: &AuthState, b: &AuthState) -> bool {
    match (a, b) {
        (AuthState::Basic, AuthState::Basic) => true,
        (AuthState::Bearer { token: x }, AuthState::Bearer { token: y }) => x == y,
        _ => false,
    }
}

/// Characters escaped in query values.
const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

fn with_query(url: &str, key: &str, value: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{sep}{key}={}",
        percent_encoding::utf8_percent_encode(value, QUERY)
    )
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn header_digest(headers: &HeaderMap) -> Option<Digest> {
    headers
        .get("docker-content-digest")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// From an upload's `Range: 0-<last>` header: how many bytes the registry holds (`last + 1`).
fn upload_range_end(headers: &HeaderMap) -> Option<u64> {
    let value = headers.get(RANGE)?.to_str().ok()?;
    let value = value.strip_prefix("bytes=").unwrap_or(value);
    let (start, last) = value.split_once('-')?;
    if start.trim() != "0" {
        return None;
    }
    last.trim().parse::<u64>().ok().map(|last| last + 1)
}

/// The `last` parameter of a `Link: </v2/..?n=..&last=..>; rel="next"` header.
fn link_next_last(link: &str) -> Option<String> {
    let target = link.split(';').next()?.trim();
    let target = target.strip_prefix('<')?.strip_suffix('>')?;
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "last").then(|| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
    })
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        out.push_str(": ");
        out.push_str(&inner.to_string());
        source = inner.source();
    }
    out
}

fn truncate(s: &str) -> String {
    s.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upload_range_parsing() {
        let mut h = HeaderMap::new();
        assert_eq!(upload_range_end(&h), None);
        h.insert(RANGE, HeaderValue::from_static("0-1023"));
        assert_eq!(upload_range_end(&h), Some(1024));
        h.insert(RANGE, HeaderValue::from_static("bytes=0-0"));
        assert_eq!(upload_range_end(&h), Some(1));
        h.insert(RANGE, HeaderValue::from_static("5-9"));
        assert_eq!(upload_range_end(&h), None);
        h.insert(RANGE, HeaderValue::from_static("0-x"));
        assert_eq!(upload_range_end(&h), None);
    }

    #[test]
    fn link_header_parsing() {
        assert_eq!(
            link_next_last(r#"</v2/a/tags/list?n=2&last=v1.0>; rel="next""#).as_deref(),
            Some("v1.0")
        );
        assert_eq!(link_next_last("garbage"), None);
        assert_eq!(link_next_last("</v2/a/tags/list>; rel=\"next\""), None);
    }

    #[test]
    fn query_building() {
        assert_eq!(
            with_query("https://h/u", "digest", "sha256:ab"),
            "https://h/u?digest=sha256%3Aab"
        );
        assert_eq!(
            with_query("https://h/u?_state=x", "n", "1"),
            "https://h/u?_state=x&n=1"
        );
        assert_eq!(
            with_query("https://h/t", "scope", "repository:a/b:pull,push"),
            "https://h/t?scope=repository%3Aa/b%3Apull%2Cpush"
        );
    }
}
