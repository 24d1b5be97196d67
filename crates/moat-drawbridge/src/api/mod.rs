//! The HTTP API: OCI Distribution Spec v1.1 under `/v2/`, plus `/token` and `/healthz`.
//!
//! Repository names contain `/`, so every `/v2/<name>/...` request goes to one dispatcher that
//! reads the route from the right-hand end of the path (`names::parse_route`), validates the
//! name, then decides who the caller is and whether they may do this ([`authorize`]) before any
//! handler touches storage. Handlers return `Result<Response, ApiError>`; `error.rs` is the one
//! place failures become responses.

mod blobs;
mod manifests;
mod uploads;

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rustls_pki_types::{CertificateDer, UnixTime};
use serde_json::json;

use crate::auth::{Action, Credentials, hash_token, parse_authorization, parse_scopes};
use crate::error::{ApiError, ErrorCode};
use crate::meta::{RepoInfo, TokenRecord};
use crate::names::{RepoName, Route, RouteError, parse_route};
use crate::policy::{ReleasePolicy, evaluate};
use crate::registry::Registry;

/// The challenge sent with 401: Basic, so `docker login`/skopeo/oras send user + token.
pub const CHALLENGE: &str = "Basic realm=\"moat-drawbridge\"";

/// The client certificate chain of the TLS connection a request came in on (leaf first),
/// inserted as a request extension by the server; absent on plain-HTTP listeners.
#[derive(Clone, Debug, Default)]
pub struct ClientChain(pub Arc<Vec<CertificateDer<'static>>>);

/// `Range: 0-<last byte>` for an upload holding `size` bytes (`0-0` when empty, as Docker's
/// registry also answers).
pub fn range_header(size: u64) -> String {
    format!("0-{}", size.saturating_sub(1))
}

/// The API router. State is the shared [`Registry`].
pub fn router(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/v2/", get(base))
        .route("/v2", get(base))
        .route("/token", get(token))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(dispatch)
        .layer(axum::middleware::map_response(api_version_header))
        .with_state(registry)
}

async fn api_version_header(mut response: Response) -> Response {
    response.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    response
}

/// Who is calling: a valid token, a client certificate, both or neither.
#[derive(Debug, Default)]
pub struct Caller {
    pub token: Option<TokenRecord>,
    pub chain: Option<ClientChain>,
}

impl Caller {
    fn describe(&self) -> String {
        match &self.token {
            Some(t) => format!("token {} of user {}", t.id, t.user),
            None if self.chain.is_some() => "client certificate".to_owned(),
            None => "anonymous".to_owned(),
        }
    }
}

/// Resolve the credentials of a request. Wrong credentials are an error (401), never anonymous.
async fn identify(
    registry: &Registry,
    headers: &HeaderMap,
    chain: Option<ClientChain>,
) -> Result<Caller, ApiError> {
    let chain = chain.filter(|c| !c.0.is_empty());
    let creds = parse_authorization(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()));
    let (user, secret) = match creds {
        Credentials::None => return Ok(Caller { token: None, chain }),
        Credentials::Malformed => {
            return Err(ApiError::unauthorized(
                "malformed Authorization header",
                CHALLENGE,
            ));
        }
        Credentials::Bearer(secret) => (None, secret),
        Credentials::Basic { user, token } => (Some(user), token),
    };
    let hash = hash_token(&secret);
    let record = registry.meta.run(move |db| db.token_by_hash(&hash)).await?;
    match record {
        Some(record) if user.as_deref().is_none_or(|u| u == record.user) => Ok(Caller {
            token: Some(record),
            chain,
        }),
        _ => Err(ApiError::unauthorized(
            "invalid credentials (unknown or revoked token, or wrong user)",
            CHALLENGE,
        )),
    }
}

/// How a request was allowed (for the log).
#[derive(Debug)]
pub enum Grant {
    Public,
    Token,
    Keep { platform: String },
}

