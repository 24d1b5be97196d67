//! The Steward's HTTP API exercised without sockets (`Router::oneshot`): every route, every
//! rejection's status and machine-readable reason, and the certificates it issues for `nil`.
//! The real-process tests (HTTPS on loopback) are in `crates/moat-cli/tests/steward_*.rs`.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use moat_attest::result::{Status, decode_from_cert};
use moat_attest::{Evidence, Platform, binding, csr};
use moat_steward::api::{ApiLimits, router};
use moat_steward::ca::generate_ca;
use moat_steward::{CertificateAuthority, Policy, StewardBuilder};
use rcgen::{KeyPair, PublicKeyData};
use serde_json::Value;
use tower::ServiceExt;

const WORKLOAD: &str = "oci://127.0.0.1:5000/demo/app";

fn app(policy: &str) -> axum::Router {
    let (cert, key) = generate_ca("test CA").unwrap();
    let ca = CertificateAuthority::from_pem(&cert, &key).unwrap();
    let policy = Policy::from_toml(policy).unwrap();
    let steward = Arc::new(StewardBuilder::new(ca, policy).build());
    router(steward, ApiLimits::default())
}

const NIL_POLICY: &str = r#"
allow_insecure_nil = true
workloads = ["oci://127.0.0.1:*/demo/*"]
"#;

async fn send(app: &axum::Router, req: Request<Body>) -> (StatusCode, String, Vec<u8>) {
    let resp = app.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    (status, ctype, body)
}

async fn get_nonce(app: &axum::Router) -> Vec<u8> {
    let (status, _, body) = send(
        app,
        Request::get("/api/v1/nonce").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&body).unwrap();
    hex::decode(v["nonce"].as_str().unwrap()).unwrap()
}

/// A nil CSR for `key`, whose evidence binds `bound_spki` (normally the key's own).
fn nil_csr(
    key: &KeyPair,
    bound_spki: &[u8],
    nonce: Option<&[u8]>,
    workload: Option<&str>,
) -> Vec<u8> {
    let evidence = Evidence::nil(binding::report_data(bound_spki, nonce));
    csr::build(key, &evidence, nonce, workload).unwrap()
}

fn post(path: &str, ctype: &str, body: Vec<u8>) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, ctype)
        .body(Body::from(body))
        .unwrap()
}

fn error_of(body: &[u8]) -> (String, String) {
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not JSON: {}", String::from_utf8_lossy(body)));
    (
        v["error"]["code"].as_str().unwrap().to_owned(),
        v["error"]["check"].as_str().unwrap().to_owned(),
    )
}

fn certs_from_pem(pem: &[u8]) -> Vec<Vec<u8>> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .map(|c| c.unwrap().to_vec())
        .collect()
}

