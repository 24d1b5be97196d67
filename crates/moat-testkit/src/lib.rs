//! moat-testkit: what Moat's end-to-end tests and benchmarks share. Dev-only, never published.
//!
//! Moat's tests run the real thing: guest programs compiled to `wasm32-wasip1`, the real `moat`
//! binary as a child process, real TCP on loopback, real TLS. This crate makes that short to write:
//!
//! - [`guests`]: builds `tests/guests` once per test process
//!   (`cargo build --release --target wasm32-wasip1`, into `target/guests`) and hands out module
//!   paths: `guests::module("echo-tokio")`. A build failure panics with cargo's output.
//! - [`process`]: spawns `moat` (or any Moat server command) with a config file in a fresh temp
//!   dir, captures stdout/stderr line by line, waits for a line or for a port, feeds stdin, and
//!   kills the process when the handle drops: `Moat::run(bin, module).config(toml).spawn()`.
//! - [`net`]: free loopback ports (bind `127.0.0.1:0`), waiting for a listener.
//! - [`tls`]: rustls clients for servers whose certificate is not known in advance (a Keep makes a
//!   fresh self-signed one per run): a verifier that *captures* the presented chain and one that
//!   *pins* a captured certificate; clients trusting a test CA; client certificates for mTLS.
//!   Handshake signatures are always checked, so the server proves it holds the key.
//! - [`pki`]: Moat's test-only CA (`moat_tls::test_pki`) issuing server and client identities,
//!   written as PEM files a config can name; self-signed identities for untrusted peers.
//! - [`servers`]: TCP and TLS echo servers a guest's `connect` socket can reach, recording the SNI
//!   each client sent; a client that stalls in the middle of its handshake.
//!
//! Ports always come from the OS, so tests run in parallel; nothing here asserts on timing
//! (the timeouts only turn a hang into a failure with the process's output attached).
//!
//! ```no_run
//! use moat_testkit::{guests, net, process::Moat};
//! let port = net::free_port();
//! let config = format!(r#"
//! [[files]]
//! kind = "stdin"
//! [[files]]
//! kind = "stdout"
//! [[files]]
//! kind = "stderr"
//! [[files]]
//! kind = "listen"
//! prot = "tcp"
//! name = "echo"
//! addr = "127.0.0.1"
//! port = {port}
//! "#);
//! // In crates/moat-cli/tests, cargo names the built binary: env!("CARGO_BIN_EXE_moat").
//! let mut keep = Moat::run(moat_testkit::process::moat_bin(), guests::module("echo-tokio"))
//!     .config(&config)
//!     .spawn();
//! keep.wait_for_port(port);
//! // ... talk to 127.0.0.1:port; the Keep is killed when `keep` drops.
//! ```

pub mod configs;
pub mod guests;
pub mod net;
pub mod pki;
pub mod process;
pub mod servers;
pub mod tls;

/// How long any single wait in this crate lasts before it fails the test with the output so far.
/// Generous: debug builds on a busy 2-core CI machine compile modules slowly.
pub const WAIT: std::time::Duration = std::time::Duration::from_secs(120);
