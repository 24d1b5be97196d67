//! Cryptle's guess endpoint, requests per second: through a Keep (`moat run`, TLS done by the
//! host, the game in wasm) against the same game code built natively and served by tokio +
//! rustls, side by side in one run with the same client.
//!
//!   cargo bench -p moat-cli --bench cryptle
//!
//! Settings (environment): `CRYPTLE_BENCH_SECS` per measurement (default 5), `CRYPTLE_BENCH_CLIENTS`
//! concurrent keep-alive TLS connections (default 8), `CRYPTLE_BENCH_ROUNDS` alternations of
//! Keep and native (default 3; the median is reported). Both servers get the same limits, with
//! the per-connection and per-session rate limits raised out of the way.

#[path = "../tests/cryptle_support/mod.rs"]
mod cryptle_support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cryptle_support::{Keep, build_cryptle, call, fetch_cert, tls_connect};
use rustls::pki_types::CertificateDer;

const WORDS: [&str; 5] = ["crane", "pious", "lemon", "teeth", "robin"];

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn limits_env() -> Vec<(&'static str, String)> {
    vec![
        ("CRYPTLE_CONNECTION_RATE", "10000000".into()),
        ("CRYPTLE_SESSION_RATE", "10000000".into()),
    ]
}

/// The native baseline: cryptle's server driver behind tokio-rustls on a multi-thread runtime.
fn start_native() -> (SocketAddr, CertificateDer<'static>) {
    let lookup = |name: &str| {
        limits_env()
            .into_iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v)
    };
    let (limits, app_config) = cryptle::settings_from(&lookup).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let cert_der = cert.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::try_from(cert.signing_key.serialize_der()).unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert_der.clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = cryptle_game::App::new(
                app_config,
                cryptle::os_seed(),
                Box::new(cryptle::OsEntropy),
            );
            let server = cryptle::Server::new(app, limits);
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let server = server.clone();
                tokio::spawn(async move {
                    if let Ok(Ok(tls)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    {
                        server.spawn_connection(tls);
                    }
                });
            }
        });
    });
    (addr, cert_der)
}

/// Guesses per second from `clients` keep-alive TLS connections for `secs`.
fn measure(addr: SocketAddr, cert: &CertificateDer<'static>, clients: u64, secs: u64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    // Warm up connections and games before the clock starts.
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let (stop, count, cert) = (stop.clone(), count.clone(), cert.clone());
            std::thread::spawn(move || {
                let mut s = tls_connect(addr, &cert);
                let mut token = String::new();
                let mut tries = 6;
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    if tries == 6 {
                        let (status, g) = call(&mut s, "POST", "/api/single", None, None).unwrap();
                        assert_eq!(status, 201);
                        token = g["token"].as_str().unwrap().to_owned();
                        tries = 0;
                    }
                    let body = format!(r#"{{"guess":"{}"}}"#, WORDS[i % WORDS.len()]);
                    i += 1;
                    let (status, v) = call(
                        &mut s,
                        "POST",
                        "/api/single/guess",
                        Some(&token),
                        Some(&body),
                    )
                    .unwrap();
                    assert_eq!(status, 200, "{v}");
                    tries = if v["status"] == "playing" {
                        tries + 1
                    } else {
                        6
                    };
                    count.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let start_count = count.load(Ordering::Relaxed);
    let start = Instant::now();
    std::thread::sleep(Duration::from_secs(secs));
    let done = count.load(Ordering::Relaxed) - start_count;
    let elapsed = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    done as f64 / elapsed
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing useful: run only
    // when benchmarking.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let secs = env_or("CRYPTLE_BENCH_SECS", 5);
    let clients = env_or("CRYPTLE_BENCH_CLIENTS", 8);
    let rounds = env_or("CRYPTLE_BENCH_ROUNDS", 3);
    let wasm = build_cryptle("release", &[]);
    let keep = Keep::start(Path::new(env!("CARGO_BIN_EXE_moat")), &wasm, &limits_env());
    let (native_addr, native_cert) = start_native();
    assert_eq!(fetch_cert(native_addr), native_cert);

    let (mut in_keep, mut native) = (Vec::new(), Vec::new());
    for round in 1..=rounds {
        let k = measure(keep.addr, &keep.cert, clients, secs);
        let n = measure(native_addr, &native_cert, clients, secs);
        println!(
            "round {round}: keep {k:>9.0} guesses/s   native {n:>9.0} guesses/s   ratio {:.3}",
            k / n
        );
        in_keep.push(k);
        native.push(n);
    }
    let (k, n) = (median(in_keep), median(native));
    println!(
        "cryptle guess endpoint, {clients} TLS keep-alive clients, {secs} s x {rounds} rounds (median):\n  \
         keep (moat run, wasm)   {k:>9.0} req/s\n  native (tokio + rustls) {n:>9.0} req/s\n  keep / native = {:.3}",
        k / n
    );
}
