//! Prometheus metrics, written by hand in the text exposition format (a few counters do not need
//! a metrics framework). Counters are lock-free atomics; labelled counters use small fixed
//! label sets (platforms, rejection codes), so cardinality is bounded by construction.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The Steward's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    issued: Mutex<BTreeMap<&'static str, u64>>,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    nonces: AtomicU64,
    issue_micros_sum: AtomicU64,
    issue_count: AtomicU64,
    connections: AtomicU64,
    connections_refused: AtomicU64,
    handshake_failures: AtomicU64,
}

impl Metrics {
    pub fn issued(&self, platform: &'static str, took: Duration) {
        *lock(&self.issued).entry(platform).or_default() += 1;
        self.issue_micros_sum
            .fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        self.issue_count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self, code: &'static str) {
        *lock(&self.rejected).entry(code).or_default() += 1;
    }

    pub fn nonce_issued(&self) {
        self.nonces.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection(&self) {
        self.connections.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_refused(&self) {
        self.connections_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn handshake_failed(&self) {
        self.handshake_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// Total certificates issued (all platforms).
    pub fn issued_total(&self) -> u64 {
        lock(&self.issued).values().sum()
    }

    /// The text exposition format.
    pub fn render(&self, replay_cache_len: usize) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP moat_steward_certificates_issued_total Certificates issued, by platform.\n\
             # TYPE moat_steward_certificates_issued_total counter"
        );
        for (platform, n) in lock(&self.issued).iter() {
            let _ = writeln!(
                out,
                "moat_steward_certificates_issued_total{{platform=\"{platform}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP moat_steward_requests_rejected_total Refused requests, by reason code.\n\
             # TYPE moat_steward_requests_rejected_total counter"
        );
        for (code, n) in lock(&self.rejected).iter() {
            let _ = writeln!(
                out,
                "moat_steward_requests_rejected_total{{code=\"{code}\"}} {n}"
            );
        }
        let simple = [
            (
                "moat_steward_nonces_issued_total",
                "counter",
                "Nonces handed out.",
                self.nonces.load(Ordering::Relaxed),
            ),
            (
                "moat_steward_connections_total",
                "counter",
                "TCP connections accepted.",
                self.connections.load(Ordering::Relaxed),
            ),
            (
                "moat_steward_connections_refused_total",
                "counter",
                "TCP connections closed at once because the connection limit was reached.",
                self.connections_refused.load(Ordering::Relaxed),
            ),
            (
                "moat_steward_tls_handshake_failures_total",
                "counter",
                "TLS handshakes that failed or timed out.",
                self.handshake_failures.load(Ordering::Relaxed),
            ),
            (
                "moat_steward_replay_cache_entries",
                "gauge",
                "Used nonces remembered until they expire.",
                replay_cache_len as u64,
            ),
        ];
        for (name, kind, help, value) in simple {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
            );
        }
        let sum = self.issue_micros_sum.load(Ordering::Relaxed) as f64 / 1e6;
        let count = self.issue_count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "# HELP moat_steward_issue_seconds Time to verify a request and sign its certificate.\n\
             # TYPE moat_steward_issue_seconds summary\n\
             moat_steward_issue_seconds_sum {sum}\nmoat_steward_issue_seconds_count {count}"
        );
        out
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