/// Decide whether `caller` may do `action` on `repo`. Reads are open on public repositories;
/// tokens act within their scopes; a Keep certificate can only read, and only a repository whose
/// release policy it satisfies.
pub async fn authorize(
    registry: &Registry,
    caller: &Caller,
    repo: &RepoName,
    action: Action,
) -> Result<Grant, ApiError> {
    let name = repo.as_str().to_owned();
    let info: Option<RepoInfo> = registry.meta.run(move |db| db.repo_get(&name)).await?;
    let public = info.as_ref().is_some_and(|i| !i.private);
    if action == Action::Pull && public {
        return Ok(Grant::Public);
    }
    if let Some(token) = &caller.token {
        let scopes = parse_scopes(&token.scopes).unwrap_or_default();
        if scopes.iter().any(|s| s.allows(repo.as_str(), action)) {
            return Ok(Grant::Token);
        }
        // A token without read rights may still stand beside a Keep certificate: fall through
        // to the certificate for reads, otherwise refuse.
        if action != Action::Pull || caller.chain.is_none() {
            tracing::warn!(repo = %repo, caller = %caller.describe(), action = action.as_str(), "denied: outside token scope");
            return Err(ApiError::denied(format!(
                "{} may not {} {}",
                caller.describe(),
                action.as_str(),
                repo
            )));
        }
    }
    if action != Action::Pull {
        if caller.chain.is_some() {
            return Err(ApiError::denied(format!(
                "a Keep certificate can only pull; {} needs a token",
                action.as_str()
            )));
        }
        return Err(ApiError::unauthorized(
            format!("{} on {repo} needs a token", action.as_str()),
            CHALLENGE,
        ));
    }
    let Some(chain) = &caller.chain else {
        return Err(ApiError::unauthorized(
            format!("{repo} is private or does not exist: log in or present a Keep certificate"),
            CHALLENGE,
        ));
    };
    let policy = match info.as_ref().and_then(|i| i.policy.as_deref()) {
        Some(text) => match ReleasePolicy::from_stored(text) {
            Ok(p) => Some(p),
            Err(e) => {
                tracing::error!(repo = %repo, error = %e, "stored release policy unusable");
                None
            }
        },
        None => None,
    };
    let expected = format!("oci://{}/{}", registry.config.public_authority, repo);
    match evaluate(
        policy.as_ref(),
        &chain.0,
        &expected,
        registry.read_claims,
        UnixTime::now(),
    ) {
        Ok(released) => {
            tracing::info!(repo = %repo, platform = %released.platform, "released to Keep");
            Ok(Grant::Keep {
                platform: released.platform,
            })
        }
        Err(denial) => {
            tracing::warn!(repo = %repo, rule = denial.rule.as_str(), reason = %denial.reason, "Keep denied");
            Err(ApiError::denied(format!("{repo}: {denial}"))
                .with_detail(json!({ "rule": denial.rule.as_str(), "reason": denial.reason })))
        }
    }
}

