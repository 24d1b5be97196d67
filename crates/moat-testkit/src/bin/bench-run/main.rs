//! `bench-run`: Moat's runtime benchmark (issue 2), side by side in one run.
//!
//! Serves the same HTTP/1.1 keep-alive echo (`moat-http-echo`) two ways over TLS:
//! - **moat**: the `http-echo` guest (wasm32-wasip1) in `moat run`, TLS done by the Keep's host;
//! - **native**: the same crate compiled natively, served by tokio + rustls (this binary,
//!   re-executed as `bench-run serve-native`, so both servers are separate processes);
//!
//! and drives both with the same client (tokio + rustls, in this process):
//! - requests/s: C keep-alive connections, each sending requests back to back for D seconds;
//! - new TLS handshakes/s: C tasks, each opening a fresh connection (no session resumption) for
//!   one request, for D seconds.
//!
//! Then it times `moat run hello.wasm` with an empty compile cache (cold) and again with the
//! cache filled (warm). Results print as a Markdown table with ratios moat/native.
//!
//! Usage (build both in release first):
//!   cargo build --release -p moat-cli -p moat-testkit
//!   target/release/bench-run [--moat target/release/moat] [--seconds 10] [--connections 32]
//!                            [--body 256] [--rounds 2] [--requests-only] [--split-cpus]
//!                            [--one-session] [--instances N] [--client bench-run|wrk]
//!                            [--client-threads N]
//!
//! `--split-cpus` pins the client to CPU 0 and both servers to the other CPUs (`taskset`), so
//! each server is measured on cores the client does not share; the client's own load is printed
//! per measure, to show when the client rather than the server is the limit. The servers start
//! pinned, so their thread pools fit the CPUs they get (one tokio worker on a 2-CPU machine).
//!
//! Each server starts in a session of its own (`setsid`), as a server started from another
//! terminal does, and as a service in its own cgroup is treated. Where the kernel groups
//! scheduling by session (autogroup, on by default in most distributions' kernels), CPU time is
//! then shared between the client and each server before it is shared among their threads: a
//! server with one busy thread and one with two are both measured against the same client, not
//! against a client whose threads each count as much as one of the server's. `--one-session`
//! keeps the servers in this program's session, where all threads share the CPUs alike; the
//! report says which arrangement ran.
//!
//! `--instances N` runs N instances of the guest in the Keep (`instances = N` in its config; see
//! docs/runtime.md, *Instances*; the default is one). The echo keeps no state across
//! connections, so with one instance per CPU the Keep, like native tokio with one worker per
//! CPU, has a busy thread for each CPU.
//!
//! `--client wrk` drives both servers with wrk (see `wrk.rs`) instead of this program's client.
//!
//! `--client-threads N` sets how many threads (event loops) the client runs; by default one per
//! CPU it may use. With shared CPUs in one session this matters: the kernel then shares the CPUs
//! among runnable threads, so a client with more threads leaves less to a server with fewer (the
//! Keep serves from one thread, native tokio from one per CPU).
//!
//! For the keep-alive measure it also reports the server's busiest thread: the share of the
//! wall time it spent running and the share it spent runnable but waiting for a CPU (from the
//! kernel's per-thread scheduler statistics). A server whose busiest thread adds up to ~1.0 is
//! limited by that thread; one that adds up to much less ran out of work.
//!
//! `bench-run instructions [--moat PATH] [--connections 8] [--requests 100] [--body 256]
//! [--keep-profiles DIR]`
//! counts user-space instructions per keep-alive request instead, under valgrind (see
//! `instructions.rs`): a figure that does not drift with the machine's load, for A/B comparisons.

