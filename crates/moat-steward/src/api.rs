//! The HTTP API (axum), and the one place where a [`Rejection`] becomes an HTTP status and a
//! JSON body `{"error": {"code", "message", "check"}}`.
//!
//! | route | what |
//! |---|---|
//! | `POST /api/v1/certificate` | DER or PEM PKCS#10 (`Content-Type: application/pkcs10`) → chain, leaf first: PEM (`application/pem-certificate-chain`, default), leaf DER (`Accept: application/pkix-cert`), or PkiPath DER (`Accept: application/pkix-pkipath`, CA first) |
//! | `POST /` | Enarx-compatible: `application/pkcs10` → PkiPath DER `[CA, leaf]` |
//! | `GET /api/v1/ca` | the CA certificate, PEM |
//! | `GET /api/v1/nonce` | `{"nonce": hex, "expires_at": unix seconds}` |
//! | `GET /healthz` | `{"status": "ok"}` |
//! | `GET /metrics` | Prometheus text |
//!
//! Evidence verification is CPU work (a few ECDSA verifications per request): it runs on the
//! blocking pool behind a semaphore, so a flood of requests is answered `503 busy` instead of
//! queueing without bound. Every request has a deadline that covers reading the body.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::ca::pem_encode;
use crate::error::{NonceError, Rejection};
use crate::service::{Issued, Steward};

/// Largest request body accepted (a CSR with SNP evidence and CRLs is ~5 KiB, with an SGX
/// quote ~14 KiB).
pub const MAX_BODY: usize = moat_attest::csr::MAX_CSR_LEN;
/// Deadline for one request, including reading its body.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Verifications running or waiting at once before requests are refused as busy.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;

pub const MEDIA_PKCS10: &str = "application/pkcs10";
pub const MEDIA_PEM_CHAIN: &str = "application/pem-certificate-chain";
pub const MEDIA_PKIX_CERT: &str = "application/pkix-cert";
pub const MEDIA_PKIPATH: &str = "application/pkix-pkipath";

/// Limits applied by the router.
#[derive(Debug, Clone)]
pub struct ApiLimits {
    pub max_body: usize,
    pub request_timeout: Duration,
    pub max_in_flight: usize,
}

impl Default for ApiLimits {
    fn default() -> Self {
        ApiLimits {
            max_body: MAX_BODY,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            max_in_flight: DEFAULT_MAX_IN_FLIGHT,
        }
    }
}

#[derive(Clone)]
struct AppState {
    steward: Arc<Steward>,
    limits: ApiLimits,
    in_flight: Arc<Semaphore>,
}

/// The router; test it with `tower::ServiceExt::oneshot`, serve it with [`crate::server`].
pub fn router(steward: Arc<Steward>, limits: ApiLimits) -> Router {
    let state = AppState {
        steward,
        in_flight: Arc::new(Semaphore::new(limits.max_in_flight)),
        limits,
    };
    Router::new()
        .route("/api/v1/certificate", post(certificate))
        .route("/", post(enarx_certificate))
        .route("/api/v1/ca", get(ca))
        .route("/api/v1/nonce", get(nonce))
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
}

/// The chain format a client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChainFormat {
    Pem,
    LeafDer,
    PkiPath,
}

fn wanted_format(headers: &HeaderMap) -> Result<ChainFormat, Rejection> {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return Ok(ChainFormat::Pem);
    };
    for item in accept.split(',') {
        let media = item.split(';').next().unwrap_or("").trim();
        match media.to_ascii_lowercase().as_str() {
            MEDIA_PEM_CHAIN | "application/x-pem-file" | "text/plain" | "*/*" | "application/*" => {
                return Ok(ChainFormat::Pem);
            }
            MEDIA_PKIX_CERT => return Ok(ChainFormat::LeafDer),
            MEDIA_PKIPATH => return Ok(ChainFormat::PkiPath),
            _ => {}
        }
    }
    Err(Rejection::NotAcceptable {
        offered: "application/pem-certificate-chain, application/pkix-cert, application/pkix-pkipath",
    })
}

fn check_content_type(headers: &HeaderMap) -> Result<(), Rejection> {
    let got = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let media = got.map(|v| {
        v.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase()
    });
    if media.as_deref() == Some(MEDIA_PKCS10) {
        Ok(())
    } else {
        Err(Rejection::UnsupportedMediaType {
            got: got.map(|s| s.chars().take(100).collect()),
        })
    }
}

/// Reads the body up to `max_body`. A larger body is still read and discarded up to
/// [`DRAIN_FACTOR`] times the limit, so the client (still sending) reliably receives the 413
/// instead of a reset connection; anything larger is cut off.
async fn read_body(state: &AppState, body: Body) -> Result<Bytes, Rejection> {
    use http_body_util::BodyExt;
    let limit = state.limits.max_body;
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Rejection::BodyUnreadable(e.to_string()))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        seen = seen.saturating_add(data.len());
        if seen > limit.saturating_mul(DRAIN_FACTOR) {
            break;
        }
        if seen <= limit {
            buf.extend_from_slice(&data);
        }
    }
    if seen > limit {
        return Err(Rejection::BodyTooLarge { limit });
    }
    Ok(buf.freeze())
}

/// How far past the limit an oversized body is drained before answering 413.
pub const DRAIN_FACTOR: usize = 4;

