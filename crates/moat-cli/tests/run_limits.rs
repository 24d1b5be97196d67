//! Hostile workloads: a module that loops forever, one that allocates without bound, one that
//! hoards connections, and one that traps. Each is stopped with a clear message and the exit code
//! `exit.rs` assigns (124 for a limit, 134 for a trap); the host never hangs or crashes.

mod common;

use common::moat;
use moat_testkit::process::Moat;
use moat_testkit::{configs, guests};

/// `moat::exit::LIMIT_EXCEEDED`.
const LIMIT_EXCEEDED: i32 = 124;
/// `moat::exit::TRAP`.
const TRAP: i32 = 134;

#[test]
fn infinite_loop_is_stopped_by_the_wall_clock_budget() {
    // A config without `[[files]]` gives the workload no fds (Enarx's meaning): list stdio.
    let config = configs::stdio() + &configs::limits(&["wall_time = \"2s\""]);
    let done = Moat::run(moat(), guests::module("spin"))
        .config(&config)
        .output();
    done.assert_code(LIMIT_EXCEEDED);
    done.assert_stderr_mentions(&["time"]);
    assert!(done.stdout.contains("spin: starting"), "{}", done.stdout);
}

#[test]
fn infinite_loop_is_stopped_by_the_cpu_budget() {
    let config = configs::limits(&["cpu_time = \"1s\""]);
    let done = Moat::run(moat(), guests::module("spin"))
        .config(&config)
        .output();
    done.assert_code(LIMIT_EXCEEDED);
    done.assert_stderr_mentions(&["cpu"]);
}

#[test]
fn memory_bomb_is_stopped_by_the_memory_limit() {
    let config = configs::limits(&["max_memory = \"64MiB\""]);
    let done = Moat::run(moat(), guests::module("membomb"))
        .config(&config)
        .output();
    done.assert_code(LIMIT_EXCEEDED);
    done.assert_stderr_mentions(&["memory"]);
    // It got somewhere before the limit, and not past it.
    let last = done
        .stdout
        .lines()
        .filter_map(|l| {
            l.strip_prefix("membomb: ")?
                .strip_suffix(" MiB")?
                .parse::<u64>()
                .ok()
        })
        .max()
        .unwrap_or(0);
    assert!(
        last < 64,
        "the workload held {last} MiB under a 64 MiB limit"
    );
}

#[test]
fn connection_hoarder_is_held_to_the_per_listener_limit() {
    let (mut keep, clients) = common::flood_with_clients(3, &[]);
    keep.wait_for_stdout("flood: holding 3");
    // The run ends at its wall-clock budget; the workload never got more than three.
    let done = keep.wait_exit(moat_testkit::WAIT);
    done.assert_code(LIMIT_EXCEEDED);
    assert!(
        !done.stdout.contains("flood: holding 4"),
        "the limit let a fourth connection through:\n{}",
        done.stdout
    );
    drop(clients);
}

#[test]
fn trap_is_reported_readably_with_its_own_exit_code() {
    let done = Moat::run(moat(), guests::module("trap")).output();
    done.assert_code(TRAP);
    done.assert_stderr_mentions(&["trap"]);
    assert!(
        done.stdout.contains("trap: about to fail"),
        "{}",
        done.stdout
    );
}

#[test]
fn a_limit_can_be_set_on_the_command_line() {
    let done = Moat::run(moat(), guests::module("spin"))
        .args(["--wall-time", "1s"])
        .output();
    done.assert_code(LIMIT_EXCEEDED);
    done.assert_stderr_mentions(&["time"]);
}