mod instructions;
mod kernel_stats;
mod wrk;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use kernel_stats::{
    STEAL_WARNING, ServerWatch, ThreadShare, machine_ticks, process_cpu, steal_share,
};
use moat_testkit::process::Moat;
use moat_testkit::{guests, net, pki, tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Options {
    moat: PathBuf,
    seconds: u64,
    connections: usize,
    body: usize,
    rounds: usize,
    /// Skip the handshake measure (for quick A/B runs of keep-alive serving).
    requests_only: bool,
    /// Pin the client to the first CPU and the servers to the others (see `pin`).
    split_cpus: bool,
    /// Drive the servers with wrk instead of this program's own client (see `wrk.rs`).
    wrk: bool,
    /// Threads (event loops) the client runs; `None`: one per CPU it may use.
    client_threads: Option<usize>,
    /// Run the servers in this process's session instead of one each (see `--one-session`).
    one_session: bool,
    /// Instances of the guest the Keep runs (`instances` in its config).
    instances: u32,
}

impl Options {
    /// How many threads the client runs: `--client-threads`, else one per CPU it may use (CPU 0
    /// alone under `--split-cpus`), and never more than there are connections.
    fn client_threads(&self) -> usize {
        let per_cpu = if self.split_cpus {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        };
        self.client_threads
            .unwrap_or(per_cpu)
            .min(self.connections)
            .max(1)
    }
}

fn parse_options(mut args: impl Iterator<Item = String>) -> Options {
    let mut options = Options {
        moat: guests::repo_root().join("target/release/moat"),
        seconds: 10,
        connections: 32,
        body: 256,
        rounds: 2,
        requests_only: false,
        split_cpus: false,
        wrk: false,
        client_threads: None,
        one_session: false,
        instances: 1,
    };
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--moat" => options.moat = value().into(),
            "--seconds" => {
                options.seconds = value().parse().unwrap_or_else(|_| usage("--seconds N"))
            }
            "--connections" => {
                options.connections = value().parse().unwrap_or_else(|_| usage("--connections N"))
            }
            "--body" => options.body = value().parse().unwrap_or_else(|_| usage("--body BYTES")),
            "--rounds" => options.rounds = value().parse().unwrap_or_else(|_| usage("--rounds N")),
            "--requests-only" => options.requests_only = true,
            "--split-cpus" => options.split_cpus = true,
            "--one-session" => options.one_session = true,
            "--instances" => {
                options.instances = value()
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .unwrap_or_else(|| usage("--instances N (N >= 1)"))
            }
            "--client" => match value().as_str() {
                "bench-run" => options.wrk = false,
                "wrk" => options.wrk = true,
                _ => usage("--client bench-run|wrk"),
            },
            "--client-threads" => {
                options.client_threads = Some(
                    value()
                        .parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .unwrap_or_else(|| usage("--client-threads N (N >= 1)")),
                )
            }
            "--help" | "-h" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    options
}

/// Each server starts in a session of its own unless `--one-session`: `setsid` makes itself
/// the session leader and executes `setpriv`, which asks for SIGKILL when this program dies and
/// executes the server; both from util-linux, and the server keeps their process id. Out of the
/// terminal's process group, a server would otherwise outlive a Ctrl-C of this program.
fn in_session(server: Moat, options: &Options) -> Moat {
    if options.one_session {
        server
    } else {
        server
            .wrapped_in("setpriv", ["--pdeathsig", "KILL", "--"])
            .wrapped_in("setsid", [] as [&str; 0])
    }
}

/// How the kernel shares the CPUs between the client and the servers, for the report.
fn sessions_line(options: &Options) -> String {
    let autogroup = std::fs::read_to_string("/proc/sys/kernel/sched_autogroup_enabled")
        .map(|s| s.trim() == "1")
        .unwrap_or(false);
    match (options.one_session, autogroup) {
        (false, true) => "sessions: each server in its own (autogroup on: CPU time is shared \
             between the client's session and each server's, then among each one's threads)"
            .into(),
        (true, true) => "sessions: client and servers in one (autogroup on, but one group: CPU \
             time is shared among all their threads alike)"
            .into(),
        (_, false) => "sessions: autogroup is off on this kernel, so CPU time is shared among all \
             threads alike whatever the sessions"
            .into(),
    }
}

fn usage(problem: &str) -> ! {
    eprintln!(
        "{problem}\nusage: bench-run [--moat PATH] [--seconds N] [--connections N] [--body BYTES] [--rounds N] [--requests-only] [--split-cpus] [--one-session] [--instances N] [--client bench-run|wrk] [--client-threads N]\n       bench-run instructions [--moat PATH] [--connections N] [--requests N] [--body BYTES] [--keep-profiles DIR]\n       bench-run serve-native PORT"
    );
    std::process::exit(2)
}

fn parse_instruction_options(mut args: impl Iterator<Item = String>) -> instructions::Options {
    let mut options = instructions::Options {
        moat: guests::repo_root().join("target/release/moat"),
        connections: 8,
        requests: 100,
        body: 256,
        keep_profiles: None,
    };
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        let number = |v: String, what: &str| v.parse().unwrap_or_else(|_| usage(what));
        match flag.as_str() {
            "--moat" => options.moat = value().into(),
            "--connections" => options.connections = number(value(), "--connections N"),
            "--requests" => options.requests = number(value(), "--requests N"),
            "--body" => options.body = number(value(), "--body BYTES"),
            "--keep-profiles" => options.keep_profiles = Some(value().into()),
            "--help" | "-h" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    options
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("serve-native") {
        args.next();
        let port: u16 = args
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| usage("serve-native PORT"));
        serve_native(port);
        return;
    }
    if args.peek().map(String::as_str) == Some("instructions") {
        args.next();
        let mut options = parse_instruction_options(args);
        options.moat = checked_moat(options.moat);
        instructions::run(&options);
        return;
    }
    let mut options = parse_options(args);
    options.moat = checked_moat(options.moat);
    run_benchmark(&options);
}

/// The moat binary as an absolute path (the Keep runs in a temporary working directory), or
/// a usage error if there is none.
fn checked_moat(moat: PathBuf) -> PathBuf {
    if !moat.is_file() {
        usage(&format!(
            "no moat binary at {} (cargo build --release -p moat-cli)",
            moat.display()
        ));
    }
    std::fs::canonicalize(&moat).unwrap_or(moat)
}

/// The baseline server: tokio (multi-threaded, as a native deployment would run) + rustls, the
/// same echo crate the guest runs.
fn serve_native(port: u16) {
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    runtime.block_on(async move {
        let identity = pki::self_signed_server(&["localhost"]);
        let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(&identity, None));
        let listener = tokio::net::TcpListener::bind(net::local(port))
            .await
            .expect("bind the native server");
        println!("native: listening");
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            let _ = tcp.set_nodelay(true);
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(stream) = acceptor.accept(tcp).await {
                    let _ = moat_http_echo::serve_connection(stream).await;
                }
            });
        }
    });
}