#[tokio::test]
async fn nil_is_refused_by_default_policy() {
    let app = app(r#"workloads = ["oci://**"]"#);
    let key = KeyPair::generate().unwrap();
    let nonce = get_nonce(&app).await;
    let body = nil_csr(
        &key,
        &key.subject_public_key_info(),
        Some(&nonce),
        Some(WORKLOAD),
    );
    let (status, _, body) = send(
        &app,
        post("/api/v1/certificate", "application/pkcs10", body),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        error_of(&body),
        ("platform_not_accepted".into(), "policy.platform".into())
    );
}

#[tokio::test]
async fn nil_allowed_issues_an_unattested_certificate_naming_the_workload() {
    let app = app(NIL_POLICY);
    let key = KeyPair::generate().unwrap();
    let spki = key.subject_public_key_info();
    let nonce = get_nonce(&app).await;
    let body = nil_csr(&key, &spki, Some(&nonce), Some(WORKLOAD));
    let (status, ctype, body) = send(
        &app,
        post("/api/v1/certificate", "application/pkcs10", body),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(ctype, "application/pem-certificate-chain");
    let chain = certs_from_pem(&body);
    assert_eq!(chain.len(), 2);
    let (_, leaf) = x509_parser::parse_x509_certificate(&chain[0]).unwrap();
    let (_, ca) = x509_parser::parse_x509_certificate(&chain[1]).unwrap();
    leaf.verify_signature(Some(ca.public_key())).unwrap();
    assert_eq!(leaf.public_key().raw, &spki[..]);
    let result = decode_from_cert(&chain[0]).unwrap().unwrap();
    assert_eq!(result.platform, Platform::Nil);
    assert!(!result.attested);
    assert_eq!(result.status, Status::None);
    assert_eq!(result.workload.as_deref(), Some(WORKLOAD));
    // Never the raw evidence: the certificate holds no Enarx evidence OIDs and is small.
    assert!(chain[0].len() < 2048);
    let lifetime = leaf.validity().not_after.timestamp() - leaf.validity().not_before.timestamp();
    assert!(
        lifetime <= 3600 + 300,
        "default lifetime is about an hour, got {lifetime}s"
    );
}

#[tokio::test]
async fn chain_formats() {
    let app = app(NIL_POLICY);
    for (accept, want_ctype) in [
        ("application/pkix-cert", "application/pkix-cert"),
        ("application/pkix-pkipath", "application/pkix-pkipath"),
    ] {
        let key = KeyPair::generate().unwrap();
        let nonce = get_nonce(&app).await;
        let body = nil_csr(
            &key,
            &key.subject_public_key_info(),
            Some(&nonce),
            Some(WORKLOAD),
        );
        let mut req = post("/api/v1/certificate", "application/pkcs10", body);
        req.headers_mut()
            .insert(header::ACCEPT, accept.parse().unwrap());
        let (status, ctype, body) = send(&app, req).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(ctype, want_ctype);
        match accept {
            "application/pkix-cert" => {
                x509_parser::parse_x509_certificate(&body).unwrap();
            }
            _ => assert_eq!(body[0], 0x30),
        }
    }
    let key = KeyPair::generate().unwrap();
    let nonce = get_nonce(&app).await;
    let body = nil_csr(
        &key,
        &key.subject_public_key_info(),
        Some(&nonce),
        Some(WORKLOAD),
    );
    let mut req = post("/api/v1/certificate", "application/pkcs10", body);
    req.headers_mut()
        .insert(header::ACCEPT, "image/png".parse().unwrap());
    let (status, _, body) = send(&app, req).await;
    assert_eq!(status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(error_of(&body).0, "not_acceptable");
}

#[tokio::test]
async fn wrong_content_type_is_415() {
    let app = app(NIL_POLICY);
    let key = KeyPair::generate().unwrap();
    let nonce = get_nonce(&app).await;
    let body = nil_csr(
        &key,
        &key.subject_public_key_info(),
        Some(&nonce),
        Some(WORKLOAD),
    );
    for ctype in ["application/json", "text/plain", "application/pkcs10x"] {
        let (status, _, resp) = send(&app, post("/api/v1/certificate", ctype, body.clone())).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{ctype}");
        assert_eq!(
            error_of(&resp),
            ("unsupported_media_type".into(), "http.content_type".into())
        );
    }
    let req = Request::post("/api/v1/certificate")
        .body(Body::from(body))
        .unwrap();
    assert_eq!(send(&app, req).await.0, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Parameters after the media type are fine.
    let nonce = get_nonce(&app).await;
    let key = KeyPair::generate().unwrap();
    let body = nil_csr(
        &key,
        &key.subject_public_key_info(),
        Some(&nonce),
        Some(WORKLOAD),
    );
    let (status, _, _) = send(
        &app,
        post("/api/v1/certificate", "Application/PKCS10; x=y", body),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn oversized_body_is_413() {
    let app = app(NIL_POLICY);
    let big = vec![0x30u8; moat_steward::api::MAX_BODY + 1];
    let (status, _, body) = send(
        &app,
        post("/api/v1/certificate", "application/pkcs10", big.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_of(&body).0, "body_too_large");
    // Without a Content-Length (streamed) the limit still applies.
    let stream = futures_stream(big);
    let req = Request::post("/api/v1/certificate")
        .header(header::CONTENT_TYPE, "application/pkcs10")
        .body(stream)
        .unwrap();
    assert_eq!(send(&app, req).await.0, StatusCode::PAYLOAD_TOO_LARGE);
}

fn futures_stream(bytes: Vec<u8>) -> Body {
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = bytes
        .chunks(4096)
        .map(|c| Ok(bytes::Bytes::copy_from_slice(c)))
        .collect();
    Body::from_stream(futures::stream::iter(chunks))
}

#[tokio::test]
async fn malformed_bodies_are_400_with_a_reason() {
    let app = app(NIL_POLICY);
    let key = KeyPair::generate().unwrap();
    let nonce = get_nonce(&app).await;
    let good = nil_csr(
        &key,
        &key.subject_public_key_info(),
        Some(&nonce),
        Some(WORKLOAD),
    );
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("garbage", b"hello".to_vec()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("trailing", [good.clone(), vec![0]].concat()),
    ];
    // The CSR's signature is the last bytes: flip one.
    let mut bad_sig = good.clone();
    let n = bad_sig.len();
    bad_sig[n - 5] ^= 0x40;
    cases.push(("bad signature", bad_sig));
    for (what, body) in cases {
        let (status, _, resp) = send(
            &app,
            post("/api/v1/certificate", "application/pkcs10", body),
        )
        .await;
        assert_eq!(
            status,
            StatusCode::BAD_REQUEST,
            "{what}: {}",
            String::from_utf8_lossy(&resp)
        );
        let (code, _) = error_of(&resp);
        assert_eq!(code, "malformed_request", "{what}");
    }
}

#[tokio::test]
async fn evidence_binding_another_key_is_refused() {
    let app = app(NIL_POLICY);
    let key = KeyPair::generate().unwrap();
    let other = KeyPair::generate().unwrap();
    let nonce = get_nonce(&app).await;
    let body = nil_csr(
        &key,
        &other.subject_public_key_info(),
        Some(&nonce),
        Some(WORKLOAD),
    );
    let (status, _, resp) = send(
        &app,
        post("/api/v1/certificate", "application/pkcs10", body),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        error_of(&resp),
        ("evidence_refused".into(), "key_binding".into())
    );
    // Binding the right key but another nonce than the one declared also fails.
    let nonce2 = get_nonce(&app).await;
    let evidence = Evidence::nil(binding::report_data(
        &key.subject_public_key_info(),
        Some(&nonce2),
    ));
    let body = csr::build(&key, &evidence, Some(&nonce), Some(WORKLOAD)).unwrap();
    let (status, _, resp) = send(
        &app,
        post("/api/v1/certificate", "application/pkcs10", body),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_of(&resp).1, "key_binding");
}

#[tokio::test]
async fn nonces_missing_unknown_replayed() {
    let other = app(NIL_POLICY);
    let app = app(NIL_POLICY);
    let key = KeyPair::generate().unwrap();
    let spki = key.subject_public_key_info();

    let body = nil_csr(&key, &spki, None, Some(WORKLOAD));
    let (status, _, resp) = send(
        &app,
        post("/api/v1/certificate", "application/pkcs10", body),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_of(&resp), ("nonce_missing".into(), "nonce".into()));

    let forged = vec![1u8; 41];
    let body = nil_csr(&key, &spki, Some(&forged), Some(WORKLOAD));
    let (status, _, resp) = send(
        &app,
        post("/api/v1/certificate", "application/pkcs10", body),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_of(&resp).0, "nonce_unknown");

    let nonce = get_nonce(&app).await;
    let body = nil_csr(&key, &spki, Some(&nonce), Some(WORKLOAD));
    let (status, _, _) = send(
        &app,
        post("/api/v1/certificate", "application/pkcs10", body.clone()),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _, resp) = send(
        &app,
        post("/api/v1/certificate", "application/pkcs10", body),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_of(&resp), ("nonce_replayed".into(), "nonce".into()));

    // A nonce from a Steward with another CA is unknown here.
    let foreign = get_nonce(&other).await;
    let body = nil_csr(&key, &spki, Some(&foreign), Some(WORKLOAD));
    let (status, _, resp) = send(
        &app,
        post("/api/v1/certificate", "application/pkcs10", body),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_of(&resp).0, "nonce_unknown");
}

#[tokio::test]
async fn workloads_are_checked_against_the_policy() {
    let app = app(NIL_POLICY);
    let key = KeyPair::generate().unwrap();
    let spki = key.subject_public_key_info();
    for (workload, code) in [
        (
            Some("oci://127.0.0.1:5000/other/app"),
            "workload_not_allowed",
        ),
        (
            Some("oci://127.0.0.1:5000/demo/app/extra"),
            "workload_not_allowed",
        ),
        (None, "workload_missing"),
    ] {
        let nonce = get_nonce(&app).await;
        let body = nil_csr(&key, &spki, Some(&nonce), workload);
        let (status, _, resp) = send(
            &app,
            post("/api/v1/certificate", "application/pkcs10", body),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{workload:?}");
        assert_eq!(error_of(&resp), (code.into(), "policy.workload".into()));
    }
}

#[tokio::test]
async fn enarx_route_answers_a_pkipath() {
    let app = app(NIL_POLICY);
    let key = KeyPair::generate().unwrap();
    let nonce = get_nonce(&app).await;
    let body = nil_csr(
        &key,
        &key.subject_public_key_info(),
        Some(&nonce),
        Some(WORKLOAD),
    );
    let (status, ctype, body) = send(&app, post("/", "application/pkcs10", body)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctype, "application/pkix-pkipath");
    // SEQUENCE { CA, leaf }: the first element parses as the CA certificate.
    let (rest, header) = der_header(&body);
    assert_eq!(header, 0x30);
    let (_, first) = x509_parser::parse_x509_certificate(rest).unwrap();
    assert!(first.is_ca());
}

fn der_header(b: &[u8]) -> (&[u8], u8) {
    let tag = b[0];
    let len = b[1];
    let skip = if len & 0x80 == 0 {
        2
    } else {
        2 + (len & 0x7f) as usize
    };
    (&b[skip..], tag)
}

#[tokio::test]
async fn info_routes() {
    let app = app(NIL_POLICY);
    let (status, ctype, body) = send(
        &app,
        Request::get("/api/v1/ca").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ctype, "application/pem-certificate-chain");
    assert_eq!(certs_from_pem(&body).len(), 1);

    let (status, _, body) = send(&app, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["status"],
        "ok"
    );

    let (status, _, body) = send(&app, Request::get("/nope").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_of(&body).0, "not_found");

    // Issue one and refuse one, then look at the counters.
    let key = KeyPair::generate().unwrap();
    let nonce = get_nonce(&app).await;
    let good = nil_csr(
        &key,
        &key.subject_public_key_info(),
        Some(&nonce),
        Some(WORKLOAD),
    );
    assert_eq!(
        send(
            &app,
            post("/api/v1/certificate", "application/pkcs10", good)
        )
        .await
        .0,
        StatusCode::OK
    );
    assert_eq!(
        send(&app, post("/api/v1/certificate", "text/plain", vec![]))
            .await
            .0,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
    let (status, ctype, body) =
        send(&app, Request::get("/metrics").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("text/plain"));
    let text = String::from_utf8(body).unwrap();
    assert!(
        text.contains("moat_steward_certificates_issued_total{platform=\"nil\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("moat_steward_requests_rejected_total{code=\"unsupported_media_type\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("moat_steward_nonces_issued_total 1"),
        "{text}"
    );
    assert!(
        text.contains("moat_steward_replay_cache_entries 1"),
        "{text}"
    );
}

#[tokio::test]
async fn certificate_lifetime_follows_policy() {
    let app = app(&format!("{NIL_POLICY}\ncertificate_lifetime = \"5m\"\n"));
    let key = KeyPair::generate().unwrap();
    let nonce = get_nonce(&app).await;
    let body = nil_csr(
        &key,
        &key.subject_public_key_info(),
        Some(&nonce),
        Some(WORKLOAD),
    );
    let mut req = post("/api/v1/certificate", "application/pkcs10", body);
    req.headers_mut()
        .insert(header::ACCEPT, "application/pkix-cert".parse().unwrap());
    let (status, _, der) = send(&app, req).await;
    assert_eq!(status, StatusCode::OK);
    let (_, leaf) = x509_parser::parse_x509_certificate(&der).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let remaining = leaf.validity().not_after.timestamp() - now;
    assert!((240..=300).contains(&remaining), "{remaining}");
}

#[tokio::test]
async fn server_names_are_certified_only_as_the_policy_allows() {
    let app = app(&format!(
        "{NIL_POLICY}server_names = [\"localhost\", \"127.0.0.1\", \"*.keep.example\"]\n"
    ));
    let key = KeyPair::generate().unwrap();
    let spki = key.subject_public_key_info();
    let request = |names: &[&str], nonce: &[u8]| {
        let evidence = Evidence::nil(binding::report_data(&spki, Some(nonce)));
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        csr::build_with_names(&key, &evidence, Some(nonce), Some(WORKLOAD), &names).unwrap()
    };

    let nonce = get_nonce(&app).await;
    let (status, _, pem) = send(
        &app,
        post(
            "/api/v1/certificate",
            "application/pkcs10",
            request(&["localhost", "127.0.0.1", "a.keep.example"], &nonce),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&pem));
    let leaf = certs_from_pem(&pem).remove(0);
    let (_, cert) = x509_parser::parse_x509_certificate(&leaf).unwrap();
    let san = cert.subject_alternative_name().unwrap().unwrap();
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|n| n.to_string())
        .collect();
    for want in ["localhost", "127.0.0.1", "a.keep.example", WORKLOAD] {
        assert!(
            names.iter().any(|n| n.contains(want)),
            "{want} missing from {names:?}"
        );
    }

    // A name outside the policy (another host, a wildcard deeper than allowed, an address the
    // policy does not list): refused, nothing issued.
    for bad in [
        "bank.example",
        "a.b.keep.example",
        "10.0.0.1",
        "keep.example",
    ] {
        let nonce = get_nonce(&app).await;
        let (status, _, resp) = send(
            &app,
            post(
                "/api/v1/certificate",
                "application/pkcs10",
                request(&["localhost", bad], &nonce),
            ),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{bad}");
        assert_eq!(error_of(&resp).1, "policy.server_name", "{bad}");
    }
}
