//! `moat run --instances N` (`instances = N`): several instances of one workload on the same
//! listeners. Connections go to the instances in turn, the instances share no state, the
//! per-listener connection limit counts them all together, and the first instance to end ends
//! the Keep with its outcome.

mod common;

use common::{moat, payload};
use moat_testkit::process::Moat;
use moat_testkit::{configs, guests, net, tls};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `moat::exit::LIMIT_EXCEEDED`.
const LIMIT_EXCEEDED: i32 = 124;
/// `moat::exit::TRAP`.
const TRAP: i32 = 134;

/// Each of `lines` occurs in `text`, as a whole line, exactly the number of times given.
fn assert_line_counts(text: &str, lines: &[(&str, usize)]) {
    for (line, expected) in lines {
        let found = text.lines().filter(|l| l == line).count();
        assert_eq!(found, *expected, "`{line}` in:\n{text}");
    }
}

/// One TLS connection to `port`: send `data`, half-close, read the echo to the end.
async fn echo(port: u16, data: &[u8]) -> Vec<u8> {
    let (config, _) = tls::capturing_client(None);
    let stream = tls::connect(net::local(port), config, "localhost")
        .await
        .expect("TLS connect");
    let (mut read, mut write) = tokio::io::split(stream);
    write.write_all(data).await.expect("send");
    write.shutdown().await.expect("half-close");
    let mut back = Vec::new();
    read.read_to_end(&mut back).await.expect("read the echo");
    back
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_go_to_the_instances_in_turn_and_state_stays_in_each() {
    // echo-std counts the connections it served and exits 0 after the second. With two
    // instances, the third connection is the first instance's second: it exits, and the Keep
    // stops the other one (waiting in `accept`) and exits with the first one's status.
    let port = net::free_port();
    let config = configs::stdio() + &configs::listen("sock", "tls", port);
    let mut keep = Moat::run(moat(), guests::module("echo-std"))
        .config(&config)
        .args(["--instances", "2"])
        .guest_args(["sock", "2"])
        .spawn();
    let (at, _) = keep.wait_for_stdout_from(0, "echo-std: listening");
    keep.wait_for_stdout_from(at + 1, "echo-std: listening");
    for i in 0..3u8 {
        let data = payload(10_000, i);
        assert_eq!(echo(port, &data).await, data, "connection {i}");
    }
    let done = tokio::task::block_in_place(|| keep.wait_exit(moat_testkit::WAIT));
    done.assert_code(0);
    // One instance would have counted 1, 2 and exited; two count 1, 1, 2.
    assert_line_counts(
        &done.stdout,
        &[
            ("echo-std: served 1", 2),
            ("echo-std: served 2", 1),
            ("echo-std: served 3", 0),
        ],
    );
}

#[test]
fn the_connection_limit_counts_every_instance() {
    // With a limit of 3 per listener and two instances, the instances hold 2 and 1; a limit per
    // instance would have let each hold 3 of the 8 clients.
    let (mut keep, clients) = common::flood_with_clients(3, &["--instances", "2"]);
    keep.wait_for_stdout("flood: holding 2");
    let done = keep.wait_exit(moat_testkit::WAIT);
    done.assert_code(LIMIT_EXCEEDED);
    assert_line_counts(
        &done.stdout,
        &[
            ("flood: holding 1", 2),
            ("flood: holding 2", 1),
            // A limit per instance would have let one hold a third.
            ("flood: holding 3", 0),
        ],
    );
    drop(clients);
}

#[test]
fn a_trap_or_a_limit_in_one_instance_ends_the_keep() {
    let done = Moat::run(moat(), guests::module("trap"))
        .args(["--instances", "3"])
        .output();
    done.assert_code(TRAP);
    done.assert_stderr_mentions(&["trap"]);

    // Every instance spins; the first to use up its CPU budget stops them all (`output` gives
    // up, and fails, if the Keep has not exited within the test kit's wait).
    let done = Moat::run(moat(), guests::module("spin"))
        .args(["--instances", "2", "--cpu-time", "1s"])
        .output();
    done.assert_code(LIMIT_EXCEEDED);
    done.assert_stderr_mentions(&["cpu"]);
}

#[test]
fn a_bad_instance_count_is_refused_before_anything_runs() {
    for (flag, message) in [("0", "use 1 to 256"), ("many", "expected a number")] {
        let done = Moat::run(moat(), guests::module("hello"))
            .args(["--instances", flag])
            .output();
        done.assert_code(125);
        done.assert_stderr_mentions(&["--instances", message]);
        assert!(done.stdout.is_empty(), "{}", done.stdout);
    }
}
