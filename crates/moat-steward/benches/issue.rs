//! Certificates issued per second over HTTPS with keep-alive, for `nil` and for SNP evidence
//! (synthetic reports under a test-only AMD root), next to the bare cost of the operations the
//! Steward performs per request, measured in the same run:
//!
//! - `sign`: the CA signing one leaf certificate (P-384), key already parsed;
//! - `verify`: moat-attest verifying the CSR (CSR signature, report signature, VCEK chain,
//!   key binding);
//! - `certify`: the whole in-process decision (parse, nonce, verify, policy, sign), no HTTP.
//!
//! The server runs in this process on loopback (real TLS, real sockets); `CLIENTS` clients each
//! keep one connection alive and post pre-built CSRs (key generation and evidence are the Keep's
//! cost, not the Steward's, so they are built before the clock starts).
//!
//! Run: `cargo bench -p moat-steward --bench issue` (env `BENCH_REQUESTS`, `BENCH_CLIENTS`).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use moat_attest::test_roots::{FakeAmd, ReportParams};
use moat_attest::{Evidence, Verifier, binding, csr};
use moat_client::steward::StewardClient;
use moat_steward::api::{ApiLimits, router};
use moat_steward::ca::{LeafRequest, generate_ca};
use moat_steward::server::{ConnLimits, serve, tls_config_from_ca};
use moat_steward::{CertificateAuthority, Policy, Steward, StewardBuilder};
use rcgen::{KeyPair, PublicKeyData};

const POLICY: &str = r#"
platforms = ["snp"]
allow_insecure_nil = true
workloads = ["moat:local:*"]
"#;
const WORKLOAD: &str = "moat:local:bench";

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn steward(amd: &FakeAmd) -> Arc<Steward> {
    let (cert, key) = generate_ca("bench CA").unwrap();
    let ca = CertificateAuthority::from_pem(&cert, &key).unwrap();
    let verifier = Verifier::new().with_test_only_amd_root(amd.root());
    Arc::new(
        StewardBuilder::new(ca, Policy::from_toml(POLICY).unwrap())
            .verifier(verifier)
            .replay_capacity(10_000_000)
            .build(),
    )
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Nil,
    Snp,
}

/// A CSR for a fresh P-256 key whose evidence binds the key and `nonce`.
fn make_csr(
    kind: Kind,
    amd: &FakeAmd,
    chip: &moat_attest::test_roots::FakeChip,
    nonce: &[u8],
) -> Vec<u8> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let rd = binding::report_data_for_key(&key, Some(nonce));
    let evidence = match kind {
        Kind::Nil => Evidence::nil(rd),
        Kind::Snp => chip.evidence(&ReportParams {
            report_data: rd,
            ..ReportParams::default()
        }),
    };
    let _ = amd;
    csr::build(&key, &evidence, Some(nonce), Some(WORKLOAD)).unwrap()
}

fn rate(n: usize, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

fn main() {
    let requests = env_usize("BENCH_REQUESTS", 2000);
    let clients = env_usize("BENCH_CLIENTS", 8);
    let amd = FakeAmd::new("bench");
    let chip = amd.chip();
    let steward = steward(&amd);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();

    // The server: real TLS on loopback.
    let (url, ca_pem) = runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let tls = tls_config_from_ca(&steward, &["127.0.0.1".into()]).unwrap();
        let app = router(steward.clone(), ApiLimits::default());
        tokio::spawn(serve(
            listener,
            tls,
            app,
            ConnLimits::default(),
            steward.clone(),
            std::future::pending(),
        ));
        (
            format!("https://{addr}"),
            steward.ca().cert_pem().to_owned(),
        )
    });

    println!("# Steward issuance benchmark: {requests} requests per row, {clients} clients");
    println!("| what | platform | per second | µs per op |");
    println!("|---|---|---:|---:|");
    for kind in [Kind::Nil, Kind::Snp] {
        let name = if kind == Kind::Nil { "nil" } else { "snp" };
        // Bare operations, same process, same run.
        let spki = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
            .unwrap()
            .subject_public_key_info();
        let n = requests;
        let t = Instant::now();
        for _ in 0..n {
            steward
                .ca()
                .issue(&LeafRequest {
                    server_names: &[],
                    spki_der: &spki,
                    workload: Some(WORKLOAD),
                    common_name: "bench",
                    extensions: vec![],
                    not_before: SystemTime::now(),
                    lifetime: Duration::from_secs(3600),
                })
                .unwrap();
        }
        let sign = t.elapsed();

        let verifier = Verifier::new().with_test_only_amd_root(amd.root());
        let sample: Vec<Vec<u8>> = (0..64)
            .map(|i| make_csr(kind, &amd, &chip, &[i as u8; 41]))
            .collect();
        let t = Instant::now();
        for i in 0..n {
            verifier.verify_csr(&sample[i % sample.len()]).unwrap();
        }
        let verify = t.elapsed();

        // Fresh nonces and CSRs for the in-process and the HTTPS runs.
        let nonces: Vec<Vec<u8>> = (0..2 * n)
            .map(|_| steward.nonce().unwrap().bytes.to_vec())
            .collect();
        let csrs: Vec<Vec<u8>> = nonces
            .iter()
            .map(|nonce| make_csr(kind, &amd, &chip, nonce))
            .collect();
        let (inproc, https) = csrs.split_at(n);

        let t = Instant::now();
        for c in inproc {
            steward.certify(c).unwrap();
        }
        let certify = t.elapsed();

        let https_took = runtime.block_on(async {
            let chunks: Vec<Vec<Vec<u8>>> = https
                .chunks(n.div_ceil(clients))
                .map(|c| c.to_vec())
                .collect();
            let mut tasks = Vec::new();
            let mut warm = Vec::new();
            for chunk in chunks {
                let client = StewardClient::new(&url, ca_pem.as_bytes()).unwrap();
                // Open the keep-alive connection before the clock starts.
                client.health().await.unwrap();
                warm.push((client, chunk));
            }
            let t = Instant::now();
            for (client, chunk) in warm {
                tasks.push(tokio::spawn(async move {
                    for c in chunk {
                        client.certify(&c).await.unwrap();
                    }
                }));
            }
            for task in tasks {
                task.await.unwrap();
            }
            t.elapsed()
        });

        for (what, took) in [
            ("bare: CA signs a leaf", sign),
            ("bare: verify the CSR (moat-attest)", verify),
            ("in-process certify (no HTTP)", certify),
            ("HTTPS keep-alive, end to end", https_took),
        ] {
            println!(
                "| {what} | {name} | {:.0} | {:.0} |",
                rate(n, took),
                took.as_secs_f64() * 1e6 / n as f64
            );
        }
        let bare = sign + verify;
        println!(
            "| ratio HTTPS / (sign + verify) | {name} | {:.2} | |",
            rate(n, https_took) / rate(n, bare)
        );
    }
}