/// `GET /v2/`: 200 for a caller with valid credentials or a client certificate, else 401 with
/// the challenge (how clients discover that they should log in).
async fn base(State(registry): State<Arc<Registry>>, req: Request) -> Response {
    let chain = req.extensions().get::<ClientChain>().cloned();
    match identify(&registry, req.headers(), chain).await {
        Ok(caller) if caller.token.is_some() || caller.chain.is_some() => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{}",
        )
            .into_response(),
        Ok(_) => {
            ApiError::unauthorized("log in with a Drawbridge token", CHALLENGE).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// `GET /token`: the Docker token flow for clients that want a bearer token. The caller already
/// holds a token (sent as the Basic password); it is checked and handed back as the bearer.
async fn token(State(registry): State<Arc<Registry>>, headers: HeaderMap) -> Response {
    let creds = parse_authorization(headers.get(header::AUTHORIZATION).map(|v| v.as_bytes()));
    let secret = match &creds {
        Credentials::Basic { token, .. } => token.clone(),
        Credentials::Bearer(token) => token.clone(),
        _ => return ApiError::unauthorized("send user name and token", CHALLENGE).into_response(),
    };
    match identify(&registry, &headers, None).await {
        Ok(Caller { token: Some(_), .. }) => axum::Json(json!({
            "token": secret,
            "access_token": secret,
            "expires_in": 3600,
        }))
        .into_response(),
        Ok(_) => ApiError::unauthorized("send user name and token", CHALLENGE).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Every `/v2/<name>/...` request.
async fn dispatch(State(registry): State<Arc<Registry>>, req: Request) -> Response {
    match dispatch_inner(registry, req).await {
        Ok(response) => response,
        Err(err) => {
            if err.status.is_server_error() {
                tracing::error!(error = %err, "request failed");
            } else {
                tracing::debug!(error = %err, "request refused");
            }
            err.into_response()
        }
    }
}

async fn dispatch_inner(registry: Arc<Registry>, req: Request) -> Result<Response, ApiError> {
    let path = req.uri().path().to_owned();
    let Some(rest) = path.strip_prefix("/v2/") else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::Unsupported,
            "no such endpoint",
        ));
    };
    let route = match parse_route(rest) {
        Ok(route) => route,
        Err(RouteError::NotFound) => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::Unsupported,
                "no such endpoint",
            ));
        }
        Err(RouteError::BadName(e)) => {
            drain(req.into_body(), registry.config.body_idle_timeout).await;
            return Err(ApiError::name_invalid(e.to_string()));
        }
    };
    let query: HashMap<String, String> =
        Query::try_from_uri(req.uri())
            .map(|Query(q)| q)
            .map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::Unsupported,
                    format!("bad query string: {e}"),
                )
            })?;
    let method = req.method().clone();
    let (repo, action) = match (&route, &method) {
        (Route::Blob(n, _) | Route::Manifest(n, _), &Method::GET | &Method::HEAD)
        | (Route::TagsList(n), &Method::GET)
        | (Route::Referrers(n, _), &Method::GET) => (n.clone(), Action::Pull),
        (Route::Blob(n, _) | Route::Manifest(n, _), &Method::DELETE) => (n.clone(), Action::Delete),
        (Route::UploadStart(n), &Method::POST)
        | (Route::Upload(n, _), &Method::PATCH | &Method::PUT | &Method::GET | &Method::DELETE)
        | (Route::Manifest(n, _), &Method::PUT) => (n.clone(), Action::Push),
        _ => {
            return Err(ApiError::unsupported(format!(
                "{method} is not supported on this endpoint"
            )));
        }
    };
    // Who is calling and whether they may: decided before any handler reads the body or
    // touches storage.
    let chain = req.extensions().get::<ClientChain>().cloned();
    let caller = match identify(&registry, req.headers(), chain).await {
        Ok(caller) => caller,
        Err(err) => return refuse(req, registry.config.body_idle_timeout, err).await,
    };
    if let Err(err) = authorize(&registry, &caller, &repo, action).await {
        drain(req.into_body(), registry.config.body_idle_timeout).await;
        return Err(err);
    }
    let ctx = Ctx {
        registry,
        caller,
        query,
    };
    match (route, method) {
        (Route::Blob(name, digest), Method::GET) => blobs::get(ctx, name, &digest, true).await,
        (Route::Blob(name, digest), Method::HEAD) => blobs::get(ctx, name, &digest, false).await,
        (Route::Blob(name, digest), Method::DELETE) => blobs::delete(ctx, name, &digest).await,
        (Route::UploadStart(name), Method::POST) => uploads::start(ctx, name, req).await,
        (Route::Upload(name, id), Method::PATCH) => uploads::patch(ctx, name, &id, req).await,
        (Route::Upload(name, id), Method::PUT) => uploads::put(ctx, name, &id, req).await,
        (Route::Upload(name, id), Method::GET) => uploads::status(ctx, name, &id).await,
        (Route::Upload(name, id), Method::DELETE) => uploads::cancel(ctx, name, &id).await,
        (Route::Manifest(name, reference), Method::GET) => {
            manifests::get(ctx, name, &reference, true).await
        }
        (Route::Manifest(name, reference), Method::HEAD) => {
            manifests::get(ctx, name, &reference, false).await
        }
        (Route::Manifest(name, reference), Method::PUT) => {
            manifests::put(ctx, name, &reference, req).await
        }
        (Route::Manifest(name, reference), Method::DELETE) => {
            manifests::delete(ctx, name, &reference).await
        }
        (Route::TagsList(name), Method::GET) => manifests::tags(ctx, name).await,
        (Route::Referrers(name, digest), Method::GET) => {
            manifests::referrers(ctx, name, &digest).await
        }
        (_, method) => Err(ApiError::unsupported(format!(
            "{method} is not supported on this endpoint"
        ))),
    }
}

