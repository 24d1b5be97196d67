//! `--client wrk`: the same two measures driven by wrk (Debian's `wrk`: C, OpenSSL, one event
//! loop per thread) instead of bench-run's own tokio + rustls client.
//!
//! A second, independent and widely used load generator shows whether the moat/native ratios
//! belong to the servers or to one client's habits (how much CPU it takes from the servers it
//! shares the machine with, how it batches its writes). wrk sends the same 256-byte POSTs over
//! keep-alive connections; for handshakes each request carries `Connection: close`, so wrk opens
//! a fresh TLS connection (no session resumption) for every request.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::kernel_stats::{ServerWatch, process_cpu};
use super::{Figures, Options};

/// Whether `wrk` can be started.
pub fn available() -> bool {
    Command::new("wrk")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Requests/s over keep-alive connections, then (unless `--requests-only`) handshakes/s.
pub fn measure(addr: SocketAddr, server_pid: u32, options: &Options) -> Figures {
    let script = tempfile::Builder::new()
        .suffix(".lua")
        .tempfile()
        .expect("temp file");
    std::fs::write(script.path(), lua(options.body, false)).expect("write the wrk script");
    let server = ServerWatch::start(server_pid);
    let keep_alive = run(addr, script.path(), options);
    let watched = server.finish(keep_alive.requests_per_s * keep_alive.elapsed.as_secs_f64());

    let mut errors = keep_alive.errors;
    let mut handshakes_per_s = 0.0;
    let mut cpu_us_per_connection = f64::NAN;
    if !options.requests_only {
        std::fs::write(script.path(), lua(options.body, true)).expect("write the wrk script");
        let server = ServerWatch::start(server_pid);
        let fresh = run(addr, script.path(), options);
        cpu_us_per_connection = server
            .finish(fresh.requests_per_s * fresh.elapsed.as_secs_f64())
            .cpu_us_per_unit;
        handshakes_per_s = fresh.requests_per_s;
        errors += fresh.errors;
    }
    Figures {
        requests_per_s: keep_alive.requests_per_s,
        client_cores: keep_alive.client_cores,
        cpu_us_per_request: watched.cpu_us_per_unit,
        busiest: watched.busiest,
        handshakes_per_s,
        cpu_us_per_connection,
        steal: 0.0,
        errors,
    }
}

/// The request every wrk connection sends; `close` asks the server to close after answering.
fn lua(body: usize, close: bool) -> String {
    let mut script = format!(
        "wrk.method = \"POST\"\nwrk.body = string.rep(\"x\", {body})\n\
         wrk.headers[\"Content-Type\"] = \"application/octet-stream\"\n"
    );
    if close {
        script.push_str("wrk.headers[\"Connection\"] = \"close\"\n");
    }
    script
}

struct Run {
    requests_per_s: f64,
    /// How long wrk ran, from its start to its exit.
    elapsed: Duration,
    client_cores: f64,
    errors: u64,
}

fn run(addr: SocketAddr, script: &std::path::Path, options: &Options) -> Run {
    let threads = options.client_threads();
    let mut child = Command::new("wrk")
        .arg(format!("--threads={threads}"))
        .arg(format!("--connections={}", options.connections))
        .arg(format!("--duration={}s", options.seconds))
        .arg("--timeout=5s")
        .arg(format!("--script={}", script.display()))
        .arg(format!("https://{addr}/echo"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| super::usage(&format!("cannot start wrk: {e}")));
    // wrk's own CPU time: read from /proc while it runs (the last reading misses at most the
    // final few milliseconds).
    let started = Instant::now();
    let mut client_cpu = Duration::ZERO;
    while child.try_wait().expect("wait for wrk").is_none() {
        client_cpu = client_cpu.max(process_cpu(child.id()));
        std::thread::sleep(Duration::from_millis(50));
    }
    let elapsed = started.elapsed();
    let output = child.wait_with_output().expect("wrk output");
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        panic!(
            "wrk failed ({}):\n{text}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let requests_per_s = field(&text, "Requests/sec:")
        .unwrap_or_else(|| panic!("no Requests/sec in wrk's output:\n{text}"));
    Run {
        requests_per_s,
        elapsed,
        client_cores: client_cpu.as_secs_f64() / elapsed.as_secs_f64(),
        errors: errors(&text),
    }
}

/// The number after `label` on its line of wrk's report.
fn field(text: &str, label: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(label))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Failed requests in wrk's report: socket errors (connect, read, write, timeout) and answers
/// other than 2xx/3xx.
fn errors(text: &str) -> u64 {
    let socket: u64 = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Socket errors:"))
        .map(|rest| {
            rest.split(',')
                .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                .sum()
        })
        .unwrap_or(0);
    let status = field(text, "Non-2xx or 3xx responses:").unwrap_or(0.0) as u64;
    socket + status
}

#[cfg(test)]
mod tests {
    use super::{errors, field};

    const REPORT: &str = "Running 5s test @ https://localhost:4000/echo
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   512.00us  100.00us   3.00ms   90.00%
    Req/Sec    30.00k     1.00k    32.00k    70.00%
  300000 requests in 5.00s, 100.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 4
Requests/sec:  60000.12
Transfer/sec:     20.00MB
";

    #[test]
    fn reads_the_rate_and_the_failures_off_the_report() {
        assert_eq!(field(REPORT, "Requests/sec:"), Some(60000.12));
        assert_eq!(errors(REPORT), 7);
        assert_eq!(errors("Requests/sec: 1\n"), 0);
        assert_eq!(field("nothing here", "Requests/sec:"), None);
    }
}
