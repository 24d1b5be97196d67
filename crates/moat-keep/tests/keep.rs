//! The Keep end to end with small WAT guests: exit codes, traps, limits, bad modules, and the
//! capability sockets (blocking and non-blocking accept, echo over TCP and TLS, half-close,
//! pre-open scanning past sockets, poll_oneoff).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use moat_keep::wasi as moat_wasi;
use moat_keep::{CacheSetting, KeepError, LimitExceeded, Limits, RunOutcome, RunSpec};
use moat_wasi::{DirSpec, FdSpec, ListenLimits, WasiSpec};

const IMPORTS: &str = r#"
  (import "wasi_snapshot_preview1" "sock_accept" (func $accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_close" (func $close (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_set_flags" (func $setfl (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $prestat (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_shutdown" (func $shutdown (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
"#;

fn module(body: &str) -> Vec<u8> {
    format!("(module {IMPORTS} (memory (export \"memory\") 2) {body})").into_bytes()
}

fn spec(fds: Vec<FdSpec>) -> RunSpec {
    RunSpec {
        instances: std::num::NonZeroUsize::MIN,
        wasi: WasiSpec {
            args: vec!["main.wasm".into()],
            env: vec![],
            fds,
            dirs: vec![],
        },
        // A guest that hangs (say, waiting for an end-of-stream the host never reports) fails
        // its test after a minute instead of stalling the whole run.
        limits: Limits {
            max_wall_time: Some(HANG),
            ..Limits::default()
        },
        cache: CacheSetting::Disabled,
        on_listening: None,
    }
}

/// Longer than any of these tests takes by far.
const HANG: Duration = Duration::from_secs(60);

fn stdio() -> Vec<FdSpec> {
    vec![FdSpec::Stdin, FdSpec::Stdout, FdSpec::Stderr]
}

fn listen(tls: Option<Arc<rustls::ServerConfig>>) -> FdSpec {
    FdSpec::Listen {
        name: "sock".into(),
        addr: "127.0.0.1:0".parse().unwrap(),
        tls,
        limits: ListenLimits::default(),
    }
}

/// Run in a thread; returns the listener address (if any) and a handle to the outcome.
fn start(
    wasm: Vec<u8>,
    mut spec: RunSpec,
) -> (
    Option<SocketAddr>,
    std::thread::JoinHandle<Result<RunOutcome, KeepError>>,
) {
    let (tx, rx) = mpsc::channel();
    spec.on_listening = Some(Box::new(move |ls: &[moat_wasi::BoundListener]| {
        let _ = tx.send(ls.first().map(|l| l.addr));
    }));
    let handle = std::thread::spawn(move || moat_keep::run_blocking(&wasm, spec));
    let addr = rx.recv_timeout(Duration::from_secs(60)).ok().flatten();
    (addr, handle)
}

fn run(wasm: Vec<u8>, spec: RunSpec) -> Result<RunOutcome, KeepError> {
    moat_keep::run_blocking(&wasm, spec)
}

#[test]
fn proc_exit_code_is_the_outcome() {
    let wasm = module(r#"(func (export "_start") (call $exit (i32.const 7)))"#);
    assert_eq!(run(wasm, spec(stdio())).unwrap().exit_code, 7);
}

#[test]
fn trap_is_reported_with_a_backtrace() {
    let wasm = module(r#"(func $boom unreachable) (func (export "_start") (call $boom))"#);
    match run(wasm, spec(stdio())) {
        Err(KeepError::Trap { message, backtrace }) => {
            assert!(message.contains("unreachable"), "{message}");
            assert!(backtrace.unwrap_or_default().contains("boom"));
        }
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn missing_import_is_named() {
    let wasm = br#"(module (import "env" "launch_missiles" (func)) (memory (export "memory") 1)
        (func (export "_start")))"#
        .to_vec();
    match run(wasm, spec(stdio())) {
        Err(KeepError::MissingImport { module, name }) => {
            assert_eq!((module.as_str(), name.as_str()), ("env", "launch_missiles"))
        }
        other => panic!("expected MissingImport, got {other:?}"),
    }
}

#[test]
fn invalid_and_truncated_modules_are_rejected() {
    for bytes in [
        b"not wasm at all".to_vec(),
        b"\0asm\x01\0\0\0\x01\x05".to_vec(),
        vec![],
    ] {
        assert!(matches!(
            run(bytes, spec(stdio())),
            Err(KeepError::InvalidModule(_))
        ));
    }
}

#[test]
fn infinite_loop_hits_the_cpu_limit() {
    let wasm = module(r#"(func (export "_start") (loop $l (br $l)))"#);
    let mut s = spec(stdio());
    s.limits.max_cpu_time = Some(Duration::from_millis(200));
    assert!(matches!(
        run(wasm, s),
        Err(KeepError::Limit(LimitExceeded::CpuTime { .. }))
    ));
}

#[test]
fn blocked_workload_hits_the_wall_clock_limit() {
    // Blocks in sock_accept forever: only the wall-clock limit can stop it.
    let wasm = module(
        r#"(func (export "_start") (drop (call $accept (i32.const 3) (i32.const 0) (i32.const 0))))"#,
    );
    let mut s = spec(vec![
        FdSpec::Stdin,
        FdSpec::Stdout,
        FdSpec::Stderr,
        listen(None),
    ]);
    s.limits.max_wall_time = Some(Duration::from_millis(300));
    assert!(matches!(
        run(wasm, s),
        Err(KeepError::Limit(LimitExceeded::WallTime { .. }))
    ));
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let wasm =
        module(r#"(func (export "_start") (loop $l (drop (memory.grow (i32.const 16))) (br $l)))"#);
    let mut s = spec(stdio());
    s.limits.max_memory = 8 << 20;
    match run(wasm, s) {
        Err(KeepError::Limit(LimitExceeded::Memory { limit, requested })) => {
            assert_eq!(limit, 8 << 20);
            assert!(requested > limit);
        }
        other => panic!("expected the memory limit, got {other:?}"),
    }
}

/// Accept one connection on fd 3 and echo until EOF, then close it.
const ECHO: &str = r#"
  (func (export "_start")
    (local $fd i32) (local $n i32)
    (if (call $accept (i32.const 3) (i32.const 0) (i32.const 0)) (then (call $exit (i32.const 10))))
    (local.set $fd (i32.load (i32.const 0)))
    (i32.store (i32.const 8) (i32.const 1024))
    (i32.store (i32.const 12) (i32.const 4096))
    (loop $l
      (if (call $read (local.get $fd) (i32.const 8) (i32.const 1) (i32.const 16))
        (then (call $exit (i32.const 11))))
      (local.set $n (i32.load (i32.const 16)))
      (if (i32.eqz (local.get $n))
        (then (drop (call $close (local.get $fd))) (return)))
      (i32.store (i32.const 24) (i32.const 1024))
      (i32.store (i32.const 28) (local.get $n))
      (if (call $write (local.get $fd) (i32.const 24) (i32.const 1) (i32.const 32))
        (then (call $exit (i32.const 12))))
      (br $l)))
"#;

#[test]
fn blocking_echo_over_tcp_with_half_close() {
    let mut fds = stdio();
    fds.push(listen(None));
    let (addr, handle) = start(module(ECHO), spec(fds));
    let mut client = TcpStream::connect(addr.unwrap()).unwrap();
    client.write_all(b"hello keep").unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"hello keep");
    assert_eq!(handle.join().unwrap().unwrap().exit_code, 0);
}

#[test]
fn a_connection_the_guest_closed_frees_its_slot_while_the_peer_stays_silent() {
    // One connection allowed. The guest accepts the first client, closes it and accepts again;
    // the first client never sends anything nor closes. The second accept can only succeed
    // once the host stopped reading the closed connection and released its slot.
    let wasm = module(
        r#"(data (i32.const 16) "2")
        (func (export "_start") (local $fd i32)
          (if (call $accept (i32.const 3) (i32.const 0) (i32.const 0)) (then (call $exit (i32.const 10))))
          (if (call $close (i32.load (i32.const 0))) (then (call $exit (i32.const 11))))
          (if (call $accept (i32.const 3) (i32.const 0) (i32.const 0)) (then (call $exit (i32.const 12))))
          (local.set $fd (i32.load (i32.const 0)))
          (i32.store (i32.const 8) (i32.const 16))
          (i32.store (i32.const 12) (i32.const 1))
          (if (call $write (local.get $fd) (i32.const 8) (i32.const 1) (i32.const 32))
            (then (call $exit (i32.const 13))))
          (drop (call $close (local.get $fd))))"#,
    );
    let mut fds = stdio();
    fds.push(FdSpec::Listen {
        name: "sock".into(),
        addr: "127.0.0.1:0".parse().unwrap(),
        tls: None,
        limits: ListenLimits {
            max_connections: 1,
            ..ListenLimits::default()
        },
    });
    let mut s = spec(fds);
    s.limits.max_wall_time = Some(Duration::from_secs(20));
    let (addr, handle) = start(wasm, s);
    let addr = addr.unwrap();
    let mut silent = TcpStream::connect(addr).unwrap();
    // The guest closed the first connection once it ends (FIN) on this side.
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    assert_eq!(silent.read(&mut [0u8; 1]).unwrap(), 0);
    let mut second = TcpStream::connect(addr).unwrap();
    let mut got = Vec::new();
    second.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"2");
    assert_eq!(handle.join().unwrap().unwrap().exit_code, 0);
    drop(silent);
}

fn self_signed() -> (
    Arc<rustls::ServerConfig>,
    rustls::pki_types::CertificateDer<'static>,
) {
    let identity = moat_tls::Identity::self_signed(&["localhost"]).unwrap();
    let config = moat_tls::server_config(&identity, &moat_tls::ServerOptions::default()).unwrap();
    (config, identity.leaf().clone())
}

#[test]
fn blocking_echo_over_tls_with_close_notify() {
    let (server, cert) = self_signed();
    let mut fds = stdio();
    fds.push(listen(Some(server)));
    let (addr, handle) = start(module(ECHO), spec(fds));

    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client_config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let mut conn =
        rustls::ClientConnection::new(Arc::new(client_config), "localhost".try_into().unwrap())
            .unwrap();
    let mut tcp = TcpStream::connect(addr.unwrap()).unwrap();
    let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
    tls.write_all(b"secret words").unwrap();
    tls.conn.send_close_notify();
    tls.flush().unwrap();
    let mut got = Vec::new();
    // Ends cleanly only if the Keep sent close_notify (rustls reports a truncation otherwise).
    tls.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"secret words");
    assert_eq!(handle.join().unwrap().unwrap().exit_code, 0);
}

#[test]
fn nonblocking_accept_says_eagain() {
    let wasm = module(
        r#"(func (export "_start")
            (if (call $setfl (i32.const 3) (i32.const 4)) (then (call $exit (i32.const 90))))
            (call $exit (call $accept (i32.const 3) (i32.const 0) (i32.const 0))))"#,
    );
    let mut fds = stdio();
    fds.push(listen(None));
    assert_eq!(
        run(wasm, spec(fds)).unwrap().exit_code,
        6,
        "EAGAIN is errno 6"
    );
}

#[test]
fn bad_pointers_and_fds_are_errnos_not_crashes() {
    // sock_accept with an out-of-bounds result pointer: EFAULT (21); on a non-socket: ENOTSOCK
    // (57); on a closed fd: EBADF (8); fd_read with a huge iovec count: EINVAL (28).
    let wasm = module(
        r#"(func (export "_start")
            (if (i32.ne (call $accept (i32.const 3) (i32.const 0) (i32.const 0x7fffffff)) (i32.const 21))
              (then (call $exit (i32.const 1))))
            (if (i32.ne (call $accept (i32.const 1) (i32.const 0) (i32.const 0)) (i32.const 57))
              (then (call $exit (i32.const 2))))
            (if (i32.ne (call $accept (i32.const 99) (i32.const 0) (i32.const 0)) (i32.const 8))
              (then (call $exit (i32.const 3))))
            (if (i32.ne (call $read (i32.const 0) (i32.const 0) (i32.const -1) (i32.const 0)) (i32.const 28))
              (then (call $exit (i32.const 4))))
            (if (i32.ne (call $write (i32.const 1) (i32.const 0xfffff0) (i32.const 1) (i32.const 0)) (i32.const 21))
              (then (call $exit (i32.const 5))))
            (if (i32.ne (call $shutdown (i32.const 3) (i32.const 9)) (i32.const 28))
              (then (call $exit (i32.const 6))))
            (call $exit (i32.const 0)))"#,
    );
    let mut fds = stdio();
    fds.push(listen(None));
    assert_eq!(run(wasm, spec(fds)).unwrap().exit_code, 0);
}

#[test]
fn prestat_scan_skips_sockets_and_finds_dirs_after_them() {
    // fd 3 is a socket (tag 1 = not a dir), fd 4 the pre-opened dir (tag 0), fd 5 EBADF.
    let wasm = module(
        r#"(func (export "_start")
            (if (call $prestat (i32.const 3) (i32.const 64)) (then (call $exit (i32.const 1))))
            (if (i32.ne (i32.load8_u (i32.const 64)) (i32.const 1)) (then (call $exit (i32.const 2))))
            (if (call $prestat (i32.const 4) (i32.const 64)) (then (call $exit (i32.const 3))))
            (if (i32.load8_u (i32.const 64)) (then (call $exit (i32.const 4))))
            (if (i32.ne (call $prestat (i32.const 5) (i32.const 64)) (i32.const 8)) (then (call $exit (i32.const 5))))
            (call $exit (i32.const 0)))"#,
    );
    let mut fds = stdio();
    fds.push(listen(None));
    let mut s = spec(fds);
    let dir = tempfile::tempdir().unwrap();
    s.wasi.dirs.push(DirSpec {
        host: dir.path().to_path_buf(),
        guest: "/data".into(),
        read_only: true,
    });
    assert_eq!(run(wasm, s).unwrap().exit_code, 0);
}

#[test]
fn poll_waits_for_a_connection_and_never_reports_a_listener_writable() {
    // Subscriptions: [0] fd_read on listener fd 3, [1] fd_write on the same listener.
    // Exactly one event must come back, for userdata 0.
    let wasm = module(
        r#"(func (export "_start")
            (i64.store (i32.const 100) (i64.const 0))
            (i32.store8 (i32.const 108) (i32.const 1))
            (i32.store (i32.const 116) (i32.const 3))
            (i64.store (i32.const 148) (i64.const 1))
            (i32.store8 (i32.const 156) (i32.const 2))
            (i32.store (i32.const 164) (i32.const 3))
            (if (call $poll (i32.const 100) (i32.const 300) (i32.const 2) (i32.const 400))
              (then (call $exit (i32.const 1))))
            (if (i32.ne (i32.load (i32.const 400)) (i32.const 1)) (then (call $exit (i32.const 2))))
            (if (i64.ne (i64.load (i32.const 300)) (i64.const 0)) (then (call $exit (i32.const 3))))
            (call $exit (i32.const 0)))"#,
    );
    let mut fds = stdio();
    fds.push(listen(None));
    let (addr, handle) = start(wasm, spec(fds));
    let _client = TcpStream::connect(addr.unwrap()).unwrap();
    assert_eq!(handle.join().unwrap().unwrap().exit_code, 0);
}

#[test]
fn a_poll_on_writability_alone_is_answered_again() {
    // One subscription: fd_write on the accepted stream. Once reported it is held back, but
    // with nothing else in the poll that could wake the guest, waiting would be forever: the
    // second poll must report it again.
    let wasm = module(
        r#"(func $poll_write (result i64)
            (i64.store (i32.const 100) (i64.const 7))
            (i32.store8 (i32.const 108) (i32.const 2))
            (i32.store (i32.const 116) (i32.load (i32.const 0)))
            (if (call $poll (i32.const 100) (i32.const 300) (i32.const 1) (i32.const 400))
              (then (call $exit (i32.const 20))))
            (if (i32.ne (i32.load (i32.const 400)) (i32.const 1)) (then (return (i64.const -1))))
            (i64.load (i32.const 300)))
          (func (export "_start")
            (if (call $accept (i32.const 3) (i32.const 0) (i32.const 0)) (then (call $exit (i32.const 10))))
            (if (i64.ne (call $poll_write) (i64.const 7)) (then (call $exit (i32.const 2))))
            (if (i64.ne (call $poll_write) (i64.const 7)) (then (call $exit (i32.const 3))))
            (call $exit (i32.const 0)))"#,
    );
    let mut fds = stdio();
    fds.push(listen(None));
    let mut s = spec(fds);
    s.limits.max_wall_time = Some(Duration::from_secs(20));
    let (addr, handle) = start(wasm, s);
    let _client = TcpStream::connect(addr.unwrap()).unwrap();
    assert_eq!(handle.join().unwrap().unwrap().exit_code, 0);
}

#[test]
fn writability_is_reported_once_per_write_attempt() {
    // Subscriptions: [0] fd_write on the accepted stream (userdata 1), [1] a 30 ms relative
    // clock (userdata 42). A stream with room is writable; after that has been reported, the
    // next poll waits (here for the clock) until the guest writes again. tokio/mio guests keep
    // write interest on every stream, so re-reporting it would make them spin.
    let wasm = module(
        r#"(func $poll_once (result i64)
            (i64.store (i32.const 100) (i64.const 1))
            (i32.store8 (i32.const 108) (i32.const 2))
            (i32.store (i32.const 116) (i32.load (i32.const 0)))
            (i64.store (i32.const 148) (i64.const 42))
            (i32.store8 (i32.const 156) (i32.const 0))
            (i32.store (i32.const 164) (i32.const 1))
            (i64.store (i32.const 172) (i64.const 30000000))
            (i64.store (i32.const 180) (i64.const 0))
            (i32.store16 (i32.const 188) (i32.const 0))
            (if (call $poll (i32.const 100) (i32.const 300) (i32.const 2) (i32.const 400))
              (then (call $exit (i32.const 20))))
            (if (i32.ne (i32.load (i32.const 400)) (i32.const 1)) (then (return (i64.const -1))))
            (i64.load (i32.const 300)))
          (func (export "_start")
            (if (call $accept (i32.const 3) (i32.const 0) (i32.const 0)) (then (call $exit (i32.const 10))))
            (if (i64.ne (call $poll_once) (i64.const 1)) (then (call $exit (i32.const 2))))
            (if (i64.ne (call $poll_once) (i64.const 42)) (then (call $exit (i32.const 3))))
            (i32.store (i32.const 24) (i32.const 1024))
            (i32.store (i32.const 28) (i32.const 1))
            (if (call $write (i32.load (i32.const 0)) (i32.const 24) (i32.const 1) (i32.const 32))
              (then (call $exit (i32.const 11))))
            (if (i64.ne (call $poll_once) (i64.const 1)) (then (call $exit (i32.const 4))))
            (call $exit (i32.const 0)))"#,
    );
    let mut fds = stdio();
    fds.push(listen(None));
    let (addr, handle) = start(wasm, spec(fds));
    let _client = TcpStream::connect(addr.unwrap()).unwrap();
    assert_eq!(handle.join().unwrap().unwrap().exit_code, 0);
}

#[test]
fn each_poll_sees_only_its_own_subscriptions() {
    // The host keeps one subscription buffer between calls; nothing of an earlier call (a big
    // one, a failed one) may leak into a later one. $fill writes N fd_write subscriptions on
    // stdout (always ready) with userdata 1000+i at 1024; each poll's events go to 300000.
    let wasm = module(
        r#"(func $fill (param $n i32) (local $i i32)
            (local.set $i (i32.const 0))
            (block $done (loop $next
              (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
              (i64.store (i32.add (i32.const 1024) (i32.mul (local.get $i) (i32.const 48)))
                (i64.extend_i32_u (i32.add (local.get $i) (i32.const 1000))))
              (i32.store8 (i32.add (i32.const 1032) (i32.mul (local.get $i) (i32.const 48))) (i32.const 2))
              (i32.store (i32.add (i32.const 1040) (i32.mul (local.get $i) (i32.const 48))) (i32.const 1))
              (local.set $i (i32.add (local.get $i) (i32.const 1)))
              (br $next))))
          (func $poll_n (param $n i32) (result i32)
            (if (call $poll (i32.const 1024) (i32.const 300000) (local.get $n) (i32.const 400))
              (then (call $exit (i32.const 20))))
            (i32.load (i32.const 400)))
          (func (export "_start")
            (drop (memory.grow (i32.const 6)))
            ;; a call far bigger than the buffer the host keeps
            (call $fill (i32.const 5000))
            (if (i32.ne (call $poll_n (i32.const 5000)) (i32.const 5000)) (then (call $exit (i32.const 2))))
            ;; then a small one: exactly its one event
            (call $fill (i32.const 1))
            (if (i32.ne (call $poll_n (i32.const 1)) (i32.const 1)) (then (call $exit (i32.const 3))))
            (if (i64.ne (i64.load (i32.const 300000)) (i64.const 1000)) (then (call $exit (i32.const 4))))
            ;; three, then a bad event type (EINVAL), then one again
            (call $fill (i32.const 3))
            (if (i32.ne (call $poll_n (i32.const 3)) (i32.const 3)) (then (call $exit (i32.const 5))))
            (i32.store8 (i32.const 1032) (i32.const 7))
            (if (i32.ne (call $poll (i32.const 1024) (i32.const 300000) (i32.const 1) (i32.const 400)) (i32.const 28))
              (then (call $exit (i32.const 6))))
            (call $fill (i32.const 1))
            (if (i32.ne (call $poll_n (i32.const 1)) (i32.const 1)) (then (call $exit (i32.const 7))))
            (if (i64.ne (i64.load (i32.const 300000)) (i64.const 1000)) (then (call $exit (i32.const 8))))
            (call $exit (i32.const 0)))"#,
    );
    assert_eq!(run(wasm, spec(stdio())).unwrap().exit_code, 0);
}

#[test]
fn poll_with_a_relative_clock_times_out() {
    let wasm = module(
        r#"(func (export "_start")
            (i64.store (i32.const 100) (i64.const 42))
            (i32.store8 (i32.const 108) (i32.const 0))
            (i32.store (i32.const 116) (i32.const 1))
            (i64.store (i32.const 124) (i64.const 20000000))
            (if (call $poll (i32.const 100) (i32.const 300) (i32.const 1) (i32.const 400))
              (then (call $exit (i32.const 1))))
            (if (i64.ne (i64.load (i32.const 300)) (i64.const 42)) (then (call $exit (i32.const 2))))
            (call $exit (i32.load8_u (i32.const 310))))"#,
    );
    assert_eq!(
        run(wasm, spec(stdio())).unwrap().exit_code,
        0,
        "event type CLOCK is 0"
    );
}