/// What every handler gets.
pub struct Ctx {
    pub registry: Arc<Registry>,
    pub caller: Caller,
    pub query: HashMap<String, String>,
}

impl Ctx {
    async fn allow(&self, repo: &RepoName, action: Action) -> Result<Grant, ApiError> {
        authorize(&self.registry, &self.caller, repo, action).await
    }
}

/// Most bytes of a refused request's body read and discarded, so the client gets to read the
/// answer instead of a broken pipe; past this the connection is closed instead.
pub const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;

/// Refuse a request whose body has not been read: drain it first, then answer `err`.
pub async fn refuse<T>(
    req: Request,
    idle: std::time::Duration,
    err: ApiError,
) -> Result<T, ApiError> {
    drain(req.into_body(), idle).await;
    Err(err)
}

/// Read and discard what is left of a request body (bounded in size and idle time).
pub async fn drain(body: Body, idle: std::time::Duration) {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut seen: u64 = 0;
    while let Ok(Some(Ok(frame))) = tokio::time::timeout(idle, body.frame()).await {
        if let Ok(data) = frame.into_data() {
            seen += data.len() as u64;
            if seen > DRAIN_LIMIT {
                break;
            }
        }
    }
}

/// An empty response with headers.
fn empty(status: StatusCode, headers: &[(&str, String)]) -> Result<Response, ApiError> {
    let mut builder = Response::builder().status(status);
    for (name, value) in headers {
        builder = builder.header(*name, value.as_str());
    }
    if !headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        builder = builder.header(header::CONTENT_LENGTH, "0");
    }
    builder
        .body(Body::empty())
        .map_err(|e| ApiError::internal(format!("response: {e}")))
}

#[cfg(test)]
mod tests {
    //! The router without sockets (`oneshot`): routing, the wire shape of errors, and that
    //! authorization runs before anything is read or stored. The real-process tests in
    //! `crates/moat-cli/tests/drawbridge_*.rs` cover the wiring over TLS.

    use super::*;
    use crate::registry::RegistryConfig;
    use axum::body::to_bytes;
    use tower::ServiceExt;

    async fn registry() -> (tempfile::TempDir, Arc<Registry>, String) {
        let dir = tempfile::tempdir().unwrap();
        let config = RegistryConfig::new(dir.path(), "registry.test:5000");
        let registry = Registry::open(config.clone()).await.unwrap();
        let token = crate::auth::generate_token().unwrap();
        let db = crate::meta::Db::open(&config.db_path()).unwrap();
        db.user_add("alice").unwrap();
        db.token_insert(&token.id, "alice", &token.hash, "*:pull,push,delete")
            .unwrap();
        (dir, registry, token.secret)
    }