/// The Keep's config: `instances` of the guest, stdio, and the `web` TLS listener the
/// `http-echo` guest serves on. One instance is left implicit, so that the config also runs on
/// a `moat` from before `instances` (for A/B runs against an older build).
fn keep_config(port: u16, instances: u32) -> String {
    let instances = match instances {
        1 => String::new(),
        n => format!("instances = {n}\n"),
    };
    format!(
        "{instances}[[files]]\nkind = \"stdin\"\n[[files]]\nkind = \"stdout\"\n[[files]]\nkind = \"stderr\"\n\
         [[files]]\nkind = \"listen\"\nname = \"web\"\nprot = \"tls\"\naddr = \"127.0.0.1\"\nport = {port}\n\
         [limits]\nmax_connections_per_listener = 4096\n"
    )
}

struct Figures {
    requests_per_s: f64,
    /// CPU the client (this process) used during the keep-alive measure, in cores.
    client_cores: f64,
    /// Server CPU time (user + system, all threads) per keep-alive request.
    cpu_us_per_request: f64,
    /// The server's busiest thread during the keep-alive measure.
    busiest: ThreadShare,
    handshakes_per_s: f64,
    /// Server CPU time per new connection (handshake, one request, close) in the handshake
    /// measure; NaN when it did not run.
    cpu_us_per_connection: f64,
    /// Share of the machine's CPU time the hypervisor gave to other guests during the measures
    /// (filled in by the caller, which brackets both measures).
    steal: f64,
    errors: u64,
}