/// Reads the CSR, runs the verification on the blocking pool, within the request deadline.
async fn certify_request(state: &AppState, req: Request) -> Result<Issued, Rejection> {
    let deadline = state.limits.request_timeout;
    let work = async {
        let (parts, body) = req.into_parts();
        check_content_type(&parts.headers)?;
        if let Some(len) = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            && len > state.limits.max_body.saturating_mul(DRAIN_FACTOR)
        {
            return Err(Rejection::BodyTooLarge {
                limit: state.limits.max_body,
            });
        }
        let body = read_body(state, body).await?;
        let permit = state
            .in_flight
            .clone()
            .try_acquire_owned()
            .map_err(|_| Rejection::Busy)?;
        let steward = state.steward.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            steward.certify(&body)
        })
        .await
        .map_err(|e| Rejection::Internal(format!("verification task failed: {e}")))?
    };
    match tokio::time::timeout(deadline, work).await {
        Ok(outcome) => outcome,
        Err(_) => Err(Rejection::BodyUnreadable(format!(
            "request not completed within {}s",
            deadline.as_secs()
        ))),
    }
}

/// Counts and logs rejections that happen before the service sees the request (the service
/// counts its own).
fn http_rejection(state: &AppState, r: Rejection) -> Response {
    if matches!(
        r,
        Rejection::UnsupportedMediaType { .. }
            | Rejection::NotAcceptable { .. }
            | Rejection::BodyTooLarge { .. }
            | Rejection::BodyUnreadable(_)
            | Rejection::Busy
    ) {
        state.steward.metrics().rejected(r.code());
        tracing::warn!(code = r.code(), check = %r.check(), "request refused: {r}");
    }
    r.into_response()
}

async fn certificate(State(state): State<AppState>, req: Request) -> Response {
    let format = match wanted_format(req.headers()) {
        Ok(f) => f,
        Err(r) => return http_rejection(&state, r),
    };
    match certify_request(&state, req).await {
        Ok(issued) => chain_response(&issued, format),
        Err(r) => http_rejection(&state, r),
    }
}

async fn enarx_certificate(State(state): State<AppState>, req: Request) -> Response {
    match certify_request(&state, req).await {
        Ok(issued) => chain_response(&issued, ChainFormat::PkiPath),
        Err(r) => http_rejection(&state, r),
    }
}

fn chain_response(issued: &Issued, format: ChainFormat) -> Response {
    match format {
        ChainFormat::Pem => {
            let body =
                pem_encode("CERTIFICATE", &issued.leaf) + &pem_encode("CERTIFICATE", &issued.ca);
            ([(header::CONTENT_TYPE, MEDIA_PEM_CHAIN)], body).into_response()
        }
        ChainFormat::LeafDer => (
            [(header::CONTENT_TYPE, MEDIA_PKIX_CERT)],
            issued.leaf.to_vec(),
        )
            .into_response(),
        ChainFormat::PkiPath => (
            [(header::CONTENT_TYPE, MEDIA_PKIPATH)],
            pkipath(&[&issued.ca, &issued.leaf]),
        )
            .into_response(),
    }
}

/// DER `SEQUENCE OF Certificate` (RFC 6066 PkiPath order: trust anchor first).
pub fn pkipath(certs: &[&[u8]]) -> Vec<u8> {
    let content: Vec<u8> = certs.iter().flat_map(|c| c.iter().copied()).collect();
    let mut out = vec![0x30];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|b| *b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend(bytes);
    }
    out.extend(content);
    out
}

async fn ca(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, MEDIA_PEM_CHAIN)],
        state.steward.ca().cert_pem().to_owned(),
    )
        .into_response()
}

async fn nonce(State(state): State<AppState>) -> Response {
    match state.steward.nonce() {
        Ok(n) => (
            [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))],
            axum::Json(json!({
                "nonce": hex::encode(n.bytes),
                "expires_at": n.expires_at,
            })),
        )
            .into_response(),
        Err(r) => http_rejection(&state, r),
    }
}

async fn health(State(state): State<AppState>) -> Response {
    axum::Json(json!({
        "status": "ok",
        "policy": state.steward.policy().name,
        "require_nonce": state.steward.policy().require_nonce,
    }))
    .into_response()
}

async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        state.steward.render_metrics(),
    )
        .into_response()
}

async fn not_found() -> Response {
    error_body(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such route",
        "http.route",
    )
}

fn error_body(status: StatusCode, code: &str, message: &str, check: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message, "check": check}})),
    )
        .into_response()
}

/// The status each rejection gets.
pub fn status_for(r: &Rejection) -> StatusCode {
    match r {
        Rejection::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        Rejection::NotAcceptable { .. } => StatusCode::NOT_ACCEPTABLE,
        Rejection::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
        Rejection::BodyUnreadable(_)
        | Rejection::Malformed(_)
        | Rejection::WorkloadAmbiguous
        | Rejection::Nonce(NonceError::Missing) => StatusCode::BAD_REQUEST,
        Rejection::Evidence(_)
        | Rejection::Nonce(_)
        | Rejection::PlatformNotAccepted(_)
        | Rejection::Policy { .. }
        | Rejection::WorkloadNotAllowed(_)
        | Rejection::WorkloadMissing => StatusCode::FORBIDDEN,
        Rejection::Busy => StatusCode::SERVICE_UNAVAILABLE,
        Rejection::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let status = status_for(&self);
        let message: String = self.to_string().chars().take(1000).collect();
        let mut resp = error_body(status, self.code(), &message, &self.check());
        if status == StatusCode::SERVICE_UNAVAILABLE {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        resp
    }
}