    async fn call(
        registry: &Arc<Registry>,
        req: axum::http::Request<Body>,
    ) -> (StatusCode, HeaderMap, Vec<u8>) {
        let resp = router(registry.clone()).oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = to_bytes(resp.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        (status, headers, body)
    }

    fn req(method: &str, uri: &str, token: Option<&str>, body: &[u8]) -> axum::http::Request<Body> {
        let mut b = axum::http::Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        b.body(Body::from(body.to_vec())).unwrap()
    }

    fn code(body: &[u8]) -> String {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        v["errors"][0]["code"].as_str().unwrap().to_owned()
    }

    #[tokio::test]
    async fn errors_have_the_spec_shape_and_version_header() {
        let (_dir, reg, _) = registry().await;
        let (status, headers, body) = call(&reg, req("GET", "/v2/", None, b"")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers["docker-distribution-api-version"], "registry/2.0");
        assert_eq!(headers["www-authenticate"], CHALLENGE);
        assert_eq!(headers["content-type"], "application/json");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["errors"][0]["code"], "UNAUTHORIZED");
        assert!(v["errors"][0]["message"].as_str().unwrap().len() > 5);
    }

    #[tokio::test]
    async fn push_and_pull_through_the_router() {
        let (_dir, reg, token) = registry().await;
        let digest = crate::digest::Algorithm::Sha256.digest(b"layer");
        let (status, headers, _) = call(
            &reg,
            req(
                "POST",
                &format!("/v2/a/b/blobs/uploads/?digest={digest}"),
                Some(&token),
                b"layer",
            ),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        assert_eq!(
            headers["docker-content-digest"],
            digest.to_string().as_str()
        );
        let (status, _, body) = call(
            &reg,
            req("GET", &format!("/v2/a/b/blobs/{digest}"), Some(&token), b""),
        )
        .await;
        assert_eq!((status, body.as_slice()), (StatusCode::OK, &b"layer"[..]));
        // Private by default: anonymous reads are asked to log in.
        let (status, _, body) = call(
            &reg,
            req("GET", &format!("/v2/a/b/blobs/{digest}"), None, b""),
        )
        .await;
        assert_eq!(
            (status, code(&body).as_str()),
            (StatusCode::UNAUTHORIZED, "UNAUTHORIZED")
        );
    }

    #[tokio::test]
    async fn unauthorized_and_invalid_requests_store_nothing() {
        let (dir, reg, token) = registry().await;
        let digest = crate::digest::Algorithm::Sha256.digest(b"x");
        // No token: refused before the upload file or the repository exists.
        let (status, _, _) =
            call(&reg, req("POST", "/v2/new/repo/blobs/uploads/", None, b"")).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _, body) = call(
            &reg,
            req(
                "POST",
                &format!("/v2/Bad/blobs/uploads/?digest={digest}"),
                Some(&token),
                b"x",
            ),
        )
        .await;
        assert_eq!(
            (status, code(&body).as_str()),
            (StatusCode::BAD_REQUEST, "NAME_INVALID")
        );
        assert_eq!(
            std::fs::read_dir(dir.path().join("uploads"))
                .unwrap()
                .count(),
            0
        );
        let repos = reg.meta.run(|db| db.repo_list()).await.unwrap();
        assert!(repos.is_empty(), "{repos:?}");
    }

    #[tokio::test]
    async fn keep_certificates_are_judged_per_request() {
        let (_dir, reg, token) = registry().await;
        let (status, _, _) = call(
            &reg,
            req("PUT", "/v2/p/manifests/v1", Some(&token), br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED);
        // A request arriving with a client certificate (as the TLS layer inserts it) but no
        // policy on the repository: refused, naming the rule.
        let cert = rcgen::generate_simple_self_signed(vec!["keep".into()]).unwrap();
        let mut r = req("GET", "/v2/p/manifests/v1", None, b"");
        r.extensions_mut()
            .insert(ClientChain(Arc::new(vec![cert.cert.der().clone()])));
        let (status, _, body) = call(&reg, r).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["errors"][0]["code"], "DENIED");
        assert_eq!(v["errors"][0]["detail"]["rule"], "policy");
        // A certificate cannot be used for `GET /v2/` to look authenticated and then push.
        let mut r = req("POST", "/v2/p/blobs/uploads/", None, b"");
        r.extensions_mut()
            .insert(ClientChain(Arc::new(vec![cert.cert.der().clone()])));
        let (status, _, _) = call(&reg, r).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
}
