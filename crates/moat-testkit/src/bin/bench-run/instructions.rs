//! `bench-run instructions`: user-space instructions per keep-alive request, for the Keep and for
//! the native server, counted by valgrind's cachegrind.
//!
//! Requests/s on a small shared machine drift by ±15% between rounds, more than most single
//! changes to the Keep's request path are worth; an instruction count does not drift. Each server
//! runs twice under `valgrind --tool=cachegrind --cache-sim=no` (the Keep's JIT code included:
//! `--smc-check=all-non-file`), serving the same keep-alive TLS requests as the timed benchmark
//! (256-byte POSTs on C connections, after a warm-up), once with N requests per connection and
//! once with 6N; the difference divided by the 5N·C extra requests is the cost of one request,
//! with start-up, handshakes and shutdown cancelled out. Kernel work (the socket calls
//! themselves, about half of either server's CPU time) is not counted, and how many requests the
//! Keep finds ready per `poll_oneoff` depends on timing, so repeated runs differ by a few per
//! cent.
//!
//! `--keep-profiles DIR` keeps the four cachegrind files (`DIR/{moat,native}-{N}.out`); the
//! per-function cost of the extra requests is then
//! `cg_diff DIR/moat-100.out DIR/moat-600.out > d.out && cg_annotate d.out`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use moat_testkit::process::{Moat, Running};
use moat_testkit::{guests, net, tls};

/// Requests per connection before the counted ones (connection set-up, first allocations).
const WARM_UP: usize = 20;

pub struct Options {
    pub moat: PathBuf,
    pub connections: usize,
    /// Requests per connection in the shorter of the two runs; the longer one makes six times as
    /// many.
    pub requests: usize,
    pub body: usize,
    /// Where to keep cachegrind's output files; `None`: in temporary files.
    pub keep_profiles: Option<PathBuf>,
}

pub fn run(options: &Options) {
    if Moat::command("valgrind", ["--version"]).output().code != Some(0) {
        super::usage("`bench-run instructions` needs valgrind (apt-get install valgrind)");
    }
    let module = guests::module("http-echo");
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let (config, _) = tls::capturing_client(None);
    let config = tls::without_resumption(&config);

    let mut figures = Vec::new();
    for server in [Server::Moat(&options.moat, &module), Server::Native] {
        let mut counts = Vec::new();
        for per_connection in [options.requests, 6 * options.requests] {
            let count = count_instructions(&server, per_connection, options, &config, &runtime);
            eprintln!(
                "  {}: {per_connection} requests x {} connections: {count} instructions",
                server.name(),
                options.connections
            );
            counts.push(count);
        }
        let extra = (5 * options.requests * options.connections) as f64;
        figures.push(counts[1].saturating_sub(counts[0]) as f64 / extra);
    }
    println!(
        "| user-space instructions per keep-alive request ({} conns, {} B bodies) | moat run (wasm) | native tokio + rustls | native/moat |",
        options.connections, options.body
    );
    println!("|---|---|---|---|");
    println!(
        "| cachegrind, {} vs {} requests per connection | {:.0} | {:.0} | {:.2} |",
        options.requests,
        6 * options.requests,
        figures[0],
        figures[1],
        figures[1] / figures[0]
    );
}

enum Server<'a> {
    Moat(&'a Path, &'a Path),
    Native,
}

impl Server<'_> {
    fn name(&self) -> &'static str {
        match self {
            Server::Moat(..) => "moat",
            Server::Native => "native",
        }
    }
}

/// Start `server` under cachegrind, serve `per_connection` requests (after the warm-up) on each
/// connection, stop it, and return the instructions it executed in all.
fn count_instructions(
    server: &Server<'_>,
    per_connection: usize,
    options: &Options,
    config: &Arc<rustls::ClientConfig>,
    runtime: &tokio::runtime::Runtime,
) -> u64 {
    let port = net::free_port();
    // Without --keep-profiles the file lives as long as this call (removed on drop).
    let (out, _temporary) = match &options.keep_profiles {
        Some(dir) => {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            (
                dir.join(format!("{}-{per_connection}.out", server.name())),
                None,
            )
        }
        None => {
            let temporary = tempfile::NamedTempFile::new().expect("temp file");
            (temporary.path().to_path_buf(), Some(temporary))
        }
    };
    let valgrind = [
        "--tool=cachegrind".to_string(),
        "--cache-sim=no".to_string(),
        "--smc-check=all-non-file".to_string(),
        format!("--cachegrind-out-file={}", out.display()),
    ];
    let mut process: Running = match server {
        Server::Moat(moat, module) => Moat::run(moat, module)
            .config(&super::keep_config(port, 1))
            .guest_args(["web"])
            .wrapped_in("valgrind", &valgrind)
            .spawn(),
        Server::Native => Moat::command(
            std::env::current_exe().expect("own path"),
            ["serve-native".to_string(), port.to_string()],
        )
        .wrapped_in("valgrind", &valgrind)
        .spawn(),
    };
    process.wait_for_stdout("listening");
    runtime.block_on(drive(
        net::local(port),
        config,
        options,
        WARM_UP + per_connection,
    ));
    let finished = process.terminate(Duration::from_secs(120));
    let text = std::fs::read_to_string(&out).unwrap_or_else(|e| {
        panic!(
            "no cachegrind output from {}: {e}\n{}",
            server.name(),
            finished.stderr
        )
    });
    text.lines()
        .find_map(|l| l.strip_prefix("summary:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no summary line in {}", out.display()))
}

/// `per_connection` requests, one after another, on each of the connections at once.
async fn drive(
    addr: std::net::SocketAddr,
    config: &Arc<rustls::ClientConfig>,
    options: &Options,
    per_connection: usize,
) {
    let body = Arc::new(vec![b'x'; options.body]);
    let tasks: Vec<_> = (0..options.connections)
        .map(|_| {
            let (config, body) = (config.clone(), body.clone());
            tokio::spawn(async move {
                let mut stream = tls::connect(addr, config, "localhost")
                    .await
                    .expect("connect");
                let mut buf = Vec::with_capacity(4096);
                for _ in 0..per_connection {
                    super::request(&mut stream, &body, false, &mut buf)
                        .await
                        .expect("request");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("client task");
    }
}