fn run_benchmark(options: &Options) {
    if options.wrk && !wrk::available() {
        usage("--client wrk needs wrk (apt-get install wrk)");
    }
    let module = guests::module("http-echo");
    let hello = guests::module("hello");

    // Under --split-cpus the servers start already pinned (they inherit this process's CPUs), so
    // each sizes its thread pools to the CPUs it really gets, as a deployment on them would:
    // pinned after start, native tokio would run one worker per CPU of the whole machine
    // crowded onto fewer CPUs.
    let server_cpus = options.split_cpus.then(|| {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        if cpus < 2 {
            usage("--split-cpus needs at least two CPUs");
        }
        let servers = format!("1-{}", cpus - 1);
        pin(std::process::id(), &servers);
        servers
    });

    // The Keep serving the guest.
    let moat_port = net::free_port();
    let mut keep = in_session(
        Moat::run(&options.moat, &module)
            .config(&keep_config(moat_port, options.instances))
            .guest_args(["web"]),
        options,
    )
    .spawn();
    keep.wait_for_stdout("http-echo: listening");

    // The native server, a separate process like the Keep.
    let native_port = net::free_port();
    let mut native = in_session(
        Moat::command(std::env::current_exe().expect("own path"), ["serve-native"])
            .arg(native_port.to_string()),
        options,
    )
    .spawn();
    native.wait_for_stdout("native: listening");

    if let Some(servers) = &server_cpus {
        // Before the client's runtime exists: its threads inherit this.
        pin(std::process::id(), "0");
        eprintln!("client on CPU 0, servers on CPUs {servers}");
    }

    // With its own single CPU, the client runs one thread: a multi-thread runtime would only
    // add cross-thread wake-ups on that core and make the client, not the server, the limit.
    let runtime = match options.client_threads() {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
    .expect("tokio runtime");
    eprintln!("client: {} thread(s)", options.client_threads());
    let (config, _) = tls::capturing_client(None);
    let config = tls::without_resumption(&config);
    let mut moat_runs = Vec::new();
    let mut native_runs = Vec::new();
    for round in 0..options.rounds {
        eprintln!("round {} of {}", round + 1, options.rounds);
        for (name, port, pid, runs) in [
            ("native", native_port, native.id(), &mut native_runs),
            ("moat", moat_port, keep.id(), &mut moat_runs),
        ] {
            let steal_before = machine_ticks();
            let mut figures = if options.wrk {
                wrk::measure(net::local(port), pid, options)
            } else {
                runtime.block_on(measure(net::local(port), pid, config.clone(), options))
            };
            figures.steal = steal_share(steal_before, machine_ticks());
            eprintln!(
                "  {name}: {:.0} req/s ({:.1} us server CPU each; busiest server thread running {:.2}, waiting for a CPU {:.2}; client busy {:.2} cores), {:.0} handshakes/s ({:.0} us server CPU each), {} errors, steal {:.0}%",
                figures.requests_per_s,
                figures.cpu_us_per_request,
                figures.busiest.running,
                figures.busiest.waiting,
                figures.client_cores,
                figures.handshakes_per_s,
                figures.cpu_us_per_connection,
                figures.errors,
                figures.steal * 100.0
            );
            runs.push(figures);
        }
    }
    drop(keep);
    drop(native);

    let (cold, warm) = start_times(&options.moat, &hello);

    let best = |runs: &[Figures], f: fn(&Figures) -> f64| runs.iter().map(f).fold(0.0, f64::max);
    let moat_rps = best(&moat_runs, |f| f.requests_per_s);
    let native_rps = best(&native_runs, |f| f.requests_per_s);
    let moat_hs = best(&moat_runs, |f| f.handshakes_per_s);
    let native_hs = best(&native_runs, |f| f.handshakes_per_s);
    let least = |runs: &[Figures]| {
        runs.iter()
            .map(|f| f.cpu_us_per_request)
            .fold(f64::INFINITY, f64::min)
    };
    let (moat_cpu, native_cpu) = (least(&moat_runs), least(&native_runs));
    let least_per_connection = |runs: &[Figures]| {
        runs.iter()
            .map(|f| f.cpu_us_per_connection)
            .fold(f64::INFINITY, f64::min)
    };
    let (moat_conn_cpu, native_conn_cpu) = (
        least_per_connection(&moat_runs),
        least_per_connection(&native_runs),
    );
    let errors: u64 = moat_runs.iter().chain(&native_runs).map(|f| f.errors).sum();
    // The machine's state drifts between rounds (and the best rounds of the two servers need not
    // coincide); each round's own moat/native ratio, measured back to back, is the steadier
    // figure, so the table gives their median next to the ratio of the bests.
    let paired = |f: fn(&Figures) -> f64| {
        let mut ratios: Vec<f64> = moat_runs
            .iter()
            .zip(&native_runs)
            .map(|(m, n)| f(m) / f(n))
            .collect();
        ratios.sort_by(f64::total_cmp);
        let median = ratios[ratios.len() / 2];
        let list: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
        (median, list.join(", "))
    };
    let (rps_median, rps_rounds) = paired(|f| f.requests_per_s);
    let (hs_median, hs_rounds) = paired(|f| f.handshakes_per_s);
    let (cpu_median, _) = paired(|f| 1.0 / f.cpu_us_per_request);
    let median_share = |runs: &[Figures]| {
        let median = |f: fn(&ThreadShare) -> f64| {
            let mut v: Vec<f64> = runs.iter().map(|r| f(&r.busiest)).collect();
            v.sort_by(f64::total_cmp);
            v[v.len() / 2]
        };
        format!(
            "{:.2} + {:.2}",
            median(|t| t.running),
            median(|t| t.waiting)
        )
    };
    let (moat_share, native_share) = (median_share(&moat_runs), median_share(&native_runs));
    println!(
        "| measure | moat run (wasm) | native tokio + rustls | ratio of bests | median per-round ratio | target |\n\
         |---|---|---|---|---|---|\n\
         | HTTP/1.1 keep-alive requests/s over TLS ({} conns, {} B bodies) | {moat_rps:.0} | {native_rps:.0} | {:.2} | {rps_median:.2} | >= 0.8 |\n\
         | new TLS handshakes/s (one request each, no resumption) | {moat_hs:.0} | {native_hs:.0} | {:.2} | {hs_median:.2} | >= 0.9 |\n\
         | server CPU per keep-alive request (user + system, all threads; native/moat) | {moat_cpu:.1} us | {native_cpu:.1} us | {:.2} | {cpu_median:.2} | |\n\
         | server CPU per new connection (handshake, one request, close; native/moat) | {moat_conn_cpu:.0} us | {native_conn_cpu:.0} us | {:.2} | | |\n\
         | busiest server thread in keep-alive: running + waiting for a CPU (share of wall time, median) | {moat_share} | {native_share} | | | |\n\
         | start, cold compile cache (`hello.wasm`) | {:.0} ms | | | | |\n\
         | start, warm compile cache (`hello.wasm`) | {:.0} ms | | | | tens of ms |",
        options.connections,
        options.body,
        moat_rps / native_rps,
        moat_hs / native_hs,
        native_cpu / moat_cpu,
        native_conn_cpu / moat_conn_cpu,
        cold.as_secs_f64() * 1000.0,
        warm.as_secs_f64() * 1000.0,
    );
    println!(
        "\n{} rounds of {} s per measure{}; client errors over all runs: {errors}",
        options.rounds,
        options.seconds,
        if options.split_cpus {
            ", client and servers on separate CPUs"
        } else {
            ", client and servers sharing all CPUs"
        }
    );
    println!("{}", sessions_line(options));
    println!(
        "keep: {} instance{} of the guest (`instances` in its config)",
        options.instances,
        if options.instances == 1 { "" } else { "s" }
    );
    println!(
        "client: {}",
        if options.wrk {
            "wrk (OpenSSL)"
        } else {
            "bench-run (tokio + rustls)"
        }
    );
    let steals: Vec<f64> = moat_runs
        .iter()
        .chain(&native_runs)
        .map(|f| f.steal)
        .collect();
    let most_stolen = steals.iter().copied().fold(0.0, f64::max);
    println!(
        "hypervisor steal during the measures: at most {:.0}% of the machine's CPU time{}",
        most_stolen * 100.0,
        if most_stolen > STEAL_WARNING {
            " (more than a few per cent: other guests took the CPUs; rerun when it is quiet)"
        } else {
            ""
        }
    );
    println!("per-round ratios, requests/s: {rps_rounds}");
    if !options.requests_only {
        println!("per-round ratios, handshakes/s: {hs_rounds}");
    }
}

/// Requests/s over keep-alive connections, then handshakes/s with fresh connections.
async fn measure(
    addr: SocketAddr,
    server_pid: u32,
    config: Arc<rustls::ClientConfig>,
    options: &Options,
) -> Figures {
    let duration = Duration::from_secs(options.seconds);
    let body = Arc::new(vec![b'x'; options.body]);
    let errors = Arc::new(AtomicU64::new(0));

    let requests = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..options.connections)
        .map(|_| {
            let (config, body, requests, stop, errors) = (
                config.clone(),
                body.clone(),
                requests.clone(),
                stop.clone(),
                errors.clone(),
            );
            tokio::spawn(async move {
                let Ok(mut stream) = tls::connect(addr, config, "localhost").await else {
                    errors.fetch_add(1, Ordering::Relaxed);
                    return;
                };
                let mut buf = Vec::with_capacity(4096);
                while !stop.load(Ordering::Relaxed) {
                    if request(&mut stream, &body, false, &mut buf).await.is_err() {
                        errors.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    requests.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    // Start counting once every connection is up, so handshakes do not count as request work.
    while requests.load(Ordering::Relaxed) < options.connections as u64
        && errors.load(Ordering::Relaxed) == 0
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let server = ServerWatch::start(server_pid);
    let client_cpu_before = process_cpu(std::process::id());
    let done_before = requests.load(Ordering::Relaxed);
    tokio::time::sleep(duration).await;
    let done = requests.load(Ordering::Relaxed) - done_before;
    let keep_alive = server.finish(done as f64);
    let elapsed = keep_alive.elapsed;
    let client_cores = process_cpu(std::process::id())
        .saturating_sub(client_cpu_before)
        .as_secs_f64()
        / elapsed.as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let requests_per_s = done as f64 / elapsed.as_secs_f64();
    if options.requests_only {
        return Figures {
            requests_per_s,
            client_cores,
            cpu_us_per_request: keep_alive.cpu_us_per_unit,
            busiest: keep_alive.busiest,
            handshakes_per_s: 0.0,
            cpu_us_per_connection: f64::NAN,
            steal: 0.0,
            errors: errors.load(Ordering::Relaxed),
        };
    }

    let handshakes = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..options.connections)
        .map(|_| {
            let (config, body, handshakes, stop, errors) = (
                config.clone(),
                body.clone(),
                handshakes.clone(),
                stop.clone(),
                errors.clone(),
            );
            tokio::spawn(async move {
                let mut buf = Vec::with_capacity(4096);
                while !stop.load(Ordering::Relaxed) {
                    let outcome = async {
                        let mut stream = tls::connect(addr, config.clone(), "localhost").await?;
                        request(&mut stream, &body, true, &mut buf).await?;
                        stream.shutdown().await
                    }
                    .await;
                    match outcome {
                        Ok(()) => handshakes.fetch_add(1, Ordering::Relaxed),
                        Err(_) => errors.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    let server = ServerWatch::start(server_pid);
    tokio::time::sleep(duration).await;
    let done = handshakes.load(Ordering::Relaxed);
    let fresh = server.finish(done as f64);
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    Figures {
        requests_per_s,
        client_cores,
        cpu_us_per_request: keep_alive.cpu_us_per_unit,
        busiest: keep_alive.busiest,
        handshakes_per_s: done as f64 / fresh.elapsed.as_secs_f64(),
        cpu_us_per_connection: fresh.cpu_us_per_unit,
        steal: 0.0,
        errors: errors.load(Ordering::Relaxed),
    }
}

/// Set the CPU affinity of every thread `pid` has now (threads started later inherit it from
/// their creator). With `--split-cpus` the client and the server under test stop competing for
/// the same cores, so each server's figure is what it does with its own cores, not what the
/// scheduler's share between three or four busy threads left it.
fn pin(pid: u32, cpus: &str) {
    let status = Command::new("taskset")
        .args(["--all-tasks", "--pid", "--cpu-list", cpus, &pid.to_string()])
        .stdout(Stdio::null())
        .status();
    match status {
        Ok(s) if s.success() => {}
        other => usage(&format!(
            "taskset could not pin {pid} to CPUs {cpus}: {other:?}"
        )),
    }
}

/// One request with `body`; reads the whole response (checking the echoed length).
async fn request<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    body: &[u8],
    close: bool,
    buf: &mut Vec<u8>,
) -> std::io::Result<()> {
    let mut req = format!(
        "POST /echo HTTP/1.1\r\nhost: localhost\r\ncontent-length: {}\r\n{}\r\n",
        body.len(),
        if close { "connection: close\r\n" } else { "" }
    )
    .into_bytes();
    req.extend_from_slice(body);
    stream.write_all(&req).await?;
    buf.clear();
    let mut chunk = [0u8; 8192];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .ok_or(std::io::ErrorKind::InvalidData)?;
            if length != body.len() || !head.starts_with("http/1.1 200") {
                return Err(std::io::ErrorKind::InvalidData.into());
            }
            if buf.len() >= head_end + 4 + length {
                return Ok(());
            }
        }
    }
}

/// Wall time of `moat run hello.wasm`, first with an empty compile cache, then with it filled
/// (median of five warm runs).
fn start_times(moat: &std::path::Path, hello: &std::path::Path) -> (Duration, Duration) {
    let cache = tempfile::tempdir().expect("temp cache dir");
    let run = || {
        let started = Instant::now();
        let status = Command::new(moat)
            .arg("run")
            .arg(hello)
            .env("MOAT_CACHE_DIR", cache.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .expect("run moat");
        assert!(status.success(), "moat run hello.wasm failed: {status}");
        started.elapsed()
    };
    let cold = run();
    let mut warm: Vec<Duration> = (0..5).map(|_| run()).collect();
    warm.sort();
    (cold, warm[2])
}
